#!/usr/bin/env bash
# Builds a larger NTFS chain to time what reading the guest costs `scan` (docs/PERFORMANCE.md,
# "Reading the guest"): a 4 GiB disk, MBR, one NTFS partition; a base of 1 GiB in 4,096 files,
# and a delta that writes 512 MiB of new files (2,048), a 256 MiB /pagefile.sys, 64 MiB under
# /Windows/Temp, rewrites 64 MiB of the base's files in place and deletes 12.5 MiB of new files.
# Needs mkntfs and ntfs-3g (FUSE), qemu-img, python3. About 4 GiB on disk while it runs, 2 GiB
# after.
#
#   benches/make-ntfs-bench.sh OUTDIR
set -euo pipefail

out=${1:?usage: make-ntfs-bench.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.work-XXXXXX")
mnt="$work/mnt"
mkdir -p "$mnt"
cleanup() {
    mountpoint -q "$mnt" && fusermount -u "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

disk_mib=4096
part_start=2048
part_sectors=$(((disk_mib - 1) * 2048))

# fill DIR COUNT KIB SEED: COUNT files of KIB KiB of pseudo-random bytes (distinct per file).
fill() {
    python3 - "$1" "$2" "$3" "$4" <<'EOF'
import os, random, sys
d, count, kib, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(d, exist_ok=True)
r = random.Random(seed)
block = r.randbytes(1 << 20)
for i in range(count):
    with open(f"{d}/f{i:05}.bin", "wb") as f:
        left = kib << 10
        n = 0
        while left:
            k = min(left, 1 << 20)
            # A header per MiB keeps every 4 KiB block distinct from every other file's.
            f.write((f"{d} {i} {n} ".encode() * 300)[:4096] + block[4096:k])
            left -= k
            n += 1
EOF
}

truncate -s $((part_sectors * 512)) "$work/part"
mkntfs -q -F -Q -c 4096 -s 512 -p "$part_start" -H 255 -S 63 -L bench "$work/part"
ntfs-3g -o rw "$work/part" "$mnt"
fill "$mnt/data" 4096 256 1
sync
fusermount -u "$mnt"
python3 - "$work/part" "$work/base.raw" "$part_start" "$part_sectors" "$disk_mib" <<'EOF'
import struct, sys
part, disk, start, count, mib = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
mbr = bytearray(512)
mbr[446:462] = bytes([0, 0xFE, 0xFF, 0xFF, 0x07, 0xFE, 0xFF, 0xFF]) + struct.pack("<II", start, count)
mbr[510:512] = b"\x55\xaa"
with open(disk, "wb") as d:
    d.truncate(mib << 20)
    d.write(mbr)
EOF
# The partition goes into the disk image in place (sparse copy).
dd if="$work/part" of="$work/base.raw" bs=1M seek=1 conv=notrunc,sparse status=none

cp --sparse=always "$work/base.raw" "$work/delta.raw"
# ntfs-3g mounts a partition image, not a disk at an offset: the delta's partition is worked
# on as its own file and written back into the disk.
dd if="$work/delta.raw" of="$work/part" bs=1M skip=1 count=$((disk_mib - 1)) conv=sparse status=none
ntfs-3g -o rw "$work/part" "$mnt"
fill "$mnt/new" 2048 256 2
mkdir -p "$mnt/Windows/Temp"
fill "$mnt/Windows/Temp" 64 1024 3
python3 - "$mnt/pagefile.sys" <<'EOF'
import random, sys
r = random.Random(4)
with open(sys.argv[1], "wb") as f:
    for i in range(256):
        f.write(r.randbytes(1 << 20))
EOF
# Rewrite 256 of the base's files in place (same size: same clusters).
python3 - "$mnt/data" <<'EOF'
import sys
for i in range(0, 4096, 16):
    with open(f"{sys.argv[1]}/f{i:05}.bin", "r+b") as f:
        f.write(b"R" * (256 << 10))
EOF
sync
fusermount -u "$mnt"
ntfs-3g -o rw "$work/part" "$mnt"
rm "$mnt"/new/f000[0-4]*.bin # 50 files: 12.5 MiB written, then deleted
sync
fusermount -u "$mnt"
dd if="$work/part" of="$work/delta.raw" bs=1M seek=1 conv=notrunc,sparse status=none

cd "$out"
rm -f base.vmdk delta.vmdk
qemu-img convert -q -f raw -O vmdk "$work/base.raw" base.vmdk
qemu-img create -q -f qcow2 -b "$work/delta.raw" -F raw "$work/delta.qcow2"
qemu-img rebase -q -f qcow2 -b "$work/base.raw" -F raw "$work/delta.qcow2"
qemu-img convert -q -O vmdk -B base.vmdk -F vmdk "$work/delta.qcow2" delta.vmdk
ls -l "$out"
