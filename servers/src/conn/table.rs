//! The connection table of one event loop: every [`Conn`] it serves, whose turn comes next, and
//! the timers of connections that are closing. A loop (the `reactor`, each thread of the
//! `multi-reactor`) owns one table and does three things with it: hands it new connections,
//! hands it readiness events, and ends each turn with [`Table::take_turns`] and
//! [`Table::end_turn`].
//!
//! The timers need no timer wheel: every connection in a list waits the same time
//! ([`LINGER_TIME`] or [`DELIVERY_WAIT`]), so each list is in deadline order and only its front
//! can be due.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;

use super::admission::{Admission, refuse};
use super::deadline::Sweep;
use super::loop_room::LoopRoom;
use super::nonblocking::{Conn, Next, SharedIo};
use crate::config::ServerConfig;
use crate::net::{DELIVERY_WAIT, LINGER_TIME};
use crate::proto::Proto;
use crate::store::Store;

/// How often closing connections are checked for their last bytes being acknowledged: the
/// kernel has no readiness event for "all acknowledged".
const RECHECK: Duration = Duration::from_millis(1);

/// See the module documentation.
pub struct Table<S> {
    /// Open connections; a connection's slab key is its mio token.
    pub(super) conns: Slab<Conn<S>>,
    pub(super) io: SharedIo,
    /// A duplicate of the loop's registry, for turning write interest on and off.
    pub(super) registry: Registry,
    /// Connections discarding input after an error reply, oldest first.
    lingering: VecDeque<(Instant, Token, u64)>,
    /// Closing connections waiting for the peer to acknowledge their last replies, with the
    /// moment they are closed regardless (see `crate::net::wait_until_delivered`).
    delivering: Vec<(Instant, Token, u64)>,
    /// Connections that used up their turn (its reads, or its budget of requests with a
    /// backlog left) and may have more to serve; each at most once (`Conn::queued`).
    read_later: Vec<(Token, u64)>,
    /// `chat` only: the room is this table (see [`super::loop_chat`]).
    pub(super) chat: LoopRoom,
    next_serial: u64,
    /// The `kv` store: an `Rc` when one loop owns it, an `Arc` when loops share it.
    store: S,
    config: ServerConfig,
    /// `--max-conns`, counted across every loop of the server.
    admission: Admission,
    /// When to look next for connections whose request, idle or write timeout ran out (never
    /// for chat).
    sweep: Sweep,
}

impl<S: Store + Clone> Table<S> {
    /// An empty table whose connections share `store`, the count of connections `admission`
    /// and, for chat, `room`.
    pub fn new(
        config: &ServerConfig,
        registry: Registry,
        store: S,
        room: LoopRoom,
        admission: Admission,
    ) -> Table<S> {
        Table {
            conns: Slab::new(),
            io: SharedIo::new(config.max_request_len()),
            registry,
            lingering: VecDeque::new(),
            delivering: Vec::new(),
            read_later: Vec::new(),
            chat: room,
            next_serial: 0,
            store,
            config: config.clone(),
            admission,
            sweep: Sweep::new(config.connection_timeouts()),
        }
    }

    /// Serve a newly accepted connection (its tokens never collide with the loop's own, which
    /// count down from `usize::MAX`), unless shutdown began.
    pub fn insert(&mut self, mut stream: TcpStream) {
        if self.io.draining {
            return; // shutdown began: dropping the stream closes it, as a closed listener would
        }
        let Some(place) = self.admission.admit() else {
            return refuse(&stream, self.config.proto); // `--max-conns`; dropping it closes it
        };
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        if self.registry.register(&mut stream, token, Interest::READABLE).is_err() {
            return; // dropping the stream closes it: one connection lost, not the loop
        }
        self.next_serial += 1;
        let session = self.config.session(self.store.clone()).taking_turns();
        entry.insert(Conn::new(stream, token, session, self.next_serial, place));
        if self.config.proto == Proto::Chat {
            self.join(token);
        }
    }

    /// A readiness event for connection `token`.
    pub fn on_event(&mut self, token: Token, event: &mio::event::Event) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return; // an event for a connection closed earlier in this batch
        };
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        // A peer that closed (or failed) will send nothing more: read to the end, on this turn
        // and on every later one (the event comes once).
        let to_end = event.is_read_closed() || event.is_error();
        if to_end {
            conn.saw_end();
        }
        if conn.member.is_some() {
            return self.on_member_event(token, event.is_writable(), readable, to_end);
        }
        let mut next = Ok(Next::Keep);
        if event.is_writable() {
            next = conn.on_writable(&mut self.io, &self.registry);
        }
        // A connection queued for its next turn reads then: reading now would give it two.
        if readable && !conn.queued && matches!(next, Ok(Next::Keep)) {
            next = conn.on_readable(&mut self.io, &self.registry, to_end);
        }
        self.apply(token, next);
    }

    /// How long the loop may sleep in `poll`: not at all while work is waiting, otherwise until
    /// the earliest of this table's deadlines and the loop's own (`others`), or for ever.
    pub fn poll_timeout(&self, others: &[Option<Instant>]) -> Option<Duration> {
        if !self.read_later.is_empty() || self.chat.has_output() {
            // Connections are waiting for their next turn, or chat members (welcomed by a late
            // accept, say) for their output.
            return Some(Duration::ZERO);
        }
        let recheck = (!self.delivering.is_empty()).then(|| Instant::now() + RECHECK);
        let sweep = self.sweep.next().filter(|_| !self.conns.is_empty());
        let ours = [self.lingering.front().map(|&(at, ..)| at), recheck, self.chat.next_deadline(), sweep];
        let earliest = ours.into_iter().chain(others.iter().copied()).flatten().min()?;
        Some(earliest.saturating_duration_since(Instant::now()))
    }

    /// During shutdown, whether the loop may stop: every connection has finished, or the grace
    /// period that ends at `deadline` is over (the loop then drops the table, which closes
    /// whoever is left).
    pub fn drained(&self, deadline: Instant) -> bool {
        if self.conns.is_empty() {
            return true;
        }
        if Instant::now() < deadline {
            return false;
        }
        crate::log::line(format_args!(
            "grace period over: closed {} connection(s) still open",
            self.conns.len()
        ));
        true
    }

    /// The end of a loop turn, after [`take_turns`](Self::take_turns): write chat members, and
    /// close whoever is due.
    pub fn end_turn(&mut self) {
        self.write_members();
        let now = Instant::now();
        self.expire_lingering(now);
        self.check_delivered(now);
        self.expire_chat_deadlines(now);
        self.sweep_timeouts(now);
    }

    /// Close every connection whose request, idle or write timeout ran out, if it is time to
    /// look. A timed-out connection is simply closed, as nginx and Redis do: a peer that stopped
    /// sending or reading is not waiting for an answer.
    fn sweep_timeouts(&mut self, now: Instant) {
        let timed = self.conns.iter().filter(|(_, conn)| conn.timed()).map(|(key, conn)| (key, &conn.clock));
        for key in self.sweep.expired(now, timed) {
            self.close(Token(key));
        }
    }

    /// Shutdown began: every connection answers what it reads next, flushes its replies and
    /// closes (or is closed when the loop's grace period ends).
    pub fn begin_draining(&mut self) {
        self.io.draining = true;
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            // No `shutdown(SHUT_RD)` needed here: nobody is blocked in a read, and the
            // `draining` flag makes each connection stop after what it reads next.
            self.read(Token(key), true);
        }
    }

    /// Carry out what a connection's handler decided. Errors (a reset, a broken pipe) close that
    /// one connection; they are the peer's business, not the server's.
    pub(super) fn apply(&mut self, token: Token, next: io::Result<Next>) {
        if self.sweep.is_on() && matches!(next, Ok(Next::Keep | Next::ReadLater)) {
            if let Some(conn) = self.conns.get_mut(token.0) {
                conn.tick(Instant::now());
            }
        }
        match next {
            Ok(Next::Keep) => {}
            Ok(Next::Close) | Err(_) => self.close(token),
            Ok(Next::StartLingering) => {
                let Some(conn) = self.conns.get_mut(token.0) else { return };
                self.lingering.push_back((Instant::now() + LINGER_TIME, token, conn.serial));
                let next = conn.on_readable(&mut self.io, &self.registry, true);
                self.apply(token, next);
            }
            Ok(Next::AwaitDelivery) => {
                if let Some(conn) = self.conns.get(token.0) {
                    self.delivering.push((Instant::now() + DELIVERY_WAIT, token, conn.serial));
                }
            }
            Ok(Next::ReadLater) => {
                if let Some(conn) = self.conns.get_mut(token.0).filter(|c| !c.queued) {
                    conn.queued = true;
                    self.read_later.push((token, conn.serial));
                }
            }
        }
    }

    /// Read from connection `token` and act on it, whether it is a chat member or not.
    fn read(&mut self, token: Token, to_end: bool) {
        let Some(conn) = self.conns.get_mut(token.0) else { return };
        let next = if conn.member.is_some() {
            self.member_readable(token, to_end)
        } else {
            conn.on_readable(&mut self.io, &self.registry, to_end)
        };
        self.apply(token, next);
    }

    /// After the events of a turn: give every connection that used up its turn another one, in
    /// the order they queued.
    pub fn take_turns(&mut self) {
        for (token, serial) in std::mem::take(&mut self.read_later) {
            if let Some(conn) = self.conns.get_mut(token.0).filter(|c| c.serial == serial) {
                conn.queued = false;
                self.read(token, false);
            }
        }
    }

    /// Close the connections whose last bytes were acknowledged, or that waited long enough.
    fn check_delivered(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.delivering.len() {
            let (deadline, token, serial) = self.delivering[i];
            let done = match self.conns.get(token.0).filter(|c| c.serial == serial) {
                None => true, // closed meanwhile (a reset)
                Some(conn) => now >= deadline || conn.delivered(),
            };
            if done {
                self.delivering.swap_remove(i);
                self.close_if_current(token, serial);
            } else {
                i += 1;
            }
        }
    }

    fn expire_lingering(&mut self, now: Instant) {
        while let Some(&(at, token, serial)) = self.lingering.front() {
            if at > now {
                break;
            }
            self.lingering.pop_front();
            self.close_if_current(token, serial);
        }
    }

    pub(super) fn close_if_current(&mut self, token: Token, serial: u64) {
        if self.conns.get(token.0).is_some_and(|c| c.serial == serial) {
            self.close(token);
        }
    }

    fn close(&mut self, token: Token) {
        let Some(conn) = self.conns.try_remove(token.0) else { return };
        if let Some(member) = conn.release(&mut self.io).filter(|m| m.in_room) {
            // Closed while still in the room (a reset, a failed write): tell the others.
            let tell = !self.io.draining;
            self.announce_left(member.id, tell);
        }
    }
}
