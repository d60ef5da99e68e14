//! 11: malformed input, seeded, compared across models. Each case is a few fragments of valid
//! requests, mutated (bytes flipped, inserted, deleted, duplicated; lengths made huge or
//! negative; line ends dropped) or plain random bytes, sent on its own connection and
//! followed by a half-close. The reply is every byte the server sends until it closes. Every
//! model shares the protocol code, so every model must answer every case the same, byte for
//! byte; [`compare`] finds where they do not.
//!
//! A reset counts as a close (which of the two a client sees after an error reply depends on
//! timing, not on the server's answer). Keys are random per case, so cases sent in parallel
//! never touch each other's state.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{Attack, AttackReport};
use crate::abuse::wire::{self, Proto, Rng};

/// Cases per protocol.
pub fn case_count(quick: bool) -> usize {
    if quick { 3000 } else { 100_000 }
}

/// The seed of a protocol's cases: the same for every model.
fn proto_seed(seed: u64, proto: Proto) -> u64 {
    seed ^ (proto as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407)
}

fn templates(proto: Proto, key: &str) -> Vec<Vec<u8>> {
    let k = key.len();
    match proto {
        Proto::EchoLine => vec![
            b"hello\n".to_vec(),
            b"\n".to_vec(),
            b"a\r\n".to_vec(),
            [&[b'L'; 300][..], b"\n"].concat(),
            b"\x00\xff\x7fbinary\n".to_vec(),
            b"no newline".to_vec(),
        ],
        Proto::EchoFrame => vec![
            [&5u32.to_be_bytes()[..], b"hello"].concat(),
            0u32.to_be_bytes().to_vec(),
            [&40u32.to_be_bytes()[..], &[b'F'; 40]].concat(),
            [&65_536u32.to_be_bytes()[..], b"x"].concat(),
            [&65_537u32.to_be_bytes()[..], b"x"].concat(),
            vec![0, 0, 1],
        ],
        Proto::Http => vec![
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            b"GET /nope HTTP/1.1\r\n\r\n".to_vec(),
            b"HEAD / HTTP/1.0\r\n\r\n".to_vec(),
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
            b"GET / HTTP/2.0\r\n\r\n".to_vec(),
        ],
        Proto::Kv => vec![
            b"*1\r\n$4\r\nPING\r\n".to_vec(),
            format!("*3\r\n$3\r\nSET\r\n${k}\r\n{key}\r\n$3\r\nval\r\n").into_bytes(),
            format!("*2\r\n$3\r\nGET\r\n${k}\r\n{key}\r\n").into_bytes(),
            format!("*2\r\n$4\r\nINCR\r\n${k}\r\n{key}\r\n").into_bytes(),
            format!("*2\r\n$3\r\nDEL\r\n${k}\r\n{key}\r\n").into_bytes(),
            format!("*2\r\n$6\r\nEXISTS\r\n${k}\r\n{key}\r\n").into_bytes(),
            format!("GET {key}\r\n").into_bytes(),
            b"PING\r\n".to_vec(),
            b"*1\r\n$7\r\nUNKNOWN\r\n".to_vec(),
            b"*0\r\n".to_vec(),
            b"*-1\r\n".to_vec(),
        ],
    }
}

const NUMBERS: &[&[u8]] =
    &[b"-1", b"0", b"2147483648", b"99999999999999999999", b"4294967296", b"+5", b" 3", b"0x10"];

fn mutate(v: &mut Vec<u8>, rng: &mut Rng) {
    if v.is_empty() {
        v.push(rng.next_u64() as u8);
        return;
    }
    match rng.below(8) {
        0 => {
            let i = rng.below(v.len());
            v[i] = rng.next_u64() as u8;
        }
        1 => {
            let i = rng.below(v.len() + 1);
            let n = 1 + rng.below(4);
            for _ in 0..n {
                v.insert(i, rng.next_u64() as u8);
            }
        }
        2 => {
            let i = rng.below(v.len());
            let n = 1 + rng.below(v.len() - i);
            v.drain(i..i + n.min(8));
        }
        3 => v.truncate(rng.below(v.len())),
        4 => {
            let i = rng.below(v.len());
            let j = i + rng.below(v.len() - i + 1);
            let part = v[i..j].to_vec();
            v.splice(j..j, part);
        }
        5 => {
            // Replace the first run of digits with an edge-case number.
            if let Some(i) = v.iter().position(u8::is_ascii_digit) {
                let j = i + v[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                v.splice(i..j, NUMBERS[rng.below(NUMBERS.len())].iter().copied());
            }
        }
        6 => {
            let ends: [&[u8]; 4] = [b"\r\n", b"\n", b"\r", b"\0"];
            let i = rng.below(v.len() + 1);
            v.splice(i..i, ends[rng.below(4)].iter().copied());
        }
        _ => {
            // Drop a line end.
            if let Some(i) = v.iter().position(|b| *b == b'\n') {
                v.remove(i);
            }
        }
    }
}

/// Case `i` of a protocol for `seed`: always the same bytes.
pub fn case(proto: Proto, seed: u64, i: usize) -> Vec<u8> {
    let mut rng = Rng::new(proto_seed(seed, proto).wrapping_add((i as u64).wrapping_mul(0x9E37_79B9)));
    if rng.chance(8) {
        let n = 1 + rng.below(64);
        return (0..n).map(|_| rng.next_u64() as u8).collect();
    }
    let key = format!("k{:016x}", rng.next_u64());
    let t = templates(proto, &key);
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let mut frag = t[rng.below(t.len())].clone();
        if rng.chance(75) {
            for _ in 0..1 + rng.below(3) {
                mutate(&mut frag, &mut rng);
            }
        }
        out.extend_from_slice(&frag);
    }
    out.truncate(2048);
    out
}

/// How a reply ended, appended after a NUL to its bytes.
const CLOSED: &[u8] = b"\0<closed>";
const TIMEOUT: &[u8] = b"\0<no close within 2 s>";
const NO_CONNECT: &[u8] = b"\0<could not connect>";
const TOO_LONG: &[u8] = b"\0<reply over 64 KiB, cut>";

fn send_case(a: &Attack, data: &[u8]) -> Vec<u8> {
    let mut s = None;
    for _ in 0..3 {
        match wire::connect(a.addr, Duration::from_secs(1)) {
            Ok(c) => {
                s = Some(c);
                break;
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
    let Some(mut s) = s else { return NO_CONNECT.to_vec() };
    let _ = s.write_all(data);
    let _ = s.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(2);
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if Instant::now() >= until {
            reply.extend_from_slice(TIMEOUT);
            return reply;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.len() > 65536 {
                    reply.truncate(65536);
                    reply.extend_from_slice(TOO_LONG);
                    return reply;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    reply.extend_from_slice(CLOSED);
    reply
}

/// 11: every case on its own connection, 8 at a time; the replies go back to the harness.
pub fn malformed(a: &Attack) -> AttackReport {
    let n = case_count(a.quick);
    let replies: Vec<Mutex<Vec<u8>>> = (0..n).map(|_| Mutex::new(Vec::new())).collect();
    let next = AtomicUsize::new(0);
    let timeouts = AtomicU64::new(0);
    (a.ready)();
    thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || !a.in_time() || timeouts.load(Ordering::Relaxed) > 50 {
                        break;
                    }
                    let reply = send_case(a, &case(a.proto, a.seed, i));
                    if reply.ends_with(TIMEOUT) || reply.ends_with(NO_CONNECT) {
                        timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Ok(mut slot) = replies[i].lock() {
                        *slot = reply;
                    }
                }
            });
        }
    });
    let replies: Vec<Vec<u8>> = replies.into_iter().map(|m| m.into_inner().unwrap_or_default()).collect();
    let mut r = AttackReport::default();
    let done = replies.iter().filter(|x| !x.is_empty()).count();
    r.count("cases", done as u64);
    let t = timeouts.load(Ordering::Relaxed);
    r.count("unanswered", t);
    if done < n {
        r.check_failed = Some(format!(
            "only {done} of {n} cases ran ({t} went unanswered or could not connect; the suite stops after 50)"
        ));
    }
    r.replies = Some(replies);
    r
}

/// Printable form of bytes, at most `max` of them.
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut s: String =
        bytes.iter().take(max).flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect();
    if bytes.len() > max {
        s.push_str(&format!("…(+{} bytes)", bytes.len() - max));
    }
    s
}

/// Compares the replies of every model (in the server's order) case by case. The reference
/// for a case is the reply most models gave (ties: the first model's). Returns, per model,
/// a description of where it differs, or `None`.
pub fn compare(proto: Proto, seed: u64, runs: &[(String, Vec<Vec<u8>>)]) -> Vec<Option<String>> {
    let n = runs.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    let mut differs = vec![0usize; runs.len()];
    let mut example: Vec<Option<String>> = vec![None; runs.len()];
    for i in 0..n {
        let replies: Vec<Option<&Vec<u8>>> =
            runs.iter().map(|(_, r)| r.get(i).filter(|x| !x.is_empty())).collect();
        let mut best: Option<(&Vec<u8>, usize)> = None;
        for r in replies.iter().flatten() {
            let votes = replies.iter().flatten().filter(|o| *o == r).count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((r, votes));
            }
        }
        let Some((reference, _)) = best else { continue };
        for (m, r) in replies.iter().enumerate() {
            if let Some(r) = r
                && *r != reference
            {
                differs[m] += 1;
                if example[m].is_none() {
                    let input = case(proto, seed, i);
                    example[m] = Some(format!(
                        "case {i} `{}`: this model answered `{}`, most models `{}`",
                        escape(&input, 80),
                        escape(r, 120),
                        escape(reference, 120)
                    ));
                }
            }
        }
    }
    differs
        .into_iter()
        .zip(example)
        .map(|(d, ex)| ex.map(|e| format!("answers {d} of {n} cases unlike most models; first: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_seeded_and_varied() {
        for p in [Proto::EchoLine, Proto::EchoFrame, Proto::Http, Proto::Kv] {
            assert_eq!(case(p, 1, 42), case(p, 1, 42));
            let distinct: std::collections::HashSet<Vec<u8>> = (0..200).map(|i| case(p, 1, i)).collect();
            assert!(distinct.len() > 150, "{p:?}: {}", distinct.len());
        }
    }

    #[test]
    fn the_odd_model_out_is_named() {
        let same = vec![b"a".to_vec(), b"b".to_vec()];
        let odd = vec![b"a".to_vec(), b"x".to_vec()];
        let runs = vec![("m1".to_owned(), same.clone()), ("m2".to_owned(), odd), ("m3".to_owned(), same)];
        let out = compare(Proto::EchoLine, 1, &runs);
        assert!(out[0].is_none() && out[2].is_none());
        let why = out[1].as_deref().unwrap();
        assert!(why.starts_with("answers 1 of 2 cases") && why.contains("case 1"), "{why}");
    }
}
