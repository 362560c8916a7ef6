//! Output plumbing and terminal safety (issue 15): every text output and stderr line goes
//! through one sanitizing writer; JSON and CSV carry real names, CSV cells that a spreadsheet
//! would run are neutralised; a closed stdout ends a run quietly and a full one is an error,
//! never a panic.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// A folder name that sets the terminal's title and rings its bell.
const HOSTILE: &str = "vm\u{1b}]0;owned\u{7}\u{1b}[2J";

fn copy_demo(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for f in std::fs::read_dir(root().join("testdata/demo")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    dir.join("win10-clone-000002.vmdk")
}

fn no_escape(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{what} reached the terminal with raw control characters:\n{}",
        text.escape_debug()
    );
}

fn args(a: &[&str], db: &Path) -> Vec<OsString> {
    a.iter()
        .map(OsString::from)
        .chain([OsString::from("--db"), db.as_os_str().to_owned()])
        .collect()
}

/// `scan DIR --record`'s lines, `history`, `forecast` and the "known disks" error name a
/// disk by its folder: none of them may pass the folder's escape sequences to the terminal.
#[test]
fn names_from_folders_never_reach_the_terminal_raw() {
    let t = tempdir();
    let store = t.path().join("store");
    copy_demo(&store.join(HOSTILE));
    let db = t.path().join("h.sqlite");
    // A first point of another disk creates the store (a datastore record expects one).
    let seed = copy_demo(&t.path().join("seed"));
    ok(args(
        &[
            "scan",
            seed.to_str().unwrap(),
            "--record",
            "--disk",
            "seed",
            "--at",
            "2026-10-01",
        ],
        &db,
    ));
    for at in ["2026-11-01T08:00:00Z", "2026-11-08T08:00:00Z"] {
        let out = run(args(
            &["scan", store.to_str().unwrap(), "--record", "--at", at],
            &db,
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        no_escape("scan --record", &out.stderr);
        no_escape("scan DIR (text)", &out.stdout);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("vm\\u{1b}]0;owned"),
            "the record line names the disk, escaped"
        );
    }
    let out = run(args(&["history"], &db));
    assert!(out.status.success());
    no_escape("history", &out.stdout);
    no_escape("history (stderr)", &out.stderr);
    let out = run(args(&["forecast"], &db));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty(), "a forecast was printed");
    no_escape("forecast", &out.stdout);
    let out = run(args(&["history", "--disk", "nope"], &db));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("known disks"));
    no_escape("the known-disks error", &out.stderr);

    // The data outputs keep the real name.
    let out = run(args(&["history", "--json"], &db));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["disks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["disk"].as_str().unwrap().contains(HOSTILE)),
        "history --json carries the real name"
    );
}

/// Two files, `a<LF>b.txt` and one literally named `a\u{a}b.txt`, used to be merged into one
/// group because names were escaped when read. JSON and CSV carry both real names; the text
/// shows both, escaped.
#[test]
fn blame_keeps_two_files_whose_escaped_names_agree_apart() {
    require("mkntfs");
    require("ntfscp");
    require("qemu-img");
    let t = tempdir();
    let base_raw = t.path().join("base.raw");
    std::fs::File::create(&base_raw)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    sh(Command::new("mkntfs")
        .args(["-q", "-F", "-Q", "-c", "4096"])
        .arg(&base_raw));
    let top_raw = t.path().join("top.raw");
    std::fs::copy(&base_raw, &top_raw).unwrap();
    let (newline, literal) = ("a\nb.txt", "a\\u{a}b.txt");
    for (name, len) in [(newline, 12288), (literal, 20480)] {
        let src = t.path().join("content");
        std::fs::write(&src, vec![name.len() as u8; len]).unwrap();
        sh(Command::new("ntfscp")
            .arg("-f")
            .arg(&top_raw)
            .arg(&src)
            .arg(name));
    }
    let base = t.path().join("base.vmdk");
    let delta = t.path().join("delta.vmdk");
    sh(Command::new("qemu-img")
        .args(["convert", "-O", "vmdk"])
        .arg(&base_raw)
        .arg(&base));
    sh(Command::new("qemu-img")
        .args(["convert", "-O", "vmdk", "-F", "vmdk", "-B"])
        .arg(&base)
        .arg(&top_raw)
        .arg(&delta));

    let v: Value = serde_json::from_str(&ok([
        OsStr::new("blame"),
        OsStr::new("--json"),
        delta.as_os_str(),
    ]))
    .unwrap();
    let bytes_of = |path: &str| -> Vec<u64> {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["path"] == format!("/{path}"))
            .map(|g| g["bytes"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(bytes_of(newline), [12288], "{newline:?} in blame --json");
    assert_eq!(bytes_of(literal), [20480], "{literal:?} in blame --json");

    let csv = ok([OsStr::new("blame"), OsStr::new("--csv"), delta.as_os_str()]);
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let paths: Vec<String> = rows
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .filter(|p| p.ends_with("b.txt"))
        .collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths.contains(&format!("/{newline}")), "{paths:?}");
    assert!(paths.contains(&format!("/{literal}")), "{paths:?}");

    let text = run([OsStr::new("blame"), delta.as_os_str()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(
        text.matches("/a\\u{a}b.txt").count(),
        2,
        "both names shown, escaped, each on its own line:\n{text}"
    );
}

/// CSV cells that begin with `=`, `+`, `-`, `@`, a tab or CR get a leading `'` in every CSV
/// output; plain numbers stay numbers.
#[test]
fn csv_cells_that_spreadsheets_would_run_are_neutralised() {
    let t = tempdir();
    let store = t.path().join("store");
    copy_demo(&store);
    let spec = format!("@SUM(A1:A9)={}", store.display());
    let out = ok(["scan", "--lun", &spec, "--csv"]);
    let mut r = csv::Reader::from_reader(out.as_bytes());
    let row = r.records().next().unwrap().unwrap();
    assert_eq!(&row[0], "'@SUM(A1:A9)", "{out}");

    let db = t.path().join("h.sqlite");
    let top = store.join("win10-clone-000002.vmdk");
    ok(args(
        &[
            "scan",
            top.to_str().unwrap(),
            "--record",
            "--disk",
            "@SUM(1+1)",
            "--at",
            "2026-11-01",
        ],
        &db,
    ));
    ok(args(
        &[
            "scan",
            top.to_str().unwrap(),
            "--record",
            "--disk=-2+3",
            "--at",
            "2026-11-01",
        ],
        &db,
    ));
    let out = ok(args(&["history", "--csv"], &db));
    let mut r = csv::Reader::from_reader(out.as_bytes());
    let disks: Vec<String> = r.records().map(|x| x.unwrap()[0].to_string()).collect();
    assert_eq!(disks, ["'-2+3", "'@SUM(1+1)"], "{out}");
    assert!(
        out.lines().nth(1).unwrap().contains(",0,"),
        "numbers untouched: {out}"
    );
}

/// Runs deltascope with its stdout closed before it writes anything.
fn closed_stdout(a: &[&OsStr]) -> std::process::Output {
    let mut child = Command::new(bin())
        .args(a)
        .env("DELTASCOPE_CACHE", cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait")
}

/// `scan DIR --csv | head -1` and `history --csv | head -1` exited 1 with "Broken pipe" once
/// the output passed the CSV writer's buffer: 80 disks, and 1000 points.
#[test]
fn csv_into_a_closed_pipe_ends_quietly() {
    let t = tempdir();
    let store = t.path().join("store");
    for i in 0..80 {
        copy_demo(&store.join(format!("vm-{i:02}")));
    }
    let db = t.path().join("h.sqlite");
    let import = t.path().join("points.csv");
    let mut points = String::from("timestamp,disk,bytes\n");
    for i in 0..1000u64 {
        points.push_str(&format!(
            "2026-01-01T00:00:00Z,disk-{i:04}-with-a-long-name,{}\n",
            i * 4096
        ));
    }
    std::fs::write(&import, points).unwrap();
    ok(args(&["import", import.to_str().unwrap()], &db));
    for a in [
        vec![OsStr::new("scan"), store.as_os_str(), OsStr::new("--csv")],
        vec![
            OsStr::new("history"),
            OsStr::new("--csv"),
            OsStr::new("--db"),
            db.as_os_str(),
        ],
    ] {
        let out = closed_stdout(&a);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `completions bash > /dev/full` panicked (exit 101); every writer now fails with exit 1.
#[test]
fn a_full_stdout_is_an_error_not_a_panic() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    for a in [
        vec![OsStr::new("completions"), OsStr::new("bash")],
        vec![OsStr::new("man")],
        vec![OsStr::new("scan"), demo.as_os_str()],
        vec![OsStr::new("info"), OsStr::new("--json"), demo.as_os_str()],
    ] {
        let out = Command::new(bin())
            .args(&a)
            .env("DELTASCOPE_CACHE", cache_dir())
            .stdout(full())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{a:?}:\n{stderr}");
        assert!(
            stderr.contains("No space left on device"),
            "{a:?}:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{a:?}:\n{stderr}");
    }
    // A full stderr changes nothing: the error is still exit 1, without a panic.
    let out = Command::new(bin())
        .args(["info", "/nonexistent.vmdk"])
        .stderr(full())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
}
