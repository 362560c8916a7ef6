//! Read-ahead: before a table unit is classified, the kernel is told which file ranges it
//! will read (the layer's own data, and the parent view's data under it), so that on a cold
//! cache the reads arrive as large asynchronous I/O instead of page by page. Only a hint:
//! results never depend on it, and hot files skip it after a three-page probe.

use crate::error::Result;
use crate::format::{GrainState, Piece};
use crate::layer::Layer;
use crate::view::{ComposedView, Scratch};

/// Gaps up to this size between two runs a unit reads are read ahead with them.
const PREFETCH_GAP: u64 = 1 << 20;
/// Most read-ahead hints per unit and file: beyond that the reads are too scattered for
/// hints to pay (and the page cache's own read-ahead does as well).
const PREFETCH_RUNS: usize = 64;

/// File ranges a unit will read, merged: (layer, extent, start, end).
#[derive(Default)]
struct Ranges {
    runs: Vec<(usize, usize, u64, u64)>,
}

impl Ranges {
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

/// Tells the kernel which file ranges a unit of layer `li` is about to read: `pieces`, the
/// unit's allocated pieces in extent `extent` (extent virtual bytes), and, when those were
/// cold, the data of `view` (its parent view) under them.
pub(super) fn prefetch(
    layers: &[Layer],
    (li, extent): (usize, usize),
    pieces: &[Piece],
    view: &ComposedView<'_>,
    scratch: &mut Scratch,
) -> Result<()> {
    let e = &layers[li].extents[extent];
    let Some(src) = e.file() else {
        return Ok(());
    };
    let data = |p: &Piece| match p.state {
        GrainState::Data { file_offset } => Some((file_offset, p.len)),
        _ => None,
    };
    // The unit's first and last data pieces stand for it: probing every run cost a hot scan
    // of scattered 4 KiB writes 95,000 mincore calls and a third of its kernel time, and
    // building the runs first cost a COWD scan a second walk of every table. A unit whose
    // probed data is in memory was read recently; its parent bytes most likely were too, so
    // a hot unit gives no hint at all.
    let first = pieces.iter().find_map(data);
    let last = pieces.iter().rev().find_map(data);
    if ![first, last]
        .into_iter()
        .flatten()
        .any(|(off, len)| src.looks_cold(off, len))
    {
        return Ok(());
    }
    let mut own = Ranges::default();
    for (off, len) in pieces.iter().filter_map(data) {
        own.add(li, extent, off, len);
    }
    for r in own.runs.iter().take(PREFETCH_RUNS) {
        src.will_need(r.2, r.3 - r.2);
    }
    let base = e.virt_start;
    let mut below = Ranges::default();
    for p in pieces {
        if below.runs.len() > PREFETCH_RUNS {
            break;
        }
        if let Some((l, x, off)) = view.locate(base + p.virt, p.len as usize, scratch)? {
            below.add(l, x, off, p.len);
        }
    }
    for r in below.runs.iter().take(PREFETCH_RUNS) {
        if let Some(s) = layers[r.0].extents[r.1].file()
            && s.looks_cold(r.2, r.3 - r.2)
        {
            s.will_need(r.2, r.3 - r.2);
        }
    }
    Ok(())
}
