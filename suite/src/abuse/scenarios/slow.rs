//! Clients that are slow on purpose: slowloris (a request that never completes), idle
//! connections, a reader that never reads, and kv reply amplification.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use super::{Attack, AttackReport};
use crate::abuse::wire::{self, Proto};

fn open(a: &Attack, n: usize, r: &mut AttackReport) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        if !a.running() {
            break;
        }
        match wire::connect(a.addr, Duration::from_millis(500)) {
            Ok(s) => conns.push(s),
            Err(_) => r.count("connect_failed", 1),
        }
    }
    r.count("opened", conns.len() as u64);
    conns
}

fn hold(a: &Attack) {
    while a.running() {
        thread::sleep(Duration::from_millis(20));
    }
}

fn closed_count(conns: &[TcpStream]) -> u64 {
    conns.iter().filter(|s| wire::peer_closed(s)).count() as u64
}

/// 1: every connection sends a start of a request, then one byte a second, never the end.
pub fn slowloris(a: &Attack) -> AttackReport {
    let mut r = AttackReport::default();
    let n = if a.quick { 50 } else { 200 };
    let mut conns = open(a, n, &mut r);
    let start: &[u8] = match a.proto {
        Proto::Http => b"GET / HTTP/1.1\r\nHost: abuse\r\nX-Slow: ",
        Proto::Kv => b"*2\r\n$3\r\nGET\r\n$100\r\n",
        Proto::EchoFrame => &[0, 0, 0, 100],
        Proto::EchoLine => b"slow",
    };
    let mut alive = vec![true; conns.len()];
    for (s, ok) in conns.iter_mut().zip(&mut alive) {
        *ok = s.write_all(start).is_ok();
    }
    (a.ready)();
    // 20 ticks a second, a twentieth of the connections each tick: one byte per connection per second.
    let mut tick = 0usize;
    while a.running() {
        for (i, (s, ok)) in conns.iter_mut().zip(&mut alive).enumerate() {
            if *ok && i % 20 == tick % 20 {
                match s.write(b"a") {
                    Ok(n) => r.count("bytes", n as u64),
                    Err(_) => *ok = false,
                }
            }
        }
        tick += 1;
        thread::sleep(Duration::from_millis(50));
    }
    let closed = alive.iter().filter(|ok| !**ok).count() as u64;
    r.count("closed_by_server", closed.max(closed_count(&conns)));
    r
}

/// 2: connections that send nothing.
pub fn idle(a: &Attack) -> AttackReport {
    let mut r = AttackReport::default();
    let n = if a.quick { 100 } else { 500 };
    let conns = open(a, n, &mut r);
    (a.ready)();
    hold(a);
    r.count("closed_by_server", closed_count(&conns));
    r
}

/// Writes as much of `pattern` (repeated) as the socket takes without blocking.
fn fill(s: &mut TcpStream, pattern: &[u8], r: &mut AttackReport) -> bool {
    loop {
        match s.write(pattern) {
            Ok(0) => return false,
            Ok(n) => r.count("bytes_sent", n as u64),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// 3: pipelines requests as fast as the socket takes them, never reads.
pub fn slow_reader(a: &Attack) -> AttackReport {
    let mut r = AttackReport::default();
    let n = if a.quick { 4 } else { 16 };
    let mut conns = open(a, n, &mut r);
    let pattern: Vec<u8> = match a.proto {
        Proto::Http => b"GET / HTTP/1.1\r\nHost: abuse\r\n\r\n".repeat(64),
        Proto::Kv => b"*1\r\n$4\r\nPING\r\n".repeat(128),
        Proto::EchoFrame => [&1024u32.to_be_bytes()[..], &[b'r'; 1024]].concat(),
        Proto::EchoLine => [&[b'r'; 1023][..], b"\n"].concat(),
    };
    let mut alive: Vec<bool> = conns.iter().map(|s| s.set_nonblocking(true).is_ok()).collect();
    let mut first = true;
    while a.running() {
        for (s, ok) in conns.iter_mut().zip(&mut alive) {
            if *ok {
                *ok = fill(s, &pattern, &mut r);
            }
        }
        if first {
            (a.ready)();
            first = false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    for s in &conns {
        let _ = s.set_nonblocking(false);
    }
    r.count("closed_by_server", alive.iter().filter(|ok| !**ok).count() as u64);
    r
}

/// 4: `SET k` to 64 KiB, then connections that each send 2,000 inline `GET k` in one write and
/// never read.
pub fn amplification(a: &Attack) -> AttackReport {
    let mut r = AttackReport::default();
    let value = vec![b'v'; 65536];
    let mut set = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    match wire::connect(a.addr, Duration::from_secs(2)) {
        Ok(mut s) => {
            if s.write_all(&set).is_err() || wire::read_expected(&mut s, b"+OK\r\n") != wire::Got::Intact {
                r.check_failed = Some("SET k (64 KiB) was not answered +OK".into());
            }
        }
        Err(e) => r.check_failed = Some(format!("could not connect to SET k: {e}")),
    }
    let n = if a.quick { 4 } else { 16 };
    let mut conns = open(a, n, &mut r);
    let gets = b"GET k\r\n".repeat(2000);
    for s in &mut conns {
        match s.write_all(&gets) {
            Ok(()) => r.count("gets_sent", 2000),
            Err(_) => r.count("write_failed", 1),
        }
    }
    (a.ready)();
    hold(a);
    r.count("closed_by_server", closed_count(&conns));
    r
}
