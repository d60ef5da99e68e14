#!/usr/bin/env bash
# The lab's one command: build everything in release mode, then run the benchmark suite.
# Every argument is passed on to `suite run`; `scripts/bench.sh --help` explains them.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    cat <<'USAGE'
scripts/bench.sh [SUITE OPTIONS]

Builds the workspace in release mode (cargo build --release --workspace, honouring
CARGO_TARGET_DIR) and runs `suite run` with the given options from the repository root.
Results go to results/<date>-<host>-<short commit>/ unless --out says otherwise:
results.json (everything raw), results.csv, README.md (tables and plots), plots/*.svg,
hgrm/*.hgrm, raw/ (loadgen reports) and logs/.

Common uses:
  scripts/bench.sh                      the default matrix, 3 repetitions (about 40 minutes)
  scripts/bench.sh --quick              the same points, shorter and once (about 8 minutes)
  scripts/bench.sh --quick --repeat 1 --duration 1s --warmup 200ms --out /tmp/smoke
                                        what CI runs (a few minutes)
  scripts/bench.sh --filter /reactor/   only the reactor's points (ids: target/release/suite plan)
  scripts/bench.sh --server-cpus 0-7 --loadgen-cpus 8-15
                                        pin to CPU lists (default: server CPU 0, loadgen CPU 1);
                                        the scaling experiment then steps 1, 2, 4, 8 CPUs
  scripts/bench.sh --matrix my.toml     another matrix (see scripts/suite.toml)

Re-render a results directory's tables and plots from its results.json:
  target/release/suite report results/<run>

The suite's own options:
USAGE
    if [[ -x "$target/release/suite" ]]; then
        "$target/release/suite" run --help
    else
        echo "  (build first to list them: cargo build --release -p suite)"
    fi
    exit 0
fi

cd "$root"
echo "bench.sh: cargo build --release --workspace (target: $target)" >&2
cargo build --release --workspace
exec "$target/release/suite" run "$@"
