//! A scan: every layer of one chain classified and the top's ceilings computed; and the scan
//! of many disks at once (a datastore), each disk on its own, so that one broken chain is
//! reported and the others still scanned.
//!
//! A scan returns facts ([`ChainScan`]): per layer what it is and what classification found,
//! the top's ceilings, and what was noticed on the way. `report` turns them into the JSON
//! contract. Looking into the guest is a step the caller asks for ([`ScanOptions`]).

use std::path::PathBuf;

use rayon::prelude::*;

use crate::blame::{FreeSpace, OverwriteSplit, TopGuest, ViewNtfs};
use crate::cache::LayerCache;
use crate::ceiling::Ceiling;
use crate::chain::{Chain, ChainOptions};
use crate::classify::{GrainClass, LayerStats, classify_layer, classify_layer_blocks};
use crate::error::{Error, Result, Warning};
use crate::format::Format;
use crate::progress::Progress;

/// What a scan does besides classifying every layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Read the top's parent view as a guest disk: when it holds an NTFS volume, split the
    /// top's overwritten bytes into live parent data and parent free space
    /// ([`ChainScan::ntfs_overwritten`]). A volume that cannot be read is a
    /// `guest_unreadable` warning on the top layer.
    pub ntfs_split: bool,
    /// Turn a warning the scan raises into an error (`--strict`).
    pub strict: bool,
    /// Read the guest's files too: blame the top layer's bytes (one group per file) and count
    /// the grains that zeroing free space and shrinking would return, when the top view holds
    /// NTFS ([`ChainScan::guest`]); and audit the base ([`ChainScan::base`]). What the verdict
    /// and remedies of a single-disk scan are built from. Memory: 16 bytes per run of the
    /// top's blocks of one class, as for `blame`.
    pub guest_files: bool,
}

impl ScanOptions {
    /// What the command line's datastore `scan` does: the NTFS split included, no files.
    pub fn full(strict: bool) -> Self {
        ScanOptions {
            ntfs_split: true,
            strict,
            guest_files: false,
        }
    }

    /// What the command line's `scan` of one disk (and `report`) does: everything.
    pub fn single(strict: bool) -> Self {
        ScanOptions {
            guest_files: true,
            ..Self::full(strict)
        }
    }
}

/// One layer of a scanned chain: what it is, and what classification found.
#[derive(Debug, Clone)]
pub struct ScannedLayer {
    /// The layer's file, as opened.
    pub path: PathBuf,
    /// Data format.
    pub format: Format,
    /// The descriptor's createType (`?` when it has none).
    pub create_type: String,
    /// Virtual size in bytes.
    pub virtual_size: u64,
    /// Grain size in bytes.
    pub grain_size: u64,
    /// `CID`.
    pub cid: Option<u32>,
    /// `parentCID`.
    pub parent_cid: Option<u32>,
    /// Sum of the layer's file lengths.
    pub file_size: u64,
    /// What was noticed about this layer: opening it, and (on the top) scanning.
    pub warnings: Vec<Warning>,
    /// What classification found.
    pub stats: LayerStats,
}

/// What a scan of one chain found.
#[derive(Debug, Clone)]
pub struct ChainScan {
    /// Base first, top last.
    pub layers: Vec<ScannedLayer>,
    /// The top layer's ceilings.
    pub ceiling: Option<Ceiling>,
    /// The top's overwritten bytes split by its parent view's NTFS volume, when asked for and
    /// the parent view holds one.
    pub ntfs_overwritten: Option<OverwriteSplit>,
    /// What the top view's guest files say ([`ScanOptions::guest_files`], a chain of two layers
    /// or more whose top view holds NTFS).
    pub guest: Option<TopGuest>,
    /// Why `guest` is empty, in words, when guest files were asked for.
    pub guest_note: Option<String>,
    /// The base (layer 0) audited, when guest files were asked for.
    pub base: Option<BaseAudit>,
}

/// The base of a chain (layer 0) as clones see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseAudit {
    /// Bytes of the base's view whose 4 KiB block reads as zero: what a new clone can grow
    /// into (its expected ceiling).
    pub never_used_bytes: u64,
    /// The base guest's free space, when its view holds NTFS.
    pub free: Option<FreeSpace>,
}

impl ChainScan {
    /// The top layer.
    pub fn top(&self) -> Option<&ScannedLayer> {
        self.layers.last()
    }
}

/// Table units a scan of `chain` walks (for a progress bar's length).
pub fn table_units(chain: &Chain) -> u64 {
    (0..chain.layers.len())
        .map(|i| crate::classify::table_units(chain, i))
        .sum()
}

/// Classifies every layer of `chain` (each layer's grain tables in parallel on the current
/// rayon pool), computes the top's ceilings, and checks that no file changed meanwhile.
/// Layers below the top come from `cache` when it holds them unchanged, and go into it.
pub fn scan_chain(
    chain: &Chain,
    opts: &ScanOptions,
    progress: &dyn Progress,
    cache: Option<&LayerCache>,
) -> Result<ChainScan> {
    scan_chain_in(chain, opts, progress, cache, None)
}

/// [`scan_chain`], taking layers below the top from `shared` when this run classified them
/// already (for another disk on the same replica).
fn scan_chain_in(
    chain: &Chain,
    opts: &ScanOptions,
    progress: &dyn Progress,
    cache: Option<&LayerCache>,
    shared: Option<&SharedLayers>,
) -> Result<ChainScan> {
    let n = chain.layers.len();
    let top = n.saturating_sub(1);
    // Guest views that cannot be read are warnings on the top layer; the classes do not
    // depend on them.
    let mut guest_warnings = Vec::new();
    // A view that cannot be read gives one warning (the same broken volume seen in two views
    // gives one).
    let probe = |upto: usize, warnings: &mut Vec<Warning>| -> (Option<ViewNtfs>, bool) {
        match crate::blame::view_ntfs(chain, upto) {
            Ok(v) => (v, false),
            Err(detail) => {
                let seen = warnings.iter().any(
                    |w| matches!(w, Warning::GuestUnreadable { detail: d, .. } if *d == detail),
                );
                if !seen {
                    warnings.push(Warning::GuestUnreadable {
                        path: chain.top().path.clone(),
                        detail,
                    });
                }
                (None, true)
            }
        }
    };
    // When the top's parent view holds NTFS, the top's overwritten bytes are split into live
    // parent data and parent free space (memory: overwritten blocks only, unless the top's
    // own guest is read too).
    let (parent_ntfs, _) = if (opts.ntfs_split || opts.guest_files) && n >= 2 {
        probe(n - 1, &mut guest_warnings)
    } else {
        (None, false)
    };
    let (top_ntfs, top_unreadable) = if opts.guest_files && n >= 2 {
        probe(n, &mut guest_warnings)
    } else {
        (None, false)
    };
    let keys = match cache {
        Some(_) => LayerCache::keys(chain, top),
        None => Vec::new(),
    };
    // The base's free space: from the cache beside the base's classes when it is there (a
    // base below clones does not change, and reading a replica's free space costs a read of
    // it), else read from the base's view: the top's parent view in a chain of two, the
    // top's own alone.
    let base_key = cache.zip(keys.first().and_then(Option::as_ref));
    let cached_free = match (opts.guest_files, base_key) {
        (true, Some((c, k))) => c.get_free(k).map(|(free_bytes, dirty_bytes)| FreeSpace {
            free_bytes,
            dirty_bytes,
        }),
        _ => None,
    };
    let base_own = if opts.guest_files && cached_free.is_none() && (n == 1 || n > 2) {
        probe(1, &mut guest_warnings).0
    } else {
        None
    };
    let base_ntfs = if n == 2 {
        parent_ntfs.as_ref()
    } else {
        base_own.as_ref()
    };
    if opts.strict
        && let Some(w) = guest_warnings.first()
    {
        return Err(Error::Strict(w.clone()));
    }
    let mut split = None;
    let mut guest = None;
    let stats = (0..n)
        .map(|i| {
            if i == top
                && let Some(t) = &top_ntfs
            {
                let (stats, runs) = classify_layer_blocks(chain, i, progress, None)?;
                let g = crate::blame::top_guest(chain, t, parent_ntfs.as_ref(), &stats, runs)?;
                if opts.ntfs_split && parent_ntfs.is_some() {
                    split = Some(g.blame.groups.iter().fold(
                        OverwriteSplit::default(),
                        |mut a, g| {
                            a.live_parent_data += g.overwritten_split.live_parent_data;
                            a.parent_free_space += g.overwritten_split.parent_free_space;
                            a.unknown += g.overwritten_split.unknown;
                            a
                        },
                    ));
                }
                guest = Some(g);
                return Ok(stats);
            }
            if i == top
                && opts.ntfs_split
                && let Some(p) = &parent_ntfs
            {
                let (stats, runs) =
                    classify_layer_blocks(chain, i, progress, Some(GrainClass::Overwritten))?;
                split = Some(crate::blame::split_overwritten(p, runs));
                return Ok(stats);
            }
            // Counted in the run's progress when the shared layer was classified.
            if let Some(hit) = shared.and_then(|m| m.get(chain, i)) {
                return Ok(hit);
            }
            cached_or_classified(chain, i, progress, cache, &keys)
        })
        .collect::<Result<Vec<_>>>()?;
    let guest_note = match (&guest, opts.guest_files) {
        (Some(_), _) | (None, false) => None,
        (None, true) if n < 2 => Some("a base alone is no delta".into()),
        (None, true) if top_unreadable => {
            Some("the top view's NTFS volume cannot be read, see the warning".into())
        }
        (None, true) => Some("the top view holds no NTFS volume".into()),
    };
    let base = match (opts.guest_files, stats.first()) {
        (true, Some(s0)) => {
            let free = match cached_free {
                Some(f) => Some(f),
                None => {
                    let f = base_ntfs
                        .map(|b| crate::blame::free_space(chain, b))
                        .transpose()?;
                    if let (Some(f), Some((c, k))) = (f, base_key) {
                        c.put_free(k, f.free_bytes, f.dirty_bytes);
                    }
                    f
                }
            };
            Some(BaseAudit {
                never_used_bytes: crate::ceiling::base_zero_bytes(chain, s0)?,
                free,
            })
        }
        _ => None,
    };
    let ceiling = if stats.is_empty() {
        None
    } else {
        Some(crate::ceiling::ceiling(chain, &stats)?)
    };
    chain.check_unchanged()?;
    let mut layers: Vec<ScannedLayer> = chain
        .layers
        .iter()
        .zip(stats)
        .enumerate()
        .map(|(i, (l, stats))| ScannedLayer {
            path: l.path.clone(),
            format: l.format(),
            create_type: l.create_type().to_string(),
            virtual_size: l.virtual_size,
            grain_size: l.grain_size(),
            cid: l.descriptor.cid,
            parent_cid: l.descriptor.parent_cid,
            file_size: l.file_size(),
            warnings: chain.layer_warnings(i),
            stats,
        })
        .collect();
    if let Some(t) = layers.last_mut() {
        t.warnings.extend(guest_warnings);
    }
    Ok(ChainScan {
        layers,
        ceiling,
        ntfs_overwritten: split,
        guest,
        guest_note,
        base,
    })
}

/// One disk of a datastore scan and what became of it.
#[derive(Debug)]
pub struct DiskScan {
    /// Index of the LUN the disk was found on.
    pub lun: usize,
    /// The top layer.
    pub path: PathBuf,
    /// The scan, or the error that stopped it, as a message naming file and structure.
    pub result: std::result::Result<ChainScan, String>,
    /// The canonical path of each layer of the chain, base first (empty when it failed): the
    /// one name a file has, so that a layer two chains share is counted once.
    pub layer_files: Vec<PathBuf>,
}

/// Layer `i` of `chain` from the layer cache when it holds it under `keys[i]` (its units
/// ticked at once), else classified and put there.
fn cached_or_classified(
    chain: &Chain,
    i: usize,
    progress: &dyn Progress,
    cache: Option<&LayerCache>,
    keys: &[Option<crate::cache::CacheKey>],
) -> Result<LayerStats> {
    let cached = cache.zip(keys.get(i).and_then(Option::as_ref));
    if let Some(hit) = cached.as_ref().and_then(|(c, k)| c.get(k)) {
        progress.inc(crate::classify::table_units(chain, i));
        return Ok(hit);
    }
    let s = classify_layer(chain, i, progress)?;
    if let Some((c, k)) = cached {
        c.put(k, &s);
    }
    Ok(s)
}

/// The layers below the tops of one run (a datastore's replicas, a snapshot chain's older
/// disks), classified once for every disk above them. A layer is named by the files of it
/// and of every layer below it, each by its real path and its `fstat` identity: within one
/// run that is the same file content, and every chain is checked for changed files when
/// its scan ends. Layers whose files have no identity (block devices) are not shared.
#[derive(Debug, Default)]
pub struct SharedLayers {
    stats: std::sync::Mutex<std::collections::HashMap<String, LayerStats>>,
}

impl SharedLayers {
    /// The name of layer `i` of `chain` and the layers below it.
    fn key(chain: &Chain, i: usize) -> Option<String> {
        let mut key = String::new();
        for layer in chain.layers.get(..=i)? {
            for src in &layer.files {
                let id = src.identity()?;
                let path = std::fs::canonicalize(src.path()).ok()?;
                key.push_str(&format!("{}\t{id}\n", path.display()));
            }
            key.push_str("--\n");
        }
        Some(key)
    }

    fn get(&self, chain: &Chain, i: usize) -> Option<LayerStats> {
        let key = Self::key(chain, i)?;
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.get(&key).cloned()
    }

    fn put(&self, key: String, stats: LayerStats) {
        let mut all = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(key, stats);
    }
}

/// The work of one disk, as `measure` found it: table units of the layers only it has (its
/// top), and of each layer below, named as [`SharedLayers`] names them.
#[derive(Debug, Clone, Default)]
pub struct DiskWork {
    own: u64,
    below: Vec<(String, usize, u64)>,
}

/// Table units a run of these disks walks: each disk's own layers, and each shared layer
/// once (what the progress bar counts).
pub fn total_units(measured: &[Result<DiskWork>]) -> u64 {
    let mut seen = std::collections::HashSet::new();
    measured
        .iter()
        .filter_map(|m| m.as_ref().ok())
        .map(|w| {
            w.own
                + w.below
                    .iter()
                    .filter(|(k, _, _)| seen.insert(k.clone()))
                    .map(|b| b.2)
                    .sum::<u64>()
        })
        .sum()
}

/// Opens every disk once to size the work: table units per disk and per layer below its
/// top, or why it cannot be opened. Chains are closed again, so that a datastore of
/// thousands of disks never holds thousands of open files.
pub fn measure(disks: &[(usize, PathBuf)], opts: &ChainOptions) -> Vec<Result<DiskWork>> {
    disks
        .par_iter()
        .map(|(_, p)| {
            Chain::open(p, opts).map(|c| {
                let top = c.layers.len().saturating_sub(1);
                let mut work = DiskWork::default();
                for i in 0..c.layers.len() {
                    let units = crate::classify::table_units(&c, i);
                    match SharedLayers::key(&c, i) {
                        Some(k) if i < top => work.below.push((k, i, units)),
                        _ => work.own += units,
                    }
                }
                work
            })
        })
        .collect()
}

/// Scans every disk in parallel; each disk's layers are classified in parallel too (rayon
/// balances the two levels). Disks that `measure` could not open are not opened again.
/// Layers below the tops are classified first, each once however many disks sit on it (a
/// replica under 1,000 clones), from the layer cache when it holds them.
pub fn scan_disks(
    disks: &[(usize, PathBuf)],
    measured: &[Result<DiskWork>],
    opts: &ChainOptions,
    scan: &ScanOptions,
    progress: &dyn Progress,
    cache: Option<&LayerCache>,
) -> Vec<DiskScan> {
    let shared = SharedLayers::default();
    let mut below: std::collections::HashMap<&str, (usize, usize)> =
        std::collections::HashMap::new();
    for (d, m) in measured.iter().enumerate() {
        for (k, i, _) in m.as_ref().map(|w| w.below.as_slice()).unwrap_or_default() {
            below.entry(k.as_str()).or_insert((d, *i));
        }
    }
    let below: Vec<(usize, usize)> = below.into_values().collect();
    // A layer that fails here is left to the disks' own scans, which report the error.
    below.par_iter().for_each(|&(d, i)| {
        let Ok(chain) = Chain::open(&disks[d].1, opts) else {
            return;
        };
        let Some(key) = SharedLayers::key(&chain, i) else {
            return;
        };
        let keys = match cache {
            Some(_) => LayerCache::keys(&chain, i + 1),
            None => Vec::new(),
        };
        let Ok(stats) = cached_or_classified(&chain, i, progress, cache, &keys) else {
            return;
        };
        if chain.check_unchanged().is_ok() {
            shared.put(key, stats);
        }
    });
    disks
        .par_iter()
        .zip(measured.par_iter())
        .map(|((lun, path), m)| {
            let result = match m {
                Err(e) => Err(e.to_string()),
                Ok(_) => Chain::open(path, opts)
                    .and_then(|c| {
                        let r = scan_chain_in(&c, scan, progress, cache, Some(&shared))?;
                        let files = c
                            .layers
                            .iter()
                            .map(|l| {
                                std::fs::canonicalize(&l.path).unwrap_or_else(|_| l.path.clone())
                            })
                            .collect();
                        Ok((r, files))
                    })
                    .map_err(|e| e.to_string()),
            };
            let (result, layer_files) = match result {
                Ok((r, f)) => (Ok(r), f),
                Err(e) => (Err(e), Vec::new()),
            };
            DiskScan {
                lun: *lun,
                path: path.clone(),
                result,
                layer_files,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::files::Memory;
    use crate::progress::NoProgress;
    use crate::source::ReadMode;

    /// Progress that counts.
    #[derive(Default)]
    struct Ticks(std::sync::atomic::AtomicU64);

    impl Progress for Ticks {
        fn inc(&self, n: u64) {
            self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn a_base_under_several_disks_is_classified_once_per_run() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let d = dir.path();
        let desc = |cid: &str, parent: &str, flat: &str| {
            let hint = if parent == "ffffffff" {
                String::new()
            } else {
                "parentFileNameHint=\"base.vmdk\"\n".to_string()
            };
            format!(
                "# Disk DescriptorFile\nversion=1\nCID={cid}\nparentCID={parent}\ncreateType=\"monolithicFlat\"\n{hint}RW 65536 FLAT \"{flat}\" 0\n"
            )
        };
        std::fs::write(
            d.join("base.vmdk"),
            desc("00000001", "ffffffff", "base-flat.vmdk"),
        )
        .expect("write");
        // 32 MiB: one walk unit of a flat extent.
        let mut base = vec![1u8; 32 << 20];
        base[1 << 20..2 << 20].fill(9);
        std::fs::write(d.join("base-flat.vmdk"), &base).expect("write");
        let mut disks = Vec::new();
        for n in 1..=3u8 {
            let name = format!("clone{n}.vmdk");
            let flat = format!("clone{n}-flat.vmdk");
            std::fs::write(d.join(&name), desc("00000002", "00000001", &flat)).expect("write");
            let mut top = base.clone();
            top[..(n as usize) << 20].fill(n);
            std::fs::write(d.join(&flat), top).expect("write");
            disks.push((0, d.join(name)));
        }
        let opts = ChainOptions::default();
        let measured = measure(&disks, &opts);
        let per_disk: u64 = disks
            .iter()
            .map(|(_, p)| table_units(&Chain::open(p, &opts).expect("open")))
            .sum();
        let total = total_units(&measured);
        // Three tops and one base, one walk unit each: the base is counted once, not thrice.
        assert_eq!(per_disk, 6);
        assert_eq!(total, 4);
        let ticks = Ticks::default();
        let scans = scan_disks(
            &disks,
            &measured,
            &opts,
            &ScanOptions::full(false),
            &ticks,
            None,
        );
        // Each classification ticks its units: the base was classified once.
        assert_eq!(ticks.0.into_inner(), total);
        for (s, (_, p)) in scans.iter().zip(&disks) {
            let chain = Chain::open(p, &opts).expect("open");
            let alone = scan_chain(&chain, &ScanOptions::full(false), &NoProgress, None);
            let (got, alone) = (s.result.as_ref().expect("scan"), alone.expect("scan"));
            assert_eq!(got.layers.len(), 2);
            for (a, b) in got.layers.iter().zip(&alone.layers) {
                assert_eq!(a.stats, b.stats, "{}", a.path.display());
            }
        }
    }

    /// A flat base whose sector 0 says NTFS and holds nothing else, under a flat top.
    fn chain_over_a_broken_ntfs_volume() -> Chain {
        let mut files = Memory::new();
        files.insert(
            "/vm/base.vmdk",
            b"# Disk DescriptorFile\nversion=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"base-flat.vmdk\" 0\n".to_vec(),
        );
        let mut base = vec![0u8; 1 << 20];
        base[3..11].copy_from_slice(b"NTFS    ");
        files.insert("/vm/base-flat.vmdk", base);
        files.insert(
            "/vm/top.vmdk",
            b"# Disk DescriptorFile\nversion=1\nCID=00000002\nparentCID=00000001\ncreateType=\"monolithicFlat\"\nparentFileNameHint=\"base.vmdk\"\nRW 2048 FLAT \"top-flat.vmdk\" 0\n".to_vec(),
        );
        files.insert("/vm/top-flat.vmdk", vec![7u8; 1 << 20]);
        let opts = ChainOptions {
            mode: ReadMode::Read,
            ..ChainOptions::default()
        };
        Chain::open_in(&files, Path::new("/vm/top.vmdk"), &opts).expect("open the chain")
    }

    #[test]
    fn an_unreadable_parent_ntfs_volume_is_a_warning_not_silence() {
        let chain = chain_over_a_broken_ntfs_volume();
        let scan = scan_chain(&chain, &ScanOptions::full(false), &NoProgress, None).expect("scan");
        assert_eq!(scan.ntfs_overwritten, None);
        let top = scan.top().expect("top");
        assert!(
            matches!(
                top.warnings.as_slice(),
                [Warning::GuestUnreadable { path, detail }]
                    if path == Path::new("/vm/top.vmdk") && detail.contains("NTFS volume in partition 1")
            ),
            "{:?}",
            top.warnings
        );
        assert!(scan.layers[0].warnings.is_empty());
        // The classes do not depend on the probe: the first 64 KiB piece of the flat top lies
        // over the boot sector, the rest over zeros.
        assert_eq!(top.stats.classes.overwritten, 64 << 10);
        assert_eq!(top.stats.classes.fresh, (1 << 20) - (64 << 10));

        // Not asked for: no probe, no warning.
        let plain = ScanOptions {
            ntfs_split: false,
            strict: false,
            guest_files: false,
        };
        let scan = scan_chain(&chain, &plain, &NoProgress, None).expect("scan");
        assert!(scan.top().expect("top").warnings.is_empty());

        // --strict: the warning is an error.
        let e = scan_chain(&chain, &ScanOptions::full(true), &NoProgress, None).unwrap_err();
        assert!(
            matches!(e, Error::Strict(Warning::GuestUnreadable { .. })),
            "{e:?}"
        );
    }
}
