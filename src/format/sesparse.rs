//! SESparse extents (ESXi 6.5+; FORMATS.md section 4): constant and volatile headers, grain
//! directory, grain tables with four entry types and the rotated grain index (`Decode`; the
//! walk is [`GrainTables`]'s).
//!
//! The journal's record format is not public. deltascope reads the tables as they are and
//! reports a volatile header that asks for a journal replay (`replayJournal != 0`) as a dirty
//! disk: qemu refuses such disks, ESXi replays the journal first (4.6).

use crate::bytes::{Bytes, ReadAt};
use crate::error::{Corrupt, CorruptKind, ReadError, Structure};
use crate::format::GrainState;
use crate::format::table::{Decode, EntryAt, GrainTables, entry_out_of_file, read_directory};
use crate::units::SECTOR;

/// Constant header magic (4.2).
pub const MAGIC: u64 = 0x0000_0000_CAFE_BABE;
/// Volatile header magic (4.3).
pub const VOLATILE_MAGIC: u64 = 0x0000_0000_CAFE_CAFE;
/// The only version seen and accepted by qemu: "2.1" (4.2).
pub const VERSION: u64 = 0x0000_0002_0000_0001;
/// Grain size in sectors (4 KiB) required by qemu (4.2).
pub const GRAIN_SECTORS: u64 = 8;
/// Grain table size in sectors (4096 entries) required by qemu (4.2).
pub const GT_SECTORS: u64 = 64;

/// The constant header (4.2), fields in sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SeSparseHeader {
    pub version: u64,
    pub capacity: u64,
    pub grain_size: u64,
    pub grain_table_size: u64,
    pub flags: u64,
    pub volatile_header_offset: u64,
    pub volatile_header_size: u64,
    pub journal_header_offset: u64,
    pub journal_header_size: u64,
    pub journal_offset: u64,
    pub journal_size: u64,
    pub grain_dir_offset: u64,
    pub grain_dir_size: u64,
    pub grain_tables_offset: u64,
    pub grain_tables_size: u64,
    pub free_bitmap_offset: u64,
    pub free_bitmap_size: u64,
    pub backmap_offset: u64,
    pub backmap_size: u64,
    pub grains_offset: u64,
    pub grains_size: u64,
}

/// The volatile header (4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolatileHeader {
    /// Next unused grain table index.
    pub free_gt_number: u64,
    /// Journal transaction counter.
    pub next_txn_seq_number: u64,
    /// Non-zero: the journal must be replayed (the disk is dirty).
    pub replay_journal: u64,
}

/// Parses and validates the constant header.
pub fn parse_header(data: &[u8], file_len: u64) -> Result<SeSparseHeader, Corrupt> {
    let s = Structure::SesparseHeader;
    let b = Bytes::new(data, 0, file_len, &s);
    let magic = b.u64_at(0)?;
    if magic != MAGIC {
        return Err(Corrupt::new(
            s,
            0,
            CorruptKind::BadMagic {
                expected: "0xcafebabe".into(),
                found: format!("{magic:#x}"),
            },
        ));
    }
    let f = |i: usize| b.u64_at(i * 8);
    let h = SeSparseHeader {
        version: f(1)?,
        capacity: f(2)?,
        grain_size: f(3)?,
        grain_table_size: f(4)?,
        flags: f(5)?,
        volatile_header_offset: f(10)?,
        volatile_header_size: f(11)?,
        journal_header_offset: f(12)?,
        journal_header_size: f(13)?,
        journal_offset: f(14)?,
        journal_size: f(15)?,
        grain_dir_offset: f(16)?,
        grain_dir_size: f(17)?,
        grain_tables_offset: f(18)?,
        grain_tables_size: f(19)?,
        free_bitmap_offset: f(20)?,
        free_bitmap_size: f(21)?,
        backmap_offset: f(22)?,
        backmap_size: f(23)?,
        grains_offset: f(24)?,
        grains_size: f(25)?,
    };
    let bad = |i: u64, field: &'static str, found: u64, allowed: &str| {
        Corrupt::bad_value(s.clone(), i * 8, field, found, allowed)
    };
    if h.version != VERSION {
        return Err(bad(1, "version", h.version, "0x200000001 (2.1)"));
    }
    if h.grain_size != GRAIN_SECTORS {
        return Err(bad(3, "grainSize", h.grain_size, "8 sectors (4 KiB)"));
    }
    if h.grain_table_size != GT_SECTORS {
        return Err(bad(
            4,
            "grainTableSize",
            h.grain_table_size,
            "64 sectors (4096 entries)",
        ));
    }
    if h.flags != 0 {
        return Err(bad(5, "flags", h.flags, "0"));
    }
    for i in 6..10 {
        let v = f(i)?;
        if v != 0 {
            return Err(bad(i as u64, "reserved", v, "0"));
        }
    }
    if h.capacity > u64::MAX / SECTOR / 2 {
        return Err(bad(
            2,
            "capacity",
            h.capacity,
            "a sector count whose byte size fits in 63 bits",
        ));
    }
    for (i, v) in [
        (16, h.grain_dir_offset),
        (17, h.grain_dir_size),
        (18, h.grain_tables_offset),
        (19, h.grain_tables_size),
        (24, h.grains_offset),
        (10, h.volatile_header_offset),
    ] {
        if v.checked_mul(SECTOR).is_none_or(|b| b >= (1u64 << 62)) {
            return Err(bad(
                i,
                "area offset or size",
                v,
                "a sector number whose byte offset fits in 62 bits",
            ));
        }
    }
    Ok(h)
}

/// Parses the volatile header at absolute offset `base`.
pub fn parse_volatile(data: &[u8], base: u64, file_len: u64) -> Result<VolatileHeader, Corrupt> {
    let s = Structure::SesparseVolatileHeader;
    let b = Bytes::new(data, base, file_len, &s);
    let magic = b.u64_at(0)?;
    if magic != VOLATILE_MAGIC {
        return Err(Corrupt::new(
            s,
            base,
            CorruptKind::BadMagic {
                expected: "0xcafecafe".into(),
                found: format!("{magic:#x}"),
            },
        ));
    }
    Ok(VolatileHeader {
        free_gt_number: b.u64_at(8)?,
        next_txn_seq_number: b.u64_at(16)?,
        replay_journal: b.u64_at(24)?,
    })
}

/// A validated SESparse extent.
#[derive(Debug)]
pub struct SeSparseExtent {
    /// Constant header.
    pub header: SeSparseHeader,
    /// Volatile header.
    pub volatile: VolatileHeader,
    /// The grain directory and the geometry of its tables (4 KiB grains, 16 MiB tables).
    pub tables: GrainTables,
    file_len: u64,
}

const GD_ALLOCATED: u64 = 0x1000_0000_0000_0000;

impl SeSparseExtent {
    /// Opens the SESparse extent in `src`.
    pub fn open<R: ReadAt + ?Sized>(src: &R) -> Result<SeSparseExtent, ReadError> {
        let file_len = src.len();
        let mut scratch = Vec::new();
        let head = src.read_at(
            0,
            512.min(file_len) as usize,
            &mut scratch,
            &Structure::SesparseHeader,
        )?;
        let header = parse_header(head, file_len)?;
        let voff = header.volatile_header_offset * SECTOR;
        let vraw = src.read_at(voff, 512, &mut scratch, &Structure::SesparseVolatileHeader)?;
        let volatile = parse_volatile(vraw, voff, file_len)?;
        let grain_bytes = header.grain_size * SECTOR;
        let gtes_per_gt = header.grain_table_size * SECTOR / 8;
        let table_span = gtes_per_gt * grain_bytes;
        let capacity = header.capacity * SECTOR;
        let entries = capacity.div_ceil(table_span);
        let available = header.grain_dir_size * SECTOR / 8;
        if entries > available {
            return Err(Corrupt::bad_value(
                Structure::SesparseHeader,
                17 * 8,
                "grainDirSize",
                header.grain_dir_size,
                format!("room for the {entries} entries the capacity needs"),
            )
            .into());
        }
        let gd_off = header.grain_dir_offset * SECTOR;
        let max_tables = header.grain_tables_size / header.grain_table_size;
        let stride = header.grain_table_size * SECTOR;
        let gd = read_directory(
            src,
            gd_off,
            entries,
            8,
            stride,
            &Structure::GrainDirectory,
            &mut |t, e, entry_off| {
                if e == 0 {
                    return Ok(None);
                }
                if e & 0xFFFF_FFFF_0000_0000 != GD_ALLOCATED {
                    return Err(Corrupt::bad_value(
                        Structure::GrainDirectory,
                        entry_off,
                        "grain directory entry",
                        e,
                        "0 or 0x10000000 in the top 32 bits and a table index below",
                    ));
                }
                let index = e & 0xFFFF_FFFF;
                if index >= max_tables {
                    return Err(Corrupt::bad_value(
                        Structure::GrainDirectory,
                        entry_off,
                        "grain table index",
                        index,
                        format!("below {max_tables}, the tables the grain-table area holds"),
                    ));
                }
                let gt_off =
                    (header.grain_tables_offset + index * header.grain_table_size) * SECTOR;
                src.check_range(gt_off, gtes_per_gt * 8, &Structure::GrainTable { index: t })?;
                Ok(Some(gt_off))
            },
        )?;
        Ok(SeSparseExtent {
            header,
            volatile,
            tables: GrainTables::new(gd, capacity, grain_bytes, gtes_per_gt),
            file_len,
        })
    }

    /// Whether the volatile header asks for a journal replay.
    pub fn is_dirty(&self) -> bool {
        self.volatile.replay_journal != 0
    }

    /// The first byte a grain may occupy: the grain area's start (4.2).
    pub fn data_start(&self) -> u64 {
        self.header.grains_offset * SECTOR
    }

    /// File ranges of the grain directory and tables: no grain may share their bytes.
    pub fn metadata_ranges(&self) -> Vec<(u64, u64, Structure)> {
        let mut out = vec![(
            self.header.grain_dir_offset * SECTOR,
            self.tables.directory().len() * 8,
            Structure::GrainDirectory,
        )];
        out.extend(self.tables.table_ranges(self.tables.entries * 8));
        out
    }
}

impl Decode for SeSparseExtent {
    const ENTRY_BYTES: u64 = 8;

    /// The top nibble is the type (4.5): 0 unallocated (no other bit set), 1 unmapped, 2 zero,
    /// 3 a grain whose index is split 12/48 and swapped in the low 60 bits.
    fn decode(&self, e: u64, at: EntryAt) -> Result<GrainState, Corrupt> {
        match e >> 60 {
            0 if e == 0 => Ok(GrainState::Unallocated),
            1 => Ok(GrainState::Unmapped),
            2 => Ok(GrainState::Zero),
            3 => {
                // The 60 low bits hold the index split 12/48 and swapped (4.5).
                let index =
                    ((e & 0x0FFF_0000_0000_0000) >> 48) | ((e & 0x0000_FFFF_FFFF_FFFF) << 12);
                let off = index
                    .checked_mul(self.header.grain_size)
                    .and_then(|s| s.checked_add(self.header.grains_offset))
                    .and_then(|s| s.checked_mul(SECTOR))
                    .ok_or_else(|| entry_out_of_file(at, e, u64::MAX, self.file_len))?;
                let len = self.tables.grain_len(at.grain);
                if off.saturating_add(len) > self.file_len {
                    return Err(entry_out_of_file(
                        at,
                        e,
                        off.saturating_add(len),
                        self.file_len,
                    ));
                }
                Ok(GrainState::Data { file_offset: off })
            }
            _ => Err(Corrupt::bad_value(
                Structure::GrainTable { index: at.table },
                at.offset,
                "grain table entry",
                e,
                "type 0 (with no other bits), 1, 2 or 3 in the top nibble",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        let mut h = vec![0u8; 512];
        let vals: [(usize, u64); 20] = [
            (0, MAGIC),
            (1, VERSION),
            (2, 0x8000),
            (3, 8),
            (4, 64),
            (10, 1),
            (11, 1),
            (12, 2),
            (13, 2),
            (14, 2048),
            (15, 2048),
            (16, 4096),
            (17, 2048),
            (18, 6144),
            (19, 2048),
            (20, 8192),
            (21, 2048),
            (22, 10240),
            (23, 2048),
            (24, 12288),
        ];
        for (i, v) in vals {
            h[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        h
    }

    #[test]
    fn constant_header_checks_like_qemu() {
        let h = header();
        assert_eq!(parse_header(&h, 1 << 30).unwrap().capacity, 0x8000);
        for (i, field) in [
            (1usize, "version"),
            (3, "grainSize"),
            (4, "grainTableSize"),
            (5, "flags"),
            (7, "reserved"),
        ] {
            let mut bad = h.clone();
            bad[i * 8] ^= 0x40;
            let e = parse_header(&bad, 1 << 30).unwrap_err();
            assert_eq!(e.offset, i as u64 * 8, "{field}");
            assert!(
                matches!(e.kind, CorruptKind::BadValue { field: f, .. } if f == field),
                "{e}"
            );
        }
        let mut bad = h.clone();
        bad[0] = 0;
        assert!(matches!(
            parse_header(&bad, 1 << 30).unwrap_err().kind,
            CorruptKind::BadMagic { .. }
        ));
    }

    #[test]
    fn rotated_index_decodes_as_the_worked_example() {
        // FORMATS.md 4.5: 0x3123000000000045 -> index 0x45123.
        let e: u64 = 0x3123_0000_0000_0045;
        let index = ((e & 0x0FFF_0000_0000_0000) >> 48) | ((e & 0x0000_FFFF_FFFF_FFFF) << 12);
        assert_eq!(index, 0x45123);
    }

    #[test]
    fn volatile_header_reports_dirty() {
        let mut v = vec![0u8; 512];
        v[0..8].copy_from_slice(&VOLATILE_MAGIC.to_le_bytes());
        v[24..32].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(parse_volatile(&v, 512, 4096).unwrap().replay_journal, 1);
        v[0] = 0;
        let e = parse_volatile(&v, 512, 4096).unwrap_err();
        assert_eq!(e.offset, 512);
    }
}
