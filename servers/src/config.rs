//! Everything a model needs to know to run, as plain typed values (the `server` binary turns
//! command-line flags into this; tests build it directly).

use std::time::Duration;

use crate::conn::admission::Admission;
use crate::conn::deadline::Timeouts;
use crate::proto::{DEFAULT_MAX_FRAME, Proto};
use crate::session::{DEFAULT_MAX_OUTPUT, Knobs, Session};
use crate::store::{
    Capacity, DEFAULT_MAX_BYTES, DEFAULT_MAX_KEYS, LocalStore, SharedStore, Store, StoreKind,
};

/// The default bound on a `chat` member's queue: 256 KiB, a few hundred lines of ordinary chat,
/// and four maximal lines of the default `--max-frame`.
pub const DEFAULT_CHAT_QUEUE: usize = 256 * 1024;

/// The default cap on `process-per-connection`'s children: enough for every experiment of the
/// lab but the 10,000-connection ones, and far below a typical `pids.max` or `ulimit -u`, so the
/// cap is met before the kernel refuses a `fork`.
pub const DEFAULT_MAX_PROCS: usize = 1024;

/// Which tokio scheduler the `async` model uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// One thread runs every task: the fair comparison with the one-thread `reactor`.
    #[default]
    CurrentThread,
    /// A worker per `--threads`, with work stealing between them.
    MultiThread,
}

crate::spelled_by_clap!(Runtime, "runtime");

/// How the `multi-reactor` spreads new connections over its loops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AcceptMode {
    /// Every loop has a listener of its own on the same port (`SO_REUSEPORT`), and the kernel
    /// picks one for each new connection by a hash of its addresses.
    #[default]
    Reuseport,
    /// One acceptor thread takes every connection and hands them to the loops in turn.
    Handoff,
}

crate::spelled_by_clap!(AcceptMode, "accept mode");

/// How a server behaves, independent of its concurrency model.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The protocol spoken on every connection.
    pub proto: Proto,
    /// The largest request payload accepted; larger ones are malformed.
    pub max_frame: usize,
    /// Worker threads for `thread-pool` and for `async` with the multi-thread runtime; event
    /// loops for `multi-reactor`.
    pub threads: usize,
    /// Accepted connections that may wait for a `thread-pool` worker before new ones are refused.
    pub queue: usize,
    /// The tokio scheduler for `async`.
    pub runtime: Runtime,
    /// How `multi-reactor` spreads connections over its loops.
    pub accept: AcceptMode,
    /// Per-request CPU work and blocking.
    pub knobs: Knobs,
    /// After a shutdown request, how long open connections may take to finish.
    pub grace: Duration,
    /// How the threaded models guard the `kv` store (one-thread models need no lock).
    pub store: StoreKind,
    /// The most keys the `kv` store holds; see [`crate::store`] for the memory bound.
    pub max_keys: usize,
    /// The most bytes of keys and values the `kv` store holds (see [`crate::store::capacity`]).
    pub kv_max_bytes: usize,
    /// The request, idle and write timeouts (see [`crate::conn::deadline`]).
    pub timeouts: Timeouts,
    /// The most connections open at once; one more gets its protocol's refusal (see
    /// [`crate::conn::admission`]). No cap unless set: the `server` binary sets one from the
    /// descriptor limit.
    pub max_conns: usize,
    /// Reply bytes one connection may have waiting before the server stops reading its requests
    /// (see [`crate::session::DEFAULT_MAX_OUTPUT`]).
    pub max_output: usize,
    /// Bytes a `chat` member may fall behind before it is dropped (see [`crate::proto::outbox`]).
    pub chat_queue: usize,
    /// Children `process-per-connection` keeps alive at once; while that many are, it accepts
    /// nothing and new clients wait in the listen backlog.
    pub max_procs: usize,
}

impl ServerConfig {
    /// The defaults the `server` binary uses, for protocol `proto`.
    pub fn new(proto: Proto) -> ServerConfig {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServerConfig {
            proto,
            max_frame: DEFAULT_MAX_FRAME,
            threads: cpus,
            queue: 128,
            runtime: Runtime::default(),
            accept: AcceptMode::default(),
            knobs: Knobs::default(),
            grace: Duration::from_secs(5),
            store: StoreKind::default(),
            max_keys: DEFAULT_MAX_KEYS,
            kv_max_bytes: DEFAULT_MAX_BYTES,
            timeouts: Timeouts::default(),
            max_conns: usize::MAX,
            max_output: DEFAULT_MAX_OUTPUT,
            chat_queue: DEFAULT_CHAT_QUEUE,
            max_procs: DEFAULT_MAX_PROCS,
        }
    }

    /// A fresh protocol session for one new connection, sharing `store` with the others.
    pub fn session<S: Store>(&self, store: S) -> Session<S> {
        Session::new(self.proto, self.max_frame, self.knobs, store).with_max_output(self.max_output)
    }

    /// The count of open connections against `max_conns`, to share between a server's threads.
    pub fn admission(&self) -> Admission {
        Admission::new(self.max_conns)
    }

    /// The timeouts that apply to this protocol: none for `chat` (see [`crate::conn::deadline`]).
    pub fn connection_timeouts(&self) -> Timeouts {
        if self.proto == Proto::Chat { Timeouts::OFF } else { self.timeouts }
    }

    /// The bounds of the `kv` store.
    pub fn store_capacity(&self) -> Capacity {
        Capacity { max_keys: self.max_keys, max_bytes: self.kv_max_bytes }
    }

    /// The most input bytes one request can need in this protocol (payload plus framing).
    pub fn max_request_len(&self) -> usize {
        crate::proto::Codec::new(self.proto, self.max_frame).max_request_len()
    }

    /// The store of a server whose connections all run on one thread: no lock.
    pub fn local_store(&self) -> std::rc::Rc<LocalStore> {
        std::rc::Rc::new(LocalStore::new(self.store_capacity()))
    }

    /// The store of a server whose connections run on many threads: `--store` picks the locks.
    pub fn shared_store(&self) -> std::sync::Arc<SharedStore> {
        std::sync::Arc::new(SharedStore::new(self.store, self.store_capacity()))
    }
}
