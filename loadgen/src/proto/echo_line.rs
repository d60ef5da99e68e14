//! `echo-line`: a request is payload bytes followed by `\n`; the reply is the same bytes.

use super::{ClientProtocol, Decoded, RequestTag};
use crate::payload::PayloadPool;

/// The client side of `echo-line`.
#[derive(Debug, Clone)]
pub struct EchoLine {
    pool: PayloadPool,
}

impl EchoLine {
    /// Speaks `echo-line` with payloads from `pool` (which never contain `\n`).
    pub fn new(pool: PayloadPool) -> Self {
        EchoLine { pool }
    }
}

impl ClientProtocol for EchoLine {
    type ConnState = ();

    fn conn_state(&self, _conn_id: u64) {}

    fn tag(&self, seq: u64) -> RequestTag {
        self.pool.tag(seq)
    }

    fn encode(&self, tag: RequestTag, out: &mut Vec<u8>) {
        self.pool.write_payload(tag, out);
        out.push(b'\n');
    }

    fn decode(&self, _: &mut (), input: &[u8], tag: RequestTag, verify: bool) -> Decoded {
        let expected = tag.len as usize;
        // Only look as far as the expected line could reach: a reply longer than the request
        // is wrong whatever follows, and a bounded search keeps a bad server from making us
        // rescan an ever-growing buffer.
        let window = &input[..input.len().min(expected + 1)];
        match memchr::memchr(b'\n', window) {
            Some(end) => {
                Decoded::Complete { len: end + 1, matches: !verify || self.pool.matches(tag, &input[..end]) }
            }
            None if input.len() > expected => {
                Decoded::Malformed("a reply line is longer than the request it answers")
            }
            None => Decoded::Incomplete,
        }
    }

    fn max_response_len(&self) -> usize {
        self.pool.sizes().max + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::SizeSpec;

    fn proto() -> EchoLine {
        EchoLine::new(PayloadPool::new(SizeSpec { min: 1, max: 100 }, 9))
    }

    #[test]
    fn the_echo_of_a_request_verifies_even_split_byte_by_byte() {
        let p = proto();
        let tag = p.tag(42);
        let mut wire = Vec::new();
        p.encode(tag, &mut wire);
        for cut in 0..wire.len() {
            assert_eq!(p.decode(&mut (), &wire[..cut], tag, true), Decoded::Incomplete);
        }
        let whole = Decoded::Complete { len: wire.len(), matches: true };
        assert_eq!(p.decode(&mut (), &wire, tag, true), whole);
        // Coalesced with the next reply: only the first line is consumed.
        wire.extend_from_slice(b"next\n");
        assert_eq!(p.decode(&mut (), &wire, tag, true), whole);
    }

    #[test]
    fn wrong_bytes_or_length_are_mismatches_and_overlong_lines_malformed() {
        let p = proto();
        let tag = RequestTag { seq: 1, len: 20 };
        let mut wire = Vec::new();
        p.encode(tag, &mut wire);
        wire[3] = wire[3].wrapping_add(1);
        assert!(matches!(p.decode(&mut (), &wire, tag, true), Decoded::Complete { matches: false, .. }));
        assert!(matches!(p.decode(&mut (), &wire, tag, false), Decoded::Complete { matches: true, .. }));
        assert!(matches!(
            p.decode(&mut (), b"short\n", tag, true),
            Decoded::Complete { len: 6, matches: false }
        ));
        assert!(matches!(p.decode(&mut (), &[b'x'; 30], tag, true), Decoded::Malformed(_)));
    }
}
