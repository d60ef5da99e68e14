//! `plots = ["bars"]`: one horizontal bar per model for each variant of an experiment, its
//! median throughput, with the min–max of the repetitions as a whisker. It suits an experiment
//! with one connection count, where a line against connections would be a single dot per model
//! (`connect-rate`: connections per second, what a new connection costs each model).
//!
//! A failed point is drawn hollow; a model that did not run the point (unavailable here, not
//! served) gets its row with the reason's kind instead of a bar, so no model silently vanishes.

use std::fmt::Write as _;

use super::Row;
use super::format::{thousands, unit, xml};
use super::plots::{Palette, Plot, with_plot};
use super::svg::Axis;
use crate::results::RunResults;

const W: f64 = 760.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 90.0;
const TOP: f64 = 44.0;
const ROW: f64 = 26.0;
const BOTTOM: f64 = 58.0;

/// One bar of the chart.
pub struct Bar {
    /// The model.
    pub label: String,
    /// Fill colour.
    pub color: &'static str,
    /// Median, min and max, or why there is no bar.
    pub value: Result<(f64, f64, f64), String>,
    /// Drawn hollow: the point failed.
    pub hollow: bool,
}

/// Renders a bar chart: `title`, bars, the value axis labelled `axis_label`, small print `note`.
pub fn render(title: &str, axis_label: &str, bars: &[Bar], note: &str) -> String {
    let height = TOP + ROW * bars.len().max(1) as f64 + BOTTOM;
    let plot_w = W - LEFT - RIGHT;
    let axis = Axis::fit(bars.iter().filter_map(|b| b.value.as_ref().ok().map(|v| v.2)), false);
    let px = |v: f64| LEFT + (v - axis.min) / (axis.max - axis.min) * plot_w;
    let bottom = TOP + ROW * bars.len().max(1) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="{W}" height="{height}" fill="#ffffff"/>"##);
    let _ = writeln!(s, r#"<text x="20" y="24" font-size="15" font-weight="bold">{}</text>"#, xml(title));
    for t in axis.ticks() {
        let x = px(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e0e0e0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            bottom + 16.0,
            xml(&thousands(t))
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let mid = y + ROW / 2.0 + 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{mid:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            xml(&bar.label)
        );
        match &bar.value {
            Ok((median, min, max)) => {
                let fill = if bar.hollow { "#ffffff" } else { bar.color };
                let _ = writeln!(
                    s,
                    r#"<rect x="{LEFT:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="{}"/>"#,
                    y + 5.0,
                    (px(*median) - LEFT).max(0.5),
                    ROW - 10.0,
                    bar.color
                );
                if max > min {
                    let _ = writeln!(
                        s,
                        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333333" stroke-width="1.5"/>"##,
                        px(*min),
                        y + ROW / 2.0,
                        px(*max),
                        y + ROW / 2.0
                    );
                }
                let label =
                    if bar.hollow { format!("{} (failed)", thousands(*median)) } else { thousands(*median) };
                let _ = writeln!(s, r#"<text x="{:.1}" y="{mid:.1}">{}</text>"#, px(*max) + 6.0, xml(&label));
            }
            Err(why) => {
                let _ = writeln!(
                    s,
                    r##"<text x="{:.1}" y="{mid:.1}" fill="#555555">— {}</text>"##,
                    LEFT + 6.0,
                    xml(why)
                );
            }
        }
    }
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT:.1}" y1="{TOP:.1}" x2="{LEFT:.1}" y2="{bottom:.1}" stroke="#333333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        bottom + 36.0,
        xml(axis_label)
    );
    if !note.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="20" y="{:.1}" font-size="10" fill="#555555">{}</text>"##,
            height - 8.0,
            xml(note)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The bar charts of every experiment with `bars` among its plots, one per variant.
pub fn plots(results: &RunResults, rows: &[Row], palette: &Palette) -> Vec<Plot> {
    let mut plots = Vec::new();
    for (exp, exp_rows) in with_plot(results, rows, "bars") {
        let mut variants: Vec<(usize, usize)> = Vec::new();
        for r in &exp_rows {
            let v = (r.point.spec.conns, r.point.spec.idle_conns);
            if !variants.contains(&v) {
                variants.push(v);
            }
        }
        for (conns, idle) in variants {
            let sub: Vec<&Row> = exp_rows
                .iter()
                .copied()
                .filter(|r| r.point.spec.conns == conns && r.point.spec.idle_conns == idle)
                .collect();
            let (rate, _) = unit(&sub);
            let bars: Vec<Bar> = sub
                .iter()
                .map(|r| Bar {
                    label: r.point.spec.model.clone(),
                    color: palette.color(&r.point.spec.model),
                    value: match (&r.summary.unavailable, r.summary.get("throughput")) {
                        (Some(why), _) => Err(why.kind.label().to_owned()),
                        (None, Some(t)) => Ok((t.median, t.min, t.max)),
                        (None, None) => Err("nothing measured (failed)".to_owned()),
                    },
                    hollow: r.summary.failed(),
                })
                .collect();
            let what = if rate == "conn/s" { "New connections per second" } else { "Throughput" };
            let variant = if idle > 0 { format!("c{conns}+i{idle}") } else { format!("c{conns}") };
            let title = format!("{what}: {exp}, {} at a time (median)", thousands(conns as f64));
            let axis_label = if rate == "conn/s" {
                "connections per second (one request each)"
            } else {
                "replies per second"
            };
            let note = format!(
                "run {}; whiskers: min–max of the repetitions; hollow: point failed (see README)",
                results.run_id
            );
            plots.push(Plot {
                file: format!("plots/bars-{exp}-{variant}.svg"),
                caption: format!("{}, {exp} {variant}", what.to_lowercase()),
                experiment: exp.clone(),
                svg: render(&title, axis_label, &bars, &note),
            });
        }
    }
    plots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_whiskers_and_declined_rows() {
        let bars = [
            Bar {
                label: "reactor".into(),
                color: "#1f77b4",
                value: Ok((12_000.0, 11_000.0, 12_500.0)),
                hollow: false,
            },
            Bar {
                label: "blocking".into(),
                color: "#d62728",
                value: Ok((4_000.0, 4_000.0, 4_000.0)),
                hollow: true,
            },
            Bar {
                label: "io-uring".into(),
                color: "#7f7f7f",
                value: Err("unavailable here".into()),
                hollow: false,
            },
        ];
        let svg = render("New connections <per> second", "connections per second", &bars, "run x");
        assert_eq!(svg, render("New connections <per> second", "connections per second", &bars, "run x"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<rect x=").count(), 2, "two bars, no bar for the declined model");
        assert!(svg.contains("— unavailable here"), "{svg}");
        assert!(
            svg.contains("4,000 (failed)") && svg.contains(r##"fill="#ffffff" stroke="#d62728""##),
            "{svg}"
        );
        assert_eq!(
            svg.matches(r#"stroke-width="1.5""#).count(),
            1,
            "a whisker only where the repetitions differ"
        );
        assert!(svg.contains("&lt;per&gt;"));
    }
}
