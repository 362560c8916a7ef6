//! A scan: every layer of one chain classified and the top's ceilings computed; and the scan
//! of many disks at once (a datastore), each disk on its own, so that one broken chain is
//! reported and the others still scanned.

use std::path::PathBuf;

use rayon::prelude::*;

use crate::cache::LayerCache;
use crate::chain::{Chain, ChainOptions};
use crate::classify::{GrainClass, classify_layer, classify_layer_blocks, unit_count};
use crate::error::Result;
use crate::progress::Progress;
use crate::report::{ScanReport, scan_report};

/// Grain-table units a scan of `chain` walks (for a progress bar's length).
pub fn units(chain: &Chain) -> u64 {
    (0..chain.layers.len()).map(|i| unit_count(chain, i)).sum()
}

/// Classifies every layer of `chain` (each layer's grain tables in parallel on the current
/// rayon pool), computes the top's ceilings, and checks that no file changed meanwhile.
/// Layers below the top come from `cache` when it holds them unchanged, and go into it.
pub fn scan_chain(
    chain: &Chain,
    progress: &dyn Progress,
    cache: Option<&LayerCache>,
) -> Result<ScanReport> {
    // When the top's parent view holds NTFS, the top's overwritten blocks are listed too, to
    // split them into live parent data and parent free space (memory: overwritten blocks only).
    let parent_ntfs = crate::blame::parent_ntfs(chain);
    let top = chain.layers.len().saturating_sub(1);
    let mut split = None;
    let keys = match cache {
        Some(_) => LayerCache::keys(chain, top),
        None => Vec::new(),
    };
    let stats = (0..chain.layers.len())
        .map(|i| {
            if i == top
                && let Some(p) = &parent_ntfs
            {
                let (stats, runs) =
                    classify_layer_blocks(chain, i, progress, Some(GrainClass::Overwritten))?;
                split = Some(crate::blame::split_overwritten(p, runs));
                return Ok(stats);
            }
            let cached = cache.zip(keys.get(i).and_then(Option::as_ref));
            if let Some(hit) = cached.as_ref().and_then(|(c, k)| c.get(k)) {
                progress.inc(unit_count(chain, i));
                return Ok(hit);
            }
            let s = classify_layer(chain, i, progress)?;
            if let Some((c, k)) = cached {
                c.put(k, &s);
            }
            Ok(s)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut report = scan_report(chain, &stats);
    report.ntfs_overwritten = split;
    if !stats.is_empty() {
        report.ceiling = Some(crate::ceiling::ceiling(chain, &stats)?);
    }
    chain.check_unchanged()?;
    Ok(report)
}

/// One disk of a datastore scan and what became of it.
#[derive(Debug)]
pub struct DiskScan {
    /// Index of the LUN the disk was found on.
    pub lun: usize,
    /// The top layer.
    pub path: PathBuf,
    /// The scan, or the error that stopped it, as a message naming file and structure.
    pub result: std::result::Result<ScanReport, String>,
    /// The canonical path of each layer of the chain, base first (empty when it failed): the
    /// one name a file has, so that a layer two chains share is counted once.
    pub layer_files: Vec<PathBuf>,
}

/// Opens every disk once to size the work: grain-table units per disk, or why it cannot be
/// opened. Chains are closed again, so that a datastore of thousands of disks never holds
/// thousands of open files.
pub fn measure(disks: &[(usize, PathBuf)], opts: &ChainOptions) -> Vec<Result<u64>> {
    disks
        .par_iter()
        .map(|(_, p)| Chain::open(p, opts).map(|c| units(&c)))
        .collect()
}

/// Scans every disk in parallel; each disk's layers are classified in parallel too (rayon
/// balances the two levels). Disks that `measure` could not open are not opened again.
pub fn scan_disks(
    disks: &[(usize, PathBuf)],
    measured: &[Result<u64>],
    opts: &ChainOptions,
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
                        let r = scan_chain(&c, progress, cache)?;
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
