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
