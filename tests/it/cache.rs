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
    serde_json::from_slice(&out.stdout).expect("JSON")
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
