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
pub(crate) mod histogram;
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
    /// How long after the end of the measured phase the connections stay open at least (see
    /// [`Plan::hold_connections`]); zero unless phase markers are printed.
    pub hold_ns: u64,
}

/// How long connections stay open after `loadgen: measured` when a script is reading the phase
/// markers. The script (the suite) samples the server at that marker, and a server's threads or
/// child processes that serve a connection end when it closes, taking their context-switch
/// counts with them: closing a moment later lets the sample see the server as it was.
pub const HOLD_AFTER_MEASURED: std::time::Duration = std::time::Duration::from_millis(200);

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
            hold_ns: if cfg.phase_markers { nanos(HOLD_AFTER_MEASURED) } else { 0 },
        }
    }

    /// Sleeps until [`HOLD_AFTER_MEASURED`] after the measured phase, if phase markers are on
    /// and that moment has not passed; called while the connections are still open.
    pub fn hold_connections(&self, clock: &clock::Clock) {
        let until = self.end_ns + self.hold_ns;
        let now = clock.now_ns();
        if self.hold_ns > 0 && now < until {
            // Nothing to wait for but time: the connections only have to stay open.
            std::thread::sleep(std::time::Duration::from_nanos(until - now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProtocolKind;

    #[test]
    fn connections_are_held_after_the_phase_only_for_a_script_reading_the_markers() {
        let mut cfg = RunConfig::new("127.0.0.1:1".parse().unwrap(), ProtocolKind::EchoLine);
        assert_eq!(Plan::new(&cfg, 1).hold_ns, 0);
        cfg.phase_markers = true;
        let plan = Plan::new(&cfg, 1);
        assert_eq!(plan.hold_ns, 200_000_000);
        // Long past the end: no waiting at all.
        let clock = clock::Clock::start();
        let late = Plan { end_ns: 0, hold_ns: 1, ..plan };
        std::thread::sleep(std::time::Duration::from_millis(1));
        let start = std::time::Instant::now();
        late.hold_connections(&clock);
        assert!(start.elapsed() < std::time::Duration::from_millis(50));
        // Right at the end: about the hold.
        let now = Plan { end_ns: clock.now_ns(), hold_ns: 20_000_000, ..plan };
        let start = std::time::Instant::now();
        now.hold_connections(&clock);
        assert!(start.elapsed() >= std::time::Duration::from_millis(15), "{:?}", start.elapsed());
    }
}
