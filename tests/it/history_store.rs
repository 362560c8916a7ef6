//! The history store under load and under attack: concurrent writers lose no point, a
//! datastore record is all points or none (even under SIGKILL) and one transaction, a failed
//! record still prints the scan, readers never create a store, history can be corrected
//! (delete a point, rename a disk), and disk names from non-UTF-8 paths stay apart.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn demo() -> PathBuf {
    root().join("testdata/demo")
}

fn demo_top() -> PathBuf {
    demo().join("win10-clone-000002.vmdk")
}

/// A datastore of `n` VM folders, each a hard-linked copy of the demo chain (three layers).
fn datastore(dir: &Path, n: usize) -> PathBuf {
    let ds = dir.join("ds");
    for i in 0..n {
        let vm = ds.join(format!("vm-{i:04}"));
        std::fs::create_dir_all(&vm).expect("mkdir");
        for f in std::fs::read_dir(demo()).expect("demo").flatten() {
            std::fs::hard_link(f.path(), vm.join(f.file_name())).expect("link");
        }
    }
    ds
}

/// `history --json` of the store, every disk with its points.
fn history(db: &Path) -> Value {
    json(&[
        OsStr::new("history"),
        OsStr::new("--db"),
        db.as_os_str(),
        OsStr::new("--json"),
    ])
}

fn point_count(db: &Path) -> usize {
    history(db)["disks"]
        .as_array()
        .expect("disks")
        .iter()
        .map(|d| d["points"].as_array().expect("points").len())
        .sum()
}

/// SQLite's file change counter (header bytes 24..28): one more for every write transaction
/// committed in rollback-journal mode (the SQLite file format, section 1.3.8).
fn change_counter(db: &Path) -> u32 {
    let b = std::fs::read(db).expect("read store");
    u32::from_be_bytes(b[24..28].try_into().expect("4 bytes"))
}

#[test]
fn eight_concurrent_writers_lose_no_point() {
    let d = tempdir();
    // A fresh store for every round: eight processes race to create and migrate it.
    for round in 0..6 {
        let db = d.path().join(format!("fresh-{round}.sqlite"));
        let children: Vec<_> = (0..8)
            .map(|w| {
                Command::new(bin())
                    .args(["--no-cache", "scan", "--record", "--db", s(&db), "--disk"])
                    .arg(format!("w{w}"))
                    .args(["--at", "2026-10-01T00:00:00Z"])
                    .arg(demo_top())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(point_count(&db), 8, "round {round}");
    }
    // Eight writers recording 100 points each into one store at once.
    let db = d.path().join("h.sqlite");
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let at = format!("2026-10-01T{:02}:{:02}:00Z", i / 60, i % 60);
                    let out = Command::new(bin())
                        .args(["--no-cache", "scan", "--record", "--db", s(&db), "--disk"])
                        .arg(format!("w{w}"))
                        .args(["--at", &at])
                        .arg(demo_top())
                        .output()
                        .expect("run");
                    assert!(
                        out.status.success(),
                        "writer {w} point {i}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let h = history(&db);
    let disks = h["disks"].as_array().expect("disks");
    assert_eq!(disks.len(), 8);
    for disk in disks {
        assert_eq!(
            disk["points"].as_array().map(Vec::len),
            Some(100),
            "{}",
            disk["disk"]
        );
    }
}

#[test]
fn a_failed_record_still_prints_the_scan() {
    let d = tempdir();
    let db = d.path().join("h.sqlite");
    std::fs::write(&db, vec![b'x'; 4096]).expect("write");
    let out = run([
        OsStr::new("scan"),
        OsStr::new("--record"),
        OsStr::new("--db"),
        db.as_os_str(),
        demo_top().as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("chain of 3 layer(s)"), "stdout: {stdout}");
    assert!(
        stderr.contains("history store") && stderr.contains(s(&db)),
        "{stderr}"
    );
    // The same for a datastore scan, in JSON.
    let out = run([
        OsStr::new("scan"),
        OsStr::new("--json"),
        OsStr::new("--record"),
        OsStr::new("--db"),
        db.as_os_str(),
        demo().as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("the report is printed");
    assert_eq!(v["vms"].as_array().map(Vec::len), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("history store"));
}

#[test]
fn a_datastore_record_is_one_transaction_all_or_none() {
    let d = tempdir();
    let n = 40;
    let ds = datastore(d.path(), n);
    let db = d.path().join("h.sqlite");
    let record = |at: &str| {
        let mut c = Command::new(bin());
        c.args(["--no-cache", "scan", "--record", "--db", s(&db), "--at", at])
            .arg(&ds)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    sh(&mut record("2026-10-01T00:00:00Z"));
    assert_eq!(point_count(&db), n);
    // One more scan of every disk: one write transaction, not one per disk.
    let before = change_counter(&db);
    sh(&mut record("2026-10-02T00:00:00Z"));
    assert_eq!(point_count(&db), 2 * n);
    assert_eq!(
        change_counter(&db),
        before + 1,
        "transactions for {n} points"
    );
    // Killed inside the transaction (the test hook pauses it after half the points are
    // written): none of the scan's points stay.
    let marker = d.path().join("paused");
    let mut child = record("2026-10-03T00:00:00Z")
        .env("DELTASCOPE_TEST_PAUSE_IN_RECORD", &marker)
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the hook never paused"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "exited before the hook"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    assert_eq!(point_count(&db), 2 * n, "a killed record left some points");
    // Killed at other moments: always a whole scan or nothing.
    for (i, delay) in [50u64, 120, 200, 300, 450].into_iter().enumerate() {
        let mut child = record(&format!("2026-10-1{i}T00:00:00Z"))
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        child.wait().expect("wait");
        let count = point_count(&db);
        assert_eq!(count % n, 0, "kill after {delay} ms left {count} points");
    }
}

#[test]
fn readers_never_create_a_store_and_writers_do() {
    let d = tempdir();
    let typo = d.path().join("typo.sqlite");
    let out = d.path().join("c.svg");
    let html = d.path().join("r.html");
    let readers: Vec<Vec<OsString>> = vec![
        vec!["history".into(), "--db".into(), typo.clone().into()],
        vec!["forecast".into(), "--db".into(), typo.clone().into()],
        vec![
            "chart".into(),
            "--db".into(),
            typo.clone().into(),
            "-o".into(),
            out.clone().into(),
        ],
        vec![
            "lun".into(),
            demo().into(),
            "--db".into(),
            typo.clone().into(),
        ],
        vec![
            "scan".into(),
            demo().into(),
            "--db".into(),
            typo.clone().into(),
        ],
        vec![
            "report".into(),
            demo_top().into(),
            "--db".into(),
            typo.clone().into(),
            "-o".into(),
            html.clone().into(),
        ],
    ];
    for a in readers {
        let e = fails(1, &a);
        assert!(
            e.contains(&format!("no history store at {}", typo.display())),
            "{a:?}: {e}"
        );
        assert!(!typo.exists(), "{a:?} created the store");
    }
    // Writers create it (and its folder): a datastore scan, one disk, an import.
    let ds_db = d.path().join("new/ds.sqlite");
    ok([
        OsStr::new("scan"),
        demo().as_os_str(),
        OsStr::new("--record"),
        OsStr::new("--db"),
        ds_db.as_os_str(),
    ]);
    assert_eq!(point_count(&ds_db), 1);
    let one_db = d.path().join("new/one.sqlite");
    ok([
        OsStr::new("scan"),
        demo_top().as_os_str(),
        OsStr::new("--record"),
        OsStr::new("--db"),
        one_db.as_os_str(),
    ]);
    assert_eq!(point_count(&one_db), 1);
    let csv = d.path().join("p.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n2026-10-05T08:00:00Z,d,1000000\n",
    )
    .expect("write");
    let imp_db = d.path().join("new/imp.sqlite");
    ok(["import", s(&csv), "--db", s(&imp_db)]);
    assert_eq!(point_count(&imp_db), 1);
    // A datastore scan that records into a new store reads growth from nowhere yet: no error.
    // Readers of an existing store made by a writer work.
    ok(["forecast", "--db", s(&imp_db)]);
}

fn import_plain(db: &Path, dir: &Path, rows: &[(&str, &str, u64)]) {
    let mut text = String::from("timestamp,disk,bytes\n");
    for (at, disk, bytes) in rows {
        text.push_str(&format!("{at},{disk},{bytes}\n"));
    }
    let f = dir.join("rows.csv");
    std::fs::write(&f, text).expect("write");
    ok(["import", s(&f), "--db", s(db)]);
}

#[test]
fn history_delete_and_rename_correct_the_store() {
    let d = tempdir();
    let db = d.path().join("h.sqlite");
    // A bad point (0 bytes) split the series into two segments.
    import_plain(
        &db,
        d.path(),
        &[
            ("2026-10-05T08:00:00Z", "vdi-01", 1_000_000),
            ("2026-10-12T08:00:00Z", "vdi-01", 0),
            ("2026-10-19T08:00:00Z", "vdi-01", 3_000_000),
            ("2026-10-19T08:00:00Z", "vdi-02", 5_000_000),
        ],
    );
    let segs = |db: &Path, disk: &str| -> Vec<(String, u64)> {
        let h = history(db);
        h["disks"]
            .as_array()
            .expect("disks")
            .iter()
            .filter(|d| d["disk"] == disk)
            .flat_map(|d| d["points"].as_array().expect("points").clone())
            .map(|p| {
                (
                    p["at"].as_str().expect("at").to_string(),
                    p["segment"].as_u64().expect("seg"),
                )
            })
            .collect()
    };
    assert_eq!(
        segs(&db, "vdi-01").iter().map(|p| p.1).collect::<Vec<_>>(),
        [0, 1, 1]
    );
    let out = ok([
        "history",
        "--db",
        s(&db),
        "--delete",
        "--disk",
        "vdi-01",
        "--at",
        "2026-10-12T08:00:00Z",
    ]);
    // Before and after are printed.
    let (before, after) = out.split_once("after").expect("before and after");
    assert!(before.contains("2026-10-12T08:00:00Z"), "{out}");
    assert!(
        !after.contains("2026-10-12T08:00:00Z") && after.contains("2026-10-19T08:00:00Z"),
        "{out}"
    );
    // The series is one segment again.
    assert_eq!(
        segs(&db, "vdi-01"),
        [
            ("2026-10-05T08:00:00Z".to_string(), 0),
            ("2026-10-19T08:00:00Z".to_string(), 0)
        ]
    );
    // A point that is not there: exit 1, nothing changes.
    let e = fails(
        1,
        [
            "history",
            "--db",
            s(&db),
            "--delete",
            "--disk",
            "vdi-01",
            "--at",
            "2026-10-12T08:00:00Z",
        ],
    );
    assert!(
        e.contains("2026-10-12T08:00:00Z") && e.contains("vdi-01"),
        "{e}"
    );
    // Rename: the points move; printed before and after.
    let out = ok([
        "history",
        "--db",
        s(&db),
        "--rename",
        "vdi-01",
        "vdi-01-renamed",
    ]);
    assert!(
        out.contains("vdi-01-renamed") && out.contains("after"),
        "{out}"
    );
    assert!(segs(&db, "vdi-01").is_empty());
    assert_eq!(segs(&db, "vdi-01-renamed").len(), 2);
    // Onto a disk with a point at the same time: refused, nothing moves.
    let e = fails(
        1,
        [
            "history",
            "--db",
            s(&db),
            "--rename",
            "vdi-01-renamed",
            "vdi-02",
        ],
    );
    assert!(
        e.contains("2026-10-19T08:00:00Z") && e.contains("vdi-02"),
        "{e}"
    );
    assert_eq!(segs(&db, "vdi-01-renamed").len(), 2);
    assert_eq!(segs(&db, "vdi-02").len(), 1);
    // Unknown disk.
    let e = fails(1, ["history", "--db", s(&db), "--rename", "nope", "x"]);
    assert!(e.contains("nope"), "{e}");
    // Management never creates a store.
    let typo = d.path().join("typo.sqlite");
    let e = fails(1, ["history", "--db", s(&typo), "--rename", "a", "b"]);
    assert!(e.contains("no history store at"), "{e}");
    assert!(!typo.exists());
}

#[test]
fn non_utf8_paths_stay_separate_disks() {
    let d = tempdir();
    let ds = d.path().join("ds");
    let mut tops = Vec::new();
    for name in [&b"vm\xe9"[..], b"vm\xe8", "vmé".as_bytes()] {
        let vm = ds.join(OsStr::from_bytes(name));
        std::fs::create_dir_all(&vm).expect("mkdir");
        for f in std::fs::read_dir(demo()).expect("demo").flatten() {
            std::fs::hard_link(f.path(), vm.join(f.file_name())).expect("link");
        }
        tops.push(vm.join("win10-clone-000002.vmdk"));
    }
    let db = d.path().join("ds.sqlite");
    ok([
        OsStr::new("scan"),
        ds.as_os_str(),
        OsStr::new("--record"),
        OsStr::new("--db"),
        db.as_os_str(),
    ]);
    let names = |db: &Path| -> Vec<String> {
        history(db)["disks"]
            .as_array()
            .expect("disks")
            .iter()
            .map(|d| d["disk"].as_str().expect("disk").to_string())
            .collect()
    };
    let ds_names = names(&db);
    assert_eq!(ds_names.len(), 3, "{ds_names:?}");
    let canon = std::fs::canonicalize(&ds).expect("canonical");
    let base = s(&canon);
    // Valid UTF-8 is kept as it is; invalid bytes are escaped as \xNN.
    assert!(
        ds_names.contains(&format!("{base}/vmé/win10-clone-000002.vmdk")),
        "{ds_names:?}"
    );
    assert!(
        ds_names.contains(&format!("{base}/vm\\xE9/win10-clone-000002.vmdk")),
        "{ds_names:?}"
    );
    assert!(
        ds_names.contains(&format!("{base}/vm\\xE8/win10-clone-000002.vmdk")),
        "{ds_names:?}"
    );
    // One disk at a time gives the same names.
    let one = d.path().join("one.sqlite");
    for top in &tops {
        ok([
            OsStr::new("scan"),
            top.as_os_str(),
            OsStr::new("--record"),
            OsStr::new("--db"),
            one.as_os_str(),
        ]);
    }
    let mut a = ds_names.clone();
    let mut b = names(&one);
    a.sort();
    b.sort();
    assert_eq!(a, b);
}
