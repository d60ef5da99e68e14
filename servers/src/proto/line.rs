//! Newline framing, shared by `echo-line` and `chat`: where the next complete line ends, and
//! when a line has grown past the limit.
//!
//! The decoder gives up as soon as it holds `max_line + 1` bytes without a newline, so a peer
//! that never sends `\n` cannot make a server keep more than that. And it remembers how much of
//! a partial line it already searched, so a line that arrives one byte per read costs O(n) in
//! total, not O(n²).

/// What the input holds next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A whole line of `len` bytes, its `\n` included.
    Complete { len: usize },
    /// No `\n` yet, and not too long so far.
    Incomplete,
    /// The line is longer than the limit (counted without its `\n`), with or without its `\n`.
    TooLong,
}

/// Finds line ends, resuming where the previous call stopped.
#[derive(Debug)]
pub struct LineFramer {
    max_line: usize,
    /// How many bytes of the pending partial line were already searched for `\n`.
    scanned: usize,
}

impl LineFramer {
    /// Accepts lines of at most `max_line` bytes before the `\n`.
    pub fn new(max_line: usize) -> LineFramer {
        LineFramer { max_line, scanned: 0 }
    }

    /// The limit, without the `\n`.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// The longest line with its `\n`.
    pub fn max_request_len(&self) -> usize {
        self.max_line + 1
    }

    /// Looks at `input`, which starts at the beginning of a line (the same bytes as last time,
    /// plus whatever arrived since, until a line is complete or too long).
    #[inline]
    pub fn next(&mut self, input: &[u8]) -> Line {
        let from = self.scanned.min(input.len());
        match memchr::memchr(b'\n', &input[from..]) {
            Some(i) => {
                let newline = from + i;
                self.scanned = 0;
                if newline > self.max_line { Line::TooLong } else { Line::Complete { len: newline + 1 } }
            }
            None if input.len() > self.max_line => {
                self.scanned = 0;
                Line::TooLong
            }
            None => {
                self.scanned = input.len();
                Line::Incomplete
            }
        }
    }
}

/// The one-line reply to a line over the limit: `ERR line longer than N bytes`. `echo-line` sends
/// it before closing, and `chat` sends it to the sender alone.
pub fn too_long(max_line: usize, out: &mut Vec<u8>) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = writeln!(out, "ERR line longer than {max_line} bytes");
}
