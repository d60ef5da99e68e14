//! Request payloads that differ from one request to the next, without allocating per request.
//!
//! A server that swaps two responses, or hands one connection's reply to another, must be caught.
//! So each payload starts with its request's sequence number (globally unique across the run) and
//! continues with a slice of a pool of seeded random bytes at an offset that also depends on the
//! sequence number. Everything is a pure function of `(seed, seq)`: the verifier recomputes the
//! expected bytes and compares them in place against the read buffer, so nothing is copied or
//! stored per request.

use crate::units::SizeSpec;

/// Bytes in the sequence-number header at the front of every payload.
pub const HEADER_LEN: usize = 16;

/// How far into the pool a payload may start; larger means more distinct payloads.
const POOL_SPREAD: usize = 64 * 1024;

/// Seeded payload bytes plus the rule that picks each request's size and slice.
#[derive(Debug, Clone)]
pub struct PayloadPool {
    bytes: Vec<u8>,
    sizes: SizeSpec,
    seed: u64,
}

/// What request `seq` looks like; two numbers are enough to rebuild its payload exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTag {
    /// Globally unique sequence number of the request.
    pub seq: u64,
    /// Payload length in bytes (framing excluded).
    pub len: u32,
}

impl PayloadPool {
    /// Builds the pool for `sizes` from `seed`. No byte is `\n`, so every payload is a valid
    /// line for line-framed protocols, and no two neighbouring requests share a payload.
    pub fn new(sizes: SizeSpec, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let len = POOL_SPREAD + sizes.max;
        // Printable ASCII keeps captured traffic readable in a packet dump and excludes `\n`.
        let bytes = (0..len).map(|_| rng.u8(b' '..=b'~')).collect();
        PayloadPool { bytes, sizes, seed }
    }

    /// The sizes this pool draws from.
    pub fn sizes(&self) -> SizeSpec {
        self.sizes
    }

    /// Picks the size of request `seq` (uniform over the range, fixed by the seed).
    pub fn tag(&self, seq: u64) -> RequestTag {
        // Saturating, so an unvalidated spec (min > max) degrades to fixed sizes, not a panic.
        let span = self.sizes.max.saturating_sub(self.sizes.min) as u64 + 1;
        let len = self.sizes.min as u64 + mix(seq ^ self.seed) % span;
        // Sizes are validated to be at most 65536, so this always fits.
        RequestTag { seq, len: len as u32 }
    }

    /// Appends the payload of `tag` to `out`.
    pub fn write_payload(&self, tag: RequestTag, out: &mut Vec<u8>) {
        let header = header(tag.seq);
        let len = tag.len as usize;
        let head = len.min(HEADER_LEN);
        out.extend_from_slice(&header[..head]);
        out.extend_from_slice(self.body(tag, len - head));
    }

    /// True when `bytes` is exactly the payload of `tag`: two memcmps, no allocation.
    pub fn matches(&self, tag: RequestTag, bytes: &[u8]) -> bool {
        let len = tag.len as usize;
        if bytes.len() != len {
            return false;
        }
        let head = len.min(HEADER_LEN);
        let header = header(tag.seq);
        bytes[..head] == header[..head] && bytes[head..] == *self.body(tag, len - head)
    }

    fn body(&self, tag: RequestTag, len: usize) -> &[u8] {
        let start = (mix(tag.seq.wrapping_add(self.seed)) % POOL_SPREAD as u64) as usize;
        &self.bytes[start..start + len]
    }
}

/// The sequence number as 16 hex digits, least significant first, so that even a payload of one
/// or two bytes differs between consecutive requests.
fn header(seq: u64) -> [u8; HEADER_LEN] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; HEADER_LEN];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = DIGITS[((seq >> (4 * i)) & 0xf) as usize];
    }
    out
}

/// SplitMix64's finaliser: a cheap, well-spread hash of a counter.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_has_no_newline() {
        let pool = PayloadPool::new(SizeSpec { min: 1, max: 300 }, 7);
        let mut buf = Vec::new();
        for seq in 0..2000 {
            buf.clear();
            let tag = pool.tag(seq);
            pool.write_payload(tag, &mut buf);
            assert_eq!(buf.len(), tag.len as usize);
            assert!(!buf.contains(&b'\n'));
            assert!(pool.matches(tag, &buf));
        }
    }

    #[test]
    fn neighbours_and_single_byte_changes_are_told_apart() {
        let pool = PayloadPool::new(SizeSpec::fixed(64), 1);
        let (a, b) = (pool.tag(10), pool.tag(11));
        let mut buf = Vec::new();
        pool.write_payload(a, &mut buf);
        assert!(!pool.matches(b, &buf), "a swapped response must not verify");
        buf[40] ^= 1;
        assert!(!pool.matches(a, &buf), "one flipped bit must not verify");
    }

    #[test]
    fn tiny_payloads_still_differ_between_neighbours() {
        let pool = PayloadPool::new(SizeSpec::fixed(1), 3);
        let mut one = Vec::new();
        let mut two = Vec::new();
        pool.write_payload(pool.tag(4), &mut one);
        pool.write_payload(pool.tag(5), &mut two);
        assert_ne!(one, two);
    }
}
