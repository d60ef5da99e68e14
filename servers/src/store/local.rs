//! The store of a single-threaded server: no lock, because no other thread can see it.

use std::cell::RefCell;

use super::capacity::{Capacity, Usage};
use super::{BoundedMap, Full, IncrError, Store};

/// A map in a `RefCell`. The borrow flag costs one compare per operation; the type system
/// (`!Sync`) guarantees no second thread ever reaches it, which is the reactor's whole bargain.
#[derive(Debug)]
pub struct LocalStore {
    map: RefCell<BoundedMap>,
    usage: Usage,
}

impl LocalStore {
    /// An empty store within `capacity`.
    pub fn new(capacity: Capacity) -> LocalStore {
        LocalStore { map: RefCell::default(), usage: Usage::new(capacity) }
    }
}

impl Store for LocalStore {
    fn with_value<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        f(self.map.borrow().get(key))
    }
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), Full> {
        self.map.borrow_mut().set(key, value, &self.usage)
    }
    fn delete(&self, key: &[u8]) -> bool {
        self.map.borrow_mut().remove(key, &self.usage)
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.map.borrow().get(key).is_some()
    }
    fn increment(&self, key: &[u8]) -> Result<i64, IncrError> {
        self.map.borrow_mut().increment(key, &self.usage)
    }
    fn len(&self) -> usize {
        self.usage.keys()
    }
}
