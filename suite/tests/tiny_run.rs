//! One real run of a tiny matrix (reactor, two points, and a scaling experiment on `async`
//! plus a model no server has; two repetitions each) against the workspace's own `server` and
//! `loadgen` binaries, then `suite report` on its directory: every rendered file must come
//! back byte for byte.
//!
//! The binaries are looked for next to the suite's test binary (`cargo test --workspace` builds
//! them there) and in the sibling `release` directory, or in `$SUITE_TEST_BIN_DIR`. When they are
//! absent (`cargo test -p suite` alone builds neither) the test says so and passes.

mod support;

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
name = "churn"
title = "a connection per request"
conns = [2]
conn_per_request = true
duration = "500ms"
plots = ["bars"]

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
    support::find_bins(Path::new(env!("CARGO_BIN_EXE_suite")))
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
    // closed, churn, sweep, and the scaling steps this machine's server CPUs allow for `async`.
    let steps = points.iter().filter(|p| p["spec"]["experiment"] == "scale").count();
    assert!(steps >= 1, "{points:?}");
    assert_eq!(points.len(), 3 + steps);
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
            // The server's process tree: one process here, its PSS read.
            assert_eq!(r["samples"]["scope"], "process-tree");
            assert_eq!(r["samples"]["processes_peak"], 1);
            assert!(r["samples"]["pss_peak_kib"].as_u64().unwrap() > 0);
            assert!(out.join(r["loadgen"]["hgrm"].as_str().unwrap()).is_file());
        }
    }
    // A connection per request: loadgen was told so, and counted the connections.
    let churn = &points[1];
    assert_eq!(churn["spec"]["conn_per_request"], true);
    let report = &churn["repetitions"][0]["loadgen"]["report"];
    assert!(report["conn_per_request"]["opened"].as_u64().unwrap() > 0, "{report}");
    assert!(
        churn["repetitions"][0]["loadgen"]["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--conn-per-request")
    );
    // The sweep's rate is half the closed-loop median.
    assert!(points[2]["rate"].as_f64().unwrap() > 0.0);

    let before = read_rendered(&out);
    assert!(before.iter().any(|(n, _)| n == "plots/throughput_vs_connections.svg"));
    assert!(before.iter().any(|(n, _)| n == "plots/latency_vs_rate.svg"));
    assert!(before.iter().any(|(n, _)| n == "plots/throughput_vs_server_cpus.svg"));
    assert!(before.iter().any(|(n, _)| n == "plots/bars-churn-c2.svg"));
    let readme = String::from_utf8_lossy(&before[0].1).into_owned();
    assert!(readme.contains("| throughput (conn/s) |"), "{readme}");
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

/// A server that declines: the fake script below lists two models and, like a server built
/// before `--check`, cannot answer it, so the suite learns at the first start. `refuser`
/// prints the refusal line and exits 1; `fine` runs the real reactor. The point of `refuser`
/// must be recorded as not served, once, and the run must still succeed and re-render.
#[test]
fn a_model_that_declines_is_recorded_once_and_not_as_a_failure() {
    let Some((server, loadgen)) = find_bins() else {
        eprintln!("skipped: no server/loadgen binaries built next to the suite (run cargo test --workspace)");
        return;
    };
    let tmp = std::env::temp_dir().join(format!("suite-decline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let fake = tmp.join("server");
    let script = format!(
        r#"#!/bin/sh
for a in "$@"; do
  case $a in
    --list-models) printf 'fine\tthe reactor underneath\nrefuser\tdeclines everything\n'; exit 0 ;;
    --check) echo "error: unexpected argument '--check' found" >&2; exit 2 ;;
  esac
done
case "$*" in
  *"--model refuser"*) echo "server: refuser does not serve echo-line: it is only a test" >&2; exit 1 ;;
esac
shift 2
exec {} --model reactor "$@"
"#,
        server.display()
    );
    std::fs::write(&fake, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let matrix = tmp.join("m.toml");
    std::fs::write(
        &matrix,
        r#"
[defaults]
repeat = 3
warmup = "100ms"
duration = "300ms"
timeout = "2s"
server_args = ["--grace", "1s"]

[[experiment]]
name = "closed"
title = "closed loop"
conns = [2]
"#,
    )
    .unwrap();
    let out = tmp.join("run");
    let run = Command::new(env!("CARGO_BIN_EXE_suite"))
        .args(["run", "--matrix"])
        .arg(&matrix)
        .arg("--out")
        .arg(&out)
        .arg("--server-bin")
        .arg(&fake)
        .arg("--loadgen-bin")
        .arg(&loadgen)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(log.contains("could not tell whether each model serves each point"), "{log}");
    assert!(log.contains("not served by this model: refuser does not serve echo-line"), "{log}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let refuser =
        results["points"].as_array().unwrap().iter().find(|p| p["spec"]["model"] == "refuser").unwrap();
    assert_eq!(refuser["unavailable"]["kind"], "not-served");
    assert_eq!(refuser["unavailable"]["reason"], "refuser does not serve echo-line: it is only a test");
    let reps = refuser["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 1, "asked once, not once per repetition");
    assert_eq!(reps[0]["failures"].as_array().unwrap().len(), 0);
    assert_eq!(reps[0]["unavailable"]["kind"], "not-served");
    let fine = results["points"].as_array().unwrap().iter().find(|p| p["spec"]["model"] == "fine").unwrap();
    assert!(fine.get("unavailable").is_none());
    assert_eq!(fine["repetitions"].as_array().unwrap().len(), 3);
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(readme.contains("| refuser | not served by this model¹ | — |"), "{readme}");
    assert!(readme.contains("¹ `refuser does not serve echo-line: it is only a test`"), "{readme}");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(csv.contains("not served by this model: refuser does not serve echo-line"), "{csv}");
    std::fs::remove_dir_all(&tmp).unwrap();
}
