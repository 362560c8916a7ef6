//! `deltascope diff`: two scans, two blames and two history points of one disk compared, the
//! bytes grown checked against qemu's map of the layer and against arithmetic on the two
//! documents; scans of two disks and malformed documents refused with the file named.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::stores::{Kind, Store, both_stores};
use crate::util::*;

both_stores!(two_history_points_of_one_disk);

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn write_json(path: &Path, args: &[&str]) -> Value {
    let out = ok(args);
    std::fs::write(path, &out).expect("write");
    serde_json::from_str(&out).expect("JSON")
}

/// Bytes a layer holds alone, by qemu.
fn qemu_data_bytes(layer: &Path) -> u64 {
    qemu_map_layer(layer)
        .iter()
        .filter(|r| r["data"] == true)
        .map(|r| r["length"].as_u64().expect("length"))
        .sum()
}

/// Two scans of the demo disk before and after a snapshot (OLD's top is the middle layer of
/// NEW): the new top's bytes are the growth, as qemu maps that layer, and per week over the
/// week between the two `--at`.
#[test]
fn a_snapshot_between_two_scans_is_growth_of_the_new_layer() {
    let d = tempdir();
    let (old, new) = (d.path().join("old.json"), d.path().join("new.json"));
    let mid = root().join("testdata/demo/win10-clone-000001.vmdk");
    let top = root().join("testdata/demo/win10-clone-000002.vmdk");
    let o = write_json(&old, &["scan", "--json", s(&mid)]);
    let n = write_json(&new, &["scan", "--json", s(&top)]);
    let r = json(
        &[
            "diff",
            s(&old),
            s(&new),
            "--at",
            "2026-11-02T08:00:00Z",
            "--at",
            "2026-11-09T08:00:00Z",
            "--json",
        ]
        .map(OsStr::new),
    );
    let grown = qemu_data_bytes(&top);
    assert!(grown > 0);
    assert_eq!(r["top_grown_bytes"], grown);
    assert_eq!(r["chain_grown_bytes"], grown);
    // One week: the growth per week is the growth.
    assert_eq!(r["interval_seconds"], 7.0 * 86400.0);
    assert_eq!(r["top_per_week_bytes"].as_f64(), Some(grown as f64));
    assert_eq!(r["time_source"], "given");
    // Per class: the new layer's classes as NEW's scan has them; the shared layers unchanged.
    let layers = r["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 3);
    for (i, l) in layers.iter().enumerate() {
        let before = o["chain"].get(i);
        let after = &n["chain"][i];
        for class in ["fresh", "overwritten", "identical", "zeroed"] {
            let want = after["classes"][class].as_i64().expect("class")
                - before.map_or(0, |b| b["classes"][class].as_i64().expect("class"));
            assert_eq!(l["classes_grown"][class], want, "layer {i} {class}");
        }
    }
    assert_eq!(layers[2]["top"], true);
    assert_eq!(layers[2]["old_bytes"], Value::Null);
    // No blame groups in scans: said so.
    assert_eq!(r["groups"], Value::Null);
    assert!(r["notes"].to_string().contains("no change per file"));
    // The table says the same.
    let text = ok(["diff", s(&old), s(&new)]);
    assert!(text.contains("win10-clone-000002.vmdk (top)"), "{text}");
    assert!(text.contains("the scans' own times (scanned_at)"), "{text}");
}

/// Without --at, the times are the scan documents' own (`scanned_at`: the `--at` they were
/// recorded with), not the files' modification times; a document without one (written by
/// an older deltascope) falls back to modification times for both sides.
#[test]
fn scan_documents_carry_their_own_time() {
    let d = tempdir();
    let db = d.path().join("h.sqlite");
    let (old, new) = (d.path().join("old.json"), d.path().join("new.json"));
    let mid = root().join("testdata/demo/win10-clone-000001.vmdk");
    let top = root().join("testdata/demo/win10-clone-000002.vmdk");
    let scan = |out: &Path, layer: &Path, at: &str| {
        write_json(
            out,
            &[
                "scan",
                "--json",
                s(layer),
                "--record",
                "--at",
                at,
                "--db",
                s(&db),
            ],
        )
    };
    let o = scan(&old, &mid, "2026-11-02T08:00:00Z");
    scan(&new, &top, "2026-11-05T20:00:00Z");
    assert_eq!(o["scanned_at"], "2026-11-02T08:00:00Z");
    let r = json(&["diff", s(&old), s(&new), "--json"].map(OsStr::new));
    assert_eq!(r["time_source"], "scanned_at");
    assert_eq!(r["interval_seconds"], 3.5 * 86400.0);
    assert_eq!(r["old"]["at"], "2026-11-02T08:00:00Z");
    let grown = qemu_data_bytes(&top);
    assert_eq!(r["top_per_week_bytes"].as_f64(), Some(grown as f64 * 2.0));
    // An unrecorded scan stands for when it started: between the clock before and after.
    let before = chrono::Utc::now().timestamp();
    let v = write_json(&d.path().join("now.json"), &["scan", "--json", s(&top)]);
    let after = chrono::Utc::now().timestamp();
    let at = chrono::DateTime::parse_from_rfc3339(v["scanned_at"].as_str().expect("scanned_at"))
        .expect("RFC 3339")
        .timestamp();
    assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    // A document without scanned_at: modification times, for both sides.
    let mut legacy = o.clone();
    legacy.as_object_mut().expect("object").remove("scanned_at");
    std::fs::write(&old, legacy.to_string()).expect("write");
    let r = json(&["diff", s(&old), s(&new), "--json"].map(OsStr::new));
    assert_eq!(r["time_source"], "file_modified");
}

/// Two blames of one NTFS delta, before and after 1 MiB is written where the delta held
/// nothing: the top grew by what qemu maps in addition, and the groups that changed add up to
/// it (blame's groups sum to the layer's bytes).
#[test]
fn two_blames_compare_per_file() {
    require("qemu-io");
    let d = tempdir();
    let delta = unpack_ntfs("blame", d.path());
    let (old, new) = (d.path().join("old.json"), d.path().join("new.json"));
    let before = qemu_data_bytes(&delta);
    let o = write_json(&old, &["blame", "--json", s(&delta)]);
    // A 1 MiB hole of the delta, 64 KiB aligned, inside the volume.
    let hole = qemu_map_layer(&delta)
        .into_iter()
        .find(|r| {
            r["data"] == false
                && r["start"].as_u64().expect("start") >= 1 << 20
                && r["length"].as_u64().expect("length") >= 2 << 20
        })
        .expect("a hole");
    let at = hole["start"]
        .as_u64()
        .expect("start")
        .next_multiple_of(65536);
    sh(Command::new("qemu-io").args([
        "-f",
        "vmdk",
        "-c",
        &format!("write -P 0x5a {at} 1M"),
        s(&delta),
    ]));
    let grown = qemu_data_bytes(&delta) - before;
    assert_eq!(grown, 1 << 20);
    let n = write_json(&new, &["blame", "--json", s(&delta)]);
    let r = json(&["diff", s(&old), s(&new), "--json"].map(OsStr::new));
    assert_eq!(r["top_grown_bytes"], grown);
    assert_eq!(r["group_by"], "file");
    let groups = r["groups"].as_array().expect("groups");
    assert!(!groups.is_empty());
    let sum: i64 = groups
        .iter()
        .map(|g| g["grown_bytes"].as_i64().expect("grown"))
        .sum();
    assert_eq!(sum, grown as i64);
    // Each group's figures are the two documents' bytes for it.
    let bytes_in = |doc: &Value, path: &str| -> u64 {
        doc["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter(|g| g["path"] == path)
            .map(|g| g["bytes"].as_u64().expect("bytes"))
            .sum()
    };
    for g in groups {
        let p = g["path"].as_str().expect("path");
        assert_eq!(g["old_bytes"], bytes_in(&o, p), "{p}");
        assert_eq!(g["new_bytes"], bytes_in(&n, p), "{p}");
    }
    let text = ok(["diff", s(&old), s(&new)]);
    assert!(
        text.contains("blame groups (by file) that changed"),
        "{text}"
    );
}

/// Two points of the history, on both stores: an imported size and a recorded scan.
fn two_history_points_of_one_disk(kind: Kind) {
    let d = tempdir();
    let db = Store::new(kind, d.path(), "h");
    let csv = d.path().join("p.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n2026-11-02T08:00:00Z,vdi-01,262144\n",
    )
    .expect("csv");
    ok(["import", s(&csv), "--db", db.s()]);
    let top = root().join("testdata/demo/win10-clone-000002.vmdk");
    ok([
        "scan",
        "--record",
        "--db",
        db.s(),
        "--disk",
        "vdi-01",
        "--at",
        "2026-11-16T08:00:00Z",
        s(&top),
    ]);
    let r = json(
        &[
            "diff",
            "--db",
            db.s(),
            "--disk",
            "vdi-01",
            "--at",
            "2026-11-02T08:00:00Z",
            "--at",
            "2026-11-16T08:00:00Z",
            "--json",
        ]
        .map(OsStr::new),
    );
    // 448 KiB now (qemu), 256 KiB imported: +192 KiB in two weeks, 96 KiB a week.
    let now = qemu_data_bytes(&top);
    let grown = now as i64 - 262_144;
    assert_eq!(r["top_grown_bytes"], grown);
    assert_eq!(r["top_per_week_bytes"].as_f64(), Some(grown as f64 / 2.0));
    assert_eq!(r["time_source"], "history");
    // The import knows the top only: the tops are compared, not the layers below.
    assert_eq!(r["chain_grown_bytes"], grown);
    assert_eq!(r["layers"].as_array().map(Vec::len), Some(1));
    assert!(r["notes"].to_string().contains("classes are not known"));
    // A time with no point names the points there are.
    let e = fails(
        1,
        [
            "diff",
            "--db",
            db.s(),
            "--disk",
            "vdi-01",
            "--at",
            "2026-11-03T08:00:00Z",
            "--at",
            "2026-11-16T08:00:00Z",
        ],
    );
    assert!(
        e.contains("no point at 2026-11-03T08:00:00Z") && e.contains("2026-11-02T08:00:00Z"),
        "{e}"
    );
}

#[test]
fn two_disks_and_malformed_documents_are_refused() {
    let d = tempdir();
    let demo = d.path().join("demo.json");
    write_json(
        &demo,
        &[
            "scan",
            "--json",
            s(&root().join("testdata/demo/win10-clone-000002.vmdk")),
        ],
    );
    let ntfs_dir = d.path().join("ntfs");
    std::fs::create_dir_all(&ntfs_dir).expect("mkdir");
    let ntfs = d.path().join("ntfs.json");
    write_json(
        &ntfs,
        &["scan", "--json", s(&unpack_ntfs("blame", &ntfs_dir))],
    );
    let e = fails(1, ["diff", s(&demo), s(&ntfs)]);
    assert!(
        e.contains(s(&demo)) && e.contains(s(&ntfs)) && e.contains("not of one disk"),
        "{e}"
    );
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, "{\"chain\": 3}").expect("write");
    let e = fails(1, ["diff", s(&bad), s(&demo)]);
    assert!(
        e.contains(s(&bad)) && e.contains("expected the JSON of `scan --json`"),
        "{e}"
    );
    let e = fails(1, ["diff", s(&demo), s(&d.path().join("missing.json"))]);
    assert!(e.contains("missing.json"), "{e}");
    // Usage: one --at; --disk without --at; no files.
    fails(
        2,
        ["diff", s(&demo), s(&demo), "--at", "2026-11-02T08:00:00Z"],
    );
    fails(2, ["diff", "--disk", "vdi-01"]);
    fails(2, ["diff"]);
}
