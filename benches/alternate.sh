#!/usr/bin/env bash
# Times commands in turn, ROUNDS times over (A B C A B C ...), and prints each one's median
# wall time and its ratio to the first command's median. Alternating spreads the noise of a
# shared machine over every command alike, so the ratios hold better than the seconds.
#
#   benches/alternate.sh ROUNDS LABEL 'COMMAND' [LABEL 'COMMAND']...
#
# Each COMMAND runs under `bash -c` with its output discarded. PREPARE='COMMAND' runs (untimed)
# before every timed command (e.g. evicting files for cold runs); JSON=FILE also writes the
# medians as hyperfine's --export-json does (results[].command, median, times), for
# benches/report.py.
set -euo pipefail

rounds=${1:?usage: alternate.sh ROUNDS LABEL COMMAND [LABEL COMMAND]...}
shift
labels=()
cmds=()
while [ $# -ge 2 ]; do
    labels+=("$1")
    cmds+=("$2")
    shift 2
done
[ ${#cmds[@]} -gt 0 ] || { echo "alternate.sh: no command given" >&2; exit 2; }
times=()
for _ in $(seq "$rounds"); do
    for k in "${!cmds[@]}"; do
        if [ -n "${PREPARE:-}" ]; then bash -c "$PREPARE" >/dev/null 2>&1; fi
        s=$(date +%s%N)
        bash -c "${cmds[$k]}" >/dev/null 2>&1 || echo "alternate.sh: ${labels[$k]} failed" >&2
        e=$(date +%s%N)
        times[k]="${times[k]:-} $(((e - s) / 1000000))"
    done
done
for k in "${!cmds[@]}"; do
    printf '%s|%s\n' "${labels[$k]}" "${times[$k]}"
done | python3 -c '
import json, statistics, sys
first = None
results = []
for line in sys.stdin:
    label, ms = line.rstrip("\n").split("|")
    runs = [int(x) / 1000 for x in ms.split()]
    m = statistics.median(runs)
    first = first or m
    each = " ".join(f"{x:.2f}" for x in runs)
    print(f"{label:24s} median {m:8.3f} s  x{m / first:6.2f}  runs {each}")
    results.append({"command": label, "median": m, "times": runs})
if sys.argv[1]:
    json.dump({"results": results, "alternated": True}, open(sys.argv[1], "w"), indent=1)
' "${JSON:-}"
