//! Which plots a run gets, built from the summarised points.
//!
//! - `throughput_vs_connections.svg`: median throughput against connections, per model;
//! - `memory_vs_connections.svg` and `threads_vs_connections.svg`: peak RSS and threads against
//!   all connections held (active + idle), per model;
//! - `spectrum-<experiment>-<variant>.svg`: the latency percentile spectrum of each model from
//!   its repetitions' histograms added together, on HdrHistogram's `1/(1-p)` axis so the tail
//!   gets as much room as the median;
//! - `latency_vs_rate.svg`: p50 and p99 against the offered rate of the open-loop sweep;
//! - `throughput_vs_server_cpus.svg`: a scaling experiment's throughput against the server's
//!   CPUs (built in [`scaling`](super::scaling)).
//!
//! A failed point is drawn hollow (a dashed line in a spectrum): it was measured, but something
//! went wrong (see the table).

use std::collections::BTreeSet;

use super::Row;
use super::format::{latency_tick, thousands};
use super::svg::{Axis, Chart, Series, render};
use crate::results::RunResults;

/// One rendered plot.
pub struct Plot {
    /// Path relative to the run directory.
    pub file: String,
    /// Alt text / caption.
    pub caption: String,
    /// Experiment it belongs to (the README places it after that experiment's tables).
    pub experiment: String,
    /// The SVG document.
    pub svg: String,
}

/// Colours of the models that were in the lab first, kept so that older runs re-render as
/// they were and a model looks the same from one run to the next.
fn fixed_color(model: &str) -> Option<&'static str> {
    Some(match model {
        "blocking" => "#d62728",
        "thread-per-connection" => "#ff7f0e",
        "thread-pool" => "#2ca02c",
        "reactor" => "#1f77b4",
        "async" => "#9467bd",
        _ => return None,
    })
}

/// Colours for every other model, dealt in the order the models first appear in the run.
const SPARE: [&str; 5] = ["#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

/// One colour per model for the whole run, so a model looks the same in every plot. The suite
/// knows no list of models (the server has it), so models without a colour of their own get
/// the spare ones by their order in results.json: the same file always gives the same colours.
pub struct Palette {
    others: Vec<String>,
}

impl Palette {
    /// The palette of a run.
    pub fn of(results: &RunResults) -> Palette {
        let mut others: Vec<String> = Vec::new();
        for p in &results.points {
            let m = &p.spec.model;
            if fixed_color(m).is_none() && !others.contains(m) {
                others.push(m.clone());
            }
        }
        Palette { others }
    }

    /// The colour of `model`.
    pub fn color(&self, model: &str) -> &'static str {
        fixed_color(model).unwrap_or_else(|| {
            let i = self.others.iter().position(|m| m == model).unwrap_or(SPARE.len() - 1);
            SPARE[i % SPARE.len()]
        })
    }
}

pub(super) fn models_in<'a>(rows: &[&'a Row]) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for r in rows {
        if !seen.contains(&r.point.spec.model.as_str()) {
            seen.push(r.point.spec.model.as_str());
        }
    }
    seen
}

/// Lines of `(x, y)` per model from `rows`, `y` given by `metric` (`None` skips the point).
pub(super) fn lines(
    palette: &Palette,
    rows: &[&Row],
    x: impl Fn(&Row) -> f64,
    y: impl Fn(&Row) -> Option<f64>,
    dashed: bool,
    suffix: &str,
) -> Vec<Series> {
    models_in(rows)
        .into_iter()
        .map(|m| {
            let mut pts: Vec<(f64, f64, bool)> = rows
                .iter()
                .filter(|r| r.point.spec.model == m)
                .filter_map(|r| y(r).map(|v| (x(r), v, !r.summary.ok())))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name: format!("{m}{suffix}"),
                color: palette.color(m),
                dashed,
                hollow: pts.iter().enumerate().filter(|(_, p)| p.2).map(|(i, _)| i).collect(),
                points: pts.into_iter().map(|(x, y, _)| (x, y)).collect(),
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

pub(super) fn median(r: &Row, metric: &str) -> Option<f64> {
    r.summary.get(metric).map(|s| s.median)
}

pub(super) fn with_plot<'a>(
    results: &RunResults,
    rows: &'a [Row<'a>],
    kind: &str,
) -> Vec<(String, Vec<&'a Row<'a>>)> {
    results
        .experiments
        .iter()
        .filter(|e| e.plots.iter().any(|p| p == kind))
        .map(|e| {
            (e.name.clone(), rows.iter().filter(|r| r.point.spec.experiment == e.name).collect::<Vec<_>>())
        })
        .filter(|(_, r)| !r.is_empty())
        .collect()
}

fn spectrum_tick(x: f64) -> String {
    // x = 1/(1-p): 1 → 0%, 10 → 90%, 100 → 99%, …
    let nines = x.log10().round() as i32;
    match nines {
        0 => "0%".into(),
        1 => "90%".into(),
        n => format!("99.{}%", "9".repeat((n - 2) as usize)).replace("99.%", "99%"),
    }
}

/// Every plot of the run, in a fixed order.
pub fn all(results: &RunResults, rows: &[Row]) -> Vec<Plot> {
    let mut plots = Vec::new();
    let palette = Palette::of(results);
    let count = |x: f64| thousands(x);
    let lat = |ns: f64| latency_tick(ns);
    let mib =
        |m: f64| format!("{} MiB", super::format::sig3(m).trim_end_matches(".00").trim_end_matches(".0"));
    let note = format!("run {}; hollow markers: point failed (see README)", results.run_id);

    // Throughput vs connections.
    let tp: Vec<&Row> = with_plot(results, rows, "throughput").into_iter().flat_map(|(_, r)| r).collect();
    if !tp.is_empty() {
        let series =
            lines(&palette, &tp, |r| r.point.spec.conns as f64, |r| median(r, "throughput"), false, "");
        let chart = Chart {
            title: "Throughput against connections (closed loop, median)".into(),
            x_label: "connections".into(),
            y_label: "replies per second".into(),
            x: Axis::fit(tp.iter().map(|r| r.point.spec.conns as f64), true),
            y: Axis::fit(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), false),
            x_tick: &count,
            y_tick: &count,
            series,
            note: note.clone(),
        };
        plots.push(Plot {
            file: "plots/throughput_vs_connections.svg".into(),
            caption: "throughput against connections".into(),
            experiment: tp[0].point.spec.experiment.clone(),
            svg: render(&chart),
        });
    }

    // Memory and threads vs connections held.
    let memory: Vec<&Row> = with_plot(results, rows, "memory").into_iter().flat_map(|(_, r)| r).collect();
    if !memory.is_empty() {
        let held = |r: &Row| (r.point.spec.conns + r.point.spec.idle_conns) as f64;
        let last_exp = memory[memory.len() - 1].point.spec.experiment.clone();
        // PSS where the run measured it for every point shown: a forking server's children
        // share its pages, which RSS counts once per process. Older runs keep their RSS plot.
        let measured = memory.iter().filter(|r| r.summary.get("rss_peak").is_some());
        let pss = memory.iter().any(|r| r.summary.get("pss_peak").is_some())
            && measured.clone().all(|r| r.summary.get("pss_peak").is_some());
        let (memory_metric, memory_title, memory_label) = if pss {
            ("pss_peak", "Peak PSS against connections held", "peak PSS (server and its children)")
        } else {
            ("rss_peak", "Peak RSS against connections held", "peak RSS")
        };
        for (metric, file, title, y_label, tick) in [
            (
                memory_metric,
                "memory_vs_connections",
                memory_title,
                memory_label,
                &mib as &dyn Fn(f64) -> String,
            ),
            (
                "threads_peak",
                "threads_vs_connections",
                "Threads against connections held",
                "threads (most seen)",
                &count,
            ),
        ] {
            // Memory is plotted in MiB so the decade ticks fall on round numbers.
            let scale = if metric == memory_metric { 1.0 / 1024.0 } else { 1.0 };
            let series = lines(&palette, &memory, held, |r| median(r, metric).map(|v| v * scale), false, "");
            let chart = Chart {
                title: title.into(),
                x_label: "connections held (active + idle)".into(),
                y_label: y_label.into(),
                x: Axis::fit(memory.iter().map(|r| held(r)), true),
                y: Axis::fit(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), true),
                x_tick: &count,
                y_tick: tick,
                series,
                note: note.clone(),
            };
            plots.push(Plot {
                file: format!("plots/{file}.svg"),
                caption: title.to_lowercase(),
                experiment: last_exp.clone(),
                svg: render(&chart),
            });
        }
    }

    // Percentile spectra, one per experiment and variant.
    for (exp, exp_rows) in with_plot(results, rows, "spectrum") {
        let variants: BTreeSet<(usize, usize)> =
            exp_rows.iter().map(|r| (r.point.spec.conns, r.point.spec.idle_conns)).collect();
        for (conns, idle) in variants {
            let mut series = Vec::new();
            for r in
                exp_rows.iter().filter(|r| r.point.spec.conns == conns && r.point.spec.idle_conns == idle)
            {
                let Some(h) = &r.summary.merged else { continue };
                if h.is_empty() {
                    continue;
                }
                let mut points: Vec<(f64, f64)> = h
                    .iter_quantiles(5)
                    .filter(|q| q.quantile_iterated_to() < 1.0)
                    .map(|q| (1.0 / (1.0 - q.quantile_iterated_to()), q.value_iterated_to().max(1) as f64))
                    .filter(|(x, _)| *x <= 1e6)
                    .collect();
                points.dedup_by(|a, b| a.0 == b.0);
                let failed = !r.summary.ok();
                series.push(Series {
                    name: format!("{}{}", r.point.spec.model, if failed { " (failed)" } else { "" }),
                    color: palette.color(&r.point.spec.model),
                    // A failed point's distribution is what was measured, but not comparable.
                    dashed: failed,
                    hollow: Vec::new(),
                    points,
                });
            }
            if series.is_empty() {
                continue;
            }
            let variant = if idle > 0 { format!("c{conns}+i{idle}") } else { format!("c{conns}") };
            let max_x = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(10.0, f64::max);
            let chart = Chart {
                title: format!(
                    "Latency by percentile: {exp}, {} connections{}",
                    thousands(conns as f64),
                    if idle > 0 { format!(" + {} idle", thousands(idle as f64)) } else { String::new() }
                ),
                x_label: "percentile (1/(1-p) scale)".into(),
                y_label: "latency".into(),
                x: Axis { min: 1.0, max: 10f64.powf(max_x.log10().ceil()), log: true },
                y: Axis::fit(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), true),
                x_tick: &spectrum_tick,
                y_tick: &lat,
                series,
                note: format!(
                    "run {}; all repetitions' histograms added; dashed: point failed (see README)",
                    results.run_id
                ),
            };
            plots.push(Plot {
                file: format!("plots/spectrum-{exp}-{variant}.svg"),
                caption: format!("latency spectrum, {exp} {variant}"),
                experiment: exp.clone(),
                svg: render(&chart),
            });
        }
    }

    // Latency against offered rate.
    for (k, (exp, exp_rows)) in with_plot(results, rows, "rate").into_iter().enumerate() {
        let rate = |r: &Row| r.point.rate.unwrap_or(0.0);
        let mut series = lines(&palette, &exp_rows, rate, |r| median(r, "p99"), false, " p99");
        series.extend(lines(&palette, &exp_rows, rate, |r| median(r, "p50"), true, " p50"));
        if series.is_empty() {
            continue;
        }
        let chart = Chart {
            title: format!("Latency against offered rate ({exp}, from due time)"),
            x_label: "offered rate (requests per second)".into(),
            y_label: "latency".into(),
            x: Axis::fit(exp_rows.iter().map(|r| rate(r)), false),
            y: Axis::fit(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)), true),
            x_tick: &count,
            y_tick: &lat,
            series,
            note: note.clone(),
        };
        plots.push(Plot {
            // The first sweep gets the plain name; any further one is named after its experiment.
            file: if k == 0 {
                "plots/latency_vs_rate.svg".into()
            } else {
                format!("plots/latency_vs_rate-{exp}.svg")
            },
            caption: "latency against offered rate".into(),
            experiment: exp.clone(),
            svg: render(&chart),
        });
    }
    plots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectrum_ticks_read_as_percentiles() {
        assert_eq!(spectrum_tick(1.0), "0%");
        assert_eq!(spectrum_tick(10.0), "90%");
        assert_eq!(spectrum_tick(100.0), "99%");
        assert_eq!(spectrum_tick(1000.0), "99.9%");
        assert_eq!(spectrum_tick(1e5), "99.999%");
    }
}
