//! # `thread-per-connection`: a new OS thread for each client
//!
//! The acceptor thread hands every new connection to a thread of its own, which serves it with
//! plain blocking calls and exits when the client leaves.
//!
//! ```text
//!   acceptor ──accept──► spawn ──► thread 1: read/write client A … exit
//!            ──accept──► spawn ──► thread 2: read/write client B … exit
//!            ──accept──► spawn ──► thread 3: …
//! ```
//!
//! **What it costs.** Each connection holds a thread: a kernel task, a stack (2 MiB of address
//! space by default, of which only the pages actually touched are resident: about 18 KB per
//! idle connection in all, as `scripts/check-targets.sh --only 2` measures), and the cost of
//! creating a thread on every accept. When many threads are runnable, the kernel
//! switches between them, and every switch costs cache and time; watch the context-switch
//! column in the results.
//!
//! **Where it breaks.** At thousands of connections: memory grows with each one, the scheduler
//! juggles thousands of threads, and the process may hit its thread limit (`ulimit -u`,
//! `pids.max` of its cgroup), at which point new connections are refused. Short-lived
//! connections pay the thread creation cost every time. And whatever happens to many clients at
//! once happens to as many threads: when 500 idle clients reach `--idle-timeout` together, 500
//! threads wake, close and exit on the same CPU, and a busy client's thread waits its turn among
//! them (probe p99 10–20 ms in `scripts/abuse.sh --models thread-per-connection --scenarios
//! idle`, where an event loop closes all 500 in one sweep).
//!
//! And turns are the kernel's to give, in time slices of milliseconds, not the server's. 16
//! clients that pipeline http requests without reading keep 16 threads answering them; those
//! threads stay runnable, and a healthy client's thread, woken by its request, waits for their
//! slices (`perf sched latency` shows the wait): probe p99 19–50 ms in
//! `scripts/abuse.sh --models thread-per-connection --scenarios slow-reader --protos http`. An
//! event loop ends a connection's turn every
//! [`REQUESTS_PER_TURN`](crate::session::REQUESTS_PER_TURN) requests and keeps the same probe
//! under 2 ms; a thread could only imitate that by giving the CPU up itself (`sched_yield`).
//! System calls add up the same way: eight threads each refusing a 1 MB http head by reading
//! and dropping it 4 KiB at a time put the probe's p99 at 0.5-3.1 ms (over the 2 ms bound in two
//! of five runs of `scripts/abuse.sh --models thread-per-connection --scenarios oversize --protos
//! http` at 3af6960); dropping those bytes in the kernel instead
//! ([`discard_input`](crate::net::discard_input)) measured 0.5-0.7 ms.
//!
//! **Where it shines.** Few, busy connections: the code is the simplest one that serves clients
//! concurrently, blocking calls (a database query, `--block-us`) stall only their own client, and
//! the kernel spreads the threads over every CPU for free. Many production servers were built
//! this way (classic Apache `worker`, most JDBC-era Java servers), and at modest scale it is
//! still a sound choice.
//!
//! **How it routes chat.** A registry of members behind one lock ([`crate::conn::chat_room`]); a
//! sender copies its line into every other member's bounded mailbox under that lock and never
//! touches their sockets. Why not write into the other sockets directly? Because a member that
//! stops reading makes that `write` block, *with the lock held*, and the whole room stops behind
//! it. A connection thread is blocked in `read`, so it cannot also wait for its mailbox: each
//! member gets a second thread that does only that and writes ([`crate::conn::blocking_chat`]). Two
//! threads per member, and one wake-up per member for every line said.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use crate::conn::blocking_chat::{ThreadRoom, serve_member};
use crate::conn::blocking_io::{run_until_shutdown, serve_connection};
use crate::config::ServerConfig;
use crate::proto::Proto;
use crate::shutdown::{OpenConnections, Shutdown};

/// Serve each connection on a new thread until `shutdown` is triggered.
pub fn run(listener: TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
    let conns = OpenConnections::new();
    let mut spawn_failures = 0u64;
    // Every connection thread may touch the store at once: `--store` picks its locks.
    let store = config.shared_store();
    let room = Arc::new(ThreadRoom::new(config.chat_queue));
    run_until_shutdown(listener, shutdown, &conns, config, |stream, admitted| {
        let stream = conns.track(stream);
        let session = config.session(Arc::clone(&store));
        let (proto, room, timeouts) = (config.proto, Arc::clone(&room), config.connection_timeouts());
        let spawned = thread::Builder::new().name("conn".into()).spawn(move || {
            let _place = admitted; // given back when the thread ends
            match proto {
                Proto::Chat => serve_member(&stream, &room, session),
                _ => serve_connection(&stream, session, timeouts),
            }
        });
        // Out of threads (EAGAIN): this client's connection is closed, the next one may fare
        // better once others leave. Say so, but only on powers of two, so a flood of refusals
        // cannot flood the log as well.
        if spawned.is_err() {
            spawn_failures += 1;
            if spawn_failures.is_power_of_two() {
                crate::log::line(format_args!(
                    "cannot start a thread; {spawn_failures} connection(s) refused so far"
                ));
            }
        }
    })
}
