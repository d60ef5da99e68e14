//! The `loadgen` binary: exit codes, one-line errors, and the files it writes.

mod support;

use std::time::Duration;

use loadgen::ProtocolKind;
use support::{Behaviour, loadgen_binary, start};

const LIMIT: Duration = Duration::from_secs(30);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_clean_run_exits_0_and_writes_json_and_hgrm() {
    let server = start(ProtocolKind::EchoLine, Behaviour::Correct);
    let dir = std::env::temp_dir().join(format!("loadgen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("run.json");
    let hgrm = dir.join("run.hgrm");
    let addr = server.addr.to_string();
    let out = loadgen_binary(
        &[
            "run",
            "--addr",
            &addr,
            "--proto",
            "echo-line",
            "--conns",
            "4",
            "--threads",
            "2",
            "--warmup",
            "100ms",
            "--duration",
            "500ms",
            "--size",
            "16..256",
            "--json",
            json.to_str().unwrap(),
            "--hgrm",
            hgrm.to_str().unwrap(),
        ],
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for needle in ["req/s", "errors      none", "p99.99", "loadgen CPU"] {
        assert!(stdout.contains(needle), "missing {needle:?}:\n{stdout}");
    }
    // Not a terminal: no progress line, only the two phase markers a script can bracket with.
    assert_eq!(text(&out.stderr), "loadgen: measuring\nloadgen: measured\n");

    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert!(doc["counts"]["requests"].as_u64().unwrap() > 0);
    assert!(doc["histograms"]["service_time"].is_string());
    let dist = std::fs::read_to_string(&hgrm).unwrap();
    assert!(dist.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
    assert!(dist.contains("#[Buckets ="));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mismatches_exit_1_and_say_so() {
    let server = start(ProtocolKind::EchoFrame, Behaviour::CorruptEvery(1000));
    let addr = server.addr.to_string();
    let out = loadgen_binary(
        &["run", "--addr", &addr, "--proto", "echo-frame", "--warmup", "0", "--duration", "300ms"],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("mismatched replies"), "{}", text(&out.stdout));
}

#[test]
fn nothing_listening_is_one_clear_line_and_exit_1() {
    let addr = support::closed_port().to_string();
    let out = loadgen_binary(&["run", "--addr", &addr, "--proto", "echo-line", "--duration", "1s"], LIMIT);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot connect to") && stderr.contains(&addr), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn connections_closed_mid_run_exit_1_without_panic() {
    let server = start(ProtocolKind::EchoLine, Behaviour::CloseAfter(20));
    let addr = server.addr.to_string();
    let out = loadgen_binary(
        &[
            "run",
            "--addr",
            &addr,
            "--proto",
            "echo-line",
            "--conns",
            "3",
            "--warmup",
            "0",
            "--duration",
            "500ms",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("unexpected EOF") && stdout.contains("closed by the server"), "{stdout}");
    assert!(!text(&out.stderr).contains("panicked"));
}

#[test]
fn usage_errors_exit_2() {
    let out = loadgen_binary(&["run", "--proto", "echo-line"], LIMIT);
    assert_eq!(out.status.code(), Some(2), "missing --addr");
    let out =
        loadgen_binary(&["run", "--addr", "127.0.0.1:1", "--proto", "echo-line", "--size", "0..9"], LIMIT);
    assert_eq!(out.status.code(), Some(2), "bad size");
    let out = loadgen_binary(
        &["run", "--addr", "127.0.0.1:1", "--proto", "echo-line", "--conns", "1", "--threads", "4"],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "more threads than connections");
    assert!(text(&out.stderr).contains("--threads"));
}
