//! `server`: start one concurrency model speaking one protocol.
//!
//! Prints exactly one line, `listening on ADDR`, to stdout once it accepts connections (so a
//! script that asked for port 0 learns the real port); everything else goes to stderr.
//! SIGINT or SIGTERM stops accepting, lets open connections finish within `--grace`, and exits
//! 0; a second signal exits at once with status 1.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use servers::config::AcceptMode;
use servers::conn::admission;
use servers::conn::deadline::Timeouts;
use servers::session::Knobs;
use servers::store::StoreKind;
use servers::{Model, Proto, Runtime, ServerConfig, Shutdown, net};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Serve one of the lab's protocols with one concurrency model.
///
/// Example: `server --model reactor --proto echo-line --addr 127.0.0.1:7000`, then
/// `nc 127.0.0.1 7000` and type lines. With `--proto chat`, open two or more `nc`s: every line
/// one of them types reaches the others, prefixed with its sender's id.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Print every model, one per line as `NAME<TAB>what it is`, and exit. Scripts and the
    /// benchmark suite read the lab's list of models from here.
    #[arg(long, exclusive = true)]
    list_models: bool,
    /// Only say whether `--model` can serve `--proto` on this machine, then exit: status 0, or
    /// 1 with the reason on one line (io_uring refused here, a protocol the model does not
    /// serve). Scripts use it to skip what cannot run instead of failing.
    #[arg(long)]
    check: bool,
    /// Concurrency model: how connections are scheduled onto threads.
    #[arg(long, value_enum, required_unless_present = "list_models")]
    model: Option<Model>,
    /// Protocol spoken on every connection: echo-line and echo-frame echo what they get; kv is a
    /// key-value store speaking Redis's protocol (redis-cli and redis-benchmark work with it).
    #[arg(long, value_enum, required_unless_present = "list_models")]
    proto: Option<Proto>,
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Worker threads for `thread-pool` and for `async --runtime multi-thread`, event loops for
    /// `multi-reactor` [default: CPUs].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Connections that may wait for a `thread-pool` worker; beyond that new ones are closed.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    queue: u32,
    /// Tokio scheduler for the `async` model.
    #[arg(long, value_enum, default_value_t)]
    runtime: Runtime,
    /// How `multi-reactor` spreads new connections over its loops: `reuseport` gives every loop
    /// its own listener and lets the kernel choose; `handoff` has one acceptor deal them out.
    #[arg(long, value_enum, default_value_t)]
    accept: AcceptMode,
    /// Largest request payload in bytes (for kv: the largest key or value); a larger one is a
    /// protocol error.
    #[arg(long, default_value_t = servers::proto::DEFAULT_MAX_FRAME as u32, value_parser = clap::value_parser!(u32).range(1..=(1 << 30)))]
    max_frame: u32,
    /// Burn this many microseconds of CPU per request.
    #[arg(long, default_value_t = 0)]
    work_us: u64,
    /// Sleep this many microseconds per request, as a blocking database call would.
    #[arg(long, default_value_t = 0)]
    block_us: u64,
    /// After SIGINT/SIGTERM, how long open connections may take to finish (e.g. 500ms, 5s).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// How threaded models guard the `kv` store: one mutex, or one per shard of the key space.
    /// One-thread models (blocking, reactor) own the store and take no lock.
    #[arg(long, value_enum, default_value_t)]
    store: StoreKind,
    /// Most keys the `kv` store holds; a SET of a new key beyond it gets an error reply.
    #[arg(long, default_value_t = servers::store::DEFAULT_MAX_KEYS as u64, value_parser = clap::value_parser!(u64).range(1..))]
    kv_max_keys: u64,
    /// `chat`: bytes that may wait for one member before it is dropped as too slow (it gets a
    /// last `ERR too slow` line, the others `* ID dropped (too slow)`). Kernel socket buffers
    /// come on top of this.
    #[arg(long, default_value_t = servers::config::DEFAULT_CHAT_QUEUE as u64, value_parser = clap::value_parser!(u64).range(1..))]
    chat_queue: u64,
    /// `process-per-connection`: the most children (one per open connection) alive at once.
    /// When that many are, the server stops accepting until one exits: new clients are not
    /// refused but wait in the kernel's listen backlog, unanswered, and a client that connects
    /// then waits for someone else to leave.
    #[arg(long, default_value_t = servers::config::DEFAULT_MAX_PROCS as u32, value_parser = clap::value_parser!(u32).range(1..))]
    max_procs: u32,

    /// A request started but not finished within this time closes its connection: what ends a
    /// slowloris, who sends one byte at a time and never a whole request (nginx's
    /// client_header_timeout, 60s). The clock restarts whenever a request completes. `off` turns
    /// it off. Not applied to chat, where a silent member is normal.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = timeout, help_heading = "Defences")]
    request_timeout: Timeout,
    /// A connection with no request started for this long is closed (nginx's
    /// keepalive_timeout is 75s, Redis's timeout is off). Longer than nginx's, so that someone
    /// typing into `nc` may pause to explain; short enough that idle clients cannot pin a
    /// thread-pool for ever. `off` turns it off.
    #[arg(long, default_value = "300s", value_name = "DURATION", value_parser = timeout, help_heading = "Defences")]
    idle_timeout: Timeout,
    /// A peer that takes none of our replies for this long is dropped (nginx's send_timeout,
    /// 60s); one that reads slowly but steadily is not. `off` turns it off.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = timeout, help_heading = "Defences")]
    write_timeout: Timeout,
    /// The most connections open at once; one more gets its protocol's "busy" answer and is
    /// closed (http: 503 with Connection: close; kv: -ERR max number of clients reached; echo-line
    /// and chat: an ERR line; echo-frame: closed). [default: the open-file limit less 32, as
    /// Redis caps maxclients: 19968 here, above the suite's 10,016-connection experiment]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Defences")]
    max_conns: Option<u64>,
    /// Reply bytes one connection may have waiting for its peer before the server stops reading
    /// its requests (a pipelining client that reads nothing is slowed, not fed; Redis's
    /// client-output-buffer-limit). An event loop holds at most about twice this per connection.
    #[arg(long, default_value_t = servers::session::DEFAULT_MAX_OUTPUT as u64, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Defences")]
    max_output: u64,
    /// Most bytes of keys and values (plus 64 per entry) the kv store holds; a write beyond it
    /// gets -OOM, as Redis's maxmemory does (which is off by default on 64-bit machines: a
    /// Redis nobody configured grows until the OOM killer ends it).
    #[arg(long, default_value_t = servers::store::DEFAULT_MAX_BYTES as u64, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Defences")]
    kv_max_bytes: u64,
}

/// A timeout flag's value: a duration, or `None` for `off`. (A newtype, because clap reads a
/// field of type `Option` as "this flag may be absent".)
#[derive(Clone, Copy, Debug)]
struct Timeout(Option<Duration>);

/// Parse a timeout flag: a duration (`500ms`, `60s`, `5m`), or `off`.
fn timeout(text: &str) -> Result<Timeout, String> {
    if text == "off" {
        return Ok(Timeout(None));
    }
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => {
            Err("a timeout of 0 would close every connection at once; use `off` to turn it off".into())
        }
        Ok(d) => Ok(Timeout(Some(d))),
        Err(e) => Err(format!("{e} (write e.g. 500ms, 60s, 5m, or off)")),
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let (Some(model), Some(proto)) = (args.model, args.proto) else {
        return list_models();
    };
    let mut config = ServerConfig::new(proto);
    config.runtime = args.runtime;
    config.accept = args.accept;
    config.max_frame = args.max_frame as usize;
    config.queue = args.queue as usize;
    config.grace = args.grace;
    config.store = args.store;
    config.max_keys = usize::try_from(args.kv_max_keys).context("--kv-max-keys is too large")?;
    config.chat_queue = usize::try_from(args.chat_queue).context("--chat-queue is too large")?;
    config.max_procs = args.max_procs as usize;
    config.timeouts =
        Timeouts { request: args.request_timeout.0, idle: args.idle_timeout.0, write: args.write_timeout.0 };
    config.max_output = usize::try_from(args.max_output).context("--max-output is too large")?;
    config.kv_max_bytes = usize::try_from(args.kv_max_bytes).context("--kv-max-bytes is too large")?;
    config.knobs =
        Knobs { work: Duration::from_micros(args.work_us), block: Duration::from_micros(args.block_us) };
    if let Some(threads) = args.threads {
        config.threads = threads.into();
    }

    let fd_limit = net::raise_fd_limit().unwrap_or_else(|e| {
        servers::log::line(format_args!("warning: cannot raise the open-file limit: {e}"));
        net::fd_limit()
    });
    config.max_conns = match args.max_conns {
        Some(n) => usize::try_from(n).context("--max-conns is too large")?,
        None => admission::default_max_conns(fd_limit),
    };
    // A model that cannot serve here (no io_uring, a protocol it refuses) says so in one line
    // before it listens, so that no client ever connects to a server about to exit.
    model.check(&config)?;
    if args.check {
        return Ok(());
    }
    // Room for every connection the cap allows, plus the server's own descriptors (listeners,
    // pollers, wakers, pipes), before the first thread starts: see `net::presize_fd_table`.
    let slots = (config.max_conns as u64).saturating_add(64).min(fd_limit);
    if let Err(e) = net::presize_fd_table(slots) {
        servers::log::line(format_args!("warning: cannot presize the descriptor table: {e}"));
    }
    let listener = net::bind(args.addr).with_context(|| format!("cannot listen on {}", args.addr))?;
    let shutdown = Shutdown::new();
    watch_signals(&shutdown)?;

    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    drop(stdout);

    model.run(listener, &config, &shutdown).with_context(|| format!("{model} server failed"))
}

/// `--list-models`: the lab's one list of models, for people and for scripts.
fn list_models() -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for model in Model::ALL {
        writeln!(stdout, "{model}\t{}", model.about())?;
    }
    Ok(())
}

/// First SIGINT/SIGTERM: graceful shutdown. Second: leave at once.
fn watch_signals(shutdown: &Shutdown) -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let shutdown = shutdown.clone();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        for _ in signals.forever() {
            // Act first, log second, and never with `eprintln!`: it panics when stderr is a
            // closed pipe, and a dead signal thread would swallow every later signal.
            if shutdown.is_triggered() {
                servers::log::line(format_args!("second signal: exiting now"));
                std::process::exit(1);
            }
            shutdown.trigger();
            servers::log::line(format_args!("shutting down: no new connections, finishing open ones"));
        }
    })?;
    Ok(())
}
