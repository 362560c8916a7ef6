//! Inputs are never written: size, modification time and contents of every input file are
//! the same before and after each command, failing runs included.

use std::ffi::OsStr;
use std::path::PathBuf;

use crate::util::*;

#[test]
fn no_command_writes_to_its_inputs() {
    let d = tempdir();
    // A copy of the demo chain, so the check cannot be confused by other tests.
    let mut files: Vec<PathBuf> = Vec::new();
    for name in [
        "win10-base.vmdk",
        "win10-clone-000001.vmdk",
        "win10-clone-000002.vmdk",
    ] {
        let to = d.path().join(name);
        std::fs::copy(root().join("testdata/demo").join(name), &to).expect("copy");
        files.push(to);
    }
    // Also a chain that fails: a delta whose parent CID does not match under --strict.
    let before = snapshot(&files);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let top = files[2].as_os_str();
    for args in [
        vec!["info"],
        vec!["info", "--json"],
        vec!["map"],
        vec!["map", "--layer", "0"],
        vec!["scan"],
        vec!["scan", "--json", "--no-mmap"],
        vec!["scan", "--json"],
    ] {
        let mut a: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        a.push(top);
        ok(&a);
    }
    // Failing runs: a usage error after opening, and a bad layer index.
    fails(
        2,
        [
            OsStr::new("map"),
            top,
            OsStr::new("--layer"),
            OsStr::new("7"),
        ],
    );
    assert_eq!(snapshot(&files), before, "an input changed");
}

/// Every file under `dir`, sorted.
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Datastore mode (`scan DIR`, `lun DIR`), `forecast` over a history recorded from the same
/// images, and failing runs on corrupt and half-copied inputs: no input changes, in mmap and
/// in `--no-mmap` mode.
#[test]
fn datastore_forecast_and_failing_runs_write_nothing() {
    let d = tempdir();
    let ds = d.path().join("ds");
    let vm = ds.join("lun1").join("vm1");
    std::fs::create_dir_all(&vm).expect("mkdir");
    for name in [
        "win10-base.vmdk",
        "win10-clone-000001.vmdk",
        "win10-clone-000002.vmdk",
    ] {
        std::fs::copy(root().join("testdata/demo").join(name), vm.join(name)).expect("copy");
    }
    // A broken disk on the same datastore: a delta whose parent is gone, and a corrupt one.
    let broken = ds.join("lun1").join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::copy(
        root().join("testdata/demo/win10-clone-000001.vmdk"),
        broken.join("orphan.vmdk"),
    )
    .expect("copy");
    let mut bad = std::fs::read(root().join("testdata/demo/win10-base.vmdk")).expect("read");
    bad[56..64].copy_from_slice(&u64::MAX.to_le_bytes()[..8]);
    std::fs::write(broken.join("bad.vmdk"), &bad).expect("write");
    let half = std::fs::read(root().join("testdata/demo/win10-base.vmdk")).expect("read");
    std::fs::write(broken.join("half.vmdk"), &half[..half.len() / 2]).expect("write");

    let db = d.path().join("history.sqlite");
    let top = vm.join("win10-clone-000002.vmdk");
    // The history is written before the snapshot: it is an output of `scan --record`.
    ok([
        OsStr::new("scan"),
        OsStr::new("--record"),
        OsStr::new("--db"),
        db.as_os_str(),
        top.as_os_str(),
    ]);
    let files = files_under(&ds);
    assert!(files.len() >= 6, "{files:?}");
    let mut watched = files.clone();
    watched.push(db.clone());
    let before = snapshot(&watched);
    std::thread::sleep(std::time::Duration::from_millis(20));

    let lun1 = ds.join("lun1");
    for mode in [None, Some("--no-mmap")] {
        let with = |args: &[&OsStr]| -> Vec<std::ffi::OsString> {
            let mut a: Vec<std::ffi::OsString> = args.iter().map(|s| s.to_os_string()).collect();
            if let Some(m) = mode {
                a.push(m.into());
            }
            a
        };
        ok(with(&[OsStr::new("info"), top.as_os_str()]));
        ok(with(&[OsStr::new("map"), top.as_os_str()]));
        ok(with(&[
            OsStr::new("scan"),
            OsStr::new("--json"),
            top.as_os_str(),
        ]));
        // One broken chain makes the datastore runs exit 1; they still read every disk.
        fails(1, with(&[OsStr::new("scan"), lun1.as_os_str()]));
        fails(
            1,
            with(&[
                OsStr::new("lun"),
                OsStr::new("--json"),
                lun1.as_os_str(),
                OsStr::new("--growth-per-vm"),
                OsStr::new("2GiB"),
                OsStr::new("--window"),
                OsStr::new("2m"),
            ]),
        );
        // forecast reads no disk: it takes no --no-mmap after its name (issue 17), only
        // before it, as every option for reading disks.
        let mut forecast: Vec<&OsStr> = mode.map(OsStr::new).into_iter().collect();
        forecast.extend([
            OsStr::new("forecast"),
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--json"),
        ]);
        ok(forecast);
        // The half-copied disk keeps its headers: `info` reads it, the grains are missing.
        for (f, cmds) in [
            ("orphan.vmdk", &["info", "map", "scan"][..]),
            ("bad.vmdk", &["info", "map", "scan"][..]),
            ("half.vmdk", &["map", "scan"][..]),
        ] {
            let p = broken.join(f);
            for cmd in cmds {
                fails(1, with(&[OsStr::new(cmd), p.as_os_str()]));
            }
        }
    }
    assert_eq!(snapshot(&watched), before, "an input changed");
}
