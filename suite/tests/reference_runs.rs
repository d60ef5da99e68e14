//! The committed runs under `results/` must re-render byte for byte: `suite report` on an old
//! results.json writes exactly the README.md, results.csv and plots it was committed with. This
//! is what keeps every field added to results.json optional, and every new column, table and
//! sentence of the page limited to runs that measured it.
//!
//! A change that is *meant* to change old pages re-renders them (`suite report results/<run>`)
//! in the same commit, and this test then holds the new bytes.

use std::path::{Path, PathBuf};

fn runs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let Ok(entries) = std::fs::read_dir(&root) else { return Vec::new() };
    let mut runs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("results.json").is_file())
        .collect();
    runs.sort();
    runs
}

#[test]
fn committed_runs_rerender_byte_for_byte() {
    let runs = runs();
    if runs.is_empty() {
        eprintln!("skipped: no results/*/results.json in this checkout");
        return;
    }
    for run in runs {
        let results =
            suite::results::load(&run.join("results.json")).expect("a committed results.json loads");
        for (name, text) in suite::render::render(&results) {
            let committed = std::fs::read_to_string(run.join(&name))
                .unwrap_or_else(|e| panic!("{}: {name} is rendered but not committed: {e}", run.display()));
            assert!(
                committed == text,
                "{}: {name} renders differently from the committed file (re-render with `suite report` if that is meant)",
                run.display()
            );
        }
    }
}
