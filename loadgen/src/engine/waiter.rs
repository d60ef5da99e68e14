//! How an event loop waits for its next deadline: asleep on the timer, or spinning when the
//! next send is due too soon to be worth a sleep.
//!
//! Sleeping is not free. A thread that blocks in `epoll_wait` and is woken by its timer pays two
//! context switches, and on a virtual machine an idle CPU halts into the hypervisor and has to be
//! woken by an injected interrupt. It is not punctual either: the timer's wake-up comes late, a
//! reply that arrives while the thread sleeps is read late, and in open loop both delays land in
//! the *server's* latencies. `scripts/check-targets.sh --only 5` shows both on the lab's VM (the
//! table is in loadgen's README): at 20,000 req/s against the reactor, loadgen needed 25 µs of CPU
//! per request sleeping and 10 µs spinning, and the median from due time to reply was 49 µs
//! sleeping and 22 µs spinning. Sleeping, loadgen ran out of CPU at 80,000 req/s, well below
//! what the fastest servers answer in closed loop.
//!
//! So when the next send is due less than `spin` from now, the loop polls with a zero timeout
//! instead, reading replies as they come, until the send is due. Spinning is CPU that loadgen
//! *chose* to burn, so it is measured and reported on its own (`spin_seconds`), and the busy share
//! that decides whether loadgen limited a run leaves it out. Closed loop has no send deadlines
//! and never spins.

use std::io;
use std::time::Duration;

use mio::{Events, Poll, Token};

use super::Plan;
use super::clock::Clock;
use super::timer::Timer;

/// A loop's timer plus the decision of when to use it.
pub struct Waiter {
    timer: Timer,
    token: Token,
    /// The deadline the timer is armed for, so an unchanged deadline costs no syscall.
    armed: Option<u64>,
    /// Sends due sooner than this are spun for, not slept for (0: never spin).
    spin_ns: u64,
    /// Spin time is counted only inside this window: the measured phase.
    window: (u64, u64),
    /// Nanoseconds spent in polls that were spinning and found nothing, inside the window.
    spun_ns: u64,
}

impl Waiter {
    /// Registers a fresh timer under `token`, spinning as `plan` says.
    pub fn new(poll: &Poll, token: Token, plan: &Plan) -> io::Result<Self> {
        Ok(Waiter {
            timer: Timer::new(poll.registry(), token)?,
            token,
            armed: None,
            spin_ns: plan.spin_ns,
            window: (plan.warmup_end_ns, plan.end_ns),
            spun_ns: 0,
        })
    }

    /// Waits for readiness, at the latest until `wake`; `next_send` is the earliest due send,
    /// the only deadline worth spinning for (sweeps and the end of the run are not). `now` is
    /// when the loop's pass started, so a spinning pass that found nothing counts whole.
    /// `events` may hold the timer's token (skip it with [`Waiter::is_timer`]), and is empty
    /// after a signal.
    pub fn wait(
        &mut self,
        poll: &mut Poll,
        events: &mut Events,
        clock: &Clock,
        now: u64,
        wake: u64,
        next_send: Option<u64>,
    ) -> io::Result<()> {
        let send_is_near = next_send.is_some_and(|due| due.saturating_sub(now) < self.spin_ns);
        let spinning = wake <= now || send_is_near;
        if !spinning && self.armed != Some(wake) {
            self.timer.arm(Duration::from_nanos(wake - now))?;
            self.armed = Some(wake);
        }
        // Asleep, the timer wakes the poll: by an event of its own (a timerfd) or through the
        // poll's timeout (where that is precise: kqueue).
        let timeout = if spinning { Some(Duration::ZERO) } else { self.timer.poll_timeout() };
        match poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if spinning && wake > now && events.is_empty() && now >= self.window.0 && now < self.window.1 {
            self.spun_ns += clock.now_ns().saturating_sub(now);
        }
        Ok(())
    }

    /// Whether an event is the timer's (for the caller to skip), noting that the timer is no
    /// longer armed.
    pub fn is_timer(&mut self, token: Token) -> bool {
        let mine = token == self.token;
        if mine {
            self.armed = None;
        }
        mine
    }

    /// Spin time inside the measured phase so far.
    pub fn spun(&self) -> Duration {
        Duration::from_nanos(self.spun_ns)
    }
}
