//! `--hgrm FILE`: the percentile distribution as HdrHistogram's `outputPercentileDistribution`
//! prints it, so the usual plotters (HdrHistogram's plotFiles.html, hdr-plot and friends) read it.
//!
//! Values are in milliseconds. The layout is copied column for column from the reference Java
//! implementation: a header line, a blank line, one row per percentile step (five steps per
//! halving of the distance to 100%), the final row without the `1/(1-Percentile)` column, and a
//! three-line footer.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use hdrhistogram::Histogram;

/// Nanoseconds per millisecond: histograms are recorded in ns, `.hgrm` files speak ms.
const NS_PER_MS: f64 = 1e6;

/// Percentile steps per halving of the remaining distance, as in the reference output.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Renders `hist` (recorded in nanoseconds) as `.hgrm` text in milliseconds.
pub fn percentile_distribution(hist: &Histogram<u64>) -> String {
    let decimals = usize::from(hist.sigfig());
    let scale = NS_PER_MS;
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if hist.is_empty() {
        // The reference prints no rows for an empty histogram, only the footer.
    } else {
        let mut total = 0u64;
        for step in hist.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / scale;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.decimals$} {quantile:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - quantile)
                );
            } else {
                let _ = writeln!(out, "{value:12.decimals$} {quantile:2.12} {total:10}");
            }
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.decimals$}, StdDeviation   = {:12.decimals$}]",
        hist.mean() / scale,
        hist.stdev() / scale
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.decimals$}, Total count    = {:12}]",
        hist.max() as f64 / scale,
        hist.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        hist.buckets(),
        sub_bucket_count(hist.sigfig())
    );
    out
}

/// Writes the distribution of `hist` to `path`.
pub fn write(hist: &Histogram<u64>, path: &Path) -> io::Result<()> {
    std::fs::write(path, percentile_distribution(hist))
}

/// Sub-buckets per bucket, as HdrHistogram derives it from the significant digits: the smallest
/// power of two that resolves `2 * 10^digits` distinct values. (The crate does not expose it.)
fn sub_bucket_count(significant_digits: u8) -> u64 {
    let single_unit_resolution = 2 * 10u64.pow(u32::from(significant_digits));
    single_unit_resolution.next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::histogram::latency_histogram;

    #[test]
    fn layout_matches_the_reference_format() {
        let mut hist = latency_histogram();
        for ms in 1..=100u64 {
            hist.record(ms * 1_000_000).unwrap();
        }
        let text = percentile_distribution(&hist);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "       Value     Percentile TotalCount 1/(1-Percentile)");
        assert_eq!(lines[1], "");
        assert_eq!(lines[2], "       1.000 0.000000000000          1           1.00");
        let last_row = lines[lines.len() - 4];
        assert!(last_row.starts_with("     100."), "{last_row}");
        assert!(last_row.ends_with(" 1.000000000000        100"), "{last_row}");
        assert!(lines[lines.len() - 3].starts_with("#[Mean    =       50.4"), "{text}");
        assert!(lines[lines.len() - 2].ends_with("Total count    =          100]"), "{text}");
        assert!(lines[lines.len() - 1].ends_with("SubBuckets     =         2048]"), "{text}");
        // Every data row parses as numbers, as plotters expect.
        for row in &lines[2..lines.len() - 3] {
            let fields: Vec<&str> = row.split_whitespace().collect();
            assert!(fields.len() == 3 || fields.len() == 4, "{row}");
            for f in fields {
                f.parse::<f64>().unwrap();
            }
        }
    }

    #[test]
    fn empty_histogram_has_only_header_and_footer() {
        let text = percentile_distribution(&latency_histogram());
        assert_eq!(text.lines().count(), 5);
    }
}
