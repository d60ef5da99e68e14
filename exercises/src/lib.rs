//! # Graded exercises for the concurrency-model lab
//!
//! Each module is one exercise: a doc comment that says what to build and why, starter code
//! with `todo!()`s in `starter.rs`, and a test in `tests/<name>.rs` that fails until the
//! exercise is solved. The reference solutions live beside the starters in `solution.rs` and
//! replace them when the crate is built with `--features solutions`; the tests cannot tell
//! which one they run, because both are re-exported under the same names.
//!
//! | exercise | you write | the lab file that does it for real |
//! | --- | --- | --- |
//! | [`framer`] | a newline framer for a naive one-`read`-one-message handler | `servers/src/proto/line.rs` |
//! | [`bounded_pool`] | a thread pool with a fixed crew and a bounded queue | `servers/src/models/thread_pool.rs` |
//! | [`write_interest`] | a reactor's pending output and `WRITABLE` interest | `servers/src/conn/nonblocking.rs` |
//! | [`waker`] | the `wake` that puts a task back on an executor's ready queue | `servers/src/models/executor/task.rs` |
//! | [`idle_timeout`] | closing a blocking connection that stays silent too long | `servers/src/conn/blocking_io.rs` |
//!
//! Work on one at a time: `cargo test --test framer` runs only that exercise's test.

pub mod bounded_pool;
pub mod framer;
pub mod idle_timeout;
pub mod waker;
pub mod write_interest;
