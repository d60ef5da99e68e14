//! The scenarios: one table ([`all`]) that says, per scenario, what the attack does, on which
//! protocols, with which server defences, and the memory bound its pass needs; the attacks
//! themselves live one family per file.
//!
//! **The defences the abuse run gives every server** (production-like, but short, so that every
//! attack ends inside the run): `--request-timeout 2s --idle-timeout 5s --write-timeout 5s`,
//! unless a scenario says otherwise below. Production defaults are longer (60 s, 300 s, 60 s):
//! an attack that only a 60 s timeout ends would not end inside a run of a few minutes.
//!
//! Every attack is bounded twice: by its own count (connections, cases) and by
//! [`Attack::deadline`]. The harness sets [`Attack::stop`] when the probe's window is over;
//! an attack that holds resources releases all of them then and returns.

mod conns;
mod malformed;
mod oversize;
mod sigterm;
mod slow;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::wire::Proto;

pub use malformed::compare as compare_malformed;

/// The defences of the abuse run (see the module comment).
pub const DEFENCES: &[&str] = &["--request-timeout", "2s", "--idle-timeout", "5s", "--write-timeout", "5s"];

/// What an attack gets from the harness.
pub struct Attack<'a> {
    /// The server.
    pub addr: SocketAddr,
    /// Its protocol.
    pub proto: Proto,
    /// Shorter and smaller.
    pub quick: bool,
    /// The server's PID (only `sigterm` uses it, to signal the suite's own child).
    pub server_pid: u32,
    /// Set when the probe's window is over: release everything and return.
    pub stop: &'a AtomicBool,
    /// Never run past this.
    pub deadline: Instant,
    /// Call once the attack is in place (the harness then starts the probe).
    pub ready: &'a (dyn Fn() + Sync),
    /// Seed for anything random.
    pub seed: u64,
    /// How long the probe measures during the attack (attacks that pace themselves spread
    /// their count over it).
    pub window: Duration,
}

impl Attack<'_> {
    /// True until the harness says stop or the deadline passes.
    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && Instant::now() < self.deadline
    }
    /// True until the deadline passes (for attacks bounded by their own count).
    pub fn in_time(&self) -> bool {
        Instant::now() < self.deadline
    }
}

/// Sleeps until the `i`th event of a timetable of `per_second` events from `start` is due
/// (at once when behind).
pub fn pace(start: Instant, i: u64, per_second: f64) {
    let due = start + Duration::from_secs_f64(i as f64 / per_second);
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// What an attack reports.
#[derive(Debug, Default)]
pub struct AttackReport {
    /// Acknowledged requests that never came back.
    pub lost: u64,
    /// Replies wrong or cut off.
    pub corrupted: u64,
    /// Counters, by name.
    pub counters: BTreeMap<String, u64>,
    /// A scenario check that failed, in words.
    pub check_failed: Option<String>,
    /// `malformed`: each case's reply (bytes, then a marker of how it ended).
    pub replies: Option<Vec<Vec<u8>>>,
    /// `sigterm`: when SIGTERM was sent.
    pub terminated_at: Option<Instant>,
}

impl AttackReport {
    /// Adds to a counter.
    pub fn count(&mut self, name: &str, n: u64) {
        *self.counters.entry(name.to_owned()).or_default() += n;
    }
    /// Merges another report's figures into this one (threads of one attack).
    pub fn merge(&mut self, other: AttackReport) {
        self.lost += other.lost;
        self.corrupted += other.corrupted;
        for (k, v) in other.counters {
            *self.counters.entry(k).or_default() += v;
        }
        if self.check_failed.is_none() {
            self.check_failed = other.check_failed;
        }
    }
}

/// One scenario.
pub struct Scenario {
    /// Short id, used in tables, `--scenarios` and the expected-table.
    pub id: &'static str,
    /// Its number in issue 12.
    pub number: u32,
    /// What the attack does (one line, full-run sizes; `--quick` uses fewer).
    pub what: &'static str,
    /// The protocols of a full run.
    pub protos: &'static [Proto],
    /// The protocols of `--quick`.
    pub quick_protos: &'static [Proto],
    /// Server flags: the defences.
    pub flags: &'static [&'static str],
    /// Why those.
    pub flags_why: &'static str,
    /// The server's `RLIMIT_NOFILE` (soft and hard), when limited.
    pub nofile: Option<u64>,
    /// Peak memory bound, MiB.
    pub mem_bound_mib: u64,
    /// Start the probe before the attack (it holds a connection the attack must not take).
    pub probe_first: bool,
    /// The attack ends the server (SIGTERM): no probe during, no recovery.
    pub terminates: bool,
    /// What else it checks, in words.
    pub check: &'static str,
    /// The attack.
    pub attack: fn(&Attack) -> AttackReport,
}

const LINE_HTTP: &[Proto] = &[Proto::EchoLine, Proto::Http];
const LINE: &[Proto] = &[Proto::EchoLine];
const LINE_HTTP_KV: &[Proto] = &[Proto::EchoLine, Proto::Http, Proto::Kv];
const ALL4: &[Proto] = &[Proto::EchoLine, Proto::EchoFrame, Proto::Http, Proto::Kv];
const KV: &[Proto] = &[Proto::Kv];

/// Defences plus `extra` are spelled out per scenario in [`all`]; this one is the common case.
const D: &[&str] = DEFENCES;
const D_WHY: &str = "the abuse run's defences: requests must complete within 2 s, idle connections go after 5 s, a peer that reads nothing for 5 s is dropped";

/// Every scenario, in the order.
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "slowloris",
            number: 1,
            what: "200 connections (quick: 50) each send a request one byte every second and never finish it (a line with no `\\n`; an http head with no blank line)",
            protos: LINE_HTTP,
            quick_protos: LINE_HTTP,
            flags: D,
            flags_why: D_WHY,
            nofile: None,
            mem_bound_mib: 64,
            probe_first: false,
            terminates: false,
            check: "none beyond the common criteria",
            attack: slow::slowloris,
        },
        Scenario {
            id: "slowloris-timeouts-off",
            number: 1,
            what: "the same slowloris with every timeout off: the lesson of a pool or a single thread that a slow client holds (full runs only)",
            protos: LINE,
            quick_protos: &[],
            flags: &["--request-timeout", "off", "--idle-timeout", "off", "--write-timeout", "off"],
            flags_why: "timeouts off, to show which models a slow client can starve without them",
            nofile: None,
            mem_bound_mib: 64,
            probe_first: false,
            terminates: false,
            check: "none beyond the common criteria",
            attack: slow::slowloris,
        },
        Scenario {
            id: "idle",
            number: 2,
            what: "500 connections (quick: 100) connect and send nothing",
            protos: LINE_HTTP_KV,
            quick_protos: LINE,
            flags: &["--request-timeout", "2s", "--idle-timeout", "2s", "--write-timeout", "5s"],
            flags_why: "idle timeout 2 s (instead of 5 s) so that a model serving one client at a time recovers inside the run",
            nofile: None,
            mem_bound_mib: 64,
            probe_first: false,
            terminates: false,
            check: "none beyond the common criteria",
            attack: slow::idle,
        },
        Scenario {
            id: "slow-reader",
            number: 3,
            what: "16 connections (quick: 4) pipeline requests as fast as the socket takes them and never read a reply",
            protos: LINE_HTTP,
            quick_protos: LINE,
            flags: D,
            flags_why: D_WHY,
            nofile: None,
            mem_bound_mib: 128,
            probe_first: false,
            terminates: false,
            check: "none beyond the common criteria",
            attack: slow::slow_reader,
        },
        Scenario {
            id: "amplification",
            number: 4,
            what: "SET k to 64 KiB, then 16 connections (quick: 4) each send 2,000 `GET k` in one write and never read (7 bytes in, 65,546 out each)",
            protos: KV,
            quick_protos: KV,
            flags: D,
            flags_why: D_WHY,
            nofile: None,
            mem_bound_mib: 128,
            probe_first: false,
            terminates: false,
            check: "none beyond the common criteria",
            attack: slow::amplification,
        },
        Scenario {
            id: "oversize",
            number: 5,
            what: "8 workers (quick: 2), each 5 times a second, send one oversized request on a new connection: a 16 MiB line, a 4 GB frame header (0xFFFFFFFF), a `$2147483648` bulk length, a 1 MB http header",
            protos: ALL4,
            quick_protos: ALL4,
            flags: D,
            flags_why: D_WHY,
            nofile: None,
            mem_bound_mib: 64,
            probe_first: false,
            terminates: false,
            check: "the server closes each oversized request's connection within 3 s of it (refusing from the header, or after an error reply)",
            attack: oversize::oversize,
        },
        Scenario {
            id: "fd-exhaustion",
            number: 6,
            what: "the server runs with RLIMIT_NOFILE 256 (as `prlimit --nofile=256`); 400 connections (quick: 300) are opened and held, then released",
            protos: LINE,
            quick_protos: LINE,
            flags: D,
            flags_why: D_WHY,
            nofile: Some(256),
            mem_bound_mib: 64,
            probe_first: true,
            terminates: false,
            check: "after the release a new client is served within 1 s (the common recovery criterion)",
            attack: conns::fd_exhaustion,
        },
        Scenario {
            id: "resets",
            number: 7,
            what: "4 threads, 400 connections a second in all: connect, ask for a large reply (a 60 KB line, 500 pipelined GETs), read 100 bytes of it, close with SO_LINGER 0 (RST)",
            protos: LINE_HTTP,
            quick_protos: LINE,
            flags: D,
            flags_why: D_WHY,
            nofile: None,
            mem_bound_mib: 64,
            probe_first: false,
            terminates: false,
            check: "none beyond the common criteria",
            attack: conns::resets,
        },
        Scenario {
            id: "churn",
            number: 8,
            what: "5,000 connections (quick: 1,000), 4 threads, spread evenly over the probe's window (2,000 a second; quick: 1,000): connect, one request, check the reply, close",
            protos: LINE_HTTP,
            quick_protos: LINE,
            flags: D,
            flags_why: D_WHY,
            nofile: None,
            mem_bound_mib: 64,
            probe_first: false,
            terminates: false,
            check: "every churned request is answered intact (counted as lost or corrupted otherwise)",
            attack: conns::churn,
        },
        Scenario {
            id: "abandoned",
            number: 9,
            what: "4 threads, 500 connections a second in all: connect, send a request, close at once without reading (the reply draws a RST)",
            protos: LINE_HTTP_KV,
            quick_protos: LINE,
            flags: D,
            flags_why: D_WHY,
            nofile: None,
            mem_bound_mib: 64,
            probe_first: false,
            terminates: false,
            check: "none beyond the common criteria",
            attack: conns::abandoned,
        },
        Scenario {
            id: "flood",
            number: 10,
            what: "10,000 connections (quick: 2,000) opened at 4,000 a second by 8 threads, silent; all held, then released",
            protos: LINE,
            quick_protos: LINE,
            flags: D,
            flags_why: D_WHY,
            nofile: None,
            mem_bound_mib: 512,
            probe_first: true,
            terminates: false,
            check: "none beyond the common criteria (replies to the flood are counted, not required)",
            attack: conns::flood,
        },
        Scenario {
            id: "malformed",
            number: 11,
            what: "100,000 seeded cases (quick: 3,000) per protocol, each on its own connection: valid requests mutated, spliced, truncated and random bytes, then a half-close; the reply bytes are compared across models",
            protos: ALL4,
            quick_protos: ALL4,
            flags: D,
            flags_why: D_WHY,
            nofile: None,
            mem_bound_mib: 64,
            probe_first: false,
            terminates: false,
            check: "every case's reply (bytes until the server closes) is the same as the majority of models'; a case unanswered (no close within 2 s) counts as a difference",
            attack: malformed::malformed,
        },
        Scenario {
            id: "sigterm",
            number: 12,
            what: "8 connections pipeline requests, checking every reply; after 0.5 s the server gets SIGTERM (server --grace 2s)",
            protos: LINE_HTTP,
            quick_protos: LINE,
            flags: &[
                "--request-timeout",
                "2s",
                "--idle-timeout",
                "5s",
                "--write-timeout",
                "5s",
                "--grace",
                "2s",
            ],
            flags_why: "the abuse defences and a 2 s grace period",
            nofile: None,
            mem_bound_mib: 64,
            probe_first: false,
            terminates: true,
            check: "exit 0 within the grace period (plus 0.5 s to exit); every reply received is intact (a reply cut off is corrupted)",
            attack: sigterm::sigterm,
        },
    ]
}
