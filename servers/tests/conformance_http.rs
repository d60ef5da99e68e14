//! The conformance suite for `http`, on every model.
//!
//! `conformance.rs` checks its promises with echo-shaped cases (the reply is the request);
//! HTTP's replies are not echoes, so the same promises are checked here with HTTP requests and
//! the exact replies they must get: split and coalesced input, half-close, resets, oversized
//! requests, an idle client, a peer that never reads, and shutdown with requests in flight.
//! Then HTTP's own: keep-alive, `Connection: close`, HTTP/1.0, errors that close, and a real
//! HTTP client ([hyper](https://hyper.rs)) sending several requests over one connection.
//!
//! As there, where a model cannot keep a promise by design (`blocking` and the idle client),
//! the case asserts the opposite and says why.

mod support;

use std::io::Write;
use std::net::Shutdown as Direction;
use std::thread;
use std::time::Duration;

use servers::session::Knobs;
use servers::{Model, Proto, ServerConfig};
use support::http::*;
use support::*;

/// As in `conformance.rs`: an explicit pool size, so a one-CPU runner does not turn every case
/// with two connections into the `blocking` model's lesson.
fn config() -> ServerConfig {
    let mut config = ServerConfig::new(Proto::Http);
    config.threads = 8;
    config
}

fn start(model: Model) -> TestServer {
    TestServer::with_config(model, config())
}

/// What a `GET /` from HTTP/1.0 with `Connection: keep-alive` gets.
const HELLO_KEEP_ALIVE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, world!";

/// Check that `reply` is one whole response with `status`, announcing `Connection: close`,
/// whose body is exactly as long as its `Content-Length` says.
#[track_caller]
fn assert_final_error(reply: &[u8], status: &str) {
    let text = String::from_utf8_lossy(reply);
    assert_eq!(status_of(reply), (format!("HTTP/1.1 {status}"), true), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole head");
    let length = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).expect("Content-Length");
    assert_eq!(length.parse::<usize>().ok(), Some(body.len()), "{text}");
}

/// One client, one request.
pub fn one_request(model: Model) {
    let server = start(model);
    exchange(&mut server.connect(), GET, HELLO);
}

/// 64 clients at once, 300 requests each: GET, HEAD, 404s and POSTs whose bodies go from 1 B
/// to 64 KiB (the default limit), every reply checked byte for byte.
pub fn many_clients_random_requests(model: Model) {
    const CLIENTS: u64 = 64;
    const REQUESTS: usize = 300;
    let server = start(model);
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
                    let (request, reply) = random_exchange(&mut rng, servers::proto::DEFAULT_MAX_FRAME);
                    exchange(&mut stream, &request, reply);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client failed");
    }
}

/// A request stream written one byte per `write` gets the same replies as written whole.
pub fn one_byte_per_write(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    let (requests, replies) = some_exchanges(7, 10, 100);
    for byte in &requests {
        client.write_all(std::slice::from_ref(byte)).unwrap();
    }
    assert_eq!(read_reply(&mut client, replies.len()).unwrap(), replies);
}

/// 50 pipelined requests in a single `write` get 50 replies, in order.
pub fn fifty_requests_in_one_write(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    let (requests, replies) = some_exchanges(8, 50, 2000);
    client.write_all(&requests).unwrap();
    assert_eq!(read_reply(&mut client, replies.len()).unwrap(), replies);
}

/// A pipeline one event-loop read and 30 requests long, then end-of-file at once: every reply,
/// in order, then end-of-file. The end-of-file is reported while turns of backlog are still to
/// come, and the turn that reads the last short batch must still read on to it. (A pipeline
/// that fits one read, as http's 72 KiB buffer holds 2,500 requests, cannot show that.)
pub fn a_long_pipeline_then_end_of_file_gets_every_reply(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    let count = config().max_request_len().max(64 * 1024) / GET.len() + 30;
    let writing = write_from_a_thread(&client, GET.repeat(count), true);
    assert_eq!(read_to_clean_eof(&mut client), HELLO.repeat(count));
    writing.join().unwrap().unwrap();
}

/// A client that half-closes after sending still receives every reply, then end-of-file.
pub fn half_close_still_gets_every_reply(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    let (requests, replies) = some_exchanges(9, 20, 2000);
    client.write_all(&requests).unwrap();
    client.shutdown(Direction::Write).unwrap();
    assert_eq!(read_to_clean_eof(&mut client), replies);
}

/// A client that resets its connection while replies are still being written does not disturb
/// anyone else.
pub fn reset_mid_reply_disturbs_no_one(model: Model) {
    let server = start(model);
    {
        let mut rude = server.connect();
        // Queue as many pipelined GETs as the socket takes without waiting (each reply is three
        // times its request), so replies are still being written when the reset comes.
        let batch: Vec<u8> = GET.repeat(1024);
        rude.set_nonblocking(true).unwrap();
        let mut queued = 0;
        while queued < 64 * batch.len() {
            match rude.write(&batch[queued % batch.len()..]) {
                Ok(n) => queued += n,
                Err(_) => break, // WouldBlock: the buffers are full
            }
        }
        rude.set_nonblocking(false).unwrap();
        assert!(queued >= GET.len(), "at least one whole request was sent");
        assert_eq!(read_reply(&mut rude, HELLO.len()).unwrap(), HELLO);
        // SO_LINGER 0: close() sends a reset instead of a FIN, discarding unsent data.
        socket2::SockRef::from(&rude).set_linger(Some(Duration::ZERO)).unwrap();
    }
    for _ in 0..3 {
        exchange(&mut server.connect(), GET, HELLO);
    }
}

/// A head over 8 KiB gets `431`, a body over `--max-frame` gets `413`, each followed by a clean
/// close; a request just within both limits is served, and so are others.
pub fn oversized_requests_are_refused(model: Model) {
    let max = 1024;
    let mut config = config();
    config.max_frame = max;
    let server = TestServer::with_config(model, config);

    let mut endless = server.connect();
    endless.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\nX-Endless: ").unwrap();
    endless.write_all(&[b'x'; 16 * 1024]).unwrap();
    endless.shutdown(Direction::Write).unwrap();
    assert_final_error(&read_to_clean_eof(&mut endless), "431 Request Header Fields Too Large");

    let mut big = server.connect();
    big.write_all(&with_body("POST", max + 1, b'b')).unwrap();
    big.shutdown(Direction::Write).unwrap();
    assert_final_error(&read_to_clean_eof(&mut big), "413 Content Too Large");

    let mut good = server.connect();
    exchange(&mut good, &with_body("POST", max, b'b'), NOT_ALLOWED);
    exchange(
        &mut good,
        &[b"GET / HTTP/1.1\r\nHost: lab\r\nX-Pad: " as &[u8], &[b'p'; 8000], b"\r\n\r\n"].concat(),
        HELLO,
    );
}

/// Client A connects and sends nothing; client B must still be answered within a second.
///
/// Every model passes except `blocking`, for which the test asserts the opposite: B waits until
/// A leaves. *That is the `blocking` model's lesson* (see `conformance.rs`).
pub fn idle_client_does_not_hold_up_others(model: Model) {
    let server = start(model);
    let idle = server.connect();
    let mut probe_a = idle.try_clone().unwrap();
    let mut b = server.connect();
    b.write_all(GET).unwrap();
    if model == Model::Blocking {
        assert!(
            nothing_arrives_within(&mut b, Duration::from_secs(1)),
            "lesson of `blocking`: B must wait while idle A holds the only thread"
        );
        drop(idle);
        probe_a.shutdown(Direction::Both).unwrap();
        assert_eq!(read_reply(&mut b, HELLO.len()).unwrap(), HELLO);
    } else {
        b.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let reply = read_reply(&mut b, HELLO.len());
        assert!(reply.is_ok(), "B was not answered within 1 s while A sat idle: {reply:?}");
        assert!(nothing_arrives_within(&mut probe_a, Duration::from_millis(10)));
    }
}

/// A client that pipelines requests without ever reading the replies cannot make the server
/// buffer without bound: its writes stall once the server stops reading from it.
pub fn peer_that_never_reads_is_held_back(model: Model) {
    const BUDGET: usize = 256 << 20;
    let server = start(model);
    let mut hog = server.connect();
    hog.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let chunk = GET.repeat(64);
    let mut accepted = 0;
    while accepted < BUDGET {
        match hog.write(&chunk) {
            Ok(n) => accepted += n,
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
    exchange(&mut server.connect(), GET, HELLO);
}

/// One GET answered (so the connection is being served), then 19 more pipelined that take
/// 20 ms each, and shutdown triggered at once. Returns what the 19 must get and what arrived.
pub fn shutdown_with_requests_in_flight(model: Model, grace: Duration) -> (Vec<u8>, Vec<u8>) {
    let mut config = config();
    config.knobs = Knobs { work: Duration::ZERO, block: Duration::from_millis(20) };
    config.grace = grace;
    let server = TestServer::with_config(model, config);
    let mut client = server.connect();
    exchange(&mut client, GET, HELLO);
    client.write_all(&GET.repeat(19)).unwrap();
    wait_until_received(&client);
    server.trigger_shutdown();
    let replies = read_to_eof(&mut client);
    server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
    assert!(
        std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).is_err(),
        "a stopped server accepts no new connections"
    );
    (HELLO.repeat(19), replies)
}

/// With requests in flight, a graceful shutdown lets them finish, then the server returns.
pub fn graceful_shutdown_finishes_in_flight_requests(model: Model) {
    let (expected, replies) = shutdown_with_requests_in_flight(model, Duration::from_secs(5));
    assert_eq!(replies, expected, "every in-flight request is answered");
}

/// The control that proves the case above can fail: with no grace period, they are cut off.
#[test]
fn without_a_grace_period_in_flight_requests_are_cut() {
    let (expected, replies) = shutdown_with_requests_in_flight(Model::ThreadPerConnection, Duration::ZERO);
    assert!(replies.len() < expected.len(), "{} of {} bytes arrived anyway", replies.len(), expected.len());
}

/// Shutdown while a client is still sending (GETs with 32 KiB bodies): every reply written
/// arrives whole.
pub fn shutdown_while_the_client_keeps_sending_tears_no_reply(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    let request = with_body("GET", 32 * 1024, b'q');
    let mut writer = client.try_clone().unwrap();
    let feeder = thread::spawn(move || {
        for _ in 0..400 {
            if writer.write_all(&request).is_err() {
                return; // the server has stopped reading and closed: expected
            }
        }
    });
    let mut replies = read_reply(&mut client, HELLO.len()).unwrap();
    server.trigger_shutdown();
    replies.extend(read_to_eof(&mut client));
    assert_eq!(replies.len() % HELLO.len(), 0, "a reply was torn: {} bytes arrived", replies.len());
    assert!(replies.chunks(HELLO.len()).all(|r| r == HELLO), "replies are whole and correct");
    drop(client);
    feeder.join().unwrap();
    server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
}

/// Keep-alive: a hundred requests, one after the other, on one connection.
pub fn keep_alive_serves_many_requests_on_one_connection(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    for _ in 0..100 {
        exchange(&mut client, GET, HELLO);
    }
}

/// `Connection: close` gets its reply, saying so, then a clean end-of-file; a request
/// pipelined behind it is not answered.
pub fn connection_close_gets_its_reply_then_eof(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    client.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n").unwrap();
    client.write_all(GET).unwrap();
    assert_eq!(read_to_clean_eof(&mut client), HELLO_CLOSE);
}

/// HTTP/1.0 closes after the reply, unless it asks for keep-alive.
pub fn http_1_0_closes_unless_it_asks_to_keep_alive(model: Model) {
    let server = start(model);
    let mut plain = server.connect();
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_to_clean_eof(&mut plain), HELLO_CLOSE);
    let mut kept = server.connect();
    for _ in 0..3 {
        exchange(&mut kept, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", HELLO_KEEP_ALIVE);
    }
}

/// 404, 405 and HEAD are ordinary answers: the connection carries on.
pub fn not_found_not_allowed_and_head_keep_the_connection(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    exchange(&mut client, b"GET /nope HTTP/1.1\r\nHost: lab\r\n\r\n", NOT_FOUND);
    exchange(&mut client, b"DELETE / HTTP/1.1\r\nHost: lab\r\n\r\n", NOT_ALLOWED);
    exchange(&mut client, b"HEAD / HTTP/1.1\r\nHost: lab\r\n\r\n", HELLO_HEAD);
    exchange(&mut client, GET, HELLO);
}

/// Each request that breaks the protocol gets its error, `Connection: close`, and a clean
/// close; the request pipelined behind it is not answered.
pub fn errors_are_answered_then_the_connection_closes(model: Model) {
    let server = start(model);
    for (request, status) in [
        (&b"GARBAGE\r\n\r\n"[..], "400 Bad Request"),
        (b"GET / HTTP/1.1\r\n\r\n", "400 Bad Request"), // no Host
        (b"GET / HTTP/1.1\r\nHost: lab\r\nBad Header\r\n\r\n", "400 Bad Request"),
        (
            b"POST / HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "501 Not Implemented",
        ),
        (b"GET / HTTP/2.0\r\nHost: lab\r\n\r\n", "505 HTTP Version Not Supported"),
    ] {
        let mut client = server.connect();
        client.write_all(request).unwrap();
        client.write_all(GET).unwrap();
        assert_final_error(&read_to_clean_eof(&mut client), status);
    }
}

/// A real HTTP client: hyper, driving one TCP connection that this test opened itself, sends
/// several requests on it and checks status, headers and body. Were the server to close the
/// connection between requests, the next `send_request` would fail: keep-alive is proven, not
/// assumed.
pub fn a_real_client_sends_several_requests_on_one_connection(model: Model) {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;

    let server = start(model);
    let addr = server.addr;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = async move {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        let connection = tokio::spawn(connection);
        // method, target, status, Content-Length, body (a HEAD declares the length of the GET's)
        for (i, (method, path, status, length, body)) in [
            ("GET", "/", 200, "13", &b"Hello, world!"[..]),
            ("GET", "/?n=2", 200, "13", b"Hello, world!"),
            ("HEAD", "/", 200, "13", b""),
            ("GET", "/missing", 404, "47", b"404 Not Found: this server has one resource, /\n"),
            ("GET", "/", 200, "13", b"Hello, world!"),
        ]
        .into_iter()
        .enumerate()
        {
            sender.ready().await.unwrap_or_else(|e| panic!("request {i}: the connection closed: {e}"));
            let request = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, "lab")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await.unwrap_or_else(|e| panic!("request {i}: {e}"));
            assert_eq!(response.status().as_u16(), status, "request {i}");
            assert_eq!(response.version(), hyper::Version::HTTP_11);
            assert_eq!(response.headers()[hyper::header::CONTENT_TYPE], "text/plain; charset=utf-8");
            assert_eq!(response.headers()[hyper::header::CONTENT_LENGTH], length, "request {i}");
            let got = response.into_body().collect().await.expect("read the body").to_bytes();
            assert_eq!(&got[..], body, "request {i}");
        }
        drop(sender); // hyper closes the connection once no request can follow
        connection.await.expect("the connection task").expect("the connection ended cleanly");
    };
    // The timer must be made inside the runtime, hence the `async` block around it.
    runtime
        .block_on(async { tokio::time::timeout(TIMEOUT, client).await })
        .expect("the client finished within the timeout");
}

/// Every case above, for one model.
macro_rules! http_conformance_tests {
    ($(#[doc = $about:literal] $module:ident => $variant:ident $(+ $check:ident)?,)*) => {
        $(mod $module {
            use servers::Model;
            crate::cases!(
                [super],
                (Model::$variant),
                one_request,
                many_clients_random_requests,
                one_byte_per_write,
                fifty_requests_in_one_write,
                a_long_pipeline_then_end_of_file_gets_every_reply,
                half_close_still_gets_every_reply,
                reset_mid_reply_disturbs_no_one,
                oversized_requests_are_refused,
                idle_client_does_not_hold_up_others,
                peer_that_never_reads_is_held_back,
                graceful_shutdown_finishes_in_flight_requests,
                shutdown_while_the_client_keeps_sending_tears_no_reply,
                keep_alive_serves_many_requests_on_one_connection,
                connection_close_gets_its_reply_then_eof,
                http_1_0_closes_unless_it_asks_to_keep_alive,
                not_found_not_allowed_and_head_keep_the_connection,
                errors_are_answered_then_the_connection_closes,
                a_real_client_sends_several_requests_on_one_connection,
            );
        })*
    };
}

// One module per model: `cargo test -p servers --test conformance_http reactor::`.
servers::for_each_model!(http_conformance_tests);
