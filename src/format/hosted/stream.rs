//! streamOptimized files (FORMATS.md 2.5): the footer that holds the real header when the
//! header says `GD_AT_END`, the grain markers, and compressed grains (zlib, 8.8), inflated to
//! exactly a grain.

use crate::bytes::{Bytes, ReadAt, le_u32};
use crate::error::{Corrupt, CorruptKind, ReadError, Structure};
use crate::units::SECTOR;

use super::HostedExtent;
use super::header::{FLAG_COMPRESSED, GD_AT_END, KdmvHeader, parse_header};

/// The most a DEFLATE stream expands: 258 bytes per 2-bit code, plus headers (RFC 1951).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Marker types of streamOptimized files (2.5).
const MARKER_EOS: u32 = 0;
const MARKER_FOOTER: u32 = 3;

/// Readers inflate a compressed grain into a buffer of the grain's size before its marker is
/// read: a grain larger than DEFLATE's best ratio (1032:1) over the whole file cannot be
/// stored in it, and must not cost a gigabyte to find that out. `header_at` is where the
/// header in effect was read.
pub(super) fn check_grain_fits(
    header: &KdmvHeader,
    header_at: (Structure, u64),
    file_len: u64,
) -> Result<(), Corrupt> {
    let grain_bytes = header.grain_size * SECTOR;
    if header.flags & FLAG_COMPRESSED != 0 && grain_bytes / MAX_DEFLATE_RATIO > file_len {
        return Err(Corrupt::bad_value(
            header_at.0,
            header_at.1 + 20,
            "grainSize",
            header.grain_size,
            format!(
                "a compressed grain that fits in the file ({file_len:#x} bytes inflate to at most {:#x})",
                file_len.saturating_mul(MAX_DEFLATE_RATIO)
            ),
        ));
    }
    Ok(())
}

/// Reads the footer of a streamOptimized file whose header says GD_AT_END: the three sectors
/// at `len - 1536` are a footer marker, the footer (a header copy) and an end-of-stream
/// marker (FORMATS.md 2.5).
pub(super) fn read_footer<R: ReadAt + ?Sized>(
    src: &R,
    header: &KdmvHeader,
) -> Result<KdmvHeader, ReadError> {
    let len = src.len();
    if header.flags & FLAG_COMPRESSED == 0 {
        return Err(Corrupt::bad_value(
            Structure::KdmvHeader,
            56,
            "gdOffset",
            GD_AT_END,
            "a sector number (GD_AT_END is only for compressed streamOptimized files)",
        )
        .into());
    }
    let start = len.checked_sub(1536).ok_or_else(|| {
        Corrupt::new(
            Structure::StreamFooter,
            0,
            CorruptKind::OutOfBounds {
                offset: 0,
                len: 1536,
                file_len: len,
            },
        )
    })?;
    let mut scratch = Vec::new();
    let tail = src.read_at(start, 1536, &mut scratch, &Structure::StreamFooter)?;
    let marker_type = |rel: usize| le_u32(&tail[rel..], 3).unwrap_or(u32::MAX);
    if marker_type(0) != MARKER_FOOTER || marker_type(1024) != MARKER_EOS {
        return Err(Corrupt::syntax(
            Structure::StreamMarker,
            start,
            format!(
                "expected a footer marker (type 3) and an end-of-stream marker (type 0) in the last 3 sectors, found types {} and {}",
                marker_type(0),
                marker_type(1024)
            ),
        )
        .into());
    }
    let footer = parse_header(&tail[512..1024], start + 512, len, Structure::StreamFooter)?;
    if footer.gd_offset == GD_AT_END {
        return Err(Corrupt::bad_value(
            Structure::StreamFooter,
            start + 512 + 56,
            "gdOffset",
            GD_AT_END,
            "the real grain directory sector",
        )
        .into());
    }
    Ok(footer)
}

impl HostedExtent {
    /// Compressed length of the grain whose marker (or bare size field) is at `marker`.
    pub fn compressed_len<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        marker: u64,
        grain: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<u64, ReadError> {
        let here = Structure::CompressedGrain { grain };
        // With markers the size follows the 8-byte lba; without, it opens the grain.
        let at = if self.markers { marker + 8 } else { marker };
        let head = src.read_at(at, 4, scratch, &here)?;
        let b = Bytes::new(head, at, self.file_len, &here);
        Ok(u64::from(b.u32_at(0)?))
    }

    /// Inflates compressed grain `grain` whose marker is at `marker` into `out` (which must
    /// hold the grain's length, clipped to the capacity), checking its stated sizes.
    pub fn read_compressed<R: ReadAt + ?Sized>(
        &self,
        src: &R,
        marker: u64,
        grain: u64,
        out: &mut [u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        let here = Structure::CompressedGrain { grain };
        let (size, data_off) = if self.markers {
            let head = src.read_at(marker, 12, scratch, &here)?;
            let hb = Bytes::new(head, marker, self.file_len, &here);
            let lba = hb.u64_at(0)?;
            let size = hb.u32_at(8)?;
            let expected_lba = grain * self.header.grain_size;
            if lba != expected_lba {
                return Err(Corrupt::bad_value(
                    here,
                    marker,
                    "grain marker lba",
                    lba,
                    format!("{expected_lba:#x}, the grain's first sector"),
                )
                .into());
            }
            (u64::from(size), marker + 12)
        } else {
            let head = src.read_at(marker, 4, scratch, &here)?;
            (u64::from(le_u32(head, 0).unwrap_or(0)), marker + 4)
        };
        // Deflate never expands data by more than a few bytes per 16 KiB block.
        let grain_bytes = self.tables.grain_bytes;
        let max = grain_bytes + grain_bytes / 8 + 1024;
        if size == 0 || size > max {
            return Err(Corrupt::bad_value(
                here,
                marker + 8,
                "grain marker size",
                size,
                format!("1 to {max} compressed bytes"),
            )
            .into());
        }
        let data = src.read_at(data_off, size as usize, scratch, &here)?;
        inflate_exact(data, out).map_err(|message| {
            Corrupt::new(here, marker, CorruptKind::Decompress { message }).into()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
