//! Output files (issue 15, "`report -o PATH` renames a temporary file over PATH"): every `-o`
//! (report, chart, lun --chart, --chart-locking) refuses a target that is not a regular file
//! (a FIFO, a device, a symlink to one), writes through a temporary file it creates itself,
//! and leaves no temporary file behind when the disk is full.

use std::ffi::OsStr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn demo() -> PathBuf {
    root().join("testdata/demo/win10-clone-000002.vmdk")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn mkfifo(path: &Path) {
    sh(Command::new("mkfifo").arg(path));
}

/// The commands that write files, each with the output path last.
fn writers(out: &Path) -> Vec<Vec<std::ffi::OsString>> {
    let lun = |flag: &str| -> Vec<std::ffi::OsString> {
        [
            "lun",
            "--vms",
            "64",
            "--growth-per-vm",
            "2GiB",
            "--window",
            "2m",
            flag,
        ]
        .iter()
        .map(|s| s.into())
        .chain([out.as_os_str().to_owned()])
        .collect()
    };
    vec![
        vec![
            "report".into(),
            demo().into_os_string(),
            "-o".into(),
            out.as_os_str().to_owned(),
        ],
        vec![
            "chart".into(),
            "--db".into(),
            out.with_file_name("no-such-store.sqlite").into_os_string(),
            "-o".into(),
            out.as_os_str().to_owned(),
        ],
        lun("--chart"),
        lun("--chart-locking"),
    ]
}

#[test]
fn fifos_devices_and_links_to_them_are_refused_as_outputs() {
    let t = tempdir();
    let fifo = t.path().join("out.svg");
    mkfifo(&fifo);
    let to_fifo = t.path().join("via-link.png");
    std::os::unix::fs::symlink(&fifo, &to_fifo).unwrap();
    let to_null = t.path().join("null.svg");
    std::os::unix::fs::symlink("/dev/null", &to_null).unwrap();
    for target in [&fifo, &to_fifo, &to_null] {
        for args in writers(target) {
            let err = fails(2, &args);
            assert!(
                err.contains("an output file must be a new file or a regular file"),
                "{args:?}:\n{err}"
            );
        }
    }
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(&to_fifo)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::symlink_metadata(&to_null)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert_eq!(names(t.path()), ["null.svg", "out.svg", "via-link.png"]);
}

#[test]
fn a_symlink_to_a_regular_file_is_written_through_and_kept() {
    let t = tempdir();
    let real = t.path().join("real.html");
    std::fs::write(&real, "old").unwrap();
    let link = t.path().join("link.html");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    ok([
        OsStr::new("report"),
        demo().as_os_str(),
        OsStr::new("-o"),
        link.as_os_str(),
    ]);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read_to_string(&real).unwrap().contains("<html"));
    assert_eq!(names(t.path()), ["link.html", "real.html"]);
}

#[test]
fn a_full_disk_leaves_the_old_file_and_no_temporary_file() {
    let t = tempdir();
    // A tmpfs of two pages.
    let disk = Mount::new(
        &["-t", "tmpfs", "-o", "size=8k"],
        Path::new("tmpfs"),
        &t.path().join("full"),
    );
    for name in ["report.html", "chart.png", "locking.svg"] {
        let out = disk.0.join(name);
        std::fs::write(&out, "old").unwrap();
        let args: Vec<std::ffi::OsString> = match name {
            "report.html" => writers(&out).swap_remove(0),
            "chart.png" => writers(&out).swap_remove(2),
            _ => writers(&out).swap_remove(3),
        };
        let err = fails(1, &args);
        assert!(err.contains("No space left on device"), "{args:?}:\n{err}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old", "{name}");
        assert_eq!(names(&disk.0), [name], "{args:?} left files behind");
        std::fs::remove_file(&out).unwrap();
    }
}
