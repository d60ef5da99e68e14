//! `echo-frame`: a request is a 4-byte big-endian length `n` followed by `n` bytes; the reply is
//! the same header and bytes.
//!
//! This is the *length-header* answer to framing: the receiver learns the size up front, never
//! scans the payload, and the payload may contain any byte. The price is that the header must be
//! trusted only up to a limit: a peer declaring 4 GiB must not make the server reserve 4 GiB. A
//! declared length over the limit is malformed, and the server closes without a reply (there is
//! no agreed way to send an error inside this framing).

use super::Decoded;

/// The size of the length header.
pub const HEADER_LEN: usize = 4;

/// Decoder state for one connection. The header is re-read from the input on every call, which
/// is cheaper than remembering it, so the only state is the limit.
#[derive(Debug)]
pub struct EchoFrame {
    max_payload: usize,
}

impl EchoFrame {
    /// A decoder accepting payloads of at most `max_payload` bytes.
    pub fn new(max_payload: usize) -> EchoFrame {
        EchoFrame { max_payload }
    }

    /// The longest request: header plus the largest payload.
    pub fn max_request_len(&self) -> usize {
        HEADER_LEN + self.max_payload
    }

    /// See [`super::Codec::decode`].
    #[inline]
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Decoded {
        let Some(header) = input.first_chunk::<HEADER_LEN>() else {
            return Decoded::Incomplete;
        };
        // u32 -> usize cannot truncate on the 32- and 64-bit targets this lab runs on.
        let payload = u32::from_be_bytes(*header) as usize;
        if payload > self.max_payload {
            return Decoded::Malformed;
        }
        let total = HEADER_LEN + payload;
        if input.len() < total {
            return Decoded::Incomplete;
        }
        out.extend_from_slice(&input[..total]);
        Decoded::Request { consumed: total }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Proto;
    use super::super::testing::{Transcript, run};
    use proptest::prelude::*;

    const MAX: usize = 16;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    fn whole(stream: &[u8]) -> Transcript {
        run(Proto::EchoFrame, MAX, stream, &[])
    }

    #[test]
    fn echoes_one_frame_with_its_header() {
        let f = frame(b"hello");
        let t = whole(&f);
        assert_eq!(t.out, f);
        assert_eq!(t.requests, 1);
    }

    #[test]
    fn zero_length_frame_is_a_request() {
        let t = whole(&frame(b""));
        assert_eq!(t.out, [0, 0, 0, 0]);
        assert_eq!(t.requests, 1);
    }

    #[test]
    fn payload_may_hold_any_byte_including_newline() {
        let f = frame(b"a\nb\0c");
        assert_eq!(whole(&f).out, f);
    }

    #[test]
    fn coalesced_frames_are_answered_in_order() {
        let stream = [frame(b"a"), frame(b""), frame(b"ccc")].concat();
        let t = whole(&stream);
        assert_eq!(t.out, stream);
        assert_eq!(t.requests, 3);
    }

    #[test]
    fn frame_exactly_at_the_limit_is_accepted() {
        let f = frame(&[7; MAX]);
        let t = whole(&f);
        assert_eq!(t.out, f);
        assert!(!t.malformed);
    }

    #[test]
    fn frame_one_past_the_limit_is_malformed_with_no_reply() {
        let t = whole(&frame(&[7; MAX + 1]));
        assert!(t.malformed);
        assert!(t.out.is_empty());
    }

    #[test]
    fn huge_declared_length_is_rejected_from_the_header_alone() {
        // Only the 4 header bytes have arrived: the decoder must not wait for 4 GiB.
        let t = whole(&u32::MAX.to_be_bytes());
        assert!(t.malformed);
    }

    #[test]
    fn partial_header_is_incomplete() {
        let t = whole(&[0, 0]);
        assert!(!t.malformed);
        assert_eq!(t.requests, 0);
    }

    fn frames() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..=MAX + 2), 0..8)
            .prop_map(|payloads| payloads.iter().flat_map(|p| frame(p)).collect())
    }

    proptest! {
        /// However TCP splits the stream, the replies are the same bytes in the same order.
        #[test]
        fn any_split_gives_the_same_replies(stream in frames(), mut cuts in prop::collection::vec(0usize..200, 0..20)) {
            cuts.sort_unstable();
            prop_assert_eq!(run(Proto::EchoFrame, MAX, &stream, &cuts), whole(&stream));
        }
    }
}
