//! The store of a single-threaded server: no lock, because no other thread can see it.

use std::cell::RefCell;

use super::{BoundedMap, Full, IncrError, Store};

/// A map in a `RefCell`. The borrow flag costs one compare per operation; the type system
/// (`!Sync`) guarantees no second thread ever reaches it, which is the reactor's whole bargain.
#[derive(Debug)]
pub struct LocalStore {
    map: RefCell<BoundedMap>,
    max_keys: usize,
}

impl LocalStore {
    /// An empty store holding at most `max_keys` keys.
    pub fn new(max_keys: usize) -> LocalStore {
        LocalStore { map: RefCell::default(), max_keys }
    }
}

impl Store for LocalStore {
    fn with_value<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        f(self.map.borrow().get(key))
    }
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), Full> {
        let mut map = self.map.borrow_mut();
        let room = map.len() < self.max_keys;
        map.set(key, value, || room).then_some(()).ok_or(Full { max_keys: self.max_keys })
    }
    fn delete(&self, key: &[u8]) -> bool {
        self.map.borrow_mut().remove(key)
    }
    fn contains(&self, key: &[u8]) -> bool {
        self.map.borrow().get(key).is_some()
    }
    fn increment(&self, key: &[u8]) -> Result<i64, IncrError> {
        let mut map = self.map.borrow_mut();
        let room = map.len() < self.max_keys;
        map.increment(key, || room, Full { max_keys: self.max_keys })
    }
    fn len(&self) -> usize {
        self.map.borrow().len()
    }
}
