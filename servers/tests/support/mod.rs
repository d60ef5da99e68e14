//! The client side of the conformance suite: start a model in-process on port 0, and talk to it
//! with plain blocking sockets, every wait bounded so a broken model fails instead of hanging.
//!
//! This code frames requests on its own rather than through `servers::proto`, so a framing bug
//! in the servers cannot hide behind the same bug in the tests.

#![allow(dead_code)] // each test binary uses its own share of these helpers

pub mod http;
pub mod kv;
pub mod process;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use servers::{Model, Proto, ServerConfig, Shutdown};

/// How long any single read or write may take before a test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Whether `model` cannot run on this machine at all (io_uring refused, say): the test is then
/// skipped, and says why on stderr (`cargo test -- --nocapture` shows it). A protocol a model
/// refuses by design is not skipped here: its own test asserts the refusal.
pub fn unavailable_here(model: Model) -> bool {
    match model.check(&ServerConfig::new(Proto::EchoLine)) {
        Err(why @ servers::CannotServe::Unavailable { .. }) => {
            eprintln!("skipped: {why}");
            true
        }
        _ => false,
    }
}

/// A server running on a thread of this test process.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Shutdown,
    finished: mpsc::Receiver<io::Result<()>>,
}

impl TestServer {
    /// Start `model` with the default configuration for `proto`.
    pub fn start(model: Model, proto: Proto) -> TestServer {
        TestServer::with_config(model, ServerConfig::new(proto))
    }

    /// Start `model` with `config`, listening on a free port of 127.0.0.1.
    pub fn with_config(model: Model, config: ServerConfig) -> TestServer {
        let listener = servers::net::bind("127.0.0.1:0".parse().unwrap()).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let (done, finished) = mpsc::channel();
        let stop = shutdown.clone();
        thread::Builder::new()
            .name(format!("{model}-server"))
            .spawn(move || {
                let _ = done.send(model.run(listener, &config, &stop));
            })
            .unwrap();
        TestServer { addr, shutdown, finished }
    }

    /// Ask for a graceful shutdown (what SIGTERM does in the binary).
    pub fn trigger_shutdown(&self) {
        self.shutdown.trigger();
    }

    /// Wait for the server's `run` to return; panics if it takes longer than `within`.
    pub fn wait_exit(&self, within: Duration) -> io::Result<()> {
        self.finished.recv_timeout(within).expect("server did not exit in time")
    }

    /// A connected client with bounded reads and writes.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Never join here: a model that hangs must fail its test, not the whole run.
        self.shutdown.trigger();
    }
}

/// Connect with the suite's timeouts set.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// The protocols whose reply is the request itself: the cases built on [`round_trip`] run for
/// these. The others (`kv`) have replies of their own and test files of their own.
pub const ECHO_PROTOCOLS: [Proto; 2] = [Proto::EchoLine, Proto::EchoFrame];

/// Frame `payload` as a request of `proto`. For `echo-line` the payload must hold no `\n`.
/// Only for the echo protocols, whose reply is the request: `http` has [`http`].
pub fn request(proto: Proto, payload: &[u8]) -> Vec<u8> {
    match proto {
        Proto::Http => panic!("`http` is not echo-shaped: use support::http"),
        Proto::EchoLine => {
            assert!(!payload.contains(&b'\n'));
            let mut r = payload.to_vec();
            r.push(b'\n');
            r
        }
        Proto::EchoFrame => {
            let mut r = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
            r.extend_from_slice(payload);
            r
        }
        Proto::Chat => unreachable!("chat is not request/response: its suite is conformance_chat.rs"),
        Proto::Kv => panic!("kv replies are not echoes: tests/conformance_kv.rs frames its own requests"),
    }
}

/// `len` random bytes valid as a payload of `proto`.
pub fn payload(rng: &mut fastrand::Rng, proto: Proto, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
    if proto == Proto::EchoLine {
        for b in &mut p {
            if *b == b'\n' {
                *b = b'.';
            }
        }
    }
    p
}

/// A size between 1 byte and `max`, log-uniform: as many requests of 1-10 bytes as of
/// 10-100 or 10k-64k, so small and large frames and every split in between are exercised.
pub fn log_uniform_size(rng: &mut fastrand::Rng, max: usize) -> usize {
    let exp = rng.f64() * (max as f64).ln();
    (exp.exp() as usize).clamp(1, max)
}

/// Write `bytes` to `stream` from a thread of its own, then half-close if `then_end`, so that
/// the caller reads the replies meanwhile (a pipeline longer than the socket buffers would
/// otherwise block both sides).
pub fn write_from_a_thread(
    stream: &TcpStream,
    bytes: Vec<u8>,
    then_end: bool,
) -> thread::JoinHandle<io::Result<()>> {
    let mut writer = stream.try_clone().expect("clone the client socket");
    thread::spawn(move || {
        writer.write_all(&bytes)?;
        if then_end { writer.shutdown(std::net::Shutdown::Write) } else { Ok(()) }
    })
}

/// Read exactly `len` bytes, or fail with the reason.
pub fn read_reply(stream: &mut TcpStream, len: usize) -> io::Result<Vec<u8>> {
    let mut reply = vec![0; len];
    stream.read_exact(&mut reply)?;
    Ok(reply)
}

/// Wait until the server's kernel has taken every byte written on `stream` (the peer
/// acknowledged them all), so a request counts as *in flight* at the server, not still in the
/// network. On loopback under load a write can return while its segment waits in a CPU's
/// backlog; a shutdown (`SHUT_RD`) that lands before it reaches the socket makes the server see
/// end-of-file first, and the request was never the server's to answer.
#[allow(dead_code)] // only the shutdown tests use it
pub fn wait_until_received(stream: &TcpStream) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while servers::net::unacknowledged(stream).expect("SIOCOUTQ") > 0 {
        assert!(std::time::Instant::now() < deadline, "the server did not take the bytes within {TIMEOUT:?}");
        thread::sleep(Duration::from_millis(1)); // polling a condition, not synchronising
    }
}

/// Send one request and check the reply is the same bytes. (For `http`, whose replies do not
/// echo, `payload` is ignored: a `GET /` must get `Hello, world!`.)
pub fn round_trip(stream: &mut TcpStream, proto: Proto, payload: &[u8]) {
    if proto == Proto::Http {
        return http::exchange(stream, http::GET, http::HELLO);
    }
    let req = request(proto, payload);
    stream.write_all(&req).expect("write request");
    let reply = read_reply(stream, req.len()).expect("read reply");
    assert!(reply == req, "reply differs from request ({} bytes)", req.len());
}

/// Read until end-of-file (a reset after the data also ends it); returns what was read.
pub fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("waiting for end-of-file: {e}"),
        }
    }
}

/// Read until a clean end-of-file; a reset fails the test (the server must close politely).
pub fn read_to_clean_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("a clean end-of-file, not a reset");
    all
}

/// True if nothing arrives on `stream` within `wait` (the stream's timeout is restored).
pub fn nothing_arrives_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    let quiet = match stream.read(&mut byte) {
        Err(e) => matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        Ok(_) => false,
    };
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    quiet
}

/// One `#[test]` per name, each calling the function of that name in `[module]` with the same
/// arguments: how every conformance file runs each of its bodies under every model. For
/// example, `cases!([super], (Model::Reactor), one_request, one_byte_per_write)` makes
/// `fn one_request() { super::one_request(Model::Reactor) }` and the same for the other.
#[macro_export]
macro_rules! cases {
    ([$($module:tt)*], $args:tt, $name:ident $(, $rest:ident)* $(,)?) => {
        #[test]
        fn $name() {
            $crate::cases!(@call [$($module)*] $name $args)
        }
        $crate::cases!([$($module)*], $args $(, $rest)*);
    };
    ([$($module:tt)*], $args:tt $(,)?) => {};
    (@call [$($module:tt)*] $name:ident ($model:expr $(, $arg:expr)* $(,)?)) => {
        if !$crate::support::unavailable_here($model) {
            $($module)*::$name($model $(, $arg)*)
        }
    };
}
