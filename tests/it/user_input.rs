//! What people type and what other tools export, read as written: sizes follow their unit
//! (GB = 10^9, GiB = 2^30, a bare G is refused), dates follow `--date-order` and `--tz` (an
//! ambiguous date is refused, an assumption is said), the future is refused the same way by
//! every time flag, and imported sizes out of range are refused with their line, storing
//! nothing.

use std::ffi::OsStr;
use std::path::Path;

use serde_json::Value;

use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn lun_inputs(extra: &[&str]) -> Value {
    let mut a = vec!["lun", "--vms", "1", "--window", "1h", "--json"];
    a.extend_from_slice(extra);
    json(&a.iter().map(OsStr::new).collect::<Vec<_>>())["inputs"].clone()
}

#[test]
fn sizes_follow_the_unit_written() {
    let v = lun_inputs(&[
        "--growth-per-vm",
        "2GB",
        "--increment",
        "16MB",
        "--lun-size",
        "2TB",
        "--ceiling-per-vm",
        "10GB",
    ]);
    assert_eq!(v["growth_per_vm_bytes"], 2_000_000_000u64);
    assert_eq!(v["increment_bytes"], 16_000_000u64);
    assert_eq!(v["lun_size_bytes"], 2_000_000_000_000u64);
    assert_eq!(v["ceiling_per_vm_bytes"], 10_000_000_000u64);
    let v = lun_inputs(&[
        "--growth-per-vm",
        "2GiB",
        "--increment",
        "16MiB",
        "--lun-size",
        "2TiB",
        "--ceiling-per-vm",
        "10.5GiB",
    ]);
    assert_eq!(v["growth_per_vm_bytes"], 2u64 << 30);
    assert_eq!(v["increment_bytes"], 16u64 << 20);
    assert_eq!(v["lun_size_bytes"], 2u64 << 40);
    assert_eq!(v["ceiling_per_vm_bytes"], 21u64 << 29);
    let v = lun_inputs(&["--growth-per-vm", "2KB"]);
    assert_eq!(v["growth_per_vm_bytes"], 2000);
    let v = lun_inputs(&["--growth-per-vm", "2kB"]);
    assert_eq!(v["growth_per_vm_bytes"], 2000);
    let v = lun_inputs(&["--growth-per-vm", "4096"]);
    assert_eq!(v["growth_per_vm_bytes"], 4096);
    // A bare K/M/G/T could mean either: refused, naming the flag and both readings.
    for (flag, value) in [
        ("--growth-per-vm", "2G"),
        ("--growth-per-vm", "2k"),
        ("--increment", "16M"),
        ("--lun-size", "2T"),
        ("--ceiling-per-vm", "10G"),
    ] {
        let mut a = vec!["lun", "--vms", "1", "--window", "1h"];
        if flag != "--growth-per-vm" {
            a.extend_from_slice(&["--growth-per-vm", "1GiB"]);
        }
        a.extend_from_slice(&[flag, value]);
        let e = fails(2, &a);
        let unit = &value[value.len() - 1..].to_ascii_uppercase();
        assert!(
            e.contains(flag) && e.contains(&format!("{unit}iB")) && e.contains(&format!("{unit}B")),
            "{flag} {value}: {e}"
        );
    }
    // The budget flags of forecast and chart take the same forms.
    let d = tempdir();
    let db = d.path().join("h.sqlite");
    let csv = d.path().join("p.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n2026-10-05T08:00:00Z,d,1000000\n2026-10-12T08:00:00Z,d,2000000\n",
    )
    .expect("write");
    ok(["import", s(&csv), "--db", s(&db)]);
    let f = json(
        &["forecast", "--db", s(&db), "--budget", "24MB", "--json"]
            .iter()
            .map(OsStr::new)
            .collect::<Vec<_>>(),
    );
    assert_eq!(f["disks"][0]["budget_bytes"], 24_000_000u64);
    let e = fails(2, ["forecast", "--db", s(&db), "--budget", "24M"]);
    assert!(e.contains("--budget") && e.contains("MiB"), "{e}");
    let out = d.path().join("c.svg");
    let e = fails(
        2,
        ["chart", "--db", s(&db), "--budget", "1G", "-o", s(&out)],
    );
    assert!(e.contains("--budget") && e.contains("GiB"), "{e}");
}

fn rvtools(dir: &Path, name: &str, dates: &[&str]) -> std::path::PathBuf {
    let mut text =
        String::from("VM,Powerstate,Name,Date / time,Size MiB (vmsn),Size MiB (total)\n");
    for (i, d) in dates.iter().enumerate() {
        text.push_str(&format!("vm-{i},poweredOn,snap,{d},0,100\n"));
    }
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

/// The creation time of each imported disk (its first point), by disk.
fn created(db: &Path) -> Vec<String> {
    let h = json(
        &["history", "--db", s(db), "--json"]
            .iter()
            .map(OsStr::new)
            .collect::<Vec<_>>(),
    );
    h["disks"]
        .as_array()
        .expect("disks")
        .iter()
        .map(|d| d["points"][0]["at"].as_str().expect("at").to_string())
        .collect()
}

#[test]
fn rvtools_dates_follow_date_order_and_tz() {
    let d = tempdir();
    let at = "2026-12-01T00:00:00Z";
    let ambiguous = rvtools(d.path(), "a.csv", &["1/11/2026 06:00:00"]);
    // Day or month first? Refused without --date-order, naming the line.
    let db = d.path().join("none.sqlite");
    let e = fails(2, ["import", s(&ambiguous), "--db", s(&db), "--at", at]);
    assert!(
        e.contains("--date-order") && e.contains("line 2") && e.contains("1/11/2026"),
        "{e}"
    );
    assert!(!db.exists(), "a refused import created the store");
    for (order, tz, said, want) in [
        ("dmy", None, "UTC", "2026-11-01T06:00:00Z"),
        ("mdy", None, "UTC", "2026-01-11T06:00:00Z"),
        ("dmy", Some("+01:00"), "+01:00", "2026-11-01T05:00:00Z"),
        ("dmy", Some("-0530"), "-05:30", "2026-11-01T11:30:00Z"),
        ("dmy", Some("UTC"), "UTC", "2026-11-01T06:00:00Z"),
    ] {
        let db = d.path().join(format!("{order}-{tz:?}.sqlite"));
        let mut a = vec![
            "import",
            s(&ambiguous),
            "--db",
            s(&db),
            "--at",
            at,
            "--date-order",
            order,
        ];
        if let Some(tz) = tz {
            a.extend_from_slice(&["--tz", tz]);
        }
        let out = run(&a);
        assert!(
            out.status.success(),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        // What times without a zone were taken as is said.
        assert!(err.contains(&format!("as {said}")), "{a:?}: {err}");
        assert_eq!(created(&db), [want], "{a:?}");
    }
    // --tz local follows the TZ of the process (POSIX rule: no tz database needed).
    let db = d.path().join("local.sqlite");
    let out = std::process::Command::new(bin())
        .args(["import", s(&ambiguous), "--db", s(&db), "--at", at])
        .args(["--date-order", "dmy", "--tz", "local"])
        .env("TZ", "JST-9")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(created(&db), ["2026-10-31T21:00:00Z"]);
    // A date only one order can read is read that way, and the assumption is said.
    let clear = rvtools(
        d.path(),
        "c.csv",
        &["13/11/2026 06:00:00", "1/11/2026 06:00:00"],
    );
    let db = d.path().join("clear.sqlite");
    let out = run(["import", s(&clear), "--db", s(&db), "--at", at]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("day first") && err.contains("13/11/2026"),
        "{err}"
    );
    assert_eq!(
        created(&db),
        ["2026-11-13T06:00:00Z", "2026-11-01T06:00:00Z"]
    );
    // ... and one that contradicts --date-order is refused with its line.
    let db = d.path().join("contra.sqlite");
    let e = fails(
        1,
        [
            "import",
            s(&clear),
            "--db",
            s(&db),
            "--at",
            at,
            "--date-order",
            "mdy",
        ],
    );
    assert!(e.contains("line 2") && e.contains("13/11/2026"), "{e}");
    // A file whose dates need both orders is refused.
    let both = rvtools(
        d.path(),
        "b.csv",
        &["13/11/2026 06:00:00", "11/13/2026 06:00:00"],
    );
    let e = fails(1, ["import", s(&both), "--db", s(&db), "--at", at]);
    assert!(e.contains("13/11/2026") && e.contains("11/13/2026"), "{e}");
    // A bad --tz names the flag and the forms.
    let e = fails(
        2,
        [
            "import",
            s(&ambiguous),
            "--db",
            s(&db),
            "--date-order",
            "dmy",
            "--tz",
            "Mars/Olympus",
        ],
    );
    assert!(
        e.contains("--tz") && e.contains("local") && e.contains("+01:00"),
        "{e}"
    );
}

#[test]
fn at_and_since_refuse_the_future_alike() {
    let d = tempdir();
    let db = d.path().join("h.sqlite");
    let top = root().join("testdata/demo/win10-clone-000002.vmdk");
    let e = fails(
        2,
        [
            "scan",
            s(&top),
            "--record",
            "--db",
            s(&db),
            "--at",
            "2099-01-01",
        ],
    );
    assert!(e.contains("--at") && e.contains("future"), "{e}");
    assert!(!db.exists(), "a refused --at created the store");
    let e = fails(
        2,
        [
            "scan",
            s(&root().join("testdata/demo")),
            "--since",
            "2099-01-01",
        ],
    );
    assert!(e.contains("--since") && e.contains("future"), "{e}");
    let csv = d.path().join("p.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n2026-10-05T08:00:00Z,d,1000000\n",
    )
    .expect("write");
    let e = fails(2, ["import", s(&csv), "--db", s(&db), "--at", "2099-01-01"]);
    assert!(e.contains("--at") && e.contains("future"), "{e}");
    // Times without a zone are read in --tz for the flags too.
    ok([
        "scan",
        s(&top),
        "--record",
        "--db",
        s(&db),
        "--disk",
        "d",
        "--at",
        "2026-11-01 08:00:00",
        "--tz",
        "+02:00",
    ]);
    let h = json(
        &["history", "--db", s(&db), "--json"]
            .iter()
            .map(OsStr::new)
            .collect::<Vec<_>>(),
    );
    assert_eq!(h["disks"][0]["points"][0]["at"], "2026-11-01T06:00:00Z");
}

#[test]
fn imported_sizes_out_of_range_are_refused_with_their_line() {
    let d = tempdir();
    let db = d.path().join("h.sqlite");
    // A good history first: one segment.
    let good = d.path().join("good.csv");
    std::fs::write(
        &good,
        "timestamp,disk,bytes\n2026-10-05T08:00:00Z,d,1000000\n2026-10-12T08:00:00Z,d,2000000\n",
    )
    .expect("write");
    ok(["import", s(&good), "--db", s(&db)]);
    let cases: [(&str, String); 6] = [
        (
            "u64 max",
            "timestamp,disk,bytes\n2026-10-19T08:00:00Z,d,3000000\n2026-10-26T08:00:00Z,d,18446744073709551615\n".into(),
        ),
        (
            "negative",
            "timestamp,disk,bytes\n2026-10-19T08:00:00Z,d,3000000\n2026-10-26T08:00:00Z,d,-5\n".into(),
        ),
        (
            "SizeGB 1e30",
            "#TYPE VMware.VimAutomation.ViCore.Impl.V1.VM.SnapshotImpl\n\"Created\",\"VM\",\"SizeGB\",\"Name\"\n\"2026/10/01 08:00:00\",\"d2\",\"1\",\"s\"\n\"2026/10/01 08:00:00\",\"d\",\"1e30\",\"s\"\n".into(),
        ),
        (
            "SizeGB NaN",
            "\"Created\",\"VM\",\"SizeGB\",\"Name\"\n\"2026/10/01 08:00:00\",\"d2\",\"1\",\"s\"\n\"2026/10/01 08:00:00\",\"d\",\"NaN\",\"s\"\n".into(),
        ),
        (
            "SizeMB negative",
            "\"Created\",\"VM\",\"SizeMB\",\"Name\"\n\"2026/10/01 08:00:00\",\"d2\",\"1\",\"s\"\n\"2026/10/01 08:00:00\",\"d\",\"-1\",\"s\"\n".into(),
        ),
        (
            "RVTools inf",
            "VM;Name;Date / time;Size MiB (total)\nd2;s;2026/10/01 08:00:00;1\nd;s;2026/10/01 08:00:00;inf\n".into(),
        ),
    ];
    for (what, text) in cases {
        let f = d.path().join("bad.csv");
        std::fs::write(&f, &text).expect("write");
        let e = fails(
            1,
            [
                "import",
                s(&f),
                "--db",
                s(&db),
                "--at",
                "2026-11-01T00:00:00Z",
            ],
        );
        // The line of the bad size in the file (after a #TYPE line when there is one).
        let line = text.lines().count();
        assert!(e.contains(&format!("line {line}")), "{what}: {e}");
        // Nothing of the file was stored: the good row before it neither.
        let h = json(
            &["history", "--db", s(&db), "--json"]
                .iter()
                .map(OsStr::new)
                .collect::<Vec<_>>(),
        );
        let disks = h["disks"].as_array().expect("disks");
        assert_eq!(disks.len(), 1, "{what}: {h}");
        let points = disks[0]["points"].as_array().expect("points");
        assert_eq!(points.len(), 2, "{what}: {h}");
        assert!(points.iter().all(|p| p["segment"] == 0), "{what}: {h}");
    }
}
