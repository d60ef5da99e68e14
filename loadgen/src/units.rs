//! The quantities every part of loadgen spells the same way: payload sizes, durations, and
//! durations as nanoseconds on the run's clock.
//!
//! They live apart from [`config`](crate::config) because they are not settings: the chat
//! message format needs a [`SizeSpec`], the engine needs [`nanos`], and both are needed by the
//! code that [`config`](crate::config) itself checks. A leaf module that imports nothing from
//! the crate keeps those dependencies pointing one way.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// The largest payload the lab's servers accept by default, for both echo protocols.
pub const MAX_PAYLOAD: usize = 65_536;

/// Why a size or a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// A `--size` value that is neither `N` nor `A..B`.
    #[error("invalid size `{0}`: expected a byte count like `64` or a range like `16..4096`")]
    SizeSyntax(String),
    /// A size outside what the protocols allow.
    #[error("invalid size `{0}`: sizes must be between 1 and {MAX_PAYLOAD} bytes, low end first")]
    SizeRange(String),
    /// A duration that humantime could not read.
    #[error("invalid duration `{0}`: expected something like `500ms`, `10s` or `1m`")]
    Duration(String),
}

/// Payload sizes: one fixed size, or an inclusive range drawn per request from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SizeSpec {
    /// Smallest payload in bytes (framing excluded).
    pub min: usize,
    /// Largest payload in bytes (framing excluded), inclusive.
    pub max: usize,
}

impl SizeSpec {
    /// Every request carries exactly `n` payload bytes.
    pub fn fixed(n: usize) -> Self {
        SizeSpec { min: n, max: n }
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{} B", self.min)
        } else {
            write!(f, "{}..{} B", self.min, self.max)
        }
    }
}

impl FromStr for SizeSpec {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| UnitError::SizeSyntax(text.to_owned()));
        let spec = match text.split_once("..") {
            Some((low, high)) => SizeSpec {
                min: parse(low)?,
                // Accept the inclusive spelling `16..=4096` too; both mean "up to and including".
                max: parse(high.strip_prefix('=').unwrap_or(high))?,
            },
            None => SizeSpec::fixed(parse(text)?),
        };
        if spec.min == 0 || spec.min > spec.max || spec.max > MAX_PAYLOAD {
            return Err(UnitError::SizeRange(text.to_owned()));
        }
        Ok(spec)
    }
}

/// Reads `500ms`, `10s`, `1m`, `1m30s` (humantime's syntax); a bare `0` means zero.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim()).map_err(|_| UnitError::Duration(text.to_owned()))
}

/// A duration as nanoseconds on the run's clock, saturating (at about 584 years) rather than
/// wrapping, so an absurd `--duration` cannot turn into a short run.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_fixed_or_range() {
        assert_eq!("64".parse::<SizeSpec>(), Ok(SizeSpec::fixed(64)));
        assert_eq!("16..4096".parse::<SizeSpec>(), Ok(SizeSpec { min: 16, max: 4096 }));
        assert_eq!("16..=4096".parse::<SizeSpec>(), Ok(SizeSpec { min: 16, max: 4096 }));
    }

    #[test]
    fn bad_sizes_are_rejected_not_panicked_on() {
        for bad in ["", "x", "0", "10..5", "1..70000", "..", "-3", "1..2..3"] {
            assert!(bad.parse::<SizeSpec>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn durations_use_humantime() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn nanos_saturate_instead_of_wrapping() {
        assert_eq!(nanos(Duration::from_micros(50)), 50_000);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }
}
