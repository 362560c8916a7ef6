//! The allocation map of one layer, with the meaning of `qemu-img map --output=json` of that
//! layer alone (FORMATS.md 7.2): merged runs of unallocated, zero, data (with the file
//! offset) and compressed ranges.

use serde::Serialize;

use crate::error::{Corrupt, CorruptKind, Error, Result, Structure};
use crate::format::{ExtentMap, GrainState, Piece};
use crate::layer::{Backing, Layer};

/// One run of the map, with qemu's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapEntry {
    /// First virtual byte.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
    /// Always 0: the map is of one layer.
    pub depth: u32,
    /// Allocated in this layer.
    pub present: bool,
    /// Reads as zeros.
    pub zero: bool,
    /// Backed by data in a file.
    pub data: bool,
    /// Backed by a compressed grain.
    pub compressed: bool,
    /// File offset of the data (uncompressed data only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The file holding the data, when the layer has several files (not in qemu's output).
    #[serde(skip)]
    pub extent: usize,
}

fn entry(extent: usize, p: Piece) -> MapEntry {
    let (present, zero, data, compressed, offset) = match p.state {
        GrainState::Unallocated => (false, true, false, false, None),
        GrainState::Zero | GrainState::Unmapped => (true, true, false, false, None),
        GrainState::Data { file_offset } => (true, false, true, false, Some(file_offset)),
        GrainState::Compressed { .. } => (true, false, true, true, None),
    };
    MapEntry {
        start: p.virt,
        length: p.len,
        depth: 0,
        present,
        zero,
        data,
        compressed,
        offset,
        extent,
    }
}

/// Whether `next` continues `cur` (qemu's rule: same flags, and contiguous offsets in the
/// same file when there are offsets).
fn mergeable(cur: &MapEntry, next: &MapEntry) -> bool {
    cur.start + cur.length == next.start
        && cur.present == next.present
        && cur.zero == next.zero
        && cur.data == next.data
        && cur.compressed == next.compressed
        && match (cur.offset, next.offset) {
            (None, None) => true,
            (Some(a), Some(b)) => a + cur.length == b && cur.extent == next.extent,
            _ => false,
        }
}

/// The merged map of `layer`.
pub fn layer_map(layer: &Layer) -> Result<Vec<MapEntry>> {
    let mut out: Vec<MapEntry> = Vec::new();
    let mut scratch = Vec::new();
    let mut push = |e: MapEntry| match out.last_mut() {
        Some(cur) if mergeable(cur, &e) => cur.length += e.length,
        _ => out.push(e),
    };
    layer.walk(&mut scratch, &mut |ei, p| {
        if p.len == 0 {
            return Ok(());
        }
        let extent = &layer.extents[ei];
        match (p.state, &extent.backing) {
            // qemu recurses into the file of a flat extent: holes of a sparse host file read
            // as zero there (present, zero and data all set).
            (
                GrainState::Data { file_offset },
                Backing::File {
                    map: ExtentMap::Flat(_),
                    source: src,
                },
            ) => {
                let end = file_offset + p.len;
                let mut off = file_offset;
                while off < end {
                    let (data, run_end) = src.data_run(off, end);
                    let mut e = entry(
                        ei,
                        Piece {
                            virt: p.virt + (off - file_offset),
                            len: run_end - off,
                            state: p.state,
                        },
                    );
                    e.offset = Some(off);
                    e.zero = !data;
                    push(e);
                    off = run_end;
                }
            }
            _ => push(entry(ei, p)),
        }
        Ok(())
    })?;
    check_overlaps(layer, &out)?;
    Ok(out)
}

/// What occupies a range of a sparse extent's file.
enum Owner {
    /// The data of the virtual range starting at this byte.
    Data(u64),
    /// A directory or table.
    Meta(Structure),
}

/// Fails when two grains, or a grain and a table, of one sparse extent share bytes of the
/// file: qemu would read such an image, but a write to one would change the other, so it
/// was never written by a correct writer. Flat extents may share a file by design.
fn check_overlaps(layer: &Layer, entries: &[MapEntry]) -> Result<()> {
    for (ei, extent) in layer.extents.iter().enumerate() {
        let Backing::File { map, source: src } = &extent.backing else {
            continue;
        };
        if map.tables().is_none() {
            continue;
        }
        let mut ranges: Vec<(u64, u64, Owner)> = map
            .metadata_ranges()
            .into_iter()
            .map(|(o, l, s)| (o, l, Owner::Meta(s)))
            .collect();
        ranges.extend(entries.iter().filter(|e| e.extent == ei).filter_map(|e| {
            e.offset
                .filter(|_| e.data)
                .map(|o| (o, e.length, Owner::Data(e.start)))
        }));
        ranges.sort_by_key(|r| r.0);
        // The range reaching furthest so far: any later range starting before its end
        // shares bytes with it.
        let mut reach: Option<&(u64, u64, Owner)> = None;
        for r in &ranges {
            if r.1 == 0 {
                continue;
            }
            if let Some(prev) = reach
                && r.0 < prev.0 + prev.1
            {
                let at = r.0;
                let corrupt = match (&prev.2, &r.2) {
                    // Tables may share bytes only with each other's copies; not a grain.
                    (Owner::Meta(_), Owner::Meta(_)) => None,
                    (Owner::Data(a), Owner::Data(b)) => Some(Corrupt::new(
                        Structure::ExtentData,
                        at,
                        CorruptKind::Overlap {
                            message: format!(
                                "the grains at virtual bytes {a:#x} and {b:#x} share the file bytes from {at:#x}"
                            ),
                        },
                    )),
                    (Owner::Meta(s), Owner::Data(v)) | (Owner::Data(v), Owner::Meta(s)) => {
                        Some(Corrupt::new(
                            s.clone(),
                            at,
                            CorruptKind::Overlap {
                                message: format!(
                                    "the grain at virtual byte {v:#x} stores its data inside the {s}"
                                ),
                            },
                        ))
                    }
                };
                if let Some(c) = corrupt {
                    return Err(Error::corrupt(src.path(), c));
                }
            }
            if reach.is_none_or(|p| r.0 + r.1 > p.0 + p.1) {
                reach = Some(r);
            }
        }
    }
    Ok(())
}
