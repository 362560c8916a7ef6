//! The command line itself: help, version, usage errors and their exit codes.

use crate::util::*;

#[test]
fn help_lists_every_subcommand_and_the_exit_codes() {
    let out = ok(["--help"]);
    for word in [
        "info",
        "map",
        "scan",
        "Exit codes",
        "--no-mmap",
        "--strict",
        "--threads",
    ] {
        assert!(out.contains(word), "--help lacks {word}:\n{out}");
    }
    for sub in [
        "info", "map", "scan", "history", "import", "forecast", "chart", "lun",
    ] {
        assert!(out.contains(sub), "--help lacks {sub}:\n{out}");
        let h = ok([sub, "--help"]);
        assert!(h.contains("Example"), "{sub} --help has no example:\n{h}");
    }
    assert!(ok(["--version"]).starts_with("deltascope "));
}

/// Issue 17: the options of reading disks were clap globals, repeated in the help of every
/// subcommand (`man`'s and `history`'s included). They are now grouped under one heading in
/// the subcommands that read disks, absent from the others, and still accepted before the
/// subcommand.
#[test]
fn disk_options_are_grouped_and_only_where_they_apply() {
    const DISK: [&str; 8] = [
        "--threads",
        "--no-mmap",
        "--strict",
        "--max-depth",
        "--no-cache",
        "--confine",
        "--quiet",
        "--map",
    ];
    for sub in ["scan", "blame", "lun", "report"] {
        let h = ok([sub, "--help"]);
        let (_, group) = h
            .split_once("\nReading disks:\n")
            .unwrap_or_else(|| panic!("{sub} --help has no 'Reading disks' heading:\n{h}"));
        let group = group.split("\n\n\n").next().unwrap_or(group);
        for flag in DISK {
            assert!(
                group.contains(&format!("      {flag}")),
                "{sub}: {flag} not under 'Reading disks':\n{h}"
            );
            assert_eq!(
                h.matches(&format!("      {flag}")).count(),
                1,
                "{sub}: {flag}"
            );
        }
    }
    for sub in ["info", "map"] {
        let h = ok([sub, "--help"]);
        assert!(h.contains("Reading disks:\n      --no-mmap"), "{sub}:\n{h}");
        assert!(!h.contains("--threads"), "{sub} does not classify:\n{h}");
    }
    for (sub, allowed) in [
        ("history", &["--tz"][..]),
        ("import", &["--tz"]),
        ("forecast", &[]),
        ("chart", &[]),
        ("completions", &[]),
        ("man", &[]),
    ] {
        let h = ok([sub, "--help"]);
        assert!(!h.contains("Reading disks"), "{sub}:\n{h}");
        for flag in DISK.iter().chain(&["--tz"]) {
            assert_eq!(
                h.contains(&format!("  {flag} ")) || h.contains(&format!("  {flag}\n")),
                allowed.contains(flag),
                "{sub} --help and {flag}:\n{h}"
            );
        }
        let lines = h.lines().count();
        assert!(lines < 60, "{sub} --help is {lines} lines:\n{h}");
    }
    // Given before the subcommand they still apply; after a subcommand that does not read
    // disks they are refused.
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    let before = ok([
        "--no-cache".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
        "scan".as_ref(),
        "--json".as_ref(),
        demo.as_os_str(),
    ]);
    let after = ok([
        "scan".as_ref(),
        "--json".as_ref(),
        "--no-cache".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
        demo.as_os_str(),
    ]);
    assert_eq!(untimed(&before), untimed(&after));
    let e = fails(2, ["history", "--threads", "2"]);
    assert!(e.contains("unexpected argument '--threads'"), "{e}");
}

#[test]
fn usage_errors_exit_2() {
    fails(2, ["scan"]);
    fails(2, ["frobnicate"]);
    fails(2, ["scan", "--threads", "lots", "x.vmdk"]);
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    let e = fails(
        2,
        [
            "scan".as_ref(),
            "--threads".as_ref(),
            "0".as_ref(),
            demo.as_os_str(),
        ],
    );
    assert!(e.contains("--threads must be at least 1"), "{e}");
    let e = fails(
        2,
        [
            "map".as_ref(),
            demo.as_os_str(),
            "--layer".as_ref(),
            "9".as_ref(),
        ],
    );
    assert!(e.contains("--layer 9: the chain has 3 layer(s)"), "{e}");
}

#[test]
fn a_missing_file_exits_1_and_names_it() {
    let e = fails(1, ["scan", "/nonexistent/disk.vmdk"]);
    assert!(
        e.contains("/nonexistent/disk.vmdk") && e.contains("No such file"),
        "{e}"
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' map '{}' --layer 0 | head -c 10 >/dev/null; exit ${{PIPESTATUS[0]}}",
            bin().display(),
            demo.display()
        ))
        .status()
        .expect("sh");
    assert!(status.success());
}

/// A delta larger than its parent (qemu allows it, VMware does not) is read as qemu reads it,
/// with a warning; `--strict` refuses it.
#[test]
fn a_parent_smaller_than_its_child_is_a_warning() {
    require("qemu-img");
    let t = tempdir();
    let base = t.path().join("base.vmdk");
    let top = t.path().join("top.vmdk");
    sh(std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "vmdk"])
        .arg(&base)
        .arg("4M"));
    sh(std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "vmdk", "-F", "vmdk", "-b"])
        .arg(&base)
        .arg(&top)
        .arg("8M"));
    let info: serde_json::Value = serde_json::from_str(&ok([
        std::ffi::OsStr::new("info"),
        std::ffi::OsStr::new("--json"),
        top.as_os_str(),
    ]))
    .expect("JSON");
    let w = info["warnings"].to_string();
    assert!(
        w.contains("differs from its parent") && w.contains("4194304"),
        "{w}"
    );
    let e = fails(
        1,
        [
            std::ffi::OsStr::new("--strict"),
            std::ffi::OsStr::new("scan"),
            top.as_os_str(),
        ],
    );
    assert!(
        e.contains("differs from its parent") && e.contains("--strict"),
        "{e}"
    );
}
