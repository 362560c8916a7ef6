//! The LUN model (`lun`) against hand calculations, and datastore scans (`scan DIR`, `lun DIR`)
//! of the tree `testdata/make-datastore.sh` builds: which disks are found, that one broken
//! chain is reported while the rest are scanned, and that the per-LUN figures are the sums and
//! formulas of the per-disk ones, each disk checked against a scan of its chain alone.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::*;

const MIB: f64 = 1048576.0;
const GIB: u64 = 1 << 30;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
}

fn lun_json(args: &[&str]) -> Value {
    let mut all = vec!["lun", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&all)).expect("lun JSON")
}

/// The acceptance example (docs/SOURCES.md worked example 1).
#[test]
fn acceptance_example_gives_8192_events_and_busy_0_0205() {
    let v = lun_json(&[
        "--vms",
        "64",
        "--growth-per-vm",
        "2GiB",
        "--window",
        "2m",
        "--increment",
        "16MiB",
        "--hold",
        "300us",
    ]);
    // 2 GiB / 16 MiB = 128 events per VM, x 64 VMs.
    assert_eq!(v["lock_events"], 8192);
    // lambda = 8192 / 120 s; rho = lambda x 300 us = 0.02048.
    let rho = v["busy_fraction"].as_f64().unwrap();
    assert!(close(rho, 0.02048), "{rho}");
    assert_eq!(format!("{rho:.4}"), "0.0205");
    assert!(close(
        v["lock_events_per_hour"].as_f64().unwrap(),
        8192.0 / 120.0 * 3600.0
    ));
    assert!(close(
        v["conflict_probability"].as_f64().unwrap(),
        1.0 - (-0.02048f64).exp()
    ));
    // N <= 0.01 x 120 / (128 x 300 us) = 31.25.
    assert_eq!(v["vms_per_lun"]["lock_limit"], 31);
    assert_eq!(v["vms_per_lun"]["capacity_limit"], Value::Null);
    assert_eq!(v["vms_per_lun"]["recommended"], 31);
    assert_eq!(v["vms_per_lun"]["binding"], "lock");
    let i = &v["inputs"];
    assert_eq!(i["vms"], 64);
    assert_eq!(i["growth_per_vm_bytes"], 2 * GIB);
    assert_eq!(i["window_seconds"], 120.0);
    assert_eq!(i["increment_bytes"], 16 << 20);
    assert!(close(i["hold_seconds"].as_f64().unwrap(), 300e-6));
    assert_eq!(i["locking"], "scsi2");
    // The table for people says the same.
    let text = ok([
        "lun",
        "--vms",
        "64",
        "--growth-per-vm",
        "2GiB",
        "--window",
        "2m",
        "--increment",
        "16MiB",
        "--hold",
        "300us",
    ]);
    // Issue 17: the window is named, the hourly rate says it is scaled, busy is a
    // percentage as headroom is.
    assert!(
        text.contains("lock events            8192 per 2.0 min window\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "lock events per hour   245760.0 (the 2.0 min window's rate, scaled to an hour)"
        ),
        "{text}"
    );
    assert!(text.contains("busy fraction          2.05 %"), "{text}");
    assert!(text.contains("busy target            1.00 %"), "{text}");
    assert!(
        text.contains("recommended VMs/LUN    31 (lock binds)"),
        "{text}"
    );
}

/// Other inputs, each worked out by hand in the comments.
#[test]
fn formula_values_for_other_inputs() {
    // 10 VMs, 100 MiB each in an hour, 16 MiB, 1 ms: ceil(100/16) = 7 events per VM, 70 in
    // all; lambda = 70/3600 = 0.019444/s; rho = 1.9444e-5; N <= 0.01 / (7/3600 x 0.001)
    // = 5142.86.
    let v = lun_json(&[
        "--vms",
        "10",
        "--growth-per-vm",
        "100MiB",
        "--window",
        "1h",
        "--hold",
        "1ms",
    ]);
    assert_eq!(v["lock_events"], 70);
    assert!(close(
        v["busy_fraction"].as_f64().unwrap(),
        70.0 / 3600.0 * 0.001
    ));
    assert!(close(v["lock_events_per_hour"].as_f64().unwrap(), 70.0));
    assert_eq!(v["vms_per_lun"]["lock_limit"], 5142);

    // 8 VMs, 1 GiB each in 60 s, 1 MiB increments (SESparse), 1 ms; LUN 1 TiB, headroom 0.25,
    // ceiling 40 GiB: events 8 x 1024 = 8192; lambda = 136.53/s; rho = 0.13653; conflict
    // 1 - e^-0.13653 = 0.12762; one VM alone is 1024/60 x 0.001 = 0.0171 > 0.01: lock limit 0;
    // capacity floor(1024 x 0.75 / 40) = 19; recommended 0, lock binds.
    let v = lun_json(&[
        "--vms",
        "8",
        "--growth-per-vm",
        "1GiB",
        "--window",
        "60s",
        "--increment",
        "1MiB",
        "--hold",
        "1ms",
        "--lun-size",
        "1TiB",
        "--headroom",
        "0.25",
        "--ceiling-per-vm",
        "40GiB",
    ]);
    assert_eq!(v["lock_events"], 8192);
    let rho = 8192.0 / 60.0 * 0.001;
    assert!(close(v["busy_fraction"].as_f64().unwrap(), rho));
    assert!(close(
        v["conflict_probability"].as_f64().unwrap(),
        1.0 - (-rho).exp()
    ));
    assert!((v["conflict_probability"].as_f64().unwrap() - 0.12762).abs() < 1e-5);
    assert_eq!(v["vms_per_lun"]["lock_limit"], 0);
    assert_eq!(v["vms_per_lun"]["capacity_limit"], 19);
    assert_eq!(v["vms_per_lun"]["recommended"], 0);
    assert_eq!(v["vms_per_lun"]["binding"], "lock");

    // docs/SOURCES.md worked example 2: 100 VMs, 10 GiB each in 4 weeks: 640 events each,
    // 64,000 in all; rho = 64000 / 2,419,200 s x 300 us = 7.94e-6.
    let v = lun_json(&["--vms", "100", "--growth-per-vm", "10GiB", "--window", "4w"]);
    assert_eq!(v["lock_events"], 64000);
    assert!(close(
        v["busy_fraction"].as_f64().unwrap(),
        64000.0 / 2_419_200.0 * 3e-4
    ));

    // A looser target: N <= 0.05 x 120 / (128 x 300 us) = 156.25.
    let v = lun_json(&[
        "--vms",
        "64",
        "--growth-per-vm",
        "2GiB",
        "--window",
        "2m",
        "--max-busy",
        "0.05",
    ]);
    assert_eq!(v["vms_per_lun"]["lock_limit"], 156);

    // Growth not a multiple of the increment rounds up: 17 MiB at 16 MiB is 2 events.
    let v = lun_json(&["--vms", "3", "--growth-per-vm", "17MiB", "--window", "10m"]);
    assert_eq!(v["lock_events"], 6);
}

/// Under ATS the LUN-wide figures are zero, the report says why, and capacity binds:
/// floor(2 TiB x 0.8 / 10.5 GiB) = floor(156.04) = 156.
#[test]
fn ats_takes_the_lun_wide_cost_away() {
    let args = [
        "--vms",
        "64",
        "--growth-per-vm",
        "2GiB",
        "--window",
        "2m",
        "--lun-size",
        "2TiB",
        "--ceiling-per-vm",
        "10.5GiB",
    ];
    let scsi = lun_json(&args);
    assert_eq!(scsi["vms_per_lun"]["recommended"], 31);
    assert_eq!(scsi["vms_per_lun"]["capacity_limit"], 156);
    let mut with_ats = args.to_vec();
    with_ats.extend(["--locking", "ats"]);
    let ats = lun_json(&with_ats);
    assert_eq!(ats["lock_events"], 8192);
    assert_eq!(ats["busy_fraction"], 0.0);
    assert_eq!(ats["conflict_probability"], 0.0);
    assert_eq!(ats["vms_per_lun"]["lock_limit"], Value::Null);
    assert_eq!(ats["vms_per_lun"]["recommended"], 156);
    assert_eq!(ats["vms_per_lun"]["binding"], "capacity");
    let notes = ats["notes"].to_string();
    assert!(notes.contains("ATS") && notes.contains("sector"), "{notes}");
}

#[test]
fn bad_model_arguments_are_usage_errors() {
    let e = fails(2, ["lun", "--vms", "64"]);
    assert!(e.contains("--growth-per-vm"), "{e}");
    let e = fails(
        2,
        [
            "lun",
            "--vms",
            "1",
            "--growth-per-vm",
            "1GiB",
            "--window",
            "3 parsecs",
        ],
    );
    assert!(e.contains("3 parsecs"), "{e}");
    let e = fails(
        2,
        [
            "lun",
            "--vms",
            "1",
            "--growth-per-vm",
            "1GiB",
            "--window",
            "1h",
            "--max-busy",
            "2",
        ],
    );
    assert!(e.contains("--max-busy"), "{e}");
    let e = fails(
        2,
        [
            "lun",
            "--vms",
            "1",
            "--growth-per-vm",
            "1GiB",
            "--window",
            "1h",
            "--increment",
            "0",
        ],
    );
    assert!(e.contains("--increment"), "{e}");
    let e = fails(2, ["scan", "--lun", "nodir"]);
    assert!(e.contains("NAME=DIR"), "{e}");
}

/// The charts exist, are what their names say, and carry the limits.
#[test]
fn sensitivity_charts_are_drawn() {
    let t = tempdir();
    let png = t.path().join("inc.png");
    let svg = t.path().join("ats.svg");
    ok([
        OsStr::new("lun"),
        OsStr::new("--vms"),
        OsStr::new("64"),
        OsStr::new("--growth-per-vm"),
        OsStr::new("2GiB"),
        OsStr::new("--window"),
        OsStr::new("2m"),
        OsStr::new("--lun-size"),
        OsStr::new("2TiB"),
        OsStr::new("--ceiling-per-vm"),
        OsStr::new("10.5GiB"),
        OsStr::new("--chart"),
        png.as_os_str(),
        OsStr::new("--chart-locking"),
        svg.as_os_str(),
    ]);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg"));
    for want in ["ATS", "SCSI-2", "156", "31", "busy target 1.0 %"] {
        assert!(text.contains(want), "{want} missing from the SVG");
    }
}

/// The datastore tree, built once per test run.
fn datastore() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require("qemu-img");
        require("qemu-io");
        let dir = process_dir("datastore");
        sh(std::process::Command::new("bash")
            .arg(root().join("testdata/make-datastore.sh"))
            .arg(&dir));
        dir.canonicalize().unwrap()
    })
}

fn run_json(args: &[&OsStr], code: i32) -> Value {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// `scan DIR DIR`: every disk found, the broken one reported (exit 1), every other disk's
/// figures equal to a scan of its chain alone, and each LUN's figures the sums and formulas
/// of its disks'.
#[test]
fn datastore_scan_finds_every_chain_and_reports_the_broken_one() {
    let ds = datastore();
    let (l1, l2) = (ds.join("lun1"), ds.join("lun2"));
    let files = all_files(ds);
    let before = snapshot(&files);
    let r = run_json(
        &[
            OsStr::new("scan"),
            OsStr::new("--json"),
            l1.as_os_str(),
            l2.as_os_str(),
            OsStr::new("--growth-per-vm"),
            OsStr::new("2GiB"),
            OsStr::new("--window"),
            OsStr::new("2m"),
            OsStr::new("--lun-size"),
            OsStr::new("1GiB"),
        ],
        1,
    );
    assert_eq!(before, snapshot(&files), "a datastore scan changed a file");

    let vms = r["vms"].as_array().unwrap();
    let tops: Vec<String> = vms
        .iter()
        .map(|v| {
            Path::new(v["path"].as_str().unwrap())
                .strip_prefix(ds)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        tops,
        [
            "lun1/broken/broken.vmdk",
            "lun1/clone01/clone01.vmdk",
            "lun1/clone02/clone02.vmdk",
            "lun1/clone03/clone03-000001.vmdk",
            "lun2/hosted/delta.vmdk",
            "lun2/se1/se1.vmdk",
            "lun2/se2/se2.vmdk",
        ],
        "the tops are the layers nobody names as parent or extent"
    );
    let broken = &vms[0];
    assert_eq!(broken["status"], "error");
    let err = broken["error"].as_str().unwrap();
    assert!(
        err.contains("parent not found") && err.contains("gone.vmdk"),
        "{err}"
    );

    // Each disk against a scan of its chain alone.
    for v in &vms[1..] {
        assert_eq!(v["status"], "ok");
        let path = v["path"].as_str().unwrap();
        let alone = json(&[OsStr::new("scan"), OsStr::new("--json"), OsStr::new(path)]);
        let chain = alone["chain"].as_array().unwrap();
        let top = chain.last().unwrap();
        assert_eq!(v["layers"], chain.len());
        assert_eq!(v["format"], top["format"]);
        assert_eq!(v["delta_bytes"], top["allocated_bytes"], "{path}");
        assert_eq!(v["delta_file_bytes"], top["file_size"], "{path}");
        assert_eq!(v["classes"], top["classes"], "{path}");
        assert_eq!(v["ceiling"], alone["ceiling"], "{path}");
        assert!(v["is_delta"].as_bool().unwrap());
    }
    assert_eq!(
        vms[3]["layers"], 3,
        "clone03's snapshot sits on its delta and the replica"
    );

    // Per LUN: sums, and the model on 2 GiB per VM in 120 s.
    let luns = r["luns"].as_array().unwrap();
    assert_eq!(luns.len(), 2);
    for (k, lun) in luns.iter().enumerate() {
        let mine: Vec<&Value> = vms
            .iter()
            .filter(|v| v["lun"] == lun["name"] && v["status"] == "ok")
            .collect();
        let sum = |f: &dyn Fn(&Value) -> u64| mine.iter().map(|v| f(v)).sum::<u64>();
        assert_eq!(
            lun["delta_bytes"],
            sum(&|v| v["delta_bytes"].as_u64().unwrap())
        );
        assert_eq!(
            lun["projected_ceiling_bytes"],
            sum(&|v| v["ceiling"]["expected_bytes"].as_u64().unwrap())
        );
        let m = &lun["model"];
        assert_eq!(m["inputs"]["vms"], mine.len());
        // Capacity: floor(1 GiB x 0.8 / mean expected ceiling, rounded up to a byte).
        let ceilings: Vec<u64> = mine
            .iter()
            .map(|v| v["ceiling"]["expected_bytes"].as_u64().unwrap())
            .collect();
        let mean = ceilings.iter().sum::<u64>().div_ceil(ceilings.len() as u64);
        assert_eq!(m["inputs"]["ceiling_per_vm_bytes"], mean);
        let cap = (GIB as f64 * 0.8 / mean as f64).floor() as u64;
        assert_eq!(m["vms_per_lun"]["capacity_limit"], cap);
        if k == 0 {
            // Three vmfsSparse deltas at 16 MiB: 3 x 128 events in 120 s; rho = 3.2/s x 300 us;
            // lock limit floor(0.01 / (128/120 x 300 us)) = 31; capacity binds if smaller.
            assert_eq!(lun["vms_found"], 4);
            assert_eq!(lun["vms_failed"], 1);
            assert_eq!(m["lock_events"], 384);
            assert!(close(
                m["busy_fraction"].as_f64().unwrap(),
                384.0 / 120.0 * 3e-4
            ));
            assert_eq!(m["vms_per_lun"]["lock_limit"], 31);
            assert!(
                lun["unclaimed_files"][0]
                    .as_str()
                    .unwrap()
                    .ends_with("stray/lost-flat.vmdk")
            );
        } else {
            // Two SESparse deltas at 1 MiB (2048 events each) and a hosted one (no VMFS lock):
            // 4096 events in 120 s; the mean VM takes 4096/120/3 per second; lock limit
            // floor(0.01 / (4096/360 x 300 us)) = floor(2.93) = 2.
            assert_eq!(lun["vms_found"], 3);
            assert_eq!(m["lock_events"], 4096);
            assert!(close(
                m["busy_fraction"].as_f64().unwrap(),
                4096.0 / 120.0 * 3e-4
            ));
            assert_eq!(m["vms_per_lun"]["lock_limit"], 2);
            assert_eq!(m["vms_per_lun"]["recommended"], 2);
            assert_eq!(m["vms_per_lun"]["binding"], "lock");
            let hosted = vms.iter().find(|v| v["format"] == "hostedSparse").unwrap();
            assert_eq!(hosted["lock_events"], 0);
            assert_eq!(hosted["increment_bytes"], Value::Null);
        }
    }

    // CSV: a row per disk; the table for people: a row per LUN and the failure.
    let out = run([
        OsStr::new("scan"),
        OsStr::new("--csv"),
        l1.as_os_str(),
        l2.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 8);
    assert!(rows[0].starts_with("lun,path,status,format"));
    assert_eq!(rows.iter().filter(|r| r.contains(",error,")).count(), 1);
    let out = run([OsStr::new("scan"), l1.as_os_str(), l2.as_os_str()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1 disk(s) could not be scanned"), "{text}");
    assert!(text.contains("gone.vmdk"), "{text}");
    let lun_rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("lun1 ") || l.starts_with("lun2 "))
        .filter(|l| !l.contains(".vmdk"))
        .collect();
    assert_eq!(lun_rows.len(), 2, "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 7 disk(s) could not be scanned"));
}

crate::stores::both_stores!(lun_model_on_recorded_growth);

/// `--lun NAME=DIR` names LUNs; growth from the history store (SQLite and PostgreSQL): the
/// deltas' recorded sizes now against zero two days earlier.
fn lun_model_on_recorded_growth(kind: crate::stores::Kind) {
    let ds = datastore();
    let t = tempdir();
    let store = crate::stores::Store::new(kind, t.path(), "h");
    let db = store.arg();
    let l2 = ds.join("lun2");
    let spec = format!("b={}", l2.display());
    // Without any growth source the model cannot run (and no store is created).
    let empty = t.path().join("none.sqlite");
    let out = std::process::Command::new(bin())
        .args(["lun", "--lun", &spec])
        .env("DELTASCOPE_DB", &empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    assert!(!empty.exists());

    // Day 0: the deltas were empty (an import); day 2: a scan records their sizes.
    let scan = json(&[
        OsStr::new("scan"),
        OsStr::new("--json"),
        OsStr::new("--lun"),
        OsStr::new(&spec),
    ]);
    let mut csv = String::from("timestamp,disk,bytes\n");
    for v in scan["vms"].as_array().unwrap() {
        csv.push_str(&format!(
            "2026-11-01T00:00:00Z,{},0\n",
            v["path"].as_str().unwrap()
        ));
    }
    let csv_path = t.path().join("day0.csv");
    std::fs::write(&csv_path, csv).unwrap();
    ok([
        OsStr::new("import"),
        csv_path.as_os_str(),
        OsStr::new("--db"),
        db,
    ]);
    ok([
        OsStr::new("scan"),
        OsStr::new("--lun"),
        OsStr::new(&spec),
        OsStr::new("--record"),
        OsStr::new("--at"),
        OsStr::new("2026-11-03T00:00:00Z"),
        OsStr::new("--db"),
        db,
    ]);
    let v = json(&[
        OsStr::new("lun"),
        OsStr::new("--json"),
        OsStr::new("--lun"),
        OsStr::new(&spec),
        OsStr::new("--db"),
        db,
    ]);
    let m = &v["luns"][0];
    assert_eq!(m["lun"], "b");
    assert_eq!(m["inputs"]["growth_source"], "history");
    // Each SESparse delta grew its whole size in 2 days, in 1 MiB increments; hosted: none.
    let window = 2.0 * 86400.0;
    let mut events = 0u64;
    let mut rate = 0.0;
    for vm in scan["vms"].as_array().unwrap() {
        if vm["format"] == "seSparse" {
            let e = (vm["delta_bytes"].as_u64().unwrap() as f64 / MIB).ceil() as u64;
            events += e;
            rate += e as f64 / window;
        }
    }
    assert!(events > 0);
    assert_eq!(m["lock_events"], events);
    assert!(close(
        m["lock_events_per_hour"].as_f64().unwrap(),
        rate * 3600.0
    ));
    assert!(close(m["busy_fraction"].as_f64().unwrap(), rate * 3e-4));
}

/// Issue 17: a tiny busy fraction printed as `1.2e-10` in the table; it reads "< 0.01 %"
/// (JSON keeps the exact value).
#[test]
fn tiny_fractions_are_not_printed_with_exponents() {
    let args = [
        "lun",
        "--vms",
        "1",
        "--growth-per-vm",
        "16MiB",
        "--window",
        "4w",
    ];
    let text = ok(args);
    assert!(text.contains("busy fraction          < 0.01 %"), "{text}");
    assert!(!text.contains("e-"), "{text}");
    let v = lun_json(&args[1..]);
    let busy = v["busy_fraction"].as_f64().unwrap();
    // 1 event in 4 weeks, held 300 us: 300e-6 / 2419200 s.
    assert!(close(busy, 300e-6 / 2_419_200.0), "{busy}");
}
