//! A `Read + Seek` window onto the composed view of a chain: the guest disk as a layer (and
//! everything below it) shows it, from a byte offset (a partition's start) for a length.
//! Nothing is copied: reads go through [`ComposedView::fill`], with a few cached 64 KiB chunks
//! because file-system parsers read many small structures, and the `ntfs` crate re-reads
//! `$MFT`'s own record for every file record it opens (two places, read alternately).

use std::io::{self, Read, Seek, SeekFrom};

use crate::view::{ComposedView, Scratch};

/// Bytes read from the view at once and kept.
const CHUNK: u64 = 64 * 1024;
/// Chunks kept (least recently used goes first): 1 MiB.
const CACHED: usize = 16;

/// A window `[start, start + len)` of the composed disk of `layers[..upto]`.
#[derive(Debug)]
pub struct ViewReader<'c> {
    view: ComposedView<'c>,
    start: u64,
    len: u64,
    pos: u64,
    scratch: Scratch,
    /// (chunk start, bytes), most recently used last.
    cache: Vec<(u64, Vec<u8>)>,
}

impl<'c> ViewReader<'c> {
    /// The window over the disk that `view` shows.
    pub fn new(view: ComposedView<'c>, start: u64, len: u64) -> Self {
        ViewReader {
            view,
            start,
            len,
            pos: 0,
            scratch: Scratch::default(),
            cache: Vec::with_capacity(CACHED),
        }
    }

    /// The window's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads exactly `out.len()` bytes at window offset `at`; a short window is an error.
    pub fn read_exact_at(&mut self, at: u64, out: &mut [u8]) -> io::Result<()> {
        self.seek(SeekFrom::Start(at))?;
        self.read_exact(out)
    }

    /// Makes the chunk at `chunk_at` the last entry of the cache.
    fn load(&mut self, chunk_at: u64) -> io::Result<()> {
        if let Some(i) = self.cache.iter().position(|c| c.0 == chunk_at) {
            let hit = self.cache.remove(i);
            self.cache.push(hit);
            return Ok(());
        }
        let mut buf = if self.cache.len() == CACHED {
            self.cache.remove(0).1
        } else {
            vec![0; CHUNK as usize]
        };
        self.view
            .fill(chunk_at, &mut buf, &mut self.scratch)
            .map_err(io::Error::other)?;
        self.cache.push((chunk_at, buf));
        Ok(())
    }
}

impl Read for ViewReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let abs = self.start + self.pos;
        let chunk_at = abs - abs % CHUNK;
        self.load(chunk_at)?;
        let off = (abs - chunk_at) as usize;
        let n = buf
            .len()
            .min(CHUNK as usize - off)
            .min((self.len - self.pos).min(usize::MAX as u64) as usize);
        let chunk = &self.cache[self.cache.len() - 1].1;
        buf[..n].copy_from_slice(&chunk[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ViewReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        // Past the end is allowed (reads return 0), before the start is not.
        self.pos = new.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the window",
            )
        })?;
        Ok(self.pos)
    }
}
