#!/usr/bin/env bash
# Builds small VMDK chains the way a new user would, with qemu-img and qemu-io only, into OUTDIR.
# Each chain is a directory holding its layers and `chain.txt` (layer file names, base first).
# Deterministic apart from the CIDs qemu picks; the integration tests build them once per run.
#
#   testdata/make-chains.sh OUTDIR
#
# Every write is chosen to land in one class that scan must find (see tests/it/scan_truth.rs):
# fresh growth, overwrites, identical rewrites, zero writes (`write -z`), sub-grain 4 KiB
# writes, three-layer chains, twoGb extents, zeroed-grain entries, flat and streamOptimized bases.
set -euo pipefail

out=${1:?usage: make-chains.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

io() { # io IMAGE 'cmd' ['cmd' ...]: run qemu-io commands on IMAGE (format vmdk).
    local img=$1
    shift
    local args=()
    for c in "$@"; do args+=(-c "$c"); done
    qemu-io -f vmdk "${args[@]}" "$img" >/dev/null
}

delta() { # delta PARENT CHILD [create options]
    qemu-img create -q -f vmdk -b "$1" -F vmdk ${3:+-o "$3"} "$2"
}

chain() { # chain DIR LAYER...: record the layer order.
    local dir=$1
    shift
    printf '%s\n' "$@" >"$dir/chain.txt"
}

# hosted3: monolithicSparse base and two deltas, every class in every layer.
d="$out/hosted3" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk base.vmdk 16M
io base.vmdk 'write -P 0x11 0 1M' 'write -P 0x22 4M 256k' 'write -P 0x33 8M 64k' \
    'write -P 0x44 12M 4k' 'write -z 13M 64k'
delta base.vmdk d1.vmdk
io d1.vmdk \
    'write -P 0x55 2M 512k' \
    'write -P 0x66 0 64k' \
    'write -P 0x11 64k 64k' \
    'write -P 0x11 128k 4k' \
    'write -z 192k 64k' \
    'write -P 0x77 4M 4k' \
    'write -P 0x88 6M 4k' \
    'write -P 0x99 8M 8k' \
    'write -P 0x00 10M 64k'
delta d1.vmdk d2.vmdk
io d2.vmdk \
    'write -P 0xaa 3M 128k' \
    'write -P 0x55 2M 64k' \
    'write -P 0xbb 2M 4k' \
    'write -z 4M 64k' \
    'write -P 0x33 8M 64k' \
    'write -P 0xcc 15M 1M'
chain "$d" base.vmdk d1.vmdk d2.vmdk

# zeroed: deltas created with zeroed_grain=on, so `write -z` stores zeroed-grain entries.
d="$out/zeroed" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk -o zeroed_grain=on base.vmdk 8M
io base.vmdk 'write -P 0x21 0 2M' 'write -z 2M 128k'
delta base.vmdk d1.vmdk zeroed_grain=on
io d1.vmdk 'write -z 0 256k' 'write -z 1M 64k' 'write -P 0x21 512k 64k' 'write -P 0x31 4M 192k' \
    'write -z 6M 64k'
chain "$d" base.vmdk d1.vmdk

# twogb: twoGbMaxExtentSparse base (a descriptor and several -sNNN extents) and a delta that
# crosses the extent boundary.
d="$out/twogb" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse base.vmdk 5G
io base.vmdk 'write -P 0x41 0 128k' 'write -P 0x42 2047M 2M' 'write -P 0x43 4095M 1M'
delta base.vmdk d1.vmdk
io d1.vmdk 'write -P 0x44 2047M 64k' 'write -P 0x42 2048M 64k' 'write -P 0x45 3G 4k' \
    'write -P 0x41 0 4k'
chain "$d" base.vmdk d1.vmdk

# flat: monolithicFlat base (read as data everywhere, classified by content) and a delta.
d="$out/flat" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk -o subformat=monolithicFlat base.vmdk 8M
io base.vmdk 'write -P 0x51 0 1M' 'write -P 0x52 5M 4k'
delta base.vmdk d1.vmdk
io d1.vmdk 'write -P 0x53 512k 64k' 'write -P 0x51 0 64k' 'write -P 0x54 6M 64k' 'write -z 5M 4k'
chain "$d" base.vmdk d1.vmdk

# twogbflat: twoGbMaxExtentFlat base (several flat extents) and a delta.
d="$out/twogbflat" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentFlat base.vmdk 3G
io base.vmdk 'write -P 0x61 0 64k' 'write -P 0x62 2047M 2M'
delta base.vmdk d1.vmdk
io d1.vmdk 'write -P 0x63 2048M 64k' 'write -P 0x64 1G 4k'
chain "$d" base.vmdk d1.vmdk

# single: one monolithicSparse layer made with compat6 (virtualHWVersion 6), a sub-grain
# write at the end of a grain and a zero write in a layer with nothing below it.
d="$out/single" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk -o compat6=on base.vmdk 4M
io base.vmdk 'write -P 0x71 0 4k' 'write -P 0x72 1M 68k' 'write -z 2M 64k' 'write -P 0x73 3M 1M'
chain "$d" base.vmdk

# stream: a streamOptimized (compressed) base converted from a sparse one, and a delta on it.
d="$out/stream" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk src.vmdk 8M
io src.vmdk 'write -P 0x81 0 1M' 'write -P 0x82 3M 64k' 'write -P 0x83 7M 4k'
qemu-img convert -f vmdk -O vmdk -o subformat=streamOptimized src.vmdk base.vmdk
rm src.vmdk
delta base.vmdk d1.vmdk
io d1.vmdk 'write -P 0x84 0 64k' 'write -P 0x81 64k 64k' 'write -P 0x85 5M 4k' 'write -z 3M 64k'
chain "$d" base.vmdk d1.vmdk
