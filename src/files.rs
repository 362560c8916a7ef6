//! Where the files of a chain come from: the file system, or a set of in-memory files.
//!
//! `Layer` and `Chain` open every file through a [`FileSet`], so that tests and fuzz targets
//! can hand a whole chain (descriptors, extents, parents) over as bytes, and reach the same
//! code the command line runs without touching the disk.
//!
//! [`PathRules`] say where names written on an ESXi host are on this machine: `--map
//! PREFIX=DIR` rewrites a name that begins with PREFIX, and the scan roots are where
//! `chain.rs` looks for a parent whose absolute hint does not exist here.

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

/// One `--map PREFIX=DIR`: names beginning with PREFIX are read under DIR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMap {
    /// The prefix as written on the host, `\` turned into `/`, without a trailing `/`.
    pub prefix: String,
    /// Where that prefix is on this machine.
    pub dir: PathBuf,
}

impl PathMap {
    /// Parses `PREFIX=DIR` (split at the first `=`). PREFIX must be absolute (`/...`, `X:/...`
    /// or `\\server\share`), as the names it rewrites are.
    pub fn parse(spec: &str) -> std::result::Result<PathMap, String> {
        let Some((prefix, dir)) = spec
            .split_once('=')
            .filter(|(p, d)| !p.is_empty() && !d.is_empty())
        else {
            return Err(format!(
                "{spec:?}: expected PREFIX=DIR, such as /vmfs/volumes/5f3a1c2e-8a7b9c0d-1e2f-001122334455=/mnt/ds1"
            ));
        };
        let prefix = normalize_name(prefix);
        if !is_absolute_name(&prefix) {
            return Err(format!(
                "{spec:?}: PREFIX {prefix:?} is not an absolute path; it is the start of the names written on the host, such as /vmfs/volumes/UUID"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        Ok(PathMap {
            // "/" alone maps every absolute name.
            prefix: if prefix.is_empty() { "/" } else { prefix }.to_string(),
            dir: PathBuf::from(dir),
        })
    }

    /// Where `name` (already normalized) is under this map, if it begins with the prefix at a
    /// path-component boundary. A rest that climbs with `..` is not mapped: it would leave DIR.
    fn apply(&self, name: &str) -> Option<PathBuf> {
        let rest = if self.prefix == "/" {
            name.strip_prefix('/')?
        } else {
            let rest = name.strip_prefix(self.prefix.as_str())?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            rest.trim_start_matches('/')
        };
        if rest.split('/').any(|c| c == "..") {
            return None;
        }
        Some(if rest.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(rest)
        })
    }
}

/// Where names written on the host (parent hints, extent names, .vmx disk names) are on this
/// machine: the `--map` rules, and the roots being scanned (`--lun` folders and `scan DIR`
/// arguments), where a missing absolute parent hint is looked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathRules {
    /// `--map PREFIX=DIR`, in command-line order.
    pub maps: Vec<PathMap>,
    /// Folders being scanned.
    pub roots: Vec<PathBuf>,
}

impl PathRules {
    /// Where `name` is by the `--map` rules: the longest matching prefix wins. `None` when no
    /// rule applies.
    pub fn map(&self, name: &str) -> Option<PathBuf> {
        let name = normalize_name(name);
        self.maps
            .iter()
            .filter_map(|m| m.apply(&name).map(|p| (m.prefix.len(), p)))
            .max_by_key(|(len, _)| *len)
            .map(|(_, p)| p)
    }
}

/// A name as written on a host, with Windows separators turned into `/`.
pub fn normalize_name(name: &str) -> String {
    name.replace('\\', "/")
}

/// Whether a (normalized) name is absolute on its host: `/...`, `X:/...` or `//server/...`.
pub fn is_absolute_name(name: &str) -> bool {
    let b = name.as_bytes();
    name.starts_with('/')
        || (b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_rewrite_prefixes_at_component_boundaries() {
        let uuid = "/vmfs/volumes/5f3a1c2e-8a7b9c0d-1e2f-001122334455";
        let rules = PathRules {
            maps: vec![
                PathMap::parse(&format!("{uuid}=/mnt/ds1")).unwrap(),
                PathMap::parse("/vmfs/volumes=/mnt/all").unwrap(),
            ],
            roots: Vec::new(),
        };
        assert_eq!(
            rules.map(&format!("{uuid}/replica-0a1b/replica-0a1b.vmdk")),
            Some(PathBuf::from("/mnt/ds1/replica-0a1b/replica-0a1b.vmdk")),
            "the longest prefix wins"
        );
        assert_eq!(
            rules.map("/vmfs/volumes/other/x.vmdk"),
            Some(PathBuf::from("/mnt/all/other/x.vmdk"))
        );
        assert_eq!(
            rules.map(&format!("{uuid}0/x.vmdk")),
            Some(PathBuf::from(format!("/mnt/all/{}0/x.vmdk", &uuid[14..])))
        );
        assert_eq!(rules.map("/elsewhere/x.vmdk"), None);
        assert_eq!(rules.map(&format!("{uuid}/../../etc/x.vmdk")), None);
        let win = PathRules {
            maps: vec![PathMap::parse("C:\\VMs=/mnt/c").unwrap()],
            roots: Vec::new(),
        };
        assert_eq!(
            win.map("C:\\VMs\\gold\\gold.vmdk"),
            Some(PathBuf::from("/mnt/c/gold/gold.vmdk"))
        );
        assert!(PathMap::parse("relative=/mnt").is_err());
        assert!(PathMap::parse("/vmfs/volumes/x").is_err());
        assert!(PathMap::parse("=/mnt").is_err());
    }

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
