//! Reading a server's resource use from `/proc/<pid>`, without attaching to it.
//!
//! Parsing is kept apart from reading so it can be tested on fixture text. Three details
//! matter for honest numbers:
//! - CPU time in `/proc/<pid>/stat` (fields 14 and 15, in clock ticks) covers *every* thread
//!   of the process, including threads that have already exited.
//! - Context switches in `/proc/<pid>/status` are the *main thread's* only; the process total
//!   is the sum over `/proc/<pid>/task/*/status`. Threads that exit take their counts with them,
//!   so the suite compares thread by thread (see [`switches_between`]); a thread that ends
//!   inside the window is under-counted (in this lab threads live as long as their connection,
//!   which spans the whole measured phase).
//! - `VmHWM` is the kernel's own peak of `VmRSS`, so the peak is exact even between samples.
//!
//! `/proc/<pid>` in this shape is Linux's. On other systems every read returns an
//! `Unsupported` error that says so ([`UNSUPPORTED`]), the repetition records no samples, and
//! the report's server columns stay empty; the parsers still compile and test everywhere.

use std::collections::BTreeMap;
use std::fs;
use std::io;

/// Why the server cannot be sampled on this system, or `None` where it can.
pub const UNSUPPORTED: Option<&str> = if cfg!(target_os = "linux") {
    None
} else {
    Some("the server's CPU time, memory, threads and descriptors are read from /proc, which only Linux has")
};

/// Reads a file under /proc, or says that there is no such /proc here.
fn proc_file(path: &str) -> io::Result<String> {
    match UNSUPPORTED {
        None => fs::read_to_string(path),
        Some(why) => Err(io::Error::new(io::ErrorKind::Unsupported, why)),
    }
}

/// Lists a directory under /proc, or says that there is no such /proc here.
fn proc_dir(path: &str) -> io::Result<fs::ReadDir> {
    match UNSUPPORTED {
        None => fs::read_dir(path),
        Some(why) => Err(io::Error::new(io::ErrorKind::Unsupported, why)),
    }
}

/// The fields of `/proc/<pid>/status` the suite uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size over the process's life, KiB.
    pub hwm_kib: u64,
    /// Threads now.
    pub threads: u64,
    /// Voluntary context switches (this task only).
    pub voluntary: u64,
    /// Involuntary context switches (this task only).
    pub involuntary: u64,
}

/// Parses the text of a `/proc/<pid>/status` (or `/proc/<pid>/task/<tid>/status`) file.
/// Missing fields read as zero (a kernel thread has no `VmRSS`, for example).
pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let number = || value.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match key {
            "VmRSS" => s.rss_kib = number(),
            "VmHWM" => s.hwm_kib = number(),
            "Threads" => s.threads = number(),
            "voluntary_ctxt_switches" => s.voluntary = number(),
            "nonvoluntary_ctxt_switches" => s.involuntary = number(),
            _ => {}
        }
    }
    s
}

/// User and system CPU time of a whole process, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// `utime`, field 14.
    pub user: u64,
    /// `stime`, field 15.
    pub system: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the *last* `)`.
pub fn parse_stat(text: &str) -> Option<CpuTicks> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first; utime and stime are fields 14 and 15.
    let mut fields = rest.split_whitespace().skip(11);
    let user = fields.next()?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some(CpuTicks { user, system })
}

/// Clock ticks per second, for converting [`CpuTicks`] (almost always 100).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Reads `/proc/<pid>/status`.
pub fn read_status(pid: u32) -> io::Result<Status> {
    Ok(parse_status(&proc_file(&format!("/proc/{pid}/status"))?))
}

/// Reads `/proc/<pid>/stat`.
pub fn read_cpu(pid: u32) -> io::Result<CpuTicks> {
    let text = proc_file(&format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat: unexpected layout")))
}

/// Open file descriptors: entries of `/proc/<pid>/fd`.
pub fn count_fds(pid: u32) -> io::Result<u64> {
    Ok(proc_dir(&format!("/proc/{pid}/fd"))?.count() as u64)
}

/// Voluntary and involuntary context switches of every live thread, by thread id.
pub type Switches = BTreeMap<u32, (u64, u64)>;

/// Reads [`Switches`] from `/proc/<pid>/task/*/status`.
pub fn context_switches(pid: u32) -> io::Result<Switches> {
    let mut all = Switches::new();
    for entry in proc_dir(&format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else { continue };
        // A thread may exit between listing and reading: skip it rather than fail.
        if let Ok(text) = fs::read_to_string(entry.path().join("status")) {
            let s = parse_status(&text);
            all.insert(tid, (s.voluntary, s.involuntary));
        }
    }
    Ok(all)
}

/// Switches between two readings, thread by thread: a thread seen in both counts its increase,
/// a thread born in between counts everything it has, and a thread that died in between counts
/// nothing (its last counts are gone with it). Summing the two totals instead would go
/// *backwards* when threads exit between the readings, as thousands do when loadgen closes its
/// connections to `thread-per-connection`.
pub fn switches_between(before: &Switches, after: &Switches) -> (u64, u64) {
    after.iter().fold((0, 0), |(v, i), (tid, (va, ia))| {
        let (vb, ib) = before.get(tid).copied().unwrap_or((0, 0));
        (v + va.saturating_sub(vb), i + ia.saturating_sub(ib))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tserver\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
VmPeak:\t  123456 kB\nVmHWM:\t    8120 kB\nVmRSS:\t    6012 kB\nThreads:\t3\n\
voluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n";

    #[test]
    fn status_fields_are_read_in_kib_and_counts() {
        let s = parse_status(STATUS);
        assert_eq!(s, Status { rss_kib: 6012, hwm_kib: 8120, threads: 3, voluntary: 150, involuntary: 7 });
        assert_eq!(parse_status("garbage\n"), Status::default());
    }

    #[test]
    fn stat_counts_fields_after_the_last_parenthesis() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 120 0 0 0 731 264 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat(stat), Some(CpuTicks { user: 731, system: 264 }));
        assert_eq!(parse_stat("4242 (server) S 1"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn switches_are_compared_thread_by_thread() {
        let before: Switches = [(1, (100, 5)), (2, (1000, 50)), (3, (7, 7))].into();
        // Thread 2 exited, thread 4 was born.
        let after: Switches = [(1, (150, 6)), (3, (9, 7)), (4, (30, 2))].into();
        assert_eq!(switches_between(&before, &after), (50 + 2 + 30, 1 + 2));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_very_process() {
        let pid = std::process::id();
        assert!(read_status(pid).unwrap().threads >= 1);
        assert!(read_cpu(pid).is_ok());
        assert!(count_fds(pid).unwrap() >= 1);
        let all = context_switches(pid).unwrap();
        assert!(all.values().map(|(v, i)| v + i).sum::<u64>() > 0);
        assert!(ticks_per_second() > 0.0);
    }
}
