# Sourced by the client scripts: the lab's list of models, asked of the server binary itself.
# `server --list-models` prints one `NAME<TAB>description` line per model, so no script keeps a
# copy of the list that goes stale the day a model is added.

# list_models SERVER_BIN: the model names, one per line. Exits the calling script's subshell
# with status 1 and the reason on stderr when the binary cannot tell, so `x=$(list_models B)`
# under `set -e` stops the script there.
list_models() {
    local out
    if ! out=$("$1" --list-models); then
        echo "$1 --list-models failed: a server built before the flag existed? Rebuild it: cargo build --release" >&2
        exit 1
    fi
    out=$(printf '%s\n' "$out" | cut -f1 | sed '/^[[:space:]]*$/d')
    if [[ -z $out ]]; then
        echo "$1 --list-models printed no models" >&2
        exit 1
    fi
    printf '%s\n' "$out"
}

# A model may be unable to serve a protocol here: io-uring where the kernel refuses io_uring,
# process-per-connection for kv and chat (separate processes share no store). The server says
# so itself, in one line on stderr with the words `is unavailable here` or `does not serve`, and
# exits 1: when asked with `--check`, and when started. The scripts skip such a model with that
# line rather than keep a list of who refuses what.

# refusal TEXT: the server's line saying its model cannot serve (without its `server: `
# prefix), or nothing when TEXT has none.
refusal() {
    local line
    line=$(printf '%s\n' "$1" | grep -m1 -E 'is unavailable here|does not serve' || true)
    printf '%s' "${line#server: }"
}

# can_serve SERVER_BIN MODEL PROTO: asks `SERVER_BIN --model MODEL --proto PROTO --check`.
# Returns 0 when the model can serve PROTO here, and also when the server cannot say (one
# built before --check: starting it will tell). When it cannot, prints
# `skipped: <the server's reason>` (which names the model) and returns 1.
can_serve() {
    local err status=0 why
    err=$("$1" --model "$2" --proto "$3" --check 2>&1 >/dev/null) || status=$?
    why=$(refusal "$err")
    if ((status == 1)) && [[ -n $why ]]; then
        echo "skipped: $why"
        return 1
    fi
    return 0
}
