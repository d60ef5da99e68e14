//! Many connections: descriptor exhaustion, resets mid-response, churn, abandoned requests and
//! a flood.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{Attack, AttackReport, pace};
use crate::abuse::wire::{self, Got, Proto};

/// Runs `f` on `n` threads and merges their reports.
fn on_threads(n: usize, f: impl Fn(usize) -> AttackReport + Sync) -> AttackReport {
    let reports: Vec<AttackReport> = thread::scope(|scope| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let f = &f;
                scope.spawn(move || f(i))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut r = AttackReport::default();
    for x in reports {
        r.merge(x);
    }
    r
}

fn hold(a: &Attack) {
    while a.running() {
        thread::sleep(Duration::from_millis(20));
    }
}

/// How many of `conns` got anything back (a reply or a refusal) or were closed.
fn answered_or_closed(conns: &[TcpStream], r: &mut AttackReport) {
    let mut b = [0u8; 512];
    for s in conns {
        if s.set_nonblocking(true).is_err() {
            continue;
        }
        match (&*s).read(&mut b) {
            Ok(0) => r.count("closed_by_server", 1),
            Ok(n)
                if b[..n].starts_with(b"ERR")
                    || b[..n].starts_with(b"-ERR")
                    || b[..n].starts_with(b"HTTP/1.1 503") =>
            {
                r.count("refused", 1)
            }
            Ok(_) => r.count("answered", 1),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => r.count("waiting", 1),
            Err(_) => r.count("closed_by_server", 1),
        }
    }
}

/// 6: opens connections well past the server's 256 descriptors and holds them.
pub fn fd_exhaustion(a: &Attack) -> AttackReport {
    let mut r = AttackReport::default();
    let n = if a.quick { 300 } else { 400 };
    let (req, _) = wire::hello(a.proto);
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        if !a.running() {
            break;
        }
        match wire::connect(a.addr, Duration::from_millis(300)) {
            Ok(mut s) => {
                let _ = s.write_all(&req);
                conns.push(s);
            }
            Err(_) => r.count("connect_failed", 1),
        }
    }
    r.count("opened", conns.len() as u64);
    (a.ready)();
    hold(a);
    answered_or_closed(&conns, &mut r);
    r
}

/// The request whose reply is large, for [`resets`].
fn big_request(proto: Proto) -> Vec<u8> {
    match proto {
        Proto::EchoLine => [&[b'x'; 60_000][..], b"\n"].concat(),
        Proto::EchoFrame => [&60_000u32.to_be_bytes()[..], &[b'x'; 60_000]].concat(),
        Proto::Http => b"GET / HTTP/1.1\r\nHost: abuse\r\n\r\n".repeat(500),
        Proto::Kv => b"*1\r\n$4\r\nPING\r\n".repeat(5000),
    }
}

/// 7: asks for a large reply, reads a little of it, then resets the connection.
pub fn resets(a: &Attack) -> AttackReport {
    let req = big_request(a.proto);
    (a.ready)();
    let start = Instant::now();
    on_threads(4, |_| {
        let mut r = AttackReport::default();
        let mut b = [0u8; 100];
        let mut k = 0;
        while a.running() {
            pace(start, k, 100.0);
            k += 1;
            if !a.running() {
                break;
            }
            let Ok(mut s) = wire::connect(a.addr, Duration::from_millis(500)) else {
                r.count("connect_failed", 1);
                thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = s.write_all(&req);
            let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
            let _ = s.read(&mut b);
            let _ = wire::linger_zero(&s);
            drop(s);
            r.count("resets", 1);
        }
        r
    })
}

/// 8: connect, one request, check the reply, close; 4 at a time.
pub fn churn(a: &Attack) -> AttackReport {
    let total = if a.quick { 1000 } else { 5000 };
    let next = AtomicU64::new(0);
    let (req, want) = wire::hello(a.proto);
    let rate = total as f64 / a.window.as_secs_f64();
    let start = Instant::now();
    (a.ready)();
    let mut r = on_threads(4, |_| {
        let mut r = AttackReport::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= total || !a.in_time() {
                break;
            }
            pace(start, i, rate);
            let Ok(mut s) = wire::connect(a.addr, Duration::from_secs(2)) else {
                r.count("connect_failed", 1);
                continue;
            };
            if s.write_all(&req).is_err() {
                r.lost += 1;
                continue;
            }
            match wire::read_expected(&mut s, &want) {
                Got::Intact => r.count("served", 1),
                Got::Corrupted => r.corrupted += 1,
                Got::Nothing | Got::TimedOut => r.lost += 1,
            }
        }
        r
    });
    let done = r.counters.get("served").copied().unwrap_or(0) + r.lost + r.corrupted;
    let failed = r.counters.get("connect_failed").copied().unwrap_or(0);
    if failed > 0 {
        r.check_failed = Some(format!("{failed} of {total} connections could not be made"));
    } else if done < total {
        r.check_failed = Some(format!("only {done} of {total} connections were made in time"));
    }
    r
}

/// 9: connect, send, close without reading.
pub fn abandoned(a: &Attack) -> AttackReport {
    let (req, _) = wire::hello(a.proto);
    let start = Instant::now();
    (a.ready)();
    on_threads(4, |_| {
        let mut r = AttackReport::default();
        let mut k = 0;
        while a.running() {
            pace(start, k, 125.0);
            k += 1;
            let Ok(mut s) = wire::connect(a.addr, Duration::from_millis(500)) else {
                r.count("connect_failed", 1);
                thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = s.write_all(&req);
            drop(s);
            r.count("abandoned", 1);
        }
        r
    })
}

/// New connections a second in [`flood`]: 10,000 arrive in 2.5 s.
const FLOOD_RATE: f64 = 4000.0;

/// 10: many connections opened by 8 threads at [`FLOOD_RATE`] and held, silent: what arriving
/// costs the clients already connected (accepting, registering, a thread or a process each).
///
/// Two choices keep the probe's p99 about the server. The connections send nothing: with a
/// request on each, the flood is a burst of real work, which delays every client of a one-CPU
/// server whatever its model (2,000 requests measured 10-80 ms of probe p99 on every model that
/// serves them); churn and the slow scenarios cover requests. And they arrive at a set rate,
/// not as fast as the threads can: on loopback the kernel's handshake work for both ends runs
/// on the connecting CPU, the probe's, so an unpaced flood measured the attacker (the `blocking`
/// server, which accepts none of them, saw its probe's p99 rise to 8 ms).
pub fn flood(a: &Attack) -> AttackReport {
    let total = if a.quick { 2000 } else { 10_000 };
    let per = total / 8;
    let start = Instant::now();
    let opened = AtomicU64::new(0);
    let held: Vec<(Vec<TcpStream>, AttackReport)> = thread::scope(|scope| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut r = AttackReport::default();
                    let mut conns = Vec::with_capacity(per);
                    for k in 0..per {
                        pace(start, k as u64, FLOOD_RATE / 8.0);
                        if !a.running() {
                            break;
                        }
                        match wire::connect(a.addr, Duration::from_millis(500)) {
                            Ok(s) => {
                                conns.push(s);
                                opened.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => r.count("connect_failed", 1),
                        }
                    }
                    (conns, r)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    (a.ready)();
    let mut r = AttackReport::default();
    r.count("opened", opened.load(Ordering::Relaxed));
    hold(a);
    for (conns, x) in held {
        answered_or_closed(&conns, &mut r);
        r.merge(x);
    }
    r
}
