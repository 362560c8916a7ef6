//! Chains that leave the evidence tree (issue 15): absolute and `..` extents and parent hints
//! that point outside the top's folder (or the scanned folders) are read with an
//! `outside_tree` warning, refused before they are opened under `--confine`; and a file that
//! is not a VMDK file is described (qcow2, VHD, text, ...), never quoted: a parent hint of
//! `/etc/shadow` must not put its bytes into stderr, JSON, CSV or HTML.

use std::ffi::OsStr;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// What stands for /etc/shadow: a text file outside the tree, with a recognisable secret.
const SECRET: &str = "root:$6$S3CRETHASH$abcdef:19000:0:99999:7:::\n";

/// The secret's bytes in every form an error could have quoted them.
fn leaks(text: &str) -> bool {
    let hex: Vec<String> = SECRET.bytes().take(8).map(|b| format!("{b:02x}")).collect();
    text.contains("S3CRET") || text.contains("root:$6") || text.contains(&hex.join(", "))
}

fn flat_descriptor(extent: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"{extent}\" 0\n"
    )
}

#[test]
fn absolute_and_dotdot_extents_warn_and_confine_refuses_them() {
    let t = tempdir();
    let outside = t.path().join("elsewhere");
    std::fs::create_dir(&outside).unwrap();
    let secret = outside.join("shadow");
    std::fs::write(&secret, SECRET.repeat(100)).unwrap();
    let tree = t.path().join("evidence").join("vm");
    std::fs::create_dir_all(&tree).unwrap();
    for (name, extent) in [
        ("absolute.vmdk", secret.display().to_string()),
        ("dotdot.vmdk", "../../elsewhere/shadow".to_string()),
    ] {
        let d = tree.join(name);
        std::fs::write(&d, flat_descriptor(&extent)).unwrap();
        let out = run([OsStr::new("scan"), OsStr::new("--json"), d.as_os_str()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let kinds: Vec<&str> = v["chain"][0]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"outside_tree"), "{name}: {kinds:?}");
        let err = fails(
            1,
            [OsStr::new("scan"), OsStr::new("--confine"), d.as_os_str()],
        );
        assert!(
            err.contains("outside the evidence tree") && err.contains("it was not opened"),
            "{name}:\n{err}"
        );
        // Inside the tree nothing is said.
        let inside = tree.join("data.raw");
        std::fs::write(&inside, vec![7u8; 4096]).unwrap();
        let ok_d = tree.join("inside.vmdk");
        std::fs::write(&ok_d, flat_descriptor("data.raw")).unwrap();
        let v: Value = serde_json::from_str(&ok([
            OsStr::new("scan"),
            OsStr::new("--json"),
            OsStr::new("--confine"),
            ok_d.as_os_str(),
        ]))
        .unwrap();
        assert_eq!(v["chain"][0]["warnings"], Value::Array(vec![]));
    }
}

/// A symlink inside the tree that leads out of it is outside: paths are compared canonical.
#[test]
fn a_symlink_out_of_the_tree_is_outside() {
    let t = tempdir();
    let tree = t.path().join("vm");
    std::fs::create_dir(&tree).unwrap();
    let secret = t.path().join("shadow");
    std::fs::write(&secret, SECRET).unwrap();
    std::os::unix::fs::symlink(&secret, tree.join("disk-flat.vmdk")).unwrap();
    let d = tree.join("disk.vmdk");
    std::fs::write(&d, flat_descriptor("disk-flat.vmdk")).unwrap();
    let err = fails(
        1,
        [OsStr::new("info"), OsStr::new("--confine"), d.as_os_str()],
    );
    assert!(err.contains("outside the evidence tree"), "{err}");
}

/// A parent hint naming a text file outside the tree: every output says what the file looks
/// like and none quotes it; a datastore scan's JSON, CSV and HTML report included.
#[test]
fn a_parent_hint_of_a_secret_file_never_prints_its_bytes() {
    require("qemu-img");
    let t = tempdir();
    let secret = t.path().join("shadow");
    std::fs::write(&secret, SECRET).unwrap();
    let store = t.path().join("store");
    let vm = store.join("vm");
    std::fs::create_dir_all(&vm).unwrap();
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vmdk"])
        .arg(vm.join("delta-s001.vmdk"))
        .arg("1M"));
    std::fs::write(
        vm.join("delta.vmdk"),
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=00000002\nparentCID=00000001\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"{}\"\nRW 2048 SPARSE \"delta-s001.vmdk\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let top = vm.join("delta.vmdk");
    let err = fails(1, [OsStr::new("info"), top.as_os_str()]);
    assert!(
        err.contains("looks like text that is not a VMDK descriptor"),
        "{err}"
    );
    assert!(!leaks(&err), "the error quotes the file:\n{err}");

    let html = t.path().join("report.html");
    for args in [
        vec![OsStr::new("scan"), OsStr::new("--json"), store.as_os_str()],
        vec![OsStr::new("scan"), OsStr::new("--csv"), store.as_os_str()],
        vec![OsStr::new("scan"), store.as_os_str()],
        vec![
            OsStr::new("report"),
            store.as_os_str(),
            OsStr::new("-o"),
            html.as_os_str(),
        ],
    ] {
        let out = run(&args);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!leaks(&all), "{args:?} quotes the file:\n{all}");
        assert!(
            all.contains("looks like text") || args[0] == "report",
            "{args:?}:\n{all}"
        );
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!leaks(&page), "the HTML report quotes the file");
    assert!(
        page.contains("looks like text"),
        "the page says what the file is"
    );
}

/// What other images look like, named instead of quoted.
#[test]
fn non_vmdk_files_are_described() {
    require("qemu-img");
    let t = tempdir();
    let make = |fmt: &str, name: &str, opts: &[&str]| {
        let p = t.path().join(name);
        sh(Command::new("qemu-img")
            .args(["create", "-q", "-f", fmt])
            .args(opts)
            .arg(&p)
            .arg("1M"));
        p
    };
    let mut mbr = vec![0u8; 4096];
    mbr[446 + 4] = 0x83;
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let mut gpt = mbr.clone();
    gpt[446 + 4] = 0xee;
    gpt[512..520].copy_from_slice(b"EFI PART");
    let raw = |name: &str, data: &[u8]| {
        let p = t.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let elf = std::fs::read("/proc/self/exe").unwrap();
    let cases = [
        (make("qcow2", "a.qcow2", &[]), "a qcow2 image"),
        (make("vpc", "dyn.vhd", &[]), "a VHD image"),
        (
            make("vpc", "fixed.vhd", &["-o", "subformat=fixed"]),
            "a VHD image",
        ),
        (make("vhdx", "a.vhdx", &[]), "a VHDX image"),
        (
            raw("mbr.img", &mbr),
            "a raw disk with an MBR partition table",
        ),
        (
            raw("gpt.img", &gpt),
            "a raw disk with a GPT partition table",
        ),
        (raw("empty.vmdk", &[]), "an empty file"),
        (
            raw("notes.vmdk", b"just some notes\n"),
            "text that is not a VMDK descriptor",
        ),
        (raw("prog.vmdk", &elf[..4096]), "an ELF executable"),
    ];
    for (path, kind) in &cases {
        let err = fails(1, [OsStr::new("info"), path.as_os_str()]);
        assert!(
            err.contains(&format!("not a VMDK file: it looks like {kind}")),
            "{}:\n{err}",
            path.display()
        );
        assert!(!err.contains("magic is"), "{err}");
    }
}
