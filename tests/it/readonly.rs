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
