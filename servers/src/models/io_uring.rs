//! # `io-uring`: one thread, completions instead of readiness
//!
//! Every other event loop in the lab asks the kernel *"which sockets are ready?"* and then does
//! the reading and writing itself, one system call each. io_uring (Linux 5.1; this model needs
//! the multishot receive of 6.0) turns that around: the program describes whole operations
//! ("receive into a buffer of group 0", "send these bytes", "accept") in a submission queue
//! shared with the kernel, and later reads their results from a completion queue, also shared.
//!
//! ```text
//!   submission queue ──► kernel does the I/O ──► completion queue
//!   [recv c7] [send c3]     (no syscall each)     [c7: 64 B in buffer 12] [c3: sent 64]
//!        ▲                                                  │
//!        └───── serve, queue the reply, re-arm the recv ◄───┘   one io_uring_enter per turn:
//!                                                               submit all, wait for some
//! ```
//!
//! **Readiness against completion.** The reactor pays `epoll_wait`, then `recv`, then `send`:
//! three system calls for a request that arrives alone. Here one `io_uring_enter` submits every
//! operation the last turn queued *and* waits for the next completions, and a connection's
//! receive stays armed from one request to the next (multishot), submitted again only after
//! back-pressure paused it, a turn ended at its budget of requests
//! ([`REQUESTS_PER_TURN`](crate::session::REQUESTS_PER_TURN): a client with more than 64 in
//! flight), or the buffers ran out. `scripts/check-targets.sh --only 8`
//! counts them with the kernel's tracepoints at 60,000 requests/s over 50 connections: the
//! reactor made 2.9 system calls per request (0.95 `epoll_wait`, 0.99 `recvfrom`, 0.99
//! `sendto`), this loop 0.9 to 1.3, all of them `io_uring_enter`.
//!
//! **And yet it is no cheaper here.** The same run measured this server's CPU time per request
//! at 1.06 times the reactor's with a receive submitted per request, and 1.03 with the
//! multishot receive (each the median of five alternating pairs). Its
//! profile says why: on loopback, about 60% of either server's CPU is the TCP/IP stack itself
//! (sending, acknowledging, the loopback device's receive path), which no interface changes.
//! System call entry and exit are 7% of the reactor's CPU and `epoll` 2%; io_uring cuts the
//! first to 2% and drops the second, but its own machinery (arming its internal poll, running
//! completions as task work, posting them) costs 10%. And at a rate the server does not
//! saturate, the loop wakes for almost every request, so a "batch" is one or two operations:
//! batching pays when many connections are ready at once, or with the zero-copy and
//! registered-buffer features this loop does not use.
//!
//! **The kernel owns the buffer, and that is the hard part.** A readiness loop lends a buffer
//! to `read` for the length of one call; the borrow checker sees the loan begin and end. A
//! submitted `Send` keeps a raw pointer to its bytes until its completion arrives, which may be
//! many turns later: Rust's borrows end at the function call, so nothing stops the program from
//! growing, moving or freeing those bytes meanwhile, and the kernel would then send garbage or
//! read freed memory. The compiler cannot help; the code must prove it by construction. Here,
//! the bytes of a send live in a `Vec` that nothing touches while its `armed` flag is set
//! (`io_uring/conn.rs`), a connection is freed only when none of its operations is in flight,
//! and however the loop ends it shuts every socket and collects every operation's completion
//! before the memory goes (closing the ring alone would not wait for the kernel). Runtimes
//! built on io_uring (tokio-uring, monoio, glommio) make the same point in their types: their
//! `read` *takes* the buffer by value and hands it back with the result.
//!
//! **No buffer for an idle connection.** A receive waiting on a quiet socket would pin a buffer
//! per connection: 10,000 idle clients × 16 KiB is 160 MB. So receives name a *buffer group*
//! instead ([`ring::BufRing`], a provided buffer ring): the kernel takes a buffer from a shared
//! ring only when bytes arrive, and the loop gives it back as soon as it has served them. An
//! idle connection costs its slab entry and the kernel's record of its pending receive.
//!
//! **What it costs.** The same explicit state as the reactor plus the ownership bookkeeping
//! above; cancelling an operation is itself an asynchronous operation; and errors arrive late,
//! in a completion, far from the code that caused them. An idle connection cost 264 bytes of
//! resident memory at 10,000 of them, against the reactor's 215 (check-targets part 8, measured
//! before each connection of both carried a timeout clock, which added about 35 bytes to the
//! reactor's: part 2), plus
//! what the kernel keeps for its pending receive. It runs on one core, like the reactor, and
//! blocks on anything a request blocks on.
//!
//! **Where it breaks.** Where io_uring is switched off: Docker's default seccomp profile and
//! many hardened kernels (`kernel.io_uring_disabled`) refuse it after a run of security bugs,
//! and then this model says so in one line and does not start (`server --model io-uring` exits
//! 1; the suite marks its points "unavailable here"). And the batching only pays when a turn
//! has many operations: with one client at a time, a turn is one send and one receive, and the
//! savings are small.
//!
//! **What production uses.** Thread-per-core runtimes over one ring per core: glommio and
//! monoio (owned-buffer `read`/`write`), tokio-uring, and liburing in C (registered files and
//! buffers, multishot receive). Most servers, nginx and tokio among them, still use epoll, whose
//! cost is rarely the bottleneck for network I/O and which every container allows.
//!
//! **Chat** is routed as in the reactor: the loop owns the room, each member has a bounded
//! outbox, and a line is copied into every other member's outbox and sent once per turn.
//!
//! **How it closes** is the reactor's way too (`crate::conn::nonblocking`): after an error
//! reply, shut the sending side and discard input for a while; after the last reply, wait for
//! the peer's acknowledgement. Both waits are timers of this loop.

use std::io;
use std::net::TcpListener;

use crate::config::ServerConfig;
use crate::models::{CannotServe, Model};
use crate::shutdown::Shutdown;

#[cfg(target_os = "linux")]
mod conn;
#[cfg(target_os = "linux")]
mod event_loop;
#[cfg(target_os = "linux")]
mod ring;
#[cfg(target_os = "linux")]
mod room;

/// Whether io_uring can serve here; asked before the server listens.
pub fn check(_config: &ServerConfig) -> Result<(), CannotServe> {
    #[cfg(target_os = "linux")]
    let available = ring::probe();
    #[cfg(not(target_os = "linux"))]
    let available: Result<(), String> = Err("io_uring is a Linux interface".into());
    available.map_err(|why| CannotServe::Unavailable { model: Model::IoUring, why })
}

/// Run the loop on the calling thread until `shutdown` is triggered and every connection has
/// finished (or the grace period ran out).
pub fn run(listener: TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    return event_loop::Loop::new(listener, config, shutdown)?.run();
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (listener, config, shutdown);
        Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring is a Linux interface"))
    }
}
