//! Exercise 2: `cargo test --test bounded_pool`. See `src/bounded_pool/mod.rs` for the task.

// The starter has no `Drop` yet (writing it is part of the exercise), and clippy would call
// the test's `drop(pool)` useless until it has.
#![allow(clippy::drop_non_drop)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use exercises::bounded_pool::{QueueFull, ThreadPool};

/// How long to wait for something that must happen: generous, for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(10);

/// Jobs that wait at a gate until the test opens it, counting how many run at once.
#[derive(Default)]
struct Probe {
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    finished: AtomicUsize,
    gate_open: Mutex<bool>,
    gate: Condvar,
}

impl Probe {
    fn job(self: &Arc<Self>, started: &Sender<()>) -> impl FnOnce() + Send + 'static {
        let probe = Arc::clone(self);
        let started = started.clone();
        move || {
            let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
            probe.most_at_once.fetch_max(now, Ordering::SeqCst);
            let _ = started.send(());
            let mut open = probe.gate_open.lock().unwrap();
            while !*open {
                open = probe.gate.wait(open).unwrap();
            }
            drop(open);
            probe.running.fetch_sub(1, Ordering::SeqCst);
            probe.finished.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn open_gate(&self) {
        *self.gate_open.lock().unwrap() = true;
        self.gate.notify_all();
    }
}

/// Open the gate after [`DEADLINE`] unless the returned sender is dropped first: a pool that
/// blocks (in `try_execute`, or in `drop` while the test unwinds) then fails instead of hanging.
/// Create it before the pool, so that it outlives the pool when a failing test unwinds.
fn watchdog(probe: &Arc<Probe>) -> Sender<()> {
    let (cancel, cancelled) = mpsc::channel::<()>();
    let probe = Arc::clone(probe);
    thread::spawn(move || {
        if cancelled.recv_timeout(DEADLINE) == Err(RecvTimeoutError::Timeout) {
            probe.open_gate();
        }
    });
    cancel
}

/// Drop the pool on another thread and wait for the drop to return (it must join the workers).
fn drop_within_deadline(pool: ThreadPool) {
    let (dropped, has_dropped) = mpsc::channel();
    thread::spawn(move || {
        drop(pool);
        let _ = dropped.send(());
    });
    has_dropped.recv_timeout(DEADLINE).unwrap_or_else(|_| {
        panic!(
            "dropping the pool did not return within {DEADLINE:?}: does Drop close the queue before it joins?"
        )
    });
}

fn expect_start(started: &Receiver<()>, what: &str) {
    started.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("{what} did not start within {DEADLINE:?}"));
}

#[test]
fn two_workers_and_a_queue_of_three_take_five_jobs_and_refuse_the_sixth() {
    let probe = Arc::new(Probe::default());
    let _watchdog = watchdog(&probe);
    let (started, starts) = mpsc::channel();
    let pool = ThreadPool::new(2, 3);

    // Two jobs occupy both workers: wait until both really run.
    pool.try_execute(probe.job(&started)).expect("an idle pool accepts a job");
    pool.try_execute(probe.job(&started)).expect("an idle pool accepts a second job");
    expect_start(&starts, "the first job");
    expect_start(&starts, "the second job (two workers run at once)");

    // Both workers are busy: three jobs wait in the queue, the fourth does not fit.
    for n in 3..=5 {
        assert_eq!(pool.try_execute(probe.job(&started)), Ok(()), "job {n} fits in the queue");
    }
    assert_eq!(
        pool.try_execute(probe.job(&started)),
        Err(QueueFull),
        "job 6: the queue is full (if this took {DEADLINE:?}, try_execute blocked: use try_send)"
    );
    assert_eq!(probe.running.load(Ordering::SeqCst), 2, "queued jobs wait for a worker");

    probe.open_gate();
    drop_within_deadline(pool); // must wait for every accepted job
    assert_eq!(probe.finished.load(Ordering::SeqCst), 5, "every accepted job ran before drop returned");
    assert_eq!(probe.most_at_once.load(Ordering::SeqCst), 2, "never more than the 2 workers at once");
}

#[test]
fn a_full_queue_accepts_again_once_a_worker_frees_a_place() {
    let probe = Arc::new(Probe::default());
    let _watchdog = watchdog(&probe);
    let (started, starts) = mpsc::channel();
    let pool = ThreadPool::new(1, 1);
    pool.try_execute(probe.job(&started)).unwrap();
    expect_start(&starts, "the first job");
    pool.try_execute(probe.job(&started)).unwrap();
    assert_eq!(
        pool.try_execute(|| {}),
        Err(QueueFull),
        "the queue of 1 is full (if this took {DEADLINE:?}, it blocked)"
    );

    probe.open_gate();
    expect_start(&starts, "the queued job");
    // The worker took the queued job off the queue before running it: there is room again.
    let (done, finished) = mpsc::channel();
    assert_eq!(pool.try_execute(move || done.send(()).unwrap()), Ok(()), "a free place takes a job");
    finished.recv_timeout(DEADLINE).expect("the accepted job runs");
    drop_within_deadline(pool);
    assert_eq!(probe.most_at_once.load(Ordering::SeqCst), 1);
}
