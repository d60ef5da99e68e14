//! A tiny AFL-style mutator: take a valid request (from a fixed corpus, or freshly generated),
//! and stack a few random edits on it: flip a bit, set a byte, insert or delete a run, repeat
//! a piece many times, splice in another request, drop in a protocol token (`\r\n`,
//! `Content-Length: `, `$`), or replace a number by one on a boundary. Every choice comes from
//! the caller's seeded generator, so the same seed gives the same inputs.

use fastrand::Rng;
use servers::proto::Proto;

use crate::generate::{self, interesting_number, interesting_u32, pick};

/// A mutated input is cut to this length (repeating a piece can grow it fast).
pub const MAX_LEN: usize = 2 << 20;

/// Valid requests and classic edge cases, the corpus the mutator starts from.
pub fn seeds(proto: Proto) -> &'static [&'static [u8]] {
    match proto {
        Proto::EchoLine | Proto::Chat => &[
            b"hello\n",
            b"\n",
            b"a\nbb\n\nccc\n",
            b"xxxxxxxxxxxxxxxx\n",
            b"done\npartial",
            b"line with \r inside\r\n",
            b"* 1 joined\n",
            b"\xff\xfe\0\t\n",
        ],
        Proto::EchoFrame => &[
            b"\0\0\0\x05hello",
            b"\0\0\0\0",
            b"\0\0\0\x01a\0\0\0\0\0\0\0\x03ccc",
            b"\0\0\0\x10xxxxxxxxxxxxxxxx",
            b"\xff\xff\xff\xff",
            b"\x80\0\0\0",
            b"\0\0",
            b"\0\0\0\x03a\nb",
        ],
        Proto::Http => &[
            b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n",
            b"HEAD /?a=b HTTP/1.1\r\nHost: lab\r\n\r\n",
            b"POST /form HTTP/1.1\r\nHost: lab\r\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"GET http://lab/ HTTP/1.1\nHost: lab\n\n\r\nGET /nope HTTP/1.1\r\nhost: lab\r\n\r\n",
            b"PUT /x HTTP/1.1\r\nHost: lab\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody",
            b"GET / HTTP/2.0\r\nHost: lab\r\n\r\n",
        ],
        Proto::Kv => &[
            b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
            b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*3\r\n$3\r\nDEL\r\n$1\r\nn\r\n$3\r\nkey\r\n",
            b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nping\r\n$2\r\nhi\r\n",
            b"*3\r\n$6\r\nEXISTS\r\n$1\r\nk\r\n$1\r\nk\r\n*1\r\n$4\r\nQUIT\r\n",
            b"SET k v\r\nGET k\nINCR 'n'\r\nPING \"hello world\"\r\n",
            b"*0\r\n*-1\r\n\r\n\n",
            b"*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n",
            b"*3\r\n$3\r\nSET\r\n$1\r\nn\r\n$19\r\n9223372036854775807\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n",
            b"*2\r\n$3\r\nGET\r\n$2147483648\r\n",
        ],
    }
}

/// Tokens worth inserting whole: the bytes each parser branches on.
fn dictionary(proto: Proto) -> &'static [&'static [u8]] {
    match proto {
        Proto::EchoLine | Proto::Chat => &[b"\n", b"\r\n", b"\r", b"\0", b"\xff"],
        Proto::EchoFrame => &[b"\0\0\0\0", b"\0\0\0\x01", b"\xff\xff\xff\xff", b"\0\x01\0\0", b"\x80\0\0\0"],
        Proto::Http => &[
            b"\r\n",
            b"\n",
            b"\r\n\r\n",
            b" HTTP/1.1",
            b"HTTP/1.0",
            b"GET / ",
            b"HEAD ",
            b"Host: lab\r\n",
            b"Content-Length: ",
            b"Transfer-Encoding: chunked\r\n",
            b"Connection: close\r\n",
            b"Connection: keep-alive\r\n",
            b": ",
            b"\t",
            b"http://",
            b"?",
            b"0\r\n\r\n",
        ],
        Proto::Kv => &[
            b"\r\n",
            b"*",
            b"$",
            b"*1\r\n",
            b"*2\r\n$3\r\nGET\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"*-1\r\n",
            b"\"",
            b"'",
            b" ",
            b"SET ",
            b"INCR ",
            b"QUIT\r\n",
        ],
    }
}

/// Single bytes a parser is likely to test for.
const INTERESTING_BYTES: &[u8] = b"\r\n\0 \t:*$-+0129\"'/\x7f\x80\xff";

/// A mutated input for `proto`.
pub fn input(proto: Proto, rng: &mut Rng, max_frame: usize) -> Vec<u8> {
    let mut data = base(proto, rng, max_frame);
    let edits = 1 << rng.usize(..=3);
    for _ in 0..rng.usize(1..=edits) {
        edit(proto, rng, max_frame, &mut data);
        data.truncate(MAX_LEN);
    }
    data
}

fn base(proto: Proto, rng: &mut Rng, max_frame: usize) -> Vec<u8> {
    if rng.usize(..3) == 0 {
        generate::stream(proto, rng, max_frame)
    } else {
        pick(rng, seeds(proto)).to_vec()
    }
}

/// A random range of `data`, possibly empty.
fn range(rng: &mut Rng, len: usize) -> (usize, usize) {
    let start = rng.usize(..=len);
    let span =
        if rng.usize(..4) == 0 { rng.usize(..=len - start) } else { rng.usize(..=(len - start).min(8)) };
    (start, start + span)
}

/// One edit.
fn edit(proto: Proto, rng: &mut Rng, max_frame: usize, data: &mut Vec<u8>) {
    let len = data.len();
    match rng.usize(..13) {
        // Flip one bit.
        0 if len > 0 => {
            let at = rng.usize(..len);
            data[at] ^= 1 << rng.u32(..8);
        }
        // Set a byte to a random value, or to one a parser tests for.
        1 if len > 0 => data[rng.usize(..len)] = rng.u8(..),
        2 if len > 0 => data[rng.usize(..len)] = *pick(rng, INTERESTING_BYTES),
        // Insert random bytes.
        3 => {
            let at = rng.usize(..=len);
            let n = rng.usize(1..=8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            data.splice(at..at, bytes);
        }
        // Insert a protocol token.
        4 => {
            let at = rng.usize(..=len);
            data.splice(at..at, pick(rng, dictionary(proto)).iter().copied());
        }
        // Delete a range.
        5 if len > 0 => {
            let (a, b) = range(rng, len);
            data.drain(a..b);
        }
        // Repeat a range: a few times, or (rarely) thousands, to grow past every limit.
        6 if len > 0 => {
            let (a, b) = range(rng, len);
            let times = if rng.usize(..32) == 0 { rng.usize(..=(1 << 16)) } else { rng.usize(1..=8) };
            let piece = data[a..b].to_vec();
            let total = (piece.len() * times).min(MAX_LEN);
            let repeated: Vec<u8> = piece.iter().copied().cycle().take(total).collect();
            data.splice(b..b, repeated);
        }
        // Copy a range over another place.
        7 if len > 1 => {
            let (a, b) = range(rng, len);
            let to = rng.usize(..len);
            let piece = data[a..b].to_vec();
            let end = (to + piece.len()).min(len);
            data[to..end].copy_from_slice(&piece[..end - to]);
        }
        // Splice: this input's head, another input's tail.
        8 => {
            let other = base(proto, rng, max_frame);
            let cut = rng.usize(..=len);
            let from = rng.usize(..=other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        // Replace a number (a run of digits) by one on a boundary.
        9 => {
            let starts: Vec<usize> = (0..len)
                .filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_digit()))
                .collect();
            if starts.is_empty() {
                return edit(proto, rng, max_frame, data);
            }
            let start = *pick(rng, &starts);
            let end = data[start..].iter().position(|b| !b.is_ascii_digit()).map_or(len, |i| start + i);
            data.splice(start..end, interesting_number(rng, max_frame).into_bytes());
        }
        // Overwrite four bytes with a big-endian length on a boundary (a 4 GiB frame header).
        10 if len >= 4 => {
            let at = rng.usize(..=len - 4);
            data[at..at + 4].copy_from_slice(&interesting_u32(rng, max_frame).to_be_bytes());
        }
        // Cut short.
        11 if len > 0 => data.truncate(rng.usize(..len)),
        // Swap two adjacent ranges.
        12 if len > 1 => {
            let at = rng.usize(1..len);
            let (a, b) = (rng.usize(..at), rng.usize(at + 1..=len));
            data[a..b].rotate_left(at - a);
        }
        _ => {
            let at = rng.usize(..=len);
            data.insert(at, *pick(rng, INTERESTING_BYTES));
        }
    }
}
