#!/usr/bin/env bash
# Talk to the lab's chat server with a standard client, `nc`, the way a person would in three
# terminals: for each model `SERVER_BIN --list-models` names, start `SERVER_BIN --proto chat`
# on a free port, join three `nc` members, check the welcome, the join notices, that a line
# reaches the two others behind its sender's id (and not its sender), and the leave notice;
# then SIGTERM the server by its PID and require exit status 0.
#
# No model is left out by name. Two answers from the server itself end a model's check early,
# with a `skipped: <reason>` line instead of a failure:
#   - it cannot serve chat here, and says so (`--check`, or one line instead of `listening on`:
#     process-per-connection's processes share no room);
#   - it serves one member at a time: the second member is welcomed only once the first has
#     left (blocking's lesson), so a room of three cannot form. The script checks both halves
#     of that: no welcome while the first is connected, and a welcome right after it leaves;
#     a second member that is never welcomed is a failure.
#
# Usage: scripts/clients/chat.sh SERVER_BIN      (e.g. target/release/server)
#
# Needs bash and `nc` (netcat-openbsd, installed with apt-get if missing). Every wait is
# bounded; whatever the script started is killed on exit, however it exits.
set -euo pipefail
source "$(dirname "$0")/../lib/models.sh"

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: $0 SERVER_BIN   (the lab's \`server\` binary, e.g. target/release/server)" >&2
    exit 2
fi
server_bin=$1

# How long the second member may wait for its welcome while the first is connected before the
# script concludes that the model serves one member at a time (and checks that by letting the
# first leave). Every multi-member model welcomes within milliseconds.
ONE_AT_A_TIME_WAIT=2

mapfile -t models < <(list_models "$server_bin")

if ! command -v nc >/dev/null 2>&1; then
    echo "nc not found: installing netcat-openbsd" >&2
    sudo=()
    if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get install -y netcat-openbsd >&2
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
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "chat.sh: FAIL ($model): $*" >&2
    for f in "$work"/*.out "$work"/server.err; do
        [[ -e $f ]] && { echo "--- $f" >&2; cat "$f" >&2; }
    done
    exit 1
}

# wait_for FILE TEXT [SECONDS]: until FILE holds the line TEXT exactly (bounded).
wait_for() {
    local file=$1 text=$2 limit=${3:-5}
    local tries=$((limit * 20))
    while ((tries-- > 0)); do
        grep -qxF -- "$text" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "no line \"$text\" in $(basename "$file") within ${limit}s"
}

# try_prefix FILE PREFIX SECONDS: print the first line starting with PREFIX, or return 1 when
# none comes within SECONDS.
try_prefix() {
    local file=$1 prefix=$2 limit=$3
    local tries=$((limit * 20)) line
    while ((tries-- > 0)); do
        line=$(grep -m1 -F -- "$prefix" "$file" 2>/dev/null || true)
        if [[ $line == "$prefix"* ]]; then
            printf '%s\n' "${line#"$prefix"}"
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# wait_for_prefix FILE PREFIX [SECONDS]: print the first line starting with PREFIX (bounded).
wait_for_prefix() {
    local limit=${3:-5}
    try_prefix "$1" "$2" "$limit" ||
        fail "no line starting with \"$2\" in $(basename "$1") within ${limit}s"
}

# connect NAME: connect a member through `nc`, its input a FIFO held open on fd
# member_fd[NAME], its output in $work/NAME.out.
declare -A member_fd member_pid id
connect() {
    local name=$1 fd
    mkfifo "$work/$name.in"
    nc "$host" "$port" <"$work/$name.in" >"$work/$name.out" 2>/dev/null &
    member_pid[$name]=$!
    pids+=("$!")
    exec {fd}>"$work/$name.in" # opening the FIFO for writing lets nc's open for reading return
    member_fd[$name]=$fd
}

# welcomed NAME SECONDS: sets id[NAME] from the welcome, or returns 1 when none came in time.
welcomed() {
    local got
    got=$(try_prefix "$work/$1.out" "* you are " "$2") || return 1
    [[ $got =~ ^[0-9]+$ ]] || fail "$1 was welcomed with a strange id: $got"
    id[$1]=$got
}

# join NAME: connect a member and wait for its welcome.
join() {
    connect "$1"
    welcomed "$1" 5 || fail "no welcome for $1 within 5s"
}

# leave NAME: end a member's nc (OpenBSD nc without -N keeps the connection open after its
# input ends, so end the process: the server sees the connection close either way).
leave() {
    local fd=${member_fd[$1]}
    kill "${member_pid[$1]}" 2>/dev/null || true
    wait "${member_pid[$1]}" 2>/dev/null || true
    forget "${member_pid[$1]}"
    exec {fd}>&-
}

# stop_server: SIGTERM, and the server must exit 0 within 10 s.
stop_server() {
    kill -TERM "$server_pid"
    local tries=200 status=0
    while kill -0 "$server_pid" 2>/dev/null && ((tries-- > 0)); do
        sleep 0.05
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        fail "the server did not exit within 10 s of SIGTERM"
    fi
    wait "$server_pid" || status=$?
    forget "$server_pid"
    ((status == 0)) || fail "the server exited with status $status after SIGTERM"
}

say() {
    printf '%s\n' "$2" >&"${member_fd[$1]}"
}

checked=0
for model in "${models[@]}"; do
    rm -f "$work"/*
    can_serve "$server_bin" "$model" chat || continue
    # --threads 4: a thread-pool serves at most that many members at once (its own lesson).
    "$server_bin" --model "$model" --proto chat --addr 127.0.0.1:0 --grace 2s --threads 4 \
        >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    pids+=("$server_pid")
    if ! addr=$(try_prefix "$work/server.out" "listening on " 10); then
        # A server that cannot serve chat here says so instead of listening, and exits.
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" || true
            forget "$server_pid"
            why=$(refusal "$(cat "$work/server.err")")
            if [[ -n $why ]]; then
                echo "skipped: $why"
                continue
            fi
        fi
        fail "no line starting with \"listening on \" in server.out within 10s"
    fi
    host=${addr%:*}
    port=${addr##*:}

    join a
    connect b
    if ! welcomed b "$ONE_AT_A_TIME_WAIT"; then
        # No welcome while a is connected: does b get one as soon as a leaves?
        leave a
        welcomed b 5 || fail "b was never welcomed, not even after a left"
        leave b
        stop_server
        echo "skipped: $model serves one member at a time (the second was welcomed only once the first left), so a room of three cannot form"
        continue
    fi
    wait_for "$work/a.out" "* ${id[b]} joined"
    join c
    wait_for "$work/a.out" "* ${id[c]} joined"
    wait_for "$work/b.out" "* ${id[c]} joined"

    say a "hello from a"
    wait_for "$work/b.out" "${id[a]}: hello from a"
    wait_for "$work/c.out" "${id[a]}: hello from a"
    say b "and from b"
    wait_for "$work/a.out" "${id[b]}: and from b"
    wait_for "$work/c.out" "${id[b]}: and from b"
    # By now a's own line would have come back to it, had the server sent it to its sender.
    if grep -q -- "hello from a" "$work/a.out"; then
        fail "a heard its own line"
    fi

    # c leaves.
    leave c
    wait_for "$work/a.out" "* ${id[c]} left"
    wait_for "$work/b.out" "* ${id[c]} left"

    # SIGTERM with two members connected: the server closes them and exits 0 within its grace.
    stop_server

    for name in a b; do
        leave "$name"
    done
    echo "chat.sh: $model ok (members ${id[a]}, ${id[b]}, ${id[c]}: joins, lines, leave, SIGTERM exit 0)"
    checked=$((checked + 1))
done
echo "chat.sh: $checked of ${#models[@]} models ok, the others skipped as they said"
