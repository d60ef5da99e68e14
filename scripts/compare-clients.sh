#!/usr/bin/env bash
# loadgen next to widely used load generators, against the same lab server:
#
#   http   wrk (one thread, keep-alive) and loadgen --proto http, against `http` on a model
#   kv     redis-benchmark (SET, then GET) and loadgen --proto kv with all-SET and all-GET mixes,
#          against `kv` on a model
#
# Each pair runs alternately (A B A B ...) on a fresh server each time, the server pinned to
# CPU 0 and the client to CPU 1, same connection count; each figure is the median of --reps runs.
# wrk and redis-benchmark verify nothing and (redis-benchmark aside) report coarser percentiles;
# loadgen checks every reply. The table says so rather than hiding it.
#
# Usage: scripts/compare-clients.sh [--reps N] [--duration 5s] [--conns 50] [--model reactor]
#                                   [--only http,kv]
# Needs: Linux, 2 CPUs, cargo, taskset, python3; wrk and redis-tools (installed with apt-get if
# missing, through sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."

reps=3 duration=5s conns=50 model=reactor only=http,kv
while [[ $# -gt 0 ]]; do
    case $1 in
        --reps) reps=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --conns) conns=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
secs=${duration%s}
[[ $secs =~ ^[0-9]+$ ]] || { echo "--duration takes whole seconds, like 5s" >&2; exit 2; }

install() { # install PACKAGE: apt-get, through sudo when not root
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "$1" >/dev/null
}
[[ $only != *http* ]] || command -v wrk >/dev/null || install wrk
[[ $only != *kv* ]] || command -v redis-benchmark >/dev/null || install redis-tools

target=${CARGO_TARGET_DIR:-target}
cargo build --release -p servers -p loadgen --quiet
server_bin=$target/release/server loadgen_bin=$target/release/loadgen
work=$(mktemp -d)
source scripts/lib/pinned-server.sh
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# loadgen_run FILE ARGS...: one loadgen run on CPU 1; appends "req/s p50_us p99_us" to FILE.
loadgen_run() {
    local out=$1; shift
    taskset -c 1 "$loadgen_bin" run --addr "$addr" --conns "$conns" --warmup 1s --duration "$duration" \
        --json "$work/l.json" "$@" >/dev/null 2>"$work/l.err" || { cat "$work/l.err" >&2; exit 1; }
    python3 - "$work/l.json" >>"$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["percentiles"]["service_time"]
print(f'{d["achieved_rate"]:.0f} {p["p50"] / 1000:.1f} {p["p99"] / 1000:.1f}')
PY
}
# row LABEL FILE: the medians of FILE's three columns as a table row.
row() {
    local rate p50 p99
    rate=$(cut -d' ' -f1 "$2" | median | awk '{ s = sprintf("%.0f", $1); t = ""; while (length(s) > 3) { t = "," substr(s, length(s) - 2) t; s = substr(s, 1, length(s) - 3) } print s t }')
    p50=$(cut -d' ' -f2 "$2" | median | awk '{ printf($1 >= 100 ? "%.0f" : "%.1f", $1) }')
    p99=$(cut -d' ' -f3 "$2" | median | awk '{ printf($1 >= 100 ? "%.0f" : "%.1f", $1) }')
    printf '| %s | %s | %s µs | %s µs |\n' "$1" "$rate" "$p50" "$p99"
}
# to_us VALUE: wrk's latency with its unit (us, ms, s) in microseconds.
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1e6 }'; }

echo "server: $model, pinned to CPU 0; clients pinned to CPU 1; $conns connections, ${secs} s, median of $reps"

if [[ $only == *http* ]]; then
    : >"$work/wrk" ; : >"$work/lg-http"
    for _ in $(seq "$reps"); do
        start_server "$model" http
        taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency "http://$addr/" >"$work/wrk.out"
        rate=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
        p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.out") p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
        if grep -q 'Non-2xx\|Socket errors' "$work/wrk.out"; then
            echo "wrk saw errors:" >&2; cat "$work/wrk.out" >&2; exit 1
        fi
        echo "$rate $(to_us "$p50") $(to_us "$p99")" >>"$work/wrk"
        stop_server
        start_server "$model" http
        loadgen_run "$work/lg-http" --proto http
        stop_server
    done
    echo
    echo "| http, keep-alive GET / | req/s | p50 | p99 |"
    echo "| --- | ---: | ---: | ---: |"
    row "wrk -t1 (checks nothing)" "$work/wrk"
    row "loadgen --proto http (checks every reply)" "$work/lg-http"
fi

if [[ $only == *kv* ]]; then
    # redis-benchmark runs SET, then GET, each over random keys out of 100,000 with 64 B values;
    # loadgen runs all-SET, then all-GET, over the same key space, every reply checked. (Its GETs
    # find the values its own SETs wrote: each connection owns its keys, so it knows the answer.)
    : >"$work/rb-set" ; : >"$work/rb-get" ; : >"$work/lg-set" ; : >"$work/lg-get"
    n=$((20000 * secs * conns / 50))
    for _ in $(seq "$reps"); do
        start_server "$model" kv
        taskset -c 1 redis-benchmark -h "${addr%:*}" -p "${addr##*:}" -c "$conns" -n "$n" -r 100000 -d 64 \
            -t set,get --csv >"$work/rb.csv" 2>"$work/rb.err" || { cat "$work/rb.err" >&2; exit 1; }
        # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        python3 - "$work/rb.csv" "$work/rb-set" "$work/rb-get" <<'PY'
import csv, sys
rows = {r[0]: r for r in csv.reader(open(sys.argv[1])) if r and r[0] in ("SET", "GET")}
for test, path in (("SET", sys.argv[2]), ("GET", sys.argv[3])):
    r = rows[test]
    with open(path, "a") as f:
        f.write(f"{float(r[1]):.0f} {float(r[4]) * 1000:.1f} {float(r[6]) * 1000:.1f}\n")
PY
        stop_server
        for mix in set get; do
            ratio=0
            [[ $mix == get ]] && ratio=1
            start_server "$model" kv
            # loadgen SETs each of its keys once before its mix starts (in the warm-up), so its
            # GETs find values, as redis-benchmark's GETs find the ones its SET test left.
            loadgen_run "$work/lg-$mix" --proto kv --size 64 --kv-keys 100000 --kv-get-ratio "$ratio"
            stop_server
        done
    done
    echo
    echo "| kv, 64 B values, 100,000 keys | req/s | p50 | p99 |"
    echo "| --- | ---: | ---: | ---: |"
    row "redis-benchmark SET (checks nothing)" "$work/rb-set"
    row "loadgen --proto kv, all SET (checks every reply)" "$work/lg-set"
    row "redis-benchmark GET (checks nothing)" "$work/rb-get"
    row "loadgen --proto kv, all GET (checks every reply)" "$work/lg-get"
fi
