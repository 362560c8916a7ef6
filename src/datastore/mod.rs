//! Finding the disks of a datastore: every chain in a directory tree (a datastore mount, or a
//! copy of one), without opening any chain yet.
//!
//! A file is a *layer* when it holds a descriptor: a text `.vmdk`, or a `KDMV` file with one
//! embedded. Everything else (`-flat`, `-delta`, `-sesparse`, `-s001` files) is extent data,
//! named by some descriptor. The *tops* are the layers that no other layer names, neither as
//! its parent nor as an extent: one per disk (a VM's disk with its snapshots, a linked clone
//! over its replica). Parents are resolved exactly as [`crate::chain`] does, from
//! `parentFileNameHint` relative to the child; they may live outside the tree (a replica on
//! another datastore). Extent data no layer names is listed, as forensics wants to know.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::descriptor::{self, MAX_DESCRIPTOR_BYTES};
use crate::format::{Magic, detect};
use crate::layer::resolve;
use crate::units::SECTOR;

/// Most files looked at in one tree: a bound against walking a whole file system by mistake.
pub const MAX_FILES: usize = 1_000_000;
/// Deepest directory level walked.
const MAX_DIR_DEPTH: usize = 32;

/// What a walk of one tree found.
#[derive(Debug, Default, Clone)]
pub struct Found {
    /// Top layers, one per disk, sorted.
    pub tops: Vec<PathBuf>,
    /// Extent data files that no descriptor in the tree names, sorted.
    pub unclaimed: Vec<PathBuf>,
    /// Files that could not be read at all (permissions), with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// What the first bytes of one `.vmdk` say.
enum Probe {
    /// A layer, with the files it names: parent and extents (resolved, maybe missing).
    Layer { names: Vec<PathBuf> },
    /// Extent data (or an unknown file).
    Data,
}

/// Walks `dir` and finds the disks in it.
pub fn discover(dir: &Path) -> Result<Found> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, "open folder", e))?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!("{}: not a folder", dir.display())));
    }
    let mut files = Vec::new();
    walk(dir, 0, &mut files)?;
    files.sort();

    let mut layers: Vec<PathBuf> = Vec::new();
    let mut data: Vec<PathBuf> = Vec::new();
    let mut named: HashSet<PathBuf> = HashSet::new();
    let mut found = Found::default();
    for f in files {
        let canonical = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
        match probe(&f) {
            Ok(Probe::Layer { names }) => {
                for n in names {
                    let n = std::fs::canonicalize(&n).unwrap_or(n);
                    // A monolithic file names itself as its extent; that does not hide it.
                    if n != canonical {
                        named.insert(n);
                    }
                }
                layers.push(canonical);
            }
            Ok(Probe::Data) => data.push(canonical),
            Err(why) => found.unreadable.push((f, why)),
        }
    }
    found.tops = layers.into_iter().filter(|l| !named.contains(l)).collect();
    found.unclaimed = data.into_iter().filter(|d| !named.contains(d)).collect();
    Ok(found)
}

/// Collects `.vmdk` files under `dir`; symbolic links are not followed (a datastore has none
/// of its own, and a link back up would loop).
fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if depth > MAX_DIR_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "list folder", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "list folder", e))?;
        let kind = entry
            .file_type()
            .map_err(|e| Error::io(&entry.path(), "stat", e))?;
        let path = entry.path();
        if kind.is_dir() {
            walk(&path, depth + 1, out)?;
        } else if kind.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("vmdk"))
        {
            if out.len() >= MAX_FILES {
                return Err(Error::Usage(format!(
                    "{}: more than {MAX_FILES} .vmdk files; give the datastore folder itself",
                    dir.display()
                )));
            }
            out.push(path);
        }
    }
    Ok(())
}

/// Reads the head of `path` (and an embedded descriptor) to tell layers from extent data.
/// A descriptor that does not parse is still a layer with no names: opening it as a chain
/// then reports what is wrong with it.
fn probe(path: &Path) -> std::result::Result<Probe, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    (&mut file)
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| e.to_string())?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let names_of = |text: &[u8]| -> Vec<PathBuf> {
        let Ok(d) = descriptor::parse_descriptor(text, 0) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = d
            .extents
            .iter()
            .filter_map(|e| e.file.as_deref())
            .map(|n| resolve(dir, n))
            .collect();
        if let Some(p) = d.parent() {
            names.push(resolve(dir, p));
        }
        names
    };
    match detect(&head) {
        Magic::Descriptor => {
            let len = file.metadata().map_err(|e| e.to_string())?.len();
            if len > MAX_DESCRIPTOR_BYTES {
                return Ok(Probe::Layer { names: Vec::new() });
            }
            let mut text = head;
            file.read_to_end(&mut text).map_err(|e| e.to_string())?;
            Ok(Probe::Layer {
                names: names_of(&text),
            })
        }
        Magic::Kdmv => {
            // descriptorOffset and descriptorSize, in sectors (FORMATS.md 2.1).
            let field = |at: usize| {
                head.get(at..at + 8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                    .unwrap_or(0)
            };
            let (offset, size) = (field(28), field(36));
            if offset == 0 || size == 0 {
                return Ok(Probe::Data);
            }
            let text = read_range(
                &mut file,
                offset.saturating_mul(SECTOR),
                size.saturating_mul(SECTOR).min(MAX_DESCRIPTOR_BYTES),
            )
            .unwrap_or_default();
            Ok(Probe::Layer {
                names: names_of(&text),
            })
        }
        Magic::Cowd | Magic::SeSparse | Magic::Unknown => Ok(Probe::Data),
    }
}

fn read_range(file: &mut std::fs::File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(create_type: &str, parent: Option<&str>, extent: &str) -> String {
        let mut s = format!(
            "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID={}\ncreateType=\"{create_type}\"\n",
            if parent.is_some() {
                "87654321"
            } else {
                "ffffffff"
            }
        );
        if let Some(p) = parent {
            s.push_str(&format!("parentFileNameHint=\"{p}\"\n"));
        }
        s.push_str(&format!("RW 8192 {extent}\n"));
        s
    }

    #[test]
    fn tops_are_the_layers_nobody_names() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("replica")).unwrap();
        std::fs::create_dir_all(root.join("vm1")).unwrap();
        std::fs::create_dir_all(root.join("vm2")).unwrap();
        let w = |p: &str, s: &str| std::fs::write(root.join(p), s).unwrap();
        w(
            "replica/base.vmdk",
            &descriptor("vmfs", None, "VMFS \"base-flat.vmdk\""),
        );
        w("replica/base-flat.vmdk", &"\0".repeat(4096));
        w(
            "vm1/vm1.vmdk",
            &descriptor(
                "vmfsSparse",
                Some("../replica/base.vmdk"),
                "VMFSSPARSE \"vm1-delta.vmdk\"",
            ),
        );
        w("vm1/vm1-delta.vmdk", "COWD");
        w(
            "vm1/vm1-000001.vmdk",
            &descriptor(
                "vmfsSparse",
                Some("vm1.vmdk"),
                "VMFSSPARSE \"vm1-000001-delta.vmdk\"",
            ),
        );
        w("vm1/vm1-000001-delta.vmdk", "COWD");
        w(
            "vm2/vm2.vmdk",
            &descriptor(
                "vmfsSparse",
                Some("../replica/base.vmdk"),
                "VMFSSPARSE \"vm2-delta.vmdk\"",
            ),
        );
        // vm2's delta is missing: still a top (its scan will fail and say so).
        w("vm2/orphan-flat.vmdk", &"\0".repeat(512));
        w("vm2/notes.txt", "not a disk");
        let f = discover(root).unwrap();
        let rel: Vec<String> = f
            .tops
            .iter()
            .map(|p| {
                p.strip_prefix(root.canonicalize().unwrap())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(rel, ["vm1/vm1-000001.vmdk", "vm2/vm2.vmdk"]);
        assert_eq!(f.unclaimed.len(), 1);
        assert!(f.unclaimed[0].ends_with("vm2/orphan-flat.vmdk"));
    }

    #[test]
    fn a_file_is_not_a_folder() {
        let t = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(discover(t.path()), Err(Error::Usage(_))));
    }
}
