//! One lock or many? The same GET/SET mix against each store design, from 1, 2 and 4 threads.
//!
//! Every thread does the same thing: pick one of [`KEYS`] keys at random, `GET` it nine times
//! in ten (copying the value out, as a reply would) and `SET` it otherwise (a value of the same
//! size, so the store reuses the allocation and the figure is the lock, not `malloc`). The
//! figure reported is wall time divided by operations over all threads: **ns per operation of
//! the whole store**, so a design that lets threads work in parallel shows a smaller figure as
//! threads are added, and one that makes them queue shows a larger one.
//!
//! The targets run in the order of the table below, so that the two lock designs alternate at
//! each thread count and a shared machine's drift falls on both alike (criterion itself runs
//! one target at a time). `LocalStore` is the floor: the same map with no lock at all, only
//! usable from one thread.
//!
//! ```sh
//! cargo bench -p servers --bench store
//! ```

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use servers::store::{LocalStore, LockedStore, ShardedStore, Store};

/// Keys in the store: many more than shards, few enough to stay in cache.
const KEYS: usize = 10_000;
/// Bytes per value: a small cached object.
const VALUE: usize = 64;
/// One operation in this many is a `SET`.
const SET_EVERY: u32 = 10;

fn keys() -> Vec<Vec<u8>> {
    (0..KEYS).map(|i| format!("key:{i:08}").into_bytes()).collect()
}

fn fill(store: &impl Store, keys: &[Vec<u8>]) {
    for key in keys {
        store.set(key, &[b'v'; VALUE]).expect("room for every key");
    }
}

/// `ops` operations of the mix from one thread, seeded so every run does the same work.
fn mix(store: &impl Store, keys: &[Vec<u8>], ops: u64, seed: u64) {
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

/// Time `total` operations split over `threads` threads, all released at once.
fn timed<S: Store + Send + Sync + 'static>(
    store: &Arc<S>,
    keys: &Arc<Vec<Vec<u8>>>,
    threads: u64,
    total: u64,
) -> Duration {
    let start = Arc::new(Barrier::new(threads as usize + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (store, keys, start) = (Arc::clone(store), Arc::clone(keys), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                mix(&*store, &keys, total / threads, t);
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for w in workers {
        w.join().expect("a bench thread panicked");
    }
    began.elapsed()
}

fn stores(c: &mut Criterion) {
    let keys = Arc::new(keys());
    let mut group = c.benchmark_group("store");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);

    let local = LocalStore::new(KEYS);
    fill(&local, &keys);
    group.bench_function("local/1", |b| b.iter_custom(|ops| time_local(&local, &keys, ops)));

    let locked = Arc::new(LockedStore::new(KEYS));
    let sharded = Arc::new(ShardedStore::new(KEYS));
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

fn time_local(store: &LocalStore, keys: &[Vec<u8>], ops: u64) -> Duration {
    let began = Instant::now();
    mix(store, keys, ops, 0);
    began.elapsed()
}

criterion_group!(benches, stores);
criterion_main!(benches);
