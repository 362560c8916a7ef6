//! The 512-byte `KDMV` header (FORMATS.md 2.1, 2.2): its fields, flags and limits, checked
//! as qemu checks them. The same header is the footer of a streamOptimized file
//! ([`super::stream`]).

use std::io::Write;

use crate::bytes::Bytes;
use crate::error::{Corrupt, CorruptKind, Structure};
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
/// The newline-check bytes at offset 73 (2.1).
const NEWLINE_CHECK: [u8; 4] = [0x0a, 0x20, 0x0d, 0x0a];

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
}
