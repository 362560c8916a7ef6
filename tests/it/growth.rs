//! Growth over time: back-filled weekly scans of a generated growing delta
//! (testdata/gen_growth.py, which knows the true curve), the forecast against that truth,
//! imports of RVTools and PowerCLI exports, charts, and the expected ceiling against raw bytes.
//! The tests that use the history store run on SQLite and on PostgreSQL (`stores.rs`).

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::process::Command;

use serde_json::Value;

use crate::stores::{Kind, Store, both_stores};
use crate::util::*;

both_stores!(
    four_weekly_scans_forecast_weeks_5_and_6_within_10_percent,
    rvtools_and_powercli_exports_import_and_chart,
);

fn args<'a>(a: &'a [&'a str]) -> Vec<&'a OsStr> {
    a.iter().map(OsStr::new).collect()
}

fn four_weekly_scans_forecast_weeks_5_and_6_within_10_percent(kind: Kind) {
    require("qemu-io");
    let d = tempdir();
    let g = d.path().join("growth");
    sh(Command::new("python3")
        .arg(root().join("testdata/gen_growth.py"))
        .arg(&g)
        .args(["--weeks", "6"]));
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(g.join("truth.json")).expect("truth"))
            .expect("JSON");
    let truth: Vec<u64> = truth["weeks"]
        .as_array()
        .expect("weeks")
        .iter()
        .map(|w| w["allocated_bytes"].as_u64().expect("bytes"))
        .collect();
    let store = Store::new(kind, d.path(), "h");
    let db = store.s();
    for week in 1..=4 {
        let at = format!("2026-10-{:02}T08:00:00Z", 5 + 7 * (week - 1));
        let top = g.join(format!("week-{week}.vmdk"));
        ok(args(&[
            "scan",
            "--record",
            "--db",
            db,
            "--disk",
            "vdi-01",
            "--at",
            &at,
            top.to_str().expect("utf-8"),
        ]));
    }
    // Recording the same scan again changes nothing.
    let again = run(args(&[
        "scan",
        "--record",
        "--db",
        db,
        "--disk",
        "vdi-01",
        "--at",
        "2026-10-05T08:00:00Z",
        g.join("week-1.vmdk").to_str().expect("utf-8"),
    ]));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not recorded again"));
    let h = json(&args(&["history", "--db", db, "--json"]));
    assert_eq!(h["disks"][0]["points"].as_array().map(Vec::len), Some(4));
    // The scans themselves agree with the generator's truth.
    for (i, t) in truth.iter().enumerate() {
        let v = json(&args(&[
            "scan",
            "--json",
            g.join(format!("week-{}.vmdk", i + 1))
                .to_str()
                .expect("utf-8"),
        ]));
        assert_eq!(
            v["chain"][1]["allocated_bytes"].as_u64(),
            Some(*t),
            "week {}",
            i + 1
        );
    }
    let f = json(&args(&[
        "forecast", "--db", db, "--disk", "vdi-01", "--weeks", "2", "--budget", "24MiB", "--json",
    ]));
    let disk = &f["disks"][0];
    assert_eq!(disk["disk"], "vdi-01");
    assert_eq!(disk["points"].as_array().map(Vec::len), Some(4));
    let fc = disk["forecast"].as_array().expect("forecast");
    assert_eq!(fc.len(), 2);
    for (k, week) in [(0usize, 5usize), (1, 6)] {
        let got = fc[k]["bytes"].as_u64().expect("bytes") as f64;
        let want = truth[week - 1] as f64;
        assert!(
            (got - want).abs() / want <= 0.10,
            "week {week}: forecast {got} vs truth {want}"
        );
        let (low, high) = (
            fc[k]["low"].as_u64().expect("low"),
            fc[k]["high"].as_u64().expect("high"),
        );
        assert!(low as f64 <= got && got <= high as f64);
    }
    assert_eq!(fc[0]["at"], "2026-11-02T08:00:00Z");
    assert!(disk["ceiling_bytes"].as_u64().expect("ceiling") > truth[5]);
    for key in ["ceiling_50", "ceiling_80", "ceiling_100", "budget"] {
        assert!(disk["crossings"].get(key).is_some(), "crossings lack {key}");
    }
    // Charts, both kinds.
    for name in ["growth.png", "growth.svg"] {
        let out = d.path().join(name);
        ok(args(&[
            "chart",
            "--db",
            db,
            "--disk",
            "vdi-01",
            "--budget",
            "24MiB",
            "-o",
            out.to_str().expect("utf-8"),
        ]));
        let bytes = std::fs::read(&out).expect("chart");
        if name.ends_with(".png") {
            assert!(
                bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
                "PNG of {} bytes",
                bytes.len()
            );
        } else {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                text.contains("Delta growth of vdi-01") && text.contains("W41"),
                "SVG lacks title or week labels"
            );
        }
    }
}

fn rvtools_and_powercli_exports_import_and_chart(kind: Kind) {
    let d = tempdir();
    let store = Store::new(kind, d.path(), "h");
    let db = store.s();
    let rv = |name: &str, mib: u32| {
        let p = d.path().join(name);
        std::fs::write(&p, format!("VM,Powerstate,Name,Date / time,Filename,Size MiB (vmsn),Size MiB (total)\nvdi-07,poweredOn,golden,2026/10/01 06:00:00,[ds1] vdi-07/vdi-07-000001.vmdk,0,{mib}\n")).expect("write");
        p
    };
    for (i, mib) in [(1u32, 1024u32), (2, 2048), (3, 2800)] {
        let p = rv(&format!("rv{i}.csv"), mib);
        ok(args(&[
            "import",
            p.to_str().expect("utf-8"),
            "--db",
            db,
            "--at",
            &format!("2026-10-{:02}T06:00:00Z", 1 + 7 * i),
        ]));
    }
    let pc = d.path().join("pc.csv");
    std::fs::write(&pc, "#TYPE VMware.VimAutomation.ViCore.Impl.V1.VM.SnapshotImpl\n\"Description\",\"Created\",\"Quiesced\",\"PowerState\",\"VM\",\"SizeMB\",\"SizeGB\",\"Name\"\n\"\",\"10/3/2026 9:00:00 PM\",\"False\",\"PoweredOn\",\"app-01\",\"512.25\",\"0.500244140625\",\"pre-upgrade\"\n").expect("write");
    // "10/3/2026" could be either order: PowerCLI's US culture writes month first.
    let e = fails(
        2,
        args(&[
            "import",
            pc.to_str().expect("utf-8"),
            "--db",
            db,
            "--at",
            "2026-10-10T00:00:00Z",
        ]),
    );
    assert!(e.contains("--date-order") && e.contains("line 3"), "{e}");
    ok(args(&[
        "import",
        pc.to_str().expect("utf-8"),
        "--db",
        db,
        "--at",
        "2026-10-10T00:00:00Z",
        "--date-order",
        "mdy",
    ]));
    let h = json(&args(&["history", "--db", db, "--json"]));
    let disks: Vec<&str> = h["disks"]
        .as_array()
        .expect("disks")
        .iter()
        .map(|d| d["disk"].as_str().expect("disk"))
        .collect();
    assert_eq!(disks, ["app-01/pre-upgrade", "vdi-07/golden"]);
    let vdi = &h["disks"][1]["points"];
    // Created at 0 bytes, then three exports.
    let sizes: Vec<u64> = vdi
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["bytes"].as_u64().expect("bytes"))
        .collect();
    assert_eq!(sizes, [0, 1024 << 20, 2048 << 20, 2800 << 20]);
    let app = &h["disks"][0]["points"];
    assert_eq!(app[1]["bytes"], 537_133_056u64); // 0.500244140625 GiB
    let csv = ok(args(&[
        "history",
        "--db",
        db,
        "--csv",
        "--disk",
        "vdi-07/golden",
    ]));
    assert!(
        csv.starts_with("disk,at,segment,bytes") && csv.lines().count() == 5,
        "{csv}"
    );
    let f = json(&args(&[
        "forecast",
        "--db",
        db,
        "--disk",
        "vdi-07/golden",
        "--json",
    ]));
    assert_eq!(f["disks"][0]["model"], "linear");
    let out = d.path().join("vdi.png");
    ok(args(&[
        "chart",
        "--db",
        db,
        "--disk",
        "vdi-07/golden",
        "-o",
        out.to_str().expect("utf-8"),
    ]));
    assert!(std::fs::read(&out).expect("png").starts_with(b"\x89PNG"));
    // An unknown layout says what it expected; several disks need --disk.
    let bad = d.path().join("bad.csv");
    std::fs::write(&bad, "name,size\nx,1\n").expect("write");
    let e = fails(
        1,
        args(&["import", bad.to_str().expect("utf-8"), "--db", db]),
    );
    assert!(
        e.contains("unknown CSV layout") && e.contains("SizeGB") && e.contains("Size MiB (total)"),
        "{e}"
    );
    let e = fails(
        2,
        args(&["chart", "--db", db, "-o", out.to_str().expect("utf-8")]),
    );
    assert!(e.contains("--disk"), "{e}");
    fails(
        2,
        args(&[
            "chart",
            "--db",
            db,
            "--disk",
            "vdi-07/golden",
            "-o",
            "chart.gif",
        ]),
    );
}

/// Bytes of `[start, end)` whose whole 4 KiB block of `raw` is zero (the ceiling counts by
/// blocks of the view below the top).
fn zero_in(raw: &File, start: u64, end: u64) -> u64 {
    let len = raw.metadata().expect("stat").len();
    let mut total = 0;
    let mut block = vec![0u8; 4096];
    let mut b = start - start % 4096;
    while b < end {
        let n = (len.saturating_sub(b)).min(4096) as usize;
        raw.read_exact_at(&mut block[..n], b).expect("read raw");
        if block[..n].iter().all(|&x| x == 0) {
            total += (b + 4096).min(end) - b.max(start);
        }
        b += 4096;
    }
    total
}

#[test]
fn expected_ceiling_equals_raw_zero_space_not_yet_written() {
    let work = tempdir();
    // qemu-made hosted chains and ESX chains: where the layers below the top hold whole
    // 4 KiB blocks the ceiling comes from the classification (a COWD top included); a COWD
    // delta under the top (vmfs_cowd2) makes it walk the layers below.
    for (name, layers) in chains_in(chains_dir())
        .into_iter()
        .chain(chains_in(esx_chains_dir()))
        .filter(|(_, l)| l.len() > 1)
    {
        let top = layers.last().expect("top");
        let parent = &layers[layers.len() - 2];
        let raw = File::open(convert_raw(parent, work.path())).expect("raw");
        let size = qemu_info(top)["virtual-size"].as_u64().expect("size");
        // Unallocated ranges of the top layer alone, from qemu.
        let mut zero = 0;
        let mut pos = 0;
        let map = qemu_map_layer(top);
        for e in &map {
            let (s, l) = (
                e["start"].as_u64().expect("start"),
                e["length"].as_u64().expect("length"),
            );
            if e["present"] == Value::Bool(false) {
                zero += zero_in(&raw, s, s + l);
            }
            pos = pos.max(s + l);
        }
        assert_eq!(pos, size, "{name}: qemu map covers the disk");
        let v = json(&[OsStr::new("scan"), OsStr::new("--json"), top.as_os_str()]);
        let c = &v["ceiling"];
        assert_eq!(
            c["parent_zero_unwritten_bytes"].as_u64(),
            Some(zero),
            "{name}"
        );
        let allocated = v["chain"][layers.len() - 1]["allocated_bytes"]
            .as_u64()
            .expect("allocated");
        assert_eq!(
            c["expected_bytes"].as_u64(),
            Some(allocated + zero),
            "{name}"
        );
        assert!(c["hard_bytes"].as_u64().expect("hard") >= size, "{name}");
    }
}

/// Issue 17: imported sizes of 0.1 GiB steps gave tick labels such as
/// `0.30000000000000004 GiB` running into the axis title, and the grey bars of weeks
/// without classes had no legend entry.
#[test]
fn chart_ticks_are_round_and_every_bar_colour_has_a_legend() {
    let d = tempdir();
    let db = d.path().join("h.sqlite");
    let csv = d.path().join("h.csv");
    let tenth = (1u64 << 30) / 10;
    let mut text = String::from("timestamp,disk,bytes\n");
    for (i, day) in ["05", "12", "19", "26"].iter().enumerate() {
        text.push_str(&format!(
            "2026-10-{day}T08:00:00Z,vdi-01,{}\n",
            tenth * (i as u64 + 1)
        ));
    }
    text.push_str(&format!("2026-11-02T08:00:00Z,vdi-01,{}\n", tenth * 5));
    text.push_str(&format!("2026-11-09T08:00:00Z,vdi-01,{}\n", tenth * 11 / 2));
    std::fs::write(&csv, text).unwrap();
    let db = db.to_str().expect("utf-8");
    ok(args(&["import", csv.to_str().expect("utf-8"), "--db", db]));
    let svg = d.path().join("g.svg");
    ok(args(&[
        "chart",
        "--db",
        db,
        "--disk",
        "vdi-01",
        "-o",
        svg.to_str().expect("utf-8"),
    ]));
    let svg = std::fs::read_to_string(&svg).unwrap();
    let labels: Vec<&str> = svg
        .split("<text")
        .skip(1)
        .filter_map(|t| t.split('>').nth(1))
        .map(|t| t.split('<').next().unwrap_or("").trim())
        .collect();
    let gib: Vec<&&str> = labels.iter().filter(|l| l.ends_with(" GiB")).collect();
    assert!(gib.len() >= 5, "{labels:?}");
    for l in &gib {
        let number = l.trim_end_matches(" GiB");
        assert!(
            number.len() <= 6 && number.parse::<f64>().is_ok(),
            "tick {l:?}"
        );
    }
    assert!(gib.iter().any(|l| **l == "0.6 GiB"), "{gib:?}");
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("growth (no classes recorded")),
        "the grey bars have no legend: {labels:?}"
    );
}
