//! Chat mode (`--proto chat`): `--conns` members in one room, every message checked at every
//! other member, and the **fan-out latency** of each delivery recorded: from the moment a
//! member writes a line to the moment each other member has read it.
//!
//! Chat is not request/response, so it has its own small driver instead of the engine's
//! [`ClientProtocol`](crate::proto::ClientProtocol): one sent line has `members − 1` "replies",
//! on other connections. It keeps the rest of the tool's shape: the same [`RunConfig`], the same
//! [`RunReport`] (requests → messages), the same text, JSON and `.hgrm` output.
//!
//! - [`message`]: the lines both ways (written from the protocol's description, not the servers).
//! - [`ledger`]: which deliveries are owed, made, missing or duplicated.
//! - `driver`: the event loop that joins the room, sends, reads and records.
//!
//! **Pacing**, as in the engine. Closed loop (the default): a member sends its next message once
//! every other member has its previous one (with `--depth D`, once at most `D − 1` of its
//! messages are still on their way), so the room runs as fast as the slowest delivery. Open
//! loop (`--rate R`): message slot `n` is due at `n / R` seconds, dealt round-robin to members;
//! a member with `--depth` messages in flight holds its due ones back, and they count from their
//! due time when they leave (the second histogram).
//!
//! Everything runs on one thread (`--threads 1`): one clock reading for send and receipt, and a
//! ledger without locks. At `members × (members − 1)` deliveries per round that thread is
//! usually what limits a large room; the summary's CPU line says when.

mod driver;
pub mod ledger;
pub mod message;

use std::sync::atomic::AtomicU64;

use crate::config::{Pacing, RunConfig};
use crate::connect;
use crate::engine::clock::Clock;
use crate::engine::{Plan, Tally};
use crate::error::RunError;
use crate::report::RunReport;
use crate::sys::CpuTime;
use crate::watch::watch;

/// Runs one chat measurement as `cfg` describes (called by [`crate::run`]).
pub(crate) fn run(cfg: &RunConfig) -> Result<RunReport, RunError> {
    let opened = connect::open_all(cfg)?;
    let conns_opened = opened.working.len();
    // `--idle-conns`: members that join the room and never read, held until the end. The
    // server owes them every line; what it does about a member that takes none (drops it once
    // `--chat-queue` bytes wait, or lets its outbox grow) is the slow-member lesson. Whether
    // the server dropped one cannot be told by peeking as elsewhere (unread lines are waiting
    // either way), so they are only held, never counted as closed.
    let idle = opened.idle;
    let mut tally = Tally::new(matches!(cfg.pacing, Pacing::Open { .. }));
    tally.counts.connect_errors = opened.errors;
    tally.first_error = opened.first_error;
    let report = |tally: Tally, cpu| RunReport {
        config: cfg.clone(),
        conns_opened,
        idle_opened: idle.len(),
        counts: tally.counts,
        cpu,
        spun: tally.spun,
        first_error: tally.first_error,
        service_time: tally.service,
        corrected: tally.corrected,
        churn: None,
    };
    if conns_opened < 2 {
        tally.note_error(|| "a room needs at least two members".to_owned());
        return Ok(report(tally, CpuTime::default()));
    }
    let mut driver = driver::Driver::new(cfg, opened.working)?;
    if let Err(why) = driver.join(cfg.timeout) {
        tally.counts.timeouts += 1;
        tally.note_error(|| why);
        return Ok(report(tally, CpuTime::default()));
    }

    let clock = Clock::start();
    // `--no-verify` is refused for chat, so the plan always checks.
    let plan = Plan::new(cfg, conns_opened);
    let progress = [AtomicU64::new(0)];
    let (ran, cpu) = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("loadgen-chat".into())
            .spawn_scoped(scope, || driver.run(clock, plan, &progress[0]));
        let all_done = || handle.as_ref().map_or(true, |h| h.is_finished());
        let cpu = watch(cfg, clock, &plan, &progress, None, all_done);
        let ran = match handle {
            Ok(handle) => handle.join().map_err(|_| RunError::WorkerPanicked),
            Err(e) => Err(RunError::Engine(e)),
        };
        (ran, cpu)
    });
    let found = ran?.map_err(RunError::Engine)?;
    tally.merge(found);
    Ok(report(tally, cpu))
}
