//! One disk of a chain: its descriptor, its extents and the files behind them.
//!
//! Opening a layer reads the descriptor (embedded in a `KDMV` file or a separate text file),
//! resolves extent file names against the descriptor's directory, opens every extent file
//! read-only and validates its metadata through `format/`. This is where a file gets its name:
//! `format/` reports path-free errors, and every one of them leaves here with the path of the
//! file it happened in. Following parents is `chain.rs`'s job.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Corrupt, CorruptKind, Error, ReadError, Result, Structure, Warning};
use crate::files::{Disk, FileSet, PathRules};
use crate::format::descriptor::{self, Descriptor, ExtentLine, ExtentType, MAX_DESCRIPTOR_BYTES};
use crate::format::flat::FLAT_GRAINS_PER_TABLE;
use crate::format::{
    ExtentMap, FLAT_GRAIN, FlatExtent, Format, GrainState, Magic, Piece, WalkError, cowd, detect,
    hosted, sesparse,
};
use crate::source::{ReadMode, Source};
use crate::units::SECTOR;

/// The largest virtual disk accepted: 128 TiB, twice the largest disk VMware creates (62 TiB).
/// The allocation maps of sparse extents are bounded by their files, but a ZERO or FLAT
/// extent line costs nothing to write, and the scan's work grows with the virtual size.
pub const MAX_VIRTUAL_BYTES: u64 = 1 << 47;

/// One extent of a layer: where it sits in virtual space, and what backs it.
#[derive(Debug)]
pub struct Extent {
    /// First virtual byte of the layer this extent covers.
    pub virt_start: u64,
    /// What backs it: nothing (`ZERO`), or a file read through its format's map.
    pub backing: Backing,
    /// The descriptor line it came from (none for a monolithic file read on its own).
    pub line: Option<ExtentLine>,
}

/// What backs an extent. An extent read from a file holds that file: there is no map without
/// its file.
#[derive(Debug)]
// A layer has a handful of extents; boxing the map would add a pointer chase to every lookup.
#[allow(clippy::large_enum_variant)]
pub enum Backing {
    /// `ZERO`: no file; reads as zeros and holds nothing.
    Zero {
        /// Extent length in bytes.
        capacity: u64,
    },
    /// An extent file, and its allocation map.
    File {
        /// The allocation map, whatever the format.
        map: ExtentMap,
        /// The file the map reads.
        source: Arc<Source>,
    },
}

impl Extent {
    /// Virtual length in bytes.
    pub fn len(&self) -> u64 {
        match &self.backing {
            Backing::Zero { capacity } => *capacity,
            Backing::File { map, .. } => map.capacity(),
        }
    }

    /// Whether the extent covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file, if any (none for `ZERO`).
    pub fn file(&self) -> Option<&Source> {
        match &self.backing {
            Backing::Zero { .. } => None,
            Backing::File { source, .. } => Some(source),
        }
    }

    /// Whether the `len` file bytes at `file_offset` of a flat extent are a hole of its file
    /// (a sparse host file): they read as zeros, known without reading them. Only flat
    /// extents are asked; a sparse format's file holds the grains it maps.
    #[inline]
    pub fn is_hole(&self, file_offset: u64, len: u64) -> bool {
        match &self.backing {
            Backing::File {
                map: ExtentMap::Flat(_),
                source,
            } => source.is_hole(file_offset, len),
            _ => false,
        }
    }

    /// From `file_offset`, whether the extent's file holds a hole or data there, and where
    /// that hole or run of data ends ([`crate::source::DataRuns::span_at`]). Only flat
    /// extents have holes; a sparse format's file is data throughout.
    #[inline]
    pub fn span_at(&self, file_offset: u64) -> (bool, u64) {
        match &self.backing {
            Backing::File {
                map: ExtentMap::Flat(_),
                source,
            } => source.data_runs().span_at(file_offset),
            _ => (false, u64::MAX),
        }
    }

    /// The allocation map of an extent read from a file.
    pub fn map(&self) -> Option<&ExtentMap> {
        match &self.backing {
            Backing::Zero { .. } => None,
            Backing::File { map, .. } => Some(map),
        }
    }

    /// The extent's data format.
    pub fn format(&self) -> Format {
        self.map().map_or(Format::Zero, ExtentMap::format)
    }

    /// Grain size in bytes ([`FLAT_GRAIN`] for flat and zero extents).
    pub fn grain_bytes(&self) -> u64 {
        self.map().map_or(FLAT_GRAIN, ExtentMap::grain_bytes)
    }

    /// Virtual bytes one table (walk unit) covers.
    pub fn table_span(&self) -> u64 {
        self.map()
            .map_or(FLAT_GRAIN * FLAT_GRAINS_PER_TABLE, ExtentMap::table_span)
    }

    /// Number of tables (walk units) covering the extent: none for `ZERO`, whose walk is the
    /// whole extent as one piece (counting its spans would loop 2^38 times over a descriptor
    /// line of 2^63 bytes).
    pub fn table_count(&self) -> u64 {
        self.map().map_or(0, ExtentMap::table_count)
    }

    /// The present tables as runs of table numbers, in order (none for `ZERO`).
    pub fn present_tables(&self) -> Vec<std::ops::Range<u64>> {
        self.map().map_or_else(Vec::new, ExtentMap::present_tables)
    }

    /// Number of present tables.
    pub fn present_count(&self) -> u64 {
        self.map().map_or(0, ExtentMap::present_count)
    }

    /// Calls `f` for every piece table `t` maps (in extent virtual bytes), allocated or not,
    /// in virtual order; errors of the file name it.
    pub fn walk_table(
        &self,
        t: u64,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(Piece) -> Result<()>,
    ) -> Result<()> {
        match &self.backing {
            Backing::Zero { .. } => Ok(()),
            Backing::File { map, source } => {
                map.walk_table(&**source, t, scratch, f)
                    .map_err(|e| match e {
                        WalkError::Read(e) => e.in_file(source.path()),
                        WalkError::Visit(e) => e,
                    })
            }
        }
    }

    /// What backs extent byte `virt` (in extent virtual bytes), and the end of the run that
    /// starts there.
    #[inline]
    pub fn lookup(&self, virt: u64, scratch: &mut Vec<u8>) -> Result<Piece> {
        match &self.backing {
            Backing::Zero { capacity } => Ok(Piece {
                virt,
                len: capacity.saturating_sub(virt),
                state: GrainState::Unallocated,
            }),
            Backing::File { map, source } => match map.lookup(&**source, virt, scratch) {
                Ok(p) => Ok(p),
                Err(e) => Err(e.in_file(source.path())),
            },
        }
    }
}

/// A disk of the chain.
#[derive(Debug)]
pub struct Layer {
    /// The file the layer was opened by (descriptor, or monolithic sparse file).
    pub path: PathBuf,
    /// Its descriptor.
    pub descriptor: Descriptor,
    /// Extents in virtual order.
    pub extents: Vec<Extent>,
    /// Virtual size in bytes (sum of the extents).
    pub virtual_size: u64,
    /// Every file of the layer (descriptor and extents), each once.
    pub files: Vec<Arc<Source>>,
    /// What was noticed while opening it.
    pub warnings: Vec<Warning>,
}

impl Layer {
    /// Opens the layer at `path`.
    pub fn open(path: &Path, mode: ReadMode) -> Result<Layer> {
        Self::open_in(&Disk, path, mode)
    }

    /// Opens the layer at `path`, reading every file from `fs`.
    pub fn open_in(fs: &dyn FileSet, path: &Path, mode: ReadMode) -> Result<Layer> {
        Self::open_with(fs, path, mode, &PathRules::default(), &mut |_| Ok(()))
    }

    /// Opens the layer at `path`, reading every file from `fs`: extent names that begin with
    /// a `--map` prefix are read under its folder, and `check` sees every extent file before
    /// it is opened (the chain's evidence-tree rule).
    pub fn open_with(
        fs: &dyn FileSet,
        path: &Path,
        mode: ReadMode,
        rules: &PathRules,
        check: &mut dyn FnMut(&Path) -> Result<()>,
    ) -> Result<Layer> {
        let src = Arc::new(fs.open(path, mode)?);
        let head = src.bytes(
            0,
            src.len().min(64 * 1024),
            &Structure::Descriptor { line: 0 },
        )?;
        match detect(&head) {
            Magic::Kdmv => Self::open_monolithic(path, src),
            Magic::Descriptor => {
                if src.len() > MAX_DESCRIPTOR_BYTES {
                    return Err(Error::corrupt(path, Corrupt::new(Structure::Descriptor { line: 0 }, 0, crate::error::CorruptKind::TooMany { field: "descriptor size", found: src.len(), max: MAX_DESCRIPTOR_BYTES })));
                }
                let text = src.bytes(0, src.len(), &Structure::Descriptor { line: 0 })?;
                let d = descriptor::parse_descriptor(&text, 0).map_err(|e| Error::corrupt(path, e))?;
                drop(text);
                Self::from_descriptor(fs, path, d, vec![src], mode, rules, check)
            }
            Magic::Cowd => Err(Error::Unreadable { path: path.to_path_buf(), why: "a COWD (vmfsSparse) extent opened on its own; open the descriptor .vmdk that names it (it holds the parent link)".into() }),
            Magic::SeSparse => Err(Error::Unreadable { path: path.to_path_buf(), why: "an SESparse extent opened on its own; open the descriptor .vmdk that names it (it holds the parent link)".into() }),
            Magic::Unknown => Err(not_vmdk(path, &src, &head, "\"KDMV\", \"COWD\", 0xcafebabe (SESparse) or a text descriptor", Structure::Descriptor { line: 0 })),
        }
    }

    /// A `KDMV` file with its descriptor embedded (monolithicSparse, streamOptimized).
    fn open_monolithic(path: &Path, src: Arc<Source>) -> Result<Layer> {
        let ext = hosted::HostedExtent::open(&*src).map_err(|e| e.in_file(path))?;
        let h = &ext.header;
        if h.descriptor_offset == 0 {
            return Err(Error::Unreadable { path: path.to_path_buf(), why: "a sparse extent without an embedded descriptor (one file of a split twoGbMaxExtentSparse disk); open the descriptor .vmdk that names it".into() });
        }
        let doff = h.descriptor_offset.checked_mul(SECTOR);
        let dlen = h
            .descriptor_size
            .checked_mul(SECTOR)
            .map(|l| l.min(MAX_DESCRIPTOR_BYTES));
        let (Some(doff), Some(dlen)) = (doff, dlen) else {
            return Err(Error::corrupt(
                path,
                Corrupt::overflow(Structure::KdmvHeader, 28, "descriptorOffset"),
            ));
        };
        let text = src.bytes(doff, dlen, &Structure::Descriptor { line: 0 })?;
        let d = descriptor::parse_descriptor(&text, doff).map_err(|e| Error::corrupt(path, e))?;
        drop(text);
        if d.create_type.is_none() && d.extents.is_empty() {
            return Err(Error::corrupt(
                path,
                Corrupt::syntax(
                    Structure::Descriptor { line: 0 },
                    doff,
                    "the embedded descriptor is empty: no createType and no extent line",
                ),
            ));
        }
        if ext.capacity() > MAX_VIRTUAL_BYTES {
            return Err(Error::corrupt(
                path,
                Corrupt::new(
                    Structure::KdmvHeader,
                    12,
                    CorruptKind::TooMany {
                        field: "capacity in bytes",
                        found: ext.capacity(),
                        max: MAX_VIRTUAL_BYTES,
                    },
                ),
            ));
        }
        let mut warnings = Vec::new();
        hosted_warnings(path, &ext, &mut warnings);
        let virtual_size = ext.capacity();
        Ok(Layer {
            path: path.to_path_buf(),
            descriptor: d,
            extents: vec![Extent {
                virt_start: 0,
                backing: Backing::File {
                    map: ExtentMap::Hosted(ext),
                    source: src.clone(),
                },
                line: None,
            }],
            virtual_size,
            files: vec![src],
            warnings,
        })
    }

    fn from_descriptor(
        fs: &dyn FileSet,
        path: &Path,
        d: Descriptor,
        mut files: Vec<Arc<Source>>,
        mode: ReadMode,
        rules: &PathRules,
        check: &mut dyn FnMut(&Path) -> Result<()>,
    ) -> Result<Layer> {
        let create_type = d.create_type.clone().unwrap_or_default();
        check_create_type(path, &create_type)?;
        if d.extents.is_empty() {
            return Err(Error::corrupt(
                path,
                Corrupt::syntax(
                    Structure::Descriptor { line: 0 },
                    0,
                    "the descriptor has no extent lines",
                ),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut warnings = Vec::new();
        let mut extents = Vec::new();
        let mut virt = 0u64;
        let mut sparse_files: HashMap<PathBuf, usize> = HashMap::new();
        for (index, line) in d.extents.iter().enumerate() {
            let line_bytes = line.sectors.checked_mul(SECTOR).ok_or_else(|| {
                Error::corrupt(
                    path,
                    Corrupt::overflow(Structure::Extent { index }, 0, "extent sectors"),
                )
            })?;
            let backing = match &line.kind {
                ExtentType::Zero => Backing::Zero {
                    capacity: line_bytes,
                },
                ExtentType::RawDevice(word) => {
                    return Err(Error::Unreadable {
                        path: path.to_path_buf(),
                        why: format!(
                            "{word} extent (raw device mapping, createType {create_type:?}): its data lives on a LUN, not in a file, so a file copy cannot be read"
                        ),
                    });
                }
                ExtentType::Other(word) => {
                    return Err(Error::Unsupported {
                        path: path.to_path_buf(),
                        what: format!("extent type {word:?} on descriptor line {}", line.line),
                    });
                }
                kind => {
                    let name = line.file.as_deref().unwrap_or_default();
                    let file = extent_path(dir, name, rules);
                    let src = match files.iter().find(|s| s.path() == file) {
                        Some(s) => s.clone(),
                        None => {
                            check(&file)?;
                            let s = Arc::new(fs.open(&file, mode).map_err(|e| match e {
                                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::Io {
                                    path: path.to_path_buf(),
                                    op: "open extent",
                                    source: std::io::Error::new(std::io::ErrorKind::NotFound, format!("descriptor line {} names extent {}, which does not exist", line.line, crate::sanitize::sanitize(&file.display().to_string()))),
                                },
                                e => e,
                            })?);
                            files.push(s.clone());
                            s
                        }
                    };
                    if matches!(
                        kind,
                        ExtentType::Sparse | ExtentType::VmfsSparse | ExtentType::SeSparse
                    ) {
                        // Each sparse extent loads its file's grain directory: one file named
                        // by thousands of lines would cost thousands of directories. No
                        // writer puts two sparse extents in one file.
                        let canonical = fs.canonicalize(&file).unwrap_or_else(|_| file.clone());
                        if let Some(first) = sparse_files.insert(canonical, line.line) {
                            return Err(Error::corrupt(
                                path,
                                Corrupt::syntax(
                                    Structure::Descriptor { line: line.line },
                                    line.at,
                                    format!(
                                        "the sparse extent file {} is already the extent of line {first}",
                                        file.display()
                                    ),
                                ),
                            ));
                        }
                    }
                    let map = match kind {
                        ExtentType::Flat | ExtentType::Vmfs => {
                            open_flat(line, &src, line_bytes, &mut warnings)?
                        }
                        _ => open_sparse(&src, &mut warnings)?,
                    };
                    Backing::File { map, source: src }
                }
            };
            let extent = Extent {
                virt_start: virt,
                backing,
                line: Some(line.clone()),
            };
            let len = extent.len();
            if extent.map().and_then(ExtentMap::tables).is_some() && len != line_bytes {
                warnings.push(Warning::Note { path: path.to_path_buf(), detail: format!("descriptor line {} says {} sectors, the extent header says {}; the header is used, as qemu does", line.line, line.sectors, len / SECTOR) });
            }
            extents.push(extent);
            virt = virt
                .checked_add(len)
                .filter(|&v| v <= MAX_VIRTUAL_BYTES)
                .ok_or_else(|| {
                    Error::corrupt(
                        path,
                        Corrupt::new(
                            Structure::Extent { index },
                            0,
                            CorruptKind::TooMany {
                                field: "virtual size in bytes",
                                found: virt.saturating_add(len),
                                max: MAX_VIRTUAL_BYTES,
                            },
                        ),
                    )
                })?;
        }
        Ok(Layer {
            path: path.to_path_buf(),
            descriptor: d,
            extents,
            virtual_size: virt,
            files,
            warnings,
        })
    }

    /// The createType, or `"?"` when the descriptor has none.
    pub fn create_type(&self) -> &str {
        self.descriptor.create_type.as_deref().unwrap_or("?")
    }

    /// The layer's data format, from its extents: theirs when they agree (`ZERO` extents
    /// aside), [`Format::Mixed`] when they do not, [`Format::Zero`] when there is nothing else.
    pub fn format(&self) -> Format {
        let mut name: Option<Format> = None;
        for e in &self.extents {
            let n = match e.map() {
                Some(map) => map.format(),
                None => continue,
            };
            match name {
                None => name = Some(n),
                Some(m) if m != n => return Format::Mixed,
                _ => {}
            }
        }
        name.unwrap_or(Format::Zero)
    }

    /// The layer's grain size: the smallest grain of its sparse extents, or [`FLAT_GRAIN`]
    /// for layers without grains.
    pub fn grain_size(&self) -> u64 {
        self.extents
            .iter()
            .filter_map(|e| e.map()?.tables())
            .map(|t| t.grain_bytes)
            .min()
            .unwrap_or(FLAT_GRAIN)
    }

    /// Sum of the sizes of the layer's files on disk (apparent length).
    pub fn file_size(&self) -> u64 {
        self.files.iter().map(|s| s.len()).sum()
    }

    /// Index of the extent holding virtual byte `virt`.
    pub fn extent_at(&self, virt: u64) -> Option<usize> {
        let i = self.extents.partition_point(|e| e.virt_start <= virt);
        let i = i.checked_sub(1)?;
        (virt < self.extents[i].virt_start + self.extents[i].len()).then_some(i)
    }

    /// What backs virtual byte `virt` of this layer: the extent index and the run (in layer
    /// virtual bytes) that starts at `virt` with one state. Past the end: `None`.
    pub fn lookup(&self, virt: u64, scratch: &mut Vec<u8>) -> Result<Option<(usize, Piece)>> {
        let Some(i) = self.extent_at(virt) else {
            return Ok(None);
        };
        let e = &self.extents[i];
        let mut p = e.lookup(virt - e.virt_start, scratch)?;
        p.virt += e.virt_start;
        Ok(Some((i, p)))
    }

    /// Re-stats every file and fails if one changed since it was opened.
    pub fn check_unchanged(&self) -> Result<()> {
        self.files.iter().try_for_each(|s| s.check_unchanged())
    }

    /// Calls `f` for each piece (in layer virtual bytes) of every table of every extent, in
    /// virtual order. Absent tables come as one unallocated piece.
    pub fn walk(
        &self,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(usize, Piece) -> Result<()>,
    ) -> Result<()> {
        for (i, e) in self.extents.iter().enumerate() {
            if let Backing::Zero { capacity } = e.backing {
                f(
                    i,
                    Piece {
                        virt: e.virt_start,
                        len: capacity,
                        state: GrainState::Unallocated,
                    },
                )?;
                continue;
            }
            for t in 0..e.table_count() {
                e.walk_table(t, scratch, &mut |mut p| {
                    p.virt += e.virt_start;
                    f(i, p)
                })?;
            }
        }
        Ok(())
    }
}

fn check_create_type(path: &Path, create_type: &str) -> Result<()> {
    match create_type {
        "vmfsRDM"
        | "vmfsRawDeviceMap"
        | "vmfsRDMP"
        | "vmfsPassthroughRawDeviceMap"
        | "vmfsRaw"
        | "fullDevice"
        | "partitionedDevice" => Err(Error::Unreadable {
            path: path.to_path_buf(),
            why: format!(
                "createType {create_type:?}: a raw device or pass-through disk keeps its data on a device, not in a file, so a file copy cannot be read"
            ),
        }),
        _ => Ok(()),
    }
}

/// A raw data extent (`FLAT`, `VMFS`): the line's offset into `src`.
fn open_flat(
    line: &ExtentLine,
    src: &Source,
    line_bytes: u64,
    warnings: &mut Vec<Warning>,
) -> Result<ExtentMap> {
    let path = src.path();
    let data_offset = line.offset.checked_mul(SECTOR).ok_or_else(|| {
        Error::corrupt(
            path,
            Corrupt::overflow(Structure::Extent { index: 0 }, 0, "extent offset"),
        )
    })?;
    let flat = FlatExtent {
        data_offset,
        capacity: line_bytes,
        file_len: src.len(),
    };
    if flat.available() < line_bytes {
        warnings.push(Warning::Note { path: path.to_path_buf(), detail: format!("flat extent needs {} bytes from offset {data_offset} but the file has {}; the missing part reads as zeros, as qemu reads it", line_bytes, src.len()) });
    }
    Ok(ExtentMap::Flat(flat))
}

/// A sparse extent (`SPARSE`, `VMFSSPARSE`, `SESPARSE`): the format is the file's magic, not
/// the type word (qemu goes by magic too, FORMATS.md 1.5).
fn open_sparse(src: &Source, warnings: &mut Vec<Warning>) -> Result<ExtentMap> {
    let path = src.path();
    let named = |e: ReadError| e.in_file(path);
    let head = src.bytes(0, src.len().min(512), &Structure::ExtentData)?;
    match detect(&head) {
        Magic::Kdmv => {
            let ext = hosted::HostedExtent::open(src).map_err(named)?;
            hosted_warnings(path, &ext, warnings);
            Ok(ExtentMap::Hosted(ext))
        }
        Magic::Cowd => {
            let ext = cowd::CowdExtent::open(src).map_err(named)?;
            let n = ext.count_gte1(src).map_err(named)?;
            if n > 0 {
                warnings.push(Warning::ReaderDependent { path: path.to_path_buf(), detail: format!("{n} grain table entries are 1: read as zero grains, as dissect and Xen Orchestra read them (qemu reads sector 1 of the file instead)") });
            }
            if ext.header.unclean_shutdown != 0 {
                warnings.push(Warning::UncleanShutdown {
                    path: path.to_path_buf(),
                });
            }
            Ok(ExtentMap::Cowd(ext))
        }
        Magic::SeSparse => {
            let ext = sesparse::SeSparseExtent::open(src).map_err(named)?;
            if ext.is_dirty() {
                warnings.push(Warning::DirtyJournal {
                    path: path.to_path_buf(),
                    detail: format!(
                        "volatile header replayJournal = {}",
                        ext.volatile.replay_journal
                    ),
                });
            }
            Ok(ExtentMap::SeSparse(ext))
        }
        _ => {
            let head = src.bytes(0, src.len().min(1024), &Structure::ExtentData)?;
            Err(not_vmdk(
                path,
                src,
                &head,
                "\"KDMV\", \"COWD\" or 0xcafebabe for a sparse extent",
                Structure::ExtentData,
            ))
        }
    }
}

/// The error for a file that is not a VMDK file: what it looks like, never its bytes.
fn not_vmdk(path: &Path, src: &Source, head: &[u8], expected: &str, structure: Structure) -> Error {
    let tail = src
        .len()
        .checked_sub(512)
        .and_then(|at| src.bytes(at, 512, &structure).ok());
    Error::corrupt(
        path,
        Corrupt::new(
            structure,
            0,
            CorruptKind::NotVmdk {
                looks_like: crate::format::describe(
                    head,
                    tail.as_deref().unwrap_or(&[]),
                    src.len(),
                )
                .into(),
                expected: expected.into(),
            },
        ),
    )
}

fn hosted_warnings(path: &Path, ext: &hosted::HostedExtent, warnings: &mut Vec<Warning>) {
    if ext.unclean {
        warnings.push(Warning::UncleanShutdown {
            path: path.to_path_buf(),
        });
    }
    for n in &ext.notes {
        warnings.push(Warning::Note {
            path: path.to_path_buf(),
            detail: n.clone(),
        });
    }
}

/// Where a descriptor in `dir` finds the extent `name`: under a `--map` folder when a prefix
/// matches, else joined to `dir` (absolute names stay). Extent names are not guessed at as
/// parent hints are: ESXi writes them bare, and a wrong guess would read the wrong data.
pub fn extent_path(dir: &Path, name: &str, rules: &PathRules) -> PathBuf {
    rules.map(name).unwrap_or_else(|| resolve(dir, name))
}

/// Joins an extent or parent name to the descriptor's directory (absolute names stay).
pub fn resolve(dir: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}
