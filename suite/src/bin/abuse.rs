//! `abuse`: the abuse suite's command line (issue 12, part 3). `abuse run` attacks every model
//! with every scenario and writes `abuse.json` and `README.md`; `abuse report DIR` rewrites
//! `README.md` from `abuse.json`. A binary of its own next to `suite` (rather than a `suite`
//! subcommand) so that the benchmark runner's command line and the abuse suite's evolve apart;
//! everything it does lives in the library, `suite::abuse`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use suite::abuse;
use suite::cpus::CpuList;

#[derive(Parser)]
#[command(
    name = "abuse",
    version,
    about = "Attacks every model of the lab with a dozen hostile clients and scores each cell pass, expected or fail",
    long_about = "Runs every scenario (slowloris, idle connections, a slow reader, kv reply amplification, \
oversized requests, descriptor exhaustion, resets, churn, abandoned requests, a flood, malformed input compared \
across models, SIGTERM under load) against every model `server --list-models` prints, on each protocol the \
scenario applies to. The server is pinned to CPU 0, the attack and a healthy probe client (loadgen, open loop) \
to CPU 1. Each cell records survival, peak memory and memory after, server CPU, the probe's p99 against its \
baseline, seconds until a new client is served after the attack, and replies lost or corrupted; it is a pass, \
expected (declared with its lesson in suite/src/abuse/score.rs) or fail. Writes \
results/abuse-<date>-<host>-<commit>/ with abuse.json and README.md; exits 1 when any cell fails."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scenarios and write a results directory.
    Run(RunArgs),
    /// Rewrite DIR/README.md from DIR/abuse.json, byte for byte as the run wrote it.
    Report {
        /// The results directory.
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// About 7 minutes on 2 CPUs: fewer connections, shorter windows, one protocol for most scenarios
    /// (every model still runs).
    #[arg(long)]
    quick: bool,
    /// Results directory (default: results/abuse-<date>-<host>-<short commit>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Only these models (comma-separated names from `server --list-models`).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    models: Option<Vec<String>>,
    /// Only these scenarios (comma-separated ids: slowloris, slowloris-timeouts-off, idle,
    /// slow-reader, amplification, oversize, fd-exhaustion, resets, churn, abandoned, flood,
    /// malformed, sigterm).
    #[arg(long, value_delimiter = ',', value_name = "X,Y")]
    scenarios: Option<Vec<String>>,
    /// Only these protocols (echo-line, echo-frame, http, kv).
    #[arg(long, value_delimiter = ',', value_name = "P,Q")]
    protos: Option<Vec<String>>,
    /// The server binary (default: `server` next to this executable).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// The loadgen binary (default: `loadgen` next to this executable).
    #[arg(long, value_name = "PATH")]
    loadgen_bin: Option<PathBuf>,
    /// Pin the server to these CPUs instead of CPU 0 (needs --attack-cpus, disjoint).
    #[arg(long, value_name = "LIST", requires = "attack_cpus")]
    server_cpus: Option<CpuList>,
    /// Pin the attack, the probe and this program to these CPUs instead of CPU 1.
    #[arg(long, value_name = "LIST", requires = "server_cpus")]
    attack_cpus: Option<CpuList>,
    /// Seed of the malformed cases and anything else random.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the abuse suite's own executable")?;
    Ok(exe.parent().unwrap_or(Path::new(".")).join(name))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("abuse: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Report { dir } => {
            abuse::report(&dir)?;
            eprintln!("abuse: rewrote {}", dir.join("README.md").display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(a) => {
            let opts = abuse::run::Options {
                quick: a.quick,
                out: a.out,
                models: a.models,
                scenarios: a.scenarios,
                protos: a.protos,
                server_bin: match a.server_bin {
                    Some(p) => p,
                    None => sibling("server")?,
                },
                loadgen_bin: match a.loadgen_bin {
                    Some(p) => p,
                    None => sibling("loadgen")?,
                },
                cpus: a.server_cpus.zip(a.attack_cpus),
                seed: a.seed,
                args: std::env::args().skip(2).collect(),
            };
            let (dir, failed) = abuse::run::run(&opts)?;
            println!("{}", dir.join("README.md").display());
            Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
    }
}
