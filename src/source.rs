//! Read-only access to one input file: a read-only memory map, or positioned reads.
//!
//! This is the only file with `unsafe` code. Inputs are opened with [`File::open`] (read-only)
//! and mapped with memmap2's read-only [`Mmap`]; never a writable map, never a writable open.
//! Every range is checked against the length seen at open before it is touched, so a corrupt
//! offset cannot fault. A file truncated by someone else *during* a scan can still raise
//! SIGBUS on a mapped page: [`Source::check_unchanged`] re-stats the file after a scan, and
//! `--no-mmap` (positioned reads) turns such a truncation into a clean I/O error.
//!
//! [`Source`] implements [`ReadAt`], the one thing `format/` asks of a file; its own methods
//! are the same reads with the file's path attached to every error.
//!
//! Block devices (a physical-disk descriptor's `FLAT "/dev/sdb"` extent, a loop device
//! holding an image) report a size of 0 in `stat`: their length is the device's size, found by
//! seeking to the end, and they are read with positioned reads, never mapped.
//!
//! A regular file also knows where it holds data ([`Source::data_runs`]): a sparse host file's
//! holes (a VMFS flat base copied off a datastore is mostly holes) read as zeros, so callers
//! that only need to know "zero or not" skip them without touching a page.

use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use memmap2::Mmap;

use crate::bytes::{ReadAt, out_of_file};
use crate::error::{Error, ReadError, Result, Structure};

/// How input files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Memory-map each file read-only (falls back to reads when a map fails).
    #[default]
    Mmap,
    /// Positioned reads (`pread`) only.
    Read,
}

#[derive(Debug)]
enum Backing {
    Mapped(Mmap),
    Reads,
    Memory(Vec<u8>),
}

/// One open input file.
#[derive(Debug)]
pub struct Source {
    path: PathBuf,
    file: Option<File>,
    len: u64,
    modified: Option<SystemTime>,
    device: bool,
    /// A regular file: the only kind whose holes are asked for.
    regular: bool,
    /// Where the file holds data, found on first use ([`Source::data_runs`]).
    data: OnceLock<DataRuns>,
    backing: Backing,
}

impl Source {
    /// Opens `path` read-only and, in [`ReadMode::Mmap`], maps it read-only.
    pub fn open(path: &Path, mode: ReadMode) -> Result<Source> {
        let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
        if meta.is_dir() {
            return Err(Error::io(
                path,
                "open",
                std::io::Error::other("is a directory, expected a VMDK file"),
            ));
        }
        let len = device_len(&file, &meta).map_err(|e| Error::io(path, "measure", e))?;
        let budgeted = mode == ReadMode::Mmap && meta.is_file() && len > 0 && reserve_map(len);
        let backing = if budgeted {
            // SAFETY: the map is read-only and the file was opened read-only, so we never write
            // through it. The contract memmap2 asks us to uphold is that nobody truncates or
            // modifies the file while it is mapped. We cannot enforce that for files on a
            // datastore copy; a truncation during a scan would raise SIGBUS. We check every
            // range against `len` before reading, re-stat the file after the scan
            // (`check_unchanged`), and offer `--no-mmap` for files that may change.
            #[allow(unsafe_code)]
            match unsafe { Mmap::map(&file) } {
                Ok(map) => Backing::Mapped(map),
                // A failed map is not an error: positioned reads give identical results.
                Err(_) => {
                    release_map(len);
                    Backing::Reads
                }
            }
        } else {
            Backing::Reads
        };
        Ok(Source {
            path: path.to_path_buf(),
            file: Some(file),
            len,
            modified: meta.modified().ok(),
            device: {
                use std::os::unix::fs::FileTypeExt;
                meta.file_type().is_block_device()
            },
            regular: meta.is_file(),
            data: OnceLock::new(),
            backing,
        })
    }

    /// A file held in memory under a made-up path: for tests and fuzzing, where the whole
    /// chain comes from one buffer.
    pub fn from_bytes(path: &Path, data: Vec<u8>) -> Source {
        Source {
            path: path.to_path_buf(),
            file: None,
            len: data.len() as u64,
            modified: None,
            device: false,
            regular: false,
            data: OnceLock::new(),
            backing: Backing::Memory(data),
        }
    }

    /// The path the file was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the file in bytes, as seen at open.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the file is memory-mapped.
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Mapped(_))
    }

    /// Checks that `len` bytes at `offset` lie inside the file.
    pub fn check_range(&self, offset: u64, len: u64, structure: &Structure) -> Result<()> {
        ReadAt::check_range(self, offset, len, structure).map_err(|c| self.named(c.into()))
    }

    /// `e` with this file's path.
    #[cold]
    fn named(&self, e: ReadError) -> Error {
        e.in_file(&self.path)
    }

    /// `len` bytes at `offset`: borrowed from the map, or read into an owned buffer. The
    /// length is checked against the file before any buffer is allocated.
    pub fn bytes(&self, offset: u64, len: u64, structure: &Structure) -> Result<Cow<'_, [u8]>> {
        self.check_range(offset, len, structure)?;
        match &self.backing {
            Backing::Mapped(map) => Ok(Cow::Borrowed(mapped(map, offset, len))),
            Backing::Memory(data) => Ok(Cow::Borrowed(mapped(data, offset, len))),
            Backing::Reads => {
                let n = usize::try_from(len).map_err(|_| {
                    self.named(out_of_file(offset, len, self.len, structure).into())
                })?;
                let mut buf = Vec::new();
                grow(&mut buf, n, &self.path)?;
                self.pread(offset, &mut buf).map_err(|e| self.named(e))?;
                Ok(Cow::Owned(buf))
            }
        }
    }

    /// The hot-path read: `len` bytes at `offset`, borrowed from the map, or read into
    /// `scratch` (grown as needed, never shrunk) and borrowed from there. [`ReadAt::read_at`]
    /// without the path.
    #[inline]
    pub fn read_at<'a>(
        &'a self,
        offset: u64,
        len: usize,
        scratch: &'a mut Vec<u8>,
        structure: &Structure,
    ) -> Result<&'a [u8]> {
        match ReadAt::read_at(self, offset, len, scratch, structure) {
            Ok(b) => Ok(b),
            Err(e) => Err(self.named(e)),
        }
    }

    /// Reads `buf.len()` bytes at `offset` into `buf` (a copy, also when mapped).
    pub fn read_into(&self, offset: u64, buf: &mut [u8], structure: &Structure) -> Result<()> {
        self.check_range(offset, buf.len() as u64, structure)?;
        match &self.backing {
            Backing::Mapped(map) => {
                buf.copy_from_slice(mapped(map, offset, buf.len() as u64));
                Ok(())
            }
            Backing::Memory(data) => {
                buf.copy_from_slice(mapped(data, offset, buf.len() as u64));
                Ok(())
            }
            Backing::Reads => self.pread(offset, buf).map_err(|e| self.named(e)),
        }
    }

    /// Reads `buf.len()` bytes at `offset` with a positioned read even when the file is
    /// mapped: for metadata read once (a grain directory), whose pages would otherwise stay
    /// in the process's resident set for the whole run. [`ReadAt::read_once`] with the path.
    pub fn read_once(&self, offset: u64, buf: &mut [u8], structure: &Structure) -> Result<()> {
        ReadAt::read_once(self, offset, buf, structure).map_err(|e| self.named(e))
    }

    fn pread(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), ReadError> {
        match &self.file {
            Some(file) => file
                .read_exact_at(buf, offset)
                .map_err(|source| ReadError::Io { op: "read", source }),
            None => Err(ReadError::Io {
                op: "read",
                source: std::io::Error::other("in-memory source has no file"),
            }),
        }
    }

    /// The run of the file that starts at `offset`: whether it holds data or is a hole of a
    /// sparse host file, and where the run ends (at most `end`). qemu reports holes of flat
    /// extents as zero, so `map` needs this to mean what `qemu-img map` means. Files without
    /// hole support (and in-memory sources) are all data.
    pub fn data_run(&self, offset: u64, end: u64) -> (bool, u64) {
        let Some(file) = &self.file else {
            return (true, end);
        };
        if libc::off_t::try_from(end).is_err() {
            return (true, end);
        }
        let data = match seek(file, offset, Whence::Data) {
            Ok(data) => data,
            // ENXIO: no data after `offset` (a hole to the end); anything else: no support.
            Err(e) => return (e.raw_os_error() != Some(libc::ENXIO), end),
        };
        if data > offset {
            return (false, data.min(end));
        }
        match seek(file, offset, Whence::Hole) {
            Ok(hole) => (true, hole.min(end).max(offset + 1)),
            Err(_) => (true, end),
        }
    }

    /// Where the file holds data, asked of the file system once (on first use, by whichever
    /// thread comes first) and kept: see [`DataRuns`]. Files that are not regular files
    /// (block devices) and in-memory sources have no known holes.
    pub fn data_runs(&self) -> &DataRuns {
        self.data.get_or_init(|| match &self.file {
            Some(file) if self.regular => {
                DataRuns::find(self.len, MAX_DATA_RUNS, &mut |o, w| seek(file, o, w))
            }
            _ => DataRuns::default(),
        })
    }

    /// Whether the `len` bytes at `offset` are all a hole of the file: they read as zeros,
    /// and nothing needs reading to know it. False whenever it is not known (see
    /// [`DataRuns`]), and for an empty range.
    #[inline]
    pub fn is_hole(&self, offset: u64, len: u64) -> bool {
        len > 0 && self.data_runs().is_hole(offset, len)
    }

    /// Whether any of three pages of `[offset, offset + len)` (first, middle, last) is out of
    /// memory: a cached range costs three page-cache lookups to recognise, far less than a
    /// hint that walks all its pages.
    pub fn looks_cold(&self, offset: u64, len: u64) -> bool {
        let end = offset.saturating_add(len).min(self.len);
        if offset >= end {
            return false;
        }
        let mid = offset + (end - offset) / 2;
        ![offset, mid, end - 1].into_iter().all(|o| self.resident(o))
    }

    /// Asks the kernel to start reading `[offset, offset + len)` now. A cold scan then finds
    /// its pages arriving in large asynchronous reads instead of faulting them in one at a
    /// time. Only a hint: errors are ignored. Callers probe with [`Source::looks_cold`]
    /// first, since on hot files the hint still walks every page of the range.
    pub fn will_need(&self, offset: u64, len: u64) {
        let end = offset.saturating_add(len).min(self.len);
        if offset >= end {
            return;
        }
        let (Ok(off), Ok(n)) = (usize::try_from(offset), usize::try_from(end - offset)) else {
            return;
        };
        match &self.backing {
            Backing::Mapped(map) => {
                let _ = map.advise_range(memmap2::Advice::WillNeed, off, n);
            }
            Backing::Reads => {
                use std::os::fd::AsRawFd;
                let Some(file) = &self.file else { return };
                let (Ok(o), Ok(l)) = (libc::off_t::try_from(off), libc::off_t::try_from(n)) else {
                    return;
                };
                // SAFETY: posix_fadvise only reads its integer arguments and the descriptor,
                // which we own; WILLNEED never changes file contents.
                #[allow(unsafe_code)]
                let _ = unsafe {
                    libc::posix_fadvise(file.as_raw_fd(), o, l, libc::POSIX_FADV_WILLNEED)
                };
            }
            Backing::Memory(_) => {}
        }
    }

    /// Whether the page holding byte `offset` is in memory (true when unknown, so that callers
    /// skip their hints rather than issue useless ones).
    fn resident(&self, offset: u64) -> bool {
        const PAGE: u64 = 4096;
        match &self.backing {
            Backing::Mapped(map) => {
                let Ok(at) = usize::try_from(offset - offset % PAGE) else {
                    return true;
                };
                if at >= map.len() {
                    return true;
                }
                let mut vec = [0u8; 1];
                // SAFETY: the address is page-aligned (maps start on a page) and inside our
                // live map; mincore writes one byte per page of the 1-byte range into `vec`.
                #[allow(unsafe_code)]
                let r = unsafe {
                    libc::mincore(
                        map.as_ptr().add(at) as *mut libc::c_void,
                        1,
                        vec.as_mut_ptr(),
                    )
                };
                r != 0 || vec[0] & 1 == 1
            }
            Backing::Reads => {
                use std::os::fd::AsRawFd;
                let Some(file) = &self.file else { return true };
                let Ok(off) = libc::off_t::try_from(offset) else {
                    return true;
                };
                let mut byte = [0u8; 1];
                let iov = libc::iovec {
                    iov_base: byte.as_mut_ptr() as *mut libc::c_void,
                    iov_len: 1,
                };
                // SAFETY: one iovec over a live 1-byte buffer; RWF_NOWAIT makes the read fail
                // with EAGAIN instead of going to the disk when the page is not cached.
                #[allow(unsafe_code)]
                let r = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, off, libc::RWF_NOWAIT) };
                r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN)
            }
            Backing::Memory(_) => true,
        }
    }

    /// What identifies the open file's content for the layer cache (`fstat` of the descriptor
    /// read from, not of the path): device, inode, length, modification and change times in
    /// nanoseconds. `None` for in-memory sources and anything but a regular file, whose
    /// content can change under the same metadata.
    pub fn identity(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let m = self.file.as_ref()?.metadata().ok()?;
        m.is_file().then(|| {
            format!(
                "dev {} ino {} len {} mtime {}.{:09} ctime {}.{:09}",
                m.dev(),
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec()
            )
        })
    }

    /// Whether the file is a block device (read with its device size; never cached, since a
    /// device's content can change under the same metadata).
    pub fn is_device(&self) -> bool {
        self.device
    }

    /// Re-stats the file and fails if its length or modification time changed since open.
    pub fn check_unchanged(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let meta = std::fs::metadata(&self.path).map_err(|e| Error::io(&self.path, "stat", e))?;
        let now = device_len(file, &meta).map_err(|e| Error::io(&self.path, "measure", e))?;
        if now != self.len {
            return Err(Error::Changed {
                path: self.path.clone(),
                what: format!("length {} became {now}", self.len),
            });
        }
        if meta.modified().ok() != self.modified {
            return Err(Error::Changed {
                path: self.path.clone(),
                what: "modification time changed".to_string(),
            });
        }
        Ok(())
    }
}

/// `format/` reads every extent through this: the same checked ranges as the methods of
/// [`Source`], with errors that name no path (the layer that opened the file names it).
impl ReadAt for Source {
    fn len(&self) -> u64 {
        self.len
    }

    #[inline]
    fn read_at<'a>(
        &'a self,
        offset: u64,
        len: usize,
        scratch: &'a mut Vec<u8>,
        structure: &Structure,
    ) -> std::result::Result<&'a [u8], ReadError> {
        ReadAt::check_range(self, offset, len as u64, structure)?;
        match &self.backing {
            Backing::Mapped(map) => Ok(mapped(map, offset, len as u64)),
            Backing::Memory(data) => Ok(mapped(data, offset, len as u64)),
            Backing::Reads => {
                try_grow(scratch, len)?;
                let buf = &mut scratch[..len];
                self.pread(offset, buf)?;
                Ok(buf)
            }
        }
    }

    fn read_once(
        &self,
        offset: u64,
        buf: &mut [u8],
        structure: &Structure,
    ) -> std::result::Result<(), ReadError> {
        ReadAt::check_range(self, offset, buf.len() as u64, structure)?;
        match &self.backing {
            Backing::Memory(data) => {
                buf.copy_from_slice(mapped(data, offset, buf.len() as u64));
                Ok(())
            }
            Backing::Mapped(_) | Backing::Reads => self.pread(offset, buf),
        }
    }

    #[inline]
    fn is_hole(&self, offset: u64, len: u64) -> bool {
        Source::is_hole(self, offset, len)
    }

    fn data_run(&self, offset: u64, end: u64) -> (bool, u64) {
        Source::data_run(self, offset, end)
    }
}

/// Most data runs kept per file: 16 bytes each, so at most 1 MiB a file, and at most twice
/// as many `lseek` calls to find them. A file with more (a flat base written in scattered
/// 4 KiB pieces) has its holes known up to the last run kept, and is read past it.
pub const MAX_DATA_RUNS: usize = 1 << 16;

/// What `lseek` is asked to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whence {
    /// `SEEK_DATA`: the first byte of data at or after an offset.
    Data,
    /// `SEEK_HOLE`: the first byte of a hole at or after an offset (the end of the file
    /// counts as a hole).
    Hole,
}

/// `lseek(SEEK_DATA or SEEK_HOLE)` on `file`: the offset found, or the error (`ENXIO`: no
/// data, or no hole, at or after `offset`; `EINVAL`: a file system without support).
fn seek(file: &File, offset: u64, whence: Whence) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(offset)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let whence = match whence {
        Whence::Data => libc::SEEK_DATA,
        Whence::Hole => libc::SEEK_HOLE,
    };
    // SAFETY: lseek on a file descriptor we own; it only moves this descriptor's offset,
    // which no other code uses (every read is positioned).
    #[allow(unsafe_code)]
    let r = unsafe { libc::lseek(file.as_raw_fd(), off, whence) };
    u64::try_from(r).map_err(|_| std::io::Error::last_os_error())
}

/// Where a file holds data, as the file system says (`SEEK_DATA`/`SEEK_HOLE`): sorted,
/// disjoint `[start, end)` runs of data. The rest of `[0, known)` is holes, which read as
/// zeros; from `known` on nothing is known, and everything counts as data (read to find out).
///
/// A file system without `SEEK_DATA` support (`EINVAL`) reports nothing (`known` 0), one that
/// supports it only in name reports the whole file as one run of data, and a file with more
/// than [`MAX_DATA_RUNS`] runs is known up to the end of its last run kept: each answer is
/// safe, because a range counts as a hole only where the file system said so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataRuns {
    runs: Vec<(u64, u64)>,
    known: u64,
}

impl DataRuns {
    /// Asks `seek` (an `lseek` with `SEEK_DATA` or `SEEK_HOLE`) for the data runs of a file
    /// of `len` bytes, keeping at most `max_runs` of them.
    pub fn find(
        len: u64,
        max_runs: usize,
        seek: &mut dyn FnMut(u64, Whence) -> std::io::Result<u64>,
    ) -> DataRuns {
        let mut runs = Vec::new();
        let mut pos = 0;
        while pos < len {
            if runs.len() == max_runs {
                return DataRuns { runs, known: pos };
            }
            let start = match seek(pos, Whence::Data) {
                Ok(d) if d >= len => break,
                // Data before `pos` after a hole was reported: the file changed under us.
                Ok(d) if d < pos => return DataRuns { runs, known: pos },
                Ok(d) => d,
                // ENXIO: nothing but holes from `pos` to the end.
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
                Err(_) => return DataRuns { runs, known: pos },
            };
            let end = match seek(start, Whence::Hole) {
                Ok(h) if h > start => h.min(len),
                // No hole found where one must be (the end of the file is one): read the rest.
                _ => return DataRuns { runs, known: start },
            };
            runs.push((start, end));
            pos = end;
        }
        DataRuns { runs, known: len }
    }

    /// The runs of data, in order.
    pub fn runs(&self) -> &[(u64, u64)] {
        &self.runs
    }

    /// The end of the part of the file whose holes are known.
    pub fn known(&self) -> u64 {
        self.known
    }

    /// From `offset`: whether the file is a hole there (false where unknown), and where that
    /// hole or run of data ends. `is_hole(offset, len)` is exactly `span_at(offset)` being a
    /// hole at least `len` bytes long.
    #[inline]
    pub fn span_at(&self, offset: u64) -> (bool, u64) {
        if offset >= self.known {
            return (false, u64::MAX);
        }
        let i = self.runs.partition_point(|r| r.1 <= offset);
        match self.runs.get(i) {
            Some(r) if r.0 <= offset => (false, r.1),
            Some(r) => (true, r.0),
            None => (true, self.known),
        }
    }

    /// Whether `[offset, offset + len)` lies in the known part and meets no run of data.
    #[inline]
    pub fn is_hole(&self, offset: u64, len: u64) -> bool {
        let Some(end) = offset.checked_add(len) else {
            return false;
        };
        if end > self.known {
            return false;
        }
        // The first run that ends after `offset` is the only one that can meet the range.
        let i = self.runs.partition_point(|r| r.1 <= offset);
        self.runs.get(i).is_none_or(|r| r.0 >= end)
    }
}

/// Grows `buf` to at least `len` bytes (zero-filled), or fails with an out-of-memory I/O error
/// naming `path` when the allocation cannot be made: buffer sizes come from the input (a
/// grain of up to 1 GiB), and a refused allocation must be an error, never an abort.
pub fn grow(buf: &mut Vec<u8>, len: usize, path: &Path) -> Result<()> {
    try_grow(buf, len).map_err(|e| e.in_file(path))
}

/// [`grow`] without a path.
pub fn try_grow(buf: &mut Vec<u8>, len: usize) -> std::result::Result<(), ReadError> {
    if buf.len() < len {
        buf.try_reserve(len - buf.len()).map_err(|_| {
            ReadError::out_of_memory(
                "allocate a buffer",
                format!("{len} bytes cannot be allocated (an address-space limit?)"),
            )
        })?;
        buf.resize(len, 0);
    }
    Ok(())
}

/// Whether a map of `len` more bytes fits the address-space budget: under a limit
/// (`ulimit -v`), maps may take at most half of it, so that the heap always keeps the other
/// half (a map counts in full against the limit, however little of it is read). Without a
/// limit every map fits. Returns whether `len` was added to the mapped total.
fn reserve_map(len: u64) -> bool {
    use std::sync::atomic::Ordering;
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct we pass, which lives on our stack.
    #[allow(unsafe_code)]
    let r = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) };
    if r != 0 || rl.rlim_cur == libc::RLIM_INFINITY {
        return true;
    }
    let budget = rl.rlim_cur / 2;
    MAPPED
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
            m.checked_add(len).filter(|&t| t <= budget)
        })
        .is_ok()
}

/// Gives back what [`reserve_map`] counted (a no-op without a limit: the total only counts
/// under one, and never goes below zero).
fn release_map(len: u64) {
    let _ = MAPPED.fetch_update(
        std::sync::atomic::Ordering::SeqCst,
        std::sync::atomic::Ordering::SeqCst,
        |m| Some(m.saturating_sub(len)),
    );
}

/// Bytes mapped by live sources when an address-space limit is in force.
static MAPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The length of an open file: its size for regular files, and for a block device (whose
/// `st_size` is 0) the device's size, found by seeking to its end (what `BLKGETSIZE64`
/// reports, without an ioctl). Every read is positioned, so the descriptor's offset is unused.
fn device_len(file: &File, meta: &std::fs::Metadata) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileTypeExt;
    if meta.file_type().is_block_device() {
        let mut f = file;
        return f.seek(SeekFrom::End(0));
    }
    Ok(meta.len())
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Backing::Mapped(map) = &self.backing {
            release_map(map.len() as u64);
        }
    }
}

/// The mapped bytes of a range already checked against the file length.
#[inline]
fn mapped(map: &[u8], offset: u64, len: u64) -> &[u8] {
    // OK to index: callers checked offset + len <= file length == map (or buffer) length,
    // and that length fits in usize because the file was mapped (or is held in memory).
    let start = offset as usize;
    &map[start..start + len as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(content: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        (dir, path)
    }

    #[test]
    fn mapped_and_read_modes_agree() {
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let (_d, path) = temp_file(&content);
        let s = Structure::ExtentData;
        for mode in [ReadMode::Mmap, ReadMode::Read] {
            let src = Source::open(&path, mode).unwrap();
            assert_eq!(src.is_mapped(), mode == ReadMode::Mmap);
            let mut scratch = Vec::new();
            assert_eq!(
                src.read_at(100, 50, &mut scratch, &s).unwrap(),
                &content[100..150]
            );
            assert_eq!(&*src.bytes(9000, 1000, &s).unwrap(), &content[9000..]);
            let err = src.bytes(9000, 1001, &s).unwrap_err().to_string();
            assert!(err.contains("past the end of the file"), "{err}");
            assert!(src.read_at(u64::MAX, 2, &mut scratch, &s).is_err());
            src.check_unchanged().unwrap();
        }
    }

    #[test]
    fn holes_of_a_sparse_file_are_known_and_data_never_is_a_hole() {
        use std::os::unix::fs::FileExt;
        const MIB: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.bin");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(1024 * MIB).unwrap();
        // Data at the start, in the middle (unaligned), and in the last page.
        let writes = [
            (0, 4096),
            (300 * MIB + 1000, 10_000),
            (1024 * MIB - 4096, 4096),
        ];
        for (at, n) in writes {
            f.write_all_at(&vec![0xa5; n], at).unwrap();
        }
        drop(f);
        for mode in [ReadMode::Mmap, ReadMode::Read] {
            let src = Source::open(&path, mode).unwrap();
            let runs = src.data_runs();
            assert_eq!(runs.known(), 1024 * MIB, "{runs:?}");
            // A file system may allocate more than was written, never less.
            for (at, n) in writes {
                assert!(
                    !src.is_hole(at, n as u64),
                    "{at:#x}+{n:#x} is data: {runs:?}"
                );
                for b in [at, at + n as u64 - 1] {
                    assert!(!src.is_hole(b, 1), "byte {b:#x} is data: {runs:?}");
                }
            }
            // Far from every write: holes (the file is 1 GiB with 18 KiB written).
            assert!(src.is_hole(100 * MIB, 64 * 1024), "{runs:?}");
            assert!(!src.is_hole(1, 0), "an empty range is not a hole");
            assert!(src.is_hole(512 * MIB, 500 * MIB), "{runs:?}");
            // Runs are sorted, disjoint, non-empty and inside the file.
            assert!(runs.runs().windows(2).all(|w| w[0].1 < w[1].0), "{runs:?}");
            assert!(runs.runs().iter().all(|r| r.0 < r.1 && r.1 <= 1024 * MIB));
            let data: u64 = runs.runs().iter().map(|r| r.1 - r.0).sum();
            assert!(
                data < 64 * MIB,
                "{data} bytes of data for 18 KiB written: {runs:?}"
            );
            // Past the end: not known, so never a hole (the read's own check fails it).
            assert!(!src.is_hole(1024 * MIB - 10, 20));
            assert!(!src.is_hole(u64::MAX, 2));
        }
        // In memory: nothing is a hole.
        let mem = Source::from_bytes(Path::new("m"), vec![0; 1 << 16]);
        assert!(!mem.is_hole(0, 4096));
        assert_eq!(mem.data_runs(), &DataRuns::default());
    }

    /// A file system as a list of data runs, answering `lseek` as Linux does.
    fn fake_seek(runs: &[(u64, u64)], len: u64) -> impl FnMut(u64, Whence) -> std::io::Result<u64> {
        let runs = runs.to_vec();
        move |o, w| {
            let enxio = || std::io::Error::from_raw_os_error(libc::ENXIO);
            if o >= len {
                return Err(enxio());
            }
            match w {
                Whence::Data => runs
                    .iter()
                    .find(|r| r.1 > o)
                    .map(|r| r.0.max(o))
                    .ok_or_else(enxio),
                Whence::Hole => Ok(runs.iter().find(|r| r.0 <= o && o < r.1).map_or(o, |r| r.1)),
            }
        }
    }

    #[test]
    fn data_runs_are_capped_and_the_rest_is_read() {
        // 10 runs of 4 KiB, one every 64 KiB.
        let runs: Vec<(u64, u64)> = (0..10).map(|i| (i * 65536, i * 65536 + 4096)).collect();
        let len = 10 * 65536;
        let all = DataRuns::find(len, 100, &mut fake_seek(&runs, len));
        assert_eq!(all.runs(), &runs[..]);
        assert_eq!(all.known(), len);
        assert!(all.is_hole(4096, 61440));
        assert!(!all.is_hole(4096, 61441));
        assert!(!all.is_hole(4095, 10));
        assert!(
            all.is_hole(9 * 65536 + 4096, 1000),
            "the tail after the last run"
        );
        // Three runs kept: holes are known up to the end of the third, the rest is data.
        let capped = DataRuns::find(len, 3, &mut fake_seek(&runs, len));
        assert_eq!(capped.runs(), &runs[..3]);
        assert_eq!(capped.known(), 2 * 65536 + 4096);
        assert!(capped.is_hole(65536 + 4096, 4096));
        assert!(
            !capped.is_hole(3 * 65536 + 8192, 4096),
            "past the cap: read"
        );
        // A file that is all hole, and one that is all data.
        let empty = DataRuns::find(len, 3, &mut fake_seek(&[], len));
        assert_eq!((empty.runs(), empty.known()), (&[][..], len));
        assert!(empty.is_hole(0, len));
        let full = DataRuns::find(len, 3, &mut fake_seek(&[(0, len)], len));
        assert!(!full.is_hole(len - 1, 1));
    }

    #[test]
    fn a_file_system_without_seek_data_has_no_known_holes() {
        let einval = |_: u64, _: Whence| Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        let none = DataRuns::find(1 << 30, 100, &mut { einval });
        assert_eq!(none, DataRuns::default());
        assert!(!none.is_hole(0, 4096));
        // SEEK_DATA works, SEEK_HOLE fails: the run found is read, from its start on.
        let mut half = |o: u64, w: Whence| match w {
            Whence::Data => Ok(o + 4096),
            Whence::Hole => Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
        };
        let h = DataRuns::find(1 << 20, 100, &mut half);
        assert_eq!(h.known(), 4096);
        assert!(h.is_hole(0, 4096));
        assert!(!h.is_hole(4096, 1));
        // A hole answer that does not move (a broken file system): read the rest.
        let mut stuck = |o: u64, _: Whence| Ok(o);
        let s = DataRuns::find(1 << 20, 100, &mut stuck);
        assert_eq!((s.runs(), s.known()), (&[][..], 0));
    }

    #[test]
    fn a_truncated_file_is_noticed() {
        let (_d, path) = temp_file(&[7u8; 4096]);
        let src = Source::open(&path, ReadMode::Read).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        assert!(matches!(src.check_unchanged(), Err(Error::Changed { .. })));
        let mut buf = [0u8; 512];
        // The length seen at open allows the read, the file no longer has the bytes: a clean
        // I/O error, not a signal.
        assert!(matches!(
            src.read_into(1024, &mut buf, &Structure::ExtentData),
            Err(Error::Io { .. })
        ));
    }
}
