//! Chat on the io_uring loop: the loop's connections are the room, as in the reactor
//! (`crate::conn::loop_chat` tells the reasoning). A line from one member is appended to every
//! other member's bounded outbox, where the bound is enforced; each member given output is sent
//! it once at the end of the turn. The difference from the reactor: a send hands the kernel a
//! copy taken out of the outbox ([`Outbox::take`]), since the kernel keeps reading those bytes
//! after the call, while the outbox keeps growing.

use std::io;
use std::time::Instant;

use super::conn::Member;
use super::event_loop::Loop;
use crate::conn::nonblocking::Phase;
use crate::net::DELIVERY_WAIT;
use crate::proto::chat::{self, MemberId};
use crate::proto::outbox::{Outbox, Pushed};

/// No member has this key: routes a line to everyone.
const NOBODY: usize = usize::MAX;

impl Loop {
    /// Connection `key` joins: welcome it, then tell the others.
    pub(super) fn join(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        self.room.last_id += 1;
        let id = self.room.last_id;
        conn.session.speak_as(id);
        let mut member = Member { id, outbox: Outbox::new(self.room.queue_limit), in_room: true, dirty: true };
        let mut line = Vec::new();
        chat::welcome(id, &mut line);
        member.outbox.push(&line);
        conn.member = Some(Box::new(member));
        self.room.dirty.push((key, conn.serial));
        line.clear();
        chat::joined(id, &mut line);
        self.route(key, &line);
    }

    /// Member `key` said what `serve` left in `out` (`broke`: its line was too long).
    pub(super) fn member_said(&mut self, key: usize, broke: bool) -> io::Result<()> {
        if !self.out.is_empty() {
            let said = std::mem::take(&mut self.out);
            self.route(key, &said);
            self.out = said;
            self.out.clear();
        }
        if broke || self.draining {
            return self.member_leaves(key, broke);
        }
        self.arm_recv(key)
    }

    /// Member `key` stopped talking (end-of-file, shutdown, or a line over the limit): it
    /// leaves the room, is sent what is queued for it (and the error reply), then closes.
    pub(super) fn member_leaves(&mut self, key: usize, too_long: bool) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        let Some(member) = conn.member.as_mut() else { return Ok(()) };
        let was_in_room = std::mem::replace(&mut member.in_room, false);
        let id = member.id;
        if too_long {
            let mut line = Vec::new();
            conn.session.refusal(&mut line);
            member.outbox.close_with(&line);
            conn.phase = Phase::Failing;
        } else {
            member.outbox.close();
            if conn.phase == Phase::Open {
                conn.phase = Phase::PeerDone;
            }
        }
        if conn.unsent_len() > 0 {
            self.room.deadlines.push_back((Instant::now() + DELIVERY_WAIT, key, conn.serial));
        }
        if was_in_room {
            let tell = !self.draining;
            self.announce_left(id, tell);
        }
        self.arm_send(key)?;
        self.after_output(key)
    }

    /// Tell everyone that member `id` (no longer in the room) left; during shutdown (`tell`
    /// false) everyone is leaving and the notices would only be noise.
    pub(super) fn announce_left(&mut self, id: MemberId, tell: bool) {
        if tell {
            let mut line = Vec::new();
            chat::left(id, &mut line);
            self.route(NOBODY, &line);
        }
    }

    /// Append `bytes` (whole lines) to the outbox of every member except `from`. A member that
    /// overflows is dropped here, and the others are told, which can overflow someone else
    /// (hence the work list).
    fn route(&mut self, from: usize, bytes: &[u8]) {
        let mut fallen = Vec::new(); // allocates only if someone falls behind
        self.push_to_all(from, bytes, &mut fallen);
        while let Some(key) = fallen.pop() {
            let Some(conn) = self.conns.get_mut(key) else { continue };
            let Some(member) = conn.member.as_mut() else { continue };
            member.in_room = false;
            let id = member.id;
            // Its outbox now holds only the notice: send it, then close as after a protocol
            // error, or at the deadline if it never reads again.
            conn.phase = Phase::Failing;
            self.room.deadlines.push_back((Instant::now() + DELIVERY_WAIT, key, conn.serial));
            let mut line = Vec::new();
            chat::dropped(id, &mut line);
            self.push_to_all(key, &line, &mut fallen);
        }
    }

    fn push_to_all(&mut self, from: usize, bytes: &[u8], fallen: &mut Vec<usize>) {
        for (key, conn) in self.conns.iter_mut() {
            let Some(member) = conn.member.as_mut().filter(|m| m.in_room && key != from) else { continue };
            let pushed = member.outbox.push(bytes);
            if matches!(pushed, Pushed::Queued { .. } | Pushed::Dropped) && !member.dirty {
                member.dirty = true;
                self.room.dirty.push((key, conn.serial));
            }
            if pushed == Pushed::Dropped {
                fallen.push(key);
            }
        }
    }

    /// Send every member that was given output this turn, unless a send of its is in flight
    /// already (its completion takes the rest). Closing a member can give others a notice,
    /// hence the loop.
    pub(super) fn write_members(&mut self) -> io::Result<()> {
        while !self.room.dirty.is_empty() {
            for (key, serial) in std::mem::take(&mut self.room.dirty) {
                let Some(conn) = self.conns.get_mut(key).filter(|c| c.serial == serial) else { continue };
                if let Some(member) = conn.member.as_mut() {
                    member.dirty = false;
                }
                self.arm_send(key)?;
                self.after_output(key)?;
            }
        }
        Ok(())
    }

    /// Close the members that did not read their last lines in time.
    pub(super) fn expire_chat_deadlines(&mut self, now: Instant) {
        while let Some(&(at, key, serial)) = self.room.deadlines.front() {
            if at > now {
                break;
            }
            self.room.deadlines.pop_front();
            self.close_if_current(key, serial);
        }
    }
}
