//! Setting up the ring, finding out whether this machine allows it at all, and the buffer ring
//! that receives land in.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::{IoUring, opcode};

/// Submission queue entries. A full queue is simply submitted early (or, if the kernel will
/// not take it yet, the rest waits for the next turn), so this bounds the batch, not the
/// number of connections. The completion queue is twice as long, and the kernel
/// keeps completions that overflow it (`IORING_FEAT_NODROP`) rather than drop them.
pub const ENTRIES: u32 = 4096;

/// The buffer group of [`BufRing`], named in every receive.
pub const GROUP: u16 = 0;

/// The ring the loop drives, set up the way a one-thread server should: only this thread
/// submits (`SINGLE_ISSUER`), and the kernel finishes completions only when the loop asks for
/// them (`DEFER_TASKRUN`) instead of interrupting it whenever a packet lands. Kernels before
/// 6.1 lack those two; they get a plain ring.
pub fn setup() -> io::Result<IoUring> {
    match IoUring::builder().setup_single_issuer().setup_defer_taskrun().build(ENTRIES) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::new(ENTRIES),
        ring => ring,
    }
}

/// Why this machine cannot run the model, or `Ok` if it can: a ring can be set up, it has the
/// operations and features the loop uses, and it accepts a buffer ring. The reasons name what
/// the administrator would change.
///
/// The trial ring lives on a thread of its own. Tearing a ring down leaves the kernel work to
/// finish on the thread that made it, and the kernel gets that thread's attention the way a
/// signal would: its next socket read with a timeout fails with `EINTR`. The thread that
/// asked (a test client, say) should not pay for the question.
pub fn probe() -> Result<(), String> {
    std::thread::scope(|scope| scope.spawn(probe_on_this_thread).join())
        .unwrap_or_else(|_| Err("the io_uring probe panicked".into()))
}

fn probe_on_this_thread() -> Result<(), String> {
    let ring = IoUring::new(8).map_err(|e| setup_refused(&e))?;
    if !ring.params().is_feature_ext_arg() {
        return Err("this kernel's io_uring cannot wait with a timeout (IORING_FEAT_EXT_ARG, Linux 5.11)".into());
    }
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| format!("cannot probe io_uring's operations: {e}"))?;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::Recv::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::AsyncCancel::CODE, "cancel"),
        (opcode::Read::CODE, "read"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("this kernel's io_uring has no {name} operation"));
        }
    }
    let mut ring = ring;
    let bufs = BufRing::new(&ring, 2, 64)
        .map_err(|e| format!("this kernel cannot register a buffer ring ({e}); io-uring needs Linux 6.0 or later"))?;
    let received = multishot_receive_works(&mut ring);
    // The trial receive is over (it completed or failed): the buffers may go, after the ring.
    drop(ring);
    drop(bufs);
    received
}

/// Whether a multishot receive (Linux 6.0; older kernels reject it with `EINVAL`, though the
/// probe lists the same opcode) delivers one byte written to a socket pair.
fn multishot_receive_works(ring: &mut IoUring) -> Result<(), String> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let (mut ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| format!("cannot make a socket pair to probe with: {e}"))?;
    let recv = opcode::RecvMulti::new(io_uring::types::Fd(theirs.as_raw_fd()), GROUP).build().user_data(1);
    ours.write_all(b"x").map_err(|e| format!("cannot write to the probe's socket pair: {e}"))?;
    // SAFETY: the receive names a buffer group, not a buffer of ours.
    unsafe { ring.submission().push(&recv) }.map_err(|_| "the probe's submission queue is full".to_string())?;
    let ts = io_uring::types::Timespec::new().sec(1);
    let args = io_uring::types::SubmitArgs::new().timespec(&ts);
    ring.submitter().submit_with_args(1, &args).map_err(|e| format!("io_uring_enter failed while probing: {e}"))?;
    let result = ring.completion().next().map(|c| c.result());
    // Ending the receive before the socket pair goes: shutting it makes the receive complete.
    let _ = theirs.shutdown(std::net::Shutdown::Both);
    let _ = ring.submitter().submit_with_args(1, &args);
    match result {
        Some(1) => Ok(()),
        Some(e) if e == -libc::EINVAL => {
            Err("this kernel's io_uring has no multishot receive; io-uring needs Linux 6.0 or later".into())
        }
        Some(e) => Err(format!("a trial multishot receive failed: {}", io::Error::from_raw_os_error(-e))),
        None => Err("a trial multishot receive did not complete within 1 s".into()),
    }
}

/// One line for each way `io_uring_setup` is refused.
fn setup_refused(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has no io_uring (added in Linux 5.1, or left out of this build)".into(),
        Some(libc::EPERM) => {
            let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").unwrap_or_default();
            match sysctl.trim() {
                "2" => "io_uring is switched off (sysctl kernel.io_uring_disabled = 2)".into(),
                "1" => "io_uring is limited to one group, and this user is not in it (sysctl kernel.io_uring_disabled = 1, kernel.io_uring_group)".into(),
                _ => "io_uring_setup was refused (EPERM): a seccomp profile, as container runtimes install, forbids it".into(),
            }
        }
        Some(libc::ENOMEM) => "io_uring_setup ran out of locked memory (raise `ulimit -l`)".into(),
        _ => format!("io_uring_setup failed: {e}"),
    }
}

/// Buffers the kernel picks from when a receive completes (a "provided buffer ring", Linux
/// 5.19). A receive names this group instead of a buffer, so a connection waiting for its next
/// request holds no buffer at all: the kernel takes one only when bytes arrive, and says which
/// in the completion. The loop hands it back once it has copied out what it needs.
///
/// The ring is an array of `{addr, len, bid}` entries that the kernel reads from its head and
/// this code appends to at its tail, all in memory both share: returning a buffer is two
/// stores, no system call.
pub struct BufRing {
    /// The entries, page-aligned as the kernel requires.
    entries: Mapping,
    /// The buffers themselves, `count × size` bytes. Anonymous memory: a page becomes resident
    /// only once the kernel first writes into it.
    memory: Mapping,
    count: u16,
    size: usize,
    /// Our copy of the tail; the kernel sees it when it is published.
    tail: u16,
}

impl BufRing {
    /// `count` buffers (a power of two) of `size` bytes each, registered with `ring` as
    /// [`GROUP`], all handed to the kernel.
    pub fn new(ring: &IoUring, count: u16, size: usize) -> io::Result<BufRing> {
        assert!(count.is_power_of_two(), "a buffer ring's size is a power of two");
        let entries = Mapping::new(usize::from(count) * std::mem::size_of::<BufRingEntry>())?;
        let memory = Mapping::new(usize::from(count) * size)?;
        let mut bufs = BufRing { entries, memory, count, size, tail: 0 };
        // SAFETY: both mappings live as long as `bufs`, which the loop drops only after the
        // ring (see `Loop::drop`'s field order), so the kernel never sees them unmapped.
        unsafe { ring.submitter().register_buf_ring_with_flags(bufs.entries.addr() as u64, count, GROUP, 0)? };
        for bid in 0..count {
            bufs.push(bid);
        }
        bufs.publish();
        Ok(bufs)
    }

    /// The first `len` bytes of buffer `bid`, which a completion just handed us.
    pub fn filled(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid % self.count) * self.size;
        // SAFETY: the range lies inside `memory`; the kernel finished writing it before posting
        // the completion, and will not write it again until `give_back`.
        unsafe { std::slice::from_raw_parts(self.memory.addr().add(start), len.min(self.size)) }
    }

    /// Return buffer `bid` to the kernel.
    pub fn give_back(&mut self, bid: u16) {
        self.push(bid);
        self.publish();
    }

    fn push(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.count - 1));
        // SAFETY: `slot` < count, the entries are ours to write until the tail says otherwise.
        let entry = unsafe { &mut *self.entries.addr().cast::<BufRingEntry>().add(slot) };
        let bid = bid % self.count;
        // SAFETY: in bounds of `memory`.
        entry.set_addr(unsafe { self.memory.addr().add(usize::from(bid) * self.size) } as u64);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Let the kernel see every entry pushed so far: a release store of the tail, so the
    /// entries' contents are visible before the tail that covers them.
    fn publish(&self) {
        // SAFETY: the tail field lives in the first entry of our mapping, and only we write it.
        let tail = unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.entries.addr().cast()).cast_mut()) };
        tail.store(self.tail, Ordering::Release);
    }
}

/// Anonymous, page-aligned memory from `mmap`, unmapped on drop.
struct Mapping {
    addr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { addr: addr.cast(), len })
    }

    fn addr(&self) -> *mut u8 {
        self.addr
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping we made, unmapped once.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}
