//! # `process-per-connection`: a child process for each client (`fork`)
//!
//! The parent only accepts. For every connection it calls `fork()`: the child, a copy of the
//! parent, serves that one connection with plain blocking calls (the loop the threaded models
//! use, [`crate::conn::blocking_io::serve_connection`]) and exits when the client leaves; the
//! parent closes its own copy of the socket at once and goes back to `accept`. This is the
//! `echoserverp` of CS:APP's sequence of concurrent echo servers, and the oldest way a Unix
//! server served many clients.
//!
//! ```text
//!   parent: epoll_wait ─┬─ listener readable ─► accept ─► fork ─► close its copy of the socket
//!                       │                                   └─► child: close every other fd,
//!                       │                                       serve the socket, _exit
//!                       └─ pidfd readable (a child exited) ─► waitpid(that pid): reaped
//!   shutdown: stop listening ─► SIGTERM to every child ─► wait up to --grace ─► SIGKILL the rest
//! ```
//!
//! **What a child is.** A whole process: its own address space, a copy of the parent's made
//! *copy-on-write* (the page tables are copied at `fork`, each page is copied the first time
//! either side writes it), its own descriptor table, its own kernel task. So the child owns
//! everything it touches and shares nothing it could break. Right after `fork` it closes every
//! descriptor it inherited but its connection and stdin/stdout/stderr: the listener (as CS:APP's
//! `echoserverp` does), and everything else the parent had open. Under `cargo test` that is the
//! test harness's sockets too: a child that kept another test's socket open would keep that
//! socket's peer from ever seeing end-of-file.
//!
//! **Reaping.** A child that exits stays a *zombie* (its pid and exit status kept by the kernel)
//! until its parent waits for it. The parent here holds a *pidfd* per child (`pidfd_open`,
//! Linux 5.3), a descriptor that becomes readable when that child exits, in the same epoll set as
//! the listener; `waitpid(pid, WNOHANG)` then reaps exactly that child. The textbook way, a
//! `SIGCHLD` handler calling `waitpid(-1)`, reaps *any* child of the process: a library's
//! `Command`, or under `cargo test` the children of every other test. So this parent waits only
//! for the pids it forked.
//!
//! **What it costs.** A `fork`, an exit and a `waitpid` per connection, on top of the accept:
//! copying the parent's page tables, then a page fault and a page copy for every page the child
//! writes (its stack, its heap, its buffers), and a kernel task, a kernel stack and page tables
//! per open connection. The parent stays small on purpose, since `fork` is slower the more memory
//! it has mapped. `scripts/check-targets.sh --only 9` measures both sides of that, pinned to one
//! CPU, against `thread-per-connection`:
//! - new connections per second, every request on a connection of its own: 1,851 against
//!   7,476 (0.24×, medians of five alternating pairs), at 150–190 µs of server CPU per
//!   connection against 23–27 µs;
//! - memory at 1,000 idle connections, summed over all 1,002 processes: 1.2 GB of RSS, which
//!   counts every page a child still shares with the parent once per child, but 86 MB of PSS
//!   (which splits a shared page between its sharers): 84.5 KiB per connection, against
//!   13.7 KiB per thread. Neither counts the kernel's side (a task, a kernel stack and page
//!   tables per process).
//!
//! **Where it breaks.** At thousands of connections: each is a process, and the kernel's limits
//! on processes (`ulimit -u`, the cgroup's `pids.max`) come long before its limits on sockets, as
//! does its memory. Short-lived connections pay the whole `fork` each time. `--max-procs N`
//! (default 1024) caps the children: while N are alive the parent stops accepting, and new
//! clients wait in the kernel's listen backlog, connected but unanswered, until a child exits.
//! (Beyond the backlog the kernel drops their handshakes and they retry.) A failed `fork`
//! (`EAGAIN`, `ENOMEM`) closes that one connection and is logged on powers of two.
//!
//! And at bursts, long before thousands: connections that arrive together are forks in a row on
//! the server's CPU, and connections that end together (their clients leave, or the idle and
//! request timeouts end them) are exits in a row, each tearing down a process's page tables.
//! Meanwhile every other client waits for its own child to get the CPU. The abuse suite
//! (`scripts/abuse.sh --quick --models process-per-connection --scenarios slowloris,idle`) saw a
//! healthy client's p99 rise from under 1 ms to 4-23 ms while 50 to 100 attackers' children were
//! forked and then ended by their timeouts; an event loop, or a thread, pays a few microseconds
//! for the same. Busy children crowd it out the same way: 16 clients pipelining http without
//! reading keep 16 children runnable, and the healthy client's child waits for their time slices
//! (p99 22–35 ms in `scripts/abuse.sh --models process-per-connection --scenarios slow-reader
//! --protos http`; `thread-per-connection`'s lesson tells more).
//!
//! **Why it refuses `kv` and `chat`.** After `fork`, parent and child have separate copies of
//! memory: a `SET` in one child is invisible to every other, and a chat line read by one child
//! cannot reach the sockets that other children own. Sharing would need memory mapped
//! `MAP_SHARED` before the fork, laid out without pointers into any one process's heap, guarded
//! by a process-shared lock (a `pthread_mutex` with `PTHREAD_PROCESS_SHARED`, or a futex in that
//! memory), and for chat a way to wake the other children (pipes, or a broker process). That is
//! a different lab; serving a private store per connection would be a wrong answer, so
//! [`check`] refuses both before the server listens.
//!
//! **Shutdown by signal.** There is no thread in the child to tell; the parent sends it
//! `SIGTERM`. The child's handler (installed right after `fork`) does only what a signal handler
//! may: it sets a flag and calls `shutdown(SHUT_RD)` on the connection, which wakes a blocked
//! `read` with end-of-file, just as [`OpenConnections`](crate::shutdown::OpenConnections) does
//! for the threaded models. The child answers what it has read, waits until the replies are
//! delivered, closes and exits 0. `SIGINT` does the same (Ctrl-C reaches the whole process
//! group). Children the parent dies without (a second signal, a crash) get `SIGKILL` from the
//! kernel (`PR_SET_PDEATHSIG`): nobody would enforce their grace period any more.
//!
//! **`fork` in a threaded process.** Only the calling thread is copied; a lock another thread
//! held at that instant stays locked in the child for ever. So the child touches only what it
//! owns: its socket, its session, and glibc's `malloc` (which glibc resets in the child). It
//! logs nothing, since stderr's lock could be one of those. (A panic in the child would still
//! run Rust's panic hook, which takes that lock: the one path left where a child could hang,
//! holding its `--max-procs` slot until shutdown kills it.) Production forking servers fork from
//! a single-threaded parent; this one has the `server` binary's signal thread, and under
//! `cargo test` a whole test harness.
//!
//! **What it buys: real isolation.** A child that crashes (a segfault in a C library, an abort,
//! a leak that exhausts its memory) takes down one client, not the server; whatever it leaked is
//! freed at its exit. That is why this design survives in production:
//! - **Apache's `prefork` MPM** forks its children *ahead of time*; each accepts on the shared
//!   listener and serves one connection at a time, and is replaced after
//!   `MaxConnectionsPerChild` connections so that leaks cannot grow. It is chosen for isolation:
//!   modules that are not thread-safe (classic `mod_php`) need a process to themselves.
//! - **PostgreSQL** runs one backend process per client connection; what they share (buffers,
//!   locks) lives in shared memory set up by the parent. Backends are expensive to start and
//!   heavy to keep, so busy sites put a pooler such as PgBouncer in front: many clients, few
//!   backends.
//! - **OpenSSH**'s `sshd` forks a child per connection, and isolation is the point there too:
//!   each session runs with its own user's privileges.

use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use polling::{Event, Events, PollMode, Poller};
use slab::Slab;

use super::{CannotServe, Model};
use crate::config::ServerConfig;
use crate::conn::admission::refuse;
use crate::conn::blocking_io::{Connection, serve_connection};
use crate::net::{AcceptFailure, FdReserve, Shed};
use crate::proto::Proto;
use crate::shutdown::Shutdown;

/// The listener's key in the poller; children are keyed by their slot in [`Parent::children`].
const LISTENER: usize = usize::MAX - 1;
/// How soon an `accept` that failed for lack of descriptors or memory is tried again.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);
/// Connections accepted (and children forked) before the parent looks at its events again.
/// Clients that reconnect as fast as they are served keep the listen queue from ever running
/// dry; without a cap the parent would fork for ever and reap never, and exited children would
/// pile up as zombies until `--max-procs` stopped it.
const ACCEPTS_PER_TURN: usize = 16;
/// The most events one wait reports (exits and the listener); the rest come with the next.
const EVENT_BATCH: NonZeroUsize = NonZeroUsize::new(256).unwrap();

/// Whether this model serves `config`: only on Linux, and only the protocols whose connections
/// share nothing (see the module documentation for why `kv` and `chat` are refused).
pub fn check(config: &ServerConfig) -> Result<(), CannotServe> {
    let model = Model::ProcessPerConnection;
    if !cfg!(any(target_os = "linux", target_os = "android")) {
        let why = "it needs Linux (pidfd_open, close_range)".into();
        return Err(CannotServe::Unavailable { model, why });
    }
    match config.proto {
        Proto::EchoLine | Proto::EchoFrame | Proto::Http => Ok(()),
        proto @ (Proto::Kv | Proto::Chat) => Err(CannotServe::Refuses {
            model,
            proto,
            why: "each connection is a separate process and they share no store; see the model's lesson"
                .into(),
        }),
    }
}

/// Fork a child for each connection until `shutdown` is triggered, then stop the children
/// (`SIGTERM`, `--grace`, `SIGKILL`) and reap every one before returning.
pub fn run(listener: TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
    check(config).map_err(|e| io::Error::new(ErrorKind::Unsupported, e.to_string()))?;
    let poller = Arc::new(Poller::new()?);
    {
        let poller = Arc::clone(&poller);
        shutdown.on_trigger(move || {
            let _ = poller.notify();
        });
    }
    listener.set_nonblocking(true)?;
    // SAFETY: the listener is deleted from the poller before it is dropped (`Parent::stop`).
    unsafe { poller.add_with_mode(&listener, Event::readable(LISTENER), PollMode::Edge)? };
    let mut parent = Parent {
        config,
        poller,
        listener: Some(listener),
        backlog: true,
        accept_retry_at: None,
        reserve: FdReserve::new(),
        children: Slab::new(),
        fork_failures: 0,
        times_full: 0,
    };
    let served = parent.serve(shutdown);
    // Even if the listener broke: the children must not outlive the server.
    parent.stop();
    served
}

/// Everything the parent owns.
struct Parent<'a> {
    config: &'a ServerConfig,
    poller: Arc<Poller>,
    /// `None` once shutdown began: the kernel then refuses new connections.
    listener: Option<TcpListener>,
    /// The listener may have connections waiting: it became readable (edge-triggered) and
    /// `accept` has not said `WouldBlock` since. It stays set while `--max-procs` holds the
    /// parent back, so that a child's exit lets the next waiting client in.
    backlog: bool,
    /// When to try `accept` again after it failed for lack of descriptors or memory.
    accept_retry_at: Option<Instant>,
    reserve: FdReserve,
    /// Every child alive or not yet reaped.
    children: Slab<Child>,
    fork_failures: u64,
    times_full: u64,
}

/// A child the parent forked and has not reaped yet. Its pid cannot be reused before then, so
/// `kill(pid)` and `waitpid(pid)` always reach this child.
struct Child {
    pid: libc::pid_t,
    /// Readable once the child has exited; registered in the parent's poller under its slot.
    pidfd: OwnedFd,
}

impl Parent<'_> {
    /// Accept and fork until shutdown is triggered.
    fn serve(&mut self, shutdown: &Shutdown) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENT_BATCH);
        while !shutdown.is_triggered() {
            if self.accept_retry_at.is_some_and(|at| at <= Instant::now()) {
                self.accept_retry_at = None;
            }
            if self.backlog && self.accept_retry_at.is_none() {
                self.accept_some()?;
            }
            let timeout = if self.backlog && self.accept_retry_at.is_none() && self.children.len() < self.config.max_procs {
                Some(Duration::ZERO) // connections still wait: reap, then accept again at once
            } else {
                self.accept_retry_at.map(|at| at.saturating_duration_since(Instant::now()))
            };
            events.clear();
            self.poller.wait(&mut events, timeout)?;
            for event in events.iter() {
                match event.key {
                    LISTENER => self.backlog = true,
                    child => self.reap(child),
                }
            }
        }
        Ok(())
    }

    /// Accept waiting connections, each into a child of its own, until none waits or
    /// `--max-procs` children are alive.
    fn accept_some(&mut self) -> io::Result<()> {
        let Some(listener) = &self.listener else { return Ok(()) };
        for _ in 0..ACCEPTS_PER_TURN {
            if self.children.len() >= self.config.max_procs {
                self.note_full();
                return Ok(());
            }
            match listener.accept() {
                // `--max-conns` below `--max-procs`: refused with the protocol's words instead of
                // waiting in the backlog.
                Ok((stream, _)) if self.children.len() >= self.config.max_conns => {
                    refuse(&stream, self.config.proto)
                }
                Ok((stream, _)) => {
                    fork_child(stream, self.config, &self.poller, &mut self.children, &mut self.fork_failures)
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.backlog = false;
                    return Ok(());
                }
                Err(e) => match AcceptFailure::of(&e) {
                    AcceptFailure::OneConnection => {}
                    // Shed the waiting connection and look for the next (see `FdReserve`).
                    AcceptFailure::OutOfFds => match self.reserve.shed(|| listener.accept()) {
                        Shed::Closed => {}
                        Shed::NothingWaiting => {
                            self.backlog = false;
                            return Ok(());
                        }
                        Shed::NoReserve => {
                            self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                            return Ok(());
                        }
                    },
                    AcceptFailure::Resources => {
                        self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                        return Ok(());
                    }
                    AcceptFailure::Fatal => return Err(e),
                },
            }
        }
        Ok(()) // this turn's share: `backlog` stays set, and `serve` comes back after reaping
    }

    /// Full: accept nothing until a child exits; newcomers wait in the listen backlog.
    fn note_full(&mut self) {
        self.times_full += 1;
        if self.times_full.is_power_of_two() {
            crate::log::line(format_args!(
                "{} children alive (--max-procs): new clients wait in the listen backlog; {} time(s) so far",
                self.children.len(),
                self.times_full
            ));
        }
    }

    /// The child in slot `key` may have exited: reap it if so.
    fn reap(&mut self, key: usize) {
        let Some(child) = self.children.get(key) else { return };
        match waitpid(child.pid, libc::WNOHANG) {
            Ok(0) => {} // still running: a spurious wake-up
            // Reaped, or (ECHILD) no longer ours to wait for: forget it either way.
            Ok(_) | Err(_) => self.forget(key),
        }
    }

    /// Drop a reaped child's slot and close its pidfd.
    fn forget(&mut self, key: usize) {
        let child = self.children.remove(key);
        // Delete explicitly: closing the pidfd alone would leave it registered while a child
        // forked a moment ago still holds a copy, and its slot may be given to the next child.
        let _ = self.poller.delete(&child.pidfd);
    }

    /// Shutdown: stop listening, `SIGTERM` every child, give them `--grace` to finish, then
    /// `SIGKILL` whoever is left. Every child is reaped before this returns.
    fn stop(&mut self) {
        if let Some(listener) = self.listener.take() {
            let _ = self.poller.delete(&listener);
        }
        for (_, child) in &self.children {
            // SAFETY: kill(2) on a child we have not reaped (its pid is still ours).
            unsafe { libc::kill(child.pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + self.config.grace;
        let mut events = Events::with_capacity(EVENT_BATCH);
        while !self.children.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            events.clear();
            if self.poller.wait(&mut events, Some(deadline - now)).is_err() {
                break; // cannot wait politely any more: the rest are killed below
            }
            for event in events.iter() {
                if event.key != LISTENER {
                    self.reap(event.key);
                }
            }
        }
        if !self.children.is_empty() {
            crate::log::line(format_args!(
                "grace period over: killed {} child process(es) still serving",
                self.children.len()
            ));
        }
        let keys: Vec<usize> = self.children.iter().map(|(key, _)| key).collect();
        for key in keys {
            kill_and_reap(self.children[key].pid);
            self.forget(key);
        }
    }
}

/// Fork a child to serve `stream`; in the parent, close the parent's copy and register the
/// child. A failure costs this one connection, never the server.
fn fork_child(
    stream: TcpStream,
    config: &ServerConfig,
    poller: &Poller,
    children: &mut Slab<Child>,
    fork_failures: &mut u64,
) {
    // Block the stop signals across `fork`, so the child cannot receive one before it has
    // installed its own handler (it inherits the parent's, which in the `server` binary would
    // wake a signal thread the child does not have). One sent meanwhile waits, pending, and is
    // delivered once the child unblocks it.
    let previous = block_stop_signals();
    // SAFETY: getpid takes nothing and cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child runs only `serve_child`, which never returns (see the module
    // documentation for what it may touch after forking a threaded process).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        serve_child(stream, config, parent);
    }
    let forked = if pid < 0 { Err(io::Error::last_os_error()) } else { Ok(pid) };
    restore_signal_mask(&previous);
    // The child has its own copy of the connection now (or nobody has, if fork failed).
    drop(stream);
    let pid = match forked {
        Ok(pid) => pid,
        Err(e) => {
            // Out of processes or memory (EAGAIN, ENOMEM): this client's connection is closed.
            // Logged on powers of two, so a flood of failures cannot flood the log as well.
            *fork_failures += 1;
            if fork_failures.is_power_of_two() {
                crate::log::line(format_args!(
                    "cannot fork ({e}); {fork_failures} connection(s) closed so far"
                ));
            }
            return;
        }
    };
    let entry = children.vacant_entry();
    let registered = pidfd_open(pid).and_then(|pidfd| {
        // SAFETY: the pidfd is deleted from the poller before it is dropped (`Parent::forget`).
        // Level-triggered: an exit that the parent does not reap at once (it cannot happen,
        // but if it did) is reported again rather than forgotten until shutdown.
        unsafe { poller.add_with_mode(&pidfd, Event::readable(entry.key()), PollMode::Level)? };
        Ok(pidfd)
    });
    match registered {
        Ok(pidfd) => {
            entry.insert(Child { pid, pidfd });
        }
        Err(e) => {
            // A child the parent cannot watch could become a zombie nobody reaps: stop it now.
            // (Out of descriptors, most likely; its client's connection is closed.)
            kill_and_reap(pid);
            *fork_failures += 1;
            if fork_failures.is_power_of_two() {
                crate::log::line(format_args!(
                    "cannot watch a child ({e}); {fork_failures} connection(s) closed so far"
                ));
            }
        }
    }
}

/// `SIGKILL` a child and wait for it: it dies at once, so the wait is short.
fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: kill(2) on a child we have not reaped.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = waitpid(pid, 0);
}

/// `waitpid(2)` for one child, retried when a signal interrupts it; the pid it returns (0 with
/// `WNOHANG` if the child is still running).
fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<libc::pid_t> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into the int we own.
        let reaped = unsafe { libc::waitpid(pid, &mut status, flags) };
        if reaped >= 0 {
            return Ok(reaped);
        }
        let e = io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Block `SIGTERM` and `SIGINT` on the calling thread; returns the mask to restore.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise sets we own; pthread_sigmask changes only this
    // thread's mask and writes the previous one into `previous`.
    unsafe {
        let mut stop: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut stop);
        libc::sigaddset(&mut stop, libc::SIGTERM);
        libc::sigaddset(&mut stop, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &stop, &mut previous);
        previous
    }
}

fn restore_signal_mask(previous: &libc::sigset_t) {
    // SAFETY: `previous` is a mask pthread_sigmask gave us.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, previous, std::ptr::null_mut()) };
}

// ----- the child -------------------------------------------------------------------------------

/// The child's connection, for its `SIGTERM` handler (a handler can reach only statics).
static CONNECTION: AtomicI32 = AtomicI32::new(-1);
/// Set by the handler: the server is draining.
static DRAINING: AtomicBool = AtomicBool::new(false);

/// How a child's exit status reads: served until the client left or shutdown came, the
/// connection failed (a reset, say), the child could not set itself up, or it panicked.
const EXIT_SERVED: libc::c_int = 0;
const EXIT_CONNECTION_FAILED: libc::c_int = 1;
const EXIT_SETUP_FAILED: libc::c_int = 2;
const EXIT_PANICKED: libc::c_int = 3;

/// The child: serve `stream`, then `_exit`. Never returns: returning would run the rest of the
/// parent's program a second time (under `cargo test`, the test harness).
fn serve_child(stream: TcpStream, config: &ServerConfig, parent: libc::pid_t) -> ! {
    let status =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve_alone(stream, config, parent)))
            .unwrap_or(EXIT_PANICKED);
    // SAFETY: _exit ends this process at once, running no destructor or exit handler that
    // belongs to the parent's program (nor flushing its stdout buffer a second time).
    unsafe { libc::_exit(status) }
}

fn serve_alone(stream: TcpStream, config: &ServerConfig, parent: libc::pid_t) -> libc::c_int {
    let fd = stream.as_raw_fd();
    if close_other_descriptors(fd).is_err()
        || drain_on_stop_signals(fd).is_err()
        || die_with_parent(parent).is_err()
    {
        return EXIT_SETUP_FAILED;
    }
    // Linux's accepted sockets are blocking whatever the listener is; elsewhere they inherit
    // its non-blocking flag.
    if stream.set_nonblocking(false).is_err() {
        return EXIT_SETUP_FAILED;
    }
    // A store of its own that nobody else sees: only `kv` would use it, and `check` refuses kv.
    let session = config.session(config.local_store());
    match serve_connection(&Alone(stream), session, config.connection_timeouts()) {
        Ok(()) => EXIT_SERVED,
        Err(_) => EXIT_CONNECTION_FAILED,
    }
}

/// The one connection of a child, draining once a stop signal came.
struct Alone(TcpStream);

impl Connection for Alone {
    fn socket(&self) -> &TcpStream {
        &self.0
    }
    fn is_draining(&self) -> bool {
        DRAINING.load(Ordering::SeqCst)
    }
}

/// Install the child's `SIGTERM` and `SIGINT` handler for connection `fd`, then unblock both
/// (the parent blocked them across `fork`).
fn drain_on_stop_signals(fd: RawFd) -> io::Result<()> {
    CONNECTION.store(fd, Ordering::SeqCst);
    // SAFETY: an all-zero sigaction is a valid value of this plain C struct; we fill in the
    // handler (a function that does only async-signal-safe things) and an empty mask.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // No SA_RESTART: an interrupted call returns EINTR, which every call in the connection
        // loop retries; the `shutdown(SHUT_RD)` is what ends the loop.
        action.sa_flags = 0;
        libc::sigemptyset(&mut action.sa_mask);
        for signal in [libc::SIGTERM, libc::SIGINT] {
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
    Ok(())
}

/// The stop signal's handler: mark the connection draining and stop its reading, so a blocked
/// `read` returns end-of-file. Atomics and `shutdown(2)` only: both are async-signal-safe.
extern "C" fn on_stop_signal(_signal: libc::c_int) {
    let saved = errno();
    DRAINING.store(true, Ordering::SeqCst);
    let fd = CONNECTION.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: shutdown(2) on the child's connection, which stays open until `_exit`.
        unsafe { libc::shutdown(fd, libc::SHUT_RD) };
    }
    // The interrupted code may be about to read errno: give it back its own.
    set_errno(saved);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno() -> libc::c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_errno(value: libc::c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value };
}

/// Ask the kernel to `SIGKILL` this child when the parent thread that forked it dies: a parent
/// gone without stopping its children (a second signal, a crash) leaves nobody to enforce their
/// grace period. If `parent` died before the request was made, leave now.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn die_with_parent(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid take no pointers.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::getppid() } != parent {
        return Err(io::Error::other("the parent died before the child was set up"));
    }
    Ok(())
}

/// Close every descriptor but `keep` and 0, 1, 2: `close_range(2)` on either side of `keep`
/// (Linux 5.9), or on older kernels each descriptor `/proc/self/fd` lists.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn close_other_descriptors(keep: RawFd) -> io::Result<()> {
    let keep = u32::try_from(keep).map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
    let close_range = |first: u32, last: u32| -> io::Result<()> {
        if first > last {
            return Ok(());
        }
        // SAFETY: close_range(2) takes no pointers; this process owns every descriptor closed.
        if unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    match close_range(3, keep.saturating_sub(1)).and_then(|()| close_range(keep.max(2) + 1, u32::MAX)) {
        // Too old a kernel, or a seccomp profile that does not know the call: walk the list.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {}
        done => return done,
    }
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in listed.into_iter().filter(|&fd| fd > 2 && fd != keep as RawFd) {
        // SAFETY: closing a descriptor of this single-threaded child that nothing else uses
        // (the directory's own descriptor is already closed, and EBADF is harmless).
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// A pidfd for child `pid`: readable once it has exited (`pidfd_open(2)`, Linux 5.3).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes no pointers and returns a new descriptor (close-on-exec) or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from(ErrorKind::InvalidData))?;
    // SAFETY: a descriptor the kernel just gave us, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// Elsewhere `check` refuses to start, so `run` never gets this far; these keep the lab building.

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn errno() -> libc::c_int {
    0
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_errno(_value: libc::c_int) {}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn die_with_parent(_parent: libc::pid_t) -> io::Result<()> {
    Err(ErrorKind::Unsupported.into())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn close_other_descriptors(_keep: RawFd) -> io::Result<()> {
    Err(ErrorKind::Unsupported.into())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn pidfd_open(_pid: libc::pid_t) -> io::Result<OwnedFd> {
    Err(ErrorKind::Unsupported.into())
}
