//! Ways to wait for more than one thing, the executor's share of what tokio's `select!`,
//! `time::timeout` and `sync::Notify` do: each is a few lines over `poll`, because a future
//! that waits for two things is a future that polls both.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::reactor::Reactor;

/// Which of two futures finished first.
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Poll both futures until one finishes; the other is dropped. `a` is polled first each time.
pub async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    poll_fn(|cx: &mut Context<'_>| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(out));
        }
        if let Poll::Ready(out) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(out));
        }
        Poll::Pending
    })
    .await
}

/// `future`'s output, or `None` if it took longer than `limit`.
pub async fn timeout<F: Future>(reactor: &Reactor, limit: Duration, future: F) -> Option<F::Output> {
    match select(future, reactor.sleep(limit)).await {
        Either::Left(out) => Some(out),
        Either::Right(()) => None,
    }
}

/// A wake-up for one waiting task, that is kept if nobody waits yet (like tokio's
/// `Notify::notify_one`). One thread only: two `Cell`s, no lock.
#[derive(Default)]
pub struct Notify {
    permit: Cell<bool>,
    waiter: Cell<Option<Waker>>,
}

impl Notify {
    pub fn new() -> Notify {
        Notify::default()
    }

    /// Wake the waiting task, or the next one to wait.
    pub fn notify(&self) {
        self.permit.set(true);
        if let Some(waker) = self.waiter.take() {
            waker.wake();
        }
    }

    /// Ready (using up the permit) if notified since the last time; otherwise wait.
    pub fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.permit.replace(false) {
            return Poll::Ready(());
        }
        let waker = match self.waiter.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.waiter.set(Some(waker));
        Poll::Pending
    }

    pub async fn notified(&self) {
        poll_fn(|cx| self.poll_notified(cx)).await;
    }
}

/// The chat room wakes a member's task through its mailbox's `Notify`.
impl crate::conn::chat_room::Wake for Notify {
    fn wake(&self) {
        self.notify();
    }
}
