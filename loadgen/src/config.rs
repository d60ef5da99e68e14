//! What one measurement should do, as plain typed values.
//!
//! [`RunConfig`] is deliberately free of any command-line parsing: the CLI, the suite and the
//! tests all build the same struct, so the engine has exactly one way in. The spelling of sizes
//! and durations is in [`units`](crate::units), shared with the code that uses them.
//! [`ProtocolKind`] derives clap's `ValueEnum`, so its command-line names and help are written
//! once, on the variants, rather than in a second enum in the CLI that must be kept in step.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::ValueEnum;
use serde::Serialize;

use crate::units::{MAX_PAYLOAD, SizeSpec};

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
///
/// The doc comment of each variant is also its line in `loadgen run --help`, and its name there
/// is clap's kebab-case of the variant, the same as serde's in the JSON report (a test checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolKind {
    /// Payload then `\n`, echoed back.
    EchoLine,
    /// 4-byte big-endian length then payload, echoed back.
    EchoFrame,
    /// Keep-alive `GET / HTTP/1.1` (pipelined with --depth above 1); every reply must be 200
    /// with the body `Hello, world!`. Takes no --size.
    Http,
    /// A group chat: --conns members, every line fanned out to all the others.
    Chat,
    /// Redis's RESP2: GET and SET, each connection on keys of its own (see --kv-get-ratio).
    Kv,
}

impl fmt::Display for ProtocolKind {
    /// The command-line name (`echo-line`), taken from clap's derive so the two cannot drift.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No variant is `#[value(skip)]`ped, so every one has a name.
        let value = self.to_possible_value();
        f.write_str(value.as_ref().map_or("unnamed", |v| v.get_name()))
    }
}

/// Why a configuration was rejected (a size or a duration that does not parse is a
/// [`UnitError`](crate::units::UnitError) instead, raised where the text is read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An inconsistent setting, with the reason.
    #[error("{0}")]
    Invalid(String),
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
    /// Open the idle connections before the working ones, so a server that serves clients in
    /// the order they came (one at a time, or a pool of workers) meets the silent ones first:
    /// the slowloris shape, and head-of-line blocking.
    pub idle_first: bool,
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
    /// Every request on a connection of its own (`--conn-per-request`): connect, send one
    /// request, read and check its reply, close, and start over; `conns` such loops run at
    /// once. What is measured is then mostly the cost of a new connection (see
    /// [`crate::engine::churn`]).
    pub conn_per_request: bool,
    /// Print a progress line on stderr once a second.
    #[serde(skip)]
    pub progress: bool,
    /// Print one line a second on stderr with the last second's replies, p50, p99 and errors
    /// (`--live`, for a projector; see [`crate::live`]).
    #[serde(skip)]
    pub live: bool,
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
            idle_first: false,
            timeout: Duration::from_secs(5),
            verify: true,
            spin: DEFAULT_SPIN,
            kv_get_ratio: DEFAULT_KV_GET_RATIO,
            kv_keys: DEFAULT_KV_KEYS,
            conn_per_request: false,
            progress: false,
            live: false,
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
        if self.conn_per_request {
            return self.validate_conn_per_request();
        }
        if self.protocol == ProtocolKind::Chat {
            return self.validate_chat();
        }
        Ok(())
    }

    /// What `--conn-per-request` needs beyond the rest (see [`crate::engine::churn`]).
    fn validate_conn_per_request(&self) -> Result<(), ConfigError> {
        let invalid = |why: &str| Err(ConfigError::Invalid(why.to_owned()));
        if !matches!(self.protocol, ProtocolKind::EchoLine | ProtocolKind::EchoFrame | ProtocolKind::Http) {
            return invalid(
                "--conn-per-request works with echo-line, echo-frame and http: kv and chat keep state \
                 across a connection's requests",
            );
        }
        if self.depth != 1 {
            return invalid("--conn-per-request sends one request per connection: --depth must be 1");
        }
        if self.pacing != Pacing::Closed {
            return invalid("--conn-per-request runs closed loop only: leave out --rate");
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
        if self.live {
            return invalid(
                "--live does not fit --proto chat: its lines count replies, and chat counts deliveries"
                    .into(),
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
    fn protocol_names_agree_between_clap_serde_and_display() {
        for kind in ProtocolKind::value_variants() {
            let clap_name = kind.to_possible_value().map(|v| v.get_name().to_owned());
            let serde_name = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned));
            assert_eq!(clap_name.as_deref(), Some(kind.to_string().as_str()));
            assert_eq!(serde_name.as_deref(), Some(kind.to_string().as_str()));
        }
        assert_eq!(ProtocolKind::EchoLine.to_string(), "echo-line");
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

    #[test]
    fn conn_per_request_fits_the_request_reply_protocols_closed_loop_at_depth_1() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        for proto in [ProtocolKind::EchoLine, ProtocolKind::EchoFrame, ProtocolKind::Http] {
            let mut cfg = RunConfig::new(addr, proto);
            cfg.conn_per_request = true;
            assert_eq!(cfg.validate(), Ok(()), "{proto}");
        }
        let mut cfg = RunConfig::new(addr, ProtocolKind::Kv);
        cfg.conn_per_request = true;
        assert!(cfg.validate().unwrap_err().to_string().contains("kv and chat"));
        let mut cfg = RunConfig::new(addr, ProtocolKind::EchoLine);
        cfg.conn_per_request = true;
        cfg.depth = 2;
        assert!(cfg.validate().unwrap_err().to_string().contains("--depth must be 1"));
        cfg.depth = 1;
        cfg.pacing = Pacing::Open { rate: 100.0 };
        assert!(cfg.validate().unwrap_err().to_string().contains("leave out --rate"));
    }
}
