//! `blame` on the committed NTFS chains of `testdata/make-ntfs.sh` (gzip-compressed, so CI
//! needs no FUSE). The oracle is `testdata/ntfs/oracle.json`, what the generator wrote; totals
//! are checked against `qemu-img map` of the delta alone. Also: disks without NTFS and broken
//! partition tables or volumes give a clear error, never a panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use crate::util::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Counts {
    fresh: u64,
    overwritten: u64,
    identical: u64,
    zeroed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Split {
    live_parent_data: u64,
    parent_free_space: u64,
    unknown: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Share {
    kind: String,
    path: String,
    bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    kind: String,
    path: String,
    bytes: u64,
    classes: Counts,
    overwritten_split: Split,
    overwrote: Vec<Share>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Volume {
    partition: u32,
    partition_kind: String,
    start: u64,
    bytes: u64,
    file_system: String,
    cluster_bytes: Option<u64>,
    unreadable_records: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Report {
    deltascope_version: String,
    layer: String,
    disk_bytes: u64,
    allocated_bytes: u64,
    classes: Counts,
    group_by: String,
    volumes: Vec<Volume>,
    parent_note: Option<String>,
    groups: Vec<Group>,
}

fn oracle() -> Value {
    let text = std::fs::read_to_string(root().join("testdata/ntfs/oracle.json")).expect("oracle");
    serde_json::from_str(&text).expect("oracle JSON")
}

fn sizes(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .expect("object")
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().expect("size")))
        .collect()
}

fn blame(delta: &Path, extra: &[&str]) -> Report {
    let mut args = vec!["blame".to_string(), "--json".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(delta.to_string_lossy().into_owned());
    serde_json::from_str(&ok(&args)).expect("blame JSON")
}

fn group<'a>(r: &'a Report, kind: &str, path: &str) -> &'a Group {
    r.groups
        .iter()
        .find(|g| g.kind == kind && g.path == path)
        .unwrap_or_else(|| panic!("no {kind} group {path:?} in {:#?}", r.groups))
}

/// Bytes `qemu-img map` says the layer alone maps (data and zero entries).
fn qemu_allocated(delta: &Path) -> u64 {
    qemu_map_layer(delta)
        .iter()
        .filter(|e| e["present"] == true)
        .map(|e| e["length"].as_u64().expect("length"))
        .sum()
}

#[test]
fn blame_attributes_each_written_file_exactly() {
    let dir = tempdir();
    let delta = unpack_ntfs("blame", dir.path());
    let o = oracle();
    let r = blame(&delta, &[]);
    assert_eq!(r.volumes.len(), 1);
    assert_eq!(
        r.volumes[0].start,
        o["partition"]["start_bytes"].as_u64().unwrap()
    );
    assert_eq!(r.volumes[0].file_system, "ntfs");
    assert_eq!(r.volumes[0].unreadable_records, Some(0));
    for (path, size) in sizes(&o["blame"]["new_files"]) {
        let g = group(&r, "file", &path);
        assert_eq!(g.bytes, size, "{path}");
        assert_eq!(
            g.classes.fresh, size,
            "{path}: a new file is growth into zero space"
        );
    }
    for (path, size) in sizes(&o["blame"]["rewritten_files"]) {
        let g = group(&r, "file", &path);
        assert_eq!(g.classes.overwritten, size, "{path}");
        assert_eq!(g.classes.fresh, 0, "{path}");
        assert_eq!(g.overwritten_split.live_parent_data, size, "{path}");
        assert_eq!(
            g.overwritten_split.parent_free_space + g.overwritten_split.unknown,
            0
        );
        // The same file owned those clusters in the parent.
        assert_eq!(g.overwrote[0].kind, "file");
        assert_eq!(g.overwrote[0].path, path);
        assert_eq!(g.overwrote[0].bytes, size);
    }
    // The deleted file: its clusters are free now, and no group names it.
    let deleted = sizes(&o["blame"]["deleted_files"]);
    let free = group(&r, "free_now", "");
    assert_eq!(free.classes.fresh, deleted.values().sum::<u64>());
    for path in deleted.keys() {
        assert!(
            r.groups.iter().all(|g| &g.path != path),
            "{path} still named"
        );
    }
    // Unchanged base files appear only as identical bytes that share a grain with changes.
    for path in sizes(&o["blame"]["base_files"]).keys() {
        if let Some(g) = r.groups.iter().find(|g| &g.path == path)
            && o["blame"]["rewritten_files"].get(path).is_none()
        {
            assert_eq!(g.bytes, g.classes.identical, "{path}");
        }
    }
    assert!(
        r.groups
            .iter()
            .all(|g| g.kind != "unpartitioned" || g.bytes < 1 << 20)
    );
}

#[test]
fn groups_sum_to_the_layers_allocated_bytes() {
    let dir = tempdir();
    let delta = unpack_ntfs("blame", dir.path());
    for by in ["file", "dir", "ext"] {
        let r = blame(&delta, &["--by", by]);
        assert_eq!(r.group_by, by);
        let sum: u64 = r.groups.iter().map(|g| g.bytes).sum();
        assert_eq!(sum, r.allocated_bytes, "--by {by}");
        for g in &r.groups {
            let c = &g.classes;
            assert_eq!(c.fresh + c.overwritten + c.identical + c.zeroed, g.bytes);
            let s = &g.overwritten_split;
            assert_eq!(
                s.live_parent_data + s.parent_free_space + s.unknown,
                c.overwritten
            );
            assert_eq!(
                g.overwrote.iter().map(|x| x.bytes).sum::<u64>(),
                c.overwritten
            );
        }
        let c = &r.classes;
        assert_eq!(c.fresh + c.overwritten + c.identical + c.zeroed, sum);
    }
    let r = blame(&delta, &[]);
    assert_eq!(r.allocated_bytes, qemu_allocated(&delta));
    // Block classes agree with scan's 4 KiB blocks.
    let scan = json(&["scan".as_ref(), "--json".as_ref(), delta.as_os_str()]);
    let top = scan["chain"]
        .as_array()
        .and_then(|l| l.last())
        .expect("scan layers");
    assert_eq!(top["allocated_bytes"].as_u64(), Some(r.allocated_bytes));
    for (k, v) in [
        ("fresh", r.classes.fresh),
        ("overwritten", r.classes.overwritten),
        ("identical", r.classes.identical),
        ("zeroed", r.classes.zeroed),
    ] {
        assert_eq!(
            top["blocks_4k"][k].as_u64().map(|n| n * 4096),
            Some(v),
            "{k}"
        );
    }
    let by_dir = blame(&delta, &["--by", "dir"]);
    let new = group(&by_dir, "file", "/new");
    let o = oracle();
    assert_eq!(
        new.classes.fresh,
        sizes(&o["blame"]["new_files"]).values().sum::<u64>()
    );
    let by_ext = blame(&delta, &["--by", "ext"]);
    assert!(by_ext.groups.iter().any(|g| g.path == "*.bin"));
}

#[test]
fn create_and_delete_churn_ends_free_now() {
    let dir = tempdir();
    let delta = unpack_ntfs("churn", dir.path());
    let o = oracle();
    let r = blame(&delta, &[]);
    let deleted = sizes(&o["churn"]["deleted_files"]);
    let free = group(&r, "free_now", "");
    // ntfs-3g put every round in the same clusters: the delta holds one file's worth.
    assert_eq!(free.classes.fresh, deleted.values().sum::<u64>());
    assert!(
        r.groups
            .iter()
            .all(|g| g.kind != "file" || g.bytes < 64 * 1024)
    );
}

#[test]
fn csv_and_text_list_the_groups() {
    let dir = tempdir();
    let delta = unpack_ntfs("blame", dir.path());
    let r = blame(&delta, &[]);
    let csv = ok(["blame".as_ref(), "--csv".as_ref(), delta.as_os_str()]);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("kind,path,bytes,fresh,overwritten")
    );
    assert_eq!(lines.count(), r.groups.len());
    assert!(csv.contains("file,/new/three.bin,3145728,3145728,0,0,0,0,0"));
    let text = ok([
        "blame".as_ref(),
        "--top".as_ref(),
        "2".as_ref(),
        delta.as_os_str(),
    ]);
    assert!(text.contains("/new/three.bin"), "{text}");
    assert!(text.contains("more groups"), "{text}");
}

/// A raw disk of `bytes` with `head` at offset 0, as a monolithicSparse VMDK in `dir`.
fn disk(dir: &Path, name: &str, bytes: u64, head: &[(u64, &[u8])]) -> PathBuf {
    let raw = dir.join(format!("{name}.raw"));
    let mut data = vec![0u8; bytes as usize];
    for (at, b) in head {
        data[*at as usize..*at as usize + b.len()].copy_from_slice(b);
    }
    std::fs::write(&raw, data).expect("write raw");
    let out = dir.join(format!("{name}.vmdk"));
    sh(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vmdk"])
        .arg(&raw)
        .arg(&out));
    out
}

fn mbr(entries: &[(u8, u32, u32)]) -> Vec<u8> {
    let mut m = vec![0u8; 512];
    for (i, (ty, start, count)) in entries.iter().enumerate() {
        let e = 446 + i * 16;
        m[e + 4] = *ty;
        m[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
        m[e + 12..e + 16].copy_from_slice(&count.to_le_bytes());
    }
    m[510] = 0x55;
    m[511] = 0xAA;
    m
}

#[test]
fn disks_without_ntfs_get_a_clear_message() {
    require("qemu-img");
    let dir = tempdir();
    let blank = disk(
        dir.path(),
        "blank",
        4 << 20,
        &[(0, b"not a partition table")],
    );
    let e = fails(1, ["blame".as_ref(), blank.as_os_str()]);
    assert!(e.contains("no NTFS") || e.contains("has none"), "{e}");
    assert!(e.contains("no partition table"), "{e}");
    // An MBR with one Linux partition holding an ext-like signature, no NTFS.
    let linux = disk(
        dir.path(),
        "linux",
        4 << 20,
        &[(0, &mbr(&[(0x83, 2048, 4096)])), (1 << 20, b"\x53\xef")],
    );
    let e = fails(1, ["blame".as_ref(), linux.as_os_str()]);
    assert!(e.contains("partition 1 (mbr:0x83)"), "{e}");
    assert!(e.contains("scan"), "the message points to scan: {e}");
}

#[test]
fn broken_partition_tables_name_the_structure_and_offset() {
    require("qemu-img");
    let dir = tempdir();
    // Entry 2 runs past the 4 MiB disk.
    let past = disk(
        dir.path(),
        "past",
        4 << 20,
        &[(0, &mbr(&[(0x07, 2048, 100), (0x07, 4096, 1 << 20)]))],
    );
    let e = fails(1, ["blame".as_ref(), past.as_os_str()]);
    assert!(e.contains("MBR partition entry 2 at byte 462"), "{e}");
    // Overlapping partitions.
    let overlap = disk(
        dir.path(),
        "overlap",
        4 << 20,
        &[(0, &mbr(&[(0x07, 2048, 2048), (0x07, 3000, 100)]))],
    );
    let e = fails(1, ["blame".as_ref(), overlap.as_os_str()]);
    assert!(e.contains("overlap"), "{e}");
    // A protective MBR without a GPT header.
    let gpt = disk(dir.path(), "gpt", 4 << 20, &[(0, &mbr(&[(0xEE, 1, 8191)]))]);
    let e = fails(1, ["blame".as_ref(), gpt.as_os_str()]);
    assert!(e.contains("GPT header at byte 512"), "{e}");
    // A GPT whose entry array lies past the disk.
    let mut h = vec![0u8; 92];
    h[0..8].copy_from_slice(b"EFI PART");
    h[72..80].copy_from_slice(&(1u64 << 40).to_le_bytes());
    h[80..84].copy_from_slice(&128u32.to_le_bytes());
    h[84..88].copy_from_slice(&128u32.to_le_bytes());
    let far = disk(
        dir.path(),
        "far",
        4 << 20,
        &[(0, &mbr(&[(0xEE, 1, 8191)])), (512, &h)],
    );
    let e = fails(1, ["blame".as_ref(), far.as_os_str()]);
    assert!(e.contains("GPT header at byte 584"), "{e}");
    // A loop in the extended boot records: the second links to itself.
    let first = mbr(&[(0x07, 1, 10), (0x05, 100, 20)]);
    let second = mbr(&[(0x07, 1, 10), (0x05, 100, 20)]);
    let ext = disk(
        dir.path(),
        "ext",
        4 << 20,
        &[
            (0, &mbr(&[(0x05, 2048, 4096)])),
            (2048 * 512, &first),
            (2148 * 512, &second),
        ],
    );
    let e = fails(1, ["blame".as_ref(), ext.as_os_str()]);
    assert!(e.contains("more than 128 logical partitions"), "{e}");
    // A logical partition past its extended partition.
    let wide = mbr(&[(0x07, 1, 8000), (0, 0, 0)]);
    let ext = disk(
        dir.path(),
        "wide",
        8 << 20,
        &[(0, &mbr(&[(0x05, 2048, 4096)])), (2048 * 512, &wide)],
    );
    let e = fails(1, ["blame".as_ref(), ext.as_os_str()]);
    assert!(e.contains("extended boot record 1 at byte 1049022"), "{e}");
}

#[test]
fn a_damaged_ntfs_volume_fails_cleanly() {
    require("qemu-img");
    let dir = tempdir();
    let delta = unpack_ntfs("blame", dir.path());
    let raw = convert_raw(&delta, dir.path());
    let mut data = std::fs::read(&raw).expect("read raw");
    let part = 1usize << 20;
    // The boot sector names where $MFT is: smash the MFT's first records with a pattern
    // (keeps "FILE" signatures off, so record 0 cannot be read).
    let cluster = 4096usize;
    let mft_lcn = u64::from_le_bytes(data[part + 48..part + 56].try_into().unwrap()) as usize;
    let at = part + mft_lcn * cluster;
    for (i, b) in data[at..at + 16 * 1024].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    let broken = dir.path().join("broken.raw");
    std::fs::write(&broken, &data).expect("write");
    let vmdk = dir.path().join("broken.vmdk");
    sh(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vmdk"])
        .arg(&broken)
        .arg(&vmdk));
    let e = fails(1, ["blame".as_ref(), vmdk.as_os_str()]);
    assert!(
        e.contains("NTFS volume in partition 1 (byte 1048576)"),
        "{e}"
    );
    // A boot sector with a zero cluster size.
    let mut data2 = std::fs::read(&raw).expect("read raw");
    data2[part + 13] = 0;
    std::fs::write(&broken, &data2).expect("write");
    std::fs::remove_file(&vmdk).expect("rm");
    sh(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vmdk"])
        .arg(&broken)
        .arg(&vmdk));
    let e = fails(1, ["blame".as_ref(), vmdk.as_os_str()]);
    assert!(e.contains("boot sector"), "{e}");
    // A partition entry shorter than the volume its boot sector describes.
    let mut data3 = std::fs::read(&raw).expect("read raw");
    data3[446 + 12..446 + 16].copy_from_slice(&20_000u32.to_le_bytes());
    std::fs::write(&broken, &data3).expect("write");
    std::fs::remove_file(&vmdk).expect("rm");
    sh(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vmdk"])
        .arg(&broken)
        .arg(&vmdk));
    let e = fails(1, ["blame".as_ref(), vmdk.as_os_str()]);
    assert!(e.contains("larger than its partition"), "{e}");
}

#[test]
fn writes_into_dirty_parent_free_space_are_told_apart() {
    let dir = tempdir();
    let delta = unpack_ntfs("dirty", dir.path());
    let o = oracle();
    let r = blame(&delta, &[]);
    for (path, size) in sizes(&o["dirty"]["new_files"]) {
        let g = group(&r, "file", &path);
        // The base's deleted file left non-zero free clusters; the new file landed on them.
        assert_eq!(g.classes.overwritten, size, "{path}");
        assert_eq!(g.overwritten_split.parent_free_space, size, "{path}");
        assert_eq!(g.overwritten_split.live_parent_data, 0, "{path}");
        assert_eq!(g.overwrote.len(), 1);
        assert_eq!(g.overwrote[0].kind, "free_now", "free in the parent");
    }
    let text = ok(["blame".as_ref(), delta.as_os_str()]);
    assert!(
        text.contains("2.0 MiB into parent free space that was not zero"),
        "{text}"
    );
}

#[test]
fn scan_splits_overwritten_bytes_when_the_parent_holds_ntfs() {
    let dir = tempdir();
    let delta = unpack_ntfs("dirty", dir.path());
    let o = oracle();
    let reuse: u64 = sizes(&o["dirty"]["new_files"]).values().sum();
    let scan = json(&["scan".as_ref(), "--json".as_ref(), delta.as_os_str()]);
    let split = &scan["ntfs_overwritten"];
    assert_eq!(split["parent_free_space"].as_u64(), Some(reuse), "{split}");
    // The same numbers as blame's groups.
    let r = blame(&delta, &[]);
    let live: u64 = r
        .groups
        .iter()
        .map(|g| g.overwritten_split.live_parent_data)
        .sum();
    assert_eq!(split["live_parent_data"].as_u64(), Some(live));
    let text = ok(["scan".as_ref(), delta.as_os_str()]);
    assert!(
        text.contains("2.0 MiB went into free space that was not zero"),
        "{text}"
    );
    // A chain without NTFS says null.
    let base = dir.path().join("base.vmdk");
    let one = json(&["scan".as_ref(), "--json".as_ref(), base.as_os_str()]);
    assert!(one["ntfs_overwritten"].is_null());
}

/// The `blame` chain's disks (base and top view) as raw files, with `table` written over
/// the first sectors (`(offset, bytes)`), converted back into a base and a delta.
fn retabled(dir: &Path, table: &[(u64, Vec<u8>)]) -> PathBuf {
    let delta = unpack_ntfs("blame", dir);
    let sub = dir.join("retabled");
    std::fs::create_dir_all(&sub).expect("mkdir");
    // The base alone, then the composed top view; both get the same new table.
    let base_raw = convert_raw(&dir.join("base.vmdk"), &sub);
    let top_raw = sub.join("top.raw");
    sh(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&delta)
        .arg(&top_raw));
    for raw in [&base_raw, &top_raw] {
        let mut data = std::fs::read(raw).expect("read");
        data[..512].fill(0);
        for (at, b) in table {
            data[*at as usize..*at as usize + b.len()].copy_from_slice(b);
        }
        std::fs::write(raw, data).expect("write");
    }
    let base = sub.join("base.vmdk");
    sh(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vmdk"])
        .arg(&base_raw)
        .arg(&base));
    // The delta: a qcow2 overlay rebased onto the base holds the differing clusters only.
    let ov = sub.join("top.qcow2");
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&top_raw)
        .arg(&ov));
    sh(Command::new("qemu-img")
        .args(["rebase", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&base_raw)
        .arg(&ov));
    let out = sub.join("delta.vmdk");
    sh(Command::new("qemu-img")
        .current_dir(&sub)
        .args([
            "convert",
            "-q",
            "-O",
            "vmdk",
            "-B",
            "base.vmdk",
            "-F",
            "vmdk",
        ])
        .arg(&ov)
        .arg(&out));
    out
}

fn same_files(r: &Report) {
    let o = oracle();
    for (path, size) in sizes(&o["blame"]["new_files"]) {
        assert_eq!(group(r, "file", &path).classes.fresh, size, "{path}");
    }
    let deleted: u64 = sizes(&o["blame"]["deleted_files"]).values().sum();
    assert_eq!(group(r, "free_now", "").classes.fresh, deleted);
    assert_eq!(
        r.groups.iter().map(|g| g.bytes).sum::<u64>(),
        r.allocated_bytes
    );
}

#[test]
fn ntfs_is_found_in_gpt_and_logical_partitions() {
    require("qemu-img");
    let o = oracle();
    let start = o["partition"]["start_bytes"].as_u64().unwrap() / 512;
    let count = o["partition"]["bytes"].as_u64().unwrap() / 512;

    // GPT: protective MBR, header at LBA 1, entry array at LBA 2 (inside the 1 MiB gap).
    let dir = tempdir();
    let mut h = vec![0u8; 92];
    h[0..8].copy_from_slice(b"EFI PART");
    h[72..80].copy_from_slice(&2u64.to_le_bytes());
    h[80..84].copy_from_slice(&128u32.to_le_bytes());
    h[84..88].copy_from_slice(&128u32.to_le_bytes());
    let mut e = vec![0u8; 128];
    // Microsoft basic data.
    e[0..16].copy_from_slice(&[
        0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99,
        0xC7,
    ]);
    e[16] = 1;
    e[32..40].copy_from_slice(&start.to_le_bytes());
    e[40..48].copy_from_slice(&(start + count - 1).to_le_bytes());
    let delta = retabled(
        dir.path(),
        &[(0, mbr(&[(0xEE, 1, 0xFFFF_FFFF)])), (512, h), (1024, e)],
    );
    let r = blame(&delta, &[]);
    assert_eq!(r.volumes.len(), 1);
    assert_eq!(
        r.volumes[0].partition_kind,
        "gpt:EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
    );
    same_files(&r);

    // MBR extended partition from the sector before the volume; its one logical partition
    // starts one sector after its EBR.
    let dir = tempdir();
    let ext_first = start - 1;
    let ebr = mbr(&[(0x07, 1, count as u32)]);
    let delta = retabled(
        dir.path(),
        &[
            (0, mbr(&[(0x0F, ext_first as u32, count as u32 + 1)])),
            (ext_first * 512, ebr),
        ],
    );
    let r = blame(&delta, &[]);
    assert_eq!(r.volumes.len(), 1);
    assert_eq!(r.volumes[0].partition, 5);
    same_files(&r);
}

#[test]
fn blame_reads_through_any_format_of_the_chain() {
    require("qemu-img");
    let dir = tempdir();
    let delta = unpack_ntfs("blame", dir.path());
    let before = blame(&delta, &[]);
    // Replace the base by a streamOptimized copy (compressed grains): the delta reads the
    // same guest disk through it (a CID mismatch warning, not an error).
    let base = dir.path().join("base.vmdk");
    let stream = dir.path().join("stream.vmdk");
    sh(Command::new("qemu-img")
        .args([
            "convert",
            "-q",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
        ])
        .arg(&base)
        .arg(&stream));
    std::fs::rename(&stream, &base).expect("rename");
    let after = blame(&delta, &[]);
    same_files(&after);
    let key = |r: &Report| {
        r.groups
            .iter()
            .map(|g| (g.kind.clone(), g.path.clone(), g.bytes, g.classes.fresh))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&before), key(&after));
}
