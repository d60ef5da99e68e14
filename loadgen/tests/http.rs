//! loadgen's `http` protocol against small HTTP servers started in the test: exact counts from
//! a correct one, and each kind of wrong reply counted as what it is (a mismatch when the
//! framing holds, malformed when it does not).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use loadgen::{Pacing, ProtocolKind, RunConfig};
use support::{Behaviour, loadgen_binary, start};

fn quick(addr: SocketAddr) -> RunConfig {
    let mut cfg = RunConfig::new(addr, ProtocolKind::Http);
    cfg.conns = 4;
    cfg.threads = 2;
    cfg.warmup = Duration::from_millis(200);
    cfg.duration = Duration::from_millis(700);
    cfg.timeout = Duration::from_secs(5);
    cfg
}

/// Against a correct server, closed and open loop, with and without pipelining: no errors, and
/// loadgen counts exactly the replies the server sent.
#[test]
fn a_correct_server_gives_exact_counts() {
    for (depth, rate) in [(1, None), (8, None), (1, Some(2000.0)), (8, Some(2000.0))] {
        let server = start(ProtocolKind::Http, Behaviour::Correct);
        let mut cfg = quick(server.addr);
        cfg.depth = depth;
        if let Some(rate) = rate {
            cfg.pacing = Pacing::Open { rate };
        }
        let report = loadgen::run(&cfg).expect("the run starts");
        let c = report.counts;
        assert!(report.is_clean(), "depth {depth}, rate {rate:?}: {c:?} {:?}", report.first_error);
        assert!(c.requests > 0);
        let served = server.stats.replies.load(Ordering::SeqCst);
        assert_eq!(c.requests + c.warmup_requests, served, "every reply the server sent is counted once");
        assert_eq!(report.service_time.len(), c.requests);
    }
}

#[test]
fn a_corrupted_body_is_a_mismatch() {
    let server = start(ProtocolKind::Http, Behaviour::CorruptEvery(100));
    let mut cfg = quick(server.addr);
    cfg.warmup = Duration::ZERO;
    let report = loadgen::run(&cfg).expect("the run starts");
    let corrupted = server.stats.corrupted.load(Ordering::SeqCst);
    assert!(corrupted >= 1);
    assert_eq!(report.counts.mismatches, corrupted, "every corrupted reply caught");
    assert_eq!(report.counts.malformed + report.counts.unexpected_eof, 0, "the framing survived");
}

#[test]
fn a_server_that_closes_mid_run_is_reported() {
    let server = start(ProtocolKind::Http, Behaviour::CloseAfter(50));
    let report = loadgen::run(&quick(server.addr)).expect("the run starts");
    let c = report.counts;
    assert_eq!(c.unexpected_eof + c.short_reads + c.resets, 4, "{c:?}");
    assert!(!report.is_clean());
}

/// A server that answers every request head with the same `reply`, after checking the request
/// is exactly what loadgen promises to send (anything else gets no reply and a close). Returns
/// its address and how many requests it answered.
fn fixed_reply_server(reply: &'static [u8]) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    let addr = listener.local_addr().expect("read the bound address");
    let expected = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let answered = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&answered);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (expected, count) = (expected.clone(), Arc::clone(&count));
            std::thread::spawn(move || {
                let Ok(read_half) = stream.try_clone() else { return };
                let mut reader = BufReader::new(read_half);
                let mut head = Vec::new();
                loop {
                    head.clear();
                    while !head.ends_with(b"\r\n\r\n") {
                        match reader.read_until(b'\n', &mut head) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                    if head != expected {
                        return;
                    }
                    // Counted before the write: once loadgen has the reply it may finish and
                    // read the count before this thread gets to run again.
                    count.fetch_add(1, Ordering::SeqCst);
                    if stream.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, answered)
}

fn run_against(reply: &'static [u8]) -> (loadgen::RunReport, u64) {
    let (addr, answered) = fixed_reply_server(reply);
    let mut cfg = quick(addr);
    cfg.conns = 2;
    cfg.threads = 1;
    cfg.warmup = Duration::ZERO; // mismatches are counted in the measured phase only
    let report = loadgen::run(&cfg).expect("the run starts");
    (report, answered.load(Ordering::SeqCst))
}

#[test]
fn a_well_framed_reply_that_is_not_200_hello_is_a_mismatch() {
    for reply in [
        &b"HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\nHello, world!"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nHello, world!\n",
        b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
    ] {
        let (report, answered) = run_against(reply);
        let c = report.counts;
        assert!(c.requests > 0, "{c:?}");
        assert_eq!(c.mismatches, c.requests, "every reply is wrong: {c:?}");
        assert_eq!(c.mismatches, answered, "and counted once");
        assert_eq!(c.malformed, 0, "{c:?}");
    }
}

#[test]
fn bad_framing_is_malformed_and_drops_the_connection() {
    for reply in [
        &b"HTTP/1.1 200 OK\r\n\r\nHello, world!"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\nHello, world!\r\n0\r\n\r\n",
        b"ICY 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!",
    ] {
        let (report, _) = run_against(reply);
        let c = report.counts;
        assert_eq!(c.malformed, 2, "both connections dropped: {c:?}");
        assert!(!report.is_clean());
        assert!(report.first_error.is_some());
    }
}

#[test]
fn the_cli_speaks_http_and_refuses_size() {
    let server = start(ProtocolKind::Http, Behaviour::Correct);
    let addr = server.addr.to_string();
    let args =
        ["run", "--addr", &addr, "--proto", "http", "--conns", "2", "--warmup", "0", "--duration", "300ms"];
    let out = loadgen_binary(&args, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("loadgen: http to") && stdout.contains(", GET /,"), "{stdout}");
    assert!(stdout.contains("errors      none"), "{stdout}");

    let out = loadgen_binary(&[&args[..], &["--size", "64"]].concat(), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--size has no meaning for --proto http"), "{stderr}");
}
