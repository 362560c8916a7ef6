#!/usr/bin/env bash
# Builds chains in the ESX formats qemu can read but not create (vmfsSparse/COWD, SESparse, VMFS
# flat), mixed with qemu-made hosted and streamOptimized layers, into OUTDIR. Same layout as
# make-chains.sh: one directory per chain with `chain.txt` (base first). Layers made by
# gen_esx.py carry NAME.expected.raw and NAME.layout.json, which the tests check with qemu.
# Files qemu must refuse or readers disagree on go under OUTDIR/special (no chain.txt).
#
#   testdata/make-esx-chains.sh OUTDIR
#
# Never write into a generated COWD file with qemu-io: qemu cannot allocate its grain tables
# and overwrites the header (docs/FORMATS.md 8.1).
set -euo pipefail

out=${1:?usage: make-esx-chains.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
gen() { python3 "$here/gen_esx.py" "$@"; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
chain() {
    local dir=$1
    shift
    printf '%s\n' "$@" >"$dir/chain.txt"
}
io() {
    local img=$1
    shift
    local args=()
    for c in "$@"; do args+=(-c "$c"); done
    qemu-io -f vmdk "${args[@]}" "$img" >/dev/null
}

# vmfs_cowd2: VMFS flat base + COWD delta + COWD delta (a View linked clone on VMFS5).
d="$out/vmfs_cowd2" && mkdir -p "$d" && cd "$d"
gen flat base.vmdk 16M write:0:1M:11 write:4M:64k:22 write:2M:512:23 write:10M:4k:24
gen cowd d1.vmdk --parent base.vmdk \
    write:512k:8k:31 write:0:4k:11 write:4M:512:55 write:6M:2M:66 zero:10M:4k write:15M:1k:77
gen cowd d2.vmdk --parent d1.vmdk \
    write:6M:4k:66 write:6M+4k:4k:88 write:12M:1536:99 write:1M:2M:aa zero:512k:512
chain "$d" base.vmdk d1.vmdk d2.vmdk

# cowd_grain8: VMFS flat base + COWD with 4 KiB (8-sector) grains and partial-grain writes.
d="$out/cowd_grain8" && mkdir -p "$d" && cd "$d"
gen flat base.vmdk 8M write:0:64k:41 write:3M:4k:42
gen cowd d1.vmdk --parent base.vmdk --grain-sectors 8 \
    write:1024:512:43 write:3M:2k:42 write:3M+2k:2k:44 write:5M:12k:45 write:2047k:8k:46
chain "$d" base.vmdk d1.vmdk

# hosted_sesparse: qemu-made monolithicSparse base + SESparse delta with every entry type and
# more than 4096 grains (rotated indexes past 4095), across two grain tables.
d="$out/hosted_sesparse" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk base.vmdk 40M
io base.vmdk 'write -P 0x51 0 2M' 'write -P 0x52 20M 64k'
gen sesparse d1.vmdk --parent base.vmdk \
    write:1M:17M:61 write:0:4k:51 write:8k:2k:62 zero:20M:8k unmap:1M+4k:8k unmap:30M:4k \
    zero:32M:4k unmap:32M:4k write:36M+1k:1k:63
chain "$d" base.vmdk d1.vmdk

# sesparse2: VMFS flat base + SESparse delta + SESparse delta (VMFS6 snapshots).
d="$out/sesparse2" && mkdir -p "$d" && cd "$d"
gen flat base.vmdk 16M write:0:512k:71 write:8M:64k:72
gen sesparse d1.vmdk --parent base.vmdk write:256k:512k:73 write:8M:4k:72 write:12M:4k:74
gen sesparse d2.vmdk --parent d1.vmdk write:256k:4k:75 zero:8M:64k unmap:12M:4k write:15M:4k:76
chain "$d" base.vmdk d1.vmdk d2.vmdk

# stream_cowd: an OVA-style streamOptimized base (qemu-converted) + COWD delta.
d="$out/stream_cowd" && mkdir -p "$d" && cd "$d"
qemu-img create -q -f vmdk src.vmdk 8M
io src.vmdk 'write -P 0x81 0 1M' 'write -P 0x82 5M 64k'
qemu-img convert -f vmdk -O vmdk -o subformat=streamOptimized src.vmdk base.vmdk
rm src.vmdk
gen cowd d1.vmdk --parent base.vmdk write:0:4k:81 write:512k:4k:83 write:6M:64k:84
chain "$d" base.vmdk d1.vmdk

# cowd_alone: a COWD delta with no parent, and an SESparse one.
d="$out/cowd_alone" && mkdir -p "$d" && cd "$d"
gen cowd d1.vmdk --parent none --size 4M write:0:4k:91 write:3M:512:92
chain "$d" d1.vmdk
d="$out/sesparse_alone" && mkdir -p "$d" && cd "$d"
gen sesparse d1.vmdk --parent none --size 4M write:0:8k:93 zero:1M:4k unmap:2M:4k
chain "$d" d1.vmdk

# special: a dirty SESparse journal (qemu refuses it), a COWD with GTE 1 (readers disagree) and
# a vmfsThin base (qemu does not know the createType; ESXi writes it for thin disks).
d="$out/special" && mkdir -p "$d" && cd "$d"
gen flat base.vmdk 4M write:0:1M:a1
gen flat thin.vmdk 4M --create-type vmfsThin write:0:1M:a1
gen sesparse dirty.vmdk --parent base.vmdk --dirty write:0:4k:a2
gen cowd gte1.vmdk --parent base.vmdk write:2M:512:a3 gte1:0 gte1:2M+512
