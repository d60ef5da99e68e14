//! CPU affinity from the operating system: which CPUs this process may use, and pinning a child
//! to a list of CPUs before it starts.
//!
//! `sched_getaffinity`/`sched_setaffinity` are Linux's. The BSDs pin with `cpuset_setaffinity`
//! and macOS cannot pin a process to a CPU at all, so elsewhere the suite says it cannot pin and
//! runs unpinned (and refuses `--server-cpus`/`--loadgen-cpus` with that reason) rather than
//! measuring on CPUs it only pretends to control.

use std::io;
use std::process::Command;

/// Why pinning is unavailable on this system, or `None` where it is.
pub const UNSUPPORTED: Option<&str> = if cfg!(target_os = "linux") {
    None
} else {
    Some("CPU pinning uses sched_setaffinity, which only Linux has")
};

/// The CPUs this process may run on, ascending; `Err` says why they are unknown.
#[cfg(target_os = "linux")]
pub fn allowed() -> Result<Vec<usize>, String> {
    // SAFETY: sched_getaffinity writes into a set we own, of the size we pass.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(format!("sched_getaffinity failed: {}", io::Error::last_os_error()));
        }
        set
    };
    // SAFETY: CPU_ISSET reads one bit of the set; every index below CPU_SETSIZE is inside it.
    Ok((0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect())
}

/// The CPUs this process may run on: unknown off Linux.
#[cfg(not(target_os = "linux"))]
pub fn allowed() -> Result<Vec<usize>, String> {
    Err(UNSUPPORTED.unwrap_or("unknown").to_owned())
}

/// Makes the child run only on `cpus` (nothing for an empty list), set between fork and exec so
/// it holds from the first instruction; threads the child creates inherit it.
#[cfg(target_os = "linux")]
pub fn pin(cmd: &mut Command, cpus: &[usize]) -> io::Result<()> {
    use std::os::unix::process::CommandExt as _;
    if cpus.is_empty() {
        return Ok(());
    }
    // Built here, in the parent: the child after fork only makes the one syscall.
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // CPU_SET indexes an array: a CPU beyond the set would panic, so refuse it first.
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is beyond cpu_set_t"),
            ));
        }
        // SAFETY: sets one bit of a set we own, at an index checked to be inside it.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: the hook runs in the forked child before exec and only calls sched_setaffinity,
    // which is async-signal-safe, on a set copied into the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Pinning off Linux: an empty list is fine (nothing to do); a list is refused, never ignored.
#[cfg(not(target_os = "linux"))]
pub fn pin(_cmd: &mut Command, cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    Err(io::Error::new(io::ErrorKind::Unsupported, UNSUPPORTED.unwrap_or("cannot pin here")))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_process_may_use_some_cpu() {
        let cpus = allowed().unwrap();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_pinned_child_sees_only_its_cpu() {
        let first = allowed().unwrap()[0];
        let mut cmd = Command::new("grep");
        cmd.args(["Cpus_allowed_list", "/proc/self/status"]);
        pin(&mut cmd, &[first]).unwrap();
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.split_whitespace().last(), Some(first.to_string().as_str()), "{text}");
        assert!(pin(&mut Command::new("true"), &[usize::MAX]).is_err(), "refused, not a panic");
    }
}
