//! What the main thread does while the workers run: it watches the clock.
//!
//! It samples loadgen's CPU time at the start and end of the measured phase (so warm-up and
//! draining are not charged to the requests), announces those two moments on stderr for
//! whoever samples the server, and prints the progress line if asked. The engine's workers and
//! chat's driver are watched the same way, so both live above this module, never below it.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::RunConfig;
use crate::engine::Plan;
use crate::engine::clock::Clock;
use crate::live::{self, LiveWindow};
use crate::sys::CpuTime;

/// How often the main thread looks at the clock and the workers while the run goes on.
const WATCH_STEP: Duration = Duration::from_millis(100);

/// How often the progress line is rewritten, and a `--live` line printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Sleeps through the run on the main thread: samples CPU time at the phase boundaries and
/// prints a progress line, or with `live` a [`live::line`], about once a second when asked. Returns the measured phase's CPU
/// time. Stops early if every worker has finished (all connections lost), so a dead server
/// does not keep the user waiting for the full duration.
pub(crate) fn watch(
    cfg: &RunConfig,
    clock: Clock,
    plan: &Plan,
    progress: &[AtomicU64],
    live: Option<&LiveWindow>,
    all_done: impl Fn() -> bool,
) -> CpuTime {
    let origin = clock.origin();
    let at = |ns: u64| origin + Duration::from_nanos(ns);
    let sample = || CpuTime::now().unwrap_or_default();
    let mut last_print = None;
    let mut last_live = Instant::now();
    let mut wait_until = |deadline: Instant| {
        loop {
            let now = Instant::now();
            if let Some(window) = live.filter(|_| now - last_live >= PROGRESS_EVERY) {
                print_live(clock, plan, window, (now - last_live).as_secs_f64());
                last_live = now;
            }
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
    if let Some(window) = live {
        // The part second since the last line, so the lines add up to the whole run.
        let since = last_live.elapsed().as_secs_f64();
        if since > 0.05 {
            print_live(clock, plan, window, since);
        }
    }
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

fn print_live(clock: Clock, plan: &Plan, window: &LiveWindow, interval_s: f64) {
    let now = clock.now_ns();
    let second = window.take();
    // An interval that straddles the end of the warm-up is named after most of it.
    let middle = now.saturating_sub((interval_s * 0.5e9) as u64);
    eprintln!("{}", live::line(now as f64 / 1e9, middle < plan.warmup_end_ns, &second, interval_s));
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
