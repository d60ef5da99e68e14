#!/usr/bin/env bash
# Measure the speed and memory targets the servers and loadgen issues set, on this machine:
#
#   1. reactor vs async (current-thread): echo-line, 64 B, 50 connections, throughput and the
#      server's CPU time per request over exactly the measured phase, closed loop and at two
#      fixed open-loop rates;
#   2. resident memory per idle connection at 10,000 idle connections, for reactor, async and
#      thread-per-connection, above each server's own idle baseline;
#   3. one connection, one request at a time: each model's median round trip against a plain
#      blocking socket pair (the interleaved benchmark in servers/benches/round_trip.rs);
#   4. loadgen against a naive thread-per-connection client (loadgen/examples) at 1, 64 and
#      1,000 connections, and loadgen with and without checking (--no-verify);
#   5. open loop against the reactor at 20,000, 40,000 and 80,000 req/s: loadgen sleeping on its
#      timer for every send (--spin 0) against spinning for sends due within 50 µs (the default);
#   6. the models issue: server CPU per request at a fixed open-loop rate (60,000 req/s, echo-line
#      64 B, 50 connections) of executor and multi-reactor --threads 1 against the reactor, and,
#      with --baseline-bin, the reactor against the same reactor built from another commit;
#   7. kv under unmodified redis-benchmark (-c 50 -t set,get -d 64 -r 100000): the reactor
#      against redis-server started the same way, then both servers' system calls per request
#      (strace -c) over one shorter run each;
#   8. the completion issue: io-uring against the reactor at the same fixed open-loop rate as
#      part 6: server CPU per request, and system calls per request counted by the kernel's own
#      tracepoints (perf stat -e raw_syscalls:sys_enter and the calls that matter, over exactly
#      the measured phase), and a profile of where each server's CPU goes (perf record, summed
#      into categories by scripts/lib/cpu-categories.awk); then both at 10,000 idle connections;
#   9. the process issue: new connections per second with every request on a connection of its
#      own (loadgen --conn-per-request, 16 at a time), process-per-connection against
#      thread-per-connection, alternating; then memory at 1,000 idle connections, summed over
#      the server and all its children: RSS, and PSS (which counts a page shared by N processes
#      as 1/N in each, so copy-on-write pages still shared with the parent count once).
#
# Server on CPU 0, clients on CPU 1. Paired measurements alternate (A B A B ...) so drift on a
# shared machine falls on both sides; each figure is the median of --reps runs.
#
# Usage: scripts/check-targets.sh [--reps N] [--duration 5s] [--only 1,2,3,4,5,6,7,8,9]
#                                 [--baseline-bin PATH]
#   --baseline-bin   a `server` binary built from another commit (for example with
#                    `git worktree add /tmp/base COMMIT && cargo build --release` there), which
#                    part 6 runs as `reactor@base` next to this tree's reactor, alternating,
#                    and part 2 measures each of its models from, as `MODEL@base`
# Needs: Linux, 2 CPUs, cargo, taskset (util-linux), awk, python3 (to read loadgen's JSON); part 7
# also redis-server and redis-tools (installed with apt-get if missing) and strace; part 8 perf
# (linux-perf, installed with apt-get if missing) with tracepoints readable (root, or
# kernel.perf_event_paranoid <= -1), and io_uring allowed (it says so and skips otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

reps=5 duration=5s only=1,2,3,4,5,6,7,8,9 baseline_bin=
while [[ $# -gt 0 ]]; do
    case $1 in
        --baseline-bin) baseline_bin=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

target=${CARGO_TARGET_DIR:-target}
cargo build --release --workspace --quiet
cargo build --release -p loadgen --example naive_echo_client --quiet
server_bin=$target/release/server loadgen_bin=$target/release/loadgen
naive_bin=$target/release/examples/naive_echo_client
work=$(mktemp -d)
source scripts/lib/pinned-server.sh
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Nanoseconds of CPU the server has used, all threads (schedstat: first field, ns on CPU).
# A thread may exit between the glob and the read: ignore the ones that vanished. Printed with
# %.0f, not %d: mawk's %d saturates at 2^31 - 1 ns, about 2.1 s of CPU.
server_cpu_ns() { { cat /proc/"$server_pid"/task/*/schedstat 2>/dev/null || true; } | awk '{s += $1} END {printf "%.0f\n", s}'; }
server_rss_kib() { awk '/^VmRSS/ {print $2}' /proc/"$server_pid"/status; }

# run_loadgen JSON ARGS...: runs loadgen on CPU 1; sets cpu_ns (server CPU over the measured
# phase), and rss_kib and threads (the server's when measuring began). With $perf_events set,
# also counts those events in the server over the measured phase, into $work/perf.txt.
perf_events=
run_loadgen() {
    local json=$1; shift
    local t0=0 t1=0 line perf_pid=
    rss_kib=0
    while IFS= read -r line; do
        case $line in
            "loadgen: measuring")
                t0=$(server_cpu_ns) rss_kib=$(server_rss_kib)
                threads=$(awk '/^Threads/ {print $2}' /proc/"$server_pid"/status)
                if [[ -n $perf_events ]]; then
                    perf stat -x, -e "$perf_events" -p "$server_pid" -o "$work/perf.txt" &
                    perf_pid=$!
                fi ;;
            "loadgen: measured")
                t1=$(server_cpu_ns)
                if [[ -n $perf_pid ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi ;;
            *) echo "  loadgen: $line" >&2 ;;
        esac
    done < <(taskset -c 1 "$loadgen_bin" run --addr "$addr" --proto echo-line --json "$json" "$@" 2>&1 >/dev/null)
    cpu_ns=$((t1 - t0))
}

json_field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$1" "$2"; }
calc() { awk "BEGIN { print $1 }"; }

if [[ $only == *1* ]]; then
    echo "== 1. reactor vs async (current-thread): echo-line 64 B, 50 connections, $reps x $duration"
    for i in $(seq "$reps"); do
        for model in reactor async; do
            start_server "$model" echo-line
            run_loadgen "$work/t.json" --conns 50 --size 64 --warmup 1s --duration "$duration"
            stop_server
            rate=$(json_field "$work/t.json" "['achieved_rate']")
            n=$(json_field "$work/t.json" "['counts']['requests']")
            lg=$(json_field "$work/t.json" "['cpu']['per_request_ns']")
            echo "$rate" >>"$work/rate.$model"
            echo $((cpu_ns / n)) >>"$work/cpu.$model"
            calc "$lg / ($cpu_ns / $n)" >>"$work/lg_ratio"
            printf '  %-8s run %d: %8.0f req/s  server CPU %5d ns/req  loadgen CPU %5d ns/req\n' \
                "$model" "$i" "$rate" $((cpu_ns / n)) "$lg"
        done
    done
    r=$(median <"$work/rate.reactor") a=$(median <"$work/rate.async")
    rc=$(median <"$work/cpu.reactor") ac=$(median <"$work/cpu.async")
    printf '  median: reactor %.0f req/s, %s ns/req; async %.0f req/s, %s ns/req\n' "$r" "$rc" "$a" "$ac"
    printf '  reactor/async throughput %.3f (target >= 0.98), server CPU per request %.3f (target <= 1)\n' \
        "$(calc "$r / $a")" "$(calc "$rc / $ac")"
    printf '  loadgen CPU per request / server CPU per request, median of all runs: %.3f (target <= 1)\n' \
        "$(median <"$work/lg_ratio")"
    # Closed loop, both processes end up near 100% busy: each side's batches shrink until it is,
    # so CPU per request then says little about either. At a fixed open-loop rate that neither
    # saturates, CPU per request is what each needs for the same work.
    for rate in 40000 80000; do
        for model in reactor async; do
            : >"$work/fixed.$model"
            for i in $(seq "$reps"); do
                start_server "$model" echo-line
                run_loadgen "$work/f.json" --conns 50 --size 64 --warmup 1s --duration "$duration" --rate "$rate"
                stop_server
                n=$(json_field "$work/f.json" "['counts']['requests']")
                echo $((cpu_ns / n)) >>"$work/fixed.$model"
            done
        done
        r=$(median <"$work/fixed.reactor") a=$(median <"$work/fixed.async")
        printf '  open loop at %d req/s: server CPU per request reactor %s ns, async %s ns: ratio %.3f (target <= 1)\n' \
            "$rate" "$r" "$a" "$(calc "$r / $a")"
    done
fi

if [[ $only == *2* ]]; then
    echo "== 2. resident memory per idle connection, 10,000 idle connections"
    this_bin=$server_bin
    for model in reactor async executor multi-reactor thread-per-connection; do
        # With --baseline-bin, each model runs from the other build too, right after this one's.
        for label in "$model" ${baseline_bin:+"$model@base"}; do
            server_bin=$this_bin
            [[ $label != *@base ]] || server_bin=$baseline_bin
            start_server "$model" echo-line
            base=$(server_rss_kib)
            run_loadgen "$work/idle.json" --conns 1 --idle-conns 10000 --warmup 0 --duration 2s --timeout 10s
            stop_server
            printf '  %-27s baseline %6d KiB, with 10,000 idle %7d KiB: %6.0f bytes per connection, %d threads\n' \
                "$label" "$base" "$rss_kib" "$(calc "($rss_kib - $base) * 1024 / 10000")" "$threads"
        done
    done
    server_bin=$this_bin
fi

if [[ $only == *3* ]]; then
    echo "== 3. one connection, one 64 B request at a time (median round trip vs a plain socket pair)"
    cargo bench -p servers --bench round_trip --quiet 2>/dev/null | sed 's/^/  /'
fi

if [[ $only == *4* ]]; then
    echo "== 4. loadgen against the reactor: vs a naive client, and the cost of checking"
    secs=${duration%s}
    for conns in 1 64 1000; do
        : >"$work/lg" ; : >"$work/naive"
        for i in $(seq "$reps"); do
            start_server reactor echo-line
            run_loadgen "$work/l.json" --conns "$conns" --warmup 1s --duration "$duration"
            json_field "$work/l.json" "['achieved_rate']" >>"$work/lg"
            taskset -c 1 "$naive_bin" "$addr" "$conns" "$secs" 2>/dev/null |
                sed -n 's/.* \([0-9.]*\) req\/s.*/\1/p' >>"$work/naive"
            stop_server
        done
        l=$(median <"$work/lg") n=$(median <"$work/naive")
        printf '  %4d connections: loadgen %8.0f req/s, naive client %8.0f req/s, ratio %.2f\n' \
            "$conns" "$l" "$n" "$(calc "$l / $n")"
    done
    : >"$work/on" ; : >"$work/off"
    for i in $(seq "$reps"); do
        start_server reactor echo-line
        run_loadgen "$work/v.json" --conns 50 --warmup 1s --duration "$duration"
        json_field "$work/v.json" "['achieved_rate']" >>"$work/on"
        run_loadgen "$work/v.json" --conns 50 --warmup 1s --duration "$duration" --no-verify
        json_field "$work/v.json" "['achieved_rate']" >>"$work/off"
        stop_server
    done
    on=$(median <"$work/on") off=$(median <"$work/off")
    printf '  50 connections: checked %.0f req/s, --no-verify %.0f req/s: checking costs %.1f%% (target < 3%%)\n' \
        "$on" "$off" "$(calc "(1 - $on / $off) * 100")"
fi

if [[ $only == *5* ]]; then
    echo "== 5. open loop, echo-line 64 B, 50 connections: sleeping on the timer vs spinning for near sends"
    echo "   (work/req: loadgen's CPU per request without the spinning; server CPU/req over the measured phase)"
    printf '  %-6s %-5s %9s %7s %8s %13s %15s %10s %10s\n' rate spin achieved "lg CPU" "lg busy" "lg work/req" "server CPU/req" "due p50" "due p99"
    for rate in 20000 40000 80000; do
        for spin in 0 50us; do
            : >"$work/o5"
            for i in $(seq "$reps"); do
                start_server reactor echo-line
                run_loadgen "$work/o.json" --conns 50 --size 64 --warmup 1s --duration "$duration" \
                    --rate "$rate" --spin "$spin"
                stop_server
                python3 - "$work/o.json" "$cpu_ns" >>"$work/o5" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c, p, n = d["cpu"], d["percentiles"], d["counts"]["requests"]
work_ns = c["busy_share"] * d["measured_seconds"] * d["settings"]["threads"] * 1e9 / n
print(d["achieved_fraction"], c["share_of_threads"], c["busy_share"], work_ns, int(sys.argv[2]) / n,
      p["corrected"]["p50"], p["corrected"]["p99"])
PY
            done
            # Median of each column over the repetitions.
            medians=$(for col in 1 2 3 4 5 6 7; do awk -v c=$col '{print $c}' "$work/o5" | median; done)
            read -r ach cpu busy lg_work srv due due99 <<<"$(echo $medians)"
            printf '  %-6s %-5s %8.1f%% %6.0f%% %7.0f%% %10.1f µs %12.1f µs %7.1f µs %7.1f µs\n' "$rate" "$spin" \
                "$(calc "$ach * 100")" "$(calc "$cpu * 100")" "$(calc "$busy * 100")" "$(calc "$lg_work / 1000")" \
                "$(calc "$srv / 1000")" "$(calc "$due / 1000")" "$(calc "$due99 / 1000")"
        done
    done
fi

if [[ $only == *6* ]]; then
    rate=60000
    echo "== 6. server CPU per request at $rate req/s (open loop), echo-line 64 B, 50 connections, $reps x $duration"
    # Each variant: a label, then the server's arguments. Alternated within every repetition.
    variants=("reactor|reactor" "executor|executor" "multi-reactor-1|multi-reactor --threads 1")
    [[ -z $baseline_bin ]] || variants+=("reactor@base|reactor")
    for i in $(seq "$reps"); do
        for v in "${variants[@]}"; do
            label=${v%%|*} args=${v#*|}
            bin=$server_bin
            [[ $label != *@base ]] || server_bin=$baseline_bin
            read -ra server_args <<<"$args" # the model, then its flags
            start_server "${server_args[0]}" echo-line "${server_args[@]:1}"
            server_bin=$bin
            run_loadgen "$work/r6.json" --conns 50 --size 64 --warmup 1s --duration "$duration" --rate "$rate"
            stop_server
            n=$(json_field "$work/r6.json" "['counts']['requests']")
            ach=$(json_field "$work/r6.json" "['achieved_fraction']")
            echo $((cpu_ns / n)) >>"$work/r6.$label"
            printf '  %-16s run %d: server CPU %5d ns/req, %5.1f%% of the rate achieved\n' "$label" "$i" $((cpu_ns / n)) "$(calc "$ach * 100")"
        done
    done
    # Ratios within each repetition first, then their median: the machine's drift between
    # repetitions falls on both sides of every ratio.
    r=$(median <"$work/r6.reactor")
    for v in "${variants[@]}"; do
        label=${v%%|*}
        m=$(median <"$work/r6.$label")
        ratio=$(paste "$work/r6.$label" "$work/r6.reactor" | awk '{print $1 / $2}' | median)
        case $label in
            executor) target="(target <= 1.15)" ;;
            multi-reactor-1) target="(target <= 1.05)" ;;
            reactor@base) target="(this tree's reactor costs $(calc "1 / $ratio") x the base; target: within 3%)" ;;
            *) target="" ;;
        esac
        printf '  %-16s median %6s ns/req; median ratio to the reactor %.3f %s\n' "$label" "$m" "$ratio" "$target"
    done
fi

if [[ $only == *7* ]]; then
    echo "== 7. kv under redis-benchmark -c 50 -t set,get -d 64 -r 100000: reactor vs redis-server, $reps x each"
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y redis-server redis-tools >/dev/null
    fi
    requests=300000
    free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    start_redis() {
        local port; port=$(free_port)
        taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            >"$work/redis.log" 2>&1 &
        server_pid=$!
        addr=127.0.0.1:$port
        for _ in $(seq 100); do
            redis-cli -p "$port" ping >/dev/null 2>&1 && return
            sleep 0.05 # redis prints no address line to wait for
        done
        echo "redis-server did not start: $(cat "$work/redis.log")" >&2; exit 1
    }
    start_kv() { if [[ $1 == redis-server ]]; then start_redis; else start_server "$1" kv; fi; }
    # bench_kv N: redis-benchmark against $addr, N requests per test. Prints "SET GET" req/s,
    # the server's CPU time per request over both tests, and the client's CPU share: when the
    # client is the busier of the two, its own speed decides the throughput.
    bench_kv() {
        local t0 t1 w0 w1 cpu_s
        t0=$(server_cpu_ns) w0=$(date +%s%N)
        /usr/bin/time -f '%U %S %e' -o "$work/client.time" \
            taskset -c 1 redis-benchmark -h 127.0.0.1 -p "${addr##*:}" -c 50 -n "$1" -t set,get -d 64 -r 100000 \
            --csv >"$work/bench.csv" 2>/dev/null
        t1=$(server_cpu_ns) w1=$(date +%s%N)
        read -r user sys _ <"$work/client.time"
        awk -F'","' -v cpu=$((t1 - t0)) -v wall=$((w1 - w0)) -v n="$1" -v client="$(calc "$user + $sys")" \
            '/^"SET"/ {s=$2} /^"GET"/ {g=$2}
             END {print s, g, cpu / (2 * n), cpu / wall, client * 1e9 / wall}' "$work/bench.csv"
    }
    for i in $(seq "$reps"); do
        for server in reactor redis-server; do
            start_kv "$server"
            read -r set get per_req busy client <<<"$(bench_kv "$requests")"
            stop_server
            echo "$set" >>"$work/set.$server"; echo "$get" >>"$work/get.$server"
            echo "$per_req" >>"$work/kvcpu.$server"
            printf '  %-12s run %d: SET %8.0f req/s, GET %8.0f req/s; server %5.0f ns CPU/req, %3.0f%% busy; redis-benchmark %3.0f%% busy\n' \
                "$server" "$i" "$set" "$get" "$per_req" "$(calc "$busy * 100")" "$(calc "$client * 100")"
        done
    done
    rs=$(median <"$work/set.reactor") rg=$(median <"$work/get.reactor")
    ss=$(median <"$work/set.redis-server") sg=$(median <"$work/get.redis-server")
    printf '  median: reactor SET %.0f GET %.0f; redis-server SET %.0f GET %.0f; reactor/redis SET %.3f GET %.3f (target >= 1.0)\n' \
        "$rs" "$rg" "$ss" "$sg" "$(calc "$rs / $ss")" "$(calc "$rg / $sg")"
    printf '  server CPU per request: reactor %.0f ns, redis-server %.0f ns: %.3f\n' "$(median <"$work/kvcpu.reactor")" \
        "$(median <"$work/kvcpu.redis-server")" "$(calc "$(median <"$work/kvcpu.reactor") / $(median <"$work/kvcpu.redis-server")")"
    # Where the time goes: system calls per request, counted by strace over 100,000 of each.
    if command -v strace >/dev/null; then
        for server in reactor redis-server; do
            start_kv "$server"
            strace -c -f -q -o "$work/strace.$server" -p "$server_pid" &
            tracer=$!
            sleep 0.5 # strace attaches asynchronously and prints nothing to wait for
            bench_kv 100000 >/dev/null
            kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
            stop_server
            awk -v who="$server" '$NF == "total" {print "  " who ": " $4 " system calls for 200,000 requests"}
                $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" && $4 + 0 > 20000 {printf "    %-14s %6.2f per request\n", $NF, $4 / 200000}' \
                "$work/strace.$server"
        done
    fi
fi

if [[ $only == *8* ]]; then
    rate=60000
    echo "== 8. io-uring against the reactor at $rate req/s (open loop), echo-line 64 B, 50 connections, $reps x $duration"
    if ! "$server_bin" --model io-uring --proto echo-line --check 2>"$work/uring.why"; then
        echo "  skipped: $(cat "$work/uring.why")"
    else
        if ! command -v perf >/dev/null; then
            sudo=()
            [[ $(id -u) -eq 0 ]] || sudo=(sudo)
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y linux-perf >/dev/null
        fi
        for i in $(seq "$reps"); do
            for model in reactor io-uring; do
                start_server "$model" echo-line
                run_loadgen "$work/r8.json" --conns 50 --size 64 --warmup 1s --duration "$duration" --rate "$rate"
                stop_server
                n=$(json_field "$work/r8.json" "['counts']['requests']")
                ach=$(json_field "$work/r8.json" "['achieved_fraction']")
                echo $((cpu_ns / n)) >>"$work/r8.$model"
                printf '  %-9s run %d: server CPU %5d ns/req, %5.1f%% of the rate achieved\n' \
                    "$model" "$i" $((cpu_ns / n)) "$(calc "$ach * 100")"
            done
        done
        ratio=$(paste "$work/r8.io-uring" "$work/r8.reactor" | awk '{print $1 / $2}' | median)
        printf '  median server CPU per request: reactor %s ns, io-uring %s ns; median ratio io-uring/reactor %.3f (target <= 1.0)\n' \
            "$(median <"$work/r8.reactor")" "$(median <"$work/r8.io-uring")" "$ratio"
        # System calls in separate runs: a tracepoint costs time on every call, and the model
        # with more calls would pay more of it in the CPU figures above. Counted are all calls,
        # and the ones each loop is made of: epoll_wait, recvfrom and sendto for the reactor
        # (std's read and write on a socket are recv and send), io_uring_enter for io-uring.
        calls=(epoll_wait recvfrom sendto io_uring_enter)
        perf_events=raw_syscalls:sys_enter$(printf ',syscalls:sys_enter_%s' "${calls[@]}")
        for model in reactor io-uring reactor io-uring; do
            start_server "$model" echo-line
            run_loadgen "$work/r8.json" --conns 50 --size 64 --warmup 1s --duration "$duration" --rate "$rate"
            stop_server
            n=$(json_field "$work/r8.json" "['counts']['requests']")
            # perf -x, lines: count,unit,event,...
            printf '  %-9s system calls per request: %s\n' "$model" \
                "$(awk -F, -v n="$n" '$3 ~ /sys_enter/ {sub(/.*:(sys_enter_)?/, "", $3); sub(/^sys_enter$/, "all", $3); printf "%s %.3f  ", $3, $1 / n}' "$work/perf.txt")"
        done
        perf_events=
        # Where the server's CPU goes: a 3-second profile of each in the middle of the same
        # load, its symbols summed into categories (scripts/lib/cpu-categories.awk).
        for model in reactor io-uring; do
            start_server "$model" echo-line
            taskset -c 1 "$loadgen_bin" run --addr "$addr" --proto echo-line --conns 50 --size 64 --rate "$rate" \
                --warmup 1s --duration 6s >/dev/null 2>&1 &
            lg=$!
            sleep 2 # into the measured phase; the profile then covers 3 s of it
            perf record -q -o "$work/perf.data" -p "$server_pid" -- sleep 3 2>/dev/null
            wait "$lg" || true
            stop_server
            echo "  $model: where the server's CPU goes"
            perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null |
                awk -f scripts/lib/cpu-categories.awk | sort -rn
        done
        for model in reactor io-uring; do
            start_server "$model" echo-line
            base=$(server_rss_kib)
            run_loadgen "$work/idle.json" --conns 1 --idle-conns 10000 --warmup 0 --duration 2s --timeout 10s
            stop_server
            printf '  %-9s baseline %6d KiB, with 10,000 idle %7d KiB: %6.0f bytes per connection\n' \
                "$model" "$base" "$rss_kib" "$(calc "($rss_kib - $base) * 1024 / 10000")"
        done
    fi
fi

if [[ $only == *9* ]]; then
    echo "== 9. process-per-connection against thread-per-connection: connects per second, $reps x $duration; memory at 1,000 idle"
    for i in $(seq "$reps"); do
        for model in thread-per-connection process-per-connection; do
            start_server "$model" echo-line
            run_loadgen "$work/r9.json" --conns 16 --size 64 --conn-per-request --warmup 1s --duration "$duration"
            stop_server
            rate=$(json_field "$work/r9.json" "['achieved_rate']")
            n=$(json_field "$work/r9.json" "['counts']['requests']")
            echo "$rate" >>"$work/r9.$model"
            printf '  %-22s run %d: %7.0f connections/s, server CPU %6d ns per connection\n' "$model" "$i" "$rate" $((cpu_ns / n))
        done
    done
    ratio=$(paste "$work/r9.process-per-connection" "$work/r9.thread-per-connection" | awk '{print $1 / $2}' | median)
    printf '  median: thread-per-connection %.0f, process-per-connection %.0f connections/s; ratio %.3f\n' \
        "$(median <"$work/r9.thread-per-connection")" "$(median <"$work/r9.process-per-connection")" "$ratio"
    # Memory of the whole process tree: the server and every process whose parent it is.
    tree_kib() { # FIELD (Rss or Pss): summed over the server and its children, from smaps_rollup
        local pids; pids="$server_pid $(cat /proc/"$server_pid"/task/*/children 2>/dev/null)"
        for p in $pids; do cat /proc/"$p"/smaps_rollup 2>/dev/null; done | awk -v f="$1:" '$1 == f {s += $2} END {print s}'
    }
    for model in thread-per-connection process-per-connection; do
        start_server "$model" echo-line
        base_rss=$(tree_kib Rss) base_pss=$(tree_kib Pss)
        taskset -c 1 "$loadgen_bin" run --addr "$addr" --proto echo-line --conns 1 --idle-conns 1000 --warmup 0 \
            --duration 10s --timeout 10s --json "$work/idle9.json" >/dev/null 2>&1 &
        lg=$!
        for _ in $(seq 200); do # until the 1,000 idle connections are open (bounded: 20 s)
            [[ $(ls /proc/"$server_pid"/fd | wc -l) -ge 1000 || $(cat /proc/"$server_pid"/task/*/children | wc -w) -ge 1000 ]] && break
            sleep 0.1
        done
        sleep 1 # the last children are still starting: counting now would miss their pages
        procs=$(($(cat /proc/"$server_pid"/task/*/children | wc -w) + 1))
        rss=$(tree_kib Rss) pss=$(tree_kib Pss)
        wait "$lg" || true
        stop_server
        printf '  %-22s %5d processes: RSS %7d KiB (%5.0f KiB per connection), PSS %7d KiB (%5.1f KiB per connection)\n' \
            "$model" "$procs" "$rss" "$(calc "($rss - $base_rss) / 1000")" "$pss" "$(calc "($pss - $base_pss) / 1000")"
    done
fi
