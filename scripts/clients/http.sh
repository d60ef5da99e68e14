#!/usr/bin/env bash
# Check the `http` protocol of every model with curl, a client the lab did not write.
#
#   scripts/clients/http.sh SERVER_BIN        e.g. scripts/clients/http.sh target/release/server
#
# For each model `SERVER_BIN --list-models` names (MODELS="reactor thread-pool" limits them),
# it starts `SERVER_BIN --model M --proto http --addr 127.0.0.1:0`, reads the `listening on ADDR`
# line, and checks: GET / is 200 `Hello, world!`; HEAD / has the headers and no body; /nope is
# 404; POST is 405 with `Allow: GET, HEAD`; two URLs in one curl call share one connection
# (keep-alive); HTTP/1.0 (`curl -0`) is served. Then it stops the server with SIGTERM and checks
# that it exits 0. A model that cannot serve http here (the server says so: `--check`, or one
# line instead of `listening on`) is skipped with a `skipped: <the server's reason>` line.
#
# Installs curl with apt-get if it is missing (through sudo when not root). Exits 0 when every
# check passed, 1 with a message naming the model and the check otherwise, 2 on a usage error.
set -euo pipefail
source "$(dirname "$0")/../lib/models.sh"

WAIT_SECONDS=10 # for the `listening on` line, and for the exit after SIGTERM

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {
    echo "http.sh: FAIL: $*" >&2
    exit 1
}

[[ $# -eq 1 && $1 != -h && $1 != --help ]] || usage
server_bin=$1
[[ -x $server_bin ]] || die "$server_bin is not an executable (build it: cargo build --release)"
# Every model the server lists, unless MODELS names some.
MODELS=${MODELS:-$(list_models "$server_bin")}

install_curl() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "curl is missing, and neither root nor sudo can install it"
        sudo=(sudo)
    fi
    echo "http.sh: installing curl" >&2
    # A fresh machine may have no package lists yet: update only if the first try fails.
    "${sudo[@]}" apt-get install -y curl >/dev/null ||
        { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y curl >/dev/null; } ||
        die "could not install curl with apt-get"
}
command -v curl >/dev/null || install_curl

tmp=$(mktemp -d)
server_pid=
cleanup() {
    # Only the server this script started, by its PID.
    if [[ -n $server_pid ]]; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true # reap it, without bash's "Killed" notice
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# curl with a bound on every transfer, so a hung server fails the check instead of the script.
curl_() {
    curl --silent --show-error --max-time 5 "$@"
}

# start_server MODEL: sets server_pid and addr. Returns 1, after printing `skipped: …`, when
# the server says instead of listening that its model cannot serve http here.
start_server() {
    local model=$1 fifo="$tmp/$1.stdout" line why
    mkfifo "$fifo"
    "$server_bin" --model "$model" --proto http --addr 127.0.0.1:0 >"$fifo" 2>"$tmp/$model.stderr" &
    server_pid=$!
    # Opening the FIFO waits for the server's end; the read waits for its first line, bounded.
    exec {out}<"$fifo"
    if ! read -r -t "$WAIT_SECONDS" -u "$out" line || [[ $line != "listening on "* ]]; then
        exec {out}<&-
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" || true
            server_pid=
            why=$(refusal "$(cat "$tmp/$model.stderr")")
            if [[ -n $why ]]; then
                echo "skipped: $why"
                return 1
            fi
        fi
        die "$model: no \`listening on ADDR\` line within ${WAIT_SECONDS}s (stderr: $(cat "$tmp/$model.stderr"))"
    fi
    exec {out}<&-
    addr=${line#listening on }
}

# stop_server MODEL: SIGTERM, then the exit status must be 0 within WAIT_SECONDS.
stop_server() {
    local model=$1 status=0 tenths=0
    kill -TERM "$server_pid"
    while kill -0 "$server_pid" 2>/dev/null && ((tenths < WAIT_SECONDS * 10)); do
        sleep 0.1 # polling for the process to end; nothing to synchronise with
        tenths=$((tenths + 1))
    done
    kill -0 "$server_pid" 2>/dev/null && die "$model: still running ${WAIT_SECONDS}s after SIGTERM"
    wait "$server_pid" || status=$?
    server_pid=
    ((status == 0)) || die "$model: exited with status $status after SIGTERM (stderr: $(cat "$tmp/$model.stderr"))"
}

# expect MODEL WHAT GOT WANTED
expect() {
    [[ $3 == "$4" ]] || die "$1: $2: expected $(printf %q "$4"), got $(printf %q "$3")"
}

check_model() {
    local model=$1 got headers
    can_serve "$server_bin" "$model" http || return 0
    start_server "$model" || return 0
    local url="http://$addr"

    got=$(curl_ --write-out ' %{http_code}' "$url/") || die "$model: GET / failed"
    expect "$model" "GET / (body and status)" "$got" "Hello, world! 200"

    headers=$(curl_ --head "$url/" | tr -d '\r') || die "$model: HEAD / failed"
    [[ $headers == "HTTP/1.1 200 OK"* && $headers == *$'\nContent-Length: 13'* ]] ||
        die "$model: HEAD / headers: $headers"

    got=$(curl_ --output /dev/null --write-out '%{http_code}' "$url/nope") || die "$model: GET /nope failed"
    expect "$model" "GET /nope" "$got" 404

    headers=$(curl_ --request POST --dump-header - --output /dev/null "$url/" | tr -d '\r') ||
        die "$model: POST / failed"
    [[ $headers == "HTTP/1.1 405 "* && $headers == *$'\nAllow: GET, HEAD'* ]] || die "$model: POST /: $headers"

    # Two URLs in one call: the second must reuse the first one's connection (0 new connects).
    got=$(curl_ --output /dev/null --output /dev/null --write-out '%{num_connects} ' "$url/" "$url/?again") ||
        die "$model: two GETs on one connection failed"
    expect "$model" "keep-alive: new connections per request" "$got" "1 0 "

    # HTTP/1.0 without `Connection: keep-alive` (curl sends none): served, then closed.
    got=$(curl_ --http1.0 --write-out ' %{http_code}' "$url/") || die "$model: HTTP/1.0 GET failed"
    expect "$model" "HTTP/1.0 GET /" "$got" "Hello, world! 200"
    headers=$(curl_ --http1.0 --dump-header - --output /dev/null "$url/" | tr -d '\r') ||
        die "$model: HTTP/1.0 GET failed"
    [[ $headers == *$'\nConnection: close'* ]] || die "$model: HTTP/1.0 reply does not say it closes: $headers"

    stop_server "$model"
    echo "ok   $model: GET, HEAD, 404, 405, keep-alive, HTTP/1.0, exit 0 on SIGTERM"
}

for model in $MODELS; do
    check_model "$model"
done
echo "http.sh: every check passed"
