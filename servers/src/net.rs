//! Socket chores every model shares: raising the descriptor limit, surviving `accept()` errors
//! (running out of file descriptors above all), and closing after a protocol error without
//! losing the error reply.

use std::fs::File;
use std::io;

/// Raise this process's soft limit on open files to its hard limit and return the new soft limit.
///
/// Every connection is a file descriptor. The soft limit is often 1024, far below what the
/// `reactor` or `async` models can hold, while the hard limit (20000 on the lab machine) is what
/// the administrator actually allows; an unprivileged process may raise the one to the other.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit only reads the struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// The soft limit on open descriptors now (1024 if it cannot be read, the usual default).
pub fn fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_cur
}

/// Grow this process's descriptor table to `slots` entries now, while it has one thread, so
/// that no `accept()` ever has to grow it under load.
///
/// Linux starts a process with room for 64 descriptors and doubles the table when a new one does
/// not fit. In a process with more than one thread, growing it waits for an RCU grace period
/// (`expand_fdtable` calls `synchronize_rcu`), and on the lab's VM that is 10 to 30 ms inside the
/// `accept4` that returned descriptor 64, 128, 256, 512, 1024... An event loop that accepts on
/// the thread that serves stalls every client for that long, eight times on the way to 10,000
/// connections: `perf trace` of the reactor under the abuse suite's flood showed
/// `accept4` taking 29, 17 and 13 ms. A thread that only accepts (the threaded models) stalls
/// alone. Single-threaded, the kernel skips the wait; the table never shrinks, so one
/// `F_DUPFD_CLOEXEC` to the last slot at start-up is enough (tokio documents the same fix, and
/// Firecracker does it at start). The cost is kernel memory, 8 bytes a slot, not RSS.
pub fn presize_fd_table(slots: u64) -> io::Result<()> {
    let Some(last) = slots.checked_sub(1).filter(|&n| n >= 64) else {
        return Ok(()); // the table starts with 64 slots
    };
    let last = libc::c_int::try_from(last).unwrap_or(libc::c_int::MAX);
    let probe = File::open("/dev/null")?;
    // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we own onto the lowest free slot at or above
    // `last`; the duplicate is closed at once and nothing else refers to it.
    let dup = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&probe), libc::F_DUPFD_CLOEXEC, last) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` was just returned to us and is not used again.
    unsafe { libc::close(dup) };
    Ok(())
}

/// What a failed `accept()` means for the accept loop.
#[derive(Debug, PartialEq, Eq)]
pub enum AcceptFailure {
    /// Only that one connection failed (reset before we took it, a signal): accept the next.
    OneConnection,
    /// The process (or system) is out of file descriptors. Linux checks for a free descriptor
    /// *before* looking at the queue, so this says nothing about whether a client is waiting;
    /// an accept loop that simply retries spins at 100% CPU. See [`FdReserve`].
    OutOfFds,
    /// The kernel is short of memory or buffers: back off briefly, then try again.
    Resources,
    /// Not recoverable (the listener itself is broken): the server must stop.
    Fatal,
}

impl AcceptFailure {
    /// Classify an error returned by `accept()`.
    pub fn of(err: &io::Error) -> AcceptFailure {
        match err.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => AcceptFailure::OutOfFds,
            Some(libc::ENOBUFS | libc::ENOMEM) => AcceptFailure::Resources,
            Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT) => AcceptFailure::Fatal,
            // ECONNABORTED, EINTR, EPROTO, EPERM (a firewall rule), EOPNOTSUPP, ENETDOWN and
            // friends are errors of the one connection being accepted (accept(2), NOTES).
            _ => AcceptFailure::OneConnection,
        }
    }
}

/// What [`FdReserve::shed`] managed to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Shed {
    /// A waiting connection was accepted and closed at once: look for the next one.
    Closed,
    /// No connection was waiting: stop accepting until a new one arrives.
    NothingWaiting,
    /// There was no reserve descriptor to free: back off and try again later.
    NoReserve,
}

/// One descriptor held in reserve so that, when the process runs out, the server can still
/// accept a waiting connection and close it at once.
///
/// Without this, a server out of descriptors leaves the connection in the kernel's queue, and
/// the listener stays readable forever: a level-triggered loop spins, an edge-triggered one
/// goes deaf. Shedding one connection costs that client a closed connection, never the server.
#[derive(Debug)]
pub struct FdReserve {
    spare: Option<File>,
}

impl FdReserve {
    /// Take one descriptor (`/dev/null`) and keep it in reserve.
    pub fn new() -> FdReserve {
        FdReserve { spare: File::open("/dev/null").ok() }
    }

    /// Out of descriptors: free the reserve, let `try_accept` take a waiting connection *without
    /// blocking* (it must return `WouldBlock` when none waits), drop it (closing it), and take
    /// the reserve back.
    pub fn shed<T>(&mut self, try_accept: impl FnOnce() -> io::Result<T>) -> Shed {
        let Some(spare) = self.spare.take() else {
            self.spare = File::open("/dev/null").ok();
            return Shed::NoReserve;
        };
        drop(spare);
        let outcome = match try_accept() {
            Ok(conn) => {
                drop(conn);
                Shed::Closed
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Shed::NothingWaiting,
            // Some other failure of that one connection: it is gone from the queue either way.
            Err(_) => Shed::Closed,
        };
        self.spare = File::open("/dev/null").ok();
        outcome
    }
}

impl Default for FdReserve {
    fn default() -> Self {
        FdReserve::new()
    }
}

/// After a protocol error, a server writes its error reply and closes. If it closed while the
/// peer's request was still arriving, the kernel would answer with a reset, and a reset may
/// destroy the error reply before the peer reads it. So the server first shuts its sending side
/// (the peer sees the reply, then end-of-file), then reads and discards what the peer still
/// sends, for at most this long and this many bytes, before closing for good.
pub const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(1);
/// See [`LINGER_TIME`].
pub const LINGER_BYTES: usize = 1 << 20;

/// Drop up to `max` (more than 0) bytes a TCP peer has sent, without keeping them; returns how
/// many (0 at end-of-file). Blocks as the socket does: until input arrives, or `SO_RCVTIMEO`
/// runs out, or at once with `WouldBlock` on a non-blocking socket.
///
/// This is how the threaded models and tokio linger (see [`LINGER_TIME`]); the event loops
/// discard into the 64 KiB read buffer they already have. On Linux, `recv` with `MSG_TRUNC`
/// makes TCP drop the bytes instead of copying them, so there is no buffer and one call takes
/// everything queued. Small reads cost more than the bytes they move: a thread that refuses a
/// 1 MB request 4 KiB at a time makes 256 calls for it, each free to send the peer a window
/// update, and a thread per connection does so on eight threads at once. The suite's `oversize`
/// http cell, `target/release/abuse run --models thread-per-connection --scenarios oversize
/// --protos http --server-bin B`, five runs alternating three server builds B (first attempts):
/// 4 KiB reads (built at 3af6960), server CPU 3.2-4.3% and probe p99 0.5-3.1 ms, over the cell's
/// 2 ms bound in two runs; 64 KiB reads (3dc4b7f), 1.4-2.8% and 0.6-1.1 ms; `MSG_TRUNC`
/// (8b285e0), 1.8-2.1% and 0.5-0.7 ms.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn discard_input(socket: &impl std::os::fd::AsRawFd, max: usize) -> io::Result<usize> {
    // SAFETY: with `MSG_TRUNC`, TCP writes nothing through the buffer pointer; it only counts
    // the bytes it drops, so a null buffer is never touched.
    let n = unsafe { libc::recv(socket.as_raw_fd(), std::ptr::null_mut(), max, libc::MSG_TRUNC) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// See the Linux version above. Elsewhere `MSG_TRUNC` is for datagrams only, so the bytes are
/// read into a buffer and dropped, 64 KiB at a time (4 KiB reads cost more; see above).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn discard_input(socket: &impl std::os::fd::AsRawFd, max: usize) -> io::Result<usize> {
    let mut sink = [0u8; 64 * 1024];
    let len = max.min(sink.len());
    // SAFETY: reads into our own buffer, at most its length.
    let n = unsafe { libc::recv(socket.as_raw_fd(), sink.as_mut_ptr().cast(), len, 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// How many finished handshakes the kernel may queue for `accept()`. The default of std's
/// `bind` (128) drops connections when a load generator opens thousands at once; the kernel caps
/// this at `net.core.somaxconn` anyway.
pub const LISTEN_BACKLOG: i32 = 4096;

/// Bind a listening socket the way every model expects: `SO_REUSEADDR` (so a restarted server
/// is not refused its port while old connections sit in `TIME_WAIT`; two live listeners on one
/// port are still refused) and a deep accept queue.
pub fn bind(addr: std::net::SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// How long a connection that is closing waits for the peer to acknowledge its last replies.
pub const DELIVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Bytes written to this socket that the peer has not acknowledged yet, and still could:
/// `SIOCOUTQ`, except that a connection that was reset (or is otherwise closed) counts 0. Its
/// kernel keeps reporting the bytes it will never send, and a closing connection that waited for
/// them would sit out the whole [`DELIVERY_WAIT`] on a dead socket: a client that sends a request
/// and leaves without reading the reply draws a reset, and cost the server five seconds.
///
/// Linux only. Elsewhere (the BSDs and macOS, whose readiness API is kqueue) this says
/// `Unsupported`, which every caller reads as "nothing left to wait for": a closing connection
/// then closes at once, as most servers do, and a reset can destroy its last replies.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn unacknowledged(_socket: &impl std::os::fd::AsRawFd) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// See the other-platform version above.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn unacknowledged(socket: &impl std::os::fd::AsRawFd) -> io::Result<usize> {
    let fd = socket.as_raw_fd();
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (spelled TIOCOUTQ in libc; linux/sockios.h defines one as the other)
    // writes one int through the pointer we pass.
    if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if queued <= 0 || closed(fd)? {
        return Ok(0);
    }
    Ok(usize::try_from(queued).unwrap_or(0))
}

/// Whether the connection is in state `TCP_CLOSE`: reset, or timed out; nothing it holds will
/// be sent any more.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn closed(fd: std::os::fd::RawFd) -> io::Result<bool> {
    /// `TCP_CLOSE` in the kernel's `enum tcp_state` (include/net/tcp_states.h).
    const TCP_CLOSE: u8 = 7;
    // SAFETY: an all-zero `tcp_info` is a valid value of this plain C struct.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: TCP_INFO writes at most `len` bytes into `info` and the actual length into `len`.
    let got =
        unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, (&raw mut info).cast(), &mut len) };
    if got != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info.tcpi_state == TCP_CLOSE)
}

/// How often a closing connection looks again whether its last bytes were acknowledged: from
/// every millisecond (usually the first look already finds them acknowledged) doubling to this.
/// A connection whose peer is slow to acknowledge then costs a wake-up every 50 ms, not a
/// thousand a second; a reset ends the wait at once.
pub const DELIVERY_RECHECK_MAX: std::time::Duration = std::time::Duration::from_millis(50);

/// Why closing needs care: a reset throws away every reply still in the send queue, and two
/// things turn a close into a reset: closing with unread input (during a graceful shutdown the
/// server stops reading while clients may keep talking), and input arriving after our side sent
/// its FIN while reading is shut down (Linux resets such a connection at once, as RFC 1122
/// asks). So a closing connection first waits, with its sending side still open, until the
/// peer has acknowledged every reply, for at most [`DELIVERY_WAIT`]; only then does it send its
/// FIN and let the descriptor be closed. A reset after that loses nothing: the peer's kernel
/// already holds every byte. True if everything was delivered in time.
///
/// The kernel has no readiness event for "all acknowledged", so this blocking version (used by
/// the thread-based models, where waiting costs only the connection's own thread) looks again
/// after 1, 2, 4 … [`DELIVERY_RECHECK_MAX`] ms, sleeping in `poll(2)` on the socket in between,
/// which returns as soon as the connection is reset.
pub fn wait_until_delivered(stream: &std::net::TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + DELIVERY_WAIT;
    let mut step = Duration::from_millis(1);
    let delivered = loop {
        match unacknowledged(stream) {
            Ok(0) | Err(_) => break true,
            Ok(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            break false;
        }
        // No events asked for: poll still reports POLLERR and POLLHUP, which a reset raises.
        let mut watch = libc::pollfd { fd: stream.as_raw_fd(), events: 0, revents: 0 };
        let wait = step.min(deadline - now);
        // SAFETY: one valid pollfd, and its count.
        unsafe { libc::poll(&mut watch, 1, wait.as_millis().max(1) as libc::c_int) };
        step = (step * 2).min(DELIVERY_RECHECK_MAX);
    };
    let _ = stream.shutdown(std::net::Shutdown::Write);
    delivered
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::time::Duration;

    use super::discard_input;

    /// The bytes are really consumed, never more than asked, and what follows them arrives intact.
    #[test]
    fn discard_input_drops_exactly_what_it_is_asked_and_then_sees_end_of_file() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        const JUNK: usize = 300_000;
        let writer = std::thread::spawn(move || {
            client.write_all(&vec![b'j'; JUNK]).unwrap();
            client.write_all(b"after").unwrap();
            client.shutdown(Shutdown::Write).unwrap();
        });
        let mut dropped = 0;
        while dropped < JUNK {
            let n = discard_input(&server, JUNK - dropped).unwrap();
            assert!(n > 0, "end-of-file after {dropped} of {JUNK} bytes");
            dropped += n;
        }
        assert_eq!(dropped, JUNK);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"after");
        assert_eq!(discard_input(&server, 1024).unwrap(), 0);
        writer.join().unwrap();
    }
}
