//! `echo-frame`: a request is a 4-byte big-endian length N and N payload bytes; the reply is the
//! same frame.

use super::{ClientProtocol, Decoded, RequestTag};
use crate::payload::PayloadPool;
use crate::units::MAX_PAYLOAD;

/// Bytes in the length prefix.
const PREFIX: usize = 4;

/// The client side of `echo-frame`.
#[derive(Debug, Clone)]
pub struct EchoFrame {
    pool: PayloadPool,
}

impl EchoFrame {
    /// Speaks `echo-frame` with payloads from `pool`.
    pub fn new(pool: PayloadPool) -> Self {
        EchoFrame { pool }
    }
}

impl ClientProtocol for EchoFrame {
    type ConnState = ();

    fn conn_state(&self, _conn_id: u64) {}

    fn tag(&self, seq: u64) -> RequestTag {
        self.pool.tag(seq)
    }

    fn encode(&self, tag: RequestTag, out: &mut Vec<u8>) {
        out.extend_from_slice(&tag.len.to_be_bytes());
        self.pool.write_payload(tag, out);
    }

    fn decode(&self, _: &mut (), input: &[u8], tag: RequestTag, verify: bool) -> Decoded {
        let Some(prefix) = input.first_chunk::<PREFIX>() else {
            return Decoded::Incomplete;
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        // A length beyond the protocol's limit cannot be a valid frame; waiting for it would let
        // a broken server make us buffer without bound.
        if len > MAX_PAYLOAD {
            return Decoded::Malformed("a reply frame announces more than 65536 bytes");
        }
        let Some(frame) = input.get(PREFIX..PREFIX + len) else {
            return Decoded::Incomplete;
        };
        Decoded::Complete { len: PREFIX + len, matches: !verify || self.pool.matches(tag, frame) }
    }

    fn max_response_len(&self) -> usize {
        // A wrong but well-framed reply may be as long as the protocol allows, and must still fit
        // in the buffer to be counted as a mismatch rather than stalling the connection.
        PREFIX + MAX_PAYLOAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::SizeSpec;

    fn proto() -> EchoFrame {
        EchoFrame::new(PayloadPool::new(SizeSpec { min: 1, max: 100 }, 9))
    }

    #[test]
    fn the_echo_of_a_request_verifies_even_split_byte_by_byte() {
        let p = proto();
        let tag = p.tag(7);
        let mut wire = Vec::new();
        p.encode(tag, &mut wire);
        assert_eq!(&wire[..4], &tag.len.to_be_bytes());
        for cut in 0..wire.len() {
            assert_eq!(p.decode(&mut (), &wire[..cut], tag, true), Decoded::Incomplete);
        }
        wire.extend_from_slice(&[0, 0, 0, 1, b'x']);
        assert_eq!(
            p.decode(&mut (), &wire, tag, true),
            Decoded::Complete { len: wire.len() - 5, matches: true }
        );
    }

    #[test]
    fn wrong_payload_is_a_mismatch_and_huge_length_malformed() {
        let p = proto();
        let tag = RequestTag { seq: 3, len: 10 };
        let mut wire = Vec::new();
        p.encode(tag, &mut wire);
        let last = wire.len() - 1;
        wire[last] ^= 0x20;
        assert!(matches!(p.decode(&mut (), &wire, tag, true), Decoded::Complete { matches: false, .. }));
        assert!(matches!(
            p.decode(&mut (), &[0, 0, 0, 2, b'h', b'i'], tag, true),
            Decoded::Complete { len: 6, matches: false }
        ));
        assert!(matches!(p.decode(&mut (), &[0xff, 0, 0, 0], tag, true), Decoded::Malformed(_)));
    }
}
