#!/usr/bin/env bash
# Prove that every graded exercise in exercises/ is still an exercise: its test passes with the
# reference solutions (`--features solutions`) and fails with the starter code. Each exercise's
# test binary runs on its own, so one unsolved exercise cannot mask another. `.ci/run` calls this.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
crate="$root/exercises"

usage() {
    cat <<'USAGE'
scripts/check-exercises.sh [EXERCISE...]

Checks the graded exercises in exercises/ (its own Cargo workspace, outside the lab's):
  1. builds the tests twice: with the starter code, and with --features solutions;
  2. for each exercise (each exercises/tests/NAME.rs), runs `cargo test --test NAME` both ways;
  3. prints a table and exits 0 only if every exercise PASSES with the solutions and FAILS
     with the starter: an exercise already solved by its starter, that its own solution
     cannot solve, or whose test hangs (over 3 minutes) instead of failing, is broken.

With names (e.g. `scripts/check-exercises.sh framer waker`), checks only those.
Honours CARGO_TARGET_DIR (default exercises/target). Takes about a minute once built.
Logs of every run: $TMPDIR/check-exercises.*/NAME.{solution,starter}.log (kept on failure).

Exit status: 0 all good, 1 an exercise is broken, 2 a build failed or a name is unknown.
USAGE
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    usage
    exit 0
fi

cd "$crate"
if [[ $# -gt 0 ]]; then
    exercises=("$@")
else
    exercises=()
    for test in tests/*.rs; do
        exercises+=("$(basename "$test" .rs)")
    done
fi
for name in "${exercises[@]}"; do
    if [[ ! -f "tests/$name.rs" ]]; then
        echo "check-exercises: no exercise named '$name' (no exercises/tests/$name.rs)" >&2
        exit 2
    fi
done

logs="$(mktemp -d "${TMPDIR:-/tmp}/check-exercises.XXXXXX")"

# Build first, so that a compile error is reported as one, not as "the starter fails".
# --locked: the committed Cargo.lock, so this builds offline from the registry cache.
for variant in starter solution; do
    features=()
    [[ $variant == solution ]] && features=(--features solutions)
    echo "building the exercises' tests ($variant)..." >&2
    if ! cargo test --locked --quiet "${features[@]}" --no-run >"$logs/build.$variant.log" 2>&1; then
        cat "$logs/build.$variant.log" >&2
        echo "check-exercises: the $variant build failed (log above)" >&2
        exit 2
    fi
done

# Run one exercise's test binary; print "pass" or "fails" (or "hangs" past the time limit).
run() {
    local name=$1 variant=$2 features=()
    [[ $variant == solution ]] && features=(--features solutions)
    local status=0
    timeout 180 cargo test --locked --quiet "${features[@]}" --test "$name" >"$logs/$name.$variant.log" 2>&1 ||
        status=$?
    case $status in
        0) echo pass ;;
        124) echo hangs ;;
        *) echo fails ;;
    esac
}

broken=0
printf '%-16s %-18s %-16s %s\n' exercise "with solutions" "with starter" verdict
printf '%-16s %-18s %-16s %s\n' -------- -------------- ------------ -------
for name in "${exercises[@]}"; do
    solution="$(run "$name" solution)"
    starter="$(run "$name" starter)"
    if [[ $solution == pass && $starter == fails ]]; then
        verdict=ok
    elif [[ $starter == pass ]]; then
        verdict="BROKEN: the starter already passes"
        broken=1
    elif [[ $starter == hangs ]]; then
        verdict="BROKEN: the starter's test hangs instead of failing (see $logs/$name.starter.log)"
        broken=1
    else
        verdict="BROKEN: the solution does not pass (see $logs/$name.solution.log)"
        broken=1
    fi
    printf '%-16s %-18s %-16s %s\n' "$name" "$solution" "$starter" "$verdict"
done

if [[ $broken -ne 0 ]]; then
    echo "check-exercises: some exercises are broken; logs in $logs" >&2
    exit 1
fi
rm -rf "$logs"
echo "check-exercises: all ${#exercises[@]} exercises pass with their solutions and fail without them" >&2
