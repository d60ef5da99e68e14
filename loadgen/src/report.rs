//! What a run found: counts, rates, latency histograms and loadgen's own CPU use.
//!
//! The report keeps the full histograms, not just percentiles, so that exporters can write the
//! percentile spectrum or the raw HdrHistogram and a later step can merge runs by adding
//! histograms (averaging percentiles is meaningless).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::{Pacing, RunConfig};
use crate::sys::CpuTime;

/// Everything that was counted. A field is an error unless its doc says otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Replies to requests of the measured phase (not an error; mismatches included).
    pub requests: u64,
    /// Replies to warm-up requests, counted but not recorded (not an error).
    pub warmup_requests: u64,
    /// Replies that were well framed but not byte for byte the expected ones.
    pub mismatches: u64,
    /// Replies that could not be parsed at all; their connection was dropped.
    pub malformed: u64,
    /// Connections the server closed in the middle of a reply.
    pub short_reads: u64,
    /// Connections the server closed while requests were still unanswered.
    pub unexpected_eof: u64,
    /// Connections reset (ECONNRESET, EPIPE, ECONNABORTED).
    pub resets: u64,
    /// Connections lost to any other socket error.
    pub io_errors: u64,
    /// Connections given up because a request went unanswered for `--timeout`.
    pub timeouts: u64,
    /// Connections that could not be opened (after the first, which aborts the run).
    pub connect_errors: u64,
    /// Idle connections the server closed while they were held.
    pub idle_closed: u64,
    /// Open loop: measured-phase requests that were due but never sent because the server
    /// (or loadgen) fell behind. Not an error, a shortfall: see [`RunReport::achieved_fraction`].
    pub unsent: u64,
    /// Chat: deliveries of measured messages, each one a fan-out latency recorded (not an error).
    pub deliveries: u64,
    /// Chat: deliveries that never arrived (a later message from the same sender came first, or
    /// nothing came within the timeout).
    pub missing: u64,
    /// Chat: messages delivered twice to one member, or back to their sender.
    pub duplicates: u64,
}

impl Counts {
    /// Adds `other` field by field.
    pub fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.warmup_requests += other.warmup_requests;
        self.mismatches += other.mismatches;
        self.malformed += other.malformed;
        self.short_reads += other.short_reads;
        self.unexpected_eof += other.unexpected_eof;
        self.resets += other.resets;
        self.io_errors += other.io_errors;
        self.timeouts += other.timeouts;
        self.connect_errors += other.connect_errors;
        self.idle_closed += other.idle_closed;
        self.unsent += other.unsent;
        self.deliveries += other.deliveries;
        self.missing += other.missing;
        self.duplicates += other.duplicates;
    }

    /// Each error counter with its name in the summary, in a fixed order.
    pub fn errors(&self) -> [(&'static str, u64); 11] {
        [
            ("mismatched replies", self.mismatches),
            ("malformed replies", self.malformed),
            ("short reads", self.short_reads),
            ("unexpected EOFs", self.unexpected_eof),
            ("resets", self.resets),
            ("other socket errors", self.io_errors),
            ("timeouts", self.timeouts),
            ("connect errors", self.connect_errors),
            ("idle connections closed", self.idle_closed),
            ("missing deliveries", self.missing),
            ("duplicate deliveries", self.duplicates),
        ]
    }

    /// True when no error of any kind was counted.
    pub fn is_clean(&self) -> bool {
        self.errors().iter().all(|(_, n)| *n == 0)
    }
}

/// `--conn-per-request`: how the new connections went. Every failed connect is also counted in
/// [`Counts::connect_errors`] (so it decides the exit status); here it is sorted by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Connects {
    /// Connections established for requests of the measured phase (not an error).
    pub opened: u64,
    /// Connects refused (`ECONNREFUSED`: nothing listening, or the server's backlog said no).
    pub refused: u64,
    /// Connects not established within `--timeout` (a full listen backlog drops the SYN, and
    /// the client retries it after 1 s, 3 s, …).
    pub timed_out: u64,
    /// Connects that found no free local port (`EADDRNOTAVAIL`): loadgen's ephemeral ports
    /// were all in use or in TIME_WAIT (see [`crate::ports`]).
    pub no_local_port: u64,
    /// Connects that failed in any other way.
    pub other: u64,
}

impl Connects {
    /// Adds `other` field by field.
    pub fn add(&mut self, other: &Connects) {
        self.opened += other.opened;
        self.refused += other.refused;
        self.timed_out += other.timed_out;
        self.no_local_port += other.no_local_port;
        self.other += other.other;
    }

    /// Each cause of failure with its name in the summary.
    pub fn errors(&self) -> [(&'static str, u64); 4] {
        [
            ("refused", self.refused),
            ("timed out", self.timed_out),
            ("no local port", self.no_local_port),
            ("other", self.other),
        ]
    }
}

/// What a `--conn-per-request` run adds to the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// The new connections and the failed connects, by cause.
    pub connects: Connects,
    /// The ephemeral-port settings the run had, read before it started.
    pub ports: crate::ports::PortBudget,
    /// Who closes each connection first: the server (HTTP's `Connection: close`), else loadgen.
    pub server_closes: bool,
}

/// The usual summary points of a latency histogram, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of recorded latencies.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    /// 99.99th percentile.
    #[serde(rename = "p99.99")]
    pub p99_99: u64,
    /// Largest recorded value.
    pub max: u64,
    /// Arithmetic mean (for reference; percentiles are what matter).
    pub mean: f64,
}

impl Percentiles {
    /// Reads the summary points out of `hist`.
    pub fn of(hist: &Histogram<u64>) -> Self {
        Percentiles {
            count: hist.len(),
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p99_9: hist.value_at_quantile(0.999),
            p99_99: hist.value_at_quantile(0.9999),
            max: hist.max(),
            mean: hist.mean(),
        }
    }

    /// `(label, value)` pairs in table order (the mean and count left out).
    pub fn rows(&self) -> [(&'static str, u64); 6] {
        [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p99.9", self.p99_9),
            ("p99.99", self.p99_99),
            ("max", self.max),
        ]
    }
}

/// The outcome of one `loadgen run`.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The settings the run used.
    pub config: RunConfig,
    /// Working connections actually opened (fewer than asked if some were refused).
    pub conns_opened: usize,
    /// Idle connections actually opened.
    pub idle_opened: usize,
    /// What was counted.
    pub counts: Counts,
    /// CPU time loadgen used during the measured phase (all its threads).
    pub cpu: CpuTime,
    /// The part of `cpu` spent spinning for a near deadline rather than sleeping: used, but
    /// not needed (see `engine::waiter`).
    pub spun: Duration,
    /// The first failure, in words, if any.
    pub first_error: Option<String>,
    /// Service time in nanoseconds: request written → last byte of its reply.
    pub service_time: Histogram<u64>,
    /// Open loop only, in nanoseconds: request *due* → last byte of its reply (coordinated
    /// omission corrected).
    pub corrected: Option<Histogram<u64>>,
    /// `--conn-per-request` only: the connections opened and the connects that failed.
    pub churn: Option<Churn>,
}

impl RunReport {
    /// Length of the measured phase.
    pub fn measured(&self) -> Duration {
        self.config.duration
    }

    /// Replies per second over the measured phase.
    pub fn achieved_rate(&self) -> f64 {
        self.counts.requests as f64 / self.measured().as_secs_f64()
    }

    /// The open-loop rate asked for, if any.
    pub fn requested_rate(&self) -> Option<f64> {
        match self.config.pacing {
            Pacing::Closed => None,
            Pacing::Open { rate } => Some(rate),
        }
    }

    /// Open loop: achieved rate as a fraction of the requested one.
    pub fn achieved_fraction(&self) -> Option<f64> {
        self.requested_rate().map(|rate| self.achieved_rate() / rate)
    }

    /// Open loop: true when fewer requests were answered than the timetable called for
    /// (by more than rounding at the edges of the phase).
    pub fn fell_short(&self) -> bool {
        self.achieved_fraction().is_some_and(|f| f < 0.99)
    }

    /// Exit-status verdict: no mismatch and no connection problem of any kind.
    pub fn is_clean(&self) -> bool {
        self.counts.is_clean()
    }

    /// The histogram the headline percentiles come from: corrected in open loop, service time
    /// in closed loop.
    pub fn headline(&self) -> &Histogram<u64> {
        self.corrected.as_ref().unwrap_or(&self.service_time)
    }

    /// `--conn-per-request`: connections established per second of the measured phase (each
    /// carried one request, so this is close to [`RunReport::achieved_rate`]).
    pub fn connect_rate(&self) -> Option<f64> {
        self.churn.map(|c| c.connects.opened as f64 / self.measured().as_secs_f64())
    }

    /// loadgen's CPU time (user + system) per measured reply.
    pub fn cpu_per_request(&self) -> Option<Duration> {
        let total = self.cpu.user + self.cpu.system;
        (self.counts.requests > 0)
            .then(|| Duration::from_secs_f64(total.as_secs_f64() / self.counts.requests as f64))
    }

    /// loadgen's CPU use as a share of its threads' capacity (1.0 = every thread always busy),
    /// spinning included.
    pub fn cpu_share(&self) -> f64 {
        let total = (self.cpu.user + self.cpu.system).as_secs_f64();
        total / (self.measured().as_secs_f64() * self.config.threads as f64)
    }

    /// Like [`RunReport::cpu_share`] without the spinning: the share loadgen needed. Near 1.0
    /// the generator, not the server, may be what limits the figures.
    pub fn busy_share(&self) -> f64 {
        let spun = self.spun.as_secs_f64() / (self.measured().as_secs_f64() * self.config.threads as f64);
        (self.cpu_share() - spun).max(0.0)
    }
}
