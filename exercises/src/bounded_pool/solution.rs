//! Reference solution for exercise 2.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use super::{Job, QueueFull};

/// A fixed number of workers behind a bounded queue.
pub struct ThreadPool {
    /// The queue's sending end. An `Option` so that `Drop` can drop it first: that is what
    /// tells the workers no more jobs will come.
    queue: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// Start `workers` threads sharing a queue that holds at most `queue` waiting jobs.
    pub fn new(workers: usize, queue: usize) -> ThreadPool {
        let (sender, receiver) = sync_channel::<Job>(queue);
        // One receiving end, many workers: they take turns at the lock to take one job each.
        let receiver = Arc::new(Mutex::new(receiver));
        let workers = (0..workers)
            .map(|_| {
                let receiver = Arc::clone(&receiver);
                thread::spawn(move || work(&receiver))
            })
            .collect();
        ThreadPool { queue: Some(sender), workers }
    }

    /// Queue `job` for a worker, or refuse it at once if the queue is full.
    pub fn try_execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), QueueFull> {
        let Some(queue) = &self.queue else { return Err(QueueFull) }; // only `None` in `drop`
        match queue.try_send(Box::new(job)) {
            Ok(()) => Ok(()),
            // Full: the caller decides what a refusal means. Disconnected cannot happen while
            // the pool lives (the workers hold the receiver), but it is a refusal too.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(QueueFull),
        }
    }
}

/// A worker's life: take a job, run it, repeat until the queue is closed and empty.
fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // The guard is a temporary of this statement: the lock is released before the job
        // runs, so the other workers can take jobs meanwhile. A poisoned lock only means another
        // worker panicked while holding it; the receiver inside is still sound.
        let next = receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            Ok(job) => job(),
            Err(_) => return, // the pool dropped its sender and every accepted job is taken
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        drop(self.queue.take());
        for worker in self.workers.drain(..) {
            // A job that panicked ended its worker; the others' jobs still ran.
            let _ = worker.join();
        }
    }
}
