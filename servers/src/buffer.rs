//! The input buffer of a connection served by straight-line code (the thread-based models and
//! `async`): read into the free space, serve what is complete, keep the rest.
//!
//! ```text
//!   buf: [ consumed | unconsumed (a partial request) | free space for the next read ]
//!                   ^ start                          ^ end
//! ```
//!
//! When the free space runs out, the unconsumed bytes slide to the front; if they fill the whole
//! buffer, it grows, but never past one maximal request, because the decoder rejects a request
//! larger than that before it fills a buffer that size. So a peer cannot make it grow without
//! bound. (The `reactor` manages its buffers differently, to hold none while idle.)

use crate::session::{Served, Session};
use crate::store::Store;

/// A connection's buffer starts this large.
const INITIAL: usize = 4096;

/// See the module documentation.
#[derive(Debug)]
pub struct InputBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_request: usize,
}

impl InputBuffer {
    /// A buffer for requests of at most `max_request` bytes.
    pub fn new(max_request: usize) -> InputBuffer {
        InputBuffer { buf: vec![0; INITIAL.min(max_request.max(1))], start: 0, end: 0, max_request }
    }

    /// The free space to read into; never empty.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() {
            self.make_room();
        }
        &mut self.buf[self.end..]
    }

    /// Record that a read put `n` bytes into [`spare`](Self::spare).
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Bytes read but not yet served: the start of an unfinished request.
    pub fn unserved(&self) -> usize {
        self.end - self.start
    }

    /// Answer every complete request held, appending the replies to `out`.
    pub fn serve<S: Store>(&mut self, session: &mut Session<S>, out: &mut Vec<u8>) -> Served {
        let served = session.serve(&self.buf[self.start..self.end], out);
        self.start += served.consumed;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        served
    }

    fn make_room(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else {
            // Full of one unfinished request: grow, up to one maximal request (plus a byte, so a
            // read can always make progress and the decoder can see an over-long request).
            let grown = (self.buf.len() * 2).min(self.max_request + 1).max(self.buf.len() + 1);
            self.buf.resize(grown, 0);
        }
    }
}

/// Empty a buffer of replies once they are written, and give its memory back if a large turn
/// grew it: a burst must not stay resident for the life of the connection (or the loop).
pub fn recycle(out: &mut Vec<u8>) {
    if out.capacity() > KEEP {
        *out = Vec::new();
    } else {
        out.clear();
    }
}

/// The most capacity [`recycle`] keeps: a full output budget and one large reply.
const KEEP: usize = 2 * crate::session::DEFAULT_MAX_OUTPUT;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Proto;
    use crate::session::Knobs;
    use crate::store::LocalStore;

    fn fill(b: &mut InputBuffer, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let spare = b.spare();
            let n = spare.len().min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            b.filled(n);
            rest = &rest[n..];
        }
    }

    #[test]
    fn keeps_a_partial_request_across_reads() {
        let mut s = Session::new(
            Proto::EchoLine,
            100,
            Knobs::default(),
            LocalStore::new(crate::store::Capacity::keys(1)),
        );
        let mut b = InputBuffer::new(101);
        let mut out = Vec::new();
        fill(&mut b, b"ab");
        assert_eq!(b.serve(&mut s, &mut out).requests, 0);
        fill(&mut b, b"c\nd");
        assert_eq!(b.serve(&mut s, &mut out).requests, 1);
        fill(&mut b, b"\n");
        assert_eq!(b.serve(&mut s, &mut out).requests, 1);
        assert_eq!(out, b"abc\nd\n");
    }

    #[test]
    fn grows_to_hold_one_maximal_request_and_no_more() {
        let max = 10_000;
        let mut s = Session::new(
            Proto::EchoLine,
            max,
            Knobs::default(),
            LocalStore::new(crate::store::Capacity::keys(1)),
        );
        let mut b = InputBuffer::new(max + 1);
        let mut out = Vec::new();
        let mut line = vec![b'x'; max];
        line.push(b'\n');
        for chunk in line.chunks(1000) {
            fill(&mut b, chunk);
            b.serve(&mut s, &mut out);
        }
        assert_eq!(out, line);
        assert!(b.buf.len() <= max + 2, "buffer grew to {}", b.buf.len());
    }
}
