#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (git-ignored).

    fuzz/make-seeds.py GENERATED...

GENERATED are output directories of testdata/make-chains.sh, testdata/make-esx-chains.sh and
testdata/make-horizon.sh (whose .vmx and .vmsd files seed the `vmx` and `vmsd` targets).
Seeds also come from testdata/demo and testdata/samples (gunzipped). Files are sorted into
targets by their magic; every chain directory (chain.txt, base first) becomes one input of the
`chain` target in the format of deltascope::fuzzing::split_files: name, NUL, u32 LE length,
bytes, top layer first. Flat extents are cut to 64 KiB (the rest reads as zeros) so that chain
seeds stay small. The `import` target gets a few CSV exports of each layout.
"""
import gzip, hashlib, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
MAX = 4 << 20  # largest seed, bytes


def put(target, data):
    if len(data) > MAX:
        return
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    return gzip.decompress(data) if path.endswith(".gz") else data


def classify(data):
    head = data[:4]
    if head == b"KDMV":
        flags = struct.unpack_from("<I", data, 8)[0] if len(data) >= 12 else 0
        return "stream" if flags & 0x10000 else "kdmv"
    if head == b"COWD":
        return "cowd"
    if data[:8] == b"\xbe\xba\xfe\xca\0\0\0\0":
        return "sesparse"
    if b"createType" in data[:4096] or b"# Disk DescriptorFile" in data[:4096]:
        return "descriptor"
    return None


def tiny_sesparse():
    sector = 512
    head = [0] * 64
    head[0], head[1], head[2], head[3], head[4] = 0xCAFEBABE, 0x200000001, 8192, 8, 64
    head[10], head[11] = 1, 1          # volatile header
    head[16], head[17] = 2, 1          # grain directory
    head[18], head[19] = 3, 64         # one grain table
    head[24], head[25] = 67, 16        # two grains
    out = bytearray(struct.pack("<64Q", *head))
    out += struct.pack("<4Q", 0xCAFECAFE, 1, 1, 0).ljust(sector, b"\0")
    out += struct.pack("<Q", 0x1000000000000000).ljust(sector, b"\0")
    gt = [3 << 60, 2 << 60, 1 << 60, (3 << 60) | (1 << 48)]
    out += struct.pack("<4Q", *gt).ljust(64 * sector, b"\0")
    out += b"\x5a" * 4096 + b"\xa5" * 4096
    return bytes(out)


def tiny_kdmv(stream=False, parent=None):
    """A 1 MiB hosted sparse disk with 4 KiB grains and 64-entry tables: 4 tables, two of
    them present, grains of data, a zeroed-grain entry and (stream) compressed grains."""
    sector, grain, gtes, cap = 512, 8, 64, 2048
    desc = ('# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=%s\ncreateType="%s"\n'
            % (0x1234 if parent is None else 0x5678, "ffffffff" if parent is None else "00001234",
               "streamOptimized" if stream else "monolithicSparse"))
    if parent:
        desc += 'parentFileNameHint="%s"\n' % parent
    desc += 'RW %d SPARSE "disk.vmdk"\n' % cap
    desc = desc.encode().ljust(2 * sector, b"\0")

    def header(gd, flags, overhead):
        h = b"KDMV" + struct.pack("<IIQQQQIQQQ", 3 if stream else 2, flags, cap, grain, 1, 2,
                                   gtes, 0, gd, overhead)
        h += b"\0\n \r\n" + struct.pack("<H", 1 if stream else 0)
        return h.ljust(sector, b"\0")

    if not stream:
        # header, descriptor (2), GD (1), two GTs (1 each), grains
        gd = struct.pack("<4I", 4, 0, 5, 0).ljust(sector, b"\0")
        gt0 = struct.pack("<3I", 6, 1, 14).ljust(sector, b"\0")
        gt2 = struct.pack("<2I", 0, 22).ljust(sector, b"\0")
        grains = b"\x11" * 4096 + b"\x22" * 4096 + b"\x33" * 4096
        return header(3, 0x7, 6) + desc + gd + gt0 + gt2 + grains
    import zlib
    out = bytearray(header(0xFFFFFFFFFFFFFFFF, 0x30001, 3) + desc)
    entries = {}
    for g, byte in ((0, 0x44), (1, 0x55), (130, 0x66)):
        z = zlib.compress(bytes([byte]) * 4096)
        entries[g] = len(out) // sector
        marker = struct.pack("<QI", g * grain, len(z)) + z
        out += marker.ljust(-(-len(marker) // sector) * sector, b"\0")
    gts = {}
    for t in (0, 2):
        out += struct.pack("<QII", 1, 0, 1).ljust(sector, b"\0")
        gts[t] = len(out) // sector
        gt = [entries.get(t * gtes + i, 0) for i in range(gtes)]
        out += struct.pack("<%dI" % gtes, *gt).ljust(sector, b"\0")
    out += struct.pack("<QII", 1, 0, 2).ljust(sector, b"\0")
    gd_sector = len(out) // sector
    out += struct.pack("<4I", gts[0], 0, gts[2], 0).ljust(sector, b"\0")
    out += struct.pack("<QII", 1, 0, 3).ljust(sector, b"\0")
    out += header(gd_sector, 0x30001, 3)
    out += struct.pack("<QII", 0, 0, 0).ljust(sector, b"\0")
    return bytes(out)


def tiny_cowd():
    """A 4 MiB COWD redo log: 512-byte grains, 2 tables, one present, with data grains and
    a GTE of 1."""
    sector = 512
    h = b"COWD" + struct.pack("<IIIIIII", 1, 3, 8192, 1, 4, 2, 0)
    h = h.ljust(2048, b"\0")
    gd = struct.pack("<2I", 5, 0).ljust(sector, b"\0")
    gt = struct.pack("<3I", 37, 1, 38).ljust(4096 * 4, b"\0")
    return h + gd + gt + b"\x77" * 512 + b"\x88" * 512


def join(files):
    out = b""
    for name, body in files:
        out += name.encode() + b"\0" + struct.pack("<I", len(body)) + body
    return out


def files_of(d):
    for base, _, names in os.walk(d):
        for n in names:
            if n.endswith((".vmdk", ".img", ".vmdk.gz", ".img.gz")):
                yield os.path.join(base, n)


VMX = b'''.encoding = "UTF-8"
config.version = "8"
displayName = "vdi-01 |22pool A|22 %2f floor 2"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "vdi-01.vmdk"
scsi0:1.fileName = "/vmfs/volumes/6a7b8c9d-01234567-89ab-001122334466/vdi-01/vdi-01-vdm-user-disk-D-1f2e.vmdk"
scsi0:1.mode = "independent-persistent"
sata0:0.fileName = "vdi-01-vdm-disposable-3c4d.vmdk"
nvme0:1.fileName = "vdi-01-vdm-internal-5e6f.vmdk"
nvme0:1.present = "FALSE"
ide1:0.deviceType = "cdrom-image"
ide1:0.fileName = "win10.iso"
'''

VMSD = b'''.encoding = "UTF-8"
snapshot.lastUID = "2"
snapshot.current = "2"
snapshot0.uid = "1"
snapshot0.displayName = "before |22patch|22"
snapshot0.createTimeHigh = "416404"
snapshot0.createTimeLow = "-814770620"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "vdi-03.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot.numSnapshots = "2"
snapshot1.uid = "2"
snapshot1.parent = "1"
snapshot1.disk0.fileName = "vdi-03-000001.vmdk"
'''


def main():
    dirs = [os.path.join(ROOT, "testdata", "demo"), os.path.join(ROOT, "testdata", "samples")]
    dirs += sys.argv[1:]
    put("vmx", VMX)
    put("vmsd", VMSD)
    for d in sys.argv[1:]:
        for base, _, names in os.walk(d):
            for n in names:
                if n.endswith((".vmx", ".vmsd")):
                    try:
                        put(n.rsplit(".", 1)[1], read(os.path.join(base, n)))
                    except OSError:
                        pass  # the generated pod's locked folder
    for d in dirs:
        for p in files_of(d):
            data = read(p)
            t = classify(data)
            if t:
                put(t, data)
            if t in ("kdmv", "stream"):
                # The embedded descriptor is a descriptor seed too.
                off, size = struct.unpack_from("<QQ", data, 28)
                if off and size:
                    put("descriptor", data[off * 512 : (off + size) * 512].rstrip(b"\0"))
                put("kdmv" if t == "stream" else "stream", data)
    for d in sys.argv[1:]:
        for chain_txt in (os.path.join(b, "chain.txt") for b, _, n in os.walk(d) if "chain.txt" in n):
            cdir = os.path.dirname(chain_txt)
            layers = open(chain_txt).read().split()
            top = layers[-1]
            names = [top] + sorted(n for n in os.listdir(cdir)
                                   if n != top and n.endswith(".vmdk"))
            files = []
            for n in names:
                body = read(os.path.join(cdir, n))
                if classify(body) is None:
                    body = body[:65536]
                files.append((n, body))
            put("chain", join(files))
    # A small SESparse extent (the generated ones are 6 MiB of mostly journal): capacity
    # 4 MiB, one grain table, grains of every entry type.
    sesparse = tiny_sesparse()
    put("sesparse", sesparse)
    desc = (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
            b'createType="seSparse"\nRW 8192 SESPARSE "s-sesparse.vmdk"\n')
    put("chain", join([("s.vmdk", desc), ("s-sesparse.vmdk", sesparse)]))
    put("kdmv", tiny_kdmv())
    put("stream", tiny_kdmv(stream=True))
    put("cowd", tiny_cowd())
    put("chain", join([("delta.vmdk", tiny_kdmv(parent="base.vmdk")),
                       ("base.vmdk", tiny_kdmv(stream=True))]))
    cowd_desc = (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=00001234\n'
                 b'createType="vmfsSparse"\nparentFileNameHint="base.vmdk"\n'
                 b'RW 8192 VMFSSPARSE "c-delta.vmdk"\n')
    put("chain", join([("c.vmdk", cowd_desc), ("c-delta.vmdk", tiny_cowd()),
                       ("base.vmdk", tiny_kdmv())]))
    # Absolute ESXi hints: one the fuzz target's --map rewrites (/vmfs/volumes/fuzz is
    # /fuzz), one found by its last two components under the /fuzz root.
    for hint, where in (("/vmfs/volumes/fuzz/base.vmdk", "base.vmdk"),
                        ("/vmfs/volumes/5f3a1c2e/replica/base.vmdk", "replica/base.vmdk")):
        desc = cowd_desc.replace(b'parentFileNameHint="base.vmdk"',
                                 b'parentFileNameHint="%s"' % hint.encode())
        put("chain", join([("c.vmdk", desc), ("c-delta.vmdk", tiny_cowd()),
                           (where, tiny_kdmv())]))
    # Chains of the demo: the three layers in one input.
    demo = os.path.join(ROOT, "testdata", "demo")
    names = ["win10-clone-000002.vmdk", "win10-clone-000001.vmdk", "win10-base.vmdk"]
    put("chain", join([(n, read(os.path.join(demo, n))) for n in names]))
    # CSV exports for `import`: the first byte picks the options (see
    # deltascope::fuzzing::import_csv), each export is tried with several.
    exports = [
        b"timestamp,disk,bytes\n2026-10-05T08:00:00Z,vdi-01,1048576\n"
        b"2026-10-12 08:00,vdi-01,3145728\n2026-10-19,vdi-02,0\n",
        b"#TYPE VMware.VimAutomation.ViCore.Impl.V1.VM.SnapshotImpl\n"
        b'"Description","Created","Quiesced","PowerState","VM","SizeMB","SizeGB","Name"\n'
        b'"","10/3/2026 9:00:00 PM","False","PoweredOn","app-01","512.25","0.500244140625","pre-upgrade"\n',
        b"VM,Powerstate,Name,Date / time,Filename,Size MiB (vmsn),Size MiB (total)\n"
        b"vdi-07,poweredOn,golden,2026/10/01 06:00:00,[ds1] vdi-07/vdi-07-000001.vmdk,0,1024\n"
        b"vdi-08,poweredOn,golden,13/10/2026 06:00:00,[ds1] vdi-08/vdi-08.vmdk,0,2048\n",
        b"\xef\xbb\xbfVM;Powerstate;Name;Date / time;Size MiB (vmsn);Size MiB (total)\n"
        b"vm\xe9;poweredOn;snap1;01.11.2026 10:00:00;12;2048,5\n",
    ]
    for e in exports:
        for opt in (0, 1, 2, 6):
            put("import", bytes([opt]) + e)


main()
