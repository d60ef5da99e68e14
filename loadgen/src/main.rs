//! `loadgen`: the command-line front. It only parses flags into a [`RunConfig`], calls the
//! library, prints the summary and writes the requested files; everything else is in the
//! library so the suite and the tests drive exactly the same code.
//!
//! Exit status: 0 when every reply checked out and no connection had a problem; 1 when any
//! reply mismatched, any connection failed or timed out, or the run could not start (nothing
//! listening); 2 for usage errors (clap's convention).

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use loadgen::export::{hgrm, json, text};
use loadgen::units::{SizeSpec, parse_duration};
use loadgen::{Pacing, ProtocolKind, RunConfig};

#[derive(Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Load generator for the concurrency-model lab: \
    closed and open loop, every reply checked, HdrHistogram latency"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure one server at one address.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Server address, e.g. 127.0.0.1:7000 (a host name is resolved once).
    #[arg(long)]
    addr: String,
    /// Protocol the server speaks.
    #[arg(long, value_enum)]
    proto: ProtocolKind,
    /// Connections that send requests.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Event-loop threads sharing the connections.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Requests in flight per connection (pipelining above 1).
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Open loop: requests per second over all connections, on a fixed timetable; latency counts
    /// from each request's due time. Without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Unrecorded warm-up before measuring (500ms, 1s, 1m; 0 for none).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Measured phase.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Payload bytes: a size (64) or an inclusive range (16..4096) drawn per request
    /// [default: 64]. Not for --proto http, whose requests and replies have one fixed size.
    #[arg(long)]
    size: Option<SizeSpec>,
    /// Seed for payload bytes and sizes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Extra connections opened and held for the whole run, never sending.
    #[arg(long, default_value_t = 0)]
    idle_conns: usize,
    /// Open the --idle-conns before the working connections instead of after them, so that a
    /// server serving clients in arrival order (blocking, a thread pool) meets the silent ones
    /// first: head-of-line blocking and the slowloris attack.
    #[arg(long, requires = "idle_conns")]
    idle_first: bool,
    /// Live numbers for a projector: once a second, one line on stderr with the last second's
    /// replies per second, p50, p99 and errors (warm-up included, marked). The final report on
    /// stdout is unchanged. Replaces the progress line; not for --proto chat.
    #[arg(long)]
    live: bool,
    /// Give a connection up when a request goes unanswered this long.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Write the full report as JSON (schema in the README).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the headline histogram as HdrHistogram percentile-distribution text (ms).
    #[arg(long, value_name = "FILE")]
    hgrm: Option<PathBuf>,
    /// Open loop: wait for a send due sooner than this by spinning (polling without sleeping)
    /// rather than on a timer. A sleep and wake-up costs CPU (about 10 µs on a VM) and comes late,
    /// and the lateness would count as the server's latency. Spin time is reported apart from
    /// work. 0 never spins: use it when loadgen shares its CPUs with the server.
    #[arg(long, default_value = "50us", value_parser = parse_duration)]
    spin: Duration,
    /// Calibration aid: count replies without checking them or recording latencies, to measure
    /// what checking costs. Never use for published figures.
    #[arg(long)]
    no_verify: bool,
    /// kv: share of requests that are GETs, 0 to 1; the rest are SETs of --size values. Each
    /// connection first SETs each of its keys once, so every GET has a known right answer.
    #[arg(long, default_value_t = loadgen::config::DEFAULT_KV_GET_RATIO)]
    kv_get_ratio: f64,
    /// kv: keys over all connections (at least --conns); each connection owns an equal share,
    /// so it knows what every GET must return.
    #[arg(long, default_value_t = loadgen::config::DEFAULT_KV_KEYS)]
    kv_keys: u64,
    /// A new connection for every request: each of --conns clients connects, sends one request,
    /// reads and checks the reply, closes, and starts over (closed loop, --depth 1). Measures
    /// what a connection costs the server; latency counts from the start of the connect.
    /// echo-line and echo-frame: loadgen closes first (TIME_WAIT on its side; see the README
    /// on tcp_tw_reuse and running out of ports); http: each request says `Connection: close`
    /// and the server must close after its reply.
    #[arg(long)]
    conn_per_request: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("loadgen: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status for settings that clap accepted but that do not fit together.
const USAGE: u8 = 2;

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Command::Run(args) = cli.command;
    let cfg = match to_config(&args) {
        Ok(cfg) => cfg,
        Err(err) => {
            eprintln!("loadgen: usage error: {err:#}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let report = loadgen::run(&cfg)?;
    print!("{}", text::summary(&report));
    if let Some(path) = &args.json {
        json::write(&report, path).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.hgrm {
        hgrm::write(report.headline(), path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn to_config(args: &RunArgs) -> anyhow::Result<RunConfig> {
    let addr = resolve(&args.addr)?;
    let protocol = args.proto;
    if protocol == ProtocolKind::Http && args.size.is_some() {
        // Silently ignoring it would let a sweep over sizes measure the same thing N times.
        bail!(
            "--size has no meaning for --proto http: every request is `GET /` and every reply `Hello, world!`"
        );
    }
    let mut cfg = RunConfig::new(addr, protocol);
    cfg.conns = args.conns;
    cfg.threads = args.threads;
    cfg.depth = args.depth;
    cfg.pacing = match args.rate {
        Some(rate) => Pacing::Open { rate },
        None => Pacing::Closed,
    };
    cfg.warmup = args.warmup;
    cfg.duration = args.duration;
    cfg.size = args.size.unwrap_or(SizeSpec::fixed(64));
    cfg.seed = args.seed;
    cfg.idle_conns = args.idle_conns;
    cfg.idle_first = args.idle_first;
    cfg.live = args.live;
    cfg.timeout = args.timeout;
    cfg.verify = !args.no_verify;
    cfg.spin = args.spin;
    cfg.kv_get_ratio = args.kv_get_ratio;
    cfg.kv_keys = args.kv_keys;
    cfg.conn_per_request = args.conn_per_request;
    // The live lines say all the progress line would, and the two would overwrite each other.
    cfg.progress = std::io::stderr().is_terminal() && !args.live;
    // A script reads stderr instead: tell it when the measured phase starts and ends.
    cfg.phase_markers = !std::io::stderr().is_terminal();
    cfg.validate()?;
    if args.hgrm.is_some() && args.no_verify {
        bail!("--hgrm needs recorded latencies, which --no-verify switches off");
    }
    Ok(cfg)
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = addr.parse() {
        return Ok(addr);
    }
    addr.to_socket_addrs()
        .with_context(|| format!("cannot resolve --addr {addr}"))?
        .next()
        .with_context(|| format!("--addr {addr} resolves to no address"))
}
