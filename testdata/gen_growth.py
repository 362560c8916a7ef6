#!/usr/bin/env python3
"""Weekly states of one growing linked-clone delta, with the true growth curve.

A guest file system of 64 KiB clusters (one cluster = one grain) sits on a small base disk.
Every week the guest writes new temporary files and deletes last week's, so it ends each week
exactly as full as it began, as in the create/delete experiment deltas are known for. Its
allocator prefers clusters it never used: a new cluster comes from the never-used ones with
probability never_used / (never_used + freed), else from clusters freed by deletions (which the
delta already holds, so reusing them does not grow it). The delta therefore grows fast at first
and slows as never-used space runs out: a saturating curve whose ceiling is the base's free
space.

  gen_growth.py OUTDIR [--weeks 6] [--seed 7]

OUTDIR gets base.vmdk, week-1.vmdk ... week-N.vmdk (copies of the delta after each week, all
naming base.vmdk as parent) and truth.json: {"weeks": [{"week", "allocated_bytes"}], ...}.
Writes go through qemu-io; nothing here knows deltascope.
"""

import json
import os
import random
import shutil
import subprocess
import sys

CLUSTER = 64 * 1024
CLUSTERS = 512          # 32 MiB virtual disk
SYSTEM = 64             # clusters of "system files" in the base
PER_WEEK = 80           # clusters of temporary files written (and deleted) each week


def qemu_io(image, commands):
    # Batches keep the argument list short; each qemu-io run is one open of the image.
    for i in range(0, len(commands), 200):
        args = ["qemu-io", "-f", "vmdk"]
        for c in commands[i:i + 200]:
            args += ["-c", c]
        subprocess.run(args + [image], check=True, stdout=subprocess.DEVNULL)


def main(argv):
    out = argv[1] if len(argv) > 1 else sys.exit(__doc__)
    weeks = int(argv[argv.index("--weeks") + 1]) if "--weeks" in argv else 6
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 7
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    os.chdir(out)
    for f in os.listdir("."):
        if f.endswith(".vmdk") or f == "truth.json":
            os.remove(f)
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "base.vmdk", str(CLUSTERS * CLUSTER)], check=True)
    qemu_io("base.vmdk", [f"write -P 0x5a 0 {SYSTEM * CLUSTER}"])
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", "delta.vmdk"], check=True)
    never_used = list(range(SYSTEM, CLUSTERS))
    rng.shuffle(never_used)
    freed = []
    written = set()          # clusters the delta holds
    last_week_files = []
    truth = []
    for week in range(1, weeks + 1):
        # Delete last week's files first: their clusters become free for reuse.
        freed += last_week_files
        picks = []
        for _ in range(PER_WEEK):
            nu, fr = len(never_used), len(freed)
            if nu and (not fr or rng.random() < nu / (nu + fr)):
                picks.append(never_used.pop())
            else:
                picks.append(freed.pop(rng.randrange(fr)))
        cmds = [f"write -P {0x10 + week:#x} {c * CLUSTER} {CLUSTER}" for c in sorted(picks)]
        qemu_io("delta.vmdk", cmds)
        written.update(picks)
        last_week_files = picks
        shutil.copyfile("delta.vmdk", f"week-{week}.vmdk")
        truth.append({"week": week, "allocated_bytes": len(written) * CLUSTER})
    os.remove("delta.vmdk")
    with open("truth.json", "w") as f:
        json.dump({"cluster": CLUSTER, "clusters": CLUSTERS, "system": SYSTEM, "per_week": PER_WEEK,
                   "seed": seed, "weeks": truth}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv)
