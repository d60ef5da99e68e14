//! Exercise 5: `cargo test --test idle_timeout`. See `src/idle_timeout/mod.rs` for the task.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use exercises::idle_timeout::{IDLE_GOODBYE, serve};

const IDLE_TIMEOUT: Duration = Duration::from_millis(500);
/// The idle client must be closed within this: generous, for a loaded machine.
const CLOSE_BOUND: Duration = Duration::from_secs(5);
/// How long the active client waits for an echo: generous, for a loaded machine.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

fn start_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || serve(listener, IDLE_TIMEOUT));
    addr
}

/// One echo round trip; panics with a message that says what went wrong.
fn ping(client: &mut TcpStream, round: usize, since: Instant) {
    client.write_all(b"ping\n").unwrap();
    let mut reply = [0; 5];
    client.read_exact(&mut reply).unwrap_or_else(|e| {
        panic!(
            "the active client got no echo on round {round}, {:?} after connecting ({e}): did its \
             thread panic, or is the timeout counted from the connection's start, not its last byte?",
            since.elapsed()
        )
    });
    assert_eq!(&reply, b"ping\n");
}

#[test]
fn an_idle_client_is_closed_while_an_active_one_is_served() {
    let addr = start_server();

    // The idle client says nothing and reads until the server closes the connection.
    let (closed, idle_result) = mpsc::channel();
    thread::spawn(move || {
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.set_read_timeout(Some(CLOSE_BOUND)).unwrap();
        let connected = Instant::now();
        let mut heard = Vec::new();
        let result = idle.read_to_end(&mut heard).map(|_| heard);
        let _ = closed.send((result, connected.elapsed()));
    });

    let mut active = TcpStream::connect(addr).unwrap();
    active.set_nodelay(true).unwrap();
    active.set_read_timeout(Some(REPLY_DEADLINE)).unwrap();
    let since = Instant::now();
    let mut idle_outcome = None;
    let mut round = 0;
    // Talk for three timeouts, and at least until the idle client has been dealt with.
    while idle_outcome.is_none() || since.elapsed() < 3 * IDLE_TIMEOUT {
        round += 1;
        ping(&mut active, round, since);
        if idle_outcome.is_none() {
            idle_outcome = idle_result.try_recv().ok();
        }
        assert!(since.elapsed() < REPLY_DEADLINE, "the idle client was never closed");
        // Pacing, not synchronisation: a line every 50 ms keeps this client well inside 500 ms.
        thread::sleep(Duration::from_millis(50));
    }

    let (heard, after) = idle_outcome.unwrap();
    let heard =
        heard.unwrap_or_else(|e| panic!("the idle client was not closed within {CLOSE_BOUND:?}: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&heard),
        String::from_utf8_lossy(IDLE_GOODBYE),
        "an idle close says why before the end of the stream"
    );
    assert!(
        after >= IDLE_TIMEOUT.mul_f32(0.9),
        "closed after {after:?}, before the {IDLE_TIMEOUT:?} timeout"
    );
    assert!(after <= CLOSE_BOUND, "closed after {after:?}");
}

#[test]
fn a_client_that_falls_silent_after_talking_is_closed_too() {
    let addr = start_server();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(CLOSE_BOUND)).unwrap();
    ping(&mut client, 1, Instant::now());
    let silent_since = Instant::now();
    let mut heard = Vec::new();
    client.read_to_end(&mut heard).unwrap_or_else(|e| panic!("not closed within {CLOSE_BOUND:?}: {e}"));
    assert_eq!(heard, IDLE_GOODBYE);
    assert!(silent_since.elapsed() <= CLOSE_BOUND);
}
