//! ESX formats (COWD, SESparse, VMFS flat) in chains mixed with hosted and streamOptimized
//! layers, built by testdata/make-esx-chains.sh. The generator is proven by qemu (compare and
//! map against what it says it wrote) before deltascope is checked against qemu, so generator
//! and parser never vouch for each other.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::map_qemu::check_layer_maps;
use crate::scan_truth::{Classes, check_chains, qemu_grain};
use crate::util::*;

fn stem(layer: &Path) -> String {
    layer.with_extension("").to_string_lossy().into_owned()
}

/// qemu's map of one layer alone, as (start, length, data, offset) per `unit` bytes.
fn qemu_units(layer: &Path, unit: u64) -> Vec<(u64, bool, Option<u64>)> {
    let mut out = Vec::new();
    for e in qemu_map_layer(layer)
        .iter()
        .filter(|e| e["present"] == Value::Bool(true))
    {
        let start = e["start"].as_u64().expect("start");
        let len = e["length"].as_u64().expect("length");
        let data = e["data"] == Value::Bool(true);
        let offset = e["offset"].as_u64();
        let mut s = start;
        while s < start + len {
            out.push((s, data, offset.map(|o| o + (s - start))));
            s += unit;
        }
    }
    out
}

#[test]
fn generated_layers_are_what_qemu_reads() {
    let dir = esx_chains_dir();
    let mut checked = 0;
    for (name, layers) in chains_in(dir) {
        for layer in &layers {
            let expected = format!("{}.expected.raw", stem(layer));
            if !Path::new(&expected).exists() {
                continue; // made by qemu itself
            }
            // Content: the chain up to this layer reads as the writes replayed in memory.
            sh(Command::new("qemu-img")
                .args(["compare", "-q", "-f", "raw", "-F", "vmdk"])
                .arg(&expected)
                .arg(layer));
            // Layout: qemu finds each grain where the generator put it, and nothing else.
            let layout = format!("{}.layout.json", stem(layer));
            if let Ok(text) = std::fs::read_to_string(&layout) {
                let layout: Vec<Value> = serde_json::from_str(&text).expect("layout JSON");
                let unit = layout
                    .first()
                    .map(|e| e["length"].as_u64().expect("length"))
                    .unwrap_or(512);
                let want: Vec<(u64, bool, Option<u64>)> = layout
                    .iter()
                    .map(|e| {
                        let data = e["kind"] == "data";
                        (
                            e["start"].as_u64().expect("start"),
                            data,
                            if data { e["offset"].as_u64() } else { None },
                        )
                    })
                    .collect();
                let got: Vec<_> = qemu_units(layer, unit)
                    .into_iter()
                    .map(|(s, d, o)| (s, d, if d { o } else { None }))
                    .collect();
                assert_eq!(
                    got,
                    want,
                    "{name}: qemu's map of {} differs from the generator's layout",
                    layer.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 9, "only {checked} generated layers checked");
}

#[test]
fn map_equals_qemu_img_map_on_esx_chains() {
    check_layer_maps(esx_chains_dir());
}

#[test]
fn scan_classes_equal_raw_byte_truth_on_esx_chains() {
    check_chains(esx_chains_dir(), &|layer, _, _| qemu_grain(layer));
}

#[test]
fn esx_layers_report_their_formats() {
    let dir = esx_chains_dir();
    let v = json(&[
        OsStr::new("scan"),
        OsStr::new("--json"),
        dir.join("vmfs_cowd2/d2.vmdk").as_os_str(),
    ]);
    let chain = v["chain"].as_array().expect("chain");
    let kinds: Vec<(&str, &str, u64)> = chain
        .iter()
        .map(|l| {
            (
                l["format"].as_str().expect("format"),
                l["create_type"].as_str().expect("createType"),
                l["grain_size"].as_u64().expect("grain"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("flat", "vmfs", 65536),
            ("vmfsSparse", "vmfsSparse", 512),
            ("vmfsSparse", "vmfsSparse", 512)
        ]
    );
    let v = json(&[
        OsStr::new("scan"),
        OsStr::new("--json"),
        dir.join("hosted_sesparse/d1.vmdk").as_os_str(),
    ]);
    let top = &v["chain"][1];
    assert_eq!(
        (top["format"].as_str(), top["grain_size"].as_u64()),
        (Some("seSparse"), Some(4096))
    );
    // 3 whole unmapped grains (two over data, one over nothing), counted on their own.
    assert_eq!(top["unmapped_bytes"], 3 * 4096);
    assert_eq!(top["zero_entry_bytes"], 3 * 4096);
}

#[test]
fn a_dirty_sesparse_journal_is_reported_and_strict_refuses_it() {
    let p = esx_chains_dir().join("special/dirty.vmdk");
    for cmd in ["info", "scan"] {
        let out = run([OsStr::new(cmd), OsStr::new("--json"), p.as_os_str()]);
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("warning:") && stderr.contains("replayJournal = 1"),
            "{cmd}: {stderr}"
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let w = &v["chain"][1]["warnings"];
        assert!(
            w.as_array()
                .expect("warnings")
                .iter()
                .any(|w| w["kind"] == "dirty_journal"),
            "{cmd}: {w}"
        );
        let e = fails(1, [OsStr::new(cmd), OsStr::new("--strict"), p.as_os_str()]);
        assert!(
            e.contains("dirty-sesparse.vmdk") && e.contains("--strict"),
            "{e}"
        );
    }
    // qemu refuses the file outright; the two readers differ on purpose (docs/FORMATS.md).
    let q = Command::new("qemu-img")
        .args(["info"])
        .arg(&p)
        .output()
        .expect("qemu-img");
    assert!(!q.status.success());
}

#[test]
fn cowd_entry_1_reads_as_zero_with_a_warning() {
    let dir = esx_chains_dir().join("special");
    let p = dir.join("gte1.vmdk");
    let v = json(&[OsStr::new("scan"), OsStr::new("--json"), p.as_os_str()]);
    let top = &v["chain"][1];
    let c: Classes = serde_json::from_value(top["classes"].clone()).expect("classes");
    // Two 512-byte grains with entry 1 over parent data (zeroed), one written grain (fresh).
    assert_eq!(
        c,
        Classes {
            fresh: 512,
            zeroed: 1024,
            ..Classes::default()
        }
    );
    assert_eq!(top["warnings"][0]["kind"], "reader_dependent");
    // qemu reads entry 1 as data at file offset 512 (inside the header): the documented
    // disagreement, checked so that a change in qemu shows up here.
    let q = qemu_map_layer(&p);
    assert_eq!(
        (q[0]["data"].as_bool(), q[0]["offset"].as_u64()),
        (Some(true), Some(512)),
        "{q:?}"
    );
    let ours: Vec<Value> =
        serde_json::from_str(&ok([OsStr::new("map"), p.as_os_str()])).expect("map");
    assert_eq!(
        (ours[0]["zero"].as_bool(), ours[0]["data"].as_bool()),
        (Some(true), Some(false))
    );
}

#[test]
fn vmfs_thin_reads_like_vmfs() {
    let dir = esx_chains_dir().join("special");
    let scan = |name: &str| {
        let mut v = json(&[
            OsStr::new("scan"),
            OsStr::new("--json"),
            dir.join(name).as_os_str(),
        ]);
        let l = v["chain"][0].take();
        (
            l["create_type"].clone(),
            l["classes"].clone(),
            l["blocks_4k"].clone(),
        )
    };
    let (thin_type, thin_c, thin_b) = scan("thin.vmdk");
    let (thick_type, thick_c, thick_b) = scan("base.vmdk");
    assert_eq!(
        (thin_type.as_str(), thick_type.as_str()),
        (Some("vmfsThin"), Some("vmfs"))
    );
    assert_eq!((thin_c, thin_b), (thick_c, thick_b));
}

#[test]
fn raw_device_mappings_and_lone_extents_say_what_to_open() {
    let d = tempdir();
    let rdm = d.path().join("rdm.vmdk");
    std::fs::write(&rdm, "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"vmfsPassthroughRawDeviceMap\"\nRW 2048 VMFSRDM \"rdm-rdmp.vmdk\"\n").expect("write");
    let e = fails(1, [OsStr::new("scan"), rdm.as_os_str()]);
    assert!(
        e.contains("rdm.vmdk: cannot be read:") && e.contains("raw device"),
        "{e}"
    );
    let lone = esx_chains_dir().join("vmfs_cowd2/d1-delta.vmdk");
    let e = fails(1, [OsStr::new("info"), lone.as_os_str()]);
    assert!(
        e.contains("cannot be read: a COWD") && e.contains("open the descriptor"),
        "{e}"
    );
    let lone = esx_chains_dir().join("sesparse2/d1-sesparse.vmdk");
    let e = fails(1, [OsStr::new("info"), lone.as_os_str()]);
    assert!(e.contains("cannot be read: an SESparse"), "{e}");
}
