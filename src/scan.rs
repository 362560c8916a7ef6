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

/// Opens every disk once to size the work: table units per disk, or why it cannot be opened.
/// Chains are closed again, so that a datastore of thousands of disks never holds thousands
/// of open files.
pub fn measure(disks: &[(usize, PathBuf)], opts: &ChainOptions) -> Vec<Result<u64>> {
    disks
        .par_iter()
        .map(|(_, p)| Chain::open(p, opts).map(|c| table_units(&c)))
        .collect()
}

/// Scans every disk in parallel; each disk's layers are classified in parallel too (rayon
/// balances the two levels). Disks that `measure` could not open are not opened again.
pub fn scan_disks(
    disks: &[(usize, PathBuf)],
    measured: &[Result<u64>],
    opts: &ChainOptions,
    scan: &ScanOptions,
    progress: &dyn Progress,
    cache: Option<&LayerCache>,
) -> Vec<DiskScan> {
    disks
        .par_iter()
        .zip(measured.par_iter())
        .map(|((lun, path), m)| {
            let result = match m {
                Err(e) => Err(e.to_string()),
                Ok(_) => Chain::open(path, opts)
                    .and_then(|c| {
                        let r = scan_chain(&c, scan, progress, cache)?;
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
