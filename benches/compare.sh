#!/usr/bin/env bash
# Times deltascope beside qemu-img, the Python readers and the minimal baseline
# (benches/baseline.rs) on the chains of benches/make-bench-chains.sh, in one run, and writes
# the table of docs/PERFORMANCE.md (medians, ratios, throughput, peak private memory). Hot
# runs are timed with hyperfine, and again alternated (benches/alternate.sh, ALT_RUNS rounds,
# default 11) for the ratios to the baseline; cold runs are alternated, each after evicting
# the chain's files.
#
#   benches/compare.sh DATA_DIR [RESULTS_DIR]
#
# Needs hyperfine (apt-get install hyperfine) and qemu-img; the Python readers are used when
# importable (pip install libvmdk-python dissect.hypervisor). RUNS=N sets hot runs (default
# 5), PY=0 skips the Python readers, CHAINS="main cowd" picks chains, QUICK=1 skips the slow
# qemu-img runs (chain map, compare, convert), the Python readers and the cold runs. Ratios, not absolute
# times, are what carries over between machines.
set -euo pipefail

data=$(cd "${1:?usage: compare.sh DATA_DIR [RESULTS_DIR]}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
res=${2:-$root/target/bench-results}
mkdir -p "$res"
res=$(cd "$res" && pwd)
RUNS=${RUNS:-5}
PY=${PY:-1}
THREADS=${THREADS:-2}

command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install hyperfine" >&2; exit 1; }
(cd "$root" && cargo build --profile profiling --locked --quiet --bin deltascope --example baseline)
ds=$root/target/profiling/deltascope
bl=$root/target/profiling/examples/baseline
# deltascope keeps the classification of layers below the top between runs (src/cache.rs):
# hyperfine's warm-up run fills it, so `scan` is what a repeated weekly scan costs, and
# `scan_nocache` is a first scan that classifies the base too.
export DELTASCOPE_CACHE=$res/layer-cache
rm -rf "$DELTASCOPE_CACHE"

hf() { # NAME, then hyperfine arguments
    local name=$1
    shift
    hyperfine --style basic --export-json "$res/$name.json" "$@" >"$res/$name.txt" 2>&1 ||
        { cat "$res/$name.txt" >&2; exit 1; }
}

# chain NAME TOP DELTA_EXTENT PARENT_EXTENT: the whole set of runs for one chain.
chain() {
    local name=$1 top=$2 delta=$3 parent=$4
    echo "== $name" >&2
    local files
    mapfile -t files < <(cd "$(dirname "$top")" && realpath -e "$top" "$delta" "$parent" | sort -u)
    local spec
    spec=$(python3 -c 'import json,sys; print("json:"+json.dumps({"driver":"vmdk","file":{"driver":"file","filename":sys.argv[1]},"backing":None}))' "$top")
    local size
    size=$(qemu-img info --output=json "$top" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
    qemu-img map --output=json "$spec" |
        python3 -c 'import json,sys; json.dump([[e["start"],e["length"]] for e in json.load(sys.stdin) if e.get("present")], sys.stdout)' \
            >"$res/$name.runs.json"
    # Correctness first: the baseline's class bytes against deltascope's.
    "$ds" --quiet scan --json "$top" >"$res/$name.scan.json"
    "$bl" --threads "$THREADS" "$delta" "$parent" >"$res/$name.baseline.txt"
    cat "${files[@]}" >/dev/null
    local slow=()
    if [ "${QUICK:-0}" != 1 ]; then
        slow=(-n qemu_map_chain "qemu-img map --output=json $top"
            -n qemu_compare "qemu-img compare $top $top"
            -n qemu_convert "qemu-img convert -n $top --target-image-opts driver=null-co,size=$size")
    fi
    hf "$name.hot" --warmup 1 --runs "$RUNS" \
        -n scan "$ds --quiet --threads $THREADS scan --json $top" \
        -n scan_pread "$ds --quiet --threads $THREADS --no-mmap scan --json $top" \
        -n scan_nocache "$ds --quiet --threads $THREADS --no-cache scan --json $top" \
        -n map "$ds map $top" \
        -n baseline_mmap "$bl --threads $THREADS $delta $parent" \
        -n baseline_pread "$bl --pread --threads $THREADS $delta $parent" \
        -n qemu_map_layer "qemu-img map --output=json '$spec'" \
        "${slow[@]}"
    # The ratios to the baseline come from alternated runs (scan, baseline, scan, baseline,
    # ...): on a shared machine, runs of one command after another drift apart by 30 %.
    JSON="$res/$name.alt.json" "$here/alternate.sh" "${ALT_RUNS:-11}" \
        scan "$ds --quiet --threads $THREADS scan --json $top" \
        scan_pread "$ds --quiet --threads $THREADS --no-mmap scan --json $top" \
        baseline_mmap "$bl --threads $THREADS $delta $parent" \
        baseline_pread "$bl --pread --threads $THREADS $delta $parent" >"$res/$name.alt.txt"
    [ "${QUICK:-0}" = 1 ] && PY=0
    if [ "$PY" = 1 ]; then
        local py=()
        python3 -c 'import pyvmdk' 2>/dev/null &&
            python3 "$here/py_classify.py" libvmdk "$top" "$parent_desc" "$res/$name.runs.json" >/dev/null 2>&1 &&
            py+=(-n py_libvmdk "python3 $here/py_classify.py libvmdk $top $parent_desc $res/$name.runs.json")
        python3 -c 'import dissect.hypervisor' 2>/dev/null &&
            py+=(-n py_dissect "python3 $here/py_classify.py dissect $top $parent_desc $res/$name.runs.json")
        if [ ${#py[@]} -gt 0 ]; then
            hf "$name.py" --warmup 1 --runs 3 "${py[@]}"
        fi
    fi
    [ "${QUICK:-0}" = 1 ] ||
        PREPARE="python3 $here/evict.py ${files[*]}" JSON="$res/$name.cold.json" \
            "$here/alternate.sh" "$RUNS" \
            scan "$ds --quiet --threads $THREADS scan --json $top" \
            scan_pread "$ds --quiet --threads $THREADS --no-mmap scan --json $top" \
            baseline_mmap "$bl --threads $THREADS $delta $parent" \
            baseline_pread "$bl --pread --threads $THREADS $delta $parent" \
            read_delta "cat $delta" >"$res/$name.cold.txt"
    cat "${files[@]}" >/dev/null
    {
        printf '{"scan": %s, "scan_pread": %s, "map": %s}\n' \
            "$(python3 "$here/peakmem.py" "$ds" --quiet --threads "$THREADS" scan --json "$top")" \
            "$(python3 "$here/peakmem.py" "$ds" --quiet --threads "$THREADS" --no-mmap scan --json "$top")" \
            "$(python3 "$here/peakmem.py" "$ds" map "$top")"
    } >"$res/$name.mem.json"
}

for c in ${CHAINS:-main scattered cowd sesparse huge}; do
    case $c in
    main) parent_desc=$data/main/base.vmdk
        chain main "$data/main/top.vmdk" "$data/main/top.vmdk" "$data/main/base.vmdk" ;;
    scattered) parent_desc=$data/main/base.vmdk
        chain scattered "$data/scattered/top.vmdk" "$data/scattered/top.vmdk" "$data/main/base.vmdk" ;;
    cowd) parent_desc=$data/cowd/base.vmdk
        chain cowd "$data/cowd/top.vmdk" "$data/cowd/top-delta.vmdk" "$data/cowd/base-flat.vmdk" ;;
    sesparse) parent_desc=$data/cowd/base.vmdk
        chain sesparse "$data/sesparse/top.vmdk" "$data/sesparse/top-sesparse.vmdk" "$data/cowd/base-flat.vmdk" ;;
    huge) parent_desc=$data/huge/base.vmdk
        for n in 0.1 1 10; do
            [ -f "$data/huge/top-$n.vmdk" ] || continue
            PY=0 chain "huge-$n" "$data/huge/top-$n.vmdk" "$data/huge/top-$n.vmdk" "$data/huge/base.vmdk"
        done ;;
    esac
done
if [ "${REPORT:-1}" = 1 ]; then python3 "$here/report.py" "$res"; fi
