//! `chat`: a line-based group chat. Every line a member sends is delivered to every *other*
//! member, prefixed with the sender's id; the others are told when someone joins or leaves.
//!
//! ```text
//!   member 3 sends:  hello\n
//!   members 1, 2 get:  3: hello\n        (member 3 gets nothing back)
//! ```
//!
//! Every line the server sends is one of these, so a client (or `nc`) can tell them apart by
//! their first bytes:
//!
//! | line | to whom | when |
//! | --- | --- | --- |
//! | `* you are 7` | the new member | first, on joining |
//! | `* 7 joined` | everyone else | 7 joined |
//! | `7: text` | everyone but 7 | 7 said `text` |
//! | `* 7 left` | everyone else | 7 closed its connection, broke the protocol, or was reset |
//! | `* 7 dropped (too slow)` | everyone else | 7 fell too far behind reading (see [`super::outbox`]) |
//! | `ERR line longer than N bytes` | the sender | its line broke `--max-frame`; then the server closes |
//! | `ERR too slow: …` | the slow member | the last line it gets (see [`super::outbox`]) |
//!
//! A member's text cannot forge a notice: whatever it sends arrives behind its `7: ` prefix.
//!
//! Chat is not request/response, so it fits [`super::Codec`] in one particular way: a complete
//! line is a "request" whose output is the message *as the others will see it*. A model feeds
//! input through the same [`crate::session::Session::serve`] as for echo, but where echo writes
//! `out` back to the sender, chat hands it to the room, which copies it to every other member.
//! One read that held several lines yields one batch, routed once. On a line over the limit the
//! decoder appends nothing and says `Malformed`; the model then asks it for its
//! [`refusal`](Chat::refusal), `echo-line`'s words, sends that to the sender alone, and closes.
//!
//! Framing is `echo-line`'s, the same [`LineFramer`]; only what happens to a line differs.

use super::Decoded;
use super::line::{Line, LineFramer};

use super::line::too_long as line_too_long;

/// A member's id: unique within one server run, assigned in the order members join.
pub type MemberId = u64;

/// The longest prefix a message gets: 20 digits of a `u64`, then `: `.
pub const MAX_PREFIX: usize = 22;

/// Decoder state for one member's connection.
#[derive(Debug)]
pub struct Chat {
    lines: LineFramer,
    /// `"7: "`, formatted once when the member joins, copied before each of its lines.
    prefix: Vec<u8>,
}

impl Chat {
    /// A decoder accepting lines of at most `max_line` bytes before the `\n`. Until
    /// [`speak_as`](Self::speak_as) names the member, its lines carry the prefix `?: `.
    pub fn new(max_line: usize) -> Chat {
        Chat { lines: LineFramer::new(max_line), prefix: b"?: ".to_vec() }
    }

    /// From now on, this connection's lines are member `id`'s.
    pub fn speak_as(&mut self, id: MemberId) {
        self.prefix.clear();
        self.prefix.extend_from_slice(id.to_string().as_bytes());
        self.prefix.extend_from_slice(b": ");
    }

    /// The longest input line: the longest text plus its `\n`.
    pub fn max_request_len(&self) -> usize {
        self.lines.max_request_len()
    }

    /// The reply to the sender alone after `Malformed`: the same words as `echo-line`'s.
    pub fn refusal(&self, out: &mut Vec<u8>) {
        line_too_long(self.lines.max_line(), out);
    }

    /// See [`super::Codec::decode`]: a complete line appends `ID: line\n` to `out`.
    #[inline]
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Decoded {
        match self.lines.next(input) {
            Line::Complete { len } => {
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(&input[..len]);
                Decoded::Request { consumed: len }
            }
            Line::Incomplete => Decoded::Incomplete,
            Line::TooLong => Decoded::Malformed,
        }
    }
}

/// `* you are 7\n`: the first line a new member gets.
pub fn welcome(id: MemberId, out: &mut Vec<u8>) {
    notice(out, format_args!("* you are {id}"));
}

/// `* 7 joined\n`, to everyone else.
pub fn joined(id: MemberId, out: &mut Vec<u8>) {
    notice(out, format_args!("* {id} joined"));
}

/// `* 7 left\n`, to everyone else.
pub fn left(id: MemberId, out: &mut Vec<u8>) {
    notice(out, format_args!("* {id} left"));
}

/// `* 7 dropped (too slow)\n`, to everyone else.
pub fn dropped(id: MemberId, out: &mut Vec<u8>) {
    notice(out, format_args!("* {id} dropped (too slow)"));
}

/// The last line a member gets when it is dropped for falling `limit` bytes behind.
pub fn too_slow(limit: usize, out: &mut Vec<u8>) {
    notice(out, format_args!("ERR too slow: more than {limit} bytes were waiting for you; disconnected"));
}

fn notice(out: &mut Vec<u8>, text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = writeln!(out, "{text}");
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Transcript, lines, run};
    use super::super::{Codec, Decoded, Proto};
    use super::*;
    use crate::store::LocalStore;
    use proptest::prelude::*;

    const MAX: usize = 16;

    fn whole(stream: &[u8]) -> Transcript {
        run(Proto::Chat, MAX, stream, &[])
    }

    #[test]
    fn a_line_becomes_the_message_the_others_see() {
        let mut chat = Chat::new(MAX);
        chat.speak_as(42);
        let mut out = Vec::new();
        assert_eq!(chat.decode(b"hi there\nrest", &mut out), Decoded::Request { consumed: 9 });
        assert_eq!(out, b"42: hi there\n");
    }

    #[test]
    fn coalesced_lines_make_one_batch_in_order() {
        let t = whole(b"a\nbb\n\nccc\n");
        assert_eq!(t.out, b"?: a\n?: bb\n?: \n?: ccc\n");
        assert_eq!(t.requests, 4);
        assert!(!t.malformed);
    }

    #[test]
    fn an_unterminated_tail_is_not_said() {
        let t = whole(b"done\npartial");
        assert_eq!(t.out, b"?: done\n");
    }

    #[test]
    fn the_limit_counts_the_text_not_the_prefix() {
        let mut line = vec![b'x'; MAX];
        line.push(b'\n');
        let t = whole(&line);
        assert!(!t.malformed);
        line.insert(0, b'x');
        let t = whole(&line);
        assert!(t.malformed);
        assert_eq!(t.out, b"", "an over-long line is said to nobody");
    }

    #[test]
    fn an_over_long_line_is_caught_before_its_newline() {
        let mut codec = Codec::new(Proto::Chat, MAX);
        let (mut out, store) = (Vec::new(), LocalStore::new(crate::store::Capacity::keys(1)));
        assert_eq!(codec.decode(&[b'x'; MAX], &mut out, &store), Decoded::Incomplete);
        assert_eq!(codec.decode(&[b'x'; MAX + 1], &mut out, &store), Decoded::Malformed);
    }

    #[test]
    fn notices_are_single_lines_that_no_message_can_imitate() {
        let mut out = Vec::new();
        welcome(7, &mut out);
        joined(8, &mut out);
        left(8, &mut out);
        dropped(9, &mut out);
        line_too_long(16, &mut out);
        too_slow(1024, &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "* you are 7",
                "* 8 joined",
                "* 8 left",
                "* 9 dropped (too slow)",
                "ERR line longer than 16 bytes",
                "ERR too slow: more than 1024 bytes were waiting for you; disconnected",
            ]
        );
        let mut chat = Chat::new(MAX);
        chat.speak_as(3);
        let mut msg = Vec::new();
        chat.decode(b"* 1 joined\n", &mut msg);
        assert_eq!(msg, b"3: * 1 joined\n", "a forged notice arrives behind its sender's prefix");
    }

    #[test]
    fn the_prefix_fits_the_documented_maximum() {
        let mut chat = Chat::new(MAX);
        chat.speak_as(u64::MAX);
        let mut out = Vec::new();
        chat.decode(b"\n", &mut out);
        assert_eq!(out.len(), MAX_PREFIX + 1);
    }

    proptest! {
        /// However TCP splits the stream, the same messages come out in the same order.
        #[test]
        fn any_split_gives_the_same_messages(stream in lines(MAX), mut cuts in prop::collection::vec(0usize..200, 0..20)) {
            cuts.sort_unstable();
            prop_assert_eq!(run(Proto::Chat, MAX, &stream, &cuts), whole(&stream));
        }
    }
}
