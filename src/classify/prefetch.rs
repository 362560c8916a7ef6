//! Read-ahead: before a table unit is classified, the kernel is told which file ranges it
//! will read (the layer's own data, and the parent view's data under it), so that on a cold
//! cache the reads arrive as large asynchronous I/O instead of page by page. Only a hint:
//! results never depend on it, and hot files skip it after a three-page probe.

use crate::error::Result;
use crate::format::GrainState;
use crate::layer::Layer;
use crate::view::{ComposedView, Scratch};

use super::TableUnit;

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

/// Tells the kernel which file ranges unit `u` of layer `li` is about to read: the layer's
/// own data and, when that was cold, the data of `view` (its parent view) under it.
pub(super) fn prefetch(
    layers: &[Layer],
    li: usize,
    u: TableUnit,
    view: &ComposedView<'_>,
    scratch: &mut Scratch,
    gt: &mut Vec<u8>,
) -> Result<()> {
    let e = &layers[li].extents[u.extent];
    let Some(src) = e.file() else {
        return Ok(());
    };
    let base = e.virt_start;
    let mut own = Ranges::default();
    e.walk_table(u.table, gt, &mut |p| {
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
    let mut below = Ranges::default();
    e.walk_table(u.table, gt, &mut |p| {
        if p.state.is_allocated()
            && below.runs.len() <= PREFETCH_RUNS
            && let Some((l, x, off)) = view.locate(base + p.virt, p.len as usize, scratch)?
        {
            below.add(l, x, off, p.len);
        }
        Ok(())
    })?;
    for r in below.runs.iter().take(PREFETCH_RUNS) {
        if let Some(s) = layers[r.0].extents[r.1].file() {
            s.will_need(r.2, r.3 - r.2);
        }
    }
    Ok(())
}
