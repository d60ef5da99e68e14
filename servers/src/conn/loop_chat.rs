//! How an event loop routes `chat`: its connection table *is* the room. There is no registry to
//! lock and no thread to wake.
//!
//! A line read from member A is appended to the pending output ([`crate::proto::outbox`]) of
//! every other member in the table, and each of those is written once at the end of the loop
//! turn, with write interest turned on for whoever's socket is full. The bound is checked right
//! there, at the append: a member whose queue would pass `--chat-queue` bytes is dropped on the
//! spot, gets a notice, and the others are told. Routing a line costs one `memcpy` per member
//! and one `write` per member per turn, all on one thread, so it is cheap and every member sees
//! every line in the same order; but the loop does it for every member itself, so fan-out to
//! many members is where its single core runs out first.
//!
//! **Several loops** (the `multi-reactor`) each hold part of the room. Whatever a loop's own
//! members say, and every notice about them, is also handed to the model's `elsewhere`
//! callback at the moment it is routed here, *before* any member here can be written it, so a
//! member that has read a line knows the other loops have it too. The other loops route it to
//! their members as if it came from nobody in their own table. Member ids come from one shared
//! counter, so they stay unique across loops.

use std::io::{self, ErrorKind, Read, Write};
use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::Token;

use super::loop_room::Member;
use super::nonblocking::{Conn, Next, Phase, READS_PER_TURN};
use super::table::Table;
use crate::net::DELIVERY_WAIT;
use crate::proto::chat::{self, MemberId};
use crate::proto::outbox::{Outbox, Pushed};
use crate::store::Store;

/// No member has this key: routes a line to everyone.
const NOBODY: usize = usize::MAX;

impl<S: Store + Clone> Table<S> {
    /// Several loops: deliver lines said in another loop to every member of this one.
    pub fn route_from_afar(&mut self, bytes: &[u8]) {
        self.route(NOBODY, bytes, false);
    }

    /// The new connection `token` joins: welcome it, then tell the others.
    pub(super) fn join(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else { return };
        let id = self.chat.ids.fetch_add(1, Ordering::Relaxed) + 1;
        conn.session.speak_as(id);
        let mut member =
            Member { id, outbox: Outbox::new(self.chat.queue_limit), in_room: true, dirty: true };
        let mut line = Vec::new();
        chat::welcome(id, &mut line);
        member.outbox.push(&line);
        conn.member = Some(Box::new(member));
        self.chat.dirty.push((token, conn.serial));
        line.clear();
        chat::joined(id, &mut line);
        self.route(token.0, &line, true);
    }

    /// Append `bytes` (whole lines) to the pending output of every member in the room except
    /// `from`. This is the whole routing, and where the bound is enforced: a member that
    /// overflows is dropped here, and the others are told, which can overflow someone else
    /// (hence the work list). `ours`: said in this loop, so the other loops get it too.
    fn route(&mut self, from: usize, bytes: &[u8], ours: bool) {
        if ours {
            self.chat.tell_elsewhere(bytes);
        }
        let mut fallen = Vec::new(); // allocates only if someone falls behind
        self.push_to_all(from, bytes, &mut fallen);
        while let Some(key) = fallen.pop() {
            let Some(conn) = self.conns.get_mut(key) else { continue };
            let Some(member) = conn.member.as_mut() else { continue };
            member.in_room = false;
            let id = member.id;
            // Its queue now holds only the notice: write it, then close as after a protocol
            // error (`Phase::Failing`), or at the deadline if it never reads again.
            conn.phase = Phase::Failing;
            self.chat.deadlines.push_back((Instant::now() + DELIVERY_WAIT, Token(key), conn.serial));
            let mut line = Vec::new();
            chat::dropped(id, &mut line);
            self.chat.tell_elsewhere(&line);
            self.push_to_all(key, &line, &mut fallen);
        }
    }

    fn push_to_all(&mut self, from: usize, bytes: &[u8], fallen: &mut Vec<usize>) {
        for (key, conn) in self.conns.iter_mut() {
            let Some(member) = conn.member.as_mut().filter(|m| m.in_room && key != from) else { continue };
            let pushed = member.outbox.push(bytes);
            // A queue that was not empty is either listed already or waiting for `WRITABLE`.
            if matches!(pushed, Pushed::Queued { was_empty: true } | Pushed::Dropped) && !member.dirty {
                member.dirty = true;
                self.chat.dirty.push((Token(key), conn.serial));
            }
            if pushed == Pushed::Dropped {
                fallen.push(key);
            }
        }
    }

    /// Tell everyone in the room that member `id` (no longer in it) left; during shutdown
    /// (`tell` false) everyone is leaving and the notices would only be noise.
    pub(super) fn announce_left(&mut self, id: MemberId, tell: bool) {
        if tell {
            let mut line = Vec::new();
            chat::left(id, &mut line);
            self.route(NOBODY, &line, true);
        }
    }

    pub(super) fn on_member_event(&mut self, token: Token, writable: bool, readable: bool, to_end: bool) {
        let mut next = Ok(Next::Keep);
        if let Some(conn) = self.conns.get_mut(token.0).filter(|_| writable) {
            next = write_outbox(conn, &self.registry);
        }
        // A member queued for its next turn reads then (see `Table::on_event`).
        let queued = self.conns.get(token.0).is_some_and(|c| c.queued);
        if readable && !queued && matches!(next, Ok(Next::Keep)) {
            next = self.member_readable(token, to_end);
        }
        self.apply(token, next);
    }

    /// Read what member `token` sent and route its complete lines to everyone else.
    pub(super) fn member_readable(&mut self, token: Token, to_end: bool) -> io::Result<Next> {
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get_mut(token.0) else { return Ok(Next::Keep) };
            match conn.phase {
                Phase::Open => {}
                Phase::Lingering { .. } => return conn.discard_input(&mut self.io),
                // Left or dropped: what it still sends is not chat any more.
                Phase::PeerDone | Phase::Failing | Phase::Delivering => return Ok(Next::Keep),
            }
            let n = match conn.stream.read(&mut self.io.read_buf) {
                Ok(0) => return self.member_leaves(token, false),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock && self.io.draining => {
                    return self.member_leaves(token, false); // shutdown, and nothing left to read
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(Next::Keep),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            // The same decoding as echo: `io.out` gets this member's lines as the others see them.
            conn.consume(n, &mut self.io);
            let too_long = conn.phase == Phase::Failing;
            let to_end = to_end || conn.peer_closed();
            if !self.io.out.is_empty() {
                let said = std::mem::take(&mut self.io.out);
                self.route(token.0, &said, true);
                self.io.out = said;
                self.io.out.clear();
            }
            if too_long || self.io.draining {
                return self.member_leaves(token, too_long);
            }
            if n < self.io.read_buf.len() && !to_end {
                return Ok(Next::Keep); // a short read drained the socket (see `nonblocking`)
            }
        }
        Ok(Next::ReadLater)
    }

    /// Member `token` stopped talking (end-of-file, shutdown, or a line over the limit): it
    /// leaves the room, gets what is queued for it (and the error reply), then closes.
    fn member_leaves(&mut self, token: Token, too_long: bool) -> io::Result<Next> {
        let Some(conn) = self.conns.get_mut(token.0) else { return Ok(Next::Keep) };
        let Some(member) = conn.member.as_mut() else { return Ok(Next::Keep) };
        let was_in_room = std::mem::replace(&mut member.in_room, false);
        let id = member.id;
        if too_long {
            let mut line = Vec::new();
            conn.session.refusal(&mut line);
            member.outbox.close_with(&line); // the phase is `Failing` already
        } else {
            member.outbox.close();
            conn.phase = Phase::PeerDone;
        }
        if !member.outbox.is_empty() {
            self.chat.deadlines.push_back((Instant::now() + DELIVERY_WAIT, token, conn.serial));
        }
        let next = write_outbox(conn, &self.registry);
        if was_in_room {
            let tell = !self.io.draining;
            self.announce_left(id, tell);
        }
        next
    }

    /// Write every member that was given output this turn: one `write` each, however many
    /// lines it got. Closing a member can give others a notice, hence the loop.
    pub(super) fn write_members(&mut self) {
        while !self.chat.dirty.is_empty() {
            // Whoever is made dirty while this batch is written goes into the (empty) other list.
            let mut batch = std::mem::take(&mut self.chat.writing);
            std::mem::swap(&mut batch, &mut self.chat.dirty);
            for (token, serial) in batch.drain(..) {
                let Some(conn) = self.conns.get_mut(token.0).filter(|c| c.serial == serial) else { continue };
                if let Some(member) = conn.member.as_mut() {
                    member.dirty = false;
                }
                let next = write_outbox(conn, &self.registry);
                self.apply(token, next);
            }
            self.chat.writing = batch;
        }
    }

    /// Close the members that did not read their last lines in time.
    pub(super) fn expire_chat_deadlines(&mut self, now: Instant) {
        while let Some(&(at, token, serial)) = self.chat.deadlines.front() {
            if at > now {
                break;
            }
            self.chat.deadlines.pop_front();
            self.close_if_current(token, serial);
        }
    }
}

/// Write as much of a member's pending output as the socket takes; ask for `WRITABLE` while
/// some remains. Once a member that is leaving has nothing left, close as echo would.
fn write_outbox<S: Store>(conn: &mut Conn<S>, registry: &mio::Registry) -> io::Result<Next> {
    let Some(member) = conn.member.as_mut() else { return Ok(Next::Keep) };
    while !member.outbox.is_empty() {
        match conn.stream.write(member.outbox.pending()) {
            Ok(0) => break,
            Ok(n) => member.outbox.advance(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let pending = !member.outbox.is_empty();
    conn.set_write_interest(registry, pending)?;
    if pending || conn.phase == Phase::Open {
        return Ok(Next::Keep);
    }
    conn.after_output(registry)
}
