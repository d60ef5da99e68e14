#!/usr/bin/env bash
# Make a results directory lean enough to commit: keep results.json (which holds loadgen's reports
# and every /proc sample), results.csv, README.md, plots/ and hgrm/, and of logs/ only the files
# of repetitions that failed; remove raw/ (the same reports as in results.json).
#
# Usage: scripts/prune-run.sh results/<run>
# Needs: python3.
set -euo pipefail
dir=${1:?usage: scripts/prune-run.sh results/<run>}
[[ -f $dir/results.json ]] || { echo "prune-run: $dir has no results.json" >&2; exit 2; }
python3 - "$dir" <<'PY'
import json, os, sys
run = sys.argv[1]
with open(os.path.join(run, "results.json")) as f:
    results = json.load(f)
# A repetition's files are named after its point id ('/' written as '--') and its number.
failed = set()
for point in results["points"]:
    stem = point["spec"]["id"].replace("/", "--")
    for rep in point.get("repetitions", []):
        if rep.get("failures"):
            failed.add(f"{stem}.r{rep['rep']}.")
kept = removed = 0
logs = os.path.join(run, "logs")
for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
    if any(name.startswith(prefix) for prefix in failed):
        kept += 1
    else:
        os.remove(os.path.join(logs, name))
        removed += 1
raw = os.path.join(run, "raw")
raw_removed = 0
if os.path.isdir(raw):
    for name in os.listdir(raw):
        os.remove(os.path.join(raw, name))
        raw_removed += 1
    os.rmdir(raw)
print(f"prune-run: {run}: kept {kept} log files of failed repetitions, removed {removed} other logs and {raw_removed} raw reports")
PY
