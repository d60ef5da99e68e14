//! `echo-line`: a request is any bytes up to and including `\n`; the reply is the same bytes.
//!
//! This is the *delimiter* answer to framing: the receiver scans for a byte that cannot occur
//! inside a message. It is easy to type into `nc`, but the receiver must look at every byte, and
//! a peer that never sends `\n` would make a naive server buffer forever. So a line longer than
//! the limit (counted without its `\n`) is malformed: the server answers with one line starting
//! with `ERR` and closes. The decoder gives up as soon as it holds `max_line + 1` bytes without
//! a newline, so a server keeps at most that much of such a line, plus whatever one read
//! brought in with it.
//!
//! An unterminated line at end of stream is not a request and gets no reply: only the
//! delimiter says a message is complete.

use super::Decoded;
use super::line::{self, Line, LineFramer};

/// Decoder state for one connection: only where the pending line stands (see [`super::line`]).
#[derive(Debug)]
pub struct EchoLine {
    lines: LineFramer,
}

impl EchoLine {
    /// A decoder accepting lines of at most `max_line` bytes before the `\n`.
    pub fn new(max_line: usize) -> EchoLine {
        EchoLine { lines: LineFramer::new(max_line) }
    }

    /// The longest request: the longest line plus its `\n`.
    pub fn max_request_len(&self) -> usize {
        self.lines.max_request_len()
    }

    /// See [`super::Codec::decode`].
    #[inline]
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Decoded {
        match self.lines.next(input) {
            Line::Complete { len } => {
                out.extend_from_slice(&input[..len]);
                Decoded::Request { consumed: len }
            }
            Line::Incomplete => Decoded::Incomplete,
            Line::TooLong => {
                line::too_long(self.lines.max_line(), out);
                Decoded::Malformed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Transcript, lines, run};
    use super::super::{Codec, Decoded, Proto};
    use crate::store::LocalStore;
    use proptest::prelude::*;

    const MAX: usize = 16;

    fn whole(stream: &[u8]) -> Transcript {
        run(Proto::EchoLine, MAX, stream, &[])
    }

    #[test]
    fn echoes_one_line_with_its_newline() {
        let t = whole(b"hello\n");
        assert_eq!(t.out, b"hello\n");
        assert_eq!(t.requests, 1);
        assert!(!t.malformed);
    }

    #[test]
    fn coalesced_lines_are_answered_in_order() {
        let t = whole(b"a\nbb\nccc\n");
        assert_eq!(t.out, b"a\nbb\nccc\n");
        assert_eq!(t.requests, 3);
    }

    #[test]
    fn empty_line_is_a_request() {
        let t = whole(b"\n\nx\n");
        assert_eq!(t.out, b"\n\nx\n");
        assert_eq!(t.requests, 3);
    }

    #[test]
    fn unterminated_tail_gets_no_reply() {
        let t = whole(b"done\npartial");
        assert_eq!(t.out, b"done\n");
        assert!(!t.malformed);
    }

    #[test]
    fn line_exactly_at_the_limit_is_accepted() {
        let mut line = vec![b'x'; MAX];
        line.push(b'\n');
        let t = whole(&line);
        assert_eq!(t.out, line);
        assert!(!t.malformed);
    }

    #[test]
    fn line_one_past_the_limit_is_malformed() {
        let mut line = vec![b'x'; MAX + 1];
        line.push(b'\n');
        let t = whole(&line);
        assert!(t.malformed);
        assert_eq!(t.out, b"ERR line longer than 16 bytes\n");
    }

    #[test]
    fn overlong_line_is_caught_before_its_newline_arrives() {
        // The decoder must give up once it holds MAX + 1 bytes without a newline, so a peer
        // that never sends `\n` cannot make the server buffer more than that.
        let mut codec = Codec::new(Proto::EchoLine, MAX);
        let (mut out, store) = (Vec::new(), LocalStore::new(crate::store::Capacity::keys(1)));
        assert_eq!(codec.decode(&[b'x'; MAX], &mut out, &store), Decoded::Incomplete);
        assert_eq!(codec.decode(&[b'x'; MAX + 1], &mut out, &store), Decoded::Malformed);
    }

    #[test]
    fn byte_at_a_time_matches_whole_stream() {
        let stream = b"one\ntwo\n\nthree\n";
        let cuts: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(run(Proto::EchoLine, MAX, stream, &cuts), whole(stream));
    }

    proptest! {
        /// However TCP splits the stream, the replies are the same bytes in the same order.
        #[test]
        fn any_split_gives_the_same_replies(stream in lines(MAX), mut cuts in prop::collection::vec(0usize..200, 0..20)) {
            cuts.sort_unstable();
            prop_assert_eq!(run(Proto::EchoLine, MAX, &stream, &cuts), whole(&stream));
        }
    }
}
