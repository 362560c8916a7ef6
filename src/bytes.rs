//! Checked reads: of little-endian fields at absolute file offsets (the only user of
//! byteorder), of byte ranges of a file ([`ReadAt`]), of the small files beside images and
//! settings (a `.vmx`, a cache entry, a file of trusted roots: [`read_small`], which no FIFO
//! can hang and no device can make fill memory), and the zero test every grain goes through
//! ([`is_zero`]).
//!
//! byteorder's slice helpers panic on short input, so they are called only on ranges this
//! module has just obtained with `get`. A [`Bytes`] knows the absolute offset of its first byte
//! and the [`Structure`] it holds, so every error names both.

use byteorder::{ByteOrder, LittleEndian};

use crate::error::{Corrupt, CorruptKind, ReadError, Structure};

/// The bytes of the regular file `path`, at most `limit + 1` of them, so that a caller
/// sees a file over `limit` without reading it whole. The file is opened with `O_NONBLOCK`
/// (a FIFO opens at once instead of waiting for a writer, and is then refused with the other
/// kinds that are not regular files), and with `O_NOFOLLOW` unless `follow_links`.
pub fn read_small(
    path: &std::path::Path,
    limit: u64,
    follow_links: bool,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK;
    if !follow_links {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a FIFO, socket, device or folder)",
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Random access to the bytes of one file: all that `format/` asks of a file. Every range is
/// checked against [`ReadAt::len`] before it is touched, and errors carry no path (the caller
/// that opened the file names it). `source::Source` implements it over a read-only map or
/// positioned reads; tests may implement it over a slice.
pub trait ReadAt {
    /// Length of the file in bytes.
    fn len(&self) -> u64;

    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes at `offset`: borrowed from the file's map when it has one, else read into
    /// `scratch` (grown as needed, never shrunk) and borrowed from there. A range past the end
    /// is an out-of-bounds [`Corrupt`] naming `structure`.
    fn read_at<'a>(
        &'a self,
        offset: u64,
        len: usize,
        scratch: &'a mut Vec<u8>,
        structure: &Structure,
    ) -> Result<&'a [u8], ReadError>;

    /// Copies `buf.len()` bytes at `offset` into `buf`, with a positioned read even when the
    /// file is mapped: for metadata read once (a grain directory), whose pages would otherwise
    /// stay in memory for the whole run.
    fn read_once(
        &self,
        offset: u64,
        buf: &mut [u8],
        structure: &Structure,
    ) -> Result<(), ReadError>;

    /// The run of the file that starts at `offset`: whether it holds data or is a hole of a
    /// sparse host file, and where the run ends (at most `end`). Files without holes are all
    /// data.
    fn data_run(&self, _offset: u64, end: u64) -> (bool, u64) {
        (true, end)
    }

    /// Whether the `len` bytes at `offset` are known to be a hole of a sparse host file
    /// (they read as zeros without being read), from a map of the file's data kept since
    /// the first question. False when not known, and for files without holes.
    fn is_hole(&self, _offset: u64, _len: u64) -> bool {
        false
    }

    /// Checks that `len` bytes at `offset` lie inside the file.
    fn check_range(&self, offset: u64, len: u64, structure: &Structure) -> Result<(), Corrupt> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(out_of_file(offset, len, self.len(), structure)),
        }
    }
}

/// Bytes in memory read as a file: what tests of `format/` parse.
impl ReadAt for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at<'a>(
        &'a self,
        offset: u64,
        len: usize,
        _scratch: &'a mut Vec<u8>,
        structure: &Structure,
    ) -> Result<&'a [u8], ReadError> {
        ReadAt::check_range(self, offset, len as u64, structure)?;
        // In range: checked against the length just above.
        Ok(&self[offset as usize..offset as usize + len])
    }

    fn read_once(
        &self,
        offset: u64,
        buf: &mut [u8],
        structure: &Structure,
    ) -> Result<(), ReadError> {
        let mut none = Vec::new();
        buf.copy_from_slice(ReadAt::read_at(
            self,
            offset,
            buf.len(),
            &mut none,
            structure,
        )?);
        Ok(())
    }
}

/// The error for `len` bytes at `offset` of a file of `file_len` bytes that reach past its end.
pub fn out_of_file(offset: u64, len: u64, file_len: u64, structure: &Structure) -> Corrupt {
    Corrupt::new(
        structure.clone(),
        offset,
        CorruptKind::OutOfBounds {
            offset,
            len,
            file_len,
        },
    )
}

/// Whether every byte is zero, on wide words.
#[inline]
pub fn is_zero(data: &[u8]) -> bool {
    let mut chunks = data.chunks_exact(64);
    for c in &mut chunks {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            acc |= u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        }
        if acc != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b == 0)
}

/// A borrowed slice of a file: its bytes, where they start in the file, and what they hold.
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a> {
    data: &'a [u8],
    base: u64,
    file_len: u64,
    structure: &'a Structure,
}

impl<'a> Bytes<'a> {
    /// Wraps `data`, which starts at absolute offset `base` of a file of `file_len` bytes.
    pub fn new(data: &'a [u8], base: u64, file_len: u64, structure: &'a Structure) -> Self {
        Bytes {
            data,
            base,
            file_len,
            structure,
        }
    }

    /// Number of bytes held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The raw bytes.
    pub fn as_slice(&self) -> &'a [u8] {
        self.data
    }

    /// Absolute file offset of byte `rel`.
    pub fn abs(&self, rel: usize) -> u64 {
        self.base.saturating_add(rel as u64)
    }

    fn out_of_bounds(&self, rel: usize, len: usize) -> Corrupt {
        Corrupt::new(
            self.structure.clone(),
            self.base,
            CorruptKind::OutOfBounds {
                offset: self.abs(rel),
                len: len as u64,
                file_len: self.file_len,
            },
        )
    }

    /// `len` bytes at relative offset `rel`, or an out-of-bounds error.
    pub fn slice_at(&self, rel: usize, len: usize) -> Result<&'a [u8], Corrupt> {
        rel.checked_add(len)
            .and_then(|end| self.data.get(rel..end))
            .ok_or_else(|| self.out_of_bounds(rel, len))
    }

    /// A fixed-size array at `rel`.
    pub fn array_at<const N: usize>(&self, rel: usize) -> Result<[u8; N], Corrupt> {
        let s = self.slice_at(rel, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// Byte at `rel`.
    pub fn u8_at(&self, rel: usize) -> Result<u8, Corrupt> {
        Ok(self.slice_at(rel, 1)?[0])
    }

    /// Little-endian u16 at `rel`.
    pub fn u16_at(&self, rel: usize) -> Result<u16, Corrupt> {
        Ok(LittleEndian::read_u16(self.slice_at(rel, 2)?))
    }

    /// Little-endian u32 at `rel`.
    pub fn u32_at(&self, rel: usize) -> Result<u32, Corrupt> {
        Ok(LittleEndian::read_u32(self.slice_at(rel, 4)?))
    }

    /// Little-endian u64 at `rel`.
    pub fn u64_at(&self, rel: usize) -> Result<u64, Corrupt> {
        Ok(LittleEndian::read_u64(self.slice_at(rel, 8)?))
    }

    /// A sub-range holding `count` items of `size` bytes at `rel`; the multiplication is
    /// checked and the end proven inside the data before anything is allocated by the caller.
    pub fn array_region(&self, rel: usize, count: u64, size: usize) -> Result<Bytes<'a>, Corrupt> {
        let total = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(size))
            .ok_or_else(|| self.out_of_bounds(rel, usize::MAX))?;
        let s = self.slice_at(rel, total)?;
        Ok(Bytes::new(s, self.abs(rel), self.file_len, self.structure))
    }
}

/// Little-endian u32 at index `i` of a slice of u32s, `None` past its end.
#[inline]
pub fn le_u32(data: &[u8], i: usize) -> Option<u32> {
    let start = i.checked_mul(4)?;
    data.get(start..start.checked_add(4)?)
        .map(LittleEndian::read_u32)
}

/// Little-endian u64 at index `i` of a slice of u64s, `None` past its end.
#[inline]
pub fn le_u64(data: &[u8], i: usize) -> Option<u64> {
    let start = i.checked_mul(8)?;
    data.get(start..start.checked_add(8)?)
        .map(LittleEndian::read_u64)
}

/// Writes `v` little-endian into `out[..4]` (used by tests and generators of headers).
pub fn put_u32(out: &mut [u8], v: u32) {
    if let Some(s) = out.get_mut(..4) {
        LittleEndian::write_u32(s, v);
    }
}

/// Writes `v` little-endian into `out[..8]`.
pub fn put_u64(out: &mut [u8], v: u64) {
    if let Some(s) = out.get_mut(..8) {
        LittleEndian::write_u64(s, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_are_errors_with_absolute_offsets() {
        let s = Structure::KdmvHeader;
        let data = [1u8, 0, 0, 0, 2];
        let b = Bytes::new(&data, 0x200, 0x205, &s);
        assert_eq!(b.u32_at(0).unwrap(), 1);
        let e = b.u32_at(2).unwrap_err();
        assert_eq!(
            e.kind,
            CorruptKind::OutOfBounds {
                offset: 0x202,
                len: 4,
                file_len: 0x205
            }
        );
        assert!(b.slice_at(usize::MAX, 2).is_err());
        assert!(b.array_region(0, u64::MAX, 4).is_err());
        assert_eq!(b.array_region(0, 1, 4).unwrap().len(), 4);
    }

    #[test]
    fn zero_detection_is_exact_at_every_position() {
        let mut buf = vec![0u8; 4096 + 17];
        assert!(is_zero(&buf));
        for i in [0, 7, 63, 64, 4095, 4096 + 16] {
            buf[i] = 1;
            assert!(!is_zero(&buf), "byte {i}");
            buf[i] = 0;
        }
        assert!(is_zero(&[]));
    }

    #[test]
    fn le_helpers_stop_at_the_end() {
        let d = [1, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(le_u32(&d, 1), Some(2));
        assert_eq!(le_u32(&d, 2), None);
        assert_eq!(le_u64(&d, 0), Some(0x2_0000_0001));
        assert_eq!(le_u64(&d, usize::MAX), None);
    }
}
