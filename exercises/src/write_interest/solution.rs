//! Reference solution for exercise 3.

use std::io::{self, ErrorKind, Write};

use mio::{Interest, Registry};

use super::Conn;

impl Conn {
    /// Write as much of `self.pending` as the kernel takes now and keep the rest; then register
    /// `WRITABLE` interest if anything is left, and drop it if nothing is.
    pub(super) fn flush(&mut self, registry: &Registry) -> io::Result<()> {
        let mut written = 0;
        while written < self.pending.len() {
            match self.stream.write(&self.pending[written..]) {
                // A socket that takes nothing without saying `WouldBlock` will never take it.
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                // The send buffer is full: stop here, and let the WRITABLE event bring us back.
                // Retrying now would spin, and every other client on this thread would wait.
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.pending.drain(..written);

        // Interest only while output waits: a socket with room is writable nearly all the time,
        // so asking for WRITABLE with nothing to write would wake the loop for nothing.
        let want_writable = !self.pending.is_empty();
        if want_writable != self.write_interest {
            let interest =
                if want_writable { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            registry.reregister(&mut self.stream, self.token, interest)?;
            self.write_interest = want_writable;
        }
        Ok(())
    }
}
