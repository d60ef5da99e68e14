//! The client side of `http` for the tests: requests and the exact replies they must get, typed
//! out here byte for byte instead of taken from `servers::proto::http`, so a bug in the server's
//! responses cannot hide behind the same bug in the tests.

use std::io::Write;
use std::net::TcpStream;

use super::read_reply;

/// The simplest request: keep-alive is HTTP/1.1's default.
pub const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n";

/// What `GET /` gets.
pub const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 13\r\n\r\nHello, world!";

/// What `GET /` with `Connection: close` gets.
pub const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 13\r\nConnection: close\r\n\r\nHello, world!";

/// What `HEAD /` gets: the headers of `GET /`, no body.
pub const HELLO_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\n";

/// What a path other than `/` gets.
pub const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 47\r\n\r\n404 Not Found: this server has one resource, /\n";

/// What a method other than GET and HEAD gets.
pub const NOT_ALLOWED: &[u8] = b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n\
    Content-Type: text/plain; charset=utf-8\r\nContent-Length: 57\r\n\r\n\
    405 Method Not Allowed: this server answers GET and HEAD\n";

/// A request with a body of `len` bytes (`method` decides the reply; the body is skipped).
pub fn with_body(method: &str, len: usize, fill: u8) -> Vec<u8> {
    let mut r = format!("{method} / HTTP/1.1\r\nHost: lab\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    r.resize(r.len() + len, fill);
    r
}

/// A random well-formed request and the exact reply it must get. Bodies are log-uniform up to
/// `max_body`, so small and large requests and every split in between are exercised.
pub fn random_exchange(rng: &mut fastrand::Rng, max_body: usize) -> (Vec<u8>, &'static [u8]) {
    match rng.u8(..4) {
        0 => (GET.to_vec(), HELLO),
        1 => (b"HEAD /?x=1 HTTP/1.1\r\nhost: lab\r\n\r\n".to_vec(), HELLO_HEAD),
        2 => (format!("GET /page/{} HTTP/1.1\r\nHost: lab\r\n\r\n", rng.u32(..)).into_bytes(), NOT_FOUND),
        _ => {
            let len = super::log_uniform_size(rng, max_body);
            (with_body("POST", len, rng.alphanumeric() as u8), NOT_ALLOWED)
        }
    }
}

/// `count` requests (the seed decides which) and the replies they must get, each concatenated.
pub fn some_exchanges(seed: u64, count: usize, max_body: usize) -> (Vec<u8>, Vec<u8>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut requests, mut replies) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let (request, reply) = random_exchange(&mut rng, max_body);
        requests.extend(request);
        replies.extend_from_slice(reply);
    }
    (requests, replies)
}

/// Send `request` and check the reply is exactly `reply`.
#[track_caller]
pub fn exchange(stream: &mut TcpStream, request: &[u8], reply: &[u8]) {
    stream.write_all(request).expect("write request");
    let got = read_reply(stream, reply.len()).expect("read reply");
    assert!(
        got == reply,
        "expected {:?}\n     got {:?}",
        String::from_utf8_lossy(reply),
        String::from_utf8_lossy(&got)
    );
}

/// The status line of a reply (`HTTP/1.1 400 Bad Request`), and whether it says the
/// connection closes.
pub fn status_of(reply: &[u8]) -> (String, bool) {
    let text = String::from_utf8_lossy(reply);
    let status = text.lines().next().unwrap_or_default().to_owned();
    (status, text.contains("\r\nConnection: close\r\n"))
}
