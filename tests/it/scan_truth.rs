//! `scan` classes and 4 KiB counts against an independent computation: allocation from
//! `qemu-img map` of each layer alone, bytes from `qemu-img convert -O raw` of the chain up
//! to that layer and up to its parent. Nothing of deltascope's library is used.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::util::*;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Classes {
    pub fresh: u64,
    pub overwritten: u64,
    pub identical: u64,
    pub zeroed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    zero: bool,
    equal: bool,
    parent_zero: bool,
}

impl Flags {
    fn and(self, o: Flags) -> Flags {
        Flags {
            zero: self.zero && o.zero,
            equal: self.equal && o.equal,
            parent_zero: self.parent_zero && o.parent_zero,
        }
    }
    fn add_to(self, c: &mut Classes, n: u64) {
        if self.zero {
            c.zeroed += n
        } else if self.equal {
            c.identical += n
        } else if self.parent_zero {
            c.fresh += n
        } else {
            c.overwritten += n
        }
    }
}

/// The truth for one layer: (allocated bytes, classes, 4 KiB block classes).
pub fn truth(
    layer: &Path,
    parent_raw: Option<&Path>,
    layer_raw: &Path,
    grain: u64,
) -> (u64, Classes, Classes) {
    let map = qemu_map_layer(layer);
    let me = File::open(layer_raw).expect("layer raw");
    let parent = parent_raw.map(|p| File::open(p).expect("parent raw"));
    let parent_len = parent
        .as_ref()
        .map(|f| f.metadata().expect("stat").len())
        .unwrap_or(0);
    let mut classes = Classes::default();
    let mut blocks: BTreeMap<u64, Flags> = BTreeMap::new();
    // Present ranges, merged into one list: a grain is judged over all its present bytes even
    // when qemu splits it into several entries (holes inside a flat file's 64 KiB grain).
    let ranges: Vec<(u64, u64)> = map
        .iter()
        .filter(|e| e["present"] == Value::Bool(true))
        .map(|e| {
            let start = e["start"].as_u64().expect("start");
            (start, start + e["length"].as_u64().expect("length"))
        })
        .collect();
    let allocated = ranges.iter().map(|(s, e)| e - s).sum();
    let mut grains: BTreeMap<u64, Flags> = BTreeMap::new();
    let mut grain_bytes: BTreeMap<u64, u64> = BTreeMap::new();
    for &(start, end) in &ranges {
        let mut b = start;
        while b < end {
            // Pieces never cross a 4 KiB block or a grain boundary.
            let b_end = ((b / 4096 + 1) * 4096)
                .min((b / grain + 1) * grain)
                .min(end);
            let n = (b_end - b) as usize;
            let mut c = vec![0u8; n];
            me.read_exact_at(&mut c, b).expect("read layer raw");
            let mut p = vec![0u8; n];
            if let Some(pf) = &parent
                && b < parent_len
            {
                let k = ((parent_len - b) as usize).min(n);
                pf.read_exact_at(&mut p[..k], b).expect("read parent raw");
            }
            let f = Flags {
                zero: c.iter().all(|&x| x == 0),
                equal: c == p,
                parent_zero: p.iter().all(|&x| x == 0),
            };
            grains
                .entry(b / grain)
                .and_modify(|x| *x = x.and(f))
                .or_insert(f);
            *grain_bytes.entry(b / grain).or_default() += b_end - b;
            blocks
                .entry(b / 4096)
                .and_modify(|x| *x = x.and(f))
                .or_insert(f);
            b = b_end;
        }
    }
    for (g, f) in &grains {
        f.add_to(&mut classes, grain_bytes[g]);
    }
    let mut block_classes = Classes::default();
    for f in blocks.values() {
        f.add_to(&mut block_classes, 1);
    }
    (allocated, classes, block_classes)
}

/// Grain size qemu reports for a layer (64 KiB for layers without grains, as deltascope's
/// documented convention for flat extents).
pub fn qemu_grain(layer: &Path) -> u64 {
    let info = qemu_info(layer);
    info["cluster-size"].as_u64().unwrap_or(65536)
}

/// Checks every layer of every chain under `dir`; grain sizes come from `grain_of`.
pub fn check_chains(dir: &Path, grain_of: &dyn Fn(&Path, usize, &Value) -> u64) {
    let work = tempdir();
    for (name, layers) in chains_in(dir) {
        let top = layers.last().expect("layers");
        let report = json(&[OsStr::new("scan"), OsStr::new("--json"), top.as_os_str()]);
        let got = report["chain"].as_array().expect("chain array");
        assert_eq!(got.len(), layers.len(), "{name}: layer count");
        let mut parent_raw = None;
        for (i, layer) in layers.iter().enumerate() {
            let raw = convert_raw(layer, work.path());
            let grain = grain_of(layer, i, &got[i]);
            let (allocated, classes, blocks) = truth(layer, parent_raw.as_deref(), &raw, grain);
            let l = &got[i];
            let c: Classes = serde_json::from_value(l["classes"].clone()).expect("classes");
            let b: Classes = serde_json::from_value(l["blocks_4k"].clone()).expect("blocks_4k");
            assert_eq!(
                l["allocated_bytes"].as_u64(),
                Some(allocated),
                "{name} layer {i} allocated bytes"
            );
            assert_eq!(c, classes, "{name} layer {i} ({}) classes", layer.display());
            assert_eq!(
                b,
                blocks,
                "{name} layer {i} ({}) 4 KiB blocks",
                layer.display()
            );
            assert_eq!(
                c.fresh + c.overwritten + c.identical + c.zeroed,
                allocated,
                "{name} layer {i}: classes sum to allocated bytes"
            );
            if let Some(old) = parent_raw.replace(raw) {
                std::fs::remove_file(old).ok();
            }
        }
        eprintln!("scan truth: {name}: {} layers agree", layers.len());
    }
}

#[test]
fn scan_classes_equal_raw_byte_truth_on_qemu_made_chains() {
    check_chains(chains_dir(), &|layer, _, _| qemu_grain(layer));
}

#[test]
fn threads_and_read_modes_give_identical_json() {
    for (name, layers) in chains_in(chains_dir()) {
        let top = layers.last().expect("layers").as_os_str();
        let base = ok([OsStr::new("scan"), OsStr::new("--json"), top]);
        for extra in [
            ["--threads", "1"],
            ["--threads", "2"],
            ["--no-mmap", "--threads=3"],
        ] {
            let mut args = vec![OsStr::new("scan"), OsStr::new("--json")];
            args.extend(extra.iter().map(OsStr::new));
            args.push(top);
            assert_eq!(
                untimed(&ok(&args)),
                untimed(&base),
                "{name}: {extra:?} changed the result"
            );
        }
    }
}
