//! The executor's timeouts: one task, the watchdog, wakes a few times a second and shuts the
//! socket of every connection whose clock ran out (see [`crate::conn::deadline`]). The
//! connection's own task then finds its read at end-of-file, or its write failing, and ends as
//! it would for a peer that left.
//!
//! Why not a timer in each connection's future, raced against its read? Because a future is as
//! large as its largest state, so a timer kept there costs every idle connection its size for
//! ever, and re-arming it on every request costs a trip through the reactor's timer map. A clock
//! is 24 bytes in a table beside the tasks, touched with one store per request; the sweep reads
//! them all, at most once a second for the default timeouts.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

use slab::Slab;

use super::reactor::Reactor;
use super::net::TcpStream;
use crate::conn::deadline::{Clock, Timeouts, Waiting};

/// Every watched connection's socket and clock.
pub struct Clocks {
    timeouts: Timeouts,
    entries: RefCell<Slab<(RawFd, Clock)>>,
}

/// One connection's entry; dropping it stops the watch.
pub struct Watched {
    clocks: Rc<Clocks>,
    key: usize,
}

impl Clocks {
    pub fn new(timeouts: Timeouts) -> Rc<Clocks> {
        Rc::new(Clocks { timeouts, entries: RefCell::new(Slab::new()) })
    }

    /// Start watching `stream`, unless every timeout is off.
    pub fn watch(self: &Rc<Self>, stream: &TcpStream) -> Option<Watched> {
        self.timeouts.sweep_interval()?;
        let key = self.entries.borrow_mut().insert((stream.as_raw_fd(), Clock::start(Instant::now())));
        Some(Watched { clocks: Rc::clone(self), key })
    }

    /// Shut the sockets whose timeout has run out; the tasks that own them see that next.
    fn sweep(&self, now: Instant) {
        for (_, (fd, clock)) in self.entries.borrow().iter() {
            if clock.expired(&self.timeouts, now) {
                // SAFETY: the fd belongs to a live connection task, which removes this entry
                // before it closes the socket; a shutdown on it changes nothing but the socket.
                unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
            }
        }
    }
}

/// Runs for the life of the server (the executor drops it with the other tasks).
pub async fn run(clocks: Rc<Clocks>, reactor: Rc<Reactor>) {
    let Some(every) = clocks.timeouts.sweep_interval() else { return };
    loop {
        reactor.sleep(every).await;
        clocks.sweep(Instant::now());
    }
}

impl Watched {
    /// What the connection waits for after a step, and whether the step made progress.
    pub fn observe(&self, waiting: Waiting, progress: bool) {
        if let Some((_, clock)) = self.clocks.entries.borrow_mut().get_mut(self.key) {
            clock.observe(Instant::now(), waiting, progress);
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.clocks.entries.borrow_mut().try_remove(self.key);
    }
}
