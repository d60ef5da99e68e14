//! # `async`: the reactor's loop, written by the compiler (tokio)
//!
//! Each connection is served by an `async fn` that reads like the blocking version: read,
//! answer, write, repeat. But `.await` on a socket that is not ready does not block the thread:
//! the function *returns* to the runtime, saving its local variables in a compiler-generated
//! state machine (the future), and the runtime polls it again when epoll reports the socket
//! ready. It is the `reactor` model with the per-connection bookkeeping generated for you.
//!
//! ```text
//!   runtime thread:  poll epoll ──► wake task 7 ──► task 7 runs to its next .await ──┐
//!                        ▲                                                            │
//!                        └──────── wake task 3 ◄── …  ◄───────────────────────────────┘
//!   task = one connection's `serve_connection` future (a few hundred bytes + its buffer)
//! ```
//!
//! `--runtime current-thread` (the default) runs every task on one thread: a fair match for
//! the one-thread `reactor`. `--runtime multi-thread` runs `--threads` workers that steal tasks
//! from each other, so all cores serve connections without the program saying which.
//!
//! **What it costs.** Each task owns its input buffer (4 KiB to start, as most async servers
//! allocate per connection, growing to hold the largest request it has seen and kept from then
//! on) and a boxed future; waking a task goes through the runtime's scheduler queues. Those are small costs per request, measured against `reactor` in the results.
//!
//! **Where it breaks.** The same place as the reactor, but less visibly: code that blocks inside
//! an `async fn` (`--block-us` here, or any `std` call that sleeps) stalls the whole runtime
//! thread and every task on it, and nothing in the code looks wrong. Production code moves such
//! work to `spawn_blocking` or a separate pool. CPU-heavy requests (`--work-us`) delay their
//! neighbours on the same worker until the task reaches an `.await`. So do many cheap ones:
//! tokio's cooperative budget makes a task yield after 128 socket operations, and a read and a
//! write of 4 KiB of pipelined http requests are two operations for about 130 requests, so a
//! task could answer 8,000 before it yields. This one also yields after
//! [`REQUESTS_PER_TURN`](crate::session::REQUESTS_PER_TURN) requests; without that, 16 clients
//! pipelining http without reading put a healthy client's p99 at 70 ms (at b1e6061, with
//! `scripts/abuse.sh --models async --scenarios slow-reader --protos http`).
//!
//! **What production servers do.** Exactly this, mostly on the multi-thread runtime: hyper,
//! axum, tonic and most Rust network services are tokio tasks per connection.
//!
//! **How it routes chat.** A task per member, and the same locked room as the thread-based
//! models ([`crate::conn::chat_room`]): a sender copies its line into every other member's bounded
//! mailbox. What the thread-based models need a second thread for, a task does with `select!`:
//! it waits for its socket to become readable *and* for its mailbox (a `Notify`) at once, so one
//! task per member both reads and writes, and a wake-up costs a task poll, not a thread switch.
//! Why not tokio's own channels? `broadcast` keeps one ring for the whole room, bounded in
//! *messages*, and a receiver that lags is told how many it missed (`RecvError::Lagged`) and
//! carries on: messages are lost silently instead of the slow member being dropped with a
//! notice, and the sender receives its own lines. A bounded `mpsc` per member would work, but
//! its bound counts messages, not bytes; the byte-bounded [`crate::proto::outbox`] keeps the
//! same limit, and the same drop rule, as every other model.

use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::conn::admission::refuse;
use crate::conn::chat_room::{Mailbox, Refill, Room};
use crate::conn::deadline::{Clock, Timeouts, Waiting};
use crate::buffer::{InputBuffer, recycle};
use crate::config::{Runtime, ServerConfig};
use crate::net::{
    AcceptFailure, DELIVERY_RECHECK_MAX, DELIVERY_WAIT, FdReserve, LINGER_BYTES, LINGER_TIME, Shed, discard_input,
    unacknowledged,
};
use crate::proto::Proto;
use crate::proto::chat::MemberId;
use crate::session::Session;
use crate::shutdown::{OpenConnections, Shutdown, Tracked};
use crate::store::SharedStore;

/// The chat room of the `async` model: writers are tasks, woken by a `Notify`.
type TaskRoom = Room<Notify>;

/// Build the runtime `config.runtime` asks for and serve on it until shutdown.
pub fn run(listener: std::net::TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
    let mut builder = match config.runtime {
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Runtime::MultiThread => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(config.threads.max(1));
            b
        }
    };
    let runtime = builder.enable_all().build()?;
    runtime.block_on(serve(listener, config, shutdown))
}

/// The accept loop: one task per connection, until shutdown; then drain.
async fn serve(
    listener: std::net::TcpListener,
    config: &ServerConfig,
    shutdown: &Shutdown,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let stop = Arc::new(Notify::new());
    {
        let stop = Arc::clone(&stop);
        // `notify_one` stores a permit if nobody waits yet, so a trigger is never lost.
        shutdown.on_trigger(move || stop.notify_one());
    }
    let conns = OpenConnections::new();
    let mut tasks = JoinSet::new();
    let mut reserve = FdReserve::new();
    // `JoinSet::spawn` requires `Send` futures even on the current-thread runtime, so the store is
    // shared the threaded way; on one thread its locks are never contended (a `LocalSet` with an
    // `Rc` would avoid them, at the price of a second way to spawn).
    let store = config.shared_store();
    let room = Arc::new(TaskRoom::new(config.chat_queue));
    let admission = config.admission();
    loop {
        tokio::select! {
            _ = stop.notified() => break,
            // Reap finished tasks as we go, so the set holds only live connections.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Some(place) = admission.admit() else {
                        refuse(&stream, config.proto); // `--max-conns`: dropping it closes it
                        continue;
                    };
                    let (stream, session) = (conns.track(stream), config.session(Arc::clone(&store)).taking_turns());
                    match config.proto {
                        Proto::Chat => {
                            let room = Arc::clone(&room);
                            tasks.spawn(async move {
                                let _place = place;
                                serve_member(stream, room, session).await
                            });
                        }
                        _ => {
                            let timeouts = config.connection_timeouts();
                            tasks.spawn(async move {
                                let _place = place;
                                serve_connection(stream, session, timeouts).await
                            });
                        }
                    }
                }
                Err(e) => match AcceptFailure::of(&e) {
                    AcceptFailure::OneConnection => {}
                    AcceptFailure::OutOfFds => {
                        // Shed through the raw (non-blocking) socket: tokio has no synchronous
                        // accept. EMFILE is not `WouldBlock`, so tokio still believes the
                        // listener ready and would retry at once: unless a connection was just
                        // shed, pause, or this loop spins.
                        let sock = socket2::SockRef::from(&listener);
                        if reserve.shed(|| sock.accept()) != Shed::Closed {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    AcceptFailure::Resources => tokio::time::sleep(Duration::from_millis(10)).await,
                    AcceptFailure::Fatal => return Err(e),
                },
            },
        }
    }
    drop(listener);
    // Same drain as every model (see `crate::shutdown`): no more input, finish, close.
    conns.begin_draining();
    let finished =
        tokio::time::timeout(config.grace, async { while tasks.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        crate::log::line(format_args!("grace period over: closed {} connection(s) still open", tasks.len()));
        tasks.shutdown().await;
    }
    Ok(())
}

/// Serve one connection: the blocking loop of `blocking_io::serve_connection`, with `.await`.
///
/// A timeout is a future raced against the read or the write (`tokio::time::timeout`): where a
/// thread needs a socket option to stop waiting, a task simply stops being polled.
async fn serve_connection(
    mut stream: Tracked<TcpStream>,
    mut session: Session<Arc<SharedStore>>,
    timeouts: Timeouts,
) -> io::Result<()> {
    // See `blocking_io::serve_connection` for why Nagle is off.
    stream.set_nodelay(true)?;
    let mut clock = Clock::start(Instant::now());
    let mut input = InputBuffer::new(session.max_request_len());
    let mut output = Vec::new();
    loop {
        let read = stream.read(input.spare());
        let read = match clock.due(&timeouts) {
            None => read.await,
            Some(due) => match tokio::time::timeout_at(due.into(), read).await {
                Ok(read) => read,
                Err(_) => return Ok(()), // the request or idle timeout ran out: close
            },
        };
        let n = match read {
            Ok(0) => break, // the peer finished sending, or shutdown stopped our reading
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        input.filled(n);
        let mut requests = 0;
        loop {
            let served = input.serve(&mut session, &mut output);
            requests += served.requests;
            write_all_within(&mut stream, &output, timeouts.write).await?;
            recycle(&mut output);
            if served.close {
                close_after_final_reply(&mut stream).await;
                return Ok(());
            }
            if !served.more {
                break;
            }
            // The turn's budget is spent (`Session::taking_turns`), with requests left: serve
            // them after the other tasks have had theirs. tokio's own budget counts reads and
            // writes, 128 a poll: thousands of pipelined requests (see the module docs).
            tokio::task::yield_now().await;
        }
        clock.observe(Instant::now(), Waiting::of(0, input.unserved()), requests > 0);
        if stream.is_draining() {
            break; // shutdown: what was read is answered; read no more
        }
    }
    wait_until_delivered(&mut stream).await;
    Ok(())
}

/// Write all of `bytes`, failing if the peer takes none of them for `limit` (the write
/// timeout restarts with every write that makes progress, as nginx's `send_timeout` does).
async fn write_all_within(stream: &mut Tracked<TcpStream>, mut bytes: &[u8], limit: Option<Duration>) -> io::Result<()> {
    while !bytes.is_empty() {
        let write = stream.write(bytes);
        let written = match limit {
            None => write.await?,
            Some(limit) => tokio::time::timeout(limit, write)
                .await
                .map_err(|_| io::Error::new(ErrorKind::TimedOut, "the peer read nothing within --write-timeout"))??,
        };
        if written == 0 {
            return Err(ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written..];
    }
    Ok(())
}

/// Why a chat member's task stopped.
enum Ended {
    /// It left (end-of-file, or shutdown) or was dropped, and everything queued was written.
    Done,
    /// It sent a line over the limit; the error reply was written.
    TooLong,
    /// Its connection failed, or it did not read what was queued within `DELIVERY_WAIT`.
    Failed,
}

/// Serve one chat member: one task that reads the member's lines and writes what the others
/// say, waiting for whichever comes first (see the module docs).
async fn serve_member(
    mut stream: Tracked<TcpStream>,
    room: Arc<TaskRoom>,
    mut session: Session<Arc<SharedStore>>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (id, mailbox) = room.join(Notify::new());
    session.speak_as(id);
    let ended = chat_until_done(&stream, &room, id, &mailbox, &mut session).await;
    // A member that failed may not have left yet (a no-op otherwise).
    mailbox.close();
    room.leave(id, !stream.is_draining());
    match ended {
        Ended::Done => wait_until_delivered(&mut stream).await,
        Ended::TooLong => close_after_final_reply(&mut stream).await,
        Ended::Failed => {}
    }
    Ok(())
}

async fn chat_until_done(
    stream: &Tracked<TcpStream>,
    room: &TaskRoom,
    id: MemberId,
    mailbox: &Mailbox<Notify>,
    session: &mut Session<Arc<SharedStore>>,
) -> Ended {
    let mut input = InputBuffer::new(session.max_request_len());
    let mut said = Vec::new();
    // Bytes taken out of the mailbox and being written; `batch[written..]` is still to go.
    let (mut batch, mut written) = (Vec::new(), 0);
    let mut reading = true;
    let mut too_long = false;
    // Once the member has stopped reading, left or been dropped, it has this long to take the rest.
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        if written == batch.len() {
            let open = match mailbox.refill(&mut batch) {
                Refill::Took { open } => {
                    written = 0;
                    open
                }
                Refill::Empty => true,
                Refill::Finished => return if too_long { Ended::TooLong } else { Ended::Done },
            };
            if (!reading || !open) && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + DELIVERY_WAIT);
            }
        }
        tokio::select! {
            ready = stream.readable(), if reading => {
                if ready.is_err() {
                    return Ended::Failed;
                }
                let n = match stream.try_read(input.spare()) {
                    Ok(n) => n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => continue,
                    Err(_) => return Ended::Failed,
                };
                if n == 0 {
                    // The member left, or shutdown stopped our reading.
                    reading = false;
                    mailbox.close();
                    room.leave(id, !stream.is_draining());
                    continue;
                }
                input.filled(n);
                let served = input.serve(session, &mut said);
                if !said.is_empty() {
                    if !room.say(id, &said) {
                        reading = false; // dropped: the mailbox holds the notice
                    }
                    said.clear();
                }
                if served.close {
                    let mut line = Vec::new();
                    session.refusal(&mut line);
                    mailbox.close_with(&line);
                    room.leave(id, true);
                    (reading, too_long) = (false, true);
                } else if stream.is_draining() {
                    reading = false; // shutdown: what was read is said; read no more
                    mailbox.close();
                    room.leave(id, false);
                }
            }
            ready = stream.writable(), if written < batch.len() => {
                if ready.is_err() {
                    return Ended::Failed;
                }
                match stream.try_write(&batch[written..]) {
                    Ok(n) => written += n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => return Ended::Failed,
                }
            }
            // Something new in the mailbox (or it was closed or dropped): look at the top.
            _ = mailbox.waker().notified(), if written == batch.len() => {}
            _ = sleep_until(deadline) => return Ended::Failed,
        }
    }
}

/// Sleep until `deadline`, or forever if there is none.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The peer finished sending, or shutdown stopped our reading: wait until the peer has
/// acknowledged every reply, then send end-of-file, so closing cannot turn into a reset that
/// destroys replies still queued (see `crate::net::wait_until_delivered`). The kernel has no
/// readiness event for "all acknowledged", hence the timer, backing off from 1 ms.
async fn wait_until_delivered(stream: &mut TcpStream) {
    let _ = tokio::time::timeout(DELIVERY_WAIT, async {
        let mut step = Duration::from_millis(1);
        while unacknowledged(&*stream).is_ok_and(|queued| queued > 0) {
            tokio::time::sleep(step).await;
            step = (step * 2).min(DELIVERY_RECHECK_MAX);
        }
    })
    .await;
    let _ = stream.shutdown().await;
}

/// Close after the last reply (an error, or HTTP's `Connection: close`) without letting a reset
/// destroy it (see `crate::net::LINGER_TIME`).
async fn close_after_final_reply(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_io(Interest::READABLE, || discard_input(&*stream, LINGER_BYTES - discarded)) {
                Ok(0) => return,
                Ok(n) => discarded += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => return,
            }
        }
    })
    .await;
}
