//! The conformance suite: one body per promise, run for every model × protocol.
//!
//! The test list lives once, in `conformance_tests!`, and is instantiated once per pair at the
//! bottom of this file, so a new model or protocol gets every test by adding one line.
//!
//! Where a model cannot keep a promise by design, the case asserts the opposite and says why:
//! that failure is the model's lesson (see `idle_client_does_not_hold_up_others`).
//!
//! The cases here are echo-shaped (the reply is the request). `http` is not, so the same
//! promises are checked for it, on every model, in `conformance_http.rs`.

mod support;

use std::io::Write;
use std::net::Shutdown as Direction;
use std::thread;
use std::time::Duration;

use servers::session::Knobs;
use servers::{Model, Proto, ServerConfig};
use support::*;

/// The configuration every case starts from. The thread-pool's size is set explicitly, not
/// left to the CPU count: on a one-CPU runner a one-worker pool would turn every case that
/// holds two connections into the `blocking` model's lesson.
fn config(proto: Proto) -> ServerConfig {
    let mut config = ServerConfig::new(proto);
    config.threads = 8;
    config
}

fn start(model: Model, proto: Proto) -> TestServer {
    TestServer::with_config(model, config(proto))
}

/// One client, one request.
pub fn one_request(model: Model, proto: Proto) {
    let server = start(model, proto);
    let mut client = server.connect();
    round_trip(&mut client, proto, b"hello, lab");
}

/// 64 clients at once, 1,000 requests each, sizes from 1 B to 64 KiB, every byte checked.
pub fn many_clients_random_sizes(model: Model, proto: Proto) {
    const CLIENTS: u64 = 64;
    const REQUESTS: usize = 1_000;
    let server = start(model, proto);
    let max = servers::proto::DEFAULT_MAX_FRAME;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|seed| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed);
                let mut stream = connect(addr);
                if matches!(model, Model::Blocking | Model::ThreadPool) {
                    // Served one client (or a pool's worth) after another: a client may wait
                    // for all the others.
                    stream.set_read_timeout(Some(TIMEOUT * 10)).unwrap();
                }
                for _ in 0..REQUESTS {
                    let len = log_uniform_size(&mut rng, max);
                    round_trip(&mut stream, proto, &payload(&mut rng, proto, len));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client failed");
    }
}

fn some_requests(proto: Proto, count: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut stream = Vec::new();
    for i in 0..count {
        stream.extend(request(proto, &payload(&mut rng, proto, i % 40)));
    }
    stream
}

/// A request stream written one byte per `write` gets the same replies as written whole.
pub fn one_byte_per_write(model: Model, proto: Proto) {
    let server = start(model, proto);
    let mut client = server.connect();
    let stream = some_requests(proto, 10);
    for byte in &stream {
        client.write_all(std::slice::from_ref(byte)).unwrap();
    }
    assert_eq!(read_reply(&mut client, stream.len()).unwrap(), stream);
}

/// 50 requests in a single `write` get 50 replies, in order.
pub fn fifty_requests_in_one_write(model: Model, proto: Proto) {
    let server = start(model, proto);
    let mut client = server.connect();
    let stream = some_requests(proto, 50);
    client.write_all(&stream).unwrap();
    assert_eq!(read_reply(&mut client, stream.len()).unwrap(), stream);
}

/// Requests pipelined well past one read (64 KiB) and many times an event loop's turn
/// ([`servers::session::REQUESTS_PER_TURN`]) all get their replies, in order: a turn that stops
/// at its budget resumes, and reads on, with no new event to prompt it.
pub fn a_pipeline_longer_than_many_turns_is_answered_whole(model: Model, proto: Proto) {
    let server = start(model, proto);
    let mut client = server.connect();
    let stream = some_requests(proto, 8_000);
    assert!(stream.len() > 128 * 1024);
    let writing = write_from_a_thread(&client, stream.clone(), false);
    assert_eq!(read_reply(&mut client, stream.len()).unwrap(), stream);
    writing.join().unwrap().unwrap();
}

/// A pipeline of more than 64 KiB, then end-of-file at once: every reply, then end-of-file.
/// The end-of-file is reported once, while an event loop still has turns of backlog to serve,
/// and the turn that reads the last (short) batch of requests must still read on to it.
pub fn a_long_pipeline_then_end_of_file_gets_every_reply_then_end_of_file(model: Model, proto: Proto) {
    let server = start(model, proto);
    let mut client = server.connect();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut stream = Vec::new();
    while stream.len() < 64 * 1024 + 30 * 20 {
        stream.extend(request(proto, &payload(&mut rng, proto, 16)));
    }
    let writing = write_from_a_thread(&client, stream.clone(), true);
    assert_eq!(read_to_clean_eof(&mut client), stream);
    writing.join().unwrap().unwrap();
}

/// A client that half-closes after sending still receives every reply, then end-of-file.
pub fn half_close_still_gets_every_reply(model: Model, proto: Proto) {
    let server = start(model, proto);
    let mut client = server.connect();
    let stream = some_requests(proto, 20);
    client.write_all(&stream).unwrap();
    client.shutdown(Direction::Write).unwrap();
    assert_eq!(read_to_clean_eof(&mut client), stream);
}

/// A client that resets its connection mid-reply does not disturb anyone else.
pub fn reset_mid_reply_disturbs_no_one(model: Model, proto: Proto) {
    let server = start(model, proto);
    {
        let mut rude = server.connect();
        let mut rng = fastrand::Rng::with_seed(3);
        let big = request(proto, &payload(&mut rng, proto, 32 * 1024));
        // Queue as many requests as the socket takes without waiting, so replies are still
        // being written when the reset comes. One descriptor only: a duplicate would keep the
        // socket open and turn the reset below into nothing.
        rude.set_nonblocking(true).unwrap();
        let mut queued = 0;
        while queued < 64 * big.len() {
            match rude.write(&big[queued % big.len()..]) {
                Ok(n) => queued += n,
                Err(_) => break, // WouldBlock: the buffers are full
            }
        }
        rude.set_nonblocking(false).unwrap();
        assert!(queued >= big.len(), "at least one whole request was sent");
        assert_eq!(read_reply(&mut rude, big.len()).unwrap(), big);
        // SO_LINGER 0: close() sends a reset instead of a FIN, discarding unsent data.
        socket2::SockRef::from(&rude).set_linger(Some(Duration::ZERO)).unwrap();
    }
    for _ in 0..3 {
        let mut polite = server.connect();
        round_trip(&mut polite, proto, b"still here?");
    }
}

/// A request over the size limit gets the documented error and a close; others carry on.
pub fn oversized_request_is_refused(model: Model, proto: Proto) {
    let max = 1024;
    let mut config = config(proto);
    config.max_frame = max;
    let server = TestServer::with_config(model, config);
    let mut bad = server.connect();
    match proto {
        // A line one byte too long (its newline comes after more bytes than the limit).
        Proto::EchoLine => bad.write_all(&[b'x'; 1024 * 8]).unwrap(),
        // A header declaring one byte too many, plus some of that payload.
        Proto::EchoFrame => {
            bad.write_all(&(max as u32 + 1).to_be_bytes()).unwrap();
            bad.write_all(&[0; 100]).unwrap();
        }
        Proto::Http => unreachable!("http is not echo-shaped: conformance_http.rs has its cases"),
        Proto::Chat => unreachable!("chat has its own suite: conformance_chat.rs"),
        Proto::Kv => unreachable!("kv's oversized requests are in conformance_kv.rs"),
    }
    bad.shutdown(Direction::Write).unwrap();
    let reply = read_to_clean_eof(&mut bad);
    match proto {
        Proto::EchoLine => assert_eq!(reply, b"ERR line longer than 1024 bytes\n"),
        Proto::EchoFrame => assert_eq!(reply, b"", "echo-frame closes without a reply"),
        Proto::Http => unreachable!(),
        Proto::Chat => unreachable!("chat has its own suite: conformance_chat.rs"),
        Proto::Kv => unreachable!(),
    }
    let mut good = server.connect();
    round_trip(&mut good, proto, &[b'y'; 1024]);
}

/// Clients that send a request and leave without reading the reply cost the server nothing.
/// The reply then draws a reset, and a closing connection that waited for the peer to
/// acknowledge it would sit out `DELIVERY_WAIT` (5 s) on a dead socket: three such clients
/// kept the `blocking` server from the next one for 15 s, and ten stopped a two-worker pool.
/// The probe allows 3 s, far more than a served request takes and less than one such wait.
pub fn abandoned_requests_hold_up_no_one(model: Model, proto: Proto) {
    let server = start(model, proto);
    let abandoned = request(proto, b"anyone? never mind");
    for _ in 0..10 {
        let mut client = server.connect();
        client.write_all(&abandoned).unwrap();
        drop(client); // closed before the reply arrives: the reply draws a reset
    }
    let mut probe = server.connect();
    probe.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    round_trip(&mut probe, proto, b"the next client");
}

/// Client A connects and sends nothing; client B must still be answered within a second.
///
/// Every model passes except `blocking`, for which the test asserts the opposite: B waits until
/// A leaves. *That is the `blocking` model's lesson*, not a bug: one thread serving one client
/// at a time cannot notice B while it waits for A.
pub fn idle_client_does_not_hold_up_others(model: Model, proto: Proto) {
    let server = start(model, proto);
    let idle = server.connect();
    // Make sure A is the connection being served (accepted first) before B arrives.
    let mut probe_a = idle.try_clone().unwrap();
    let mut b = server.connect();
    let b_request = request(proto, b"B here");
    b.write_all(&b_request).unwrap();
    if model == Model::Blocking {
        assert!(
            nothing_arrives_within(&mut b, Duration::from_secs(1)),
            "lesson of `blocking`: B must wait while idle A holds the only thread"
        );
        drop(idle);
        probe_a.shutdown(Direction::Both).unwrap();
        assert_eq!(read_reply(&mut b, b_request.len()).unwrap(), b_request);
    } else {
        b.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let reply = read_reply(&mut b, b_request.len());
        assert!(reply.is_ok(), "B was not answered within 1 s while A sat idle: {reply:?}");
        assert!(nothing_arrives_within(&mut probe_a, Duration::from_millis(10)));
    }
}

/// A client that sends without ever reading cannot make the server buffer without bound.
///
/// The client pushes up to 256 MiB of requests; once the server stops reading from it (its
/// replies cannot be delivered), the kernel buffers fill and the client's writes stall. The
/// amount accepted before the stall is bounded by socket buffers plus the model's own limit.
pub fn peer_that_never_reads_is_held_back(model: Model, proto: Proto) {
    const BUDGET: usize = 256 << 20;
    let server = start(model, proto);
    let mut hog = server.connect();
    hog.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    let chunk: Vec<u8> = (0..64).flat_map(|_| request(proto, &payload(&mut rng, proto, 1000))).collect();
    let mut accepted = 0;
    while accepted < BUDGET {
        match hog.write(&chunk) {
            Ok(n) => accepted += n,
            // Timed out: back-pressure reached the client. Any other error means the server
            // dropped the connection, which is not holding it back.
            Err(e) => {
                assert!(
                    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                    "the server cut the non-reading peer instead of holding it back: {e}"
                );
                break;
            }
        }
    }
    assert!(accepted < BUDGET, "the server accepted {accepted} bytes from a peer that never reads");
    if model == Model::Blocking {
        drop(hog); // the blocking model serves the next client only after this one
    }
    let mut other = server.connect();
    round_trip(&mut other, proto, b"others are still served");
}

/// Send one request, wait for its reply (so the connection is being served), then send 19
/// more at once that take 20 ms each, and trigger shutdown at once: when the trigger comes,
/// those requests are still being worked on. Returns every byte the client then received.
pub fn shutdown_with_requests_in_flight(model: Model, proto: Proto, grace: Duration) -> (Vec<u8>, Vec<u8>) {
    let mut config = config(proto);
    config.knobs = Knobs { work: Duration::ZERO, block: Duration::from_millis(20) };
    config.grace = grace;
    let server = TestServer::with_config(model, config);
    let mut client = server.connect();
    round_trip(&mut client, proto, b"first");
    let batch = some_requests(proto, 19);
    client.write_all(&batch).unwrap();
    wait_until_received(&client);
    server.trigger_shutdown();
    let replies = read_to_eof(&mut client);
    server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
    assert!(
        std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).is_err(),
        "a stopped server accepts no new connections"
    );
    (batch, replies)
}

/// With requests in flight, a graceful shutdown lets them finish, then the server returns.
pub fn graceful_shutdown_finishes_in_flight_requests(model: Model, proto: Proto) {
    let (sent, replies) = shutdown_with_requests_in_flight(model, proto, Duration::from_secs(5));
    assert_eq!(replies.len(), sent.len(), "every in-flight request is answered");
    assert_eq!(replies, sent);
}

/// The control that proves the case above can fail: with no grace period at all, the same
/// in-flight requests are cut off. (`thread-per-connection` stands for the thread-based models;
/// the single-threaded `reactor` finishes a batch it has read before it looks at the clock.)
#[test]
fn without_a_grace_period_in_flight_requests_are_cut() {
    for proto in ECHO_PROTOCOLS {
        let (sent, replies) =
            shutdown_with_requests_in_flight(Model::ThreadPerConnection, proto, Duration::ZERO);
        assert!(
            replies.len() < sent.len(),
            "{proto}: {} of {} bytes arrived anyway",
            replies.len(),
            sent.len()
        );
    }
}

/// Shutdown while a client is still sending: the server stops reading, but every reply it
/// wrote must arrive whole. (Closing a socket while the peer still sends makes the kernel
/// answer with a reset, which would destroy replies still queued: see `servers::net`.)
pub fn shutdown_while_the_client_keeps_sending_tears_no_reply(model: Model, proto: Proto) {
    let server = start(model, proto);
    let mut client = server.connect();
    let mut rng = fastrand::Rng::with_seed(5);
    let req = request(proto, &payload(&mut rng, proto, 32 * 1024));
    let mut writer = client.try_clone().unwrap();
    let sent = req.clone();
    let feeder = thread::spawn(move || {
        for _ in 0..400 {
            if writer.write_all(&sent).is_err() {
                return; // the server has stopped reading and closed: expected
            }
        }
    });
    let mut replies = read_reply(&mut client, req.len()).unwrap();
    server.trigger_shutdown();
    replies.extend(read_to_eof(&mut client));
    assert_eq!(replies.len() % req.len(), 0, "a reply was torn: {} bytes arrived", replies.len());
    assert!(replies.chunks(req.len()).all(|r| r == req), "replies are whole and correct");
    drop(client);
    feeder.join().unwrap();
    server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
}

/// Every case above, for one model and protocol.
macro_rules! conformance_tests {
    ($model:expr, $proto:expr) => {
        use super::super::*;
        crate::cases!(
            [super::super],
            ($model, $proto),
            one_request,
            many_clients_random_sizes,
            one_byte_per_write,
            fifty_requests_in_one_write,
            a_pipeline_longer_than_many_turns_is_answered_whole,
            a_long_pipeline_then_end_of_file_gets_every_reply_then_end_of_file,
            half_close_still_gets_every_reply,
            reset_mid_reply_disturbs_no_one,
            oversized_request_is_refused,
            idle_client_does_not_hold_up_others,
            abandoned_requests_hold_up_no_one,
            peer_that_never_reads_is_held_back,
            shutdown_while_the_client_keeps_sending_tears_no_reply,
            graceful_shutdown_finishes_in_flight_requests,
        );
    };
}

/// One module per model, one per protocol inside it: `cargo test reactor::echo_frame`.
/// Called with the lab's list of models, so every listed model runs every case.
macro_rules! for_every_protocol {
    ($(#[doc = $about:literal] $module:ident => $variant:ident $(+ $check:ident)?,)*) => {
        $(mod $module {
            mod echo_line {
                conformance_tests!(Model::$variant, Proto::EchoLine);
            }
            mod echo_frame {
                conformance_tests!(Model::$variant, Proto::EchoFrame);
            }
        })*
    };
}

servers::for_each_model!(for_every_protocol);
