#!/usr/bin/env bash
# scripts/lib/lesson-syscalls.sh TARGET_DIR: lesson 12's system calls per reply, reactor against
# io-uring, counted with perf's tracepoints over loadgen's measured phase (as
# scripts/check-targets.sh part 8 does, there with more runs and an open-loop rate). Called by
# scripts/lesson.sh readiness-completion; prints to stdout. Needs perf with tracepoints readable
# (root, or kernel.perf_event_paranoid <= -1); says so and exits 1 otherwise.
set -euo pipefail
target=$1
server_bin=$target/release/server loadgen_bin=$target/release/loadgen
work=$(mktemp -d)
source scripts/lib/pinned-server.sh
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if ! command -v perf >/dev/null; then
    echo "perf is not installed (apt-get install linux-perf): system calls not counted"
    exit 1
fi
# The calls each loop is made of: epoll_wait, recvfrom and sendto for the reactor (std's read
# and write on a socket are recv and send), io_uring_enter for io-uring; and all of them.
calls=(epoll_wait recvfrom sendto io_uring_enter)
events=raw_syscalls:sys_enter$(printf ',syscalls:sys_enter_%s' "${calls[@]}")
if ! perf stat -x, -e "$events" -- true >/dev/null 2>"$work/perf.why"; then
    echo "perf cannot read the syscall tracepoints here: $(head -1 "$work/perf.why")"
    exit 1
fi

echo "system calls per reply (perf tracepoints over the measured phase; 64 connections, closed loop):"
for model in reactor io-uring; do
    if ! "$server_bin" --model "$model" --proto echo-line --check 2>"$work/why"; then
        echo "  $model: not run: $(cat "$work/why")"
        continue
    fi
    start_server "$model" echo-line
    perf_pid=
    while IFS= read -r line; do
        case $line in
            "loadgen: measuring")
                perf stat -x, -e "$events" -p "$server_pid" -o "$work/perf.txt" &
                perf_pid=$! ;;
            "loadgen: measured")
                kill -INT "$perf_pid"; wait "$perf_pid" || true ;;
        esac
    done < <(taskset -c 1 "$loadgen_bin" run --addr "$addr" --proto echo-line --conns 64 --warmup 500ms \
        --duration 2s --json "$work/run.json" 2>&1 >/dev/null)
    stop_server
    replies=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['counts']['requests'])" "$work/run.json")
    # perf -x, lines: count,unit,event,...
    printf '  %-9s %s\n' "$model" \
        "$(awk -F, -v n="$replies" '$3 ~ /sys_enter/ {sub(/.*:(sys_enter_)?/, "", $3); sub(/^sys_enter$/, "all", $3); printf "%s %.3f  ", $3, $1 / n}' "$work/perf.txt")"
done
