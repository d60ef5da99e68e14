//! From the matrix file to the plan: overrides applied, names checked, one point per
//! experiment × model × connection count × (offered-rate fraction | server CPU count).
//!
//! Two things come from outside the file, in [`Available`]: the models the server binary lists
//! and the server's CPU list. The first decides the default models and which named ones can
//! run; the second how far a `scale_cpus` experiment can step. Both are plain values here, so
//! tests inject them and no binary or machine is needed to check an expansion.

use std::time::Duration;

use super::plan::{ExperimentInfo, PaceSpec, Plan, PointSpec};
use super::{Experiment, MatrixError, MatrixFile, Quick, parse_duration};
use crate::cpus;

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

/// What the run has to offer, found out before expanding.
#[derive(Debug, Clone, Default)]
pub struct Available {
    /// The models `server --list-models` prints, in its order.
    pub models: Vec<String>,
    /// The server's CPUs (empty: not pinned).
    pub server_cpus: Vec<usize>,
}

const PROTOS: [&str; 5] = ["echo-line", "echo-frame", "http", "kv", "chat"];
const PLOTS: [&str; 6] = ["throughput", "memory", "spectrum", "rate", "scaling", "bars"];

/// Where a scaling experiment writes the server CPU count in its flags.
const CPUS_PLACEHOLDER: &str = "{cpus}";

fn invalid<T>(why: String) -> Result<T, MatrixError> {
    Err(MatrixError::Invalid(why))
}

fn variant(conns: usize, idle: usize) -> String {
    if idle > 0 { format!("c{conns}+i{idle}") } else { format!("c{conns}") }
}

/// The phase lengths and repetitions every point gets.
struct Timing {
    repeat: u32,
    warmup: Duration,
    duration: Duration,
    timeout: Duration,
}

/// The timing of `exp`'s points: the command line first, then `--quick`'s settings, then the
/// experiment's own `warmup` and `duration`, then `[defaults]`.
fn timing(file: &MatrixFile, ov: &Overrides, exp: &Experiment) -> Result<Timing, MatrixError> {
    let d = &file.defaults;
    let q = if ov.quick { file.quick.clone() } else { Quick::default() };
    let repeat = ov.repeat.or(q.repeat).unwrap_or(d.repeat);
    if repeat == 0 {
        return invalid("repeat must be at least 1".into());
    }
    let warmup = match ov.warmup {
        Some(w) => w,
        None => parse_duration(q.warmup.as_deref().or(exp.warmup.as_deref()).unwrap_or(&d.warmup))?,
    };
    let duration = match ov.duration {
        Some(w) => w,
        None => parse_duration(q.duration.as_deref().or(exp.duration.as_deref()).unwrap_or(&d.duration))?,
    };
    if duration.is_zero() {
        return invalid("duration must be longer than zero".into());
    }
    let timeout = parse_duration(q.timeout.as_deref().unwrap_or(&d.timeout))?;
    Ok(Timing { repeat, warmup, duration, timeout })
}

/// The checks on one experiment that need nothing but the file.
fn check(exp: &Experiment, seen: &[&str]) -> Result<(), MatrixError> {
    if exp.name.is_empty() || exp.name.contains(['/', ' ']) || seen.contains(&exp.name.as_str()) {
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
        return invalid(format!("experiment {}: unknown plot `{p}` (known: {})", exp.name, PLOTS.join(", ")));
    }
    if exp.conn_per_request {
        if !["echo-line", "echo-frame", "http"].contains(&exp.proto.as_str()) {
            return invalid(format!(
                "experiment {}: conn_per_request works with echo-line, echo-frame and http, not `{}`",
                exp.name, exp.proto
            ));
        }
        if exp.depth != 1 || exp.sweep.is_some() {
            return invalid(format!(
                "experiment {}: conn_per_request is closed loop at depth 1 (no depth, no sweep)",
                exp.name
            ));
        }
    }
    if let Some(sweep) = &exp.sweep {
        if !seen.contains(&sweep.base.as_str()) {
            return invalid(format!(
                "experiment {}: sweep base `{}` must be an experiment listed before it",
                exp.name, sweep.base
            ));
        }
        if sweep.fractions.iter().any(|f| !(f.is_finite() && *f > 0.0)) || sweep.fractions.is_empty() {
            return invalid(format!("experiment {}: sweep fractions must be positive numbers", exp.name));
        }
        if exp.scale_cpus {
            return invalid(format!("experiment {}: a sweep cannot also scale_cpus", exp.name));
        }
    }
    Ok(())
}

/// The models an experiment runs, and a sentence for each named model the server does not list.
fn models_of(
    exp: &Experiment,
    defaults: &[String],
    listed: &[String],
) -> Result<(Vec<String>, Vec<String>), MatrixError> {
    let wanted = exp.models.as_deref().unwrap_or(defaults);
    if let Some(m) = exp.model_args.keys().find(|m| !wanted.contains(m)) {
        return invalid(format!("experiment {}: model_args for `{m}`, which it does not run", exp.name));
    }
    let (run, missing): (Vec<String>, Vec<String>) = wanted.iter().cloned().partition(|m| listed.contains(m));
    let notes = missing
        .iter()
        .map(|m| format!("`{m}` was not run: this server does not list it (`server --list-models`)."))
        .collect();
    Ok((run, notes))
}

/// The server CPU counts of a scaling experiment, and a sentence saying what was left out.
fn scaling(server_cpus: &[usize]) -> (Vec<usize>, String) {
    let steps = cpus::scaling_steps(server_cpus.len());
    let counts = steps.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let note = if steps.len() > 1 {
        format!("Server CPUs: {counts}, the first N of the server's list ({}).", cpus::format(server_cpus))
    } else if server_cpus.is_empty() {
        "Only the 1-CPU step ran: the server is not pinned on this machine, so the steps with 2, 4 … \
CPUs were skipped (they need `--server-cpus` and `--loadgen-cpus` on a machine with CPUs to spare)."
            .to_owned()
    } else {
        format!(
            "Only the 1-CPU step ran: the server's CPU list ({}) has one CPU, so the steps with 2, 4 … \
CPUs were skipped (on a bigger machine: `--server-cpus 0-7 --loadgen-cpus 8-15`).",
            cpus::format(server_cpus)
        )
    };
    (steps, note)
}

/// Expands `file` into the plan, with `ov` applied, for the server and CPUs in `available`.
pub fn expand(file: &MatrixFile, ov: &Overrides, available: &Available) -> Result<Plan, MatrixError> {
    let d = &file.defaults;
    let listed = &available.models;
    let unlisted = |m: &String| !listed.contains(m);
    // Models the file names for every experiment must exist: they are a choice, not a wish.
    for m in file.models.iter().flatten().chain(file.model_args.keys()) {
        if unlisted(m) {
            return invalid(format!(
                "unknown model `{m}` (`server --list-models` lists: {})",
                listed.join(", ")
            ));
        }
    }
    let defaults = file.models.clone().unwrap_or_else(|| listed.clone());
    let mut plan = Plan { experiments: Vec::new(), points: Vec::new(), declined: Default::default() };
    let mut seen: Vec<&str> = Vec::new();
    for exp in &file.experiments {
        check(exp, &seen)?;
        seen.push(&exp.name);
        let t = timing(file, ov, exp)?;
        let slack = exp.slack.as_deref().map(parse_duration).transpose()?.unwrap_or_default();
        let (models, mut notes) = models_of(exp, &defaults, listed)?;
        let steps: Vec<Option<usize>> = if exp.scale_cpus {
            let (steps, note) = scaling(&available.server_cpus);
            notes.push(note);
            steps.into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        plan.experiments.push(ExperimentInfo {
            name: exp.name.clone(),
            title: exp.title.clone(),
            about: exp.about.clone(),
            plots: exp.plots.clone(),
            sweep: exp.sweep.is_some(),
            scale_cpus: exp.scale_cpus,
            notes,
        });
        for model in &models {
            let mut flags = d.server_args.clone();
            flags.extend(file.model_args.get(model).into_iter().flatten().cloned());
            flags.extend(exp.server_args.iter().cloned());
            flags.extend(exp.model_args.get(model).into_iter().flatten().cloned());
            if !exp.scale_cpus && flags.iter().any(|f| f.contains(CPUS_PLACEHOLDER)) {
                return invalid(format!(
                    "experiment {}: `{CPUS_PLACEHOLDER}` in server flags needs scale_cpus = true",
                    exp.name
                ));
            }
            for &conns in &exp.conns {
                for &cpus in &steps {
                    let server_args = match cpus {
                        Some(n) => {
                            flags.iter().map(|f| f.replace(CPUS_PLACEHOLDER, &n.to_string())).collect()
                        }
                        None => flags.clone(),
                    };
                    let id = format!("{}/{model}/{}", exp.name, variant(conns, exp.idle_conns));
                    let base = PointSpec {
                        id: cpus.map_or(id.clone(), |n| format!("{id}-cpus{n}")),
                        experiment: exp.name.clone(),
                        model: model.clone(),
                        proto: exp.proto.clone(),
                        size: exp.size.clone(),
                        conns,
                        idle_conns: exp.idle_conns,
                        depth: exp.depth,
                        conn_per_request: exp.conn_per_request,
                        server_cpus: cpus,
                        loadgen_threads: d.loadgen_threads.clamp(1, conns),
                        seed: d.seed,
                        pace: PaceSpec::Closed,
                        server_args,
                        loadgen_args: exp.loadgen_args.clone(),
                        warmup_s: t.warmup.as_secs_f64(),
                        duration_s: t.duration.as_secs_f64(),
                        timeout_s: t.timeout.as_secs_f64(),
                        slack_s: slack.as_secs_f64(),
                        repeat: t.repeat,
                    };
                    match &exp.sweep {
                        None => plan.points.push(base),
                        Some(sweep) => {
                            plan.points.extend(sweep.fractions.iter().map(|&fraction| PointSpec {
                                id: format!("{id}-x{fraction}"),
                                pace: PaceSpec::Fraction {
                                    base: format!("{}/{model}/{}", sweep.base, variant(sweep.base_conns, 0)),
                                    fraction,
                                },
                                ..base.clone()
                            }))
                        }
                    }
                }
            }
        }
    }
    if let Some(filter) = &ov.filter {
        filter_points(&mut plan, filter)?;
    }
    Ok(plan)
}

/// Keeps the points whose id contains `filter`, and the closed-loop points their sweeps take
/// rates from.
fn filter_points(plan: &mut Plan, filter: &str) -> Result<(), MatrixError> {
    let matching: Vec<&PointSpec> = plan.points.iter().filter(|p| p.id.contains(filter)).collect();
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
        .filter(|p| p.id.contains(filter) || bases.contains(&p.id.as_str()))
        .map(|p| p.id.clone())
        .collect();
    plan.points.retain(|p| keep.contains(&p.id));
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::matrix::{DEFAULT_MATRIX, parse};

    /// What the lab's server listed when this was written, without the models still to come.
    pub(crate) const FIVE: [&str; 5] =
        ["blocking", "thread-per-connection", "thread-pool", "reactor", "async"];

    /// A server listing `models`, pinned to CPU 0 (the two-CPU default).
    pub(crate) fn available(models: &[&str]) -> Available {
        Available { models: models.iter().map(|m| (*m).to_owned()).collect(), server_cpus: vec![0] }
    }

    fn default_plan(ov: &Overrides) -> Plan {
        expand(&parse(DEFAULT_MATRIX).unwrap(), ov, &available(&FIVE)).unwrap()
    }

    #[test]
    fn default_matrix_expands_to_every_model_the_server_lists() {
        let plan = default_plan(&Overrides::default());
        // 4 conns + c10k + connect-rate + work + block + frame + 2 http + kv + 2 chat = 14
        // points per model for 5 models, plus 3 single-lock kv points, 6 rates for 3 models,
        // and the scaling experiment's one CPU step for the two of its three models this
        // server lists.
        assert_eq!(plan.points.len(), 14 * 5 + 3 + 6 * 3 + 2);
        let churn = plan.points.iter().find(|p| p.id == "connect-rate/blocking/c16").unwrap();
        assert!(churn.conn_per_request && churn.duration_s == 3.0 && churn.warmup_s == 0.5, "{churn:?}");
        assert!(!plan.points.iter().any(|p| p.conn_per_request && p.experiment != "connect-rate"));
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
    fn a_new_model_joins_the_default_matrix_by_being_listed() {
        let mut seven = FIVE.to_vec();
        seven.extend(["executor", "multi-reactor"]);
        let plan =
            expand(&parse(DEFAULT_MATRIX).unwrap(), &Overrides::default(), &available(&seven)).unwrap();
        for id in
            ["closed-64B/executor/c1", "chat-fanout/multi-reactor/c100", "scaling/multi-reactor/c128-cpus1"]
        {
            assert!(plan.points.iter().any(|p| p.id == id), "{id}");
        }
        // Experiments that name their models keep them.
        assert!(!plan.points.iter().any(|p| p.experiment == "kv-single-lock" && p.model == "executor"));
        // Seven models still fit the suite issue's hour.
        assert!(plan.estimate() < Duration::from_secs(60 * 60), "{:?}", plan.estimate());
        // Nine come to a little more (scripts/suite.toml's header says how much, and what the
        // run saves: points a model declines when asked are not run at all).
        seven.extend(["io-uring", "process-per-connection"]);
        let mut plan =
            expand(&parse(DEFAULT_MATRIX).unwrap(), &Overrides::default(), &available(&seven)).unwrap();
        assert!(plan.estimate() < Duration::from_secs(66 * 60), "{:?}", plan.estimate());
        let before = plan.estimate();
        let refused = plan.decline(|args| match args.windows(2).any(|w| w == ["--proto", "kv"]) {
            true => crate::models::Verdict::Declines(crate::models::Unavailable {
                kind: crate::models::UnavailableKind::NotServed,
                reason: "no".into(),
            }),
            false => crate::models::Verdict::Serves,
        });
        assert!(refused.is_empty());
        assert!(plan.declined.contains_key("kv-mix/process-per-connection/c64"));
        assert!(plan.estimate() < before, "declined points cost nothing");
    }

    #[test]
    fn the_server_is_asked_once_per_command_line() {
        let mut plan = default_plan(&Overrides::default());
        let mut asked = Vec::new();
        let unknown = plan.decline(|args| {
            asked.push(args.to_vec());
            crate::models::Verdict::Unknown("exit Some(2): unexpected argument '--check'".into())
        });
        assert_eq!(unknown, ["exit Some(2): unexpected argument '--check'"], "said once");
        assert!(plan.declined.is_empty(), "an older server declines nothing");
        let distinct: std::collections::BTreeSet<&Vec<String>> = asked.iter().collect();
        assert_eq!(distinct.len(), asked.len(), "no command line asked twice");
        assert!(asked.len() < plan.points.len());
    }

    #[test]
    fn a_named_model_the_server_lacks_is_skipped_with_a_note() {
        let plan = default_plan(&Overrides::default());
        let scaling = plan.experiments.iter().find(|e| e.name == "scaling").unwrap();
        assert!(scaling.notes[0].starts_with("`multi-reactor` was not run"), "{:?}", scaling.notes);
        assert!(!plan.points.iter().any(|p| p.model == "multi-reactor"));
    }

    #[test]
    fn scaling_steps_through_the_server_cpus_and_says_what_it_skipped() {
        let file = parse(DEFAULT_MATRIX).unwrap();
        let mut seven = available(&[FIVE.as_slice(), &["multi-reactor"]].concat());
        let one = expand(&file, &Overrides::default(), &seven).unwrap();
        let info = one.experiments.iter().find(|e| e.name == "scaling").unwrap();
        assert!(info.scale_cpus);
        assert!(info.notes.iter().any(|n| n.starts_with("Only the 1-CPU step ran")), "{:?}", info.notes);
        seven.server_cpus = (0..6).collect();
        let six = expand(&file, &Overrides::default(), &seven).unwrap();
        let ids: Vec<&str> =
            six.points.iter().filter(|p| p.experiment == "scaling").map(|p| p.id.as_str()).collect();
        assert_eq!(ids.len(), 3 * 4, "{ids:?}");
        let p = six.points.iter().find(|p| p.id == "scaling/async/c128-cpus4").unwrap();
        assert_eq!(p.server_cpus, Some(4));
        assert!(p.server_args.windows(2).any(|w| w == ["--threads", "4"]), "{:?}", p.server_args);
        assert!(p.server_args.windows(2).any(|w| w == ["--runtime", "multi-thread"]), "{:?}", p.server_args);
        let tpc = six.points.iter().find(|p| p.id == "scaling/thread-per-connection/c128-cpus6").unwrap();
        assert!(!tpc.server_args.iter().any(|a| a.contains('{')), "{:?}", tpc.server_args);
        let note = &six.experiments.iter().find(|e| e.name == "scaling").unwrap().notes;
        assert!(
            note.iter().any(|n| n == "Server CPUs: 1, 2, 4, 6, the first N of the server's list (0-5)."),
            "{note:?}"
        );
    }

    #[test]
    fn quick_and_command_line_override_in_that_order() {
        let quick = default_plan(&Overrides { quick: true, ..Overrides::default() });
        // --quick replaces an experiment's own timing too (connect-rate's 3 s).
        assert!(quick.points.iter().all(|p| p.repeat == 1 && p.duration_s == 2.0 && p.warmup_s == 0.5));
        assert!(quick.estimate() < Duration::from_secs(8 * 60), "{:?}", quick.estimate());
        let ov = Overrides {
            quick: true,
            repeat: Some(2),
            duration: Some(Duration::from_secs(1)),
            filter: Some("reactor".into()),
            ..Overrides::default()
        };
        let plan = default_plan(&ov);
        assert!(plan.points.iter().all(|p| p.repeat == 2 && p.duration_s == 1.0 && p.model == "reactor"));
        // A filtered sweep brings along the closed-loop point its rates come from, first.
        let sweep = Overrides { filter: Some("rate-sweep/async".into()), ..Overrides::default() };
        let ids: Vec<String> = default_plan(&sweep).points.into_iter().map(|p| p.id).collect();
        assert_eq!(ids.len(), 7);
        assert_eq!(ids[0], "closed-64B/async/c128");
    }

    #[test]
    fn mistakes_are_named() {
        let five = available(&FIVE);
        let ov = Overrides::default();
        let bad_model = format!("models = [\"blocking\", \"reactr\"]\n{DEFAULT_MATRIX}");
        let err = expand(&parse(&bad_model).unwrap(), &ov, &five).unwrap_err();
        assert!(err.to_string().contains("reactr") && err.to_string().contains("lists: blocking"), "{err}");
        let unknown_field = format!("{DEFAULT_MATRIX}\n[extra]\nx = 1\n");
        assert!(parse(&unknown_field).is_err());
        let filter = Overrides { filter: Some("nothing-like-this".into()), ..Overrides::default() };
        let err = expand(&parse(DEFAULT_MATRIX).unwrap(), &filter, &five).unwrap_err();
        assert!(err.to_string().contains("--filter"), "{err}");
        let base_after = DEFAULT_MATRIX.replace("base = \"closed-64B\"", "base = \"rate-sweep\"");
        assert!(expand(&parse(&base_after).unwrap(), &ov, &five).is_err());
        let stray = DEFAULT_MATRIX.replace("scale_cpus = true", "");
        let err = expand(&parse(&stray).unwrap(), &ov, &five).unwrap_err();
        assert!(err.to_string().contains("needs scale_cpus"), "{err}");
        let foreign = DEFAULT_MATRIX.replace("\nasync = [\"--runtime\"", "\nreactor = [\"--runtime\"");
        let err = expand(&parse(&foreign).unwrap(), &ov, &five).unwrap_err();
        assert!(err.to_string().contains("model_args for `reactor`"), "{err}");
        let churn_kv =
            DEFAULT_MATRIX.replace("conn_per_request = true", "conn_per_request = true\ndepth = 2");
        let err = expand(&parse(&churn_kv).unwrap(), &ov, &five).unwrap_err();
        assert!(err.to_string().contains("closed loop at depth 1"), "{err}");
    }
}
