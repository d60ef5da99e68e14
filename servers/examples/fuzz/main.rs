//! A fuzzer for every decoder in `servers/src/proto/`, on the stable toolchain: no `cargo fuzz`,
//! no nightly, no coverage feedback; structured generators and a seeded mutator instead.
//!
//! ```sh
//! cargo run --release -p servers --example fuzz -- --iterations 10000000          # the full campaign
//! cargo run --release -p servers --example fuzz -- --proto kv --iterations 100000  # one parser
//! ```
//!
//! Each parser gets `--iterations` inputs, half of them generated (`generate.rs`: mostly valid
//! requests with corruptions mixed in), half mutated (`mutate.rs`: a corpus of valid requests
//! with AFL-style edits). Each input goes to the decoder through [`servers::proto::Codec`], the
//! entry every model uses, whole, then in random chunks, then one byte per read, and every call
//! is checked (`harness.rs`): no panic, the same replies however the input is split, `consumed`
//! within the input, progress, and allocation within a bound set by `--max-frame` (counted by
//! the allocator in `alloc.rs`, installed in this binary only). Input `i` of seed `s` is always
//! the same bytes, so a failure is reproduced by `--seed s --start i --iterations 1`.
//!
//! The output ends with one line per parser:
//! `PROTO: N inputs (G generated, M mutated), 0 panics, peak allocation X KiB, T s`.
//! `cargo test -p servers --test fuzz_smoke` runs the same harness for 10^4 inputs per parser.

mod alloc;
mod generate;
mod harness;
mod mutate;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use servers::proto::Proto;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// The default seed: the issue that asked for this fuzzer.
const DEFAULT_SEED: u64 = 12;

/// A parser that has not finished an input for this long is stuck in a loop.
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// Fuzz the lab's protocol decoders with generated and mutated inputs.
#[derive(Parser, Debug)]
#[command(name = "fuzz")]
struct Args {
    /// Fuzz only this protocol (repeat for several); all five by default.
    #[arg(long, value_enum)]
    proto: Vec<Proto>,
    /// The campaign's seed: the same seed gives the same inputs.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Inputs per parser.
    #[arg(long, default_value_t = 100_000)]
    iterations: u64,
    /// The first input's number (to regenerate input `i` alone: `--start i --iterations 1`).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Parsers fuzzed at the same time, each on its own thread.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !alloc::installed() {
        eprintln!("fuzz: the counting allocator is not installed; allocation would not be checked");
        return ExitCode::FAILURE;
    }
    let protos = if args.proto.is_empty() { Proto::ALL.to_vec() } else { args.proto.clone() };
    println!(
        "fuzzing {} with seed {}, inputs {}..{} each, {} at a time",
        protos.iter().map(Proto::to_string).collect::<Vec<_>>().join(", "),
        args.seed,
        args.start,
        args.start.saturating_add(args.iterations),
        args.jobs.max(1),
    );
    let progress: Vec<AtomicU64> = protos.iter().map(|_| AtomicU64::new(0)).collect();
    let started: Vec<AtomicBool> = protos.iter().map(|_| AtomicBool::new(false)).collect();
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let stdout = Mutex::new(());
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.clamp(1, protos.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&proto) = protos.get(i) else { break };
                    started[i].store(true, Ordering::Relaxed);
                    let result = harness::campaign(
                        &harness::Servers,
                        proto,
                        args.seed,
                        args.start,
                        args.iterations,
                        &progress[i],
                    );
                    let _lock = stdout.lock();
                    match result {
                        Ok(stats) => {
                            println!("{}", stats.line(proto));
                            println!("{}", stats.details());
                        }
                        Err(found) => {
                            failed.store(true, Ordering::Relaxed);
                            println!("{found}");
                            println!("{}", found.stats.line(proto));
                        }
                    }
                    let _ = std::io::stdout().flush();
                    finished.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        scope.spawn(|| watchdog(&protos, &progress, &started, &finished, args.start, args.iterations));
    });
    if failed.load(Ordering::Relaxed) { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Every few seconds: report progress on stderr, and end the process if a parser has not
/// finished an input for [`STUCK_AFTER`] (a decoder looping forever cannot be caught otherwise).
fn watchdog(
    protos: &[Proto],
    progress: &[AtomicU64],
    started: &[AtomicBool],
    finished: &AtomicUsize,
    start: u64,
    total: u64,
) {
    let tick = Duration::from_millis(200);
    let mut last: Vec<(u64, Instant)> = protos.iter().map(|_| (0, Instant::now())).collect();
    let mut reported = Instant::now();
    while finished.load(Ordering::Relaxed) < protos.len() {
        std::thread::sleep(tick);
        let report = reported.elapsed() >= Duration::from_secs(30);
        for (i, proto) in protos.iter().enumerate() {
            let done = progress[i].load(Ordering::Relaxed);
            if !started[i].load(Ordering::Relaxed) || done >= total {
                last[i] = (done, Instant::now());
                continue;
            }
            if done != last[i].0 {
                last[i] = (done, Instant::now());
            } else if last[i].1.elapsed() > STUCK_AFTER {
                eprintln!(
                    "fuzz: {proto} has been stuck on one input for {} s; regenerate it with \
                     --proto {proto} --start {} --iterations 1",
                    STUCK_AFTER.as_secs(),
                    start + done
                );
                std::process::exit(2);
            }
            if report {
                eprintln!("  {proto}: {done} of {total} inputs");
            }
        }
        if report {
            reported = Instant::now();
        }
    }
}
