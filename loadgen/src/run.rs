//! One measurement from start to finish: connect, start the workers, watch the clock, merge.
//!
//! The main thread does no I/O of its own during the run. It samples loadgen's CPU time at the
//! start and end of the measured phase (so warm-up and draining are not charged to the
//! requests), prints the progress line if asked, and then joins the workers and adds up what
//! they found.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::{ProtocolKind, RunConfig};
use crate::connect::{self, Opened};
use crate::engine::clock::Clock;
use crate::engine::worker::Worker;
use crate::engine::{Plan, Tally};
use crate::error::RunError;
use crate::payload::PayloadPool;
use crate::proto::{ClientProtocol, EchoFrame, EchoLine, Http, Kv};
use crate::report::RunReport;
use crate::sys::{self, CpuTime};

/// How often the main thread looks at the clock and the workers while the run goes on.
const WATCH_STEP: Duration = Duration::from_millis(100);

/// How often the progress line is rewritten.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// File descriptors kept in reserve for everything that is not a connection (poll instances,
/// timers, stdio, output files).
const SPARE_FDS: u64 = 64;

/// Runs one measurement as `cfg` describes and reports what it found.
///
/// Errors only when nothing could be measured (bad settings, nothing listening, no file
/// descriptors); everything that goes wrong *during* the run is counted in the report.
pub fn run(cfg: &RunConfig) -> Result<RunReport, RunError> {
    cfg.validate()?;
    let limit = sys::raise_fd_limit()?;
    let needed = cfg.conns + cfg.idle_conns;
    if needed as u64 + SPARE_FDS > limit {
        return Err(RunError::TooManyConnections { needed, limit });
    }
    if cfg.protocol == ProtocolKind::Chat {
        return crate::chat::run(cfg);
    }
    let pool = PayloadPool::new(cfg.size, cfg.seed);
    // Dispatch once, here: the engine is generic over the protocol, so each protocol gets its
    // own monomorphised hot loop and the engine never names a concrete protocol.
    match cfg.protocol {
        ProtocolKind::EchoLine => run_with(cfg, &EchoLine::new(pool)),
        ProtocolKind::EchoFrame => run_with(cfg, &EchoFrame::new(pool)),
        ProtocolKind::Http => run_with(cfg, &Http::new(&cfg.addr.to_string())),
        ProtocolKind::Chat => crate::chat::run(cfg),
        ProtocolKind::Kv => run_with(cfg, &Kv::new(pool, cfg.kv_keys, cfg.conns as u64, cfg.kv_get_ratio)),
    }
}

fn run_with<P: ClientProtocol>(cfg: &RunConfig, proto: &P) -> Result<RunReport, RunError> {
    let opened = connect::open_all(cfg)?;
    let Opened { working, idle, errors: connect_errors, first_error: connect_error } = opened;
    let conns_opened = working.len();

    let clock = Clock::start();
    let plan = Plan::new(cfg, cfg.conns);
    // Deal connections round-robin so each thread gets an even share.
    let threads = cfg.threads.min(conns_opened.max(1));
    let mut shards: Vec<Vec<(u64, std::net::TcpStream)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, conn) in working.into_iter().enumerate() {
        shards[i % threads].push(conn);
    }
    // A hint for the first size of each send buffer: the payload plus the largest framing
    // (a kv SET's command and key).
    let max_request = cfg.size.max + 64;
    let progress: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();

    let (tallies, cpu) = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .into_iter()
            .zip(&progress)
            .enumerate()
            .map(|(n, (shard, counter))| {
                std::thread::Builder::new().name(format!("loadgen-{n}")).spawn_scoped(scope, move || {
                    Worker::new(proto, plan, clock, shard, max_request, counter)?.run()
                })
            })
            .collect();
        let all_done = || handles.iter().all(|h| h.as_ref().map_or(true, |h| h.is_finished()));
        let cpu = watch(cfg, clock, &plan, &progress, all_done);
        let mut tallies = Vec::with_capacity(handles.len());
        for handle in handles {
            let handle = handle.map_err(RunError::Engine)?;
            match handle.join() {
                Ok(tally) => tallies.push(tally.map_err(RunError::Engine)?),
                Err(_) => return Err(RunError::WorkerPanicked),
            }
        }
        Ok::<_, RunError>((tallies, cpu))
    })?;

    let mut total = Tally::new(plan.timetable.is_some());
    for tally in tallies {
        total.merge(tally);
    }
    total.counts.connect_errors += connect_errors;
    let idle_closed = connect::count_closed_idle(&idle);
    total.counts.idle_closed += idle_closed;
    let idle_error = (idle_closed > 0)
        .then(|| format!("{idle_closed} of {} idle connections were closed by the server", idle.len()));
    let first_error = connect_error.or(total.first_error).or(idle_error);
    Ok(RunReport {
        config: cfg.clone(),
        conns_opened,
        idle_opened: idle.len(),
        counts: total.counts,
        cpu,
        spun: total.spun,
        first_error,
        service_time: total.service,
        corrected: total.corrected,
    })
}

/// Sleeps through the run on the main thread: samples CPU time at the phase boundaries and
/// prints a progress line about once a second when asked. Returns the measured phase's CPU
/// time. Stops early if every worker has finished (all connections lost), so a dead server
/// does not keep the user waiting for the full duration.
pub(crate) fn watch(
    cfg: &RunConfig,
    clock: Clock,
    plan: &Plan,
    progress: &[AtomicU64],
    all_done: impl Fn() -> bool,
) -> CpuTime {
    let origin = clock.origin();
    let at = |ns: u64| origin + Duration::from_nanos(ns);
    let sample = || CpuTime::now().unwrap_or_default();
    let mut last_print = None;
    let mut wait_until = |deadline: Instant| {
        loop {
            let now = Instant::now();
            if now >= deadline || all_done() {
                return;
            }
            if cfg.progress && last_print.is_none_or(|t: Instant| now - t >= PROGRESS_EVERY) {
                print_progress(clock, plan, progress);
                last_print = Some(now);
            }
            std::thread::sleep(WATCH_STEP.min(deadline - now));
        }
    };
    wait_until(at(plan.warmup_end_ns));
    let before = sample();
    mark_phase(cfg, "measuring");
    wait_until(at(plan.end_ns));
    let after = sample();
    mark_phase(cfg, "measured");
    if cfg.progress {
        // Finish the progress line so the summary starts on a fresh one.
        eprintln!();
    }
    after.since(before)
}

/// Mark the measured phase's start and end with a line each on stderr (`loadgen: measuring`,
/// `loadgen: measured`), so that whoever samples the server (the suite reads its CPU time from
/// /proc) can bracket exactly the measured phase. The CLI does this when stderr is not a
/// terminal, that is, when a script is reading it.
fn mark_phase(cfg: &RunConfig, phase: &str) {
    if cfg.phase_markers {
        eprintln!("loadgen: {phase}");
    }
}

fn print_progress(clock: Clock, plan: &Plan, progress: &[AtomicU64]) {
    let replies: u64 = progress.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    let now = clock.now_ns();
    let phase = if now < plan.warmup_end_ns { "warm-up" } else { "measuring" };
    let elapsed = now as f64 / 1e9;
    let total = plan.end_ns as f64 / 1e9;
    // `\r` rewrites the same terminal line; only ever printed when stderr is a terminal.
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{phase:<9} {elapsed:6.1} s of {total:.1} s, {replies} replies");
    let _ = err.flush();
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
