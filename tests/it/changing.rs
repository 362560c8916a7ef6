//! Files that change while deltascope reads them. The binary cannot be paused between opening
//! a chain and finishing its scan, so these tests call the library (`Chain::open`,
//! `scan::scan_chain`, `Chain::check_unchanged`) and change the files in between, the way
//! another process on a live datastore would. docs/RELIABILITY.md says what each mode
//! guarantees.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use deltascope::chain::{Chain, ChainOptions};
use deltascope::error::Error;
use deltascope::progress::NoProgress;
use deltascope::scan::{ScanOptions, scan_chain};
use deltascope::source::ReadMode;

use crate::util::{root, tempdir};

const DEMO: [&str; 3] = [
    "win10-base.vmdk",
    "win10-clone-000001.vmdk",
    "win10-clone-000002.vmdk",
];

/// A copy of the demo chain in `dir`; returns (top, base).
fn demo_copy(dir: &Path) -> (PathBuf, PathBuf) {
    for name in DEMO {
        std::fs::copy(root().join("testdata/demo").join(name), dir.join(name)).expect("copy");
    }
    (dir.join(DEMO[2]), dir.join(DEMO[0]))
}

fn open(top: &Path, mode: ReadMode) -> Chain {
    Chain::open(
        top,
        &ChainOptions {
            mode,
            ..ChainOptions::default()
        },
    )
    .expect("open the demo chain")
}

#[test]
fn a_file_truncated_during_a_no_mmap_run_is_an_error_not_a_crash() {
    let d = tempdir();
    let (top, base) = demo_copy(d.path());
    let chain = open(&top, ReadMode::Read);
    OpenOptions::new()
        .write(true)
        .open(&base)
        .expect("open base")
        .set_len(4096)
        .expect("truncate");
    let e = scan_chain(&chain, &ScanOptions::full(false), &NoProgress, None)
        .expect_err("the base lost its grains");
    let msg = e.to_string();
    // Either a read of a grain that is gone, or the final check: both name the file.
    assert!(
        matches!(e, Error::Io { .. } | Error::Changed { .. }),
        "{e:?}"
    );
    assert!(msg.contains("win10-base.vmdk"), "{msg}");
}

#[test]
fn a_file_changed_between_open_and_the_end_is_reported_in_both_modes() {
    for mode in [ReadMode::Mmap, ReadMode::Read] {
        let d = tempdir();
        let (top, base) = demo_copy(d.path());
        // Grown: the mapped pages stay valid, the final check sees the new length.
        let chain = open(&top, mode);
        let f = OpenOptions::new().append(true).open(&base).expect("open");
        std::io::Write::write_all(&mut &f, &[0u8; 512]).expect("append");
        let e =
            scan_chain(&chain, &ScanOptions::full(false), &NoProgress, None).expect_err("changed");
        assert!(
            matches!(&e, Error::Changed { path, what } if path == &base && what == "length 589824 became 590336"),
            "{mode:?}: {e:?}"
        );
        assert!(
            e.to_string().contains("the results are not trustworthy"),
            "{e}"
        );

        // Rewritten in place (same length, new modification time).
        let chain = open(&top, mode);
        let f = OpenOptions::new().write(true).open(&top).expect("open");
        f.set_modified(SystemTime::now() + Duration::from_secs(60))
            .expect("set mtime");
        let e = chain.check_unchanged().expect_err("changed");
        assert!(
            matches!(&e, Error::Changed { path, what } if path == &top && what == "modification time changed"),
            "{mode:?}: {e:?}"
        );
    }
}

#[test]
fn a_mapped_file_truncated_before_its_pages_are_read_is_reported() {
    // Touching a page past the new end of a mapped file raises SIGBUS, which no check can
    // prevent; a truncation that lands before the pages are read is caught by the re-stat.
    let d = tempdir();
    let (top, base) = demo_copy(d.path());
    let chain = open(&top, ReadMode::Mmap);
    assert!(chain.layers[0].files[0].is_mapped());
    OpenOptions::new()
        .write(true)
        .open(&base)
        .expect("open base")
        .set_len(0)
        .expect("truncate");
    let e = chain.check_unchanged().expect_err("changed");
    assert!(
        matches!(&e, Error::Changed { path, what } if path == &base && what == "length 589824 became 0"),
        "{e:?}"
    );
}
