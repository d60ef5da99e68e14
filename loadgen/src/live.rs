//! `--live`: one line a second for a projector, while the run goes on.
//!
//! The workers already keep everything in their own histograms, which are merged only at the
//! end; a live line needs the *last second* across all of them. So with `--live` each worker's
//! tally also records every reply into one shared [`LiveWindow`] (a mutex around a histogram:
//! with one or two loadgen threads it is almost never contended, and without `--live` it does
//! not exist), and the main thread, which only watches the clock, takes and empties it once a
//! second. The final report is computed as always, from the workers' own tallies.
//!
//! The lines go to stderr, so stdout keeps exactly the report it has without `--live`:
//!
//! ```text
//! live    1.0 s  warm-up     41,230 replies/s  p50   23.1 µs  p99   61.2 µs  errors 0
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

use crate::engine::histogram::latency_histogram;

/// What the workers have recorded since the last line.
#[derive(Debug)]
pub struct LiveWindow {
    /// Latencies of the replies since the last line, nanoseconds.
    latencies: Mutex<Histogram<u64>>,
    /// Connections lost and replies that were wrong, since the last line.
    errors: AtomicU64,
}

/// One second's figures, taken from the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Second {
    /// Replies in the interval.
    pub replies: u64,
    /// Errors in the interval.
    pub errors: u64,
    /// Median latency, ns (0 without replies).
    pub p50_ns: u64,
    /// 99th percentile latency, ns (0 without replies).
    pub p99_ns: u64,
}

impl Default for LiveWindow {
    fn default() -> Self {
        LiveWindow { latencies: Mutex::new(latency_histogram()), errors: AtomicU64::new(0) }
    }
}

impl LiveWindow {
    /// Records one reply's latency.
    pub fn record(&self, latency_ns: u64) {
        // A worker that panicked while holding the lock left a histogram that is still a
        // histogram: keep using it rather than losing the live view.
        let mut h = self.latencies.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        h.saturating_record(latency_ns);
    }

    /// Counts one error (a lost connection or a wrong reply).
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes what was recorded since the last call, and starts the next interval empty.
    pub fn take(&self) -> Second {
        let mut h = self.latencies.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let replies = h.len();
        let (p50_ns, p99_ns) =
            if replies > 0 { (h.value_at_quantile(0.5), h.value_at_quantile(0.99)) } else { (0, 0) };
        h.reset();
        drop(h);
        Second { replies, errors: self.errors.swap(0, Ordering::Relaxed), p50_ns, p99_ns }
    }
}

/// A latency in a fixed width: `850 ns`, `23.1 µs`, `1.20 ms`, `2.50 s`.
fn latency(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A whole number with thousands separators: `41,230`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The line for `second`, measured over `interval_s` seconds ending `at_s` after the start.
pub fn line(at_s: f64, warmup: bool, second: &Second, interval_s: f64) -> String {
    let rate = if interval_s > 0.0 { second.replies as f64 / interval_s } else { 0.0 };
    let phase = if warmup { "warm-up" } else { "measuring" };
    let (p50, p99) = if second.replies > 0 {
        (latency(second.p50_ns), latency(second.p99_ns))
    } else {
        ("–".to_owned(), "–".to_owned())
    };
    format!(
        "live {at_s:6.1} s  {phase:<9} {:>10} replies/s  p50 {p50:>9}  p99 {p99:>9}  errors {}",
        thousands(rate.round() as u64),
        second.errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_gives_the_last_interval_and_starts_again_empty() {
        let w = LiveWindow::default();
        for ns in [10_000, 20_000, 30_000, 1_000_000] {
            w.record(ns);
        }
        w.error();
        let s = w.take();
        assert_eq!((s.replies, s.errors), (4, 1));
        assert!((19_000..=21_000).contains(&s.p50_ns), "{s:?}");
        assert!(s.p99_ns >= 990_000, "{s:?}");
        assert_eq!(w.take(), Second { replies: 0, errors: 0, p50_ns: 0, p99_ns: 0 });
    }

    #[test]
    fn lines_say_rate_percentiles_and_errors() {
        let s = Second { replies: 2_000, errors: 3, p50_ns: 23_100, p99_ns: 1_200_000 };
        let l = line(2.0, false, &s, 0.5);
        assert!(l.starts_with("live    2.0 s  measuring"), "{l}");
        assert!(
            l.contains("4,000 replies/s") && l.contains("p50   23.1 µs") && l.contains("p99   1.20 ms"),
            "{l}"
        );
        assert!(l.ends_with("errors 3"), "{l}");
        let quiet = line(1.0, true, &Second { replies: 0, errors: 0, p50_ns: 0, p99_ns: 0 }, 1.0);
        assert!(quiet.contains("warm-up") && quiet.contains("p50         –"), "{quiet}");
    }
}
