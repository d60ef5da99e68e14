//! `--conn-per-request` against servers started in the test: one connection per request, exact
//! counts from a correct server, and each way a connection can end badly counted without
//! ending the client that had it.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::time::Duration;

use loadgen::{ProtocolKind, RunConfig, SizeSpec};
use support::{Behaviour, loadgen_binary, start};

fn quick(addr: SocketAddr, proto: ProtocolKind) -> RunConfig {
    let mut cfg = RunConfig::new(addr, proto);
    cfg.conn_per_request = true;
    cfg.conns = 4;
    cfg.threads = 2;
    cfg.warmup = Duration::from_millis(200);
    cfg.duration = Duration::from_millis(700);
    if proto != ProtocolKind::Http {
        cfg.size = SizeSpec { min: 1, max: 300 };
    }
    cfg.timeout = Duration::from_secs(5);
    cfg
}

/// Every reply the server sent is counted once, every request had a connection of its own,
/// and the server saw exactly one more connection than requests: loadgen's first, which only
/// checks that something listens.
fn exact_counts(proto: ProtocolKind) {
    let server = start(proto, Behaviour::Correct);
    let report = loadgen::run(&quick(server.addr, proto)).expect("the run starts");
    let c = report.counts;
    assert!(report.is_clean(), "{proto}: {c:?} {:?}", report.first_error);
    assert!(c.requests > 0);
    let churn = report.churn.expect("a --conn-per-request report says how the connections went");
    assert_eq!(churn.connects.opened, c.requests, "one new connection per measured request");
    assert_eq!(churn.server_closes, proto == ProtocolKind::Http);
    let served = server.stats.replies.load(Ordering::SeqCst);
    assert_eq!(c.requests + c.warmup_requests, served, "every reply the server sent is counted once");
    let accepted = server.stats.connections.load(Ordering::SeqCst);
    assert_eq!(
        accepted,
        served + 1,
        "a connection per request, and the first one to see that the server is there"
    );
    assert_eq!(report.service_time.len(), c.requests);
    let rate = report.connect_rate().unwrap();
    assert!((rate - report.achieved_rate()).abs() < 1e-9, "{rate} conn/s");
}

#[test]
fn echo_line_gives_exact_counts() {
    exact_counts(ProtocolKind::EchoLine);
}

#[test]
fn echo_frame_gives_exact_counts() {
    exact_counts(ProtocolKind::EchoFrame);
}

#[test]
fn http_asks_for_the_close_and_gives_exact_counts() {
    exact_counts(ProtocolKind::Http);
}

/// A server that closes every connection before replying: each one is an unexpected EOF, and
/// the client goes on with a new connection each time.
#[test]
fn a_server_that_closes_before_replying_is_counted_each_time() {
    let server = start(ProtocolKind::EchoLine, Behaviour::CloseAfter(0));
    let mut cfg = quick(server.addr, ProtocolKind::EchoLine);
    cfg.warmup = Duration::ZERO;
    let report = loadgen::run(&cfg).expect("the run starts");
    let c = report.counts;
    assert_eq!(c.requests, 0);
    assert!(c.unexpected_eof > cfg.conns as u64, "the clients reopened after each failure: {c:?}");
    assert!(!report.is_clean());
    assert!(report.first_error.unwrap().contains("closed by the server before its reply"));
}

/// An HTTP server that answers but ignores `Connection: close`: the client waits for the close
/// it asked for, then counts a timeout and says why.
#[test]
fn an_http_server_that_does_not_close_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if line == "\r\n" {
                        let _ = stream.write_all(support::HTTP_HELLO);
                    }
                    line.clear();
                }
            });
        }
    });
    let mut cfg = quick(addr, ProtocolKind::Http);
    cfg.conns = 2;
    cfg.threads = 1;
    cfg.warmup = Duration::ZERO;
    cfg.duration = Duration::from_millis(300);
    cfg.timeout = Duration::from_millis(200);
    let report = loadgen::run(&cfg).expect("the run starts");
    assert!(report.counts.timeouts >= 2, "{:?}", report.counts);
    assert!(report.counts.requests >= 2, "the replies themselves were fine: {:?}", report.counts);
    let first = report.first_error.unwrap();
    assert!(first.contains("did not close within 200ms of a `Connection: close` reply"), "{first}");
}

/// A server that stops listening part-way: the connects after that are refused, counted by
/// cause and in `connect_errors`, and the run still ends on time with what it measured.
#[test]
fn connects_refused_part_way_are_counted_by_cause() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        // Serve 100 connections one after another, then stop listening.
        for stream in listener.incoming().take(100) {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                let _ = (&stream).write_all(&line);
            }
        }
    });
    let mut cfg = quick(addr, ProtocolKind::EchoLine);
    cfg.conns = 2;
    cfg.threads = 1;
    cfg.warmup = Duration::ZERO;
    cfg.duration = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let report = loadgen::run(&cfg).expect("the run starts");
    assert!(started.elapsed() < Duration::from_secs(3), "paused between refused connects, never stuck");
    let c = report.counts;
    let connects = report.churn.unwrap().connects;
    assert!(c.requests > 0 && c.requests <= 99, "{c:?}");
    assert!(connects.refused > 0, "{connects:?}");
    // Refused connects wait 10 ms before the next try: tens per client, not thousands.
    assert!(connects.refused < 200, "{connects:?}");
    assert_eq!(
        c.connect_errors,
        connects.refused + connects.timed_out + connects.no_local_port + connects.other
    );
    assert!(report.first_error.unwrap().contains("failed: Connection refused"));
}

#[test]
fn the_cli_documents_the_flag_and_refuses_what_does_not_fit() {
    let help = loadgen_binary(&["run", "--help"], Duration::from_secs(10));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--conn-per-request"), "{text}");
    assert!(text.contains("Connection: close"), "{text}");
    for (extra, why) in
        [(&["--depth", "2"][..], "--depth must be 1"), (&["--rate", "100"][..], "leave out --rate")]
    {
        let mut args = vec!["run", "--addr", "127.0.0.1:9", "--proto", "echo-line", "--conn-per-request"];
        args.extend(extra);
        let out = loadgen_binary(&args, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = loadgen_binary(
        &["run", "--addr", "127.0.0.1:9", "--proto", "kv", "--conn-per-request"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_cli_prints_connections_per_second_and_the_json_has_them() {
    let server = start(ProtocolKind::EchoLine, Behaviour::Correct);
    let dir = std::env::temp_dir().join(format!("loadgen-cpr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("run.json");
    let addr = server.addr.to_string();
    let out = loadgen_binary(
        &[
            "run",
            "--addr",
            &addr,
            "--proto",
            "echo-line",
            "--conns",
            "2",
            "--conn-per-request",
            "--warmup",
            "100ms",
            "--duration",
            "300ms",
            "--json",
            json.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("conn/s, one request each; loadgen closes first"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["settings"]["conn_per_request"], true);
    assert_eq!(doc["conn_per_request"]["opened"], doc["counts"]["requests"]);
    assert!(doc["conn_per_request"]["per_second"].as_f64().unwrap() > 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}
