//! 5: requests larger than any limit: a 16 MiB line, a 4 GB frame header, a 2^31 bulk
//! length, a 1 MB http header. The server must refuse them (from the header where it can) and
//! close the connection, never buffer them.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use super::{Attack, AttackReport, pace};
use crate::abuse::wire::{self, Proto};

/// The oversized request of each protocol and its name in the report.
fn payload(proto: Proto) -> (Vec<u8>, &'static str) {
    match proto {
        Proto::EchoLine => (vec![b'g'; 16 << 20], "a 16 MiB line"),
        Proto::EchoFrame => ([&[0xFF; 4][..], &[b'f'; 65536]].concat(), "a 0xFFFFFFFF frame header"),
        Proto::Kv => ([&b"*1\r\n$2147483648\r\n"[..], &[b'b'; 65536]].concat(), "a $2147483648 bulk length"),
        Proto::Http => {
            let mut v = b"GET / HTTP/1.1\r\nHost: abuse\r\nX-Big: ".to_vec();
            v.extend(std::iter::repeat_n(b'h', 1 << 20));
            v.extend_from_slice(b"\r\n\r\n");
            (v, "a 1 MB http header")
        }
    }
}

/// Sends one oversized request; returns whether the server closed the connection within 3 s
/// of the last byte it took, and the bytes it took.
fn one(a: &Attack, data: &[u8], r: &mut AttackReport) -> Option<bool> {
    let mut s = match wire::connect(a.addr, Duration::from_secs(1)) {
        Ok(s) => s,
        Err(_) => {
            r.count("connect_failed", 1);
            return None;
        }
    };
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    let mut sent = 0;
    let mut closed_while_sending = false;
    for chunk in data.chunks(65536) {
        match s.write(chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(_) => {
                closed_while_sending = true;
                break;
            }
        }
        if !a.in_time() {
            break;
        }
    }
    r.count("bytes_taken", sent as u64);
    if closed_while_sending {
        r.count("closed_while_sending", 1);
        return Some(true);
    }
    let _ = s.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(3);
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => {
                r.count("closed_after", 1);
                return Some(true);
            }
            Ok(n) => r.count("reply_bytes", n as u64),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                r.count("closed_after", 1);
                return Some(true);
            }
        }
    }
    r.count("still_open_after_3s", 1);
    Some(false)
}

/// 5: a few connections at a time, each with one oversized request, until the window is over.
pub fn oversize(a: &Attack) -> AttackReport {
    let (data, name) = payload(a.proto);
    let workers = if a.quick { 2 } else { 8 };
    (a.ready)();
    let reports: Vec<AttackReport> = thread::scope(|scope| {
        let hs: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut r = AttackReport::default();
                    let start = Instant::now();
                    let mut k = 0;
                    while a.running() {
                        // Five a second per worker: the point is the refusal, not throughput.
                        pace(start, k, 5.0);
                        k += 1;
                        match one(a, &data, &mut r) {
                            Some(true) => r.count("refused", 1),
                            Some(false) => {
                                r.check_failed.get_or_insert_with(|| {
                                    format!("{name}: the connection was still open 3 s after the server took what it would")
                                });
                            }
                            None => thread::sleep(Duration::from_millis(50)),
                        }
                    }
                    r
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut r = AttackReport::default();
    for x in reports {
        r.merge(x);
    }
    if r.counters.get("refused").copied().unwrap_or(0) == 0 && r.check_failed.is_none() {
        r.check_failed = Some(format!("{name}: no attempt completed (no connection)"));
    }
    r
}
