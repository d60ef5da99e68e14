//! A lesson's one picture: a bar per row of the metric its `chart` names. In the terminal the
//! bars are block characters (for a projector, no browser needed); on the page they are an SVG
//! drawn by the suite's own bar chart ([`crate::render::bars`]), whiskers at the repetitions'
//! min and max.

use super::LessonSpec;
use super::metrics::{self, Unit};
use super::table::LessonRow;
use crate::render::bars::{self, Bar};
use crate::render::plots::Palette;
use crate::results::RunResults;

/// Widest bar, in characters.
const WIDTH: usize = 40;

/// Eighths of a character cell, for the end of a bar.
const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/// A bar of `fraction` (0 to 1) of [`WIDTH`], in block characters.
fn bar(fraction: f64) -> String {
    let eighths = (fraction.clamp(0.0, 1.0) * (WIDTH * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if eighths % 8 > 0 {
        s.push(EIGHTHS[eighths % 8]);
    }
    // Even a value of nearly zero shows that it was measured.
    if s.is_empty() {
        s.push('▏');
    }
    s
}

/// The text bar chart.
pub fn text(spec: &LessonSpec, rows: &[LessonRow]) -> String {
    let Some(metric) = metrics::find(&spec.chart) else { return String::new() };
    let top = rows.iter().filter_map(|r| r.chart.map(|s| s.median)).fold(0.0, f64::max);
    let label_w = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0);
    let mut s = format!("{} (median of the repetitions)\n", metric.heading);
    for row in rows {
        let pad = " ".repeat(label_w - row.label.chars().count());
        match row.chart {
            Some(stat) if top > 0.0 => {
                let b = bar(stat.median / top);
                s.push_str(&format!(
                    "{}{pad}  {b} {}\n",
                    row.label,
                    metrics::format(metric.unit, stat.median)
                ));
            }
            _ => s.push_str(&format!("{}{pad}  (no figure)\n", row.label)),
        }
    }
    s
}

/// The SVG bar chart. Latencies are drawn in microseconds and memory in KiB, so that the
/// axis's whole-number ticks stay readable.
pub fn svg(results: &RunResults, spec: &LessonSpec, rows: &[LessonRow]) -> String {
    let palette = Palette::of(results);
    let Some(metric) = metrics::find(&spec.chart) else { return String::new() };
    let (scale, unit) = match metric.unit {
        Unit::Nanos => (1e-3, "µs"),
        Unit::Kib => (1.0, "KiB"),
        Unit::PerSecond => (1.0, "per second"),
        Unit::Share => (100.0, "%"),
        Unit::Count | Unit::Ratio => (1.0, ""),
    };
    let bars: Vec<Bar> = rows
        .iter()
        .map(|row| Bar {
            label: row.label.clone(),
            color: palette.color(&row.model),
            value: match row.chart {
                Some(s) => Ok((s.median * scale, s.min * scale, s.max * scale)),
                None => Err(row.note.clone().unwrap_or_else(|| "not measured".to_owned())),
            },
            hollow: row.note.is_some() && row.chart.is_some(),
        })
        .collect();
    let axis =
        if unit.is_empty() { metric.heading.to_owned() } else { format!("{}, {unit}", metric.heading) };
    let title = format!("Lesson {}: {}", spec.number, spec.title);
    let note = format!(
        "{} · commit {} · {} · median of the repetitions, whiskers min–max; hollow: something failed",
        results.machine.host, results.machine.git_commit, results.started_at
    );
    bars::render(&title, &axis, &bars, &note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_widest_and_never_vanish() {
        assert_eq!(bar(1.0).chars().count(), WIDTH);
        assert_eq!(bar(0.5).chars().count(), WIDTH / 2);
        assert_eq!(bar(0.0), "▏");
        assert_eq!(bar(1.0 / (WIDTH * 8) as f64), "▏");
    }
}
