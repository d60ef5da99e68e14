//! A scaling experiment (`scale_cpus = true`) on the page: throughput against the server's CPU
//! count, as a plot and as one measured sentence per model.
//!
//! On a machine whose server CPU list has room for one step only, the plot is one point per
//! model and the sentence says what that step measured; the experiment's note (written by the
//! expansion, kept in results.json) says why the other steps were skipped. The section is
//! never missing: a reader learns both what was measured and what was not.

use super::Row;
use super::format::{sig3, thousands, unit};
use super::plots::{Palette, Plot, lines, median, models_in, with_plot};
use super::svg::{Axis, Chart, render};
use crate::results::RunResults;

/// Throughput at the fewest and at the most server CPUs, per model, in words.
pub fn speedup(rows: &[&Row]) -> String {
    let (rate, _) = unit(rows);
    let parts: Vec<String> = models_in(rows)
        .into_iter()
        .map(|model| {
            let mut pts: Vec<(usize, f64)> = rows
                .iter()
                .filter(|r| r.point.spec.model == model && r.summary.ok())
                .filter_map(|r| Some((r.point.spec.server_cpus?, median(r, "throughput")?)))
                .collect();
            pts.sort_by_key(|p| p.0);
            let cpus = |n: usize| format!("{n} CPU{}", if n == 1 { "" } else { "s" });
            let declined = rows
                .iter()
                .filter(|r| r.point.spec.model == model)
                .find_map(|r| r.summary.unavailable.as_ref());
            if let Some(why) = declined.filter(|_| pts.is_empty()) {
                return format!("{model}: {}", why.kind.label());
            }
            match (pts.first(), pts.last()) {
                (Some(&(a, low)), Some(&(b, high))) if b > a && low > 0.0 => format!(
                    "{model} {} {rate} on {}, {}× its {} on {}",
                    thousands(high),
                    cpus(b),
                    sig3(high / low),
                    thousands(low),
                    cpus(a)
                ),
                (Some(&(a, only)), _) => format!("{model} {} {rate} on {}", thousands(only), cpus(a)),
                _ => format!("{model}: no step completed cleanly"),
            }
        })
        .collect();
    if parts.is_empty() {
        return "nothing was measured.".to_owned();
    }
    format!("{}.", parts.join("; "))
}

/// The throughput-against-server-CPUs plot of each scaling experiment.
pub fn plots(results: &RunResults, rows: &[Row], palette: &Palette) -> Vec<Plot> {
    let count = |x: f64| thousands(x);
    // CPU counts are whole numbers: label only the whole ticks.
    let whole = |x: f64| if x.fract() == 0.0 { format!("{x:.0}") } else { String::new() };
    let mut plots = Vec::new();
    for (k, (exp, exp_rows)) in with_plot(results, rows, "scaling").into_iter().enumerate() {
        let cpus = |r: &Row| r.point.spec.server_cpus.unwrap_or(1) as f64;
        let series = lines(palette, &exp_rows, cpus, |r| median(r, "throughput"), false, "");
        let most = exp_rows.iter().map(|r| cpus(r)).fold(1.0, f64::max);
        let note = if exp_rows.iter().any(|r| cpus(r) != most) {
            format!("run {}; hollow markers: point failed (see README)", results.run_id)
        } else {
            format!("run {}; one step only: the server had one CPU (see README)", results.run_id)
        };
        let chart = Chart {
            title: format!("Throughput against server CPUs ({exp}, closed loop, median)"),
            x_label: "server CPUs (and threads)".into(),
            y_label: "replies per second".into(),
            // From zero, wide enough for whole-number ticks even with a single step.
            x: Axis::fit([0.0, most.max(4.0)], false),
            y: Axis::fit(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), false),
            x_tick: &whole,
            y_tick: &count,
            series,
            note,
        };
        plots.push(Plot {
            file: if k == 0 {
                "plots/throughput_vs_server_cpus.svg".into()
            } else {
                format!("plots/throughput_vs_server_cpus-{exp}.svg")
            },
            caption: "throughput against server CPUs".into(),
            experiment: exp.clone(),
            svg: render(&chart),
        });
    }
    plots
}
