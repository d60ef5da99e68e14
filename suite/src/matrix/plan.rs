//! The expanded matrix: what the runner executes and results.json keeps. Every point carries
//! all of its settings, already resolved, so a result never has to be read back against the
//! matrix file that produced it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::models::{Unavailable, Verdict};

/// How the load is paced for one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PaceSpec {
    /// Closed loop.
    Closed,
    /// Open loop at `fraction` × the median throughput of point `base`.
    Fraction {
        /// Id of the closed-loop point whose throughput is the 1.0 mark.
        base: String,
        /// Multiple of that throughput.
        fraction: f64,
    },
}

/// One point of the plan: everything needed to run it, already resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSpec {
    /// `experiment/model/variant`, unique in the plan.
    pub id: String,
    /// Experiment name.
    pub experiment: String,
    /// Server `--model`.
    pub model: String,
    /// Server and loadgen `--proto`.
    pub proto: String,
    /// loadgen `--size`.
    pub size: String,
    /// loadgen `--conns`.
    pub conns: usize,
    /// loadgen `--idle-conns`.
    pub idle_conns: usize,
    /// loadgen `--depth`.
    pub depth: usize,
    /// loadgen `--conn-per-request`: a new connection for every request (absent: false, and in
    /// older results).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conn_per_request: bool,
    /// Scaling experiments: the server runs on the first this many CPUs of its list (absent:
    /// on all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpus: Option<usize>,
    /// loadgen `--threads` (at most `conns`).
    pub loadgen_threads: usize,
    /// loadgen `--seed`.
    pub seed: u64,
    /// Closed or open loop.
    pub pace: PaceSpec,
    /// Server flags beyond `--model`, `--proto` and `--addr`.
    pub server_args: Vec<String>,
    /// loadgen flags beyond the ones the suite sets itself (absent in results of older runs).
    #[serde(default)]
    pub loadgen_args: Vec<String>,
    /// loadgen `--warmup`, seconds.
    pub warmup_s: f64,
    /// loadgen `--duration`, seconds.
    pub duration_s: f64,
    /// loadgen `--timeout`, seconds.
    pub timeout_s: f64,
    /// Extra seconds allowed before loadgen is stopped.
    pub slack_s: f64,
    /// Repetitions.
    pub repeat: u32,
}

impl PointSpec {
    /// The id made safe for a file name: `/` becomes `--`.
    pub fn file_stem(&self) -> String {
        self.id.replace('/', "--")
    }

    /// The longest a repetition's loadgen may run before it is stopped: warm-up, duration,
    /// two timeouts (connect and final replies) and the experiment's slack, plus 10 s.
    pub fn deadline(&self) -> Duration {
        Duration::from_secs_f64(self.warmup_s + self.duration_s + 2.0 * self.timeout_s + self.slack_s + 10.0)
    }

    /// A rough wall-clock cost of one repetition, for the estimate and the ETA.
    pub fn estimate(&self) -> Duration {
        // Start-up, stop and file writing take about a second; opening idle connections about
        // 0.2 ms each.
        let mut s = self.warmup_s + self.duration_s + 1.0 + self.idle_conns as f64 * 0.000_2;
        // The one model whose failures are known in advance: `blocking` serves one client at a
        // time, so with more connections loadgen waits out its timeout, and beyond the listen
        // backlog (4,096) every further connect does too, until the deadline stops it. Clients
        // that each leave after one request (`conn_per_request`) it serves one after another.
        if self.model == "blocking" && self.conns + self.idle_conns > 1 && !self.conn_per_request {
            s = if self.conns + self.idle_conns > 4096 {
                self.deadline().as_secs_f64()
            } else {
                s + self.timeout_s
            };
        }
        Duration::from_secs_f64(s)
    }
}

/// Per-experiment presentation data the renderer needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentInfo {
    /// Identifier.
    pub name: String,
    /// Heading.
    pub title: String,
    /// One-sentence description.
    pub about: String,
    /// Plots it feeds.
    pub plots: Vec<String>,
    /// True for an open-loop sweep.
    pub sweep: bool,
    /// True when the points step through server CPU counts (absent in older results).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scale_cpus: bool,
    /// What the expansion had to leave out or decide, and why, in sentences for the page: a
    /// model the server does not list, scaling steps the machine has no CPUs for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The expanded matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Experiments in file order.
    pub experiments: Vec<ExperimentInfo>,
    /// Points in run order.
    pub points: Vec<PointSpec>,
    /// Points whose model said before the run, through `server … --check`, that it cannot
    /// serve them (by point id): they are recorded as such, never started. The expansion
    /// leaves this empty; the caller asks the server (see [`Plan::decline`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub declined: BTreeMap<String, Unavailable>,
}

impl Plan {
    /// Total estimated wall-clock time of the points that will run.
    pub fn estimate(&self) -> Duration {
        self.points
            .iter()
            .filter(|p| !self.declined.contains_key(&p.id))
            .map(|p| p.estimate() * p.repeat)
            .sum()
    }

    /// Asks `check` about each distinct server command line of the plan (once each) and
    /// records the points whose model declines; returns the answers it could not read (an
    /// older server without `--check`), each once, so the caller can say that the run will
    /// find out by starting those servers.
    pub fn decline(&mut self, mut check: impl FnMut(&[String]) -> Verdict) -> Vec<String> {
        let mut asked: Vec<(Vec<String>, Verdict)> = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        for p in &self.points {
            let args = server_command(p);
            let verdict = match asked.iter().find(|(a, _)| *a == args) {
                Some((_, v)) => v.clone(),
                None => {
                    let v = check(&args);
                    asked.push((args, v.clone()));
                    v
                }
            };
            match verdict {
                Verdict::Serves => {}
                Verdict::Declines(why) => {
                    self.declined.insert(p.id.clone(), why);
                }
                Verdict::Unknown(why) => {
                    if !unknown.contains(&why) {
                        unknown.push(why);
                    }
                }
            }
        }
        unknown
    }
}

/// The server's arguments for `spec`: `--model M --proto P --addr 127.0.0.1:0` and its flags.
pub fn server_command(spec: &PointSpec) -> Vec<String> {
    let mut args: Vec<String> = ["--model", &spec.model, "--proto", &spec.proto, "--addr", "127.0.0.1:0"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(spec.server_args.iter().cloned());
    args
}
