#!/usr/bin/env bash
# Builds the NTFS chains that `deltascope blame` is tested on, into OUTDIR (default:
# testdata/ntfs), and the oracle JSON of what was written. Needs mkntfs and ntfs-3g (Debian's
# ntfs-3g package), FUSE, qemu-img and python3. The tests never run this script: they use
# the gzip-compressed images it leaves (CI has no FUSE).
#
#   testdata/make-ntfs.sh [OUTDIR]
#   CHAINS="desktop" testdata/make-ntfs.sh   # only these chains (default: all four)
#
# Chains (each a base.vmdk and a delta.vmdk, 48 MiB disk, MBR, one NTFS partition at 1 MiB,
# 4 KiB clusters):
#   blame/  base: /base/keep.bin, /base/rewrite.bin, /docs/readme.txt.
#           delta: /new/one.bin (1 MiB) and /new/three.bin (3 MiB) created, /base/rewrite.bin
#           rewritten in place (same clusters, new bytes), /tmp/gone.bin (2 MiB) written then
#           deleted (its clusters end free).
#   churn/  the blog's experiment: on the same base, a 4 MiB file created and deleted ten times.
#   dirty/  a base whose free space is not zero (/old/junk.bin, 2 MiB, written then deleted
#           before the snapshot); the delta writes /new/reuse.bin (2 MiB), which ntfs-3g puts
#           in those free clusters: overwritten, but into parent free space.
#   desktop/ what a Windows desktop writes that a disposable disk would take: the delta writes
#           /pagefile.sys (2 MiB), /hiberfil.sys (1 MiB), /Windows/Temp/setup.log (512 KiB),
#           a user's Temp file (256 KiB), a Chrome and a Firefox cache file (512 and 256 KiB),
#           and two files no rule matches: a document (1 MiB) and a file in a folder named
#           Temp2 (128 KiB).
#
# File contents are unique per 4 KiB block (path, version and block number in a text header,
# then a fill byte), so no block of the delta equals its parent's by accident, and gzip
# compresses the images to a few hundred KiB.
set -euo pipefail

out=${1:-$(dirname "$0")/ntfs}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
mnt="$work/mnt"
mkdir -p "$mnt"
cleanup() {
    mountpoint -q "$mnt" && fusermount -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
chains=${CHAINS:-blame churn dirty desktop}
want() { [[ " $chains " == *" $1 "* ]]; }

disk_mib=48
part_start=2048 # sectors: 1 MiB
part_sectors=$(((disk_mib - 1) * 2048 - 33)) # leave room after, like a real disk's tail

# write_file PATH VERSION BYTES: deterministic content, unique per 4 KiB block.
write_file() {
    python3 - "$mnt$1" "$1" "$2" "$3" <<'EOF'
import sys
dst, path, version, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
fill = bytes([0x41 + (sum(path.encode()) + int(version)) % 26])
with open(dst, "wb") as f:
    for i in range(0, size, 4096):
        head = f"{path} v{version} block {i // 4096}\n".encode()
        n = min(4096, size - i)
        f.write((head + fill * 4096)[:n])
EOF
}

mount_part() { ntfs-3g -o rw "$1" "$mnt"; }
umount_part() { sync; fusermount -u "$mnt" 2>/dev/null || umount "$mnt"; }

# assemble PART DISK: an MBR disk holding PART at part_start, type 0x07.
assemble() {
    python3 - "$1" "$2" "$part_start" "$part_sectors" "$disk_mib" <<'EOF'
import struct, sys
part, disk, start, count, mib = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
mbr = bytearray(512)
struct.pack_into("<I", mbr, 440, 0x5EED5EED)  # disk signature
# boot flag, CHS (unused: 0xFE 0xFF 0xFF), type 0x07 (NTFS), CHS end, LBA start, count
mbr[446:462] = bytes([0x00, 0xFE, 0xFF, 0xFF, 0x07, 0xFE, 0xFF, 0xFF]) + struct.pack("<II", start, count)
mbr[510:512] = b"\x55\xaa"
with open(disk, "wb") as d, open(part, "rb") as p:
    d.truncate(mib << 20)
    d.write(mbr)
    d.seek(start * 512)
    while chunk := p.read(1 << 20):
        d.write(chunk)
EOF
}

# Base partition.
truncate -s $((part_sectors * 512)) "$work/base.part"
mkntfs -q -F -Q -c 4096 -s 512 -p "$part_start" -H 255 -S 63 -L deltascope "$work/base.part"
mount_part "$work/base.part"
mkdir -p "$mnt/base" "$mnt/docs"
write_file /base/keep.bin 1 $((512 * 1024))
write_file /base/rewrite.bin 1 $((1024 * 1024))
write_file /docs/readme.txt 1 $((64 * 1024))
umount_part
assemble "$work/base.part" "$work/base.raw"

# blame: the changes.
if want blame; then
cp "$work/base.part" "$work/blame.part"
mount_part "$work/blame.part"
mkdir -p "$mnt/new" "$mnt/tmp"
write_file /new/one.bin 1 $((1024 * 1024))
write_file /new/three.bin 1 $((3 * 1024 * 1024))
# In place: same size, so ntfs-3g keeps the clusters (conv=notrunc writes over them).
python3 - "$mnt/base/rewrite.bin" <<'EOF'
import sys
size = 1024 * 1024
with open(sys.argv[1], "r+b") as f:
    for i in range(0, size, 4096):
        head = f"/base/rewrite.bin v2 block {i // 4096}\n".encode()
        f.write((head + b"R" * 4096)[:4096])
EOF
umount_part
# Deleted last, in its own mount, so nothing written afterwards can reuse its clusters.
mount_part "$work/blame.part"
write_file /tmp/gone.bin 1 $((2 * 1024 * 1024))
umount_part
mount_part "$work/blame.part"
rm "$mnt/tmp/gone.bin"
umount_part
assemble "$work/blame.part" "$work/blame.raw"
fi

# churn: create and delete a 4 MiB file ten times.
if want churn; then
cp "$work/base.part" "$work/churn.part"
for i in $(seq 1 10); do
    mount_part "$work/churn.part"
    write_file /tempfile.tmp "$i" $((4 * 1024 * 1024))
    umount_part
    mount_part "$work/churn.part"
    rm "$mnt/tempfile.tmp"
    umount_part
done
assemble "$work/churn.part" "$work/churn.raw"
fi

# dirty: a base with deleted data in its free space, and a delta that reuses it.
if want dirty; then
cp "$work/base.part" "$work/dirty-base.part"
mount_part "$work/dirty-base.part"
mkdir -p "$mnt/old"
write_file /old/junk.bin 1 $((2 * 1024 * 1024))
umount_part
mount_part "$work/dirty-base.part"
rm "$mnt/old/junk.bin"
umount_part
assemble "$work/dirty-base.part" "$work/dirty-base.raw"
cp "$work/dirty-base.part" "$work/dirty.part"
mount_part "$work/dirty.part"
mkdir -p "$mnt/new"
write_file /new/reuse.bin 1 $((2 * 1024 * 1024))
umount_part
assemble "$work/dirty.part" "$work/dirty.raw"
fi

# desktop: files a disposable disk would take, and two it would not.
if want desktop; then
cp "$work/base.part" "$work/desktop.part"
mount_part "$work/desktop.part"
u=/Users/ann/AppData/Local
mkdir -p "$mnt/Windows/Temp" "$mnt$u/Temp" "$mnt$u/Temp2" "$mnt/Users/ann/Documents" \
    "$mnt$u/Google/Chrome/User Data/Default/Cache/Cache_Data" \
    "$mnt$u/Mozilla/Firefox/Profiles/x1y2z3.default/cache2/entries"
write_file /pagefile.sys 1 $((2 * 1024 * 1024))
write_file /hiberfil.sys 1 $((1024 * 1024))
write_file /Windows/Temp/setup.log 1 $((512 * 1024))
write_file "$u/Temp/install.tmp" 1 $((256 * 1024))
write_file "$u/Google/Chrome/User Data/Default/Cache/Cache_Data/f_000001" 1 $((512 * 1024))
write_file "$u/Mozilla/Firefox/Profiles/x1y2z3.default/cache2/entries/E0A1" 1 $((256 * 1024))
write_file /Users/ann/Documents/report.docx 1 $((1024 * 1024))
write_file "$u/Temp2/keep.bin" 1 $((128 * 1024))
umount_part
assemble "$work/desktop.part" "$work/desktop.raw"
fi
for c in blame churn desktop; do cp "$work/base.raw" "$work/$c-base.raw"; done

for c in $chains; do
    mkdir -p "$out/$c"
    rm -f "$out/$c"/*.vmdk "$out/$c"/*.vmdk.gz
    (cd "$out/$c" &&
        qemu-img convert -q -f raw -O vmdk "$work/$c-base.raw" base.vmdk &&
        # A qcow2 overlay of the changed disk, rebased (safe mode) onto the base disk, holds
        # exactly the clusters where the two differ; converted with -B, only the overlay's own
        # clusters reach the delta (`convert -B` of the raw disk would write every cluster).
        qemu-img create -q -f qcow2 -b "$work/$c.raw" -F raw "$work/$c.qcow2" &&
        qemu-img rebase -q -f qcow2 -b "$work/$c-base.raw" -F raw "$work/$c.qcow2" &&
        qemu-img convert -q -O vmdk -B base.vmdk -F vmdk "$work/$c.qcow2" delta.vmdk &&
        gzip -9 -n base.vmdk delta.vmdk)
done

# The oracle: what the generator wrote, in bytes (sizes are whole clusters).
cat >"$out/oracle.json" <<EOF
{
  "disk_bytes": $((disk_mib << 20)),
  "partition": {"start_bytes": $((part_start * 512)), "bytes": $((part_sectors * 512)), "mbr_type": 7},
  "cluster_bytes": 4096,
  "blame": {
    "base_files": {"/base/keep.bin": 524288, "/base/rewrite.bin": 1048576, "/docs/readme.txt": 65536},
    "new_files": {"/new/one.bin": 1048576, "/new/three.bin": 3145728},
    "rewritten_files": {"/base/rewrite.bin": 1048576},
    "deleted_files": {"/tmp/gone.bin": 2097152}
  },
  "churn": {"deleted_files": {"/tempfile.tmp": 4194304}, "rounds": 10},
  "dirty": {"base_deleted_files": {"/old/junk.bin": 2097152}, "new_files": {"/new/reuse.bin": 2097152}},
  "desktop": {
    "disposable_files": {
      "/pagefile.sys": 2097152,
      "/hiberfil.sys": 1048576,
      "/Windows/Temp/setup.log": 524288,
      "/Users/ann/AppData/Local/Temp/install.tmp": 262144,
      "/Users/ann/AppData/Local/Google/Chrome/User Data/Default/Cache/Cache_Data/f_000001": 524288,
      "/Users/ann/AppData/Local/Mozilla/Firefox/Profiles/x1y2z3.default/cache2/entries/E0A1": 262144
    },
    "kept_files": {"/Users/ann/Documents/report.docx": 1048576, "/Users/ann/AppData/Local/Temp2/keep.bin": 131072}
  }
}
EOF
ls -l "$out"/*/
