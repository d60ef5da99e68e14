//! Small echo servers (and a hello-world HTTP one) for loadgen's tests, written here (not taken
//! from the servers crate) so that loadgen is tested against code that shares nothing with it
//! or with the lab.
//!
//! Each server is a plain thread-per-connection blocking server on `127.0.0.1:0`; the tests read
//! the bound address. Behaviours model the failures loadgen must report: corrupted replies, a
//! one-off stall, and connections closed mid-run. The servers count what they sent, so tests
//! can compare loadgen's counts with the truth.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use loadgen::ProtocolKind;

/// The reply to every request of the `http` test server; corrupting it changes the body.
pub const HTTP_HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!";

/// How the test server misbehaves, if at all.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Echo every request exactly.
    Correct,
    /// Change one byte of reply 0, N, 2N, … (counted over the whole server).
    CorruptEvery(u64),
    /// Before sending reply number `after` (server-wide), stop for `pause`, once.
    StallOnce { after: u64, pause: Duration },
    /// Close each connection after it has sent this many replies.
    CloseAfter(u64),
}

/// What the server did, for comparing with loadgen's report.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Replies sent (counted before writing, so all of them once loadgen has read them).
    pub replies: AtomicU64,
    /// Replies that were deliberately corrupted.
    pub corrupted: AtomicU64,
    stalled: AtomicBool,
}

/// A running test server. Its threads end when their clients disconnect; the accept loop
/// lives until the test process exits.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
}

/// Starts a server speaking `proto` with `behaviour` on an ephemeral port.
pub fn start(proto: ProtocolKind, behaviour: Behaviour) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    let addr = listener.local_addr().expect("read the bound address");
    let stats = Arc::new(Stats::default());
    let shared = Arc::clone(&stats);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let stats = Arc::clone(&shared);
            std::thread::spawn(move || {
                // A client that vanishes mid-reply is normal here; nothing to report.
                let _ = serve(stream, proto, behaviour, &stats);
            });
        }
    });
    TestServer { addr, stats }
}

fn serve(stream: TcpStream, proto: ProtocolKind, behaviour: Behaviour, stats: &Stats) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(64 * 1024, stream);
    let mut message = Vec::with_capacity(70_000);
    let mut sent_here = 0u64;
    // http: the client asked for the connection to end after this reply.
    let mut close_after = false;
    loop {
        if close_after {
            writer.flush()?;
            return Ok(()); // dropping both halves closes the connection
        }
        message.clear();
        let payload_at = match proto {
            ProtocolKind::EchoLine => {
                if reader.read_until(b'\n', &mut message)? == 0 {
                    return Ok(());
                }
                0
            }
            ProtocolKind::Http => {
                // A request head: lines up to an empty one (loadgen's GETs carry no body).
                loop {
                    let start = message.len();
                    if reader.read_until(b'\n', &mut message)? == 0 {
                        return Ok(());
                    }
                    if message[start..] == *b"\r\n" {
                        break;
                    }
                    close_after |= message[start..].eq_ignore_ascii_case(b"connection: close\r\n");
                }
                message.clear();
                message.extend_from_slice(HTTP_HELLO);
                HTTP_HELLO.len() - b"Hello, world!".len()
            }
            ProtocolKind::EchoFrame => {
                let mut prefix = [0u8; 4];
                if let Err(e) = reader.read_exact(&mut prefix) {
                    return if e.kind() == io::ErrorKind::UnexpectedEof { Ok(()) } else { Err(e) };
                }
                let len = u32::from_be_bytes(prefix) as usize;
                message.extend_from_slice(&prefix);
                message.resize(4 + len, 0);
                reader.read_exact(&mut message[4..])?;
                4
            }
            ProtocolKind::Chat => unreachable!("chat servers for tests live in tests/chat.rs"),
            ProtocolKind::Kv => unreachable!("kv is not an echo: tests/kv.rs has its own server"),
        };
        if let Behaviour::CloseAfter(limit) = behaviour {
            if sent_here == limit {
                writer.flush()?;
                return Ok(()); // dropping both halves closes the connection
            }
        }
        let number = stats.replies.fetch_add(1, Ordering::SeqCst);
        match behaviour {
            Behaviour::CorruptEvery(n) if number % n == 0 && message.len() > payload_at + 1 => {
                // Never turn a byte into `\n`: the framing stays intact, only the content is wrong.
                let b = &mut message[payload_at];
                *b = if *b == b'!' { b'?' } else { b'!' };
                stats.corrupted.fetch_add(1, Ordering::SeqCst);
            }
            Behaviour::StallOnce { after, pause }
                if number >= after && !stats.stalled.swap(true, Ordering::SeqCst) =>
            {
                writer.flush()?;
                std::thread::sleep(pause); // the misbehaviour under test, not synchronisation
            }
            _ => {}
        }
        writer.write_all(&message)?;
        sent_here += 1;
        // Flush only when no further pipelined request is already buffered: replies to a
        // pipelined batch leave together, as a real server's would.
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}

/// A local address with nothing listening: bind an ephemeral port, then let it go.
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    listener.local_addr().expect("read the bound address")
}

/// Runs the `loadgen` binary with `args`, killing it if it outlives `limit`.
pub fn loadgen_binary(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the loadgen binary");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("collect loadgen's output"),
        Err(_) => {
            // SAFETY: plain kill(2) of the child this function started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("loadgen {args:?} did not finish within {limit:?}");
        }
    }
}
