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
//!   which spans the whole measured phase: loadgen keeps its connections open for 200 ms after
//!   `loadgen: measured`, when the suite takes its second reading).
//! - `VmHWM` is the kernel's own peak of `VmRSS`, so the peak is exact even between samples.
//!
//! **The process tree.** A server may fork (`process-per-connection` serves each client in a
//! child), so the suite samples the server *and every process below it*, found by scanning
//! `/proc/*/stat` for parent ids ([`scan`], [`tree`]; this kernel's
//! `/proc/<pid>/task/<tid>/children` needs `CONFIG_PROC_CHILDREN`, which not every kernel has,
//! and a scan of a few hundred processes is cheap). Over the tree:
//! - RSS, threads and descriptors are summed. RSS counts a page once *per process* that maps
//!   it, so children that share their parent's pages copy-on-write are counted many times;
//!   PSS (`/proc/<pid>/smaps_rollup`, [`parse_pss`]) divides each page by the number of
//!   processes that map it, and its sum is the honest figure for a forking server.
//! - CPU time is each live process's `utime + stime` plus its `cutime + cstime`: the time of
//!   children it has already reaped (a child that is never waited for, because the parent
//!   ignores `SIGCHLD`, takes its time with it).
//! - Context switches are summed thread by thread over every process, like threads of one
//!   process; a child that exits inside the window takes its counts with it (no /proc file
//!   keeps them for children), so where children come and go the sum is a lower bound.
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

impl CpuTicks {
    /// Adds `other` to this one.
    pub fn add(&mut self, other: CpuTicks) {
        self.user += other.user;
        self.system += other.system;
    }
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the *last* `)`.
pub fn parse_stat(text: &str) -> Option<CpuTicks> {
    parse_proc_stat(text).map(|s| s.cpu)
}

/// The fields of `/proc/<pid>/stat` the process tree needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcStat {
    /// The state letter, field 3: `R`, `S`, … and `Z` for a zombie (a process that has exited
    /// and not been reaped yet: it holds a PID and its exit status, but no memory, threads or
    /// descriptors).
    pub state: char,
    /// The parent's process id, field 4.
    pub ppid: u32,
    /// `utime` and `stime`, fields 14 and 15: every thread of the process, live or ended.
    pub cpu: CpuTicks,
    /// `cutime` and `cstime`, fields 16 and 17: children the process has reaped (waited for).
    pub reaped: CpuTicks,
}

/// Parses the fields of `/proc/<pid>/stat` that [`ProcStat`] holds.
pub fn parse_proc_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first, so field N is at index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().take(15).collect();
    let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    let ticks = |a, b| Some(CpuTicks { user: number(a)?, system: number(b)? });
    let state = fields.first()?.chars().next()?;
    Some(ProcStat {
        state,
        ppid: u32::try_from(number(4)?).ok()?,
        cpu: ticks(14, 15)?,
        reaped: ticks(16, 17)?,
    })
}

/// Every process's id and [`ProcStat`], from `/proc/*/stat`. A process that ends between
/// listing and reading is left out.
pub fn scan() -> io::Result<Vec<(u32, ProcStat)>> {
    let mut all = Vec::new();
    for entry in proc_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if let Some(stat) =
            fs::read_to_string(entry.path().join("stat")).ok().as_deref().and_then(parse_proc_stat)
        {
            all.push((pid, stat));
        }
    }
    Ok(all)
}

/// `root` and every process below it in `table` (pid, parent pid), root first, then each
/// generation in table order. Empty when `root` is not in the table.
pub fn descendants(root: u32, table: &[(u32, u32)]) -> Vec<u32> {
    if !table.iter().any(|(pid, _)| *pid == root) {
        return Vec::new();
    }
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(table.iter().filter(|(pid, ppid)| *ppid == parent && *pid != root).map(|(pid, _)| *pid));
        next += 1;
    }
    tree
}

/// The processes of `root`'s tree with their [`ProcStat`], root first, from one [`scan`].
/// An error when `root` itself is gone.
pub fn tree(root: u32) -> io::Result<Vec<(u32, ProcStat)>> {
    let all = scan()?;
    let table: Vec<(u32, u32)> = all.iter().map(|(pid, s)| (*pid, s.ppid)).collect();
    let pids = descendants(root, &table);
    if pids.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("process {root} is gone")));
    }
    Ok(pids.iter().filter_map(|pid| all.iter().find(|(p, _)| p == pid).copied()).collect())
}

/// CPU time of a tree: every process's own time plus the time of the children it reaped, so
/// a child that ends between two readings is still counted, in its parent.
pub fn tree_cpu(tree: &[(u32, ProcStat)]) -> CpuTicks {
    let mut total = CpuTicks::default();
    for (_, stat) in tree {
        total.add(stat.cpu);
        total.add(stat.reaped);
    }
    total
}

/// The time of reaped children within [`tree_cpu`].
pub fn tree_reaped(tree: &[(u32, ProcStat)]) -> CpuTicks {
    let mut total = CpuTicks::default();
    for (_, stat) in tree {
        total.add(stat.reaped);
    }
    total
}

/// Context switches of every live thread of every process of a tree, by thread id (thread ids
/// are unique across processes). A process that ends while being read is left out.
pub fn tree_switches(tree: &[(u32, ProcStat)]) -> io::Result<Switches> {
    let mut all = Switches::new();
    for (i, (pid, _)) in tree.iter().enumerate() {
        match context_switches(*pid) {
            Ok(s) => all.extend(s),
            // The root must be readable; a child may have just ended.
            Err(e) if i == 0 => return Err(e),
            Err(_) => {}
        }
    }
    Ok(all)
}

/// Parses `/proc/<pid>/smaps_rollup`: the `Pss:` line, KiB.
pub fn parse_pss(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Reads the proportional set size of `pid` from `/proc/<pid>/smaps_rollup`, KiB.
pub fn read_pss(pid: u32) -> io::Result<u64> {
    let text = proc_file(&format!("/proc/{pid}/smaps_rollup"))?;
    parse_pss(&text).ok_or_else(|| io::Error::other(format!("/proc/{pid}/smaps_rollup: no Pss line")))
}

impl ProcStat {
    /// Exited and not reaped yet (`Z`), or being reaped (`X`).
    pub fn ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// What a process tree holds at one moment, summed over its processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeSample {
    /// Processes in the tree (the server and its descendants), zombies included: a child that
    /// has exited holds its PID until its parent reaps it.
    pub processes: u64,
    /// Resident set sizes added up, KiB.
    pub rss_kib: u64,
    /// The root's own peak RSS (`VmHWM`), KiB.
    pub root_hwm_kib: u64,
    /// Threads added up.
    pub threads: u64,
    /// Open descriptors added up.
    pub fds: u64,
    /// CPU time, [`tree_cpu`].
    pub cpu: CpuTicks,
    /// Proportional set sizes added up, KiB, when asked for and readable for every process.
    pub pss_kib: Option<u64>,
}

/// Samples `root`'s tree: status and descriptors of every process, and PSS when `with_pss`.
/// An error when the root is gone; a child that ends meanwhile is left out.
pub fn sample_tree(root: u32, with_pss: bool) -> io::Result<TreeSample> {
    let tree = tree(root)?;
    let mut sample =
        TreeSample { cpu: tree_cpu(&tree), pss_kib: with_pss.then_some(0), ..TreeSample::default() };
    for (i, (pid, stat)) in tree.iter().enumerate() {
        if i > 0 && stat.ended() {
            // A zombie has no memory, descriptors or threads left (its status still says one
            // thread): it only counts as a process.
            sample.processes += 1;
            continue;
        }
        let status = match read_status(*pid) {
            Ok(status) => status,
            Err(e) if i == 0 => return Err(e),
            Err(_) => continue,
        };
        if i == 0 {
            sample.root_hwm_kib = status.hwm_kib;
        }
        sample.processes += 1;
        sample.rss_kib += status.rss_kib;
        sample.threads += status.threads;
        sample.fds += count_fds(*pid).unwrap_or(0);
        if let Some(total) = &mut sample.pss_kib {
            match read_pss(*pid) {
                Ok(kib) => *total += kib,
                Err(_) if i > 0 => {}
                Err(_) => sample.pss_kib = None,
            }
        }
    }
    Ok(sample)
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
    fn stat_gives_the_parent_and_the_reaped_childrens_time() {
        let stat = "4243 (server) S 4242 4242 4242 0 -1 4194560 120 0 0 0 731 264 55 12 20 0 3 0 1 2 3";
        let s = parse_proc_stat(stat).unwrap();
        assert_eq!((s.state, s.ended()), ('S', false));
        assert_eq!(s.ppid, 4242);
        assert!(parse_proc_stat(&stat.replace(" S ", " Z ")).unwrap().ended());
        assert_eq!(s.cpu, CpuTicks { user: 731, system: 264 });
        assert_eq!(s.reaped, CpuTicks { user: 55, system: 12 });
        assert_eq!(parse_proc_stat("4243 (server) S 4242 1 2 3 4 5 6 7 8 9 10 11"), None, "cut short");
    }

    #[test]
    fn the_tree_is_the_root_and_everything_below_it() {
        // 10 is the server; 11 and 12 its children, 13 a grandchild; 20 and 21 strangers.
        let table = [(1, 0), (10, 1), (11, 10), (20, 1), (12, 10), (13, 11), (21, 20)];
        assert_eq!(descendants(10, &table), vec![10, 11, 12, 13]);
        assert_eq!(descendants(13, &table), vec![13]);
        assert_eq!(descendants(99, &table), Vec::<u32>::new());
        // A child whose parent id points back at itself (pid reuse gone wrong) ends the walk.
        assert_eq!(descendants(5, &[(5, 5)]), vec![5]);
    }

    #[test]
    fn tree_cpu_counts_live_and_reaped_time() {
        let ticks = |user, system| CpuTicks { user, system };
        let tree = [
            (10, ProcStat { state: 'S', ppid: 1, cpu: ticks(100, 50), reaped: ticks(30, 20) }),
            (11, ProcStat { state: 'Z', ppid: 10, cpu: ticks(5, 5), reaped: ticks(0, 0) }),
        ];
        assert_eq!(tree_cpu(&tree), ticks(135, 75));
        assert_eq!(tree_reaped(&tree), ticks(30, 20));
    }

    #[test]
    fn pss_comes_from_smaps_rollup() {
        let rollup = "55bba0e05000-7fff2b1e5000 ---p 00000000 00:00 0 [rollup]\nRss:  1696 kB\nPss:  289 kB\nPss_Dirty:  112 kB\n";
        assert_eq!(parse_pss(rollup), Some(289));
        assert_eq!(parse_pss("Rss: 1 kB\n"), None);
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
        assert!(read_pss(pid).unwrap() > 0);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_child_process_joins_the_tree_and_its_memory_is_counted() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let me = std::process::id();
        let mine = tree(me).unwrap();
        assert_eq!(mine[0].0, me);
        assert!(mine.iter().any(|(pid, _)| *pid == child.id()), "{mine:?}");
        let sample = sample_tree(me, true).unwrap();
        assert!(sample.processes >= 2, "{sample:?}");
        let alone = read_status(me).unwrap();
        assert!(sample.rss_kib > alone.rss_kib / 2, "{sample:?}");
        assert!(sample.pss_kib.is_some_and(|p| p > 0), "{sample:?}");
        // A child that has exited and is not reaped yet is a zombie: in the tree, ended.
        let mut zombie = std::process::Command::new("true").spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !tree(me).unwrap().iter().any(|(pid, s)| *pid == zombie.id() && s.ended()) {
            assert!(std::time::Instant::now() < deadline, "`true` never became a zombie");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        zombie.wait().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(tree(u32::MAX).is_err(), "no such process");
    }
}
