#!/usr/bin/env bash
# Builds the benchmark chains of docs/PERFORMANCE.md into OUTDIR (about 24 GiB of disk, mostly
# sparse; a few minutes). Nothing here is committed.
#
#   benches/make-bench-chains.sh OUTDIR
#
#   main/base.vmdk       32 GiB virtual monolithicSparse, ~6 GiB of data in 24 regions
#   main/top.vmdk        its delta: ~2 GiB of writes (fresh, overwrites, identical rewrites,
#                        zero writes and zeroed-grain entries)
#   scattered/top.vmdk   a delta on main/base.vmdk with 32768 scattered 4 KiB writes
#   huge/top-N.vmdk      2 TiB virtual deltas on an empty 2 TiB base with N GiB of 64 KiB writes
#                        spread over the whole address space (N = 0.1, 1, 10)
#   cowd/top.vmdk        main/top.vmdk's content as a vmfsSparse (COWD) delta over a VMFS flat
#                        copy of main/base.vmdk (cowd/base.vmdk)
#   sesparse/top.vmdk    the same as an SESparse delta over the same flat base (../cowd/base.vmdk)
#
# HUGE_MAX_GIB=1 skips the 10 GiB rung of the ladder.
set -euo pipefail

out=${1:?usage: make-bench-chains.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
G=$((1 << 30))
M=$((1 << 20))

io_script() { # IMG: qemu-io commands on stdin
    qemu-io -f vmdk "$1" >/dev/null
}

echo "main: 32 GiB base with ~6 GiB of data" >&2
d=$out/main && rm -rf "$d" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk base.vmdk 32G
{
    # 24 regions of 256 MiB, one per 1.25 GiB, each its own pattern.
    for i in $(seq 0 23); do
        printf 'write -P 0x%02x %d %d\n' $((0x10 + i)) $((i * 5 * G / 4)) $((256 * M))
    done
} | io_script base.vmdk

echo "main: delta with ~2 GiB of writes" >&2
qemu-img create -q -f vmdk -o zeroed_grain=on -b base.vmdk -F vmdk top.vmdk
{
    for i in $(seq 0 23); do
        r=$((i * 5 * G / 4))
        # fresh: 32 MiB into the zero space after each region (768 MiB in all)
        printf 'write -P 0x%02x %d %d\n' $((0x80 + i)) $((r + 512 * M)) $((32 * M))
        # overwrite: 24 MiB of each region with another pattern (576 MiB)
        printf 'write -P 0x%02x %d %d\n' $((0xc0 + i)) $((r + 16 * M)) $((24 * M))
        # identical: 12 MiB of each region rewritten with its own pattern (288 MiB)
        printf 'write -P 0x%02x %d %d\n' $((0x10 + i)) $((r + 64 * M)) $((12 * M))
        # zeros: 6 MiB as zero data over the region, 6 MiB as zeroed-grain entries (288 MiB)
        printf 'write -P 0 %d %d\n' $((r + 128 * M)) $((6 * M))
        printf 'write -z %d %d\n' $((r + 160 * M)) $((6 * M))
    done
    # partial grains: 4 KiB writes into fresh 64 KiB grains (copy-on-write amplification)
    for i in $(seq 0 2047); do
        printf 'write -P 0xee %d 4096\n' $((30 * G + i * 65536 + 8192))
    done
} | io_script top.vmdk

echo "scattered: 32768 scattered 4 KiB writes" >&2
d=$out/scattered && rm -rf "$d" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk -b ../main/base.vmdk -F vmdk top.vmdk
python3 - <<'EOF' | io_script top.vmdk
import random
rnd = random.Random(7)
G = 1 << 30
for _ in range(32768):
    # A 4 KiB block anywhere in the 32 GiB disk: about a fifth land on base data.
    off = rnd.randrange(0, 32 * G // 4096) * 4096
    print(f"write -P 0x{rnd.randrange(1, 256):02x} {off} 4096")
EOF

echo "huge: 2 TiB deltas, the ladder" >&2
d=$out/huge && rm -rf "$d" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk base.vmdk 2T
for n in 0.1 1 10; do
    if [ "$n" = 10 ] && [ "${HUGE_MAX_GIB:-10}" -lt 10 ]; then continue; fi
    qemu-img create -q -f vmdk -b base.vmdk -F vmdk "top-$n.vmdk"
    python3 - "$n" <<'EOF' | io_script "top-$n.vmdk"
import sys
n_gib = float(sys.argv[1])
grains = int(n_gib * (1 << 30) / 65536)
span = (2 << 40) // grains
# One 64 KiB grain every `span` bytes: the whole 2 TiB address space, every grain table busy.
for i in range(grains):
    print(f"write -P 0x{(i % 250) + 1:02x} {i * span // 65536 * 65536} 65536")
EOF
done
ln -sf top-1.vmdk top.vmdk

echo "ESX: flat base, COWD and SESparse deltas of main/top.vmdk" >&2
for kind in cowd sesparse; do
    d=$out/$kind && rm -rf "$d" && mkdir -p "$d"
done
qemu-img convert -f vmdk -O raw "$out/main/base.vmdk" "$out/cowd/base-flat.vmdk"
python3 "$here/esx_from_hosted.py" flat "$out/cowd/base.vmdk" 32G
python3 "$here/esx_from_hosted.py" cowd "$out/cowd/top.vmdk" "$out/main/top.vmdk" base.vmdk
python3 "$here/esx_from_hosted.py" sesparse "$out/sesparse/top.vmdk" "$out/main/top.vmdk" ../cowd/base.vmdk
echo "done: $out" >&2
