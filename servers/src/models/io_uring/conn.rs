//! One connection of the io_uring loop: what it keeps between completions, and which of its
//! buffers the kernel holds right now; and, for chat, the room's own bookkeeping (its routing
//! is `room.rs`).
//!
//! The reactor's connection ([`crate::conn::nonblocking`]) owns its buffers outright: between
//! two events, nobody else touches them. Here the kernel does, while an operation runs, and the
//! borrow checker cannot see that: once `Send` is submitted with a pointer into
//! [`Outgoing::buf`], nothing may push to that `Vec` (a reallocation would leave the kernel
//! reading freed memory) nor drop it, until the completion comes back. The discipline is
//! written down as `armed` flags: a buffer is touched only while its operation is not armed,
//! and a connection leaves the slab only when neither is (see `Loop::finish_close`).

use std::collections::VecDeque;
use std::net::TcpStream;
use std::time::Instant;

use crate::conn::nonblocking::{BufferPool, Phase, Unserved};
use crate::proto::chat::MemberId;
use crate::proto::outbox::Outbox;
use crate::conn::deadline::{Clock, Waiting};
use crate::session::Session;

/// Bytes handed to the kernel to send.
#[derive(Default)]
pub struct Outgoing {
    /// While `armed`, the kernel reads from here: no push, no drop.
    pub buf: Vec<u8>,
    /// How much of `buf` the kernel has sent (a send may be short).
    pub sent: usize,
    /// A `Send` of `buf[sent..]` is in flight.
    pub armed: bool,
}

impl Outgoing {
    pub fn unsent(&self) -> &[u8] {
        &self.buf[self.sent..]
    }
}

/// One client's state between completions.
pub struct Conn<S> {
    pub socket: TcpStream,
    pub session: Session<S>,
    pub phase: Phase,
    /// Tells this connection apart from a later one in the same slab slot, for the timers.
    pub serial: u64,
    /// Bytes of a request that arrived only in part, or requests a turn left unanswered (no
    /// allocation while empty).
    pub pending_in: Unserved,
    /// What the kernel is sending.
    pub outgoing: Outgoing,
    /// Replies produced while a send was in flight; they go out when it completes.
    pub queued: Vec<u8>,
    /// A `Recv` is in flight: the kernel will pick a buffer from the ring when bytes arrive.
    pub recv_armed: bool,
    /// Receiving stopped: output passed the high-water mark, or a turn stopped at its budget
    /// (of replies, or of requests) with requests left in `pending_in` (`backlog`).
    pub recv_paused: bool,
    /// `pending_in` may hold complete requests not yet answered (see `Served::more`).
    pub backlog: bool,
    /// The connection is to be closed once nothing of it is in flight.
    pub closing: bool,
    /// `chat` only: this connection as a member of the room.
    pub member: Option<Box<Member>>,
    /// Which timeout runs, since when (see [`crate::conn::deadline`]).
    pub clock: Clock,
    /// Since the clock was last told: a request was answered or reply bytes were sent.
    pub progress: bool,
}

/// One connection as a member of the chat room.
pub struct Member {
    pub id: MemberId,
    /// What the others said, not yet handed to the kernel; bounded (see `proto::outbox`).
    pub outbox: Outbox,
    /// Receives what the others say. False once it left or was dropped.
    pub in_room: bool,
    /// Listed in the room's dirty list already.
    pub dirty: bool,
}

impl<S> Conn<S> {
    pub fn new(socket: TcpStream, session: Session<S>, serial: u64) -> Conn<S> {
        Conn {
            socket,
            session,
            phase: Phase::Open,
            serial,
            pending_in: Unserved::default(),
            outgoing: Outgoing::default(),
            queued: Vec::new(),
            recv_armed: false,
            recv_paused: false,
            backlog: false,
            closing: false,
            member: None,
            clock: Clock::start(Instant::now()),
            progress: false,
        }
    }

    /// Tell the clock what the connection waits for now that a completion has been handled.
    pub fn tick(&mut self, now: Instant) {
        let waiting = Waiting::of(self.unsent_len(), self.pending_in.len());
        self.clock.observe(now, waiting, std::mem::take(&mut self.progress));
    }

    /// Whether the timeouts apply in its phase: not while closing, lingering or waiting for
    /// delivery, which have deadlines of their own.
    pub fn timed(&self) -> bool {
        !self.closing && matches!(self.phase, Phase::Open | Phase::PeerDone | Phase::Failing)
    }

    /// Output not yet acknowledged by a send completion: what the kernel is sending plus what
    /// waits behind it (for a member, its outbox).
    pub fn unsent_len(&self) -> usize {
        let outbox = self.member.as_ref().map_or(0, |m| m.outbox.len());
        self.outgoing.unsent().len() + self.queued.len() + outbox
    }

    /// Nothing in flight: the slot may be freed.
    pub fn idle_in_kernel(&self) -> bool {
        !self.recv_armed && !self.outgoing.armed
    }

    /// Give every buffer back to the pool; the kernel holds none of them (`idle_in_kernel`).
    pub fn release_buffers(&mut self, pool: &mut BufferPool) {
        debug_assert!(self.idle_in_kernel());
        self.pending_in.release(pool);
        pool.give(std::mem::take(&mut self.outgoing.buf));
        pool.give(std::mem::take(&mut self.queued));
    }
}

/// The room's bookkeeping; the members themselves are the loop's connections.
pub struct Room {
    pub queue_limit: usize,
    pub last_id: MemberId,
    /// Members given new output this turn, with their serials.
    pub dirty: Vec<(usize, u64)>,
    /// Members that left or were dropped with output still queued, and when they are closed
    /// whether or not they read it (all wait the same time, so the queue is in order).
    pub deadlines: VecDeque<(Instant, usize, u64)>,
}

impl Room {
    pub fn new(queue_limit: usize) -> Room {
        Room { queue_limit, last_id: 0, dirty: Vec::new(), deadlines: VecDeque::new() }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|&(at, ..)| at)
    }
}
