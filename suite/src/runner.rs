//! The whole run: every point of the plan in order, every repetition, then results.json and
//! the rendered report.
//!
//! Points run one at a time, the server on its CPUs and loadgen on its own (by default one
//! each: CPU 0 and CPU 1 of the two-CPU lab machine).
//! An open-loop sweep point takes its rate from the median throughput of its closed-loop base
//! point, which the matrix guarantees ran earlier in the same run; if the base did not run or
//! measured nothing, the sweep point is recorded as not run, with the reason.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::aggregate;
use crate::cpus::{self, Choice};
use crate::machine;
use crate::matrix::{PaceSpec, Plan};
use crate::models::ModelInfo;
use crate::progress::Progress;
use crate::render;
use crate::repetition::{self, Context};
use crate::results::{self, Pinning, PointResult, RunResults, SCHEMA_VERSION};

/// What `suite run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The expanded matrix.
    pub plan: Plan,
    /// The matrix file's text, kept in results.json.
    pub matrix_text: String,
    /// The suite's arguments as given, for the "reproduce" line.
    pub suite_args: Vec<String>,
    /// Run directory; `results/<run id>` when `None`.
    pub out: Option<PathBuf>,
    /// The `server` binary.
    pub server_bin: PathBuf,
    /// The `loadgen` binary.
    pub loadgen_bin: PathBuf,
    /// The models as the server binary listed them.
    pub models: Vec<ModelInfo>,
    /// Where the server and loadgen run ([`cpus::choose`]).
    pub pinning: Choice,
}

/// Why a run could not happen at all (findings about servers are never errors).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A binary is missing.
    #[error(
        "{0} not found: build the workspace first (`cargo build --release --workspace`) or pass --server-bin/--loadgen-bin"
    )]
    MissingBinary(String),
    /// The output directory already holds a run.
    #[error("{0} already holds a results.json; choose another --out")]
    OutExists(String),
    /// Writing files.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// Rendering.
    #[error(transparent)]
    Render(#[from] render::RenderError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Picks `results/<id>`, or `results/<id>-2`, … when taken.
fn default_out(id: &str) -> PathBuf {
    let base = Path::new("results").join(id);
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.join("results.json").exists() {
        candidate = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    candidate
}

/// Quotes an argument for a POSIX shell when it needs it.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Runs the plan and writes the run directory; returns its path.
pub fn run(opts: &RunOptions) -> Result<PathBuf, RunError> {
    for bin in [&opts.server_bin, &opts.loadgen_bin] {
        if !bin.is_file() {
            return Err(RunError::MissingBinary(bin.display().to_string()));
        }
    }
    let start_time = SystemTime::now();
    let unix = start_time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let machine = machine::describe(Path::new("."));
    let run_id = machine::run_id(unix, &machine);
    let out_dir = match &opts.out {
        Some(dir) => {
            if dir.join("results.json").exists() {
                return Err(RunError::OutExists(dir.display().to_string()));
            }
            dir.clone()
        }
        None => default_out(&run_id),
    };
    for sub in ["logs", "raw", "hgrm", "plots"] {
        std::fs::create_dir_all(out_dir.join(sub))
            .map_err(io_err(format!("creating {}", out_dir.display())))?;
    }
    let pin = &opts.pinning;
    let ctx = Context {
        server_bin: opts.server_bin.clone(),
        loadgen_bin: opts.loadgen_bin.clone(),
        out_dir: out_dir.clone(),
        server_cpus: pin.server.clone(),
        loadgen_cpus: pin.loadgen.clone(),
    };
    let plan = &opts.plan;
    let total_reps: usize =
        plan.points.iter().filter(|p| !plan.declined.contains_key(&p.id)).map(|p| p.repeat as usize).sum();
    let estimate = plan.estimate();
    eprintln!(
        "suite: {} points, {total_reps} runs, estimated {} (writing {})",
        plan.points.len(),
        humantime::format_duration(std::time::Duration::from_secs(estimate.as_secs())),
        out_dir.display()
    );
    if pin.server.is_empty() {
        eprintln!("suite: {}", pin.note);
    } else {
        eprintln!(
            "suite: server on CPU(s) {}, loadgen on CPU(s) {}: {}",
            cpus::format(&pin.server),
            cpus::format(&pin.loadgen),
            pin.note
        );
    }
    if let Some(why) = crate::procfs::UNSUPPORTED {
        eprintln!("suite: on {}, {why}: those columns stay empty", std::env::consts::OS);
    }
    let mut progress = Progress::new(total_reps, estimate);
    let wall = Instant::now();
    let mut points: Vec<PointResult> = Vec::new();
    for spec in &plan.points {
        // Declined when asked before the run; or a sweep over a point its model could not run,
        // which cannot run either, for the same reason.
        let declined = plan.declined.get(&spec.id).cloned();
        let base_unavailable = match &spec.pace {
            PaceSpec::Fraction { base, .. } => {
                points.iter().find(|p| &p.spec.id == base).and_then(|p| p.unavailable.clone())
            }
            PaceSpec::Closed => None,
        };
        if let Some(unavailable) = declined.clone().or(base_unavailable) {
            progress.note(&format!("{}: {}: {}", spec.id, unavailable.kind.label(), unavailable.reason));
            if declined.is_none() {
                progress.skip(spec.repeat as usize, spec.estimate() * spec.repeat);
            }
            points.push(PointResult {
                spec: spec.clone(),
                rate: None,
                not_run: None,
                unavailable: Some(unavailable),
                repetitions: Vec::new(),
            });
            continue;
        }
        let (rate, not_run) = match &spec.pace {
            PaceSpec::Closed => (None, None),
            PaceSpec::Fraction { base, fraction } => {
                let base_tp = points
                    .iter()
                    .find(|p| &p.spec.id == base)
                    .and_then(|p| aggregate::summarise(p).get("throughput"))
                    .map(|s| s.median)
                    .filter(|t| *t > 0.0);
                match base_tp {
                    Some(tp) => (Some((tp * fraction).max(1.0).round()), None),
                    None => (
                        None,
                        Some(format!("not run: base point {base} did not run or measured no throughput")),
                    ),
                }
            }
        };
        let mut result = PointResult {
            spec: spec.clone(),
            rate,
            not_run: not_run.clone(),
            unavailable: None,
            repetitions: Vec::new(),
        };
        if let Some(why) = &not_run {
            progress.note(&format!("{}: {why}", spec.id));
            progress.skip(spec.repeat as usize, spec.estimate() * spec.repeat);
        } else {
            for rep in 1..=spec.repeat {
                progress.start(&format!("{} r{rep}/{}", spec.id, spec.repeat));
                let r = repetition::run(&ctx, spec, rep, rate);
                let doc = r
                    .loadgen
                    .as_ref()
                    .and_then(|l| l.report.as_ref())
                    .and_then(|v| crate::loadgen_doc::LoadgenDoc::from_value(v).ok());
                let mut line = format!("{} r{rep}: ", spec.id);
                if let Some(unavailable) = &r.unavailable {
                    // The server's own answer: the next repetition would get the same one.
                    line.push_str(&format!(
                        "{}: {} (the other repetitions are skipped)",
                        unavailable.kind.label(),
                        unavailable.reason
                    ));
                    progress.finish(spec.estimate(), &line);
                    let left = spec.repeat.saturating_sub(rep);
                    progress.skip(left as usize, spec.estimate() * left);
                    result.unavailable = Some(unavailable.clone());
                    result.repetitions.push(r);
                    break;
                }
                if let Some(doc) = doc {
                    let unit = if spec.conn_per_request { "conn/s" } else { "req/s" };
                    line.push_str(&format!("{:.0} {unit}", doc.achieved_rate));
                    if let Some(p) = doc.headline() {
                        line.push_str(&format!(", p99 {}", render::format::latency(p.p99 as f64)));
                    }
                }
                if r.ok() {
                    line.push_str(" ok");
                } else {
                    line.push_str(&format!(" FAILED: {}", r.failures.join("; ")));
                }
                progress.finish(spec.estimate(), &line);
                result.repetitions.push(r);
            }
        }
        points.push(result);
    }
    progress.done();
    let reproduce = std::iter::once("scripts/bench.sh".to_owned())
        .chain(opts.suite_args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ");
    let results = RunResults {
        schema_version: SCHEMA_VERSION,
        run_id,
        started_at: humantime::format_rfc3339_seconds(start_time).to_string(),
        wall_seconds: (wall.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        reproduce,
        suite_args: opts.suite_args.clone(),
        machine,
        pinning: Pinning {
            server_cpu: pin.server.first().copied(),
            loadgen_cpu: pin.loadgen.first().copied(),
            note: pin.note.clone(),
            server_cpus: pin.server.clone(),
            loadgen_cpus: pin.loadgen.clone(),
        },
        models: opts.models.clone(),
        matrix_text: opts.matrix_text.clone(),
        experiments: plan.experiments.clone(),
        points,
    };
    results::save(&results, &out_dir.join("results.json")).map_err(io_err("writing results.json"))?;
    render::render_dir(&out_dir)?;
    Ok(out_dir)
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting_only_where_needed() {
        assert_eq!(shell_quote("--quick"), "--quick");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
