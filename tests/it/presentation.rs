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
