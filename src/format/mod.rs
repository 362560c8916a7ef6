//! On-disk formats: detection by magic, and one contract for every extent format.
//!
//! Each format file parses headers and tables from a [`Source`] and
//! answers two questions in the extent's own virtual space (bytes from the extent's start):
//! which pieces does table `t` map ([`ExtentMap::walk_table`]), and what backs byte `v`
//! ([`ExtentMap::lookup`]). [`ExtentMap`] is an enum, so a new format breaks every `match`
//! until it is handled. Paths, chains, threads and reports are other modules' business.

pub mod cowd;
pub mod descriptor;
pub mod hosted;
pub mod sesparse;

use std::collections::TryReserveError;

use crate::error::{Corrupt, Error, Result, Structure};
use crate::source::Source;

/// What backs one grain (or a piece of one) of an extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrainState {
    /// Not in this layer: read the parent (zeros without one).
    Unallocated,
    /// Allocated as zeros without data (KDMV zeroed-grain GTE, SESparse type 2, COWD GTE 1).
    Zero,
    /// SESparse type 1: the guest unmapped it; reads as zeros (FORMATS.md 4.5, as qemu).
    Unmapped,
    /// Stored data; `file_offset` is the file offset of the piece's first byte.
    Data {
        /// File offset of the first byte of the piece.
        file_offset: u64,
    },
    /// A compressed grain of a streamOptimized extent.
    Compressed {
        /// File offset of the grain's marker.
        marker: u64,
        /// Index of the grain in the extent.
        grain: u64,
    },
}

impl GrainState {
    /// Whether the layer holds this piece (anything but [`GrainState::Unallocated`]).
    pub fn is_allocated(&self) -> bool {
        !matches!(self, GrainState::Unallocated)
    }
}

/// A run of an extent's virtual space with one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Start, in bytes from the extent's start.
    pub virt: u64,
    /// Length in bytes.
    pub len: u64,
    /// What backs it.
    pub state: GrainState,
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// `KDMV`: hosted sparse or streamOptimized extent.
    Kdmv,
    /// `COWD`: ESX vmfsSparse redo log.
    Cowd,
    /// `0xCAFEBABE`: SESparse.
    SeSparse,
    /// A text descriptor.
    Descriptor,
    /// None of these.
    Unknown,
}

/// Detects a file's kind from its leading bytes (FORMATS.md 2.1, 3.1, 4.2, 1.2).
pub fn detect(head: &[u8]) -> Magic {
    match head.get(..4) {
        Some(b"KDMV") => Magic::Kdmv,
        Some(b"COWD") => Magic::Cowd,
        Some([0xbe, 0xba, 0xfe, 0xca]) if head.get(4..8) == Some(&[0, 0, 0, 0]) => Magic::SeSparse,
        _ if descriptor::looks_like_descriptor(head) => Magic::Descriptor,
        _ => Magic::Unknown,
    }
}

/// What a file that is not a VMDK file looks like, in words, from its first bytes (`head`),
/// its last 512 bytes (`tail`, where a fixed VHD keeps its footer) and its length. Errors say
/// this instead of quoting the bytes: a parent hint may name `/etc/shadow`.
pub fn describe(head: &[u8], tail: &[u8], len: u64) -> &'static str {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if len == 0 {
        "an empty file"
    } else if at(0, b"QFI\xfb") {
        "a qcow2 image"
    } else if at(0, b"vhdxfile") {
        "a VHDX image"
    } else if at(0, b"conectix") || tail.starts_with(b"conectix") {
        "a VHD image"
    } else if at(0, b"\x7fELF") {
        "an ELF executable"
    } else if at(0, b"\x1f\x8b") {
        "gzip-compressed data"
    } else if at(0, b"PK\x03\x04") {
        "a zip archive"
    } else if at(512, b"EFI PART") {
        "a raw disk with a GPT partition table"
    } else if at(510, b"\x55\xaa") {
        "a raw disk with an MBR partition table"
    } else if !head.is_empty()
        && !head.contains(&0)
        && std::str::from_utf8(head).is_ok_and(|t| {
            t.chars()
                .all(|c| !c.is_control() || c.is_ascii_whitespace())
        })
    {
        "text that is not a VMDK descriptor"
    } else if head.iter().all(|&b| b == 0) {
        "zeros (no header at all)"
    } else {
        "binary data of an unknown kind"
    }
}

/// The whole table as one unallocated piece when its first `entry_bytes` bytes of entries are
/// all zero (nothing allocated): a 2 TiB disk with little data has tens of thousands of such
/// tables, and every caller would otherwise walk their entries one by one.
pub(crate) fn empty_table(
    gt: &[u8],
    entry_bytes: u64,
    start: u64,
    span: u64,
    capacity: u64,
) -> Option<Piece> {
    let entries = usize::try_from(entry_bytes)
        .ok()
        .and_then(|n| gt.get(..n))
        .unwrap_or(gt);
    crate::classify::is_zero(entries).then(|| Piece {
        virt: start,
        len: span.min(capacity - start),
        state: GrainState::Unallocated,
    })
}

/// Virtual grain size used to walk flat extents, which have no grains of their own.
pub const FLAT_GRAIN: u64 = 64 * 1024;
/// Grains per walk unit of a flat extent (32 MiB, as one KDMV grain table at 64 KiB).
const FLAT_GRAINS_PER_TABLE: u64 = 512;

/// A raw data extent (`FLAT`, `VMFS`): byte `v` is at `data_offset + v` of its file.
#[derive(Debug, Clone)]
pub struct FlatExtent {
    /// File offset of the extent's first byte.
    pub data_offset: u64,
    /// Extent length in bytes.
    pub capacity: u64,
    /// Length of the file.
    pub file_len: u64,
}

impl FlatExtent {
    /// Bytes of the extent that the file really holds (qemu reads the rest as zeros).
    pub fn available(&self) -> u64 {
        self.file_len
            .saturating_sub(self.data_offset)
            .min(self.capacity)
    }

    fn piece(&self, virt: u64, end: u64) -> Piece {
        let avail = self.available();
        if virt >= avail {
            Piece {
                virt,
                len: end - virt,
                state: GrainState::Zero,
            }
        } else {
            Piece {
                virt,
                len: end.min(avail) - virt,
                state: GrainState::Data {
                    file_offset: self.data_offset + virt,
                },
            }
        }
    }
}

/// The allocation map of one extent, whatever its format.
#[derive(Debug)]
pub enum ExtentMap {
    /// `KDMV` hosted sparse, including streamOptimized.
    Hosted(hosted::HostedExtent),
    /// `COWD` vmfsSparse redo log.
    Cowd(cowd::CowdExtent),
    /// SESparse.
    SeSparse(sesparse::SeSparseExtent),
    /// Raw data.
    Flat(FlatExtent),
    /// `ZERO`: no file, reads as zeros, holds nothing.
    Zero {
        /// Extent length in bytes.
        capacity: u64,
    },
}

impl ExtentMap {
    /// Extent length in bytes.
    pub fn capacity(&self) -> u64 {
        match self {
            ExtentMap::Hosted(h) => h.capacity,
            ExtentMap::Cowd(c) => c.capacity,
            ExtentMap::SeSparse(s) => s.capacity,
            ExtentMap::Flat(f) => f.capacity,
            ExtentMap::Zero { capacity } => *capacity,
        }
    }

    /// Grain size in bytes ([`FLAT_GRAIN`] for flat and zero extents).
    pub fn grain_bytes(&self) -> u64 {
        match self {
            ExtentMap::Hosted(h) => h.grain_bytes,
            ExtentMap::Cowd(c) => c.grain_bytes,
            ExtentMap::SeSparse(s) => s.grain_bytes,
            ExtentMap::Flat(_) | ExtentMap::Zero { .. } => FLAT_GRAIN,
        }
    }

    /// Virtual bytes one table covers.
    pub fn table_span(&self) -> u64 {
        match self {
            ExtentMap::Hosted(h) => h.table_span,
            ExtentMap::Cowd(c) => c.table_span,
            ExtentMap::SeSparse(s) => s.table_span,
            ExtentMap::Flat(_) | ExtentMap::Zero { .. } => FLAT_GRAIN * FLAT_GRAINS_PER_TABLE,
        }
    }

    /// Number of tables (walk units) covering the extent.
    pub fn table_count(&self) -> u64 {
        match self {
            // No tables: `Layer::walk` reports the whole extent as one piece. Counting its
            // spans would loop 2^38 times over a descriptor line of 2^63 bytes.
            ExtentMap::Zero { .. } => 0,
            _ => self.capacity().div_ceil(self.table_span()),
        }
    }

    /// File ranges of the sparse metadata (directories, tables) that grains must not share;
    /// empty for flat and ZERO extents.
    pub fn metadata_ranges(&self) -> Vec<(u64, u64, Structure)> {
        match self {
            ExtentMap::Hosted(h) => h.metadata_ranges(),
            ExtentMap::Cowd(c) => c.metadata_ranges(),
            ExtentMap::SeSparse(s) => s.metadata_ranges(),
            ExtentMap::Flat(_) | ExtentMap::Zero { .. } => Vec::new(),
        }
    }

    /// The present tables as runs of table numbers, in order: what classification walks.
    /// One range per run of the directory (memory follows the tables the file has).
    pub fn present_tables(&self) -> Vec<std::ops::Range<u64>> {
        let runs = |d: &Directory| d.runs().map(|(r, _)| r).collect();
        match self {
            ExtentMap::Hosted(h) => runs(h.directory()),
            ExtentMap::Cowd(c) => runs(c.directory()),
            ExtentMap::SeSparse(s) => runs(s.directory()),
            ExtentMap::Flat(_) => std::iter::once(0..self.table_count()).collect(),
            ExtentMap::Zero { .. } => Vec::new(),
        }
    }

    /// Number of present tables.
    pub fn present_count(&self) -> u64 {
        match self {
            ExtentMap::Hosted(h) => h.directory().present(),
            ExtentMap::Cowd(c) => c.directory().present(),
            ExtentMap::SeSparse(s) => s.directory().present(),
            ExtentMap::Flat(_) => self.table_count(),
            ExtentMap::Zero { .. } => 0,
        }
    }

    /// Whether table `t` exists; an absent table maps nothing.
    pub fn table_present(&self, t: u64) -> bool {
        match self {
            ExtentMap::Hosted(h) => h.table_present(t),
            ExtentMap::Cowd(c) => c.table_present(t),
            ExtentMap::SeSparse(s) => s.table_present(t),
            ExtentMap::Flat(_) => t < self.table_count(),
            ExtentMap::Zero { .. } => false,
        }
    }

    /// Calls `f` for every piece table `t` maps, allocated or not, in virtual order; the
    /// pieces tile the table's span (clipped to the capacity).
    pub fn walk_table(
        &self,
        src: Option<&Source>,
        t: u64,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(Piece) -> Result<()>,
    ) -> Result<()> {
        match (self, src) {
            (ExtentMap::Hosted(h), Some(src)) => h.walk_table(src, t, scratch, f),
            (ExtentMap::Cowd(c), Some(src)) => c.walk_table(src, t, scratch, f),
            (ExtentMap::SeSparse(s), Some(src)) => s.walk_table(src, t, scratch, f),
            (ExtentMap::Flat(flat), _) => {
                let start = t.saturating_mul(self.table_span());
                let end = start.saturating_add(self.table_span()).min(flat.capacity);
                let mut v = start;
                // Past the end of the file there is nothing to read: one piece per table, so
                // that a line claiming petabytes of a tiny file costs one call per table.
                let avail = flat.available();
                while v < end {
                    let grain_end = if v >= avail {
                        end
                    } else {
                        (v + FLAT_GRAIN).min(end)
                    };
                    let p = flat.piece(v, grain_end);
                    v += p.len;
                    f(p)?;
                }
                Ok(())
            }
            (ExtentMap::Zero { .. }, _) => Ok(()),
            _ => Err(Error::Other("extent without a file".into())),
        }
    }

    /// What backs extent byte `virt`, and the end of the run (same grain, same state) that
    /// starts there.
    pub fn lookup(&self, src: Option<&Source>, virt: u64, scratch: &mut Vec<u8>) -> Result<Piece> {
        let cap = self.capacity();
        match (self, src) {
            (ExtentMap::Hosted(h), Some(src)) => h.lookup(src, virt, scratch),
            (ExtentMap::Cowd(c), Some(src)) => c.lookup(src, virt, scratch),
            (ExtentMap::SeSparse(s), Some(src)) => s.lookup(src, virt, scratch),
            (ExtentMap::Flat(flat), _) => {
                let avail = flat.available();
                Ok(flat.piece(virt, if virt < avail { avail } else { cap }))
            }
            (ExtentMap::Zero { .. }, _) => Ok(Piece {
                virt,
                len: cap.saturating_sub(virt),
                state: GrainState::Unallocated,
            }),
            _ => Err(Error::Other("extent without a file".into())),
        }
    }
}

/// Builds the piece for grain `g` of a sparse extent from its state, clipped to `capacity`,
/// and from `virt` (inside the grain) for lookups.
pub(crate) fn grain_piece(
    g: u64,
    grain_bytes: u64,
    capacity: u64,
    from: u64,
    state: GrainState,
) -> Piece {
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
    table: u64,
    entry_offset: u64,
    entry: u64,
    needed_end: u64,
    file_len: u64,
) -> Corrupt {
    Corrupt::bad_value(
        Structure::GrainTable { index: table },
        entry_offset,
        "grain table entry",
        entry,
        format!(
            "a grain inside the file (the grain would end at {needed_end:#x}, the file has {file_len:#x} bytes)"
        ),
    )
}

/// Error for a grain table entry pointing into the metadata in front of the grains.
pub(crate) fn entry_in_metadata(
    table: u64,
    entry_offset: u64,
    entry: u64,
    metadata_end: u64,
) -> Corrupt {
    Corrupt::bad_value(
        Structure::GrainTable { index: table },
        entry_offset,
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
    pub fn push(&mut self, t: u64, offset: u64) -> std::result::Result<(), TryReserveError> {
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
pub(crate) fn read_directory(
    src: &Source,
    offset: u64,
    entries: u64,
    entry_bytes: u64,
    stride: u64,
    structure: &Structure,
    decode: &mut dyn FnMut(u64, u64, u64) -> Result<Option<u64>>,
) -> Result<Directory> {
    const CHUNK_ENTRIES: u64 = 8192;
    let len = entries.checked_mul(entry_bytes).ok_or_else(|| {
        Error::corrupt(
            src.path(),
            Corrupt::overflow(structure.clone(), offset, "grain directory size"),
        )
    })?;
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
                dir.push(t + k as u64, table).map_err(|_| {
                    Error::io(
                        src.path(),
                        "allocate the grain directory",
                        std::io::Error::from(std::io::ErrorKind::OutOfMemory),
                    )
                })?;
            }
        }
        t += n;
    }
    Ok(dir)
}
