//! The one shape of latency histogram every part of loadgen records into: the worker threads'
//! tallies, the `--live` window and the exporters' tests. One shape, so that merging is exact.

use hdrhistogram::Histogram;

/// Highest latency a histogram holds: one hour in nanoseconds. Anything slower is clamped (and
/// long since a timeout).
pub const HIGHEST_NS: u64 = 3_600_000_000_000;

/// Significant decimal digits kept per value: 0.1% resolution, the HdrHistogram default.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// An empty latency histogram in nanoseconds, with the bounds every thread shares (so that
/// merging is always exact).
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that HdrHistogram accepts, so this cannot fail at run time.
    Histogram::new_with_bounds(1, HIGHEST_NS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}
