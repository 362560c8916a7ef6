//! Classification: every grain a layer allocates, and every 4 KiB block inside, falls in
//! exactly one [`GrainClass`] (first match wins): zeroed, identical to the parent view, fresh
//! (the parent view reads zero there), or overwritten.
//!
//! This file is the driver. Work is split by table unit (one grain table of one extent, a
//! `TableUnit`) and run on rayon's current pool (the caller builds it for `--threads`); each
//! worker counts into its own [`LayerStats`] ([`stats`]), cuts pieces into 4 KiB blocks
//! ([`block`]) and hints the kernel ahead of its reads (`prefetch`), and the totals are
//! summed once (`AddAssign`), so results are integers independent of thread count and order.
//! Buffers are per worker ([`Scratch`]); nothing is allocated per grain.

pub mod block;
mod prefetch;
pub mod stats;

pub use block::{BLOCK, BlockRun};
pub use stats::{ClassCounts, GrainClass, LayerStats, PROFILE_SLICES};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;

use crate::bytes::is_zero;
use crate::chain::Chain;
use crate::error::{Error, Result, Structure};
use crate::format::{ExtentMap, GrainState, Piece};
use crate::layer::{Backing, Extent, Layer};
use crate::progress::Progress;
use crate::source::Source;
use crate::view::{ComposedView, Scratch, ViewBytes, inflate};

use block::{Blocks, Flags};

/// One worker's state: the layer it classifies, its parent view, its counts and buffers.
struct Worker<'c> {
    layers: &'c [Layer],
    li: usize,
    view: ComposedView<'c>,
    stats: LayerStats,
    blocks: Blocks,
    scratch: Scratch,
    parent_buf: Vec<u8>,
    content_buf: Vec<u8>,
    /// The last 4 KiB block whose whole parent view was tested for zero, and the answer
    /// (pieces smaller than a block need the block's answer for the ceiling).
    block_zero: Option<(u64, bool)>,
    block_buf: Vec<u8>,
    /// The allocated pieces of the unit at hand.
    pieces: Vec<Piece>,
}

impl<'c> Worker<'c> {
    /// A worker on layer `li`; `record` asks for block runs (of one class, if given).
    fn new(layers: &'c [Layer], li: usize, record: Option<Option<GrainClass>>) -> Self {
        Worker {
            layers,
            li,
            view: ComposedView::new(layers, li),
            stats: LayerStats::default(),
            blocks: Blocks::new(record),
            scratch: Scratch::default(),
            parent_buf: Vec::new(),
            content_buf: Vec::new(),
            block_zero: None,
            block_buf: Vec::new(),
            pieces: Vec::new(),
        }
    }

    /// Classifies every allocated piece of table unit `u` (after hinting its reads).
    fn run(&mut self, u: TableUnit, gt: &mut Vec<u8>) -> Result<()> {
        let layers = self.layers;
        let li = self.li;
        let e = &layers[li].extents[u.extent];
        // A ZERO extent has no tables: nothing to classify.
        let Backing::File { map, source } = &e.backing else {
            return Ok(());
        };
        // The table is walked once: the hints and the classification both use its pieces.
        let mut pieces = std::mem::take(&mut self.pieces);
        pieces.clear();
        e.walk_table(u.table, gt, &mut |p| {
            if p.state.is_allocated() {
                pieces.push(p);
            }
            Ok(())
        })?;
        let done = self.classify_unit((li, u.extent), (e, map, source), &pieces);
        self.pieces = pieces;
        done
    }

    fn classify_unit(
        &mut self,
        (li, ei): (usize, usize),
        (e, map, source): (&Extent, &ExtentMap, &Source),
        pieces: &[Piece],
    ) -> Result<()> {
        if !matches!(map, ExtentMap::Flat(_)) {
            prefetch::prefetch(self.layers, (li, ei), pieces, &self.view, &mut self.scratch)?;
        }
        for &p in pieces {
            let p = Piece {
                virt: p.virt + e.virt_start,
                ..p
            };
            classify_piece(self, (li, ei), (e, map, source), p)?;
        }
        Ok(())
    }

    fn finish(mut self) -> (LayerStats, Vec<BlockRun>) {
        let runs = self.blocks.finish(&mut self.stats);
        (self.stats, runs)
    }
}

/// Where a piece sits in its file, for the allocation profile: the slice of the extent's
/// data area (from its first possible grain to the end of the file).
fn profile_slice(map: &ExtentMap, file_len: u64, file_offset: u64) -> usize {
    let lo = map.data_start().min(file_len);
    let span = file_len - lo;
    if span == 0 {
        return 0;
    }
    let rel = file_offset.saturating_sub(lo).min(span - 1);
    // In 64 bits when it fits (every file below 1.8 EB): a 128-bit division per grain showed
    // in profiles of 512-byte COWD grains.
    let slice = match rel.checked_mul(PROFILE_SLICES as u64) {
        Some(x) => x / span,
        None => (rel as u128 * PROFILE_SLICES as u128 / span as u128) as u64,
    };
    (slice as usize).min(PROFILE_SLICES - 1)
}

/// Classifies one allocated piece of extent `ei` of layer `li`, whose map and file are `map`
/// and `src`.
fn classify_piece(
    w: &mut Worker<'_>,
    (li, ei): (usize, usize),
    extent: (&Extent, &ExtentMap, &Source),
    p: Piece,
) -> Result<()> {
    let (extent, map, src) = extent;
    let layers = w.layers;
    let layer = &layers[li];
    let len = p.len as usize;
    let size = layer.virtual_size;
    // Zero and unmapped entries have no place in the file: they stay out of the profile.
    let mut slice = None;
    // The layer's own bytes (None: zeros).
    let content: Option<&[u8]> = match p.state {
        GrainState::Unallocated => return Ok(()),
        GrainState::Zero => {
            w.stats.zero_entry_bytes += p.len;
            None
        }
        GrainState::Unmapped => {
            w.stats.unmapped_bytes += p.len;
            None
        }
        GrainState::Data { file_offset } => {
            w.stats.stored_bytes += p.len;
            slice = Some(profile_slice(map, src.len(), file_offset));
            // A hole of a flat extent's sparse file reads as zeros: nothing to read (the first
            // scan of a VMFS flat base copied off a datastore is mostly holes).
            if extent.is_hole(file_offset, p.len) {
                None
            } else {
                Some(src.read_at(file_offset, len, &mut w.content_buf, &Structure::ExtentData)?)
            }
        }
        GrainState::Compressed { marker, grain } => {
            slice = Some(profile_slice(map, src.len(), marker));
            let grain_start = extent.virt_start + grain * map.grain_bytes();
            w.stats.stored_bytes += map
                .compressed_len(src, marker, grain, &mut w.scratch.gte)
                .map_err(|e| e.in_file(src.path()))?;
            let data = inflate((li, ei), map, src, marker, grain, &mut w.scratch)?;
            let at = (p.virt - grain_start) as usize;
            w.content_buf.clear();
            w.content_buf.extend_from_slice(&data[at..at + len]);
            Some(&w.content_buf[..len])
        }
    };
    let parent = w
        .view
        .resolve(p.virt, len, &mut w.parent_buf, &mut w.scratch)?;
    let mut grain_flags = Flags::ALL;
    // Walk the piece in sub-pieces that end on absolute 4 KiB boundaries.
    let mut pos = 0usize;
    while pos < len {
        let v = p.virt + pos as u64;
        let n = ((BLOCK - v % BLOCK) as usize).min(len - pos);
        let c = content.map(|c| &c[pos..pos + n]);
        let content_zero = c.is_none_or(is_zero);
        let f = match parent {
            ViewBytes::Zero => Flags {
                content_zero,
                equal: content_zero,
                parent_zero: true,
            },
            ViewBytes::Bytes(pb) => {
                let pp = &pb[pos..pos + n];
                let parent_zero = is_zero(pp);
                let equal = match c {
                    None => parent_zero,
                    Some(c) => {
                        if content_zero {
                            parent_zero
                        } else {
                            c == pp
                        }
                    }
                };
                Flags {
                    content_zero,
                    equal,
                    parent_zero,
                }
            }
        };
        grain_flags = grain_flags.and(f);
        // By-products the ceiling needs: how each layer changes the zero space of the view.
        if f.parent_zero {
            w.stats.parent_zero_bytes += n as u64;
        }
        let block_zero = if n as u64 == BLOCK {
            f.parent_zero
        } else {
            let b = v / BLOCK;
            match w.block_zero {
                Some((i, z)) if i == b => z,
                _ => {
                    let start = b * BLOCK;
                    let blen = BLOCK.min(size.saturating_sub(start)) as usize;
                    let z = match w
                        .view
                        .resolve(start, blen, &mut w.block_buf, &mut w.scratch)?
                    {
                        ViewBytes::Zero => true,
                        ViewBytes::Bytes(bytes) => is_zero(bytes),
                    };
                    w.block_zero = Some((b, z));
                    z
                }
            }
        };
        if block_zero {
            w.stats.parent_block_zero_bytes += n as u64;
        }
        if f.content_zero {
            w.stats.content_zero_bytes += n as u64;
        }
        w.blocks.piece(&mut w.stats, v, n as u64, f);
        pos += n;
    }
    let class = grain_flags.class();
    w.stats.classes.count(class, p.len);
    if let Some(slice) = slice {
        w.stats.profile[slice].count(class, p.len);
    }
    w.stats.allocated_bytes += p.len;
    w.stats.grains += 1;
    Ok(())
}

/// A unit of work: one grain table (or 32 MiB of a flat extent) of one extent.
#[derive(Debug, Clone, Copy)]
struct TableUnit {
    extent: usize,
    table: u64,
}

/// The work of a layer as runs of present tables, (extent, tables): one entry per run of a
/// directory, never one per table, so a 64 TiB layer with its tables in one block costs one
/// entry however many tables it has.
fn table_runs(layer: &Layer) -> Vec<(usize, std::ops::Range<u64>)> {
    layer
        .extents
        .iter()
        .enumerate()
        .flat_map(|(ei, e)| e.present_tables().into_iter().map(move |r| (ei, r)))
        .collect()
}

/// Whether units can be classified independently: no 4 KiB block spans two of them.
fn units_are_block_aligned(layer: &Layer) -> bool {
    layer
        .extents
        .iter()
        .all(|e| e.virt_start % BLOCK == 0 && e.table_span() % BLOCK == 0)
}

/// Number of table units (grain tables present) of layer `li`: what progress counts.
pub fn table_units(chain: &Chain, li: usize) -> u64 {
    chain.layers[li]
        .extents
        .iter()
        .map(Extent::present_count)
        .sum()
}

/// Classifies every grain layer `li` allocates against its parent view, on rayon's current
/// thread pool. `progress` is ticked once per grain table.
pub fn classify_layer(chain: &Chain, li: usize, progress: &dyn Progress) -> Result<LayerStats> {
    classify(chain, li, progress, None).map(|(stats, _)| stats)
}

/// [`classify_layer`], also listing every allocated range with its 4 KiB block's class (of
/// blocks of class `only`, if given), sorted by position: what `blame` attributes. Memory
/// grows with the runs listed (16 bytes per run of neighbouring blocks of one class).
pub fn classify_layer_blocks(
    chain: &Chain,
    li: usize,
    progress: &dyn Progress,
    only: Option<GrainClass>,
) -> Result<(LayerStats, Vec<BlockRun>)> {
    let (stats, mut runs) = classify(chain, li, progress, Some(only))?;
    runs.sort_unstable_by_key(|r| r.virt);
    Ok((stats, runs))
}

fn classify(
    chain: &Chain,
    li: usize,
    progress: &dyn Progress,
    record: Option<Option<GrainClass>>,
) -> Result<(LayerStats, Vec<BlockRun>)> {
    let layers = chain.layers.as_slice();
    let layer = &layers[li];
    let work = table_runs(layer);
    let units = || {
        work.iter().flat_map(|(extent, tables)| {
            tables.clone().map(move |table| TableUnit {
                extent: *extent,
                table,
            })
        })
    };
    if !units_are_block_aligned(layer) {
        // Blocks may span units: one worker, in order.
        let mut w = Worker::new(layers, li, record);
        let mut gt = Vec::new();
        for u in units() {
            w.run(u, &mut gt)?;
            progress.inc(1);
        }
        return Ok(w.finish());
    }
    // One worker per thread, each taking the next unit from a shared counter until none is
    // left: a 2 TiB layer has 65,536 units, nearly all empty, and a fold split down to one
    // unit a piece built, moved and summed a worker for each (a quarter of such a scan).
    let starts: Vec<u64> = work
        .iter()
        .scan(0u64, |at, (_, tables)| {
            let s = *at;
            *at += tables.end - tables.start;
            Some(s)
        })
        .collect();
    let total: u64 = work.iter().map(|(_, t)| t.end - t.start).sum();
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let unit = |i: u64| {
        let r = starts.partition_point(|&s| s <= i) - 1;
        TableUnit {
            extent: work[r].0,
            table: work[r].1.start + (i - starts[r]),
        }
    };
    /// A worker's totals, or the unit it failed on and why.
    type Outcome = std::result::Result<(LayerStats, Vec<BlockRun>), (u64, Error)>;
    let results: Vec<Outcome> = (0..rayon::current_num_threads().max(1))
        .into_par_iter()
        .map(|_| {
            let mut w = Worker::new(layers, li, record);
            let mut gt = Vec::new();
            while !failed.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                if let Err(e) = w.run(unit(i), &mut gt) {
                    failed.store(true, Ordering::Relaxed);
                    return Err((i, e));
                }
                // Blocks never span units here: close the last one so workers never share it.
                w.blocks.close(&mut w.stats);
                progress.inc(1);
            }
            Ok(w.finish())
        })
        .collect();
    // Every unit before a failed one was taken before it and is finished: the first failure
    // in table order is reported, whatever the threads' timing.
    let mut first_error: Option<(u64, Error)> = None;
    let mut out = (LayerStats::default(), Vec::new());
    for r in results {
        match r {
            Ok((stats, mut runs)) => {
                out.0 += stats;
                out.1.append(&mut runs);
            }
            Err((i, e)) => {
                if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                    first_error = Some((i, e));
                }
            }
        }
    }
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(out),
    }
}
