//! One real abuse cell end to end: `abuse run --quick` with the reactor and the `sigterm`
//! scenario (the cheapest, and judged on the server's exit and the replies, not on a latency
//! that a busy machine could spoil), then `abuse report` on its directory, which must write
//! README.md again byte for byte.
//!
//! The server and loadgen binaries are found as `tiny_run.rs` finds them (next to the test
//! binary, the sibling `release` directory, or `$SUITE_TEST_BIN_DIR`); without them the test
//! says so and passes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn find_bins() -> Option<(PathBuf, PathBuf)> {
    support::find_bins(Path::new(env!("CARGO_BIN_EXE_abuse")))
}

#[test]
fn one_cell_runs_and_the_report_rerenders_byte_for_byte() {
    let Some((server, loadgen)) = find_bins() else {
        eprintln!("skipped: no server/loadgen binaries built next to the suite (run cargo test --workspace)");
        return;
    };
    let tmp = std::env::temp_dir().join(format!("abuse-tiny-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = tmp.join("run");
    let run = Command::new(env!("CARGO_BIN_EXE_abuse"))
        .args(["run", "--quick", "--models", "reactor", "--scenarios", "sigterm", "--out"])
        .arg(&out)
        .arg("--server-bin")
        .arg(&server)
        .arg("--loadgen-bin")
        .arg(&loadgen)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("abuse.json")).unwrap()).unwrap();
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 1, "{log}");
    let cell = &cells[0];
    assert_eq!((cell["model"].as_str(), cell["scenario"].as_str()), (Some("reactor"), Some("sigterm")));
    let f = &cell["figures"];
    assert!(f["counters"]["answered"].as_u64().unwrap() > 0, "{cell}");
    assert!(f["peak_rss_kib"].as_u64().unwrap() > 0, "{cell}");
    assert!(f["baseline"]["p99_ms"].as_f64().is_some(), "{cell}");
    assert_eq!(f["corrupted"], 0, "{cell}");
    // The exit status says whether any cell failed.
    assert_eq!(run.status.success(), cell["verdict"]["kind"] != "fail", "{log}");

    let first = std::fs::read(out.join("README.md")).unwrap();
    std::fs::write(out.join("README.md"), "stale").unwrap();
    let report = Command::new(env!("CARGO_BIN_EXE_abuse")).arg("report").arg(&out).output().unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    assert_eq!(std::fs::read(out.join("README.md")).unwrap(), first);
    std::fs::remove_dir_all(&tmp).unwrap();
}
