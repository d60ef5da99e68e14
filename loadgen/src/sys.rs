//! The two pieces of the operating system loadgen asks about directly: how many file descriptors
//! it may open, and how much CPU time it has used.

use std::io;
use std::time::Duration;

/// Raises the soft limit on open files to the hard limit and returns the new soft limit.
///
/// Many systems start processes with a soft limit of 1,024, far below what a 10,000-connection
/// run needs, while the hard limit (which an unprivileged process may raise the soft one up to)
/// is much higher. Asking is cheaper than making every user remember `ulimit -n`.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: as above; the new soft limit does not exceed the hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    // `rlim_t` is `u64` here but not on every platform libc supports.
    #[allow(clippy::unnecessary_cast)]
    Ok(limit.rlim_cur as u64)
}

/// User and system CPU time consumed so far by this whole process (all threads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time spent running loadgen's own code.
    pub user: Duration,
    /// Time the kernel spent on loadgen's behalf (mostly socket reads and writes).
    pub system: Duration,
}

impl CpuTime {
    /// Reads `getrusage(RUSAGE_SELF)`.
    pub fn now() -> io::Result<Self> {
        // SAFETY: an all-zero rusage is a valid value to be overwritten by the call.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is valid and writable for the duration of the call.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let to_duration = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        Ok(CpuTime { user: to_duration(usage.ru_utime), system: to_duration(usage.ru_stime) })
    }

    /// CPU time used between `earlier` and `self`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_limit_is_at_least_the_usual_default() {
        assert!(raise_fd_limit().unwrap() >= 256);
    }

    #[test]
    fn cpu_time_does_not_go_backwards() {
        let a = CpuTime::now().unwrap();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = CpuTime::now().unwrap();
        assert!(b.user + b.system >= a.user + a.system);
    }
}
