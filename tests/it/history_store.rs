//! The history store under load and under attack: concurrent writers lose no point, a
//! datastore record is all points or none (even under SIGKILL) and one transaction, a failed
//! record still prints the scan, readers never create a store, history can be corrected
//! (delete a point, rename a disk), and disk names from non-UTF-8 paths stay apart. Every
//! test runs twice, on a SQLite file and on a PostgreSQL server (`stores.rs`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::stores::{Kind, PASSWORD, Store, both_stores};
use crate::util::*;

both_stores!(
    eight_concurrent_writers_lose_no_point,
    a_failed_record_still_prints_the_scan,
    a_datastore_record_is_one_transaction_all_or_none,
    readers_never_create_a_store_and_writers_do,
    history_delete_and_rename_correct_the_store,
    non_utf8_paths_stay_separate_disks,
    concurrent_datastore_scans_from_eight_sites_lose_no_point,
);

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
fn history(db: &Store) -> Value {
    json(&[
        OsStr::new("history"),
        OsStr::new("--db"),
        db.arg(),
        OsStr::new("--json"),
    ])
}

fn point_count(db: &Store) -> usize {
    history(db)["disks"]
        .as_array()
        .expect("disks")
        .iter()
        .map(|d| d["points"].as_array().expect("points").len())
        .sum()
}

fn eight_concurrent_writers_lose_no_point(kind: Kind) {
    let d = tempdir();
    // A fresh store for every round: eight processes race to create and migrate it.
    for round in 0..6 {
        let db = Store::new(kind, d.path(), &format!("fresh-{round}"));
        let children: Vec<_> = (0..8)
            .map(|w| {
                Command::new(bin())
                    .args(["--no-cache", "scan", "--record", "--db", db.s(), "--disk"])
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
    let db = Store::new(kind, d.path(), "h");
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let at = format!("2026-10-01T{:02}:{:02}:00Z", i / 60, i % 60);
                    let out = Command::new(bin())
                        .args(["--no-cache", "scan", "--record", "--db", db.s(), "--disk"])
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

/// A store that cannot be written: a file that is not SQLite, or a server that refuses the
/// password. The report is printed all the same; the error names the store and the reason.
fn a_failed_record_still_prints_the_scan(kind: Kind) {
    let d = tempdir();
    let db = Store::new(kind, d.path(), "h");
    let (arg, why) = match db.dbname() {
        None => {
            std::fs::write(db.arg(), vec![b'x'; 4096]).expect("write");
            (db.arg().to_os_string(), "history store")
        }
        Some(name) => {
            let url = crate::stores::server()
                .url(name)
                .replace(PASSWORD, "wrong-password");
            (OsString::from(url), "authentication failed")
        }
    };
    let out = run([
        OsStr::new("scan"),
        OsStr::new("--record"),
        OsStr::new("--db"),
        &arg,
        demo_top().as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("chain of 3 layer(s)"), "stdout: {stdout}");
    assert!(
        stderr.contains(why) && stderr.contains(&db.shown()),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    // The same for a datastore scan, in JSON.
    let out = run([
        OsStr::new("scan"),
        OsStr::new("--json"),
        OsStr::new("--record"),
        OsStr::new("--db"),
        &arg,
        demo().as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("the report is printed");
    assert_eq!(v["vms"].as_array().map(Vec::len), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(why), "{stderr}");
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    if kind == Kind::Postgres {
        assert!(!db.exists(), "a refused connection created tables");
    }
}

fn a_datastore_record_is_one_transaction_all_or_none(kind: Kind) {
    let d = tempdir();
    let n = 40;
    let ds = datastore(d.path(), n);
    let db = Store::new(kind, d.path(), "h");
    let record = |at: &str| {
        let mut c = Command::new(bin());
        c.args(["--no-cache", "scan", "--record", "--db", db.s(), "--at", at])
            .arg(&ds)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    sh(&mut record("2026-10-01T00:00:00Z"));
    assert_eq!(point_count(&db), n);
    // One more scan of every disk: one write transaction, not one per disk.
    let before = db.writes();
    sh(&mut record("2026-10-02T00:00:00Z"));
    assert_eq!(point_count(&db), 2 * n);
    assert_eq!(db.writes(), before + 1, "transactions for {n} points");
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

fn readers_never_create_a_store_and_writers_do(kind: Kind) {
    let d = tempdir();
    // A path that does not exist, or an empty database (no schema).
    let typo = Store::new(kind, d.path(), "typo");
    let out = d.path().join("c.svg");
    let html = d.path().join("r.html");
    let db = || typo.arg().to_os_string();
    let readers: Vec<Vec<OsString>> = vec![
        vec!["history".into(), "--db".into(), db()],
        vec!["forecast".into(), "--db".into(), db()],
        vec![
            "chart".into(),
            "--db".into(),
            db(),
            "-o".into(),
            out.clone().into(),
        ],
        vec!["lun".into(), demo().into(), "--db".into(), db()],
        vec!["scan".into(), demo().into(), "--db".into(), db()],
        vec![
            "report".into(),
            demo_top().into(),
            "--db".into(),
            db(),
            "-o".into(),
            html.clone().into(),
        ],
        vec![
            "history".into(),
            "--db".into(),
            db(),
            "--rename".into(),
            "a".into(),
            "b".into(),
        ],
        vec!["db".into(), "check".into(), "--db".into(), db()],
    ];
    for a in readers {
        let e = fails(1, &a);
        assert!(
            e.contains(&format!("no history store at {}", typo.shown())),
            "{a:?}: {e}"
        );
        assert!(!e.contains(PASSWORD), "{a:?}: {e}");
        assert!(!typo.exists(), "{a:?} created the store");
    }
    // Writers create it (and a file's folder): a datastore scan, one disk, an import.
    let in_new = |name: &str| match kind {
        Kind::Sqlite => Store::new(kind, &d.path().join("new"), name),
        Kind::Postgres => Store::new(kind, d.path(), name),
    };
    let ds_db = in_new("ds");
    ok([
        OsStr::new("scan"),
        demo().as_os_str(),
        OsStr::new("--record"),
        OsStr::new("--db"),
        ds_db.arg(),
    ]);
    assert_eq!(point_count(&ds_db), 1);
    let one_db = in_new("one");
    ok([
        OsStr::new("scan"),
        demo_top().as_os_str(),
        OsStr::new("--record"),
        OsStr::new("--db"),
        one_db.arg(),
    ]);
    assert_eq!(point_count(&one_db), 1);
    let csv = d.path().join("p.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n2026-10-05T08:00:00Z,d,1000000\n",
    )
    .expect("write");
    let imp_db = in_new("imp");
    ok(["import", s(&csv), "--db", imp_db.s()]);
    assert_eq!(point_count(&imp_db), 1);
    // Readers of an existing store made by a writer work; the operator's check agrees.
    ok(["forecast", "--db", imp_db.s()]);
    let check = json(&[
        OsStr::new("db"),
        OsStr::new("check"),
        OsStr::new("--json"),
        OsStr::new("--db"),
        imp_db.arg(),
    ]);
    assert_eq!(check["status"], "ok", "{check}");
    assert_eq!(check["points"], 1);
    assert_eq!(check["disks"], 1);
}

fn import_plain(db: &Store, dir: &Path, rows: &[(&str, &str, u64)]) {
    let mut text = String::from("timestamp,disk,bytes\n");
    for (at, disk, bytes) in rows {
        text.push_str(&format!("{at},{disk},{bytes}\n"));
    }
    let f = dir.join("rows.csv");
    std::fs::write(&f, text).expect("write");
    ok(["import", s(&f), "--db", db.s()]);
}

fn history_delete_and_rename_correct_the_store(kind: Kind) {
    let d = tempdir();
    let db = Store::new(kind, d.path(), "h");
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
    let segs = |db: &Store, disk: &str| -> Vec<(String, u64)> {
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
        db.s(),
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
            db.s(),
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
        db.s(),
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
            db.s(),
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
    let e = fails(1, ["history", "--db", db.s(), "--rename", "nope", "x"]);
    assert!(e.contains("nope"), "{e}");
    // Management never creates a store.
    let typo = Store::new(kind, d.path(), "typo");
    let e = fails(1, ["history", "--db", typo.s(), "--rename", "a", "b"]);
    assert!(e.contains("no history store at"), "{e}");
    let e = fails(
        1,
        [
            "history",
            "--db",
            typo.s(),
            "--delete",
            "--disk",
            "a",
            "--at",
            "2026-10-12T08:00:00Z",
        ],
    );
    assert!(e.contains("no history store at"), "{e}");
    assert!(!typo.exists());
}

fn non_utf8_paths_stay_separate_disks(kind: Kind) {
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
    let db = Store::new(kind, d.path(), "ds");
    ok([
        OsStr::new("scan"),
        ds.as_os_str(),
        OsStr::new("--record"),
        OsStr::new("--db"),
        db.arg(),
    ]);
    let names = |db: &Store| -> Vec<String> {
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
    let one = Store::new(kind, d.path(), "one");
    for top in &tops {
        ok([
            OsStr::new("scan"),
            top.as_os_str(),
            OsStr::new("--record"),
            OsStr::new("--db"),
            one.arg(),
        ]);
    }
    let mut a = ds_names.clone();
    let mut b = names(&one);
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

/// Eight hosts scan datastores at once into one store, each under its own `--site`; their
/// paths are the same (the same tree here, as two hosts mounting their datastores at one
/// mount point would see), yet no point is lost and no two hosts' disks mix. Without a
/// site the same paths are one disk: the second host's scan is a duplicate.
fn concurrent_datastore_scans_from_eight_sites_lose_no_point(kind: Kind) {
    let d = tempdir();
    let n = 6;
    let ds = datastore(d.path(), n);
    for round in 0..2 {
        let db = Store::new(kind, d.path(), &format!("sites-{round}"));
        for at in ["2026-10-01T00:00:00Z", "2026-10-08T00:00:00Z"] {
            let children: Vec<_> = (0..8)
                .map(|w| {
                    Command::new(bin())
                        .args(["--no-cache", "scan", "--record", "--db", db.s(), "--at", at])
                        .arg(format!("--site=host-{w}"))
                        .arg(&ds)
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
        }
        let h = history(&db);
        let disks = h["disks"].as_array().expect("disks");
        assert_eq!(disks.len(), 8 * n, "round {round}");
        let canon = std::fs::canonicalize(&ds).expect("canonical");
        for disk in disks {
            let name = disk["disk"].as_str().expect("name");
            let (site, path) = name.split_once(':').expect("SITE:PATH");
            assert!(site.starts_with("host-"), "{name}");
            assert!(path.starts_with(s(&canon)), "{name}");
            assert_eq!(disk["points"].as_array().map(Vec::len), Some(2), "{name}");
        }
    }
    // The same paths without a site: one disk each, the second scan a duplicate.
    let db = Store::new(kind, d.path(), "no-site");
    for _ in 0..2 {
        let out = run([
            OsStr::new("scan"),
            OsStr::new("--record"),
            OsStr::new("--at"),
            OsStr::new("2026-10-01T00:00:00Z"),
            OsStr::new("--db"),
            db.arg(),
            ds.as_os_str(),
        ]);
        assert!(out.status.success());
    }
    assert_eq!(point_count(&db), n);
    // A bad site is a usage error before anything is scanned.
    let e = fails(
        2,
        [
            OsStr::new("scan"),
            OsStr::new("--record"),
            OsStr::new("--site"),
            OsStr::new("paris/2"),
            OsStr::new("--db"),
            db.arg(),
            ds.as_os_str(),
        ],
    );
    assert!(e.contains("--site"), "{e}");
}
