//! The run directory's README.md: what was run, on what, how to reproduce it, then one table
//! per experiment (and connection count) with one row per model, a generated "what this
//! shows" line that states only the measured ranking, and the plots.

use std::fmt::Write as _;

use super::Row;
use super::format::{cell, kib, latency, sig3, superscript, thousands, unit};
use super::plots::Plot;
use crate::aggregate::Stat;
use crate::models::UnavailableKind;
use crate::results::RunResults;

fn stat_cell(stat: Option<Stat>, fmt: &dyn Fn(f64) -> String, spread: bool) -> String {
    match stat {
        None => "–".into(),
        Some(s) => {
            let mut text = fmt(s.median);
            if spread && s.max > s.min {
                text = format!("{text} ({}–{})", fmt(s.min), fmt(s.max));
            }
            if s.noisy {
                text.push_str(" ⚠");
            }
            text
        }
    }
}

/// The reasons models gave for not running the points of one table, numbered in order of
/// appearance; printed under the table.
#[derive(Default)]
struct Footnotes(Vec<String>);

impl Footnotes {
    /// The mark of `reason`, numbering it if it is new.
    fn mark(&mut self, reason: &str) -> String {
        let n = match self.0.iter().position(|r| r == reason) {
            Some(i) => i + 1,
            None => {
                self.0.push(reason.to_owned());
                self.0.len()
            }
        };
        superscript(n)
    }

    /// One paragraph per footnote, in the server's words; nothing when there are none.
    fn write(&self, out: &mut String) {
        for (i, reason) in self.0.iter().enumerate() {
            let _ = writeln!(out, "\n{} `{}`", superscript(i + 1), reason.replace('`', "'"));
        }
    }
}

/// The status cell of a point its model did not run: what kind, and a footnote with why.
fn declined(row: &Row, notes: &mut Footnotes) -> Option<String> {
    let why = row.summary.unavailable.as_ref()?;
    Some(format!("{}{}", why.kind.label(), notes.mark(&why.reason)))
}

fn status(row: &Row) -> String {
    let s = &row.summary;
    if s.ok() {
        return "ok".into();
    }
    let mut first = s.failures.first().cloned().unwrap_or_else(|| "failed".into());
    if first.chars().count() > 110 {
        first = first.chars().take(107).collect::<String>() + "…";
    }
    let extra =
        if s.failures.len() > 1 { format!(" (+{} more)", s.failures.len() - 1) } else { String::new() };
    format!("**failed** {}/{}: {}{extra}", s.reps - s.ok_reps, s.reps.max(1), cell(&first))
}

/// Whether any row of a table measured `metric` (a column that older runs did not have).
fn measured(rows: &[&Row], metric: &str) -> bool {
    rows.iter().any(|r| r.summary.get(metric).is_some())
}

fn closed_table(out: &mut String, rows: &[&Row], spread: bool) {
    let (rate, per) = unit(rows);
    // Runs that sampled the server's process tree have PSS and a process count; older runs
    // keep the table they had.
    let (pss, procs) = (measured(rows, "pss_peak"), measured(rows, "processes_peak"));
    let mut head = format!("| model | status | throughput ({rate}) | p50 | p99 | p99.9 | max | peak RSS |");
    let mut rule = "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |".to_owned();
    if pss {
        head.push_str(" peak PSS |");
        rule.push_str(" ---: |");
    }
    head.push_str(" threads |");
    rule.push_str(" ---: |");
    if procs {
        head.push_str(" processes |");
        rule.push_str(" ---: |");
    }
    let _ = writeln!(
        out,
        "{head} switches / {per} | server CPU / {per} | server busy | loadgen busy |\n{rule} ---: | ---: | ---: | ---: |"
    );
    let lat = |v: f64| latency(v);
    let count = |v: f64| thousands(v);
    let mem = |v: f64| kib(v);
    let small = |v: f64| sig3(v);
    let mut notes = Footnotes::default();
    for r in rows {
        let s = &r.summary;
        let figures = 11 + usize::from(pss) + usize::from(procs);
        if let Some(status) = declined(r, &mut notes) {
            let _ = writeln!(out, "| {} | {status} |{}", r.point.spec.model, " — |".repeat(figures));
            continue;
        }
        let mut cells = vec![
            stat_cell(s.get("throughput"), &count, spread),
            stat_cell(s.get("p50"), &lat, false),
            stat_cell(s.get("p99"), &lat, spread),
            stat_cell(s.get("p99.9"), &lat, false),
            stat_cell(s.get("max"), &lat, false),
            stat_cell(s.get("rss_peak"), &mem, false),
        ];
        if pss {
            cells.push(stat_cell(s.get("pss_peak"), &mem, false));
        }
        cells.push(stat_cell(s.get("threads_peak"), &count, false));
        if procs {
            cells.push(stat_cell(s.get("processes_peak"), &count, false));
        }
        let mut switches = stat_cell(s.get("switches_per_request"), &small, false);
        if s.switches_partial && s.get("switches_per_request").is_some() {
            // Processes that ended inside the window took their counts with them.
            switches = format!("≥ {switches}");
        }
        cells.extend([
            switches,
            stat_cell(s.get("server_cpu_per_request"), &lat, false),
            stat_cell(s.get("server_busy"), &percent, false),
            busy_cell(s),
        ]);
        let _ = writeln!(out, "| {} | {} | {} |", r.point.spec.model, status(r), cells.join(" | "));
    }
    notes.write(out);
}

fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// loadgen's CPU use as a percentage of its thread's time, flagged when it was the limit.
fn busy_cell(s: &crate::aggregate::Summary) -> String {
    let mut text = stat_cell(s.get("loadgen_busy"), &percent, false);
    if s.loadgen_bound() {
        text.push_str(" ◆");
    }
    text
}

/// The measured ranking of `rows`, in words.
pub fn what_this_shows(rows: &[&Row]) -> String {
    let ok: Vec<&&Row> = rows.iter().filter(|r| r.summary.ok()).collect();
    let failed: Vec<&str> =
        rows.iter().filter(|r| r.summary.failed()).map(|r| r.point.spec.model.as_str()).collect();
    let declined = |kind: UnavailableKind| -> Vec<&str> {
        rows.iter()
            .filter(|r| r.summary.unavailable.as_ref().is_some_and(|u| u.kind == kind))
            .map(|r| r.point.spec.model.as_str())
            .collect()
    };
    // The honest memory figure where the run measured it: PSS counts pages a forked child
    // shares with its parent once, RSS once per process.
    let memory = if !ok.is_empty() && ok.iter().all(|r| r.summary.get("pss_peak").is_some()) {
        ("pss_peak", "peak PSS")
    } else {
        ("rss_peak", "peak RSS")
    };
    let mut parts = Vec::new();
    let mut by = |metric: &str, higher_first: bool, fmt: &dyn Fn(f64) -> String, label: &str| {
        let mut v: Vec<(&str, f64)> = ok
            .iter()
            .filter_map(|r| r.summary.get(metric).map(|s| (r.point.spec.model.as_str(), s.median)))
            .collect();
        if v.is_empty() {
            return;
        }
        v.sort_by(|a, b| {
            if higher_first { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) }.then(a.0.cmp(b.0))
        });
        let sep = if higher_first { " > " } else { " < " };
        parts.push(format!(
            "{label}: {}",
            v.iter().map(|(m, x)| format!("{m} {}", fmt(*x))).collect::<Vec<_>>().join(sep)
        ));
    };
    let (rate, _) = unit(rows);
    by("throughput", true, &|x| format!("{} {rate}", thousands(x)), "throughput");
    by("p99", false, &|x| latency(x), "p99");
    by(memory.0, false, &|x| kib(x), memory.1);
    let mut text = match ok.len() {
        0 => "no model completed this point cleanly".to_owned(),
        1 => format!("only one model completed this point cleanly; {}", parts.join("; ")),
        _ => parts.join("; "),
    };
    if !failed.is_empty() {
        let _ = write!(text, ". Failed: {}", failed.join(", "));
    }
    for kind in [UnavailableKind::NotServed, UnavailableKind::UnavailableHere] {
        let models = declined(kind);
        if !models.is_empty() {
            let label = match kind {
                UnavailableKind::NotServed => "Not served by this model",
                UnavailableKind::UnavailableHere => "Unavailable here",
            };
            let _ = write!(text, ". {label}: {}", models.join(", "));
        }
    }
    let bound: Vec<&str> =
        ok.iter().filter(|r| r.summary.loadgen_bound()).map(|r| r.point.spec.model.as_str()).collect();
    if !bound.is_empty() {
        let _ = write!(
            text,
            ". loadgen, not the server, was the limit (◆) for {}: those servers had time to spare",
            bound.join(", ")
        );
    }
    text.push('.');
    text
}

fn sweep_table(out: &mut String, rows: &[&Row]) {
    out.push_str(
        "| model | offered | offered (req/s) | achieved (req/s) | p50 | p99 | p99.9 | max | loadgen busy | status |\n",
    );
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    let lat = |v: f64| latency(v);
    let count = |v: f64| thousands(v);
    let mut notes = Footnotes::default();
    for r in rows {
        let s = &r.summary;
        let fraction = match &r.point.spec.pace {
            crate::matrix::PaceSpec::Fraction { fraction, .. } => format!("{fraction}× max"),
            crate::matrix::PaceSpec::Closed => "closed".into(),
        };
        if let Some(status) = declined(r, &mut notes) {
            let _ = writeln!(out, "| {} | {fraction} |{} {status} |", r.point.spec.model, " — |".repeat(7));
            continue;
        }
        // A shortfall while loadgen was saturated is loadgen's, not the server's: say whose.
        let short = if s.loadgen_bound() { "fell short: loadgen's limit ◆" } else { "fell short" };
        let st = match (s.ok(), s.fell_short) {
            (true, true) => short.to_owned(),
            (false, true) => format!("{}, {short}", status(r)),
            _ => status(r),
        };
        let _ = writeln!(
            out,
            "| {} | {fraction} | {} | {} | {} | {} | {} | {} | {} | {st} |",
            r.point.spec.model,
            r.point.rate.map(thousands).unwrap_or_else(|| "–".into()),
            stat_cell(s.get("throughput"), &count, false),
            stat_cell(s.get("p50"), &lat, false),
            stat_cell(s.get("p99"), &lat, false),
            stat_cell(s.get("p99.9"), &lat, false),
            stat_cell(s.get("max"), &lat, false),
            busy_cell(s),
        );
    }
    notes.write(out);
}

fn sweep_shows(rows: &[&Row]) -> String {
    let mut models: Vec<&str> = Vec::new();
    for r in rows {
        if !models.contains(&r.point.spec.model.as_str()) {
            models.push(&r.point.spec.model);
        }
    }
    let parts: Vec<String> = models
        .iter()
        .map(|m| {
            let mine: Vec<&&Row> =
                rows.iter().filter(|r| r.point.spec.model == *m && r.point.rate.is_some()).collect();
            let kept: Vec<&&&Row> = mine.iter().filter(|r| r.summary.ok() && !r.summary.fell_short).collect();
            let all: Vec<&&Row> = rows.iter().filter(|r| r.point.spec.model == *m).collect();
            if let Some(why) = all.iter().find_map(|r| r.summary.unavailable.as_ref()) {
                if all.iter().all(|r| r.summary.unavailable.is_some()) {
                    return format!("{m}: {}", why.kind.label());
                }
            }
            match kept.iter().filter_map(|r| r.point.rate.map(|x| (x, r))).max_by(|a, b| a.0.total_cmp(&b.0))
            {
                Some((rate, r)) => format!(
                    "{m}: highest offered rate served in full {} req/s (p99 {} there)",
                    thousands(rate),
                    r.summary.get("p99").map(|s| latency(s.median)).unwrap_or_else(|| "–".into())
                ),
                None if mine.is_empty() => format!("{m} did not run"),
                None => format!("{m}: served none of the offered rates in full"),
            }
        })
        .collect();
    format!("{}.", parts.join("; "))
}

/// Renders README.md.
pub fn render(results: &RunResults, rows: &[Row], plots: &[Plot]) -> String {
    let m = &results.machine;
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark run `{}`\n", results.run_id);
    out.push_str(
        "Generated by `suite` from [`results.json`](results.json), which holds every raw measurement; \
`suite report <this directory>` regenerates this page, [`results.csv`](results.csv) and the plots from it \
byte for byte. Each repetition's latency distribution is in [`hgrm/`](hgrm/) (HdrHistogram text, ms). \
`suite run` also writes loadgen's own reports to `raw/` and every process's output to `logs/`; a run kept in \
the repository keeps only the logs of repetitions that failed (`scripts/prune-run.sh`), since results.json \
holds the reports.\n\n",
    );
    out.push_str("## Reproduce\n\n```sh\n");
    let _ = writeln!(out, "{}\n```\n", results.reproduce);
    let spec0 = results.points.first().map(|p| &p.spec);
    out.push_str("## On what\n\n| | |\n| --- | --- |\n");
    let _ = writeln!(out, "| host | {} |", cell(&m.host));
    let usable = if m.cpus_allowed.is_empty() {
        String::new()
    } else {
        format!(": {}", crate::cpus::format(&m.cpus_allowed))
    };
    let _ = writeln!(out, "| CPU | {} ({} CPUs usable{usable}) |", cell(&m.cpu_model), m.cores);
    let _ = writeln!(out, "| memory | {} |", kib(m.memory_kib as f64));
    let _ = writeln!(out, "| kernel | {} |", cell(&m.kernel));
    let _ = writeln!(out, "| rustc | {} |", cell(&m.rustc));
    let _ = writeln!(
        out,
        "| commit | `{}`{} |",
        m.git_commit,
        if m.git_dirty { " with uncommitted changes" } else { "" }
    );
    let pin = &results.pinning;
    let pinning = if pin.server_cpus.is_empty() {
        pin.note.clone()
    } else {
        format!(
            "server on CPU(s) {}, loadgen on CPU(s) {}; {}",
            crate::cpus::format(&pin.server_cpus),
            crate::cpus::format(&pin.loadgen_cpus),
            pin.note
        )
    };
    let _ = writeln!(out, "| pinning | {} |", cell(&pinning));
    let took = if results.wall_seconds < 120.0 {
        format!("{} s", sig3(results.wall_seconds))
    } else {
        format!("{} min", sig3(results.wall_seconds / 60.0))
    };
    let _ = writeln!(out, "| started | {} (took {took}) |", results.started_at);
    if let Some(p) = spec0 {
        let _ = writeln!(
            out,
            "| per point | {} repetition(s); loadgen warm-up {} s, measured {} s, timeout {} s, {} loadgen thread(s) |",
            p.repeat,
            sig3(p.warmup_s),
            sig3(p.duration_s),
            sig3(p.timeout_s),
            p.loadgen_threads
        );
    }
    if !results.models.is_empty() {
        out.push_str("\n## Models\n\nAs `server --list-models` describes them.\n\n| model | what it is |\n| --- | --- |\n");
        for model in &results.models {
            let _ = writeln!(out, "| {} | {} |", cell(&model.name), cell(&model.about));
        }
    }
    // A server pinned to several CPUs is busy in shares of all of them.
    let several = results.points.iter().flat_map(|p| &p.repetitions).any(|r| r.server.cpus.len() > 1);
    let pinned_to = if several { "all the CPUs it is" } else { "the one CPU it is" };
    // Later runs measured more: their page says so, and older pages stay as they were.
    let reps = || results.points.iter().flat_map(|p| &p.repetitions);
    let tree = reps().any(|r| r.samples.as_ref().is_some_and(|s| s.scope.as_deref() == Some("process-tree")));
    let churn = results.points.iter().any(|p| p.spec.conn_per_request);
    let declined = results.points.iter().any(|p| p.unavailable.is_some());
    out.push_str(
        "\n## How to read the tables\n\n\
- **throughput**: replies per second over the measured phase. Closed loop: every connection keeps one request in flight.\n",
    );
    if churn {
        out.push_str(
            "- **conn/s**: where every request has a connection of its own (loadgen `--conn-per-request`), the \
connections opened per second, one request each: connect, send, check the reply, close, start over. Its latency \
counts from the start of the connect.\n",
        );
    }
    out.push_str(
        "- **p50 … max**: latency from writing a request to the last byte of its reply (closed loop), or from the request's \
*due time* (open loop, coordinated omission corrected). Each figure is the median of the repetitions' own \
percentiles, never an average of percentiles.\n",
    );
    if tree {
        out.push_str(
            "- The server's figures cover its **whole process tree**: the server and every process below it (a model \
that forks serves each client in a child). RSS, PSS, threads, descriptors and context switches are summed over the \
processes; CPU time includes the children the server has already reaped.\n\
- **peak RSS**: the server's VmHWM, or the largest sum over its tree when that is higher. RSS counts a page once for \
every process that maps it, so forked children that share their parent's pages copy-on-write are counted many \
times; **peak PSS** (from `smaps_rollup`, read about every 500 ms) divides each shared page among the processes \
that share it, and is the honest figure for memory; the plots and rankings use it. **threads**, **processes**: the \
most seen in /proc samples every 100 ms; processes include zombies (children that have exited and wait for the \
server to reap them, each still holding a PID), threads do not.\n",
        );
    } else {
        out.push_str(
            "- **peak RSS**: the server's VmHWM; **threads**: the most seen in /proc samples every 100 ms.\n",
        );
    }
    out.push_str(
        "- **switches / req**, **server CPU / req**: the server's context switches (voluntary + involuntary, all threads) \
and CPU time (user + system) over the measured phase, divided by the replies in it (over the whole loadgen run \
when loadgen did not announce its phases; see `samples.window` in results.json).",
    );
    if tree {
        out.push_str(
            " ≥ marks switches that are a lower bound: processes ended inside the measured phase and took their \
counts with them (Linux keeps a reaped child's CPU time for its parent, but not its switches).",
        );
    }
    let _ = write!(
        out,
        "\n\
- **server busy**, **loadgen busy**: each one's CPU time over the measured phase, as a share of {pinned_to} \
pinned to (for loadgen: of the time its threads had, leaving out the time it spun rather than slept while \
waiting for an open-loop send that was due within `--spin`). ◆ marks a row where loadgen was 90% busy or more while \
the server was not: loadgen set the pace, so the throughput is a lower bound for that server, and an open-loop \
shortfall is loadgen's. When both are near 100%, the pair is at the machine's limit.\n\
- Cells show the median of the repetitions; throughput and p99 add (min–max) when they differ. ⚠ marks a metric \
whose spread exceeds 10% of its median (noisy). A **failed** point names what went wrong; its figures are what \
was measured anyway.\n",
    );
    if declined {
        out.push_str(
            "- **unavailable here** and **not served by this model**, with — in every figure: the model said, before \
it listened, that it cannot run this point (this machine lacks what it needs, or the model does not serve the \
protocol by design). Its words are in the footnote under the table. That is neither a result nor a failure, and \
the point was not tried again.\n",
        );
    }
    out.push('\n');
    let spread = spec0.is_some_and(|p| p.repeat > 1);
    for exp in &results.experiments {
        let exp_rows: Vec<&Row> = rows.iter().filter(|r| r.point.spec.experiment == exp.name).collect();
        // An experiment that ran nothing still gets its heading when it has notes saying why.
        if exp_rows.is_empty() && exp.notes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {}\n", exp.title);
        if !exp.about.is_empty() {
            let _ = writeln!(out, "{}\n", exp.about);
        }
        if !exp.notes.is_empty() {
            let _ = writeln!(out, "{}\n", exp.notes.join(" "));
        }
        if exp.sweep {
            sweep_table(&mut out, &exp_rows);
            let _ = writeln!(out, "\n**What this shows:** {}\n", sweep_shows(&exp_rows));
        } else {
            let key = |r: &Row| (r.point.spec.conns, r.point.spec.idle_conns, r.point.spec.server_cpus);
            let mut variants: Vec<(usize, usize, Option<usize>)> = Vec::new();
            for r in &exp_rows {
                if !variants.contains(&key(r)) {
                    variants.push(key(r));
                }
            }
            variants.sort_unstable();
            for (conns, idle, cpus) in variants {
                let sub: Vec<&Row> =
                    exp_rows.iter().copied().filter(|r| key(r) == (conns, idle, cpus)).collect();
                let idle_text =
                    if idle > 0 { format!(" + {} idle", thousands(idle as f64)) } else { String::new() };
                let cpus_text = match cpus {
                    Some(n) => format!(", {n} server CPU{}", if n == 1 { "" } else { "s" }),
                    None => String::new(),
                };
                let _ = writeln!(
                    out,
                    "### {} connection{}{idle_text}{cpus_text}\n",
                    thousands(conns as f64),
                    if conns == 1 { "" } else { "s" }
                );
                closed_table(&mut out, &sub, spread);
                let _ = writeln!(out, "\n**What this shows:** {}\n", what_this_shows(&sub));
            }
            if exp.scale_cpus {
                let _ = writeln!(out, "**Scaling:** {}\n", super::scaling::speedup(&exp_rows));
            }
        }
        for plot in plots.iter().filter(|p| p.experiment == exp.name) {
            let _ = writeln!(out, "![{}]({})\n", plot.caption, plot.file);
        }
    }
    out
}
