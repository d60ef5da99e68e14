//! Who owes whom which message: the bookkeeping that makes "every message reached every other
//! member exactly once, in order" a checked fact rather than a hope.
//!
//! For every (receiver, sender) pair the ledger knows the sequence number that must arrive
//! next. A server delivers each sender's messages to each receiver in order, so a receipt is
//! exactly one of: the expected number (fine), a later one (the ones in between are *missing*
//! and can never arrive in order), an earlier one (a *duplicate*), or one that was never sent.
//!
//! For every sender it also keeps the messages that have not yet reached all the others, oldest
//! first, with how many receivers have them: closed loop sends a member's next message only
//! when its earlier ones are through, and a message stuck there too long is a timeout.

use std::collections::VecDeque;

/// A message that has not reached every other member yet.
#[derive(Debug, Clone, Copy)]
struct Open {
    sent_ns: u64,
    /// Receivers that got it, or that are known never to get it (they skipped past it).
    settled: u32,
}

/// The verdict on one receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// The next message from that sender, as expected. `completed` of the sender's oldest
    /// messages have now reached everyone.
    InOrder { completed: usize },
    /// Later than expected: `missing` messages from that sender will never arrive here.
    Skipped { missing: u64, completed: usize },
    /// Already received (or the receiver's own message): delivered twice.
    Duplicate,
    /// Not a message that was ever sent with that timestamp: a corrupted header.
    Unknown,
}

/// See the module docs.
#[derive(Debug)]
pub struct Ledger {
    members: usize,
    /// `next[receiver * members + sender]`: the sequence number expected next.
    next: Vec<u64>,
    /// Messages each member has sent.
    sent: Vec<u64>,
    /// Per sender, its messages not yet settled everywhere; the front is number `sent - len`.
    open: Vec<VecDeque<Open>>,
}

impl Ledger {
    /// A ledger for `members` members (at least two: with one, nobody receives anything).
    pub fn new(members: usize) -> Self {
        Ledger {
            members,
            next: vec![0; members * members],
            sent: vec![0; members],
            open: (0..members).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Member `sender` sends its next message at `sent_ns`; returns its sequence number.
    pub fn send(&mut self, sender: usize, sent_ns: u64) -> u64 {
        let seq = self.sent[sender];
        self.sent[sender] += 1;
        self.open[sender].push_back(Open { sent_ns, settled: 0 });
        seq
    }

    /// Member `receiver` got message `seq` of `sender`, stamped `sent_ns`.
    pub fn receive(&mut self, receiver: usize, sender: usize, seq: u64, sent_ns: u64) -> Receipt {
        if receiver == sender {
            return Receipt::Duplicate; // a member never hears its own line
        }
        let first_open = self.sent[sender] - self.open[sender].len() as u64;
        let stamp_ok = match seq.checked_sub(first_open) {
            Some(i) => self.open[sender].get(i as usize).is_some_and(|o| o.sent_ns == sent_ns),
            // Already settled everywhere: it can only be a duplicate if it was really sent.
            None => true,
        };
        if seq >= self.sent[sender] || !stamp_ok {
            return Receipt::Unknown;
        }
        let cell = receiver * self.members + sender;
        let expected = self.next[cell];
        if seq < expected {
            return Receipt::Duplicate;
        }
        self.next[cell] = seq + 1;
        // This receipt settles `seq`, and so do the skipped ones before it: they cannot arrive
        // in order any more.
        for n in expected.max(first_open)..=seq {
            if let Some(open) = self.open[sender].get_mut((n - first_open) as usize) {
                open.settled += 1;
            }
        }
        let completed = self.pop_settled(sender);
        match seq - expected {
            0 => Receipt::InOrder { completed },
            missing => Receipt::Skipped { missing, completed },
        }
    }

    /// Messages of `sender` that have not reached every other member yet.
    pub fn in_flight(&self, sender: usize) -> usize {
        self.open[sender].len()
    }

    /// When the oldest message still in flight, over all senders, was sent.
    pub fn oldest_in_flight(&self) -> Option<u64> {
        self.open.iter().filter_map(|o| o.front().map(|m| m.sent_ns)).min()
    }

    /// Nothing is in flight.
    pub fn all_settled(&self) -> bool {
        self.open.iter().all(VecDeque::is_empty)
    }

    /// Deliveries owed and never made: for every receiver and every other sender, the messages
    /// sent after the last one that arrived.
    pub fn owed(&self) -> u64 {
        let mut owed = 0;
        for receiver in 0..self.members {
            for sender in (0..self.members).filter(|s| *s != receiver) {
                owed += self.sent[sender] - self.next[receiver * self.members + sender];
            }
        }
        owed
    }

    fn pop_settled(&mut self, sender: usize) -> usize {
        let others = self.members as u32 - 1;
        let open = &mut self.open[sender];
        let before = open.len();
        while open.front().is_some_and(|o| o.settled >= others) {
            open.pop_front();
        }
        before - open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_through_when_every_other_member_has_it() {
        let mut l = Ledger::new(3);
        assert_eq!(l.send(0, 10), 0);
        assert_eq!(l.send(0, 20), 1);
        assert_eq!(l.receive(1, 0, 0, 10), Receipt::InOrder { completed: 0 });
        assert_eq!(l.receive(2, 0, 0, 10), Receipt::InOrder { completed: 1 });
        assert_eq!(l.in_flight(0), 1);
        assert_eq!(l.oldest_in_flight(), Some(20));
        assert_eq!(l.receive(2, 0, 1, 20), Receipt::InOrder { completed: 0 });
        assert_eq!(l.receive(1, 0, 1, 20), Receipt::InOrder { completed: 1 });
        assert!(l.all_settled());
        assert_eq!(l.owed(), 0);
    }

    #[test]
    fn gaps_duplicates_echoes_and_forgeries_are_named() {
        let mut l = Ledger::new(2);
        for t in 0..4 {
            l.send(0, t);
        }
        assert_eq!(l.receive(1, 0, 2, 2), Receipt::Skipped { missing: 2, completed: 3 });
        assert_eq!(l.receive(1, 0, 2, 2), Receipt::Duplicate);
        assert_eq!(l.receive(1, 0, 0, 0), Receipt::Duplicate, "late, so out of order");
        assert_eq!(l.receive(0, 0, 3, 3), Receipt::Duplicate, "back to its sender");
        assert_eq!(l.receive(1, 0, 9, 9), Receipt::Unknown, "never sent");
        assert_eq!(l.receive(1, 0, 3, 999), Receipt::Unknown, "sent, but not at that time");
        assert_eq!(l.owed(), 1, "message 3 never reached member 1");
        assert_eq!(l.receive(1, 0, 3, 3), Receipt::InOrder { completed: 1 });
        assert_eq!(l.owed(), 0);
    }
}
