//! One lock or many? The same GET/SET mix against each store design, from 1, 2 and 4 threads.
//!
//! Every thread does the same thing: pick one of [`KEYS`] keys at random, `GET` it nine times
//! in ten (copying the value out, as a reply would) and `SET` it otherwise (a value of the same
//! size, so the store reuses the allocation and the figure is the lock, not `malloc`). The
//! figure reported is wall time divided by operations over all threads: **ns per operation of
//! the whole store**, so a design that lets threads work in parallel shows a smaller figure as
//! threads are added, and one that makes them queue shows a larger one. `LocalStore` is the
//! floor: the same map with no lock at all, only usable from one thread.
//!
//! Two ways to run it:
//!
//! ```sh
//! cargo bench -p servers --bench store                   # criterion: each target on its own
//! cargo bench -p servers --bench store -- interleaved    # all targets in turn, 30 rounds
//! cargo bench -p servers --bench store -- interleaved 10 # ... 10 rounds
//! ```
//!
//! Criterion measures one target after another, so on a shared machine a burst of someone
//! else's work lands on whichever target runs at that moment. The interleaved mode runs every
//! target once per round, round after round, and reports the median and the range over rounds:
//! a burst then falls on every target alike, and the medians compare fairly.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use servers::store::{LocalStore, LockedStore, ShardedStore, Store};

/// Keys in the store: many more than shards, few enough that the map stays in the CPU's cache,
/// so the figures show the locks rather than memory latency.
const KEYS: usize = 1_000;
/// Bytes per value: a small cached object.
const VALUE: usize = 64;
/// One operation in this many is a `SET`.
const SET_EVERY: u32 = 10;

/// Every key, side by side in one array (one cache miss fewer than a `Vec` of `Vec`s).
type Keys = Vec<[u8; 12]>;

fn keys() -> Keys {
    (0..KEYS).map(|i| format!("key:{i:08}").into_bytes().try_into().expect("12 bytes")).collect()
}

fn fill(store: &impl Store, keys: &[[u8; 12]]) {
    for key in keys {
        store.set(key, &[b'v'; VALUE]).expect("room for every key");
    }
}

/// `ops` operations of the mix from one thread, seeded so every run does the same work.
fn mix(store: &impl Store, keys: &[[u8; 12]], ops: u64, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut copy = [0u8; VALUE];
    let value = [b'w'; VALUE];
    for _ in 0..ops {
        let key = &keys[rng.usize(..keys.len())];
        if rng.u32(..SET_EVERY) == 0 {
            let _ = store.set(key, &value);
        } else {
            store.with_value(key, |v| {
                if let Some(v) = v {
                    copy[..v.len()].copy_from_slice(v);
                }
            });
        }
        black_box(&copy);
    }
}

/// Time `total` operations split over `threads` threads, all released at once. Each thread
/// notes its own start and end: the main thread may well be preempted after the barrier on a
/// busy machine, and a clock read there would miss work already done.
fn timed<S: Store + Send + Sync + 'static>(
    store: &Arc<S>,
    keys: &Arc<Keys>,
    threads: u64,
    total: u64,
) -> Duration {
    let start = Arc::new(Barrier::new(threads as usize));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (store, keys, start) = (Arc::clone(store), Arc::clone(keys), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let began = Instant::now();
                mix(&*store, &keys, total / threads, t);
                (began, Instant::now())
            })
        })
        .collect();
    let spans: Vec<(Instant, Instant)> =
        workers.into_iter().map(|w| w.join().expect("a bench thread panicked")).collect();
    let first = spans.iter().map(|s| s.0).min();
    let last = spans.iter().map(|s| s.1).max();
    match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    }
}

fn stores(c: &mut Criterion) {
    let keys = Arc::new(keys());
    let mut group = c.benchmark_group("store");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);

    let local = LocalStore::new(servers::store::Capacity::keys(KEYS));
    fill(&local, &keys);
    group.bench_function("local/1", |b| b.iter_custom(|ops| time_local(&local, &keys, ops)));

    let locked = Arc::new(LockedStore::new(servers::store::Capacity::keys(KEYS)));
    let sharded = Arc::new(ShardedStore::new(servers::store::Capacity::keys(KEYS)));
    fill(&*locked, &keys);
    fill(&*sharded, &keys);
    for threads in [1u64, 2, 4] {
        group.bench_function(format!("single-lock/{threads}"), |b| {
            b.iter_custom(|ops| timed(&locked, &keys, threads, ops.max(threads)))
        });
        group.bench_function(format!("sharded/{threads}"), |b| {
            b.iter_custom(|ops| timed(&sharded, &keys, threads, ops.max(threads)))
        });
    }
    group.finish();
}

fn time_local(store: &LocalStore, keys: &[[u8; 12]], ops: u64) -> Duration {
    let began = Instant::now();
    mix(store, keys, ops, 0);
    began.elapsed()
}

/// Operations per target per round of the interleaved mode (about 20-60 ms each).
const ROUND_OPS: u64 = 200_000;

/// Every target once per round, `rounds` times; median and range of ns/op per target.
fn interleaved(rounds: usize) {
    let keys = Arc::new(keys());
    let local = LocalStore::new(servers::store::Capacity::keys(KEYS));
    let locked = Arc::new(LockedStore::new(servers::store::Capacity::keys(KEYS)));
    let sharded = Arc::new(ShardedStore::new(servers::store::Capacity::keys(KEYS)));
    fill(&local, &keys);
    fill(&*locked, &keys);
    fill(&*sharded, &keys);
    let names =
        ["local/1", "single-lock/1", "sharded/1", "single-lock/2", "sharded/2", "single-lock/4", "sharded/4"];
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); names.len()];
    for _ in 0..rounds {
        let per_op = |d: Duration| d.as_nanos() as f64 / ROUND_OPS as f64;
        samples[0].push(per_op(time_local(&local, &keys, ROUND_OPS)));
        for (i, threads) in [1u64, 2, 4].into_iter().enumerate() {
            samples[1 + 2 * i].push(per_op(timed(&locked, &keys, threads, ROUND_OPS)));
            samples[2 + 2 * i].push(per_op(timed(&sharded, &keys, threads, ROUND_OPS)));
        }
    }
    println!("{rounds} rounds of {ROUND_OPS} operations per target, ns per operation of the whole store:");
    println!("{:<16} {:>8} {:>8} {:>8}", "store/threads", "median", "min", "max");
    for (name, mut s) in names.into_iter().zip(samples) {
        s.sort_by(f64::total_cmp);
        println!("{name:<16} {:>8.1} {:>8.1} {:>8.1}", s[s.len() / 2], s[0], s[s.len() - 1]);
    }
}

criterion_group!(benches, stores);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "interleaved") {
        let rounds = args.get(at + 1).and_then(|r| r.parse().ok()).unwrap_or(30);
        interleaved(rounds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
