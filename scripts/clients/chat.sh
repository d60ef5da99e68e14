#!/usr/bin/env bash
# Talk to the lab's chat server with a standard client, `nc`, the way a person would in three
# terminals: for each multi-member model (every model `SERVER_BIN --list-models` names but
# `blocking`), start `SERVER_BIN --proto chat` on a free port, join
# three `nc` members, check the welcome, the join notices, that a line reaches the two others
# behind its sender's id (and not its sender), and the leave notice; then SIGTERM the server by
# its PID and require exit status 0.
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

# Every model the server lists, but `blocking`: it serves one connection at a time, so the
# second member would wait for the first to leave and a room of three never forms. That is
# blocking's lesson (the conformance tests say so), not something for a chat client to check.
all_models=$(list_models "$server_bin")
mapfile -t models < <(grep -vxF blocking <<<"$all_models")

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

# wait_for_prefix FILE PREFIX [SECONDS]: print the first line starting with PREFIX (bounded).
wait_for_prefix() {
    local file=$1 prefix=$2 limit=${3:-5}
    local tries=$((limit * 20)) line
    while ((tries-- > 0)); do
        line=$(grep -m1 -F -- "$prefix" "$file" 2>/dev/null || true)
        if [[ $line == "$prefix"* ]]; then
            printf '%s\n' "${line#"$prefix"}"
            return 0
        fi
        sleep 0.05
    done
    fail "no line starting with \"$prefix\" in $(basename "$file") within ${limit}s"
}

# join NAME: connect a member through `nc`, its input a FIFO held open on fd member_fd[NAME],
# its output in $work/NAME.out; prints nothing, sets id[NAME] from the welcome.
declare -A member_fd member_pid id
join() {
    local name=$1 fd
    mkfifo "$work/$name.in"
    nc "$host" "$port" <"$work/$name.in" >"$work/$name.out" 2>/dev/null &
    member_pid[$name]=$!
    pids+=("$!")
    exec {fd}>"$work/$name.in" # opening the FIFO for writing lets nc's open for reading return
    member_fd[$name]=$fd
    id[$name]=$(wait_for_prefix "$work/$name.out" "* you are ")
    [[ ${id[$name]} =~ ^[0-9]+$ ]] || fail "$name was welcomed with a strange id: ${id[$name]}"
}

say() {
    printf '%s\n' "$2" >&"${member_fd[$1]}"
}

for model in "${models[@]}"; do
    rm -f "$work"/*
    # --threads 4: a thread-pool serves at most that many members at once (its own lesson).
    "$server_bin" --model "$model" --proto chat --addr 127.0.0.1:0 --grace 2s --threads 4 \
        >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    pids+=("$server_pid")
    addr=$(wait_for_prefix "$work/server.out" "listening on " 10)
    host=${addr%:*}
    port=${addr##*:}

    join a
    join b
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

    # c leaves. OpenBSD nc without -N keeps the connection open after its input ends, so end
    # the process: the server sees the connection close either way.
    kill "${member_pid[c]}"
    wait "${member_pid[c]}" 2>/dev/null || true
    fd=${member_fd[c]}
    exec {fd}>&-
    wait_for "$work/a.out" "* ${id[c]} left"
    wait_for "$work/b.out" "* ${id[c]} left"

    # SIGTERM with two members connected: the server closes them and exits 0 within its grace.
    kill -TERM "$server_pid"
    tries=200
    while kill -0 "$server_pid" 2>/dev/null && ((tries-- > 0)); do
        sleep 0.05
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        fail "the server did not exit within 10 s of SIGTERM"
    fi
    status=0
    wait "$server_pid" || status=$?
    ((status == 0)) || fail "the server exited with status $status after SIGTERM"

    for name in a b; do
        fd=${member_fd[$name]}
        exec {fd}>&-
        kill "${member_pid[$name]}" 2>/dev/null || true
        wait "${member_pid[$name]}" 2>/dev/null || true
    done
    echo "chat.sh: $model ok (members ${id[a]}, ${id[b]}, ${id[c]}: joins, lines, leave, SIGTERM exit 0)"
done
echo "chat.sh: all ${#models[@]} models ok"
