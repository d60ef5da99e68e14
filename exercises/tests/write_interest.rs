//! Exercise 3: `cargo test --test write_interest`. See `src/write_interest/mod.rs` for the task.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use exercises::write_interest::serve;

/// More than the kernel's buffers between the two ends can hold, so the server must keep
/// output pending and wait for the client to read.
const PAYLOAD: usize = 16 * 1024 * 1024;
/// Where the slow client stops reading for a while.
const READ_BEFORE_PAUSE: usize = 1024 * 1024;
/// How long to wait for something that must happen: generous, for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(20);

/// Byte `i` of the payload: a pattern with a long period, so a lost or repeated chunk shows.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

fn start_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || serve(listener));
    addr
}

/// Keep the client's receive buffer small (and stop the kernel growing it), so the server's
/// output backs up after a few hundred kilobytes whatever the machine's TCP settings.
fn small_receive_buffer(stream: &TcpStream) {
    let size: libc::c_int = 64 * 1024;
    // SAFETY: a valid socket, and a pointer to a c_int with its size, as SO_RCVBUF expects.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_RCVBUF)");
}

/// Read into `buf` and check every byte against the pattern from `offset`.
fn read_checked(stream: &mut TcpStream, buf: &mut [u8], offset: usize) -> usize {
    let n = match stream.read(buf) {
        Ok(n) => n,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!(
                "no echo within {DEADLINE:?} after {offset} bytes: is output left pending without WRITABLE interest?"
            )
        }
        Err(e) => panic!(
            "the echo broke after {offset} bytes: {e} (was a short write or WouldBlock treated as an error?)"
        ),
    };
    for (i, &byte) in buf[..n].iter().enumerate() {
        assert_eq!(
            byte,
            pattern(offset + i),
            "byte {} of the echo is wrong: bytes were lost or reordered",
            offset + i
        );
    }
    n
}

/// Wait until the writer has stopped making progress: the server has stopped reading from the
/// slow client, because its output to it is backed up. (If the kernel buffers hold it all, the
/// writer finishes instead; either way the server now has pending output.)
fn wait_until_writer_stalls(sent: &AtomicUsize) {
    let deadline = Instant::now() + DEADLINE;
    let mut last = sent.load(Ordering::SeqCst);
    loop {
        thread::sleep(Duration::from_millis(100));
        let now = sent.load(Ordering::SeqCst);
        if now == last || now == PAYLOAD {
            return;
        }
        assert!(Instant::now() < deadline, "the writer never stalled");
        last = now;
    }
}

#[test]
fn a_slow_reader_gets_every_byte_back_and_others_are_served_meanwhile() {
    let addr = start_server();
    let mut slow = TcpStream::connect(addr).unwrap();
    small_receive_buffer(&slow);
    slow.set_read_timeout(Some(DEADLINE)).unwrap();

    // The writer sends everything then half-closes: the server must still write back every
    // pending byte before it closes.
    let sent = Arc::new(AtomicUsize::new(0));
    let mut writer = slow.try_clone().unwrap();
    let writer_sent = Arc::clone(&sent);
    let writer = thread::spawn(move || {
        let data: Vec<u8> = (0..PAYLOAD).map(pattern).collect();
        for chunk in data.chunks(64 * 1024) {
            writer.write_all(chunk).unwrap();
            writer_sent.fetch_add(chunk.len(), Ordering::SeqCst);
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });

    let mut buf = vec![0; 64 * 1024];
    let mut received = 0;
    while received < READ_BEFORE_PAUSE {
        match read_checked(&mut slow, &mut buf, received) {
            0 => panic!("the server closed the connection after echoing {received} bytes"),
            n => received += n,
        }
    }

    // Now the slow client reads nothing: its echo backs up in the server.
    wait_until_writer_stalls(&sent);
    let mut other = TcpStream::connect(addr).unwrap();
    other.set_read_timeout(Some(DEADLINE)).unwrap();
    other.write_all(b"ping\n").unwrap();
    let mut reply = [0; 5];
    other.read_exact(&mut reply).unwrap_or_else(|e| {
        panic!("a second client got no echo while the first one's output was pending ({e}): does flush block or spin?")
    });
    assert_eq!(&reply, b"ping\n");

    // The slow client reads the rest: every byte, in order, then the end of the stream.
    loop {
        let n = read_checked(&mut slow, &mut buf, received);
        if n == 0 {
            break;
        }
        received += n;
    }
    assert_eq!(received, PAYLOAD, "the server closed before echoing everything");
    writer.join().unwrap();
}
