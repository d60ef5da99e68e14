//! The runner: make input number `i` of a campaign from the seed, feed it to a fresh decoder
//! whole, then in random chunks, then one byte per read, exactly as a model does, and check the
//! decoder's contract at every call:
//!
//! - no panic (each input runs under `catch_unwind`);
//! - the same replies, request by request, and the same ending (open, last request, malformed),
//!   however the input is split;
//! - `Request`/`Last` consume at least one byte, no more than they were shown, and no more than
//!   `max_request_len`; `Incomplete` appends no output, and is never said over more than
//!   `max_request_len` bytes (a model's input buffer grows to that and no further, so a decoder
//!   that waits for more would make it grow without bound);
//! - a bounded number of calls (a call either consumes bytes or waits for more);
//! - bounded allocation: what the decoder (with its reply buffer and, for kv, the store) holds
//!   at its peak stays under [`allocation_bound`], which depends on `max_frame`, never on the
//!   input's length.
//!
//! A failure is shrunk to a small input that fails the same way, and reported with the command
//! that regenerates the original input.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fastrand::Rng;
use servers::proto::{Codec, Decoded, Proto, chat};
use servers::store::LocalStore;

use crate::{alloc, generate, mutate};

/// Inputs up to this length are also fed one byte per read.
pub const BYTEWISE_MAX: usize = 4096;

/// The kv store behind each fuzzed connection holds at most this many keys: few, so that a
/// stream of a few requests fills it (and gets `-OOM` replies), and what the store may hold is
/// a small part of the allocation bound.
pub const KV_KEYS: usize = 3;

/// The limits inputs are made for, most of them small so that the limit is reached often; the
/// last is the servers' default (64 KiB). (A kv limit under 6 bytes refuses `EXISTS` itself, so
/// kv rarely gets one.)
const MAX_FRAMES: [usize; 10] = [1, 2, 16, 16, 16, 100, 100, 1000, 4096, servers::proto::DEFAULT_MAX_FRAME];
const KV_MAX_FRAMES: [usize; 10] =
    [1, 8, 16, 16, 16, 100, 100, 1000, 4096, servers::proto::DEFAULT_MAX_FRAME];

/// A decoder under test, as a model sees it.
pub trait Decode {
    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Decoded;
    fn max_request_len(&self) -> usize;
}

/// Opens a decoder for one connection.
pub trait Subject: Sync {
    type Decoder: Decode;
    fn open(&self, proto: Proto, case: &Case) -> Self::Decoder;
}

/// The servers' own decoders: a [`Codec`] and, for kv, a [`LocalStore`] of its own.
pub struct Servers;

/// One connection of [`Servers`].
pub struct Connection {
    codec: Codec,
    store: LocalStore,
}

impl Subject for Servers {
    type Decoder = Connection;
    fn open(&self, proto: Proto, case: &Case) -> Connection {
        let mut codec = Codec::new(proto, case.max_frame);
        if let (Codec::Chat(c), Some(id)) = (&mut codec, case.member) {
            c.speak_as(id);
        }
        Connection { codec, store: LocalStore::new(servers::store::Capacity::keys(KV_KEYS)) }
    }
}

impl Decode for Connection {
    #[inline]
    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Decoded {
        self.codec.decode(input, out, &self.store)
    }
    fn max_request_len(&self) -> usize {
        self.codec.max_request_len()
    }
}

/// The longest single reply a decoder of `proto` writes for one request.
fn max_reply(proto: Proto, max_frame: usize) -> usize {
    match proto {
        // The line, or `ERR line longer than N bytes\n`.
        Proto::EchoLine => (max_frame + 1).max(64),
        Proto::EchoFrame => max_frame + 4,
        Proto::Chat => chat::MAX_PREFIX + max_frame + 1,
        // Static heads and `Hello, world!`.
        Proto::Http => 512,
        // A bulk string (`$N\r\n`, the bytes, `\r\n`), or an error quoting at most 2 × 128
        // bytes of the request.
        Proto::Kv => (max_frame + 32).max(1024),
    }
}

/// The most bytes a decoder of `proto` may hold at once while handling any one connection's
/// input, however long: its reply buffer (which may hold a reply and, while a `Vec` grows,
/// briefly twice that again: 3 × the longest reply), for kv the store (at most [`KV_KEYS`]
/// keys and values of at most `max_frame` bytes each, and a value being replaced), and 4 KiB
/// for the store's table and the rest. The decoders themselves promise to allocate nothing.
pub fn allocation_bound(proto: Proto, max_frame: usize) -> usize {
    let store = if proto == Proto::Kv { (2 * KV_KEYS + 1) * max_frame + 4096 } else { 0 };
    3 * max_reply(proto, max_frame) + store + 4096
}

/// Where an input came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Generated,
    Mutated,
}

/// One input and how it is fed.
#[derive(Clone, Debug)]
pub struct Case {
    pub input: Vec<u8>,
    pub max_frame: usize,
    /// Chat only: the member id the connection speaks as (`None`: not yet named, `?: `).
    pub member: Option<u64>,
    /// Where the chunked run cuts the input: ascending offsets strictly inside it.
    pub cuts: Vec<usize>,
    pub origin: Origin,
}

/// A well-mixed 64-bit hash (splitmix64's finaliser).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Input number `index` of the campaign `seed` for `proto`: the same three numbers always give
/// the same case, so any input can be regenerated alone.
pub fn make_case(proto: Proto, seed: u64, index: u64) -> Case {
    let salt = Proto::ALL.iter().position(|&p| p == proto).unwrap_or(0) as u64;
    let mut rng = Rng::with_seed(mix(mix(seed ^ mix(salt)).wrapping_add(index)));
    let max_frame = *generate::pick(&mut rng, if proto == Proto::Kv { &KV_MAX_FRAMES } else { &MAX_FRAMES });
    let origin = if rng.bool() { Origin::Generated } else { Origin::Mutated };
    let input = match origin {
        Origin::Generated => generate::stream(proto, &mut rng, max_frame),
        Origin::Mutated => mutate::input(proto, &mut rng, max_frame),
    };
    let member = match (proto, rng.usize(..4)) {
        (Proto::Chat, 0) => None,
        (Proto::Chat, 1) => Some(u64::MAX),
        (Proto::Chat, _) => Some(rng.u64(..1000)),
        _ => None,
    };
    let cuts = random_cuts(&mut rng, input.len());
    Case { input, max_frame, member, cuts, origin }
}

/// Where to split an input of `len` bytes: a few random places, every `k` bytes, or chunks of
/// random small sizes (the last two only for inputs up to 64 KiB).
fn random_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    if len < 2 {
        return Vec::new();
    }
    let mut cuts = Vec::new();
    match rng.usize(..3) {
        1 if len <= 1 << 16 => {
            let stride = rng.usize(1..=64);
            cuts.extend((stride..len).step_by(stride));
        }
        2 if len <= 1 << 16 => {
            let largest = 1 << rng.usize(..=12);
            let mut at = rng.usize(1..=largest);
            while at < len {
                cuts.push(at);
                at += rng.usize(1..=largest);
            }
        }
        _ => {
            for _ in 0..rng.usize(1..=16) {
                cuts.push(rng.usize(1..len));
            }
            cuts.sort_unstable();
            cuts.dedup();
        }
    }
    cuts
}

/// How a run delivers the input.
#[derive(Clone, Copy, Debug)]
enum Feed<'a> {
    Whole,
    Cuts(&'a [usize]),
    Bytes,
}

impl Feed<'_> {
    fn chunks(self, len: usize) -> usize {
        match self {
            Feed::Whole => 1,
            Feed::Cuts(cuts) => cuts.len() + 1,
            Feed::Bytes => len,
        }
    }

    /// Where chunk `i` ends.
    fn end(self, i: usize, len: usize) -> usize {
        match self {
            Feed::Whole => len,
            Feed::Cuts(cuts) => cuts.get(i).copied().unwrap_or(len).min(len),
            Feed::Bytes => i + 1,
        }
    }

    fn describe(self) -> String {
        match self {
            Feed::Whole => "whole".into(),
            Feed::Cuts(cuts) => format!("in {} chunks", cuts.len() + 1),
            Feed::Bytes => "one byte per read".into(),
        }
    }
}

/// How a conversation ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum End {
    /// Input ran out (any unconsumed bytes are a partial request).
    #[default]
    Open,
    /// `Last`: the protocol ended the conversation.
    Last,
    Malformed,
}

/// Everything one run produced.
#[derive(Debug, Default)]
pub struct Transcript {
    /// Every reply, in order.
    out: Vec<u8>,
    /// After each request: where it ended in the input, and in `out`.
    requests: Vec<(usize, usize)>,
    end: End,
}

impl Transcript {
    fn clear(&mut self) {
        self.out.clear();
        self.requests.clear();
        self.end = End::Open;
    }
}

/// Buffers reused from one input to the next.
#[derive(Default)]
pub struct Scratch {
    whole: Transcript,
    split: Transcript,
    pending: Vec<u8>,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The decoder panicked: the panic's message and place.
    Panic(String),
    /// A call broke the decoder's contract (see the module documentation).
    Contract(String),
    /// The input split differently gave different replies or a different ending.
    Mismatch(String),
    /// The decoder held more than the bound at once.
    Allocation { peak: usize, bound: usize, feed: String },
}

impl Failure {
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Panic(_) => "panic",
            Failure::Contract(_) => "contract broken",
            Failure::Mismatch(_) => "whole and split differ",
            Failure::Allocation { .. } => "allocation over the bound",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Panic(msg) | Failure::Contract(msg) | Failure::Mismatch(msg) => {
                write!(f, "{}: {msg}", self.kind())
            }
            Failure::Allocation { peak, bound, feed } => {
                write!(f, "{}: held {peak} bytes at once (fed {feed}), bound {bound}", self.kind())
            }
        }
    }
}

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Run `f`, turning a panic into a [`Failure::Panic`] with its message, printed by nobody.
fn guarded<R>(f: impl FnOnce() -> Result<R, Failure>) -> Result<R, Failure> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                // One line: `panicked at file:line:col: message`.
                PANIC.with(|p| *p.borrow_mut() = Some(info.to_string().replace('\n', " ")));
            } else {
                previous(info);
            }
        }));
    });
    CATCHING.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(false));
    result.unwrap_or_else(|_| {
        let msg = PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "(no message)".into());
        Err(Failure::Panic(msg))
    })
}

/// Feed `input` to a fresh decoder as `feed` says, the way a model does: append what arrived,
/// decode until `Incomplete`, drop what was consumed. Returns the peak allocation.
fn run<D: Decode>(
    mut decoder: D,
    input: &[u8],
    feed: Feed<'_>,
    t: &mut Transcript,
    pending: &mut Vec<u8>,
) -> Result<usize, Failure> {
    t.clear();
    pending.clear();
    let mut out = Vec::new(); // fresh, so that its growth is counted
    let max_request = decoder.max_request_len();
    let chunks = feed.chunks(input.len());
    let call_limit = input.len() + chunks + 1;
    let (mut calls, mut fed, mut done) = (0, 0, 0);
    alloc::reset();
    'feed: for i in 0..chunks {
        let end = feed.end(i, input.len());
        pending.extend_from_slice(&input[fed..end]);
        fed = end;
        let mut at = 0;
        loop {
            calls += 1;
            if calls > call_limit {
                return Err(Failure::Contract(format!(
                    "no progress: {calls} decode calls for {} bytes in {chunks} chunks",
                    input.len()
                )));
            }
            let rest = &pending[at..];
            let decoded = alloc::measure(|| decoder.decode(rest, &mut out));
            match decoded {
                Decoded::Incomplete => {
                    if !out.is_empty() {
                        return Err(Failure::Contract(format!(
                            "Incomplete, but appended {} bytes of output (at input byte {})",
                            out.len(),
                            done + at
                        )));
                    }
                    if rest.len() > max_request {
                        return Err(Failure::Contract(format!(
                            "Incomplete while holding {} bytes, more than max_request_len {max_request}: \
                             a model's buffer would grow without bound (at input byte {})",
                            rest.len(),
                            done + at
                        )));
                    }
                    break;
                }
                Decoded::Request { consumed } | Decoded::Last { consumed } => {
                    if consumed == 0 || consumed > rest.len() || consumed > max_request {
                        return Err(Failure::Contract(format!(
                            "{decoded:?} when shown {} bytes (max_request_len {max_request}, at input byte {})",
                            rest.len(),
                            done + at
                        )));
                    }
                    at += consumed;
                    t.out.extend_from_slice(&out);
                    out.clear();
                    t.requests.push((done + at, t.out.len()));
                    if matches!(decoded, Decoded::Last { .. }) {
                        t.end = End::Last;
                        break 'feed;
                    }
                }
                Decoded::Malformed => {
                    t.out.extend_from_slice(&out);
                    out.clear();
                    t.end = End::Malformed;
                    break 'feed;
                }
            }
        }
        if at > 0 {
            pending.drain(..at);
            done += at;
        }
    }
    Ok(alloc::peak())
}

/// Explain how `split` differs from `whole`.
fn compare(whole: &Transcript, split: &Transcript, feed: Feed<'_>) -> Result<(), Failure> {
    if whole.requests == split.requests && whole.end == split.end && whole.out == split.out {
        return Ok(());
    }
    let mut msg = format!("fed {}: ", feed.describe());
    let first = whole.requests.iter().zip(&split.requests).position(|(a, b)| a != b);
    let n = first.unwrap_or(whole.requests.len().min(split.requests.len()));
    let (w, s) = (whole.requests.get(n), split.requests.get(n));
    let _ = write!(
        msg,
        "request {} ended at (input, output) {w:?} whole but {s:?} split; {} requests whole, {} split; \
         ending {:?} whole, {:?} split",
        n + 1,
        whole.requests.len(),
        split.requests.len(),
        whole.end,
        split.end
    );
    if let Some(at) = whole.out.iter().zip(&split.out).position(|(a, b)| a != b) {
        let show = |out: &[u8]| String::from_utf8_lossy(&out[at..(at + 40).min(out.len())]).into_owned();
        let _ = write!(
            msg,
            "; output differs at byte {at}: {:?} whole, {:?} split",
            show(&whole.out),
            show(&split.out)
        );
    }
    Err(Failure::Mismatch(msg))
}

/// What one case did, fed whole.
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    /// The most bytes the decoder held at once, in any of the runs.
    pub peak: usize,
    pub requests: usize,
    pub end: End,
}

/// Check one case: whole, in its chunks, and (if short) one byte per read.
pub fn check<S: Subject>(
    subject: &S,
    proto: Proto,
    case: &Case,
    scratch: &mut Scratch,
) -> Result<Checked, Failure> {
    let bound = allocation_bound(proto, case.max_frame);
    let Scratch { whole, split, pending } = scratch;
    guarded(|| {
        let mut peak = 0;
        let mut feed_one = |feed: Feed<'_>, t: &mut Transcript| -> Result<(), Failure> {
            let p = run(subject.open(proto, case), &case.input, feed, t, pending)?;
            if p > bound {
                return Err(Failure::Allocation { peak: p, bound, feed: feed.describe() });
            }
            peak = peak.max(p);
            Ok(())
        };
        feed_one(Feed::Whole, whole)?;
        feed_one(Feed::Cuts(&case.cuts), split)?;
        compare(whole, split, Feed::Cuts(&case.cuts))?;
        if case.input.len() <= BYTEWISE_MAX {
            feed_one(Feed::Bytes, split)?;
            compare(whole, split, Feed::Bytes)?;
        }
        Ok(Checked { peak, requests: whole.requests.len(), end: whole.end })
    })
}

/// Shrink a failing case to a shorter input that fails the same way (same kind of failure),
/// by deleting ever smaller pieces; at most `budget` checks and 20 seconds.
pub fn minimize<S: Subject>(
    subject: &S,
    proto: Proto,
    case: &Case,
    failure: &Failure,
    budget: usize,
) -> Case {
    let kind = failure.kind();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut scratch = Scratch::default();
    let mut best = case.clone();
    let mut tries = 0;
    let mut piece = best.input.len().div_ceil(2);
    while piece >= 1 && tries < budget {
        let mut at = 0;
        while at < best.input.len() && tries < budget && Instant::now() < deadline {
            let candidate = without(&best, at, piece);
            tries += 1;
            match check(subject, proto, &candidate, &mut scratch) {
                Err(f) if f.kind() == kind => best = candidate,
                _ => at += piece,
            }
        }
        piece /= 2;
    }
    best
}

/// `case` with `len` bytes removed at `at`, its cuts moved to match.
fn without(case: &Case, at: usize, len: usize) -> Case {
    let end = (at + len).min(case.input.len());
    let removed = end - at;
    let mut input = case.input[..at].to_vec();
    input.extend_from_slice(&case.input[end..]);
    let mut cuts: Vec<usize> = case
        .cuts
        .iter()
        .filter_map(|&c| match c {
            c if c <= at => Some(c),
            c if c >= end => Some(c - removed),
            _ => None,
        })
        .filter(|&c| c > 0 && c < input.len())
        .collect();
    cuts.dedup();
    Case { input, cuts, ..case.clone() }
}

/// What a campaign over one parser found.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub inputs: u64,
    pub generated: u64,
    pub mutated: u64,
    pub panics: u64,
    /// The most bytes any input made the decoder hold at once.
    pub peak: usize,
    /// The highest share of its bound any input reached, and that input's `max_frame`.
    pub peak_share: (f64, usize),
    pub largest_input: usize,
    pub bytes: u64,
    /// Requests answered, over all inputs fed whole.
    pub requests: u64,
    /// How many inputs fed whole ended open, with a last request, and malformed.
    pub ends: [u64; 3],
    pub elapsed: Duration,
}

/// A failure, with everything needed to reproduce it.
#[derive(Debug)]
pub struct Found {
    pub proto: Proto,
    pub seed: u64,
    pub index: u64,
    pub case: Case,
    pub minimal: Case,
    pub failure: Failure,
    pub minimal_failure: Option<Failure>,
    /// What the campaign had done before it stopped here.
    pub stats: Stats,
}

/// Check inputs `start..start + iterations` of the campaign `seed` for `proto`; stop at the
/// first failure. `progress` counts inputs done, for a watchdog.
pub fn campaign<S: Subject>(
    subject: &S,
    proto: Proto,
    seed: u64,
    start: u64,
    iterations: u64,
    progress: &AtomicU64,
) -> Result<Stats, Box<Found>> {
    let began = Instant::now();
    let mut stats = Stats::default();
    let mut scratch = Scratch::default();
    for index in start..start.saturating_add(iterations) {
        alloc::label(format_args!("--proto {proto} --seed {seed} --start {index} --iterations 1"));
        let case = make_case(proto, seed, index);
        match case.origin {
            Origin::Generated => stats.generated += 1,
            Origin::Mutated => stats.mutated += 1,
        }
        stats.inputs += 1;
        stats.bytes += case.input.len() as u64;
        stats.largest_input = stats.largest_input.max(case.input.len());
        match check(subject, proto, &case, &mut scratch) {
            Ok(Checked { peak, requests, end }) => {
                stats.requests += requests as u64;
                stats.ends[end as usize] += 1;
                stats.peak = stats.peak.max(peak);
                let share = peak as f64 / allocation_bound(proto, case.max_frame) as f64;
                if share > stats.peak_share.0 {
                    stats.peak_share = (share, case.max_frame);
                }
            }
            Err(failure) => {
                if matches!(failure, Failure::Panic(_)) {
                    stats.panics += 1;
                }
                stats.elapsed = began.elapsed();
                let minimal = minimize(subject, proto, &case, &failure, 20_000);
                let minimal_failure = check(subject, proto, &minimal, &mut Scratch::default()).err();
                return Err(Box::new(Found {
                    proto,
                    seed,
                    index,
                    case,
                    minimal,
                    failure,
                    minimal_failure,
                    stats,
                }));
            }
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
    stats.elapsed = began.elapsed();
    Ok(stats)
}

impl Stats {
    /// The summary line: `PROTO: N inputs (G generated, M mutated), 0 panics, peak allocation X KiB, T s`.
    pub fn line(&self, proto: Proto) -> String {
        format!(
            "{proto}: {} inputs ({} generated, {} mutated), {} panics, peak allocation {} KiB, {:.1} s",
            self.inputs,
            self.generated,
            self.mutated,
            self.panics,
            self.peak.div_ceil(1024),
            self.elapsed.as_secs_f64()
        )
    }

    /// The details under it: rate, sizes, how close to its bound the allocation came.
    pub fn details(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let rate = self.inputs as f64 / secs;
        let share = |n: u64| 100.0 * n as f64 / self.inputs.max(1) as f64;
        format!(
            "  {:.0} inputs/s ({:.1} MB/s), 10^7 inputs in about {:.0} s; mean input {} bytes, largest {} bytes;\n  \
             {:.1} requests answered per input; fed whole, {:.0}% ended open, {:.0}% with a last request, \
             {:.0}% malformed; peak allocation at most {:.0}% of its bound (at max_frame {})",
            rate,
            self.bytes as f64 / secs / 1e6,
            1e7 / rate.max(1e-9),
            self.bytes / self.inputs.max(1),
            self.largest_input,
            self.requests as f64 / self.inputs.max(1) as f64,
            share(self.ends[End::Open as usize]),
            share(self.ends[End::Last as usize]),
            share(self.ends[End::Malformed as usize]),
            self.peak_share.0 * 100.0,
            self.peak_share.1
        )
    }
}

/// `hexdump -C`'s layout, up to `limit` bytes.
pub fn hex_dump(bytes: &[u8], limit: usize) -> String {
    let mut s = String::new();
    for (row, chunk) in bytes[..bytes.len().min(limit)].chunks(16).enumerate() {
        let _ = write!(s, "  {:08x}  ", row * 16);
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(s, "{b:02x} ");
                }
                None => s.push_str("   "),
            }
            if i == 7 {
                s.push(' ');
            }
        }
        s.push_str(" |");
        s.extend(chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }));
        s.push_str("|\n");
    }
    if bytes.len() > limit {
        let _ = writeln!(s, "  ... and {} more bytes", bytes.len() - limit);
    }
    s
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.proto;
        writeln!(f, "FAIL {name}: input {} of seed {}: {}", self.index, self.seed, self.failure)?;
        writeln!(
            f,
            "  regenerate: cargo run --release -p servers --example fuzz -- --proto {name} --seed {} --start {} --iterations 1",
            self.seed, self.index
        )?;
        let case = &self.case;
        writeln!(
            f,
            "  {:?} input of {} bytes, max_frame {}, member {:?}, cut at {:?}",
            case.origin,
            case.input.len(),
            case.max_frame,
            case.member,
            &case.cuts[..case.cuts.len().min(32)]
        )?;
        let min = &self.minimal;
        match &self.minimal_failure {
            Some(failure) => {
                let cuts = &min.cuts[..min.cuts.len().min(32)];
                writeln!(f, "  minimal input ({} bytes, cut at {cuts:?}): {failure}", min.input.len())?
            }
            None => writeln!(f, "  (the shrunk input no longer fails; the original follows)")?,
        }
        f.write_str(&hex_dump(&min.input, 4096))?;
        if min.input.len() != case.input.len() {
            writeln!(f, "  original input:")?;
            f.write_str(&hex_dump(&case.input, 1024))?;
        }
        Ok(())
    }
}
