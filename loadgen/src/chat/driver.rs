//! The chat event loop: every member on one thread, so every send time and every receipt are
//! read from the same clock by the same code, and the ledger needs no lock.
//!
//! Two phases:
//! 1. **Join** (before the clock starts): read each member's welcome, which names it, and wait
//!    until the room is complete. Members join in the order they connected, and the first of
//!    them is told of every later one, so once it has seen `members − 1` joins, everyone is in
//!    the room and every message sent from then on must reach all the others.
//! 2. **Run**: send (closed or open loop, like the request/response engine), read, check every
//!    delivery against the [`Ledger`], record its fan-out latency; after the measured phase,
//!    wait for the messages still in flight (up to `--timeout`).
//!
//! A chat run stops at its first lost member or stuck message: from then on the room is not
//! the one being measured. Missing, duplicated or corrupted deliveries are counted and the run
//! goes on.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::ledger::{Ledger, Receipt};
use super::message::{Composer, Line, MAX_PREFIX, Message, classify};
use crate::config::RunConfig;
use crate::engine::clock::Clock;
use crate::engine::tally::Tally;
use crate::engine::waiter::Waiter;
use crate::engine::{Plan, conn::Failure};

const TIMER: Token = Token(usize::MAX);

/// How often stuck messages are looked for and progress is published.
const SWEEP_EVERY_NS: u64 = 50_000_000;

/// Bytes read per `read` call at least.
const READ_CHUNK: usize = 64 * 1024;

/// One member's socket and buffers.
struct Member {
    stream: mio::net::TcpStream,
    /// The id the server gave it (`* you are ID`), once welcomed.
    id: Option<u64>,
    /// Join notices it has seen (join phase).
    joins_seen: usize,
    /// Received bytes; `input[start..end]` is not parsed yet.
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// Lines to send; `out[written..]` is not written yet.
    out: Vec<u8>,
    written: usize,
    write_interest: bool,
    alive: bool,
    /// Open loop: its next timetable slot (equal to its next sequence number).
    next_slot: u64,
    /// Open loop: a wake-up for it is in the heap.
    scheduled: bool,
}

/// What makes a member unusable, in words for the summary.
enum Lost {
    Io(Failure),
    /// The server sent `ERR …` and will close.
    Refused(String),
}

/// See the module docs.
pub(crate) struct Driver {
    composer: Composer,
    poll: Poll,
    members: Vec<Member>,
    by_id: HashMap<u64, usize>,
    ledger: Ledger,
    tally: Tally,
    /// Longest line a server may send: the longest message behind the longest prefix.
    max_line: usize,
    /// Set by the first failure that ends the run.
    stopped: bool,
}

impl Driver {
    /// Takes the connected sockets, one per member.
    pub(crate) fn new(cfg: &RunConfig, sockets: Vec<(u64, std::net::TcpStream)>) -> io::Result<Self> {
        let poll = Poll::new()?;
        let composer = Composer::new(cfg.size, cfg.seed);
        let max_line = MAX_PREFIX + composer.max_len();
        let mut members = Vec::with_capacity(sockets.len());
        for (index, (_, socket)) in sockets.into_iter().enumerate() {
            socket.set_nonblocking(true)?;
            let mut stream = mio::net::TcpStream::from_std(socket);
            poll.registry().register(&mut stream, Token(index), Interest::READABLE)?;
            members.push(Member {
                stream,
                id: None,
                joins_seen: 0,
                input: vec![0; READ_CHUNK + max_line + 1],
                start: 0,
                end: 0,
                out: Vec::new(),
                written: 0,
                write_interest: false,
                alive: true,
                next_slot: 0,
                scheduled: false,
            });
        }
        let count = members.len();
        Ok(Driver {
            composer,
            poll,
            members,
            by_id: HashMap::with_capacity(count),
            ledger: Ledger::new(count),
            tally: Tally::new(matches!(cfg.pacing, crate::Pacing::Open { .. })),
            max_line,
            stopped: false,
        })
    }

    /// Phase 1: wait until every member is welcomed and the room is complete, or `limit` passes.
    pub(crate) fn join(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut events = Events::with_capacity(1024);
        loop {
            if self.room_is_complete() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                let welcomed = self.members.iter().filter(|m| m.id.is_some()).count();
                return Err(format!(
                    "only {welcomed} of {} members were welcomed into a complete room within {limit:?} \
                     (a server that serves one member at a time, or fewer than it is sent, cannot hold this room)",
                    self.members.len()
                ));
            }
            match self.poll.poll(&mut events, Some(deadline - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("poll failed: {e}")),
            }
            for event in events.iter() {
                let index = event.token().0;
                self.read_joining(index)?;
            }
        }
    }

    fn room_is_complete(&self) -> bool {
        let others = self.members.len() - 1;
        self.members.iter().all(|m| m.id.is_some())
            && self.members.iter().min_by_key(|m| m.id).is_some_and(|first| first.joins_seen >= others)
    }

    fn read_joining(&mut self, index: usize) -> Result<(), String> {
        loop {
            match self.read_some(index) {
                Ok(0) => {
                    return Err(format!("member {index}: the server closed the connection while joining"));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("member {index}: {e} while joining")),
            }
            let member = &mut self.members[index];
            while let Some(nl) = memchr::memchr(b'\n', &member.input[member.start..member.end]) {
                let line = &member.input[member.start..member.start + nl];
                match classify(line) {
                    Line::Welcome(id) if member.id.is_none() => {
                        member.id = Some(id);
                        self.by_id.insert(id, index);
                    }
                    Line::Joined(_) => member.joins_seen += 1,
                    Line::Error(text) => {
                        return Err(format!(
                            "member {index}: the server said {:?}",
                            String::from_utf8_lossy(text)
                        ));
                    }
                    // Notices about strangers, or their messages: not ours to check.
                    _ => {}
                }
                member.start += nl + 1;
            }
            if member.end - member.start > self.max_line {
                return Err(format!("member {index}: a line longer than any chat server sends"));
            }
        }
    }

    /// Phase 2: the measured run. Returns what was counted and recorded.
    pub(crate) fn run(mut self, clock: Clock, plan: Plan, progress: &AtomicU64) -> io::Result<Tally> {
        let mut waiter = Waiter::new(&self.poll, TIMER, &plan)?;
        let mut due: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
        let mut events = Events::with_capacity(1024);
        let start = clock.now_ns();
        for index in 0..self.members.len() {
            self.top_up(index, start, &plan, &mut due);
        }
        let mut next_sweep = start + SWEEP_EVERY_NS;
        loop {
            let now = clock.now_ns();
            if now >= next_sweep {
                self.sweep(now, &plan);
                progress.store(self.tally.counts.deliveries, Ordering::Relaxed);
                next_sweep = now + SWEEP_EVERY_NS;
            }
            while let Some(&Reverse((at, index))) = due.peek() {
                if at > now {
                    break;
                }
                due.pop();
                self.members[index].scheduled = false;
                self.top_up(index, now, &plan, &mut due);
            }
            if self.stopped || (now >= plan.end_ns && self.ledger.all_settled()) {
                break;
            }
            let mut wake = next_sweep;
            if now < plan.end_ns {
                wake = wake.min(plan.end_ns);
            }
            if let Some(Reverse((at, _))) = due.peek() {
                wake = wake.min(*at);
            }
            let next_send = due.peek().map(|Reverse((at, _))| *at);
            waiter.wait(&mut self.poll, &mut events, &clock, now, wake, next_send)?;
            for event in events.iter() {
                if waiter.is_timer(event.token()) {
                    continue;
                }
                let index = event.token().0;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.on_readable(index, &clock, &plan, &mut due);
                }
                if event.is_writable() {
                    self.flush(index);
                }
            }
        }
        self.finish(&plan);
        progress.store(self.tally.counts.deliveries, Ordering::Relaxed);
        self.tally.spun += waiter.spun();
        // The members are still connected: keep them so a moment longer (see `Plan::hold_ns`).
        plan.hold_connections(&clock);
        Ok(self.tally)
    }

    /// Give member `index` as many new messages as its pacing allows, and write them.
    fn top_up(&mut self, index: usize, now: u64, plan: &Plan, due: &mut BinaryHeap<Reverse<(u64, usize)>>) {
        if self.stopped || !self.members[index].alive || now >= plan.end_ns {
            return;
        }
        match plan.timetable {
            None => {
                while self.ledger.in_flight(index) < plan.depth {
                    self.send(index, now, now, plan);
                }
            }
            Some(timetable) => {
                // Catch up on every slot already due, as far as the depth allows; each message
                // is measured from its due time however late it leaves.
                while self.ledger.in_flight(index) < plan.depth {
                    let at = timetable.due_ns(index as u64, self.members[index].next_slot);
                    if at > now || at >= plan.end_ns {
                        break;
                    }
                    self.members[index].next_slot += 1;
                    self.send(index, at, now, plan);
                }
                let member = &mut self.members[index];
                let next = timetable.due_ns(index as u64, member.next_slot);
                if !member.scheduled && next < plan.end_ns && self.ledger.in_flight(index) < plan.depth {
                    member.scheduled = true;
                    due.push(Reverse((next, index)));
                }
            }
        }
        self.flush(index);
    }

    fn send(&mut self, index: usize, due_ns: u64, now: u64, plan: &Plan) {
        let seq = self.ledger.send(index, now);
        if due_ns >= plan.warmup_end_ns {
            self.tally.counts.requests += 1;
        } else {
            self.tally.counts.warmup_requests += 1;
        }
        let message = Message { sender: index as u32, seq, sent_ns: now };
        self.composer.encode(message, &mut self.members[index].out);
    }

    fn flush(&mut self, index: usize) {
        let member = &mut self.members[index];
        if !member.alive {
            return;
        }
        while member.written < member.out.len() {
            match member.stream.write(&member.out[member.written..]) {
                Ok(n) => member.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lose(index, Lost::Io(Failure::from_io(e))),
            }
        }
        let pending = member.written < member.out.len();
        if !pending {
            member.out.clear();
            member.written = 0;
        }
        if pending != member.write_interest {
            let interest = if pending { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            match self.poll.registry().reregister(&mut member.stream, Token(index), interest) {
                Ok(()) => member.write_interest = pending,
                Err(e) => self.lose(index, Lost::Io(Failure::from_io(e))),
            }
        }
    }

    /// Read what the kernel has for member `index` and handle every complete line.
    fn on_readable(
        &mut self,
        index: usize,
        clock: &Clock,
        plan: &Plan,
        due: &mut BinaryHeap<Reverse<(u64, usize)>>,
    ) {
        while self.members[index].alive && !self.stopped {
            match self.read_some(index) {
                Ok(0) => return self.lose(index, Lost::Io(Failure::Eof)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lose(index, Lost::Io(Failure::from_io(e))),
            }
            let now = clock.now_ns();
            // Take the buffer out so that handling a line may touch the other members.
            let input = std::mem::take(&mut self.members[index].input);
            let (mut start, end) = (self.members[index].start, self.members[index].end);
            while let Some(nl) = memchr::memchr(b'\n', &input[start..end]) {
                self.on_line(index, &input[start..start + nl], now, plan, due);
                start += nl + 1;
                if self.stopped {
                    break;
                }
            }
            let member = &mut self.members[index];
            (member.input, member.start) = (input, start);
            if member.end - member.start > self.max_line {
                self.tally.counts.malformed += 1;
                return self
                    .lose(index, Lost::Io(Failure::Malformed("a line longer than any chat server sends")));
            }
        }
    }

    /// One `read` into member `index`'s buffer (moving the unparsed tail to the front first).
    fn read_some(&mut self, index: usize) -> io::Result<usize> {
        let member = &mut self.members[index];
        if member.input.len() - member.end < READ_CHUNK {
            member.input.copy_within(member.start..member.end, 0);
            member.end -= member.start;
            member.start = 0;
        }
        let n = member.stream.read(&mut member.input[member.end..])?;
        member.end += n;
        Ok(n)
    }

    fn on_line(
        &mut self,
        receiver: usize,
        line: &[u8],
        now: u64,
        plan: &Plan,
        due: &mut BinaryHeap<Reverse<(u64, usize)>>,
    ) {
        match classify(line) {
            Line::Said { from, text } => self.on_delivery(receiver, from, text, now, plan, due),
            // Strangers come and go; if one of ours goes, its own connection says so.
            Line::Joined(_) | Line::Gone(_) => {}
            Line::Error(text) => {
                self.lose(receiver, Lost::Refused(String::from_utf8_lossy(text).into_owned()))
            }
            Line::Welcome(_) | Line::Unknown => {
                self.tally.counts.malformed += 1;
                self.lose(receiver, Lost::Io(Failure::Malformed("a line that is not chat")));
            }
        }
    }

    fn on_delivery(
        &mut self,
        receiver: usize,
        from: u64,
        text: &[u8],
        now: u64,
        plan: &Plan,
        due: &mut BinaryHeap<Reverse<(u64, usize)>>,
    ) {
        let Some(&sender) = self.by_id.get(&from) else {
            return self.note(
                receiver,
                now,
                |c| c.mismatches += 1,
                "a message from a member loadgen does not know",
            );
        };
        let message = match self.composer.check(text) {
            Ok(m) if m.sender as usize == sender => m,
            Ok(_) => {
                return self.note(
                    receiver,
                    now,
                    |c| c.mismatches += 1,
                    "a message delivered under another member's id",
                );
            }
            Err(damaged) => {
                // It arrived, just not intact: settle it, so it is not counted as missing too.
                if let Some(m) = damaged.header.filter(|m| m.sender as usize == sender) {
                    if let Receipt::InOrder { completed } | Receipt::Skipped { completed, .. } =
                        self.ledger.receive(receiver, sender, m.seq, m.sent_ns)
                    {
                        if completed > 0 {
                            self.top_up(sender, now, plan, due);
                        }
                    }
                }
                return self.note(receiver, now, |c| c.mismatches += 1, damaged.why);
            }
        };
        let completed = match self.ledger.receive(receiver, sender, message.seq, message.sent_ns) {
            Receipt::InOrder { completed } => completed,
            Receipt::Skipped { missing, completed } => {
                self.note(receiver, now, |c| c.missing += missing, "messages from a member never arrived");
                completed
            }
            Receipt::Duplicate => {
                return self.note(
                    receiver,
                    now,
                    |c| c.duplicates += 1,
                    "a message arrived twice, or at its sender",
                );
            }
            Receipt::Unknown => {
                return self.note(receiver, now, |c| c.mismatches += 1, "a message that was never sent");
            }
        };
        let due_ns = match plan.timetable {
            Some(timetable) => timetable.due_ns(sender as u64, message.seq),
            None => message.sent_ns,
        };
        if due_ns >= plan.warmup_end_ns {
            self.tally.counts.deliveries += 1;
            self.tally.service.saturating_record(now.saturating_sub(message.sent_ns));
            if let Some(corrected) = &mut self.tally.corrected {
                corrected.saturating_record(now.saturating_sub(due_ns));
            }
        }
        if completed > 0 {
            self.top_up(sender, now, plan, due);
        }
    }

    /// Count a bad delivery (the run goes on) and remember the first in words.
    fn note(&mut self, receiver: usize, now: u64, count: impl FnOnce(&mut crate::Counts), what: &str) {
        count(&mut self.tally.counts);
        let at = now as f64 / 1e9;
        self.tally.note_error(|| format!("member {receiver} at {at:.3} s: {what}"));
    }

    /// A message has been in flight for longer than `--timeout`: the room is stuck; stop.
    fn sweep(&mut self, now: u64, plan: &Plan) {
        if let Some(oldest) = self.ledger.oldest_in_flight() {
            if now.saturating_sub(oldest) >= plan.timeout_ns {
                self.tally.counts.timeouts += 1;
                let (sent, timeout) = (oldest as f64 / 1e9, Duration::from_nanos(plan.timeout_ns));
                self.tally.note_error(|| {
                    format!(
                        "a message sent at {sent:.3} s had not reached every other member after {timeout:?}"
                    )
                });
                self.stopped = true;
            }
        }
    }

    /// Member `index` can no longer be used: count why, and stop the run.
    fn lose(&mut self, index: usize, lost: Lost) {
        let member = &mut self.members[index];
        if !member.alive {
            return;
        }
        member.alive = false;
        let _ = self.poll.registry().deregister(&mut member.stream);
        let _ = member.stream.shutdown(std::net::Shutdown::Both);
        let counts = &mut self.tally.counts;
        let what = match lost {
            Lost::Refused(text) => {
                counts.unexpected_eof += 1;
                format!("the server refused it: {text:?}")
            }
            Lost::Io(Failure::Eof | Failure::ShortRead) => {
                counts.unexpected_eof += 1;
                "closed by the server".to_owned()
            }
            Lost::Io(Failure::Reset(e)) => {
                counts.resets += 1;
                format!("reset: {e}")
            }
            Lost::Io(Failure::Io(e)) => {
                counts.io_errors += 1;
                format!("socket error: {e}")
            }
            // Counted where it was found.
            Lost::Io(Failure::Malformed(why)) => format!("malformed: {why}"),
            Lost::Io(Failure::Timeout) => "timed out".to_owned(),
        };
        self.tally.note_error(|| format!("member {index}: {what}"));
        self.stopped = true;
    }

    /// After the loop: deliveries still owed (with every member alive, they are missing), and
    /// in open loop the slots of the measured phase that were never sent.
    fn finish(&mut self, plan: &Plan) {
        if self.members.iter().all(|m| m.alive) {
            let owed = self.ledger.owed();
            if owed > 0 {
                self.tally.counts.missing += owed;
                self.tally.note_error(|| format!("{owed} deliveries never arrived"));
            }
        }
        if let Some(timetable) = plan.timetable {
            for (index, member) in self.members.iter().enumerate() {
                self.tally.counts.unsent +=
                    timetable.count_due(index as u64, member.next_slot, plan.warmup_end_ns, plan.end_ns);
            }
        }
    }
}
