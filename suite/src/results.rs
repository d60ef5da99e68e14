//! `results.json`: the one file everything else in a run directory is rendered from.
//!
//! It holds the raw material, never a derived table: the machine, the plan, every command line,
//! and for every repetition of every point the server's /proc samples and loadgen's whole JSON
//! report (histograms included, as loadgen wrote them). Aggregates, tables and plots are
//! computed from it by `suite report`, so a run can be re-plotted or re-analysed years later.
//! `SCHEMA_VERSION` changes whenever a field changes meaning; fields are only added within a
//! version.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::matrix::{ExperimentInfo, PointSpec};
use crate::models::{ModelInfo, Unavailable};

/// Version of the layout below.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `<date>-<host>-<commit>`.
    pub run_id: String,
    /// When the run started (RFC 3339, UTC), recorded once.
    pub started_at: String,
    /// Wall-clock seconds the whole run took.
    pub wall_seconds: f64,
    /// The command that reproduces the run, as typed.
    pub reproduce: String,
    /// The suite's own arguments.
    pub suite_args: Vec<String>,
    /// Where and with what it ran.
    pub machine: Machine,
    /// CPUs the server and loadgen were pinned to, or why not.
    pub pinning: Pinning,
    /// The models as `server --list-models` described them (absent in older results).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelInfo>,
    /// The matrix file's text, as run.
    pub matrix_text: String,
    /// Experiments in order.
    pub experiments: Vec<ExperimentInfo>,
    /// Points in run order.
    pub points: Vec<PointResult>,
}

/// CPU affinity used for the children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pinning {
    /// The first of the server's CPUs, if pinned (the whole list is `server_cpus`; older
    /// results pinned to one CPU and have only this).
    pub server_cpu: Option<usize>,
    /// The first of loadgen's CPUs, if pinned (see `loadgen_cpus`).
    pub loadgen_cpu: Option<usize>,
    /// How (`sched_setaffinity`), or why not.
    pub note: String,
    /// Every CPU the server was pinned to (`--server-cpus`); a scaling point uses the first N.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_cpus: Vec<usize>,
    /// Every CPU loadgen was pinned to (`--loadgen-cpus`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loadgen_cpus: Vec<usize>,
}

/// One point and its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointResult {
    /// What was asked for.
    pub spec: PointSpec,
    /// Open loop: the rate actually requested, requests per second.
    pub rate: Option<f64>,
    /// Why the point could not run at all (for example no base throughput for a sweep).
    pub not_run: Option<String>,
    /// The model cannot run this point here, in the server's own words: not a failure, and
    /// not tried again for the other repetitions (absent when it could, and in older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<Unavailable>,
    /// Every repetition, in order.
    pub repetitions: Vec<Repetition>,
}

/// One repetition of a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repetition {
    /// 1-based.
    pub rep: u32,
    /// The server process.
    pub server: ServerRun,
    /// The loadgen process, if the server started.
    pub loadgen: Option<LoadgenRun>,
    /// /proc samples of the server.
    pub samples: Option<Samples>,
    /// Everything that went wrong, in words; empty for a clean repetition.
    pub failures: Vec<String>,
    /// The server said its model cannot run this point, and exited before listening (then
    /// loadgen did not run, and this is not a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<Unavailable>,
}

impl Repetition {
    /// True when nothing went wrong.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// How the server process went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRun {
    /// Full command line.
    pub command: Vec<String>,
    /// The address it printed.
    pub addr: Option<String>,
    /// Milliseconds until `listening on`.
    pub startup_ms: Option<u64>,
    /// How it ended: `exit 0`, `exit N`, `signal N`, `killed after hang`, …
    pub exit: String,
    /// True for a clean exit 0 after SIGTERM.
    pub clean_exit: bool,
    /// The CPUs it was pinned to; empty when not pinned (and in older results).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<usize>,
    /// Server log file, relative to the run directory.
    pub log: String,
}

/// How the loadgen process went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadgenRun {
    /// Full command line.
    pub command: Vec<String>,
    /// Exit code, if it exited by itself.
    pub exit_code: Option<i32>,
    /// True when the suite stopped it at the deadline.
    pub killed_at_deadline: bool,
    /// Wall-clock seconds it ran.
    pub wall_seconds: f64,
    /// Its `--json` report, whole, or `null` if it wrote none.
    pub report: Option<serde_json::Value>,
    /// `.hgrm` file relative to the run directory, if written.
    pub hgrm: Option<String>,
    /// Its stdout and stderr, relative to the run directory.
    pub logs: Vec<String>,
}

/// What /proc said about the server: since the process tree was sampled (`scope`), about the
/// server and every process below it (see [`crate::procfs`]): RSS, PSS, threads, descriptors
/// and context switches summed, CPU time including children already reaped, and the peak RSS
/// the larger of the server's own `VmHWM` and the largest sampled sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    /// `process-tree` when the figures cover the server and its descendants; absent in older
    /// results, whose figures are the server process's alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `measured-phase` when loadgen announced its phase on stderr, else `whole-loadgen-run`.
    pub window: String,
    /// Seconds between the window's two snapshots.
    pub window_seconds: f64,
    /// Server user CPU seconds over the window.
    pub cpu_user_seconds: f64,
    /// Server system CPU seconds over the window.
    pub cpu_system_seconds: f64,
    /// Voluntary context switches over the window, all threads.
    pub voluntary_switches: u64,
    /// Involuntary context switches over the window, all threads.
    pub involuntary_switches: u64,
    /// Kernel's peak RSS (VmHWM) at the end of the window, KiB.
    pub rss_peak_kib: u64,
    /// RSS after loadgen finished, before SIGTERM, KiB.
    pub rss_final_kib: u64,
    /// Most threads seen.
    pub threads_peak: u64,
    /// Threads after loadgen finished.
    pub threads_final: u64,
    /// Most open file descriptors seen.
    pub fds_peak: u64,
    /// Open file descriptors after loadgen finished.
    pub fds_final: u64,
    /// Most processes seen in the tree (the server counts as one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes_peak: Option<u64>,
    /// Processes in the tree after loadgen finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes_final: Option<u64>,
    /// Largest sampled PSS of the tree (read about every 500 ms, and after loadgen finished),
    /// KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pss_peak_kib: Option<u64>,
    /// PSS of the tree after loadgen finished, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pss_final_kib: Option<u64>,
    /// CPU seconds (user + system) within the window's that processes which ended inside it
    /// used: their parent reaped them, so their time is in the CPU figures but their context
    /// switches are not (the switch counts are then a lower bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaped_cpu_seconds: Option<f64>,
    /// Periodic samples (about every 100 ms) from loadgen's start.
    pub series: Vec<Sample>,
}

/// One periodic sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since loadgen started.
    pub t_ms: u64,
    /// RSS, KiB.
    pub rss_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Cumulative CPU seconds (user + system) since the server started.
    pub cpu_seconds: f64,
    /// Processes in the tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
    /// PSS of the tree, KiB, on the samples that read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pss_kib: Option<u64>,
}

/// Why results.json could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the file.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Parsing it.
    #[error("{path} is not a suite results file: {source}")]
    Json {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// A version this build does not know.
    #[error("{path}: schema_version {found} is not supported (this suite writes {SCHEMA_VERSION})")]
    Version {
        /// The file.
        path: String,
        /// What it says.
        found: u32,
    },
}

/// Reads and checks a `results.json`.
pub fn load(path: &Path) -> Result<RunResults, LoadError> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: name.clone(), source })?;
    let results: RunResults =
        serde_json::from_str(&text).map_err(|source| LoadError::Json { path: name.clone(), source })?;
    if results.schema_version != SCHEMA_VERSION {
        return Err(LoadError::Version { path: name, found: results.schema_version });
    }
    Ok(results)
}

/// Writes `results` pretty-printed with a final newline.
pub fn save(results: &RunResults, path: &Path) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(results).map_err(std::io::Error::other)?;
    text.push('\n');
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_results_without_the_new_fields_still_load() {
        let rep = r#"{"rep": 1, "server": {"command": [], "addr": null, "startup_ms": null, "exit": "exit 0",
            "clean_exit": true, "log": "x"}, "loadgen": null, "samples": {"window": "measured-phase",
            "window_seconds": 1.0, "cpu_user_seconds": 0.1, "cpu_system_seconds": 0.2, "voluntary_switches": 1,
            "involuntary_switches": 2, "rss_peak_kib": 3, "rss_final_kib": 3, "threads_peak": 1, "threads_final": 1,
            "fds_peak": 4, "fds_final": 4, "series": [{"t_ms": 0, "rss_kib": 3, "threads": 1, "fds": 4, "cpu_seconds": 0.0}]},
            "failures": []}"#;
        let rep: Repetition = serde_json::from_str(rep).unwrap();
        let samples = rep.samples.as_ref().unwrap();
        assert_eq!(
            (samples.scope.as_deref(), samples.pss_peak_kib, samples.processes_peak),
            (None, None, None)
        );
        assert_eq!(rep.unavailable, None);
        // And they are written back without fields that were not there.
        let text = serde_json::to_string(&rep).unwrap();
        for absent in ["scope", "pss", "processes", "unavailable", "reaped"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }
}
