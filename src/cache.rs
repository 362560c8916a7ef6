//! Results of the layers below the top, kept between runs. A base (a View replica, a
//! snapshot's parent) does not change while deltas hang on it, and a datastore holds dozens of
//! clones of one replica: its classification is computed once, not once per clone and week.
//!
//! **What an entry promises.** A layer's entry is reused only when all of these are equal to
//! what they were when it was written, for that layer and every layer below it (the classes
//! depend on the parent view):
//!
//! - the code: `DELTASCOPE_CODE_ID`, a hash of the classification sources computed by
//!   `build.rs`, so a build with other classification code never reuses an entry;
//! - each file's canonical path, and the identity of the file actually read (`fstat` of the
//!   open descriptor: device, inode, length, modification and change times in nanoseconds);
//! - each layer's metadata fingerprint: a 128-bit hash of its descriptor and of every
//!   allocated piece its grain tables map (virtual range, state, file offset), read from the
//!   files on every run. A block-level copy with one grain allocated, freed or moved in a
//!   sparse layer is a miss even when every `stat` field matches.
//!
//! A base's **guest free space** (what `scan` of one disk audits: its NTFS free clusters and
//! how many of their bytes are not zero) is kept beside its classes, under the base's key plus
//! the id of the code that reads guests (`DELTASCOPE_GUEST_CODE_ID`, from `src/guest/` and
//! `src/blame.rs`): reading a replica's free space again for every clone and week would cost
//! a read of the replica.
//!
//! **What it cannot see**: data rewritten in place under unchanged metadata and unchanged
//! `stat` fields (a grain's bytes edited at block level in a copy that keeps device, inode and
//! times; a flat extent's data, which has no tables). The fingerprint is not a cryptographic
//! hash either: it catches copies and edits, not metadata crafted to collide. The evidence
//! mode is `--strict` or `--no-cache`: they never read or write the cache.
//!
//! **The directory is not trusted.** Entries live under `$DELTASCOPE_CACHE`, else
//! `$XDG_CACHE_HOME/deltascope`, else `~/.cache/deltascope` (created with mode 0700; a
//! directory that others may write to is not used). Entries are opened with `O_NOFOLLOW` and
//! `O_NONBLOCK`, must be regular files of at most [`MAX_ENTRY_BYTES`], and every figure is
//! checked against the chain (the metadata walk gives the exact allocated, zero-entry and
//! unmapped bytes and the grain count; the classes must sum to the allocated bytes, and so
//! on): anything odd is a miss, and the fresh result replaces it. New entries are written to
//! a temporary file created with `O_EXCL` under a random name and renamed into place. A cache
//! that cannot be read or written is skipped: it never fails a scan. Layers with a file that
//! is not a regular file (a block device) are never cached.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::chain::Chain;
use crate::classify::{ClassCounts, LayerStats};
use crate::format::{ExtentMap, GrainState};
use crate::layer::Layer;

/// What identifies the classification code of this build (see `build.rs`).
pub const CODE_ID: &str = env!("DELTASCOPE_CODE_ID");

/// What identifies the code that reads a guest's free space (`src/guest/`, `src/blame.rs`; see
/// `build.rs`): free-space entries name it besides [`CODE_ID`].
pub const GUEST_CODE_ID: &str = env!("DELTASCOPE_GUEST_CODE_ID");

/// The largest entry read; an entry is a few kilobytes (its key lists the files of the layers
/// below, a few hundred bytes per layer).
pub const MAX_ENTRY_BYTES: u64 = 1 << 20;

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

/// What the metadata walk of a layer found: the figures a cached entry must reproduce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Facts {
    allocated_bytes: u64,
    zero_entry_bytes: u64,
    unmapped_bytes: u64,
    grains: u64,
    virtual_size: u64,
    file_bytes: u64,
}

/// The identity of a layer and every layer below it (see [`LayerCache::keys`]), with what its
/// metadata says, to check an entry's figures against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    text: String,
    facts: Facts,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    key: String,
    stats: LayerStats,
}

/// The free space of the guest in one layer alone (a base's audit): bytes in free clusters,
/// and of those the bytes that are not zero.
#[derive(serde::Serialize, serde::Deserialize)]
struct FreeEntry {
    key: String,
    free_bytes: u64,
    dirty_bytes: u64,
}

/// The key text of the free-space entry of the layer `key` names.
fn free_key(key: &CacheKey) -> String {
    format!("{}guest free space, code {GUEST_CODE_ID}\n", key.text)
}

/// A 128-bit fingerprint of a layer's metadata walk: two multiply-rotate lanes over 64-bit
/// words, finished with an avalanche. It tells changed tables from unchanged ones beside the
/// fstat identity every key holds (a file rewritten in place changes its ctime, which no
/// user can set back); it is fast rather than collision-proof: SipHash over every grain cost
/// a hot scan of a 6 GiB base 3 % of its time.
#[derive(Debug, Default)]
struct Fingerprint {
    a: u64,
    b: u64,
    n: u64,
}

impl Fingerprint {
    fn word(&mut self, x: u64) {
        self.n += 1;
        self.a = (self.a ^ x)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
        self.b = (self.b.rotate_left(23) ^ x ^ self.n).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        self.word(bytes.len() as u64);
    }

    fn finish(&self) -> (u64, u64) {
        fn avalanche(mut x: u64) -> u64 {
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            x ^ (x >> 33)
        }
        (
            avalanche(self.a ^ self.n),
            avalanche(self.b ^ self.a.rotate_left(32)),
        )
    }
}

/// One layer's own part of a key, and its facts; `None` when the layer cannot be cached.
fn layer_identity(layer: &Layer) -> Option<(String, Facts)> {
    let mut text = String::from("layer\n");
    for src in &layer.files {
        let id = src.identity()?;
        let path = std::fs::canonicalize(src.path()).ok()?;
        text.push_str(&format!("{}\t{id}\n", path.display()));
    }
    let mut facts = Facts {
        virtual_size: layer.virtual_size,
        file_bytes: layer.file_size(),
        ..Facts::default()
    };
    let mut h = Fingerprint::default();
    h.bytes(format!("{:?}", layer.descriptor).as_bytes());
    let mut scratch = Vec::new();
    layer
        .walk(&mut scratch, &mut |extent, p| {
            let (kind, at) = match p.state {
                GrainState::Unallocated => return Ok(()),
                GrainState::Zero => {
                    facts.zero_entry_bytes += p.len;
                    (1u8, 0)
                }
                GrainState::Unmapped => {
                    facts.unmapped_bytes += p.len;
                    (2, 0)
                }
                GrainState::Data { file_offset } => (3, file_offset),
                GrainState::Compressed { marker, .. } => (4, marker),
            };
            facts.allocated_bytes += p.len;
            facts.grains += 1;
            // A flat extent's pieces follow from its descriptor line and its file's length,
            // both in the key already; hashing them cost a 32 GiB base 40 ms a scan.
            if matches!(layer.extents[extent].map(), Some(ExtentMap::Flat(_))) {
                return Ok(());
            }
            for w in [extent as u64, p.virt, p.len, u64::from(kind), at] {
                h.word(w);
            }
            Ok(())
        })
        .ok()?;
    let (a, b) = h.finish();
    text.push_str(&format!("metadata {a:016x}{b:016x}\n"));
    Some((text, facts))
}

impl LayerCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        LayerCache { dir }
    }

    /// The keys of layers `0..upto`: each names the code, and every file (path, identity)
    /// and metadata fingerprint of that layer and those below it. A layer with a file that
    /// cannot be identified (not a regular file, not statted) has no key, nor do the layers
    /// above it. Each layer's metadata is walked once, the layers in parallel on rayon's
    /// current pool.
    pub fn keys(chain: &Chain, upto: usize) -> Vec<Option<CacheKey>> {
        let own: Vec<Option<(String, Facts)>> = chain.layers[..upto.min(chain.layers.len())]
            .par_iter()
            .map(layer_identity)
            .collect();
        let mut text = Some(format!("deltascope {} code {CODE_ID}\n", crate::VERSION));
        own.into_iter()
            .map(|o| {
                let (t, facts) = match (text.as_mut(), o) {
                    (Some(t), Some((mine, facts))) => {
                        t.push_str(&mine);
                        (t.clone(), facts)
                    }
                    _ => {
                        text = None;
                        return None;
                    }
                };
                Some(CacheKey { text: t, facts })
            })
            .collect()
    }

    fn file_for(&self, key: &str) -> PathBuf {
        // FNV-1a over the key names the file; the full key inside it is what is compared.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.dir.join(format!("layer-{h:016x}.json"))
    }

    /// Whether the directory may be used: a directory (not a link to one planted inside
    /// another) that nobody but its owner can write to.
    fn dir_is_private(&self) -> bool {
        std::fs::symlink_metadata(&self.dir)
            .is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o022 == 0)
    }

    /// The cached stats of the layer `key` names, if its entry is present, sound, and
    /// agrees with the layer's metadata.
    pub fn get(&self, key: &CacheKey) -> Option<LayerStats> {
        let entry: Entry = self.read_entry(&key.text)?;
        (entry.key == key.text && plausible(&entry.stats, &key.facts)).then_some(entry.stats)
    }

    /// The cached free space of the guest in the layer `key` names, seen alone (a base's):
    /// `(free_bytes, dirty_bytes)`, if its entry is present and sound.
    pub fn get_free(&self, key: &CacheKey) -> Option<(u64, u64)> {
        let text = free_key(key);
        let e: FreeEntry = self.read_entry(&text)?;
        (e.key == text && e.dirty_bytes <= e.free_bytes && e.free_bytes <= key.facts.virtual_size)
            .then_some((e.free_bytes, e.dirty_bytes))
    }

    /// Keeps the free space of the guest in the layer `key` names; failures are ignored.
    pub fn put_free(&self, key: &CacheKey, free_bytes: u64, dirty_bytes: u64) {
        let text = free_key(key);
        let entry = FreeEntry {
            key: text.clone(),
            free_bytes,
            dirty_bytes,
        };
        let _ = self.write_entry(&self.file_for(&text), &entry);
    }

    /// The entry filed under key text `text`, parsed, if it can be read safely.
    fn read_entry<T: serde::de::DeserializeOwned>(&self, text: &str) -> Option<T> {
        if !self.dir_is_private() {
            return None;
        }
        // Links are not followed: one to /dev/zero or elsewhere fails to open.
        let bytes = crate::bytes::read_small(&self.file_for(text), MAX_ENTRY_BYTES, false).ok()?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            return None;
        }
        serde_json::from_slice(&bytes).ok()
    }

    /// Keeps the stats of the layer `key` names; failures are ignored (the cache is an
    /// optimisation).
    pub fn put(&self, key: &CacheKey, stats: &LayerStats) {
        let entry = Entry {
            key: key.text.clone(),
            stats: stats.clone(),
        };
        let _ = self.write_entry(&self.file_for(&key.text), &entry);
    }

    fn write_entry(&self, path: &Path, entry: &impl serde::Serialize) -> std::io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        if !self.dir_is_private() {
            return Err(std::io::Error::other("cache directory writable by others"));
        }
        let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        let tmp = self
            .dir
            .join(format!(".tmp-{:016x}", crate::outfile::random_u64()));
        // O_EXCL (create_new): never a file or link someone planted under that name.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let done = f
            .write_all(&bytes)
            .and_then(|()| std::fs::rename(&tmp, path));
        if done.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        done
    }
}

/// Whether cached stats can be the classification of a layer whose metadata says `f`.
fn plausible(s: &LayerStats, f: &Facts) -> bool {
    let sum = |c: &ClassCounts| {
        c.fresh
            .checked_add(c.overwritten)
            .and_then(|v| v.checked_add(c.identical))
            .and_then(|v| v.checked_add(c.zeroed))
    };
    let a = s.allocated_bytes;
    let Some(blocks) = sum(&s.blocks_4k) else {
        return false;
    };
    // Each class's bytes, summed over the allocation-order profile, within the class.
    let mut profile = ClassCounts::default();
    for p in &s.profile {
        let add = |x: u64, y: u64| x.checked_add(y);
        match (
            add(profile.fresh, p.fresh),
            add(profile.overwritten, p.overwritten),
            add(profile.identical, p.identical),
            add(profile.zeroed, p.zeroed),
        ) {
            (Some(fresh), Some(overwritten), Some(identical), Some(zeroed)) => {
                profile = ClassCounts {
                    fresh,
                    overwritten,
                    identical,
                    zeroed,
                }
            }
            _ => return false,
        }
    }
    a == f.allocated_bytes
        && s.zero_entry_bytes == f.zero_entry_bytes
        && s.unmapped_bytes == f.unmapped_bytes
        && s.grains == f.grains
        && a <= f.virtual_size
        && sum(&s.classes) == Some(a)
        // Every counted block holds 1 to 4096 allocated bytes.
        && blocks <= a
        && blocks.checked_mul(crate::classify::BLOCK).is_some_and(|b| b >= a)
        && s.stored_bytes <= f.file_bytes
        && s.parent_zero_bytes <= a
        && s.parent_block_zero_bytes <= a
        && s.content_zero_bytes <= a
        // Zero and unmapped entries hold zeros, and zeroed grains hold only zero bytes.
        && f.zero_entry_bytes
            .checked_add(f.unmapped_bytes)
            .is_some_and(|z| z <= s.classes.zeroed)
        && s.classes.zeroed <= s.content_zero_bytes
        && profile.fresh <= s.classes.fresh
        && profile.overwritten <= s.classes.overwritten
        && profile.identical <= s.classes.identical
        && profile.zeroed <= s.classes.zeroed
}

#[cfg(test)]
mod tests {
    use super::Fingerprint;

    fn of(words: &[u64]) -> (u64, u64) {
        let mut f = Fingerprint::default();
        words.iter().for_each(|&w| f.word(w));
        f.finish()
    }

    #[test]
    fn the_fingerprint_sees_every_change_of_value_order_and_length() {
        let base = of(&[1, 2, 3, 4, 0x10000]);
        let others = [
            of(&[1, 2, 3, 4, 0x10001]),
            of(&[2, 1, 3, 4, 0x10000]),
            of(&[1, 2, 3, 4, 0x10000, 0]),
            of(&[1, 2, 3, 4]),
            of(&[0, 1, 2, 3, 4, 0x10000]),
        ];
        for o in others {
            assert_ne!(o.0, base.0);
            assert_ne!(o.1, base.1);
        }
        assert_eq!(of(&[1, 2, 3, 4, 0x10000]), base);
        let mut a = Fingerprint::default();
        a.bytes(b"RW 16 SPARSE");
        let mut b = Fingerprint::default();
        b.bytes(b"RW 16 SPARSE\0");
        assert_ne!(a.finish(), b.finish());
    }
}
