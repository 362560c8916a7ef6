//! Block devices as inputs (issue 15, "block devices read as zeros"): a loop device holding a
//! KDMV image, and a flat extent on a loop device (the shape of a physical-disk descriptor).
//! `stat` says 0 bytes for a device; deltascope must read it with its real size. qemu reads
//! the same devices (its `host_device` driver) and is the oracle. Needs root and loop devices:
//! the test fails, saying so, when it cannot set one up; every device it attaches is detached
//! again, also when an assertion fails.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// `qemu-img map` of the VMDK on a block device, through qemu's `host_device` driver.
fn qemu_map_device(dev: &Path) -> Vec<Value> {
    let spec = format!(
        "json:{{\"driver\":\"vmdk\",\"file\":{{\"driver\":\"host_device\",\"filename\":{}}},\"backing\":null}}",
        serde_json::to_string(&dev.to_string_lossy()).expect("path as JSON")
    );
    let out = sh(Command::new("qemu-img")
        .args(["map", "--output=json"])
        .arg(spec));
    serde_json::from_str(&out).expect("qemu-img map JSON")
}

#[test]
fn a_kdmv_image_on_a_loop_device_reads_with_the_device_size() {
    require("qemu-img");
    require("qemu-io");
    let t = tempdir();
    let img = t.path().join("k.vmdk");
    sh(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vmdk"])
        .arg(&img)
        .arg("8M"));
    sh(Command::new("qemu-io")
        .args(["-c", "write -P 0x5a 0 1M", "-c", "write -P 0x17 5M 64k"])
        .arg(&img));
    let dev = Loop::attach(&img);

    let info: Value = serde_json::from_str(&ok([
        OsStr::new("info"),
        OsStr::new("--json"),
        dev.0.as_os_str(),
    ]))
    .expect("info JSON");
    let qemu = qemu_info(&dev.0);
    assert_eq!(
        info["chain"][0]["virtual_size"],
        qemu["virtual-size"],
        "virtual size of the image on {}",
        dev.0.display()
    );
    assert_eq!(
        info["chain"][0]["file_size"].as_u64(),
        Some(std::fs::metadata(&img).unwrap().len()),
        "file size is the device's size"
    );
    let ours: Vec<Value> =
        serde_json::from_str(&ok([OsStr::new("map"), dev.0.as_os_str()])).expect("map JSON");
    assert_eq!(ours, qemu_map_device(&dev.0), "map of {}", dev.0.display());
}

#[test]
fn a_flat_extent_on_a_loop_device_is_read_not_zeroed() {
    require("qemu-img");
    let t = tempdir();
    // 4 MiB of raw disk: 1 MiB of 0x33, one 64 KiB grain of 0x44 at 3 MiB, zeros elsewhere.
    let raw = t.path().join("disk.raw");
    let mut data = vec![0u8; 4 << 20];
    data[..1 << 20].fill(0x33);
    data[3 << 20..(3 << 20) + (64 << 10)].fill(0x44);
    std::fs::write(&raw, &data).unwrap();
    let dev = Loop::attach(&raw);
    let desc = t.path().join("physical.vmdk");
    std::fs::write(
        &desc,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8192 FLAT \"{}\" 0\n",
            dev.0.display()
        ),
    )
    .unwrap();

    let out = run([
        OsStr::new("scan"),
        OsStr::new("--json"),
        OsStr::new("--no-cache"),
        desc.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scan failed:\n{stderr}");
    assert!(
        !stderr.contains("reads as zeros"),
        "the device was taken for an empty file:\n{stderr}"
    );
    let scan: Value = serde_json::from_slice(&out.stdout).expect("scan JSON");

    // The oracle: qemu's reading of the same descriptor, counted per 64 KiB grain.
    let converted = convert_raw(&desc, t.path());
    let bytes = std::fs::read(&converted).unwrap();
    assert_eq!(bytes, data, "qemu reads the device's bytes");
    let grain = 64 << 10;
    let nonzero = bytes
        .chunks(grain)
        .filter(|c| c.iter().any(|&b| b != 0))
        .count() as u64
        * grain as u64;
    let classes = &scan["chain"][0]["classes"];
    assert_eq!(classes["fresh"].as_u64(), Some(nonzero), "{classes}");
    assert_eq!(
        classes["zeroed"].as_u64(),
        Some(bytes.len() as u64 - nonzero),
        "{classes}"
    );
}
