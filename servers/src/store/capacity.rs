//! The store's two bounds, counted once for every kind of store: how many keys it holds
//! (`--kv-max-keys`) and how many bytes they and their values take (`--kv-max-bytes`).
//!
//! A key bound alone does not bound memory: a million keys of 64 KiB values is 64 GB. Redis
//! answers this with `maxmemory`, which is *off* by default on 64-bit machines, so a Redis that
//! nobody configured grows until the kernel's OOM killer ends it. The lab's default is on.
//!
//! The count is kept in atomics shared by every shard, so a sharded store holds exactly its
//! bound whatever the keys. An overwrite with a value of the same length, the common case under
//! load, touches neither counter.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Full;

/// The default `--kv-max-bytes`: 1 GiB, a fraction of any machine that runs the lab, and a
/// thousand times what its experiments store.
pub const DEFAULT_MAX_BYTES: usize = 1 << 30;

/// What one entry costs beyond its key and value bytes: the hash table's slot (two boxed slices,
/// 32 bytes) and the allocator's headers of the two allocations. Counting it stops a flood of
/// tiny keys from being nearly free.
pub const ENTRY_OVERHEAD: usize = 64;

/// The bounds of one store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// The most keys.
    pub max_keys: usize,
    /// The most bytes of keys, values and [`ENTRY_OVERHEAD`] together.
    pub max_bytes: usize,
}

impl Capacity {
    /// A bound on keys only (tests and benchmarks that exercise the key bound).
    pub fn keys(max_keys: usize) -> Capacity {
        Capacity { max_keys, max_bytes: usize::MAX }
    }
}

/// What a store holds against its [`Capacity`].
#[derive(Debug)]
pub(crate) struct Usage {
    capacity: Capacity,
    keys: AtomicUsize,
    bytes: AtomicUsize,
}

impl Usage {
    pub(crate) fn new(capacity: Capacity) -> Usage {
        Usage { capacity, keys: AtomicUsize::new(0), bytes: AtomicUsize::new(0) }
    }

    /// The bytes an entry of `key` and `value` is charged.
    pub(crate) fn entry_size(key: &[u8], value: &[u8]) -> usize {
        key.len() + value.len() + ENTRY_OVERHEAD
    }

    /// Room for one more key of `size` bytes, or the bound it would break.
    pub(crate) fn add_key(&self, size: usize) -> Result<(), Full> {
        let max_keys = self.capacity.max_keys;
        if reserve(&self.keys, 1, max_keys).is_err() {
            return Err(Full::Keys { max_keys });
        }
        if let Err(full) = self.grow(size) {
            self.keys.fetch_sub(1, Ordering::Relaxed);
            return Err(full);
        }
        Ok(())
    }

    /// Room for an existing entry to grow by `extra` bytes.
    pub(crate) fn grow(&self, extra: usize) -> Result<(), Full> {
        reserve(&self.bytes, extra, self.capacity.max_bytes)
            .map_err(|()| Full::Bytes { max_bytes: self.capacity.max_bytes })
    }

    /// An entry shrank by `fewer` bytes.
    pub(crate) fn shrink(&self, fewer: usize) {
        self.bytes.fetch_sub(fewer, Ordering::Relaxed);
    }

    /// An entry of `size` bytes was removed.
    pub(crate) fn remove_key(&self, size: usize) {
        self.keys.fetch_sub(1, Ordering::Relaxed);
        self.shrink(size);
    }

    pub(crate) fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }
}

/// Add `amount` to `counter` unless that would pass `max`.
fn reserve(counter: &AtomicUsize, amount: usize, max: usize) -> Result<(), ()> {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            n.checked_add(amount).filter(|&after| after <= max)
        })
        .map(drop)
        .map_err(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_bytes_are_both_bounded_and_given_back() {
        let usage = Usage::new(Capacity { max_keys: 2, max_bytes: 200 });
        assert_eq!(usage.add_key(100), Ok(()));
        assert_eq!(usage.add_key(101), Err(Full::Bytes { max_bytes: 200 }));
        assert_eq!(usage.keys(), 1, "a key refused for its bytes is not counted");
        assert_eq!(usage.add_key(100), Ok(()));
        assert_eq!(usage.add_key(0), Err(Full::Keys { max_keys: 2 }));
        assert_eq!(usage.grow(1), Err(Full::Bytes { max_bytes: 200 }));
        usage.remove_key(100);
        assert_eq!(usage.grow(50), Ok(()));
        usage.shrink(50);
        assert_eq!(usage.add_key(100), Ok(()));
    }
}
