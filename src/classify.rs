//! Classification: every grain a layer allocates, and every 4 KiB block inside, falls in
//! exactly one [`GrainClass`] (first match wins): zeroed, identical to the parent view, fresh
//! (the parent view reads zero there), or overwritten.
//!
//! Work is split by grain table and run on rayon's current pool (the caller builds it for
//! `--threads`). Each worker counts into its own [`LayerStats`] and the totals are summed once
//! (`AddAssign`), so results are integers independent of thread count and order. Buffers are
//! per worker ([`Scratch`]); nothing is allocated per grain.

use std::ops::{Add, AddAssign};

use rayon::prelude::*;

use crate::chain::Chain;
use crate::error::{Error, Result, Structure};
use crate::format::{ExtentMap, GrainState, Piece};
use crate::layer::Layer;
use crate::progress::Progress;
use crate::view::{ParentBytes, ParentView, Scratch, inflate};

/// Size of the blocks counted in `blocks_4k`.
pub const BLOCK: u64 = 4096;
/// Number of slices of the allocation-order profile.
pub const PROFILE_SLICES: usize = 10;

/// The class of a grain or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrainClass {
    /// Growth into space that reads zero in the parent view.
    Fresh,
    /// Replaced parent data with different data.
    Overwritten,
    /// Rewrote exactly what the parent view holds.
    Identical,
    /// All zero.
    Zeroed,
}

/// Bytes (or block counts) per class.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassCounts {
    /// Into space that was zero in the parent view.
    pub fresh: u64,
    /// Over parent data.
    pub overwritten: u64,
    /// Equal to the parent view.
    pub identical: u64,
    /// All zero.
    pub zeroed: u64,
}

impl ClassCounts {
    /// Adds `n` to `class`.
    #[inline]
    pub fn count(&mut self, class: GrainClass, n: u64) {
        match class {
            GrainClass::Fresh => self.fresh += n,
            GrainClass::Overwritten => self.overwritten += n,
            GrainClass::Identical => self.identical += n,
            GrainClass::Zeroed => self.zeroed += n,
        }
    }

    /// Sum over the classes.
    pub fn total(&self) -> u64 {
        self.fresh + self.overwritten + self.identical + self.zeroed
    }
}

impl AddAssign for ClassCounts {
    fn add_assign(&mut self, o: Self) {
        self.fresh += o.fresh;
        self.overwritten += o.overwritten;
        self.identical += o.identical;
        self.zeroed += o.zeroed;
    }
}

impl Add for ClassCounts {
    type Output = Self;
    fn add(mut self, o: Self) -> Self {
        self += o;
        self
    }
}

/// What classifying one layer found.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerStats {
    /// Bytes per class; sums to `allocated_bytes`.
    pub classes: ClassCounts,
    /// 4 KiB blocks per class.
    pub blocks_4k: ClassCounts,
    /// Bytes of virtual space the layer's tables map (zero entries included).
    pub allocated_bytes: u64,
    /// Bytes of grain data stored in the files (compressed size for compressed grains).
    pub stored_bytes: u64,
    /// Bytes mapped by zero entries (KDMV zeroed-grain GTE, COWD GTE 1, SESparse type 2).
    pub zero_entry_bytes: u64,
    /// Bytes mapped by SESparse unmapped entries (type 1).
    pub unmapped_bytes: u64,
    /// Allocated grains (pieces).
    pub grains: u64,
    /// Bytes the layer holds (pieces cut at 4 KiB boundaries) where its parent view is zero.
    pub parent_zero_bytes: u64,
    /// Bytes the layer holds in 4 KiB blocks whose whole parent block is zero (equal to
    /// `parent_zero_bytes` where grains are whole blocks; the ceiling counts by blocks).
    #[serde(default)]
    pub parent_block_zero_bytes: u64,
    /// Bytes the layer holds whose own content is zero.
    pub content_zero_bytes: u64,
    /// Class bytes by position of the grain in its file, in tenths of the data area: the
    /// order in which a sparse delta grew. Zero and unmapped entries are not in it.
    pub profile: [ClassCounts; PROFILE_SLICES],
}

impl AddAssign for LayerStats {
    fn add_assign(&mut self, o: Self) {
        self.classes += o.classes;
        self.blocks_4k += o.blocks_4k;
        self.allocated_bytes += o.allocated_bytes;
        self.stored_bytes += o.stored_bytes;
        self.zero_entry_bytes += o.zero_entry_bytes;
        self.unmapped_bytes += o.unmapped_bytes;
        self.grains += o.grains;
        self.parent_zero_bytes += o.parent_zero_bytes;
        self.parent_block_zero_bytes += o.parent_block_zero_bytes;
        self.content_zero_bytes += o.content_zero_bytes;
        for (a, b) in self.profile.iter_mut().zip(o.profile) {
            *a += b;
        }
    }
}

/// Three facts about a range, AND-combined over pieces.
#[derive(Debug, Clone, Copy)]
struct Flags {
    content_zero: bool,
    equal: bool,
    parent_zero: bool,
}

impl Flags {
    const ALL: Flags = Flags {
        content_zero: true,
        equal: true,
        parent_zero: true,
    };

    #[inline]
    fn and(self, o: Flags) -> Flags {
        Flags {
            content_zero: self.content_zero && o.content_zero,
            equal: self.equal && o.equal,
            parent_zero: self.parent_zero && o.parent_zero,
        }
    }

    /// First match wins: zeroed, identical, fresh, overwritten.
    #[inline]
    fn class(self) -> GrainClass {
        if self.content_zero {
            GrainClass::Zeroed
        } else if self.equal {
            GrainClass::Identical
        } else if self.parent_zero {
            GrainClass::Fresh
        } else {
            GrainClass::Overwritten
        }
    }
}

/// Whether every byte is zero, on wide words.
#[inline]
pub fn is_zero(data: &[u8]) -> bool {
    let mut chunks = data.chunks_exact(64);
    for c in &mut chunks {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            acc |= u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        }
        if acc != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b == 0)
}

/// An allocated byte range inside one 4 KiB block, with that block's class: what `blame`
/// attributes to guest files. A block's runs sum to the bytes the layer allocates in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRun {
    /// First byte on the virtual disk.
    pub virt: u64,
    /// Length in bytes (at most 4 KiB).
    pub len: u64,
    /// The class of the whole block.
    pub class: GrainClass,
}

/// Collects [`BlockRun`]s when a caller asks for them: all of them (blame), or the blocks of
/// one class only (scan's NTFS split of `overwritten`, so memory follows that class alone).
#[derive(Debug, Default)]
struct Recorder {
    /// Keep only blocks of this class.
    only: Option<GrainClass>,
    /// Ranges of the open block, merged when contiguous.
    pending: Vec<(u64, u64)>,
    runs: Vec<BlockRun>,
}

/// The 4 KiB block being accumulated (blocks can span grains smaller than 4 KiB).
#[derive(Debug)]
struct BlockAcc {
    index: u64,
    flags: Flags,
}

/// One worker's state.
struct Worker<'c> {
    view: ParentView<'c>,
    stats: LayerStats,
    block: Option<BlockAcc>,
    scratch: Scratch,
    parent_buf: Vec<u8>,
    content_buf: Vec<u8>,
    /// The last 4 KiB block whose whole parent view was tested for zero, and the answer
    /// (pieces smaller than a block need the block's answer for the ceiling).
    block_zero: Option<(u64, bool)>,
    block_buf: Vec<u8>,
    rec: Option<Recorder>,
}

/// Counts the open block, if any, and hands its ranges to the recorder.
#[inline]
fn close_block(block: &mut Option<BlockAcc>, stats: &mut LayerStats, rec: &mut Option<Recorder>) {
    if let Some(done) = block.take() {
        let class = done.flags.class();
        stats.blocks_4k.count(class, 1);
        if let Some(r) = rec {
            let Recorder {
                only,
                pending,
                runs,
            } = r;
            if only.is_none_or(|o| o == class) {
                runs.extend(
                    pending
                        .drain(..)
                        .map(|(virt, len)| BlockRun { virt, len, class }),
                );
            } else {
                pending.clear();
            }
        }
    }
}

/// Adds a piece's flags (and, when recording, its range) to the 4 KiB block it belongs to,
/// closing the previous block.
#[inline]
fn block_piece(
    block: &mut Option<BlockAcc>,
    stats: &mut LayerStats,
    rec: &mut Option<Recorder>,
    virt: u64,
    len: u64,
    f: Flags,
) {
    let index = virt / BLOCK;
    match block {
        Some(b) if b.index == index => b.flags = b.flags.and(f),
        _ => {
            close_block(block, stats, rec);
            *block = Some(BlockAcc { index, flags: f });
        }
    }
    if let Some(r) = rec {
        match r.pending.last_mut() {
            Some((v, l)) if *v + *l == virt => *l += len,
            _ => r.pending.push((virt, len)),
        }
    }
}

impl<'c> Worker<'c> {
    fn new(view: ParentView<'c>, record: Option<Option<GrainClass>>) -> Self {
        Worker {
            view,
            stats: LayerStats::default(),
            block: None,
            scratch: Scratch::default(),
            parent_buf: Vec::new(),
            content_buf: Vec::new(),
            block_zero: None,
            block_buf: Vec::new(),
            rec: record.map(|only| Recorder {
                only,
                ..Recorder::default()
            }),
        }
    }

    fn finish(mut self) -> (LayerStats, Vec<BlockRun>) {
        close_block(&mut self.block, &mut self.stats, &mut self.rec);
        (self.stats, self.rec.map(|r| r.runs).unwrap_or_default())
    }
}

/// Where a piece sits in its file, for the allocation profile: the slice of the extent's
/// data area (from its first possible grain to the end of the file).
fn profile_slice(map: &ExtentMap, file_len: u64, file_offset: u64) -> usize {
    let lo = map_data_start(map).min(file_len);
    let span = file_len - lo;
    if span == 0 {
        return 0;
    }
    let rel = file_offset.saturating_sub(lo).min(span - 1);
    ((rel as u128 * PROFILE_SLICES as u128 / span as u128) as usize).min(PROFILE_SLICES - 1)
}

fn map_data_start(map: &ExtentMap) -> u64 {
    match map {
        ExtentMap::Hosted(h) => h.header.over_head * crate::units::SECTOR,
        ExtentMap::Cowd(c) => (u64::from(c.header.gd_offset) * crate::units::SECTOR)
            .saturating_add(u64::from(c.header.num_gd_entries) * 4),
        ExtentMap::SeSparse(s) => s.header.grains_offset * crate::units::SECTOR,
        ExtentMap::Flat(f) => f.data_offset,
        ExtentMap::Zero { .. } => 0,
    }
}

/// Classifies one allocated piece of layer `li`, extent `ei`.
fn classify_piece(chain: &Chain, li: usize, ei: usize, p: Piece, w: &mut Worker<'_>) -> Result<()> {
    let layer = &chain.layers[li];
    let extent = &layer.extents[ei];
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
            let src = extent
                .src()
                .ok_or_else(|| Error::Other("data extent without a file".into()))?;
            w.stats.stored_bytes += p.len;
            slice = Some(profile_slice(&extent.map, src.len(), file_offset));
            Some(src.read_at(file_offset, len, &mut w.content_buf, &Structure::ExtentData)?)
        }
        GrainState::Compressed { marker, grain } => {
            let ExtentMap::Hosted(h) = &extent.map else {
                return Err(Error::Other(
                    "compressed grain outside a hosted extent".into(),
                ));
            };
            let src = extent
                .src()
                .ok_or_else(|| Error::Other("compressed extent without a file".into()))?;
            slice = Some(profile_slice(&extent.map, src.len(), marker));
            let grain_start = extent.virt_start + grain * h.grain_bytes;
            w.stats.stored_bytes += h.compressed_len(src, marker, grain, &mut w.scratch.gte)?;
            let data = inflate(chain, li, ei, marker, grain, &mut w.scratch)?;
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
            ParentBytes::Zero => Flags {
                content_zero,
                equal: content_zero,
                parent_zero: true,
            },
            ParentBytes::Bytes(pb) => {
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
                        ParentBytes::Zero => true,
                        ParentBytes::Bytes(bytes) => is_zero(bytes),
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
        block_piece(&mut w.block, &mut w.stats, &mut w.rec, v, n as u64, f);
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

/// A unit of work: one table of one extent.
#[derive(Debug, Clone, Copy)]
struct Unit {
    extent: usize,
    table: u64,
}

/// The work of a layer as runs of present tables, (extent, tables): one entry per run of a
/// directory, never one per table, so a 64 TiB layer with its tables in one block costs one
/// entry however many tables it has.
fn unit_runs(layer: &Layer) -> Vec<(usize, std::ops::Range<u64>)> {
    layer
        .extents
        .iter()
        .enumerate()
        .flat_map(|(ei, e)| e.map.present_tables().into_iter().map(move |r| (ei, r)))
        .collect()
}

/// Whether units can be classified independently: no 4 KiB block spans two of them.
fn units_are_block_aligned(layer: &Layer) -> bool {
    layer
        .extents
        .iter()
        .all(|e| e.virt_start % BLOCK == 0 && e.map.table_span() % BLOCK == 0)
}

/// Gaps up to this size between two runs a unit reads are read ahead with them.
const PREFETCH_GAP: u64 = 1 << 20;
/// Most read-ahead hints per unit and file: beyond that the reads are too scattered for
/// hints to pay (and the page cache's own read-ahead does as well).
const PREFETCH_RUNS: usize = 64;

/// File ranges a unit will read, merged: (layer, extent, start, end).
#[derive(Default)]
struct Prefetch {
    runs: Vec<(usize, usize, u64, u64)>,
}

impl Prefetch {
    fn add(&mut self, layer: usize, extent: usize, start: u64, len: u64) {
        let end = start + len;
        for r in self.runs.iter_mut().rev().take(4) {
            if r.0 == layer
                && r.1 == extent
                && start <= r.3 + PREFETCH_GAP
                && end + PREFETCH_GAP >= r.2
            {
                r.2 = r.2.min(start);
                r.3 = r.3.max(end);
                return;
            }
        }
        self.runs.push((layer, extent, start, end));
    }
}

/// Tells the kernel which file ranges unit `u` is about to read: the layer's own data and
/// the parent view's data under it. On a cold cache the reads then arrive as large
/// asynchronous I/O while the first grains are classified, instead of page by page.
fn prefetch(chain: &Chain, li: usize, u: Unit, w: &mut Worker<'_>, gt: &mut Vec<u8>) -> Result<()> {
    let e = &chain.layers[li].extents[u.extent];
    let Some(src) = e.src() else {
        return Ok(());
    };
    let base = e.virt_start;
    let mut own = Prefetch::default();
    e.map.walk_table(Some(src), u.table, gt, &mut |p| {
        if let GrainState::Data { file_offset } = p.state {
            own.add(li, u.extent, file_offset, p.len);
        }
        Ok(())
    })?;
    let mut cold = false;
    for r in own.runs.iter().take(PREFETCH_RUNS) {
        cold |= src.will_need(r.2, r.3 - r.2);
    }
    // A unit whose own data is in memory was read recently; its parent bytes most likely
    // were too. Skipping the parent pass keeps hot scans at their speed.
    if !cold {
        return Ok(());
    }
    let mut below = Prefetch::default();
    let view = w.view;
    let scratch = &mut w.scratch;
    e.map.walk_table(Some(src), u.table, gt, &mut |p| {
        if p.state.is_allocated()
            && below.runs.len() <= PREFETCH_RUNS
            && let Some((l, x, off)) = view.locate(base + p.virt, p.len as usize, scratch)?
        {
            below.add(l, x, off, p.len);
        }
        Ok(())
    })?;
    for r in below.runs.iter().take(PREFETCH_RUNS) {
        if let Some(s) = chain.layers[r.0].extents[r.1].src() {
            s.will_need(r.2, r.3 - r.2);
        }
    }
    Ok(())
}

fn run_unit(chain: &Chain, li: usize, u: Unit, w: &mut Worker<'_>, gt: &mut Vec<u8>) -> Result<()> {
    let e = &chain.layers[li].extents[u.extent];
    let base = e.virt_start;
    if !matches!(e.map, ExtentMap::Flat(_) | ExtentMap::Zero { .. }) {
        prefetch(chain, li, u, w, gt)?;
    }
    e.map.walk_table(e.src(), u.table, gt, &mut |mut p| {
        if p.state.is_allocated() {
            p.virt += base;
            classify_piece(chain, li, u.extent, p, w)?;
        }
        Ok(())
    })
}

/// Number of work units (grain tables present) of layer `li`, for progress totals.
pub fn unit_count(chain: &Chain, li: usize) -> u64 {
    chain.layers[li]
        .extents
        .iter()
        .map(|e| e.map.present_count())
        .sum()
}

/// Classifies every grain layer `li` allocates against its parent view, on rayon's current
/// thread pool. `progress` is ticked once per grain table.
pub fn classify_layer(chain: &Chain, li: usize, progress: &dyn Progress) -> Result<LayerStats> {
    classify(chain, li, progress, None).map(|(stats, _)| stats)
}

/// [`classify_layer`], also listing every allocated range with its 4 KiB block's class (of
/// blocks of class `only`, if given), sorted by position: what `blame` attributes. Memory
/// grows with the ranges listed (16 bytes per block run).
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
    let layer = &chain.layers[li];
    let view = ParentView::new(chain, li);
    let work = unit_runs(layer);
    let units = || {
        work.iter().flat_map(|(extent, tables)| {
            tables.clone().map(move |table| Unit {
                extent: *extent,
                table,
            })
        })
    };
    if !units_are_block_aligned(layer) {
        // Blocks may span units: one worker, in order.
        let mut w = Worker::new(view, record);
        let mut gt = Vec::new();
        for u in units() {
            run_unit(chain, li, u, &mut w, &mut gt)?;
            progress.inc(1);
        }
        return Ok(w.finish());
    }
    work.par_iter()
        .flat_map(|(extent, tables)| {
            let extent = *extent;
            // Indexed (usize) ranges split evenly; table numbers are far below 2^32.
            let to = |t: u64| usize::try_from(t).unwrap_or(usize::MAX);
            (to(tables.start)..to(tables.end))
                .into_par_iter()
                .with_max_len(1)
                .map(move |table| Unit {
                    extent,
                    table: table as u64,
                })
        })
        .try_fold(
            || (Worker::new(view, record), Vec::new()),
            |(mut w, mut gt), u| {
                run_unit(chain, li, u, &mut w, &mut gt)?;
                // Blocks never span units here: close the last one so workers never share it.
                close_block(&mut w.block, &mut w.stats, &mut w.rec);
                progress.inc(1);
                Ok::<_, Error>((w, gt))
            },
        )
        .map(|r| r.map(|(w, _)| w.finish()))
        .try_reduce(
            || (LayerStats::default(), Vec::new()),
            |(mut a, mut ra), (b, mut rb)| {
                a += b;
                ra.append(&mut rb);
                Ok((a, ra))
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection_is_exact_at_every_position() {
        let mut buf = vec![0u8; 4096 + 17];
        assert!(is_zero(&buf));
        for i in [0, 7, 63, 64, 4095, 4096 + 16] {
            buf[i] = 1;
            assert!(!is_zero(&buf), "byte {i}");
            buf[i] = 0;
        }
        assert!(is_zero(&[]));
    }

    #[test]
    fn first_match_wins() {
        let f = |c, e, p| {
            Flags {
                content_zero: c,
                equal: e,
                parent_zero: p,
            }
            .class()
        };
        assert_eq!(f(true, true, true), GrainClass::Zeroed);
        assert_eq!(f(true, false, false), GrainClass::Zeroed);
        assert_eq!(f(false, true, false), GrainClass::Identical);
        assert_eq!(f(false, false, true), GrainClass::Fresh);
        assert_eq!(f(false, false, false), GrainClass::Overwritten);
    }

    #[test]
    fn counts_add() {
        let mut a = ClassCounts {
            fresh: 1,
            overwritten: 2,
            identical: 3,
            zeroed: 4,
        };
        a += a;
        assert_eq!(a.total(), 20);
        assert_eq!(a.identical, 6);
    }
}
