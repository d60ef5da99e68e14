//! One connection of an event loop: non-blocking socket, explicit buffers, explicit phase.
//!
//! A thread-based server keeps a connection's state on its stack: where it is in a request, what
//! it still has to write. An event loop serves thousands of connections from one stack, so that
//! state lives here, in a [`Conn`], between events:
//!
//! ```text
//!   readable ─► read into the loop's shared buffer ─► Session::serve ─► replies in `io.out`
//!                 │ a partial request? copy its tail to `pending_in`
//!                 ▼
//!   write `io.out` now ─► what the kernel would not take goes to `pending_out`, WRITABLE on
//!   writable ─► flush `pending_out` ─► empty? WRITABLE off, and read again if reading paused
//! ```
//!
//! **Details that matter.**
//! - *Edge-triggered readiness*: mio reports a socket once when it *becomes* ready, so after an
//!   event the connection reads until `WouldBlock`, or it may never hear of the rest. One
//!   exception saves a system call per request: a read that returns less than the buffer size
//!   has drained the socket, and new bytes will raise a new event (tokio relies on the same fact).
//! - *Write interest only while output is pending*: asking for `WRITABLE` all the time would wake
//!   the loop on every acknowledgement from the peer.
//! - *Back-pressure*: past `--max-output` bytes of pending output a connection stops reading; TCP
//!   flow control then slows the peer down, and memory stays bounded. Others are unaffected.
//!   Checking before each read is not enough on its own, since one read can ask for far more
//!   than it holds (a 7-byte `GET` for a 64 KiB value): decoding itself stops once a turn's
//!   replies reach the same budget ([`DEFAULT_MAX_OUTPUT`](crate::session::DEFAULT_MAX_OUTPUT)), and the requests left over
//!   are answered (the connection's `backlog`) before it reads again.
//! - *Taking turns*: one connection answers at most
//!   [`REQUESTS_PER_TURN`](crate::session::REQUESTS_PER_TURN) requests and makes at most
//!   [`READS_PER_TURN`] reads per turn, so a client that pipelines, or keeps its socket full,
//!   cannot starve the others (tokio's "cooperative budget"). What is left waits in its
//!   `backlog` for its next turn.
//! - *No buffers while idle*: the read buffer is shared by every connection of the loop
//!   ([`SharedIo`]); a connection holds buffers of its own only while a request or reply is in
//!   flight, borrowed from a small pool.
//! - *Closing without a reset*: after an error reply the connection shuts its sending side and
//!   discards input for a while ([`Phase::Lingering`]); after its last reply it waits for the
//!   peer's acknowledgement ([`Phase::Delivering`]). `crate::net` explains why.
//!
//! The loop that owns these connections, their turns and their timers is [`super::table`].

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown as Direction;
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::admission::Admitted;
use super::deadline::{Clock, Waiting};
use super::loop_room::Member;
use crate::buffer::recycle;
use crate::net::{AcceptFailure, FdReserve, LINGER_BYTES, Shed, unacknowledged};
use crate::session::{Served, Session};
use crate::store::Store;

/// Connections a loop accepts per turn before it serves the ones it has. Accepting until the
/// queue is empty lets a flood of 2,000 connections hold the loop for tens of milliseconds
/// while every connected client waits (the abuse suite's flood measured a probe's p99 at 50 ms
/// against 1 ms); nginx's default (`multi_accept off`) takes one per event for the same reason.
pub const ACCEPTS_PER_TURN: usize = 32;

/// Reads one connection may make per turn before the others get theirs. Without a cap, a
/// client that keeps the socket full would be read from forever while everyone else waits.
pub const READS_PER_TURN: usize = 16;

/// Buffers shared by every connection of one loop, because only one is being served at a time.
pub struct SharedIo {
    /// Every read lands here first; only what a turn leaves unserved (the unfinished tail of
    /// a request, or requests past the turn's budget) is copied out.
    pub read_buf: Vec<u8>,
    /// Replies produced by one read, written straight away.
    pub out: Vec<u8>,
    pub pool: BufferPool,
    /// Shutdown began: every connection answers what it reads next, then closes.
    pub draining: bool,
}

impl SharedIo {
    /// Room for the largest request (and at least 64 KiB, so one read takes many small ones).
    pub fn new(max_request_len: usize) -> SharedIo {
        SharedIo {
            read_buf: vec![0; max_request_len.max(64 * 1024)],
            out: Vec::new(),
            pool: BufferPool::default(),
            draining: false,
        }
    }
}

/// A free list of buffers, so a connection that needs one for a moment does not allocate.
#[derive(Default)]
pub struct BufferPool {
    free: Vec<Vec<u8>>,
}

impl BufferPool {
    /// Keep at most this many spare buffers, none larger than `MAX_KEPT` bytes.
    const MAX_SPARE: usize = 256;
    const MAX_KEPT: usize = 128 * 1024;

    pub fn take(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_default()
    }

    pub fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() != 0 && buf.capacity() <= Self::MAX_KEPT && self.free.len() < Self::MAX_SPARE {
            buf.clear();
            self.free.push(buf);
        }
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading requests and writing replies.
    Open,
    /// The peer sent end-of-file: write the remaining replies, then close.
    PeerDone,
    /// The peer broke the protocol: write the error reply, then half-close and linger.
    Failing,
    /// Error reply sent and our side shut: discard input until the peer closes or time is up.
    Lingering { discarded: usize },
    /// Everything written and our side shut: wait for the peer's acknowledgement, then close.
    Delivering,
}

/// What the loop should do with a connection after handling an event.
pub enum Next {
    Keep,
    Close,
    StartLingering,
    AwaitDelivery,
    ReadLater,
}

/// One client's state between events.
pub struct Conn<S> {
    pub stream: TcpStream,
    pub token: Token,
    pub session: Session<S>,
    pub phase: Phase,
    /// Bytes of a request that arrived only in part, or requests a turn left unanswered (no
    /// allocation while empty).
    pending_in: Unserved,
    /// Reply bytes the kernel did not accept yet (no allocation while empty).
    pending_out: Vec<u8>,
    /// Registered for `WRITABLE` as well as `READABLE`.
    write_interest: bool,
    /// Reading stopped because `pending_out` passed the session's `max_output`.
    read_paused: bool,
    /// A turn stopped at its budget (of replies, [`crate::session::DEFAULT_MAX_OUTPUT`], or of
    /// requests, [`crate::session::REQUESTS_PER_TURN`]): `pending_in` may hold complete
    /// requests, to be answered before anything more is read.
    backlog: bool,
    /// The peer's end-of-file (or an error) was reported: every turn from now on reads until
    /// the socket says so, since no event will report it again.
    peer_closed: bool,
    /// Waiting in its table's queue for its next turn (see `Table::take_turns`): readiness
    /// events do not read for it meanwhile, or each would be an extra turn.
    pub queued: bool,
    /// Tells this connection apart from a later one that reuses its slab slot (and token).
    pub serial: u64,
    /// `chat` only: this connection as a member of the room (boxed: echo pays one pointer).
    pub member: Option<Box<Member>>,
    /// Which timeout runs, since when (see [`super::deadline`]).
    pub clock: Clock,
    /// Since the clock was last told: a request was answered or reply bytes were taken.
    progress: bool,
    /// Its place under `--max-conns`, given back when the connection is dropped.
    _place: Admitted,
}

impl<S: Store> Conn<S> {
    /// A connection registered for `READABLE` under `token`.
    pub fn new(
        stream: TcpStream,
        token: Token,
        session: Session<S>,
        serial: u64,
        place: Admitted,
    ) -> Conn<S> {
        Conn {
            stream,
            token,
            session,
            phase: Phase::Open,
            pending_in: Unserved::default(),
            pending_out: Vec::new(),
            write_interest: false,
            read_paused: false,
            backlog: false,
            peer_closed: false,
            queued: false,
            serial,
            member: None,
            clock: Clock::start(Instant::now()),
            progress: false,
            _place: place,
        }
    }

    /// Tell the clock what the connection waits for now that an event has been handled.
    pub fn tick(&mut self, now: Instant) {
        let waiting = Waiting::of(self.pending_out.len(), self.pending_in.len());
        self.clock.observe(now, waiting, std::mem::take(&mut self.progress));
    }

    /// Whether the connection's timeouts apply in its phase: not while it lingers or waits for
    /// delivery, which have deadlines of their own.
    pub fn timed(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::PeerDone | Phase::Failing)
    }

    /// Closing: send end-of-file after the last reply, and give the buffers back.
    pub fn release(self, io: &mut SharedIo) -> Option<Box<Member>> {
        // A no-op if the socket is already shut. Dropping the stream closes the socket, which
        // also removes it from epoll.
        let _ = self.stream.shutdown(Direction::Write);
        let mut pending_in = self.pending_in;
        pending_in.release(&mut io.pool);
        io.pool.give(self.pending_out);
        self.member
    }

    /// The peer closed its side, or the socket failed: read to the end on every turn from now.
    pub fn saw_end(&mut self) {
        self.peer_closed = true;
    }

    /// Whether [`saw_end`](Self::saw_end) was called.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Read what the kernel has, answer every complete request, write the replies. With
    /// `to_end`, read until the socket says `WouldBlock` even after a short read.
    pub fn on_readable(&mut self, io: &mut SharedIo, registry: &Registry, to_end: bool) -> io::Result<Next> {
        let to_end = to_end || self.peer_closed;
        for _ in 0..READS_PER_TURN {
            match self.phase {
                Phase::Open => {}
                Phase::Lingering { .. } => return self.discard_input(io),
                Phase::PeerDone | Phase::Failing | Phase::Delivering => return Ok(Next::Keep),
            }
            if self.pending_out.len() >= self.session.max_output() {
                self.read_paused = true;
                return Ok(Next::Keep);
            }
            self.read_paused = false;
            // Requests read earlier and not yet answered come first; no event would announce
            // them, since their bytes are no longer in the kernel.
            let from_backlog = self.backlog;
            let n = if from_backlog {
                0
            } else {
                match self.stream.read(&mut io.read_buf) {
                    Ok(0) => {
                        self.phase = Phase::PeerDone;
                        return self.after_output(registry);
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock && io.draining => {
                        self.phase = Phase::PeerDone; // shutdown, and nothing left to read
                        return self.after_output(registry);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Next::Keep),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.consume(n, io);
            self.send(io, registry)?;
            if io.draining && self.phase == Phase::Open && !self.backlog {
                self.phase = Phase::PeerDone; // shutdown: what was read is answered, stop here
            }
            if self.phase != Phase::Open {
                return self.after_output(registry);
            }
            if self.backlog {
                return Ok(Next::ReadLater); // the turn's budget is spent: the others come first
            }
            if n < io.read_buf.len() && !to_end && !from_backlog {
                return Ok(Next::Keep); // a short read drained the socket (see the module docs)
            }
            // Otherwise read on: after a backlog, only a read can tell whether the socket holds
            // more, and no new event would say so.
        }
        Ok(Next::ReadLater)
    }

    /// Serve the `n` bytes just read into the shared buffer, leaving the replies in `io.out`.
    /// With `n` zero, serves what `pending_in` holds.
    pub fn consume(&mut self, n: usize, io: &mut SharedIo) {
        let data = &io.read_buf[..n];
        let served = serve_input(&mut self.session, &mut self.pending_in, data, &mut io.out, &mut io.pool);
        self.backlog = served.more;
        self.progress |= served.requests > 0;
        if served.close {
            self.phase = Phase::Failing;
        }
    }

    /// Write the replies in `io.out`: straight to the socket if nothing is queued before them,
    /// and whatever the kernel does not take into `pending_out`, with write interest on.
    fn send(&mut self, io: &mut SharedIo, registry: &Registry) -> io::Result<()> {
        if io.out.is_empty() {
            return Ok(());
        }
        let mut written = 0;
        if self.pending_out.is_empty() {
            written = match self.stream.write(&io.out) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => 0,
                Err(e) => {
                    io.out.clear();
                    return Err(e);
                }
            };
        }
        self.progress |= written > 0;
        if written < io.out.len() {
            if self.pending_out.capacity() == 0 {
                self.pending_out = io.pool.take();
            }
            self.pending_out.extend_from_slice(&io.out[written..]);
            self.set_write_interest(registry, true)?;
        }
        recycle(&mut io.out);
        Ok(())
    }

    /// The socket has room again: flush pending replies, then carry on where the connection was.
    pub fn on_writable(&mut self, io: &mut SharedIo, registry: &Registry) -> io::Result<Next> {
        let mut written = 0;
        while written < self.pending_out.len() {
            match self.stream.write(&self.pending_out[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pending_out.drain(..written);
        self.progress |= written > 0;
        if !self.pending_out.is_empty() {
            return Ok(Next::Keep);
        }
        io.pool.give(std::mem::take(&mut self.pending_out));
        self.set_write_interest(registry, false)?;
        if self.read_paused {
            // Reading stopped with bytes possibly waiting in the kernel; no new event will say
            // so, so go and look.
            self.read_paused = false;
            return self.on_readable(io, registry, true);
        }
        self.after_output(registry)
    }

    /// Decide what follows once the replies produced so far are written (or queued).
    pub fn after_output(&mut self, registry: &Registry) -> io::Result<Next> {
        if !self.pending_out.is_empty() {
            return Ok(Next::Keep); // `on_writable` comes back here when they are flushed
        }
        match self.phase {
            Phase::Open | Phase::Lingering { .. } | Phase::Delivering => Ok(Next::Keep),
            Phase::PeerDone => {
                // Every reply is written: close once the peer has acknowledged them all, so
                // that a reset cannot destroy them (see `crate::net::wait_until_delivered`).
                if self.delivered() {
                    return Ok(Next::Close);
                }
                self.phase = Phase::Delivering;
                Ok(Next::AwaitDelivery)
            }
            Phase::Failing => {
                // The error reply is out: send FIN after it, then discard what the peer still
                // sends, so that closing does not turn into a reset that destroys the reply.
                let _ = self.stream.shutdown(Direction::Write);
                self.phase = Phase::Lingering { discarded: 0 };
                self.set_write_interest(registry, false)?;
                Ok(Next::StartLingering)
            }
        }
    }

    /// The peer has acknowledged every byte written (or the socket can no longer say).
    pub fn delivered(&self) -> bool {
        unacknowledged(&self.stream).map_or(true, |n| n == 0)
    }

    /// Lingering after an error: read and drop input until end-of-file or the byte limit.
    pub fn discard_input(&mut self, io: &mut SharedIo) -> io::Result<Next> {
        let Phase::Lingering { discarded } = &mut self.phase else { return Ok(Next::Keep) };
        loop {
            match self.stream.read(&mut io.read_buf) {
                Ok(0) => return Ok(Next::Close),
                Ok(n) => {
                    *discarded += n;
                    if *discarded >= LINGER_BYTES {
                        return Ok(Next::Close);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Next::Keep),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn set_write_interest(&mut self, registry: &Registry, on: bool) -> io::Result<()> {
        if self.write_interest != on {
            let interest = if on { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            registry.reregister(&mut self.stream, self.token, interest)?;
            self.write_interest = on;
        }
        Ok(())
    }
}

/// Request bytes read but not yet served: the start of an unfinished request, or requests a
/// turn's budget left over. Served from the front by moving an offset, and moved down only
/// once the served part is at least half the buffer: a backlog read in one go can be hundreds
/// of kilobytes (io_uring receives until its cancellation lands), and copying the rest down
/// after every turn of 64 requests made serving it quadratic.
#[derive(Default)]
pub struct Unserved {
    buf: Vec<u8>,
    start: usize,
}

impl Unserved {
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append `data`, taking a buffer from `pool` if none is held.
    pub fn push(&mut self, data: &[u8], pool: &mut BufferPool) {
        if data.is_empty() {
            return;
        }
        if self.buf.capacity() == 0 {
            self.buf = pool.take();
        }
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Give the buffer back to `pool`, forgetting what it held.
    pub fn release(&mut self, pool: &mut BufferPool) {
        pool.give(std::mem::take(&mut self.buf));
        self.start = 0;
    }
}

/// Serve `data`, which follows whatever part of a request `unserved` holds, appending the
/// replies to `out`. The common case serves straight from `data` and keeps only the
/// unconsumed rest (an unfinished request, or requests past the turn's budget) in `unserved`,
/// which holds a buffer borrowed from `pool` only while it holds something. With `data`
/// empty, serves what `unserved` holds.
pub fn serve_input<S: Store>(
    session: &mut Session<S>,
    unserved: &mut Unserved,
    data: &[u8],
    out: &mut Vec<u8>,
    pool: &mut BufferPool,
) -> Served {
    let served = if unserved.is_empty() {
        let served = session.serve(data, out);
        if !served.close {
            unserved.push(&data[served.consumed..], pool);
        }
        served
    } else {
        unserved.push(data, pool);
        let served = session.serve(&unserved.buf[unserved.start..], out);
        unserved.start += served.consumed;
        served
    };
    if unserved.is_empty() || served.close {
        unserved.release(pool);
    }
    served
}

/// Accept waiting connections (edge-triggered: until `WouldBlock`, or [`ACCEPTS_PER_TURN`] of
/// them), handing each to `on_connection`. Returns when to try again if connections may still
/// be waiting (the turn's share was taken, or `accept` failed for lack of descriptors or
/// memory): the listener will raise no new event for them. Only a broken listener is an error.
pub fn accept_ready(
    listener: &TcpListener,
    reserve: &mut FdReserve,
    mut on_connection: impl FnMut(TcpStream),
) -> io::Result<Option<Instant>> {
    /// How soon an `accept` that failed for lack of resources is tried again.
    const ACCEPT_RETRY: std::time::Duration = std::time::Duration::from_millis(10);
    for _ in 0..ACCEPTS_PER_TURN {
        match listener.accept() {
            Ok((stream, _)) => {
                // See `blocking_io::serve_connection` for why Nagle is off.
                let _ = stream.set_nodelay(true);
                on_connection(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(e) => match AcceptFailure::of(&e) {
                AcceptFailure::OneConnection => {}
                // Shed the waiting connection and look for the next. When none waits, a new
                // arrival raises a new event; with no reserve to shed with, try again soon.
                AcceptFailure::OutOfFds => match reserve.shed(|| listener.accept()) {
                    Shed::Closed => {}
                    Shed::NothingWaiting => return Ok(None),
                    Shed::NoReserve => return Ok(Some(Instant::now() + ACCEPT_RETRY)),
                },
                AcceptFailure::Resources => return Ok(Some(Instant::now() + ACCEPT_RETRY)),
                AcceptFailure::Fatal => return Err(e),
            },
        }
    }
    // This turn's share: the clients already connected are served before the next batch of
    // newcomers, which the loop accepts at once on its next turn (no event would remind it).
    Ok(Some(Instant::now()))
}
