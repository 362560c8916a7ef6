//! Sparse flat bases: a VMFS flat extent copied off a datastore is a sparse host file, mostly
//! holes. Holes read as zeros, so a scan knows them from the file system without reading them:
//! the classes stay those of the bytes, and the bytes read stay those of the data.
//!
//! The base is written here (a 64 GiB sparse file with a few runs of data at known offsets),
//! so its classes are worked out from the writes; the delta is qemu's, checked against
//! `qemu-img convert` of both views.

use std::ffi::OsString;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::scan_truth::{Classes, truth};
use crate::util::*;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Virtual size of the base: what the scan would read, holes included, without hole support.
const SIZE: u64 = 64 * GIB;
/// The walk's grain over a flat extent (FORMATS.md: flat extents are walked in 64 KiB).
const FLAT_GRAIN: u64 = 64 * KIB;

/// What the base holds: (offset, length, byte); a zero byte writes real zeros (data that reads
/// as zero, not a hole).
const BASE: &[(u64, u64, u8)] = &[
    (0, MIB, 0x11),
    (5 * GIB + 3 * 4096 + 100, 10_000, 0x22),
    (20 * GIB, 64 * KIB, 0),
    (33 * GIB - 2048, 4096, 0x33),
    (40 * GIB, 2 * MIB, 0x55),
    (SIZE - 4096, 4096, 0x44),
];

/// qemu-io commands that write the delta: fresh over a hole, identical to the base,
/// overwritten, zeros over data, a partial grain across base data and a hole, 512 bytes far
/// out in a hole.
const DELTA: &[&str] = &[
    "write -P 0x66 1073741824 65536",
    "write -P 0x11 0 65536",
    "write -P 0x77 42949672960 65536",
    "write -z 42950721536 65536",
    "write -P 0x88 35433480192 4096",
    "write -P 0x99 67645734912 512",
];

/// The base's classes and 4 KiB block classes from the writes alone: with no parent, a grain
/// (block) is fresh when it holds a non-zero byte and zeroed otherwise.
fn base_truth() -> (Classes, Classes) {
    let nonzero = |unit: u64| {
        let mut units: Vec<u64> = BASE
            .iter()
            .filter(|w| w.2 != 0)
            .flat_map(|&(at, n, _)| at / unit..=(at + n - 1) / unit)
            .collect();
        units.sort_unstable();
        units.dedup();
        units.len() as u64
    };
    let grains = nonzero(FLAT_GRAIN);
    let blocks = nonzero(4096);
    (
        Classes {
            fresh: grains * FLAT_GRAIN,
            zeroed: SIZE - grains * FLAT_GRAIN,
            ..Classes::default()
        },
        Classes {
            fresh: blocks,
            zeroed: SIZE / 4096 - blocks,
            ..Classes::default()
        },
    )
}

/// Writes the sparse base (`base.vmdk`, `base-flat.vmdk`) and qemu's delta (`top.vmdk`) in
/// `dir`; returns the top.
fn make_chain(dir: &Path) -> std::path::PathBuf {
    let flat = std::fs::File::create(dir.join("base-flat.vmdk")).expect("create flat");
    flat.set_len(SIZE).expect("size the flat extent");
    for &(at, n, byte) in BASE {
        flat.write_all_at(&vec![byte; n as usize], at)
            .expect("write the flat extent");
    }
    drop(flat);
    std::fs::write(
        dir.join("base.vmdk"),
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=ba5ef1a7\nparentCID=ffffffff\n\
             createType=\"vmfs\"\n\n# Extent description\nRW {} VMFS \"base-flat.vmdk\"\n",
            SIZE / 512
        ),
    )
    .expect("write base descriptor");
    let top = dir.join("top.vmdk");
    sh(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "vmdk",
            "-b",
            "base.vmdk",
            "-F",
            "vmdk",
        ])
        .arg(&top));
    let mut io = Command::new("qemu-io");
    io.args(["-f", "vmdk"]);
    for c in DELTA {
        io.args(["-c", c]);
    }
    sh(io.arg(&top));
    top
}

/// What one run of deltascope printed and read.
struct Counted {
    stdout: String,
    /// Bytes returned by read calls (page cache or not): with `--no-mmap`, every byte read.
    rchar: u64,
    /// Minor page faults: with maps, every page touched for the first time.
    faults: u64,
}

/// Runs deltascope with `args` under `sh`, which reaps it and then prints its own counters,
/// which then include those of its reaped child: `rchar` from /proc/PID/io and `cminflt`
/// from /proc/PID/stat. Standard output goes to `out`.
fn counted(args: &[OsString], out: &Path) -> Counted {
    let text = sh(Command::new("sh")
        .arg("-c")
        .arg(r#""$0" "$@" >"$OUT" || exit 1; cat /proc/$$/io; cat /proc/$$/stat"#)
        .env("OUT", out)
        .arg(bin())
        .args(args));
    let rchar = text
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rchar in {text}"));
    // "pid (comm) state ppid ...": field 11 (cminflt) is the 9th after the ')'.
    let stat = text.lines().last().expect("stat line");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let faults = after
        .split_whitespace()
        .nth(8)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no cminflt in {stat}"));
    Counted {
        stdout: std::fs::read_to_string(out).expect("scan output"),
        rchar,
        faults,
    }
}

#[test]
fn a_64_gib_sparse_flat_base_is_scanned_without_reading_its_holes() {
    require("qemu-img");
    require("qemu-io");
    let d = tempdir();
    let top = make_chain(d.path());
    let scan = |extra: &[&str]| -> Vec<OsString> {
        let mut args: Vec<OsString> = ["--no-cache", "scan"].map(OsString::from).to_vec();
        args.extend(extra.iter().map(OsString::from));
        args.extend([OsString::from("--json"), top.clone().into_os_string()]);
        args
    };

    // Maps and positioned reads give the same report, byte for byte.
    let mapped = counted(&scan(&[]), &d.path().join("mapped.json"));
    let preads = counted(&scan(&["--no-mmap"]), &d.path().join("preads.json"));
    assert_eq!(
        untimed(&preads.stdout),
        untimed(&mapped.stdout),
        "--no-mmap changed the result"
    );
    let report: Value = serde_json::from_str(&mapped.stdout).expect("scan JSON");
    let layers = report["chain"].as_array().expect("chain");
    assert_eq!(layers.len(), 2);
    let classes = |l: &Value, key: &str| -> Classes {
        serde_json::from_value(l[key].clone()).expect("classes")
    };

    // The base: every byte of the 64 GiB is stored data, and the classes are the writes'.
    let (want, want_blocks) = base_truth();
    assert_eq!(layers[0]["allocated_bytes"].as_u64(), Some(SIZE));
    assert_eq!(layers[0]["stored_bytes"].as_u64(), Some(SIZE));
    assert_eq!(classes(&layers[0], "classes"), want, "base classes");
    assert_eq!(
        classes(&layers[0], "blocks_4k"),
        want_blocks,
        "base 4 KiB blocks"
    );

    // The delta: against the bytes of qemu's raw views of the base and of the chain.
    let base_raw = convert_raw(&d.path().join("base.vmdk"), d.path());
    let top_raw = convert_raw(&top, d.path());
    let (allocated, want, want_blocks) = truth(&top, Some(&base_raw), &top_raw, 64 * KIB);
    assert_eq!(layers[1]["allocated_bytes"].as_u64(), Some(allocated));
    let got = classes(&layers[1], "classes");
    assert_eq!(got, want, "delta classes");
    assert_eq!(
        classes(&layers[1], "blocks_4k"),
        want_blocks,
        "delta 4 KiB blocks"
    );
    // Every class is there, so a hole misread as data (or data as a hole) would show.
    assert!(got.fresh > 0 && got.overwritten > 0 && got.identical > 0 && got.zeroed > 0);

    // What was read: a few MiB of data and metadata, never the 64 GiB. With positioned reads
    // every byte read passes through read calls; with maps every page touched faults once.
    let written: u64 = BASE.iter().map(|w| w.1).sum();
    assert!(
        preads.rchar < 16 * written + 16 * MIB,
        "--no-mmap scan read {} bytes; the base holds {written} bytes of data in {SIZE}",
        preads.rchar
    );
    let pages = SIZE / 4096;
    assert!(
        mapped.faults < pages / 100,
        "mapped scan faulted {} pages in; the base has {pages} pages, nearly all holes",
        mapped.faults
    );
}
