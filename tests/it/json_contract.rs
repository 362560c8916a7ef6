//! The JSON contract of `scan --json` (docs/JSON.md), read with this test's own types: a
//! renamed or retyped field breaks this test, not just the crate's serializer.

use std::ffi::OsStr;

use serde::Deserialize;

use crate::util::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Counts {
    fresh: u64,
    overwritten: u64,
    identical: u64,
    zeroed: u64,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Warning {
    kind: String,
    message: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Layer {
    path: String,
    format: String,
    create_type: String,
    virtual_size: u64,
    grain_size: u64,
    allocated_bytes: u64,
    classes: Counts,
    blocks_4k: Counts,
    warnings: Vec<Warning>,
    file_size: u64,
    stored_bytes: u64,
    zero_entry_bytes: u64,
    unmapped_bytes: u64,
    allocation_profile: Vec<Counts>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Verdict {
    text: String,
    growth_pattern: String,
    weeks_to_ceiling: Option<f64>,
    bytes_per_week: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RemedyPart {
    part: String,
    bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Remedy {
    remedy: String,
    bytes: Option<u64>,
    basis: String,
    parts: Vec<RemedyPart>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct BaseAudit {
    dirty_free_bytes: Option<u64>,
    never_used_bytes: u64,
    free_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Scan {
    deltascope_version: String,
    chain: Vec<Layer>,
    verdict: Verdict,
    remedies: Vec<Remedy>,
    base_audit: Option<BaseAudit>,
}

#[test]
fn scan_json_follows_the_documented_contract() {
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    let out = ok([OsStr::new("scan"), OsStr::new("--json"), demo.as_os_str()]);
    let scan: Scan = serde_json::from_str(&out).expect("contract types");
    assert_eq!(scan.deltascope_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(scan.chain.len(), 3);
    assert!(scan.chain[0].path.ends_with("win10-base.vmdk"));
    assert!(scan.chain[2].path.ends_with("win10-clone-000002.vmdk"));
    for l in &scan.chain {
        let c = &l.classes;
        assert_eq!(
            c.fresh + c.overwritten + c.identical + c.zeroed,
            l.allocated_bytes,
            "{}",
            l.path
        );
        assert_eq!(l.format, "hostedSparse");
        assert_eq!(l.create_type, "monolithicSparse");
        assert_eq!(l.grain_size, 65536);
        assert_eq!(l.allocation_profile.len(), 10);
        let p: u64 = l
            .allocation_profile
            .iter()
            .map(|c| c.fresh + c.overwritten + c.identical + c.zeroed)
            .sum();
        assert_eq!(
            p,
            l.allocated_bytes - l.zero_entry_bytes - l.unmapped_bytes,
            "profile covers every stored grain of {}",
            l.path
        );
        assert!(l.file_size >= l.stored_bytes);
    }
    // The verdict and the four remedies, by their documented names; the demo has no NTFS, so
    // only a refresh is judged, and the base's free space is not known.
    assert!(
        ["fresh_first", "reuse", "rewrite", "zeros", "mixed", "none"]
            .contains(&scan.verdict.growth_pattern.as_str())
    );
    assert!(!scan.verdict.text.is_empty());
    assert_eq!(
        scan.remedies
            .iter()
            .map(|r| r.remedy.as_str())
            .collect::<Vec<_>>(),
        [
            "refresh",
            "zero_free_and_shrink",
            "disposable_disk",
            "reuse_instead_of_fresh"
        ]
    );
    assert_eq!(scan.remedies[0].bytes, Some(scan.chain[2].allocated_bytes));
    assert!(scan.remedies[1..].iter().all(|r| r.bytes.is_none()));
    let audit = scan.base_audit.expect("base_audit");
    assert_eq!(audit.dirty_free_bytes, None);
    // The base is classified against an all-zero parent: nothing is overwritten or identical.
    assert_eq!(
        scan.chain[0].classes.overwritten + scan.chain[0].classes.identical,
        0
    );
}

#[test]
fn info_json_names_each_layer() {
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    let v = json(&[OsStr::new("info"), OsStr::new("--json"), demo.as_os_str()]);
    let chain = v["chain"].as_array().expect("chain");
    assert_eq!(chain.len(), 3);
    assert_eq!(chain[1]["parent_hint"], "win10-base.vmdk");
    assert_eq!(chain[2]["parent_cid"], chain[1]["cid"]);
    assert_eq!(chain[0]["parent_cid"], "ffffffff");
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct HistoryPoint {
    disk: String,
    bytes: u64,
    classes: Option<[u64; 4]>,
    class_bytes: Option<Counts>,
}

#[derive(Debug, Deserialize)]
struct HistoryDisk {
    points: Vec<HistoryPoint>,
}

#[derive(Debug, Deserialize)]
struct History {
    disks: Vec<HistoryDisk>,
}

/// Issue 17: `history --json` gave `classes` as an array where `scan --json` gives an object.
/// `class_bytes` is the object form (the array stays, as the contract promises): equal to
/// the array, to the scan's top layer, and null for an import without classes.
#[test]
fn history_json_has_classes_as_scan_writes_them() {
    let d = tempdir();
    let db = d.path().join("h.sqlite");
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    let scan: Scan = serde_json::from_str(&ok([
        OsStr::new("scan"),
        OsStr::new("--json"),
        OsStr::new("--record"),
        OsStr::new("--db"),
        db.as_os_str(),
        OsStr::new("--disk"),
        OsStr::new("demo"),
        demo.as_os_str(),
    ]))
    .expect("scan contract");
    let csv = d.path().join("p.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n2026-10-05T08:00:00Z,plain,4096\n",
    )
    .unwrap();
    ok([
        OsStr::new("import"),
        csv.as_os_str(),
        OsStr::new("--db"),
        db.as_os_str(),
    ]);
    let h: History = serde_json::from_str(&ok([
        OsStr::new("history"),
        OsStr::new("--json"),
        OsStr::new("--db"),
        db.as_os_str(),
    ]))
    .expect("history contract");
    let points: Vec<&HistoryPoint> = h.disks.iter().flat_map(|d| &d.points).collect();
    let demo_point = points.iter().find(|p| p.disk == "demo").expect("demo");
    let top = &scan.chain[2].classes;
    let object = demo_point.class_bytes.as_ref().expect("class_bytes");
    let array = demo_point.classes.expect("classes");
    assert_eq!(
        [
            object.fresh,
            object.overwritten,
            object.identical,
            object.zeroed
        ],
        array
    );
    assert_eq!(
        [top.fresh, top.overwritten, top.identical, top.zeroed],
        array
    );
    let plain = points.iter().find(|p| p.disk == "plain").expect("plain");
    assert!(plain.classes.is_none() && plain.class_bytes.is_none());
}
