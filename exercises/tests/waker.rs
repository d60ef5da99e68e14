//! Exercise 4: `cargo test --test waker`. See `src/waker/mod.rs` for the task.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use exercises::waker::Executor;

/// How long a run may take before the test calls the wake lost: generous, for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(10);

/// What the executor's thread, or a waking thread, reports to the test.
#[derive(Debug, PartialEq)]
enum Report {
    Finished(Vec<String>),
    Panicked(String),
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Spawn the tasks that `setup` makes on an executor of its own thread, run it, and return
/// the log the tasks wrote. A wake that is lost leaves the executor asleep: the deadline
/// turns that into a failure instead of a hang.
fn run_tasks(
    setup: impl FnOnce(&mut Executor, Rc<RefCell<Vec<String>>>, Sender<Report>) + Send + 'static,
) -> Vec<String> {
    let (reports, reported) = mpsc::channel();
    let from_executor = reports.clone();
    thread::spawn(move || {
        let log = Rc::new(RefCell::new(Vec::new()));
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let mut executor = Executor::new();
            setup(&mut executor, Rc::clone(&log), reports);
            executor.run();
        }));
        let report = match ran {
            Ok(()) => Report::Finished(log.take()),
            Err(panic) => Report::Panicked(panic_message(panic)),
        };
        let _ = from_executor.send(report);
    });
    match reported.recv_timeout(DEADLINE) {
        Ok(Report::Finished(log)) => log,
        Ok(Report::Panicked(message)) => panic!("the executor or a waker panicked: {message}"),
        Err(_) => {
            panic!("the executor did not finish within {DEADLINE:?}: a wake was lost, or never woke it")
        }
    }
}

/// A future that is pending `times` times, waking itself `wakes_per_poll` times on each,
/// and logs each poll as `name`.
fn yielding(
    name: &str,
    times: usize,
    wakes_per_poll: usize,
    log: Rc<RefCell<Vec<String>>>,
) -> impl Future<Output = ()> {
    let name = name.to_string();
    let mut polls = 0;
    poll_fn(move |cx| {
        log.borrow_mut().push(name.clone());
        polls += 1;
        if polls > times {
            return Poll::Ready(());
        }
        for _ in 0..wakes_per_poll {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
}

#[test]
fn a_task_that_wakes_itself_is_polled_again() {
    let log = run_tasks(|executor, log, _| executor.spawn(yielding("t", 3, 1, log)));
    assert_eq!(log, ["t"; 4], "three yields, then done: four polls");
}

#[test]
fn several_wakes_before_the_next_poll_bring_one_poll() {
    let log = run_tasks(|executor, log, _| {
        executor.spawn(yielding("a", 2, 3, Rc::clone(&log)));
        executor.spawn(yielding("b", 2, 1, log));
    });
    assert_eq!(
        log,
        ["a", "b", "a", "b", "a", "b"],
        "a task woken three times is queued once: queued three times, it would be polled in a row"
    );
}

#[test]
fn two_tasks_take_turns() {
    let log = run_tasks(|executor, log, _| {
        executor.spawn(yielding("a", 2, 1, Rc::clone(&log)));
        executor.spawn(yielding("b", 2, 1, log));
    });
    assert_eq!(log, ["a", "b", "a", "b", "a", "b"], "a woken task goes to the back of the queue");
}

/// The state a value delivered from another thread goes through.
#[derive(Default)]
struct Slot {
    value: Option<u32>,
    waker: Option<Waker>,
}

#[test]
fn a_task_woken_from_another_thread_wakes_the_sleeping_executor() {
    let log = run_tasks(|executor, log, reports| {
        let slot = Arc::new(Mutex::new(Slot::default()));
        let mut started = false;
        executor.spawn(async move {
            let value = poll_fn(|cx| {
                let mut state = slot.lock().unwrap();
                if let Some(value) = state.value {
                    return Poll::Ready(value);
                }
                state.waker = Some(cx.waker().clone());
                if !started {
                    started = true;
                    let (slot, reports) = (Arc::clone(&slot), reports.clone());
                    thread::spawn(move || deliver(slot, 42, reports));
                }
                Poll::Pending
            })
            .await;
            log.borrow_mut().push(format!("got {value}"));
        });
    });
    assert_eq!(log, ["got 42"]);
}

/// On another thread: give the executor time to fall asleep, then deliver and wake.
fn deliver(slot: Arc<Mutex<Slot>>, value: u32, reports: Sender<Report>) {
    // Not synchronisation: the pause makes it likely that the executor is already asleep
    // when the wake comes, which is the case this test is about.
    thread::sleep(Duration::from_millis(100));
    let waker = {
        let mut slot = slot.lock().unwrap();
        slot.value = Some(value);
        slot.waker.take()
    };
    if let Some(waker) = waker
        && let Err(panic) = catch_unwind(AssertUnwindSafe(|| waker.wake()))
    {
        let _ = reports.send(Report::Panicked(panic_message(panic)));
    }
}
