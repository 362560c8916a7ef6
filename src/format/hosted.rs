//! Hosted sparse extents (`KDMV`, FORMATS.md section 2): header, footer of streamOptimized
//! files, grain directory, redundant grain directory, grain tables, zeroed-grain entries and
//! compressed grains.
//!
//! Opening files and attaching paths to errors is `layer.rs`'s job; this file turns bytes of
//! one extent into a validated [`HostedExtent`].

use std::io::Write;

use crate::bytes::{Bytes, le_u32};
use crate::error::{Corrupt, CorruptKind, Error, Result, Structure};
use crate::format::{
    Directory, GrainState, Piece, entry_in_metadata, entry_out_of_file, grain_piece, read_directory,
};
use crate::source::Source;
use crate::units::SECTOR;

/// `gdOffset` value meaning "the grain directory is found through the footer" (2.1, 2.5).
pub const GD_AT_END: u64 = u64::MAX;
/// Flag: newline-check bytes are valid (2.2).
pub const FLAG_VALID_NEWLINE: u32 = 0x1;
/// Flag: redundant grain directory present (2.2).
pub const FLAG_REDUNDANT_GD: u32 = 0x2;
/// Flag: zeroed-grain GTEs in use (2.2, qemu commit QZG).
pub const FLAG_ZEROED_GRAIN: u32 = 0x4;
/// Flag: grains are compressed (2.2).
pub const FLAG_COMPRESSED: u32 = 0x1_0000;
/// Flag: grains carry markers (2.2).
pub const FLAG_MARKERS: u32 = 0x2_0000;
/// Largest grain in sectors qemu accepts ("Invalid granularity"): 1 GiB.
pub const MAX_GRAIN_SECTORS: u64 = 0x20_0000;
/// Largest `numGTEsPerGT` qemu accepts (2.1).
pub const MAX_GTES_PER_GT: u32 = 512;
/// The most a DEFLATE stream expands: 258 bytes per 2-bit code, plus headers (RFC 1951).
const MAX_DEFLATE_RATIO: u64 = 1032;
/// The newline-check bytes at offset 73 (2.1).
const NEWLINE_CHECK: [u8; 4] = [0x0a, 0x20, 0x0d, 0x0a];

/// Marker types of streamOptimized files (2.5).
const MARKER_EOS: u32 = 0;
const MARKER_FOOTER: u32 = 3;

/// The 512-byte `KDMV` header, fields as FORMATS.md 2.1 names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KdmvHeader {
    /// 1, 2 or 3.
    pub version: u32,
    /// Table 2.2.
    pub flags: u32,
    /// Virtual sectors.
    pub capacity: u64,
    /// Sectors per grain.
    pub grain_size: u64,
    /// Sector of the embedded descriptor, 0 = none.
    pub descriptor_offset: u64,
    /// Sectors of the embedded descriptor.
    pub descriptor_size: u64,
    /// Entries per grain table.
    pub num_gtes_per_gt: u32,
    /// Sector of the redundant grain directory.
    pub rgd_offset: u64,
    /// Sector of the grain directory, or [`GD_AT_END`].
    pub gd_offset: u64,
    /// Sectors of metadata before the first grain.
    pub over_head: u64,
    /// Non-zero when the disk was not closed cleanly.
    pub unclean_shutdown: u8,
    /// 0 none, 1 DEFLATE.
    pub compress_algorithm: u16,
}

/// Parses and validates a `KDMV` header found at absolute offset `base` of a file of
/// `file_len` bytes. `structure` says whether it is the header or the footer copy.
pub fn parse_header(
    data: &[u8],
    base: u64,
    file_len: u64,
    structure: Structure,
) -> Result<KdmvHeader, Corrupt> {
    let b = Bytes::new(data, base, file_len, &structure);
    let magic = b.array_at::<4>(0)?;
    if &magic != b"KDMV" {
        return Err(Corrupt::new(
            structure.clone(),
            base,
            CorruptKind::BadMagic {
                expected: "\"KDMV\"".into(),
                found: format!("{:?}", String::from_utf8_lossy(&magic)),
            },
        ));
    }
    let h = KdmvHeader {
        version: b.u32_at(4)?,
        flags: b.u32_at(8)?,
        capacity: b.u64_at(12)?,
        grain_size: b.u64_at(20)?,
        descriptor_offset: b.u64_at(28)?,
        descriptor_size: b.u64_at(36)?,
        num_gtes_per_gt: b.u32_at(44)?,
        rgd_offset: b.u64_at(48)?,
        gd_offset: b.u64_at(56)?,
        over_head: b.u64_at(64)?,
        unclean_shutdown: b.u8_at(72)?,
        compress_algorithm: b.u16_at(77)?,
    };
    let bad = |rel: u64, field: &'static str, found: u64, allowed: &str| {
        Corrupt::bad_value(structure.clone(), base + rel, field, found, allowed)
    };
    if !(1..=3).contains(&h.version) {
        return Err(bad(4, "version", h.version.into(), "1, 2 or 3"));
    }
    if h.flags & FLAG_VALID_NEWLINE != 0 && b.array_at::<4>(73)? != NEWLINE_CHECK {
        return Err(Corrupt::syntax(
            structure.clone(),
            base + 73,
            "newline-check bytes are not 0a 20 0d 0a: the file was damaged by a text-mode transfer",
        ));
    }
    if h.grain_size == 0 || !h.grain_size.is_power_of_two() || h.grain_size > MAX_GRAIN_SECTORS {
        return Err(bad(
            20,
            "grainSize",
            h.grain_size,
            "a power of two from 1 to 0x200000 sectors",
        ));
    }
    if h.num_gtes_per_gt == 0 || h.num_gtes_per_gt > MAX_GTES_PER_GT {
        return Err(bad(
            44,
            "numGTEsPerGT",
            h.num_gtes_per_gt.into(),
            "1 to 512",
        ));
    }
    if h.capacity > u64::MAX / SECTOR / 2 {
        return Err(bad(
            12,
            "capacity",
            h.capacity,
            "a sector count whose byte size fits in 63 bits",
        ));
    }
    if h.flags & FLAG_COMPRESSED != 0 && h.compress_algorithm != 1 {
        return Err(bad(
            77,
            "compressAlgorithm",
            h.compress_algorithm.into(),
            "1 (DEFLATE) when grains are compressed",
        ));
    }
    Ok(h)
}

/// A validated hosted sparse extent.
#[derive(Debug)]
pub struct HostedExtent {
    /// The header in effect (the footer's copy for GD_AT_END files).
    pub header: KdmvHeader,
    /// Grain directory: where each present grain table is.
    gd: Directory,
    /// Extent length in bytes.
    pub capacity: u64,
    /// Grain size in bytes.
    pub grain_bytes: u64,
    /// Virtual bytes one grain table covers.
    pub table_span: u64,
    gt_bytes: u64,
    file_len: u64,
    /// Grains are compressed (streamOptimized).
    pub compressed: bool,
    markers: bool,
    zeroed_grains: bool,
    /// Facts worth reporting found while opening (redundant GD mismatch, unclean shutdown).
    pub notes: Vec<String>,
    /// The header says the disk was not closed cleanly.
    pub unclean: bool,
}

impl HostedExtent {
    /// Opens the `KDMV` extent in `src`.
    pub fn open(src: &Source) -> Result<HostedExtent> {
        let path = src.path();
        let file_len = src.len();
        let c = |e: Corrupt| Error::corrupt(path, e);
        let head = src.bytes(0, 512.min(file_len), &Structure::KdmvHeader)?;
        let mut header = parse_header(&head, 0, file_len, Structure::KdmvHeader).map_err(c)?;
        let mut header_at = (Structure::KdmvHeader, 0);
        if header.gd_offset == GD_AT_END {
            header = read_footer(src, &header)?;
            header_at = (Structure::StreamFooter, file_len - 1024);
        }
        let grain_bytes = header.grain_size * SECTOR;
        // Readers inflate a compressed grain into a buffer of the grain's size before its
        // marker is read: a grain larger than DEFLATE's best ratio (1032:1) over the whole
        // file cannot be stored in it, and must not cost a gigabyte to find that out.
        if header.flags & FLAG_COMPRESSED != 0 && grain_bytes / MAX_DEFLATE_RATIO > file_len {
            return Err(c(Corrupt::bad_value(
                header_at.0,
                header_at.1 + 20,
                "grainSize",
                header.grain_size,
                format!(
                    "a compressed grain that fits in the file ({file_len:#x} bytes inflate to at most {:#x})",
                    file_len.saturating_mul(MAX_DEFLATE_RATIO)
                ),
            )));
        }
        let capacity = header.capacity * SECTOR;
        let gtes = u64::from(header.num_gtes_per_gt);
        let table_span = gtes * grain_bytes;
        let gd_entries = capacity.div_ceil(table_span);
        let gt_bytes = gtes * 4;
        let gd = load_directory(
            src,
            header.gd_offset,
            gd_entries,
            gt_bytes,
            Structure::GrainDirectory,
        )?;
        let mut ext = HostedExtent {
            capacity,
            grain_bytes,
            table_span,
            gt_bytes,
            file_len,
            compressed: header.flags & FLAG_COMPRESSED != 0,
            markers: header.flags & FLAG_MARKERS != 0,
            zeroed_grains: header.version >= 2 && header.flags & FLAG_ZEROED_GRAIN != 0,
            unclean: header.unclean_shutdown != 0,
            notes: Vec::new(),
            header,
            gd,
        };
        if ext.header.flags & FLAG_REDUNDANT_GD != 0 && ext.header.rgd_offset != 0 {
            ext.check_redundant(src)?;
        }
        Ok(ext)
    }

    /// Compares the redundant grain directory and its tables with the primary ones; a
    /// difference becomes a note (the primary is what qemu and VMware read). Tables stored
    /// back to back in both copies are compared a megabyte at a time, and ranges that are
    /// holes of the file in both copies (preallocated, never written) are equal unread.
    fn check_redundant(&mut self, src: &Source) -> Result<()> {
        let rgd = load_directory(
            src,
            self.header.rgd_offset,
            self.gd.len(),
            self.gt_bytes,
            Structure::RedundantGrainDirectory,
        )?;
        let mut mismatches = 0u64;
        let mut first: Option<String> = None;
        let mut p = self.gd.tables().peekable();
        let mut r = rgd.tables().peekable();
        // A batch of tables present in both copies, back to back in each: (first table,
        // primary offset, redundant offset, tables).
        let mut batch: Option<(u64, u64, u64, u64)> = None;
        let mut bufs = (Vec::new(), Vec::new());
        const BATCH_BYTES: u64 = 1 << 20;
        loop {
            let next = match (p.peek().copied(), r.peek().copied()) {
                (None, None) => None,
                (Some((tp, op)), Some((tr, or))) if tp == tr => {
                    p.next();
                    r.next();
                    Some((tp, Some(op), Some(or)))
                }
                (Some((tp, op)), Some((tr, _))) if tp < tr => {
                    p.next();
                    Some((tp, Some(op), None))
                }
                (Some((tp, op)), None) => {
                    p.next();
                    Some((tp, Some(op), None))
                }
                (_, Some((tr, or))) => {
                    r.next();
                    Some((tr, None, Some(or)))
                }
            };
            // Extend the batch, or compare it and start another.
            if let Some((t, Some(op), Some(or))) = next
                && let Some(b) = batch.as_mut()
                && b.0 + b.3 == t
                && b.1 + b.3 * self.gt_bytes == op
                && b.2 + b.3 * self.gt_bytes == or
                && (b.3 + 1) * self.gt_bytes <= BATCH_BYTES
            {
                b.3 += 1;
                continue;
            }
            if let Some(b) = batch.take() {
                self.compare_tables(src, b, &mut bufs, &mut mismatches, &mut first)?;
            }
            match next {
                None => break,
                Some((t, Some(op), Some(or))) => batch = Some((t, op, or, 1)),
                Some((t, op, or)) => {
                    mismatches += 1;
                    first.get_or_insert_with(|| {
                        let s = |o: Option<u64>| o.map_or(0, |o| o / SECTOR);
                        format!(
                            "grain directory entry {t}: primary {:#x}, redundant {:#x}",
                            s(op),
                            s(or)
                        )
                    });
                }
            }
        }
        if let Some(first) = first {
            self.notes.push(format!(
                "redundant grain directory disagrees with the primary in {mismatches} table(s), first: {first}; the primary is read"
            ));
        }
        Ok(())
    }

    /// Compares `n` tables from table `t0`, stored back to back at `po` (primary) and `ro`
    /// (redundant).
    fn compare_tables(
        &self,
        src: &Source,
        (t0, po, ro, n): (u64, u64, u64, u64),
        (a, b): &mut (Vec<u8>, Vec<u8>),
        mismatches: &mut u64,
        first: &mut Option<String>,
    ) -> Result<()> {
        let len = n * self.gt_bytes;
        let hole = |o: u64| {
            let (data, end) = src.data_run(o, o + len);
            !data && end >= o + len
        };
        if hole(po) && hole(ro) {
            return Ok(());
        }
        let here = Structure::GrainTable { index: t0 };
        let pa = src.read_at(po, len as usize, a, &here)?;
        let rb = src.read_at(ro, len as usize, b, &here)?;
        if pa == rb {
            return Ok(());
        }
        let g = self.gt_bytes as usize;
        for (k, (x, y)) in pa.chunks(g).zip(rb.chunks(g)).enumerate() {
            if x != y {
                *mismatches += 1;
                if first.is_none() {
                    let i = (0..self.header.num_gtes_per_gt as usize)
                        .find(|&i| le_u32(x, i) != le_u32(y, i))
                        .unwrap_or(0);
                    *first = Some(format!(
                        "grain table {} entry {i}: primary {:#x}, redundant {:#x}",
                        t0 + k as u64,
                        le_u32(x, i).unwrap_or(0),
                        le_u32(y, i).unwrap_or(0)
                    ));
                }
            }
        }
        Ok(())
    }

    /// File ranges of the grain directories and tables: no grain may share their bytes.
    pub fn metadata_ranges(&self) -> Vec<(u64, u64, Structure)> {
        let mut out = vec![(
            self.header.gd_offset.saturating_mul(SECTOR),
            self.gd.len() * 4,
            Structure::GrainDirectory,
        )];
        if self.header.flags & FLAG_REDUNDANT_GD != 0 && self.header.rgd_offset != 0 {
            out.push((
                self.header.rgd_offset.saturating_mul(SECTOR),
                self.gd.len() * 4,
                Structure::RedundantGrainDirectory,
            ));
        }
        out.extend(
            self.gd
                .tables()
                .map(|(t, off)| (off, self.gt_bytes, Structure::GrainTable { index: t })),
        );
        out
    }

    /// Number of grain directory entries.
    pub fn table_count(&self) -> u64 {
        self.gd.len()
    }

    /// Whether grain table `t` exists.
    pub fn table_present(&self, t: u64) -> bool {
        self.gd.offset(t).is_some()
    }

    /// The directory of present tables.
    pub fn directory(&self) -> &Directory {
        &self.gd
    }

    fn table_offset(&self, t: u64) -> Option<u64> {
        self.gd.offset(t)
    }

    fn entry_state(
        &self,
        t: u64,
        entry_offset: u64,
        g: u64,
        gte: u32,
    ) -> Result<GrainState, Corrupt> {
        match gte {
            0 => Ok(GrainState::Unallocated),
            1 if self.zeroed_grains => Ok(GrainState::Zero),
            s => {
                let off = u64::from(s) * SECTOR;
                // overHead counts the sectors of header, descriptor and tables in front of
                // the first grain (2.1); a grain there would share bytes with them.
                if u64::from(s) < self.header.over_head {
                    return Err(entry_in_metadata(
                        t,
                        entry_offset,
                        s.into(),
                        self.header.over_head.saturating_mul(SECTOR),
                    ));
                }
                if self.compressed {
                    // The marker (12 bytes) must be inside the file; its size is checked on read.
                    if off + 12 > self.file_len {
                        return Err(entry_out_of_file(
                            t,
                            entry_offset,
                            s.into(),
                            off + 12,
                            self.file_len,
                        ));
                    }
                    return Ok(GrainState::Compressed {
                        marker: off,
                        grain: g,
                    });
                }
                let len = self.grain_bytes.min(self.capacity - g * self.grain_bytes);
                if off + len > self.file_len {
                    return Err(entry_out_of_file(
                        t,
                        entry_offset,
                        s.into(),
                        off + len,
                        self.file_len,
                    ));
                }
                Ok(GrainState::Data { file_offset: off })
            }
        }
    }

    /// Walks grain table `t` (see [`super::ExtentMap::walk_table`]).
    pub fn walk_table(
        &self,
        src: &Source,
        t: u64,
        scratch: &mut Vec<u8>,
        f: &mut dyn FnMut(Piece) -> Result<()>,
    ) -> Result<()> {
        let start = t * self.table_span;
        if start >= self.capacity {
            return Ok(());
        }
        let Some(gt_off) = self.table_offset(t) else {
            return f(Piece {
                virt: start,
                len: self.table_span.min(self.capacity - start),
                state: GrainState::Unallocated,
            });
        };
        let gt = src.read_at(
            gt_off,
            self.gt_bytes as usize,
            scratch,
            &Structure::GrainTable { index: t },
        )?;
        let first_grain = start / self.grain_bytes;
        let grains = self
            .table_span
            .min(self.capacity - start)
            .div_ceil(self.grain_bytes);
        if let Some(p) = super::empty_table(gt, grains * 4, start, self.table_span, self.capacity) {
            return f(p);
        }
        for i in 0..grains {
            let gte = le_u32(gt, i as usize).unwrap_or(0);
            let g = first_grain + i;
            let state = self
                .entry_state(t, gt_off + i * 4, g, gte)
                .map_err(|e| Error::corrupt(src.path(), e))?;
            f(grain_piece(g, self.grain_bytes, self.capacity, 0, state))?;
        }
        Ok(())
    }

    /// The state of extent byte `virt` and the end of its grain.
    pub fn lookup(&self, src: &Source, virt: u64, scratch: &mut Vec<u8>) -> Result<Piece> {
        let g = virt / self.grain_bytes;
        let t = virt / self.table_span;
        let Some(gt_off) = self.table_offset(t) else {
            let end = ((t + 1) * self.table_span).min(self.capacity);
            return Ok(Piece {
                virt,
                len: end - virt,
                state: GrainState::Unallocated,
            });
        };
        let i = g % u64::from(self.header.num_gtes_per_gt);
        let entry_offset = gt_off + i * 4;
        let raw = src.read_at(
            entry_offset,
            4,
            scratch,
            &Structure::GrainTable { index: t },
        )?;
        let gte = le_u32(raw, 0).unwrap_or(0);
        let state = self
            .entry_state(t, entry_offset, g, gte)
            .map_err(|e| Error::corrupt(src.path(), e))?;
        Ok(grain_piece(g, self.grain_bytes, self.capacity, virt, state))
    }

    /// Compressed length of the grain whose marker (or bare size field) is at `marker`.
    pub fn compressed_len(
        &self,
        src: &Source,
        marker: u64,
        grain: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<u64> {
        let here = Structure::CompressedGrain { grain };
        // With markers the size follows the 8-byte lba; without, it opens the grain.
        let at = if self.markers { marker + 8 } else { marker };
        let head = src.read_at(at, 4, scratch, &here)?;
        let b = Bytes::new(head, at, self.file_len, &here);
        Ok(u64::from(
            b.u32_at(0).map_err(|e| Error::corrupt(src.path(), e))?,
        ))
    }

    /// Inflates compressed grain `grain` whose marker is at `marker` into `out` (which must
    /// hold the grain's length, clipped to the capacity), checking its stated sizes.
    pub fn read_compressed(
        &self,
        src: &Source,
        marker: u64,
        grain: u64,
        out: &mut [u8],
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        let here = Structure::CompressedGrain { grain };
        let path = src.path();
        let (size, data_off) = if self.markers {
            let head = src.read_at(marker, 12, scratch, &here)?;
            let hb = Bytes::new(head, marker, self.file_len, &here);
            let lba = hb.u64_at(0).map_err(|e| Error::corrupt(path, e))?;
            let size = hb.u32_at(8).map_err(|e| Error::corrupt(path, e))?;
            let expected_lba = grain * self.header.grain_size;
            if lba != expected_lba {
                return Err(Error::corrupt(
                    path,
                    Corrupt::bad_value(
                        here,
                        marker,
                        "grain marker lba",
                        lba,
                        format!("{expected_lba:#x}, the grain's first sector"),
                    ),
                ));
            }
            (u64::from(size), marker + 12)
        } else {
            let head = src.read_at(marker, 4, scratch, &here)?;
            (u64::from(le_u32(head, 0).unwrap_or(0)), marker + 4)
        };
        // Deflate never expands data by more than a few bytes per 16 KiB block.
        let max = self.grain_bytes + self.grain_bytes / 8 + 1024;
        if size == 0 || size > max {
            return Err(Error::corrupt(
                path,
                Corrupt::bad_value(
                    here,
                    marker + 8,
                    "grain marker size",
                    size,
                    format!("1 to {max} compressed bytes"),
                ),
            ));
        }
        let data = src.read_at(data_off, size as usize, scratch, &here)?;
        inflate_exact(data, out).map_err(|message| {
            Error::corrupt(
                path,
                Corrupt::new(here, marker, CorruptKind::Decompress { message }),
            )
        })
    }
}

/// Inflates a zlib stream into exactly `out.len()` bytes (FORMATS.md 8.8: grains are
/// zlib-wrapped).
fn inflate_exact(data: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut z = flate2::Decompress::new(true);
    let status = z
        .decompress(data, out, flate2::FlushDecompress::Finish)
        .map_err(|e| format!("does not inflate: {e}"))?;
    let produced = z.total_out();
    if produced != out.len() as u64 {
        return Err(format!(
            "inflates to {produced} bytes, expected {}",
            out.len()
        ));
    }
    if status != flate2::Status::StreamEnd {
        // More output than a grain: refuse rather than truncate silently.
        let mut extra = [0u8; 1];
        let more = z.decompress(
            &data[z.total_in() as usize..],
            &mut extra,
            flate2::FlushDecompress::Finish,
        );
        if !matches!(more, Ok(flate2::Status::StreamEnd)) || z.total_out() != produced {
            return Err(format!(
                "inflates to more than the grain's {} bytes",
                out.len()
            ));
        }
    }
    Ok(())
}

/// Loads a directory of `entries` u32 sector numbers at sector `sector` (0: no table), after
/// proving it is in the file; each present table of `gt_bytes` must be in the file too.
fn load_directory(
    src: &Source,
    sector: u64,
    entries: u64,
    gt_bytes: u64,
    structure: Structure,
) -> Result<Directory> {
    let off = sector.checked_mul(SECTOR).ok_or_else(|| {
        Error::corrupt(
            src.path(),
            Corrupt::overflow(structure.clone(), 56, "gdOffset"),
        )
    })?;
    // Writers place tables on sector boundaries, back to back.
    let stride = gt_bytes.div_ceil(SECTOR) * SECTOR;
    read_directory(src, off, entries, 4, stride, &structure, &mut |t, s, _| {
        if s == 0 {
            return Ok(None);
        }
        let at = s * SECTOR;
        src.check_range(at, gt_bytes, &Structure::GrainTable { index: t })?;
        Ok(Some(at))
    })
}

/// Reads the footer of a streamOptimized file whose header says GD_AT_END: the three sectors
/// at `len - 1536` are a footer marker, the footer (a header copy) and an end-of-stream
/// marker (FORMATS.md 2.5).
fn read_footer(src: &Source, header: &KdmvHeader) -> Result<KdmvHeader> {
    let path = src.path();
    let len = src.len();
    if header.flags & FLAG_COMPRESSED == 0 {
        return Err(Error::corrupt(
            path,
            Corrupt::bad_value(
                Structure::KdmvHeader,
                56,
                "gdOffset",
                GD_AT_END,
                "a sector number (GD_AT_END is only for compressed streamOptimized files)",
            ),
        ));
    }
    let start = len.checked_sub(1536).ok_or_else(|| {
        Error::corrupt(
            path,
            Corrupt::new(
                Structure::StreamFooter,
                0,
                CorruptKind::OutOfBounds {
                    offset: 0,
                    len: 1536,
                    file_len: len,
                },
            ),
        )
    })?;
    let tail = src.bytes(start, 1536, &Structure::StreamFooter)?;
    let marker_type = |rel: usize| le_u32(&tail[rel..], 3).unwrap_or(u32::MAX);
    if marker_type(0) != MARKER_FOOTER || marker_type(1024) != MARKER_EOS {
        return Err(Error::corrupt(
            path,
            Corrupt::syntax(
                Structure::StreamMarker,
                start,
                format!(
                    "expected a footer marker (type 3) and an end-of-stream marker (type 0) in the last 3 sectors, found types {} and {}",
                    marker_type(0),
                    marker_type(1024)
                ),
            ),
        ));
    }
    let footer = parse_header(&tail[512..1024], start + 512, len, Structure::StreamFooter)
        .map_err(|e| Error::corrupt(path, e))?;
    if footer.gd_offset == GD_AT_END {
        return Err(Error::corrupt(
            path,
            Corrupt::bad_value(
                Structure::StreamFooter,
                start + 512 + 56,
                "gdOffset",
                GD_AT_END,
                "the real grain directory sector",
            ),
        ));
    }
    Ok(footer)
}

/// Builds a `KDMV` header for tests: every field at its FORMATS.md 2.1 offset.
#[doc(hidden)]
pub fn build_header(h: &KdmvHeader) -> [u8; 512] {
    let mut out = [0u8; 512];
    let mut w = &mut out[..];
    let _ = w.write_all(b"KDMV");
    let _ = w.write_all(&h.version.to_le_bytes());
    let _ = w.write_all(&h.flags.to_le_bytes());
    let _ = w.write_all(&h.capacity.to_le_bytes());
    let _ = w.write_all(&h.grain_size.to_le_bytes());
    let _ = w.write_all(&h.descriptor_offset.to_le_bytes());
    let _ = w.write_all(&h.descriptor_size.to_le_bytes());
    let _ = w.write_all(&h.num_gtes_per_gt.to_le_bytes());
    let _ = w.write_all(&h.rgd_offset.to_le_bytes());
    let _ = w.write_all(&h.gd_offset.to_le_bytes());
    let _ = w.write_all(&h.over_head.to_le_bytes());
    let _ = w.write_all(&[h.unclean_shutdown]);
    let _ = w.write_all(&NEWLINE_CHECK);
    let _ = w.write_all(&h.compress_algorithm.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> KdmvHeader {
        KdmvHeader {
            version: 1,
            flags: 0x3,
            capacity: 16384,
            grain_size: 128,
            descriptor_offset: 1,
            descriptor_size: 20,
            num_gtes_per_gt: 512,
            rgd_offset: 21,
            gd_offset: 26,
            over_head: 128,
            unclean_shutdown: 0,
            compress_algorithm: 0,
        }
    }

    fn parse(bytes: &[u8]) -> Result<KdmvHeader, Corrupt> {
        parse_header(bytes, 0, 1 << 20, Structure::KdmvHeader)
    }

    /// Corrupts one field of a good header and checks the exact error and offset.
    fn corrupt_field(at: usize, value: &[u8]) -> Corrupt {
        let mut raw = build_header(&good());
        assert_ne!(
            &raw[at..at + value.len()],
            value,
            "the corruption must change the field"
        );
        raw[at..at + value.len()].copy_from_slice(value);
        parse(&raw).unwrap_err()
    }

    #[test]
    fn a_good_header_round_trips() {
        assert_eq!(parse(&build_header(&good())).unwrap(), good());
    }

    #[test]
    fn each_checked_field_gives_its_error() {
        let e = corrupt_field(0, b"KDMX");
        assert!(matches!(e.kind, CorruptKind::BadMagic { .. }));
        assert_eq!(
            e.to_string(),
            "KDMV header at 0x0: magic is \"KDMX\", expected \"KDMV\""
        );
        let e = corrupt_field(4, &7u32.to_le_bytes());
        assert_eq!(
            (e.offset, &e.kind),
            (
                4,
                &CorruptKind::BadValue {
                    field: "version",
                    found: 7,
                    allowed: "1, 2 or 3".into()
                }
            )
        );
        let e = corrupt_field(20, &100u64.to_le_bytes());
        assert!(matches!(
            e.kind,
            CorruptKind::BadValue {
                field: "grainSize",
                found: 100,
                ..
            }
        ));
        assert_eq!(e.offset, 20);
        let e = corrupt_field(20, &0u64.to_le_bytes());
        assert!(matches!(
            e.kind,
            CorruptKind::BadValue {
                field: "grainSize",
                ..
            }
        ));
        let e = corrupt_field(44, &513u32.to_le_bytes());
        assert!(matches!(
            e.kind,
            CorruptKind::BadValue {
                field: "numGTEsPerGT",
                ..
            }
        ));
        let e = corrupt_field(12, &u64::MAX.to_le_bytes());
        assert!(matches!(
            e.kind,
            CorruptKind::BadValue {
                field: "capacity",
                ..
            }
        ));
        let e = corrupt_field(73, b"\n\n\n\n");
        assert_eq!(e.offset, 73);
        assert!(e.to_string().contains("text-mode transfer"));
    }

    #[test]
    fn compressed_needs_deflate() {
        let mut h = good();
        h.flags |= FLAG_COMPRESSED;
        h.compress_algorithm = 2;
        let e = parse(&build_header(&h)).unwrap_err();
        assert!(matches!(
            e.kind,
            CorruptKind::BadValue {
                field: "compressAlgorithm",
                ..
            }
        ));
    }

    #[test]
    fn a_short_header_is_out_of_bounds() {
        let raw = build_header(&good());
        let e = parse_header(&raw[..40], 0, 40, Structure::KdmvHeader).unwrap_err();
        assert!(matches!(e.kind, CorruptKind::OutOfBounds { .. }));
    }

    #[test]
    fn inflate_checks_the_size() {
        use flate2::write::ZlibEncoder;
        let mut enc = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[5u8; 1000]).unwrap();
        let z = enc.finish().unwrap();
        let mut out = vec![0u8; 1000];
        inflate_exact(&z, &mut out).unwrap();
        assert_eq!(out, vec![5u8; 1000]);
        let mut small = vec![0u8; 999];
        assert!(
            inflate_exact(&z, &mut small)
                .unwrap_err()
                .contains("more than")
        );
        let mut big = vec![0u8; 1001];
        assert!(
            inflate_exact(&z, &mut big)
                .unwrap_err()
                .contains("expected 1001")
        );
        assert!(
            inflate_exact(b"garbage", &mut out)
                .unwrap_err()
                .contains("does not inflate")
        );
    }
}
