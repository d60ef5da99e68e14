//! Everything a run directory shows a reader, computed from `results.json` alone: the README
//! with its tables, `results.csv` and the SVG plots.
//!
//! `suite run` writes results.json and then calls [`render_dir`], exactly as `suite report`
//! does, so a re-render is byte-for-byte what the run wrote. Nothing here reads a clock or the
//! environment; order comes from the plan, and numbers are formatted by fixed rules.

pub mod bars;
pub mod csv;
pub mod format;
pub mod plots;
pub mod readme;
pub mod scaling;
pub mod svg;

use std::path::Path;

use crate::aggregate::{self, Summary};
use crate::results::{self, PointResult, RunResults};

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// results.json could not be read.
    #[error(transparent)]
    Load(#[from] results::LoadError),
    /// An output could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A point with its summary, as every renderer sees it.
pub struct Row<'a> {
    /// The raw point.
    pub point: &'a PointResult,
    /// Its aggregate.
    pub summary: Summary,
}

/// Summarises every point of `results`, in plan order.
pub fn rows(results: &RunResults) -> Vec<Row<'_>> {
    results.points.iter().map(|p| Row { point: p, summary: aggregate::summarise(p) }).collect()
}

/// The files a run directory's report consists of: relative path and contents.
pub fn render(results: &RunResults) -> Vec<(String, String)> {
    let rows = rows(results);
    let palette = plots::Palette::of(results);
    // Bar charts first: on the page they come before their experiment's spectra.
    let mut plots = bars::plots(results, &rows, &palette);
    plots.extend(plots::all(results, &rows));
    plots.extend(scaling::plots(results, &rows, &palette));
    let mut files = vec![
        ("README.md".to_owned(), readme::render(results, &rows, &plots)),
        ("results.csv".to_owned(), csv::render(&rows)),
    ];
    files.extend(plots.into_iter().map(|p| (p.file, p.svg)));
    files
}

/// Reads `dir/results.json` and (re)writes README.md, results.csv and plots/.
pub fn render_dir(dir: &Path) -> Result<Vec<String>, RenderError> {
    let results = results::load(&dir.join("results.json"))?;
    let files = render(&results);
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| RenderError::Write { path: parent.display().to_string(), source })?;
        }
        std::fs::write(&path, text)
            .map_err(|source| RenderError::Write { path: path.display().to_string(), source })?;
        written.push(name);
    }
    Ok(written)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::loadgen_doc::tests::sample_report;
    use crate::machine::Machine;
    use crate::matrix::expand::tests::{FIVE, available};
    use crate::matrix::{DEFAULT_MATRIX, Overrides, expand, parse};
    use crate::results::{LoadgenRun, Pinning, Repetition, Samples, ServerRun};

    fn rep(n: u32, rate: f64, failures: Vec<String>) -> Repetition {
        Repetition {
            rep: n,
            server: ServerRun {
                command: vec!["server".into()],
                addr: Some("127.0.0.1:1".into()),
                startup_ms: Some(3),
                exit: "exit 0".into(),
                clean_exit: true,
                cpus: vec![0],
                log: "logs/x".into(),
            },
            loadgen: Some(LoadgenRun {
                command: vec!["loadgen".into()],
                exit_code: Some(0),
                killed_at_deadline: false,
                wall_seconds: 2.5,
                report: Some(sample_report(rate, &[10_000, 20_000, 30_000 + u64::from(n)], false)),
                hgrm: None,
                logs: vec![],
            }),
            samples: Some(Samples {
                window: "measured-phase".into(),
                window_seconds: 2.0,
                cpu_user_seconds: 0.5,
                cpu_system_seconds: 1.0,
                voluntary_switches: 1000,
                involuntary_switches: 10,
                rss_peak_kib: 4000 + u64::from(n),
                rss_final_kib: 3900,
                threads_peak: 3,
                threads_final: 3,
                fds_peak: 20,
                fds_final: 5,
                processes_peak: None,
                processes_final: None,
                pss_peak_kib: None,
                pss_final_kib: None,
                reaped_cpu_seconds: None,
                scope: None,
                series: vec![],
            }),
            failures,
            unavailable: None,
        }
    }

    /// A synthetic run of the default plan's closed-64B and c10k points.
    pub fn synthetic() -> RunResults {
        let plan = expand(&parse(DEFAULT_MATRIX).unwrap(), &Overrides::default(), &available(&FIVE)).unwrap();
        let points = plan
            .points
            .iter()
            .filter(|p| p.experiment == "closed-64B" || p.experiment == "c10k")
            .enumerate()
            .map(|(i, spec)| PointResult {
                spec: spec.clone(),
                rate: None,
                not_run: None,
                unavailable: None,
                repetitions: (1..=3)
                    .map(|n| {
                        let fail = if spec.model == "blocking" && spec.conns > 1 {
                            vec!["loadgen: connection 1: timed out | no reply".to_owned()]
                        } else {
                            vec![]
                        };
                        rep(n, 1000.0 * (i + 1) as f64 + f64::from(n) * 40.0, fail)
                    })
                    .collect(),
            })
            .collect();
        RunResults {
            schema_version: results::SCHEMA_VERSION,
            run_id: "2026-01-01-host-abc1234".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            wall_seconds: 100.0,
            reproduce: "scripts/bench.sh".into(),
            suite_args: vec![],
            machine: Machine {
                host: "host".into(),
                kernel: "Linux 6".into(),
                cpu_model: "CPU".into(),
                cores: 2,
                cpus_allowed: vec![0, 1],
                memory_kib: 1 << 20,
                rustc: "rustc 1".into(),
                git_commit: "abc1234".into(),
                git_dirty: false,
            },
            pinning: Pinning {
                server_cpu: Some(0),
                loadgen_cpu: Some(1),
                note: "pinned".into(),
                server_cpus: vec![0],
                loadgen_cpus: vec![1],
            },
            models: vec![],
            matrix_text: DEFAULT_MATRIX.into(),
            experiments: plan.experiments.clone(),
            points,
        }
    }

    #[test]
    fn rendering_is_deterministic_and_survives_a_round_trip_through_json() {
        let results = synthetic();
        let first = render(&results);
        assert_eq!(first, render(&results));
        let dir = std::env::temp_dir().join(format!("suite-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        results::save(&results, &dir.join("results.json")).unwrap();
        render_dir(&dir).unwrap();
        for (name, text) in &first {
            assert_eq!(&std::fs::read_to_string(dir.join(name)).unwrap(), text, "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn readme_has_a_table_per_variant_and_names_failures() {
        let files = render(&synthetic());
        let readme = &files.iter().find(|(n, _)| n == "README.md").unwrap().1;
        assert!(readme.contains("### 1,000 connections"));
        assert!(readme.contains("### 16 connections + 10,000 idle"));
        // The pipe inside the failure is escaped, so the table stays a table.
        assert!(readme.contains("**failed** 3/3: loadgen: connection 1: timed out \\| no reply"));
        assert!(readme.contains("**What this shows:** throughput: "));
        assert!(readme.contains("Failed: blocking."));
        assert!(readme.contains("![throughput against connections](plots/throughput_vs_connections.svg)"));
        let csv = &files.iter().find(|(n, _)| n == "results.csv").unwrap().1;
        assert_eq!(csv.lines().count(), 1 + 5 * 5);
        assert!(files.iter().any(|(n, _)| n == "plots/memory_vs_connections.svg"));
        assert!(files.iter().any(|(n, _)| n == "plots/spectrum-c10k-c16+i10000.svg"));
    }

    /// A run of a later suite: the server's process tree sampled (PSS, processes), the
    /// connect-rate experiment, and points the models declined: `io-uring` unavailable here,
    /// `process-per-connection` not serving kv.
    fn synthetic_tree() -> RunResults {
        let mut results = synthetic();
        let models = [FIVE.as_slice(), &["io-uring", "process-per-connection"]].concat();
        let plan =
            expand(&parse(DEFAULT_MATRIX).unwrap(), &Overrides::default(), &available(&models)).unwrap();
        results.experiments = plan.experiments.clone();
        let wanted = |p: &&crate::matrix::PointSpec| {
            ["closed-64B", "connect-rate", "kv-mix", "rate-sweep"].contains(&p.experiment.as_str())
        };
        results.points = plan
            .points
            .iter()
            .filter(wanted)
            .enumerate()
            .map(|(i, spec)| {
                let unavailable = match (spec.model.as_str(), spec.proto.as_str()) {
                    ("io-uring", _) => Some(crate::models::Unavailable {
                        kind: crate::models::UnavailableKind::UnavailableHere,
                        reason: "io-uring is unavailable here: io_uring_setup: Operation not permitted"
                            .into(),
                    }),
                    ("process-per-connection", "kv") => Some(crate::models::Unavailable {
                        kind: crate::models::UnavailableKind::NotServed,
                        reason: "process-per-connection does not serve kv: they share no store".into(),
                    }),
                    _ => None,
                };
                let repetitions = match unavailable {
                    Some(_) => vec![],
                    None => (1..=3)
                        .map(|n| {
                            let mut r = rep(n, 1000.0 * (i + 1) as f64, vec![]);
                            let s = r.samples.as_mut().unwrap();
                            s.scope = Some("process-tree".into());
                            let forks = spec.model == "process-per-connection";
                            s.processes_peak = Some(if forks { 1 + spec.conns as u64 } else { 1 });
                            s.processes_final = Some(1);
                            s.pss_peak_kib = Some(if forks { 3000 + 200 * spec.conns as u64 } else { 3000 });
                            s.pss_final_kib = Some(2900);
                            s.reaped_cpu_seconds = Some(if forks { 0.4 } else { 0.0 });
                            if forks {
                                s.rss_peak_kib = 4000 * (1 + spec.conns as u64);
                            }
                            r
                        })
                        .collect(),
                };
                PointResult { spec: spec.clone(), rate: None, not_run: None, unavailable, repetitions }
            })
            .collect();
        results
    }

    #[test]
    fn a_tree_run_shows_pss_processes_connections_per_second_and_what_was_declined() {
        let results = synthetic_tree();
        let files = render(&results);
        let readme = &files.iter().find(|(n, _)| n == "README.md").unwrap().1;
        // The process-tree columns and how to read them.
        assert!(
            readme.contains("| peak RSS | peak PSS | threads | processes | switches / req |"),
            "{readme}"
        );
        assert!(readme.contains("**whole process tree**"), "{readme}");
        assert!(
            readme.contains("- **peak RSS**: the server's VmHWM, or the largest sum over its tree"),
            "{readme}"
        );
        // connect-rate counts connections, its own table and bar chart.
        assert!(readme.contains("## New connections: one 64-byte request per connection"), "{readme}");
        assert!(readme.contains("| throughput (conn/s) |") && readme.contains("switches / conn"), "{readme}");
        assert!(readme.contains("- **conn/s**: where every request has a connection of its own"), "{readme}");
        assert!(
            readme
                .contains("![new connections per second, connect-rate c16](plots/bars-connect-rate-c16.svg)")
        );
        // A forking model's switches are a lower bound; the memory ranking is by PSS.
        assert!(readme.contains("| ≥ "), "{readme}");
        assert!(readme.contains("peak PSS: "), "{readme}");
        // Declined points: a label with a footnote, em dashes, and the server's words.
        assert!(readme.contains("| io-uring | unavailable here¹ | — | — |"), "{readme}");
        assert!(readme.contains("¹ `io-uring is unavailable here: io_uring_setup: Operation not permitted`"));
        assert!(readme.contains("| process-per-connection | not served by this model² |"), "{readme}");
        assert!(
            readme.contains("² `process-per-connection does not serve kv: they share no store`"),
            "{readme}"
        );
        assert!(
            readme
                .contains(". Not served by this model: process-per-connection. Unavailable here: io-uring.")
        );
        assert!(!readme.contains("Failed: io-uring"), "declining is not failing");
        assert!(readme.contains("- **unavailable here** and **not served by this model**"), "{readme}");
        // The sweep's io-uring rows (if it named io-uring) would say so; async's ran.
        // CSV: the later metrics get columns, and the status says what was declined.
        let csv = &files.iter().find(|(n, _)| n == "results.csv").unwrap().1;
        assert!(csv.lines().next().unwrap().ends_with("processes_peak_processes_max,processes_peak_noisy"));
        assert!(csv.contains(",unavailable here: io-uring is unavailable here: io_uring_setup"), "{csv}");
        // The memory plot plots PSS when every point has it.
        let memory = &files.iter().find(|(n, _)| n == "plots/memory_vs_connections.svg").unwrap().1;
        assert!(memory.contains("Peak PSS against connections held"), "{memory}");
        let bars = &files.iter().find(|(n, _)| n == "plots/bars-connect-rate-c16.svg").unwrap().1;
        assert!(bars.contains("— unavailable here") && bars.contains(">process-per-connection<"), "{bars}");
        // And the whole page survives results.json.
        let dir = std::env::temp_dir().join(format!("suite-render-tree-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        results::save(&results, &dir.join("results.json")).unwrap();
        render_dir(&dir).unwrap();
        for (name, text) in &files {
            assert_eq!(&std::fs::read_to_string(dir.join(name)).unwrap(), text, "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The synthetic run plus the scaling experiment on a server with four CPUs, throughput
    /// growing with the CPUs for every model but `thread-per-connection`.
    fn synthetic_scaling(server_cpus: usize) -> RunResults {
        let mut results = synthetic();
        let mut offer = available(&[FIVE.as_slice(), &["multi-reactor"]].concat());
        offer.server_cpus = (0..server_cpus).collect();
        let plan = expand(&parse(DEFAULT_MATRIX).unwrap(), &Overrides::default(), &offer).unwrap();
        results.experiments = plan.experiments.clone();
        results.pinning.server_cpus = offer.server_cpus.clone();
        results.pinning.loadgen_cpus = vec![server_cpus];
        results.points.extend(plan.points.iter().filter(|p| p.experiment == "scaling").map(|spec| {
            let n = spec.server_cpus.unwrap_or(1);
            let gain = if spec.model == "thread-per-connection" { 1.0 } else { n as f64 };
            PointResult {
                spec: spec.clone(),
                rate: None,
                not_run: None,
                unavailable: None,
                repetitions: (1..=3)
                    .map(|k| {
                        let mut r = rep(k, 10_000.0 * gain, vec![]);
                        r.server.cpus = (0..n).collect();
                        r
                    })
                    .collect(),
            }
        }));
        results
    }

    #[test]
    fn scaling_gets_a_table_per_cpu_count_a_sentence_and_a_plot() {
        let files = render(&synthetic_scaling(4));
        let readme = &files.iter().find(|(n, _)| n == "README.md").unwrap().1;
        assert!(readme.contains("### 128 connections, 2 server CPUs"), "{readme}");
        assert!(readme.contains("Server CPUs: 1, 2, 4, the first N of the server's list (0-3)."));
        assert!(
            readme.contains("multi-reactor 40,000 req/s on 4 CPUs, 4.00× its 10,000 on 1 CPU"),
            "{readme}"
        );
        assert!(readme.contains("thread-per-connection 10,000 req/s on 4 CPUs, 1.00×"), "{readme}");
        assert!(
            readme.contains("| pinning | server on CPU(s) 0-3, loadgen on CPU(s) 4; pinned |"),
            "{readme}"
        );
        assert!(readme.contains("a share of all the CPUs it is pinned to"));
        let svg = &files.iter().find(|(n, _)| n == "plots/throughput_vs_server_cpus.svg").unwrap().1;
        // Three models, three steps each; multi-reactor gets a spare colour of its own.
        assert_eq!(svg.matches("<polyline").count(), 3, "{svg}");
        assert!(svg.contains("#8c564b"), "{svg}");
    }

    #[test]
    fn one_server_cpu_still_gives_the_section_and_says_why() {
        let files = render(&synthetic_scaling(1));
        let readme = &files.iter().find(|(n, _)| n == "README.md").unwrap().1;
        assert!(readme.contains("## Scaling:"));
        assert!(
            readme.contains("Only the 1-CPU step ran: the server's CPU list (0) has one CPU"),
            "{readme}"
        );
        assert!(readme.contains("**Scaling:** multi-reactor 10,000 req/s on 1 CPU;"), "{readme}");
        let svg = &files.iter().find(|(n, _)| n == "plots/throughput_vs_server_cpus.svg").unwrap().1;
        assert_eq!(svg.matches("<circle").count(), 3, "one point per model");
        assert!(svg.contains("one step only"));
    }
}
