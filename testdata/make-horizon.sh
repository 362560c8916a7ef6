#!/usr/bin/env bash
# Builds a copy of two ESXi datastores as a Horizon pod leaves them, into OUTDIR, with the
# traps a real copy has: clones whose parent hints are absolute /vmfs/volumes/UUID/... paths,
# persistent disks on the other datastore, a snapshot chain, a delta left behind by a failed
# consolidation, a renamed copy of a delta, a decoy descriptor, an empty and an unreadable
# folder.
#
#   testdata/make-horizon.sh OUTDIR
#
# OUTDIR/ds1 is /vmfs/volumes/5f3a1c2e-8a7b9c0d-1e2f-001122334455 (the clones' datastore):
#   replica-0a1b/replica-0a1b.vmdk   VMFS flat base, 32 MiB (+ .vmx: the replica VM)
#   vdi-01/  linked clone: vdi-01.vmdk COWD delta on the replica (absolute hint); disposable
#            and internal disks (flat); persistent disk on ds2 (absolute name in the .vmx);
#            an empty .vmsd, as VMware keeps one beside every VM
#   vdi-02/  linked clone: SESparse delta (VMFS6) on the replica (absolute hint); disposable
#            disk; persistent disk on ds2; its .vmx names an internal disk that is missing
#   vdi-03/  linked clone with two snapshots (.vmsd): vdi-03.vmdk -> -000001 -> -000002, the
#            disk its .vmx uses; -000003 on top of it is an orphan nothing names
#   ws-vm/   a Workstation VM copied here: qemu-made monolithicSparse base and delta, one
#            snapshot in its .vmsd, and ws-vm-000001-copy.vmdk, a renamed `cp` of the delta
#            (its embedded descriptor still names "ws-vm-000001.vmdk")
#   decoy/decoy.vmdk  a text descriptor naming other disks' files as FLAT extents: two that
#            hold disks of their own (vdi-01.vmdk, ws-vm-000001.vmdk) and vdi-02's SESparse data
#   empty/   an empty folder
#   locked/  a folder with a disk in it, mode 000: unreadable for anyone without
#            CAP_DAC_OVERRIDE (as root it is readable; the tests drop that capability)
# OUTDIR/ds2 is /vmfs/volumes/6a7b8c9d-01234567-89ab-001122334466 (persistent disks):
#   vdi-01/vdi-01-vdm-user-disk-D-1f2e.vmdk, vdi-02/vdi-02-vdm-user-disk-D-9c0d.vmdk (flat)
#
# Layers come from gen_esx.py (proved against qemu in tests/it/esx.rs) and qemu-img; hints
# are relative while the layers are made (gen_esx.py reads the parent through qemu) and made
# absolute at the end, as ESXi writes them for a replica in another folder.
set -euo pipefail

out=${1:?usage: make-horizon.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
gen() { python3 "$here/gen_esx.py" "$@"; }
uuid1=5f3a1c2e-8a7b9c0d-1e2f-001122334455
uuid2=6a7b8c9d-01234567-89ab-001122334466
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -d "$out/ds1/locked" ]; then chmod 700 "$out/ds1/locked"; fi
rm -rf "$out/ds1" "$out/ds2"

d1=$out/ds1
d2=$out/ds2
mkdir -p "$d1/replica-0a1b" "$d1/vdi-01" "$d1/vdi-02" "$d1/vdi-03" "$d1/ws-vm" "$d1/decoy" \
    "$d1/empty" "$d1/locked" "$d2/vdi-01" "$d2/vdi-02"

# The replica and the replica VM.
cd "$d1/replica-0a1b"
gen flat replica-0a1b.vmdk 32M write:0:4M:11 write:8M:1M:12 write:20M:64k:13
cat >replica-0a1b.vmx <<'EOF'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "14"
displayName = "replica-0a1b"
scsi0.present = "TRUE"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "replica-0a1b.vmdk"
EOF

# vdi-01: COWD OS delta, disposable and internal disks here, persistent disk on ds2.
cd "$d1/vdi-01"
gen cowd vdi-01.vmdk --parent ../replica-0a1b/replica-0a1b.vmdk write:12M:2M:21 write:0:1M:22
gen flat vdi-01-vdm-disposable-3c4d.vmdk 8M write:0:2M:31
gen flat vdi-01-vdm-internal-5e6f.vmdk 2M write:0:64k:32
cat >vdi-01.vmx <<EOF
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "14"
displayName = "vdi-01"
scsi0.present = "TRUE"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "vdi-01.vmdk"
scsi0:1.present = "TRUE"
scsi0:1.fileName = "/vmfs/volumes/$uuid2/vdi-01/vdi-01-vdm-user-disk-D-1f2e.vmdk"
scsi0:1.mode = "independent-persistent"
scsi0:2.present = "TRUE"
scsi0:2.fileName = "vdi-01-vdm-disposable-3c4d.vmdk"
scsi0:3.present = "TRUE"
scsi0:3.fileName = "vdi-01-vdm-internal-5e6f.vmdk"
ide1:0.present = "TRUE"
ide1:0.deviceType = "cdrom-image"
ide1:0.fileName = "/vmfs/volumes/$uuid1/iso/win10.iso"
EOF
: >vdi-01.vmsd
cd "$d2/vdi-01"
gen flat vdi-01-vdm-user-disk-D-1f2e.vmdk 16M write:0:1M:51

# vdi-02: SESparse OS delta, disposable disk, persistent disk on ds2, a missing internal disk.
cd "$d1/vdi-02"
gen sesparse vdi-02.vmdk --parent ../replica-0a1b/replica-0a1b.vmdk write:20M:3M:71 write:0:4k:61
gen flat vdi-02-vdm-disposable-7a8b.vmdk 8M write:1M:1M:33
cat >vdi-02.vmx <<EOF
.encoding = "UTF-8"
displayName = "vdi-02"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "vdi-02.vmdk"
scsi0:1.present = "TRUE"
scsi0:1.fileName = "vdi-02-vdm-disposable-7a8b.vmdk"
scsi0:2.present = "TRUE"
scsi0:2.fileName = "/vmfs/volumes/$uuid2/vdi-02/vdi-02-vdm-user-disk-D-9c0d.vmdk"
scsi0:2.mode = "independent-persistent"
scsi0:3.present = "TRUE"
scsi0:3.fileName = "vdi-02-vdm-internal-9e9e.vmdk"
EOF
cd "$d2/vdi-02"
gen flat vdi-02-vdm-user-disk-D-9c0d.vmdk 16M write:4M:512k:52

# vdi-03: two snapshots over the clone's delta; -000003 is left behind above the disk in use.
cd "$d1/vdi-03"
gen cowd vdi-03.vmdk --parent ../replica-0a1b/replica-0a1b.vmdk write:16M:1M:41
gen cowd vdi-03-000001.vmdk --parent vdi-03.vmdk write:16M:4k:42 write:28M:512k:43
gen cowd vdi-03-000002.vmdk --parent vdi-03-000001.vmdk write:2M:256k:44
gen cowd vdi-03-000003.vmdk --parent vdi-03-000002.vmdk write:6M:128k:45
cat >vdi-03.vmx <<'EOF'
.encoding = "UTF-8"
displayName = "vdi-03"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "vdi-03-000002.vmdk"
EOF
cat >vdi-03.vmsd <<'EOF'
.encoding = "UTF-8"
snapshot.lastUID = "2"
snapshot.current = "2"
snapshot0.uid = "1"
snapshot0.filename = "vdi-03-Snapshot1.vmsn"
snapshot0.displayName = "before |22patch Tuesday|22"
snapshot0.createTimeHigh = "416404"
snapshot0.createTimeLow = "-814770620"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "vdi-03.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot.numSnapshots = "2"
snapshot1.uid = "2"
snapshot1.filename = "vdi-03-Snapshot2.vmsn"
snapshot1.parent = "1"
snapshot1.displayName = "after patch"
snapshot1.createTimeHigh = "416410"
snapshot1.createTimeLow = "1361996416"
snapshot1.numDisks = "1"
snapshot1.disk0.fileName = "vdi-03-000001.vmdk"
snapshot1.disk0.node = "scsi0:0"
EOF

# ws-vm: hosted monolithicSparse base and delta (qemu), one snapshot, a renamed copy.
cd "$d1/ws-vm"
qemu-img create -q -f vmdk ws-vm.vmdk 16M
qemu-io -f vmdk -c 'write -P 0x81 0 1M' ws-vm.vmdk >/dev/null
qemu-img create -q -f vmdk -b ws-vm.vmdk -F vmdk ws-vm-000001.vmdk
qemu-io -f vmdk -c 'write -P 0x82 4M 2M' ws-vm-000001.vmdk >/dev/null
cp ws-vm-000001.vmdk ws-vm-000001-copy.vmdk
cat >ws-vm.vmx <<'EOF'
.encoding = "UTF-8"
displayName = "ws-vm"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "ws-vm-000001.vmdk"
EOF
cat >ws-vm.vmsd <<'EOF'
.encoding = "UTF-8"
snapshot.lastUID = "1"
snapshot.current = "1"
snapshot0.uid = "1"
snapshot0.displayName = "clean install"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "ws-vm.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot.numSnapshots = "1"
EOF

# The decoy: names two disks and one extent of another disk as its own FLAT extents.
cat >"$d1/decoy/decoy.vmdk" <<'EOF'
# Disk DescriptorFile
version=1
CID=0badc0de
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 1 FLAT "../vdi-01/vdi-01.vmdk" 0
RW 1 FLAT "../ws-vm/ws-vm-000001.vmdk" 0
RW 8 FLAT "../vdi-02/vdi-02-sesparse.vmdk" 0
EOF

# The locked folder.
cd "$d1/locked"
gen flat secret.vmdk 1M write:0:4k:99

# The generator's proofs are not part of a datastore.
find "$out" \( -name '*.expected.raw' -o -name '*.layout.json' \) -delete

# ESXi writes a replica in another folder as an absolute datastore path.
for f in "$d1/vdi-01/vdi-01.vmdk" "$d1/vdi-02/vdi-02.vmdk" "$d1/vdi-03/vdi-03.vmdk"; do
    sed -i "s#^parentFileNameHint=.*#parentFileNameHint=\"/vmfs/volumes/$uuid1/replica-0a1b/replica-0a1b.vmdk\"#" "$f"
done
chmod 000 "$d1/locked"
