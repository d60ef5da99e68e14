//! # Exercise 4: write a waker
//!
//! **What async is made of.** A future is polled: it either finishes (`Ready`) or says
//! `Pending`, and in that case it has promised to arrange a *wake-up* when it can make
//! progress: it keeps a clone of the [`Waker`] from its [`Context`] and calls `wake` later,
//! from a reactor, a timer, another thread, or from inside its own poll (to yield). The
//! executor never polls a pending task again until someone wakes it; it sleeps instead. So the
//! waker is the whole contract between futures and the executor: get it wrong and a task is
//! lost (never polled again) or the executor sleeps through the wake.
//!
//! **This executor** ([`Executor`]) is as small as one can be: one thread, a map of tasks,
//! and a [`ReadyQueue`] of task ids. [`Executor::run`] takes an id from the queue (sleeping on
//! a condition variable while it is empty), polls that task once, and repeats until every task
//! has finished. Each task has one [`TaskWaker`], made when it is spawned.
//!
//! **What to write** (in `starter.rs`):
//! 1. `ReadyQueue::push(id)`: put the id at the back of the queue (first in, first out, so
//!    that tasks take turns), then wake the executor if it sleeps (`Condvar::notify_one`). A
//!    wake may come from another thread while the executor waits: without the notify it
//!    sleeps for ever.
//! 2. `Wake for TaskWaker`, `fn wake(self: Arc<Self>)`: requeue this task, *once*. A future
//!    may call `wake` several times before it is polled again (three events on one socket, say);
//!    it must still be polled once, not three times. `queued` says whether the task is already
//!    on the queue: set it, and push only if it was not set (`AtomicBool::swap`). The executor
//!    clears it just before polling, so a wake during the poll queues the task again.
//!
//! **How it is graded.** `cargo test --test waker` runs tasks that are woken from another
//! thread while the executor sleeps, that wake themselves several times per poll, and two tasks
//! that must take turns. Each runs under a deadline, so a lost wake fails instead of hanging.
//!
//! **The lab does it for real** in `servers/src/models/executor/task.rs` (`TaskWaker`,
//! `ReadyQueue`), where the executor sleeps in the poller instead of on a condition variable
//! and a wake from another thread must also interrupt that sleep (`Poller::notify`); and
//! `servers/src/models/executor/reactor.rs` turns socket readiness into these wakes.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};

#[cfg(feature = "solutions")]
mod solution;

#[cfg(not(feature = "solutions"))]
mod starter;

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The ids of tasks that are ready to be polled, and a way to wake the executor when it
/// sleeps because there are none. Shared with every waker, which may live on any thread.
#[derive(Default)]
pub struct ReadyQueue {
    ids: Mutex<VecDeque<usize>>,
    /// Signalled when an id is pushed; the executor waits on it while `ids` is empty.
    not_empty: Condvar,
}

impl ReadyQueue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<usize>> {
        // Poisoned only if a thread panicked while holding it; a queue of ids is still sound.
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next ready task, waiting for one as long as it takes.
    fn wait_pop(&self) -> usize {
        let mut ids = self.lock();
        loop {
            if let Some(id) = ids.pop_front() {
                return id;
            }
            // Releases the lock while it sleeps, and takes it again before it returns. It may
            // also return for no reason (a spurious wake-up): hence the loop.
            ids = self.not_empty.wait(ids).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The waker of one task: which task, whether it is already queued, and the queue.
// `id` and `ready` are for the `wake` you write; until then nothing reads them.
#[cfg_attr(not(feature = "solutions"), allow(dead_code))]
pub struct TaskWaker {
    id: usize,
    /// True from a wake until the executor takes the task off the queue to poll it.
    queued: AtomicBool,
    ready: Arc<ReadyQueue>,
}

struct Task {
    future: BoxFuture,
    waker: Arc<TaskWaker>,
}

/// A single-thread executor: runs the spawned tasks until every one has finished.
#[derive(Default)]
pub struct Executor {
    tasks: HashMap<usize, Task>,
    next_id: usize,
    ready: Arc<ReadyQueue>,
}

impl Executor {
    pub fn new() -> Executor {
        Executor::default()
    }

    /// Add a task; it is polled for the first time when [`Executor::run`] reaches it.
    pub fn spawn(&mut self, future: impl Future<Output = ()> + 'static) {
        let id = self.next_id;
        self.next_id += 1;
        let waker = Arc::new(TaskWaker { id, queued: AtomicBool::new(true), ready: Arc::clone(&self.ready) });
        self.tasks.insert(id, Task { future: Box::pin(future), waker });
        self.ready.push(id);
    }

    /// Poll ready tasks, one at a time, until every task has finished. Sleeps while none is
    /// ready: only a wake brings a pending task back.
    pub fn run(&mut self) {
        while !self.tasks.is_empty() {
            let id = self.ready.wait_pop();
            // A finished task may still be woken (by a clone of its waker): nothing to poll.
            let Some(task) = self.tasks.get_mut(&id) else { continue };
            // Cleared before the poll: a wake from now on must queue the task again.
            task.waker.queued.store(false, Ordering::SeqCst);
            let waker = Waker::from(Arc::clone(&task.waker));
            let mut cx = Context::from_waker(&waker);
            if task.future.as_mut().poll(&mut cx).is_ready() {
                self.tasks.remove(&id);
            }
        }
    }
}
