//! One measurement from start to finish: connect, start the workers, watch the clock, merge.
//!
//! The main thread does no I/O of its own during the run: it [`watch`]es the clock (and
//! loadgen's CPU time) while the workers run, then joins them and adds up what they found.

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::ScopedJoinHandle;

use crate::config::{ProtocolKind, RunConfig};
use crate::connect::{self, Opened};
use crate::engine::churn::Churn;
use crate::engine::clock::Clock;
use crate::engine::worker::Worker;
use crate::engine::{Plan, Tally};
use crate::error::RunError;
use crate::live::LiveWindow;
use crate::payload::PayloadPool;
use crate::ports::PortBudget;
use crate::proto::{ClientProtocol, EchoFrame, EchoLine, Http, Kv};
use crate::report::{Churn as ChurnReport, RunReport};
use crate::sys::{self, CpuTime};
use crate::watch::watch;

/// File descriptors kept in reserve for everything that is not a connection (poll instances,
/// timers, stdio, output files).
const SPARE_FDS: u64 = 64;

/// Runs one measurement as `cfg` describes and reports what it found.
///
/// Errors only when nothing could be measured (bad settings, nothing listening, no file
/// descriptors); everything that goes wrong *during* the run is counted in the report.
pub fn run(cfg: &RunConfig) -> Result<RunReport, RunError> {
    cfg.validate()?;
    let limit = sys::raise_fd_limit()?;
    let needed = cfg.conns + cfg.idle_conns;
    if needed as u64 + SPARE_FDS > limit {
        return Err(RunError::TooManyConnections { needed, limit });
    }
    if cfg.protocol == ProtocolKind::Chat {
        return crate::chat::run(cfg);
    }
    let pool = PayloadPool::new(cfg.size, cfg.seed);
    if cfg.conn_per_request {
        // `validate` let only these three through.
        return match cfg.protocol {
            ProtocolKind::EchoFrame => churn_with(cfg, &EchoFrame::new(pool)),
            ProtocolKind::Http => churn_with(cfg, &Http::closing(&cfg.addr.to_string())),
            _ => churn_with(cfg, &EchoLine::new(pool)),
        };
    }
    // Dispatch once, here: the engine is generic over the protocol, so each protocol gets its
    // own monomorphised hot loop and the engine never names a concrete protocol.
    match cfg.protocol {
        ProtocolKind::EchoLine => run_with(cfg, &EchoLine::new(pool)),
        ProtocolKind::EchoFrame => run_with(cfg, &EchoFrame::new(pool)),
        ProtocolKind::Http => run_with(cfg, &Http::new(&cfg.addr.to_string())),
        ProtocolKind::Chat => crate::chat::run(cfg),
        ProtocolKind::Kv => run_with(cfg, &Kv::new(pool, cfg.kv_keys, cfg.conns as u64, cfg.kv_get_ratio)),
    }
}

fn run_with<P: ClientProtocol>(cfg: &RunConfig, proto: &P) -> Result<RunReport, RunError> {
    let opened = connect::open_all(cfg)?;
    let Opened { working, idle, errors: connect_errors, first_error: connect_error } = opened;
    let conns_opened = working.len();

    let clock = Clock::start();
    let plan = Plan::new(cfg, cfg.conns);
    // Deal connections round-robin so each thread gets an even share.
    let threads = cfg.threads.min(conns_opened.max(1));
    let mut shards: Vec<Vec<(u64, std::net::TcpStream)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, conn) in working.into_iter().enumerate() {
        shards[i % threads].push(conn);
    }
    // A hint for the first size of each send buffer: the payload plus the largest framing
    // (a kv SET's command and key).
    let max_request = cfg.size.max + 64;
    let progress: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
    let live = cfg.live.then(|| Arc::new(LiveWindow::default()));

    let (tallies, cpu) = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .into_iter()
            .zip(&progress)
            .enumerate()
            .map(|(n, (shard, counter))| {
                let live = live.clone();
                std::thread::Builder::new().name(format!("loadgen-{n}")).spawn_scoped(scope, move || {
                    Worker::new(proto, plan, clock, shard, max_request, counter)?.with_live(live).run()
                })
            })
            .collect();
        watch_and_join(cfg, clock, &plan, &progress, live.as_deref(), handles)
    })?;

    let mut total = Tally::new(plan.timetable.is_some());
    for tally in tallies {
        total.merge(tally);
    }
    total.counts.connect_errors += connect_errors;
    let idle_closed = connect::count_closed_idle(&idle);
    total.counts.idle_closed += idle_closed;
    let idle_error = (idle_closed > 0)
        .then(|| format!("{idle_closed} of {} idle connections were closed by the server", idle.len()));
    let first_error = connect_error.or(total.first_error).or(idle_error);
    Ok(RunReport {
        config: cfg.clone(),
        conns_opened,
        idle_opened: idle.len(),
        counts: total.counts,
        cpu,
        spun: total.spun,
        first_error,
        service_time: total.service,
        corrected: total.corrected,
        churn: None,
    })
}

/// `--conn-per-request`: slots that each open a connection per request (see
/// [`crate::engine::churn`]), dealt round-robin to the threads.
fn churn_with<P: ClientProtocol>(cfg: &RunConfig, proto: &P) -> Result<RunReport, RunError> {
    let ports = PortBudget::read();
    // One connection first, closed again at once: a server that is not there is a one-line
    // error before the clock starts, as in the other modes. Idle connections are held as usual.
    let Opened { working, idle, errors: connect_errors, first_error: connect_error } = connect::open(cfg, 1)?;
    drop(working);

    let clock = Clock::start();
    let plan = Plan::new(cfg, cfg.conns);
    let threads = cfg.threads;
    let max_request = cfg.size.max + 256;
    let progress: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
    let live = cfg.live.then(|| Arc::new(LiveWindow::default()));
    let (tallies, cpu) = std::thread::scope(|scope| {
        let handles: Vec<_> = progress
            .iter()
            .enumerate()
            .map(|(n, counter)| {
                let ids: Vec<u64> = (n..cfg.conns).step_by(threads).map(|id| id as u64).collect();
                let live = live.clone();
                std::thread::Builder::new().name(format!("loadgen-{n}")).spawn_scoped(scope, move || {
                    Churn::new(proto, plan, clock, cfg.addr, ids, max_request, counter)?.with_live(live).run()
                })
            })
            .collect();
        watch_and_join(cfg, clock, &plan, &progress, live.as_deref(), handles)
    })?;

    let mut total = Tally::new(false);
    for tally in tallies {
        total.merge(tally);
    }
    total.counts.connect_errors += connect_errors;
    let idle_closed = connect::count_closed_idle(&idle);
    total.counts.idle_closed += idle_closed;
    let idle_error = (idle_closed > 0)
        .then(|| format!("{idle_closed} of {} idle connections were closed by the server", idle.len()));
    let first_error = connect_error.or(total.first_error).or(idle_error);
    Ok(RunReport {
        config: cfg.clone(),
        conns_opened: cfg.conns,
        idle_opened: idle.len(),
        counts: total.counts,
        cpu,
        spun: total.spun,
        first_error,
        service_time: total.service,
        corrected: None,
        churn: Some(ChurnReport { connects: total.connects, ports, server_closes: proto.server_closes() }),
    })
}

/// The worker threads of one run, as spawned (a spawn that failed is an `Err`).
type Workers<'scope> = Vec<io::Result<ScopedJoinHandle<'scope, io::Result<Tally>>>>;

/// Watch the run's progress on this thread until every worker is done, then collect their
/// tallies; the first engine error or panic fails the run.
fn watch_and_join(
    cfg: &RunConfig,
    clock: Clock,
    plan: &Plan,
    progress: &[AtomicU64],
    live: Option<&LiveWindow>,
    handles: Workers<'_>,
) -> Result<(Vec<Tally>, CpuTime), RunError> {
    let all_done = || handles.iter().all(|h| h.as_ref().map_or(true, |h| h.is_finished()));
    let cpu = watch(cfg, clock, plan, progress, live, all_done);
    let mut tallies = Vec::with_capacity(handles.len());
    for handle in handles {
        let handle = handle.map_err(RunError::Engine)?;
        match handle.join() {
            Ok(tally) => tallies.push(tally.map_err(RunError::Engine)?),
            Err(_) => return Err(RunError::WorkerPanicked),
        }
    }
    Ok((tallies, cpu))
}
