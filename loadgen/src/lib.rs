//! `loadgen`: the lab's load generator.
//!
//! It opens many connections from a few threads, sends requests closed loop (a fixed number in
//! flight per connection) or open loop (on a fixed timetable, with latency measured from when
//! each request was *due*), checks every reply byte for byte, and records every latency in an
//! HdrHistogram. The library is what the CLI and the suite share:
//! [`run`]`(&`[`RunConfig`]`) -> `[`RunReport`], then the exporters.
//!
//! Map of the crate, in the order data flows:
//! - [`units`]: sizes, durations and nanoseconds, spelled one way everywhere; imports nothing.
//! - [`config`]: typed settings ([`RunConfig`], [`ProtocolKind`]); no CLI parsing here.
//! - [`payload`]: seeded payloads that differ per request and verify in place.
//! - [`proto`]: the client side of each protocol, behind the [`proto::ClientProtocol`] trait.
//! - [`chat`]: chat mode, which is not request/response and has its own small driver.
//! - `connect`: opens all connections before the clock starts.
//! - [`engine`]: per-thread mio event loops, pacing, timeouts, recording; `--conn-per-request`
//!   has a loop of its own there ([`engine::churn`]), and [`ports`] says how many new
//!   connections per second the client's ephemeral ports allow.
//! - `run`: one measurement end to end; `watch`: what the main thread does meanwhile, and
//!   [`live`]: the once-a-second lines of `--live`.
//! - [`report`]: what a run found ([`RunReport`], [`Counts`]).
//! - [`export`]: the human table, `--json`, `--hgrm`.
//! - `sys`: file-descriptor limit and CPU time from the OS.

pub mod chat;
pub mod config;
mod connect;
pub mod engine;
mod error;
pub mod export;
pub mod live;
pub mod payload;
pub mod ports;
pub mod proto;
pub mod report;
mod run;
pub mod sys;
pub mod units;
mod watch;

pub use config::{ConfigError, Pacing, ProtocolKind, RunConfig};
pub use error::RunError;
pub use report::{Counts, Percentiles, RunReport};
pub use run::run;
pub use units::{SizeSpec, UnitError};
