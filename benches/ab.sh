#!/usr/bin/env bash
# Times two deltascope binaries on the same arguments, alternating (old, new, old, new, ...)
# through benches/alternate.sh, so that the noise of a shared machine falls on both; its
# "x" column for `new` is new/old.
#
#   benches/ab.sh OLD_BINARY NEW_BINARY ROUNDS ARGS...
#   benches/ab.sh /tmp/deltascope-old target/release/deltascope 5 --quiet --no-cache scan --json top.vmdk
#
# Both use one scratch layer cache (DELTASCOPE_CACHE); the cache key holds a hash of the
# classification code, so two builds never share entries.
set -euo pipefail
a=${1:?usage: ab.sh OLD NEW ROUNDS ARGS...}
b=${2:?usage: ab.sh OLD NEW ROUNDS ARGS...}
n=${3:?usage: ab.sh OLD NEW ROUNDS ARGS...}
shift 3
DELTASCOPE_CACHE=$(mktemp -d)
export DELTASCOPE_CACHE
trap 'rm -rf "$DELTASCOPE_CACHE"' EXIT
args=$(printf ' %q' "$@")
# One untimed run of each fills the page cache and the layer cache.
"$a" "$@" >/dev/null 2>&1 || true
"$b" "$@" >/dev/null 2>&1 || true
"$(dirname "$0")/alternate.sh" "$n" old "$(printf '%q' "$a")$args" new "$(printf '%q' "$b")$args"
