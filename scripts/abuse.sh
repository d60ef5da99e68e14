#!/usr/bin/env bash
# The abuse suite (issue 12, part 3): build everything in release mode, then attack every model
# with every scenario and score each cell pass, expected or fail. `scripts/abuse.sh --help`
# explains the options; the exit status is non-zero when any cell fails.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    cat <<'USAGE'
scripts/abuse.sh [--quick] [--out DIR] [--models a,b] [--scenarios x,y] [--protos p,q] [OPTIONS]

Builds the workspace in release mode (cargo build --release --workspace, honouring
CARGO_TARGET_DIR) and runs `abuse run` with the given options from the repository root:
every scenario against every model `server --list-models` prints, on each protocol the
scenario applies to, the server pinned to CPU 0 and the attack and a healthy probe client
(loadgen, open loop) to CPU 1. Results go to results/abuse-<date>-<host>-<short commit>/
unless --out says otherwise: abuse.json (everything raw) and README.md (the model x scenario
table, figures per scenario, the defences and bounds, the expected-table, what failed).
Exit status 1 when any cell is a fail, 2 when the run itself could not be made.

Common uses:
  scripts/abuse.sh                      every scenario, every model, full sizes (about 25 minutes)
  scripts/abuse.sh --quick              fewer connections, 1 s windows, one protocol for most
                                        scenarios (about 7 minutes); what CI runs
  scripts/abuse.sh --quick --models reactor --scenarios slowloris,idle
                                        one model, two scenarios

Re-render a results directory's README.md from its abuse.json:
  target/release/abuse report results/abuse-<run>

The abuse suite's own options:
USAGE
    if [[ -x "$target/release/abuse" ]]; then
        "$target/release/abuse" run --help
    else
        echo "  (build first to list them: cargo build --release -p suite)"
    fi
    exit 0
fi

cd "$root"
echo "abuse.sh: cargo build --release --workspace (target: $target)" >&2
cargo build --release --workspace
exec "$target/release/abuse" run "$@"
