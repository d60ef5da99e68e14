//! `--max-conns`: how many connections a server holds at once, and the polite refusal of one
//! more. Every model counts its connections here, whatever runs them.
//!
//! Without a cap a server takes connections until something else runs out: descriptors
//! (`accept` fails with `EMFILE`, and the client sees nothing it can explain), threads, or
//! memory. With one, the client beyond it gets its protocol's "busy" answer at once and can
//! retry or go elsewhere; the ones already connected are not slowed down.
//!
//! The default follows Redis, which caps `maxclients` at the descriptor limit less 32 kept for
//! its own files: here the limit the `server` binary raised at start-up, less
//! [`RESERVED_FDS`]. On the lab machine that is 19,968: above the 10,016 connections of the
//! suite's largest experiment, so no experiment meets it, and below the point where `accept`
//! would fail.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::proto::Proto;

/// Descriptors kept back from connections for the server's own use: listeners, the epoll or
/// io_uring instance, wakers, the spare descriptor of `crate::net::FdReserve`, a log file.
pub const RESERVED_FDS: u64 = 32;

/// The default `--max-conns` for a process that may open `fd_limit` descriptors.
pub fn default_max_conns(fd_limit: u64) -> usize {
    usize::try_from(fd_limit.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX)
}

/// The count of open connections against the cap, shared by every thread of a server.
#[derive(Clone, Debug)]
pub struct Admission {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub struct Admitted {
    open: Arc<AtomicUsize>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    /// At most `max` connections at once.
    pub fn new(max: usize) -> Admission {
        Admission { open: Arc::new(AtomicUsize::new(0)), max }
    }

    /// A place for one more connection, or `None` when the server holds `max` already.
    pub fn admit(&self) -> Option<Admitted> {
        self.open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| Admitted { open: Arc::clone(&self.open) })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Tell the peer of a connection the server will not take that it is full, then let the caller
/// close it. Never blocks: the refusal is one small write into an empty send buffer, made with
/// `MSG_DONTWAIT` so that any socket (blocking or not, std, mio or tokio) can be refused the
/// same way. Our side is shut after it, and whatever the client already sent is read and
/// dropped, because closing a socket with unread input makes the kernel send a reset, which
/// can destroy the refusal before the client reads it.
pub fn refuse(socket: &impl AsRawFd, proto: Proto) {
    let fd = socket.as_raw_fd();
    let reply = proto.refusal_at_capacity();
    if !reply.is_empty() {
        let _ = send_now(fd, reply);
    }
    // SAFETY: `fd` is an open socket owned by the caller for the duration of this call.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        // SAFETY: reads into our own buffer, at most its length.
        let n = unsafe { libc::recv(fd, sink.as_mut_ptr().cast(), sink.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            break;
        }
    }
}

fn send_now(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: sends from a slice we borrow, at most its length; `MSG_NOSIGNAL` turns a closed
    // peer into an error instead of SIGPIPE.
    let n = unsafe {
        libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_holds_at_most_max_and_gives_places_back() {
        let admission = Admission::new(2);
        let a = admission.admit().unwrap();
        let _b = admission.admit().unwrap();
        assert!(admission.admit().is_none());
        drop(a);
        assert_eq!(admission.open(), 1);
        assert!(admission.admit().is_some());
    }

    #[test]
    fn the_default_cap_keeps_descriptors_for_the_server() {
        assert_eq!(default_max_conns(20_000), 19_968);
        assert_eq!(default_max_conns(10), 1);
    }
}
