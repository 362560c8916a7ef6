#!/usr/bin/env bash
# Rebuilds the committed demo chain testdata/demo/ (or OUTDIR): a small "gold image" and two
# linked-clone deltas, made with qemu-img and qemu-io as a user would, in the story deltascope
# exists to tell. Layers are monolithicSparse with 64 KiB grains; qemu chains the CIDs.
#
#   testdata/make-demo.sh [OUTDIR]
#
# win10-base.vmdk          the replica: 512 KiB of "system files" in a 256 MiB disk.
# win10-clone-000001.vmdk  first week: a profile written into free space (fresh), a few system
#                          files patched in place (overwritten), a defrag pass that rewrote
#                          files unchanged (identical), a trimmed temp area (zeroed).
# win10-clone-000002.vmdk  second week: the guest created and deleted a temporary file three
#                          times; NTFS put each copy into never-used clusters, so the delta
#                          grew three times while the guest ended as full as it began.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/demo}
mkdir -p "$out"
cd "$out"
rm -f win10-base.vmdk win10-clone-000001.vmdk win10-clone-000002.vmdk

io() {
    local img=$1
    shift
    local args=()
    for c in "$@"; do args+=(-c "$c"); done
    qemu-io -f vmdk "${args[@]}" "$img" >/dev/null
}

qemu-img create -q -f vmdk win10-base.vmdk 256M
io win10-base.vmdk 'write -P 0x4d 0 64k' 'write -P 0x53 1M 256k' 'write -P 0x57 32M 128k' \
    'write -P 0x46 64M 64k'

qemu-img create -q -f vmdk -b win10-base.vmdk -F vmdk win10-clone-000001.vmdk
io win10-clone-000001.vmdk \
    'write -P 0x50 96M 192k' \
    'write -P 0x55 1M 4k' 'write -P 0x56 1088k 4k' 'write -P 0x58 32M 64k' \
    'write -P 0x53 1152k 64k' \
    'write -z 64M 64k'

qemu-img create -q -f vmdk -b win10-clone-000001.vmdk -F vmdk win10-clone-000002.vmdk
io win10-clone-000002.vmdk \
    'write -P 0x74 128M 128k' 'write -z 128M 4k' \
    'write -P 0x74 136M 128k' 'write -z 136M 4k' \
    'write -P 0x74 144M 128k' 'write -z 144M 4k' \
    'write -P 0x4c 96M 4k'
