//! # `multi-reactor`: one event loop per core
//!
//! The `reactor`'s loop, `--threads` times over: each thread runs that very loop
//! ([`super::reactor`]) over its own `mio::Poll` and its own table of connections, with a mailbox
//! as one more source of wake-ups, and a connection belongs to one loop from its accept to its close.
//! This is the shape of nginx's worker processes, Netty's event loop groups, Seastar and
//! monoio's thread-per-core runtimes.
//!
//! ```text
//!   --accept reuseport                          --accept handoff
//!   kernel ─┬─► listener 0 ─► loop 0            acceptor ─ accept ─► round robin
//!           ├─► listener 1 ─► loop 1                 ├─► channel + mio::Waker ─► loop 0
//!           └─► listener 2 ─► loop 2                 └─► channel + mio::Waker ─► loop 1
//!   (one SO_REUSEPORT group, one port)
//!   each loop: poll ─► read ► decode ► reply ─► end of turn ─► poll …   (no locks on this path)
//! ```
//!
//! **Why a connection never moves.** Its buffers, its place in the loop's epoll set and its
//! partial request all live in one loop's table; moving it would mean locking that state or
//! handing it across threads, exactly the costs this design exists to avoid. The payoff is that
//! the hot path (read, decode, reply) touches no lock and no shared cache line: each core runs
//! a `reactor` of its own. The price is that load is balanced only when connections *arrive*.
//!
//! **How connections are spread.**
//! - `reuseport` (the default): every loop listens on the same port with `SO_REUSEPORT`, and
//!   the kernel picks a listener for each new connection by a hash of its addresses and ports.
//!   No thread hands anything to another. But the hash balances *connection counts*, and only
//!   statistically: with few connections one loop may get two and another none, and it knows
//!   nothing of how busy a connection will be. A loop that got the long-lived busy clients stays
//!   hot while its neighbours idle, and a loop that stops accepting still has connections hashed
//!   to it. (nginx's `reuseport` has the same trade; its default instead wakes one worker per
//!   connection through a shared listener.) The balancing is Linux's: on macOS `SO_REUSEPORT`
//!   only lets the sockets share the port, and FreeBSD balances with `SO_REUSEPORT_LB` instead;
//!   there, use `handoff`.
//! - `handoff`: one acceptor thread accepts every connection and deals them out round robin: it
//!   puts the socket in the loop's mailbox and wakes the loop with a `mio::Waker` (an eventfd).
//!   The spread is exact in count, at the price of a thread switch per accept, and it is still
//!   blind to how busy each connection will be.
//!
//! **How this differs from tokio's multi-thread runtime.** Tokio also runs a loop per worker,
//! but its *tasks* migrate: an idle worker steals runnable tasks from a busy one's queue, so one
//! loop with all the busy connections does not leave cores idle. Stealing costs atomic queue
//! operations and moves a connection's state between caches; thread-per-core designs give that
//! up for predictable, lock-free fast paths, and accept some imbalance.
//!
//! **What it costs.** A thread, an epoll instance and a 64 KiB read buffer per loop; per
//! connection, the same few hundred bytes as the `reactor`. State shared between connections on
//! different loops needs sharing again: the `kv` store is the threaded models' sharded store
//! behind its locks (`--store`), where the `reactor` owned one outright.
//!
//! **Where it breaks.** Everything that stalls a `reactor` stalls one loop here (`--work-us`,
//! `--block-us`): only that loop's connections wait, but they all do, while the other cores may
//! be idle. And the spread is decided at accept time, as above. There is no single queue of
//! new connections any more, so there is no first-come order across loops either: when the
//! process runs out of descriptors, the loops that accept first take the last ones, whoever
//! arrived first (every loop sheds the rest, as `crate::net::FdReserve` explains).
//!
//! **How it routes chat.** Each loop's table is its part of the room
//! ([`crate::conn::loop_chat`]). What a loop's members say is routed to its own members, and in
//! the same step appended to every other loop's mailbox, which wakes that loop if it was empty;
//! that loop routes it to its members as it does its own lines. Each member keeps its bounded outbox, and a member that falls
//! behind is dropped on its own loop, with the notice going everywhere. Lines from one sender
//! arrive in the order it sent them; lines from senders on different loops may interleave
//! differently for different members, since no lock orders them. Member ids come from one
//! shared counter.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::reactor::{Reactor, WAKER, Wakes};

use crate::config::{AcceptMode, ServerConfig};
use crate::conn::loop_room::LoopRoom;
use crate::conn::nonblocking::accept_ready;
use crate::conn::table::Table;
use crate::net::{FdReserve, LISTEN_BACKLOG};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The acceptor's listener (the loops' own listeners are the `reactor`'s business).
const LISTENER: Token = Token(usize::MAX);

/// Start `--threads` loops, spread connections over them as `--accept` says, and serve until
/// `shutdown` is triggered and every loop has finished.
pub fn run(listener: std::net::TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let loops = config.threads.max(1);
    let polls = (0..loops).map(|_| Poll::new()).collect::<io::Result<Vec<_>>>()?;
    let mailboxes = polls.iter().map(|poll| Mailbox::new(poll.registry())).collect::<io::Result<Vec<_>>>()?;
    let mailboxes: Arc<[Mailbox]> = mailboxes.into();
    let mailboxes = &mailboxes;
    let (listeners, acceptor) = match config.accept {
        AcceptMode::Reuseport => (reuseport_group(listener, loops)?.into_iter().map(Some).collect(), None),
        AcceptMode::Handoff => ((0..loops).map(|_| None).collect::<Vec<_>>(), Some(listener)),
    };
    let acceptor = acceptor.map(|listener| Acceptor::new(listener, mailboxes)).transpose()?;
    {
        let mailboxes = Arc::clone(mailboxes);
        shutdown.on_trigger(move || mailboxes.iter().for_each(Mailbox::wake));
    }
    let store = config.shared_store();
    let ids = Arc::new(AtomicU64::new(0));
    // `--max-conns` counts the whole server's connections, whichever loop holds them.
    let admission = config.admission();
    thread::scope(|scope| {
        let mut threads = Vec::with_capacity(loops);
        for (index, (poll, listener)) in polls.into_iter().zip(listeners).enumerate() {
            let others = Arc::clone(mailboxes);
            let room = LoopRoom::part_of(config.chat_queue, Arc::clone(&ids), move |said: &[u8]| {
                for (_, mailbox) in others.iter().enumerate().filter(|(other, _)| *other != index) {
                    mailbox.post(|letters| letters.chat.extend_from_slice(said));
                }
            });
            let post = Post { mailbox: &mailboxes[index], shutdown, letters: Letters::default() };
            let spawned = poll
                .registry()
                .try_clone()
                .map(|registry| Table::new(config, registry, Arc::clone(&store), room, admission.clone()))
                .and_then(|table| Reactor::new(poll, listener, table, config))
                .and_then(|reactor| {
                    thread::Builder::new()
                        .name(format!("reactor-{index}"))
                        .spawn_scoped(scope, move || serve_loop(reactor, post))
                });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    shutdown.trigger(); // the loops already started stop too
                    return Err(e);
                }
            }
        }
        let mut result = acceptor.map_or(Ok(()), |acceptor| acceptor.run(shutdown));
        if result.is_err() {
            shutdown.trigger(); // a broken listener stops the loops too
        }
        for thread in threads {
            let finished = thread.join().unwrap_or_else(|_| Err(io::Error::other("an event loop panicked")));
            result = result.and(finished);
        }
        result
    })
}

/// `listener` and `loops - 1` more on the same address, all in one `SO_REUSEPORT` group, so
/// the kernel spreads new connections over them. `listener` is already bound and listening
/// (the `server` binary printed its address), so it joins the group by setting the option now:
/// Linux forms the group when the second socket starts listening.
fn reuseport_group(listener: std::net::TcpListener, loops: usize) -> io::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, SockRef, Socket, Type};
    let addr: SocketAddr = listener.local_addr()?;
    SockRef::from(&listener).set_reuse_port(true)?;
    let mut group = vec![listener];
    for _ in 1..loops {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        group.push(socket.into());
    }
    Ok(group)
}

/// What other threads leave for one loop, and the waker that tells it so.
struct Mailbox {
    waker: Waker,
    /// Set by whoever posts, cleared by the loop when it collects: a post wakes the loop only
    /// when the flag was clear, so a busy room costs one eventfd write per turn, not per line.
    full: AtomicBool,
    letters: Mutex<Letters>,
}

/// The contents of a [`Mailbox`].
#[derive(Default)]
struct Letters {
    /// `handoff`: connections accepted for this loop.
    conns: Vec<TcpStream>,
    /// `chat`: lines said on other loops, in the order they were posted.
    chat: Vec<u8>,
}

impl Mailbox {
    fn new(registry: &Registry) -> io::Result<Mailbox> {
        Ok(Mailbox { waker: Waker::new(registry, WAKER)?, full: AtomicBool::new(false), letters: Mutex::default() })
    }

    fn post(&self, write: impl FnOnce(&mut Letters)) {
        write(&mut self.letters.lock().unwrap_or_else(PoisonError::into_inner));
        if !self.full.swap(true, Ordering::AcqRel) {
            self.wake();
        }
    }

    /// Swap everything posted since the last call into `empty`; false if nothing was.
    fn collect(&self, empty: &mut Letters) -> bool {
        if !self.full.swap(false, Ordering::AcqRel) {
            return false;
        }
        let mut letters = self.letters.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut letters.conns, &mut empty.conns);
        std::mem::swap(&mut letters.chat, &mut empty.chat);
        true
    }

    fn wake(&self) {
        // Fails only if the eventfd is gone, and then the loop is gone too.
        let _ = self.waker.wake();
    }
}

/// What a loop finds in its mailbox, for the `reactor`'s loop to take in at every turn.
struct Post<'a> {
    mailbox: &'a Mailbox,
    shutdown: &'a Shutdown,
    /// Letters collected, kept so that no turn allocates.
    letters: Letters,
}

impl<S: Store + Clone> Wakes<S> for Post<'_> {
    /// Take in connections handed to this loop, and route lines said on the others. Mail comes
    /// first in a turn: a line said on another loop before this turn's events happened reaches
    /// members here before anything those events make them say.
    fn collect(&mut self, table: &mut Table<S>) {
        if !self.mailbox.collect(&mut self.letters) {
            return;
        }
        // Lines first: they were said before these connections joined the room here.
        if !self.letters.chat.is_empty() {
            table.route_from_afar(&self.letters.chat);
            self.letters.chat.clear();
        }
        for stream in self.letters.conns.drain(..) {
            table.insert(stream); // once shutdown began, this closes it instead
        }
    }

    fn shutting_down(&self) -> bool {
        self.shutdown.is_triggered()
    }
}

/// One loop's thread: the `reactor`'s loop over this loop's poll, listener and table, with the
/// mailbox as its other source of wake-ups. A loop that fails takes the whole server down.
fn serve_loop<S: Store + Clone>(mut reactor: Reactor<S>, mut post: Post<'_>) -> io::Result<()> {
    let result = reactor.run(&mut post);
    if result.is_err() {
        post.shutdown.trigger();
    }
    result
}

/// `handoff`: the thread that accepts every connection and deals them out to the loops.
struct Acceptor<'a> {
    poll: Poll,
    listener: TcpListener,
    mailboxes: &'a [Mailbox],
    /// Woken by shutdown; a `Waker` of its own, since the loops' wakers belong to their polls.
    waker: Arc<Waker>,
}

impl<'a> Acceptor<'a> {
    fn new(listener: std::net::TcpListener, mailboxes: &'a [Mailbox]) -> io::Result<Acceptor<'a>> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Acceptor { poll, listener, mailboxes, waker })
    }

    /// Accept and deal out connections until shutdown; then drop the listener, so that new
    /// clients are refused by the kernel while the loops finish.
    fn run(mut self, shutdown: &Shutdown) -> io::Result<()> {
        let waker = Arc::clone(&self.waker);
        shutdown.on_trigger(move || {
            let _ = waker.wake();
        });
        let mut events = Events::with_capacity(64);
        let (mut reserve, mut retry_at, mut next) = (FdReserve::new(), None::<Instant>, 0);
        while !shutdown.is_triggered() {
            let timeout = retry_at.map(|at| at.saturating_duration_since(Instant::now()));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // Whatever woke us (a connection, the retry time, shutdown), accepting is harmless.
            retry_at = accept_ready(&self.listener, &mut reserve, |stream| {
                self.mailboxes[next].post(|letters| letters.conns.push(stream));
                next = (next + 1) % self.mailboxes.len();
            })?;
        }
        Ok(())
    }
}
