//! Reference solution for exercise 1.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;

use super::{LineTooLong, MAX_LINE, TOO_LONG_REPLY, reply};

/// Cuts a byte stream into lines.
#[derive(Debug, Default)]
pub struct LineFramer {
    /// What arrived and is not yet handed out as a line: the start of a line, perhaps several.
    buffered: Vec<u8>,
    /// How many bytes at the start of `buffered` are already known to hold no `\n`: a line
    /// that arrives one byte per read is then searched once in total, not once per byte.
    scanned: usize,
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
        let unsearched = &self.buffered[self.scanned..];
        match unsearched.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let newline = self.scanned + i;
                if newline > MAX_LINE {
                    return Err(LineTooLong);
                }
                // Removing from the front moves what follows; the buffer holds at most a few
                // lines, so that copy is small (a ring buffer or an offset would avoid it).
                let mut line: Vec<u8> = self.buffered.drain(..=newline).collect();
                line.pop(); // the `\n`
                self.scanned = 0;
                Ok(Some(line))
            }
            None if self.buffered.len() > MAX_LINE => Err(LineTooLong),
            None => {
                self.scanned = self.buffered.len();
                Ok(None)
            }
        }
    }
}

/// Serve one connection until the peer closes it: read whatever arrived, answer every line
/// that is now complete, keep the rest for the next read.
pub fn serve_lines(mut stream: TcpStream) -> io::Result<()> {
    let mut framer = LineFramer::new();
    let mut chunk = vec![0; 16 * 1024];
    let mut out = Vec::new();
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(()), // the peer closed its side; a partial line has no answer
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        framer.push(&chunk[..n]);
        out.clear();
        loop {
            match framer.next_line() {
                Ok(Some(line)) => reply(&line, &mut out),
                Ok(None) => break,
                Err(LineTooLong) => {
                    out.extend_from_slice(TOO_LONG_REPLY);
                    stream.write_all(&out)?;
                    return Ok(());
                }
            }
        }
        // One write for all the replies to one read: coalesced requests, coalesced replies.
        stream.write_all(&out)?;
    }
}
