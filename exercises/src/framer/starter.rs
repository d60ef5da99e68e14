//! Your code for exercise 1: read `mod.rs` first.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;

use super::{LineTooLong, MAX_LINE, reply};

/// Cuts a byte stream into lines.
#[derive(Debug, Default)]
pub struct LineFramer {
    /// What arrived and is not yet handed out as a line: the start of a line, perhaps several.
    buffered: Vec<u8>,
}

impl LineFramer {
    pub fn new() -> LineFramer {
        LineFramer::default()
    }

    /// Keep bytes that were just read.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffered.extend_from_slice(bytes);
    }

    /// The next complete line without its `\n`, removed from the buffer; `Ok(None)` if no
    /// complete line is buffered yet; [`LineTooLong`] if a line is (or has grown) longer
    /// than [`MAX_LINE`] bytes without its `\n`.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineTooLong> {
        todo!("find the first `\\n` in `self.buffered`, take the line before it out of the buffer")
    }
}

/// Serve one connection until the peer closes it.
///
/// NAIVE: this treats each `read` as one message, which TCP never promised. Rewrite it to
/// push what it reads into a [`LineFramer`] and answer every complete line (see `mod.rs`).
pub fn serve_lines(mut stream: TcpStream) -> io::Result<()> {
    let mut chunk = vec![0; MAX_LINE + 1];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(()), // the peer closed its side
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let message = chunk[..n].strip_suffix(b"\n").unwrap_or(&chunk[..n]);
        let mut out = Vec::new();
        reply(message, &mut out);
        stream.write_all(&out)?;
    }
}
