//! A chat member's outgoing queue, and the rule for a member that does not keep up.
//!
//! In echo, a client that stops reading only hurts itself: the server stops reading from it
//! too, and TCP flow control does the rest. In a chat room that cannot work. A message from A
//! must be queued for every other member, and if B stops reading, B's queue grows with every
//! line anyone says. Waiting for B would stall everyone behind the slowest member; queueing
//! without limit would let one idle member eat the server's memory. So the queue has a bound, in
//! **bytes** (`--chat-queue`), and a member whose queue would pass it is *dropped*:
//!
//! ```text
//!   push "3: hi\n"   queue: [ 5: a\n | 4: b\n | … ]   + 6 bytes > limit?
//!                      no  → append, the member's writer sends it when the socket has room
//!                      yes → discard what is queued, keep only "ERR too slow: …\n", close
//! ```
//!
//! Bytes rather than lines, because a line may be 1 byte or `--max-frame` bytes: a bound in
//! lines would be a bound on memory only through the worst case. The bound counts bytes the
//! server holds in user space; the kernel's socket buffers (a few MB on loopback) come on top,
//! which is why a member that never reads is dropped only after a few MB of chat.
//!
//! **Exactly how much memory?** A push into an empty queue is always accepted (a single batch
//! larger than the bound must not drop a member that has read everything), so the queue holds at
//! most the bound plus one batch. Models that write from a copy taken out of the queue (the
//! threads and tasks, which must not hold a lock while they write) hold one more such copy.
//!
//! **Why the notice replaces the queue.** Whatever was queued for a member that fell behind will
//! not be read soon, or ever; the one thing worth sending is why the connection ends. The bytes
//! of a line already half written stay, so the member still sees whole lines before the notice.
//! If it never reads again even that cannot be delivered, so models give a dropped member a
//! bounded time (`crate::net::DELIVERY_WAIT`) and then close it regardless.
//!
//! Nothing here touches a socket or a lock: each model wraps an `Outbox` in whatever its
//! routing needs (a field of the reactor's connection, a `Mutex` with a `Condvar` or a `Notify`).

use super::chat;

/// One member's queue of whole lines waiting to be written to its socket.
#[derive(Debug)]
pub struct Outbox {
    buf: Vec<u8>,
    /// `buf[..head]` is written already; `buf[head..]` is pending.
    head: usize,
    limit: usize,
    /// The last write stopped inside a line, whose rest must go out before anything else.
    mid_line: bool,
    state: State,
}

/// Where a queue is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Accepting messages.
    Open,
    /// The member left: no more messages; what is queued is still sent, then the connection ends.
    Closed,
    /// The member fell behind: only the rest of a half-written line and the notice remain.
    Dropped,
}

/// What [`Outbox::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued. If the queue was empty, whoever writes it may be asleep and must be woken.
    Queued { was_empty: bool },
    /// The bytes did not fit: the member is dropped now. Wake its writer to send the notice,
    /// and tell the others.
    Dropped,
    /// The member had already left or been dropped; nothing was queued.
    Refused,
}

/// An empty queue keeps at most this much capacity, so a burst does not pin memory for good.
const KEEP_CAPACITY: usize = 64 * 1024;

impl Outbox {
    /// An empty, open queue that holds at most `limit` bytes (see the module docs).
    pub fn new(limit: usize) -> Outbox {
        Outbox { buf: Vec::new(), head: 0, limit, mid_line: false, state: State::Open }
    }

    /// Queue `lines` (one or more whole lines), or drop the member if they do not fit.
    pub fn push(&mut self, lines: &[u8]) -> Pushed {
        if self.state != State::Open {
            return Pushed::Refused;
        }
        let pending = self.len();
        if pending > 0 && pending + lines.len() > self.limit {
            self.drop_member();
            return Pushed::Dropped;
        }
        self.compact();
        self.buf.extend_from_slice(lines);
        Pushed::Queued { was_empty: pending == 0 }
    }

    /// The bytes waiting to be written, oldest first.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// How many bytes are waiting.
    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` pending bytes were written.
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        self.head += n;
        self.mid_line = self.buf[self.head - 1] != b'\n';
        if self.head == self.buf.len() {
            self.clear();
        }
    }

    /// Move every pending byte into `into` (whose old contents are discarded), leaving the queue
    /// empty: for a writer that must not hold the queue's lock while it writes. The two buffers
    /// swap, so taking allocates nothing once both have grown.
    pub fn take(&mut self, into: &mut Vec<u8>) {
        into.clear();
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        std::mem::swap(&mut self.buf, into);
        self.mid_line = false;
        self.shrink_if_idle();
    }

    /// The member left: accept nothing more; what is queued still goes out.
    pub fn close(&mut self) {
        if self.state == State::Open {
            self.state = State::Closed;
        }
    }

    /// Like [`close`](Self::close), with one last line (an error reply) after what is queued,
    /// whatever the bound.
    pub fn close_with(&mut self, last_line: &[u8]) {
        if self.state == State::Open {
            self.compact();
            self.buf.extend_from_slice(last_line);
            self.state = State::Closed;
        }
    }

    /// Where the queue is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// Closed or dropped, and everything it still had to say is written: end the connection.
    pub fn is_finished(&self) -> bool {
        self.state != State::Open && self.is_empty()
    }

    fn drop_member(&mut self) {
        let keep = if self.mid_line {
            // The rest of the line being written: up to and including its newline.
            memchr::memchr(b'\n', self.pending()).map_or(0, |i| i + 1)
        } else {
            0
        };
        self.buf.truncate(self.head + keep);
        chat::too_slow(self.limit, &mut self.buf);
        self.state = State::Dropped;
    }

    /// Reclaim the written prefix before appending, once it is worth a copy.
    fn compact(&mut self) {
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.head = 0;
        self.mid_line = false;
        self.shrink_if_idle();
    }

    fn shrink_if_idle(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn notice(limit: usize) -> Vec<u8> {
        let mut n = Vec::new();
        chat::too_slow(limit, &mut n);
        n
    }

    #[test]
    fn lines_queue_in_order_and_the_first_one_wakes_the_writer() {
        let mut q = Outbox::new(100);
        assert_eq!(q.push(b"1: a\n"), Pushed::Queued { was_empty: true });
        assert_eq!(q.push(b"2: b\n"), Pushed::Queued { was_empty: false });
        assert_eq!(q.pending(), b"1: a\n2: b\n");
        q.advance(3);
        assert_eq!(q.pending(), b"a\n2: b\n");
        q.advance(7);
        assert!(q.is_empty());
        assert_eq!(q.push(b"3: c\n"), Pushed::Queued { was_empty: true });
    }

    #[test]
    fn a_member_that_falls_behind_is_dropped_with_a_notice() {
        let mut q = Outbox::new(10);
        assert_eq!(q.push(b"1: aaaa\n"), Pushed::Queued { was_empty: true });
        assert_eq!(q.push(b"1: bbbb\n"), Pushed::Dropped, "8 + 8 bytes > 10");
        assert_eq!(q.state(), State::Dropped);
        assert_eq!(q.pending(), notice(10), "the queued line is discarded, the notice stays");
        assert_eq!(q.push(b"1: c\n"), Pushed::Refused, "a dropped member gets nothing more");
        assert!(!q.is_finished(), "the notice is not written yet");
        q.advance(q.len());
        assert!(q.is_finished());
    }

    #[test]
    fn a_half_written_line_is_finished_before_the_notice() {
        let mut q = Outbox::new(20);
        q.push(b"1: first line\n");
        q.advance(5);
        q.push(b"2: x\n");
        assert_eq!(q.push(b"3: too much now\n"), Pushed::Dropped);
        let mut expected = b"rst line\n".to_vec();
        expected.extend(notice(20));
        assert_eq!(q.pending(), expected);
    }

    #[test]
    fn an_empty_queue_takes_a_batch_larger_than_the_bound() {
        // Otherwise a member that has read everything could be dropped for one big batch.
        let mut q = Outbox::new(4);
        assert_eq!(q.push(b"1: a long line\n"), Pushed::Queued { was_empty: true });
        assert_eq!(q.push(b"1: b\n"), Pushed::Dropped);
    }

    #[test]
    fn closing_keeps_what_is_queued_and_can_add_a_last_line() {
        let mut q = Outbox::new(100);
        q.push(b"1: a\n");
        q.close_with(b"ERR bye\n");
        assert_eq!(q.state(), State::Closed);
        assert_eq!(q.push(b"2: late\n"), Pushed::Refused);
        assert_eq!(q.pending(), b"1: a\nERR bye\n");
        q.close_with(b"ERR twice\n");
        assert_eq!(q.pending(), b"1: a\nERR bye\n", "only the first close adds a line");
        let mut out = Vec::new();
        q.take(&mut out);
        assert_eq!(out, b"1: a\nERR bye\n");
        assert!(q.is_finished());
    }

    #[test]
    fn take_hands_over_the_pending_bytes_only() {
        let mut q = Outbox::new(100);
        q.push(b"1: abc\n");
        q.advance(2);
        q.push(b"2: d\n");
        let mut out = b"stale".to_vec();
        q.take(&mut out);
        assert_eq!(out, b" abc\n2: d\n");
        assert!(q.is_empty());
        assert_eq!(q.push(b"3: e\n"), Pushed::Queued { was_empty: true });
    }

    proptest! {
        /// Whatever arrives and however slowly it is written, the queue never holds more than
        /// the bound plus one batch (plus the notice, once dropped), and what the member reads
        /// is the lines it was sent, whole and in order, then the notice if it was dropped.
        #[test]
        fn memory_stays_bounded_and_lines_stay_whole(
            ops in prop::collection::vec((1usize..40, 0usize..60), 1..200),
            limit in 1usize..200,
        ) {
            let mut q = Outbox::new(limit);
            let mut accepted: Vec<Vec<u8>> = Vec::new();
            let mut written = Vec::new();
            let bound = limit + "199: ".len() + 39 + 1 + notice(limit).len();
            for (i, (batch, write)) in ops.into_iter().enumerate() {
                let mut line = format!("{i}: ").into_bytes();
                line.resize(line.len() + batch, b'x');
                line.push(b'\n');
                if let Pushed::Queued { .. } = q.push(&line) {
                    accepted.push(line);
                }
                prop_assert!(q.len() <= bound, "{} queued, bound {}", q.len(), bound);
                let n = write.min(q.len());
                written.extend_from_slice(&q.pending()[..n]);
                q.advance(n);
            }
            written.extend_from_slice(q.pending());
            let mut expected: Vec<u8> = Vec::new();
            let mut read: &[u8] = &written;
            if q.state() == State::Dropped {
                let n = notice(limit);
                prop_assert!(read.ends_with(&n), "a dropped member's last line is the notice");
                read = &read[..read.len() - n.len()];
            }
            for line in &accepted {
                if expected.len() >= read.len() {
                    break;
                }
                expected.extend_from_slice(line);
            }
            prop_assert_eq!(read, &expected[..], "whole lines, in order, none skipped before the end");
        }
    }
}
