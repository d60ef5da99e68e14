//! # `blocking`: one client at a time
//!
//! The simplest server there is: one thread accepts a connection, serves it until the client
//! leaves, and only then accepts the next.
//!
//! ```text
//!   accept ──► serve A ─────────────────────────► accept ──► serve B ──► …
//!                 ▲                                             ▲
//!   client A ─────┘ (as long as A stays connected,             │
//!   client B ── connects, waits in the kernel's backlog ────────┘  B gets nothing)
//! ```
//!
//! **What it costs.** One thread and one small buffer, whatever the load. There is no locking,
//! no scheduling, no event machinery: a request travels `read` → decode → `write` on one stack.
//! With a single client sending requests back to back, nothing is faster.
//!
//! **Where it breaks.** The second client. TCP completes B's handshake in the kernel, so B
//! believes it is connected, but no thread will read from it until A disconnects. One idle
//! client, or one slow one, denies service to everyone; throughput does not grow with
//! connections at all. The conformance suite asserts exactly this (the *idle-client* test).
//! `--idle-timeout` and `--request-timeout` bound the damage (the socket's `SO_RCVTIMEO` ends a
//! client that says nothing for that long) but cannot remove it: until then, everyone waits.
//! And `--max-conns` never bites here, since the server never holds two connections.
//!
//! **What production servers do instead.** Every other model in this lab: give each connection
//! its own thread, share a pool of threads, or multiplex many connections on one thread with
//! readiness events. Iterative servers survive only where one client at a time is the point
//! (a debugging console, a single-user tool).
//!
//! **How it routes chat.** It hardly has to: the room never holds more than one member. The
//! member gets its welcome and may talk, but nobody hears it; a second member is not even
//! welcomed until the first leaves, and then it has missed everything. The member is served by
//! the same two threads as in the other thread-based models ([`crate::conn::blocking_chat`]), so a
//! room of one still works and never hangs. The chat suite asserts exactly this lesson.

use std::io;
use std::net::TcpListener;

use std::rc::Rc;

use crate::conn::blocking_chat::{ThreadRoom, serve_member};
use crate::conn::blocking_io::{run_until_shutdown, serve_connection};
use crate::config::ServerConfig;
use crate::proto::Proto;
use crate::shutdown::{OpenConnections, Shutdown};

/// Serve connections one after another on the calling thread until `shutdown` is triggered.
pub fn run(listener: TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
    let conns = OpenConnections::new();
    // One client at a time on this thread: the store needs no lock.
    let store = config.local_store();
    let room = ThreadRoom::new(config.chat_queue);
    // One client at a time, so `--max-conns` never bites; the others wait in the listen backlog.
    run_until_shutdown(listener, shutdown, &conns, config, |stream, _place| {
        let stream = conns.track(stream);
        let session = config.session(Rc::clone(&store));
        // An error ends this connection only; the next accept is what matters.
        let _ = match config.proto {
            Proto::Chat => serve_member(&stream, &room, session),
            _ => serve_connection(&stream, session, config.connection_timeouts()),
        };
    })
}
