//! From repetitions to one row: the median and the min–max spread of each metric, a noisy
//! flag, and the repetitions' histograms added together.
//!
//! The median is the *lower* median (the middle value of an odd count, the lower of the two
//! middle values of an even one), so every reported figure is one that was actually measured.
//! Percentiles are never averaged: each repetition's own percentiles give its value, and the
//! merged histogram (the sum of all repetitions' histograms) gives the spectrum plots.

use hdrhistogram::Histogram;

use crate::loadgen_doc::LoadgenDoc;
use crate::models::Unavailable;
use crate::results::{PointResult, Repetition};

/// A point is noisy when a metric's spread (max − min) exceeds this share of its median.
pub const NOISY_SPREAD: f64 = 0.10;

/// One metric over the repetitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Lower median.
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Spread above [`NOISY_SPREAD`] of the median.
    pub noisy: bool,
}

impl Stat {
    /// Summarises `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Stat> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let median = v[(v.len() - 1) / 2];
        let (min, max) = (v[0], v[v.len() - 1]);
        Some(Stat { median, min, max, noisy: max - min > NOISY_SPREAD * median.abs() })
    }
}

/// The metrics of a table row. The first [`FIRST_METRICS`] are in every results.csv; the rest
/// came with process-tree sampling and appear only where a run measured them, so older runs
/// render as they did.
pub const METRICS: [(&str, &str); 13] = [
    ("throughput", "req/s"),
    ("p50", "ns"),
    ("p99", "ns"),
    ("p99.9", "ns"),
    ("max", "ns"),
    ("rss_peak", "KiB"),
    ("threads_peak", "threads"),
    ("switches_per_request", "switches"),
    ("server_cpu_per_request", "ns"),
    ("loadgen_busy", "share"),
    ("server_busy", "share"),
    ("pss_peak", "KiB"),
    ("processes_peak", "processes"),
];

/// How many of [`METRICS`] every results.csv has had from the start.
pub const FIRST_METRICS: usize = 11;

/// Busy this share of the time or more, a process had no time to spare on the CPUs it was
/// pinned to: it was setting the pace.
pub const SATURATED: f64 = 0.9;

/// A point, summarised.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Repetitions run.
    pub reps: usize,
    /// Repetitions with no failure.
    pub ok_reps: usize,
    /// Distinct failures, in the order first seen.
    pub failures: Vec<String>,
    /// One entry per [`METRICS`] name, in that order.
    pub stats: Vec<Option<Stat>>,
    /// Open loop: a repetition fell short of the requested rate.
    pub fell_short: bool,
    /// The headline histograms of every repetition, added.
    pub merged: Option<Histogram<u64>>,
    /// The model cannot run this point here (its server said so): neither ok nor failed.
    pub unavailable: Option<Unavailable>,
    /// Processes of the server's tree ended inside a repetition's window, so its context
    /// switches are a lower bound (an ended process takes its counts with it).
    pub switches_partial: bool,
}

impl Summary {
    /// The stat of metric `name`.
    pub fn get(&self, name: &str) -> Option<Stat> {
        METRICS.iter().position(|(n, _)| *n == name).and_then(|i| self.stats[i])
    }

    /// True when every repetition ran clean.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.reps > 0 && self.unavailable.is_none()
    }

    /// True when something went wrong: not clean, and not declined by the model.
    pub fn failed(&self) -> bool {
        !self.ok() && self.unavailable.is_none()
    }

    /// loadgen, not the server, set the pace: loadgen was saturated (its median busy share is
    /// over the bar) while the server had time to spare. The server could go faster than shown.
    pub fn loadgen_bound(&self) -> bool {
        let busy = |name| self.get(name).map(|s| s.median);
        busy("loadgen_busy").is_some_and(|l| l >= SATURATED)
            && busy("server_busy").is_some_and(|s| s < SATURATED)
    }

    /// Names of noisy metrics.
    pub fn noisy(&self) -> Vec<&'static str> {
        METRICS
            .iter()
            .zip(&self.stats)
            .filter(|(_, s)| s.is_some_and(|s| s.noisy))
            .map(|((n, _), _)| *n)
            .collect()
    }
}

/// The values of each metric for one repetition (`None` where it was not measured).
fn metrics_of(rep: &Repetition, doc: Option<&LoadgenDoc>) -> [Option<f64>; METRICS.len()] {
    let mut m = [None; METRICS.len()];
    if let Some(s) = &rep.samples {
        // Memory and threads mean something even when loadgen wrote no report.
        m[5] = Some(s.rss_peak_kib as f64);
        m[6] = Some(s.threads_peak as f64);
        m[11] = s.pss_peak_kib.map(|k| k as f64);
        m[12] = s.processes_peak.map(|n| n as f64);
    }
    let Some(doc) = doc else { return m };
    let requests = doc.counts.requests as f64;
    m[0] = Some(doc.achieved_rate);
    m[9] = Some(doc.cpu.busy()).filter(|s| *s > 0.0);
    if let Some(p) = doc.headline().filter(|p| p.count > 0) {
        m[1] = Some(p.p50 as f64);
        m[2] = Some(p.p99 as f64);
        m[3] = Some(p.p99_9 as f64);
        m[4] = Some(p.max as f64);
    }
    if let Some(s) = &rep.samples {
        // Over the whole loadgen run the window also holds the warm-up's replies.
        let replies = if s.window == "measured-phase" {
            requests
        } else {
            requests + doc.counts.warmup_requests as f64
        };
        if s.window_seconds > 0.0 {
            // A share of the CPUs it was pinned to, so 100% means all of them were busy.
            let cpus = rep.server.cpus.len().max(1) as f64;
            m[10] = Some((s.cpu_user_seconds + s.cpu_system_seconds) / s.window_seconds / cpus);
        }
        if replies > 0.0 {
            m[7] = Some((s.voluntary_switches + s.involuntary_switches) as f64 / replies);
            m[8] = Some((s.cpu_user_seconds + s.cpu_system_seconds) * 1e9 / replies);
        }
    }
    m
}

/// Summarises one point.
pub fn summarise(point: &PointResult) -> Summary {
    let mut failures: Vec<String> = Vec::new();
    if let Some(why) = &point.not_run {
        failures.push(why.clone());
    }
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); METRICS.len()];
    let mut merged: Option<Histogram<u64>> = None;
    let mut fell_short = false;
    let switches_partial = point
        .repetitions
        .iter()
        .filter_map(|r| r.samples.as_ref()?.reaped_cpu_seconds)
        .any(|reaped| reaped > 0.0);
    for rep in &point.repetitions {
        for f in &rep.failures {
            if !failures.contains(f) {
                failures.push(f.clone());
            }
        }
        let doc =
            rep.loadgen.as_ref().and_then(|l| l.report.as_ref()).and_then(|v| LoadgenDoc::from_value(v).ok());
        if let Some(doc) = &doc {
            fell_short |= doc.fell_short;
            if let Ok(Some(h)) = doc.headline_histogram() {
                match &mut merged {
                    None => merged = Some(h),
                    Some(m) => {
                        if m.add(&h).is_err() {
                            failures.push("histograms of different ranges cannot be merged".into());
                        }
                    }
                }
            }
        }
        for (col, v) in columns.iter_mut().zip(metrics_of(rep, doc.as_ref())) {
            col.extend(v);
        }
    }
    Summary {
        reps: point.repetitions.len(),
        ok_reps: point.repetitions.iter().filter(|r| r.ok()).count(),
        failures,
        stats: columns.iter().map(|c| Stat::of(c)).collect(),
        fell_short,
        merged,
        unavailable: point.unavailable.clone(),
        switches_partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_busy(loadgen: Option<f64>, server: Option<f64>) -> Summary {
        let mut stats = vec![None; METRICS.len()];
        let at = |name| METRICS.iter().position(|(n, _)| *n == name).unwrap();
        stats[at("loadgen_busy")] = loadgen.and_then(|v| Stat::of(&[v]));
        stats[at("server_busy")] = server.and_then(|v| Stat::of(&[v]));
        Summary {
            reps: 1,
            ok_reps: 1,
            failures: vec![],
            stats,
            fell_short: false,
            merged: None,
            unavailable: None,
            switches_partial: false,
        }
    }

    #[test]
    fn loadgen_bound_only_when_loadgen_is_saturated_and_the_server_is_not() {
        assert!(with_busy(Some(0.97), Some(0.60)).loadgen_bound());
        assert!(!with_busy(Some(0.97), Some(0.99)).loadgen_bound(), "both busy: the machine's limit");
        assert!(!with_busy(Some(0.50), Some(0.99)).loadgen_bound(), "the server set the pace");
        assert!(!with_busy(None, Some(0.5)).loadgen_bound(), "unmeasured is not a verdict");
        assert!(!with_busy(Some(0.95), None).loadgen_bound());
    }

    #[test]
    fn lower_median_spread_and_noise() {
        let s = Stat::of(&[100.0, 104.0, 98.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.noisy), (100.0, 98.0, 104.0, false));
        let s = Stat::of(&[100.0, 120.0]).unwrap();
        assert_eq!(s.median, 100.0);
        assert!(s.noisy, "a 20% spread is noisy");
        assert!(!Stat::of(&[100.0, 110.0]).unwrap().noisy, "exactly 10% is not");
        assert_eq!(Stat::of(&[]), None);
        assert_eq!(Stat::of(&[f64::NAN]), None);
    }
}
