//! ESX redo logs (`COWD`, vmfsSparse; FORMATS.md section 3): header, grain directory and
//! 4096-entry grain tables, walked by [`GrainTables`] with [`CowdExtent`]'s entry meanings.
//!
//! GTE value 1 is read differently by qemu (a grain at sector 1, inside the header) and by
//! dissect and Xen Orchestra (a zero grain). No sane redo log stores a grain inside its own
//! header, so deltascope reads it as a zero grain and reports it as reader-dependent
//! (FORMATS.md 3.3; docs/FORMATS.md).

use crate::bytes::{Bytes, ReadAt};
use crate::error::{Corrupt, CorruptKind, ReadError, Structure};
use crate::format::GrainState;
use crate::format::table::{
    Decode, EntryAt, GrainTables, entry_in_metadata, entry_out_of_file, read_directory,
};
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
    /// The grain directory and the geometry of its tables.
    pub tables: GrainTables,
    file_len: u64,
    /// End of the grain directory: no grain may start before it.
    metadata_end: u64,
}

impl CowdExtent {
    /// Opens the COWD extent in `src`.
    pub fn open<R: ReadAt + ?Sized>(src: &R) -> Result<CowdExtent, ReadError> {
        let file_len = src.len();
        let mut scratch = Vec::new();
        let head = src.read_at(
            0,
            HEADER_BYTES.min(file_len) as usize,
            &mut scratch,
            &Structure::CowdHeader,
        )?;
        let header = parse_header(head, file_len)?;
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
            tables: GrainTables::new(gd, capacity, grain_bytes, GTES_PER_GT),
            file_len,
            metadata_end: (gd_off + entries * 4).max(HEADER_BYTES),
        })
    }

    /// The first byte a grain may occupy: after the header's grain directory, as long as the
    /// header declares it.
    pub fn data_start(&self) -> u64 {
        (u64::from(self.header.gd_offset) * SECTOR)
            .saturating_add(u64::from(self.header.num_gd_entries) * 4)
    }

    /// File ranges of the grain directory and tables: no grain may share their bytes.
    pub fn metadata_ranges(&self) -> Vec<(u64, u64, Structure)> {
        let mut out = vec![(
            u64::from(self.header.gd_offset) * SECTOR,
            self.tables.directory().len() * 4,
            Structure::GrainDirectory,
        )];
        out.extend(self.tables.table_ranges(GTES_PER_GT * 4));
        out
    }

    /// Counts GTEs equal to 1 (reader-dependent zero grains) in present tables.
    pub fn count_gte1<R: ReadAt + ?Sized>(&self, src: &R) -> Result<u64, ReadError> {
        let mut n = 0;
        let mut scratch = Vec::new();
        for (t, off) in self.tables.directory().tables() {
            let gt = src.read_at(
                off,
                (GTES_PER_GT * 4) as usize,
                &mut scratch,
                &Structure::GrainTable { index: t },
            )?;
            n += gt.chunks_exact(4).filter(|c| *c == [1, 0, 0, 0]).count() as u64;
        }
        Ok(n)
    }
}

impl Decode for CowdExtent {
    const ENTRY_BYTES: u64 = 4;

    /// 0: unallocated; 1: a zero grain (reader-dependent, 3.3); else the grain's sector, which
    /// must lie after the header and directory and, with its grain, inside the file.
    fn decode(&self, raw: u64, at: EntryAt) -> Result<GrainState, Corrupt> {
        match raw {
            0 => Ok(GrainState::Unallocated),
            // Reader-dependent (3.3): a zero grain, as dissect and Xen Orchestra read it.
            1 => Ok(GrainState::Zero),
            s => {
                let off = s * SECTOR;
                // Header and grain directory come first (3.1); tables are allocated among
                // the grains, so only this prefix is known to hold no grain.
                if off < self.metadata_end {
                    return Err(entry_in_metadata(at, s, self.metadata_end));
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
        let src: &[u8] = &file;
        let cowd = CowdExtent::open(src).unwrap();
        assert_eq!(cowd.count_gte1(src).unwrap(), 1);
        let ext = crate::format::ExtentMap::Cowd(cowd);
        let mut s = Vec::new();
        assert_eq!(ext.lookup(src, 0, &mut s).unwrap().state, GrainState::Zero);
        assert!(matches!(
            ext.lookup(src, 512, &mut s).unwrap().state,
            GrainState::Data { .. }
        ));
        let e = ext
            .lookup(src, 1024, &mut s)
            .unwrap_err()
            .in_file(std::path::Path::new("mem-delta.vmdk"))
            .to_string();
        assert!(
            e.contains("mem-delta.vmdk: grain table 0 at 0x")
                && e.contains("grain table entry is 0x186a0"),
            "{e}"
        );
        assert_eq!(
            ext.lookup(src, 3 << 20, &mut s).unwrap().state,
            GrainState::Unallocated
        );
    }
}
