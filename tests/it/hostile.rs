//! Bad input: corrupted headers and tables, truncated files, broken chains. Each must exit 1
//! with a message naming the file, the structure and the offset, and never panic.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// A small qemu-made monolithicSparse disk with data, in `dir`.
fn sparse_disk(dir: &Path) -> PathBuf {
    require("qemu-img");
    let p = dir.join("disk.vmdk");
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vmdk"])
        .arg(&p)
        .arg("8M"));
    sh(Command::new("qemu-io")
        .args(["-c", "write -P 0x5a 0 128k"])
        .arg(&p));
    p
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open copy for patching");
    f.write_all_at(bytes, offset).expect("patch");
}

fn u32_at(path: &Path, offset: u64) -> u32 {
    let data = std::fs::read(path).expect("read");
    u32::from_le_bytes(
        data[offset as usize..offset as usize + 4]
            .try_into()
            .expect("4 bytes"),
    )
}

/// Runs info, map and scan on `path`; each must exit 1 and mention every string in `want`.
fn all_commands_fail(path: &Path, want: &[&str]) {
    for cmd in ["info", "map", "scan"] {
        let e = fails(1, [OsStr::new(cmd), path.as_os_str()]);
        for w in want {
            assert!(
                e.contains(w),
                "{cmd} on {}: message lacks {w:?}:\n{e}",
                path.display()
            );
        }
    }
}

#[test]
fn corrupt_kdmv_header_fields() {
    let d = tempdir();
    let good = sparse_disk(d.path());
    let cases: [(u64, &[u8], &[&str]); 6] = [
        (0, b"KDMX", &["disk.vmdk", "not a VMDK file", "KDMV"]),
        (
            4,
            &9u32.to_le_bytes(),
            &["disk.vmdk: KDMV header at 0x4: version is 0x9, expected 1, 2 or 3"],
        ),
        (
            20,
            &100u64.to_le_bytes(),
            &["disk.vmdk: KDMV header at 0x14: grainSize is 0x64"],
        ),
        (
            44,
            &u32::MAX.to_le_bytes(),
            &["KDMV header at 0x2c: numGTEsPerGT is 0xffffffff"],
        ),
        (
            56,
            &0xFF_FFFFu64.to_le_bytes(),
            &["grain directory at 0x1fffffe00", "past the end of the file"],
        ),
        (
            12,
            &(1u64 << 50).to_le_bytes(),
            &["grain directory", "past the end of the file"],
        ),
    ];
    for (i, (offset, bytes, want)) in cases.iter().enumerate() {
        let p = d.path().join(format!("case{i}.vmdk"));
        std::fs::copy(&good, &p).expect("copy");
        patch(&p, *offset, bytes);
        let want: Vec<String> = want
            .iter()
            .map(|w| w.replace("disk.vmdk", &format!("case{i}.vmdk")))
            .collect();
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        all_commands_fail(&p, &want);
    }
}

#[test]
fn grain_table_entry_past_the_end_of_the_file() {
    let d = tempdir();
    let p = sparse_disk(d.path());
    let gd_sector = u32_at(&p, 56) as u64;
    let gt_sector = u32_at(&p, gd_sector * 512) as u64;
    patch(&p, gt_sector * 512 + 4, &0x7fff_ffffu32.to_le_bytes());
    // info reads no grain tables; map and scan do.
    for cmd in ["map", "scan"] {
        let e = fails(1, [OsStr::new(cmd), p.as_os_str()]);
        let want = format!(
            "disk.vmdk: grain table 0 at {:#x}: grain table entry is 0x7fffffff, expected a grain inside the file",
            gt_sector * 512 + 4
        );
        assert!(e.contains(&want), "{cmd}: {e}");
    }
}

#[test]
fn truncated_files() {
    let d = tempdir();
    let good = sparse_disk(d.path());
    let len = std::fs::metadata(&good).expect("stat").len();
    for cut in [0u64, 3, 100, 600, len - 1000] {
        let p = d.path().join(format!("cut{cut}.vmdk"));
        std::fs::copy(&good, &p).expect("copy");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .expect("open")
            .set_len(cut)
            .expect("truncate");
        // Cut inside the grain data, the headers are whole: info (which reads no grain
        // tables) describes the disk; map and scan reach the missing grains and fail.
        let cmds: &[&str] = if cut == len - 1000 {
            &["map", "scan"]
        } else {
            &["info", "map", "scan"]
        };
        for cmd in cmds {
            let e = fails(1, [OsStr::new(cmd), p.as_os_str()]);
            assert!(
                e.contains(&format!("cut{cut}.vmdk")),
                "{cmd} cut {cut}: {e}"
            );
        }
    }
}

#[test]
fn garbage_descriptors() {
    let d = tempdir();
    let cases: [(&str, &str); 4] = [
        (
            "version=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"x-flat.vmdk\" 0\nRW lots FLAT \"y\" 0\n",
            "descriptor line 4 at 0x43: extent size \"lots\" is not a number of sectors",
        ),
        (
            "# Disk DescriptorFile\nCID=zzzz\ncreateType=\"vmfs\"\n",
            "descriptor line 2 at 0x16: CID \"zzzz\" is not a 32-bit hexadecimal number",
        ),
        (
            "# Disk DescriptorFile\ncreateType=\"vmfs\"\n",
            "the descriptor has no extent lines",
        ),
        (
            "# Disk DescriptorFile\ncreateType=\"vmfs\"\nRW 2048 VMFS \"missing-flat.vmdk\"\n",
            "descriptor line 3 names extent",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = d.path().join(format!("g{i}.vmdk"));
        std::fs::write(&p, text).expect("write");
        all_commands_fail(&p, &[&format!("g{i}.vmdk"), want]);
    }
    // A key whose fourth byte is inside a multi-byte character once made the ddb check panic.
    let p = d.path().join("utf8.vmdk");
    std::fs::write(
        &p,
        "# Disk DescriptorFile\nversion=1\nabc\u{e9}=1\ncreateType=\"vmfs\"\n",
    )
    .expect("write");
    all_commands_fail(&p, &["utf8.vmdk", "the descriptor has no extent lines"]);
    let p = d.path().join("binary.vmdk");
    std::fs::write(&p, [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]).expect("write");
    all_commands_fail(&p, &["binary.vmdk", "expected \"KDMV\", \"COWD\""]);
}

/// A layer that holds nothing (a ZERO extent) and names `parent`.
fn zero_layer(dir: &Path, name: &str, parent: Option<&str>) -> PathBuf {
    let p = dir.join(name);
    let hint = parent
        .map(|h| format!("parentCID=ffffffff\nparentFileNameHint=\"{h}\"\n"))
        .unwrap_or_default();
    std::fs::write(&p, format!("# Disk DescriptorFile\nversion=1\nCID=ffffffff\n{hint}createType=\"custom\"\nRW 2048 ZERO\n")).expect("write");
    p
}

#[test]
fn parent_loops_missing_parents_and_deep_chains() {
    let d = tempdir();
    let a = zero_layer(d.path(), "a.vmdk", Some("b.vmdk"));
    zero_layer(d.path(), "b.vmdk", Some("a.vmdk"));
    let e = fails(1, [OsStr::new("scan"), a.as_os_str()]);
    assert!(
        e.contains("parent loop:") && e.contains("a.vmdk -> ") && e.contains("b.vmdk -> "),
        "{e}"
    );

    let orphan = zero_layer(d.path(), "orphan.vmdk", Some("gone/base.vmdk"));
    let e = fails(1, [OsStr::new("info"), orphan.as_os_str()]);
    assert!(
        e.contains("orphan.vmdk: parent not found: parentFileNameHint names")
            && e.contains("gone/base.vmdk"),
        "{e}"
    );

    zero_layer(d.path(), "l0.vmdk", None);
    for i in 1..300 {
        zero_layer(
            d.path(),
            &format!("l{i}.vmdk"),
            Some(&format!("l{}.vmdk", i - 1)),
        );
    }
    let top = d.path().join("l299.vmdk");
    let e = fails(1, [OsStr::new("scan"), top.as_os_str()]);
    assert!(e.contains("chain is deeper than 256 layers"), "{e}");
    let v = json(&[
        OsStr::new("scan"),
        OsStr::new("--json"),
        OsStr::new("--max-depth"),
        OsStr::new("300"),
        top.as_os_str(),
    ]);
    assert_eq!(v["chain"].as_array().map(Vec::len), Some(300));
}

#[test]
fn cid_mismatch_warns_and_strict_refuses() {
    require("qemu-img");
    let d = tempdir();
    let base = sparse_disk(d.path());
    let delta = d.path().join("delta.vmdk");
    sh(Command::new("qemu-img").current_dir(d.path()).args([
        "create",
        "-q",
        "-f",
        "vmdk",
        "-b",
        "disk.vmdk",
        "-F",
        "vmdk",
        "delta.vmdk",
    ]));
    // Rewrite the parentCID in the embedded descriptor. qemu writes the CID without leading
    // zeros (1 to 8 digits), so the text after it moves into the descriptor area's NUL
    // padding rather than an 8-byte overwrite eating the line's end (1 run in 16).
    let mut data = std::fs::read(&delta).expect("read");
    let at = data
        .windows(10)
        .position(|w| w == b"parentCID=")
        .expect("parentCID in descriptor")
        + 10;
    let digits = data[at..]
        .iter()
        .position(|&b| b == b'\n')
        .expect("parentCID line end");
    let text_end = at
        + data[at..]
            .iter()
            .position(|&b| b == 0)
            .expect("descriptor padding");
    let grow = 8 - digits;
    assert!(
        data[text_end..text_end + grow].iter().all(|&b| b == 0),
        "room in the descriptor area"
    );
    let rest = data[at + digits..text_end].to_vec();
    data[at..at + 8].copy_from_slice(b"0badc0de");
    data[at + 8..at + 8 + rest.len()].copy_from_slice(&rest);
    std::fs::write(&delta, &data).expect("write");
    let out = run([OsStr::new("scan"), OsStr::new("--json"), delta.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("parentCID is 0badc0de but the parent's CID is"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["chain"][1]["warnings"][0]["kind"], "cid_mismatch");
    let e = fails(
        1,
        [
            OsStr::new("scan"),
            OsStr::new("--strict"),
            delta.as_os_str(),
        ],
    );
    assert!(e.contains("parentCID is 0badc0de"), "{e}");
    drop(base);
}
