//! The chat state of one event loop: each member's queue, and the room's bookkeeping. How lines
//! are routed through it is `loop_chat.rs`; this file only holds what is routed into.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use mio::Token;

use crate::proto::chat::MemberId;
use crate::proto::outbox::Outbox;

/// One connection as a member of the chat room.
pub struct Member {
    pub id: MemberId,
    /// What the others said, waiting for this member's socket; bounded (see `proto::outbox`).
    pub(super) outbox: Outbox,
    /// Receives what the others say. False once it left or was dropped.
    pub in_room: bool,
    /// Listed in [`LoopRoom::dirty`] already this turn.
    pub(super) dirty: bool,
}

/// Where a loop hands what is said in it, when several loops make up one room.
pub type Elsewhere = Box<dyn FnMut(&[u8]) + Send>;

/// A loop's chat bookkeeping; the members themselves are the table's connections.
pub struct LoopRoom {
    pub(super) queue_limit: usize,
    /// Where member ids come from; shared when several loops make up one room.
    pub(super) ids: Arc<AtomicU64>,
    /// Members given new output this turn: each is written once, at the end of the turn, however
    /// many lines it was given.
    pub(super) dirty: Vec<(Token, u64)>,
    /// The list `dirty` is swapped with while it is being written, kept so that neither list
    /// is ever reallocated once it has grown to the room's size.
    pub(super) writing: Vec<(Token, u64)>,
    /// Members that left or were dropped with output still queued, and when they are closed
    /// whether or not they read it. All wait the same `DELIVERY_WAIT`, so the queue is in order.
    pub(super) deadlines: VecDeque<(Instant, Token, u64)>,
    /// Several loops: hands what this loop's members say (and notices about them) to the others.
    pub(super) elsewhere: Option<Elsewhere>,
}

impl LoopRoom {
    /// The whole room in one loop; members may fall `queue_limit` bytes behind.
    pub fn alone(queue_limit: usize) -> LoopRoom {
        LoopRoom::new(queue_limit, Arc::default(), None)
    }

    /// One loop's part of a room spread over several loops, which share `ids`; `elsewhere`
    /// delivers what is said here to the other loops.
    pub fn part_of(
        queue_limit: usize,
        ids: Arc<AtomicU64>,
        elsewhere: impl FnMut(&[u8]) + Send + 'static,
    ) -> LoopRoom {
        LoopRoom::new(queue_limit, ids, Some(Box::new(elsewhere)))
    }

    fn new(queue_limit: usize, ids: Arc<AtomicU64>, elsewhere: Option<Elsewhere>) -> LoopRoom {
        LoopRoom {
            queue_limit,
            ids,
            dirty: Vec::new(),
            writing: Vec::new(),
            deadlines: VecDeque::new(),
            elsewhere,
        }
    }

    /// Tell the other loops, if there are any.
    pub(super) fn tell_elsewhere(&mut self, bytes: &[u8]) {
        if let Some(elsewhere) = self.elsewhere.as_mut() {
            elsewhere(bytes);
        }
    }

    pub(super) fn has_output(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|&(at, ..)| at)
    }
}
