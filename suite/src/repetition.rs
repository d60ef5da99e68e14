//! One repetition of one point: start the server, run loadgen against it while sampling the
//! server from /proc, stop the server, and record everything that happened.
//!
//! Nothing here returns an error for a *finding*: a server that will not start, crashes, hangs
//! on SIGTERM or drops connections, and a loadgen that fails or has to be stopped, are all
//! written into the [`Repetition`] as failures in words, and the suite goes on.
//!
//! The server's CPU time and context switches are taken between two snapshots. When loadgen
//! announces its phases on stderr (`loadgen: measuring`, `loadgen: measured`) the snapshots
//! bracket the measured phase exactly; otherwise they bracket the whole loadgen run (connect,
//! warm-up and drain included), and the window's name says which.

use std::fs::File;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::affinity;
use crate::child;
use crate::loadgen_doc::LoadgenDoc;
use crate::matrix::{PaceSpec, PointSpec};
use crate::models::Unavailable;
use crate::procfs;
use crate::results::{LoadgenRun, Repetition, Sample, Samples, ServerRun};

/// What every repetition shares.
#[derive(Debug, Clone)]
pub struct Context {
    /// The `server` binary.
    pub server_bin: PathBuf,
    /// The `loadgen` binary.
    pub loadgen_bin: PathBuf,
    /// The run directory; logs, raw reports and `.hgrm` files go below it.
    pub out_dir: PathBuf,
    /// The server's CPUs (empty: not pinned); a scaling point uses the first N.
    pub server_cpus: Vec<usize>,
    /// loadgen's CPUs (empty: not pinned).
    pub loadgen_cpus: Vec<usize>,
}

impl Context {
    /// The CPUs the server of `spec` runs on: the first `spec.server_cpus` of the list, or all.
    pub fn server_cpus_for(&self, spec: &PointSpec) -> Result<Vec<usize>, String> {
        match spec.server_cpus {
            None => Ok(self.server_cpus.clone()),
            // Not pinned at all: the one-CPU step runs unpinned, as every other point does.
            Some(_) if self.server_cpus.is_empty() => Ok(Vec::new()),
            Some(n) if n <= self.server_cpus.len() => Ok(self.server_cpus[..n].to_vec()),
            Some(n) => Err(format!(
                "the point needs {n} server CPUs and the server's list has {}",
                self.server_cpus.len()
            )),
        }
    }
}

/// How long a server may take to print `listening on`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM (the matrix gives it `--grace 2s`).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Sampling period (longer when a sample takes long, see [`sampling_period`]).
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// PSS is read on every this many samples (and at the end): reading `smaps_rollup` walks a
/// process's page tables, which costs more than the rest of a sample.
const PSS_EVERY: u64 = 5;

/// The time until the next sample: [`SAMPLE_EVERY`], or ten times what the last sample took,
/// so that sampling a tree of thousands of processes costs the suite about a tenth of a CPU
/// rather than all of one (the suite is not pinned; its CPU time comes from somebody).
fn sampling_period(last_took: Duration) -> Duration {
    SAMPLE_EVERY.max(last_took * 10)
}

/// Formats a duration the way loadgen's flags read it (`500ms`, `2s`).
pub fn flag_duration(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    if ms % 1000 == 0 { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}

/// The loadgen command line for `spec` against `addr`, writing into `json` and `hgrm`.
pub fn loadgen_args(
    spec: &PointSpec,
    addr: &str,
    rate: Option<f64>,
    json: &Path,
    hgrm: &Path,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--addr".into(),
        addr.into(),
        "--proto".into(),
        spec.proto.clone(),
        "--conns".into(),
        spec.conns.to_string(),
        "--threads".into(),
        spec.loadgen_threads.to_string(),
        "--depth".into(),
        spec.depth.to_string(),
    ];
    if let Some(rate) = rate {
        args.extend(["--rate".into(), format!("{rate:.0}")]);
    }
    if spec.conn_per_request {
        args.push("--conn-per-request".into());
    }
    args.extend([
        "--warmup".into(),
        flag_duration(spec.warmup_s),
        "--duration".into(),
        flag_duration(spec.duration_s),
        "--seed".into(),
        spec.seed.to_string(),
        "--idle-conns".into(),
        spec.idle_conns.to_string(),
        "--timeout".into(),
        flag_duration(spec.timeout_s),
        "--json".into(),
        json.display().to_string(),
        "--hgrm".into(),
        hgrm.display().to_string(),
    ]);
    if !spec.size.is_empty() {
        args.extend(["--size".into(), spec.size.clone()]);
    }
    args.extend(spec.loadgen_args.iter().cloned());
    args
}

/// The server command line's arguments for `spec`.
pub fn server_args(spec: &PointSpec) -> Vec<String> {
    crate::matrix::plan::server_command(spec)
}

fn command_line(bin: &Path, args: &[String]) -> Vec<String> {
    std::iter::once(bin.display().to_string()).chain(args.iter().cloned()).collect()
}

/// Runs repetition `rep` of `spec`; `rate` is the open-loop rate, if any.
pub fn run(ctx: &Context, spec: &PointSpec, rep: u32, rate: Option<f64>) -> Repetition {
    let stem = format!("{}.r{rep}", spec.file_stem());
    let rel = |dir: &str, suffix: &str| format!("{dir}/{stem}.{suffix}");
    let server_log = rel("logs", "server.log");
    let s_args = server_args(spec);
    let mut out = Repetition {
        rep,
        server: ServerRun {
            command: command_line(&ctx.server_bin, &s_args),
            addr: None,
            startup_ms: None,
            exit: "not started".into(),
            clean_exit: false,
            cpus: Vec::new(),
            log: server_log.clone(),
        },
        loadgen: None,
        samples: None,
        failures: Vec::new(),
        unavailable: None,
    };
    if matches!(spec.pace, PaceSpec::Fraction { .. }) && rate.is_none() {
        out.failures.push("no open-loop rate: its closed-loop base point has no throughput".into());
        return out;
    }
    let log = match File::create(ctx.out_dir.join(&server_log)) {
        Ok(f) => f,
        Err(e) => {
            out.failures.push(format!("cannot create {server_log}: {e}"));
            return out;
        }
    };
    let cpus = match ctx.server_cpus_for(spec) {
        Ok(cpus) => cpus,
        Err(why) => {
            out.failures.push(why);
            return out;
        }
    };
    let mut cmd = Command::new(&ctx.server_bin);
    cmd.args(&s_args);
    child::stdio(&mut cmd, log);
    if let Err(e) = affinity::pin(&mut cmd, &cpus) {
        out.failures.push(format!("cannot pin the server to CPUs {}: {e}", crate::cpus::format(&cpus)));
        return out;
    }
    out.server.cpus = cpus;
    let started = Instant::now();
    let mut server = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            out.failures.push(format!("cannot start {}: {e}", ctx.server_bin.display()));
            return out;
        }
    };
    let addr = match child::wait_listening(&mut server, STARTUP_TIMEOUT) {
        Ok(addr) => addr,
        Err(why) => {
            let (exit, _) = child::stop(&mut server, Duration::from_secs(2));
            out.server.exit = exit;
            // A model that cannot serve this point says so in one line and exits before it
            // listens: a finding about the model, not a failure.
            let said = std::fs::read_to_string(ctx.out_dir.join(&server_log)).unwrap_or_default();
            match Unavailable::from_stderr(&said) {
                Some(unavailable) => out.unavailable = Some(unavailable),
                None => out.failures.push(why),
            }
            return out;
        }
    };
    out.server.addr = Some(addr.clone());
    out.server.startup_ms = Some(started.elapsed().as_millis() as u64);

    let json_rel = rel("raw", "loadgen.json");
    let hgrm_rel = rel("hgrm", "hgrm");
    let l_args = loadgen_args(spec, &addr, rate, &ctx.out_dir.join(&json_rel), &ctx.out_dir.join(&hgrm_rel));
    let (lg, samples) = drive_loadgen(ctx, spec, &mut server, &l_args, &stem, &mut out.failures);
    out.samples = samples;

    let (exit, clean) = child::stop(&mut server, STOP_TIMEOUT);
    if !clean {
        out.failures.push(format!("server did not stop cleanly on SIGTERM: {exit}"));
    }
    out.server.exit = exit;
    out.server.clean_exit = clean;

    let mut lg = match lg {
        Some(lg) => lg,
        None => return out,
    };
    match std::fs::read_to_string(ctx.out_dir.join(&json_rel)) {
        Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(value) => {
                match LoadgenDoc::from_value(&value) {
                    Ok(doc) if !doc.clean => out.failures.push(format!(
                        "loadgen: {}",
                        doc.first_error.clone().unwrap_or_else(|| crate::loadgen_doc::error_counts(&value))
                    )),
                    Ok(_) => {}
                    Err(e) => out.failures.push(e.to_string()),
                }
                lg.report = Some(value);
            }
            Err(e) => out.failures.push(format!("{json_rel} is not JSON: {e}")),
        },
        Err(_) if lg.killed_at_deadline => {}
        Err(e) => {
            // Say why in loadgen's own words: the last line it wrote on stderr.
            let err_log = std::fs::read_to_string(ctx.out_dir.join(format!("logs/{stem}.loadgen.err")))
                .unwrap_or_default();
            let last = err_log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("nothing on stderr");
            out.failures.push(format!("loadgen wrote no report ({json_rel}: {e}); it said: {}", last.trim()));
        }
    }
    if ctx.out_dir.join(&hgrm_rel).exists() {
        lg.hgrm = Some(hgrm_rel);
    }
    if lg.exit_code != Some(0) && !lg.killed_at_deadline && out.failures.is_empty() {
        out.failures.push(format!("loadgen exited with {:?}", lg.exit_code));
    }
    out.loadgen = Some(lg);
    out
}

/// Phase announcements on loadgen's stderr.
enum Phase {
    Measuring,
    Measured,
}

/// The server's process tree at a phase boundary (see [`crate::procfs`]).
#[derive(Clone)]
struct Snapshot {
    at: Instant,
    /// The tree's CPU time, reaped children included.
    cpu: procfs::CpuTicks,
    /// The part of `cpu` that reaped children used.
    reaped: procfs::CpuTicks,
    switches: procfs::Switches,
}

fn snapshot(pid: u32) -> Option<Snapshot> {
    let at = Instant::now();
    let tree = procfs::tree(pid).ok()?;
    Some(Snapshot {
        at,
        cpu: procfs::tree_cpu(&tree),
        reaped: procfs::tree_reaped(&tree),
        switches: procfs::tree_switches(&tree).ok()?,
    })
}

/// Runs loadgen to its end (or the deadline) while sampling the server.
fn drive_loadgen(
    ctx: &Context,
    spec: &PointSpec,
    server: &mut Child,
    args: &[String],
    stem: &str,
    failures: &mut Vec<String>,
) -> (Option<LoadgenRun>, Option<Samples>) {
    let out_rel = format!("logs/{stem}.loadgen.out");
    let err_rel = format!("logs/{stem}.loadgen.err");
    let (stdout, mut stderr_file) =
        match (File::create(ctx.out_dir.join(&out_rel)), File::create(ctx.out_dir.join(&err_rel))) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                failures.push(format!("cannot create loadgen logs: {e}"));
                return (None, None);
            }
        };
    let mut cmd = Command::new(&ctx.loadgen_bin);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::from(stdout)).stderr(Stdio::piped());
    if let Err(e) = affinity::pin(&mut cmd, &ctx.loadgen_cpus) {
        failures.push(format!("cannot pin loadgen to CPUs {}: {e}", crate::cpus::format(&ctx.loadgen_cpus)));
        return (None, None);
    }
    let pid = server.id();
    let t0 = Instant::now();
    let whole_start = snapshot(pid);
    let mut loadgen = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            failures.push(format!("cannot start {}: {e}", ctx.loadgen_bin.display()));
            return (None, None);
        }
    };
    let (tx, rx) = mpsc::channel();
    if let Some(stderr) = loadgen.stderr.take() {
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(stderr_file, "{line}");
                let phase = match line.trim() {
                    "loadgen: measuring" => Phase::Measuring,
                    "loadgen: measured" => Phase::Measured,
                    _ => continue,
                };
                let _ = tx.send(phase);
            }
        });
    }
    let deadline = spec.deadline();
    let (mut measuring, mut measured) = (None, None);
    let mut series = Vec::new();
    let (mut threads_peak, mut fds_peak, mut rss_peak, mut processes_peak) = (0, 0, 0, 0);
    let mut pss_peak: Option<u64> = None;
    let (mut samples_taken, mut sample_every) = (0u64, SAMPLE_EVERY);
    let mut stderr_open = true;
    let mut last_sample: Option<Instant> = None;
    let mut server_gone = false;
    let ticks = procfs::ticks_per_second();
    let (exit_code, killed) = loop {
        if stderr_open {
            match rx.recv_timeout(SAMPLE_EVERY / 4) {
                Ok(Phase::Measuring) => measuring = snapshot(pid),
                Ok(Phase::Measured) => measured = snapshot(pid),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => stderr_open = false,
            }
        } else {
            thread::sleep(SAMPLE_EVERY / 4);
        }
        if !server_gone && last_sample.is_none_or(|t| t.elapsed() >= sample_every) {
            let started = Instant::now();
            last_sample = Some(started);
            if let Ok(Some(status)) = server.try_wait() {
                server_gone = true;
                failures.push(format!("server ended during the run: {}", child::describe_exit(status).0));
            } else if let Ok(tree) = procfs::sample_tree(pid, samples_taken % PSS_EVERY == 0) {
                samples_taken += 1;
                threads_peak = threads_peak.max(tree.threads);
                fds_peak = fds_peak.max(tree.fds);
                rss_peak = rss_peak.max(tree.rss_kib);
                processes_peak = processes_peak.max(tree.processes);
                if let Some(pss) = tree.pss_kib {
                    pss_peak = Some(pss_peak.unwrap_or(0).max(pss));
                }
                series.push(Sample {
                    t_ms: t0.elapsed().as_millis() as u64,
                    rss_kib: tree.rss_kib,
                    threads: tree.threads,
                    fds: tree.fds,
                    cpu_seconds: (tree.cpu.user + tree.cpu.system) as f64 / ticks,
                    processes: Some(tree.processes),
                    pss_kib: tree.pss_kib,
                });
            }
            sample_every = sampling_period(started.elapsed());
        }
        match loadgen.try_wait() {
            Ok(Some(status)) => break (status.code(), false),
            Ok(None) if t0.elapsed() > deadline => {
                let _ = child::kill(&mut loadgen, "deadline");
                failures.push(format!(
                    "loadgen did not finish within {:.0} s (warm-up + duration + 2 × timeout + slack + 10 s); stopped",
                    deadline.as_secs_f64()
                ));
                break (None, true);
            }
            Ok(None) => {}
            Err(e) => {
                failures.push(format!("waiting for loadgen failed: {e}"));
                let _ = child::kill(&mut loadgen, "wait failed");
                break (None, true);
            }
        }
    };
    let wall_seconds = t0.elapsed().as_secs_f64();
    let whole_end = snapshot(pid);
    let final_tree = procfs::sample_tree(pid, true).ok();
    let (window, pair) = match (measuring, measured) {
        (Some(a), Some(b)) => ("measured-phase", Some((a, b))),
        _ => ("whole-loadgen-run", whole_start.zip(whole_end)),
    };
    let switches = pair.as_ref().map(|(a, b)| procfs::switches_between(&a.switches, &b.switches));
    let samples = match (pair, final_tree, switches) {
        (Some((a, b)), Some(fin), Some(switches)) => Some(Samples {
            scope: Some("process-tree".into()),
            window: window.into(),
            window_seconds: b.at.duration_since(a.at).as_secs_f64(),
            cpu_user_seconds: b.cpu.user.saturating_sub(a.cpu.user) as f64 / ticks,
            cpu_system_seconds: b.cpu.system.saturating_sub(a.cpu.system) as f64 / ticks,
            voluntary_switches: switches.0,
            involuntary_switches: switches.1,
            // The server's own peak is exact (the kernel keeps it); with children, the largest
            // sum seen may be higher.
            rss_peak_kib: fin.root_hwm_kib.max(rss_peak).max(fin.rss_kib),
            rss_final_kib: fin.rss_kib,
            threads_peak: threads_peak.max(fin.threads),
            threads_final: fin.threads,
            fds_peak: fds_peak.max(fin.fds),
            fds_final: fin.fds,
            processes_peak: Some(processes_peak.max(fin.processes)),
            processes_final: Some(fin.processes),
            pss_peak_kib: match (pss_peak, fin.pss_kib) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            pss_final_kib: fin.pss_kib,
            reaped_cpu_seconds: Some(
                (b.reaped.user + b.reaped.system).saturating_sub(a.reaped.user + a.reaped.system) as f64
                    / ticks,
            ),
            series,
        }),
        _ => None,
    };
    let run = LoadgenRun {
        command: command_line(&ctx.loadgen_bin, args),
        exit_code,
        killed_at_deadline: killed,
        wall_seconds,
        report: None,
        hgrm: None,
        logs: vec![out_rel, err_rel],
    };
    (Some(run), samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::expand::tests::{FIVE, available};
    use crate::matrix::{DEFAULT_MATRIX, Overrides, expand, parse};

    #[test]
    fn command_lines_carry_every_setting() {
        let plan = expand(
            &parse(DEFAULT_MATRIX).unwrap(),
            &Overrides { quick: true, ..Overrides::default() },
            &available(&FIVE),
        )
        .unwrap();
        let p = plan.points.iter().find(|p| p.id == "c10k/reactor/c16+i10000").unwrap();
        let args = loadgen_args(p, "127.0.0.1:9", None, Path::new("a.json"), Path::new("a.hgrm"));
        let joined = args.join(" ");
        assert!(joined.contains("--idle-conns 10000"), "{joined}");
        assert!(joined.contains("--warmup 500ms --duration 2s"), "{joined}");
        assert!(!joined.contains("--rate"));
        let open = loadgen_args(p, "127.0.0.1:9", Some(1234.4), Path::new("a.json"), Path::new("a.hgrm"));
        assert!(open.join(" ").contains("--rate 1234"));
        assert_eq!(
            server_args(p)[..6],
            ["--model", "reactor", "--proto", "echo-line", "--addr", "127.0.0.1:0"]
        );
        assert_eq!(flag_duration(0.2), "200ms");
        assert_eq!(flag_duration(0.0), "0s");
    }

    #[test]
    fn size_is_optional_and_protocol_flags_come_last() {
        let plan = expand(
            &parse(DEFAULT_MATRIX).unwrap(),
            &Overrides { quick: true, ..Overrides::default() },
            &available(&FIVE),
        )
        .unwrap();
        let mut p = plan.points[0].clone();
        assert!(loadgen_args(&p, "a", None, Path::new("j"), Path::new("h")).contains(&"--size".to_owned()));
        p.size.clear();
        p.loadgen_args = vec!["--kv-keys".into(), "100".into()];
        let args = loadgen_args(&p, "a", None, Path::new("j"), Path::new("h"));
        assert!(!args.contains(&"--size".to_owned()), "{args:?}");
        assert_eq!(args[args.len() - 2..], ["--kv-keys", "100"]);
    }

    #[test]
    fn a_scaling_point_takes_the_first_cpus_of_the_list() {
        let ctx = Context {
            server_bin: "server".into(),
            loadgen_bin: "loadgen".into(),
            out_dir: ".".into(),
            server_cpus: vec![4, 5, 6, 7],
            loadgen_cpus: vec![8],
        };
        let plan = expand(&parse(DEFAULT_MATRIX).unwrap(), &Overrides::default(), &available(&FIVE)).unwrap();
        let mut p = plan.points[0].clone();
        assert_eq!(ctx.server_cpus_for(&p), Ok(vec![4, 5, 6, 7]));
        p.server_cpus = Some(2);
        assert_eq!(ctx.server_cpus_for(&p), Ok(vec![4, 5]));
        p.server_cpus = Some(8);
        assert!(ctx.server_cpus_for(&p).unwrap_err().contains("needs 8 server CPUs"));
        let unpinned = Context { server_cpus: vec![], ..ctx };
        assert_eq!(unpinned.server_cpus_for(&p), Ok(vec![]));
    }
}
