#!/usr/bin/env python3
"""The same classification with the Python VMDK readers (libvmdk's pyvmdk, dissect.hypervisor),
for docs/PERFORMANCE.md: for every 4 KiB block of the ranges the top layer holds, read the
chain's view and the parent's view through the reader and compare them.

  py_classify.py libvmdk|dissect TOP.vmdk PARENT.vmdk RUNS.json

RUNS.json lists the [start, length] ranges the top layer holds (benches/compare.sh writes it
from `qemu-img map` of the layer alone, outside the timing): neither reader says which grains a
layer holds. Prints bytes per class: fresh overwritten identical zeroed.
"""

import json
import sys

BLOCK = 4096
CHUNK = 1 << 20
ZERO = bytes(BLOCK)


def open_libvmdk(top, parent):
    import pyvmdk

    def one(path):
        h = pyvmdk.handle()
        h.open(path)
        h.open_extent_data_files()
        return h

    p = one(parent)
    t = one(top)
    t.set_parent(p)
    return (lambda off, n: t.read_buffer_at_offset(n, off)), (lambda off, n: p.read_buffer_at_offset(n, off))


def open_dissect(top, parent):
    from dissect.hypervisor.disk.vmdk import VMDK

    t = VMDK(top)
    p = t.parent if t.parent is not None else VMDK(parent)

    def reader(stream):
        def read(off, n):
            stream.seek(off)
            return stream.read(n)
        return read

    return reader(t), reader(p)


def main(argv):
    if len(argv) != 5 or argv[1] not in ("libvmdk", "dissect"):
        raise SystemExit(__doc__)
    read_top, read_parent = (open_libvmdk if argv[1] == "libvmdk" else open_dissect)(argv[2], argv[3])
    runs = json.load(open(argv[4]))
    fresh = over = ident = zeroed = 0
    for start, length in runs:
        off = start
        end = start + length
        while off < end:
            n = min(CHUNK, end - off)
            top = memoryview(read_top(off, n))
            par = memoryview(read_parent(off, n))
            for i in range(0, n, BLOCK):
                b = top[i:i + BLOCK]
                k = len(b)
                if b == ZERO[:k]:
                    zeroed += k
                else:
                    p = par[i:i + BLOCK]
                    if b == p:
                        ident += k
                    elif p == ZERO[:k]:
                        fresh += k
                    else:
                        over += k
            off += n
    print(f"fresh {fresh} overwritten {over} identical {ident} zeroed {zeroed}")


if __name__ == "__main__":
    main(sys.argv)
