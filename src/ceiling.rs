//! Ceilings of the top layer: how large its delta can get at most (the hard ceiling) and how
//! large it gets if fresh-first allocation goes on (the expected ceiling: what it holds now
//! plus every byte it has not written yet that reads as zero in the layers below it).
//!
//! The zero space below is counted from metadata wherever the chain allows (unallocated runs,
//! zero and unmapped grains), and by reading data grains only where a layer below holds data,
//! in 4 KiB blocks, so a 2 TiB disk with little data is walked in little time and memory.

use rayon::prelude::*;
use serde::Serialize;

use crate::chain::Chain;
use crate::classify::is_zero;
use crate::error::{Error, Result};
use crate::format::{ExtentMap, GrainState};
use crate::view::{ParentView, Scratch};

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

/// Computes the ceilings of the chain's top layer, given its allocated and stored bytes.
pub fn ceiling(chain: &Chain, allocated: u64, stored: u64) -> Result<Ceiling> {
    let ti = chain.layers.len() - 1;
    let top = &chain.layers[ti];
    let size = top.virtual_size;
    let spans: Vec<u64> = (0..size.div_ceil(SPAN)).collect();
    let zero: u64 = spans
        .par_iter()
        .map_init(Walker::default, |w, &i| {
            let start = i * SPAN;
            w.unwritten_zero(chain, ti, start, (start + SPAN).min(size))
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))?;
    // Metadata now (file bytes besides grain data) plus the grain tables still to come.
    let mut missing_tables = 0u64;
    for e in &top.extents {
        let entry_bytes = match &e.map {
            ExtentMap::Hosted(_) | ExtentMap::Cowd(_) => 4,
            ExtentMap::SeSparse(_) => 8,
            ExtentMap::Flat(_) | ExtentMap::Zero { .. } => 0,
        };
        if entry_bytes == 0 {
            continue;
        }
        let per_table = e.map.table_span() / e.map.grain_bytes().max(1) * entry_bytes;
        let absent = (0..e.map.table_count())
            .filter(|&t| !e.map.table_present(t))
            .count();
        missing_tables += absent as u64 * per_table;
    }
    let metadata = top.file_size().saturating_sub(stored) + missing_tables;
    Ok(Ceiling {
        hard_bytes: size + metadata,
        expected_bytes: allocated + zero,
        parent_zero_unwritten_bytes: zero,
    })
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
        let mut total = 0;
        while v < end {
            let Some((_, p)) = layer.lookup(v, &mut self.gte)? else {
                break; // past the layer's end: nothing to grow into
            };
            let n = next_end(p.virt, p.len, v, end)? - v;
            if !p.state.is_allocated() {
                total += self.zero_below(chain, ti, v, v + n)?;
            }
            v += n;
        }
        Ok(total)
    }

    /// Zero bytes of the view of `layers[..upto]` over `[v, end)`, counted per whole 4 KiB
    /// block inside the range (partial blocks at the ends count by their bytes).
    fn zero_below(&mut self, chain: &Chain, upto: usize, mut v: u64, end: u64) -> Result<u64> {
        if upto == 0 {
            return Ok(end - v);
        }
        let layer = &chain.layers[upto - 1];
        let mut total = 0;
        while v < end {
            let Some((_, p)) = layer.lookup(v, &mut self.gte)? else {
                return Ok(total + (end - v));
            };
            let n_end = next_end(p.virt, p.len, v, end)?;
            match p.state {
                GrainState::Unallocated => total += self.zero_below(chain, upto - 1, v, n_end)?,
                GrainState::Zero | GrainState::Unmapped => total += n_end - v,
                GrainState::Data { .. } | GrainState::Compressed { .. } => {
                    let mut at = v;
                    while at < n_end {
                        let to = (at + CHUNK).min(n_end);
                        let len = (to - at) as usize;
                        if self.buf.len() < len {
                            self.buf.resize(len, 0);
                        }
                        let view = ParentView::new(chain, upto);
                        view.fill(upto, at, &mut self.buf[..len], &mut self.scratch)?;
                        total += zero_blocks(at, &self.buf[..len]);
                        at = to;
                    }
                }
            }
            v = n_end;
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

/// Bytes of `data` (which starts at virtual byte `at`) in all-zero pieces cut at 4 KiB
/// boundaries of the virtual disk.
fn zero_blocks(at: u64, data: &[u8]) -> u64 {
    let mut total = 0;
    let mut i = 0usize;
    while i < data.len() {
        let v = at + i as u64;
        let n = ((v / BLOCK + 1) * BLOCK - v).min((data.len() - i) as u64) as usize;
        if is_zero(&data[i..i + n]) {
            total += n as u64;
        }
        i += n;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_blocks_cut_at_virtual_4k_boundaries() {
        let mut d = vec![0u8; 3 * 4096];
        // A byte in the second virtual block of a range that starts 1 KiB into a block.
        d[4096] = 1;
        // Range [1 KiB, 13 KiB): pieces 3 KiB, 4 KiB (holds the byte), 4 KiB, 1 KiB.
        assert_eq!(zero_blocks(1024, &d), 3 * 4096 - 4096);
        assert_eq!(zero_blocks(0, &[0u8; 100]), 100);
        assert_eq!(zero_blocks(0, &[1u8; 100]), 0);
    }
}
