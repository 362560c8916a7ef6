//! Memory under load (issue 15): a chain of 255 layers of 64 TiB each ran out of a 4 GiB
//! address space (`memory allocation failed`, exit 134) and took 4 GB resident without a
//! limit, because every layer's grain directory was copied whole (2^21 entries) and the
//! files were mapped without regard to the limit. Memory per layer now follows the tables a
//! file has; an allocation that cannot be made is an error (exit 1), not an abort.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

const S: u64 = 512;

/// A monolithicSparse layer: header, descriptor at sector 1 (4 sectors), grain directory at
/// sector 5 with `gd_entries` entries, all zero (no table: nothing written yet), as a hole.
fn sparse_layer(path: &Path, cid: u32, parent: Option<(&str, u32)>, capacity: u64, grain: u64) {
    let gtes = 512u64;
    let gd_entries = capacity.div_ceil(grain * gtes);
    let gd_sector = 5u64;
    let over_head = gd_sector + (gd_entries * 4).div_ceil(S);
    let (hint, pcid) = match parent {
        Some((h, c)) => (format!("parentFileNameHint=\"{h}\"\n"), format!("{c:08x}")),
        None => (String::new(), "ffffffff".into()),
    };
    let name = path.file_name().unwrap().to_string_lossy();
    let mut d = format!(
        "# Disk DescriptorFile\nversion=1\nCID={cid:08x}\nparentCID={pcid}\ncreateType=\"monolithicSparse\"\n{hint}RW {} SPARSE \"{name}\"\n",
        capacity / S
    )
    .into_bytes();
    d.resize(4 * S as usize, 0);
    let mut h = vec![0u8; S as usize];
    h[..4].copy_from_slice(b"KDMV");
    let put = |h: &mut Vec<u8>, at: usize, v: &[u8]| h[at..at + v.len()].copy_from_slice(v);
    put(&mut h, 4, &1u32.to_le_bytes()); // version
    put(&mut h, 8, &1u32.to_le_bytes()); // flags: valid newline check
    put(&mut h, 12, &(capacity / S).to_le_bytes());
    put(&mut h, 20, &(grain / S).to_le_bytes());
    put(&mut h, 28, &1u64.to_le_bytes()); // descriptor at sector 1
    put(&mut h, 36, &4u64.to_le_bytes());
    put(&mut h, 44, &(gtes as u32).to_le_bytes());
    put(&mut h, 56, &gd_sector.to_le_bytes());
    put(&mut h, 64, &over_head.to_le_bytes());
    put(&mut h, 73, b"\n \r\n");
    let mut f = std::fs::File::create(path).unwrap();
    use std::io::Write;
    f.write_all(&h).unwrap();
    f.write_all(&d).unwrap();
    f.set_len(over_head * S).unwrap();
}

/// Runs deltascope under an address-space limit, measuring its peak resident memory (KiB).
fn limited(limit: u64, args: &[&str], top: &Path) -> (std::process::Output, u64) {
    require("prlimit");
    assert!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time is required by this test and was not found: install time (apt-get install time)"
    );
    let rss = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(rss.path())
        .arg("prlimit")
        .arg(format!("--as={limit}"))
        .arg(bin())
        .args(args)
        .arg(top)
        .env("DELTASCOPE_CACHE", cache_dir())
        .output()
        .expect("run");
    let kib = std::fs::read_to_string(rss.path())
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(u64::MAX);
    (out, kib)
}

#[test]
fn a_chain_of_255_layers_of_64_tib_fits_in_4_gib() {
    let t = tempdir();
    let capacity = 64u64 << 40;
    for i in 0..255u32 {
        let parent = (i > 0).then(|| format!("l{:03}.vmdk", i - 1));
        sparse_layer(
            &t.path().join(format!("l{i:03}.vmdk")),
            i + 1,
            parent.as_deref().map(|p| (p, i)),
            capacity,
            64 << 10,
        );
    }
    let top = t.path().join("l254.vmdk");
    for args in [
        &["scan", "--json", "--no-cache"][..],
        &["scan", "--json", "--no-cache", "--no-mmap"],
        &["info", "--json"],
    ] {
        let (out, kib) = limited(4 << 30, args, &top);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} under 4 GiB:\n{stderr}"
        );
        assert!(
            kib < 256 << 10,
            "{args:?}: {kib} KiB resident for 255 empty layers"
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let chain = v["chain"].as_array().unwrap();
        assert_eq!(chain.len(), 255);
        assert!(chain.iter().all(|l| l["virtual_size"] == capacity));
        if args[0] == "scan" {
            assert!(chain.iter().all(|l| l["allocated_bytes"] == 0));
        }
    }
}

/// A 1 GiB grain (the largest qemu accepts) read into a buffer under a 512 MiB limit: the
/// buffer cannot be allocated, which is an error naming the file (exit 1), not an abort.
#[test]
fn an_allocation_that_cannot_be_made_is_an_error() {
    let t = tempdir();
    let path = t.path().join("big-grain.vmdk");
    let grain = 1u64 << 30;
    sparse_layer(&path, 1, None, grain, grain);
    // One table (sector 6, after the directory) whose first entry points at a grain right
    // after the metadata; the file is a hole up to the grain's end.
    let mut raw = std::fs::read(&path).unwrap();
    let gt_sector = raw.len() as u64 / S;
    let grain_sector = gt_sector + 4;
    raw[5 * 512..5 * 512 + 4].copy_from_slice(&(gt_sector as u32).to_le_bytes());
    raw.resize(((gt_sector + 4) * S) as usize, 0);
    raw[(gt_sector * S) as usize..(gt_sector * S) as usize + 4]
        .copy_from_slice(&(grain_sector as u32).to_le_bytes());
    raw[64..72].copy_from_slice(&grain_sector.to_le_bytes()); // overHead
    std::fs::write(&path, &raw).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(grain_sector * S + grain).unwrap();
    drop(f);
    for args in [
        &["scan", "--no-cache"][..],
        &["scan", "--no-cache", "--no-mmap"],
    ] {
        let (out, _) = limited(512 << 20, args, &path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}:\n{stderr}");
        assert!(
            stderr.contains("big-grain.vmdk") && stderr.contains("cannot be allocated"),
            "{args:?}:\n{stderr}"
        );
    }
}
