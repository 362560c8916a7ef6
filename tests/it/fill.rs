//! Time to full and refresh intervals (`scan DIR --lun-size --budget` with history): a LUN of
//! qemu-made deltas with known sizes, a history imported and recorded at known times, and the
//! dates and intervals checked against a hand calculation.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::stores::{Kind, Store, both_stores};
use crate::util::*;

both_stores!(time_to_full_and_refresh_intervals_match_a_hand_calculation);

const MIB: u64 = 1 << 20;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A LUN folder: a 64 MiB hosted base with 1 MiB written at 0, and three deltas on it that
/// write 4 MiB (a), 2 MiB (b) and 1 MiB (c) where the base reads as zero. Each delta's
/// expected ceiling is then 63 MiB: what it holds plus the zero space below it that it has
/// not written (64 - 1 MiB of zero below, less what it wrote over it).
fn lun(dir: &Path) -> PathBuf {
    require("qemu-img");
    require("qemu-io");
    let lun = dir.join("fill");
    std::fs::create_dir_all(lun.join("base")).expect("mkdir");
    let base = lun.join("base/hbase.vmdk");
    sh(Command::new("qemu-img").args(["create", "-q", "-f", "vmdk", s(&base), "64M"]));
    sh(Command::new("qemu-io").args(["-f", "vmdk", "-c", "write -P 0x81 0 1M", s(&base)]));
    for (name, at, len, pattern) in [
        ("a", "4M", "4M", 0x82),
        ("b", "16M", "2M", 0x83),
        ("c", "32M", "1M", 0x84),
    ] {
        let vm = lun.join(name);
        std::fs::create_dir_all(&vm).expect("mkdir");
        let delta = vm.join(format!("{name}.vmdk"));
        sh(Command::new("qemu-img")
            .current_dir(&vm)
            .args([
                "create",
                "-q",
                "-f",
                "vmdk",
                "-b",
                "../base/hbase.vmdk",
                "-F",
                "vmdk",
            ])
            .arg(&delta));
        sh(Command::new("qemu-io").args([
            "-f",
            "vmdk",
            "-c",
            &format!("write -P {pattern} {at} {len}"),
            s(&delta),
        ]));
    }
    lun.canonicalize().expect("canonical")
}

/// Seconds of an RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SSZ`) since 2026-11-01T00:00:00Z, for
/// times in November and December 2026.
fn secs(t: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("number");
    assert_eq!(&t[..5], "2026-", "{t}");
    let day = match n(5..7) {
        11 => n(8..10) - 1,
        12 => 30 + n(8..10) - 1,
        m => panic!("month {m} in {t}"),
    };
    ((day * 24 + n(11..13)) * 60 + n(14..16)) * 60 + n(17..19)
}

fn scan_json(lun: &Path, db: &Store, extra: &[&str]) -> Value {
    let spec = format!("fill={}", lun.display());
    let mut args: Vec<&OsStr> = ["scan", "--json", "--lun", &spec, "--db", db.s()]
        .into_iter()
        .map(OsStr::new)
        .collect();
    args.extend(extra.iter().map(OsStr::new));
    json(&args)
}

/// Imports a history of a and b: empty on day 0 (2026-11-01), half the size the scan finds on
/// day 4 on day 2. Disks are named by their canonical paths, as a datastore scan names them.
fn import(db: &Store, lun: &Path) {
    let mut text = String::from("timestamp,disk,bytes\n");
    for (name, bytes) in [("a", 4 * MIB), ("b", 2 * MIB)] {
        let p = lun.join(format!("{name}/{name}.vmdk"));
        let p = s(&p);
        text.push_str(&format!("2026-11-01T00:00:00Z,{p},0\n"));
        text.push_str(&format!("2026-11-03T00:00:00Z,{p},{}\n", bytes / 2));
    }
    let f = lun.parent().expect("dir").join("history.csv");
    std::fs::write(&f, text).expect("write");
    ok(["import", s(&f), "--db", db.s()]);
}

/// On both stores: the forecasts come through the store's interface.
fn time_to_full_and_refresh_intervals_match_a_hand_calculation(kind: Kind) {
    let d = tempdir();
    let lun = lun(d.path());
    let db = Store::new(kind, d.path(), "h");
    let model = ["--lun-size", "100MiB", "--budget", "12MiB"];
    // History: a and b were empty on day 0 and half their size on day 2 (imported).
    import(&db, &lun);

    // The scan: sizes and ceilings as built.
    let now = scan_json(&lun, &db, &[]);
    let vm = |name: &str| -> Value {
        now["vms"]
            .as_array()
            .expect("vms")
            .iter()
            .find(|v| {
                v["path"]
                    .as_str()
                    .expect("path")
                    .ends_with(&format!("/{name}.vmdk"))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let (a, b, c) = (vm("a"), vm("b"), vm("c"));
    for (v, bytes) in [(&a, 4 * MIB), (&b, 2 * MIB), (&c, MIB)] {
        assert_eq!(v["delta_bytes"], bytes, "{v}");
        assert_eq!(v["ceiling"]["expected_bytes"], 63 * MIB, "{v}");
    }
    // Without history or --lun-size: no dates, no intervals.
    assert_eq!(now["luns"][0]["full_at"], Value::Null);
    assert_eq!(a["refresh_every_days"], Value::Null);

    assert_eq!(a["path"].as_str(), lun.join("a/a.vmdk").to_str());
    // The scan of day 4 is recorded; c has only that one point, so no forecast.
    let spec = format!("fill={}", lun.display());
    ok([
        "scan",
        "--lun",
        &spec,
        "--record",
        "--at",
        "2026-11-05T00:00:00Z",
        "--db",
        db.s(),
    ]);
    let r = scan_json(&lun, &db, &model);
    let l = &r["luns"][0];

    // Hand calculation. Usable space: 100 MiB x (1 - 0.2) = 80 MiB.
    // a: 0, 2, 4 MiB on days 0, 2, 4: a straight line of 1 MiB a day (exact, so the linear
    //    model fits better than the saturating one). b: 0, 1, 2 MiB: 0.5 MiB a day.
    //    c: 1 MiB, no forecast: it stays at 1 MiB.
    // Forecast, from day 4 (the latest point): 4 + 2 + 1 = 7 MiB, growing 1.5 MiB a day:
    //    (80 - 7) / 1.5 = 48 2/3 days after day 4 = 2026-12-23T16:00:00Z. (a is then at
    //    52.7 MiB, below its hard ceiling of 64 MiB plus metadata.)
    // Worst case: c is at its expected ceiling, 63 MiB; a and b grow in straight lines, so
    //    their worst case is their forecast: 4 + 2 + 63 = 69 MiB, growing 1.5 MiB a day:
    //    (80 - 69) / 1.5 = 7 1/3 days after day 4 = 2026-11-12T08:00:00Z.
    // The dates are found to the second by bisection: within two seconds of these.
    let near = |got: &Value, want: &str| {
        let got = got.as_str().unwrap_or_else(|| panic!("no date in {l}"));
        assert!((secs(got) - secs(want)).abs() <= 2, "{got} vs {want}");
    };
    near(&l["full_at"], "2026-12-23T16:00:00Z");
    near(&l["full_at_worst"], "2026-11-12T08:00:00Z");
    // Refresh intervals under 12 MiB: from empty, a takes 12 / 1 = 12 days and b 12 / 0.5 =
    // 24 days; c has no forecast.
    let days = |name: &str| {
        r["vms"]
            .as_array()
            .expect("vms")
            .iter()
            .find(|v| {
                v["path"]
                    .as_str()
                    .expect("path")
                    .ends_with(&format!("/{name}.vmdk"))
            })
            .expect("disk")["refresh_every_days"]
            .clone()
    };
    assert!((days("a").as_f64().expect("a") - 12.0).abs() < 1e-6);
    assert!((days("b").as_f64().expect("b") - 24.0).abs() < 1e-6);
    assert_eq!(days("c"), Value::Null);
    assert_eq!(r["budget_bytes"], 12 * MIB);
    // The worst case falls before today (this scan is not recorded): a note says the date
    // is past and why.
    let notes = l["model"]["notes"].to_string();
    assert!(
        notes.contains("time to full is in the past (")
            && notes.contains("in the worst case on 2026-11-12")
            && notes.contains("latest recorded point (2026-11-05)")
            && notes.contains("--record"),
        "{notes}"
    );
    assert!(
        l["model"]["notes"]
            .as_array()
            .expect("notes")
            .iter()
            .any(|n| n
                .as_str()
                .expect("note")
                .contains("1 of 3 deltas have no forecast")),
        "{l}"
    );

    // Recording the scan of day 4 in the same run gives the same answer: the scan joins the
    // history before the forecasts (a store that has only the import).
    let db2 = Store::new(kind, d.path(), "h2");
    import(&db2, &lun);
    let mut rec = model.to_vec();
    rec.extend(["--record", "--at", "2026-11-05T00:00:00Z"]);
    let r2 = scan_json(&lun, &db2, &rec);
    assert_eq!(r2["luns"][0]["full_at"], l["full_at"]);
    assert_eq!(r2["luns"][0]["full_at_worst"], l["full_at_worst"]);

    // Text, CSV and the HTML page show them.
    let text = ok([
        "scan",
        "--lun",
        &spec,
        "--db",
        db.s(),
        "--lun-size",
        "100MiB",
        "--budget",
        "12MiB",
    ]);
    for want in [
        "2026-12-23",
        "2026-11-12",
        "refresh every 12 days",
        "refresh every 24 days",
        "no forecast",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    let csv = ok([
        "scan",
        "--csv",
        "--lun",
        &spec,
        "--db",
        db.s(),
        "--lun-size",
        "100MiB",
        "--budget",
        "12MiB",
    ]);
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).expect(name);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let a_row = rows
        .iter()
        .find(|r| r[col("path")].ends_with("/a.vmdk"))
        .expect("a row");
    assert_eq!(
        a_row[col("refresh_every_days")]
            .parse::<f64>()
            .map(|x| x.round()),
        Ok(12.0)
    );
    assert!(a_row[col("lun_full_at")].starts_with("2026-12-23"));
    assert!(a_row[col("lun_full_at_worst")].starts_with("2026-11-12"));
    let html = d.path().join("ds.html");
    ok([
        "report",
        s(&lun),
        "-o",
        s(&html),
        "--db",
        db.s(),
        "--lun-size",
        "100MiB",
        "--budget",
        "12MiB",
    ]);
    let page = std::fs::read_to_string(&html).expect("page");
    for want in [
        "When the LUNs fill",
        "2026-12-23",
        "2026-11-12",
        "Refresh intervals",
    ] {
        assert!(page.contains(want), "{want} missing from the page");
    }
}
