//! Results of the layers below the top, kept between runs. A base (a View replica, a
//! snapshot's parent) does not change while deltas hang on it, and a datastore holds dozens of
//! clones of one replica: its classification is computed once, not once per clone and week.
//!
//! A layer's entry is keyed by every file of that layer and of every layer below it (the
//! classes depend on the parent view): canonical path, length, modification and change times
//! with nanoseconds, inode and device, and deltascope's version. Any change to any of them is
//! a miss. The top layer, the one that grows, is never cached. Entries are small JSON files
//! written atomically (a temporary file renamed into place) under `$DELTASCOPE_CACHE`, else
//! `$XDG_CACHE_HOME/deltascope`, else `~/.cache/deltascope`; `--no-cache` turns all of this off.
//! A cache that cannot be read or written is skipped: it never fails a scan.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::chain::Chain;
use crate::classify::LayerStats;

/// Where the cache lives, or `None` when no home for it is known.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DELTASCOPE_CACHE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("deltascope"))
}

/// The cache of one run.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
}

/// The identity of a layer and every layer below it (see [`LayerCache::key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey(String);

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    key: String,
    stats: LayerStats,
}

impl LayerCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        LayerCache { dir }
    }

    /// The identity of layers `0..=li`: every file's path and metadata. `None` when a file
    /// cannot be statted (then nothing is cached). Computed once per layer and scan, and
    /// handed to [`get`](Self::get) and [`put`](Self::put).
    pub fn key(chain: &Chain, li: usize) -> Option<CacheKey> {
        let mut key = format!("deltascope {}\n", crate::report::VERSION);
        for layer in &chain.layers[..=li] {
            key.push_str("layer\n");
            for src in &layer.files {
                let path = std::fs::canonicalize(src.path()).ok()?;
                let m = std::fs::metadata(&path).ok()?;
                key.push_str(&format!(
                    "{}\t{}\t{}.{}\t{}.{}\t{}\t{}\n",
                    path.display(),
                    m.len(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                    m.ino(),
                    m.dev()
                ));
            }
        }
        Some(CacheKey(key))
    }

    fn file_for(&self, key: &str) -> PathBuf {
        // FNV-1a over the key names the file; the full key inside it is what is compared.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.dir.join(format!("layer-{h:016x}.json"))
    }

    /// The cached stats of the layer `key` names, if its files and those below it are
    /// unchanged.
    pub fn get(&self, key: &CacheKey) -> Option<LayerStats> {
        let text = std::fs::read(self.file_for(&key.0)).ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        (entry.key == key.0).then_some(entry.stats)
    }

    /// Keeps the stats of the layer `key` names; failures are ignored (the cache is an
    /// optimisation).
    pub fn put(&self, key: &CacheKey, stats: &LayerStats) {
        let path = self.file_for(&key.0);
        let entry = Entry {
            key: key.0.clone(),
            stats: stats.clone(),
        };
        let _ = write_atomically(&self.dir, &path, &entry);
    }
}

fn write_atomically(dir: &Path, path: &Path, entry: &Entry) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(
        &tmp,
        serde_json::to_vec(entry).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, path)
}
