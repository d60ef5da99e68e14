//! The columns a lesson may show. Most are the suite's own aggregates (medians over the
//! repetitions, see [`crate::aggregate`]); two more are read from loadgen's reports here,
//! because a lesson needs them and the suite's tables do not: the latency *from the send*
//! next to the one from the due time (coordinated omission), and the errors loadgen counted.

use crate::aggregate::Stat;
use crate::loadgen_doc::LoadgenDoc;
use crate::render::Row;
use crate::render::format::{kib, latency, sig3, thousands};

/// How a metric's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Per second, whole: `12,345`.
    PerSecond,
    /// Nanoseconds, shown in the readable unit: `12.3 µs`.
    Nanos,
    /// KiB, shown as KiB, MiB or GiB.
    Kib,
    /// A whole count.
    Count,
    /// A small ratio: three significant digits.
    Ratio,
    /// A share of the time: a percentage.
    Share,
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The name a lesson's matrix uses.
    pub name: &'static str,
    /// The column heading.
    pub heading: &'static str,
    /// How values are written.
    pub unit: Unit,
}

/// Every column a lesson may ask for.
pub const METRICS: [Metric; 16] = [
    Metric { name: "throughput", heading: "replies/s", unit: Unit::PerSecond },
    Metric { name: "p50", heading: "p50", unit: Unit::Nanos },
    Metric { name: "p99", heading: "p99", unit: Unit::Nanos },
    Metric { name: "p99.9", heading: "p99.9", unit: Unit::Nanos },
    Metric { name: "max", heading: "max", unit: Unit::Nanos },
    Metric { name: "p99_service", heading: "p99 from the send", unit: Unit::Nanos },
    Metric { name: "errors", heading: "errors", unit: Unit::Count },
    Metric { name: "rss_peak", heading: "peak RSS", unit: Unit::Kib },
    Metric { name: "pss_peak", heading: "peak PSS", unit: Unit::Kib },
    Metric { name: "threads_peak", heading: "threads", unit: Unit::Count },
    Metric { name: "processes_peak", heading: "processes", unit: Unit::Count },
    Metric { name: "switches_per_request", heading: "switches/reply", unit: Unit::Ratio },
    Metric { name: "server_cpu_per_request", heading: "server CPU/reply", unit: Unit::Nanos },
    Metric { name: "server_busy", heading: "server busy", unit: Unit::Share },
    Metric { name: "loadgen_busy", heading: "loadgen busy", unit: Unit::Share },
    Metric { name: "requested_rate", heading: "offered/s", unit: Unit::PerSecond },
];

/// The metric called `name`.
pub fn find(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// Loadgen's reports of a row's repetitions (those that wrote one).
fn docs<'a>(row: &'a Row) -> impl Iterator<Item = (&'a serde_json::Value, LoadgenDoc)> + 'a {
    row.point.repetitions.iter().filter_map(|rep| {
        let value = rep.loadgen.as_ref()?.report.as_ref()?;
        Some((value, LoadgenDoc::from_value(value).ok()?))
    })
}

/// Errors loadgen counted in one report: every counter but replies, warm-up replies, unsent
/// requests (a shortfall, not an error) and chat deliveries.
pub fn errors_in(report: &serde_json::Value) -> u64 {
    const NOT_ERRORS: [&str; 4] = ["requests", "warmup_requests", "unsent", "deliveries"];
    report
        .get("counts")
        .and_then(|c| c.as_object())
        .map(|counts| {
            counts
                .iter()
                .filter(|(k, _)| !NOT_ERRORS.contains(&k.as_str()))
                .filter_map(|(_, v)| v.as_u64())
                .sum()
        })
        .unwrap_or(0)
}

/// The median (with spread) of `metric` over a row's repetitions; `None` where not measured.
pub fn value(metric: &Metric, row: &Row) -> Option<Stat> {
    match metric.name {
        "p99_service" => {
            let v: Vec<f64> = docs(row)
                .filter_map(|(_, d)| d.percentiles.service_time.filter(|p| p.count > 0).map(|p| p.p99 as f64))
                .collect();
            Stat::of(&v)
        }
        "errors" => Stat::of(&docs(row).map(|(v, _)| errors_in(v) as f64).collect::<Vec<_>>()),
        "requested_rate" => Stat::of(&docs(row).filter_map(|(_, d)| d.requested_rate).collect::<Vec<_>>()),
        name => row.summary.get(name),
    }
}

/// `x` written in `unit`.
pub fn format(unit: Unit, x: f64) -> String {
    match unit {
        Unit::PerSecond | Unit::Count => thousands(x),
        Unit::Nanos => latency(x),
        Unit::Kib => kib(x),
        Unit::Ratio => sig3(x),
        Unit::Share => format!("{:.0}%", x * 100.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_leave_out_replies_and_shortfalls() {
        let report = serde_json::json!({"counts": {"requests": 100, "warmup_requests": 9, "unsent": 7,
            "timeouts": 2, "resets": 1, "deliveries": 50}});
        assert_eq!(errors_in(&report), 3);
        assert_eq!(errors_in(&serde_json::json!({})), 0);
    }

    #[test]
    fn units_are_written_as_the_suite_writes_them() {
        assert_eq!(format(Unit::PerSecond, 12345.4), "12,345");
        assert_eq!(format(Unit::Nanos, 12_300.0), "12.3 µs");
        assert_eq!(format(Unit::Share, 0.984), "98%");
    }
}
