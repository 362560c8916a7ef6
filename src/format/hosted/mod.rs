//! Hosted sparse extents (`KDMV`, FORMATS.md section 2): the header ([`header`]), the grain
//! directory and its redundant copy, grain tables with zeroed-grain entries, and the footer,
//! markers and compressed grains of streamOptimized files ([`stream`]).
//!
//! This file turns the bytes of one extent into a validated [`HostedExtent`]; the table walk
//! and lookup are [`GrainTables`]'s, with [`HostedExtent`]'s `Decode` saying what an entry
//! means.

pub mod header;
pub mod stream;

pub use header::{
    FLAG_COMPRESSED, FLAG_MARKERS, FLAG_REDUNDANT_GD, FLAG_VALID_NEWLINE, FLAG_ZEROED_GRAIN,
    GD_AT_END, KdmvHeader, MAX_GRAIN_SECTORS, MAX_GTES_PER_GT, build_header, parse_header,
};

use crate::bytes::{ReadAt, le_u32};
use crate::error::{Corrupt, ReadError, Structure};
use crate::format::GrainState;
use crate::format::table::{
    Decode, Directory, EntryAt, GrainTables, entry_in_metadata, entry_out_of_file, read_directory,
};
use crate::units::SECTOR;

/// A validated hosted sparse extent.
#[derive(Debug)]
pub struct HostedExtent {
    /// The header in effect (the footer's copy for GD_AT_END files).
    pub header: KdmvHeader,
    /// The grain directory and the geometry of its tables.
    pub tables: GrainTables,
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
    pub fn open<R: ReadAt + ?Sized>(src: &R) -> Result<HostedExtent, ReadError> {
        let file_len = src.len();
        let mut scratch = Vec::new();
        let head = src.read_at(
            0,
            512.min(file_len) as usize,
            &mut scratch,
            &Structure::KdmvHeader,
        )?;
        let mut header = parse_header(head, 0, file_len, Structure::KdmvHeader)?;
        let mut header_at = (Structure::KdmvHeader, 0);
        if header.gd_offset == GD_AT_END {
            header = stream::read_footer(src, &header)?;
            header_at = (Structure::StreamFooter, file_len - 1024);
        }
        let grain_bytes = header.grain_size * SECTOR;
        stream::check_grain_fits(&header, header_at, file_len)?;
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
            tables: GrainTables::new(gd, capacity, grain_bytes, gtes),
            gt_bytes,
            file_len,
            compressed: header.flags & FLAG_COMPRESSED != 0,
            markers: header.flags & FLAG_MARKERS != 0,
            zeroed_grains: header.version >= 2 && header.flags & FLAG_ZEROED_GRAIN != 0,
            unclean: header.unclean_shutdown != 0,
            notes: Vec::new(),
            header,
        };
        if ext.header.flags & FLAG_REDUNDANT_GD != 0 && ext.header.rgd_offset != 0 {
            ext.check_redundant(src)?;
        }
        Ok(ext)
    }

    /// Extent length in bytes.
    pub fn capacity(&self) -> u64 {
        self.tables.capacity
    }

    /// Grain size in bytes.
    pub fn grain_bytes(&self) -> u64 {
        self.tables.grain_bytes
    }

    /// The first byte a grain may occupy: after `overHead` sectors of header, descriptor and
    /// tables (2.1).
    pub fn data_start(&self) -> u64 {
        self.header.over_head * SECTOR
    }

    /// Compares the redundant grain directory and its tables with the primary ones; a
    /// difference becomes a note (the primary is what qemu and VMware read). Tables stored
    /// back to back in both copies are compared a megabyte at a time, and ranges that are
    /// holes of the file in both copies (preallocated, never written) are equal unread.
    fn check_redundant<R: ReadAt + ?Sized>(&mut self, src: &R) -> Result<(), ReadError> {
        let gd = self.tables.directory();
        let rgd = load_directory(
            src,
            self.header.rgd_offset,
            gd.len(),
            self.gt_bytes,
            Structure::RedundantGrainDirectory,
        )?;
        let mut mismatches = 0u64;
        let mut first: Option<String> = None;
        let mut p = gd.tables().peekable();
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
    fn compare_tables<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        (t0, po, ro, n): (u64, u64, u64, u64),
        bufs: &mut (Vec<u8>, Vec<u8>),
        mismatches: &mut u64,
        first: &mut Option<String>,
    ) -> Result<(), ReadError> {
        // Tables that are holes of the file in both copies (preallocated, never written) are
        // equal unread: only runs of tables with data in either copy are compared.
        let g = self.gt_bytes;
        let both_hole = |k: u64| src.is_hole(po + k * g, g) && src.is_hole(ro + k * g, g);
        if src.is_hole(po, n * g) && src.is_hole(ro, n * g) {
            return Ok(());
        }
        let mut k = 0;
        while k < n {
            if both_hole(k) {
                k += 1;
                continue;
            }
            let from = k;
            while k < n && !both_hole(k) {
                k += 1;
            }
            let run = (t0 + from, po + from * g, ro + from * g, k - from);
            self.compare_run(src, run, bufs, mismatches, first)?;
        }
        Ok(())
    }

    /// Compares `n` tables from table `t0`, all read, stored back to back at `po` (primary)
    /// and `ro` (redundant).
    fn compare_run<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        (t0, po, ro, n): (u64, u64, u64, u64),
        (a, b): &mut (Vec<u8>, Vec<u8>),
        mismatches: &mut u64,
        first: &mut Option<String>,
    ) -> Result<(), ReadError> {
        let len = n * self.gt_bytes;
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
        let entries = self.tables.directory().len();
        let mut out = vec![(
            self.header.gd_offset.saturating_mul(SECTOR),
            entries * 4,
            Structure::GrainDirectory,
        )];
        if self.header.flags & FLAG_REDUNDANT_GD != 0 && self.header.rgd_offset != 0 {
            out.push((
                self.header.rgd_offset.saturating_mul(SECTOR),
                entries * 4,
                Structure::RedundantGrainDirectory,
            ));
        }
        out.extend(self.tables.table_ranges(self.gt_bytes));
        out
    }
}

impl Decode for HostedExtent {
    const ENTRY_BYTES: u64 = 4;

    /// 0: unallocated; 1 with zeroed-grain entries: a zero grain; else the grain's sector,
    /// which must lie after the metadata (`overHead`) and, with its grain, inside the file.
    fn decode(&self, raw: u64, at: EntryAt) -> Result<GrainState, Corrupt> {
        let s = raw;
        match s {
            0 => Ok(GrainState::Unallocated),
            1 if self.zeroed_grains => Ok(GrainState::Zero),
            s => {
                let off = s * SECTOR;
                // overHead counts the sectors of header, descriptor and tables in front of
                // the first grain (2.1); a grain there would share bytes with them.
                if s < self.header.over_head {
                    return Err(entry_in_metadata(
                        at,
                        s,
                        self.header.over_head.saturating_mul(SECTOR),
                    ));
                }
                if self.compressed {
                    // The marker (12 bytes) must be inside the file; its size is checked on read.
                    if off + 12 > self.file_len {
                        return Err(entry_out_of_file(at, s, off + 12, self.file_len));
                    }
                    return Ok(GrainState::Compressed {
                        marker: off,
                        grain: at.grain,
                    });
                }
                let len = self.tables.grain_len(at.grain);
                if off + len > self.file_len {
                    return Err(entry_out_of_file(at, s, off + len, self.file_len));
                }
                Ok(GrainState::Data { file_offset: off })
            }
        }
    }
}

/// Loads a directory of `entries` u32 sector numbers at sector `sector` (0: no table), after
/// proving it is in the file; each present table of `gt_bytes` must be in the file too.
fn load_directory<R: ReadAt + ?Sized>(
    src: &R,
    sector: u64,
    entries: u64,
    gt_bytes: u64,
    structure: Structure,
) -> Result<Directory, ReadError> {
    let off = sector
        .checked_mul(SECTOR)
        .ok_or_else(|| Corrupt::overflow(structure.clone(), 56, "gdOffset"))?;
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
