#!/usr/bin/env bash
# The README's test command. Installs what the tests need when it can (Debian/Ubuntu packages,
# through apt as root or with passwordless sudo), says exactly what is missing when it cannot,
# then runs the whole test suite. Extra arguments go to `cargo test` (e.g. ./test.sh blame).
#
# The tests need, besides Rust:
#   qemu-img, qemu-io   the independent oracle of every format test    (qemu-utils)
#   chromium            renders the HTML report in a real browser      (chromium)
#   a TrueType font     charts measure their text                      (fonts-dejavu-core)
#   python3             generates the ESX test chains (testdata/)      (python3)
#   initdb, pg_ctl      a real PostgreSQL server the history tests     (postgresql)
#                       start themselves (on PATH or in /usr/lib/postgresql/*/bin)
#   losetup, prlimit,   block devices, address-space limits, dropping  (util-linux)
#     setpriv, mount      privileges, a small tmpfs (tests run as root)
#   mkfs.ext4, debugfs  a block-level copy with one grain changed      (e2fsprogs)
#   mkntfs, ntfscp      NTFS names that differ only after escaping     (ntfs-3g)
#   /usr/bin/time       peak memory of a cache attack                  (time)
#   prometheus_client   the Prometheus project's parser reads          (python3-prometheus-client)
#     for /usr/bin/python3  `scan DIR --metrics` output
# Exit: 0 all tests passed; 1 a test failed or something needed is missing.
set -euo pipefail
cd "$(dirname "$0")"

have() { command -v "$1" >/dev/null 2>&1; }

missing=()   # "package: why" lines
pkgs=()
need() { pkgs+=("$1"); missing+=("$1 (for $2)"); }

{ have qemu-img && have qemu-io; } || need qemu-utils "qemu-img and qemu-io, the tests' oracle"
have chromium || need chromium "the browser test of the HTML report"
font_found=""
for f in "${DELTASCOPE_FONT:-}" /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
    /usr/share/fonts/dejavu/DejaVuSans.ttf \
    /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf; do
    [ -n "$f" ] && [ -f "$f" ] && font_found="$f" && break
done
[ -n "$font_found" ] || need fonts-dejavu-core "chart text (or set DELTASCOPE_FONT to a .ttf file)"
have python3 || need python3 "the ESX test-chain generator"
pg_found=""
for d in "$(dirname "$(readlink -f "$(command -v pg_ctl 2>/dev/null || echo /nonexistent)")")" \
    /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && pg_found="$d" && break
done
[ -n "$pg_found" ] || need postgresql "initdb and pg_ctl: the history tests start a real PostgreSQL server"
for t in losetup prlimit setpriv mount; do
    have "$t" || { need util-linux "$t: block devices, memory limits, privileges"; break; }
done
{ have mkfs.ext4 && have debugfs; } || need e2fsprogs "mkfs.ext4 and debugfs: the stale-cache test"
{ have mkntfs && have ntfscp; } || need ntfs-3g "mkntfs and ntfscp: the NTFS name test"
[ -x /usr/bin/time ] || need time "/usr/bin/time: the cache-attack memory test"
/usr/bin/python3 -c 'import prometheus_client.parser' >/dev/null 2>&1 ||
    need python3-prometheus-client "the metrics test: Prometheus's own parser reads --metrics output"

if [ ${#pkgs[@]} -gt 0 ]; then
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        if have sudo && sudo -n true 2>/dev/null; then
            sudo_cmd=(sudo)
        else
            sudo_cmd=(none)
        fi
    fi
    if ! have apt-get || [ "${sudo_cmd[0]:-}" = none ]; then
        echo "test.sh: these are missing and cannot be installed from here:" >&2
        printf '  - %s\n' "${missing[@]}" >&2
        if have apt-get; then
            echo "install them as root: apt-get install ${pkgs[*]}" >&2
        else
            echo "install the equivalent packages of your system (Debian names above)" >&2
        fi
        exit 1
    fi
    echo "test.sh: installing ${pkgs[*]}" >&2
    "${sudo_cmd[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
        "${pkgs[@]}"
fi

# The ESXi-made SESparse sample cannot live in this repository (its licence). Its test reads it
# from $DELTASCOPE_SHARED_SAMPLES (default ../shared/samples) and fails when it is absent, so a
# plain `cargo test` never passes without it; here it is left out by name, and said so.
skip=()
samples="${DELTASCOPE_SHARED_SAMPLES:-../shared/samples}"
if [ ! -f "$samples/dissect-hypervisor/sesparse.vmdk" ]; then
    skip=(--skip esxi_sesparse_sample)
    echo "test.sh: NOT RUN: the test on the real ESXi SESparse sample ($samples/dissect-hypervisor/sesparse.vmdk is absent; set DELTASCOPE_SHARED_SAMPLES)" >&2
fi

# The integration tests keep their generated chains (a few GB) in the temp folder for the life
# of the test process; remove those of ended processes when this run ends, pass or fail, so
# that the disk is not left full for what comes next (CI builds the benchmarks after this).
sweep() {
    local d pid
    for d in "${TMPDIR:-/tmp}"/deltascope-it-pid*; do
        [ -d "$d" ] || continue
        pid=${d##*/deltascope-it-pid}
        pid=${pid%%-*}
        if [ -n "$pid" ] && [ ! -e "/proc/$pid" ]; then rm -rf -- "$d"; fi
    done
}
trap sweep EXIT

cargo test --locked "$@" -- "${skip[@]}"
[ ${#skip[@]} -eq 0 ] || echo "test.sh: all tests run passed; the ESXi SESparse sample test was NOT run (see above)" >&2
