#!/usr/bin/env python3
"""Builds ESX-format VMDK layers that qemu-img can read but not create: vmfsSparse (COWD) and
SESparse deltas over a parent, and VMFS flat bases. Layouts follow docs/FORMATS.md
(sections 3, 4, 5 and 9); nothing here imports deltascope. Standard library only.

Each layer is a descriptor plus its extent. Beside it the generator writes two proofs that the
tests check with qemu, an independent reader:
  NAME.expected.raw   the guest view of the chain up to this layer (sparse file)
  NAME.layout.json    every grain this layer's tables hold: {start, length, kind, offset}
                      (kind: data, zero, unmapped, gte1), as the generator placed it

Usage (all sizes in bytes, suffixes k/M/G allowed, sums such as 6M+4k):
  gen_esx.py flat    OUT.vmdk SIZE [--create-type vmfs|vmfsThin] [--cid HEX] OPS...
  gen_esx.py cowd    OUT.vmdk --parent P.vmdk [--grain-sectors N] OPS...
  gen_esx.py sesparse OUT.vmdk --parent P.vmdk [--dirty] OPS...
  (--parent none: a delta without a parent; then SIZE is given with --size)
OPS, applied in order:
  write:OFF:LEN:BYTE   guest write of LEN bytes of BYTE (hex) at OFF
  zero:OFF:LEN         guest write of zeros (SESparse: whole grains become zero entries)
  unmap:OFF:LEN        SCSI unmap (SESparse only; whole grains)
  gte1:OFF             COWD only: the grain at OFF gets table entry 1 (readers disagree)
"""

import json
import os
import re
import struct
import subprocess
import sys
import tempfile

SECTOR = 512


def size(text):
    if "+" in text:
        return sum(size(t) for t in text.split("+"))
    m = re.fullmatch(r"(\d+)([kKMG]?)", text)
    if not m:
        raise SystemExit(f"bad size {text!r}")
    mult = {"": 1, "k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]
    return int(m.group(1)) * mult


class Guest:
    """The guest view below the new layer plus the new layer's writes, as sparse 4 KiB pages."""

    PAGE = 4096

    def __init__(self, capacity, parent_raw=None):
        self.capacity = capacity
        self.pages = {}
        if parent_raw:
            with open(parent_raw, "rb") as f:
                for i in range(0, capacity, self.PAGE):
                    f.seek(i)
                    b = f.read(self.PAGE)
                    if b.strip(b"\0"):
                        self.pages[i // self.PAGE] = bytearray(b.ljust(self.PAGE, b"\0"))

    def read(self, off, n):
        out = bytearray()
        while n:
            p, o = divmod(off, self.PAGE)
            k = min(n, self.PAGE - o)
            page = self.pages.get(p)
            out += page[o:o + k] if page else bytes(k)
            off += k
            n -= k
        return bytes(out)

    def write(self, off, data):
        i = 0
        while i < len(data):
            p, o = divmod(off + i, self.PAGE)
            k = min(len(data) - i, self.PAGE - o)
            page = self.pages.setdefault(p, bytearray(self.PAGE))
            page[o:o + k] = data[i:i + k]
            i += k

    def save(self, path):
        with open(path, "wb") as f:
            for p in sorted(self.pages):
                if any(self.pages[p]):
                    f.seek(p * self.PAGE)
                    f.write(self.pages[p])
            f.truncate(self.capacity)


def parse_ops(ops):
    out = []
    for op in ops:
        parts = op.split(":")
        kind = parts[0]
        if kind == "write" and len(parts) == 4:
            out.append((kind, size(parts[1]), size(parts[2]), int(parts[3], 16)))
        elif kind in ("zero", "unmap") and len(parts) == 3:
            out.append((kind, size(parts[1]), size(parts[2]), 0))
        elif kind == "gte1" and len(parts) == 2:
            out.append((kind, size(parts[1]), 0, 0))
        else:
            raise SystemExit(f"bad op {op!r}")
    return out


def descriptor_cid(path):
    """CID of a VMDK: from its text descriptor or the one embedded in a KDMV file."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head[:4] == b"KDMV":
        off, n = struct.unpack_from("<QQ", head, 28)
        with open(path, "rb") as f:
            f.seek(off * SECTOR)
            head = f.read(n * SECTOR)
    text = head.split(b"\0")[0].decode("latin-1")
    m = re.search(r"^CID\s*=\s*([0-9a-fA-F]+)", text, re.M)
    if not m:
        raise SystemExit(f"{path}: no CID in its descriptor")
    return m.group(1).lower()


def write_descriptor(path, cid, parent_cid, create_type, extents, parent_hint):
    lines = [
        "# Disk DescriptorFile",
        "version=1",
        'encoding="UTF-8"',
        f"CID={cid}",
        f"parentCID={parent_cid}",
        f'createType="{create_type}"',
    ]
    if parent_hint:
        lines.append(f'parentFileNameHint="{parent_hint}"')
    lines += ["", "# Extent description"] + extents + [
        "",
        "# The Disk Data Base",
        "#DDB",
        "",
        'ddb.adapterType = "lsilogic"',
        'ddb.virtualHWVersion = "14"',
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def cid_for(path):
    # Deterministic: derived from the file name, never ffffffff.
    h = 0x811C9DC5
    for c in os.path.basename(path).encode():
        h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
    return f"{h & 0xFFFFFFFE:08x}"


def parent_view(parent, tmp):
    raw = os.path.join(tmp, "parent.raw")
    subprocess.run(["qemu-img", "convert", "-O", "raw", parent, raw], check=True)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", parent], check=True,
                                     capture_output=True, text=True).stdout)
    return raw, info["virtual-size"]


class Sparse:
    """Grain bookkeeping shared by COWD and SESparse: the grain state this layer holds."""

    def __init__(self, capacity, grain):
        self.capacity = capacity
        self.grain = grain
        self.state = {}  # grain number -> "data" | "zero" | "unmapped" | "gte1"
        self.order = []  # grain numbers in the order data grains were first allocated

    def apply(self, ops, guest, allow_entries):
        g = self.grain
        for kind, off, n, byte in ops:
            if off + max(n, 1) > self.capacity:
                raise SystemExit(f"{kind} at {off:#x}+{n:#x} is past the capacity")
            if kind == "gte1":
                if "gte1" not in allow_entries:
                    raise SystemExit("gte1 is for COWD only")
                gn = off // g
                self.state[gn] = "gte1"
                guest.write(gn * g, bytes(g))
                continue
            first, last = off // g, (off + n - 1) // g
            for gn in range(first, last + 1):
                s, e = max(off, gn * g), min(off + n, (gn + 1) * g)
                whole = s == gn * g and e == (gn + 1) * g
                if kind in ("zero", "unmap") and whole and kind in allow_entries:
                    cur = self.state.get(gn)
                    if kind == "unmap" and cur == "zero":
                        pass  # unmapping a zero grain leaves it a zero grain
                    else:
                        self.state[gn] = "unmapped" if kind == "unmap" else "zero"
                    guest.write(s, bytes(e - s))
                    continue
                if kind == "unmap":
                    raise SystemExit("unmap must cover whole grains")
                data = bytes([byte]) * (e - s) if kind == "write" else bytes(e - s)
                # Copy-on-write: a partly written grain keeps the rest of what the guest saw.
                if self.state.get(gn) != "data":
                    self.state[gn] = "data"
                    self.order.append(gn)
                guest.write(s, data)
        # Grains written, then zeroed or unmapped whole, keep their slot in `order`.


def layout_entries(sp, offset_of):
    out = []
    for gn in sorted(sp.state):
        kind = sp.state[gn]
        e = {"start": gn * sp.grain, "length": sp.grain, "kind": kind}
        if kind == "data":
            e["offset"] = offset_of(gn)
        out.append(e)
    return out


def make_cowd(out, parent, capacity, grain_sectors, ops, guest):
    grain = grain_sectors * SECTOR
    if capacity % grain or capacity // SECTOR > 0xFFFFFFFF:
        raise SystemExit("COWD capacity must be whole grains and under 2 TiB")
    sp = Sparse(capacity, grain)
    sp.apply(ops, guest, {"gte1"})
    per_gt = 4096 * grain
    num_gd = -(-capacity // per_gt)
    gd_sectors = -(-num_gd * 4 // SECTOR)
    gd = [0] * num_gd
    tables = {}  # gd index -> list of 4096 entries
    next_free = 4 + gd_sectors
    slots = {}
    # Tables and grains appended in the order writes first touched them, as ESX does.
    touched = []
    for gn in sp.order + [g for g in sorted(sp.state) if sp.state[g] == "gte1"]:
        if gn not in touched:
            touched.append(gn)
    file_grains = []
    for gn in touched:
        gi = gn * grain // per_gt
        if gi not in tables:
            tables[gi] = [0] * 4096
            gd[gi] = next_free
            next_free += 32
        if sp.state[gn] == "gte1":
            tables[gi][gn % 4096] = 1
        elif sp.state[gn] == "data":
            slots[gn] = next_free
            tables[gi][gn % 4096] = next_free
            file_grains.append((next_free, gn))
            next_free += grain_sectors
    extent = out[:-5] + "-delta.vmdk" if out.endswith(".vmdk") else out + "-delta"
    with open(extent, "wb") as f:
        hdr = bytearray(2048)
        struct.pack_into("<4sIIIIIII", hdr, 0, b"COWD", 1, 3, capacity // SECTOR, grain_sectors,
                         4, num_gd, next_free)
        name = os.path.basename(extent).encode()[:59]
        hdr[1064:1064 + len(name)] = name
        struct.pack_into("<I", hdr, 1648, 0)
        f.write(hdr)
        f.write(struct.pack(f"<{num_gd}I", *gd).ljust(gd_sectors * SECTOR, b"\0"))
        for gi, t in tables.items():
            f.seek(gd[gi] * SECTOR)
            f.write(struct.pack("<4096I", *t))
        for sector, gn in file_grains:
            f.seek(sector * SECTOR)
            f.write(guest.read(gn * grain, grain))
        f.truncate(next_free * SECTOR)
    return extent, "VMFSSPARSE", "vmfsSparse", layout_entries(sp, lambda gn: slots[gn] * SECTOR)


def rotated(index):
    return ((index & 0xFFF) << 48) | (index >> 12)


def make_sesparse(out, capacity, ops, guest, dirty):
    grain = 4096
    if capacity % grain:
        raise SystemExit("SESparse capacity must be whole 4 KiB grains")
    sp = Sparse(capacity, grain)
    sp.apply(ops, guest, {"zero", "unmap"})
    area = 2048  # sectors per metadata area, as in the ESXi sample (FORMATS.md 4.1)
    cap_s = capacity // SECTOR
    gd_entries = -(-cap_s // (4096 * 8))
    if gd_entries > area * SECTOR // 8 or gd_entries > area // 64:
        raise SystemExit("capacity too large for this generator's fixed 1 MiB areas")
    vol, jhdr, journal, gd_off, gt_off, bitmap, backmap, grains_off = (
        1, 2, 2048, 4096, 6144, 8192, 10240, 12288)
    gd = [0] * gd_entries
    gts = {}
    gt_order = []
    slot_of = {}
    for gn in sp.order:
        slot_of[gn] = len(slot_of)
    # GTs get indexes in the order grains (of any entry type) first need them.
    for gn in sp.order + sorted(sp.state):
        gi = gn // 4096
        if gi not in gts:
            gts[gi] = [0] * 4096
            gt_order.append(gi)
            gd[gi] = 0x1000000000000000 | (len(gt_order) - 1)
    for gn, kind in sp.state.items():
        t = gts[gn // 4096]
        if kind == "data":
            t[gn % 4096] = 0x3000000000000000 | rotated(slot_of[gn])
        elif kind == "zero":
            t[gn % 4096] = 0x2000000000000000
        elif kind == "unmapped":
            # The old index stays in the low bits when the grain had a slot.
            t[gn % 4096] = 0x1000000000000000 | (rotated(slot_of[gn]) if gn in slot_of else 0)
    extent = out[:-5] + "-sesparse.vmdk" if out.endswith(".vmdk") else out + "-sesparse"
    with open(extent, "wb") as f:
        hdr = struct.pack("<26Q", 0xCAFEBABE, 0x0000000200000001, cap_s, 8, 64, 0, 0, 0, 0, 0,
                          vol, 1, jhdr, 2, journal, area, gd_off, area, gt_off, area, bitmap,
                          area, backmap, area, grains_off, cap_s)
        f.write(hdr.ljust(SECTOR, b"\0"))
        f.write(struct.pack("<4Q", 0xCAFECAFE, len(gt_order), 1, 1 if dirty else 0).ljust(SECTOR, b"\0"))
        f.seek(gd_off * SECTOR)
        f.write(struct.pack(f"<{gd_entries}Q", *gd))
        for idx, gi in enumerate(gt_order):
            f.seek((gt_off + idx * 64) * SECTOR)
            f.write(struct.pack("<4096Q", *gts[gi]))
        bits = bytearray(-(-len(slot_of) // 8))
        for k in range(len(slot_of)):
            bits[k // 8] |= 1 << (k % 8)
        f.seek(bitmap * SECTOR)
        f.write(bits)
        f.seek(backmap * SECTOR)
        for gn in sp.order:
            f.write(struct.pack("<Q", 0x1000000000000000 | rotated(gn)))
        for gn in sp.order:
            f.seek((grains_off + slot_of[gn] * 8) * SECTOR)
            f.write(guest.read(gn * grain, grain))
        f.truncate((grains_off + len(slot_of) * 8) * SECTOR)
    return extent, "SESPARSE", "seSparse", layout_entries(
        sp, lambda gn: (grains_off + slot_of[gn] * 8) * SECTOR)


def make_flat(out, capacity, create_type, ops, guest):
    for kind, off, n, byte in ops:
        if kind != "write" and kind != "zero":
            raise SystemExit(f"{kind} is not for a flat disk")
        guest.write(off, bytes([byte]) * n if kind == "write" else bytes(n))
    extent = out[:-5] + "-flat.vmdk"
    guest.save(extent)
    # vmfs and vmfsThin both name their data file on a VMFS extent line (no offset).
    return extent, "VMFS", create_type, None


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    what, out = argv[1], argv[2]
    rest = argv[3:]
    opts = {"--parent": None, "--grain-sectors": "1", "--size": None, "--create-type": "vmfs",
            "--cid": None}
    flags = set()
    ops = []
    i = 0
    while i < len(rest):
        a = rest[i]
        if a in opts:
            opts[a] = rest[i + 1]
            i += 2
        elif a == "--dirty":
            flags.add(a)
            i += 1
        else:
            ops.append(a)
            i += 1
    out = os.path.abspath(out)
    if what == "flat":
        capacity = size(ops.pop(0))
    ops = parse_ops(ops)
    with tempfile.TemporaryDirectory() as tmp:
        parent = opts["--parent"]
        if what == "flat":
            guest = Guest(capacity)
        elif parent and parent != "none":
            raw, capacity = parent_view(os.path.abspath(parent), tmp)
            guest = Guest(capacity, raw)
        else:
            capacity = size(opts["--size"] or "0")
            if not capacity:
                raise SystemExit("a delta without a parent needs --size")
            guest = Guest(capacity)
        if what == "flat":
            extent, line_kind, create_type, layout = make_flat(out, capacity, opts["--create-type"], ops, guest)
        elif what == "cowd":
            extent, line_kind, create_type, layout = make_cowd(out, parent, capacity, int(opts["--grain-sectors"]), ops, guest)
        elif what == "sesparse":
            extent, line_kind, create_type, layout = make_sesparse(out, capacity, ops, guest, "--dirty" in flags)
        else:
            raise SystemExit(f"unknown kind {what!r}")
    has_parent = what != "flat" and parent and parent != "none"
    parent_cid = descriptor_cid(parent) if has_parent else "ffffffff"
    hint = os.path.relpath(os.path.abspath(parent), os.path.dirname(out)) if has_parent else None
    write_descriptor(out, opts["--cid"] or cid_for(out), parent_cid, create_type,
                     [f'RW {capacity // SECTOR} {line_kind} "{os.path.basename(extent)}"'], hint)
    base = out[:-5] if out.endswith(".vmdk") else out
    guest.save(base + ".expected.raw")
    if layout is not None:
        with open(base + ".layout.json", "w") as f:
            json.dump(layout, f)


if __name__ == "__main__":
    main(sys.argv)
