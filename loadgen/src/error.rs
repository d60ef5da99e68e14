//! Why a run could not produce a report at all.
//!
//! Problems *during* a run (mismatches, resets, timeouts) are not errors: they are counted in the
//! [`RunReport`](crate::RunReport), because a report that says "the server dropped 3 connections"
//! is the useful outcome. A [`RunError`] is for runs that could not measure anything.

use std::io;
use std::net::SocketAddr;

use crate::config::ConfigError;

/// A run that could not take place.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The settings do not describe a sensible run.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Not a single connection could be opened: nothing is listening, or it is unreachable.
    #[error("cannot connect to {addr}")]
    Connect {
        /// The target.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// The run needs more file descriptors than the hard limit allows.
    #[error(
        "{needed} connections need more file descriptors than the limit of {limit}; \
         raise the hard limit (ulimit -Hn) or use fewer connections"
    )]
    TooManyConnections {
        /// Connections requested (working plus idle).
        needed: usize,
        /// The soft limit after raising it as far as allowed.
        limit: u64,
    },
    /// The event loop itself failed (creating a poll, a timer, a thread).
    #[error("load generator failure: {0}")]
    Engine(#[from] io::Error),
    /// A worker thread panicked: a bug in loadgen, reported rather than propagated.
    #[error("a load generator thread panicked; this is a bug in loadgen")]
    WorkerPanicked,
}
