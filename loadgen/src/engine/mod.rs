//! The measuring engine: a few threads, each running its own mio event loop over its share of
//! the connections.
//!
//! Why not a thread per connection? With 1,000 connections that would be 1,000 threads competing
//! for the same two cores as the server under test, and the figures would measure the scheduler.
//! Here each thread owns a plain `Vec` of connections and never shares them, so the hot path has
//! no locks and no atomics; the threads meet only at the end, when their histograms are merged
//! (histograms are added, never percentiles averaged).
//!
//! - [`clock`]: one time base for every thread, in nanoseconds.
//! - [`timetable`]: the open-loop schedule (when each request *should* leave).
//! - [`timer`]: a timerfd on Linux, because epoll's millisecond timeout is too coarse to pace
//!   requests; elsewhere kqueue's own nanosecond timeout.
//! - [`waiter`]: when to sleep on that timer and when a deadline is too near to be worth it.
//! - [`conn`]: one connection's buffers and in-flight requests.
//! - [`tally`]: what a thread counted and recorded.
//! - [`worker`]: the event loop that ties them together.
//! - [`churn`]: `--conn-per-request`'s event loop, which opens a connection per request.

pub mod churn;
pub mod clock;
pub(crate) mod conn;
pub mod tally;
pub(crate) mod timer;
pub mod timetable;
pub(crate) mod waiter;
pub(crate) mod worker;

pub use tally::Tally;

use timetable::Timetable;

use crate::config::{Pacing, RunConfig};
use crate::units::nanos;

/// The phases and limits every worker obeys, in nanoseconds on the shared [`clock::Clock`].
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Requests sent (closed loop) or scheduled (open loop) before this are warm-up, not recorded.
    pub warmup_end_ns: u64,
    /// No request is sent or scheduled at or after this; in-flight ones are still awaited.
    pub end_ns: u64,
    /// Requests in flight per connection.
    pub depth: usize,
    /// A request unanswered this long gets its connection given up.
    pub timeout_ns: u64,
    /// Check bytes and record latencies (off only for calibration).
    pub verify: bool,
    /// `Some` in open loop: when each request is due.
    pub timetable: Option<Timetable>,
    /// Open loop: sends due sooner than this are spun for rather than slept for (see [`waiter`]).
    pub spin_ns: u64,
}

impl Plan {
    /// The plan `cfg` asks for. The open-loop timetable is laid out over `conns` connections:
    /// the ones asked for (so a refused connection's share of the rate shows up as a shortfall
    /// rather than vanishing), or, for chat, the members that joined.
    pub fn new(cfg: &RunConfig, conns: usize) -> Plan {
        let warmup_end_ns = nanos(cfg.warmup);
        Plan {
            warmup_end_ns,
            end_ns: warmup_end_ns + nanos(cfg.duration),
            depth: cfg.depth,
            timeout_ns: nanos(cfg.timeout),
            verify: cfg.verify,
            timetable: match cfg.pacing {
                Pacing::Closed => None,
                Pacing::Open { rate } => Some(Timetable::new(rate, conns)),
            },
            spin_ns: nanos(cfg.spin),
        }
    }
}
