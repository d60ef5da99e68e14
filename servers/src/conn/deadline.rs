//! The three timeouts that end a connection which holds the server without using it, and the
//! one clock per connection that says which of them runs now. Sans-IO: a model reports what the
//! connection is doing, and asks when it is due; how it waits (a socket option, a timer in the
//! loop, a future) is the model's business.
//!
//! | timeout | runs while | production equivalent | default |
//! | --- | --- | --- | --- |
//! | `--request-timeout` | part of a request has arrived, the rest has not | nginx `client_header_timeout`, Go `ReadHeaderTimeout` | 60 s |
//! | `--idle-timeout` | no request has started since the last reply | nginx `keepalive_timeout`, Redis `timeout` | 300 s |
//! | `--write-timeout` | replies wait and the peer takes none of them | nginx `send_timeout` | 60 s |
//!
//! Without them, a client that sends one byte a second (slowloris), or that connects and says
//! nothing, keeps its connection, and whatever the model spends on it, for ever: a thread in the
//! threaded models, one of a pool's few workers, a slot in every table. The defaults are
//! nginx's request and send timeouts; the idle one is longer than nginx's 75 s, so that a
//! teacher who pauses to explain while connected with `nc` is not cut off. The timer restarts
//! whenever the connection makes progress: a request completed, or a reply byte taken by the
//! peer. A slow but steady client is never cut off; only one that stops is.
//!
//! `chat` is exempt from all three: a member who only listens is idle by design (Redis exempts
//! its Pub/Sub subscribers from `timeout` for the same reason), and a member who reads too
//! slowly is already dropped by its bounded outbox (`--chat-queue`).

use std::time::{Duration, Instant};

/// The three timeouts; `None` turns one off (`off` on the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub request: Option<Duration>,
    pub idle: Option<Duration>,
    pub write: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            request: Some(Duration::from_secs(60)),
            idle: Some(Duration::from_secs(300)),
            write: Some(Duration::from_secs(60)),
        }
    }
}

impl Timeouts {
    /// All three off: a connection lives until its peer leaves.
    pub const OFF: Timeouts = Timeouts { request: None, idle: None, write: None };

    /// The timeout that runs while a connection is `waiting`.
    pub fn limit(&self, waiting: Waiting) -> Option<Duration> {
        match waiting {
            Waiting::ForRequest => self.idle,
            Waiting::ForRestOfRequest => self.request,
            Waiting::ForPeerToRead => self.write,
        }
    }

    /// How often an event loop should look for connections that are due: often enough that
    /// none outlives its timeout by more than an eighth of it, and at most once a second.
    /// `None` when every timeout is off.
    pub fn sweep_interval(&self) -> Option<Duration> {
        let shortest = [self.request, self.idle, self.write].into_iter().flatten().min()?;
        Some((shortest / 8).clamp(Duration::from_millis(5), Duration::from_secs(1)))
    }
}

/// What a connection is waiting for, which decides the timeout that runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// Nothing is buffered either way: the next request has not started.
    ForRequest,
    /// Part of a request is buffered.
    ForRestOfRequest,
    /// Replies are waiting for the peer to read them (this wins over a partial request: a peer
    /// that does not read cannot be expected to finish writing).
    ForPeerToRead,
}

impl Waiting {
    /// What a connection holding `unsent` reply bytes and `unserved` request bytes waits for.
    pub fn of(unsent: usize, unserved: usize) -> Waiting {
        if unsent > 0 {
            Waiting::ForPeerToRead
        } else if unserved > 0 {
            Waiting::ForRestOfRequest
        } else {
            Waiting::ForRequest
        }
    }
}

/// One connection's clock: what it waits for, and since when.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    waiting: Waiting,
    since: Instant,
}

impl Clock {
    /// A new connection waits for its first request from `now`.
    pub fn start(now: Instant) -> Clock {
        Clock { waiting: Waiting::ForRequest, since: now }
    }

    /// Report what the connection waits for after an event, and whether the event made
    /// progress (a request completed, reply bytes taken). The clock restarts on progress and
    /// when what it waits for changes; more bytes of the same unfinished request restart
    /// nothing, which is what ends a slowloris.
    pub fn observe(&mut self, now: Instant, waiting: Waiting, progress: bool) {
        if progress || waiting != self.waiting {
            *self = Clock { waiting, since: now };
        }
    }

    /// When the running timeout expires, if one runs.
    pub fn due(&self, timeouts: &Timeouts) -> Option<Instant> {
        timeouts.limit(self.waiting).map(|limit| self.since + limit)
    }

    /// Whether the running timeout has expired at `now`.
    pub fn expired(&self, timeouts: &Timeouts, now: Instant) -> bool {
        self.due(timeouts).is_some_and(|due| now >= due)
    }

    /// What the connection waits for.
    pub fn waiting(&self) -> Waiting {
        self.waiting
    }
}

/// When an event loop next looks for connections whose timeout ran out. A sweep over every
/// connection needs no timer per connection: at most once a second (an eighth of the shortest
/// timeout), checking 10,000 clocks costs tens of microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Sweep {
    timeouts: Timeouts,
    next: Option<Instant>,
}

impl Sweep {
    /// Sweeps for `timeouts`; none at all when every timeout is off.
    pub fn new(timeouts: Timeouts) -> Sweep {
        Sweep { timeouts, next: timeouts.sweep_interval().map(|every| Instant::now() + every) }
    }

    /// Whether any timeout is on (the loop's connections need their clocks kept).
    pub fn is_on(&self) -> bool {
        self.next.is_some()
    }

    /// When the next sweep is due, for the loop's wait.
    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    /// If a sweep is due at `now`, the keys of the `clocks` whose timeout has run out.
    pub fn expired<'a>(
        &mut self,
        now: Instant,
        clocks: impl Iterator<Item = (usize, &'a Clock)>,
    ) -> Vec<usize> {
        let (Some(at), Some(every)) = (self.next, self.timeouts.sweep_interval()) else { return Vec::new() };
        if now < at {
            return Vec::new();
        }
        self.next = Some(now + every);
        let timeouts = self.timeouts;
        clocks.filter(|(_, clock)| clock.expired(&timeouts, now)).map(|(key, _)| key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn timeouts() -> Timeouts {
        Timeouts { request: Some(2 * S), idle: Some(10 * S), write: Some(5 * S) }
    }

    #[test]
    fn a_slowloris_is_due_when_its_request_started_plus_the_request_timeout() {
        let t0 = Instant::now();
        let mut clock = Clock::start(t0);
        assert_eq!(clock.due(&timeouts()), Some(t0 + 10 * S), "idle at first");
        clock.observe(t0 + S, Waiting::ForRestOfRequest, false);
        // One more byte a second, never a whole request: the clock does not restart.
        for i in 2..5 {
            clock.observe(t0 + i * S, Waiting::ForRestOfRequest, false);
        }
        assert_eq!(clock.due(&timeouts()), Some(t0 + 3 * S));
        assert!(clock.expired(&timeouts(), t0 + 4 * S));
    }

    #[test]
    fn progress_restarts_the_clock_and_a_steady_client_is_never_due() {
        let t0 = Instant::now();
        let mut clock = Clock::start(t0);
        for i in 1..100 {
            // A request completes every second, leaving the start of the next one buffered.
            clock.observe(t0 + i * S, Waiting::ForRestOfRequest, true);
            assert!(!clock.expired(&timeouts(), t0 + i * S + S));
        }
    }

    #[test]
    fn a_peer_that_reads_nothing_is_due_after_the_write_timeout_and_off_means_never() {
        let t0 = Instant::now();
        let mut clock = Clock::start(t0);
        clock.observe(t0, Waiting::of(100, 7), false);
        assert_eq!(clock.waiting(), Waiting::ForPeerToRead);
        assert_eq!(clock.due(&timeouts()), Some(t0 + 5 * S));
        assert_eq!(clock.due(&Timeouts::OFF), None);
        assert_eq!(Timeouts::OFF.sweep_interval(), None);
        assert_eq!(timeouts().sweep_interval(), Some(S / 4));
    }
}
