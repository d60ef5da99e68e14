//! Many locks, each around a part of the key space: a key's hash picks its shard, so two
//! threads block each other only when their keys land in the same shard (1 in [`SHARDS`] for
//! random keys). This is how most concurrent maps (Java's old `ConcurrentHashMap`, `dashmap`)
//! and memcached's item locks work.
//!
//! The key bound is counted in one shared atomic, not per shard, so a store with skewed keys
//! still holds exactly `max_keys`, at the cost of one atomic add when a key is created or removed.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{BoundedMap, Full, IncrError, Store};

/// How many independently locked parts the key space is split into: comfortably more than the
/// threads that might contend, and a power of two so picking one is a mask.
pub const SHARDS: usize = 64;

/// A map split over [`SHARDS`] mutexes.
#[derive(Debug)]
pub struct ShardedStore {
    shards: Box<[Mutex<BoundedMap>]>,
    /// Random per process, so a peer cannot easily choose keys that all land in one shard.
    seed: u64,
    keys: AtomicUsize,
    max_keys: usize,
}

impl ShardedStore {
    /// An empty store holding at most `max_keys` keys.
    pub fn new(max_keys: usize) -> ShardedStore {
        ShardedStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            // `RandomState` is std's source of per-process randomness; one hash of it is a seed.
            seed: RandomState::new().hash_one(0x5eed_u64),
            keys: AtomicUsize::new(0),
            max_keys,
        }
    }

    /// The shard that owns `key`. See `LockedStore::lock` for why poisoning is ignored.
    ///
    /// The map inside the shard hashes the key again with SipHash, which resists peers who
    /// choose colliding keys; picking the shard needs no such strength (the worst a peer could
    /// do is crowd one shard, which is the single-lock store's normal state), so a seeded
    /// FNV-1a does it. The second SipHash cost ~35 ns per operation (`benches/store.rs`, one
    /// thread): more than the lock it was choosing.
    fn shard(&self, key: &[u8]) -> MutexGuard<'_, BoundedMap> {
        let mut h = self.seed ^ 0xcbf2_9ce4_8422_2325;
        for &b in key {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        // FNV's low bits mix poorly; fold the high half in before masking.
        let i = (h ^ (h >> 32)) as usize & (SHARDS - 1);
        self.shards[i].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserve room for one new key, or say the store is full.
    fn reserve(&self) -> bool {
        self.keys
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < self.max_keys).then_some(n + 1))
            .is_ok()
    }

    fn full(&self) -> Full {
        Full { max_keys: self.max_keys }
    }
}

impl Store for ShardedStore {
    fn with_value<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        f(self.shard(key).get(key))
    }
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), Full> {
        self.shard(key).set(key, value, || self.reserve()).then_some(()).ok_or(self.full())
    }
    fn delete(&self, key: &[u8]) -> bool {
        let removed = self.shard(key).remove(key);
        if removed {
            self.keys.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.shard(key).get(key).is_some()
    }
    fn increment(&self, key: &[u8]) -> Result<i64, IncrError> {
        self.shard(key).increment(key, || self.reserve()).map_err(|e| match e {
            IncrError::Full(_) => IncrError::Full(self.full()),
            e => e,
        })
    }
    fn len(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }
}
