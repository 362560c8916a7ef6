//! Ceilings of the top layer: how large its delta can get at most (the hard ceiling) and how
//! large it gets if fresh-first allocation goes on (the expected ceiling: what it holds now
//! plus every byte it has not written yet that reads as zero in the layers below it).
//!
//! The zero space below is a by-product of classifying every layer (see [`ceiling`]); only
//! chains with grains smaller than 4 KiB below the top are walked again, counting from
//! metadata wherever it allows (unallocated runs, zero and unmapped grains) and reading data
//! only where a layer below holds it.

use rayon::prelude::*;
use serde::Serialize;

use crate::bytes::is_zero;
use crate::chain::Chain;
use crate::classify::LayerStats;
use crate::error::{Error, Result};
use crate::layer::{Extent, Layer};
use crate::view::{ComposedView, Scratch, ViewBytes};

/// Virtual bytes one rayon task walks.
const SPAN: u64 = 1 << 30;
/// Largest read of parent data at once.
const CHUNK: u64 = 1 << 20;
const BLOCK: u64 = 4096;

/// The top layer's ceilings, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Ceiling {
    /// Virtual size plus the metadata a fully allocated delta carries: the most it can grow.
    pub hard_bytes: u64,
    /// Allocated now plus `parent_zero_unwritten_bytes`: where fresh-first allocation ends.
    pub expected_bytes: u64,
    /// Bytes the top has not written that read as zero below it (4 KiB blocks).
    pub parent_zero_unwritten_bytes: u64,
}

/// Computes the ceilings of the chain's top layer from the classification of every layer
/// (base first).
///
/// The zero space counts by 4 KiB blocks of the view below the top: a byte the top has not
/// written counts when its whole block reads as zero below the top.
///
/// Where the layers below the top hold whole 4 KiB blocks, that follows from the
/// classification alone, with no byte read again: the view below layer `i` has `Z(i)` zero
/// bytes, and layer `i` replaces the blocks it holds, so `Z(i + 1) = Z(i) - (its bytes over
/// zero) + (its zero bytes)`; the top has not written `Z(top) - (its bytes in blocks that are
/// zero below it)` of them. Chains with smaller grains below the top (a COWD delta under
/// another) are walked instead.
pub fn ceiling(chain: &Chain, stats: &[LayerStats]) -> Result<Ceiling> {
    let ti = chain.layers.len() - 1;
    let top = &chain.layers[ti];
    let size = top.virtual_size;
    let (allocated, stored) = stats
        .last()
        .map_or((0, 0), |s| (s.allocated_bytes, s.stored_bytes));
    let zero = if stats.len() == chain.layers.len() && chain.layers[..ti].iter().all(block_aligned)
    {
        let below = stats[..ti].iter().fold(size, |z, s| {
            z.saturating_sub(s.parent_zero_bytes)
                .saturating_add(s.content_zero_bytes)
                .min(size)
        });
        below.saturating_sub(stats[ti].parent_block_zero_bytes)
    } else {
        walk_zero(chain)?
    };
    // Metadata now (file bytes besides grain data) plus the grain tables still to come.
    let mut missing_tables = 0u64;
    for map in top.extents.iter().filter_map(Extent::map) {
        let absent = map.table_count() - map.present_count();
        missing_tables += absent * map.table_bytes();
    }
    let metadata = top.file_size().saturating_sub(stored) + missing_tables;
    Ok(Ceiling {
        hard_bytes: size + metadata,
        expected_bytes: allocated + zero,
        parent_zero_unwritten_bytes: zero,
    })
}

/// Bytes of the base's view (layer 0 alone) whose 4 KiB block reads as zero: what a new clone
/// of the base can grow into before it overwrites anything, that is the expected ceiling of
/// an empty clone. From layer 0's classification (`stats`) when its pieces are whole blocks
/// (zero space is what it does not hold, plus what it holds that is zero); read otherwise.
pub fn base_zero_bytes(chain: &Chain, stats: &LayerStats) -> Result<u64> {
    let base = &chain.layers[0];
    let size = base.virtual_size;
    if block_aligned(base) {
        return Ok(size
            .saturating_sub(stats.allocated_bytes)
            .saturating_add(stats.content_zero_bytes)
            .min(size));
    }
    let view = ComposedView::new(&chain.layers, 1);
    (0..size.div_ceil(SPAN))
        .into_par_iter()
        .map_init(Walker::default, |w, i| {
            let start = i * SPAN;
            w.zero_below(&view, start, (start + SPAN).min(size))
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))
}

/// Whether every piece of `layer` covers whole 4 KiB blocks of the virtual disk.
fn block_aligned(layer: &Layer) -> bool {
    layer.extents.iter().all(|e| {
        e.virt_start % BLOCK == 0
            && e.table_span() % BLOCK == 0
            && e.map()
                .and_then(|m| m.tables())
                .is_none_or(|t| t.grain_bytes % BLOCK == 0)
    })
}

/// Zero bytes below the top where the top holds nothing, by reading the layers below.
fn walk_zero(chain: &Chain) -> Result<u64> {
    let ti = chain.layers.len() - 1;
    let size = chain.layers[ti].virtual_size;
    (0..size.div_ceil(SPAN))
        .into_par_iter()
        .map_init(Walker::default, |w, i| {
            let start = i * SPAN;
            w.unwritten_zero(chain, ti, start, (start + SPAN).min(size))
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))
}

#[derive(Default)]
struct Walker {
    scratch: Scratch,
    gte: Vec<u8>,
    buf: Vec<u8>,
}

impl Walker {
    /// Zero bytes below layer `ti` over `[v, end)` where layer `ti` itself holds nothing.
    fn unwritten_zero(&mut self, chain: &Chain, ti: usize, mut v: u64, end: u64) -> Result<u64> {
        let layer = &chain.layers[ti];
        let view = ComposedView::new(&chain.layers, ti);
        let mut total = 0;
        // Runs of consecutive unwritten pieces, each counted by the blocks it touches.
        let mut run: Option<(u64, u64)> = None;
        while v < end {
            let Some((_, p)) = layer.lookup(v, &mut self.gte)? else {
                break; // past the layer's end: nothing to grow into
            };
            let n = next_end(p.virt, p.len, v, end)?;
            if !p.state.is_allocated() {
                run = match run {
                    Some((s, e)) if e == v => Some((s, n)),
                    Some((s, e)) => {
                        total += self.zero_below(&view, s, e)?;
                        Some((v, n))
                    }
                    None => Some((v, n)),
                };
            }
            v = n;
        }
        if let Some((s, e)) = run {
            total += self.zero_below(&view, s, e)?;
        }
        Ok(total)
    }

    /// Bytes of `[v, end)` whose whole 4 KiB block reads as zero in `view`. Whole chunks that
    /// metadata says are zero are counted without reading; other blocks are read (borrowed
    /// from the map where one grain holds them) and tested.
    fn zero_below(&mut self, view: &ComposedView<'_>, mut v: u64, end: u64) -> Result<u64> {
        let mut total = 0;
        while v < end {
            let chunk_start = v - v % BLOCK;
            let chunk_end = (chunk_start + CHUNK).min(end.div_ceil(BLOCK) * BLOCK);
            let len = (chunk_end - chunk_start) as usize;
            match view.resolve(chunk_start, len, &mut self.buf, &mut self.scratch)? {
                ViewBytes::Zero => total += chunk_end.min(end) - v,
                ViewBytes::Bytes(bytes) => {
                    let mut b = chunk_start;
                    while b < chunk_end {
                        let i = (b - chunk_start) as usize;
                        let k = (BLOCK as usize).min(len - i);
                        if is_zero(&bytes[i..i + k]) {
                            total += (b + k as u64).min(end) - b.max(v);
                        }
                        b += BLOCK;
                    }
                }
            }
            v = chunk_end.min(end);
        }
        Ok(total)
    }
}

fn next_end(pv: u64, plen: u64, v: u64, end: u64) -> Result<u64> {
    let e = (pv + plen).min(end);
    if e <= v {
        return Err(Error::Other(format!(
            "empty allocation run at virtual byte {v:#x}"
        )));
    }
    Ok(e)
}
