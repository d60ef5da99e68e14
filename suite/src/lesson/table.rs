//! A lesson's rows: one per point, in the plan's order, labelled by what differs between them,
//! with the lesson's columns; written as a Markdown table (page and guide) or as aligned plain
//! text (terminal).

use super::LessonSpec;
use super::metrics::{self, Metric};
use crate::aggregate::Stat;
use crate::matrix::PaceSpec;
use crate::matrix::PointSpec;
use crate::render::format::cell;
use crate::render::{self, Row};
use crate::results::RunResults;

/// One row of a lesson's table.
pub struct LessonRow {
    /// The model, then what else tells this row from the others.
    pub label: String,
    /// The model, for the chart's colour.
    pub model: String,
    /// One value per column of the lesson, in its order.
    pub cells: Vec<Option<Stat>>,
    /// The chart's value.
    pub chart: Option<Stat>,
    /// Why the row has no figures, or what went wrong in it, in words.
    pub note: Option<String>,
}

/// What sets `spec` apart from the other points of its experiment and model: connections,
/// idle connections, offered rate, server CPUs.
fn variant(spec: &PointSpec) -> String {
    let mut text = format!("{} conns", spec.conns);
    if spec.idle_conns > 0 {
        text.push_str(&format!(" + {} idle", spec.idle_conns));
    }
    if let PaceSpec::Fraction { fraction, .. } = &spec.pace {
        text.push_str(&format!(", open loop at {fraction}× max"));
    }
    if let Some(n) = spec.server_cpus {
        text.push_str(&format!(", {n} CPU(s)"));
    }
    text
}

/// The rows of `results` for the lesson `spec`.
pub fn rows(results: &RunResults, spec: &LessonSpec) -> Vec<LessonRow> {
    let all = render::rows(results);
    let several_experiments = results.experiments.len() > 1;
    let columns: Vec<&Metric> = spec.columns.iter().filter_map(|c| metrics::find(c)).collect();
    let chart = metrics::find(&spec.chart);
    all.iter()
        .map(|row: &Row| {
            let p = &row.point.spec;
            let siblings = all
                .iter()
                .filter(|r| r.point.spec.experiment == p.experiment && r.point.spec.model == p.model)
                .count();
            let mut label = p.model.clone();
            if several_experiments {
                label.push_str(&format!(", {}", p.experiment));
            }
            if siblings > 1 {
                label.push_str(&format!(", {}", variant(p)));
            }
            let note = if let Some(why) = &row.summary.unavailable {
                Some(format!("not run: {}", why.reason))
            } else if row.summary.failed() {
                Some(row.summary.failures.join("; "))
            } else {
                None
            };
            LessonRow {
                label,
                model: p.model.clone(),
                cells: columns.iter().map(|m| metrics::value(m, row)).collect(),
                chart: chart.and_then(|m| metrics::value(m, row)),
                note,
            }
        })
        .collect()
}

fn text_of(metric: &Metric, stat: Option<Stat>) -> String {
    match stat {
        Some(s) => metrics::format(metric.unit, s.median),
        None => "–".to_owned(),
    }
}

fn columns(spec: &LessonSpec) -> Vec<&'static Metric> {
    spec.columns.iter().filter_map(|c| metrics::find(c)).collect()
}

/// The Markdown table, with the rows' notes as numbered lines under it.
pub fn markdown(spec: &LessonSpec, rows: &[LessonRow]) -> String {
    let cols = columns(spec);
    let mut s = String::from("| |");
    for m in &cols {
        s.push_str(&format!(" {} |", m.heading));
    }
    s.push_str("\n| --- |");
    for _ in &cols {
        s.push_str(" ---: |");
    }
    s.push('\n');
    let mut notes = Vec::new();
    for row in rows {
        let mut label = cell(&row.label);
        if let Some(note) = &row.note {
            notes.push(format!("{}: {}", row.label, note));
            label.push_str(&format!(" ({})", notes.len()));
        }
        s.push_str(&format!("| {label} |"));
        for (m, stat) in cols.iter().zip(&row.cells) {
            s.push_str(&format!(" {} |", text_of(m, *stat)));
        }
        s.push('\n');
    }
    if !notes.is_empty() {
        s.push('\n');
        for (i, note) in notes.iter().enumerate() {
            s.push_str(&format!("- ({}) {}\n", i + 1, cell(note)));
        }
    }
    s
}

/// The same table as aligned plain text.
pub fn text(spec: &LessonSpec, rows: &[LessonRow]) -> String {
    let cols = columns(spec);
    let mut grid: Vec<Vec<String>> =
        vec![std::iter::once(String::new()).chain(cols.iter().map(|m| m.heading.to_owned())).collect()];
    for row in rows {
        let mut line = vec![row.label.clone()];
        line.extend(cols.iter().zip(&row.cells).map(|(m, s)| text_of(m, *s)));
        grid.push(line);
    }
    let widths: Vec<usize> =
        (0..=cols.len()).map(|i| grid.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for line in &grid {
        for (i, (text, w)) in line.iter().zip(&widths).enumerate() {
            let pad = w - text.chars().count();
            if i == 0 {
                s.push_str(&format!("{text}{}", " ".repeat(pad)));
            } else {
                s.push_str(&format!("  {}{text}", " ".repeat(pad)));
            }
        }
        s.push('\n');
    }
    for row in rows.iter().filter(|r| r.note.is_some()) {
        s.push_str(&format!("{}: {}\n", row.label, row.note.as_deref().unwrap_or_default()));
    }
    s
}
