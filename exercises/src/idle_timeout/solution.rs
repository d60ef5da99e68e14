//! Reference solution for exercise 5.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::IDLE_GOODBYE;

/// Echo everything the client sends until it closes, or until it stays silent too long.
pub fn serve_connection(mut stream: TcpStream, idle_timeout: Duration) -> io::Result<()> {
    arm_idle_timeout(&stream, idle_timeout)?;
    let mut buf = [0; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()), // the client closed its side
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // SO_RCVTIMEO expired: nothing arrived for `idle_timeout`. Say why, then close
            // (returning drops the stream). The goodbye is best effort: a peer that is gone
            // cannot hear it, and its error changes nothing.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let _ = stream.write_all(IDLE_GOODBYE);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        stream.write_all(&buf[..n])?;
    }
}

/// Make every `read` on `stream` give up after `idle_timeout` without data.
fn arm_idle_timeout(stream: &TcpStream, idle_timeout: Duration) -> io::Result<()> {
    // `Some(Duration::ZERO)` is refused with `InvalidInput` (zero would mean "never" to the
    // kernel): the error ends this connection rather than leaving it without a timeout.
    stream.set_read_timeout(Some(idle_timeout))
}
