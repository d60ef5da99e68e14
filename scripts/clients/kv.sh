#!/usr/bin/env bash
# scripts/clients/kv.sh SERVER_BIN: the kv protocol against the real Redis tools.
#
# For every model `SERVER_BIN --list-models` names (or those in $KV_MODELS), start `SERVER_BIN --model M --proto kv` on a free
# port, then check with an unmodified redis-cli: PING, SET, GET, DEL, EXISTS, INCR and an
# unknown command's error; an inline command typed the way `nc` would send it (through bash's
# /dev/tcp); a short `redis-benchmark -t ping,set,get` that must finish and report its rates;
# and finally SIGTERM, after which the server must exit 0. A model that cannot serve kv (the
# server says so itself, with `--check` or instead of `listening on`: process-per-connection
# shares no store between its processes) is skipped with a `skipped: <the server's reason>`
# line.
#
# Two models get settings that are their lesson, not a workaround for a bug (every other model,
# present or future, runs with the defaults: 20 clients, the server's own flags):
#   blocking     serves one connection at a time, so redis-benchmark runs with one client
#                (with 20, the other 19 would wait for the first forever: it never leaves);
#   thread-pool  runs with 32 workers for 20 clients (with fewer workers than clients, the
#                clients beyond the pool wait in the queue until a served one leaves).
#
# Needs: bash, redis-tools (installed with apt-get if missing), timeout (coreutils).
# Exit status 0 when every check passed; the first failure prints what was expected.
set -euo pipefail
source "$(dirname "$0")/../lib/models.sh"

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: $0 SERVER_BIN   (e.g. target/release/server)" >&2
    exit 2
fi
server_bin=$1
models=${KV_MODELS:-$(list_models "$server_bin")}

if ! command -v redis-cli >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "== installing redis-tools"
    sudo=()
    if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq redis-tools >/dev/null
fi

work=$(mktemp -d)
pids=()
# forget PID: a process this script has reaped is no longer its to kill (its PID may be reused).
forget() {
    local keep=() p
    for p in "${pids[@]}"; do
        [[ $p == "$1" ]] || keep+=("$p")
    done
    pids=("${keep[@]}")
}
cleanup() {
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL [$model]: $*" >&2
    if [[ -s $work/$model.err ]]; then
        echo "--- server stderr:" >&2
        cat "$work/$model.err" >&2
    fi
    exit 1
}

# expect WHAT EXPECTED ACTUAL
expect() {
    if [[ $3 != "$2" ]]; then
        fail "$1: expected '$2', got '$3'"
    fi
}

for model in $models; do
    echo "== $model"
    can_serve "$server_bin" "$model" kv || continue
    extra=()
    clients=20
    case $model in
        blocking) clients=1 ;;
        thread-pool) extra=(--threads 32) ;;
    esac
    "$server_bin" --model "$model" --proto kv --addr 127.0.0.1:0 "${extra[@]}" \
        >"$work/$model.out" 2>"$work/$model.err" &
    pid=$!
    pids+=("$pid")

    addr=
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$work/$model.out")
        [[ -n $addr ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1 # polling a child's output file: there is nothing to wait on
    done
    if [[ -z $addr ]] && ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || true
        why=$(refusal "$(cat "$work/$model.err")")
        [[ -n $why ]] || fail "the server exited before listening"
        forget "$pid"
        echo "skipped: $why"
        continue
    fi
    [[ -n $addr ]] || fail "no 'listening on' line within 10 s"
    host=${addr%:*}
    port=${addr##*:}
    cli() { timeout 10 redis-cli -h "$host" -p "$port" "$@"; }

    expect PING PONG "$(cli PING)"
    expect SET OK "$(cli SET task_01 read-book)"
    expect GET read-book "$(cli GET task_01)"
    expect "GET of a missing key" "" "$(cli GET nobody)"
    expect "EXISTS of two keys, one there" 1 "$(cli EXISTS task_01 nobody)"
    expect "DEL of two keys, one there" 1 "$(cli DEL task_01 nobody)"
    expect "EXISTS after DEL" 0 "$(cli EXISTS task_01)"
    expect "first INCR" 1 "$(cli INCR visits)"
    expect "second INCR" 2 "$(cli INCR visits)"
    unknown=$(cli FROBNICATE now)
    [[ $unknown == "ERR unknown command 'FROBNICATE', with args beginning with: 'now'"* ]] ||
        fail "unknown command: got '$unknown'"
    expect "PING after an error" PONG "$(cli PING)"

    # Inline commands, as typed into `nc`: the reply is RESP, and QUIT closes the connection,
    # which ends the read.
    inline=$(
        exec 3<>"/dev/tcp/$host/$port"
        printf 'SET greeting "hello world"\r\nGET greeting\r\nQUIT\r\n' >&3
        timeout 10 cat <&3
    )
    expect "inline commands" $'+OK\r\n$11\r\nhello world\r\n+OK\r' "$inline"

    echo "   redis-cli and inline: ok; redis-benchmark -c $clients:"
    status=0
    timeout 120 redis-benchmark -h "$host" -p "$port" -t ping,set,get -n 20000 -c "$clients" -q \
        >"$work/$model.bench" 2>&1 || status=$?
    # -q rewrites a progress line with \r; keep the final lines only.
    tr '\r' '\n' <"$work/$model.bench" | grep 'requests per second' | sed 's/^/   /' || true
    [[ $status -eq 0 ]] || fail "redis-benchmark exited with $status"
    rates=$(tr '\r' '\n' <"$work/$model.bench" | grep -c 'requests per second' || true)
    # PING_INLINE, PING_MBULK, SET and GET.
    [[ $rates -eq 4 ]] || fail "redis-benchmark reported $rates rates instead of 4"

    kill -TERM "$pid"
    status=0
    timeout 15 tail --pid="$pid" -f /dev/null || fail "did not exit within 15 s of SIGTERM"
    wait "$pid" || status=$?
    forget "$pid"
    [[ $status -eq 0 ]] || fail "exit status $status after SIGTERM"
    echo "   SIGTERM: exit 0"
done
echo "kv.sh: every check passed"
