# Shared by check-targets.sh and compare-clients.sh: one server at a time, pinned to CPU 0.
# The caller sets `server_bin` and `work` (a scratch directory) and stops the server on exit.

server_pid=

# start_server MODEL PROTO [ARGS...]: sets server_pid and addr (from its `listening on` line).
start_server() {
    local model=$1 proto=$2
    shift 2
    taskset -c 0 "$server_bin" --model "$model" --proto "$proto" "$@" >"$work/listen" 2>"$work/server.err" &
    server_pid=$!
    for _ in $(seq 200); do
        grep -q '^listening on' "$work/listen" && break
        sleep 0.05 # polling a file for the line; nothing to synchronise with
    done
    addr=$(sed -n 's/^listening on //p' "$work/listen")
    [[ -n $addr ]] || { echo "server $model did not start: $(cat "$work/server.err")" >&2; exit 1; }
}

stop_server() {
    kill -TERM "$server_pid"
    wait "$server_pid" || echo "warning: server exited with $?" >&2
    server_pid=
}

# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
