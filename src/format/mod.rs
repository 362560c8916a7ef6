//! On-disk formats: detection by magic, and one contract for every extent format.
//!
//! Each format parses its headers and tables from any [`ReadAt`] (a file, or bytes in memory)
//! and answers two questions in the extent's own virtual space (bytes from the extent's
//! start): which pieces does table `t` map ([`ExtentMap::walk_table`]), and what backs byte `v`
//! ([`ExtentMap::lookup`]). The sparse formats share one table walk and lookup
//! ([`table::GrainTables`]) and differ only in what an entry means. [`ExtentMap`] is an enum,
//! so a new format breaks every `match` until it is handled.
//!
//! Nothing here knows a path, a thread or a report: errors are a path-free [`Corrupt`] (or a
//! failed read, [`ReadError`]) naming a structure and its offset, and `layer.rs` names the
//! file.

pub mod cowd;
pub mod descriptor;
pub mod flat;
pub mod hosted;
pub mod sesparse;
pub mod table;

pub use crate::bytes::ReadAt;
pub use flat::{FLAT_GRAIN, FlatExtent};

use crate::error::{Corrupt, CorruptKind, ReadError, Structure};

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

/// The data format of an extent, or of a layer's extents taken together: what `info` and
/// `scan` print and the JSON carries, as these exact strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Format {
    /// `KDMV` hosted sparse (monolithicSparse, twoGbMaxExtentSparse, hosted redo logs).
    #[serde(rename = "hostedSparse")]
    HostedSparse,
    /// `KDMV` with compressed grains.
    #[serde(rename = "streamOptimized")]
    StreamOptimized,
    /// `COWD`, ESX redo logs.
    #[serde(rename = "vmfsSparse")]
    VmfsSparse,
    /// SESparse.
    #[serde(rename = "seSparse")]
    SeSparse,
    /// Raw data (`FLAT`, `VMFS`).
    #[serde(rename = "flat")]
    Flat,
    /// `ZERO`: no data at all.
    #[serde(rename = "zero")]
    Zero,
    /// A layer whose extents have different formats.
    #[serde(rename = "mixed")]
    Mixed,
}

impl Format {
    /// The name, as the JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::HostedSparse => "hostedSparse",
            Format::StreamOptimized => "streamOptimized",
            Format::VmfsSparse => "vmfsSparse",
            Format::SeSparse => "seSparse",
            Format::Flat => "flat",
            Format::Zero => "zero",
            Format::Mixed => "mixed",
        }
    }

    /// Whether a file of this format is a redo log, a delta even without a parent
    /// (vmfsSparse, SESparse).
    pub fn is_redo_log(self) -> bool {
        matches!(self, Format::VmfsSparse | Format::SeSparse)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for Format {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a walk over a table stopped early: the table could not be read (a path-free error the
/// caller names), or the visitor returned its own error.
#[derive(Debug)]
pub enum WalkError<E> {
    /// The table or an entry is corrupt, or the read failed.
    Read(ReadError),
    /// The visitor failed.
    Visit(E),
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

/// The allocation map of one extent read from a file, whatever its format. (A `ZERO` extent
/// has no file and no map: `layer.rs` holds it on its own.)
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
}

impl ExtentMap {
    /// The extent's data format.
    pub fn format(&self) -> Format {
        match self {
            ExtentMap::Hosted(h) if h.compressed => Format::StreamOptimized,
            ExtentMap::Hosted(_) => Format::HostedSparse,
            ExtentMap::Cowd(_) => Format::VmfsSparse,
            ExtentMap::SeSparse(_) => Format::SeSparse,
            ExtentMap::Flat(_) => Format::Flat,
        }
    }

    /// The grain tables of a sparse extent; `None` for flat data.
    pub fn tables(&self) -> Option<&table::GrainTables> {
        match self {
            ExtentMap::Hosted(h) => Some(&h.tables),
            ExtentMap::Cowd(c) => Some(&c.tables),
            ExtentMap::SeSparse(s) => Some(&s.tables),
            ExtentMap::Flat(_) => None,
        }
    }

    /// Extent length in bytes.
    pub fn capacity(&self) -> u64 {
        match (self, self.tables()) {
            (ExtentMap::Flat(f), _) => f.capacity,
            (_, Some(t)) => t.capacity,
            (_, None) => 0,
        }
    }

    /// Grain size in bytes ([`FLAT_GRAIN`] for flat extents).
    pub fn grain_bytes(&self) -> u64 {
        self.tables().map_or(FLAT_GRAIN, |t| t.grain_bytes)
    }

    /// Virtual bytes one table covers.
    pub fn table_span(&self) -> u64 {
        match (self, self.tables()) {
            (ExtentMap::Flat(f), _) => f.table_span(),
            (_, Some(t)) => t.table_span,
            (_, None) => 0,
        }
    }

    /// Number of tables (walk units) covering the extent.
    pub fn table_count(&self) -> u64 {
        self.capacity().div_ceil(self.table_span())
    }

    /// Bytes of one grain table in the file (0 for flat extents, which have none).
    pub fn table_bytes(&self) -> u64 {
        match self {
            ExtentMap::Hosted(_) | ExtentMap::Cowd(_) => self.grain_tables_entries() * 4,
            ExtentMap::SeSparse(_) => self.grain_tables_entries() * 8,
            ExtentMap::Flat(_) => 0,
        }
    }

    fn grain_tables_entries(&self) -> u64 {
        self.tables().map_or(0, |t| t.entries)
    }

    /// Where the extent's data area starts in its file: the first byte a grain may occupy
    /// (the allocation profile's origin).
    pub fn data_start(&self) -> u64 {
        match self {
            ExtentMap::Hosted(h) => h.data_start(),
            ExtentMap::Cowd(c) => c.data_start(),
            ExtentMap::SeSparse(s) => s.data_start(),
            ExtentMap::Flat(f) => f.data_offset,
        }
    }

    /// File ranges of the sparse metadata (directories, tables) that grains must not share;
    /// empty for flat extents.
    pub fn metadata_ranges(&self) -> Vec<(u64, u64, Structure)> {
        match self {
            ExtentMap::Hosted(h) => h.metadata_ranges(),
            ExtentMap::Cowd(c) => c.metadata_ranges(),
            ExtentMap::SeSparse(s) => s.metadata_ranges(),
            ExtentMap::Flat(_) => Vec::new(),
        }
    }

    /// The present tables as runs of table numbers, in order: what classification walks.
    /// One range per run of the directory (memory follows the tables the file has).
    pub fn present_tables(&self) -> Vec<std::ops::Range<u64>> {
        match self.tables() {
            Some(t) => t.directory().runs().map(|(r, _)| r).collect(),
            None => std::iter::once(0..self.table_count()).collect(),
        }
    }

    /// Number of present tables.
    pub fn present_count(&self) -> u64 {
        match self.tables() {
            Some(t) => t.directory().present(),
            None => self.table_count(),
        }
    }

    /// Whether table `t` exists; an absent table maps nothing.
    pub fn table_present(&self, t: u64) -> bool {
        match self.tables() {
            Some(tables) => tables.directory().offset(t).is_some(),
            None => t < self.table_count(),
        }
    }

    /// Calls `f` for every piece table `t` maps, allocated or not, in virtual order; the
    /// pieces tile the table's span (clipped to the capacity). `src` is the extent's file.
    pub fn walk_table<R: ReadAt + ?Sized, E>(
        &self,
        src: &R,
        t: u64,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(Piece) -> Result<(), E>,
    ) -> Result<(), WalkError<E>> {
        match self {
            ExtentMap::Hosted(h) => h.tables.walk(h, src, t, scratch, f),
            ExtentMap::Cowd(c) => c.tables.walk(c, src, t, scratch, f),
            ExtentMap::SeSparse(s) => s.tables.walk(s, src, t, scratch, f),
            ExtentMap::Flat(flat) => flat.walk_table(t, f).map_err(WalkError::Visit),
        }
    }

    /// What backs extent byte `virt`, and the end of the run (same grain, same state) that
    /// starts there. `src` is the extent's file.
    #[inline]
    pub fn lookup<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        virt: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<Piece, ReadError> {
        match self {
            ExtentMap::Hosted(h) => h.tables.lookup(h, src, virt, scratch),
            ExtentMap::Cowd(c) => c.tables.lookup(c, src, virt, scratch),
            ExtentMap::SeSparse(s) => s.tables.lookup(s, src, virt, scratch),
            ExtentMap::Flat(flat) => Ok(flat.lookup(virt)),
        }
    }

    /// The compressed grain `grain` whose marker is at `marker` (a [`GrainState::Compressed`]
    /// piece of this map), inflated into `out`. Only streamOptimized extents compress.
    pub fn inflate<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        marker: u64,
        grain: u64,
        out: &mut [u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        match self {
            ExtentMap::Hosted(h) => h.read_compressed(src, marker, grain, out, scratch),
            _ => Err(not_compressed(marker, grain)),
        }
    }

    /// Bytes the compressed grain at `marker` takes in the file.
    pub fn compressed_len<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        marker: u64,
        grain: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<u64, ReadError> {
        match self {
            ExtentMap::Hosted(h) => h.compressed_len(src, marker, grain, scratch),
            _ => Err(not_compressed(marker, grain)),
        }
    }

    /// Length of grain `grain` once inflated (the last grain may be cut short).
    pub fn grain_len(&self, grain: u64) -> u64 {
        self.tables().map_or(0, |t| t.grain_len(grain))
    }
}

/// A compressed piece handed to a map whose format has none.
#[cold]
fn not_compressed(marker: u64, grain: u64) -> ReadError {
    ReadError::Corrupt(Corrupt::new(
        Structure::CompressedGrain { grain },
        marker,
        CorruptKind::Syntax {
            message: "a compressed grain in an extent whose format does not compress".into(),
        },
    ))
}
