//! Your code for exercise 2: read `mod.rs` first.

// Likely useful: std::sync::mpsc::{sync_channel, SyncSender, Receiver, TrySendError},
// std::sync::{Arc, Mutex}, std::thread::{self, JoinHandle}.

use super::{Job, QueueFull};

/// A fixed number of workers behind a bounded queue.
pub struct ThreadPool {
    // Add what the pool needs: the sending end of the queue, and the workers' join handles.
}

impl ThreadPool {
    /// Start `workers` threads sharing a queue that holds at most `queue` waiting jobs.
    pub fn new(workers: usize, queue: usize) -> ThreadPool {
        let _ = (workers, queue);
        todo!("create the bounded channel, start the workers, keep their handles")
    }

    /// Queue `job` for a worker, or refuse it at once if the queue is full.
    pub fn try_execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), QueueFull> {
        let _job: Job = Box::new(job);
        todo!("try_send the job; a full queue is QueueFull")
    }
}

// Write `impl Drop for ThreadPool`: close the queue, then join every worker.
