//! # Exercise 2: bound a thread pool
//!
//! **Why.** One thread per connection costs a thread and its stack per client: ten thousand
//! clients, ten thousand threads. A pool puts a fixed crew of workers in front of a queue, so
//! memory and scheduling stay bounded whatever arrives. But a bound on threads alone is not
//! enough: if the queue in front of them can grow without limit, a burst (or a flood) just
//! moves the unbounded growth from threads to the queue, and every job in it waits longer and
//! longer. A bounded queue turns overload into a clear, immediate *no* ([`QueueFull`]) that the
//! caller can act on: close the connection, answer `503`, try elsewhere.
//!
//! **What to write** (in `starter.rs`), a [`ThreadPool`] with:
//! - [`ThreadPool::new`]`(workers, queue)`: start exactly `workers` threads, which take jobs
//!   from one shared queue that holds at most `queue` jobs waiting (`std::sync::mpsc::sync_channel`
//!   is such a queue; its `Receiver` must be shared by the workers, e.g. in an `Arc<Mutex<_>>`).
//! - [`ThreadPool::try_execute`]: queue a job without ever blocking the caller; if the queue is
//!   full, give [`QueueFull`] back at once (`try_send`, not `send`).
//! - `Drop`: close the queue (drop the sender), so that each worker, having finished every job
//!   already accepted, sees the channel closed and returns; then join every worker. Dropping
//!   the pool must not lose an accepted job.
//!
//! The pool must be `Send` (the test drops it on another thread, to catch a `Drop` that hangs);
//! a pool made of a `SyncSender` and `JoinHandle`s is.
//!
//! Hold the queue's lock only to *take* a job, never while running it, or the workers take
//! turns instead of working at once.
//!
//! **How it is graded.** `cargo test --test bounded_pool` gives a pool of 2 workers and a
//! queue of 3 jobs that block until the test lets them go: exactly 2 may run at once, 3 more
//! are accepted, the 6th is refused, and after the drop every accepted job has run. A pool that
//! spawns a thread per job, or blocks when full, or runs one job at a time, fails.
//!
//! **The lab does it for real** in `servers/src/models/thread_pool.rs`, where the jobs are
//! connections: its acceptor closes a new connection when the queue is full, and its lesson
//! shows what a pool cannot fix (an idle client holds a worker for as long as it stays).

#[cfg(feature = "solutions")]
mod solution;
#[cfg(feature = "solutions")]
pub use solution::ThreadPool;

#[cfg(not(feature = "solutions"))]
mod starter;
#[cfg(not(feature = "solutions"))]
pub use starter::ThreadPool;

/// The unit of work: anything a worker can run once, on its own thread.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// The queue was full: the job was not accepted, and will not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;
