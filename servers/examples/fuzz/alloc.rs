//! A counting global allocator, for the fuzz binary and its CI test only: how many bytes the
//! code under test holds at its peak, counted per thread and only while [`measure`] runs.
//!
//! The harness wraps each `decode` call in [`measure`], so its own buffers (the input, the
//! transcripts) are never counted, and each thread counts only its own decoder, so parsers can
//! run side by side. A `realloc` is counted as "allocate the new block, then free the old one",
//! which is the most it can hold at once, and makes the figure the same on every run.
//!
//! A single request over [`HUGE`] while measuring is refused (the process then aborts with
//! Rust's "memory allocation failed"), after writing which input asked for it: a decoder that
//! trusts a 4 GiB length header fails here with its reproducer, not with the machine's memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Install in a binary with `#[global_allocator] static A: Counting = Counting;`.
pub struct Counting;

/// A request this large while measuring is a decoder trusting a length it was sent.
pub const HUGE: usize = 256 << 20;

#[derive(Clone, Copy)]
struct Meter {
    on: bool,
    /// Bytes allocated minus bytes freed while measuring, since the last [`reset`].
    live: isize,
    /// The highest `live` since the last [`reset`].
    peak: isize,
}

/// What the current thread is fuzzing, for the message before a refused huge allocation.
const LABEL_LEN: usize = 160;

thread_local! {
    // `const` initialisers and no destructors: the allocator can read these without allocating,
    // at any point of a thread's life.
    static METER: Cell<Meter> = const { Cell::new(Meter { on: false, live: 0, peak: 0 }) };
    static LABEL: Cell<([u8; LABEL_LEN], usize)> = const { Cell::new(([0; LABEL_LEN], 0)) };
}

fn grew(size: usize) -> bool {
    METER
        .try_with(|m| {
            let mut meter = m.get();
            if meter.on {
                if size > HUGE {
                    refuse(size);
                    return false;
                }
                meter.live += size as isize;
                meter.peak = meter.peak.max(meter.live);
                m.set(meter);
            }
            true
        })
        .unwrap_or(true)
}

fn shrank(size: usize) {
    let _ = METER.try_with(|m| {
        let mut meter = m.get();
        if meter.on {
            meter.live -= size as isize;
            m.set(meter);
        }
    });
}

/// Say which input asked for `size` bytes, with one `write(2)` and no allocation.
fn refuse(size: usize) {
    let mut msg = [0u8; LABEL_LEN + 96];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(msg.len() - len);
        msg[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"\nfuzz: the decoder asked for ");
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = size;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put(&digits[at..]);
    put(b" bytes at once; ");
    let (label, label_len) = LABEL.with(Cell::get);
    put(&label[..label_len]);
    put(b"\n");
    // SAFETY: writes `len` initialised bytes of `msg` to stderr.
    unsafe { libc::write(2, msg.as_ptr().cast(), len) };
}

// SAFETY: every call goes straight to the system allocator; only counters are added, and a
// refused request returns null, which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !grew(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !grew(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !grew(new_size) {
            return std::ptr::null_mut();
        }
        shrank(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Start counting from zero on this thread.
pub fn reset() {
    METER.with(|m| m.set(Meter { on: false, live: 0, peak: 0 }));
}

/// The most bytes held at once while measuring since the last [`reset`].
pub fn peak() -> usize {
    METER.with(|m| m.get().peak.max(0) as usize)
}

/// Run `f`, counting what it allocates and frees on this thread (even if it panics).
#[inline]
pub fn measure<R>(f: impl FnOnce() -> R) -> R {
    struct Off;
    impl Drop for Off {
        fn drop(&mut self) {
            METER.with(|m| m.set(Meter { on: false, ..m.get() }));
        }
    }
    METER.with(|m| m.set(Meter { on: true, ..m.get() }));
    let _off = Off;
    f()
}

/// Name the input this thread is about to decode, for the message about a refused allocation
/// (formatted into a buffer on the stack: labelling every input allocates nothing).
pub fn label(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut buf = [0u8; LABEL_LEN];
    let mut cursor = &mut buf[..];
    let _ = cursor.write_fmt(text); // a label too long is cut short
    let n = LABEL_LEN - cursor.len();
    LABEL.with(|l| l.set((buf, n)));
}

/// Whether [`Counting`] is this process's allocator (if not, every peak would read 0).
pub fn installed() -> bool {
    let before = METER.with(Cell::get);
    reset();
    measure(|| drop(std::hint::black_box(Box::new([0u8; 64]))));
    let counted = peak() >= 64;
    METER.with(|m| m.set(before));
    counted
}
