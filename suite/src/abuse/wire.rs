//! The client side the abuse suite needs: which protocols it attacks, one known-good request
//! per protocol with its exact reply, and "is a new client served?" (connect, ask, check).
//!
//! Everything here is a plain blocking socket with timeouts: an attack never waits unbounded.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The protocols the scenarios attack (chat is left out: it is not request/response, and its
/// defences are its own `--chat-queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    /// Lines ending in `\n`.
    EchoLine,
    /// 4-byte big-endian length, then the payload.
    EchoFrame,
    /// HTTP/1.1 `GET /`.
    Http,
    /// RESP2.
    Kv,
}

impl Proto {
    /// The server's and loadgen's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Proto::EchoLine => "echo-line",
            Proto::EchoFrame => "echo-frame",
            Proto::Http => "http",
            Proto::Kv => "kv",
        }
    }

    /// The reverse of [`name`](Self::name).
    pub fn parse(text: &str) -> Option<Proto> {
        [Proto::EchoLine, Proto::EchoFrame, Proto::Http, Proto::Kv].into_iter().find(|p| p.name() == text)
    }
}

/// The body-and-headers every lab server sends for `GET /`.
pub const HTTP_OK: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\nHello, world!";

/// A small request and the exact reply it must get.
pub fn hello(proto: Proto) -> (Vec<u8>, Vec<u8>) {
    match proto {
        Proto::EchoLine => (b"hello\n".to_vec(), b"hello\n".to_vec()),
        Proto::EchoFrame => {
            let frame = [&5u32.to_be_bytes()[..], b"hello"].concat();
            (frame.clone(), frame)
        }
        Proto::Http => (b"GET / HTTP/1.1\r\nHost: abuse\r\n\r\n".to_vec(), HTTP_OK.to_vec()),
        Proto::Kv => (b"*1\r\n$4\r\nPING\r\n".to_vec(), b"+PONG\r\n".to_vec()),
    }
}

/// Connects with a timeout and sets read and write timeouts on the stream.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// How reading an expected reply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// Exactly the expected bytes.
    Intact,
    /// The peer closed (or reset) before anything arrived.
    Nothing,
    /// Some bytes, but not the expected ones, or the peer closed after a part.
    Corrupted,
    /// Nothing in time.
    TimedOut,
}

/// Reads `expected.len()` bytes (or until close/timeout) and compares. For http the reply may
/// carry extra headers (a server shutting down adds `Connection: close`): status line, length
/// and body are checked instead of every byte.
pub fn read_expected(s: &mut TcpStream, expected: &[u8]) -> Got {
    if expected == HTTP_OK {
        return read_http_ok(s);
    }
    let mut buf = vec![0u8; expected.len()];
    let mut have = 0;
    while have < buf.len() {
        match s.read(&mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => {
                if buf[have..have + n] != expected[have..have + n] {
                    return Got::Corrupted;
                }
                have += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return if have == 0 { Got::TimedOut } else { Got::Corrupted };
            }
            Err(_) => break,
        }
    }
    match have {
        0 => Got::Nothing,
        n if n == expected.len() => Got::Intact,
        _ => Got::Corrupted,
    }
}

fn read_http_ok(s: &mut TcpStream) -> Got {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = &buf[..end + 4];
            if !head.starts_with(b"HTTP/1.1 200 OK\r\n") {
                return Got::Corrupted;
            }
            let body = &buf[end + 4..];
            let want = b"Hello, world!";
            if body.len() >= want.len() {
                return if &body[..want.len()] == want && body.len() == want.len() {
                    Got::Intact
                } else {
                    Got::Corrupted
                };
            }
            if !want.starts_with(body) {
                return Got::Corrupted;
            }
        }
        if buf.len() > 4096 {
            return Got::Corrupted;
        }
        match s.read(&mut chunk) {
            Ok(0) => return if buf.is_empty() { Got::Nothing } else { Got::Corrupted },
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return if buf.is_empty() { Got::TimedOut } else { Got::Corrupted };
            }
            Err(_) => return if buf.is_empty() { Got::Nothing } else { Got::Corrupted },
        }
    }
}

/// One request on a fresh connection; true when the exact reply came back within `timeout`.
pub fn ask_once(addr: SocketAddr, proto: Proto, timeout: Duration) -> bool {
    let (req, want) = hello(proto);
    let Ok(mut s) = connect(addr, timeout) else { return false };
    if s.write_all(&req).is_err() {
        return false;
    }
    read_expected(&mut s, &want) == Got::Intact
}

/// How long until a new client is served: retries [`ask_once`] (each attempt bounded by
/// 250 ms, 10 ms apart) until one succeeds or `cap` has passed (`None`).
pub fn time_to_serve(addr: SocketAddr, proto: Proto, cap: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < cap {
        if ask_once(addr, proto, Duration::from_millis(250)) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Sets SO_LINGER to zero: `close` then sends a RST instead of a FIN.
pub fn linger_zero(s: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on a descriptor we own, with a linger struct of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const l).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Whether the peer has closed the connection (a zero-length read or an error) without
/// blocking: true when closed, false when open (data waiting or not).
pub fn peer_closed(s: &TcpStream) -> bool {
    let mut b = [0u8; 4096];
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut reads = 0;
    let closed = loop {
        reads += 1;
        if reads > 16 {
            // Still sending (a large backlog of replies): open.
            break false;
        }
        match (&*s).read(&mut b) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break true,
        }
    };
    let _ = s.set_nonblocking(false);
    closed
}

/// A tiny seeded generator (splitmix64): the same seed gives the same cases on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [Proto::EchoLine, Proto::EchoFrame, Proto::Http, Proto::Kv] {
            assert_eq!(Proto::parse(p.name()), Some(p));
        }
        assert_eq!(Proto::parse("chat"), None);
    }

    #[test]
    fn the_generator_is_seeded() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(Rng::new(8).next_u64(), a[0]);
    }
}
