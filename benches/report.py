#!/usr/bin/env python3
"""Turns benches/compare.sh's results (hyperfine JSON, peak memory, scan JSON) into the
markdown tables of docs/PERFORMANCE.md, with each target of issue 7 marked met or missed.

  report.py RESULTS_DIR
"""

import json
import os
import sys

res = sys.argv[1]


def load(name):
    p = os.path.join(res, name)
    return json.load(open(p)) if os.path.exists(p) else None


def medians(name):
    h = load(name)
    if not h:
        return {}
    return {r["command"]: r["median"] for r in h["results"]}


def chains():
    names = sorted({f[: -len(".hot.json")] for f in os.listdir(res) if f.endswith(".hot.json")},
                   key=lambda n: (n.startswith("huge"), float(n[5:]) if n.startswith("huge") else 0, n))
    return names


def delta_bytes(name):
    scan = load(f"{name}.scan.json")
    return scan["chain"][-1]["allocated_bytes"]


def classes_agree(name):
    scan = load(f"{name}.scan.json")
    top = scan["chain"][-1]
    if top["format"] in ("hostedSparse", "streamOptimized"):
        ours = {k: v * 4096 for k, v in top["blocks_4k"].items()}
    else:
        ours = top["classes"]
    words = open(os.path.join(res, f"{name}.baseline.txt")).read().split()
    theirs = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    return ours == theirs


def ok(cond):
    return "met" if cond else "**missed**"


def fmt_t(s):
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


print("### Hot cache (medians)\n")
print("| chain | delta allocated | scan | scan --no-mmap | scan --no-cache | baseline (best) | "
      "scan / baseline (alternated) | scan GB/s | qemu compare / scan | qemu convert / scan | "
      "qemu map layer / our map | libvmdk / scan | dissect / scan | classes = baseline |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
targets = []
for c in chains():
    m = medians(f"{c}.hot.json")
    py = medians(f"{c}.py.json")
    d = delta_bytes(c)
    scan = min(m["scan"], m["scan_pread"])
    base = min(m["baseline_mmap"], m["baseline_pread"])
    # The ratio from the alternated runs when there are some (hyperfine's otherwise).
    alt = medians(f"{c}.alt.json") or m
    r = min(alt["scan"], alt["scan_pread"]) / min(alt["baseline_mmap"], alt["baseline_pread"])
    cmp_r = m["qemu_compare"] / scan if "qemu_compare" in m else None
    conv_r = m["qemu_convert"] / scan if "qemu_convert" in m else None
    map_r = m["qemu_map_layer"] / m["map"]
    lib = py.get("py_libvmdk")
    dis = py.get("py_dissect")
    agree = classes_agree(c)
    nc = m.get("scan_nocache")
    print(f"| {c} | {d / 2**30:.2f} GiB | {fmt_t(m['scan'])} | {fmt_t(m['scan_pread'])} | "
          f"{fmt_t(nc) if nc else '-'} | {fmt_t(base)} | {r:.2f}x | {d / scan / 1e9:.2f} | "
          f"{f'{cmp_r:.1f}x' if cmp_r else '-'} | {f'{conv_r:.1f}x' if conv_r else '-'} | "
          f"{map_r:.1f}x | {f'{lib / scan:.1f}x' if lib else '-'} | "
          f"{f'{dis / scan:.1f}x' if dis else '-'} | {'yes' if agree else '**no**'} |")
    if c == "huge-0.1":
        targets.append((f"{c}: scan within 2x of the baseline", r <= 2, f"{r:.2f}x"))
    if not c.startswith("huge"):
        targets.append((f"{c}: scan within 1.25x of the baseline", r <= 1.25, f"{r:.2f}x"))
        if cmp_r:
            targets.append((f"{c}: scan 20x faster than qemu-img compare", cmp_r >= 20, f"{cmp_r:.1f}x"))
        targets.append((f"{c}: map 2x faster than qemu-img map of the layer", map_r >= 2, f"{map_r:.1f}x"))
        for n, t in (("libvmdk", lib), ("dissect", dis)):
            if t:
                targets.append((f"{c}: scan 8x faster than {n}", t / scan >= 8, f"{t / scan:.1f}x"))
    targets.append((f"{c}: classes equal the baseline's", agree, "yes" if agree else "no"))

print("\n### Cold cache (files evicted before each run; medians)\n")
print("| chain | scan | scan --no-mmap | scan GB/s (best) | baseline mmap (page faults) | "
      "baseline pread | best scan / baseline pread | best scan vs page-faulting baseline | "
      "`cat` of the delta file (disk GB/s) |")
print("|---|---|---|---|---|---|---|---|---|")
for c in chains():
    m = medians(f"{c}.cold.json")
    if not m:
        continue
    d = delta_bytes(c)
    best = min(m["scan"], m["scan_pread"])
    gbs = d / best / 1e9
    ratio = m["baseline_mmap"] / best
    size = load(f"{c}.scan.json")["chain"][-1]["file_size"]
    disk = f"{fmt_t(m['read_delta'])} ({size / m['read_delta'] / 1e9:.2f})" if "read_delta" in m else "-"
    exact = best / m["baseline_pread"]
    print(f"| {c} | {fmt_t(m['scan'])} | {fmt_t(m['scan_pread'])} | {gbs:.2f} | "
          f"{fmt_t(m['baseline_mmap'])} | {fmt_t(m['baseline_pread'])} | {exact:.2f}x | "
          f"{ratio:.1f}x | {disk} |")
    if not c.startswith("huge"):
        targets.append((f"{c}: cold scan within 1.25x of the baseline's positioned reads",
                        exact <= 1.25, f"{exact:.2f}x"))
        targets.append((f"{c}: cold scan reads 1.5 GB/s of delta bytes", gbs >= 1.5, f"{gbs:.2f} GB/s"))
        targets.append((f"{c}: cold scan 3x the page-faulting baseline", ratio >= 3, f"{ratio:.1f}x"))

print("\n### Peak private memory (RssAnon, MiB)\n")
print("| chain | scan | scan --no-mmap | map |")
print("|---|---|---|---|")
for c in chains():
    mem = load(f"{c}.mem.json")
    if not mem:
        continue
    print(f"| {c} | {mem['scan'] / 1024:.1f} | {mem['scan_pread'] / 1024:.1f} | {mem['map'] / 1024:.1f} |")
    worst = max(mem.values()) / 1024
    targets.append((f"{c}: private memory at most 128 MiB", worst <= 128, f"{worst:.1f} MiB"))

ladder = [c for c in chains() if c.startswith("huge")]
if ladder:
    print("\n### 2 TiB-virtual deltas: time against allocated bytes (hot)\n")
    print("| delta | allocated | scan | scan per GiB allocated | map |")
    print("|---|---|---|---|---|")
    for c in ladder:
        m = medians(f"{c}.hot.json")
        d = delta_bytes(c)
        scan = min(m["scan"], m["scan_pread"])
        print(f"| {c} | {d / 2**30:.2f} GiB | {fmt_t(scan)} | {fmt_t(scan / (d / 2**30))} | {fmt_t(m['map'])} |")

print("\n### Targets\n")
print("| target | value | |")
print("|---|---|---|")
for name, cond, val in targets:
    print(f"| {name} | {val} | {ok(cond)} |")
