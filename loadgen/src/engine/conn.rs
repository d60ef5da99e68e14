//! One connection as the engine sees it: a socket, a send buffer, a receive buffer and the
//! queue of requests still waiting for their replies.
//!
//! The buffers are allocated once when the connection is opened and reused for the whole run;
//! the in-flight queue holds at most `depth` entries and never reallocates. That is what keeps
//! the per-request path free of allocation.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use mio::net::TcpStream;

use crate::proto::RequestTag;

/// Read at least this much per `read` call; below it, move the unparsed tail to the front first.
const MIN_READ: usize = 16 * 1024;

/// Largest send buffer allocated up front.
const MAX_INITIAL_OUT: usize = 256 * 1024;

/// A request that has been written and not yet answered.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    /// What it was, so its reply can be checked.
    pub tag: RequestTag,
    /// When it was due (open loop) or written (closed loop).
    pub due_ns: u64,
    /// When it was handed to the kernel.
    pub sent_ns: u64,
    /// Whether it belongs to the measured phase (decided when it was sent).
    pub measured: bool,
}

/// How a connection ended before the run did.
#[derive(Debug)]
pub enum Failure {
    /// The server closed the connection at a reply boundary while requests were outstanding.
    Eof,
    /// The server closed the connection in the middle of a reply.
    ShortRead,
    /// A reset, an abort or a broken pipe.
    Reset(io::Error),
    /// Any other socket error.
    Io(io::Error),
    /// Bytes that cannot be a reply.
    Malformed(&'static str),
    /// No reply within the timeout.
    Timeout,
}

impl Failure {
    /// Sorts an I/O error into a reset or another error.
    pub fn from_io(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => {
                Failure::Reset(err)
            }
            _ => Failure::Io(err),
        }
    }
}

/// One connection's state, owned by exactly one worker.
#[derive(Debug)]
pub struct Conn {
    /// The socket, nonblocking and registered with the worker's poll.
    pub stream: TcpStream,
    /// Index over all connections of the run (not just this thread's).
    pub id: u64,
    /// Still usable; a failed connection is kept (closed) only for its bookkeeping.
    pub alive: bool,
    /// Requests written and not yet answered, oldest first.
    pub in_flight: VecDeque<InFlight>,
    /// Number of requests this connection has created; the low bits of their sequence numbers.
    pub sent: u64,
    /// Open loop: the next timetable slot this connection will fill.
    pub next_slot: u64,
    /// Open loop: whether a wake-up for this connection is queued in the worker's timer heap.
    pub scheduled: bool,
    /// Registered for writable events too, because a write did not fit (see `Worker::flush`).
    pub write_interest: bool,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Box<[u8]>,
    in_start: usize,
    in_end: usize,
}

/// What a read attempt produced.
pub enum ReadOutcome {
    /// New bytes were appended to the receive buffer. `drained` is true when the read returned
    /// less than it had room for: the kernel's receive queue was empty at that moment, and any
    /// byte arriving later raises a fresh edge-triggered event (the same reasoning tokio uses).
    /// Skipping the extra `read` that would only return `WouldBlock` saves a syscall per reply.
    Data {
        /// The socket had nothing more to give.
        drained: bool,
    },
    /// Nothing more to read until the next readiness event.
    WouldBlock,
    /// The peer closed its side.
    Closed,
}

impl Conn {
    /// Wraps a connected socket with buffers sized for the workload.
    pub fn new(stream: TcpStream, id: u64, depth: usize, max_request: usize, max_response: usize) -> Self {
        // `vec![0; n]` is a calloc: pages nobody touches cost no memory, so a generous buffer for
        // 1,000 connections of small messages stays cheap.
        let in_capacity = (max_response + MIN_READ).max(64 * 1024);
        Conn {
            stream,
            id,
            alive: true,
            in_flight: VecDeque::with_capacity(depth),
            sent: 0,
            next_slot: 0,
            scheduled: false,
            write_interest: false,
            // Room for a full pipeline of typical requests; a rare larger batch grows it once.
            // Capped, so `--depth 1000 --size 65536` cannot ask for gigabytes up front.
            out: Vec::with_capacity((depth * max_request).min(MAX_INITIAL_OUT)),
            out_pos: 0,
            inbuf: vec![0; in_capacity].into_boxed_slice(),
            in_start: 0,
            in_end: 0,
        }
    }

    /// The next request's sequence number: the connection id in the high bits makes it unique
    /// across the run, so a reply delivered to the wrong connection fails verification.
    pub fn next_seq(&mut self) -> u64 {
        let seq = (self.id << 40) | self.sent;
        self.sent += 1;
        seq
    }

    /// The send buffer, for a protocol to append a request to.
    pub fn out(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Writes as much of the send buffer as the kernel takes. `Ok(false)` means it is full and a
    /// writable event will call again.
    pub fn flush(&mut self) -> Result<bool, Failure> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(Failure::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::from_io(e)),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(true)
    }

    /// Reads once into the receive buffer, making room first.
    pub fn read_some(&mut self) -> Result<ReadOutcome, Failure> {
        if self.in_start == self.in_end {
            self.in_start = 0;
            self.in_end = 0;
        } else if self.inbuf.len() - self.in_end < MIN_READ && self.in_start > 0 {
            self.inbuf.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        }
        if self.in_end == self.inbuf.len() {
            // The protocol promised that a reply fits; a full buffer means it does not.
            return Err(Failure::Malformed("a reply is larger than any request could produce"));
        }
        loop {
            let room = self.inbuf.len() - self.in_end;
            return match self.stream.read(&mut self.inbuf[self.in_end..]) {
                Ok(0) => Ok(ReadOutcome::Closed),
                Ok(n) => {
                    self.in_end += n;
                    Ok(ReadOutcome::Data { drained: n < room })
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(Failure::from_io(e)),
            };
        }
    }

    /// Received bytes not yet consumed as replies.
    pub fn unparsed(&self) -> &[u8] {
        &self.inbuf[self.in_start..self.in_end]
    }

    /// Marks `n` bytes at the front of [`Conn::unparsed`] as consumed.
    pub fn consume(&mut self, n: usize) {
        self.in_start += n;
    }
}
