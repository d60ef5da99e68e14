//! The loop itself: submit what the last turn queued and wait for completions in one system
//! call, hand each completion to its connection by `user_data`, end the turn.
//!
//! A completion's `user_data` is the one number the kernel carries from submission to
//! completion: here, a connection's slab key and which of its operations finished. A slab slot
//! is reused only after every operation of its old connection has completed, so a completion
//! can never reach the wrong connection. A cancellation names its target by the same number,
//! and is only ever submitted while that target is in flight (before the slot can be reused),
//! so it cannot reach a newer connection either.

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use slab::Slab;

use super::conn::{Conn, Room};
use super::ring::{self, BufRing};
use crate::config::ServerConfig;
use crate::buffer::recycle;
use crate::conn::admission::refuse;
use crate::conn::deadline::Sweep;
use crate::conn::nonblocking::{BufferPool, Phase, serve_input};
use crate::net::{AcceptFailure, DELIVERY_WAIT, FdReserve, LINGER_BYTES, LINGER_TIME, Shed, unacknowledged};
use crate::proto::Proto;
use crate::session::Served;
use crate::shutdown::Shutdown;
use crate::store::LocalStore;

/// `user_data` of the listener's multishot accept.
const ACCEPT: u64 = u64::MAX;
/// `user_data` of the read on the shutdown eventfd.
const WAKE: u64 = u64::MAX - 1;
/// `user_data` of cancellations, whose own results say nothing the loop needs.
const CANCEL: u64 = u64::MAX - 2;
/// `user_data` of a poll on the listener, armed instead of the accept while descriptors ran out.
const ARRIVAL: u64 = u64::MAX - 3;

/// Which operation of a connection completed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Recv,
    Send,
}

fn tag(key: usize, op: Op) -> u64 {
    (key as u64) << 1 | u64::from(op == Op::Send)
}

fn untag(data: u64) -> (usize, Op) {
    ((data >> 1) as usize, if data & 1 == 0 { Op::Recv } else { Op::Send })
}

/// The buffer ring: 256 buffers of 16 KiB (4 MiB, resident once each has been used once). A
/// request longer than a buffer arrives in several receives and is assembled in the
/// connection's `pending_in`, as in the reactor.
const BUFFERS: u16 = 256;
const BUFFER_SIZE: usize = 16 * 1024;

/// How often closing connections are checked for their last bytes being acknowledged.
const RECHECK: Duration = Duration::from_millis(1);
/// How soon an accept that failed for lack of resources is tried again.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);
/// At exit, how long to wait for the kernel to hand back operations still in flight.
const RETURN_WAIT: Duration = Duration::from_secs(1);

/// Everything the loop owns. The ring is declared (and so dropped) before the buffers whose
/// addresses it was given, but closing a ring does not wait for the kernel: `run` collects
/// every operation's completion first (`take_back_everything`).
pub struct Loop {
    ring: IoUring,
    bufs: BufRing,
    pub(super) conns: Slab<Conn<Rc<LocalStore>>>,
    /// `None` once shutdown began.
    listener: Option<TcpListener>,
    accept_armed: bool,
    /// Out of descriptors, nobody waiting: a poll for the next arrival is in flight, and
    /// accepting resumes when it completes. An accept armed now would fail at once, again and
    /// again, since Linux checks for a free descriptor before it looks at the queue.
    arrival_armed: bool,
    /// Written by the shutdown trigger from another thread; a read on it is always in flight.
    wake_fd: Arc<OwnedFd>,
    /// Where that read lands; boxed so its address stays put while the kernel holds it.
    wake_buf: Box<[u8; 8]>,
    /// That read is in flight.
    wake_armed: bool,
    pub(super) pool: BufferPool,
    /// Replies produced by one completion, before they join a connection's output.
    pub(super) out: Vec<u8>,
    store: Rc<LocalStore>,
    config: ServerConfig,
    next_serial: u64,
    reserve: FdReserve,
    accept_retry_at: Option<Instant>,
    shutdown_deadline: Option<Instant>,
    pub(super) draining: bool,
    /// Connections discarding input after an error reply, oldest first.
    lingering: VecDeque<(Instant, usize, u64)>,
    /// Closing connections waiting for the peer's acknowledgement, with their deadlines.
    delivering: Vec<(Instant, usize, u64)>,
    /// Connections whose receive found no free buffer: armed again at the end of the turn,
    /// when every buffer of this turn is back in the ring.
    starved: Vec<(usize, u64)>,
    pub(super) room: Room,
    /// One turn's completions, copied out of the queue so handlers may submit.
    completions: Vec<(u64, i32, u32)>,
    /// Submissions the kernel could not take yet (see `push`).
    waiting: VecDeque<squeue::Entry>,
    /// When to look next for connections whose request, idle or write timeout ran out (never
    /// for chat), as `conn::table` does.
    sweep: Sweep,
}

impl Loop {
    pub fn new(listener: TcpListener, config: &ServerConfig, shutdown: &Shutdown) -> io::Result<Loop> {
        let ring = ring::setup()?;
        let bufs = BufRing::new(&ring, BUFFERS, BUFFER_SIZE)?;
        // The kernel may accept on a non-blocking listener just as well; shedding connections
        // when descriptors run out (`FdReserve`) needs it non-blocking.
        listener.set_nonblocking(true)?;
        // SAFETY: eventfd returns a new descriptor we own, or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        let wake_fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let store = config.local_store();
        let mut this = Loop {
            ring,
            bufs,
            conns: Slab::new(),
            listener: Some(listener),
            accept_armed: false,
            arrival_armed: false,
            wake_fd: Arc::clone(&wake_fd),
            wake_buf: Box::new([0; 8]),
            wake_armed: false,
            pool: BufferPool::default(),
            out: Vec::new(),
            store,
            config: config.clone(),
            next_serial: 0,
            reserve: FdReserve::new(),
            accept_retry_at: None,
            shutdown_deadline: None,
            draining: false,
            lingering: VecDeque::new(),
            delivering: Vec::new(),
            starved: Vec::new(),
            room: Room::new(config.chat_queue),
            completions: Vec::with_capacity(1024),
            waiting: VecDeque::new(),
            sweep: Sweep::new(config.connection_timeouts()),
        };
        this.arm_wake()?;
        this.arm_accept()?;
        shutdown.on_trigger(move || {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live array to an eventfd we keep open.
            unsafe { libc::write(wake_fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        });
        Ok(this)
    }

    /// Serve until shutdown has begun and every connection has finished (or the grace period
    /// ran out).
    pub fn run(mut self) -> io::Result<()> {
        let served = self.serve();
        // Whether the loop ended well or not, the kernel gives back every buffer before the
        // memory goes.
        if !self.take_back_everything() {
            // Memory the kernel may still write into must never be reused: leak it all (and
            // the sockets with it) rather than free it. Not seen in practice; said if it is.
            crate::log::line(format_args!("io_uring operations still in flight at exit; their memory is leaked"));
            std::mem::forget(self);
        }
        served
    }

    fn serve(&mut self) -> io::Result<()> {
        loop {
            self.enter(self.timeout())?;
            self.completions.clear();
            self.completions.extend(self.ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
            for i in 0..self.completions.len() {
                let (data, result, flags) = self.completions[i];
                match data {
                    ACCEPT => self.on_accept(result, flags)?,
                    ARRIVAL => {
                        self.arrival_armed = false;
                        self.arm_accept()?;
                    }
                    WAKE => {
                        self.wake_armed = false;
                        self.begin_shutdown();
                    }
                    CANCEL => {}
                    data => {
                        let (key, op) = untag(data);
                        match op {
                            Op::Recv => self.on_recv(key, result, flags)?,
                            Op::Send => self.on_send(key, result)?,
                        }
                        if self.sweep.is_on() {
                            if let Some(conn) = self.conns.get_mut(key) {
                                conn.tick(Instant::now());
                            }
                        }
                    }
                }
            }
            self.end_turn()?;
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() {
                    break;
                }
                if Instant::now() >= deadline {
                    crate::log::line(format_args!(
                        "grace period over: closed {} connection(s) still open",
                        self.conns.len()
                    ));
                    break;
                }
            }
        }
        Ok(())
    }

    /// One `io_uring_enter`: submit every queued operation and wait for at least one
    /// completion, or until `timeout`.
    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.flush_waiting();
        let timeout = if self.waiting.is_empty() { timeout } else { Some(Duration::ZERO) };
        let entered = match timeout {
            None => self.ring.submit_and_wait(1),
            Some(timeout) => {
                let ts = types::Timespec::from(timeout);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match entered {
            Ok(_) => Ok(()),
            // Timed out, interrupted, or the completion queue is full: go and reap.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// How long the next wait may last: until the earliest deadline, or for ever.
    fn timeout(&self) -> Option<Duration> {
        let recheck = (!self.delivering.is_empty()).then(|| Instant::now() + RECHECK);
        let earliest = [
            self.shutdown_deadline,
            self.accept_retry_at,
            self.lingering.front().map(|&(at, ..)| at),
            self.room.next_deadline(),
            recheck,
            self.sweep.next().filter(|_| !self.conns.is_empty()),
        ]
        .into_iter()
        .flatten()
        .min()?;
        Some(earliest.saturating_duration_since(Instant::now()))
    }

    /// Queue one submission; if the queue is full, submit what it holds first. If the kernel
    /// will not take a batch now (its completion queue is overflowing), the entry waits in
    /// `waiting` for the next turn: a connection's operation is never dropped, and no one
    /// connection's bad moment becomes the server's error.
    ///
    /// # Safety
    /// Every buffer `entry` points to must stay valid and untouched until its completion.
    unsafe fn push(&mut self, entry: squeue::Entry) {
        if self.waiting.is_empty() {
            // SAFETY: passed on from the caller (twice).
            if unsafe { self.ring.submission().push(&entry) }.is_ok()
                || (self.ring.submit().is_ok() && unsafe { self.ring.submission().push(&entry) }.is_ok())
            {
                return;
            }
        }
        self.waiting.push_back(entry);
    }

    /// Move the submissions that waited into the queue, oldest first, as far as they fit.
    fn flush_waiting(&mut self) {
        while let Some(entry) = self.waiting.front() {
            // SAFETY: queued by `push`, whose callers vouched for the entry's buffers.
            if unsafe { self.ring.submission().push(entry) }.is_err() {
                return;
            }
            self.waiting.pop_front();
        }
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let read = opcode::Read::new(types::Fd(self.wake_fd.as_raw_fd()), self.wake_buf.as_mut_ptr(), 8);
        // SAFETY: `wake_buf` is boxed and owned by the loop, which outlives the ring's use of it.
        unsafe { self.push(read.build().user_data(WAKE)) };
        self.wake_armed = true;
        Ok(())
    }

    /// One multishot accept: every new connection posts a completion, until it is cancelled or
    /// fails.
    fn arm_accept(&mut self) -> io::Result<()> {
        let Some(listener) = &self.listener else { return Ok(()) };
        if self.accept_armed || self.arrival_armed {
            return Ok(());
        }
        let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd())).flags(libc::SOCK_CLOEXEC);
        self.accept_armed = true;
        // SAFETY: a multishot accept points to no buffer.
        unsafe { self.push(accept.build().user_data(ACCEPT)) };
        Ok(())
    }

    fn on_accept(&mut self, result: i32, flags: u32) -> io::Result<()> {
        if !cqueue::more(flags) {
            self.accept_armed = false; // the multishot ended: arm it again below
        }
        if result >= 0 {
            // SAFETY: a successful accept returns a new descriptor that we now own.
            let socket = unsafe { TcpStream::from_raw_fd(result) };
            if !self.draining {
                // See `blocking_io::serve_connection` for why Nagle is off.
                let _ = socket.set_nodelay(true);
                self.insert(socket)?;
            }
        } else if result != -libc::ECANCELED {
            let err = io::Error::from_raw_os_error(-result);
            match AcceptFailure::of(&err) {
                AcceptFailure::OneConnection => {}
                AcceptFailure::OutOfFds => self.shed_waiting()?,
                AcceptFailure::Resources => self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY),
                AcceptFailure::Fatal => return Err(err),
            }
        }
        if self.accept_retry_at.is_none() {
            self.arm_accept()?;
        }
        Ok(())
    }

    /// Out of descriptors: accept each waiting connection with the reserve descriptor and
    /// close it (see `crate::net::FdReserve`), then accept again when a new one arrives.
    fn shed_waiting(&mut self) -> io::Result<()> {
        let Some(listener) = &self.listener else { return Ok(()) };
        loop {
            match self.reserve.shed(|| listener.accept()) {
                Shed::Closed => {}
                Shed::NothingWaiting => break,
                Shed::NoReserve => {
                    self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                    return Ok(());
                }
            }
        }
        if self.accept_armed {
            return Ok(()); // the multishot is still on: it will report the next arrival itself
        }
        let poll = opcode::PollAdd::new(types::Fd(listener.as_raw_fd()), libc::POLLIN as u32);
        self.arrival_armed = true;
        // SAFETY: a poll points to no buffer.
        unsafe { self.push(poll.build().user_data(ARRIVAL)) };
        Ok(())
    }

    fn insert(&mut self, socket: TcpStream) -> io::Result<()> {
        if self.conns.len() >= self.config.max_conns {
            refuse(&socket, self.config.proto); // `--max-conns`; dropping it closes it
            return Ok(());
        }
        self.next_serial += 1;
        let session = self.config.session(Rc::clone(&self.store)).taking_turns();
        let key = self.conns.insert(Conn::new(socket, session, self.next_serial));
        if self.config.proto == Proto::Chat {
            self.join(key);
        }
        self.arm_recv(key)
    }

    /// Ask the kernel for the connection's bytes, into whichever buffer of the group it picks
    /// when they arrive. A multishot receive: one submission for the life of the connection,
    /// each arrival a completion of its own (flagged "more to come"), until end-of-file, an
    /// error, a cancellation, or no free buffer ends it.
    pub(super) fn arm_recv(&mut self, key: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        conn.recv_paused = false;
        if conn.recv_armed || conn.closing {
            return Ok(());
        }
        conn.recv_armed = true;
        let recv = opcode::RecvMulti::new(types::Fd(conn.socket.as_raw_fd()), ring::GROUP);
        // SAFETY: the receive names a buffer group, not a buffer of ours.
        unsafe { self.push(recv.build().user_data(tag(key, Op::Recv))) };
        Ok(())
    }

    /// Stop receiving (back-pressure): cancel the multishot receive. Bytes that arrive before
    /// the cancellation lands are kept, unserved, for when the connection resumes.
    fn pause_recv(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        if conn.recv_paused {
            return;
        }
        conn.recv_paused = true;
        if conn.recv_armed {
            // SAFETY: a cancellation points to no buffer.
            unsafe { self.push(opcode::AsyncCancel::new(tag(key, Op::Recv)).build().user_data(CANCEL)) };
        }
    }

    fn on_recv(&mut self, key: usize, result: i32, flags: u32) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        let ended = !cqueue::more(flags);
        if ended {
            conn.recv_armed = false;
        }
        let buffer = cqueue::buffer_select(flags);
        let handled = if conn.closing {
            self.finish_close(key);
            Ok(())
        } else {
            self.on_recv_result(key, result, buffer, ended)
        };
        // Whatever the result, a buffer the kernel picked goes back to the ring, once, after
        // its bytes were served: a buffer lost here would be lost to every connection.
        if let Some(bid) = buffer {
            self.bufs.give_back(bid);
        }
        handled
    }

    fn on_recv_result(&mut self, key: usize, result: i32, buffer: Option<u16>, ended: bool) -> io::Result<()> {
        match result {
            n if n > 0 => {
                let Some(bid) = buffer else {
                    self.close(key);
                    return Ok(());
                };
                self.on_data(key, bid, n as usize)?;
                self.rearm_if_ended(key, ended)
            }
            0 => self.on_end_of_file(key),
            e if e == -libc::ENOBUFS => {
                // The ring was empty when bytes arrived: completions not yet collected hold its
                // buffers. They are all back by the end of this turn; try again then.
                if let Some(conn) = self.conns.get(key) {
                    self.starved.push((key, conn.serial));
                }
                Ok(())
            }
            e if e == -libc::EINTR || e == -libc::EAGAIN || e == -libc::ECANCELED => self.rearm_if_ended(key, ended),
            _ => {
                self.close(key); // a reset, or the like: that connection's business only
                Ok(())
            }
        }
    }

    /// A multishot receive ended while the connection still wants bytes (its buffer ran out,
    /// say, or it was cancelled for back-pressure that has since eased): submit a new one.
    fn rearm_if_ended(&mut self, key: usize, ended: bool) -> io::Result<()> {
        let wanted = self.conns.get(key).is_some_and(|c| {
            !c.closing && !c.recv_paused && matches!(c.phase, Phase::Open | Phase::Lingering { .. })
        });
        if ended && wanted { self.arm_recv(key) } else { Ok(()) }
    }

    /// `len` bytes arrived in buffer `bid`: serve them.
    fn on_data(&mut self, key: usize, bid: u16, len: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        let data = self.bufs.filled(bid, len);
        match &mut conn.phase {
            Phase::Open if conn.recv_paused => {
                // Arrived before the cancellation of a paused receive landed: keep it unserved.
                conn.pending_in.push(data, &mut self.pool);
                conn.backlog = true;
                return Ok(());
            }
            Phase::Open => {}
            Phase::Lingering { discarded } => {
                *discarded += len;
                if *discarded >= LINGER_BYTES {
                    self.close(key);
                }
                return Ok(());
            }
            // The conversation is over; what the peer still sends is not read.
            Phase::PeerDone | Phase::Failing | Phase::Delivering => return Ok(()),
        }
        let served = serve_input(&mut conn.session, &mut conn.pending_in, data, &mut self.out, &mut self.pool);
        conn.progress |= served.requests > 0;
        if conn.member.is_some() {
            return self.member_said(key, served.close);
        }
        self.after_serving(key, served)
    }

    /// The replies to what was just served are in `out`: queue them, and decide whether to
    /// receive again, serve more of what was received, or finish.
    fn after_serving(&mut self, key: usize, served: Served) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        conn.backlog = served.more;
        if served.close {
            conn.phase = Phase::Failing;
        } else if self.draining && !served.more {
            conn.phase = Phase::PeerDone; // shutdown: what was read is answered, stop here
        }
        self.queue_output(key)?;
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        if conn.phase != Phase::Open {
            return self.after_output(key);
        }
        if conn.backlog || conn.unsent_len() >= conn.session.max_output() {
            // Back-pressure, or the end of this connection's turn: nothing more is received,
            // and what was received but not served waits until the replies so far are sent
            // (`on_send` resumes). A turn that ends at its budget has made replies (every
            // request of these protocols gets one; chat has no budget), so a send is coming.
            debug_assert!(conn.outgoing.armed || conn.unsent_len() > 0 || !conn.backlog);
            self.pause_recv(key);
            return Ok(());
        }
        self.arm_recv(key)
    }

    /// Serve the requests a turn left unanswered at its budget.
    fn serve_backlog(&mut self, key: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        let served = serve_input(&mut conn.session, &mut conn.pending_in, &[], &mut self.out, &mut self.pool);
        conn.progress |= served.requests > 0;
        self.after_serving(key, served)
    }

    fn on_end_of_file(&mut self, key: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        if conn.member.is_some() {
            return self.member_leaves(key, false);
        }
        match conn.phase {
            Phase::Lingering { .. } => {
                self.close(key);
                Ok(())
            }
            // Paused with requests received and not yet answered (data and FIN can arrive in
            // one batch): those come first. Resuming receives again, and on a socket that has
            // seen FIN that receive ends at once, with nothing lost.
            Phase::Open if conn.backlog || conn.recv_paused => Ok(()),
            Phase::Open => {
                conn.phase = Phase::PeerDone;
                self.after_output(key)
            }
            _ => Ok(()),
        }
    }

    /// Move the replies in `out` behind whatever the connection is sending, and send.
    fn queue_output(&mut self, key: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        if self.out.is_empty() {
            return Ok(());
        }
        let behind = if conn.outgoing.armed { &mut conn.queued } else { &mut conn.outgoing.buf };
        if behind.capacity() == 0 {
            *behind = self.pool.take();
        }
        behind.extend_from_slice(&self.out);
        recycle(&mut self.out);
        self.arm_send(key)
    }

    /// Send the connection's unsent bytes, refilling the kernel's buffer from what queued
    /// behind it (or a member's outbox) once it is all sent. Nothing to send: nothing happens.
    pub(super) fn arm_send(&mut self, key: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        if conn.outgoing.armed || conn.closing {
            return Ok(());
        }
        let outgoing = &mut conn.outgoing;
        if outgoing.unsent().is_empty() {
            outgoing.buf.clear();
            outgoing.sent = 0;
            if !conn.queued.is_empty() {
                std::mem::swap(&mut outgoing.buf, &mut conn.queued);
            } else if let Some(member) = conn.member.as_mut() {
                member.outbox.take(&mut outgoing.buf);
            }
            if outgoing.buf.is_empty() {
                return Ok(());
            }
        }
        let unsent = outgoing.unsent();
        let send = opcode::Send::new(types::Fd(conn.socket.as_raw_fd()), unsent.as_ptr(), unsent.len() as u32)
            .flags(libc::MSG_NOSIGNAL);
        outgoing.armed = true;
        // SAFETY: `outgoing.buf` is neither touched nor dropped while `armed` (see `conn.rs`).
        unsafe { self.push(send.build().user_data(tag(key, Op::Send))) };
        Ok(())
    }

    fn on_send(&mut self, key: usize, result: i32) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        conn.outgoing.armed = false;
        if conn.closing {
            self.finish_close(key);
            return Ok(());
        }
        if result <= 0 {
            self.close(key); // the peer is gone (EPIPE, a reset)
            return Ok(());
        }
        conn.outgoing.sent += result as usize;
        conn.progress = true;
        self.arm_send(key)?;
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        if conn.outgoing.armed {
            return Ok(()); // the rest of a short send, or what queued behind it
        }
        // Everything is sent: the buffers go back to the pool until the next reply.
        self.pool.give(std::mem::take(&mut conn.outgoing.buf));
        conn.outgoing.sent = 0;
        if conn.recv_paused && conn.phase == Phase::Open {
            if conn.backlog {
                return self.serve_backlog(key);
            }
            self.arm_recv(key)?;
        }
        self.after_output(key)
    }

    /// Decide what follows once everything produced so far has been sent.
    pub(super) fn after_output(&mut self, key: usize) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(key) else { return Ok(()) };
        if conn.outgoing.armed || conn.unsent_len() > 0 || conn.closing {
            return Ok(()); // `on_send` comes back here
        }
        match conn.phase {
            Phase::Open | Phase::Lingering { .. } | Phase::Delivering => Ok(()),
            Phase::PeerDone => {
                // Close once the peer has acknowledged every reply, so a reset cannot destroy
                // them (see `crate::net::wait_until_delivered`).
                if unacknowledged(&conn.socket).map_or(true, |n| n == 0) {
                    self.close(key);
                } else {
                    conn.phase = Phase::Delivering;
                    self.delivering.push((Instant::now() + DELIVERY_WAIT, key, conn.serial));
                }
                Ok(())
            }
            Phase::Failing => {
                // The error reply is out: FIN after it, then discard what the peer still sends.
                let _ = conn.socket.shutdown(Direction::Write);
                conn.phase = Phase::Lingering { discarded: 0 };
                self.lingering.push_back((Instant::now() + LINGER_TIME, key, conn.serial));
                self.arm_recv(key)
            }
        }
    }

    /// Close connection `key`: cancel what it has in flight, and free it once nothing is.
    pub(super) fn close(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        if conn.closing {
            return;
        }
        conn.closing = true;
        let in_flight = [(conn.recv_armed, Op::Recv), (conn.outgoing.armed, Op::Send)];
        let left = conn.member.as_mut().filter(|m| m.in_room).map(|m| {
            m.in_room = false;
            m.id
        });
        for (armed, op) in in_flight {
            if armed {
                // SAFETY: a cancellation points to no buffer. If it cannot be queued, the
                // operation still completes when the socket is shut at exit.
                unsafe { self.push(opcode::AsyncCancel::new(tag(key, op)).build().user_data(CANCEL)) };
            }
        }
        if let Some(id) = left {
            // Closed while still in the room (a reset, a failed send): tell the others.
            let tell = !self.draining;
            self.announce_left(id, tell);
        }
        self.finish_close(key);
    }

    /// Free a closing connection once the kernel holds none of its buffers.
    fn finish_close(&mut self, key: usize) {
        if !self.conns.get(key).is_some_and(|c| c.closing && c.idle_in_kernel()) {
            return;
        }
        let mut conn = self.conns.remove(key);
        let _ = conn.socket.shutdown(Direction::Write);
        conn.release_buffers(&mut self.pool);
    }

    pub(super) fn close_if_current(&mut self, key: usize, serial: u64) {
        if self.conns.get(key).is_some_and(|c| c.serial == serial) {
            self.close(key);
        }
    }

    /// The end of a turn: write chat members, retry starved receives and accepts, and close
    /// whoever is due.
    fn end_turn(&mut self) -> io::Result<()> {
        self.write_members()?;
        for (key, serial) in std::mem::take(&mut self.starved) {
            if self.conns.get(key).is_some_and(|c| c.serial == serial) {
                self.rearm_if_ended(key, true)?; // unless it was paused meanwhile
            }
        }
        let now = Instant::now();
        if self.accept_retry_at.is_some_and(|at| at <= now) {
            self.accept_retry_at = None;
            self.arm_accept()?;
        }
        while let Some(&(at, key, serial)) = self.lingering.front() {
            if at > now {
                break;
            }
            self.lingering.pop_front();
            self.close_if_current(key, serial);
        }
        let mut i = 0;
        while i < self.delivering.len() {
            let (deadline, key, serial) = self.delivering[i];
            let done = match self.conns.get(key).filter(|c| c.serial == serial) {
                None => true,
                Some(conn) => now >= deadline || unacknowledged(&conn.socket).map_or(true, |n| n == 0),
            };
            if done {
                self.delivering.swap_remove(i);
                self.close_if_current(key, serial);
            } else {
                i += 1;
            }
        }
        self.expire_chat_deadlines(now);
        self.sweep_timeouts(now);
        Ok(())
    }

    /// Close every connection whose request, idle or write timeout ran out, if it is time to
    /// look.
    fn sweep_timeouts(&mut self, now: Instant) {
        let timed = self.conns.iter().filter(|(_, conn)| conn.timed()).map(|(key, conn)| (key, &conn.clock));
        for key in self.sweep.expired(now, timed) {
            self.close(key);
        }
    }

    /// Stop accepting, and tell every connection to finish: each answers what it receives
    /// next, sends its replies and closes, or is closed when the grace period ends.
    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(Instant::now() + self.config.grace);
        self.draining = true;
        for (armed, op) in [(self.accept_armed, ACCEPT), (self.arrival_armed, ARRIVAL)] {
            if armed {
                // SAFETY: a cancellation points to no buffer.
                unsafe { self.push(opcode::AsyncCancel::new(op).build().user_data(CANCEL)) };
            }
        }
        self.listener = None;
        for (_, conn) in self.conns.iter() {
            if conn.phase == Phase::Open {
                // A waiting receive completes at once, with what is queued or end-of-file, and
                // so does the next one of a connection paused now; `draining` then makes what
                // it reads the connection's last.
                // SAFETY: shutdown(2) on a socket we own.
                unsafe { libc::shutdown(conn.socket.as_raw_fd(), libc::SHUT_RD) };
            }
        }
    }

    /// Before the loop's memory goes: shut every socket still open, so each operation in
    /// flight completes, and collect those completions. Only then may the buffers they point
    /// to be freed; a kernel still holding them would write into whatever reuses the memory.
    /// True if every operation came back.
    fn take_back_everything(&mut self) -> bool {
        for (_, conn) in self.conns.iter() {
            // SAFETY: shutdown(2) on a socket we own.
            unsafe { libc::shutdown(conn.socket.as_raw_fd(), libc::SHUT_RDWR) };
        }
        for (armed, op) in [(self.accept_armed, ACCEPT), (self.arrival_armed, ARRIVAL), (self.wake_armed, WAKE)] {
            if armed {
                // SAFETY: a cancellation points to no buffer.
                unsafe { self.push(opcode::AsyncCancel::new(op).build().user_data(CANCEL)) };
            }
        }
        let give_up = Instant::now() + RETURN_WAIT;
        loop {
            let in_flight = self.accept_armed || self.arrival_armed || self.wake_armed || self.conns.iter().any(|(_, c)| !c.idle_in_kernel());
            if !in_flight {
                return true;
            }
            if Instant::now() >= give_up || self.enter(Some(Duration::from_millis(10))).is_err() {
                return false;
            }
            for completion in self.ring.completion() {
                match completion.user_data() {
                    ACCEPT if !cqueue::more(completion.flags()) => self.accept_armed = false,
                    ARRIVAL => self.arrival_armed = false,
                    WAKE => self.wake_armed = false,
                    ACCEPT | CANCEL => {}
                    data => {
                        let (key, op) = untag(data);
                        if let Some(conn) = self.conns.get_mut(key) {
                            match op {
                                // A multishot receive is done only with its last completion.
                                Op::Recv if !cqueue::more(completion.flags()) => conn.recv_armed = false,
                                Op::Recv => {}
                                Op::Send => conn.outgoing.armed = false,
                            }
                        }
                        if let Some(bid) = cqueue::buffer_select(completion.flags()) {
                            self.bufs.give_back(bid);
                        }
                    }
                }
            }
        }
    }
}
