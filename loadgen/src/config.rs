//! What one measurement should do, as plain typed values.
//!
//! [`RunConfig`] is deliberately free of any command-line parsing: the CLI, the suite and the
//! tests all build the same struct, so the engine has exactly one way in. Parsing helpers for the
//! two textual knobs that need care (message sizes and durations) live here too, because every
//! front end wants the same spelling of them.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// The largest payload the lab's servers accept by default, for both echo protocols.
pub const MAX_PAYLOAD: usize = 65_536;

/// `kv`: the default share of requests that are `GET`s. Caches are read far more than
/// written; 0.9 is between redis-benchmark's even split and YCSB's read-mostly workload B (0.95).
pub const DEFAULT_KV_GET_RATIO: f64 = 0.9;

/// `kv`: the default number of keys over all connections.
pub const DEFAULT_KV_KEYS: u64 = 10_000;

/// Open loop: spin for sends due sooner than this instead of sleeping (see `engine::waiter`).
/// Long enough to cover the gaps between sends at the rates where sleeping costs the most CPU
/// and punctuality (20,000 req/s and up: 50 µs apart), short enough that a slow run mostly sleeps.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// `kv`: the most keys a run may use; loadgen remembers 8 bytes per key.
pub const MAX_KV_KEYS: u64 = 10_000_000;

/// Which wire protocol to speak; each one has a client side in [`crate::proto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolKind {
    /// Payload bytes followed by `\n`, echoed verbatim.
    EchoLine,
    /// A 4-byte big-endian length followed by that many payload bytes, echoed verbatim.
    EchoFrame,
    /// Keep-alive `GET / HTTP/1.1`; every reply must be `200` with the body `Hello, world!`.
    Http,
    /// A group chat: every line a member says reaches every other member (see [`crate::chat`]).
    Chat,
    /// Redis's RESP2: `GET` and `SET` of keys each connection owns, every reply checked.
    Kv,
}

impl ProtocolKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::EchoLine => "echo-line",
            ProtocolKind::EchoFrame => "echo-frame",
            ProtocolKind::Http => "http",
            ProtocolKind::Chat => "chat",
            ProtocolKind::Kv => "kv",
        }
    }
}

impl fmt::Display for ProtocolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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

/// Why a size spec or a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A `--size` value that is neither `N` nor `A..B`.
    #[error("invalid size `{0}`: expected a byte count like `64` or a range like `16..4096`")]
    SizeSyntax(String),
    /// A size outside what the protocols allow.
    #[error("invalid size `{0}`: sizes must be between 1 and {MAX_PAYLOAD} bytes, low end first")]
    SizeRange(String),
    /// A duration that humantime could not read.
    #[error("invalid duration `{0}`: expected something like `500ms`, `10s` or `1m`")]
    Duration(String),
    /// Any other inconsistent setting, with the reason.
    #[error("{0}")]
    Invalid(String),
}

impl FromStr for SizeSpec {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| ConfigError::SizeSyntax(text.to_owned()));
        let spec = match text.split_once("..") {
            Some((low, high)) => SizeSpec {
                min: parse(low)?,
                // Accept the inclusive spelling `16..=4096` too; both mean "up to and including".
                max: parse(high.strip_prefix('=').unwrap_or(high))?,
            },
            None => SizeSpec::fixed(parse(text)?),
        };
        if spec.min == 0 || spec.min > spec.max || spec.max > MAX_PAYLOAD {
            return Err(ConfigError::SizeRange(text.to_owned()));
        }
        Ok(spec)
    }
}

/// Reads `500ms`, `10s`, `1m`, `1m30s` (humantime's syntax); a bare `0` means zero.
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim()).map_err(|_| ConfigError::Duration(text.to_owned()))
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Pacing {
    /// Each connection keeps `depth` requests in flight and sends the next one as soon as a
    /// response arrives: measures what the server can do, but hides stalls (coordinated omission).
    Closed,
    /// Requests leave on a fixed timetable of `rate` per second over all connections, and latency
    /// counts from the *scheduled* time, so a stall shows up in the figures.
    Open {
        /// Requests per second, summed over all connections.
        rate: f64,
    },
}

/// Everything one `loadgen run` needs. Build it with [`RunConfig::new`] and adjust the fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunConfig {
    /// The server to measure.
    pub addr: SocketAddr,
    /// The protocol it speaks.
    pub protocol: ProtocolKind,
    /// Connections that carry requests.
    pub conns: usize,
    /// Event-loop threads; connections are dealt out round-robin.
    pub threads: usize,
    /// Requests in flight per connection (pipelining when above 1); in open loop the most a
    /// connection may have outstanding while catching up with its timetable.
    pub depth: usize,
    /// Closed or open loop.
    pub pacing: Pacing,
    /// Time spent loading the server before anything is recorded.
    #[serde(serialize_with = "as_seconds")]
    pub warmup: Duration,
    /// The measured interval.
    #[serde(serialize_with = "as_seconds")]
    pub duration: Duration,
    /// Payload sizes.
    pub size: SizeSpec,
    /// Seed for payload bytes and sizes, so a run can be repeated byte for byte.
    pub seed: u64,
    /// Extra connections opened before the run and held open, never sending (the C10K shape).
    pub idle_conns: usize,
    /// How long a request may go unanswered before its connection is given up.
    #[serde(serialize_with = "as_seconds")]
    pub timeout: Duration,
    /// Check every response byte for byte and record latencies; off only to calibrate the cost.
    pub verify: bool,
    /// Open loop: sends due sooner than this are waited for by spinning rather than sleeping
    /// (see `engine::waiter`); zero never spins. Closed loop never spins.
    #[serde(serialize_with = "as_seconds")]
    pub spin: Duration,
    /// `kv`: the share of requests that are `GET`s (the rest are `SET`s), from 0 to 1.
    pub kv_get_ratio: f64,
    /// `kv`: keys over all connections; each connection owns `kv_keys / conns` of them.
    pub kv_keys: u64,
    /// Print a progress line on stderr once a second.
    #[serde(skip)]
    pub progress: bool,
    /// Print `loadgen: measuring` and `loadgen: measured` on stderr at the measured phase's
    /// boundaries, so a script sampling the server can bracket exactly that phase.
    #[serde(skip)]
    pub phase_markers: bool,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl RunConfig {
    /// The defaults of `loadgen run`: one thread, one connection, depth 1, closed loop,
    /// 1 s warm-up, 10 s measured, 64-byte payloads, 5 s timeout, verification on, spinning for
    /// deadlines under [`DEFAULT_SPIN`].
    pub fn new(addr: SocketAddr, protocol: ProtocolKind) -> Self {
        RunConfig {
            addr,
            protocol,
            conns: 1,
            threads: 1,
            depth: 1,
            pacing: Pacing::Closed,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            size: SizeSpec::fixed(64),
            seed: 1,
            idle_conns: 0,
            timeout: Duration::from_secs(5),
            verify: true,
            spin: DEFAULT_SPIN,
            kv_get_ratio: DEFAULT_KV_GET_RATIO,
            kv_keys: DEFAULT_KV_KEYS,
            progress: false,
            phase_markers: false,
        }
    }

    /// Rejects settings that cannot describe a sensible run, with a reason a user can act on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |why: &str| Err(ConfigError::Invalid(why.to_owned()));
        if self.conns == 0 {
            return invalid("--conns must be at least 1");
        }
        if self.threads == 0 {
            return invalid("--threads must be at least 1");
        }
        if self.threads > self.conns {
            return invalid("--threads must not exceed --conns (a thread without connections would idle)");
        }
        if self.depth == 0 {
            return invalid("--depth must be at least 1");
        }
        if self.duration.is_zero() {
            return invalid("--duration must be longer than zero");
        }
        if self.timeout.is_zero() {
            return invalid("--timeout must be longer than zero");
        }
        if self.size.min == 0 || self.size.min > self.size.max || self.size.max > MAX_PAYLOAD {
            return invalid("--size must lie between 1 and 65536 bytes");
        }
        if let Pacing::Open { rate } = self.pacing {
            if !(rate.is_finite() && rate > 0.0) {
                return invalid("--rate must be a positive number of requests per second");
            }
        }
        if self.protocol == ProtocolKind::Kv {
            if !(0.0..=1.0).contains(&self.kv_get_ratio) {
                return invalid("--kv-get-ratio must lie between 0 and 1");
            }
            if self.kv_keys < self.conns as u64 {
                return invalid("--kv-keys must be at least --conns: each connection owns keys of its own");
            }
            if self.kv_keys > MAX_KV_KEYS {
                return invalid("--kv-keys must be at most 10000000");
            }
        }
        if self.protocol == ProtocolKind::Chat {
            return self.validate_chat();
        }
        Ok(())
    }

    /// What chat mode needs beyond the rest (see [`crate::chat`]).
    fn validate_chat(&self) -> Result<(), ConfigError> {
        let invalid = |why: String| Err(ConfigError::Invalid(why));
        if self.conns < 2 {
            return invalid("--proto chat needs --conns 2 or more: a room of one hears nothing".into());
        }
        if self.threads != 1 {
            return invalid(
                "--proto chat runs on one thread (--threads 1), so every latency uses one clock".into(),
            );
        }
        if self.idle_conns > 0 {
            return invalid(
                "--idle-conns does not fit --proto chat: an idle member is dropped as too slow".into(),
            );
        }
        if !self.verify {
            return invalid(
                "--no-verify does not fit --proto chat: counting deliveries is checking them".into(),
            );
        }
        let header = crate::chat::message::HEADER_LEN;
        if self.size.min < header {
            return invalid(format!(
                "--proto chat needs --size of at least {header} bytes (sender, sequence number, send time)"
            ));
        }
        Ok(())
    }
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
    fn validation_names_the_problem() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut cfg = RunConfig::new(addr, ProtocolKind::EchoLine);
        assert_eq!(cfg.validate(), Ok(()));
        cfg.threads = 2;
        assert!(cfg.validate().unwrap_err().to_string().contains("--threads"));
        cfg.threads = 1;
        cfg.pacing = Pacing::Open { rate: f64::NAN };
        assert!(cfg.validate().unwrap_err().to_string().contains("--rate"));
    }
}
