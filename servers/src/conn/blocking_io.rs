//! The part the three thread-based models (`blocking`, `thread-per-connection`, `thread-pool`)
//! share: an accept loop and a loop that serves one connection with blocking reads and writes.
//!
//! Those three models differ *only* in which thread runs [`serve_connection`], so that code lives
//! here once; `process-per-connection` runs the same loop in a process of its own. A blocking
//! call is the simplest possible I/O: `read` sleeps until bytes arrive, `write` sleeps until the
//! kernel has room. The thread it runs on can do nothing else meanwhile, which is exactly what
//! the three models trade in different ways.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::admission::{Admitted, refuse};
use super::deadline::{Clock, Timeouts, Waiting};
use crate::buffer::{InputBuffer, recycle};
use crate::config::ServerConfig;
use crate::net::{
    AcceptFailure, FdReserve, LINGER_BYTES, LINGER_TIME, Shed, discard_input, wait_until_delivered,
};
use crate::session::Session;
use crate::shutdown::{OpenConnections, Shutdown, Tracked};
use crate::store::Store;

/// Accept connections until shutdown is triggered, handing each to `on_connection`.
///
/// A thread blocked in `accept()` cannot be interrupted politely, so shutdown wakes it the
/// old-fashioned way: by connecting to the listener. The loop sees the flag and drops that
/// connection. Errors end at most one connection; a broken listener ends the loop with an error.
pub fn accept_until_shutdown(
    listener: &TcpListener,
    shutdown: &Shutdown,
    mut on_connection: impl FnMut(TcpStream),
) -> io::Result<()> {
    let wake_addr = connectable(listener.local_addr()?);
    shutdown.on_trigger(move || {
        let _ = TcpStream::connect_timeout(&wake_addr, Duration::from_secs(1));
    });
    let mut reserve = FdReserve::new();
    while !shutdown.is_triggered() {
        match listener.accept() {
            Ok((stream, _)) if shutdown.is_triggered() => drop(stream),
            Ok((stream, _)) => on_connection(stream),
            Err(e) => match AcceptFailure::of(&e) {
                AcceptFailure::OneConnection => {}
                AcceptFailure::OutOfFds => {
                    // While out of descriptors, a blocking accept fails at once whether or not
                    // anyone waits, so only a pause keeps this loop from spinning.
                    if reserve.shed(|| accept_nonblocking(listener)) != Shed::Closed {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                AcceptFailure::Resources => std::thread::sleep(Duration::from_millis(10)),
                AcceptFailure::Fatal => return Err(e),
            },
        }
    }
    Ok(())
}

/// Accept a waiting connection, or fail with `WouldBlock` at once if none waits.
fn accept_nonblocking(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let accepted = listener.accept();
    listener.set_nonblocking(false)?;
    accepted.map(|(stream, _)| stream)
}

/// The address to connect to in order to reach a listener bound to `addr` (a listener on the
/// wildcard address is reached through loopback).
fn connectable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into()),
            SocketAddr::V6(_) => addr.set_ip(std::net::Ipv6Addr::LOCALHOST.into()),
        }
    }
    addr
}

/// What [`serve_connection`] serves: a blocking socket, and a way to learn that the server has
/// begun draining. The threaded models track their sockets in an [`OpenConnections`] set; a
/// process serving one connection learns it from a signal instead.
pub trait Connection {
    /// The connection's socket.
    fn socket(&self) -> &TcpStream;
    /// Has the server begun draining? Checked after every read: the requests read so far are
    /// answered, then the connection closes.
    fn is_draining(&self) -> bool;
}

impl Connection for Tracked<TcpStream> {
    fn socket(&self) -> &TcpStream {
        self
    }
    fn is_draining(&self) -> bool {
        Tracked::is_draining(self)
    }
}

/// Serve one connection until the peer closes it: read, answer every complete request, write.
///
/// The timeouts become socket options, because a thread blocked in `read` or `write` can be
/// woken by nothing else: `SO_RCVTIMEO` is set before each read to what is left of the idle or
/// request timeout (see [`super::deadline`]), and `SO_SNDTIMEO` once to the write timeout, which
/// ends a `write` that has sent nothing for that long. A timeout closes the connection.
///
/// Errors (a reset, a broken pipe) end this connection only; they are returned so the caller
/// can count them, never to stop the server.
pub fn serve_connection<S: Store>(
    conn: &impl Connection,
    mut session: Session<S>,
    timeouts: Timeouts,
) -> io::Result<()> {
    let stream = conn.socket();
    // Nagle's algorithm would hold back a small reply until the previous one is acknowledged;
    // for a request/response protocol that adds a round trip's delay to every reply.
    stream.set_nodelay(true)?;
    stream.set_write_timeout(timeouts.write)?;
    let mut read_timeout = ReadTimeout::default();
    let mut clock = Clock::start(Instant::now());
    let mut input = InputBuffer::new(session.max_request_len());
    let mut output = Vec::new();
    loop {
        if !read_timeout.arm(stream, &clock, &timeouts)? {
            return Ok(()); // the request or idle timeout ran out: close
        }
        let n = match (&*stream).read(input.spare()) {
            Ok(0) => break, // the peer finished sending, or shutdown stopped our reading
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // `SO_RCVTIMEO` expired: `arm` decides, on the next turn, whether that was the
            // whole timeout (it may have been armed before a shorter one started to run).
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        };
        input.filled(n);
        let mut requests = 0;
        loop {
            let served = input.serve(&mut session, &mut output);
            requests += served.requests;
            // A peer that reads nothing makes this fail after the write timeout (`SO_SNDTIMEO`):
            // the error ends the connection.
            (&*stream).write_all(&output)?;
            recycle(&mut output);
            if served.close {
                close_after_final_reply(stream);
                return Ok(());
            }
            if !served.more {
                break;
            }
            // The replies reached the output budget. `write_all` returned, so the kernel took
            // them (a peer that reads nothing keeps us blocked there instead, holding no more
            // than this): serve the rest of what was read.
        }
        clock.observe(Instant::now(), Waiting::of(0, input.unserved()), requests > 0);
        if conn.is_draining() {
            break; // shutdown: what was read is answered; read no more
        }
    }
    // Every complete request is answered: close without risking a reset (see the function).
    wait_until_delivered(stream);
    Ok(())
}

/// The `SO_RCVTIMEO` last set on a socket, so that it is set again only when it changes (an
/// idle connection's timeout is the same on every read; a partial request's shrinks).
#[derive(Default)]
struct ReadTimeout {
    current: Option<Duration>,
}

impl ReadTimeout {
    /// Set the socket's read timeout to what is left of the running timeout. False if nothing
    /// is left: the connection is due.
    fn arm(&mut self, stream: &TcpStream, clock: &Clock, timeouts: &Timeouts) -> io::Result<bool> {
        let left = match clock.due(timeouts) {
            None => None,
            Some(due) => match due.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Ok(false),
            },
        };
        // Whole milliseconds, rounded up: the kernel's resolution, and a value that repeats.
        let left = left
            .map(|d| Duration::from_millis(d.as_millis().saturating_add(1).try_into().unwrap_or(u64::MAX)));
        if left != self.current {
            stream.set_read_timeout(left)?;
            self.current = left;
        }
        Ok(true)
    }
}

/// Close after the last reply (an error, or HTTP's `Connection: close`) without letting a reset
/// destroy it (see [`LINGER_TIME`]).
pub fn close_after_final_reply(stream: &TcpStream) {
    let _ = stream.shutdown(Direction::Write);
    let deadline = Instant::now() + LINGER_TIME;
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        // Each wait gets only what is left of the linger: with the whole of it each time, a peer
        // sending a byte just before every timeout would stretch the linger to twice its length.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match discard_input(stream, LINGER_BYTES - discarded) {
            Ok(0) => return,
            Ok(n) => discarded += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Run a thread-based model's accept loop until shutdown, then drain its connections.
///
/// Draining runs on a thread of its own, started now and waiting for the trigger, because in the
/// `blocking` model the accepting thread may itself be stuck serving a connection when shutdown
/// comes: someone else must enforce the grace period.
///
/// A connection beyond `--max-conns` is refused here, on the accepting thread, and never
/// reaches `on_connection`; the others come with their place, which they give back by dropping
/// it when they close.
pub fn run_until_shutdown(
    listener: TcpListener,
    shutdown: &Shutdown,
    conns: &OpenConnections,
    config: &ServerConfig,
    mut on_connection: impl FnMut(TcpStream, Admitted),
) -> io::Result<()> {
    let (grace, admission, proto) = (config.grace, config.admission(), config.proto);
    let drainer = {
        let (shutdown, conns) = (shutdown.clone(), conns.clone());
        std::thread::Builder::new().name("drain".into()).spawn(move || {
            shutdown.wait();
            conns.drain(grace)
        })?
    };
    let accepted = accept_until_shutdown(&listener, shutdown, |stream| match admission.admit() {
        Some(admitted) => on_connection(stream, admitted),
        None => refuse(&stream, proto),
    });
    // Stop listening before the grace period: a client connecting now is refused at once
    // instead of being accepted by the kernel and then never served.
    drop(listener);
    // If the accept loop failed, the server is going down anyway: release the drainer too.
    shutdown.trigger();
    match drainer.join() {
        Ok(0) => {}
        Ok(cut) => crate::log::line(format_args!("grace period over: closed {cut} connection(s) still open")),
        Err(_) => crate::log::line(format_args!("the drain thread panicked")),
    }
    accepted
}
