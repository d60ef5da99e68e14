//! A wake-up timer with microsecond precision for the event loop.
//!
//! `epoll_wait` takes its timeout in whole milliseconds (mio rounds up), so an open-loop run at
//! 100,000 requests/s would send in bursts of 100 and add up to a millisecond of the generator's
//! own delay to every corrected latency. A Linux `timerfd` registered in the same poll fires
//! with the kernel's high-resolution timers instead, and costs one syscall to arm.
//!
//! The expiry count is never read: re-arming with `timerfd_settime` resets it, and every expiry
//! wakes the edge-triggered poll anew, so the `read` would be a wasted syscall per wake-up (in
//! open loop, one per request).

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
        let raw =
            unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
        Ok(Timer { fd })
    }

    /// Fires once, `after` from now (at least one nanosecond, because zero would disarm it).
    pub fn arm(&self, after: Duration) -> io::Result<()> {
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
}
