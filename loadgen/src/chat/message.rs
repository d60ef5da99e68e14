//! The bytes of chat mode, both ways: the lines loadgen's members say, and the lines a chat
//! server sends them. Written from the protocol's description, not from the lab's servers.
//!
//! A member says one line per message, `--size` bytes before its `\n`:
//!
//! ```text
//!   0000000c 00000000000003e8 000000003b9aca00 kLmNoPqRsT…\n
//!   ^sender  ^sequence number ^sent at (ns)   ^padding to the message's size
//! ```
//!
//! Sender index, sequence number and send time in fixed-width hex, so the header is always
//! [`HEADER_LEN`] bytes and parses without scanning; then a space and padding drawn from the
//! seed, the sender and the sequence number, so every message's bytes are different and a
//! corrupted, truncated or misattributed delivery shows. The send time is on loadgen's one
//! monotonic clock, shared by every member: the receiver subtracts it from its own reading of
//! the same clock to get the fan-out latency.
//!
//! The server delivers it to every other member as `ID: <the same line>`, where `ID` is the
//! sender's member id, which each member learns from its own welcome, `* you are ID`.

use crate::payload::mix;
use crate::units::SizeSpec;

/// Bytes of the fixed header: 8 hex digits, space, 16 hex digits, space, 16 hex digits.
pub const HEADER_LEN: usize = 8 + 1 + 16 + 1 + 16;

/// The longest prefix a server puts before a message: a `u64` id and `: `.
pub const MAX_PREFIX: usize = 20 + 2;

/// Padding bytes: printable, never a space or a newline.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// What one message says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// Index of the member that said it (0..members).
    pub sender: u32,
    /// Its number among that member's messages, from 0.
    pub seq: u64,
    /// When it was written, in nanoseconds on the run's clock.
    pub sent_ns: u64,
}

/// A delivered message that is not what was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damaged {
    /// What is wrong, in words.
    pub why: &'static str,
    /// The header, if it survived: then the damaged delivery still stands for that message
    /// (it arrived, just not intact), so it is not also counted as missing.
    pub header: Option<Message>,
}

/// Writes and checks messages of the configured sizes.
#[derive(Debug, Clone, Copy)]
pub struct Composer {
    sizes: SizeSpec,
    seed: u64,
}

impl Composer {
    /// Messages whose sizes (without `\n`) lie in `sizes`, which must start at [`HEADER_LEN`].
    pub fn new(sizes: SizeSpec, seed: u64) -> Self {
        Composer { sizes, seed }
    }

    /// The longest line a message can be, without its `\n`.
    pub fn max_len(&self) -> usize {
        self.sizes.max.max(HEADER_LEN)
    }

    /// The size of message `seq` of `sender`, without its `\n`.
    pub fn len(&self, sender: u32, seq: u64) -> usize {
        let span = (self.sizes.max - self.sizes.min) as u64 + 1;
        let len = self.sizes.min + (self.hash(sender, seq) % span) as usize;
        len.max(HEADER_LEN)
    }

    /// Appends `message` and its `\n` to `out`.
    pub fn encode(&self, message: Message, out: &mut Vec<u8>) {
        let len = self.len(message.sender, message.seq);
        hex(u64::from(message.sender), 8, out);
        out.push(b' ');
        hex(message.seq, 16, out);
        out.push(b' ');
        hex(message.sent_ns, 16, out);
        if len > HEADER_LEN {
            out.push(b' ');
            let start = self.hash(message.sender, message.seq) as usize;
            out.extend((0..len - HEADER_LEN - 1).map(|i| ALPHABET[(start + i) % ALPHABET.len()]));
        }
        out.push(b'\n');
    }

    /// Reads a delivered message (the line after the server's `ID: `, without `\n`) and checks
    /// that every byte is the one its header implies.
    pub fn check(&self, line: &[u8]) -> Result<Message, Damaged> {
        let unreadable = |why| Damaged { why, header: None };
        if line.len() < HEADER_LEN {
            return Err(unreadable("a delivered message is shorter than its header"));
        }
        let field = |from: usize, digits: usize| unhex(&line[from..from + digits]);
        let spaced = line[8] == b' ' && line[25] == b' ';
        let (Some(sender), Some(seq), Some(sent_ns), true) =
            (field(0, 8), field(9, 16), field(26, 16), spaced)
        else {
            return Err(unreadable("a delivered message has a corrupted header"));
        };
        let sender = u32::try_from(sender)
            .map_err(|_| unreadable("a delivered message names an impossible sender"))?;
        let header = Some(Message { sender, seq, sent_ns });
        if line.len() != self.len(sender, seq) {
            return Err(Damaged {
                why: "a delivered message has the wrong length (truncated or lengthened)",
                header,
            });
        }
        if line.len() > HEADER_LEN {
            let start = self.hash(sender, seq) as usize;
            let padding = &line[HEADER_LEN + 1..];
            let intact = line[HEADER_LEN] == b' '
                && padding.iter().enumerate().all(|(i, b)| *b == ALPHABET[(start + i) % ALPHABET.len()]);
            if !intact {
                return Err(Damaged { why: "a delivered message's bytes differ from what was sent", header });
            }
        }
        Ok(Message { sender, seq, sent_ns })
    }

    fn hash(&self, sender: u32, seq: u64) -> u64 {
        mix(self.seed ^ mix(u64::from(sender) << 32 ^ mix(seq)))
    }
}

/// What a line from the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// `* you are ID`: this member's own id.
    Welcome(u64),
    /// `* ID joined`.
    Joined(u64),
    /// `* ID left`, or `* ID dropped …` (for falling behind).
    Gone(u64),
    /// `ID: text`: a message said by member `ID`.
    Said { from: u64, text: &'a [u8] },
    /// `ERR …`: the server is closing this member's connection, and says why.
    Error(&'a [u8]),
    /// Anything else: not something a chat server sends.
    Unknown,
}

/// Sorts one line from the server (without its `\n`).
pub fn classify(line: &[u8]) -> Line<'_> {
    if let Some(notice) = line.strip_prefix(b"* ") {
        if let Some(id) = notice.strip_prefix(b"you are ") {
            return decimal(id).map_or(Line::Unknown, Line::Welcome);
        }
        let (id, what) = notice.split_at(notice.iter().position(|b| *b == b' ').unwrap_or(notice.len()));
        return match (decimal(id), what) {
            (Some(id), b" joined") => Line::Joined(id),
            (Some(id), what) if what == b" left" || what.starts_with(b" dropped") => Line::Gone(id),
            _ => Line::Unknown,
        };
    }
    if line.starts_with(b"ERR ") {
        return Line::Error(line);
    }
    match line.iter().position(|b| *b == b':') {
        Some(colon) if line.get(colon + 1) == Some(&b' ') => match decimal(&line[..colon]) {
            Some(from) => Line::Said { from, text: &line[colon + 2..] },
            None => Line::Unknown,
        },
        _ => Line::Unknown,
    }
}

/// A non-empty run of ASCII digits that fits a `u64`.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn hex(value: u64, digits: usize, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.extend((0..digits).rev().map(|i| DIGITS[((value >> (4 * i)) & 0xf) as usize]));
}

fn unhex(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, b| {
        let nibble = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(nibble))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer() -> Composer {
        Composer::new(SizeSpec { min: HEADER_LEN, max: 300 }, 7)
    }

    #[test]
    fn a_message_reads_back_as_itself_at_every_size() {
        let c = composer();
        for seq in 0..500 {
            let m = Message { sender: (seq % 13) as u32, seq, sent_ns: seq * 1_000_003 };
            let mut wire = Vec::new();
            c.encode(m, &mut wire);
            assert_eq!(wire.len(), c.len(m.sender, seq) + 1);
            assert_eq!(wire.pop(), Some(b'\n'));
            assert!(!wire.contains(&b'\n'));
            assert_eq!(c.check(&wire), Ok(m));
        }
    }

    #[test]
    fn any_changed_byte_or_length_is_caught() {
        let c = Composer::new(SizeSpec::fixed(100), 1);
        let mut wire = Vec::new();
        c.encode(Message { sender: 3, seq: 99, sent_ns: 12345 }, &mut wire);
        wire.pop();
        for i in 0..wire.len() {
            let mut bad = wire.clone();
            bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
            // A changed digit in the header may still parse, as another message whose length
            // or padding cannot match; either way it is not the message that was sent.
            assert_ne!(c.check(&bad), Ok(Message { sender: 3, seq: 99, sent_ns: 12345 }), "byte {i}");
        }
        assert!(c.check(&wire[..wire.len() - 1]).is_err(), "truncated");
        assert!(c.check(&[&wire[..], b"x"].concat()).is_err(), "lengthened");
    }

    #[test]
    fn server_lines_are_told_apart() {
        assert_eq!(classify(b"* you are 12"), Line::Welcome(12));
        assert_eq!(classify(b"* 7 joined"), Line::Joined(7));
        assert_eq!(classify(b"* 7 left"), Line::Gone(7));
        assert_eq!(classify(b"* 7 dropped (too slow)"), Line::Gone(7));
        assert_eq!(classify(b"7: * 1 joined"), Line::Said { from: 7, text: b"* 1 joined" });
        assert_eq!(classify(b"ERR too slow"), Line::Error(b"ERR too slow"));
        for junk in [&b""[..], b"*", b"* x joined", b"7:x", b": x", b"hello", b"99999999999999999999999: x"] {
            assert_eq!(classify(junk), Line::Unknown, "{:?}", String::from_utf8_lossy(junk));
        }
    }
}
