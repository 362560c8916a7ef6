//! What a new user sees in the text tables (issue 17, item 6): names cut in the middle so
//! that `-000001` survives, empty tenths of the allocation order shown, a hint when a base is
//! given where a top is expected, and colour only on a terminal.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::util::*;

/// The demo chain copied into `dir`, its top renamed to `top` (the parent hint names the
/// middle layer, which keeps its name).
fn demo_chain_with_top(dir: &Path, top: &str) -> PathBuf {
    let demo = root().join("testdata/demo");
    for name in ["win10-base.vmdk", "win10-clone-000001.vmdk"] {
        std::fs::copy(demo.join(name), dir.join(name)).unwrap();
    }
    let path = dir.join(top);
    std::fs::copy(demo.join("win10-clone-000002.vmdk"), &path).unwrap();
    path
}

/// Issue 17: a layer name longer than the column was cut at its end, losing the
/// `-000002` that tells a snapshot from its parent.
#[test]
fn long_names_are_cut_in_the_middle() {
    let dir = tempdir();
    let name = "win10-finance-department-pool-clone-0017-000002.vmdk";
    let top = demo_chain_with_top(dir.path(), name);
    let out = ok([OsStr::new("scan"), top.as_os_str()]);
    let row = out
        .lines()
        .find(|l| l.starts_with("2 "))
        .unwrap_or_else(|| panic!("no row of layer 2:\n{out}"));
    let cell: String = row.chars().skip(4).take(32).collect();
    assert!(cell.contains('…'), "{row}");
    assert!(cell.starts_with("win10-finance-"), "{row}");
    assert!(cell.ends_with("0017-000002.vmdk"), "{row}");
}

/// Issue 17: `scan` of a base printed "fresh 100 %" with nothing to say it was a base;
/// one-layer chains now get a hint naming what to give instead, and a delta none. `scan`'s
/// table says it once, in its verdict; JSON output and `blame` get it on stderr.
#[test]
fn a_base_given_where_a_top_is_expected_gets_a_hint() {
    let demo = root().join("testdata/demo");
    let base = demo.join("win10-base.vmdk");
    let hint = "has no parent: it is a base";
    for args in [&["scan", "--json"][..], &["blame"]] {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.push(base.as_os_str());
        let out = run(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("deltascope: note: win10-base.vmdk {hint}"))
                && err.contains("give its delta, the top of its chain"),
            "{args:?}: {err}"
        );
    }
    let out = run([OsStr::new("scan"), base.as_os_str()]);
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!err.contains(hint), "said twice: {err}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(hint) && flat.contains("scan its delta, the top of its chain"),
        "{text}"
    );
    let out = run([
        OsStr::new("scan"),
        demo.join("win10-clone-000002.vmdk").as_os_str(),
    ]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(hint),
        "a delta got the hint"
    );
}

/// Issue 17: `blame --help`'s first example named testdata/ntfs/blame/delta.vmdk, which
/// exists only gzipped. Its example lines, run as written in a copy of testdata, work.
#[test]
fn blame_help_examples_start_with_files_that_exist() {
    let help = ok(["blame", "--help"]);
    let lines: Vec<&str> = help
        .split("Examples:\n")
        .nth(1)
        .expect("examples")
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let first = lines[0];
    let words: Vec<&str> = first.split_whitespace().collect();
    let files: Vec<&&str> = words
        .iter()
        .filter(|w| w.starts_with("testdata/"))
        .collect();
    assert!(!files.is_empty(), "{first}");
    for f in &files {
        assert!(root().join(f).is_file(), "{f} does not exist");
    }
    // Run every example up to the first `deltascope blame` in a copy of what they read.
    let dir = tempdir();
    let blame = dir.path().join("testdata/ntfs/blame");
    std::fs::create_dir_all(&blame).unwrap();
    for name in ["base.vmdk.gz", "delta.vmdk.gz"] {
        std::fs::copy(
            root().join("testdata/ntfs/blame").join(name),
            blame.join(name),
        )
        .unwrap();
    }
    let n = lines
        .iter()
        .position(|l| l.starts_with("deltascope blame"))
        .expect("a blame example");
    let script = lines[..=n].join("\n");
    let bin_dir = bin().parent().unwrap();
    let out = std::process::Command::new("bash")
        .args(["-euc", &script])
        .current_dir(dir.path())
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("DELTASCOPE_CACHE", cache_dir())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Blame of testdata/ntfs/blame/delta.vmdk"),
        "{text}"
    );
}

/// Runs deltascope under `script`, so that its stdout is a terminal; returns what it wrote.
fn on_a_terminal(args: &str, env: &[(&str, &str)]) -> String {
    require("script");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &format!("{} {args}", bin().display()), "/dev/null"])
        .env("DELTASCOPE_CACHE", cache_dir())
        .env_remove("NO_COLOR")
        .env("TERM", "xterm");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run script");
    // 0, or 1 for a datastore with a failed disk.
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issue 17: colour on a terminal (the class headings, FAILED rows), none with NO_COLOR or
/// when stdout is not a terminal (piped output, and so the golden files, stay plain).
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    // --quiet: script merges stderr, where a progress bar would draw.
    let scan = format!("scan --quiet {}", demo.display());
    let tty = on_a_terminal(&scan, &[]);
    assert!(
        tty.contains("\x1b[31m              fresh\x1b[0m"),
        "{tty:?}"
    );
    assert!(
        tty.contains("\x1b[33m        overwritten\x1b[0m"),
        "{tty:?}"
    );
    let plain = on_a_terminal(&scan, &[("NO_COLOR", "1")]);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    let dumb = on_a_terminal(&scan, &[("TERM", "dumb")]);
    assert!(!dumb.contains('\x1b'), "{dumb:?}");
    let piped = ok([OsStr::new("scan"), demo.as_os_str()]);
    assert!(!piped.contains('\x1b') && !piped.contains('\u{fdd0}'));
    // What the terminal shows is the piped text with colour added, nothing else.
    let stripped = tty
        .replace("\r\n", "\n")
        .replace("\x1b[0m", "")
        .replace("\x1b[31m", "")
        .replace("\x1b[33m", "")
        .replace("\x1b[36m", "")
        .replace("\x1b[90m", "");
    assert_eq!(stripped, piped);
    // A datastore folder whose one disk has lost its parent: the FAILED row is bold red.
    let dir = tempdir();
    std::fs::copy(&demo, dir.path().join("orphan-000002.vmdk")).unwrap();
    let ds = on_a_terminal(&format!("scan --quiet {}", dir.path().display()), &[]);
    let row = ds
        .lines()
        .find(|l| l.contains("FAILED (see below)"))
        .unwrap_or_else(|| panic!("{ds:?}"));
    assert!(
        row.starts_with("\x1b[1;31m") && row.trim_end().ends_with("\x1b[0m"),
        "{row:?}"
    );
}
