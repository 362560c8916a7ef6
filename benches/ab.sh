#!/usr/bin/env bash
# Times two deltascope binaries on the same arguments, alternating (A, B, A, B, ...) so that
# the noise of a shared machine falls on both, and prints the medians and B/A.
#
#   benches/ab.sh OLD_BINARY NEW_BINARY ROUNDS ARGS...
#   benches/ab.sh /tmp/deltascope-old target/release/deltascope 5 --quiet --no-cache scan --json top.vmdk
#
# Both runs use one scratch layer cache (DELTASCOPE_CACHE); the cache key holds a hash of the
# classification code, so two builds never share entries.
set -euo pipefail
a=${1:?usage: ab.sh OLD NEW ROUNDS ARGS...}
b=${2:?usage: ab.sh OLD NEW ROUNDS ARGS...}
n=${3:?usage: ab.sh OLD NEW ROUNDS ARGS...}
shift 3
DELTASCOPE_CACHE=$(mktemp -d)
export DELTASCOPE_CACHE
trap 'rm -rf "$DELTASCOPE_CACHE"' EXIT
# One untimed run of each fills the page cache and the layer cache.
"$a" "$@" >/dev/null 2>&1 || true
"$b" "$@" >/dev/null 2>&1 || true
ta=()
tb=()
for _ in $(seq "$n"); do
    for which in a b; do
        bin=$a
        [ "$which" = b ] && bin=$b
        s=$(date +%s%N)
        "$bin" "$@" >/dev/null 2>&1 || true
        e=$(date +%s%N)
        if [ "$which" = a ]; then ta+=($((e - s))); else tb+=($((e - s))); fi
    done
done
python3 - "${ta[*]}" "${tb[*]}" "$*" <<'PY'
import statistics as st, sys
a = [int(x) / 1e9 for x in sys.argv[1].split()]
b = [int(x) / 1e9 for x in sys.argv[2].split()]
print(f"{sys.argv[3]}: old {st.median(a):.3f} s, new {st.median(b):.3f} s, new/old {st.median(b) / st.median(a):.3f}")
PY
