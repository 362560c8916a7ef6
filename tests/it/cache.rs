//! The cache of layers below the top (src/cache.rs): a cached scan equals a fresh one, the
//! cache follows every change to a layer's files, ignores damaged entries, and `--no-cache`
//! neither reads nor writes it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

fn scan(top: &Path, cache: &Path, extra: &[&str]) -> Value {
    let out = Command::new(bin())
        .args(["scan", "--json"])
        .args(extra)
        .arg(top)
        .env("DELTASCOPE_CACHE", cache)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // When each scan ran differs between runs; the figures compared here must not.
    v.as_object_mut()
        .and_then(|o| o.remove("scanned_at"))
        .expect("scanned_at");
    v
}

fn entries(cache: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(cache) {
        Ok(d) => d
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn cached_layers_scan_the_same_and_follow_changes() {
    let t = tempdir();
    let demo = root().join("testdata/demo");
    for f in std::fs::read_dir(&demo).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, t.path().join(f.file_name().unwrap())).unwrap();
    }
    let top = t.path().join("win10-clone-000002.vmdk");
    let cache = t.path().join("cache");

    let fresh = scan(&top, &cache, &["--no-cache"]);
    assert!(!cache.exists(), "--no-cache wrote a cache");
    assert_eq!(fresh["chain"].as_array().unwrap().len(), 3);

    // First run fills the cache with the two layers below the top; the second reads them.
    assert_eq!(scan(&top, &cache, &[]), fresh);
    assert_eq!(
        entries(&cache).len(),
        2,
        "one entry per layer below the top"
    );
    assert_eq!(scan(&top, &cache, &[]), fresh);
    assert_eq!(entries(&cache).len(), 2);

    // Damaged entries are misses, not errors, and are replaced.
    for e in entries(&cache) {
        std::fs::write(&e, b"{not json").unwrap();
    }
    assert_eq!(scan(&top, &cache, &[]), fresh);
    for e in entries(&cache) {
        let v: Value = serde_json::from_slice(&std::fs::read(&e).unwrap()).expect("rewritten");
        assert!(v["key"].as_str().unwrap().contains("win10-base.vmdk"));
    }

    // A changed base (here only its modification time) makes both entries stale: the layer
    // above it is classified against it.
    let base = std::fs::File::options()
        .append(true)
        .open(t.path().join("win10-base.vmdk"))
        .unwrap();
    base.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
    drop(base);
    assert_eq!(scan(&top, &cache, &[]), fresh);
    assert_eq!(
        entries(&cache).len(),
        4,
        "new entries for the changed base and the layer on it"
    );

    // The top is never cached: scanning the middle layer as a top reuses only the base.
    let mid = t.path().join("win10-clone-000001.vmdk");
    let alone = scan(&mid, &cache, &["--no-cache"]);
    assert_eq!(scan(&mid, &cache, &[]), alone);
    assert_eq!(entries(&cache).len(), 4);
}

/// A copy of the demo chain in `dir`; returns its top.
fn demo_copy(dir: &Path) -> std::path::PathBuf {
    for f in std::fs::read_dir(root().join("testdata/demo")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    dir.join("win10-clone-000002.vmdk")
}

/// Runs `scan --json` with the cache in `cache` under a 4 GiB address-space limit and a
/// 60-second deadline, and measures its peak memory: an entry that makes deltascope read
/// forever or wait forever fails the test instead of taking the machine down.
fn scan_limited(top: &Path, cache: &Path) -> (std::process::Output, u64) {
    require("prlimit");
    require("timeout");
    assert!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time is required by this test and was not found: install time (apt-get install time)"
    );
    let rss = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("timeout")
        .args(["-s", "KILL", "60", "/usr/bin/time", "-f", "%M", "-o"])
        .arg(rss.path())
        .arg("prlimit")
        .arg(format!("--as={}", 4u64 << 30))
        .arg(bin())
        .args(["scan", "--json"])
        .arg(top)
        .env("DELTASCOPE_CACHE", cache)
        .output()
        .expect("run");
    let kib = std::fs::read_to_string(rss.path())
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(u64::MAX);
    (out, kib)
}

fn assert_fresh((out, rss_kib): &(std::process::Output, u64), fresh: &Value, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: expected exit 0 (killed after 60 s?)\n{stderr}"
    );
    assert!(
        *rss_kib < 256 << 10,
        "{what}: the scan took {rss_kib} KiB of memory"
    );
    let mut got: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    got.as_object_mut()
        .and_then(|o| o.remove("scanned_at"))
        .expect("scanned_at");
    assert_eq!(
        &got, fresh,
        "{what}: a cached figure was taken from the entry"
    );
}

/// Fills a cache for a copy of the demo chain, replaces every entry with what `plant` makes of
/// it, and checks that the scan is the fresh one (the entries are misses), within the limits
/// of [`scan_limited`].
fn hostile_entries(what: &str, plant: impl Fn(&Path)) {
    let t = tempdir();
    let top = demo_copy(t.path());
    let cache = t.path().join("cache");
    let fresh = scan(&top, &cache, &["--no-cache"]);
    scan(&top, &cache, &[]);
    let names = entries(&cache);
    assert_eq!(names.len(), 2);
    for e in &names {
        plant(e);
    }
    assert_fresh(&scan_limited(&top, &cache), &fresh, what);
}

/// An entry with forged figures (valid JSON, the right key) used to be printed as
/// "20000000000000000000.0%".
#[test]
fn a_forged_entry_is_a_miss() {
    hostile_entries("forged figures", |e| {
        let mut v: Value = serde_json::from_slice(&std::fs::read(e).unwrap()).unwrap();
        v["stats"]["classes"]["fresh"] = Value::from(u64::MAX / 2);
        v["stats"]["allocated_bytes"] = Value::from(1u64);
        std::fs::write(e, serde_json::to_vec(&v).unwrap()).unwrap();
    });
}

/// An entry linked to /dev/zero used to be read until memory ran out (22.8 GB).
#[test]
fn an_entry_linked_to_dev_zero_is_a_miss() {
    hostile_entries("entries linked to /dev/zero", |e| {
        std::fs::remove_file(e).unwrap();
        std::os::unix::fs::symlink("/dev/zero", e).unwrap();
    });
}

/// An entry that is a FIFO used to hang the scan.
#[test]
fn a_fifo_entry_is_a_miss() {
    hostile_entries("FIFO entries", |e| {
        std::fs::remove_file(e).unwrap();
        sh(Command::new("mkfifo").arg(e));
    });
}

/// Consistent forged figures (two classes swapped everywhere: every sum still holds) are
/// what validation cannot catch; `--strict`, the evidence mode, never reads the cache, and
/// never writes it.
#[test]
fn strict_neither_reads_nor_writes_the_cache() {
    let t = tempdir();
    let top = demo_copy(t.path());
    let cache = t.path().join("cache");
    let fresh = scan(&top, &cache, &["--no-cache"]);
    scan(&top, &cache, &["--strict"]);
    assert!(entries(&cache).is_empty(), "--strict wrote cache entries");
    scan(&top, &cache, &[]);
    for e in entries(&cache) {
        let mut v: Value = serde_json::from_slice(&std::fs::read(&e).unwrap()).unwrap();
        let s = &mut v["stats"];
        for field in ["classes", "blocks_4k"] {
            let c = &mut s[field];
            let (a, b) = (c["fresh"].clone(), c["zeroed"].clone());
            if a != b {
                c["fresh"] = b;
                c["zeroed"] = a;
            }
        }
        std::fs::write(&e, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    assert_eq!(scan(&top, &cache, &["--strict"]), fresh);
}

/// Temporary entries used to be `.tmp-PID-ThreadId(N)`, opened with O_TRUNC through
/// symlinks: links planted under the next process ids made a root run overwrite their
/// target. Every such name (for the next 1500 process ids, threads 1 to 8) now points at a
/// victim file, which must stay as it was.
#[test]
fn planted_temporary_names_do_not_redirect_writes() {
    let t = tempdir();
    let top = demo_copy(t.path());
    let cache = t.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    for pid in last + 1..last + 1500 {
        for thread in 1..=8 {
            let _ = std::os::unix::fs::symlink(
                &victim,
                cache.join(format!(".tmp-{pid}-ThreadId({thread})")),
            );
        }
    }
    scan(&top, &cache, &[]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        entries(&cache).len(),
        2,
        "the entries were written all the same"
    );
}

/// The key names the classification code: `code ID`, where ID hashes the sources that can
/// change a classification (build.rs). Recomputed here from the sources with build.rs's own
/// list of output-only files, it must match, and cover classify.rs.
#[test]
fn keys_name_the_classification_code() {
    let t = tempdir();
    let top = demo_copy(t.path());
    let cache = t.path().join("cache");
    scan(&top, &cache, &[]);
    let e = &entries(&cache)[0];
    let v: Value = serde_json::from_slice(&std::fs::read(e).unwrap()).unwrap();
    let first = v["key"]
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let id = first
        .split_once(" code ")
        .map(|(_, id)| id.to_string())
        .unwrap_or_else(|| panic!("the key does not name the code: {first:?}"));

    let build = std::fs::read_to_string(root().join("build.rs")).unwrap();
    let list = &build[build.find("const OUTPUT_ONLY").unwrap()..];
    let list = &list[..list.find("];").unwrap()];
    let excluded: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    let mut files: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            let rel = f
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(f).unwrap())
        })
        .filter(|(rel, _)| !excluded.iter().any(|x| rel.starts_with(x)))
        .collect();
    files.sort();
    let fnv = |files: &[(String, Vec<u8>)]| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        for (name, text) in files {
            eat(name.as_bytes());
            eat(&(text.len() as u64).to_le_bytes());
            eat(text);
        }
        format!("{h:016x}")
    };
    assert_eq!(id, fnv(&files), "the binary's code id is not its sources'");
    let classify = files
        .iter_mut()
        .find(|(n, _)| n == "src/classify/mod.rs")
        .expect("classify/mod.rs is hashed");
    classify.1.push(b'\n');
    assert_ne!(
        id,
        fnv(&files),
        "a change to classify/mod.rs must change the id"
    );
}

/// The report of the issue: the evidence lives on a loop-mounted file system; a block-level
/// copy with one grain table entry of the base changed replaces it. Device, inode, size,
/// modification and change times all match; the base's metadata does not, and the cached
/// classes must not be used.
#[test]
fn a_block_level_copy_with_one_grain_changed_is_a_miss() {
    require("mkfs.ext4");
    require("debugfs");
    let t = tempdir();
    let img = t.path().join("evidence.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    sh(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096"])
        .arg(&img));
    let dev = Loop::attach(&img);
    let mnt = t.path().join("mnt");
    let mount = Mount::new(&[], &dev.0, &mnt);
    let top = demo_copy(&mnt);
    let base = mnt.join("win10-base.vmdk");
    sh(&mut Command::new("sync"));
    let cache = t.path().join("cache");
    let before = scan(&top, &cache, &[]);
    assert_eq!(entries(&cache).len(), 2);

    // The first allocated grain table entry of the base: header field gdOffset (sector of the
    // grain directory, FORMATS.md 2.1), directory entry 0, then the first non-zero entry.
    let raw = std::fs::read(&base).unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().unwrap());
    let gd = u64::from_le_bytes(raw[56..64].try_into().unwrap()) as usize * 512;
    let gt = u32_at(gd) as usize * 512;
    let gte = (0..512)
        .map(|i| gt + i * 4)
        .find(|&at| u32_at(at) > 1)
        .expect("an allocated grain in table 0");
    let stat = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        (
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    };
    let stat_before = stat(&base);
    let block = sh(Command::new("debugfs")
        .arg("-R")
        .arg(format!("bmap /win10-base.vmdk {}", gte / 4096))
        .arg(&dev.0));
    let physical: u64 = block.trim().parse().expect("debugfs bmap: a block number");
    mount.unmount();

    // The copy: the same file system, one entry of the base's grain table zeroed, written to
    // the device below the file system.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut d = std::fs::OpenOptions::new()
            .write(true)
            .open(&dev.0)
            .unwrap();
        d.seek(SeekFrom::Start(physical * 4096 + (gte % 4096) as u64))
            .unwrap();
        d.write_all(&[0, 0, 0, 0]).unwrap();
        d.sync_all().unwrap();
    }
    let _mount = Mount::new(&[], &dev.0, &mnt);
    assert_eq!(stat(&base), stat_before, "the copy keeps every stat field");

    let truth = scan(&top, &cache, &["--no-cache"]);
    assert_ne!(truth, before, "zeroing the entry changes the classes");
    assert_eq!(
        scan(&top, &cache, &[]),
        truth,
        "the cache returned stale classes"
    );
}

#[test]
fn a_bases_free_space_is_cached_beside_its_classes() {
    let t = tempdir();
    let top = unpack_ntfs("dirty", t.path());
    let cache = t.path().join("cache");
    let fresh = scan(&top, &cache, &["--no-cache"]);
    // The dirty chain's base still holds a deleted 2 MiB file in its free space.
    assert_eq!(fresh["base_audit"]["dirty_free_bytes"], 2097152);
    assert_eq!(scan(&top, &cache, &[]), fresh);
    let free: Vec<_> = entries(&cache)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("\"free_bytes\"")
        })
        .collect();
    assert_eq!(free.len(), 1, "one free-space entry for the base");
    // The next scan reads it: an entry edited to another plausible figure is believed (what
    // the cache cannot see, as for classes), one that cannot be true is recomputed.
    let entry = std::fs::read_to_string(&free[0]).unwrap();
    std::fs::write(
        &free[0],
        entry.replace("\"dirty_bytes\":2097152", "\"dirty_bytes\":12288"),
    )
    .unwrap();
    assert_eq!(
        scan(&top, &cache, &[])["base_audit"]["dirty_free_bytes"],
        12288
    );
    std::fs::write(
        &free[0],
        entry.replace("\"dirty_bytes\":2097152", "\"dirty_bytes\":999999999999"),
    )
    .unwrap();
    assert_eq!(scan(&top, &cache, &[]), fresh);
    // --strict and --no-cache never read it.
    std::fs::write(
        &free[0],
        entry.replace("\"dirty_bytes\":2097152", "\"dirty_bytes\":12288"),
    )
    .unwrap();
    assert_eq!(scan(&top, &cache, &["--no-cache"]), fresh);
    assert_eq!(scan(&top, &cache, &["--strict"]), fresh);
}
