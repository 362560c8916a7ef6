//! ESX redo logs (`COWD`, vmfsSparse; FORMATS.md section 3): header, grain directory and
//! 4096-entry grain tables.
//!
//! GTE value 1 is read differently by qemu (a grain at sector 1, inside the header) and by
//! dissect and Xen Orchestra (a zero grain). No sane redo log stores a grain inside its own
//! header, so deltascope reads it as a zero grain and reports it as reader-dependent
//! (FORMATS.md 3.3; docs/FORMATS.md).

use crate::bytes::{Bytes, le_u32};
use crate::error::{Corrupt, CorruptKind, Error, Result, Structure};
use crate::format::{
    Directory, GrainState, Piece, entry_in_metadata, entry_out_of_file, grain_piece, read_directory,
};
use crate::source::Source;
use crate::units::SECTOR;

/// Grain table entries per table, fixed by the format (3.2).
pub const GTES_PER_GT: u64 = 4096;
/// Header size in bytes (3.1).
pub const HEADER_BYTES: u64 = 2048;
/// Largest grain accepted, in sectors (ESX writes 1; 3.1).
pub const MAX_GRAIN_SECTORS: u64 = 128;

/// The fields of the COWD header that a reader needs (FORMATS.md 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CowdHeader {
    /// 1.
    pub version: u32,
    /// 3 on ESX; meaning unknown.
    pub flags: u32,
    /// Virtual sectors.
    pub capacity: u32,
    /// Sectors per grain.
    pub grain_size: u32,
    /// Sector of the grain directory.
    pub gd_offset: u32,
    /// Entries of the grain directory.
    pub num_gd_entries: u32,
    /// End of the used file, in sectors (informational).
    pub next_free_sector: u32,
    /// Non-zero when not closed cleanly.
    pub unclean_shutdown: u32,
}

/// Parses and validates a COWD header.
pub fn parse_header(data: &[u8], file_len: u64) -> Result<CowdHeader, Corrupt> {
    let s = Structure::CowdHeader;
    let b = Bytes::new(data, 0, file_len, &s);
    let magic = b.array_at::<4>(0)?;
    if &magic != b"COWD" {
        return Err(Corrupt::new(
            s,
            0,
            CorruptKind::BadMagic {
                expected: "\"COWD\"".into(),
                found: format!("{:?}", String::from_utf8_lossy(&magic)),
            },
        ));
    }
    let h = CowdHeader {
        version: b.u32_at(4)?,
        flags: b.u32_at(8)?,
        capacity: b.u32_at(12)?,
        grain_size: b.u32_at(16)?,
        gd_offset: b.u32_at(20)?,
        num_gd_entries: b.u32_at(24)?,
        next_free_sector: b.u32_at(28)?,
        unclean_shutdown: if data.len() >= 1652 {
            b.u32_at(1648)?
        } else {
            0
        },
    };
    if h.version != 1 {
        return Err(Corrupt::bad_value(s, 4, "version", h.version.into(), "1"));
    }
    let g = u64::from(h.grain_size);
    if g == 0 || !g.is_power_of_two() || g > MAX_GRAIN_SECTORS {
        return Err(Corrupt::bad_value(
            s,
            16,
            "grainSize",
            g,
            "a power of two from 1 to 128 sectors",
        ));
    }
    let needed = u64::from(h.capacity).div_ceil(GTES_PER_GT * g);
    if u64::from(h.num_gd_entries) < needed {
        return Err(Corrupt::bad_value(
            s,
            24,
            "numGDEntries",
            h.num_gd_entries.into(),
            format!("at least {needed} to cover the capacity"),
        ));
    }
    if h.gd_offset == 0 {
        return Err(Corrupt::bad_value(
            s,
            20,
            "gdOffset",
            0,
            "a sector after the header (4)",
        ));
    }
    Ok(h)
}

/// A validated COWD extent.
#[derive(Debug)]
pub struct CowdExtent {
    /// The header.
    pub header: CowdHeader,
    gd: Directory,
    /// Extent length in bytes.
    pub capacity: u64,
    /// Grain size in bytes.
    pub grain_bytes: u64,
    /// Virtual bytes one grain table covers.
    pub table_span: u64,
    file_len: u64,
    /// End of the grain directory: no grain may start before it.
    metadata_end: u64,
}

impl CowdExtent {
    /// Opens the COWD extent in `src`.
    pub fn open(src: &Source) -> Result<CowdExtent> {
        let path = src.path();
        let file_len = src.len();
        let head = src.bytes(0, HEADER_BYTES.min(file_len), &Structure::CowdHeader)?;
        let header = parse_header(&head, file_len).map_err(|e| Error::corrupt(path, e))?;
        let grain_bytes = u64::from(header.grain_size) * SECTOR;
        let capacity = u64::from(header.capacity) * SECTOR;
        let table_span = GTES_PER_GT * grain_bytes;
        let entries = capacity.div_ceil(table_span);
        let gd_off = u64::from(header.gd_offset) * SECTOR;
        // The whole directory the header declares must be in the file, though only the
        // entries the capacity needs are read: a count of 2^32 is refused here.
        src.check_range(
            gd_off,
            u64::from(header.num_gd_entries) * 4,
            &Structure::GrainDirectory,
        )?;
        let gd = read_directory(
            src,
            gd_off,
            entries,
            4,
            GTES_PER_GT * 4,
            &Structure::GrainDirectory,
            &mut |t, sector, _| {
                if sector == 0 {
                    return Ok(None);
                }
                let at = sector * SECTOR;
                src.check_range(at, GTES_PER_GT * 4, &Structure::GrainTable { index: t })?;
                Ok(Some(at))
            },
        )?;
        Ok(CowdExtent {
            header,
            gd,
            capacity,
            grain_bytes,
            table_span,
            file_len,
            metadata_end: (gd_off + entries * 4).max(HEADER_BYTES),
        })
    }

    /// File ranges of the grain directory and tables: no grain may share their bytes.
    pub fn metadata_ranges(&self) -> Vec<(u64, u64, Structure)> {
        let mut out = vec![(
            u64::from(self.header.gd_offset) * SECTOR,
            self.gd.len() * 4,
            Structure::GrainDirectory,
        )];
        out.extend(
            self.gd
                .tables()
                .map(|(t, off)| (off, GTES_PER_GT * 4, Structure::GrainTable { index: t })),
        );
        out
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
            // Reader-dependent (3.3): a zero grain, as dissect and Xen Orchestra read it.
            1 => Ok(GrainState::Zero),
            s => {
                let off = u64::from(s) * SECTOR;
                // Header and grain directory come first (3.1); tables are allocated among
                // the grains, so only this prefix is known to hold no grain.
                if off < self.metadata_end {
                    return Err(entry_in_metadata(
                        t,
                        entry_offset,
                        s.into(),
                        self.metadata_end,
                    ));
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

    /// Counts GTEs equal to 1 (reader-dependent zero grains) in present tables.
    pub fn count_gte1(&self, src: &Source) -> Result<u64> {
        let mut n = 0;
        let mut scratch = Vec::new();
        for (t, off) in self.gd.tables() {
            {
                let gt = src.read_at(
                    off,
                    (GTES_PER_GT * 4) as usize,
                    &mut scratch,
                    &Structure::GrainTable { index: t },
                )?;
                n += gt.chunks_exact(4).filter(|c| *c == [1, 0, 0, 0]).count() as u64;
            }
        }
        Ok(n)
    }

    /// Walks grain table `t`.
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
            (GTES_PER_GT * 4) as usize,
            scratch,
            &Structure::GrainTable { index: t },
        )?;
        let first = start / self.grain_bytes;
        let grains = self
            .table_span
            .min(self.capacity - start)
            .div_ceil(self.grain_bytes);
        if let Some(p) = super::empty_table(gt, grains * 4, start, self.table_span, self.capacity) {
            return f(p);
        }
        for i in 0..grains {
            let gte = le_u32(gt, i as usize).unwrap_or(0);
            let g = first + i;
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
        let entry_offset = gt_off + (g % GTES_PER_GT) * 4;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(capacity: u32, grain: u32, gd_entries: u32) -> Vec<u8> {
        let mut h = vec![0u8; 2048];
        h[0..4].copy_from_slice(b"COWD");
        h[4..8].copy_from_slice(&1u32.to_le_bytes());
        h[8..12].copy_from_slice(&3u32.to_le_bytes());
        h[12..16].copy_from_slice(&capacity.to_le_bytes());
        h[16..20].copy_from_slice(&grain.to_le_bytes());
        h[20..24].copy_from_slice(&4u32.to_le_bytes());
        h[24..28].copy_from_slice(&gd_entries.to_le_bytes());
        h
    }

    #[test]
    fn header_fields_are_checked() {
        assert!(parse_header(&header(8192, 1, 2), 4096).is_ok());
        let e = parse_header(&header(8192, 3, 2), 4096).unwrap_err();
        assert_eq!((e.offset, e.structure.clone()), (16, Structure::CowdHeader));
        let e = parse_header(&header(8192, 1, 1), 4096).unwrap_err();
        assert!(
            e.to_string()
                .contains("numGDEntries is 0x1, expected at least 2"),
            "{e}"
        );
        let mut h = header(8192, 1, 2);
        h[0] = b'X';
        assert!(matches!(
            parse_header(&h, 4096).unwrap_err().kind,
            CorruptKind::BadMagic { .. }
        ));
        let e = parse_header(&h[..10], 10).unwrap_err();
        assert!(matches!(
            e.kind,
            CorruptKind::BadMagic { .. } | CorruptKind::OutOfBounds { .. }
        ));
        let e = parse_header(&header(8192, 1, 2)[..20], 20).unwrap_err();
        assert!(matches!(e.kind, CorruptKind::OutOfBounds { .. }));
    }

    #[test]
    fn gte1_is_a_zero_grain_and_data_past_eof_is_corrupt() {
        let mut file = header(8192, 1, 2);
        // GD at sector 4: table 0 at sector 5.
        file.extend_from_slice(&5u32.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        file.resize(5 * 512, 0);
        let mut gt = vec![0u8; 4096 * 4];
        gt[0..4].copy_from_slice(&1u32.to_le_bytes());
        gt[4..8].copy_from_slice(&((5 * 512 + 4096 * 4) as u32 / 512).to_le_bytes());
        gt[8..12].copy_from_slice(&100_000u32.to_le_bytes());
        file.extend_from_slice(&gt);
        file.extend_from_slice(&[0xab; 512]);
        let src = Source::from_bytes(std::path::Path::new("mem-delta.vmdk"), file);
        let ext = CowdExtent::open(&src).unwrap();
        let mut s = Vec::new();
        assert_eq!(ext.lookup(&src, 0, &mut s).unwrap().state, GrainState::Zero);
        assert!(matches!(
            ext.lookup(&src, 512, &mut s).unwrap().state,
            GrainState::Data { .. }
        ));
        let e = ext.lookup(&src, 1024, &mut s).unwrap_err().to_string();
        assert!(
            e.contains("mem-delta.vmdk: grain table 0 at 0x")
                && e.contains("grain table entry is 0x186a0"),
            "{e}"
        );
        assert_eq!(
            ext.lookup(&src, 3 << 20, &mut s).unwrap().state,
            GrainState::Unallocated
        );
        assert_eq!(ext.count_gte1(&src).unwrap(), 1);
    }
}
