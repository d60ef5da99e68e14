//! The `thread-pool` model's own lessons: what a bounded pool does when clients hold workers,
//! and what it does when its queue is full.

mod support;

use std::io::Write;
use std::time::Duration;

use servers::{Model, Proto, ServerConfig};
use support::*;

fn pool(threads: usize, queue: usize) -> TestServer {
    let mut config = ServerConfig::new(Proto::EchoLine);
    config.threads = threads;
    config.queue = queue;
    TestServer::with_config(Model::ThreadPool, config)
}

/// Two idle clients occupy both workers of a two-thread pool: a third client is accepted, but
/// waits in the queue unanswered until one of the idle ones leaves.
#[test]
fn idle_clients_can_occupy_every_worker() {
    let server = pool(2, 8);
    let mut idle: Vec<_> = (0..2).map(|_| server.connect()).collect();
    // A worker picks up each idle client; prove it by a round trip on each, then go quiet.
    for c in &mut idle {
        round_trip(c, Proto::EchoLine, b"I will now sit here");
    }
    let mut third = server.connect();
    third.write_all(b"anyone?\n").unwrap();
    assert!(
        nothing_arrives_within(&mut third, Duration::from_millis(500)),
        "both workers are held by idle clients, so nobody reads the third"
    );
    drop(idle.pop());
    assert_eq!(read_reply(&mut third, 8).unwrap(), b"anyone?\n");
}

/// With one worker busy and the one queue slot taken, the next connection is closed at once
/// (the documented choice: refuse honestly rather than park a client in an endless queue).
#[test]
fn full_queue_refuses_new_connections_at_once() {
    let server = pool(1, 1);
    let mut busy = server.connect();
    round_trip(&mut busy, Proto::EchoLine, b"holding the only worker");
    let mut queued = server.connect();
    queued.write_all(b"waiting\n").unwrap();
    // Wait until the queued connection has certainly been accepted into the queue: the
    // acceptor handles connections in order, so a refused probe proves the queue is full.
    let mut refused = server.connect();
    assert_eq!(read_to_eof(&mut refused), b"", "refused: closed without a reply");
    // The queued client is served as soon as the worker is free.
    drop(busy);
    assert_eq!(read_reply(&mut queued, 8).unwrap(), b"waiting\n");
}
