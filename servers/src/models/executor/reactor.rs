//! The reactor: turns readiness events from `polling` into wakes, and deadlines into wakes.
//!
//! Every socket is a *source*: a slot in a slab whose key is the key registered with the
//! poller, holding what is known about it (readable? writable?) and who waits for it.
//!
//! ```text
//!   task: try read ─ WouldBlock ─► poll_ready(Read): keep the waker, arm interest (oneshot)
//!   wait(): epoll_wait ─► event {key 7, readable}   (Poller::wait off Linux; see `wait_into`)
//!   dispatch(): source 7: readable = true, armed = nothing (oneshot fired), waiters woken
//!               ─► the task reads again; then every timer whose deadline has passed is woken
//! ```
//!
//! **Oneshot.** An armed source reports one event and is then disarmed, in both directions. So
//! a waiter that still waits after it is woken arms again (one `epoll_ctl` per wait), and the
//! kernel reports nothing about a socket that nobody waits for, however long it stays ready
//! (level-triggered interest would report it at every wait). The kernel checks readiness when
//! interest is armed, so bytes that arrive between a `WouldBlock` and the arming are not missed.
//!
//! **Timers** are a `BTreeMap` from deadline to waker: the poller's timeout is the earliest
//! deadline, a timer that is dropped before it fires removes its entry, and inserting or
//! removing one costs O(log n). Only connections that are closing use them here.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use polling::{Event, Events, Poller};
use slab::Slab;

/// Which way a task waits on a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// The reactor of one executor thread.
pub struct Reactor {
    poller: Arc<Poller>,
    events: RefCell<Events>,
    /// What the last wait found: (key, readable, writable) per source that reported.
    ready: RefCell<Vec<(usize, bool, bool)>>,
    /// Linux: the buffer `epoll_wait` fills (see [`wait_into`](Self::wait_into)).
    #[cfg(target_os = "linux")]
    raw: RefCell<Vec<libc::epoll_event>>,
    sources: RefCell<Slab<Source>>,
    /// Deadline (and a sequence number, so two equal deadlines are two entries) → waker.
    timers: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_timer: Cell<u64>,
    /// Shutdown began: nothing more will be read (see `TcpStream::poll_readable`).
    draining: Cell<bool>,
}

/// What the reactor knows about one socket.
struct Source {
    /// Worth trying the system call: an event said so, or nothing said otherwise yet. Cleared
    /// by the socket when a call returns `WouldBlock` (or a short read).
    readable: bool,
    writable: bool,
    /// Interest armed in the poller since its last event.
    armed_read: bool,
    armed_write: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Source {
    fn ready(&self, dir: Direction) -> bool {
        match dir {
            Direction::Read => self.readable,
            Direction::Write => self.writable,
        }
    }
}

impl Reactor {
    pub fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            poller: Arc::new(Poller::new()?),
            events: RefCell::new(Events::with_capacity(NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN))),
            ready: RefCell::new(Vec::with_capacity(1024)),
            #[cfg(target_os = "linux")]
            raw: RefCell::new(Vec::with_capacity(1024)),
            sources: RefCell::new(Slab::new()),
            timers: RefCell::new(BTreeMap::new()),
            next_timer: Cell::new(0),
            draining: Cell::new(false),
        })
    }

    /// The poller, so that wakes from other threads can interrupt `Poller::wait`.
    pub fn poller(&self) -> Arc<Poller> {
        Arc::clone(&self.poller)
    }

    /// Add a socket, armed for reading (what a new socket waits for first). Returns its key.
    /// The caller must [`deregister`](Self::deregister) it before closing it.
    pub fn register(&self, socket: &impl AsRawFd) -> io::Result<usize> {
        let mut sources = self.sources.borrow_mut();
        let entry = sources.vacant_entry();
        let key = entry.key();
        // SAFETY: `polling` requires the source to be deleted from the poller before it is
        // closed. Every registered socket is owned by a `TcpStream` or `TcpListener` whose
        // `Drop` calls `deregister` (which deletes it) before the socket field is dropped.
        unsafe { self.poller.add(socket, Event::readable(key))? };
        entry.insert(Source {
            readable: false,
            writable: true,
            armed_read: true,
            armed_write: false,
            reader: None,
            writer: None,
        });
        Ok(key)
    }

    /// Remove a socket (before it is closed).
    pub fn deregister(&self, socket: BorrowedFd<'_>, key: usize) {
        let _ = self.poller.delete(socket);
        self.sources.borrow_mut().try_remove(key);
    }

    /// Ready if `dir` is worth a system call; otherwise keep the waker and arm the interest.
    pub fn poll_ready(
        &self,
        socket: BorrowedFd<'_>,
        key: usize,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(key) else {
            return Poll::Ready(Err(io::Error::other("socket not registered")));
        };
        if source.ready(dir) {
            return Poll::Ready(Ok(()));
        }
        let (waiter, armed) = match dir {
            Direction::Read => (&mut source.reader, &mut source.armed_read),
            Direction::Write => (&mut source.writer, &mut source.armed_write),
        };
        // Cloning a waker only counts a reference; the same task waiting again clones nothing.
        if !waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waiter = Some(cx.waker().clone());
        }
        if !*armed {
            *armed = true;
            let interest = Event::new(key, source.armed_read, source.armed_write);
            if let Err(e) = self.poller.modify(socket, interest) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Pending
    }

    /// The last system call on `key` said `WouldBlock`: wait for an event before the next.
    pub fn clear_ready(&self, key: usize, dir: Direction) {
        if let Some(source) = self.sources.borrow_mut().get_mut(key) {
            match dir {
                Direction::Read => source.readable = false,
                Direction::Write => source.writable = false,
            }
        }
    }

    /// Wait for events: not at all if `may_sleep` is false, else until the earliest timer (or
    /// for ever, if there is none) unless an event or `Poller::notify` comes first.
    pub fn wait(&self, may_sleep: bool) -> io::Result<()> {
        let timeout = match (may_sleep, self.next_deadline()) {
            (false, _) => Some(Duration::ZERO),
            (true, deadline) => deadline.map(|at| at.saturating_duration_since(Instant::now())),
        };
        let mut ready = self.ready.borrow_mut();
        ready.clear();
        // A wait may return no events at all (a notification from another thread, or the
        // timeout).
        self.wait_into(&mut ready, timeout)
    }

    /// Everywhere but Linux: `Poller::wait`, which retries an interrupted wait itself.
    #[cfg(not(target_os = "linux"))]
    fn wait_into(&self, ready: &mut Vec<(usize, bool, bool)>, timeout: Option<Duration>) -> io::Result<()> {
        self.poll_with_polling(ready, timeout)
    }

    fn poll_with_polling(&self, ready: &mut Vec<(usize, bool, bool)>, timeout: Option<Duration>) -> io::Result<()> {
        let mut events = self.events.borrow_mut();
        events.clear();
        self.poller.wait(&mut events, timeout)?;
        ready.extend(events.iter().map(|e| (e.key, e.readable, e.writable)));
        Ok(())
    }

    /// Linux: `epoll_wait` straight on the poller's own epoll descriptor, with a millisecond
    /// timeout. `Poller::wait` makes four more system calls on every wait, the price of its
    /// portable design: it sets and arms a timerfd for a nanosecond timeout, then reads and
    /// re-arms the eventfd that `Poller::notify` writes. At about one wait per request that
    /// cost the executor a fifth more CPU than the `reactor`, whose mio makes the one call
    /// (`scripts/check-targets.sh --only 6`). So the executor waits itself, and hands the
    /// bookkeeping back to `polling` only when its notification fired.
    #[cfg(target_os = "linux")]
    fn wait_into(&self, ready: &mut Vec<(usize, bool, bool)>, timeout: Option<Duration>) -> io::Result<()> {
        /// The key `polling` registers its own notifier (and timerfd) under.
        const NOTIFY_KEY: u64 = usize::MAX as u64;
        let millis = match timeout {
            None => -1,
            Some(t) => i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
        };
        let mut raw = self.raw.borrow_mut();
        raw.clear();
        let capacity = i32::try_from(raw.capacity()).unwrap_or(i32::MAX);
        let found = loop {
            // SAFETY: the buffer has room for `capacity` events, and the kernel writes at most
            // that many into it; the descriptor is the poller's, alive as long as `self`.
            let n = unsafe { libc::epoll_wait(self.poller.as_raw_fd(), raw.as_mut_ptr(), capacity, millis) };
            match usize::try_from(n) {
                Ok(n) => break n,
                Err(_) if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(io::Error::last_os_error()),
            }
        };
        // SAFETY: `epoll_wait` initialised the first `found` entries.
        unsafe { raw.set_len(found) };
        let mut notified = false;
        for event in raw.iter() {
            // Copied out: the kernel's struct is packed, so its fields are read by value.
            let (key, flags) = (event.u64, event.events as libc::c_int);
            if key == NOTIFY_KEY {
                notified = true;
                continue;
            }
            // The same reading of the flags as `polling`'s: hang-ups and errors count as both.
            let readable = flags & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLPRI) != 0;
            let writable = flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0;
            ready.push((key as usize, readable, writable));
        }
        if notified {
            // Let `polling` clear and re-arm its notifier, and take whatever else it finds.
            self.poll_with_polling(ready, Some(Duration::ZERO))?;
        }
        Ok(())
    }

    /// Turn what [`wait`](Self::wait) found into wakes: whoever waits on a source that reported
    /// an event, then the timers that are due.
    pub fn dispatch(&self) {
        let ready = self.ready.borrow();
        let mut sources = self.sources.borrow_mut();
        for &(key, readable, writable) in ready.iter() {
            // An event for a socket closed meanwhile has no source any more.
            let Some(source) = sources.get_mut(key) else { continue };
            // Oneshot: the source is disarmed in both directions now.
            (source.armed_read, source.armed_write) = (false, false);
            // Hang-ups and errors count as both, so the next call reports them.
            source.readable |= readable;
            source.writable |= writable;
            // Every waiter runs again: one still waiting (the other direction) re-arms.
            for waker in [source.reader.take(), source.writer.take()].into_iter().flatten() {
                waker.wake();
            }
        }
        drop(sources);
        self.fire_timers();
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.timers.borrow().first_key_value().map(|(&(at, _), _)| at)
    }

    fn fire_timers(&self) {
        if self.timers.borrow().is_empty() {
            return;
        }
        let now = Instant::now();
        loop {
            let mut timers = self.timers.borrow_mut();
            let Some(entry) = timers.first_entry() else { return };
            if entry.key().0 > now {
                return;
            }
            let waker = entry.remove();
            drop(timers);
            waker.wake();
        }
    }

    /// A future that completes at `deadline`.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep<'_> {
        Sleep { reactor: self, deadline, entry: None }
    }

    /// A future that completes `duration` from now.
    pub fn sleep(&self, duration: Duration) -> Sleep<'_> {
        self.sleep_until(Instant::now() + duration)
    }

    /// Shutdown: nothing more is read. Everyone waiting to read is woken to find that out.
    pub fn begin_draining(&self) {
        self.draining.set(true);
        let mut sources = self.sources.borrow_mut();
        let readers: Vec<Waker> = sources.iter_mut().filter_map(|(_, s)| s.reader.take()).collect();
        drop(sources);
        readers.into_iter().for_each(Waker::wake);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.get()
    }
}

/// A timer: see [`Reactor::sleep`].
pub struct Sleep<'r> {
    reactor: &'r Reactor,
    deadline: Instant,
    /// The sequence number of its entry in the reactor's timers, once it has one.
    entry: Option<u64>,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.cancel();
            return Poll::Ready(());
        }
        let mut timers = self.reactor.timers.borrow_mut();
        if let Some(waker) = self.entry.and_then(|seq| timers.get_mut(&(self.deadline, seq))) {
            if !waker.will_wake(cx.waker()) {
                *waker = cx.waker().clone();
            }
        } else {
            let seq = self.reactor.next_timer.get();
            self.reactor.next_timer.set(seq + 1);
            timers.insert((self.deadline, seq), cx.waker().clone());
            drop(timers);
            self.entry = Some(seq);
        }
        Poll::Pending
    }
}

impl Sleep<'_> {
    fn cancel(&mut self) {
        if let Some(seq) = self.entry.take() {
            self.reactor.timers.borrow_mut().remove(&(self.deadline, seq));
        }
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        self.cancel();
    }
}
