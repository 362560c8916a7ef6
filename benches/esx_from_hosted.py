#!/usr/bin/env python3
"""Benchmark-scale ESX layers, streamed (testdata/gen_esx.py builds small ones page by page
and proves them with qemu; this one copies gigabytes). Standard library and qemu-img only;
nothing here imports deltascope. Layouts: docs/FORMATS.md sections 3 (COWD), 4 (SESparse) and
5 (VMFS flat), as testdata/gen_esx.py writes them.

  esx_from_hosted.py flat     OUT.vmdk SIZE              descriptor for OUT-flat.vmdk
  esx_from_hosted.py cowd     OUT.vmdk HOSTED PARENT     COWD delta (512-byte grains)
  esx_from_hosted.py sesparse OUT.vmdk HOSTED PARENT     SESparse delta (4 KiB grains)

HOSTED is a qemu-made hosted sparse delta: its allocation (qemu-img map of the layer alone)
and data are copied; its zeroed-grain entries become zero data (COWD) or zero entries
(SESparse). PARENT is the parent hint, relative to OUT's folder.
"""

import json
import os
import re
import struct
import subprocess
import sys

SECTOR = 512


def descriptor(path, cid, parent_cid, create_type, extent_line, hint):
    lines = ["# Disk DescriptorFile", "version=1", 'encoding="UTF-8"', f"CID={cid}",
             f"parentCID={parent_cid}", f'createType="{create_type}"']
    if hint:
        lines.append(f'parentFileNameHint="{hint}"')
    lines += ["", "# Extent description", extent_line, "", "# The Disk Data Base", "#DDB", "",
              'ddb.adapterType = "lsilogic"', 'ddb.virtualHWVersion = "14"', ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def cid_of(path):
    text = open(path, "rb").read(1 << 16).split(b"\0")[0].decode("latin-1")
    return re.search(r"^CID\s*=\s*([0-9a-fA-F]+)", text, re.M).group(1).lower()


def allocation(hosted):
    """(start, length, file offset or None for zero) runs the layer alone holds."""
    spec = json.dumps({"driver": "vmdk", "file": {"driver": "file", "filename": hosted},
                       "backing": None})
    out = subprocess.run(["qemu-img", "map", "--output=json", "json:" + spec], check=True,
                         capture_output=True, text=True).stdout
    runs = []
    for e in json.loads(out):
        if not e.get("present"):
            continue
        runs.append((e["start"], e["length"], e.get("offset") if e["data"] else None))
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", hosted], check=True,
                                     capture_output=True, text=True).stdout)
    return runs, info["virtual-size"]


def copy(src, dst, src_off, n):
    while n:
        k = os.copy_file_range(src, dst, n, src_off)
        if k <= 0:
            raise SystemExit("short copy")
        src_off += k
        n -= k


def make_cowd(out, hosted, hint):
    runs, capacity = allocation(hosted)
    grain = SECTOR
    per_gt = 4096 * grain
    num_gd = -(-capacity // per_gt)
    gd_sectors = -(-num_gd * 4 // SECTOR)
    # Tables first (one per 2 MiB region touched), then grains in virtual order.
    touched = sorted({s // per_gt for start, length, _ in runs
                      for s in range(start - start % per_gt, start + length, per_gt)})
    gd = [0] * num_gd
    next_free = 4 + gd_sectors
    for gi in touched:
        gd[gi] = next_free
        next_free += 32
    tables = {gi: [0] * 4096 for gi in touched}
    extent = out[:-5] + "-delta.vmdk"
    src = os.open(hosted, os.O_RDONLY)
    dst = os.open(extent, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    zero = bytes(1 << 20)
    for start, length, off in runs:
        first = next_free
        for g in range(start // grain, (start + length) // grain):
            tables[g * grain // per_gt][g % 4096] = next_free
            next_free += 1
        if off is None:
            os.lseek(dst, first * SECTOR, os.SEEK_SET)
            left = length
            while left:
                left -= os.write(dst, zero[:min(left, len(zero))])
        else:
            os.lseek(dst, first * SECTOR, os.SEEK_SET)
            copy(src, dst, off, length)
    hdr = bytearray(2048)
    struct.pack_into("<4sIIIIIII", hdr, 0, b"COWD", 1, 3, capacity // SECTOR, 1, 4, num_gd,
                     next_free)
    name = os.path.basename(extent).encode()[:59]
    hdr[1064:1064 + len(name)] = name
    os.pwrite(dst, bytes(hdr), 0)
    os.pwrite(dst, struct.pack(f"<{num_gd}I", *gd), 4 * SECTOR)
    for gi, t in tables.items():
        os.pwrite(dst, struct.pack("<4096I", *t), gd[gi] * SECTOR)
    os.ftruncate(dst, next_free * SECTOR)
    os.close(dst)
    os.close(src)
    parent = os.path.join(os.path.dirname(out), hint)
    descriptor(out, "5ca1ab1e", cid_of(parent), "vmfsSparse",
               f'RW {capacity // SECTOR} VMFSSPARSE "{os.path.basename(extent)}"', hint)


def rotated(index):
    return ((index & 0xFFF) << 48) | (index >> 12)


def make_sesparse(out, hosted, hint):
    runs, capacity = allocation(hosted)
    grain = 4096
    cap_s = capacity // SECTOR
    grains_per_gt = 4096
    gd_entries = -(-capacity // (grains_per_gt * grain))
    data_grains = sum(length // grain for _, length, off in runs if off is not None)
    touched = sorted({g // grains_per_gt for start, length, _ in runs
                      for g in range(start // grain, (start + length) // grain, grains_per_gt)}
                     | {(start + length - 1) // grain // grains_per_gt
                        for start, length, _ in runs})

    def sectors(nbytes):
        return -(-nbytes // (1 << 20)) * 2048  # areas rounded up to 1 MiB

    vol, jhdr, journal = 1, 2, 2048
    journal_size = 2048
    gd_off = journal + journal_size
    gd_size = sectors(gd_entries * 8)
    gt_off = gd_off + gd_size
    gt_size = sectors(len(touched) * grains_per_gt * 8)
    bitmap = gt_off + gt_size
    bitmap_size = sectors(-(-data_grains // 8))
    backmap = bitmap + bitmap_size
    backmap_size = sectors(data_grains * 8)
    grains_off = backmap + backmap_size
    gd = [0] * gd_entries
    gts = {}
    for idx, gi in enumerate(touched):
        gd[gi] = 0x1000000000000000 | idx
        gts[gi] = [0] * grains_per_gt
    extent = out[:-5] + "-sesparse.vmdk"
    src = os.open(hosted, os.O_RDONLY)
    dst = os.open(extent, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    slot = 0
    back = bytearray()
    for start, length, off in runs:
        if off is None:
            for g in range(start // grain, (start + length) // grain):
                gts[g // grains_per_gt][g % grains_per_gt] = 0x2000000000000000
            continue
        first = slot
        for g in range(start // grain, (start + length) // grain):
            gts[g // grains_per_gt][g % grains_per_gt] = 0x3000000000000000 | rotated(slot)
            back += struct.pack("<Q", 0x1000000000000000 | rotated(g))
            slot += 1
        os.lseek(dst, (grains_off + first * 8) * SECTOR, os.SEEK_SET)
        copy(src, dst, off, length)
    hdr = struct.pack("<26Q", 0xCAFEBABE, 0x0000000200000001, cap_s, 8, 64, 0, 0, 0, 0, 0,
                      vol, 1, jhdr, 2, journal, journal_size, gd_off, gd_size, gt_off, gt_size,
                      bitmap, bitmap_size, backmap, backmap_size, grains_off, cap_s)
    os.pwrite(dst, hdr.ljust(SECTOR, b"\0"), 0)
    os.pwrite(dst, struct.pack("<4Q", 0xCAFECAFE, len(touched), 1, 0).ljust(SECTOR, b"\0"),
              SECTOR)
    os.pwrite(dst, struct.pack(f"<{gd_entries}Q", *gd), gd_off * SECTOR)
    for idx, gi in enumerate(touched):
        os.pwrite(dst, struct.pack(f"<{grains_per_gt}Q", *gts[gi]), (gt_off + idx * 64) * SECTOR)
    bits = bytearray(b"\xff" * (slot // 8))
    if slot % 8:
        bits.append((1 << (slot % 8)) - 1)
    os.pwrite(dst, bytes(bits), bitmap * SECTOR)
    os.pwrite(dst, bytes(back), backmap * SECTOR)
    os.ftruncate(dst, (grains_off + slot * 8) * SECTOR)
    os.close(dst)
    os.close(src)
    parent = os.path.join(os.path.dirname(out), hint)
    descriptor(out, "5e5ba45e", cid_of(parent), "seSparse",
               f'RW {cap_s} SESPARSE "{os.path.basename(extent)}"', hint)


def main(argv):
    if len(argv) == 4 and argv[1] == "flat":
        out = argv[2]
        size = int(argv[3][:-1]) << {"G": 30, "M": 20}[argv[3][-1]]
        descriptor(out, "ba5ef1a7", "ffffffff", "vmfs",
                   f'RW {size // SECTOR} VMFS "{os.path.basename(out)[:-5]}-flat.vmdk"', None)
    elif len(argv) == 5 and argv[1] == "cowd":
        make_cowd(argv[2], argv[3], argv[4])
    elif len(argv) == 5 and argv[1] == "sesparse":
        make_sesparse(argv[2], argv[3], argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
