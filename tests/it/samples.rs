//! Real VMDK files made by VMware products and other projects (testdata/samples, see its
//! PROVENANCE.md): our map against what qemu-img says of them, scan against the raw bytes,
//! and broken or damaged ones failing cleanly.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::scan_truth::{Classes, truth};
use crate::util::*;

/// Gunzips `testdata/samples/<dir>/<name>.gz` for each name into `to`; returns the paths.
fn unpack(dir: &str, names: &[&str], to: &Path) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| {
            let gz = root()
                .join("testdata/samples")
                .join(dir)
                .join(format!("{name}.gz"));
            let out = to.join(name);
            gunzip(&gz, &out);
            out
        })
        .collect()
}

fn stored_json(dir: &str, name: &str, what: &str) -> Value {
    let p = root()
        .join("testdata/samples")
        .join(dir)
        .join(format!("{name}.qemu-{what}.json"));
    serde_json::from_str(&std::fs::read_to_string(&p).expect("stored qemu JSON")).expect("JSON")
}

fn our_map(path: &Path) -> Vec<Value> {
    serde_json::from_str(&ok([OsStr::new("map"), path.as_os_str()])).expect("map JSON")
}

/// Samples whose stored `qemu-img map` output (made by qemu-img 10.0.2 when the samples were
/// collected) our map must equal exactly: (folder, files to unpack, the file to open).
const MAPPED: &[(&str, &[&str], &str)] = &[
    (
        "vmdk-rs",
        &["monolithicSparse.vmdk"],
        "monolithicSparse.vmdk",
    ),
    (
        "vmdk-rs",
        &[
            "twoGbMaxExtentSparse.vmdk",
            "twoGbMaxExtentSparse-s001.vmdk",
        ],
        "twoGbMaxExtentSparse.vmdk",
    ),
    ("vmdk-rs", &["streamOptimized.vmdk"], "streamOptimized.vmdk"),
    (
        "vmdk-rs",
        &["streamOptimizedWithMarkers.vmdk"],
        "streamOptimizedWithMarkers.vmdk",
    ),
    ("dfvfs", &["ext2.vmdk"], "ext2.vmdk"),
    (
        "qemu-iotests",
        &["iotest-version3.vmdk"],
        "iotest-version3.vmdk",
    ),
];

#[test]
fn map_of_real_samples_equals_stored_qemu_map() {
    let d = tempdir();
    for (dir, files, open) in MAPPED {
        unpack(dir, files, d.path());
        let got = our_map(&d.path().join(open));
        let want = stored_json(dir, open, "map");
        assert_eq!(
            Value::Array(got),
            want,
            "{dir}/{open}: map differs from qemu-img map"
        );
        // Virtual size and cluster size as qemu-img info reported them.
        let info = json(&[
            OsStr::new("info"),
            OsStr::new("--json"),
            d.path().join(open).as_os_str(),
        ]);
        let q = stored_json(dir, open, "info");
        let layer = &info["chain"][0];
        assert_eq!(
            layer["virtual_size"], q["virtual-size"],
            "{dir}/{open}: virtual size"
        );
        if let Some(c) = q.get("cluster-size") {
            assert_eq!(&layer["grain_size"], c, "{dir}/{open}: grain size");
        }
    }
}

#[test]
fn vmfs_flat_sample_maps_as_live_qemu_does() {
    // The stored map of vmfs_thick.vmdk was made where its flat file had no holes; the copy
    // unpacked here is sparse, so the oracle is qemu-img on this very copy.
    let d = tempdir();
    let files = unpack(
        "vmdk-rs",
        &["vmfs_thick.vmdk", "vmfs_thick-flat.vmdk"],
        d.path(),
    );
    let got = our_map(&files[0]);
    let live = qemu_map(files[0].as_os_str());
    assert_eq!(got, live, "vmfs_thick.vmdk: map differs from qemu-img map");
    // Whatever the holes, the data qemu saw when the samples were collected is data to us.
    let stored = stored_json("vmdk-rs", "vmfs_thick.vmdk", "map");
    let data = |m: &[Value]| -> u64 {
        m.iter()
            .filter(|e| e["data"] == Value::Bool(true))
            .map(|e| e["length"].as_u64().expect("length"))
            .sum()
    };
    assert!(data(&got) <= data(stored.as_array().expect("array")));
    assert!(data(&got) > 0);
}

#[test]
fn the_same_disk_in_three_formats_scans_the_same() {
    // vmdk-rs ships one disk as monolithicSparse, twoGbMaxExtentSparse and streamOptimized.
    let d = tempdir();
    unpack(
        "vmdk-rs",
        &[
            "monolithicSparse.vmdk",
            "twoGbMaxExtentSparse.vmdk",
            "twoGbMaxExtentSparse-s001.vmdk",
            "streamOptimized.vmdk",
        ],
        d.path(),
    );
    let mut seen: Vec<(String, Classes, Classes)> = Vec::new();
    for name in [
        "monolithicSparse.vmdk",
        "twoGbMaxExtentSparse.vmdk",
        "streamOptimized.vmdk",
    ] {
        let p = d.path().join(name);
        let v = json(&[OsStr::new("scan"), OsStr::new("--json"), p.as_os_str()]);
        let l = &v["chain"][0];
        let c: Classes = serde_json::from_value(l["classes"].clone()).expect("classes");
        let b: Classes = serde_json::from_value(l["blocks_4k"].clone()).expect("blocks");
        // Against the raw bytes qemu reads from the same file.
        let raw = convert_raw(&p, d.path());
        let (allocated, tc, tb) = truth(&p, None, &raw, l["grain_size"].as_u64().expect("grain"));
        assert_eq!(
            l["allocated_bytes"].as_u64(),
            Some(allocated),
            "{name}: allocated"
        );
        assert_eq!((c, b), (tc, tb), "{name}: classes against raw truth");
        seen.push((name.to_string(), c, b));
    }
    // Each format allocated its own set of all-zero grains; the data grains are the same.
    let data = |c: &Classes| (c.fresh, c.overwritten, c.identical);
    assert!(
        seen.iter()
            .all(|s| data(&s.1) == data(&seen[0].1) && data(&s.2) == data(&seen[0].2)),
        "formats disagree: {seen:?}"
    );
    assert!(seen[0].1.fresh > 0);
}

#[test]
fn descriptors_whose_extent_is_missing_name_it() {
    let d = tempdir();
    for (files, open, missing) in [
        (
            &["monolithicFlat.vmdk"][..],
            "monolithicFlat.vmdk",
            "monolithicFlat-flat.vmdk",
        ),
        (
            &["twoGbMaxExtentFlat.vmdk"][..],
            "twoGbMaxExtentFlat.vmdk",
            "twoGbMaxExtentFlat-f001.vmdk",
        ),
        (
            &[
                "vmfs_thick.vmdk",
                "vmfs_thick-flat.vmdk",
                "vmfs_thick-000001.vmdk",
            ][..],
            "vmfs_thick-000001.vmdk",
            "vmfs_thick-000001-delta.vmdk",
        ),
    ] {
        unpack("vmdk-rs", files, d.path());
        let p = d.path().join(open);
        for cmd in ["info", "map", "scan"] {
            let e = fails(1, [OsStr::new(cmd), p.as_os_str()]);
            assert!(
                e.contains(missing) && e.contains("does not exist"),
                "{cmd} {open}: {e}"
            );
        }
    }
}

#[test]
fn damaged_sample_fails_cleanly() {
    let d = tempdir();
    let files = unpack("hostile", &["go-vmdk-parser-vmdk-invalid.img"], d.path());
    for cmd in ["info", "map", "scan"] {
        let e = fails(1, [OsStr::new(cmd), files[0].as_os_str()]);
        assert!(e.contains("go-vmdk-parser-vmdk-invalid.img"), "{cmd}: {e}");
    }
}

/// Folder of the samples that stay outside this repository (their licence): the ESXi-made
/// SESparse delta. `DELTASCOPE_SHARED_SAMPLES` or `../shared/samples`. A missing folder fails
/// the test: it never passes without having run. `./test.sh` leaves this test out by name, and
/// says so, when the folder is absent; `.ci/run` refuses to run without it.
pub fn shared_samples() -> PathBuf {
    let dir = std::env::var_os("DELTASCOPE_SHARED_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/samples"));
    assert!(
        dir.is_dir(),
        "{} not found: this test needs the ESXi SESparse sample (set DELTASCOPE_SHARED_SAMPLES, or run ./test.sh, which leaves this test out and says so)",
        dir.display()
    );
    dir
}

#[test]
fn esxi_sesparse_sample_is_16_mib_of_fresh_data() {
    let dir = shared_samples();
    let extent = dir.join("dissect-hypervisor/sesparse.vmdk");
    assert!(extent.exists(), "{} not found", extent.display());
    let d = tempdir();
    let desc = d.path().join("sesparse-descriptor.vmdk");
    std::fs::write(
        &desc,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"seSparse\"\n\n\
             # Extent description\nRW 1048576 SESPARSE \"{}\"\n\n# The Disk Data Base\n#DDB\n\n\
             ddb.virtualHWVersion = \"14\"\n",
            extent.display()
        ),
    )
    .expect("descriptor");
    let v = json(&[OsStr::new("scan"), OsStr::new("--json"), desc.as_os_str()]);
    let l = &v["chain"][0];
    assert_eq!(l["virtual_size"], 512u64 << 20);
    assert_eq!(l["grain_size"], 4096);
    assert_eq!(l["allocated_bytes"], 16u64 << 20);
    let c: Classes = serde_json::from_value(l["classes"].clone()).expect("classes");
    assert_eq!(
        c,
        Classes {
            fresh: 16 << 20,
            ..Classes::default()
        }
    );
    // The descriptor lives in a temporary folder and names the sample where it is: that
    // extent is outside the evidence tree, the one warning expected.
    let kinds: Vec<&str> = l["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["outside_tree"], "the sample's journal is clean");
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("dissect-hypervisor/sesparse.vmdk.qemu-map.json"))
            .expect("stored map"),
    )
    .expect("JSON");
    assert_eq!(
        Value::Array(our_map(&desc)),
        stored,
        "SESparse map differs from qemu-img map"
    );
}
