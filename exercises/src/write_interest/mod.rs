//! # Exercise 3: complete a reactor's write interest
//!
//! **The setting.** [`serve`] is a one-thread echo server on an event loop (mio), like the
//! lab's `reactor` model: every socket is non-blocking, and the loop sleeps in `poll` until the
//! kernel says a socket is ready. It is all written except what happens when the kernel will
//! not take the output: `Conn::flush`.
//!
//! **Why it is hard.** A non-blocking `write` takes only what fits in the socket's send buffer
//! *now*, and says `WouldBlock` when nothing fits. A client that reads slowly (or not at all)
//! fills that buffer quickly. The loop must then:
//! - **keep the rest** (`pending`), not drop it: a short write is normal, not an error;
//! - **not wait for it**: blocking or retrying in a loop (spinning) stalls every other client
//!   on this thread, because there is only one thread;
//! - **ask to be told** when the socket can take more: register `WRITABLE` interest, and
//!   write again when that event comes;
//! - **stop asking** once `pending` is empty, or the loop is woken for nothing.
//!
//! The given code already does the other half of back-pressure: it stops *reading* from a
//! connection while [`HIGH_WATER`] bytes wait to be written to it (otherwise a client that
//! sends but never reads would make the server buffer without bound), and resumes reading
//! after a flush makes room.
//!
//! **What to write** (in `starter.rs`): `Conn::flush`, called after every read and on every
//! `WRITABLE` event. Write from the front of `self.pending` until it is empty or the kernel
//! says `WouldBlock`; remove what was written; then make the registration match: `READABLE |
//! WRITABLE` while anything is pending, `READABLE` alone when nothing is (`registry.reregister`,
//! and `self.write_interest` to remember which one is set). Retry `Interrupted`; any other
//! error ends the connection (return it).
//!
//! **How it is graded.** `cargo test --test write_interest` sends 16 MiB to a client that reads
//! 1 MiB and then stops reading. While that client's output is stuck, a second client must
//! still get its echo (a server that blocks or spins in `flush` cannot answer it). Then the
//! first client reads the rest, and every byte must come back, in order, before the end of the
//! stream.
//!
//! **The lab does it for real** in `servers/src/conn/nonblocking.rs` (`send`, `on_writable`,
//! `set_write_interest`: output pending, interest on, flush, interest off, resume reading) and
//! `servers/src/models/reactor.rs` (the loop).

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};

#[cfg(feature = "solutions")]
mod solution;

#[cfg(not(feature = "solutions"))]
mod starter;

/// Stop reading from a connection while this many bytes wait to be written back to it.
pub const HIGH_WATER: usize = 256 * 1024;

/// The listener's token; connections count up from 0 and never reach it.
const LISTENER: Token = Token(usize::MAX);

/// One client, as the event loop sees it.
// `token` and `write_interest` are for the `flush` you write; until then nothing reads them.
#[cfg_attr(not(feature = "solutions"), allow(dead_code))]
pub struct Conn {
    stream: TcpStream,
    token: Token,
    /// Bytes read and not yet written back, oldest first.
    pending: Vec<u8>,
    /// Whether the socket is registered for `WRITABLE` as well as `READABLE`.
    write_interest: bool,
    /// Reading stopped at [`HIGH_WATER`] before `WouldBlock`: edge-triggered readiness will not
    /// announce the bytes already waiting again, so the loop must read after the next flush.
    read_paused: bool,
    /// The peer closed its sending side: close once `pending` is written.
    read_closed: bool,
}

/// Run the echo loop for ever on this thread (tests run it on a thread of their own).
pub fn serve(listener: std::net::TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next_token = 0;
    let mut events = Events::with_capacity(256);
    loop {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            result => result?,
        }
        for event in &events {
            if event.token() == LISTENER {
                accept_all(&listener, poll.registry(), &mut conns, &mut next_token)?;
                continue;
            }
            let Some(conn) = conns.get_mut(&event.token()) else { continue };
            // An error (a reset, say) ends this connection, never the loop.
            let keep = conn.on_event(event, poll.registry()).unwrap_or(false);
            if !keep && let Some(mut gone) = conns.remove(&event.token()) {
                let _ = poll.registry().deregister(&mut gone.stream);
            }
        }
    }
}

/// Accept every waiting connection (edge-triggered: until `WouldBlock`).
fn accept_all(
    listener: &TcpListener,
    registry: &Registry,
    conns: &mut HashMap<Token, Conn>,
    next_token: &mut usize,
) -> io::Result<()> {
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let token = Token(*next_token);
        *next_token += 1;
        registry.register(&mut stream, token, Interest::READABLE)?;
        let conn = Conn {
            stream,
            token,
            pending: Vec::new(),
            write_interest: false,
            read_paused: false,
            read_closed: false,
        };
        conns.insert(token, conn);
    }
}

impl Conn {
    /// Handle one readiness event. False when the connection is finished.
    fn on_event(&mut self, event: &Event, registry: &Registry) -> io::Result<bool> {
        if event.is_writable() {
            self.flush(registry)?;
        }
        if (event.is_readable() || self.read_paused) && !self.read_closed {
            self.read_and_echo(registry)?;
        }
        // Close only once every byte read has been written back.
        Ok(!(self.read_closed && self.pending.is_empty()))
    }

    /// Read until `WouldBlock` or the end of the stream, sending what was read back as it
    /// goes; pause at [`HIGH_WATER`] bytes of pending output until a `WRITABLE` event.
    fn read_and_echo(&mut self, registry: &Registry) -> io::Result<()> {
        let mut chunk = [0; 64 * 1024];
        loop {
            if self.pending.len() >= HIGH_WATER {
                self.flush(registry)?;
                if self.pending.len() >= HIGH_WATER {
                    // Back-pressure: the peer must read before we read more of what it sends.
                    // `flush` asked for WRITABLE; that event brings us back here.
                    self.read_paused = true;
                    return Ok(());
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.read_closed = true;
                    break;
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.read_paused = false;
        self.flush(registry)
    }
}
