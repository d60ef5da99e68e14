//! `suite`: the command-line front. It parses flags into [`RunOptions`] and calls the library;
//! everything that can be tested without a terminal lives in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use suite::cpus::{self, CpuList};
use suite::matrix::{self, Available, Overrides};
use suite::models;
use suite::runner::{self, RunOptions};

#[derive(Parser)]
#[command(
    name = "suite",
    version,
    about = "Runs the concurrency-model lab's benchmark matrix and writes a results directory",
    long_about = "Runs every point of a matrix (model x workload x connections), each repeated, \
with the server pinned to CPU 0 and loadgen to CPU 1 (or to --server-cpus and --loadgen-cpus), \
samples the server's process tree from /proc, and writes results/<date>-<host>-<commit>/ with \
results.json (everything raw), results.csv, README.md (tables) and SVG plots. The models are the \
ones `server --list-models` prints; a point a model declines (`server ... --check`: unavailable \
here, or a protocol it does not serve) is recorded as such, not run. `suite report DIR` \
re-renders the tables and plots from DIR/results.json."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the matrix and write a results directory.
    Run(RunArgs),
    /// Re-render README.md, results.csv and plots/ of a results directory from its results.json.
    Report {
        /// The results directory.
        dir: PathBuf,
    },
    /// Print the expanded plan (point ids and settings) without running anything.
    Plan(RunArgs),
    /// Show a lesson's run (a matrix with a [lesson] table, see scripts/lessons/): print its
    /// table and bar chart, and write results.json, README.md and chart.svg to --out (without
    /// --out, re-render RUN in place).
    Lesson {
        /// The run directory `suite run --matrix scripts/lessons/NAME.toml` wrote, or a
        /// lesson folder (results/lessons/NAME).
        run: PathBuf,
        /// The lesson's folder, e.g. results/lessons/NAME.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Rewrite the measured-result blocks of the classroom guide from the committed lesson
    /// runs (between `<!-- lesson-result NAME begin -->` and `… end -->`).
    LessonsGuide {
        /// The guide.
        #[arg(long, value_name = "FILE", default_value = "docs/EXPERIMENTS.md")]
        guide: PathBuf,
        /// Where the lessons' reference runs are, one folder per lesson.
        #[arg(long, value_name = "DIR", default_value = "results/lessons")]
        lessons: PathBuf,
        /// Change nothing: fail if the guide differs from what the runs generate.
        #[arg(long)]
        check: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The [quick] settings of the matrix: the same points, shorter and once (about 10 minutes
    /// with nine models).
    #[arg(long)]
    quick: bool,
    /// Matrix file (TOML); default: the built-in copy of scripts/suite.toml.
    #[arg(long, value_name = "FILE")]
    matrix: Option<PathBuf>,
    /// Repetitions per point (default 3, or 1 with --quick).
    #[arg(long, value_name = "N")]
    repeat: Option<u32>,
    /// Measured phase per repetition (e.g. 6s, 500ms).
    #[arg(long, value_name = "D", value_parser = duration)]
    duration: Option<Duration>,
    /// Unrecorded warm-up per repetition (e.g. 1s, 200ms, 0).
    #[arg(long, value_name = "D", value_parser = duration)]
    warmup: Option<Duration>,
    /// Results directory (default: results/<date>-<host>-<short commit>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run only the points whose id (experiment/model/variant, see `suite plan`) contains this
    /// text, plus the closed-loop points their rate sweeps take rates from.
    #[arg(long, value_name = "SUBSTRING")]
    filter: Option<String>,
    /// The server binary (default: `server` next to this executable). `plan` asks it too: its
    /// `--list-models` is the list of models, and its `--check` says which points a model
    /// cannot serve here (recorded as such, never started).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// The loadgen binary (default: `loadgen` next to this executable).
    #[arg(long, value_name = "PATH")]
    loadgen_bin: Option<PathBuf>,
    /// Pin the server to these CPUs (like 0-7, 0,2,4 or 0-3,8-11; Linux only) instead of CPU 0.
    /// A scaling experiment steps through 1, 2, 4 … of them. Needs --loadgen-cpus, disjoint.
    #[arg(long, value_name = "LIST", requires = "loadgen_cpus")]
    server_cpus: Option<CpuList>,
    /// Pin loadgen to these CPUs instead of CPU 1. Needs --server-cpus.
    #[arg(long, value_name = "LIST", requires = "server_cpus")]
    loadgen_cpus: Option<CpuList>,
}

fn duration(text: &str) -> Result<Duration, String> {
    matrix::parse_duration(text).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("suite: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the suite's own executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    Ok(dir.join(name))
}

/// Everything a run needs that is found out before it starts.
struct Prepared {
    plan: matrix::Plan,
    matrix_text: String,
    server_bin: PathBuf,
    models: Vec<models::ModelInfo>,
    pinning: cpus::Choice,
}

/// Reads the matrix, asks the server for its models, chooses the CPUs, expands the plan, and
/// asks the server which points its models decline; prints what was left out and why.
fn prepare(args: &RunArgs) -> anyhow::Result<Prepared> {
    let text = match &args.matrix {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => matrix::DEFAULT_MATRIX.to_owned(),
    };
    let file = matrix::parse(&text)?;
    let server_bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => sibling("server")?,
    };
    let listed = models::ask(&server_bin)?;
    let allowed = suite::affinity::allowed();
    let asked = args.server_cpus.as_ref().zip(args.loadgen_cpus.as_ref());
    let pinning = cpus::choose(allowed.as_deref().map_err(String::as_str), asked, "--loadgen-cpus")
        .map_err(anyhow::Error::msg)?;
    let ov = Overrides {
        quick: args.quick,
        repeat: args.repeat,
        duration: args.duration,
        warmup: args.warmup,
        filter: args.filter.clone(),
    };
    let available = Available { models: models::names(&listed), server_cpus: pinning.server.clone() };
    let mut plan = matrix::expand(&file, &ov, &available)?;
    for exp in &plan.experiments {
        for note in &exp.notes {
            eprintln!("suite: {}: {note}", exp.name);
        }
    }
    // What a model cannot serve here, it says when asked (`server … --check`, a few
    // milliseconds per distinct command line): those points are recorded, never started.
    let unknown = plan.decline(|args| models::check(&server_bin, args));
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for why in plan.declined.values() {
        match reasons.iter_mut().find(|(r, _)| *r == why.reason) {
            Some((_, n)) => *n += 1,
            None => reasons.push((&why.reason, 1)),
        }
    }
    for (why, n) in reasons {
        eprintln!("suite: {n} point(s) will not run: {why}");
    }
    if let Some(first) = unknown.first() {
        eprintln!(
            "suite: `server --check` could not tell whether each model serves each point ({first}); \
             the run finds out by starting them"
        );
    }
    Ok(Prepared { plan, matrix_text: text, server_bin, models: listed, pinning })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Report { dir } => {
            let written = suite::render::render_dir(&dir)?;
            eprintln!("suite: rewrote {} file(s) in {}", written.len(), dir.display());
        }
        Command::Lesson { run, out } => {
            let out = out.unwrap_or_else(|| run.clone());
            let results = suite::lesson::write_dir(&run, &out)?;
            print!("{}", suite::lesson::terminal(&results)?);
            eprintln!("suite: wrote {}", out.join("README.md").display());
        }
        Command::LessonsGuide { guide, lessons, check } => {
            let text =
                std::fs::read_to_string(&guide).with_context(|| format!("reading {}", guide.display()))?;
            let new = suite::lesson::guide::rewrite(&text, suite::lesson::guide::loader(&lessons))?;
            if check {
                if new != text {
                    bail!("{} differs from what {} generates", guide.display(), lessons.display());
                }
            } else if new != text {
                std::fs::write(&guide, new).with_context(|| format!("writing {}", guide.display()))?;
                eprintln!("suite: rewrote the measured results in {}", guide.display());
            }
        }
        Command::Plan(args) => {
            let plan = prepare(&args)?.plan;
            for p in &plan.points {
                match plan.declined.get(&p.id) {
                    Some(why) => println!("{}  not run, {}: {}", p.id, why.kind.label(), why.reason),
                    None => println!("{}  x{}  {}", p.id, p.repeat, p.server_args.join(" ")),
                }
            }
            println!(
                "{} points, estimated {}",
                plan.points.len(),
                humantime::format_duration(Duration::from_secs(plan.estimate().as_secs()))
            );
        }
        Command::Run(args) => {
            let Prepared { plan, matrix_text, server_bin, models, pinning } = prepare(&args)?;
            let loadgen_bin = match &args.loadgen_bin {
                Some(p) => p.clone(),
                None => sibling("loadgen")?,
            };
            if args.out.as_ref().is_some_and(|o| o.is_file()) {
                bail!("--out must be a directory");
            }
            let opts = RunOptions {
                plan,
                matrix_text,
                // What follows `suite run`: bench.sh passes its arguments on unchanged.
                suite_args: std::env::args().skip(2).collect(),
                out: args.out.clone(),
                server_bin,
                loadgen_bin,
                models,
                pinning,
            };
            let dir = runner::run(&opts)?;
            eprintln!("suite: wrote {}", dir.display());
            println!("{}", dir.join("README.md").display());
        }
    }
    Ok(())
}
