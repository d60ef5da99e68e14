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

use crate::buffer::{InputBuffer, recycle};
use crate::net::{AcceptFailure, FdReserve, LINGER_BYTES, LINGER_TIME, Shed, wait_until_delivered};
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
/// Errors (a reset, a broken pipe) end this connection only; they are returned so the caller
/// can count them, never to stop the server.
pub fn serve_connection<S: Store>(conn: &impl Connection, mut session: Session<S>) -> io::Result<()> {
    let stream = conn.socket();
    // Nagle's algorithm would hold back a small reply until the previous one is acknowledged;
    // for a request/response protocol that adds a round trip's delay to every reply.
    stream.set_nodelay(true)?;
    let mut input = InputBuffer::new(session.max_request_len());
    let mut output = Vec::new();
    loop {
        let n = match (&*stream).read(input.spare()) {
            Ok(0) => break, // the peer finished sending, or shutdown stopped our reading
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        input.filled(n);
        loop {
            let served = input.serve(&mut session, &mut output);
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
        if conn.is_draining() {
            break; // shutdown: what was read is answered; read no more
        }
    }
    // Every complete request is answered: close without risking a reset (see the function).
    wait_until_delivered(stream);
    Ok(())
}

/// Close after the last reply (an error, or HTTP's `Connection: close`) without letting a reset
/// destroy it (see [`LINGER_TIME`]).
pub fn close_after_final_reply(stream: &TcpStream) {
    let _ = stream.shutdown(Direction::Write);
    let _ = stream.set_read_timeout(Some(LINGER_TIME));
    let deadline = Instant::now() + LINGER_TIME;
    let mut discarded = 0;
    let mut sink = [0u8; 4096];
    while discarded < LINGER_BYTES && Instant::now() < deadline {
        match (&*stream).read(&mut sink) {
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
pub fn run_until_shutdown(
    listener: TcpListener,
    shutdown: &Shutdown,
    conns: &OpenConnections,
    grace: Duration,
    on_connection: impl FnMut(TcpStream),
) -> io::Result<()> {
    let drainer = {
        let (shutdown, conns) = (shutdown.clone(), conns.clone());
        std::thread::Builder::new().name("drain".into()).spawn(move || {
            shutdown.wait();
            conns.drain(grace)
        })?
    };
    let accepted = accept_until_shutdown(&listener, shutdown, on_connection);
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
