//! Non-blocking sockets whose waits are `async`: std's sockets in non-blocking mode, each
//! registered with the [`Reactor`] under a key.
//!
//! Every operation has the same shape: try the system call; if it says `WouldBlock`, tell the
//! reactor (the socket is not ready after all) and wait until it is; then try again.
//!
//! ```text
//!   read ─► Ok(n) ─► done          (a short read drained the socket: readiness cleared too)
//!        └► WouldBlock ─► clear readiness ─► readable().await (arms the interest) ─► read again
//! ```

use std::future::poll_fn;
use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown as Direction;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::reactor::{self, Reactor};

/// A listening socket.
pub struct TcpListener {
    io: std::net::TcpListener,
    key: usize,
    reactor: Rc<Reactor>,
}

impl TcpListener {
    pub fn new(io: std::net::TcpListener, reactor: Rc<Reactor>) -> io::Result<TcpListener> {
        io.set_nonblocking(true)?;
        let key = reactor.register(&io)?;
        Ok(TcpListener { io, key, reactor })
    }

    /// The next connection, registered with the reactor.
    pub async fn accept(&self) -> io::Result<TcpStream> {
        loop {
            poll_fn(|cx| self.reactor.poll_ready(self.io.as_fd(), self.key, reactor::Direction::Read, cx))
                .await?;
            match self.try_accept() {
                Ok(stream) => return TcpStream::new(stream, Rc::clone(&self.reactor)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Accept a waiting connection now, or fail with `WouldBlock` if none waits (which also
    /// means the next `accept` waits for a new arrival).
    pub fn try_accept(&self) -> io::Result<std::net::TcpStream> {
        match self.io.accept() {
            Ok((stream, _)) => Ok(stream),
            Err(e) => {
                if e.kind() == ErrorKind::WouldBlock {
                    self.reactor.clear_ready(self.key, reactor::Direction::Read);
                }
                Err(e)
            }
        }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.reactor.deregister(self.io.as_fd(), self.key);
    }
}

/// A connected socket.
pub struct TcpStream {
    io: std::net::TcpStream,
    key: usize,
    reactor: Rc<Reactor>,
}

impl TcpStream {
    pub fn new(io: std::net::TcpStream, reactor: Rc<Reactor>) -> io::Result<TcpStream> {
        io.set_nonblocking(true)?;
        let key = reactor.register(&io)?;
        Ok(TcpStream { io, key, reactor })
    }

    pub fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    /// Shutdown began: read nothing more (see `crate::shutdown`).
    pub fn is_draining(&self) -> bool {
        self.reactor.is_draining()
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.set_nodelay(on)
    }

    /// Ready when a read is worth trying. While draining, always: the read then ends reading.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reactor.is_draining() {
            return Poll::Ready(Ok(()));
        }
        self.reactor.poll_ready(self.io.as_fd(), self.key, reactor::Direction::Read, cx)
    }

    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.reactor.poll_ready(self.io.as_fd(), self.key, reactor::Direction::Write, cx)
    }

    /// Wait until a read is worth trying, holding no buffer meanwhile.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_readable(cx)).await
    }

    /// Read what is there now, without waiting. `Ok(0)` is end-of-file, or shutdown (nothing
    /// left to read while draining ends reading, as `SHUT_RD` does for the threaded models).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&self.io).read(buf) {
                Ok(n) => {
                    if n < buf.len() {
                        // A short read emptied the socket: the next read would say WouldBlock,
                        // so skip it and wait for an event instead.
                        self.reactor.clear_ready(self.key, reactor::Direction::Read);
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.reactor.clear_ready(self.key, reactor::Direction::Read);
                    return if self.is_draining() { Ok(0) } else { Err(e) };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Write what the kernel takes now, without waiting.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match (&self.io).write(buf) {
                Ok(n) => {
                    if n < buf.len() {
                        // The send buffer is full: the next write would say WouldBlock.
                        self.reactor.clear_ready(self.key, reactor::Direction::Write);
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() == ErrorKind::WouldBlock {
                        self.reactor.clear_ready(self.key, reactor::Direction::Write);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Write all of `buf`, waiting for room as often as needed.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            poll_fn(|cx| self.poll_writable(cx)).await?;
            match self.try_write(buf) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Send end-of-file after what is written. Errors mean the peer is gone: nothing to end.
    pub fn shutdown_write(&self) {
        let _ = self.io.shutdown(Direction::Write);
    }

    /// Bytes written that the peer has not acknowledged yet.
    pub fn unacknowledged(&self) -> io::Result<usize> {
        crate::net::unacknowledged(&self.io)
    }
}

/// The socket's descriptor, for what needs only that (a refusal, the watchdog's shutdown).
impl std::os::fd::AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.io.as_raw_fd()
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        // Out of the poller first; the socket closes when the `io` field is dropped after this.
        self.reactor.deregister(self.io.as_fd(), self.key);
    }
}
