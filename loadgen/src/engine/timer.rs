//! A wake-up timer with microsecond precision for the event loop.
//!
//! `epoll_wait` takes its timeout in whole milliseconds (mio rounds up), so an open-loop run at
//! 100,000 requests/s would send in bursts of 100 and add up to a millisecond of the generator's
//! own delay to every corrected latency. On Linux a `timerfd` registered in the same poll fires
//! with the kernel's high-resolution timers instead, and costs one syscall to arm.
//!
//! kqueue (the BSDs, macOS) has no such problem to solve: `kevent` takes its timeout as a
//! `timespec` in nanoseconds, and mio passes it through unrounded. There the timer is just a
//! remembered deadline that becomes the poll's timeout ([`PollTimeout`]). Both kinds answer the
//! same three questions, so the [`Waiter`](super::waiter::Waiter) never asks which one it has.
//!
//! The timerfd's expiry count is never read: re-arming with `timerfd_settime` resets it, and
//! every expiry wakes the edge-triggered poll anew, so the `read` would be a wasted syscall per
//! wake-up (in open loop, one per request).

use std::io;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

#[cfg(target_os = "linux")]
pub use timerfd::Timer;

/// Where the poll's own timeout is precise enough, the timer is [`PollTimeout`].
#[cfg(not(target_os = "linux"))]
pub type Timer = PollTimeout;

#[cfg(target_os = "linux")]
mod timerfd {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    use mio::unix::SourceFd;
    use mio::{Interest, Registry, Token};

    /// A one-shot monotonic timer that makes the poll it is registered with return.
    #[derive(Debug)]
    pub struct Timer {
        fd: OwnedFd,
    }

    impl Timer {
        /// Creates the timer and registers it for readability under `token`.
        pub fn new(registry: &Registry, token: Token) -> io::Result<Self> {
            // SAFETY: plain syscall with constant flags; the result is checked before use.
            let raw = unsafe {
                libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
            Ok(Timer { fd })
        }

        /// Fires once, `after` from now (at least one nanosecond, because zero would disarm it).
        pub fn arm(&mut self, after: Duration) -> io::Result<()> {
            let after = after.max(Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: libc::timespec {
                    tv_sec: after.as_secs().min(i32::MAX as u64) as libc::time_t,
                    tv_nsec: after.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: `fd` is a valid timerfd and `spec` outlives the call.
            let rc = unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// The timerfd itself wakes the poll: it needs no timeout.
        pub fn poll_timeout(&self) -> Option<Duration> {
            None
        }
    }
}

/// The portable timer: a deadline that the caller turns into the poll's timeout. Precise where
/// the poll's timeout is (kqueue: nanoseconds); it never produces an event of its own.
///
/// Compiled on every system, Linux included, so that it is type-checked and tested here too;
/// on Linux only the tests use it.
#[derive(Debug, Default)]
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub struct PollTimeout {
    deadline: Option<Instant>,
}

#[cfg_attr(target_os = "linux", allow(dead_code))]
impl PollTimeout {
    /// A timer that is not armed. Nothing is registered: the poll's timeout does the waking.
    pub fn new(_registry: &Registry, _token: Token) -> io::Result<Self> {
        Ok(PollTimeout::default())
    }

    /// Remembers the deadline `after` from now.
    pub fn arm(&mut self, after: Duration) -> io::Result<()> {
        self.deadline = Some(Instant::now() + after);
        Ok(())
    }

    /// How long the poll may sleep: until the deadline (zero once it has passed), or for ever
    /// when nothing is armed.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portable_timer_wakes_the_poll_at_its_deadline() {
        let poll = mio::Poll::new().unwrap();
        let mut timer = PollTimeout::new(poll.registry(), Token(0)).unwrap();
        assert_eq!(timer.poll_timeout(), None, "unarmed: sleep until an event");
        timer.arm(Duration::from_millis(20)).unwrap();
        let left = timer.poll_timeout().unwrap();
        assert!(left <= Duration::from_millis(20) && left > Duration::from_millis(10), "{left:?}");
        timer.arm(Duration::ZERO).unwrap();
        assert_eq!(timer.poll_timeout(), Some(Duration::ZERO), "a passed deadline does not sleep");
    }

    #[test]
    fn the_timer_in_use_wakes_a_poll() {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(4);
        let mut timer = Timer::new(poll.registry(), Token(7)).unwrap();
        let start = Instant::now();
        timer.arm(Duration::from_millis(5)).unwrap();
        // Whichever kind this system uses, the poll returns within a generous bound.
        poll.poll(&mut events, timer.poll_timeout().or(Some(Duration::from_secs(5)))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
        assert!(start.elapsed() >= Duration::from_millis(4), "{:?}", start.elapsed());
    }
}
