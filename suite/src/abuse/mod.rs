//! # The abuse suite: every model, every attack, scored
//!
//! `abuse run` starts each model the server lists (`server --list-models`) once per scenario
//! and protocol, measures a healthy probe client (loadgen, open loop) just before the attack as
//! its baseline, attacks the server while the probe runs again, and then measures how long a
//! new client waits to be served. Every figure goes to `abuse.json`; [`score`] turns the
//! figures of one cell into **pass**, **expected** (a model's own lesson, declared once in
//! [`score::EXPECTED`]) or **fail**; [`render`] writes `README.md` from `abuse.json` alone.
//!
//! How the pieces fit:
//! - [`scenarios`]: the table of scenarios (what each attack does, the server flags it runs
//!   with, its memory bound) and one file per family of attacks;
//! - [`harness`]: one cell end to end (server, probe, attack, recovery, samples);
//! - [`wire`]: requests with known replies, and "is a new client served?";
//! - [`score`]: the verdict of a cell; [`render`]: the report.

pub mod harness;
pub mod render;
pub mod run;
pub mod scenarios;
pub mod score;
pub mod wire;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::models::Unavailable;

/// `abuse.json`'s schema version.
pub const SCHEMA: u32 = 1;

/// Everything one abuse run found: the whole of `abuse.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbuseRun {
    /// [`SCHEMA`].
    pub schema: u32,
    /// Where it ran.
    pub machine: Machine,
    /// Unix seconds at the start.
    pub started_unix: u64,
    /// Wall seconds the run took.
    pub seconds: f64,
    /// The suite's arguments after `abuse run`.
    pub args: Vec<String>,
    /// `--quick`.
    pub quick: bool,
    /// The settings every cell shares.
    pub settings: Settings,
    /// The scenarios as run (flags, bounds, what the attack does).
    pub scenarios: Vec<ScenarioDoc>,
    /// The expected-table, as it was in the code of this run.
    pub expected: Vec<ExpectedDoc>,
    /// Models, in the server's order.
    pub models: Vec<String>,
    /// Defence flags the scenarios wanted that this server does not have (`server --help`).
    #[serde(default)]
    pub missing_flags: Vec<String>,
    /// One per model × scenario × protocol.
    pub cells: Vec<Cell>,
}

/// The settings every cell shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// CPUs of the server.
    pub server_cpus: Vec<usize>,
    /// CPUs of the attack, the probe and the suite itself.
    pub attack_cpus: Vec<usize>,
    /// How the CPUs were chosen.
    pub pinning_note: String,
    /// Probe requests per second (loadgen open loop, one connection).
    pub probe_rate: u32,
    /// Seconds of the baseline probe.
    pub baseline_seconds: f64,
    /// Seconds of the probe during the attack.
    pub window_seconds: f64,
    /// The floor under the baseline p99 before doubling it, ms.
    pub p99_floor_ms: f64,
    /// The probe's p99 may be at most this many times the (floored) baseline.
    pub p99_factor: f64,
    /// A new client must be served within this many seconds of the attack's end.
    pub recovery_limit_seconds: f64,
    /// How long the suite tries before it records "never served".
    pub recovery_cap_seconds: f64,
}

/// One scenario as run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioDoc {
    /// Short id (`slowloris`).
    pub id: String,
    /// Issue number of the scenario (1 to 12).
    pub number: u32,
    /// One line: what the attack does.
    pub what: String,
    /// Protocols it ran on.
    pub protos: Vec<String>,
    /// Server flags (the defences) it ran with.
    pub flags: Vec<String>,
    /// Why those flags.
    pub flags_why: String,
    /// `RLIMIT_NOFILE` of the server, when limited.
    pub nofile: Option<u64>,
    /// Memory bound: peak RSS (PSS for a tree of processes) during the attack, MiB.
    pub mem_bound_mib: u64,
    /// What else it checks.
    pub check: String,
}

/// One declared expected cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedDoc {
    /// Model.
    pub model: String,
    /// Scenario id.
    pub scenario: String,
    /// Why.
    pub reason: String,
    /// Where the model's lesson explains it.
    pub lesson: String,
}

/// One model × scenario × protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Model.
    pub model: String,
    /// Scenario id.
    pub scenario: String,
    /// Protocol.
    pub proto: String,
    /// The server's arguments.
    pub server_args: Vec<String>,
    /// The figures, when it ran.
    pub figures: Option<Figures>,
    /// Why it did not run: the model declined (in its own words).
    pub declined: Option<Unavailable>,
    /// It could not be measured (the server did not start, loadgen failed): a fail.
    pub broken: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// The end of the server's stderr, for failed cells only.
    pub stderr_tail: Option<String>,
    /// When an attempt missed only the probe's p99 and the cell was run again (up to
    /// [`score::ATTEMPTS`] in all): what each earlier attempt missed, in order (the figures
    /// are the last attempt's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_attempts: Vec<Vec<String>>,
}

/// What one cell measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Figures {
    /// The server was still running at the end (for `sigterm`: it exited 0 in time).
    pub survived: bool,
    /// How the server ended when the suite stopped it (or, for `sigterm`, by itself).
    pub exit: String,
    /// RSS (summed over the process tree) just before the attack, KiB.
    pub rss_before_kib: u64,
    /// Peak RSS sampled during the attack (every 25 ms, summed over the tree), KiB.
    pub peak_rss_kib: u64,
    /// Peak PSS during the attack when the server had child processes (sampled every 500 ms).
    pub peak_pss_kib: Option<u64>,
    /// RSS after the attack, once a new client was served, KiB.
    pub rss_after_kib: u64,
    /// Most processes in the tree at once.
    pub peak_processes: u64,
    /// Server CPU during the attack, as a share of one CPU.
    pub cpu_share: f64,
    /// Seconds the attack lasted (start to everything released).
    pub attack_seconds: f64,
    /// The probe before the attack.
    pub baseline: Option<Probe>,
    /// The probe during the attack.
    pub during: Option<Probe>,
    /// Seconds from the attack's end until a new client was served; `None`: not within the cap.
    pub recovery_seconds: Option<f64>,
    /// Requests acknowledged (or sent with a promise of a reply) that never came back.
    pub lost: u64,
    /// Replies that came back wrong or cut off.
    pub corrupted: u64,
    /// The attack's own counters (connections opened, refused, bytes sent…).
    pub counters: BTreeMap<String, u64>,
    /// A scenario check that failed, in words.
    pub check_failed: Option<String>,
    /// Flags the scenario wanted that this server lacks.
    #[serde(default)]
    pub missing_flags: Vec<String>,
}

/// A probe run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// p99 latency, ms (open loop: from each request's due time).
    pub p99_ms: Option<f64>,
    /// Replies received.
    pub replies: u64,
    /// What went wrong, in words (loadgen's errors; requests left unsent when they are more
    /// than a tenth of the window's, or come with another error), if anything.
    pub error: Option<String>,
    /// Requests due but never sent (open loop: the one connection was still waiting).
    #[serde(default)]
    pub unsent: u64,
}

/// A verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Met every criterion.
    Pass,
    /// Missed some, as the model's lesson says it must.
    Expected,
    /// Missed some.
    Fail,
    /// The model does not serve the protocol, or cannot run here.
    NotApplicable,
}

/// A verdict with its reasons (the criteria missed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Which.
    pub kind: Kind,
    /// Criteria missed, in words (empty for a pass).
    pub missed: Vec<String>,
}

/// Reads `DIR/abuse.json`.
pub fn load(dir: &Path) -> anyhow::Result<AbuseRun> {
    use anyhow::Context as _;
    let path = dir.join("abuse.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let run: AbuseRun = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(
        run.schema == SCHEMA,
        "{}: schema {} (this suite reads {SCHEMA})",
        path.display(),
        run.schema
    );
    Ok(run)
}

/// Regenerates `DIR/README.md` from `DIR/abuse.json`.
pub fn report(dir: &Path) -> anyhow::Result<()> {
    let run = load(dir)?;
    std::fs::write(dir.join("README.md"), render::readme(&run))?;
    Ok(())
}
