//! One lock around the whole map: the first thing anyone writes, and correct. Every operation
//! from every thread queues on the same mutex, so under load the threads take turns instead
//! of working in parallel, and each hand-over can cost a futex wake-up.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::capacity::{Capacity, Usage};
use super::{BoundedMap, Full, IncrError, Store};

/// A map behind a single `Mutex`.
#[derive(Debug)]
pub struct LockedStore {
    map: Mutex<BoundedMap>,
    usage: Usage,
}

impl LockedStore {
    /// An empty store within `capacity`.
    pub fn new(capacity: Capacity) -> LockedStore {
        LockedStore { map: Mutex::default(), usage: Usage::new(capacity) }
    }

    /// No operation can leave the map half-updated, so a panic in another thread while it held
    /// the lock leaves nothing to repair: take the map back instead of spreading the panic.
    fn lock(&self) -> MutexGuard<'_, BoundedMap> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for LockedStore {
    fn with_value<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        f(self.lock().get(key))
    }
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), Full> {
        self.lock().set(key, value, &self.usage)
    }
    fn delete(&self, key: &[u8]) -> bool {
        self.lock().remove(key, &self.usage)
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.lock().get(key).is_some()
    }
    fn increment(&self, key: &[u8]) -> Result<i64, IncrError> {
        self.lock().increment(key, &self.usage)
    }
    fn len(&self) -> usize {
        self.usage.keys()
    }
}
