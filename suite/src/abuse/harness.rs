//! One cell end to end: start the server (pinned, with the scenario's defences and descriptor
//! limit), check it serves, measure the probe's baseline, attack while the probe runs again and
//! the server's process tree is sampled, then time how long a new client waits, read the RSS
//! after, and stop the server.
//!
//! The probe is loadgen itself (`loadgen run`, open loop, one connection, `--spin 0` since it
//! shares its CPU with the attack), so its p99 counts a stall from each request's due time.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::scenarios::{Attack, AttackReport, Scenario};
use super::wire::{self, Proto};
use super::{Cell, Figures, Kind, Probe, Settings, Verdict};
use crate::models::{self, Verdict as Check};
use crate::{affinity, child, procfs};

/// The `malformed` replies of one cell, case by case.
pub type Replies = Option<Vec<Vec<u8>>>;

/// What every cell needs.
pub struct Env {
    /// The server binary.
    pub server_bin: PathBuf,
    /// The loadgen binary.
    pub loadgen_bin: PathBuf,
    /// Shared settings.
    pub settings: Settings,
    /// `--quick`.
    pub quick: bool,
    /// Scratch directory (server stderr, loadgen reports); removed by the caller.
    pub scratch: PathBuf,
    /// Flags the server knows (from `server --help`).
    pub known_flags: BTreeSet<String>,
}

/// The flags `server --help` lists.
pub fn known_flags(server_bin: &Path) -> BTreeSet<String> {
    let out = Command::new(server_bin).arg("--help").output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned())
        .collect()
}

/// Splits flags (`--flag value` pairs) into those the server knows and the names it lacks.
pub fn usable_flags(flags: &[&str], known: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let (mut use_, mut missing) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < flags.len() {
        let name = flags[i];
        let value = flags.get(i + 1).filter(|v| !v.starts_with("--"));
        let step = if value.is_some() { 2 } else { 1 };
        if known.is_empty() || known.contains(name) {
            use_.push(name.to_owned());
            use_.extend(value.map(|v| (*v).to_owned()));
        } else {
            missing.push(name.to_owned());
        }
        i += step;
    }
    (use_, missing)
}

fn cell(model: &str, sc: &Scenario, proto: Proto, args: Vec<String>) -> Cell {
    Cell {
        model: model.to_owned(),
        scenario: sc.id.to_owned(),
        proto: proto.name().to_owned(),
        server_args: args,
        figures: None,
        declined: None,
        broken: None,
        verdict: Verdict { kind: Kind::Fail, missed: vec![] },
        stderr_tail: None,
        earlier_attempts: Vec::new(),
    }
}

fn tail(path: &Path, bytes: usize) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let start = text.len().saturating_sub(bytes);
    let s = String::from_utf8_lossy(&text[start..]).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// Runs one cell. The verdict is left for [`score`](super::score); the second value is the
/// `malformed` replies, for the comparison across models.
pub fn run_cell(env: &Env, sc: &Scenario, model: &str, proto: Proto, seed: u64) -> (Cell, Replies) {
    let (flags, missing) = usable_flags(sc.flags, &env.known_flags);
    let mut args: Vec<String> =
        ["--model", model, "--proto", proto.name(), "--addr", "127.0.0.1:0"].map(str::to_owned).to_vec();
    args.extend(flags);
    let mut out = cell(model, sc, proto, args.clone());
    match models::check(&env.server_bin, &args) {
        Check::Declines(why) => {
            out.declined = Some(why);
            out.verdict = Verdict { kind: Kind::NotApplicable, missed: vec![] };
            return (out, None);
        }
        Check::Serves | Check::Unknown(_) => {}
    }
    let log = env.scratch.join(format!("{}-{}-{}.stderr", sc.id, proto.name(), model));
    let result = measure(env, sc, proto, &args, &log, seed);
    out.stderr_tail = tail(&log, 1500);
    match result {
        Ok((mut figures, replies)) => {
            figures.missing_flags = missing;
            out.figures = Some(figures);
            (out, replies)
        }
        Err(why) => {
            out.broken = Some(why);
            (out, None)
        }
    }
}

fn spawn_server(
    env: &Env,
    args: &[String],
    log: &Path,
    nofile: Option<u64>,
) -> Result<(Child, SocketAddr), String> {
    let mut cmd = Command::new(&env.server_bin);
    cmd.args(args);
    let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    child::stdio(&mut cmd, stderr);
    affinity::pin(&mut cmd, &env.settings.server_cpus).map_err(|e| format!("pinning: {e}"))?;
    if let Some(n) = nofile {
        use std::os::unix::process::CommandExt as _;
        let lim = libc::rlimit { rlim_cur: n as libc::rlim_t, rlim_max: n as libc::rlim_t };
        // SAFETY: setrlimit is async-signal-safe; the struct is copied into the closure. This
        // is what `prlimit --nofile=N` does before exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut ch = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", env.server_bin.display()))?;
    match child::wait_listening(&mut ch, Duration::from_secs(5)) {
        Ok(addr) => match addr.parse() {
            Ok(a) => Ok((ch, a)),
            Err(_) => {
                child::kill(&mut ch, "bad address");
                Err(format!("server printed an address that does not parse: {addr}"))
            }
        },
        Err(why) => {
            child::kill(&mut ch, "no listening line");
            Err(why)
        }
    }
}

/// Peak figures of the sampler.
#[derive(Default, Clone, Copy)]
struct Peaks {
    rss: u64,
    pss: Option<u64>,
    procs: u64,
}

/// Samples the server's tree every 25 ms while `recording` is set, until `stop`. It runs
/// through the baseline too (idle), so the probe shares its CPU with the same sampler in both
/// phases. The tree's PIDs are refreshed every 250 ms (a scan of /proc); in between only their
/// `status` files are read. PSS (smaps_rollup, slow) is read once a second when there are
/// child processes.
fn sampler(pid: u32, recording: &AtomicBool, stop: &AtomicBool) -> Peaks {
    lower_priority();
    let mut p = Peaks::default();
    let mut pids: Vec<u32> = vec![pid];
    let mut last_scan: Option<Instant> = None;
    let mut last_pss: Option<Instant> = None;
    loop {
        let done = stop.load(Ordering::Relaxed);
        if recording.load(Ordering::Relaxed) {
            if last_scan.is_none_or(|t| t.elapsed() >= Duration::from_millis(250)) {
                last_scan = Some(Instant::now());
                if let Ok(tree) = procfs::tree(pid) {
                    pids = tree.iter().filter(|(_, st)| !st.ended()).map(|(p, _)| *p).collect();
                    p.procs = p.procs.max(tree.len() as u64);
                }
            }
            let rss: u64 =
                pids.iter().filter_map(|q| procfs::read_status(*q).ok()).map(|st| st.rss_kib).sum();
            p.rss = p.rss.max(rss);
            if pids.len() > 1 && last_pss.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_pss = Some(Instant::now());
                let pss: u64 = pids.iter().filter_map(|q| procfs::read_pss(*q).ok()).sum();
                p.pss = Some(p.pss.unwrap_or(0).max(pss));
            }
        }
        if done {
            return p;
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Puts the calling thread in `SCHED_IDLE`; threads it starts inherit it. The attack shares its
/// CPU with the probe, and a busy attacker must not delay the probe's own wake-ups (that would be
/// the client's latency, not the server's). Nice 19 alone was not enough: a waking nice-0
/// thread may still wait out a nice-19 thread's time slice, and while the malformed attack kept
/// 8 threads runnable against a fast event loop, the probe's thread waited up to 3.4 ms for its
/// CPU, which put those cells' probe p99 at 3.5-7 ms (at 644ca1b: `perf sched record -- sleep 6`
/// during `abuse run --models reactor --scenarios malformed --protos echo-line`, then
/// `perf sched timehist`, the loadgen thread's scheduling delay). A `SCHED_IDLE`
/// thread runs only when nothing else wants the CPU and yields to a waking thread at once; any
/// thread may enter it, and should that fail, nice 19 remains.
fn lower_priority() {
    // SAFETY: gettid, setpriority and sched_setscheduler act on this thread only; the
    // parameter is read, not kept.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

fn tree_cpu_seconds(pid: u32) -> f64 {
    procfs::tree(pid)
        .map(|t| {
            let c = procfs::tree_cpu(&t);
            (c.user + c.system) as f64 / procfs::ticks_per_second()
        })
        .unwrap_or(0.0)
}

/// A loadgen probe started in the background.
struct ProbeRun {
    child: Child,
    json: PathBuf,
    limit: Instant,
}

fn start_probe(
    env: &Env,
    addr: SocketAddr,
    proto: Proto,
    seconds: f64,
    name: &str,
) -> Result<ProbeRun, String> {
    let json = env.scratch.join(format!("{name}.json"));
    let _ = std::fs::remove_file(&json);
    let timeout_ms = if env.quick { 2000 } else { 3000 };
    let mut cmd = Command::new(&env.loadgen_bin);
    cmd.args(["run", "--addr", &addr.to_string(), "--proto", proto.name(), "--conns", "1"]);
    cmd.args(["--rate", &env.settings.probe_rate.to_string(), "--warmup", "0", "--spin", "0"]);
    cmd.args(["--duration", &format!("{}ms", (seconds * 1000.0) as u64)]);
    cmd.args(["--timeout", &format!("{timeout_ms}ms"), "--json"]).arg(&json);
    match proto {
        Proto::Http => {}
        Proto::Kv => {
            cmd.args(["--size", "16", "--kv-keys", "16"]);
        }
        _ => {
            cmd.args(["--size", "16"]);
        }
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    affinity::pin(&mut cmd, &env.settings.attack_cpus).map_err(|e| format!("pinning loadgen: {e}"))?;
    let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", env.loadgen_bin.display()))?;
    let limit = Instant::now() + Duration::from_secs_f64(seconds + 15.0) + Duration::from_millis(timeout_ms);
    Ok(ProbeRun { child, json, limit })
}

fn finish_probe(mut p: ProbeRun) -> Probe {
    let status = loop {
        match p.child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < p.limit => thread::sleep(Duration::from_millis(10)),
            _ => {
                child::kill(&mut p.child, "probe overran");
                break None;
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = p.child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut stderr);
    }
    let Some(status) = status else {
        return Probe {
            p99_ms: None,
            replies: 0,
            error: Some("loadgen overran its time and was killed".into()),
            unsent: 0,
        };
    };
    let doc: Option<serde_json::Value> =
        std::fs::read_to_string(&p.json).ok().and_then(|t| serde_json::from_str(&t).ok());
    let Some(doc) = doc else {
        let said =
            stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_owned();
        return Probe {
            p99_ms: None,
            replies: 0,
            error: Some(format!("loadgen {}: {said}", child::describe_exit(status).0)),
            unsent: 0,
        };
    };
    probe_from_report(&doc)
}

/// Reads loadgen's `--json` report into a [`Probe`]: the headline p99, replies, and every
/// non-zero error counter (unsent requests when many: a stuck connection leaves them unsent).
pub fn probe_from_report(doc: &serde_json::Value) -> Probe {
    let pct = doc
        .pointer("/percentiles/corrected")
        .filter(|v| !v.is_null())
        .or_else(|| doc.pointer("/percentiles/service_time").filter(|v| !v.is_null()));
    let counts = doc.get("counts").and_then(|c| c.as_object());
    let replies = counts.and_then(|c| c.get("requests")).and_then(|v| v.as_u64()).unwrap_or(0);
    // An empty histogram reports a p99 of 0: with no replies there is no p99 to show.
    let p99_ms =
        pct.and_then(|p| p.get("p99")).and_then(|v| v.as_f64()).filter(|_| replies > 0).map(|ns| ns / 1e6);
    let count = |k: &str| counts.and_then(|c| c.get(k)).and_then(|v| v.as_u64()).unwrap_or(0);
    let unsent = count("unsent");
    let mut errors: Vec<String> = counts
        .into_iter()
        .flatten()
        .filter(|(k, _)| !matches!(k.as_str(), "requests" | "warmup_requests" | "deliveries" | "unsent"))
        .filter_map(|(k, v)| v.as_u64().filter(|n| *n > 0).map(|n| format!("{k} {n}")))
        .collect();
    // A request that is late leaves the ones due after it waiting on the one connection; those
    // still waiting when the window closes are unsent. A few are the tail of a late reply (its
    // lateness is in the p99); many mean the connection was stuck.
    if unsent > 0 && (!errors.is_empty() || unsent * 10 > replies + unsent) {
        errors.push(format!("unsent {unsent}"));
    }
    if replies == 0 && errors.is_empty() {
        errors.push("no replies".into());
    }
    let error = (!errors.is_empty()).then(|| {
        let first = doc.get("first_error").and_then(|v| v.as_str());
        match first {
            Some(f) => format!("{} ({f})", errors.join(", ")),
            None => errors.join(", "),
        }
    });
    Probe { p99_ms, replies, error, unsent }
}

fn probe(env: &Env, addr: SocketAddr, proto: Proto, seconds: f64, name: &str) -> Result<Probe, String> {
    Ok(finish_probe(start_probe(env, addr, proto, seconds, name)?))
}

fn measure(
    env: &Env,
    sc: &Scenario,
    proto: Proto,
    args: &[String],
    log: &Path,
    seed: u64,
) -> Result<(Figures, Replies), String> {
    let (mut server, addr) = spawn_server(env, args, log, sc.nofile)?;
    let pid = server.id();
    let s = &env.settings;
    let result = (|| {
        if wire::time_to_serve(addr, proto, Duration::from_secs(3)).is_none() {
            return Err("the server did not serve a first client within 3 s (before any attack)".to_owned());
        }
        let tag = format!("{}-{}", sc.id, proto.name());
        let stop_sampling = AtomicBool::new(false);
        let recording = AtomicBool::new(false);
        let stop_attack = AtomicBool::new(false);
        let (peaks, baseline, rss_before, cpu_before, t0, report, during, t_end) =
            thread::scope(|scope| -> Result<_, String> {
                // Whatever way this closure returns, the sampler and the attack are told to stop
                // first, so the scope's joins never wait on them.
                let _stop = StopOnDrop([&stop_sampling, &stop_attack]);
                let sampler = scope.spawn(|| sampler(pid, &recording, &stop_sampling));
                let baseline = probe(env, addr, proto, s.baseline_seconds, &format!("{tag}-baseline"))?;
                let rss_before = procfs::sample_tree(pid, false).map(|t| t.rss_kib).unwrap_or(0);
                let cpu_before = tree_cpu_seconds(pid);
                let t0 = Instant::now();
                let cap = if sc.id == "malformed" { 300.0 } else { s.window_seconds + 30.0 };
                let deadline = t0 + Duration::from_secs_f64(cap);
                recording.store(true, Ordering::Relaxed);
                let early = if sc.probe_first {
                    let p = start_probe(env, addr, proto, s.window_seconds + 1.0, &format!("{tag}-during"))?;
                    thread::sleep(Duration::from_millis(300));
                    Some(p)
                } else {
                    None
                };
                let (tx, rx) = mpsc::sync_channel::<()>(1);
                let stop_attack = &stop_attack;
                let attacker = scope.spawn(move || {
                    lower_priority();
                    let ready = move || {
                        let _ = tx.try_send(());
                    };
                    let attack = Attack {
                        addr,
                        proto,
                        quick: env.quick,
                        server_pid: pid,
                        stop: stop_attack,
                        deadline,
                        ready: &ready,
                        seed,
                        window: Duration::from_secs_f64(s.window_seconds),
                    };
                    let r = (sc.attack)(&attack);
                    (r, Instant::now())
                });
                let ready_by = Instant::now() + Duration::from_secs(10);
                while rx.recv_timeout(Duration::from_millis(20)).is_err()
                    && !attacker.is_finished()
                    && Instant::now() < ready_by
                {}
                let during = match early {
                    Some(p) => Some(finish_probe(p)),
                    None if sc.terminates => None,
                    None => Some(probe(env, addr, proto, s.window_seconds, &format!("{tag}-during"))?),
                };
                stop_attack.store(true, Ordering::Relaxed);
                let (report, t_end) = attacker.join().map_err(|_| "the attack panicked".to_owned())?;
                stop_sampling.store(true, Ordering::Relaxed);
                let peaks = sampler.join().unwrap_or_default();
                Ok((peaks, baseline, rss_before, cpu_before, t0, report, during, t_end))
            })?;
        let attack_seconds = t_end.duration_since(t0).as_secs_f64();
        let cpu = (tree_cpu_seconds(pid) - cpu_before).max(0.0);
        let AttackReport { lost, corrupted, counters, check_failed, replies, terminated_at } = report;
        let mut fig = Figures {
            rss_before_kib: rss_before,
            peak_rss_kib: peaks.rss,
            peak_pss_kib: peaks.pss,
            peak_processes: peaks.procs,
            cpu_share: if attack_seconds > 0.0 { cpu / attack_seconds } else { 0.0 },
            attack_seconds,
            baseline: Some(baseline),
            during,
            lost,
            corrupted,
            counters,
            check_failed,
            ..Figures::default()
        };
        if sc.terminates {
            let sent = terminated_at.unwrap_or(t_end);
            let grace = grace_of(args);
            let waited = loop {
                match server.try_wait() {
                    Ok(Some(st)) => break Some((st, sent.elapsed())),
                    Ok(None) if sent.elapsed() < grace + Duration::from_secs(3) => {
                        thread::sleep(Duration::from_millis(10))
                    }
                    _ => break None,
                }
            };
            match waited {
                Some((st, took)) => {
                    let (how, clean) = child::describe_exit(st);
                    fig.exit = format!("{how} {:.2} s after SIGTERM", took.as_secs_f64());
                    fig.survived = clean && took <= grace + Duration::from_millis(500);
                }
                None => {
                    let (how, _) = child::kill(&mut server, "still running 3 s past the grace period");
                    fig.exit = how;
                    fig.survived = false;
                }
            }
            fig.rss_after_kib = 0;
        } else {
            let cap = Duration::from_secs_f64(s.recovery_cap_seconds);
            fig.recovery_seconds = wire::time_to_serve(addr, proto, cap).map(|d| d.as_secs_f64());
            thread::sleep(Duration::from_millis(300));
            fig.rss_after_kib = procfs::sample_tree(pid, false).map(|t| t.rss_kib).unwrap_or(0);
            fig.survived = matches!(server.try_wait(), Ok(None));
        }
        Ok((fig, replies))
    })();
    // Always stop our server, whatever happened above.
    let end = child::stop(&mut server, Duration::from_secs(8));
    match result {
        Ok((mut fig, replies)) => {
            if fig.exit.is_empty() {
                fig.exit = end.0;
            }
            Ok((fig, replies))
        }
        Err(e) => Err(e),
    }
}

/// Sets every flag when dropped.
struct StopOnDrop<'a, const N: usize>([&'a AtomicBool; N]);

impl<const N: usize> Drop for StopOnDrop<'_, N> {
    fn drop(&mut self) {
        for f in self.0 {
            f.store(true, Ordering::Relaxed);
        }
    }
}

fn grace_of(args: &[String]) -> Duration {
    args.iter()
        .position(|a| a == "--grace")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| humantime::parse_duration(v).ok())
        .unwrap_or(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_the_server_lacks_are_left_out_and_named() {
        let known: BTreeSet<String> = ["--grace", "--idle-timeout"].map(String::from).into();
        let (used, missing) =
            usable_flags(&["--request-timeout", "2s", "--idle-timeout", "off", "--grace", "2s"], &known);
        assert_eq!(used, ["--idle-timeout", "off", "--grace", "2s"]);
        assert_eq!(missing, ["--request-timeout"]);
    }

    #[test]
    fn a_probe_report_gives_p99_and_errors() {
        let doc = serde_json::json!({
            "counts": {"requests": 100, "timeouts": 0, "unsent": 0},
            "percentiles": {"corrected": {"p99": 2_500_000u64}, "service_time": {"p99": 1}},
        });
        let p = probe_from_report(&doc);
        assert_eq!((p.p99_ms, p.replies, p.error), (Some(2.5), 100, None));
        // Two unsent of 200: the tail of one late reply, not an error.
        let late = serde_json::json!({
            "counts": {"requests": 198, "unsent": 2},
            "percentiles": {"corrected": {"p99": 9_000_000u64}},
        });
        assert_eq!((probe_from_report(&late).error, probe_from_report(&late).unsent), (None, 2));
        let bad = serde_json::json!({
            "counts": {"requests": 3, "timeouts": 1, "unsent": 40},
            "first_error": "no reply in 2s",
            "percentiles": {"corrected": null, "service_time": {"p99": 1_000_000u64}},
        });
        let p = probe_from_report(&bad);
        assert_eq!(p.p99_ms, Some(1.0));
        assert_eq!(p.error.as_deref(), Some("timeouts 1, unsent 40 (no reply in 2s)"));
        // No replies: loadgen's empty histogram says p99 0, which is no p99 at all.
        let none = serde_json::json!({
            "counts": {"requests": 0, "timeouts": 1, "unsent": 499},
            "percentiles": {"corrected": {"p99": 0}},
        });
        assert_eq!(probe_from_report(&none).p99_ms, None);
    }
}
