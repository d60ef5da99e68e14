//! `kv`: `GET` and `SET` in Redis's RESP2, with every reply checked against what the connection
//! itself wrote.
//!
//! A store's replies can only be checked if the client knows the store's contents. So each
//! connection owns a disjoint slice of the key space (`--kv-keys / --conns` keys, named
//! `lg:` and a 12-digit index that includes the connection's number), and nobody else writes
//! there. A connection's first requests `SET` each of its keys once; after that, request `seq`
//! is a `GET` with probability `--kv-get-ratio`, else a `SET`, of a key picked from `seq`.
//! A `SET` stores the payload of its own sequence number (which starts with that number, see
//! [`crate::payload`]), so:
//!
//! - the expected reply to a `GET` is exactly the value of the last `SET` of that key *that the
//!   server acknowledged*: replies come back in request order, so when a `GET`'s reply is
//!   decoded every earlier `SET` on the connection has been answered (pipelining included);
//! - a stale value, a value of another key or of another connection, a lost `SET` or an error
//!   reply is a mismatch.
//!
//! The per-connection memory ([`KvConn`]) is the sequence number of the last acknowledged `SET`
//! of each key: 8 bytes per key, allocated when the connection is set up.
//!
//! Because every key is written before it is read, a server still holding keys from an earlier
//! run against it (the same names come back with the same seed and settings) is no problem.
//! Two loadgen processes against one server at once would write each other's keys: don't.

use super::{ClientProtocol, Decoded, RequestTag};
use crate::payload::{PayloadPool, mix};
use crate::units::MAX_PAYLOAD;

/// Low bits of a sequence number that count a connection's own requests (see `Conn::next_seq`).
const LOCAL_BITS: u32 = 40;

/// Bytes of a key: `lg:` and 12 digits. Fixed, so every request of a kind has the same framing.
const KEY_LEN: usize = 15;

/// Longest status or error line accepted before its `\r\n`; Redis's own errors are far shorter.
const MAX_LINE: usize = 4096;

/// No `SET` of this key acknowledged yet.
const NEVER: u64 = u64::MAX;

/// The client side of `kv`.
#[derive(Debug, Clone)]
pub struct Kv {
    pool: PayloadPool,
    keys_per_conn: u64,
    /// A request is a `GET` when 32 bits of its hash fall below this (`ratio × 2³²`).
    get_below: u64,
}

/// One connection's memory: for each of its keys, the sequence number of the last `SET` the
/// server acknowledged, or [`NEVER`].
#[derive(Debug, Clone)]
pub struct KvConn {
    last_set: Vec<u64>,
}

/// What request `seq` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get { slot: u64 },
    Set { slot: u64 },
}

impl Kv {
    /// Speaks `kv` with values from `pool`, `keys` keys shared out over `conns` connections,
    /// `get_ratio` of the requests after the first writes being `GET`s.
    pub fn new(pool: PayloadPool, keys: u64, conns: u64, get_ratio: f64) -> Self {
        let keys_per_conn = (keys / conns.max(1)).max(1);
        let get_below = (get_ratio.clamp(0.0, 1.0) * (1u64 << 32) as f64) as u64;
        Kv { pool, keys_per_conn, get_below }
    }

    fn op(&self, seq: u64) -> Op {
        let local = seq & ((1 << LOCAL_BITS) - 1);
        if local < self.keys_per_conn {
            return Op::Set { slot: local }; // every key is written once before anything reads it
        }
        let h = mix(seq ^ 0x6b76_5f6f_7073); // a different stream from the payload's use of `mix`
        let slot = (h & 0xffff_ffff) % self.keys_per_conn;
        if (h >> 32) < self.get_below { Op::Get { slot } } else { Op::Set { slot } }
    }

    fn key(&self, seq: u64, slot: u64) -> [u8; KEY_LEN] {
        let index = (seq >> LOCAL_BITS) * self.keys_per_conn + slot;
        let mut key = *b"lg:000000000000";
        let mut rest = index;
        for digit in key[3..].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        key
    }
}

/// `$N\r\n` for a length.
fn push_len(out: &mut Vec<u8>, prefix: u8, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.push(prefix);
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

impl ClientProtocol for Kv {
    type ConnState = KvConn;

    fn conn_state(&self, _conn_id: u64) -> KvConn {
        KvConn { last_set: vec![NEVER; self.keys_per_conn as usize] }
    }

    fn tag(&self, seq: u64) -> RequestTag {
        // The size is the value's, for a SET; a GET ignores it.
        self.pool.tag(seq)
    }

    fn encode(&self, tag: RequestTag, out: &mut Vec<u8>) {
        match self.op(tag.seq) {
            Op::Get { slot } => {
                out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$15\r\n");
                out.extend_from_slice(&self.key(tag.seq, slot));
                out.extend_from_slice(b"\r\n");
            }
            Op::Set { slot } => {
                out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$15\r\n");
                out.extend_from_slice(&self.key(tag.seq, slot));
                out.extend_from_slice(b"\r\n");
                push_len(out, b'$', tag.len as usize);
                self.pool.write_payload(tag, out);
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn decode(&self, state: &mut KvConn, input: &[u8], tag: RequestTag, verify: bool) -> Decoded {
        let window = &input[..input.len().min(MAX_LINE + 2)];
        let Some(cr) = memchr::memchr(b'\r', window) else {
            return if window.len() > MAX_LINE { Decoded::Malformed(OVERLONG) } else { Decoded::Incomplete };
        };
        let Some(&lf) = input.get(cr + 1) else { return Decoded::Incomplete };
        if lf != b'\n' || cr == 0 {
            return Decoded::Malformed("a RESP line not ended by \\r\\n");
        }
        let line_len = cr + 2;
        let op = self.op(tag.seq);
        let (len, ok) = match input[0] {
            b'+' => (line_len, matches!(op, Op::Set { .. }) && &input[1..cr] == b"OK"),
            // An error (`-ERR ...`, `-OOM ...`) or a number is a well-framed wrong answer.
            b'-' | b':' => (line_len, false),
            b'$' => {
                let Some(n) = parse_len(&input[1..cr]) else {
                    return Decoded::Malformed("a RESP bulk length that is not a number");
                };
                match n {
                    None => (line_len, self.expects(state, op, None)),
                    Some(n) if n > MAX_PAYLOAD => {
                        return Decoded::Malformed("a bulk reply of more than 65536 bytes");
                    }
                    Some(n) => {
                        let Some(body) = input.get(line_len..line_len + n + 2) else {
                            return Decoded::Incomplete;
                        };
                        if !body.ends_with(b"\r\n") {
                            return Decoded::Malformed("a bulk reply not followed by \\r\\n");
                        }
                        (line_len + n + 2, !verify || self.expects(state, op, Some(&body[..n])))
                    }
                }
            }
            _ => {
                return Decoded::Malformed(
                    "a reply that is not a RESP status, error, integer or bulk string",
                );
            }
        };
        if let (Op::Set { slot }, true) = (op, ok) {
            if let Some(last) = state.last_set.get_mut(slot as usize) {
                *last = tag.seq;
            }
        }
        Decoded::Complete { len, matches: !verify || ok }
    }

    fn max_response_len(&self) -> usize {
        // `$65536\r\n`, the value, `\r\n`; a status or error line is shorter.
        MAX_PAYLOAD + 16
    }
}

const OVERLONG: &str = "a RESP line longer than 4096 bytes";

impl Kv {
    /// Whether `got` (a bulk value, or `None` for nil) is what a `GET` should see now.
    fn expects(&self, state: &KvConn, op: Op, got: Option<&[u8]>) -> bool {
        let Op::Get { slot } = op else { return false };
        match (state.last_set.get(slot as usize).copied().unwrap_or(NEVER), got) {
            (NEVER, None) => true,
            (NEVER, Some(_)) | (_, None) => false,
            (last, Some(value)) => self.pool.matches(self.pool.tag(last), value),
        }
    }
}

/// A bulk length: `-1` (nil) or a plain non-negative decimal.
fn parse_len(text: &[u8]) -> Option<Option<usize>> {
    if text == b"-1" {
        return Some(None);
    }
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::SizeSpec;

    fn proto(get_ratio: f64) -> Kv {
        // 8 keys over 2 connections: 4 each.
        Kv::new(PayloadPool::new(SizeSpec { min: 1, max: 100 }, 9), 8, 2, get_ratio)
    }

    fn wire(p: &Kv, seq: u64) -> String {
        let mut out = Vec::new();
        p.encode(p.tag(seq), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn bulk(value: &[u8]) -> Vec<u8> {
        [format!("${}\r\n", value.len()).as_bytes(), value, b"\r\n"].concat()
    }

    fn value_of(p: &Kv, seq: u64) -> Vec<u8> {
        let mut v = Vec::new();
        p.pool.write_payload(p.tag(seq), &mut v);
        v
    }

    #[test]
    fn each_connection_first_sets_each_of_its_own_keys() {
        let p = proto(1.0);
        for local in 0..4 {
            let w = wire(&p, (1 << LOCAL_BITS) | local);
            let key = format!("lg:{:012}", 4 + local);
            assert!(w.starts_with(&format!("*3\r\n$3\r\nSET\r\n$15\r\n{key}\r\n$")), "{w}");
        }
        // After that, with a ratio of 1, only GETs, of connection 1's keys only.
        for local in 4..100 {
            let w = wire(&p, (1 << LOCAL_BITS) | local);
            assert!(w.starts_with("*2\r\n$3\r\nGET\r\n$15\r\nlg:00000000000"), "{w}");
            let index: u64 = w[w.len() - 14..w.len() - 2].parse().unwrap();
            assert!((4..8).contains(&index), "{w}");
        }
    }

    #[test]
    fn the_get_ratio_is_honoured() {
        let p = Kv::new(PayloadPool::new(SizeSpec::fixed(8), 1), 10, 1, 0.9);
        let gets = (10..100_010).filter(|&seq| matches!(p.op(seq), Op::Get { .. })).count();
        assert!((89_000..91_000).contains(&gets), "{gets} GETs in 100000");
    }

    #[test]
    fn a_get_expects_the_last_acknowledged_set_of_its_key() {
        let p = proto(0.5);
        let mut state = p.conn_state(0);
        // Find a SET and a later GET of the same slot, past the first writes.
        let (set, get) = (4..)
            .find_map(|s| {
                let Op::Set { slot } = p.op(s) else { return None };
                let g = (s + 1..s + 200).find(|&g| p.op(g) == Op::Get { slot })?;
                (s + 1..g).all(|m| !matches!(p.op(m), Op::Set { slot: x } if x == slot)).then_some((s, g))
            })
            .unwrap();
        let get_tag = p.tag(get);
        // Before the SET is acknowledged, the key was never written: nil is right.
        assert_eq!(
            p.decode(&mut state, b"$-1\r\n", get_tag, true),
            Decoded::Complete { len: 5, matches: true }
        );
        assert_eq!(
            p.decode(&mut state, b"+OK\r\n", p.tag(set), true),
            Decoded::Complete { len: 5, matches: true }
        );
        let right = bulk(&value_of(&p, set));
        for cut in 0..right.len() {
            assert_eq!(p.decode(&mut state, &right[..cut], get_tag, true), Decoded::Incomplete);
        }
        assert_eq!(
            p.decode(&mut state, &right, get_tag, true),
            Decoded::Complete { len: right.len(), matches: true }
        );
        // A stale value (another SET's), nil, an error: well framed and wrong.
        for wrong in
            [bulk(&value_of(&p, set - 1)), b"$-1\r\n".to_vec(), b"-ERR no\r\n".to_vec(), b":1\r\n".to_vec()]
        {
            let len = wrong.len();
            assert_eq!(
                p.decode(&mut state, &wrong, get_tag, true),
                Decoded::Complete { len, matches: false }
            );
            assert_eq!(
                p.decode(&mut state, &wrong, get_tag, false),
                Decoded::Complete { len, matches: true }
            );
        }
    }

    #[test]
    fn an_unacknowledged_set_changes_nothing() {
        let p = proto(0.0);
        let mut state = p.conn_state(0);
        let tag = p.tag(0); // the first SET of slot 0
        let oom = b"-OOM command not allowed\r\n";
        assert_eq!(
            p.decode(&mut state, oom, tag, true),
            Decoded::Complete { len: oom.len(), matches: false }
        );
        assert_eq!(state.last_set[0], NEVER);
        assert_eq!(p.decode(&mut state, b"+OK\r\n", tag, true), Decoded::Complete { len: 5, matches: true });
        assert_eq!(state.last_set[0], 0);
    }

    #[test]
    fn broken_framing_is_malformed() {
        let p = proto(1.0);
        let mut state = p.conn_state(0);
        let tag = p.tag(10);
        for bad in [&b"*1\r\n"[..], b"$x\r\n", b"$70000\r\n", b"$2\r\nabcd", b"\r\n"] {
            assert!(matches!(p.decode(&mut state, bad, tag, true), Decoded::Malformed(_)), "{bad:?}");
        }
        assert!(matches!(p.decode(&mut state, &[b'-'; 5000], tag, true), Decoded::Malformed(_)));
        assert_eq!(p.decode(&mut state, &[b'-'; 4000], tag, true), Decoded::Incomplete);
    }
}
