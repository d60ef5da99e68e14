//! # Exercise 1: give a naive handler a framer
//!
//! **The protocol.** A client sends lines ending in `\n`; the server answers each line with its
//! length in bytes and the line itself: `hello\n` gets `5 hello\n`. The length makes visible
//! what the server *thought* the message was.
//!
//! **The bug in the starter.** [`serve_lines`] in `starter.rs` reads once and treats whatever
//! that one `read` returned as one message. Try it by hand and it seems to work, because one
//! line typed at a terminal arrives as one segment. But TCP is a byte stream, not a message
//! stream: it has no message boundaries at all.
//! - *Coalesced writes*: a client that sends `a\nbb\nccc\n` in one `write` (or three writes the
//!   kernel merged, as Nagle's algorithm does) is read in one go, and the naive server answers
//!   `8 a\nbb\nccc` once instead of `1 a`, `2 bb`, `3 ccc`.
//! - *Split writes*: a line sent in pieces (`hel`, a pause, `lo\n`) arrives in pieces, and the
//!   naive server answers `3 hel` before the rest has even arrived.
//!
//! **What to write** (in `starter.rs`):
//! 1. [`LineFramer::next_line`]: keep the bytes that arrived (the given `push` appends them)
//!    and hand out one complete line at a time. A read may hold several lines, one line and the
//!    start of the next, or only part of a line: `Ok(None)` means *need more bytes*, a normal
//!    outcome, not an error. A peer that never sends `\n` must not make the server buffer
//!    without bound: more than [`MAX_LINE`] bytes without a newline is [`LineTooLong`].
//! 2. [`serve_lines`]: read, push what was read into the framer, answer *every* complete line
//!    with [`reply`], then read again. On [`LineTooLong`], send [`TOO_LONG_REPLY`] and close.
//!
//! **How it is graded.** `cargo test --test framer` checks the framer without sockets, then
//! talks to [`serve`] over real TCP with coalesced writes and with a line split over several
//! writes with pauses between them. The starter's naive handler fails both.
//!
//! **The lab does it for real** in `servers/src/proto/line.rs` (the framer, which also remembers
//! how far it already searched so that a line arriving a byte at a time costs O(n), not O(n²))
//! and `servers/src/proto/echo_line.rs` (the protocol that uses it). `docs/EXPERIMENTS.md`'s
//! *framing* lesson shows the naive handler breaking under load.

use std::io;
use std::net::TcpListener;
use std::thread;

#[cfg(feature = "solutions")]
mod solution;
#[cfg(feature = "solutions")]
pub use solution::{LineFramer, serve_lines};

#[cfg(not(feature = "solutions"))]
mod starter;
#[cfg(not(feature = "solutions"))]
pub use starter::{LineFramer, serve_lines};

/// The longest line accepted, without its `\n`.
pub const MAX_LINE: usize = 8 * 1024;

/// What a line over [`MAX_LINE`] gets before the connection is closed.
pub const TOO_LONG_REPLY: &[u8] = b"ERR line too long\n";

/// A line grew past [`MAX_LINE`] bytes without a `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Append the answer to one line (given without its `\n`): its length, a space, the line.
pub fn reply(line: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(line.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(line);
    out.push(b'\n');
}

/// Accept connections for ever, each served by [`serve_lines`] on a thread of its own (the
/// `thread-per-connection` model): the framing, not the scheduling, is this exercise.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept()?;
        thread::spawn(move || {
            // A connection's error (a reset, say) ends that connection only.
            let _ = serve_lines(stream);
        });
    }
}
