//! The executor: tasks, their wakers, and the ready queue that connects the two.
//!
//! A task is a boxed future plus the one [`Waker`] made for it when it was spawned. Waking a task
//! puts it on the ready queue (once: a task already queued is not queued twice); the executor
//! takes the whole queue at a time, polls each task in it once, and then asks the reactor for
//! more wake-ups: it sleeps in the poller only when no task is ready.
//!
//! ```text
//!   waker.wake() ──► ready queue [3, 7] ──► executor: poll task 3, poll task 7 ──► reactor.wait()
//!   (reactor, timer,       ▲                      │ a task that spawns: new task queued  │
//!    mailbox, other thread)└──────────────────────┴──────────────────────────────────────┘
//! ```
//!
//! **Why a lock in a one-thread executor.** `Waker` is `Send + Sync`: anyone may wake a task
//! from any thread. Here only one thing does (the signal handler's [`Shutdown`] wakes the
//! accept loop), but the queue must be safe for it, so it is a `Mutex` (uncontended: a pair of
//! atomic operations per wake). A wake from another thread while the executor sleeps in the
//! poller must also wake the poller: hence [`ReadyQueue::sleeping`] and `Poller::notify`.
//!
//! [`Shutdown`]: crate::shutdown::Shutdown

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use polling::Poller;
use slab::Slab;

use super::reactor::Reactor;

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The id of `block_on`'s own future in the ready queue; slab keys never come near it.
const MAIN: usize = usize::MAX;

/// Runs tasks on the calling thread; see the module documentation.
pub struct Executor {
    tasks: Slab<Task>,
    ready: Arc<ReadyQueue>,
    /// The batch being run: swapped with the ready queue each turn, so neither allocates once
    /// both have grown, and the lock is not held while tasks run.
    batch: VecDeque<Arc<TaskWaker>>,
    spawner: Spawner,
}

/// One task: its future, and the waker made for it once, at spawn.
struct Task {
    future: BoxFuture,
    waker: Waker,
}

/// The tasks that are ready to be polled.
pub struct ReadyQueue {
    queue: Mutex<VecDeque<Arc<TaskWaker>>>,
    /// The executor is in (or about to enter) `Poller::wait`: a wake must notify the poller.
    sleeping: AtomicBool,
    poller: Arc<Poller>,
}

/// What a task's `Waker` points to: which task, and where it is in its life. The ready queue
/// holds counted references to it, so a wake allocates nothing.
struct TaskWaker {
    id: usize,
    state: AtomicU8,
    ready: Arc<ReadyQueue>,
}

/// Running, or waiting for a wake: a wake puts the task on the ready queue.
const IDLE: u8 = 0;
/// On the ready queue already: at most one entry per task, so a second wake changes nothing.
const QUEUED: u8 = 1;
/// Finished. Its waker may live on (in a timer, a mailbox, a socket's slot), but a wake changes
/// nothing, and an entry still on the queue is skipped, whoever holds its slab slot by then.
const DONE: u8 = 2;

impl TaskWaker {
    fn new(id: usize, ready: &Arc<ReadyQueue>) -> Arc<TaskWaker> {
        Arc::new(TaskWaker { id, state: AtomicU8::new(IDLE), ready: Arc::clone(ready) })
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.state.compare_exchange(IDLE, QUEUED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.ready.push(Arc::clone(self));
        }
    }
}

impl ReadyQueue {
    fn push(&self, task: Arc<TaskWaker>) {
        self.lock().push_back(task);
        // Woken from another thread while the executor sleeps: only the poller can wake it.
        // (Both sides use SeqCst: either the executor sees this task queued before it sleeps,
        // or this sees `sleeping` set and notifies.)
        if self.sleeping.load(Ordering::SeqCst) {
            let _ = self.poller.notify();
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<TaskWaker>>> {
        // A queue of task references stays consistent whatever panicked while holding it.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts tasks from inside a task (the accept loop spawns one per connection). They are
/// adopted by the executor, and first polled, after the spawning task's poll returns.
#[derive(Clone, Default)]
pub struct Spawner {
    new: Rc<RefCell<Vec<BoxFuture>>>,
}

impl Spawner {
    pub fn spawn(&self, future: impl Future<Output = ()> + 'static) {
        self.new.borrow_mut().push(Box::pin(future));
    }
}

impl Executor {
    /// An executor whose wakes from other threads notify `poller`.
    pub fn new(poller: Arc<Poller>) -> Executor {
        Executor {
            tasks: Slab::new(),
            ready: Arc::new(ReadyQueue {
                queue: Mutex::new(VecDeque::new()),
                sleeping: AtomicBool::new(false),
                poller,
            }),
            batch: VecDeque::new(),
            spawner: Spawner::default(),
        }
    }

    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }

    /// Run `main` and every task it spawns until `main` completes; tasks still running then
    /// are dropped with the executor. `reactor` supplies the wake-ups when no task is ready.
    pub fn block_on<F: Future>(&mut self, reactor: &Reactor, main: F) -> io::Result<F::Output> {
        let mut main = pin!(main);
        let main_waker = Waker::from(TaskWaker::new(MAIN, &self.ready));
        main_waker.wake_by_ref();
        loop {
            // Run every task that is ready now, once each; tasks woken meanwhile run next turn.
            std::mem::swap(&mut *self.ready.lock(), &mut self.batch);
            while let Some(task) = self.batch.pop_front() {
                // Idle again before the poll, so that a wake during the poll queues it again.
                if task.state.compare_exchange(QUEUED, IDLE, Ordering::AcqRel, Ordering::Acquire).is_err() {
                    continue; // it finished: a leftover entry
                }
                if task.id == MAIN {
                    if let Poll::Ready(output) = main.as_mut().poll(&mut Context::from_waker(&main_waker)) {
                        return Ok(output);
                    }
                } else {
                    self.poll_task(&task);
                }
                self.adopt_spawned();
            }
            // Sleep in the poller until I/O, a timer or a wake, unless a task is ready already.
            // Only while it sleeps does a wake need `Poller::notify` (a system call): the wakes
            // of `dispatch`, and of tasks, come from this thread, which is awake.
            self.ready.sleeping.store(true, Ordering::SeqCst);
            let may_sleep = self.ready.lock().is_empty();
            let waited = reactor.wait(may_sleep);
            self.ready.sleeping.store(false, Ordering::SeqCst);
            waited?;
            reactor.dispatch();
        }
    }

    /// Poll the task that `woken` wakes. It is the task in slot `woken.id`: a slot is freed only
    /// when its task finishes, and that task's waker is then marked `DONE`, never polled again.
    fn poll_task(&mut self, woken: &TaskWaker) {
        let Some(task) = self.tasks.get_mut(woken.id) else { return };
        if task.future.as_mut().poll(&mut Context::from_waker(&task.waker)).is_ready() {
            woken.state.store(DONE, Ordering::Release);
            drop(self.tasks.remove(woken.id)); // dropping the future closes its socket
        }
    }

    /// Give each newly spawned future a slot, a waker, and a place on the ready queue.
    fn adopt_spawned(&mut self) {
        let mut spawned = self.spawner.new.borrow_mut();
        for future in spawned.drain(..) {
            let entry = self.tasks.vacant_entry();
            let waker = Waker::from(TaskWaker::new(entry.key(), &self.ready));
            waker.wake_by_ref();
            entry.insert(Task { future, waker });
        }
    }
}

/// Let the other ready tasks run before going on: the task wakes itself and returns `Pending`
/// once, so it goes to the back of the queue. The only cooperative budget here.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx: &mut Context<'_>| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}
