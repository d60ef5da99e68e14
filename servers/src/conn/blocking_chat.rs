//! Chat for the three thread-based models: one member, served with blocking calls, by **two**
//! threads.
//!
//! A thread blocked in `read` waiting for its member to say something cannot also notice that
//! someone else said something *to* it. So each member gets a reader (the thread the model
//! already runs the connection on) and a writer (a thread started here, for as long as the
//! member stays), and the two meet in the member's mailbox ([`super::chat_room`]):
//!
//! ```text
//!   reader: read ► split lines ► room.say(batch) ─► other members' mailboxes (lock, push, wake)
//!   writer: wait on own mailbox (Condvar) ► take the bytes ► write them ► wait …
//! ```
//!
//! **What it costs.** Two threads per member instead of one, and a thread wake-up (a futex call
//! and a context switch) for each batch delivered to each member. At 100 members one line wakes
//! 99 writer threads.
//!
//! **A writer stuck on a member that does not read.** Its `write` blocks while the member's
//! socket buffer is full; meanwhile the member's mailbox fills, and it is dropped. The writer
//! must notice that even while blocked, so its writes time out every [`WRITE_STEP`] and it looks
//! at the mailbox in between. A member that is dropped, or that left with lines still queued,
//! gets [`DELIVERY_WAIT`] to read them, and is then closed regardless.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as Direction, TcpStream};
use std::sync::Condvar;
use std::thread;
use std::time::{Duration, Instant};

use super::blocking_io::close_after_final_reply;
use super::chat_room::{Mailbox, Room};
use crate::buffer::InputBuffer;
use crate::net::{DELIVERY_WAIT, wait_until_delivered};
use crate::proto::chat::MemberId;
use crate::proto::outbox::State;
use crate::session::Session;
use crate::shutdown::Tracked;
use crate::store::Store;

/// The room of the thread-based models: writers sleep on a `Condvar`.
pub type ThreadRoom = Room<Condvar>;

/// How long a writer's `write` may block before it checks whether its member was dropped.
pub const WRITE_STEP: Duration = Duration::from_millis(100);

/// A writer only writes: a small stack is plenty (the default is 2 MiB of address space).
const WRITER_STACK: usize = 128 * 1024;

/// Why a member's reader stopped.
enum Heard {
    /// End-of-file: the member left, or shutdown stopped our reading.
    Eof,
    /// A line over the limit.
    TooLong,
    /// The room dropped the member while it was still talking.
    Dropped,
    /// The connection failed (a reset).
    Failed,
}

/// Serve one chat member on the calling thread (its reader) and a writer thread, until it
/// leaves. Errors end this member only.
pub fn serve_member<S: Store>(
    stream: &Tracked<TcpStream>,
    room: &ThreadRoom,
    mut session: Session<S>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_STEP))?;
    let (id, mailbox) = room.join(Condvar::new());
    session.speak_as(id);
    let heard = thread::scope(|scope| {
        let writer = thread::Builder::new()
            .name("chat-writer".into())
            .stack_size(WRITER_STACK)
            .spawn_scoped(scope, || write_until_done(stream, &mailbox));
        if writer.is_err() {
            // Out of threads: nobody could deliver this member's messages, so it cannot stay.
            mailbox.close();
            room.leave(id, true);
            return Heard::Failed;
        }
        let heard = read_until_done(stream, room, id, &mut session);
        match heard {
            Heard::TooLong => {
                let mut line = Vec::new();
                session.refusal(&mut line);
                mailbox.close_with(&line);
            }
            _ => mailbox.close(),
        }
        room.leave(id, !stream.is_draining());
        heard
    });
    // The writer is done: every queued line is written, or the member ran out of time.
    match heard {
        Heard::TooLong => close_after_final_reply(stream),
        Heard::Eof | Heard::Dropped => {
            wait_until_delivered(stream);
        }
        Heard::Failed => {}
    }
    Ok(())
}

/// The reader: read, turn complete lines into this member's messages, hand them to the room.
fn read_until_done<S: Store>(
    stream: &Tracked<TcpStream>,
    room: &ThreadRoom,
    id: MemberId,
    session: &mut Session<S>,
) -> Heard {
    let mut input = InputBuffer::new(session.max_request_len());
    let mut batch = Vec::new();
    loop {
        let n = match (&**stream).read(input.spare()) {
            Ok(0) => return Heard::Eof,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Heard::Failed,
        };
        input.filled(n);
        let served = input.serve(session, &mut batch);
        if !batch.is_empty() {
            if !room.say(id, &batch) {
                return Heard::Dropped;
            }
            batch.clear();
        }
        if served.close {
            return Heard::TooLong;
        }
        if stream.is_draining() {
            return Heard::Eof; // shutdown: what was read is said; read no more
        }
    }
}

/// The writer: wait for the mailbox, write what it holds, until it is closed (or dropped) and
/// empty. A member that was dropped, or whose connection failed, may still have its reader
/// blocked in `read`, so the writer wakes it (`SHUT_RD`). A member whose mailbox was closed
/// normally has no reader left to wake, and shutting its reading side now could turn the close
/// into a reset that destroys the last lines (see `crate::net::wait_until_delivered`).
fn write_until_done(stream: &TcpStream, mailbox: &Mailbox<Condvar>) {
    let written = write_all_queued(stream, mailbox);
    let state = mailbox.lock().state();
    if state == State::Dropped || (state == State::Open && written.is_err()) {
        let _ = stream.shutdown(Direction::Read);
    }
}

fn write_all_queued(stream: &TcpStream, mailbox: &Mailbox<Condvar>) -> io::Result<()> {
    let mut batch = Vec::new();
    // When the member stopped being `Open`: from then on it has `DELIVERY_WAIT` to read the rest.
    let mut ending_since = None;
    loop {
        {
            let mut outbox = mailbox.lock();
            while outbox.is_empty() {
                if outbox.state() != State::Open {
                    return Ok(()); // closed or dropped, and everything is written
                }
                outbox = mailbox.waker().wait(outbox).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            outbox.take(&mut batch);
        }
        let mut written = 0;
        while written < batch.len() {
            match (&*stream).write(&batch[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // The write timed out (`WRITE_STEP`): the member is not reading. Fine while it
                // is a member in good standing; once it is not, its time is limited.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if mailbox.lock().state() != State::Open {
                        let since = *ending_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= DELIVERY_WAIT {
                            return Err(e);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}
