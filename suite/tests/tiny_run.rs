//! One real run of a tiny matrix (reactor, two points, and a scaling experiment on `async`
//! plus a model no server has; two repetitions each) against the workspace's own `server` and
//! `loadgen` binaries, then `suite report` on its directory: every rendered file must come
//! back byte for byte.
//!
//! The binaries are looked for next to the suite's test binary (`cargo test --workspace` builds
//! them there) and in the sibling `release` directory, or in `$SUITE_TEST_BIN_DIR`. When they are
//! absent (`cargo test -p suite` alone builds neither) the test says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

const TINY: &str = r#"
models = ["reactor"]

[defaults]
repeat = 2
warmup = "100ms"
duration = "1s"
timeout = "2s"
server_args = ["--grace", "1s"]

[[experiment]]
name = "closed"
title = "closed loop"
conns = [2]
plots = ["throughput", "memory", "spectrum"]

[[experiment]]
name = "sweep"
title = "open loop"
conns = [2]
plots = ["rate"]

[experiment.sweep]
base = "closed"
base_conns = 2
fractions = [0.5]

[[experiment]]
name = "scale"
title = "scaling"
conns = [2]
models = ["async", "no-such-model"]
scale_cpus = true
plots = ["scaling"]

[experiment.model_args]
async = ["--runtime", "multi-thread", "--threads", "{cpus}"]
"#;

fn find_bins() -> Option<(PathBuf, PathBuf)> {
    let suite = PathBuf::from(env!("CARGO_BIN_EXE_suite"));
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("SUITE_TEST_BIN_DIR") {
        dirs.push(d.into());
    }
    if let Some(d) = suite.parent() {
        dirs.push(d.to_path_buf());
        dirs.push(d.join("../release"));
    }
    dirs.into_iter().find_map(|d| {
        let (s, l) = (d.join("server"), d.join("loadgen"));
        (s.is_file() && l.is_file()).then_some((s, l))
    })
}

fn read_rendered(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec!["README.md".to_owned(), "results.csv".to_owned()];
    let mut plots: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .expect("plots/ exists")
        .map(|e| format!("plots/{}", e.expect("entry").file_name().to_string_lossy()))
        .collect();
    plots.sort();
    names.extend(plots);
    names.into_iter().map(|n| (n.clone(), std::fs::read(dir.join(&n)).expect("rendered file"))).collect()
}

#[test]
fn tiny_matrix_runs_and_report_rerenders_byte_for_byte() {
    let Some((server, loadgen)) = find_bins() else {
        eprintln!("skipped: no server/loadgen binaries built next to the suite (run cargo test --workspace)");
        return;
    };
    let tmp = std::env::temp_dir().join(format!("suite-tiny-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let matrix = tmp.join("tiny.toml");
    std::fs::write(&matrix, TINY).unwrap();
    let out = tmp.join("run");
    let run = Command::new(env!("CARGO_BIN_EXE_suite"))
        .args(["run", "--matrix"])
        .arg(&matrix)
        .arg("--out")
        .arg(&out)
        .arg("--server-bin")
        .arg(&server)
        .arg("--loadgen-bin")
        .arg(&loadgen)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "suite run failed: {}\n{log}", run.status);
    assert!(log.contains("estimated"), "the estimate is printed first:\n{log}");

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["schema_version"], 1);
    let points = results["points"].as_array().unwrap();
    // closed, sweep, and the scaling steps this machine's server CPUs allow for `async`.
    let steps = points.iter().filter(|p| p["spec"]["experiment"] == "scale").count();
    assert!(steps >= 1, "{points:?}");
    assert_eq!(points.len(), 2 + steps);
    assert!(log.contains("scale: `no-such-model` was not run"), "one printed line per skipped model:\n{log}");
    assert!(results["models"].as_array().unwrap().iter().any(|m| m["name"] == "reactor"));
    for p in points {
        let reps = p["repetitions"].as_array().unwrap();
        assert_eq!(reps.len(), 2, "{p}");
        for r in reps {
            assert_eq!(r["failures"].as_array().unwrap().len(), 0, "{r}");
            assert_eq!(r["server"]["exit"], "exit 0");
            assert!(r["loadgen"]["report"]["counts"]["requests"].as_u64().unwrap() > 0);
            assert!(r["samples"]["rss_peak_kib"].as_u64().unwrap() > 0);
            assert!(out.join(r["loadgen"]["hgrm"].as_str().unwrap()).is_file());
        }
    }
    // The sweep's rate is half the closed-loop median.
    assert!(points[1]["rate"].as_f64().unwrap() > 0.0);

    let before = read_rendered(&out);
    assert!(before.iter().any(|(n, _)| n == "plots/throughput_vs_connections.svg"));
    assert!(before.iter().any(|(n, _)| n == "plots/latency_vs_rate.svg"));
    assert!(before.iter().any(|(n, _)| n == "plots/throughput_vs_server_cpus.svg"));
    let readme = String::from_utf8_lossy(&before[0].1).into_owned();
    assert!(readme.contains("## scaling") && readme.contains("**Scaling:** async "), "{readme}");
    for (name, _) in &before {
        std::fs::remove_file(out.join(name)).unwrap();
    }
    let report = Command::new(env!("CARGO_BIN_EXE_suite")).arg("report").arg(&out).output().unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let after = read_rendered(&out);
    assert_eq!(before.len(), after.len());
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert!(a == b, "{name} differs after re-rendering");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
