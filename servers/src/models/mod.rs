//! The concurrency models: one file each, each a lesson to read top to bottom.
//!
//! | model | file | one line |
//! | --- | --- | --- |
//! | `blocking` | [`blocking`] | one client at a time: the second waits for the first to leave |
//! | `thread-per-connection` | [`thread_per_connection`] | a new OS thread per client |
//! | `thread-pool` | [`thread_pool`] | a fixed crew of threads; idle clients can occupy all of it |
//! | `reactor` | [`reactor`] | one thread, readiness events (mio), explicit buffers |
//! | `async` | [`async_tokio`] | the reactor's loop written by the compiler (tokio tasks) |
//!
//! Every model has the same entry point, `run(listener, config, shutdown)`: it serves on the
//! listener until [`Shutdown::trigger`] is called, lets open connections finish within the
//! grace period, and returns. [`blocking_io`] holds what the three thread-based models share.
//!
//! For `chat`, [`chat_room`] is the room of every model whose members run on threads or tasks of
//! their own, and [`blocking_chat`] serves one member with blocking calls; the `reactor` routes
//! through its own connection table instead.

pub mod async_tokio;
pub mod blocking;
pub mod blocking_chat;
pub mod blocking_io;
pub mod chat_room;
pub mod reactor;
pub mod thread_per_connection;
pub mod thread_pool;

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::str::FromStr;

use crate::config::ServerConfig;
use crate::shutdown::Shutdown;

/// A concurrency model: how connections are scheduled onto threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    Blocking,
    ThreadPerConnection,
    ThreadPool,
    Reactor,
    Async,
}

impl Model {
    /// Every model, in the order the lab presents them.
    pub const ALL: [Model; 5] =
        [Model::Blocking, Model::ThreadPerConnection, Model::ThreadPool, Model::Reactor, Model::Async];

    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Model::Blocking => "blocking",
            Model::ThreadPerConnection => "thread-per-connection",
            Model::ThreadPool => "thread-pool",
            Model::Reactor => "reactor",
            Model::Async => "async",
        }
    }

    /// Serve `listener` with this model until `shutdown` is triggered.
    pub fn run(self, listener: TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
        match self {
            Model::Blocking => blocking::run(listener, config, shutdown),
            Model::ThreadPerConnection => thread_per_connection::run(listener, config, shutdown),
            Model::ThreadPool => thread_pool::run(listener, config, shutdown),
            Model::Reactor => reactor::run(listener, config, shutdown),
            Model::Async => async_tokio::run(listener, config, shutdown),
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Model::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<_> = Model::ALL.iter().map(|m| m.name()).collect();
            format!("unknown model `{s}` (expected one of: {})", names.join(", "))
        })
    }
}
