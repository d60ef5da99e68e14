//! # `thread-pool`: a fixed crew of worker threads
//!
//! The acceptor puts each new connection into a bounded queue; `--threads` workers take
//! connections from it and serve each one, with blocking calls, until the client leaves.
//!
//! ```text
//!   acceptor ──► [ conn | conn | conn |      ] ──► worker 1: serving A until A leaves
//!                 bounded queue (--queue)      ──► worker 2: serving B until B leaves
//!        queue full? close the new connection      (C, D wait in the queue)
//! ```
//!
//! **What it costs.** A fixed number of threads and stacks, whatever the number of clients, so
//! memory and scheduling stay bounded, and threads are created once, not per connection.
//!
//! **Where it breaks.** A worker belongs to one *connection*, not one request. An idle client, or
//! a slow one, or a request that blocks (`--block-us`), occupies a worker the whole time: with
//! `--threads 2`, two idle clients stop the service for everyone else, whose connections wait
//! in the queue. Throughput at many connections is capped by the pool size.
//!
//! **What the timeouts buy it.** `--idle-timeout` and `--request-timeout` (see
//! [`crate::conn::deadline`]) set `SO_RCVTIMEO` on each worker's socket, so a worker held by a
//! silent client or a slowloris is freed after that long; the defaults (300 s and 60 s) keep the
//! lesson visible for minutes. With `--idle-timeout 2s`, two idle clients stop the pool for two
//! seconds, not for ever: a timeout turns a denial of service into a bounded delay, and the
//! pool is still only as wide as `--threads` while it lasts. With the timeouts `off`, the
//! starvation is permanent: the abuse suite marks that cell *expected*, with this paragraph as
//! the reason.
//!
//! **When the queue is full** the acceptor closes the new connection at once (the client reads
//! end-of-file, or a reset if it had already sent data) rather than letting it wait without
//! bound. A refusal is honest and immediate: the client can retry or go elsewhere, while a
//! connection parked in an endless queue looks alive but never answers. That is what an HTTP
//! server answering `503` does; the echo protocols have no error message, so they just close.
//!
//! **What production servers do instead.** Pools work well when a worker owns one *request*
//! rather than one connection: the connection waits in an event loop while idle, and only a
//! ready request is handed to a worker (Java's NIO servers, Apache `event`). That split is what
//! the `reactor` and `async` models are about.
//!
//! **How it routes chat.** The same room as `thread-per-connection` ([`crate::conn::chat_room`]): a
//! locked list of members with bounded mailboxes. Delivery is the pool's problem: a worker
//! spends its life blocked in its member's `read`, so it cannot also write the lines others
//! send. Each worker therefore starts a writer thread for the member it serves, for as long as
//! the member stays ([`crate::conn::blocking_chat`]): a chat pool runs up to `2 × --threads` threads,
//! and still serves at most `--threads` members; the rest wait in the queue, unwelcomed. The
//! alternative that keeps one thread per member is to wait for the socket *and* a wake-up
//! descriptor at once with `poll(2)`, which is the `reactor` in miniature.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use crate::conn::blocking_chat::{ThreadRoom, serve_member};
use crate::conn::blocking_io::{run_until_shutdown, serve_connection};
use crate::config::ServerConfig;
use crate::conn::admission::Admitted;
use crate::proto::Proto;
use crate::shutdown::{OpenConnections, Shutdown, Tracked};
use crate::store::SharedStore;

/// A connection waiting for a worker, with its place under `--max-conns`.
type Job = (Tracked<TcpStream>, Admitted);

/// Serve connections on `config.threads` workers until `shutdown` is triggered.
pub fn run(listener: TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
    let conns = OpenConnections::new();
    let pool = Pool::start(config)?;
    let mut refused = 0u64;
    let served = run_until_shutdown(listener, shutdown, &conns, config, |stream, place| {
        if !pool.offer((conns.track(stream), place)) {
            refused += 1;
            if refused.is_power_of_two() {
                crate::log::line(format_args!("queue full: {refused} connection(s) refused so far"));
            }
        }
    });
    drop(pool); // closes the queue and joins the workers
    served
}

/// The workers and the sending end of their queue. Dropping it closes the queue; every worker
/// finishes its connection, finds the queue closed and empty, and exits; then `drop` joins them.
struct Pool {
    queue: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(config: &ServerConfig) -> io::Result<Pool> {
        let (queue, jobs) = sync_channel::<Job>(config.queue);
        // std's Receiver has one owner; the workers take turns holding it through a mutex. The
        // lock is held only while waiting for a job, never while serving one.
        let jobs = Arc::new(Mutex::new(jobs));
        // Workers serve their connections in parallel, so the store is shared: `--store` picks its locks.
        let store = config.shared_store();
        let room = Arc::new(ThreadRoom::new(config.chat_queue));
        let mut workers = Vec::with_capacity(config.threads);
        for i in 0..config.threads.max(1) {
            let (jobs, config, store) = (Arc::clone(&jobs), config.clone(), Arc::clone(&store));
            let room = Arc::clone(&room);
            let worker = thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || work(&jobs, &config, &store, &room))?;
            workers.push(worker);
        }
        Ok(Pool { queue: Some(queue), workers })
    }

    /// Queue a connection for the next free worker; false (and the connection closed) if the
    /// queue is full.
    fn offer(&self, job: Job) -> bool {
        match self.queue.as_ref().map(|q| q.try_send(job)) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
        }
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, config: &ServerConfig, store: &Arc<SharedStore>, room: &ThreadRoom) {
    loop {
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match job {
            Ok((stream, _place)) => {
                let session = config.session(Arc::clone(store));
                let _ = match config.proto {
                    Proto::Chat => serve_member(&stream, room, session),
                    _ => serve_connection(&stream, session, config.connection_timeouts()),
                };
            }
            Err(_) => return, // queue closed: the server is shutting down
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.queue.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
