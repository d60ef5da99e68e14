#!/usr/bin/env bash
# scripts/lesson.sh: one classroom lesson, run live in about 40 s on 2 CPUs (plus the first build).
#
#   scripts/lesson.sh --list              the lessons, one line each, in teaching order
#   scripts/lesson.sh NAME [SUITE ARGS]   run lesson NAME (e.g. head-of-line)
#   scripts/lesson.sh NAME --reference    the same, replacing the committed reference run
#   scripts/lesson.sh --guide             rewrite docs/EXPERIMENTS.md's measured results from
#                                         the committed reference runs
#
# A lesson is a small matrix of the benchmark suite, scripts/lessons/NAME.toml: the suite runs
# it (server and loadgen pinned to CPUs of their own, progress on the terminal), then prints a
# small table and a bar chart, and writes the same as a page with an SVG chart and the raw
# results.json to results/lessons/NAME/latest/ (with --reference: results/lessons/NAME/, the
# run docs/EXPERIMENTS.md quotes). The guide says what to ask the class first, what to look at,
# and why it comes out that way.
#
# Arguments after NAME go to `suite run`: --repeat 3 for spread, --duration 5s, or
# --server-cpus 0-3 --loadgen-cpus 4-5 on a larger machine. --no-build uses the binaries
# already in target/release instead of building first (several lessons in a row).
set -euo pipefail
cd "$(dirname "$0")/.."

lessons=scripts/lessons
target=${CARGO_TARGET_DIR:-target}

# field FILE KEY: a string or number value of the [lesson] table.
field() {
    awk -v key="$2" '
        /^\[/ { inside = ($0 == "[lesson]") }
        inside && $1 == key && $2 == "=" {
            sub(/^[^=]*= */, ""); gsub(/^"|"$/, ""); print; exit
        }' "$1"
}

list() {
    for file in "$lessons"/*.toml; do
        printf '%s\t%s\t%s\n' "$(field "$file" number)" "$(field "$file" name)" "$(field "$file" title)"
    done | sort -n | awk -F'\t' '{ printf "%2d  %-22s %s\n", $1, $2, $3 }'
}

build() {
    echo "lesson: building the server, loadgen and the suite (release; the first time takes a few minutes)" >&2
    cargo build --release --quiet -p servers -p loadgen -p suite --bins
    if [[ -n ${1:-} ]]; then
        cargo build --release --quiet -p servers --example "$1"
    fi
}

case ${1:-} in
    ""|-h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --list) list; exit 0 ;;
    --guide)
        build
        "$target/release/suite" lessons-guide
        exit 0 ;;
esac

name=$1; shift
matrix=$lessons/$name.toml
if [[ ! -f $matrix ]]; then
    echo "lesson: no lesson called $name; the lessons are:" >&2
    list >&2
    exit 2
fi
out=results/lessons/$name/latest
suite_args=() no_build=
for arg in "$@"; do
    case $arg in
        --reference) out=results/lessons/$name ;;
        --no-build) no_build=1 ;;
        *) suite_args+=("$arg") ;;
    esac
done

example=$(field "$matrix" server_example)
[[ -n $no_build ]] || build "$example"
server_bin=$target/release/server
if [[ -n $example ]]; then
    server_bin=$target/release/examples/$example
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "lesson $(field "$matrix" number): $(field "$matrix" title)" >&2
echo "  $(field "$matrix" question)" >&2
# The suite marks a point FAILED when loadgen counted errors; in several lessons (blocking
# stalled, a naive handler, a starved pool) those errors are the lesson, not a broken run.
echo "  (a point marked FAILED below may be the very thing this lesson shows: the table says why)" >&2
"$target/release/suite" run --matrix "$matrix" --out "$work/run" --server-bin "$server_bin" \
    ${suite_args[@]+"${suite_args[@]}"} >/dev/null

# Lesson 12 adds what the suite does not count: system calls per reply, with perf.
if [[ $name == readiness-completion ]]; then
    scripts/lib/lesson-syscalls.sh "$target" >&2 || echo "lesson: system calls not counted (see above)" >&2
fi

if [[ $out == results/lessons/$name ]]; then
    # A reference run replaces the old one whole.
    rm -f "$out/results.json" "$out/README.md" "$out/chart.svg"
    rm -rf "$out/logs"
fi
echo >&2
"$target/release/suite" lesson "$work/run" --out "$out"
