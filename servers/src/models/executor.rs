//! # `executor`: what async is made of, written here on `polling`
//!
//! The `async` model hands its tasks to tokio and never says what happens to them. This one runs
//! the same kind of `async` code, a task per connection, on an executor written here and small
//! enough to read in one sitting. Only the poller comes from a crate: `polling` (smol's), a thin
//! portable layer over epoll and kqueue. The rest is four files beside this one:
//!
//! | file | part | what it is |
//! | --- | --- | --- |
//! | `executor/task.rs` | executor | tasks (boxed futures), their wakers, the ready queue, `block_on` |
//! | `executor/reactor.rs` | reactor | readiness events and timers turned into wakes |
//! | `executor/net.rs` | sockets | a non-blocking `TcpListener` and `TcpStream` with `async` waits |
//! | `executor/wait.rs` | combinators | `select`, `timeout`, and a one-thread `Notify` |
//!
//! ```text
//!        ┌──────────────────────── one thread ─────────────────────────────────────┐
//!        │  ready queue [7, 3] ──► poll task 7, poll task 3 ──► queue empty?       │
//!        │        ▲                   │ .await on a socket                         │ yes
//!        │        │                   ▼ that is not ready                          ▼
//!        │   waker.wake()      reactor: keep the waker,        reactor.wait(): epoll_wait
//!        │        ▲            arm interest (oneshot)           until an event or the
//!        │        │                                             earliest timer
//!        │        └──── reactor.dispatch(): event {key 7, readable} ◄──────────────┘
//!        └─────────────────────────────────────────────────────────────────────────┘
//!   task = a connection's future, boxed; its waker = an `Arc` of (task id, state), made once
//! ```
//!
//! **How readiness becomes a woken task**, step by step, for a connection waiting for a request:
//! 1. *Register interest.* The task waits for its socket to become readable. The reactor's
//!    record of the socket says "not readable" (its last read came back short), so the reactor
//!    keeps a clone of the task's waker in the socket's slot and *arms* read interest with
//!    `Poller::modify`, in oneshot mode: the kernel will report the socket once, then forget the
//!    interest. The task's `poll` returns `Pending`, and the executor moves on to the next task.
//! 2. *Poll.* With no task ready, the executor waits for events with the earliest timer's
//!    deadline as its timeout, and the thread sleeps in `epoll_wait` (`Poller::wait` off Linux).
//! 3. *Event.* Bytes arrive; `wait` returns `Event { key: 7, readable: true }`. The reactor
//!    looks up slot 7, marks it readable and disarmed, and calls `waker.wake()`.
//! 4. *Queued.* The waker puts task 7 on the ready queue (unless it is there already).
//! 5. *Polled.* The executor polls task 7. Its wait completes at once; it reads straight into
//!    the thread's shared buffer, answers, writes the replies, and waits again.
//! 6. *Re-armed.* That wait is step 1 again: oneshot disarmed the interest, so it is armed anew.
//!    The kernel checks readiness when interest is armed, so bytes that came in between are not
//!    missed: the next `wait` reports them at once.
//!
//! **What it costs.** Per request, compared with the `reactor` on the same epoll: re-arming is
//! an `epoll_ctl` per wait. And `polling`'s `wait` is portable rather than lean: on Linux each
//! call also sets a `timerfd` for its timeout and reads and re-arms its notification `eventfd`,
//! four system calls around every `epoll_wait`. At 60,000 requests per second (open loop, 50
//! connections, 64 B) and about one wait per request, that made the executor cost 1.23× the
//! reactor's server CPU per request; so on Linux the reactor here calls `epoll_wait` on
//! `polling`'s descriptor itself and lets `polling` clear its notification only when it fired
//! (`executor/reactor.rs`, `wait_into`), and the figure fell to 1.05× (medians of per-pair
//! ratios over five alternating repetitions, `scripts/check-targets.sh --only 6`; the lab VM
//! drifts by 15% between runs). The executor's own work is a few percent of it: a wake is a
//! locked push onto the ready queue, and nothing allocates per request or per wake.
//!
//! Per connection: a boxed future, a task slot, one `Arc` waker made at spawn, and a slot in the
//! reactor: 412 bytes of resident memory per idle connection at 10,000 idle connections, against
//! the reactor's 251 and `async`'s 8,549 (`scripts/check-targets.sh --only 2`; before the
//! defences of issue #12, 353, 202 and 9,051 in the same run with `--baseline-bin`: the
//! watchdog's clock and the count of connections cost about 60 bytes), because an idle task
//! holds no buffer: it waits for readability first and reads into
//! a buffer shared by the thread (`with_scratch`, whose closure cannot `.await`), and only a
//! request that arrived in part or a reply the kernel would not take gets a buffer of its own.
//! Keeping the future small takes care: a future is as large as its largest state, so closing
//! (which holds timers) and writing under back-pressure are boxed, and a buffer on the stack of
//! any `async fn` it awaits would be paid by every connection (a test keeps it under 264 bytes).
//!
//! **Where it breaks.** Where `reactor` and `async` do: one thread uses one core, and a request
//! that computes (`--work-us`) or blocks (`--block-us`) stalls every connection. And where this
//! naive executor differs from tokio:
//! - *One thread, no work stealing.* tokio's multi-thread runtime lets idle workers take tasks
//!   from busy ones; here a second core is simply never used.
//! - *No timer wheel.* Timers are a `BTreeMap` from deadline to waker, O(log n) to add or
//!   cancel, where tokio's hierarchical wheel does both in O(1). Fine here, where only closing
//!   connections have timers.
//! - *A budget only where added by hand.* A connection yields after
//!   [`REQUESTS_PER_TURN`](crate::session::REQUESTS_PER_TURN) requests, or after
//!   [`READS_PER_TURN`] reads while its socket stays full; nothing else does. tokio charges every resource operation to a
//!   per-task budget, so a task yields even if its author forgot to.
//! - *Wakers.* One `Arc` per task beside the boxed future, two allocations, and one locked
//!   queue. tokio and `async-task` put the reference count, the task's state and the future in
//!   *one* allocation behind a hand-written `RawWaker` vtable, and schedule through lock-free
//!   per-worker queues with a LIFO slot, so the task that the running one just woke is polled
//!   next, while its data is still in cache.
//! - *Oneshot, and `polling`'s wait.* tokio drives `mio` edge-triggered: it registers a socket
//!   once and never re-arms, telling old readiness from new with a per-socket tick, and it
//!   waits with one `epoll_wait`.
//!
//! **What production does instead.** smol's `async-io` is this design grown up: a reactor on
//! `polling` in oneshot mode, sources that keep their readers' and writers' wakers, timers in a
//! `BTreeMap`, a `block_on` that parks the thread; `async-executor` adds a lock-free global
//! queue, per-thread local queues and stealing. tokio is the `async` model.
//!
//! **How it routes chat.** As `async` does: a task per member and the locked room of the threaded
//! models ([`crate::conn::chat_room`]), whose mailboxes wake a member through this executor's
//! own `Notify` (two `Cell`s: one thread needs no lock). What tokio's `select!` does, a
//! `poll_fn` does here: it polls the socket's writability, the mailbox and the socket's
//! readability in turn and returns the first that is ready, leaving the task's waker with each
//! of the others, so whichever comes first wakes it. Being one thread, the store of `kv` is an
//! `Rc` with no lock; `async` needs `Send` tasks, and so `Arc` and locks, even on one thread.

mod net;
mod reactor;
mod task;
mod wait;
mod watchdog;

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::io::{self, ErrorKind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use self::net::{TcpListener, TcpStream};
use self::reactor::{Reactor, Sleep};
use self::task::{Executor, Spawner, yield_now};
use self::wait::{Either, Notify, select, timeout};
use self::watchdog::{Clocks, Watched};
use crate::config::ServerConfig;
use crate::conn::admission::refuse;
use crate::conn::chat_room::{Mailbox, Refill, Room};
use crate::conn::deadline::Waiting;
use crate::conn::nonblocking::{ACCEPTS_PER_TURN, BufferPool, READS_PER_TURN, Unserved, serve_input};
use crate::net::{
    AcceptFailure, DELIVERY_RECHECK_MAX, DELIVERY_WAIT, FdReserve, LINGER_BYTES, LINGER_TIME, Shed,
};
use crate::proto::Proto;
use crate::proto::chat::MemberId;
use crate::session::Session;
use crate::shutdown::Shutdown;
use crate::store::LocalStore;

/// The chat room of the `executor` model: writers are tasks, woken by this executor's `Notify`.
type ChatRoom = Room<Notify>;
/// Every task runs on the one thread that owns the `kv` store: no lock (see `crate::store`).
type LocalSession = Session<Rc<LocalStore>>;

/// How soon an `accept` that failed for lack of descriptors (with no reserve) or memory is
/// tried again.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

/// Serve on the calling thread until `shutdown` is triggered and the connections have finished
/// (or the grace period ran out).
pub fn run(listener: std::net::TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
    let reactor = Rc::new(Reactor::new()?);
    let mut executor = Executor::new(reactor.poller());
    // Room for the largest request, and at least 64 KiB, so one read takes many small ones.
    with_scratch(|s| s.input.resize(config.max_request_len().max(64 * 1024), 0));
    let main = serve(listener, config, shutdown, Rc::clone(&reactor), executor.spawner());
    executor.block_on(&reactor, main)?
}

/// The accept loop (the executor's main future): a task per connection until shutdown, then
/// the drain. Tasks still open when it returns are dropped with the executor, closing them.
async fn serve(
    listener: std::net::TcpListener,
    config: &ServerConfig,
    shutdown: &Shutdown,
    reactor: Rc<Reactor>,
    spawner: Spawner,
) -> io::Result<()> {
    let listener = TcpListener::new(listener, Rc::clone(&reactor))?;
    let conns = Rc::new(Connections::default());
    let store = config.local_store();
    let room = Rc::new(ChatRoom::new(config.chat_queue));
    let mut reserve = FdReserve::new();
    let clocks = Clocks::new(config.connection_timeouts());
    spawner.spawn(watchdog::run(Rc::clone(&clocks), Rc::clone(&reactor)));
    let mut stop = pin!(stop_requested(shutdown));
    let mut accepted_in_a_row = 0;
    loop {
        // A flood of arrivals must not keep the thread from the connections it has: after a
        // turn's share of accepts, let every ready task run (see `ACCEPTS_PER_TURN`).
        accepted_in_a_row += 1;
        if accepted_in_a_row > ACCEPTS_PER_TURN {
            accepted_in_a_row = 0;
            yield_now().await;
        }
        let accepted = match select(stop.as_mut(), listener.accept()).await {
            Either::Left(()) => break,
            Either::Right(accepted) => accepted,
        };
        match accepted {
            // `--max-conns`: one thread counts them all.
            Ok(stream) if conns.open.get() >= config.max_conns => refuse(&stream, config.proto),
            Ok(stream) => {
                let session = config.session(Rc::clone(&store)).taking_turns();
                let open = conns.open();
                match config.proto {
                    Proto::Chat => spawner.spawn(serve_member(stream, Rc::clone(&room), session, open)),
                    _ => {
                        let watched = clocks.watch(&stream);
                        spawner.spawn(serve_connection(stream, session, open, watched))
                    }
                }
            }
            Err(e) => match AcceptFailure::of(&e) {
                AcceptFailure::OneConnection => {}
                // Shed a waiting connection and look for the next. When none waits, `try_accept`
                // cleared the listener's readiness, so the next `accept` waits for a new
                // arrival instead of spinning; with no reserve to shed with, pause.
                AcceptFailure::OutOfFds => match reserve.shed(|| listener.try_accept()) {
                    Shed::Closed | Shed::NothingWaiting => {}
                    Shed::NoReserve => reactor.sleep(ACCEPT_RETRY).await,
                },
                AcceptFailure::Resources => reactor.sleep(ACCEPT_RETRY).await,
                AcceptFailure::Fatal => return Err(e),
            },
        }
    }
    drop(listener);
    // Same drain as every model (see `crate::shutdown`): no more input, finish, close.
    reactor.begin_draining();
    if timeout(&reactor, config.grace, conns.all_closed()).await.is_none() {
        crate::log::line(format_args!(
            "grace period over: closed {} connection(s) still open",
            conns.open.get()
        ));
    }
    Ok(())
}

/// Completes when shutdown is triggered. The trigger comes from another thread (a signal
/// handler, a test), so it wakes this task through its waker: a locked push onto the ready
/// queue and, as the executor is probably asleep in `Poller::wait`, `Poller::notify`.
async fn stop_requested(shutdown: &Shutdown) {
    let mut registered = false;
    poll_fn(|cx| {
        if shutdown.is_triggered() {
            return Poll::Ready(());
        }
        if !registered {
            registered = true;
            let waker = cx.waker().clone();
            // Runs at once if the trigger came between the check above and this call.
            shutdown.on_trigger(move || waker.wake_by_ref());
        }
        Poll::Pending
    })
    .await;
}

/// How many connection tasks are alive, so the drain knows when they are all done.
#[derive(Default)]
struct Connections {
    open: Cell<usize>,
    last_closed: Notify,
}

/// One connection's place in [`Connections`], given up when its task ends.
struct Open(Rc<Connections>);

impl Connections {
    fn open(self: &Rc<Self>) -> Open {
        self.open.set(self.open.get() + 1);
        Open(Rc::clone(self))
    }

    async fn all_closed(&self) {
        while self.open.get() > 0 {
            self.last_closed.notified().await;
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let left = self.0.open.get() - 1;
        self.0.open.set(left);
        if left == 0 {
            self.0.last_closed.notify();
        }
    }
}

/// Buffers shared by every task of the thread: a task borrows them only between two `.await`s,
/// which [`with_scratch`] enforces (a closure cannot `.await`), so an idle task holds none.
struct Scratch {
    /// Every read lands here first; only what a turn leaves unserved (the unfinished tail of
    /// a request, or requests past the turn's budget) is copied out.
    input: Vec<u8>,
    /// Replies to one read, written straight away.
    output: Vec<u8>,
    /// Spare buffers for the tails and the replies the kernel would not take.
    pool: BufferPool,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> =
        RefCell::new(Scratch { input: Vec::new(), output: Vec::new(), pool: BufferPool::default() });
}

fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with_borrow_mut(f)
}

/// What one read of a connection came to.
enum Step {
    /// Nothing to read after all (a spurious wake-up): wait again.
    NotYet,
    /// End-of-file (or shutdown): every reply is written.
    End,
    /// Requests answered, and their replies written or kept in `unwritten`. `full` says the
    /// read filled the buffer, so more may be waiting; `more` that serving stopped at the turn's
    /// budget with complete requests possibly left in `partial`, to serve next;
    /// `progress` that a request was answered or reply bytes were taken (for the timeouts).
    Served { close: bool, full: bool, more: bool, progress: bool },
}

/// Serve one connection: the blocking loop of `blocking_io::serve_connection`, with `.await`.
///
/// A plain `fn` returning an `async` block rather than an `async fn`: an `async fn` moves its
/// arguments into locals, and today's compiler keeps room for both copies in the future
/// (rust-lang/rust#62958), which every idle connection would pay for. The block uses them in
/// place. The loop is written out here for the same reason: a nested `async fn` would add its
/// own copies of the references it takes.
#[allow(clippy::manual_async_fn)] // on purpose: see above
fn serve_connection(
    stream: TcpStream,
    mut session: LocalSession,
    open: Open,
    watched: Option<Watched>,
) -> impl Future<Output = ()> {
    async move {
        let _counted = &open; // moved into the task, and dropped with it
        // The watchdog shuts this socket if a timeout runs out (see `executor/watchdog.rs`).
        let observe = |waiting, progress| {
            if let Some(watched) = &watched {
                watched.observe(waiting, progress);
            }
        };
        // See `blocking_io::serve_connection` for why Nagle is off.
        if stream.set_nodelay(true).is_err() {
            return;
        }
        // A request that arrived in part, and replies the kernel did not take: both empty, and
        // so without an allocation, almost always.
        let (mut partial, mut unwritten) = (Unserved::default(), Vec::new());
        let mut full_reads = 0u8;
        let mut more = false;
        let finish = loop {
            // Idle connections wait here, holding no buffer (unless requests read earlier are
            // still to be answered).
            if !more && poll_fn(|cx| stream.poll_readable(cx)).await.is_err() {
                return;
            }
            let step = read_and_answer(&stream, &mut session, &mut partial, &mut unwritten, more);
            let (close, full) = match step {
                Ok(Step::NotYet) => continue,
                Ok(Step::End) => break Finish::Deliver,
                Ok(Step::Served { close, full, more: left, progress }) => {
                    more = left;
                    observe(Waiting::of(unwritten.len(), partial.len()), progress);
                    (close, full)
                }
                Err(_) => return, // a reset or a broken pipe ends this connection only
            };
            if !unwritten.is_empty() {
                // Back-pressure: no more reading until these are written, however long it
                // takes. Boxed, like closing below: rare, and it would grow every task.
                let writing = Box::pin(write_unwritten(&stream, &mut unwritten));
                if writing.await.is_err() {
                    return;
                }
                observe(Waiting::of(0, partial.len()), true);
            }
            if close {
                break Finish::Linger;
            }
            if stream.is_draining() && !more {
                break Finish::Deliver; // shutdown: what was read is answered; read no more
            }
            // The cooperative budget: a turn that stopped at its budget of requests or replies,
            // or a socket that stays full, does not keep the thread.
            full_reads = if full { full_reads + 1 } else { 0 };
            if more || usize::from(full_reads) == READS_PER_TURN {
                full_reads = 0;
                yield_now().await;
            }
        };
        let closing: Closing<'_> = match finish {
            Finish::Deliver => Box::pin(wait_until_delivered(&stream)),
            Finish::Linger => Box::pin(close_after_final_reply(&stream)),
        };
        closing.await;
    }
}

/// Closing, boxed: it holds timers, and a future is as large as its largest state, which every
/// idle connection would pay for. (Boxed in a statement of its own, or the compiler keeps the
/// unboxed future in the task as a temporary of the statement that awaits it.)
type Closing<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// How a connection that stopped reading closes.
enum Finish {
    /// It answered everything: wait until the peer has it, then send end-of-file.
    Deliver,
    /// It sent an error reply (or HTTP's `Connection: close`): end-of-file now, then linger.
    Linger,
}

/// Read what the socket has into the shared buffer, answer it, and write the replies as far as
/// the kernel takes them now; the rest is left in `unwritten`. With `backlog`, read nothing:
/// answer the requests a budget-limited turn left in `partial`. No `.await` in here: the
/// shared buffers are borrowed for the duration of this call only.
fn read_and_answer(
    stream: &TcpStream,
    session: &mut LocalSession,
    partial: &mut Unserved,
    unwritten: &mut Vec<u8>,
    backlog: bool,
) -> io::Result<Step> {
    with_scratch(|s| {
        let n = if backlog {
            0
        } else {
            match stream.try_read(&mut s.input) {
                Ok(0) => return Ok(Step::End), // the peer finished sending, or shutdown
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Step::NotYet),
                Err(e) => return Err(e),
            }
        };
        let served = serve_input(session, partial, &s.input[..n], &mut s.output, &mut s.pool);
        let replies = s.output.len();
        write_now(stream, &mut s.output, unwritten, &mut s.pool)?;
        let progress = served.requests > 0 || unwritten.len() < replies;
        Ok(Step::Served { close: served.close, full: n == s.input.len(), more: served.more, progress })
    })
}

/// Write what the kernel would not take at once, then give its buffer back to the pool.
async fn write_unwritten(stream: &TcpStream, unwritten: &mut Vec<u8>) -> io::Result<()> {
    let written = stream.write_all(unwritten).await;
    let buffer = std::mem::take(unwritten);
    with_scratch(|s| s.pool.give(buffer));
    written
}

/// Write `out` as far as the kernel takes it now, and keep the rest in `unwritten`, a buffer
/// from `pool` (`unwritten` is empty, and stays unallocated, when all of it went out). `out` is
/// left empty.
fn write_now(
    stream: &TcpStream,
    out: &mut Vec<u8>,
    unwritten: &mut Vec<u8>,
    pool: &mut BufferPool,
) -> io::Result<()> {
    let mut written = 0;
    while written < out.len() {
        match stream.try_write(&out[written..]) {
            Ok(n) if written + n < out.len() => {
                written += n;
                break; // a short write: the send buffer is full
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => {
                out.clear();
                return Err(e);
            }
        }
    }
    if written < out.len() {
        *unwritten = pool.take();
        unwritten.extend_from_slice(&out[written..]);
    }
    out.clear();
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
async fn serve_member(stream: TcpStream, room: Rc<ChatRoom>, mut session: LocalSession, _open: Open) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let (id, mailbox) = room.join(Notify::new());
    session.speak_as(id);
    let ended = chat_until_done(&stream, &room, id, &mailbox, &mut session).await;
    // A member that failed may not have left yet (a no-op otherwise).
    mailbox.close();
    room.leave(id, !stream.is_draining());
    let closing: Closing<'_> = match ended {
        Ended::Done => Box::pin(wait_until_delivered(&stream)),
        Ended::TooLong => Box::pin(close_after_final_reply(&stream)),
        Ended::Failed => return,
    };
    closing.await;
}

/// What woke a chat member.
enum Woke {
    Writable,
    Mail,
    Readable,
    Late,
}

/// What one read of a member's socket came to.
enum Heard {
    NotYet,
    End,
    Failed,
    Said { close: bool, still_member: bool },
}

async fn chat_until_done(
    stream: &TcpStream,
    room: &ChatRoom,
    id: MemberId,
    mailbox: &Mailbox<Notify>,
    session: &mut LocalSession,
) -> Ended {
    let mut partial = Unserved::default();
    // Bytes taken out of the mailbox and being written; `batch[written..]` is still to go.
    let (mut batch, mut written) = (Vec::new(), 0);
    let mut reading = true;
    let mut too_long = false;
    let mut full_reads = 0;
    // Once the member has stopped reading, left or been dropped, it has this long to take the rest.
    let mut deadline: Option<Sleep<'_>> = None;
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
                deadline = Some(stream.reactor().sleep(DELIVERY_WAIT));
            }
        }
        // The hand-written `select!`: the first condition that is ready wins, and every one
        // polled and not ready keeps this task's waker, so whichever happens first wakes it.
        let woke = poll_fn(|cx| {
            if written < batch.len() && stream.poll_writable(cx).is_ready() {
                return Poll::Ready(Woke::Writable);
            }
            if written == batch.len() && mailbox.waker().poll_notified(cx).is_ready() {
                return Poll::Ready(Woke::Mail);
            }
            if reading && stream.poll_readable(cx).is_ready() {
                return Poll::Ready(Woke::Readable);
            }
            match deadline.as_mut().map(|d| Pin::new(d).poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Woke::Late),
                _ => Poll::Pending,
            }
        })
        .await;
        match woke {
            Woke::Writable => match stream.try_write(&batch[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return Ended::Failed,
            },
            // Something new in the mailbox (or it was closed or dropped): look at the top.
            Woke::Mail => {}
            Woke::Late => return Ended::Failed,
            Woke::Readable => {
                let (heard, full) = with_scratch(|s| {
                    let n = match stream.try_read(&mut s.input) {
                        Ok(0) => return (Heard::End, false),
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return (Heard::NotYet, false),
                        Err(_) => return (Heard::Failed, false),
                    };
                    let served = serve_input(session, &mut partial, &s.input[..n], &mut s.output, &mut s.pool);
                    let mut still_member = true;
                    if !s.output.is_empty() {
                        still_member = room.say(id, &s.output);
                        s.output.clear();
                    }
                    (Heard::Said { close: served.close, still_member }, n == s.input.len())
                });
                match heard {
                    Heard::NotYet => {}
                    Heard::Failed => return Ended::Failed,
                    Heard::End => {
                        // The member left, or shutdown stopped our reading.
                        reading = false;
                        mailbox.close();
                        room.leave(id, !stream.is_draining());
                    }
                    Heard::Said { close, still_member } => {
                        if !still_member {
                            reading = false; // dropped: the mailbox holds the notice
                        }
                        if close {
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
                }
                full_reads = if full { full_reads + 1 } else { 0 };
                if full_reads == READS_PER_TURN {
                    full_reads = 0;
                    yield_now().await;
                }
            }
        }
    }
}

/// The peer finished sending, or shutdown stopped our reading: wait until the peer has
/// acknowledged every reply, then send end-of-file, so closing cannot turn into a reset that
/// destroys replies still queued (see `crate::net::wait_until_delivered`). The kernel has no
/// readiness event for "all acknowledged", hence the timer, backing off from 1 ms.
async fn wait_until_delivered(stream: &TcpStream) {
    let reactor = stream.reactor();
    timeout(reactor, DELIVERY_WAIT, async {
        let mut step = Duration::from_millis(1);
        while stream.unacknowledged().is_ok_and(|queued| queued > 0) {
            reactor.sleep(step).await;
            step = (step * 2).min(DELIVERY_RECHECK_MAX);
        }
    })
    .await;
    stream.shutdown_write();
}

/// Close after the last reply (an error, or HTTP's `Connection: close`) without letting a reset
/// destroy it (see `crate::net::LINGER_TIME`): end-of-file now, then discard what the peer
/// still sends, into the shared buffer, for a bounded time and number of bytes.
async fn close_after_final_reply(stream: &TcpStream) {
    stream.shutdown_write();
    timeout(stream.reactor(), LINGER_TIME, async {
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            if stream.readable().await.is_err() {
                return;
            }
            match with_scratch(|s| stream.try_read(&mut s.input)) {
                Ok(0) => return,
                Ok(n) => discarded += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection costs its task's future, plus a slab slot, a waker and a reactor slot.
    /// A buffer or a timer kept in the future would cost every connection, idle or not; the
    /// session alone is about 100 bytes.
    #[test]
    fn an_idle_connection_task_stays_small() {
        let reactor = Rc::new(Reactor::new().unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = TcpStream::new(listener.accept().unwrap().0, reactor).unwrap();
        let config = ServerConfig::new(Proto::EchoLine);
        let conns = Rc::new(Connections::default());
        let watched = Clocks::new(config.connection_timeouts()).watch(&stream);
        assert!(watched.is_some(), "the default timeouts are on");
        let task = serve_connection(stream, config.session(config.local_store()), conns.open(), watched);
        let size = std::mem::size_of_val(&task);
        // 256 until the connection's state grew by a word (the offset of `Unserved`, so that a
        // backlog is not copied down after every turn, and the session's turn flag).
        assert!(size <= 264, "an echo connection's future takes {size} bytes");
    }
}
