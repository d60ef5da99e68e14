//! A small line chart written as SVG text by hand.
//!
//! Hand-written rather than a plotting crate: the output needs no system fonts at generation
//! time (the viewer draws the text), every coordinate is printed with fixed precision so the
//! file is byte-for-byte reproducible, and the whole renderer fits on one screen. Axes are
//! linear or base-10 logarithmic; log axes get a tick per decade.

use std::fmt::Write as _;

use super::format::xml;

/// One axis.
#[derive(Clone, Copy)]
pub struct Axis {
    /// Smallest value shown.
    pub min: f64,
    /// Largest value shown.
    pub max: f64,
    /// Base-10 logarithmic.
    pub log: bool,
}

impl Axis {
    /// An axis that spans `values` (with a margin), logarithmic or from zero.
    pub fn fit(values: impl IntoIterator<Item = f64>, log: bool) -> Axis {
        let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite() && (!log || *x > 0.0)).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if v.is_empty() {
            return Axis { min: if log { 1.0 } else { 0.0 }, max: 10.0, log };
        }
        if log {
            let min = 10f64.powf(lo.log10().floor());
            let mut max = 10f64.powf(hi.log10().ceil());
            if max <= min {
                max = min * 10.0;
            }
            Axis { min, max, log }
        } else {
            let min = 0.0f64.min(lo);
            let top = if hi > min { hi * 1.05 } else { min + 1.0 };
            // Five to ten ticks of a round step, the last one just above the data.
            let step = nice_ceiling((top - min) / 5.0);
            Axis { min, max: min + (((top - min) / step).ceil() * step), log }
        }
    }

    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.max(self.min).log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }

    pub(super) fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (self.min.log10().round() as i32, self.max.log10().round() as i32);
            (a..=b).map(|e| 10f64.powi(e)).collect()
        } else {
            let step = nice_ceiling((self.max - self.min) / 5.0);
            (0..=10)
                .map(|i| self.min + step * f64::from(i))
                .take_while(|v| *v <= self.max + step * 1e-9)
                .collect()
        }
    }
}

/// The smallest of 1, 2, 5 × 10^k that is at least `x`.
fn nice_ceiling(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|v| *v >= x * (1.0 - 1e-12)).unwrap_or(10.0 * p)
}

/// One line of the chart.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Stroke colour.
    pub color: &'static str,
    /// Dashed line.
    pub dashed: bool,
    /// Points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Points drawn hollow (a failed measurement), by index.
    pub hollow: Vec<usize>,
}

/// A chart to render.
pub struct Chart<'a> {
    /// Heading.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// X axis.
    pub x: Axis,
    /// Y axis.
    pub y: Axis,
    /// Tick label of an x value.
    pub x_tick: &'a dyn Fn(f64) -> String,
    /// Tick label of a y value.
    pub y_tick: &'a dyn Fn(f64) -> String,
    /// The lines.
    pub series: Vec<Series>,
    /// A line of small print under the chart.
    pub note: String,
}

const W: f64 = 760.0;
const H: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 70.0;

/// Renders `chart` as a standalone SVG document.
pub fn render(chart: &Chart) -> String {
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |v: f64| LEFT + chart.x.frac(v) * pw;
    let py = |v: f64| TOP + (1.0 - chart.y.frac(v)) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="{W}" height="{H}" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        LEFT,
        xml(&chart.title)
    );
    for t in chart.x.ticks() {
        let x = px(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e0e0e0"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 16.0,
            xml(&(chart.x_tick)(t))
        );
    }
    for t in chart.y.ticks() {
        let y = py(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            xml(&(chart.y_tick)(t))
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT:.1}" y="{TOP:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#333333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        TOP + ph + 36.0,
        xml(&chart.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + ph / 2.0,
        xml(&chart.y_label)
    );
    for (i, series) in chart.series.iter().enumerate() {
        let dash = if series.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let path: Vec<String> =
            series.points.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
        if path.len() > 1 {
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                path.join(" "),
                series.color
            );
        }
        if series.points.len() < 40 {
            for (j, (x, y)) in series.points.iter().enumerate() {
                let fill = if series.hollow.contains(&j) { "#ffffff" } else { series.color };
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{fill}" stroke="{}"/>"#,
                    px(*x),
                    py(*y),
                    series.color
                );
            }
        }
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let lx = LEFT + pw + 14.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            series.color,
            lx + 30.0,
            ly + 4.0,
            xml(&series.name)
        );
    }
    if !chart.note.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="{LEFT:.1}" y="{:.1}" font-size="10" fill="#555555">{}</text>"##,
            H - 10.0,
            xml(&chart.note)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_and_rendering_are_stable() {
        let a = Axis::fit([3.0, 4500.0], true);
        assert_eq!((a.min, a.max), (1.0, 10_000.0));
        assert_eq!(a.ticks().len(), 5);
        let l = Axis::fit([0.0, 93.0], false);
        assert_eq!(l.max, 100.0);
        assert_eq!(Axis::fit([0.0, 218_000.0], false).max, 250_000.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        let fmt = |v: f64| format!("{v}");
        let chart = Chart {
            title: "t <1>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x: a,
            y: l,
            x_tick: &fmt,
            y_tick: &fmt,
            series: vec![Series {
                name: "s".into(),
                color: "#000000",
                dashed: true,
                points: vec![(3.0, 1.0), (4500.0, 93.0)],
                hollow: vec![1],
            }],
            note: String::new(),
        };
        let one = render(&chart);
        assert_eq!(one, render(&chart));
        assert!(one.starts_with("<svg") && one.ends_with("</svg>\n"));
        assert!(one.contains("t &lt;1&gt;") && one.contains("stroke-dasharray"));
    }
}
