//! One thread's event loop: send on time, read replies, check them, record latencies.
//!
//! The loop, top to bottom:
//! 1. every few milliseconds, give up on connections whose oldest request passed the timeout;
//! 2. in open loop, send every request whose due time has come (a min-heap of due times);
//! 3. arm the timer for the next thing that must happen, and wait in `poll`;
//! 4. for each ready connection, read until the kernel has nothing more, consume complete
//!    replies, then top the connection up with new requests and write them in one go.
//!
//! Sockets are registered for readable events only, and for writable events only while a write
//! did not fit into the kernel: registered for both, every acknowledgement from the server would
//! wake the loop with a writable edge for nothing, which cost more than the server's whole work
//! per request. With requests that fit (the normal case) no `reregister` call is ever made. After the sending phase ends the loop keeps
//! running only to collect replies still in flight, bounded by the timeout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};

use super::Plan;
use super::clock::Clock;
use super::conn::{Conn, Failure, InFlight, ReadOutcome};
use super::tally::Tally;
use super::waiter::Waiter;
use crate::proto::{ClientProtocol, Decoded};

/// The token of the worker's timer; connections use their index.
const TIMER: Token = Token(usize::MAX);

/// How often timeouts are checked and progress is published.
const SWEEP_EVERY_NS: u64 = 50_000_000;

/// One worker thread's whole state.
pub struct Worker<'a, P: ClientProtocol> {
    proto: &'a P,
    plan: Plan,
    clock: Clock,
    poll: Poll,
    waiter: Waiter,
    conns: Vec<Conn>,
    /// What the protocol remembers per connection, beside `conns` (same index); `()` for the
    /// echo protocols.
    states: Vec<P::ConnState>,
    /// Open loop: `(due time, connection index)` of connections waiting for their next slot.
    due: BinaryHeap<Reverse<(u64, usize)>>,
    /// Requests written and not yet answered, over all of this thread's connections.
    outstanding: usize,
    /// Connections still alive.
    live: usize,
    tally: Tally,
    /// Where this thread publishes how many replies it has had, for the progress line.
    progress: &'a AtomicU64,
}

impl<'a, P: ClientProtocol> Worker<'a, P> {
    /// `--live`: also count every reply and error in `live`, the shared last-second window.
    pub fn with_live(mut self, live: Option<std::sync::Arc<crate::live::LiveWindow>>) -> Self {
        self.tally.live = live;
        self
    }

    /// Takes ownership of already connected sockets (with their run-wide ids).
    pub fn new(
        proto: &'a P,
        plan: Plan,
        clock: Clock,
        sockets: Vec<(u64, std::net::TcpStream)>,
        max_request: usize,
        progress: &'a AtomicU64,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waiter = Waiter::new(&poll, TIMER, &plan)?;
        let mut conns = Vec::with_capacity(sockets.len());
        let mut states = Vec::with_capacity(sockets.len());
        for (index, (id, socket)) in sockets.into_iter().enumerate() {
            socket.set_nonblocking(true)?;
            let mut stream = mio::net::TcpStream::from_std(socket);
            poll.registry().register(&mut stream, Token(index), Interest::READABLE)?;
            conns.push(Conn::new(stream, id, plan.depth, max_request, proto.max_response_len()));
            states.push(proto.conn_state(id));
        }
        let live = conns.len();
        Ok(Worker {
            proto,
            plan,
            clock,
            poll,
            waiter,
            due: BinaryHeap::with_capacity(live),
            conns,
            states,
            outstanding: 0,
            live,
            tally: Tally::new(plan.timetable.is_some()),
            progress,
        })
    }

    /// Runs until the sending phase is over and every reply is in (or timed out).
    pub fn run(mut self) -> io::Result<Tally> {
        let mut events = Events::with_capacity(1024);
        let start = self.clock.now_ns();
        for index in 0..self.conns.len() {
            self.top_up(index, start);
        }
        let mut next_sweep = start + SWEEP_EVERY_NS;
        loop {
            let now = self.clock.now_ns();
            if now >= next_sweep {
                self.sweep_timeouts(now);
                self.progress.store(self.replies(), Ordering::Relaxed);
                next_sweep = now + SWEEP_EVERY_NS;
            }
            self.send_due(now);
            if self.finished(now) {
                break;
            }
            let wake = self.next_wake(now, next_sweep);
            let next_send = self.due.peek().map(|Reverse((due, _))| *due);
            self.waiter.wait(&mut self.poll, &mut events, &self.clock, now, wake, next_send)?;
            for event in events.iter() {
                if self.waiter.is_timer(event.token()) {
                    continue;
                }
                let index = event.token().0;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.on_readable(index);
                }
                if event.is_writable() {
                    self.flush(index);
                }
            }
        }
        self.finish();
        self.progress.store(self.replies(), Ordering::Relaxed);
        self.tally.spun += self.waiter.spun();
        self.plan.hold_connections(&self.clock);
        Ok(self.tally)
    }

    fn replies(&self) -> u64 {
        self.tally.counts.requests + self.tally.counts.warmup_requests
    }

    /// Done when nothing more will be sent and nothing is awaited (or worth awaiting).
    fn finished(&self, now: u64) -> bool {
        if self.live == 0 {
            return true;
        }
        now >= self.plan.end_ns && (self.outstanding == 0 || now >= self.plan.end_ns + self.plan.timeout_ns)
    }

    /// The earliest moment the loop must act even if no socket becomes ready.
    fn next_wake(&self, now: u64, next_sweep: u64) -> u64 {
        let mut wake = next_sweep;
        if now < self.plan.end_ns {
            wake = wake.min(self.plan.end_ns);
        }
        if let Some(Reverse((due, _))) = self.due.peek() {
            wake = wake.min(*due);
        }
        wake
    }

    /// Open loop: wakes every connection whose next slot is due.
    fn send_due(&mut self, now: u64) {
        while let Some(&Reverse((due, index))) = self.due.peek() {
            if due > now {
                break;
            }
            self.due.pop();
            self.conns[index].scheduled = false;
            self.top_up(index, now);
        }
    }

    /// Gives connection `index` as many new requests as its pacing allows, and writes them.
    fn top_up(&mut self, index: usize, now: u64) {
        let plan = self.plan;
        let conn = &mut self.conns[index];
        if !conn.alive || now >= plan.end_ns {
            return;
        }
        let before = conn.in_flight.len();
        match plan.timetable {
            None => {
                while conn.in_flight.len() < plan.depth {
                    push_request(self.proto, conn, now, now, now >= plan.warmup_end_ns);
                }
            }
            Some(timetable) => {
                // Catch up on every slot already due, as far as the depth allows: a connection
                // that fell behind sends its overdue requests at once, and they are measured
                // from their due times.
                while conn.in_flight.len() < plan.depth {
                    let due = timetable.due_ns(conn.id, conn.next_slot);
                    if due > now || due >= plan.end_ns {
                        break;
                    }
                    conn.next_slot += 1;
                    push_request(self.proto, conn, due, now, due >= plan.warmup_end_ns);
                }
                let next = timetable.due_ns(conn.id, conn.next_slot);
                if !conn.scheduled && next < plan.end_ns && conn.in_flight.len() < plan.depth {
                    conn.scheduled = true;
                    self.due.push(Reverse((next, index)));
                }
            }
        }
        self.outstanding += conn.in_flight.len() - before;
        if conn.in_flight.len() > before {
            self.flush(index);
        }
    }

    fn flush(&mut self, index: usize) {
        let conn = &mut self.conns[index];
        if !conn.alive {
            return;
        }
        match conn.flush() {
            // Writable events are wanted exactly while the send buffer holds unsent bytes.
            Ok(drained) if drained == conn.write_interest => {
                let interest =
                    if drained { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
                match self.poll.registry().reregister(&mut conn.stream, Token(index), interest) {
                    Ok(()) => conn.write_interest = !drained,
                    Err(e) => self.fail(index, Failure::from_io(e)),
                }
            }
            Ok(_) => {}
            Err(failure) => self.fail(index, failure),
        }
    }

    /// Reads until the kernel has nothing more, consuming every complete reply on the way.
    fn on_readable(&mut self, index: usize) {
        loop {
            let conn = &mut self.conns[index];
            if !conn.alive {
                return;
            }
            match conn.read_some() {
                Ok(ReadOutcome::Data { drained }) => {
                    let now = self.clock.now_ns();
                    if let Err(failure) = self.consume_replies(index, now) {
                        return self.fail(index, failure);
                    }
                    if drained {
                        break;
                    }
                }
                Ok(ReadOutcome::WouldBlock) => break,
                Ok(ReadOutcome::Closed) => return self.on_closed(index),
                Err(failure) => return self.fail(index, failure),
            }
        }
        let now = self.clock.now_ns();
        self.top_up(index, now);
    }

    /// Matches buffered bytes against the oldest outstanding requests, in order.
    fn consume_replies(&mut self, index: usize, now: u64) -> Result<(), Failure> {
        let verify = self.plan.verify;
        let conn = &mut self.conns[index];
        let state = &mut self.states[index];
        while !conn.unparsed().is_empty() {
            let Some(&request) = conn.in_flight.front() else {
                return Err(Failure::Malformed("the server sent bytes nobody asked for"));
            };
            match self.proto.decode(state, conn.unparsed(), request.tag, verify) {
                Decoded::Incomplete => break,
                Decoded::Complete { len, matches } => {
                    conn.consume(len);
                    conn.in_flight.pop_front();
                    self.outstanding -= 1;
                    self.tally.record(
                        request.measured,
                        request.due_ns,
                        request.sent_ns,
                        now,
                        matches,
                        verify,
                    );
                }
                Decoded::Malformed(why) => return Err(Failure::Malformed(why)),
            }
        }
        Ok(())
    }

    /// The server closed its side. Harmless only once the run is over and nothing is awaited.
    fn on_closed(&mut self, index: usize) {
        let conn = &self.conns[index];
        let failure = if !conn.unparsed().is_empty() {
            Failure::ShortRead
        } else if conn.in_flight.is_empty() && self.clock.now_ns() >= self.plan.end_ns {
            return self.close(index);
        } else {
            Failure::Eof
        };
        self.fail(index, failure);
    }

    fn sweep_timeouts(&mut self, now: u64) {
        for index in 0..self.conns.len() {
            let conn = &self.conns[index];
            let overdue = conn
                .in_flight
                .front()
                .is_some_and(|oldest| now.saturating_sub(oldest.sent_ns) >= self.plan.timeout_ns);
            if conn.alive && overdue {
                self.fail(index, Failure::Timeout);
            }
        }
    }

    /// Counts a failed connection, remembers the first failure in words, and closes it.
    fn fail(&mut self, index: usize, failure: Failure) {
        let conn = &self.conns[index];
        let waiting = conn.in_flight.len();
        let at = self.clock.now_ns() as f64 / 1e9;
        let id = conn.id;
        let counts = &mut self.tally.counts;
        let what = match &failure {
            Failure::Eof => {
                counts.unexpected_eof += 1;
                format!("closed by the server with {waiting} request(s) unanswered")
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
                format!("no reply within {:?}", Duration::from_nanos(self.plan.timeout_ns))
            }
        };
        self.tally.note_error(|| format!("connection {id} at {at:.3} s: {what}"));
        self.close(index);
    }

    fn close(&mut self, index: usize) {
        let conn = &mut self.conns[index];
        if !conn.alive {
            return;
        }
        conn.alive = false;
        self.live -= 1;
        self.outstanding -= conn.in_flight.len();
        conn.in_flight.clear();
        // Deregistering and shutting down can only fail if the socket is already gone, which is
        // the state we want anyway.
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let _ = conn.stream.shutdown(std::net::Shutdown::Both);
    }

    /// After the loop: whatever is still unanswered timed out, and in open loop every slot of
    /// the measured phase that was never sent is counted as a shortfall.
    fn finish(&mut self) {
        for index in 0..self.conns.len() {
            if self.conns[index].alive && !self.conns[index].in_flight.is_empty() {
                self.fail(index, Failure::Timeout);
            }
        }
        if let Some(timetable) = self.plan.timetable {
            for conn in &self.conns {
                self.tally.counts.unsent +=
                    timetable.count_due(conn.id, conn.next_slot, self.plan.warmup_end_ns, self.plan.end_ns);
            }
        }
    }
}

/// Encodes one new request into the connection's send buffer and remembers it.
#[inline]
fn push_request<P: ClientProtocol>(proto: &P, conn: &mut Conn, due_ns: u64, sent_ns: u64, measured: bool) {
    let seq = conn.next_seq();
    let tag = proto.tag(seq);
    proto.encode(tag, conn.out());
    conn.in_flight.push_back(InFlight { tag, due_ns, sent_ns, measured });
}
