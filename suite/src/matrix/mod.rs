//! The matrix: which points to run, read from a TOML file (`scripts/suite.toml` is the default
//! and is compiled in), then expanded into a flat, ordered [`Plan`].
//!
//! The file describes *experiments* (a workload and a list of connection counts) and the models
//! to run them on; the plan is what the runner executes, one [`PointSpec`] per
//! experiment × model × connection count (or offered-rate fraction, or server CPU count).
//! Keeping the two apart means the runner never interprets TOML, and the expansion (names,
//! overrides, ordering) is tested without starting a process.
//!
//! - this file: the file as written ([`MatrixFile`]) and its parsing;
//! - [`plan`]: what expansion produces ([`Plan`], [`PointSpec`]), which results.json stores;
//! - [`expand`](mod@expand): file + what the server binary offers ([`Available`]) → plan.
//!
//! Which models exist is not written here: unless the file names its own, the models are the
//! ones the server binary lists (`server --list-models`, see [`crate::models`]).

pub mod expand;
pub mod plan;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub use expand::{Available, Overrides, expand};
pub use plan::{ExperimentInfo, PaceSpec, Plan, PointSpec};

/// The default matrix, the same bytes as `scripts/suite.toml`.
pub const DEFAULT_MATRIX: &str = include_str!("../../../scripts/suite.toml");

/// Why a matrix could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// Not valid TOML, or fields of the wrong type or name.
    #[error("matrix file: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value that parses but makes no sense, with the reason.
    #[error("matrix file: {0}")]
    Invalid(String),
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    /// Models every experiment runs on unless it names its own; absent (the default): every
    /// model `server --list-models` prints.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Settings every point shares.
    pub defaults: Defaults,
    /// What `--quick` changes.
    #[serde(default)]
    pub quick: Quick,
    /// Extra server flags per model, for every experiment.
    #[serde(default)]
    pub model_args: BTreeMap<String, Vec<String>>,
    /// The experiments, run in this order.
    #[serde(rename = "experiment")]
    pub experiments: Vec<Experiment>,
    /// A lesson's matrix (`scripts/lessons/*.toml`) says here how its page shows the run:
    /// read by [`crate::lesson`] from the matrix text that results.json keeps, ignored by the
    /// run itself.
    #[serde(default)]
    pub lesson: Option<toml::Table>,
}

/// Settings shared by every point.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Repetitions per point.
    pub repeat: u32,
    /// loadgen `--warmup`.
    pub warmup: String,
    /// loadgen `--duration`.
    pub duration: String,
    /// loadgen `--timeout`.
    pub timeout: String,
    /// loadgen `--threads`.
    #[serde(default = "one")]
    pub loadgen_threads: usize,
    /// loadgen `--seed`.
    #[serde(default = "one_u64")]
    pub seed: u64,
    /// Flags every server gets.
    #[serde(default)]
    pub server_args: Vec<String>,
}

fn one() -> usize {
    1
}
fn one_u64() -> u64 {
    1
}

/// `--quick` overrides; absent fields keep the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quick {
    /// Repetitions per point.
    pub repeat: Option<u32>,
    /// loadgen `--warmup`.
    pub warmup: Option<String>,
    /// loadgen `--duration`.
    pub duration: Option<String>,
    /// loadgen `--timeout`.
    pub timeout: Option<String>,
}

/// One workload, run for every model and connection count.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Short identifier, used in point ids and file names.
    pub name: String,
    /// Heading of its table.
    pub title: String,
    /// One sentence under the heading: what the experiment asks.
    #[serde(default)]
    pub about: String,
    /// `echo-line` or `echo-frame`.
    #[serde(default = "echo_line")]
    pub proto: String,
    /// loadgen `--size`; empty for a protocol whose requests have no size to choose (`http`).
    #[serde(default = "size_64")]
    pub size: String,
    /// Connections that send requests, one point each.
    pub conns: Vec<usize>,
    /// Connections held open and silent.
    #[serde(default)]
    pub idle_conns: usize,
    /// loadgen `--depth`.
    #[serde(default = "one")]
    pub depth: usize,
    /// Every request on a new connection (loadgen `--conn-per-request`): the table then counts
    /// connections per second.
    #[serde(default)]
    pub conn_per_request: bool,
    /// Extra server flags for this experiment.
    #[serde(default)]
    pub server_args: Vec<String>,
    /// Extra loadgen flags for this experiment (a protocol's own workload flags).
    #[serde(default)]
    pub loadgen_args: Vec<String>,
    /// Models to run, if not all of them. One the server does not list is skipped with a note
    /// (printed, and on the page), not an error: a matrix may name a model before it is built.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Extra server flags per model, for this experiment only (after the file's `model_args`).
    #[serde(default)]
    pub model_args: BTreeMap<String, Vec<String>>,
    /// Run every point once per server CPU count, 1, 2, 4, … up to the length of the server's
    /// CPU list, the server pinned to the first N CPUs of it; `{cpus}` in a server flag
    /// becomes N (for example `["--threads", "{cpus}"]`).
    #[serde(default)]
    pub scale_cpus: bool,
    /// Extra time allowed beyond warm-up + duration + 2 × timeout before loadgen is stopped.
    #[serde(default)]
    pub slack: Option<String>,
    /// This experiment's warm-up, instead of `[defaults]`'s (`--quick` and `--warmup` still
    /// replace it).
    #[serde(default)]
    pub warmup: Option<String>,
    /// This experiment's measured phase, instead of `[defaults]`'s (`--quick` and `--duration`
    /// still replace it): for an experiment whose figure settles sooner than the others'.
    #[serde(default)]
    pub duration: Option<String>,
    /// Which plots use this experiment: `throughput`, `memory`, `spectrum`, `rate`, `scaling`.
    #[serde(default)]
    pub plots: Vec<String>,
    /// Open loop at fractions of an earlier closed-loop maximum.
    #[serde(default)]
    pub sweep: Option<Sweep>,
}

fn echo_line() -> String {
    "echo-line".to_owned()
}
fn size_64() -> String {
    "64".to_owned()
}

/// An open-loop sweep: rates are `fraction × median throughput` of point `base`/model/`base_conns`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// The closed-loop experiment whose maximum the rates are based on.
    pub base: String,
    /// The connection count of that experiment's point.
    pub base_conns: usize,
    /// Multiples of the measured maximum.
    pub fractions: Vec<f64>,
}

/// Reads a matrix file's text.
pub fn parse(text: &str) -> Result<MatrixFile, MatrixError> {
    Ok(toml::from_str(text)?)
}

/// Reads `500ms`, `2s`, `1m` (humantime) or a bare `0`.
pub fn parse_duration(text: &str) -> Result<Duration, MatrixError> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text.trim())
        .map_err(|_| MatrixError::Invalid(format!("`{text}` is not a duration like 500ms, 2s or 1m")))
}
