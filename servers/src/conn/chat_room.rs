//! The chat room of the models whose members run on threads or tasks of their own
//! (`blocking`, `thread-per-connection`, `thread-pool`, `async`): a list of members behind one
//! lock, each with a *mailbox* that its own writer empties.
//!
//! ```text
//!   member A's reader ── say("A: hi\n") ──► lock the room ─┬─► B's mailbox: push, wake B's writer
//!                                                         └─► C's mailbox: push, wake C's writer
//!   B's writer: wait for its mailbox ──► take the bytes ──► write them (no lock held) ──► wait …
//! ```
//!
//! **Why a mailbox and not the socket.** The simplest room would write A's line straight into
//! B's and C's sockets while holding the lock. It works until one member stops reading: its
//! socket buffer fills, the `write` blocks, and A blocks *holding the room's lock*, so every
//! other member blocks on the lock behind it. One slow reader stops the whole room. Here a
//! sender only copies bytes into queues under the lock, never waits on a socket there, and each
//! member's queue is bounded ([`crate::proto::outbox`]): a member that falls behind is dropped
//! with a notice and the others are told.
//!
//! **What differs between the models is who waits for the mailbox.** A thread cannot block in
//! `read` and wait for its mailbox at the same time, so the thread-based models give each member
//! a second thread that waits on a `Condvar` ([`super::blocking_chat`]). A tokio task can wait for
//! both at once with `select!`, woken by a `Notify` (the `async` model). Hence the [`Wake`]
//! trait: the room is the same, only the way a writer is woken differs.
//!
//! **The lock.** One lock around the member list gives every member the same order of messages
//! (two lines said at once reach everyone in the same order) and makes join and leave atomic
//! with the notices about them. The price is that all senders take turns on it; the work done
//! under it is one `memcpy` per member, so it is held for microseconds. Mailbox locks are taken
//! inside it, always in that order, so the two cannot deadlock.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::proto::chat::{self, MemberId};
use crate::proto::outbox::{Outbox, Pushed, State};

/// How a member's writer is told that its mailbox has something for it.
pub trait Wake {
    /// Wake the writer (if it sleeps); a wake-up with nobody waiting must not be lost, or the
    /// writer must check the mailbox before it sleeps (a `Condvar` under the mailbox's lock).
    fn wake(&self);
}

impl Wake for Condvar {
    fn wake(&self) {
        self.notify_one();
    }
}

impl Wake for tokio::sync::Notify {
    fn wake(&self) {
        // Stores a permit if the task is not waiting yet: the next `notified().await` returns.
        self.notify_one();
    }
}

/// One member's queue, and how to wake whoever writes it to the member's socket.
#[derive(Debug)]
pub struct Mailbox<W> {
    outbox: Mutex<Outbox>,
    wake: W,
}

impl<W: Wake> Mailbox<W> {
    fn new(limit: usize, wake: W) -> Mailbox<W> {
        Mailbox { outbox: Mutex::new(Outbox::new(limit)), wake }
    }

    /// The queue, locked. Hold it only to look or take, never while writing to a socket.
    pub fn lock(&self) -> MutexGuard<'_, Outbox> {
        // An `Outbox` is consistent after every call; a panic elsewhere leaves nothing to repair.
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer's wake-up (a `Condvar` to wait on with [`lock`](Self::lock)'s guard, or a
    /// `Notify` to await).
    pub fn waker(&self) -> &W {
        &self.wake
    }

    /// The member left: send what is queued, then end.
    pub fn close(&self) {
        self.lock().close();
        self.wake.wake();
    }

    /// The member broke the protocol: send what is queued and `last_line`, then end.
    pub fn close_with(&self, last_line: &[u8]) {
        self.lock().close_with(last_line);
        self.wake.wake();
    }

    /// For a member task that both reads and writes (`async`, `executor`), once everything it
    /// took before is written: take what is queued into `batch` (which it has emptied), or say
    /// why there is nothing.
    pub fn refill(&self, batch: &mut Vec<u8>) -> Refill {
        let mut outbox = self.lock();
        let open = outbox.state() == State::Open;
        if !outbox.is_empty() {
            outbox.take(batch);
            return Refill::Took { open };
        }
        if open { Refill::Empty } else { Refill::Finished }
    }

    fn push(&self, bytes: &[u8]) -> Pushed {
        let pushed = self.lock().push(bytes);
        if matches!(pushed, Pushed::Queued { was_empty: true } | Pushed::Dropped) {
            self.wake.wake();
        }
        pushed
    }
}

/// What [`Mailbox::refill`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refill {
    /// Bytes to write are in the batch; `open`: the member is still in the room.
    Took { open: bool },
    /// Nothing queued, and the member is still in the room.
    Empty,
    /// Nothing queued, and the member left or was dropped: its writing is done.
    Finished,
}

/// The members of one server's room.
#[derive(Debug)]
pub struct Room<W> {
    members: Mutex<Members<W>>,
    queue_limit: usize,
}

#[derive(Debug)]
struct Members<W> {
    next_id: MemberId,
    /// A `Vec`, not a map: every message walks the whole list, and joins and leaves are rare.
    list: Vec<(MemberId, Arc<Mailbox<W>>)>,
}

impl<W: Wake> Room<W> {
    /// An empty room whose members may fall `queue_limit` bytes behind (`--chat-queue`).
    pub fn new(queue_limit: usize) -> Room<W> {
        Room { members: Mutex::new(Members { next_id: 0, list: Vec::new() }), queue_limit }
    }

    /// A new member: its id, and its mailbox, which already holds its welcome. The others are
    /// told it joined, in the same step, so no message can fall between the two.
    pub fn join(&self, wake: W) -> (MemberId, Arc<Mailbox<W>>) {
        let mut members = self.lock();
        members.next_id += 1;
        let id = members.next_id;
        let mailbox = Arc::new(Mailbox::new(self.queue_limit, wake));
        let mut line = Vec::new();
        chat::welcome(id, &mut line);
        mailbox.push(&line);
        line.clear();
        chat::joined(id, &mut line);
        deliver(&mut members.list, id, &line);
        members.list.push((id, Arc::clone(&mailbox)));
        (id, mailbox)
    }

    /// Member `from` said `messages` (whole `from: …` lines): queue them for everyone else.
    /// False if `from` is no longer a member (it was dropped), so its reader should stop.
    pub fn say(&self, from: MemberId, messages: &[u8]) -> bool {
        let mut members = self.lock();
        if !members.list.iter().any(|(id, _)| *id == from) {
            return false;
        }
        deliver(&mut members.list, from, messages);
        true
    }

    /// Member `id` leaves (a no-op if it was dropped already). `tell_others` is false during
    /// shutdown, when everyone is leaving and the notices would only be noise.
    pub fn leave(&self, id: MemberId, tell_others: bool) {
        let mut members = self.lock();
        let Some(at) = members.list.iter().position(|(m, _)| *m == id) else { return };
        members.list.swap_remove(at);
        if tell_others {
            let mut line = Vec::new();
            chat::left(id, &mut line);
            deliver(&mut members.list, id, &line);
        }
    }

    /// How many members the room has.
    pub fn len(&self) -> usize {
        self.lock().list.len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Members<W>> {
        // Every change to the list is a single push or remove: a panic cannot leave it torn.
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Queue `bytes` for every member but `from`. A member whose queue overflows is dropped: it
/// leaves the list and the others are told, which may in turn overflow someone else's queue,
/// hence the work list.
fn deliver<W: Wake>(list: &mut Vec<(MemberId, Arc<Mailbox<W>>)>, from: MemberId, bytes: &[u8]) {
    let mut fallen = Vec::new();
    push_to_all(list, from, bytes, &mut fallen);
    let mut line = Vec::new();
    while let Some(slow) = fallen.pop() {
        list.retain(|(id, _)| *id != slow);
        line.clear();
        chat::dropped(slow, &mut line);
        push_to_all(list, slow, &line, &mut fallen);
    }
}

fn push_to_all<W: Wake>(
    list: &[(MemberId, Arc<Mailbox<W>>)],
    from: MemberId,
    bytes: &[u8],
    fallen: &mut Vec<MemberId>,
) {
    for (id, mailbox) in list {
        if *id != from && mailbox.push(bytes) == Pushed::Dropped {
            fallen.push(*id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wake-up that does nothing: these tests look at the mailboxes directly.
    struct Quiet;
    impl Wake for Quiet {
        fn wake(&self) {}
    }

    fn drain(mailbox: &Mailbox<Quiet>) -> String {
        let mut out = Vec::new();
        mailbox.lock().take(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn joins_messages_and_leaves_reach_the_others_only() {
        let room = Room::new(1024);
        let (a, box_a) = room.join(Quiet);
        assert_eq!(drain(&box_a), format!("* you are {a}\n"));
        let (b, box_b) = room.join(Quiet);
        assert_eq!(drain(&box_a), format!("* {b} joined\n"));
        assert_eq!(drain(&box_b), format!("* you are {b}\n"));
        assert!(room.say(a, format!("{a}: hi\n").as_bytes()));
        assert_eq!(drain(&box_a), "", "never to the sender");
        assert_eq!(drain(&box_b), format!("{a}: hi\n"));
        room.leave(a, true);
        assert_eq!(drain(&box_b), format!("* {a} left\n"));
        assert!(!room.say(a, b"late\n"), "a member that left says nothing");
        room.leave(b, false);
        assert!(room.is_empty());
    }

    #[test]
    fn a_slow_member_is_dropped_and_the_others_are_told() {
        let room = Room::new(100);
        let (a, box_a) = room.join(Quiet);
        let (s, box_s) = room.join(Quiet);
        let (_, box_c) = room.join(Quiet);
        for mailbox in [&box_a, &box_s, &box_c] {
            drain(mailbox);
        }
        let line = format!("{a}: {}\n", "x".repeat(56)); // 60 bytes: two do not fit in 100
        assert!(room.say(a, line.as_bytes()));
        drain(&box_c); // c keeps up, s does not
        assert!(room.say(a, line.as_bytes()), "s's queue overflows now");
        assert_eq!(box_s.lock().state(), State::Dropped);
        assert!(drain(&box_s).contains("ERR too slow"));
        assert_eq!(drain(&box_c), format!("{line}* {s} dropped (too slow)\n"));
        assert_eq!(drain(&box_a), format!("* {s} dropped (too slow)\n"));
        assert!(!room.say(s, b"anyone?\n"), "a dropped member is out of the room");
        assert_eq!(room.len(), 2);
    }
}
