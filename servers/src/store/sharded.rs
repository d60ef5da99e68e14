//! Many locks, each around a part of the key space: a key's hash picks its shard, so two
//! threads block each other only when their keys land in the same shard (1 in [`SHARDS`] for
//! random keys). This is how most concurrent maps (Java's old `ConcurrentHashMap`, `dashmap`)
//! and memcached's item locks work.
//!
//! The bounds are counted in shared atomics (see [`super::capacity`]), not per shard, so a store
//! with skewed keys still holds exactly its bound, at the cost of an atomic add when a key is
//! created or removed or a value changes length.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::capacity::{Capacity, Usage};
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
    usage: Usage,
}

impl ShardedStore {
    /// An empty store within `capacity`.
    pub fn new(capacity: Capacity) -> ShardedStore {
        ShardedStore {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            // `RandomState` is std's source of per-process randomness; one hash of it is a seed.
            seed: RandomState::new().hash_one(0x5eed_u64),
            usage: Usage::new(capacity),
        }
    }

    /// The shard that owns `key`. See `LockedStore::lock` for why poisoning is ignored.
    ///
    /// The map inside the shard hashes the key again with SipHash, which resists peers who
    /// choose colliding keys. Picking the shard needs no such strength (the worst a peer could
    /// do is crowd one shard, which is the single-lock store's normal state), so a seeded
    /// multiply-and-xor over 8 bytes at a time does it, and the top bits of the last product,
    /// the best mixed ones, pick the shard. A second SipHash cost 20-27 ns per operation
    /// (`benches/store.rs`, one thread): several times the lock it was choosing.
    fn shard(&self, key: &[u8]) -> MutexGuard<'_, BoundedMap> {
        self.shards[self.shard_index(key)].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn shard_index(&self, key: &[u8]) -> usize {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut h = self.seed ^ key.len() as u64;
        let mut chunks = key.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K).rotate_left(29);
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
        (h >> (u64::BITS - SHARDS.trailing_zeros())) as usize
    }
}

impl Store for ShardedStore {
    fn with_value<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        f(self.shard(key).get(key))
    }
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), Full> {
        self.shard(key).set(key, value, &self.usage)
    }
    fn delete(&self, key: &[u8]) -> bool {
        self.shard(key).remove(key, &self.usage)
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.shard(key).get(key).is_some()
    }
    fn increment(&self, key: &[u8]) -> Result<i64, IncrError> {
        self.shard(key).increment(key, &self.usage)
    }
    fn len(&self) -> usize {
        self.usage.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys that differ in one digit, as a benchmark's or an application's do, still spread
    /// over every shard, none holding more than twice its share.
    #[test]
    fn similar_keys_spread_over_every_shard() {
        let store = ShardedStore::new(Capacity::keys(1));
        for keys in [10_000, 1_000] {
            let mut count = [0usize; SHARDS];
            for i in 0..keys {
                count[store.shard_index(format!("key:{i:08}").as_bytes())] += 1;
            }
            let fair = keys / SHARDS;
            assert!(count.iter().all(|&n| n > 0 && n <= 2 * fair + 4), "{keys} keys: {count:?}");
        }
    }
}
