//! `--conn-per-request`: every request on a connection of its own.
//!
//! Each of a thread's *slots* runs the life of a short-lived client over and over, closed loop:
//! `connect()`, write one request, read and check its reply, close, and start again at once.
//! `--conns` slots run at the same time. What the server then spends most of its time on is
//! accepting: whatever a new connection costs it (a `fork`, a thread spawn, a registration with
//! an event loop) now happens once per request instead of once per run. The latency of each
//! request counts from the start of its `connect()` to the last byte of its reply.
//!
//! **Who closes first.** The side that closes first keeps TIME_WAIT for 60 s (see
//! [`crate::ports`]).
//! - Echo protocols: loadgen closes as soon as the reply is in, the way a short-lived client
//!   does; TIME_WAIT stays on loadgen's side, which is the side that would run out of ports.
//!   Linux's default `tcp_tw_reuse=2` lets a `connect()` to loopback take over such a port a
//!   second after it closed, so about 28,000 connections per second can be sustained there;
//!   towards another host without reuse it is about 470. Beyond that, `connect()` fails with
//!   `EADDRNOTAVAIL`, which is counted (`no_local_port`) and explained, never dropped quietly.
//! - `http`: the request says `Connection: close`, so the server closes after its reply and
//!   loadgen waits for that end-of-file before the slot moves on (and counts a server that keeps
//!   the connection open as a timeout). TIME_WAIT is then on the server's side, as it is for
//!   real HTTP servers.
//!
//! A connect that fails is counted by cause ([`Connects`](crate::report::Connects)) and the slot
//! tries again after [`RETRY_PAUSE_NS`], so a server that is gone does not make loadgen spin.
//! Any other failure (a reset, an early close, a wrong reply, a timeout) is counted as in the
//! other modes and the slot goes on with a new connection: here, reopening is what is measured.
//!
//! Cost per request on loadgen's side: `socket`, `connect`, `epoll_ctl(ADD)`, `write`, one
//! `epoll_wait` share, `read` (and the end-of-file `read` for http), `close`. Sockets are
//! registered for reading and writing from the start, so a connect that completes late needs no
//! `epoll_ctl(MOD)`; they are not deregistered before `close`, which removes them from the
//! epoll set anyway. Nagle's algorithm is left on: it never holds back a connection's first
//! segment, and there is no second one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::Plan;
use super::clock::Clock;
use super::conn::{Failure, InFlight};
use super::tally::Tally;
use super::waiter::Waiter;
use crate::ports::PortBudget;
use crate::proto::{ClientProtocol, Decoded};

/// The token of the worker's timer; slots use their index.
const TIMER: Token = Token(usize::MAX);

/// How often timeouts are checked and progress is published.
const SWEEP_EVERY_NS: u64 = 50_000_000;

/// How long a slot waits after a failed connect before it tries again.
pub const RETRY_PAUSE_NS: u64 = 10_000_000;

/// Why a connect failed, as counted in [`Connects`](crate::report::Connects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// `ECONNREFUSED`.
    Refused,
    /// Not established within `--timeout` (or the kernel's own `ETIMEDOUT`).
    TimedOut,
    /// `EADDRNOTAVAIL`: no free local port.
    NoLocalPort,
    /// Anything else.
    Other,
}

impl ConnectFailure {
    /// Sorts the error a `connect()` (or the first write on a connecting socket) returned.
    pub fn of(err: &io::Error) -> ConnectFailure {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
            io::ErrorKind::TimedOut => ConnectFailure::TimedOut,
            io::ErrorKind::AddrNotAvailable => ConnectFailure::NoLocalPort,
            _ => ConnectFailure::Other,
        }
    }
}

/// Where a slot is in the life of its current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No connection: about to open one, or waiting out the pause after a failed connect.
    Idle,
    /// `connect()` under way; the request is written as soon as the socket takes it.
    Connecting,
    /// Connected, the request written (or being written), the reply awaited.
    Awaiting,
    /// The reply is in and checked; waiting for the server's close (`Connection: close`).
    Closing,
    /// The sending phase is over: no more connections.
    Done,
}

/// One client running connect → request → reply → close, over and over.
struct Slot {
    /// Run-wide index; the high bits of its requests' sequence numbers.
    id: u64,
    /// Requests this slot has created; the low bits of their sequence numbers.
    sent: u64,
    stage: Stage,
    stream: Option<TcpStream>,
    /// The request of the current connection; `sent_ns` is when its `connect()` started.
    request: InFlight,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Box<[u8]>,
    in_len: usize,
}

/// One thread's event loop over its slots.
pub struct Churn<'a, P: ClientProtocol> {
    proto: &'a P,
    plan: Plan,
    clock: Clock,
    addr: SocketAddr,
    ports: PortBudget,
    poll: Poll,
    waiter: Waiter,
    slots: Vec<Slot>,
    /// What the protocol remembers per connection; `()` for the protocols this mode takes.
    states: Vec<P::ConnState>,
    /// Slots waiting out [`RETRY_PAUSE_NS`], by the time they may try again.
    paused: BinaryHeap<Reverse<(u64, usize)>>,
    /// Slots with a connection under way (connecting, awaiting or closing).
    busy: usize,
    tally: Tally,
    progress: &'a AtomicU64,
}

impl<'a, P: ClientProtocol> Churn<'a, P> {
    /// `--live`: also count every reply and error in `live`, the shared last-second window.
    pub fn with_live(mut self, live: Option<std::sync::Arc<crate::live::LiveWindow>>) -> Self {
        self.tally.live = live;
        self
    }

    /// A loop over the slots with run-wide ids `ids`, connecting to `addr`.
    pub fn new(
        proto: &'a P,
        plan: Plan,
        clock: Clock,
        addr: SocketAddr,
        ids: Vec<u64>,
        max_request: usize,
        progress: &'a AtomicU64,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waiter = Waiter::new(&poll, TIMER, &plan)?;
        // One reply, plus room to notice bytes after it.
        let in_capacity = proto.max_response_len() + 4096;
        let slots: Vec<Slot> = ids
            .iter()
            .map(|&id| Slot {
                id,
                sent: 0,
                stage: Stage::Idle,
                stream: None,
                request: InFlight {
                    tag: crate::proto::RequestTag { seq: 0, len: 0 },
                    due_ns: 0,
                    sent_ns: 0,
                    measured: false,
                },
                out: Vec::with_capacity(max_request),
                out_pos: 0,
                inbuf: vec![0; in_capacity].into_boxed_slice(),
                in_len: 0,
            })
            .collect();
        let states = ids.iter().map(|&id| proto.conn_state(id)).collect();
        Ok(Churn {
            proto,
            plan,
            clock,
            addr,
            ports: PortBudget::read(),
            poll,
            waiter,
            paused: BinaryHeap::with_capacity(slots.len()),
            slots,
            states,
            busy: 0,
            tally: Tally::new(false),
            progress,
        })
    }

    /// Runs until the sending phase is over and every connection under way has ended.
    pub fn run(mut self) -> io::Result<Tally> {
        let mut events = Events::with_capacity(1024);
        let start = self.clock.now_ns();
        for index in 0..self.slots.len() {
            self.open(index, start);
        }
        let mut next_sweep = start + SWEEP_EVERY_NS;
        loop {
            let now = self.clock.now_ns();
            if now >= next_sweep {
                self.sweep_timeouts(now);
                self.progress.store(self.replies(), Ordering::Relaxed);
                next_sweep = now + SWEEP_EVERY_NS;
            }
            self.resume_paused(now);
            if self.finished(now) {
                break;
            }
            let mut wake = next_sweep;
            if now < self.plan.end_ns {
                wake = wake.min(self.plan.end_ns);
            }
            if let Some(Reverse((at, _))) = self.paused.peek() {
                wake = wake.min(*at);
            }
            self.waiter.wait(&mut self.poll, &mut events, &self.clock, now, wake, None)?;
            for event in events.iter() {
                if self.waiter.is_timer(event.token()) {
                    continue;
                }
                self.on_event(event.token().0, event);
            }
        }
        self.finish();
        self.progress.store(self.replies(), Ordering::Relaxed);
        Ok(self.tally)
    }

    fn replies(&self) -> u64 {
        self.tally.counts.requests + self.tally.counts.warmup_requests
    }

    /// Done when nothing more will be opened and no connection is under way (or worth awaiting).
    fn finished(&self, now: u64) -> bool {
        now >= self.plan.end_ns && (self.busy == 0 || now >= self.plan.end_ns + self.plan.timeout_ns)
    }

    fn resume_paused(&mut self, now: u64) {
        while let Some(&Reverse((at, index))) = self.paused.peek() {
            if at > now {
                break;
            }
            self.paused.pop();
            self.open(index, now);
        }
    }

    /// Starts slot `index`'s next connection and its one request, unless the sending phase is
    /// over.
    fn open(&mut self, index: usize, now: u64) {
        let plan = self.plan;
        let slot = &mut self.slots[index];
        if now >= plan.end_ns {
            slot.stage = Stage::Done;
            return;
        }
        let seq = (slot.id << 40) | slot.sent;
        slot.sent += 1;
        let tag = self.proto.tag(seq);
        slot.out.clear();
        slot.out_pos = 0;
        slot.in_len = 0;
        self.proto.encode(tag, &mut slot.out);
        slot.request = InFlight { tag, due_ns: now, sent_ns: now, measured: now >= plan.warmup_end_ns };
        let mut stream = match TcpStream::connect(self.addr) {
            Ok(stream) => stream,
            Err(e) => return self.connect_failed(index, ConnectFailure::of(&e), &e.to_string(), now),
        };
        if let Err(e) =
            self.poll.registry().register(&mut stream, Token(index), Interest::READABLE | Interest::WRITABLE)
        {
            return self.connect_failed(index, ConnectFailure::Other, &format!("epoll: {e}"), now);
        }
        let slot = &mut self.slots[index];
        slot.stream = Some(stream);
        slot.stage = Stage::Connecting;
        self.busy += 1;
        // On loopback the handshake often completes inside `connect()`; try the write at once.
        self.write(index);
    }

    fn on_event(&mut self, index: usize, event: &Event) {
        let Some(slot) = self.slots.get(index) else { return };
        if slot.stage == Stage::Connecting || slot.out_pos < slot.out.len() {
            self.write(index);
        }
        let stage = self.slots[index].stage;
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        if readable && matches!(stage, Stage::Awaiting | Stage::Closing) {
            self.read(index);
        }
    }

    /// Writes what is left of the request. The first byte the socket takes proves the
    /// connection is established.
    fn write(&mut self, index: usize) {
        loop {
            let slot = &mut self.slots[index];
            let Some(stream) = slot.stream.as_mut() else { return };
            if slot.out_pos >= slot.out.len() {
                return;
            }
            match stream.write(&slot.out[slot.out_pos..]) {
                Ok(0) => return self.fail(index, Failure::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    slot.out_pos += n;
                    if slot.stage == Stage::Connecting {
                        self.established(index);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Still connecting (or the send buffer is full): a writable event will
                    // call again. A connect that already failed says so here.
                    if slot.stage == Stage::Connecting {
                        if let Ok(Some(e)) | Err(e) = stream.take_error() {
                            let now = self.clock.now_ns();
                            return self.connect_failed(index, ConnectFailure::of(&e), &e.to_string(), now);
                        }
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if slot.stage == Stage::Connecting => {
                    let now = self.clock.now_ns();
                    return self.connect_failed(index, ConnectFailure::of(&e), &e.to_string(), now);
                }
                Err(e) => return self.fail(index, Failure::from_io(e)),
            }
        }
    }

    fn established(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.stage = Stage::Awaiting;
        if slot.request.measured {
            self.tally.connects.opened += 1;
        }
    }

    /// Reads until the kernel has nothing more: the reply, then (http) the server's close.
    fn read(&mut self, index: usize) {
        loop {
            let slot = &mut self.slots[index];
            let Some(stream) = slot.stream.as_mut() else { return };
            if slot.in_len == slot.inbuf.len() {
                return self
                    .fail(index, Failure::Malformed("a reply is larger than any request could produce"));
            }
            match stream.read(&mut slot.inbuf[slot.in_len..]) {
                Ok(0) => return self.on_eof(index),
                Ok(n) => {
                    slot.in_len += n;
                    if slot.stage == Stage::Closing {
                        return self
                            .fail(index, Failure::Malformed("the server sent bytes nobody asked for"));
                    }
                    if let Err(failure) = self.consume_reply(index) {
                        return self.fail(index, failure);
                    }
                    match self.slots[index].stage {
                        // Echo: the reply is in and the client closes first.
                        Stage::Idle | Stage::Done => return,
                        _ => {}
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(index, Failure::from_io(e)),
            }
        }
    }

    /// If the whole reply is in: check it, record it, and close (or wait for the server's
    /// close).
    fn consume_reply(&mut self, index: usize) -> Result<(), Failure> {
        let verify = self.plan.verify;
        let slot = &mut self.slots[index];
        let request = slot.request;
        match self.proto.decode(&mut self.states[index], &slot.inbuf[..slot.in_len], request.tag, verify) {
            Decoded::Incomplete => Ok(()),
            Decoded::Malformed(why) => Err(Failure::Malformed(why)),
            Decoded::Complete { len, matches } => {
                if len < slot.in_len {
                    return Err(Failure::Malformed("the server sent bytes nobody asked for"));
                }
                let now = self.clock.now_ns();
                self.tally.record(request.measured, request.due_ns, request.sent_ns, now, matches, verify);
                if self.proto.server_closes() {
                    slot.stage = Stage::Closing;
                } else {
                    self.close(index);
                    self.open(index, now);
                }
                Ok(())
            }
        }
    }

    /// The server closed its side: the end of a `Connection: close` exchange, or too early.
    fn on_eof(&mut self, index: usize) {
        let slot = &self.slots[index];
        if slot.stage == Stage::Closing {
            self.close(index);
            let now = self.clock.now_ns();
            return self.open(index, now);
        }
        let failure = if slot.in_len > 0 { Failure::ShortRead } else { Failure::Eof };
        self.fail(index, failure);
    }

    fn sweep_timeouts(&mut self, now: u64) {
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if now.saturating_sub(slot.request.sent_ns) < self.plan.timeout_ns {
                continue;
            }
            match slot.stage {
                Stage::Connecting => {
                    let why =
                        format!("not established within {:?}", Duration::from_nanos(self.plan.timeout_ns));
                    self.connect_failed(index, ConnectFailure::TimedOut, &why, now);
                }
                Stage::Awaiting | Stage::Closing => self.fail(index, Failure::Timeout),
                Stage::Idle | Stage::Done => {}
            }
        }
    }

    /// Counts a failed connect by cause, remembers the first in words, and has the slot try
    /// again after a pause.
    fn connect_failed(&mut self, index: usize, cause: ConnectFailure, error: &str, now: u64) {
        self.close(index);
        let connects = &mut self.tally.connects;
        match cause {
            ConnectFailure::Refused => connects.refused += 1,
            ConnectFailure::TimedOut => connects.timed_out += 1,
            ConnectFailure::NoLocalPort => connects.no_local_port += 1,
            ConnectFailure::Other => connects.other += 1,
        }
        self.tally.counts.connect_errors += 1;
        let (id, at) = (self.slots[index].id, now as f64 / 1e9);
        let (addr, ports) = (self.addr, self.ports);
        self.tally.note_error(|| {
            let what = match cause {
                ConnectFailure::NoLocalPort => format!("{error}: {}", ports.exhausted(addr.ip())),
                _ => error.to_owned(),
            };
            format!("connection {id} at {at:.3} s: connect to {addr} failed: {what}")
        });
        self.paused.push(Reverse((now + RETRY_PAUSE_NS, index)));
    }

    /// Counts a failed connection as the other modes do, closes it and opens the next.
    fn fail(&mut self, index: usize, failure: Failure) {
        let at = self.clock.now_ns() as f64 / 1e9;
        let id = self.slots[index].id;
        let counts = &mut self.tally.counts;
        let what = match &failure {
            Failure::Eof => {
                counts.unexpected_eof += 1;
                "closed by the server before its reply".to_owned()
            }
            Failure::ShortRead => {
                counts.short_reads += 1;
                "closed by the server in the middle of a reply".to_owned()
            }
            Failure::Reset(e) => {
                counts.resets += 1;
                format!("reset: {e}")
            }
            Failure::Io(e) => {
                counts.io_errors += 1;
                format!("socket error: {e}")
            }
            Failure::Malformed(why) => {
                counts.malformed += 1;
                format!("malformed reply: {why}")
            }
            Failure::Timeout => {
                counts.timeouts += 1;
                let waited = Duration::from_nanos(self.plan.timeout_ns);
                if self.slots[index].stage == Stage::Closing {
                    format!("the server did not close within {waited:?} of a `Connection: close` reply")
                } else {
                    format!("no reply within {waited:?} of the connect")
                }
            }
        };
        self.tally.note_error(|| format!("connection {id} at {at:.3} s: {what}"));
        self.close(index);
        let now = self.clock.now_ns();
        self.open(index, now);
    }

    /// Closes the slot's connection, if it has one. Dropping the socket closes it, which also
    /// takes it out of the epoll set.
    fn close(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if slot.stream.take().is_some() {
            self.busy -= 1;
        }
        slot.stage = Stage::Idle;
    }

    /// After the loop: whatever is still under way ran out of time.
    fn finish(&mut self) {
        // No new connection from here on, whatever `fail` would like to open.
        self.plan.end_ns = 0;
        let now = self.clock.now_ns();
        for index in 0..self.slots.len() {
            match self.slots[index].stage {
                Stage::Connecting => self.connect_failed(
                    index,
                    ConnectFailure::TimedOut,
                    "not established by the end of the run",
                    now,
                ),
                Stage::Awaiting | Stage::Closing => self.fail(index, Failure::Timeout),
                Stage::Idle | Stage::Done => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_are_sorted_by_cause() {
        let of = |kind: io::ErrorKind| ConnectFailure::of(&io::Error::from(kind));
        assert_eq!(of(io::ErrorKind::ConnectionRefused), ConnectFailure::Refused);
        assert_eq!(of(io::ErrorKind::TimedOut), ConnectFailure::TimedOut);
        assert_eq!(of(io::ErrorKind::AddrNotAvailable), ConnectFailure::NoLocalPort);
        assert_eq!(of(io::ErrorKind::PermissionDenied), ConnectFailure::Other);
        #[cfg(target_os = "linux")]
        assert_eq!(
            ConnectFailure::of(&io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)),
            ConnectFailure::NoLocalPort
        );
    }
}
