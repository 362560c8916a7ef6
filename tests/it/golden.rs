//! Golden outputs: the text, JSON and CSV that every subcommand prints (stdout, stderr and exit
//! code) on the committed chains (`testdata/demo`, `testdata/ntfs`, `testdata/samples`), on a
//! history store filled from fixed points, and on the generated datastores, compared byte for
//! byte with `testdata/golden/`. Temporary paths, the repository path, random CIDs of
//! qemu-made files and today's time are normalised. A change of output fails here until it is
//! reviewed: `DELTASCOPE_BLESS=1 cargo test --test it golden` rewrites the files, and the diff
//! is read like code. Help, man pages and completions are left out: they are generated from
//! the command-line definition and checked in `cli.rs` and `completions.rs`.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

/// One command and where it runs.
struct Case {
    /// File name under testdata/golden (without `.txt`).
    name: String,
    args: Vec<OsString>,
}

fn case(name: &str, args: &[&dyn AsRef<OsStr>]) -> Case {
    Case {
        name: name.to_string(),
        args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
    }
}

/// Text replacements that make an output independent of where and when it ran.
#[derive(Default)]
struct Normalise {
    pairs: Vec<(String, String)>,
}

impl Normalise {
    fn add(&mut self, from: impl Into<String>, to: &str) {
        let from = from.into();
        if !from.is_empty() && !self.pairs.iter().any(|(f, _)| *f == from) {
            self.pairs.push((from, to.to_string()));
        }
    }

    fn apply(&self, text: &str) -> String {
        // Longest first, so a temporary folder goes before the system temp root.
        let mut pairs: Vec<&(String, String)> = self.pairs.iter().collect();
        pairs.sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
        let mut out = text.to_string();
        for (from, to) in pairs {
            out = out.replace(from.as_str(), to);
        }
        today(&out)
    }
}

/// Replaces times of today (UTC) such as `2026-12-03T09:14:05Z` or `2026-12-03 09:14` by
/// `<NOW>`: the only times a command prints that it did not read from its input.
fn today(text: &str) -> String {
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&day) {
        out.push_str(&rest[..i]);
        let after = &rest[i + day.len()..];
        // A time follows: [T ]HH:MM, optionally :SS, fractions and a zone.
        let b = after.as_bytes();
        let is_time = b.len() >= 6
            && (b[0] == b'T' || b[0] == b' ')
            && b[1].is_ascii_digit()
            && b[2].is_ascii_digit()
            && b[3] == b':';
        if is_time {
            let end = after[1..]
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, ':' | '.' | 'Z' | '+')))
                .map(|e| e + 1)
                .unwrap_or(after.len());
            out.push_str("<NOW>");
            rest = &after[end..];
        } else {
            out.push_str(&day);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The CIDs written into files that qemu-img made (they are random), in order of first sight.
fn qemu_cids(files: &[PathBuf], norm: &mut Normalise) {
    for f in files {
        let mut data = Vec::new();
        std::fs::File::open(f)
            .and_then(|mut h| h.read_to_end(&mut data))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let text = String::from_utf8_lossy(&data);
        for key in ["\nCID=", "\nparentCID="] {
            let mut from = 0;
            while let Some(i) = text[from..].find(key) {
                let at = from + i + key.len();
                // qemu writes a CID without leading zeros (1 to 8 digits); deltascope
                // prints all 8, and that is the form to replace.
                let digits: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_hexdigit())
                    .collect();
                let cid = (1..=8)
                    .contains(&digits.len())
                    .then(|| u32::from_str_radix(&digits, 16).ok())
                    .flatten()
                    .map(|c| format!("{c:08x}"));
                if let Some(cid) = cid.filter(|c| c != "ffffffff") {
                    let n = norm
                        .pairs
                        .iter()
                        .filter(|(_, t)| t.starts_with("<CID"))
                        .count();
                    norm.add(cid, &format!("<CID{n}>"));
                }
                from = at;
            }
        }
    }
}

/// Runs one case and renders what it printed.
fn render(c: &Case, norm: &Normalise) -> String {
    let out = Command::new(bin())
        .args(&c.args)
        .current_dir(root())
        .env("DELTASCOPE_CACHE", cache_dir())
        .env("DELTASCOPE_DB", no_history())
        .env("NO_COLOR", "1")
        .output()
        .expect("run deltascope");
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    norm.apply(&format!(
        "$ deltascope {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "signal".into()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn every_subcommand_prints_what_it_printed_before() {
    let tmp = tempdir();
    let t = tmp.path();
    let mut norm = Normalise::default();
    norm.add(t.display().to_string(), "<TMP>");
    norm.add(
        t.canonicalize().expect("canonical").display().to_string(),
        "<TMP>",
    );
    norm.add(root().display().to_string(), "<ROOT>");
    let mut cases: Vec<Case> = Vec::new();

    // The committed demo chain, named relative to the repository as a user types it.
    let demo = "testdata/demo/win10-clone-000002.vmdk";
    let mid = "testdata/demo/win10-clone-000001.vmdk";
    cases.push(case("demo-info", &[&"info", &demo]));
    cases.push(case("demo-info-json", &[&"info", &"--json", &demo]));
    cases.push(case("demo-map", &[&"map", &demo]));
    cases.push(case("demo-map-layer0", &[&"map", &demo, &"--layer", &"0"]));
    cases.push(case("demo-scan", &[&"scan", &demo]));
    cases.push(case("demo-scan-json", &[&"scan", &"--json", &demo]));
    cases.push(case("demo-scan-mid", &[&"scan", &mid]));
    cases.push(case("demo-blame", &[&"blame", &demo]));
    cases.push(case("demo-map-layer9", &[&"map", &demo, &"--layer", &"9"]));

    // The committed NTFS chains.
    for name in ["blame", "churn", "dirty"] {
        let d = t.join("ntfs").join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        for f in ["base.vmdk", "delta.vmdk"] {
            gunzip(
                &root().join(format!("testdata/ntfs/{name}/{f}.gz")),
                &d.join(f),
            );
        }
        let delta = d.join("delta.vmdk");
        cases.push(case(&format!("ntfs-{name}-scan"), &[&"scan", &delta]));
        cases.push(case(
            &format!("ntfs-{name}-scan-json"),
            &[&"scan", &"--json", &delta],
        ));
        cases.push(case(&format!("ntfs-{name}-blame"), &[&"blame", &delta]));
        cases.push(case(
            &format!("ntfs-{name}-blame-json"),
            &[&"blame", &"--json", &delta],
        ));
        cases.push(case(
            &format!("ntfs-{name}-blame-csv"),
            &[&"blame", &"--csv", &delta],
        ));
    }
    let ntfs = t.join("ntfs/blame/delta.vmdk");
    for by in ["dir", "ext"] {
        cases.push(case(
            &format!("ntfs-blame-by-{by}"),
            &[&"blame", &"--by", &by, &"--top", &"5", &ntfs],
        ));
    }

    // The committed real samples (opened as the samples' own tests open them).
    let samples: &[(&str, &[&str], &str)] = &[
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
        (
            "vmdk-rs",
            &[
                "vmfs_thick.vmdk",
                "vmfs_thick-flat.vmdk",
                "vmfs_thick-000001.vmdk",
            ],
            "vmfs_thick-000001.vmdk",
        ),
        ("vmdk-rs", &["vmfs_thick.vmdk"], "vmfs_thick.vmdk"),
        ("vmdk-rs", &["monolithicFlat.vmdk"], "monolithicFlat.vmdk"),
        (
            "qemu-iotests",
            &["iotest-version3.vmdk"],
            "iotest-version3.vmdk",
        ),
        ("dfvfs", &["ext2.vmdk"], "ext2.vmdk"),
        (
            "hostile",
            &["go-vmdk-parser-vmdk-invalid.img"],
            "go-vmdk-parser-vmdk-invalid.img",
        ),
    ];
    for (i, (dir, files, open)) in samples.iter().enumerate() {
        let d = t.join(format!("samples/{i}-{dir}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        for f in *files {
            gunzip(
                &root().join(format!("testdata/samples/{dir}/{f}.gz")),
                &d.join(f),
            );
        }
        let p = d.join(open);
        let stem = open.trim_end_matches(".vmdk").trim_end_matches(".img");
        cases.push(case(
            &format!("sample-{stem}-info-json"),
            &[&"info", &"--json", &p],
        ));
        cases.push(case(&format!("sample-{stem}-map"), &[&"map", &p]));
        cases.push(case(&format!("sample-{stem}-scan"), &[&"scan", &p]));
        cases.push(case(
            &format!("sample-{stem}-scan-json"),
            &[&"scan", &"--json", &p],
        ));
    }

    // A history store from fixed points: import, record, list, forecast.
    let db = t.join("history.sqlite");
    let csv = t.join("points.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n\
         2026-10-05T08:00:00Z,vdi-01,1048576\n\
         2026-10-12T08:00:00Z,vdi-01,2097152\n\
         2026-10-19T08:00:00Z,vdi-01,3145728\n\
         2026-10-26T08:00:00Z,vdi-01,4194304\n\
         2026-11-02T08:00:00Z,vdi-01,5767168\n\
         2026-10-05T08:00:00Z,vdi-02,8388608\n\
         2026-10-19T08:00:00Z,vdi-02,9437184\n",
    )
    .expect("csv");
    cases.push(case("history-import", &[&"import", &csv, &"--db", &db]));
    cases.push(case(
        "history-record",
        &[
            &"scan",
            &ntfs,
            &"--record",
            &"--db",
            &db,
            &"--disk",
            &"vdi-01",
            &"--at",
            &"2026-11-09T08:00:00Z",
        ],
    ));
    cases.push(case("history", &[&"history", &"--db", &db]));
    cases.push(case("history-json", &[&"history", &"--json", &"--db", &db]));
    cases.push(case("history-csv", &[&"history", &"--csv", &"--db", &db]));
    cases.push(case(
        "history-disk",
        &[&"history", &"--disk", &"vdi-02", &"--db", &db],
    ));
    cases.push(case(
        "forecast",
        &[
            &"forecast",
            &"--db",
            &db,
            &"--weeks",
            &"6",
            &"--budget",
            &"20MiB",
        ],
    ));
    cases.push(case(
        "forecast-json",
        &[&"forecast", &"--json", &"--db", &db, &"--disk", &"vdi-01"],
    ));

    // diff: two scans of the demo disk around a snapshot, two blames of an NTFS delta before
    // and after 1 MiB is written into a hole, two points of the history above; two disks
    // and a document that is not a scan are refused.
    let scans = t.join("diff");
    std::fs::create_dir_all(&scans).expect("mkdir");
    let (old, new) = (scans.join("old.json"), scans.join("new.json"));
    std::fs::write(&old, ok(["scan", "--json", mid])).expect("write");
    std::fs::write(&new, ok(["scan", "--json", demo])).expect("write");
    let week: [&dyn AsRef<OsStr>; 4] = [
        &"--at",
        &"2026-11-02T08:00:00Z",
        &"--at",
        &"2026-11-09T08:00:00Z",
    ];
    for (suffix, extra) in [("", None), ("-json", Some("--json"))] {
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"diff", &old, &new];
        args.extend(week.iter().copied());
        if let Some(e) = &extra {
            args.push(e);
        }
        cases.push(case(&format!("diff-scans{suffix}"), &args));
    }
    let nd = scans.join("ntfs");
    std::fs::create_dir_all(&nd).expect("mkdir");
    for f in ["base.vmdk", "delta.vmdk"] {
        gunzip(
            &root().join(format!("testdata/ntfs/blame/{f}.gz")),
            &nd.join(f),
        );
    }
    let nd_delta = nd.join("delta.vmdk");
    let (bold, bnew) = (scans.join("blame-old.json"), scans.join("blame-new.json"));
    std::fs::write(
        &bold,
        ok([
            OsStr::new("blame"),
            OsStr::new("--json"),
            nd_delta.as_os_str(),
        ]),
    )
    .expect("write");
    // 2 MiB: inside a hole of the delta (1.1 to 6.9 MiB, by qemu-img map of the layer alone).
    sh(Command::new("qemu-io").args([
        OsStr::new("-f"),
        OsStr::new("vmdk"),
        OsStr::new("-c"),
        OsStr::new("write -P 0x5a 0x200000 1M"),
        nd_delta.as_os_str(),
    ]));
    std::fs::write(
        &bnew,
        ok([
            OsStr::new("blame"),
            OsStr::new("--json"),
            nd_delta.as_os_str(),
        ]),
    )
    .expect("write");
    for (suffix, extra) in [("", None), ("-json", Some("--json"))] {
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"diff", &bold, &bnew];
        args.extend(week.iter().copied());
        if let Some(e) = &extra {
            args.push(e);
        }
        cases.push(case(&format!("diff-blame{suffix}"), &args));
    }
    cases.push(case(
        "diff-history-json",
        &[
            &"diff",
            &"--json",
            &"--db",
            &db,
            &"--disk",
            &"vdi-01",
            &"--at",
            &"2026-11-02T08:00:00Z",
            &"--at",
            &"2026-11-09T08:00:00Z",
        ],
    ));
    cases.push(case("diff-two-disks", &[&"diff", &new, &bnew]));
    cases.push(case("diff-not-a-scan", &[&"diff", &db, &new]));

    // The LUN model on parameters alone.
    let model: [&dyn AsRef<OsStr>; 12] = [
        &"--vms",
        &"64",
        &"--growth-per-vm",
        &"2GiB",
        &"--window",
        &"2m",
        &"--increment",
        &"16MiB",
        &"--hold",
        &"300us",
        &"--lun-size",
        &"2TiB",
    ];
    for (suffix, extra) in [
        ("", None),
        ("-json", Some("--json")),
        ("-csv", Some("--csv")),
    ] {
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"lun"];
        args.extend(model.iter().copied());
        if let Some(e) = &extra {
            args.push(e);
        }
        cases.push(case(&format!("lun-params{suffix}"), &args));
    }
    cases.push(case(
        "lun-params-ats",
        &[
            &"lun",
            &"--vms",
            &"64",
            &"--growth-per-vm",
            &"2GiB",
            &"--window",
            &"2m",
            &"--lun-size",
            &"2TiB",
            &"--ceiling-per-vm",
            &"10.5GiB",
            &"--locking",
            &"ats",
        ],
    ));

    // The generated datastore: two LUNs of linked clones in mixed formats, a broken chain.
    let ds = t.join("ds");
    sh(Command::new("bash")
        .arg(root().join("testdata/make-datastore.sh"))
        .arg(&ds));
    qemu_cids(
        &[
            ds.join("lun2/hosted/hbase.vmdk"),
            ds.join("lun2/hosted/delta.vmdk"),
        ],
        &mut norm,
    );
    let (lun1, lun2) = (ds.join("lun1"), ds.join("lun2"));
    let burst: [&dyn AsRef<OsStr>; 6] = [
        &"--growth-per-vm",
        &"2GiB",
        &"--window",
        &"2m",
        &"--lun-size",
        &"1GiB",
    ];
    for (suffix, extra) in [
        ("", None),
        ("-json", Some("--json")),
        ("-csv", Some("--csv")),
    ] {
        for cmd in ["scan", "lun"] {
            let mut args: Vec<&dyn AsRef<OsStr>> = vec![&cmd, &lun1, &lun2];
            args.extend(burst.iter().copied());
            if let Some(e) = &extra {
                args.push(e);
            }
            cases.push(case(&format!("datastore-{cmd}{suffix}"), &args));
        }
    }
    cases.push(case(
        "datastore-scan-hosted",
        &[&"scan", &ds.join("lun2/hosted/delta.vmdk")],
    ));

    // The generated copy of a Horizon pod (issue 14): two datastores with linked clones on a
    // replica, .vmx/.vmsd files, orphans, a renamed copy and a decoy; with and without --map.
    let pod = t.join("pod");
    sh(Command::new("bash")
        .arg(root().join("testdata/make-horizon.sh"))
        .arg(&pod));
    qemu_cids(
        &std::fs::read_dir(pod.join("ds1/ws-vm"))
            .expect("ws-vm")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "vmdk"))
            .collect::<Vec<_>>(),
        &mut norm,
    );
    let (ds1, ds2) = (
        format!("ds1={}", pod.join("ds1").display()),
        format!("ds2={}", pod.join("ds2").display()),
    );
    let (map1, map2) = (
        format!(
            "/vmfs/volumes/5f3a1c2e-8a7b9c0d-1e2f-001122334455={}",
            pod.join("ds1").display()
        ),
        format!(
            "/vmfs/volumes/6a7b8c9d-01234567-89ab-001122334466={}",
            pod.join("ds2").display()
        ),
    );
    for (suffix, extra) in [
        ("", None),
        ("-json", Some("--json")),
        ("-csv", Some("--csv")),
    ] {
        for mapped in [false, true] {
            let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"scan", &"--lun", &ds1, &"--lun", &ds2];
            if mapped {
                args.extend([&"--map" as &dyn AsRef<OsStr>, &map1, &"--map", &map2]);
            }
            if let Some(e) = &extra {
                args.push(e);
            }
            let m = if mapped { "-map" } else { "" };
            cases.push(case(&format!("pod-scan{m}{suffix}"), &args));
        }
    }
    let clone = pod.join("ds1/vdi-01/vdi-01.vmdk");
    cases.push(case("pod-clone-info", &[&"info", &clone]));
    cases.push(case(
        "pod-clone-scan-map",
        &[&"scan", &"--map", &map1, &clone],
    ));

    let dir = root().join("testdata/golden");
    let bless = std::env::var_os("DELTASCOPE_BLESS").is_some_and(|v| v == "1");
    if bless {
        std::fs::create_dir_all(&dir).expect("golden dir");
    }
    let mut wrong = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for c in &cases {
        assert!(names.insert(c.name.clone()), "two cases named {}", c.name);
        let got = render(c, &norm);
        let file = dir.join(format!("{}.txt", c.name));
        if bless {
            std::fs::write(&file, &got).expect("write golden");
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(want) if want == got => {}
            Ok(want) => wrong.push(format!(
                "{}: differs from {}\n{}",
                c.name,
                file.display(),
                first_difference(&want, &got)
            )),
            Err(e) => wrong.push(format!("{}: {}: {e}", c.name, file.display())),
        }
    }
    if bless {
        // Files of cases that no longer exist would pass unnoticed.
        for e in std::fs::read_dir(&dir).expect("golden dir").flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".txt") && !names.contains(n.trim_end_matches(".txt")) {
                std::fs::remove_file(e.path()).expect("remove stale golden");
            }
        }
        return;
    }
    let on_disk = std::fs::read_dir(&dir)
        .map(|r| r.flatten().count())
        .unwrap_or(0);
    assert_eq!(
        on_disk,
        cases.len(),
        "testdata/golden holds {on_disk} files for {} cases: bless with DELTASCOPE_BLESS=1",
        cases.len()
    );
    assert!(
        wrong.is_empty(),
        "{} of {} golden outputs differ (review, then DELTASCOPE_BLESS=1 cargo test --test it golden):\n\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n\n")
    );
}

/// The first differing line of two texts, with a line of context each side.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = w
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    let from = i.saturating_sub(1);
    let show = |v: &[&str]| {
        v.iter()
            .skip(from)
            .take(3)
            .map(|l| format!("  | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!("line {}:\n want:\n{}\n got:\n{}", i + 1, show(&w), show(&g))
}
