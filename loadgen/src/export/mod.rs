//! One exporter per output format, each a pure function from a [`RunReport`](crate::RunReport)
//! to text, with a small test of its own.
//!
//! - [`text`]: the human summary table.
//! - [`json`]: the versioned machine-readable document (`--json`).
//! - [`hgrm`]: HdrHistogram's percentile-distribution text (`--hgrm`), for the usual plotters.

pub mod hgrm;
pub mod json;
pub mod text;

/// Formats nanoseconds with a unit that keeps three or four significant digits: `812 ns`,
/// `12.3 µs`, `4.56 ms`, `1.20 s`.
pub fn human_ns(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", v / 1e6)
    } else {
        format!("{:.2} s", v / 1e9)
    }
}

/// Formats a count with thousands separators: `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_grouping() {
        assert_eq!(human_ns(812), "812 ns");
        assert_eq!(human_ns(12_345), "12.3 µs");
        assert_eq!(human_ns(4_560_000), "4.56 ms");
        assert_eq!(human_ns(1_200_000_000), "1.20 s");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(100), "100");
    }
}
