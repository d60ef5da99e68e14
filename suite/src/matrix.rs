//! The matrix: which points to run, read from a TOML file (`scripts/suite.toml` is the default
//! and is compiled in), then expanded into a flat, ordered [`Plan`].
//!
//! The file describes *experiments* (a workload and a list of connection counts) and the models
//! to run them on; the plan is what the runner executes, one [`PointSpec`] per
//! experiment × model × connection count (or offered-rate fraction). Keeping the two apart means
//! the runner never interprets TOML, and the expansion (names, overrides, ordering) is tested
//! without starting a process.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The default matrix, the same bytes as `scripts/suite.toml`.
pub const DEFAULT_MATRIX: &str = include_str!("../../scripts/suite.toml");

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
    /// Models every experiment runs on unless it names its own.
    pub models: Vec<String>,
    /// Settings every point shares.
    pub defaults: Defaults,
    /// What `--quick` changes.
    #[serde(default)]
    pub quick: Quick,
    /// Extra server flags per model.
    #[serde(default)]
    pub model_args: BTreeMap<String, Vec<String>>,
    /// The experiments, run in this order.
    #[serde(rename = "experiment")]
    pub experiments: Vec<Experiment>,
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
    /// Extra server flags for this experiment.
    #[serde(default)]
    pub server_args: Vec<String>,
    /// Extra loadgen flags for this experiment (a protocol's own workload flags).
    #[serde(default)]
    pub loadgen_args: Vec<String>,
    /// Models to run, if not all of them.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Extra time allowed beyond warm-up + duration + 2 × timeout before loadgen is stopped.
    #[serde(default)]
    pub slack: Option<String>,
    /// Which plots use this experiment: `throughput`, `memory`, `spectrum`, `rate`.
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

/// Command-line overrides, applied after `--quick`.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Use the `[quick]` settings.
    pub quick: bool,
    /// `--repeat`.
    pub repeat: Option<u32>,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--warmup`.
    pub warmup: Option<Duration>,
    /// `--filter`: keep points whose id contains this.
    pub filter: Option<String>,
}

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
        // backlog (4,096) every further connect does too, until the deadline stops it.
        if self.model == "blocking" && self.conns + self.idle_conns > 1 {
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
}

/// The expanded matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Experiments in file order.
    pub experiments: Vec<ExperimentInfo>,
    /// Points in run order.
    pub points: Vec<PointSpec>,
}

impl Plan {
    /// Total estimated wall-clock time.
    pub fn estimate(&self) -> Duration {
        self.points.iter().map(|p| p.estimate() * p.repeat).sum()
    }
}

const MODELS: [&str; 5] = ["blocking", "thread-per-connection", "thread-pool", "reactor", "async"];
const PROTOS: [&str; 5] = ["echo-line", "echo-frame", "http", "kv", "chat"];
const PLOTS: [&str; 4] = ["throughput", "memory", "spectrum", "rate"];

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

fn variant(conns: usize, idle: usize) -> String {
    if idle > 0 { format!("c{conns}+i{idle}") } else { format!("c{conns}") }
}

/// Expands `file` into the plan, with `ov` applied.
pub fn expand(file: &MatrixFile, ov: &Overrides) -> Result<Plan, MatrixError> {
    let invalid = |s: String| Err(MatrixError::Invalid(s));
    let d = &file.defaults;
    let q = if ov.quick { file.quick.clone() } else { Quick::default() };
    let repeat = ov.repeat.or(q.repeat).unwrap_or(d.repeat);
    if repeat == 0 {
        return invalid("repeat must be at least 1".into());
    }
    let warmup = match ov.warmup {
        Some(w) => w,
        None => parse_duration(q.warmup.as_deref().unwrap_or(&d.warmup))?,
    };
    let duration = match ov.duration {
        Some(w) => w,
        None => parse_duration(q.duration.as_deref().unwrap_or(&d.duration))?,
    };
    if duration.is_zero() {
        return invalid("duration must be longer than zero".into());
    }
    let timeout = parse_duration(q.timeout.as_deref().unwrap_or(&d.timeout))?;
    for m in file.models.iter().chain(file.model_args.keys()) {
        if !MODELS.contains(&m.as_str()) {
            return invalid(format!("unknown model `{m}` (known: {})", MODELS.join(", ")));
        }
    }
    let mut plan = Plan { experiments: Vec::new(), points: Vec::new() };
    let mut seen_experiments: Vec<&str> = Vec::new();
    for exp in &file.experiments {
        if exp.name.is_empty()
            || exp.name.contains(['/', ' '])
            || seen_experiments.contains(&exp.name.as_str())
        {
            return invalid(format!(
                "experiment name `{}` must be unique, non-empty, without `/` or spaces",
                exp.name
            ));
        }
        if !PROTOS.contains(&exp.proto.as_str()) {
            return invalid(format!("experiment {}: unknown proto `{}`", exp.name, exp.proto));
        }
        if exp.conns.is_empty() || exp.conns.contains(&0) {
            return invalid(format!("experiment {}: conns must list counts of at least 1", exp.name));
        }
        if let Some(p) = exp.plots.iter().find(|p| !PLOTS.contains(&p.as_str())) {
            return invalid(format!(
                "experiment {}: unknown plot `{p}` (known: {})",
                exp.name,
                PLOTS.join(", ")
            ));
        }
        let slack = exp.slack.as_deref().map(parse_duration).transpose()?.unwrap_or_default();
        let models = exp.models.as_ref().unwrap_or(&file.models);
        if let Some(m) = models.iter().find(|m| !MODELS.contains(&m.as_str())) {
            return invalid(format!("experiment {}: unknown model `{m}`", exp.name));
        }
        if let Some(sweep) = &exp.sweep {
            if !seen_experiments.contains(&sweep.base.as_str()) {
                return invalid(format!(
                    "experiment {}: sweep base `{}` must be an experiment listed before it",
                    exp.name, sweep.base
                ));
            }
            if sweep.fractions.iter().any(|f| !(f.is_finite() && *f > 0.0)) || sweep.fractions.is_empty() {
                return invalid(format!("experiment {}: sweep fractions must be positive numbers", exp.name));
            }
        }
        seen_experiments.push(&exp.name);
        plan.experiments.push(ExperimentInfo {
            name: exp.name.clone(),
            title: exp.title.clone(),
            about: exp.about.clone(),
            plots: exp.plots.clone(),
            sweep: exp.sweep.is_some(),
        });
        for model in models {
            for &conns in &exp.conns {
                let mut server_args = d.server_args.clone();
                server_args.extend(file.model_args.get(model).into_iter().flatten().cloned());
                server_args.extend(exp.server_args.iter().cloned());
                let base = PointSpec {
                    id: String::new(),
                    experiment: exp.name.clone(),
                    model: model.clone(),
                    proto: exp.proto.clone(),
                    size: exp.size.clone(),
                    conns,
                    idle_conns: exp.idle_conns,
                    depth: exp.depth,
                    loadgen_threads: d.loadgen_threads.clamp(1, conns),
                    seed: d.seed,
                    pace: PaceSpec::Closed,
                    server_args,
                    loadgen_args: exp.loadgen_args.clone(),
                    warmup_s: warmup.as_secs_f64(),
                    duration_s: duration.as_secs_f64(),
                    timeout_s: timeout.as_secs_f64(),
                    slack_s: slack.as_secs_f64(),
                    repeat,
                };
                match &exp.sweep {
                    None => plan.points.push(PointSpec {
                        id: format!("{}/{model}/{}", exp.name, variant(conns, exp.idle_conns)),
                        ..base
                    }),
                    Some(sweep) => {
                        for &fraction in &sweep.fractions {
                            plan.points.push(PointSpec {
                                id: format!(
                                    "{}/{model}/{}-x{fraction}",
                                    exp.name,
                                    variant(conns, exp.idle_conns)
                                ),
                                pace: PaceSpec::Fraction {
                                    base: format!("{}/{model}/{}", sweep.base, variant(sweep.base_conns, 0)),
                                    fraction,
                                },
                                ..base.clone()
                            });
                        }
                    }
                }
            }
        }
    }
    if let Some(filter) = &ov.filter {
        // Keep the matching points and the closed-loop points their sweeps take rates from.
        let matching: Vec<&PointSpec> =
            plan.points.iter().filter(|p| p.id.contains(filter.as_str())).collect();
        if matching.is_empty() {
            return invalid(format!("--filter `{filter}` matches no point"));
        }
        let bases: Vec<&str> = matching
            .iter()
            .filter_map(|p| match &p.pace {
                PaceSpec::Fraction { base, .. } => Some(base.as_str()),
                PaceSpec::Closed => None,
            })
            .collect();
        let keep: Vec<String> = plan
            .points
            .iter()
            .filter(|p| p.id.contains(filter.as_str()) || bases.contains(&p.id.as_str()))
            .map(|p| p.id.clone())
            .collect();
        plan.points.retain(|p| keep.contains(&p.id));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matrix_expands_to_every_model_and_experiment() {
        let plan = expand(&parse(DEFAULT_MATRIX).unwrap(), &Overrides::default()).unwrap();
        // 4 conns + c10k + work + block + frame + 2 http + kv + 2 chat = 13 points per model
        // for 5 models, plus 3 single-lock kv points and 6 rates for 3 models.
        assert_eq!(plan.points.len(), 13 * 5 + 3 + 6 * 3);
        assert!(plan.points.iter().any(|p| p.id == "c10k/blocking/c16+i10000" && p.idle_conns == 10_000));
        let tp = plan.points.iter().find(|p| p.id == "closed-64B/thread-pool/c1000").unwrap();
        assert_eq!(tp.server_args, ["--grace", "2s", "--threads", "128"]);
        let sweep = plan.points.iter().find(|p| p.id == "rate-sweep/async/c128-x0.75").unwrap();
        assert_eq!(sweep.pace, PaceSpec::Fraction { base: "closed-64B/async/c128".into(), fraction: 0.75 });
        let work = plan.points.iter().find(|p| p.id == "work-50us/reactor/c64").unwrap();
        assert!(work.server_args.ends_with(&["--work-us".to_owned(), "50".to_owned()]));
        // The default run must fit its budget: under 50 minutes (the suite issue allows an hour).
        assert!(plan.estimate() < Duration::from_secs(50 * 60), "{:?}", plan.estimate());
    }

    #[test]
    fn quick_and_command_line_override_in_that_order() {
        let file = parse(DEFAULT_MATRIX).unwrap();
        let quick = expand(&file, &Overrides { quick: true, ..Overrides::default() }).unwrap();
        assert!(quick.points.iter().all(|p| p.repeat == 1 && p.duration_s == 2.0 && p.warmup_s == 0.5));
        assert!(quick.estimate() < Duration::from_secs(8 * 60), "{:?}", quick.estimate());
        let ov = Overrides {
            quick: true,
            repeat: Some(2),
            duration: Some(Duration::from_secs(1)),
            filter: Some("reactor".into()),
            ..Overrides::default()
        };
        let plan = expand(&file, &ov).unwrap();
        assert!(plan.points.iter().all(|p| p.repeat == 2 && p.duration_s == 1.0 && p.model == "reactor"));
        // A filtered sweep brings along the closed-loop point its rates come from, first.
        let sweep = Overrides { filter: Some("rate-sweep/async".into()), ..Overrides::default() };
        let ids: Vec<String> = expand(&file, &sweep).unwrap().points.into_iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), 7);
        assert_eq!(ids[0], "closed-64B/async/c128");
    }

    #[test]
    fn mistakes_are_named() {
        let bad_model = DEFAULT_MATRIX.replace("\"reactor\", \"async\"]", "\"reactr\"]");
        let err = expand(&parse(&bad_model).unwrap(), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("reactr"), "{err}");
        let unknown_field = format!("{DEFAULT_MATRIX}\n[extra]\nx = 1\n");
        assert!(parse(&unknown_field).is_err());
        let filter = Overrides { filter: Some("nothing-like-this".into()), ..Overrides::default() };
        assert!(
            expand(&parse(DEFAULT_MATRIX).unwrap(), &filter).unwrap_err().to_string().contains("--filter")
        );
        let base_after = DEFAULT_MATRIX.replace("base = \"closed-64B\"", "base = \"rate-sweep\"");
        assert!(expand(&parse(&base_after).unwrap(), &Overrides::default()).is_err());
    }
}
