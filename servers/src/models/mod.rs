//! The concurrency models: one file each, each a lesson to read top to bottom. This folder holds
//! models and nothing else; what several models share lives one layer down, in [`crate::conn`].
//!
//! Every model has the same entry point, `run(listener, config, shutdown)`: it serves on the
//! listener until [`Shutdown::trigger`] is called, lets open connections finish within the
//! grace period, and returns.
//!
//! A model that cannot run everywhere says so before the server starts listening: the list marks
//! it `+ check`, and its module then has a `check(config)` that returns [`CannotServe`]. The
//! `server` binary prints that reason as one line and exits 1; the suite and the client scripts
//! read the line and mark the point "unavailable here" or "not served" instead of failed.
//!
//! **The list.** [`for_each_model!`](crate::for_each_model) below is the one list of models:
//! the [`Model`] enum, `server --model`, `server --list-models`, the conformance tests (which
//! run every body on every model in it), the suite's default matrix and the client scripts (both
//! of which ask `server --list-models`) all come from it. Adding a model is one new file in this
//! folder and one line in that list.

use std::io;
use std::net::TcpListener;

use crate::config::ServerConfig;
use crate::shutdown::Shutdown;

/// THE list of models, in the order the lab presents them: `module => Variant`, each with the
/// one line that `server --list-models` and `server --help` print for it. `+ check` marks a
/// model whose module has `fn check(&ServerConfig) -> Result<(), CannotServe>`, asked before the
/// server listens: a machine that lacks what it needs, or a protocol it refuses by design.
///
/// It is a macro so that code outside this module can be written once for every model: the
/// conformance tests call `servers::for_each_model!(their_macro)` and get one test module per
/// model, named after its file, so a model cannot be missing from any test table.
#[macro_export]
macro_rules! for_each_model {
    ($callback:ident) => {
        $callback! {
            /// one client at a time: the second waits for the first to leave
            blocking => Blocking,
            /// a new OS thread per client
            thread_per_connection => ThreadPerConnection,
            /// a fixed crew of threads; idle clients can occupy all of it
            thread_pool => ThreadPool,
            /// one thread, readiness events (mio), explicit buffers
            reactor => Reactor,
            /// the reactor's loop written by the compiler (tokio tasks)
            async_tokio => Async,
            /// what async is made of: tasks, wakers and a reactor on polling
            executor => Executor,
            /// one reactor per core; connections spread by SO_REUSEPORT or handed off, never moved
            multi_reactor => MultiReactor,
            /// completion instead of readiness: the kernel owns the buffer while the I/O runs
            io_uring => IoUring + check,
            /// a child process per client (fork): real isolation, no shared memory
            process_per_connection => ProcessPerConnection + check,
        }
    };
}

/// A model's `check`, or "serves anything" for a model without one.
macro_rules! checked {
    ($config:ident, $module:ident) => {{
        let _ = $config;
        Ok(())
    }};
    ($config:ident, $module:ident $check:ident) => {
        $module::$check($config)
    };
}

/// Expands the list into the module declarations, the enum and its dispatch.
macro_rules! declare_models {
    ($(#[doc = $about:literal] $module:ident => $variant:ident $(+ $check:ident)?,)*) => {
        $(pub mod $module;)*

        /// A concurrency model: how connections are scheduled onto threads. Its command-line
        /// name is the variant's name in kebab case (`ThreadPool` is `thread-pool`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
        pub enum Model {
            $(#[doc = $about] $variant,)*
        }

        impl Model {
            /// Every model, in the order the lab presents them.
            pub const ALL: [Model; [$(stringify!($variant)),*].len()] = [$(Model::$variant),*];

            /// Serve `listener` with this model until `shutdown` is triggered.
            pub fn run(self, listener: TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<()> {
                match self {
                    $(Model::$variant => $module::run(listener, config, shutdown),)*
                }
            }

            /// Whether this model can serve `config` here, asked before the server listens. Most
            /// models serve every protocol on every machine; those marked `+ check` in the list
            /// ask their module.
            pub fn check(self, config: &ServerConfig) -> Result<(), CannotServe> {
                match self {
                    $(Model::$variant => checked!(config, $module $($check)?),)*
                }
            }

            /// The one-line description from the list.
            pub fn about(self) -> &'static str {
                match self {
                    $(Model::$variant => $about.trim(),)*
                }
            }
        }
    };
}

for_each_model!(declare_models);

/// Why a model will not start; the `server` binary prints it as one line and exits 1. The
/// suite and the client scripts match the words `is unavailable here` and `does not serve`, so
/// keep them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CannotServe {
    /// This machine lacks what the model needs: another OS, too old a kernel, or a policy
    /// (`kernel.io_uring_disabled`, a seccomp profile) that refuses it.
    #[error("{model} is unavailable here: {why}")]
    Unavailable { model: Model, why: String },
    /// The model does not serve this protocol, by design; its lesson says why.
    #[error("{model} does not serve {proto}: {why}")]
    Refuses { model: Model, proto: crate::proto::Proto, why: String },
}

crate::spelled_by_clap!(Model, "model");
