#!/usr/bin/env bash
# Builds a Horizon-style pod for the datastore-scale figures of docs/PERFORMANCE.md (issue 18):
# one replica and many linked clones on it, as one datastore folder. Nothing here is committed.
#
#   benches/make-pod.sh OUTDIR
#
#   OUTDIR/pod/replica/replica.vmdk           VMFS flat base: 8 GiB virtual, 3 GiB of data in
#                                             24 regions of 128 MiB (a sparse file: the rest
#                                             are holes)
#   OUTDIR/pod/clone-NNNN/clone-NNNN.vmdk     1,000 linked clones of the replica, COWD (even
#                                             NNNN) and SESparse (odd), 4 to 64 MiB of writes
#                                             each (16 sizes in 4 MiB steps, in turn): half
#                                             fresh (into the replica's holes), half over its
#                                             data
#
# Disk: the replica's 3 GiB plus about 34 GiB of clones (their data is real bytes); a few
# minutes, mostly copying. CLONES=N builds N clones instead of 1,000, BASE_DATA_MIB=M puts M MiB
# of data in the replica instead of 3,072 (a quick check of the script on a small disk).
# Clones are made by qemu-io writes into qemu-made hosted deltas (one per size, on the
# replica) that benches/esx_from_hosted.py turns into COWD and SESparse layers; nothing here
# uses deltascope.
#
# The scans this pod is for (docs/PERFORMANCE.md):
#   deltascope scan OUTDIR/pod --no-cache --quiet > /dev/null     first scan
#   deltascope scan OUTDIR/pod --quiet > /dev/null                repeated (layer cache)
#   for d in OUTDIR/pod/clone-*/clone-*.vmdk; do deltascope scan "$d" --no-cache ...; done
set -euo pipefail

out=${1:?usage: make-pod.sh OUTDIR}
clones=${CLONES:-1000}
data_mib=${BASE_DATA_MIB:-3072}
here=$(cd "$(dirname "$0")" && pwd)
for t in qemu-img qemu-io python3; do
    command -v "$t" >/dev/null || { echo "make-pod.sh: $t is missing (apt-get install qemu-utils python3)" >&2; exit 1; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
pod=$out/pod
work=$out/pod-templates
rm -rf "$pod" "$work"
mkdir -p "$pod/replica" "$work"
M=$((1 << 20))

echo "replica: 8 GiB virtual, $data_mib MiB of data" >&2
flat=$pod/replica/replica-flat.vmdk
truncate -s 8G "$flat"
regions=24
region_mib=$((data_mib / regions))
for i in $(seq 0 $((regions - 1))); do
    # Region i at i x 320 MiB, filled with byte 0x10 + i.
    head -c $((region_mib * M)) /dev/zero | tr '\0' "\\$(printf '%03o' $((0x10 + i)))" |
        dd of="$flat" bs=1M seek=$((i * 320)) conv=notrunc,sparse status=none
done
python3 "$here/esx_from_hosted.py" flat "$pod/replica/replica.vmdk" 8G

echo "templates: 16 hosted deltas of 4 to 64 MiB" >&2
for s in $(seq 1 16); do
    t=$work/t$s.vmdk
    qemu-img create -q -f vmdk -b "$pod/replica/replica.vmdk" -F vmdk "$t"
    mib=$((s * 4))
    {
        for k in $(seq 0 $((mib - 1))); do
            region=$(((s * 7 + k) % regions))
            if [ $((k % 2)) -eq 0 ]; then
                # fresh: 1 MiB into the hole after region `region`
                off=$((region * 320 + region_mib + 8 + k))
            else
                # overwrite: 1 MiB over the region's data
                off=$((region * 320 + (k % region_mib)))
            fi
            printf 'write -P 0x%02x %d %d\n' $((0x80 + s)) $((off * M)) $M
        done
    } | qemu-io -f vmdk "$t" >/dev/null
done

echo "clones: $clones (COWD and SESparse in turn)" >&2
for n in $(seq 1 "$clones"); do
    name=$(printf 'clone-%04d' "$n")
    mkdir -p "$pod/$name"
    s=$(((n - 1) % 16 + 1))
    kind=cowd
    [ $((n % 2)) -eq 1 ] && kind=sesparse
    python3 "$here/esx_from_hosted.py" "$kind" "$pod/$name/$name.vmdk" "$work/t$s.vmdk" \
        ../replica/replica.vmdk
    if [ $((n % 100)) -eq 0 ]; then echo "  $n" >&2; fi
done
rm -rf "$work"
du -sh "$pod" >&2
echo "done: $pod" >&2
