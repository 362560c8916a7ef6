//! Grain directories and grain tables: what the three sparse formats (`KDMV`, `COWD`,
//! SESparse) share. A directory says where each grain table is; a table holds one entry per
//! grain. The walk over a table and the lookup of one grain are written once, here
//! (`GrainTables::walk`, `GrainTables::lookup`); what an entry means is each format's
//! `Decode`.

use std::collections::TryReserveError;

use crate::bytes::{ReadAt, is_zero, le_u32, le_u64};
use crate::error::{Corrupt, ReadError, Structure};

use super::{GrainState, Piece, WalkError};

/// Where an entry sits, for the errors of [`Decode::decode`] and the length of its grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryAt {
    /// Index of the table in the directory.
    pub table: u64,
    /// File offset of the entry.
    pub offset: u64,
    /// Index of the grain in the extent.
    pub grain: u64,
}

/// What one grain table entry means in a format.
pub(crate) trait Decode {
    /// Bytes per entry: 4 (`KDMV`, `COWD`) or 8 (SESparse).
    const ENTRY_BYTES: u64;

    /// The state of the grain whose entry holds `raw`.
    fn decode(&self, raw: u64, at: EntryAt) -> Result<GrainState, Corrupt>;
}

/// Entry `i` of a table of `D`'s entries (0 past the end, which the walk never reaches).
#[inline]
fn entry<D: Decode>(table: &[u8], i: usize) -> u64 {
    if D::ENTRY_BYTES == 8 {
        le_u64(table, i).unwrap_or(0)
    } else {
        le_u32(table, i).map_or(0, u64::from)
    }
}

/// The grain directory of a sparse extent and the geometry of its tables.
#[derive(Debug, Clone)]
pub struct GrainTables {
    dir: Directory,
    /// Extent length in bytes.
    pub capacity: u64,
    /// Grain size in bytes.
    pub grain_bytes: u64,
    /// Entries per grain table.
    pub entries: u64,
    /// Virtual bytes one grain table covers.
    pub table_span: u64,
}

impl GrainTables {
    /// Tables of `entries` entries over grains of `grain_bytes`, found through `dir`.
    pub(crate) fn new(dir: Directory, capacity: u64, grain_bytes: u64, entries: u64) -> Self {
        GrainTables {
            dir,
            capacity,
            grain_bytes,
            entries,
            table_span: entries * grain_bytes,
        }
    }

    /// The directory of present tables.
    pub fn directory(&self) -> &Directory {
        &self.dir
    }

    /// Calls `f` for every piece table `t` maps, allocated or not, in virtual order: one
    /// unallocated piece for an absent or all-zero table, else one piece per grain.
    pub(crate) fn walk<D: Decode, R: ReadAt + ?Sized, E>(
        &self,
        d: &D,
        src: &R,
        t: u64,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(Piece) -> Result<(), E>,
    ) -> Result<(), WalkError<E>> {
        let start = t * self.table_span;
        if start >= self.capacity {
            return Ok(());
        }
        let Some(gt_off) = self.table_in_file::<D, R>(src, t) else {
            return f(Piece {
                virt: start,
                len: self.table_span.min(self.capacity - start),
                state: GrainState::Unallocated,
            })
            .map_err(WalkError::Visit);
        };
        let gt = src
            .read_at(
                gt_off,
                (self.entries * D::ENTRY_BYTES) as usize,
                scratch,
                &Structure::GrainTable { index: t },
            )
            .map_err(WalkError::Read)?;
        let first_grain = start / self.grain_bytes;
        let grains = self
            .table_span
            .min(self.capacity - start)
            .div_ceil(self.grain_bytes);
        if let Some(p) = empty_table(
            gt,
            grains * D::ENTRY_BYTES,
            start,
            self.table_span,
            self.capacity,
        ) {
            return f(p).map_err(WalkError::Visit);
        }
        for i in 0..grains {
            let g = first_grain + i;
            let at = EntryAt {
                table: t,
                offset: gt_off + i * D::ENTRY_BYTES,
                grain: g,
            };
            let state = d
                .decode(entry::<D>(gt, i as usize), at)
                .map_err(|c| WalkError::Read(c.into()))?;
            f(grain_piece(g, self.grain_bytes, self.capacity, 0, state))
                .map_err(WalkError::Visit)?;
        }
        Ok(())
    }

    /// The state of extent byte `virt` and the end of its run: its grain, or the rest of an
    /// absent table.
    pub(crate) fn lookup<D: Decode, R: ReadAt + ?Sized>(
        &self,
        d: &D,
        src: &R,
        virt: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<Piece, ReadError> {
        let g = virt / self.grain_bytes;
        let t = virt / self.table_span;
        let Some(gt_off) = self.table_in_file::<D, R>(src, t) else {
            let end = ((t + 1) * self.table_span).min(self.capacity);
            return Ok(Piece {
                virt,
                len: end - virt,
                state: GrainState::Unallocated,
            });
        };
        let offset = gt_off + (g % self.entries) * D::ENTRY_BYTES;
        let raw = src.read_at(
            offset,
            D::ENTRY_BYTES as usize,
            scratch,
            &Structure::GrainTable { index: t },
        )?;
        let state = d.decode(
            entry::<D>(raw, 0),
            EntryAt {
                table: t,
                offset,
                grain: g,
            },
        )?;
        Ok(grain_piece(g, self.grain_bytes, self.capacity, virt, state))
    }

    /// Where table `t` is in the file, when there is one to read: an absent table, and one
    /// lying in a hole of a sparse host file (all zeros: a 2 TiB disk has 65,536 tables, most
    /// never written), allocate nothing.
    fn table_in_file<D: Decode, R: ReadAt + ?Sized>(&self, src: &R, t: u64) -> Option<u64> {
        self.dir
            .offset(t)
            .filter(|&off| !src.is_hole(off, self.entries * D::ENTRY_BYTES))
    }

    /// Length of grain `g` (the last one may be cut short by the capacity).
    pub(crate) fn grain_len(&self, g: u64) -> u64 {
        self.grain_bytes.min(self.capacity - g * self.grain_bytes)
    }

    /// File ranges of the tables (offset, length, structure), for overlap checks.
    pub(crate) fn table_ranges(
        &self,
        table_bytes: u64,
    ) -> impl Iterator<Item = (u64, u64, Structure)> + '_ {
        self.dir
            .tables()
            .map(move |(t, off)| (off, table_bytes, Structure::GrainTable { index: t }))
    }
}

/// The whole table as one unallocated piece when its first `entry_bytes` bytes of entries are
/// all zero (nothing allocated): a 2 TiB disk with little data has tens of thousands of such
/// tables, and every caller would otherwise walk their entries one by one.
fn empty_table(gt: &[u8], entry_bytes: u64, start: u64, span: u64, capacity: u64) -> Option<Piece> {
    let entries = usize::try_from(entry_bytes)
        .ok()
        .and_then(|n| gt.get(..n))
        .unwrap_or(gt);
    is_zero(entries).then(|| Piece {
        virt: start,
        len: span.min(capacity - start),
        state: GrainState::Unallocated,
    })
}

/// Builds the piece for grain `g` of a sparse extent from its state, clipped to `capacity`,
/// and from `virt` (inside the grain) for lookups.
fn grain_piece(g: u64, grain_bytes: u64, capacity: u64, from: u64, state: GrainState) -> Piece {
    let start = g * grain_bytes;
    let end = (start + grain_bytes).min(capacity);
    let from = from.max(start);
    let state = match state {
        GrainState::Data { file_offset } => GrainState::Data {
            file_offset: file_offset + (from - start),
        },
        s => s,
    };
    Piece {
        virt: from,
        len: end.saturating_sub(from),
        state,
    }
}

/// Error for a grain table entry pointing outside the file.
pub(crate) fn entry_out_of_file(
    at: EntryAt,
    entry: u64,
    needed_end: u64,
    file_len: u64,
) -> Corrupt {
    Corrupt::bad_value(
        Structure::GrainTable { index: at.table },
        at.offset,
        "grain table entry",
        entry,
        format!(
            "a grain inside the file (the grain would end at {needed_end:#x}, the file has {file_len:#x} bytes)"
        ),
    )
}

/// Error for a grain table entry pointing into the metadata in front of the grains.
pub(crate) fn entry_in_metadata(at: EntryAt, entry: u64, metadata_end: u64) -> Corrupt {
    Corrupt::bad_value(
        Structure::GrainTable { index: at.table },
        at.offset,
        "grain table entry",
        entry,
        format!(
            "a grain after the metadata, which ends at {metadata_end:#x} (the grain would share bytes with headers or tables)"
        ),
    )
}

/// A grain directory, kept as runs of present tables: a run is tables `first..first + count`
/// stored back to back from file offset `offset`, `stride` bytes apart. Writers preallocate
/// their tables in one block (qemu, VMware), so a 64 TiB directory of two million entries is
/// one run; absent tables cost nothing. The worst case (every table alone) is one run per
/// present table, each backed by a table of the file, so memory follows the tables a file
/// really has, never its virtual size.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    entries: u64,
    stride: u64,
    present: u64,
    runs: Vec<Run>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: u64,
    offset: u64,
    count: u64,
}

impl Directory {
    /// An empty directory of `entries` entries whose consecutive tables lie `stride` bytes
    /// apart.
    pub fn new(entries: u64, stride: u64) -> Self {
        Directory {
            entries,
            stride,
            present: 0,
            runs: Vec::new(),
        }
    }

    /// Records that table `t` (greater than every table recorded before) is at `offset`.
    /// Growing the run list is the only allocation; one that cannot be made is an error.
    pub fn push(&mut self, t: u64, offset: u64) -> Result<(), TryReserveError> {
        self.present += 1;
        if let Some(last) = self.runs.last_mut()
            && last.first + last.count == t
            && last
                .offset
                .checked_add(last.count.saturating_mul(self.stride))
                == Some(offset)
        {
            last.count += 1;
            return Ok(());
        }
        self.runs.try_reserve(1)?;
        self.runs.push(Run {
            first: t,
            offset,
            count: 1,
        });
        Ok(())
    }

    /// Number of directory entries (tables covering the extent).
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// Whether the directory has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Number of present tables.
    pub fn present(&self) -> u64 {
        self.present
    }

    /// File offset of table `t`, if present.
    pub fn offset(&self, t: u64) -> Option<u64> {
        let i = self.runs.partition_point(|r| r.first <= t).checked_sub(1)?;
        let r = self.runs.get(i)?;
        (t < r.first + r.count).then(|| r.offset + (t - r.first) * self.stride)
    }

    /// The runs of present tables: (tables, file offset of the first).
    pub fn runs(&self) -> impl Iterator<Item = (std::ops::Range<u64>, u64)> + '_ {
        self.runs
            .iter()
            .map(|r| (r.first..r.first + r.count, r.offset))
    }

    /// Every present table and its file offset, in table order.
    pub fn tables(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let stride = self.stride;
        self.runs
            .iter()
            .flat_map(move |r| (0..r.count).map(move |k| (r.first + k, r.offset + k * stride)))
    }
}

/// Reads a grain directory of `entries` entries of `entry_bytes` bytes at `offset` of `src`,
/// a chunk at a time (never a copy of the whole directory): `decode(t, raw, entry_offset)`
/// says where table `t` is, or `None` when it is absent. The whole directory is checked to lie
/// in the file first. An allocation that cannot be made is an error, not an abort.
pub(crate) fn read_directory<R: ReadAt + ?Sized>(
    src: &R,
    offset: u64,
    entries: u64,
    entry_bytes: u64,
    stride: u64,
    structure: &Structure,
    decode: &mut dyn FnMut(u64, u64, u64) -> Result<Option<u64>, Corrupt>,
) -> Result<Directory, ReadError> {
    const CHUNK_ENTRIES: u64 = 8192;
    let len = entries
        .checked_mul(entry_bytes)
        .ok_or_else(|| Corrupt::overflow(structure.clone(), offset, "grain directory size"))?;
    src.check_range(offset, len, structure)?;
    let mut dir = Directory::new(entries, stride);
    let mut scratch = vec![0u8; (CHUNK_ENTRIES.min(entries) * entry_bytes) as usize];
    let mut t = 0;
    while t < entries {
        let n = CHUNK_ENTRIES.min(entries - t);
        let at = offset + t * entry_bytes;
        // A directory the writer preallocated and never filled is a hole of the file: all
        // zero entries, no table, nothing to read.
        let (data, end) = src.data_run(at, at + n * entry_bytes);
        if !data && end >= at + n * entry_bytes {
            t += n;
            continue;
        }
        let raw = &mut scratch[..(n * entry_bytes) as usize];
        src.read_once(at, raw, structure)?;
        for (k, e) in raw.chunks_exact(entry_bytes as usize).enumerate() {
            let mut v = [0u8; 8];
            v[..e.len()].copy_from_slice(e);
            let entry_at = at + k as u64 * entry_bytes;
            if let Some(table) = decode(t + k as u64, u64::from_le_bytes(v), entry_at)? {
                dir.push(t + k as u64, table).map_err(|_| ReadError::Io {
                    op: "allocate the grain directory",
                    source: std::io::Error::from(std::io::ErrorKind::OutOfMemory),
                })?;
            }
        }
        t += n;
    }
    Ok(dir)
}
