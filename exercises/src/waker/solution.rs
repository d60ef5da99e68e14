//! Reference solution for exercise 4.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Wake;

use super::{ReadyQueue, TaskWaker};

impl ReadyQueue {
    /// Put task `id` at the back of the queue and wake the executor if it sleeps.
    pub(super) fn push(&self, id: usize) {
        // Push under the lock the executor checks before it sleeps: it either sees the id, or
        // is already waiting and gets the notify. Never both missed: that is a lost wake-up.
        self.lock().push_back(id);
        self.not_empty.notify_one();
    }
}

impl Wake for TaskWaker {
    /// Requeue this task, unless it is already queued.
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    /// The same without giving up this reference (what `cx.waker().wake_by_ref()` calls).
    fn wake_by_ref(self: &Arc<Self>) {
        // `swap` reads and sets in one step: of several wakes before the next poll, on any
        // threads, exactly one sees `false` and queues the task.
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.ready.push(self.id);
        }
    }
}
