//! Where the files of a chain come from: the file system, or a set of in-memory files.
//!
//! `Layer` and `Chain` open every file through a [`FileSet`], so that tests and fuzz targets
//! can hand a whole chain (descriptors, extents, parents) over as bytes, and reach the same
//! code the command line runs without touching the disk.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::source::{ReadMode, Source};

/// The files a chain is read from.
pub trait FileSet: Sync {
    /// Opens `path` read-only.
    fn open(&self, path: &Path, mode: ReadMode) -> Result<Source>;
    /// The one name of `path` that parent-loop detection compares; a missing file is an
    /// error of kind [`std::io::ErrorKind::NotFound`].
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
}

/// The real file system: what the command line reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct Disk;

impl FileSet for Disk {
    fn open(&self, path: &Path, mode: ReadMode) -> Result<Source> {
        use std::os::unix::fs::FileTypeExt;
        // Opening a FIFO blocks until a writer comes, forever on an image tree: a parent
        // hint or extent name must not be able to hang the run. Devices stay readable.
        if let Ok(meta) = std::fs::metadata(path) {
            let t = meta.file_type();
            if t.is_fifo() || t.is_socket() {
                return Err(Error::Unreadable {
                    path: path.to_path_buf(),
                    why: "a FIFO or socket, not a disk image".into(),
                });
            }
        }
        Source::open(path, mode)
    }

    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// Files held in memory under made-up paths. Paths are compared after lexical
/// normalization (`.` dropped, `..` applied), which is all a parent hint can do here.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl Memory {
    /// An empty set.
    pub fn new() -> Self {
        Memory::default()
    }

    /// Adds (or replaces) the file at `path`.
    pub fn insert(&mut self, path: impl AsRef<Path>, data: Vec<u8>) {
        self.files.insert(normalize(path.as_ref()), data);
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the set holds no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl FileSet for Memory {
    fn open(&self, path: &Path, _mode: ReadMode) -> Result<Source> {
        match self.files.get(&normalize(path)) {
            // A copy per open, as each open of a real file is its own view of it.
            Some(data) => Ok(Source::from_bytes(path, data.clone())),
            None => Err(Error::io(path, "open", not_found())),
        }
    }

    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        let p = normalize(path);
        if self.files.contains_key(&p) {
            Ok(p)
        } else {
            Err(not_found())
        }
    }

    fn exists(&self, path: &Path) -> bool {
        self.files.contains_key(&normalize(path))
    }
}

fn not_found() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, "no such in-memory file")
}

/// `path` with `.` components dropped and `..` applied to what precedes it.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                // Above the root (or above a relative start) there is nothing to remove.
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_files_are_found_by_normalized_path() {
        let mut m = Memory::new();
        m.insert("/vm/base.vmdk", vec![1, 2, 3]);
        assert!(m.exists(Path::new("/vm/./x/../base.vmdk")));
        assert_eq!(
            m.canonicalize(Path::new("/vm/sub/../base.vmdk")).unwrap(),
            Path::new("/vm/base.vmdk")
        );
        let src = m
            .open(Path::new("/vm/base.vmdk"), ReadMode::Read)
            .expect("open");
        assert_eq!(src.len(), 3);
        let e = m
            .open(Path::new("/vm/gone.vmdk"), ReadMode::Read)
            .unwrap_err();
        assert!(
            matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
        assert_eq!(
            m.canonicalize(Path::new("/vm/gone.vmdk"))
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
