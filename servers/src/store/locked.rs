//! One lock around the whole map: the first thing anyone writes, and correct. Every operation
//! from every thread queues on the same mutex, so under load the threads take turns instead
//! of working in parallel, and each hand-over can cost a futex wake-up.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{BoundedMap, Full, IncrError, Store};

/// A map behind a single `Mutex`.
#[derive(Debug)]
pub struct LockedStore {
    map: Mutex<BoundedMap>,
    max_keys: usize,
}

impl LockedStore {
    /// An empty store holding at most `max_keys` keys.
    pub fn new(max_keys: usize) -> LockedStore {
        LockedStore { map: Mutex::default(), max_keys }
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
        let mut map = self.lock();
        let room = map.len() < self.max_keys;
        map.set(key, value, || room).then_some(()).ok_or(Full { max_keys: self.max_keys })
    }
    fn delete(&self, key: &[u8]) -> bool {
        self.lock().remove(key)
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.lock().get(key).is_some()
    }
    fn increment(&self, key: &[u8]) -> Result<i64, IncrError> {
        let mut map = self.lock();
        let room = map.len() < self.max_keys;
        map.increment(key, || room, Full { max_keys: self.max_keys })
    }
    fn len(&self) -> usize {
        self.lock().len()
    }
}
