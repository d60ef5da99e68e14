//! # The servers of the concurrency-model lab
//!
//! The same protocols, served by one file per concurrency model, so that the *only* difference
//! between two servers is how connections are scheduled onto threads.
//!
//! ```text
//!   bin/server.rs ──► models::Model::run ──► models/<model>.rs   who runs which connection, when
//!                                                 │
//!                                                 ▼
//!                                   conn/                          what models share: the blocking
//!                                                 │                loop, the non-blocking connection
//!                                                 │                and its table, the chat rooms
//!                                                 ▼
//!                                   session::Session::serve        per-request knobs
//!                                                 │
//!                                                 ▼
//!                                     proto/<protocol>.rs           bytes in, bytes out (sans-IO)
//!                                                 │
//!                                                 ▼
//!                                     store/                         state shared by connections (kv)
//! ```
//!
//! Reading order for a newcomer: [`proto`] (what is being served), then the models in the order
//! of [`models`]'s list, then [`conn`] (what they share), [`shutdown`] (how every model stops the same way), [`net`] (what
//! can go wrong around `accept`) and [`buffer`].

pub mod buffer;
pub mod config;
pub mod conn;
pub mod log;
pub mod models;
pub mod names;
pub mod net;
pub mod proto;
pub mod session;
pub mod shutdown;
pub mod store;

pub use config::{Runtime, ServerConfig};
pub use models::{CannotServe, Model};
pub use proto::Proto;
pub use shutdown::Shutdown;
