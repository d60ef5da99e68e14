//! # Exercise 5: add an idle timeout to a blocking server
//!
//! **The setting.** [`serve`] is a thread-per-connection echo server: each connection gets a
//! thread that blocks in `read` until the client sends something. That is simple and correct
//! for clients that talk, and a leak for clients that don't: a client that connects and says
//! nothing (by accident, or on purpose, as in a *slowloris* attack) holds its thread, its stack
//! and its socket for ever. In a thread pool, a few such clients hold every worker and stop the
//! service for everyone.
//!
//! **Why the kernel must do it.** A thread blocked in `read` runs no code, so no check of a
//! clock inside the loop can run either; and nothing else can wake it. The socket option
//! `SO_RCVTIMEO` (`TcpStream::set_read_timeout`) asks the kernel to end a `read` that has
//! received nothing for that long, with an error: `WouldBlock` on Linux and macOS (the
//! `EAGAIN` of a non-blocking socket), `TimedOut` on Windows. Accept both.
//!
//! **What to write** (in `starter.rs`):
//! 1. `arm_idle_timeout`: set the read timeout to `idle_timeout`. Note that
//!    `set_read_timeout(Some(Duration::ZERO))` is an error, not "no timeout".
//! 2. In [`serve_connection`]'s loop, the arm for a read that timed out: that is not a broken
//!    connection but one that was idle too long. Send [`IDLE_GOODBYE`] (so the client knows
//!    why) and close it by returning `Ok(())`.
//!
//! The timeout is per `read`, so it is an *idle* timeout: a client that sends a byte at least
//! every `idle_timeout` is never closed. (A deadline for a whole request, like nginx's
//! `client_header_timeout`, must shrink the timeout before each read instead: the lab does that.)
//!
//! **How it is graded.** `cargo test --test idle_timeout` starts the server with a 500 ms
//! timeout, opens one client that says nothing and one that sends a line every 50 ms. The idle
//! one must get [`IDLE_GOODBYE`] and the end of the stream within 5 s (and not before the
//! timeout); the active one must be answered throughout, for three times the timeout.
//!
//! **The lab does it for real** in `servers/src/conn/blocking_io.rs` (`serve_connection` and
//! `ReadTimeout::arm`, which sets `SO_RCVTIMEO` to what is left of an idle or request timeout)
//! and `servers/src/conn/deadline.rs` (which of the two timeouts is running). The *slowloris*
//! lesson in `docs/EXPERIMENTS.md` shows a pool starved without it and saved with it.

use std::io;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

#[cfg(feature = "solutions")]
mod solution;
#[cfg(feature = "solutions")]
pub use solution::serve_connection;

#[cfg(not(feature = "solutions"))]
mod starter;
#[cfg(not(feature = "solutions"))]
pub use starter::serve_connection;

/// What a connection closed for idleness hears last.
pub const IDLE_GOODBYE: &[u8] = b"idle timeout\n";

/// Accept connections for ever; each is served by [`serve_connection`] on its own thread.
pub fn serve(listener: TcpListener, idle_timeout: Duration) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept()?;
        thread::spawn(move || {
            // A connection's error (a reset, say) ends that connection only.
            let _ = serve_connection(stream, idle_timeout);
        });
    }
}
