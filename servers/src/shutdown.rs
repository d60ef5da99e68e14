//! Stopping a server politely, the same way in every model.
//!
//! Shutdown has two halves:
//!
//! 1. **Stop accepting.** [`Shutdown::trigger`] (called by the SIGINT/SIGTERM handler or by a
//!    test) sets a flag and runs the wake-up each model registered with [`Shutdown::on_trigger`]:
//!    a thread blocked in `accept()` is woken by a connection to itself, an event loop by its
//!    waker, a tokio task by a `Notify`.
//! 2. **Let open connections finish.** [`OpenConnections`] knows every open socket. Draining
//!    sets a flag every connection checks after each read, and calls `shutdown(SHUT_RD)` on each
//!    socket, which wakes a thread blocked in `read` (the read returns what is queued, or
//!    end-of-file). A connection that sees the flag answers the complete requests it has read,
//!    then closes the way it closes for a client that half-closed: end-of-file after the last
//!    reply, and the descriptor closed only once the peer has acknowledged them (see
//!    `crate::net::wait_until_delivered`). Requests a client sends after that are not
//!    read: `SHUT_RD` alone would not stop them, since Linux keeps delivering new data after it.
//!    Whoever is still open when the grace period ends is closed outright.

use std::collections::HashMap;
use std::net::Shutdown as Direction;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

type Waker = Box<dyn Fn() + Send>;

/// A one-way switch from "serving" to "shutting down", shared by everyone who needs to know.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Default)]
struct ShutdownInner {
    triggered: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
    triggered_cv: Condvar,
}

impl Shutdown {
    /// A switch that has not been triggered.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Ask the server to stop. Idempotent; safe from any thread.
    pub fn trigger(&self) {
        if !self.inner.triggered.swap(true, Ordering::SeqCst) {
            let wakers = lock(&self.inner.wakers);
            for wake in wakers.iter() {
                wake();
            }
            self.inner.triggered_cv.notify_all();
        }
    }

    /// Block the calling thread until shutdown is triggered.
    pub fn wait(&self) {
        let mut wakers = lock(&self.inner.wakers);
        while !self.is_triggered() {
            wakers = self.inner.triggered_cv.wait(wakers).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Has [`trigger`](Self::trigger) been called?
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Run `wake` when shutdown is triggered (at once, if it already was). Models use this to
    /// interrupt whatever call their acceptor is blocked in.
    pub fn on_trigger(&self, wake: impl Fn() + Send + 'static) {
        // Check and register under the same lock `trigger` takes, so a trigger racing with this
        // call either sees the waker or is seen by us: the wake-up is never lost.
        let mut wakers = lock(&self.inner.wakers);
        if self.is_triggered() {
            drop(wakers);
            wake();
        } else {
            wakers.push(Box::new(wake));
        }
    }
}

/// The set of sockets a server has open, so that shutdown can reach connections owned by other
/// threads or tasks.
///
/// It stores raw file descriptors rather than duplicates: a duplicate per connection would halve
/// the number of connections a process can hold. That is safe because a [`Tracked`] socket
/// leaves the set, under the lock, *before* its descriptor is closed, so the set never names a
/// descriptor that could have been reused for something else.
#[derive(Clone, Default)]
pub struct OpenConnections {
    inner: Arc<ConnsInner>,
}

#[derive(Default)]
struct ConnsInner {
    set: Mutex<ConnSet>,
    became_empty: Condvar,
    /// Draining began. Set under the set's lock, so `track` (which holds it) sees it without a
    /// race; read without the lock by every connection after every read.
    draining: AtomicBool,
}

#[derive(Default)]
struct ConnSet {
    next_id: u64,
    fds: HashMap<u64, RawFd>,
}

impl OpenConnections {
    /// An empty set.
    pub fn new() -> OpenConnections {
        OpenConnections::default()
    }

    /// Add `socket` to the set for as long as the returned wrapper lives.
    pub fn track<S: AsRawFd>(&self, socket: S) -> Tracked<S> {
        let fd = socket.as_raw_fd();
        let mut set = lock(&self.inner.set);
        let id = set.next_id;
        set.next_id += 1;
        set.fds.insert(id, fd);
        if self.is_draining() {
            stop_reading(fd);
        }
        drop(set);
        Tracked { socket, id, owner: self.clone() }
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        lock(&self.inner.set).fds.len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tell every connection to finish: each answers the requests it has read and closes (see
    /// the module documentation).
    pub fn begin_draining(&self) {
        let set = lock(&self.inner.set);
        self.inner.draining.store(true, Ordering::SeqCst);
        for &fd in set.fds.values() {
            stop_reading(fd);
        }
    }

    /// Has draining begun? Connections check this after every read.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Cut every connection in both directions: whoever is blocked on it wakes with an error.
    pub fn close_all(&self) {
        for &fd in lock(&self.inner.set).fds.values() {
            // Errors mean the peer is already gone: nothing left to cut.
            shutdown_fd(fd, Direction::Both);
        }
    }

    /// Wait until every connection has closed or `timeout` passes; true if they all closed.
    pub fn wait_until_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut set = lock(&self.inner.set);
        while !set.fds.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            set = self.inner.became_empty.wait_timeout(set, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    /// The blocking models' whole second half of shutdown: ask every connection to finish,
    /// give them `grace`, then cut whoever is left. Returns how many had to be cut.
    pub fn drain(&self, grace: Duration) -> usize {
        self.begin_draining();
        if self.wait_until_empty(grace) {
            return 0;
        }
        let cut = self.len();
        self.close_all();
        // Cut sockets make their threads return at once; this wait is only a safety net.
        self.wait_until_empty(Duration::from_secs(1));
        cut
    }
}

fn stop_reading(fd: RawFd) {
    // ENOTCONN just means the peer is already gone: nothing to stop.
    shutdown_fd(fd, Direction::Read);
}

/// `shutdown(2)` on a descriptor of the set. Callers hold the set's lock.
fn shutdown_fd(fd: RawFd, direction: Direction) {
    // SAFETY: the caller holds the set's lock, and a descriptor leaves the set before it is
    // closed, so `fd` is open for as long as this borrow is used.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = socket2::SockRef::from(&fd).shutdown(direction);
}

/// A socket that is a member of an [`OpenConnections`] set until it is dropped.
pub struct Tracked<S: AsRawFd> {
    socket: S,
    id: u64,
    owner: OpenConnections,
}

impl<S: AsRawFd> Drop for Tracked<S> {
    fn drop(&mut self) {
        // Leave the set first; the socket itself is closed after this returns, when the
        // `socket` field is dropped.
        let mut set = lock(&self.owner.inner.set);
        set.fds.remove(&self.id);
        if set.fds.is_empty() {
            self.owner.inner.became_empty.notify_all();
        }
    }
}

impl<S: AsRawFd> Tracked<S> {
    /// Has the server begun draining? A connection that sees this after a read answers what it
    /// read and closes.
    pub fn is_draining(&self) -> bool {
        self.owner.is_draining()
    }
}

impl<S: AsRawFd> Deref for Tracked<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.socket
    }
}

impl<S: AsRawFd> DerefMut for Tracked<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.socket
    }
}

/// A poisoned lock only means another thread panicked while holding it; the data (a flag, a
/// set of descriptors) is still consistent, and shutdown must go on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
