//! The defences of issue #12, each promise written once and run for every model: the request,
//! idle and write timeouts end the connections that hold a server without using it, and
//! `--max-conns` refuses one connection too many in its protocol's own words.
//!
//! Timeouts here are a few hundred milliseconds, and every bound a test waits for is many times
//! that, so a slow machine makes a test slower, never wrong. Where a model cannot keep a promise
//! by design (`blocking` never holds two connections, so it never meets a cap), its case says so.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use servers::conn::deadline::Timeouts;
use servers::{Model, Proto, ServerConfig};
use support::*;

const SHORT: Duration = Duration::from_millis(300);
/// However slow the machine, a timed-out connection is closed within this.
const WITHIN: Duration = Duration::from_secs(10);

fn config(proto: Proto, timeouts: Timeouts) -> ServerConfig {
    let mut config = ServerConfig::new(proto);
    config.threads = 8; // see conformance.rs: a one-worker pool would be the blocking lesson
    config.timeouts = timeouts;
    config
}

/// Wait for the server to close `client`: end-of-file, or a reset. Returns how long it took.
fn closed_by_server(client: &mut TcpStream) -> Duration {
    let start = Instant::now();
    client.set_read_timeout(Some(WITHIN)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match client.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("the server did not close the connection within {WITHIN:?}: {e}"),
        }
    }
}

/// A slowloris: part of a line, then one more byte every 50 ms, never the newline. The request
/// timeout ends it, counted from its first byte: the trickle restarts nothing.
pub fn a_slowloris_is_closed_after_the_request_timeout(model: Model) {
    let server = TestServer::with_config(
        model,
        config(Proto::EchoLine, Timeouts { request: Some(SHORT), ..Timeouts::OFF }),
    );
    let mut client = server.connect();
    let mut trickle = client.try_clone().unwrap();
    let started = Instant::now();
    let writer = thread::spawn(move || {
        let _ = trickle.write_all(b"GET / HT");
        while started.elapsed() < WITHIN {
            if trickle.write_all(b"x").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(50)); // the attack's pace, not a synchronisation
        }
    });
    closed_by_server(&mut client);
    let lived = started.elapsed();
    assert!(
        lived >= SHORT - Duration::from_millis(50),
        "{model}: closed after {lived:?}, before the timeout"
    );
    let _ = client.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
}

/// A client that sends one request and then nothing is closed after the idle timeout.
pub fn an_idle_client_is_closed_after_the_idle_timeout(model: Model) {
    let server = TestServer::with_config(
        model,
        config(Proto::EchoLine, Timeouts { idle: Some(SHORT), ..Timeouts::OFF }),
    );
    let mut client = server.connect();
    round_trip(&mut client, Proto::EchoLine, b"hello");
    let idle = closed_by_server(&mut client);
    assert!(
        idle >= SHORT - Duration::from_millis(50),
        "{model}: closed after {idle:?} idle, before the timeout"
    );
}

/// A client that keeps making progress is never cut off, however long it stays: each request
/// arrives in two halves 50 ms apart, for several times both timeouts.
pub fn a_steady_client_outlives_the_timeouts(model: Model) {
    let timeouts = Timeouts {
        request: Some(Duration::from_secs(1)),
        idle: Some(Duration::from_secs(1)),
        write: Some(Duration::from_secs(1)),
    };
    let server = TestServer::with_config(model, config(Proto::EchoLine, timeouts));
    let mut client = server.connect();
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < Duration::from_millis(3500) {
        client.write_all(b"first half, ").unwrap();
        thread::sleep(Duration::from_millis(50)); // pacing: the client is slow, not silent
        client.write_all(b"second half\n").unwrap();
        let reply = read_reply(&mut client, b"first half, second half\n".len()).unwrap_or_else(|e| {
            panic!("{model}: cut off after {requests} requests and {:?}: {e}", started.elapsed())
        });
        assert_eq!(reply, b"first half, second half\n");
        requests += 1;
    }
}

/// A client that pipelines requests and reads none of the replies is dropped once the server
/// has waited the write timeout for it to read; then its place goes to a new client.
pub fn a_peer_that_reads_nothing_is_dropped_after_the_write_timeout(model: Model) {
    let mut config = config(Proto::EchoLine, Timeouts { write: Some(SHORT), ..Timeouts::OFF });
    config.max_conns = 1;
    let server = TestServer::with_config(model, config);
    let mut flooder = server.connect();
    // Write until the server stops taking requests (its replies fill both socket buffers).
    flooder.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let line = [vec![b'p'; 1023], vec![b'\n']].concat();
    let started = Instant::now();
    while started.elapsed() < WITHIN && flooder.write_all(&line).is_ok() {}
    // The flooder still holds the only place: a new client is served only once it is dropped.
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut next = server.connect();
        next.write_all(b"after\n").unwrap();
        let mut reply = [0u8; 6];
        match next.read_exact(&mut reply) {
            Ok(()) if &reply == b"after\n" => break,
            // Refused while the flooder held its place ("ERR server is at its connection limit").
            Ok(()) | Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            other => panic!("{model}: the non-reading peer was never dropped: {other:?} {reply:?}"),
        }
    }
}

/// Two clients are served; a third, beyond `--max-conns 2`, gets the protocol's refusal and
/// end-of-file; once one of the two leaves, a new client is served again.
pub fn one_connection_beyond_max_conns_is_refused_in_its_protocols_words(model: Model) {
    for (proto, request, reply) in [
        (Proto::EchoLine, &b"hi\n"[..], &b"hi\n"[..]),
        (Proto::Http, b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n", b"HTTP/1.1 200 OK"),
        (Proto::Kv, b"PING\r\n", b"+PONG\r\n"),
    ] {
        let mut config = config(proto, Timeouts::OFF);
        if model.check(&config).is_err() {
            continue; // a protocol this model refuses: its own tests assert that
        }
        config.max_conns = 2;
        let server = TestServer::with_config(model, config);
        let exchange = |client: &mut TcpStream| {
            client.write_all(request).unwrap();
            let got = read_reply(client, reply.len()).unwrap();
            assert_eq!(got, reply, "{model} {proto}");
        };
        let (mut a, mut b) = (server.connect(), server.connect());
        exchange(&mut a);
        if model == Model::Blocking {
            // One client at a time: the second waits in the listen backlog, unserved, so the
            // server never holds two and the cap never bites. That is the model's lesson.
            assert!(nothing_arrives_within(&mut b, SHORT), "{model}: served two clients at once");
            return;
        }
        exchange(&mut b);
        let mut third = server.connect();
        let said = read_to_eof(&mut third);
        assert_eq!(
            String::from_utf8_lossy(&said),
            String::from_utf8_lossy(proto.refusal_at_capacity()),
            "{model} {proto}"
        );
        drop(a);
        let deadline = Instant::now() + WITHIN;
        loop {
            let mut next = server.connect();
            if next.write_all(request).is_ok()
                && read_reply(&mut next, reply.len()).is_ok_and(|got| got == reply)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{model} {proto}: the place of a client that left was never given back"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

macro_rules! defence_tests {
    ($(#[doc = $about:literal] $module:ident => $variant:ident $(+ $check:ident)?,)*) => {
        $(mod $module {
            crate::cases!(
                [super],
                (servers::Model::$variant),
                a_slowloris_is_closed_after_the_request_timeout,
                an_idle_client_is_closed_after_the_idle_timeout,
                a_steady_client_outlives_the_timeouts,
                a_peer_that_reads_nothing_is_dropped_after_the_write_timeout,
                one_connection_beyond_max_conns_is_refused_in_its_protocols_words,
            );
        })*
    };
}

servers::for_each_model!(defence_tests);
