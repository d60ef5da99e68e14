//! The `kv` lesson promises that `GET` and `SET` allocate nothing per request once a key
//! exists: this test binary counts every allocation the process makes and checks it.
//!
//! The allocator counts only on threads that ask for it, so the test harness's own threads
//! (which allocate when they please) cannot disturb the count.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use servers::proto::{Codec, DEFAULT_MAX_FRAME, Decoded, Proto};
use servers::store::{LocalStore, SharedStore, Store, StoreKind};
use support::kv::command as resp;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether allocations on this thread are counted (a `const` initialiser and no destructor,
    /// so the allocator can read it without allocating).
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNT_HERE.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed straight to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations made while serving `rounds` pipelined batches of SET and GET (inline ones too)
/// to keys that already exist, with values of an unchanged size.
fn allocations_per_batch(store: &impl Store, rounds: usize) -> usize {
    let value = [b'v'; 100];
    let batch = [
        resp(&[b"SET", b"key:1", &value]),
        resp(&[b"GET", b"key:1"]),
        resp(&[b"get", b"missing"]),
        b"GET key:1\r\n".to_vec(),
        resp(&[b"PING"]),
    ]
    .concat();
    let mut codec = Codec::new(Proto::Kv, DEFAULT_MAX_FRAME);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut serve = |out: &mut Vec<u8>| {
        let mut at = 0;
        while let Decoded::Request { consumed } = codec.decode(&batch[at..], out, store) {
            at += consumed;
        }
        assert_eq!(at, batch.len());
        out.clear();
    };
    serve(&mut out); // creates the key: the store may allocate now
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..rounds {
        serve(&mut out);
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn get_and_set_of_an_existing_key_allocate_nothing() {
    COUNT_HERE.with(|on| on.set(true));
    for (name, n) in [
        ("local", allocations_per_batch(&LocalStore::new(servers::store::Capacity::keys(10)), 1000)),
        (
            "single-lock",
            allocations_per_batch(
                &SharedStore::new(StoreKind::SingleLock, servers::store::Capacity::keys(10)),
                1000,
            ),
        ),
        (
            "sharded",
            allocations_per_batch(
                &SharedStore::new(StoreKind::Sharded, servers::store::Capacity::keys(10)),
                1000,
            ),
        ),
    ] {
        assert_eq!(n, 0, "{name}: {n} allocations in 1000 batches");
    }
    // The control: the counter does see the store allocate for new keys.
    let store = LocalStore::new(servers::store::Capacity::keys(10));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    store.set(b"new", b"value").unwrap();
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > before);
}
