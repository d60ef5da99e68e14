//! The whole abuse run: which models, scenarios and protocols; one cell after another
//! (scenario, then protocol, then model, so that the malformed replies of every model of a
//! protocol can be compared as soon as the last one has run); then `abuse.json` and
//! `README.md`.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};

use super::harness::{self, Env};
use super::scenarios::{self, Scenario};
use super::wire::Proto;
use super::{AbuseRun, Cell, Kind, ScenarioDoc, Settings, render, score};
use crate::{affinity, cpus, machine, models};

/// What `abuse run` was asked.
pub struct Options {
    /// Shorter, smaller, fewer protocols.
    pub quick: bool,
    /// Results directory (default `results/abuse-<date>-<host>-<commit>`).
    pub out: Option<PathBuf>,
    /// Only these models.
    pub models: Option<Vec<String>>,
    /// Only these scenarios.
    pub scenarios: Option<Vec<String>>,
    /// Only these protocols.
    pub protos: Option<Vec<String>>,
    /// The server binary.
    pub server_bin: PathBuf,
    /// The loadgen binary.
    pub loadgen_bin: PathBuf,
    /// CPUs asked for (server, attack).
    pub cpus: Option<(cpus::CpuList, cpus::CpuList)>,
    /// Seed of everything random.
    pub seed: u64,
    /// The arguments, for the record.
    pub args: Vec<String>,
}

/// Raises this process's soft descriptor limit to its hard limit (a flood holds 10,000).
fn raise_nofile() -> u64 {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 0;
        }
        let raised = libc::rlimit { rlim_cur: l.rlim_max, rlim_max: l.rlim_max };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return l.rlim_max;
        }
    }
    l.rlim_cur
}

/// Pins the calling thread, and so every thread it starts afterwards, to `cpus`.
fn pin_self(cpus: &[usize]) -> std::io::Result<()> {
    if cpus.is_empty() || cfg!(not(target_os = "linux")) {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setaffinity on this thread with a set we own; CPUs beyond the set are refused.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            if c >= libc::CPU_SETSIZE as usize {
                return Err(std::io::Error::other(format!("CPU {c} beyond cpu_set_t")));
            }
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn pick<'a, T>(
    all: &'a [T],
    name: impl Fn(&T) -> &str,
    only: &Option<Vec<String>>,
    what: &str,
) -> anyhow::Result<Vec<&'a T>> {
    let Some(only) = only else { return Ok(all.iter().collect()) };
    for o in only {
        if !all.iter().any(|x| name(x) == o) {
            let known: Vec<&str> = all.iter().map(&name).collect();
            bail!("unknown {what} `{o}` (known: {})", known.join(", "));
        }
    }
    Ok(all.iter().filter(|x| only.iter().any(|o| o == name(x))).collect())
}

/// The scenario as `abuse.json` records it.
fn doc(sc: &Scenario, protos: &[Proto], env: &Env) -> ScenarioDoc {
    let (flags, _) = harness::usable_flags(sc.flags, &env.known_flags);
    ScenarioDoc {
        id: sc.id.into(),
        number: sc.number,
        what: sc.what.into(),
        protos: protos.iter().map(|p| p.name().to_owned()).collect(),
        flags,
        flags_why: sc.flags_why.into(),
        nofile: sc.nofile,
        mem_bound_mib: sc.mem_bound_mib,
        check: sc.check.into(),
    }
}

fn summary(c: &Cell) -> String {
    let word = match c.verdict.kind {
        Kind::Pass => "pass",
        Kind::Expected => "expected",
        Kind::Fail => "FAIL",
        Kind::NotApplicable => "n/a",
    };
    let mut s = word.to_owned();
    if let Some(d) = &c.declined {
        s.push_str(&format!(" ({})", d.reason));
    } else if !c.verdict.missed.is_empty() {
        s.push_str(&format!(": {}", c.verdict.missed.join("; ")));
    }
    s
}

/// Runs everything; returns the results directory and whether any cell failed.
pub fn run(opts: &Options) -> anyhow::Result<(PathBuf, bool)> {
    let started = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let limit = raise_nofile();
    if limit < 12_000 {
        eprintln!(
            "abuse: the descriptor limit is {limit}: the flood needs about 10,100 (raise the hard limit)"
        );
    }
    let listed = models::ask(&opts.server_bin)?;
    let names = models::names(&listed);
    let chosen_models: Vec<String> =
        pick(&names, |s| s.as_str(), &opts.models, "model")?.into_iter().cloned().collect();
    let all = scenarios::all();
    let chosen: Vec<&Scenario> = pick(&all, |s| s.id, &opts.scenarios, "scenario")?;
    if let Some(ps) = &opts.protos {
        for p in ps {
            if Proto::parse(p).is_none() {
                bail!("unknown protocol `{p}` (echo-line, echo-frame, http, kv)");
            }
        }
    }
    let allowed = affinity::allowed();
    let asked = opts.cpus.as_ref().map(|(a, b)| (a, b));
    let mut pinning = cpus::choose(allowed.as_deref().map_err(String::as_str), asked, "--attack-cpus")
        .map_err(anyhow::Error::msg)?;
    let repo = std::env::current_dir()?;
    // Before pinning: pinned, this process would count only the attack CPUs as the machine's.
    let machine = machine::describe(&repo);
    pin_self(&pinning.loadgen).context("pinning the suite to the attack CPUs")?;
    if !pinning.loadgen.is_empty() {
        pinning.note = "sched_setaffinity: the server and the probe before exec; this program and its \
                        attack threads before the first cell"
            .to_owned();
    }
    let out = match &opts.out {
        Some(o) => o.clone(),
        None => repo.join("results").join(format!("abuse-{}", machine::run_id(started_unix, &machine))),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let scratch = out.join(".scratch");
    std::fs::create_dir_all(&scratch)?;
    let settings = Settings {
        server_cpus: pinning.server.clone(),
        attack_cpus: pinning.loadgen.clone(),
        pinning_note: pinning.note.clone(),
        probe_rate: 200,
        baseline_seconds: if opts.quick { 0.5 } else { 1.0 },
        window_seconds: if opts.quick { 1.0 } else { 2.5 },
        p99_floor_ms: score::P99_FLOOR_MS,
        p99_factor: score::P99_FACTOR,
        recovery_limit_seconds: score::RECOVERY_LIMIT_S,
        recovery_cap_seconds: if opts.quick { 5.0 } else { 10.0 },
    };
    let env = Env {
        server_bin: opts.server_bin.clone(),
        loadgen_bin: opts.loadgen_bin.clone(),
        settings: settings.clone(),
        quick: opts.quick,
        scratch: scratch.clone(),
        known_flags: harness::known_flags(&opts.server_bin),
    };
    let mut missing_flags: Vec<String> = Vec::new();
    let plan: Vec<(&Scenario, Vec<Proto>)> = chosen
        .iter()
        .map(|sc| {
            let protos = if opts.quick { sc.quick_protos } else { sc.protos };
            let protos = protos
                .iter()
                .copied()
                .filter(|p| opts.protos.as_ref().is_none_or(|ps| ps.iter().any(|x| x == p.name())))
                .collect::<Vec<Proto>>();
            for m in harness::usable_flags(sc.flags, &env.known_flags).1 {
                if !missing_flags.contains(&m) {
                    missing_flags.push(m);
                }
            }
            (*sc, protos)
        })
        .filter(|(_, protos)| !protos.is_empty())
        .collect();
    if !missing_flags.is_empty() {
        eprintln!("abuse: this server lacks {}: the scenarios run without them", missing_flags.join(", "));
    }
    let total: usize = plan.iter().map(|(_, p)| p.len() * chosen_models.len()).sum();
    eprintln!(
        "abuse: {} cells ({} models × {} scenarios), server on CPU {}, attack on CPU {}; writing {}",
        total,
        chosen_models.len(),
        plan.len(),
        cpus::format(&pinning.server),
        cpus::format(&pinning.loadgen),
        out.display()
    );
    let mut cells: Vec<Cell> = Vec::new();
    let mut n = 0;
    for (sc, protos) in &plan {
        for &proto in protos {
            let mut group: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
            for model in &chosen_models {
                n += 1;
                let t = Instant::now();
                let (mut cell, mut replies) = harness::run_cell(&env, sc, model, proto, opts.seed);
                score::score(&mut cell, sc.mem_bound_mib, sc.terminates);
                let mut earlier = Vec::new();
                while score::latency_only(&cell) && earlier.len() + 1 < score::ATTEMPTS {
                    // A p99 over its limit and nothing else: a busy moment of the machine
                    // looks the same as a server slowed by the attack, so the cell runs again
                    // (every attempt is recorded; see `score::ATTEMPTS`).
                    eprintln!("[{n}/{total}] {} {} {model}: {}; again", sc.id, proto.name(), summary(&cell));
                    earlier.push(cell.verdict.missed.clone());
                    let (mut again, r2) = harness::run_cell(&env, sc, model, proto, opts.seed);
                    score::score(&mut again, sc.mem_bound_mib, sc.terminates);
                    (cell, replies) = (again, r2);
                }
                cell.earlier_attempts = earlier;
                if let Some(r) = replies {
                    group.push((cells.len(), r));
                }
                eprintln!(
                    "[{n}/{total}] {} {} {model}: {} ({:.1} s)",
                    sc.id,
                    proto.name(),
                    summary(&cell),
                    t.elapsed().as_secs_f64()
                );
                cells.push(cell);
            }
            if sc.id == "malformed" && group.len() > 1 {
                let runs: Vec<(String, Vec<Vec<u8>>)> =
                    group.iter().map(|(i, r)| (cells[*i].model.clone(), r.clone())).collect();
                let found = scenarios::compare_malformed(proto, opts.seed, &runs);
                for ((i, _), diff) in group.iter().zip(found) {
                    let cell = &mut cells[*i];
                    if let (Some(d), Some(f)) = (diff, cell.figures.as_mut()) {
                        f.check_failed = Some(match f.check_failed.take() {
                            Some(c) => format!("{c}; {d}"),
                            None => d,
                        });
                        score::score(cell, sc.mem_bound_mib, sc.terminates);
                        eprintln!("abuse: malformed {} {}: {}", proto.name(), cell.model, summary(cell));
                    }
                }
            }
        }
    }
    for c in &mut cells {
        if c.verdict.kind != Kind::Fail {
            c.stderr_tail = None;
        }
    }
    let run = AbuseRun {
        schema: super::SCHEMA,
        machine,
        started_unix,
        seconds: started.elapsed().as_secs_f64(),
        args: opts.args.clone(),
        quick: opts.quick,
        settings,
        scenarios: plan.iter().map(|(sc, p)| doc(sc, p, &env)).collect(),
        expected: score::expected_docs(),
        models: chosen_models,
        missing_flags,
        cells,
    };
    write(&out, &run)?;
    let _ = std::fs::remove_dir_all(&scratch);
    let failed = run.cells.iter().any(|c| c.verdict.kind == Kind::Fail);
    let t = render::tally(&run);
    eprintln!(
        "abuse: {} pass, {} expected, {} fail, {} not applicable in {:.0} s",
        t[0].1, t[1].1, t[2].1, t[3].1, run.seconds
    );
    Ok((out, failed))
}

/// Writes `abuse.json` and `README.md`.
pub fn write(dir: &Path, run: &AbuseRun) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(run)?;
    std::fs::write(dir.join("abuse.json"), json + "\n")?;
    std::fs::write(dir.join("README.md"), render::readme(run))?;
    Ok(())
}
