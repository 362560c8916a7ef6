#!/usr/bin/env bash
# Builds a small datastore tree for `scan DIR` and `lun DIR` into OUTDIR: two LUNs with View-
# style linked clones in mixed formats, one broken chain and one stray extent.
#
#   testdata/make-datastore.sh OUTDIR
#
#   OUTDIR/lun1/replica/base.vmdk         VMFS flat base (replica), 32 MiB
#   OUTDIR/lun1/clone01/clone01.vmdk      COWD delta on the replica: 3 MiB of writes
#   OUTDIR/lun1/clone02/clone02.vmdk      COWD delta: 20 MiB of writes (two 16 MiB increments)
#   OUTDIR/lun1/clone03/clone03-000001.vmdk  COWD snapshot over a COWD delta (3 layers)
#   OUTDIR/lun1/broken/broken.vmdk        COWD delta whose parent hint names a missing file
#   OUTDIR/lun1/stray/lost-flat.vmdk      extent data no descriptor names
#   OUTDIR/lun2/base/base.vmdk            VMFS flat base, 32 MiB
#   OUTDIR/lun2/se1/se1.vmdk, se2/se2.vmdk  SESparse deltas (VMFS6)
#   OUTDIR/lun2/hosted/delta.vmdk         qemu-made monolithicSparse delta on a hosted base
#
# Layers come from gen_esx.py (proved against qemu in tests/it/esx.rs) and qemu-img.
set -euo pipefail

out=${1:?usage: make-datastore.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
gen() { python3 "$here/gen_esx.py" "$@"; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/lun1" "$out/lun2"

l=$out/lun1
mkdir -p "$l/replica" "$l/clone01" "$l/clone02" "$l/clone03" "$l/broken" "$l/stray"
cd "$l/replica" && gen flat base.vmdk 32M write:0:4M:11 write:8M:1M:12 write:20M:64k:13
cd "$l/clone01" && gen cowd clone01.vmdk --parent ../replica/base.vmdk \
    write:12M:2M:21 write:0:1M:22 zero:30M:4k
cd "$l/clone02" && gen cowd clone02.vmdk --parent ../replica/base.vmdk \
    write:4M:20M:31
cd "$l/clone03" && gen cowd clone03.vmdk --parent ../replica/base.vmdk write:16M:1M:41 \
    && gen cowd clone03-000001.vmdk --parent clone03.vmdk write:16M:4k:42 write:28M:512k:43
cd "$l/broken" && gen cowd broken.vmdk --parent ../replica/base.vmdk write:0:64k:51
sed -i 's#^parentFileNameHint=.*#parentFileNameHint="../replica/gone.vmdk"#' "$l/broken/broken.vmdk"
head -c 1048576 /dev/zero >"$l/stray/lost-flat.vmdk"

l=$out/lun2
mkdir -p "$l/base" "$l/se1" "$l/se2" "$l/hosted"
cd "$l/base" && gen flat base.vmdk 32M write:0:2M:61 write:16M:4M:62
cd "$l/se1" && gen sesparse se1.vmdk --parent ../base/base.vmdk write:20M:3M:71 write:0:4k:61
cd "$l/se2" && gen sesparse se2.vmdk --parent ../base/base.vmdk write:1M:512k:72 zero:16M:8k
cd "$l/hosted"
qemu-img create -q -f vmdk hbase.vmdk 16M
qemu-io -f vmdk -c 'write -P 0x81 0 1M' hbase.vmdk >/dev/null
qemu-img create -q -f vmdk -b hbase.vmdk -F vmdk delta.vmdk
qemu-io -f vmdk -c 'write -P 0x82 4M 2M' delta.vmdk >/dev/null

# The generator's proofs are not part of a datastore.
find "$out" \( -name '*.expected.raw' -o -name '*.layout.json' \) -delete
