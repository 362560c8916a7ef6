//! A disk's chain: the layer named on the command line and its parents, base first.
//!
//! Parents come only from `parentFileNameHint` (never from file-name habits such as
//! `-000001.vmdk`), resolved by [`resolve_name`]: `--map` first, then the hint itself (relative
//! to the child's directory), and for an absolute hint that does not exist here (an ESXi path
//! on a copied datastore) the fallbacks that [`resolve_name`] lists, each noted as a
//! `parent_remapped` warning. Loops are found on canonical paths, depth is capped, and a
//! parent whose CID is not the child's `parentCID` is a warning (an error under `--strict`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{ChainError, Error, Result, Warning};
use crate::files::{Disk, FileSet, PathRules, is_absolute_name, normalize_name};
use crate::format::descriptor::NO_PARENT_CID;
use crate::layer::{Layer, resolve};
use crate::source::ReadMode;

/// Default cap on the number of layers.
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// How to open a chain.
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// Map files or read them.
    pub mode: ReadMode,
    /// Most layers allowed.
    pub max_depth: usize,
    /// Turn warnings into errors.
    pub strict: bool,
    /// Where names written on the host are here (`--map`, scan roots).
    pub paths: PathRules,
    /// Refuse a file outside the evidence tree before it is opened (`--confine`). The tree is
    /// the top's own folder, the scanned roots and the `--map` targets; a file elsewhere (an
    /// absolute or `..` extent, a parent hint of `/etc/shadow`) is an `outside_tree` warning.
    pub confine: bool,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            mode: ReadMode::Mmap,
            max_depth: DEFAULT_MAX_DEPTH,
            strict: false,
            paths: PathRules::default(),
            confine: false,
        }
    }
}

/// Where a chain's files may come from, and what was found elsewhere.
struct Confinement {
    /// Canonical folders: the top's, and the options' roots.
    roots: Vec<PathBuf>,
    confine: bool,
    /// Warnings for the layer being opened.
    pending: Vec<Warning>,
}

impl Confinement {
    fn new(fs: &dyn FileSet, top: &Path, opts: &ChainOptions) -> Self {
        let mut roots: Vec<PathBuf> = opts
            .paths
            .roots
            .iter()
            .chain(opts.paths.maps.iter().map(|m| &m.dir))
            .map(|r| fs.canonicalize(r).unwrap_or_else(|_| r.clone()))
            .collect();
        if let Some(dir) = fs
            .canonicalize(top)
            .ok()
            .and_then(|t| t.parent().map(Path::to_path_buf))
        {
            roots.push(dir);
        }
        Confinement {
            roots,
            confine: opts.confine,
            pending: Vec::new(),
        }
    }

    /// Checks `path` before it is opened: inside the roots, or a warning (an error under
    /// `--confine`). Paths are compared canonical, so links out of the tree count as out. A
    /// file that does not exist is left to the open that follows, which names it.
    fn check(&mut self, fs: &dyn FileSet, path: &Path) -> Result<()> {
        let Ok(real) = fs.canonicalize(path) else {
            return Ok(());
        };
        if self.roots.iter().any(|r| real.starts_with(r)) {
            return Ok(());
        }
        let roots = self
            .roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if self.confine {
            return Err(Error::Unreadable {
                path: path.to_path_buf(),
                why: format!(
                    "it lies outside the evidence tree ({roots}) and --confine refuses such files; it was not opened"
                ),
            });
        }
        self.pending.push(Warning::OutsideTree {
            path: path.to_path_buf(),
            roots,
        });
        Ok(())
    }
}

/// The layers of one disk, base first, top last.
#[derive(Debug)]
pub struct Chain {
    /// Base first.
    pub layers: Vec<Layer>,
    /// Chain-level warnings (CID mismatches), besides each layer's own.
    pub warnings: Vec<Warning>,
}

impl Chain {
    /// Opens the layer at `path` and every parent below it.
    pub fn open(path: &Path, opts: &ChainOptions) -> Result<Chain> {
        Self::open_in(&Disk, path, opts)
    }

    /// Opens the layer at `path` and every parent below it, reading every file from `fs`.
    pub fn open_in(fs: &dyn FileSet, path: &Path, opts: &ChainOptions) -> Result<Chain> {
        let mut top_first: Vec<Layer> = Vec::new();
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut order: Vec<PathBuf> = Vec::new();
        let mut warnings = Vec::new();
        let mut next = path.to_path_buf();
        let mut tree = Confinement::new(fs, path, opts);
        loop {
            let canonical = fs.canonicalize(&next).map_err(|e| match top_first.last() {
                // Resolution saw the parent; it went away before it could be opened.
                Some(child) if e.kind() == std::io::ErrorKind::NotFound => {
                    Error::Chain(ChainError::ParentMissing {
                        child: child.path.clone(),
                        hint: child.descriptor.parent().unwrap_or_default().to_string(),
                        looked_for: vec![next.clone()],
                    })
                }
                _ => Error::io(&next, "open", e),
            })?;
            if !seen.insert(canonical.clone()) {
                order.push(canonical);
                return Err(Error::Chain(ChainError::Cycle { paths: order }));
            }
            order.push(canonical);
            if top_first.len() >= opts.max_depth {
                return Err(Error::Chain(ChainError::TooDeep {
                    depth: top_first.len() + 1,
                    cap: opts.max_depth,
                }));
            }
            tree.check(fs, &next)?;
            let mut layer = Layer::open_with(fs, &next, opts.mode, &opts.paths, &mut |p| {
                tree.check(fs, p)
            })?;
            layer.warnings.append(&mut tree.pending);
            let parent = match layer.descriptor.parent() {
                None => None,
                Some(hint) => {
                    let r = resolve_parent(fs, &next, hint, &opts.paths)?;
                    layer.warnings.extend(r.warning(&next, hint));
                    Some(r.path)
                }
            };
            top_first.push(layer);
            match parent {
                Some(p) => next = p,
                None => break,
            }
        }
        // Check each child against its parent.
        for pair in top_first.windows(2) {
            let (child, parent) = (&pair[0], &pair[1]);
            if child.virtual_size != parent.virtual_size {
                // VMware keeps a chain's sizes equal (a disk with snapshots cannot be
                // extended); qemu reads past a smaller parent as zeros, and so do we.
                warnings.push(Warning::Note {
                    path: child.path.clone(),
                    detail: format!(
                        "virtual size {} differs from its parent's {} ({}); bytes past the parent's end read as zero",
                        child.virtual_size,
                        parent.virtual_size,
                        parent.path.display()
                    ),
                });
            }
            let expected = child.descriptor.parent_cid.unwrap_or(NO_PARENT_CID);
            let found = parent.descriptor.cid.unwrap_or(NO_PARENT_CID);
            if expected != found {
                if opts.strict {
                    return Err(Error::Chain(ChainError::CidMismatch {
                        child: child.path.clone(),
                        expected,
                        found,
                    }));
                }
                warnings.push(Warning::CidMismatch {
                    child: child.path.clone(),
                    expected: format!("{expected:08x}"),
                    found: format!("{found:08x}"),
                });
            }
        }
        top_first.reverse();
        let chain = Chain {
            layers: top_first,
            warnings,
        };
        if opts.strict
            && let Some(w) = chain.all_warnings().next()
        {
            return Err(Error::Strict(w.clone()));
        }
        Ok(chain)
    }

    /// The top layer.
    pub fn top(&self) -> &Layer {
        // OK to index: `open` never builds an empty chain.
        &self.layers[self.layers.len() - 1]
    }

    /// Every warning: the chain's, then each layer's.
    pub fn all_warnings(&self) -> impl Iterator<Item = &Warning> {
        self.warnings
            .iter()
            .chain(self.layers.iter().flat_map(|l| l.warnings.iter()))
    }

    /// Warnings that concern layer `i`: its own, and a CID mismatch with its parent.
    pub fn layer_warnings(&self, i: usize) -> Vec<Warning> {
        let l = &self.layers[i];
        let mut out: Vec<Warning> = self
            .warnings
            .iter()
            .filter(|w| matches!(w, Warning::CidMismatch { child, .. } if *child == l.path))
            .cloned()
            .collect();
        out.extend(l.warnings.iter().cloned());
        out
    }

    /// Re-stats every file of every layer; fails if one changed during the analysis.
    pub fn check_unchanged(&self) -> Result<()> {
        self.layers.iter().try_for_each(Layer::check_unchanged)
    }
}

/// Where a name written on the host was found here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The file to open.
    pub path: PathBuf,
    /// `None` when the name led there itself (or through `--map`); otherwise how the file was
    /// found instead ("its file name in ...", "its last two components under ...").
    pub fallback: Option<String>,
}

impl Resolved {
    /// The `parent_remapped` warning for the child at `child`, when a fallback was used.
    pub fn warning(&self, child: &Path, hint: &str) -> Option<Warning> {
        self.fallback.as_ref().map(|how| Warning::ParentRemapped {
            child: child.to_path_buf(),
            hint: hint.to_string(),
            used: self.path.clone(),
            how: how.clone(),
        })
    }
}

/// Why a name written on the host was not found here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// Nothing exists at any place looked at (listed in order).
    Missing(Vec<PathBuf>),
    /// Several files could be it (canonical paths).
    Ambiguous(Vec<PathBuf>),
}

/// Resolves a name written on the host (a `parentFileNameHint`, a `.vmx` disk name) seen from
/// `dir`, the folder of the file that holds it, in this order:
/// 1. a `--map PREFIX=DIR` that matches: the mapped path, whether it exists or not (the
///    user said where the datastore is);
/// 2. the name itself: relative names are joined to `dir` (FORMATS.md 1.7); an absolute name
///    that exists here is used as it is;
/// 3. for an absolute name that does not exist here (an ESXi path
///    `/vmfs/volumes/<uuid>/vm/vm.vmdk` on a copied datastore, an NFS export, a vmfs6-fuse
///    mount, or a Windows path): its file name in `dir` (dissect reads hints this way too);
/// 4. then its last two components (`replica-0a1b/replica-0a1b.vmdk`) under each scan root
///    and under the folder above `dir`: exactly one match is used, several are an error
///    that asks for `--map`.
///
/// Steps 3 and 4 set [`Resolved::fallback`], which becomes a `parent_remapped` warning.
pub fn resolve_name(
    fs: &dyn FileSet,
    dir: &Path,
    name: &str,
    rules: &PathRules,
) -> std::result::Result<Resolved, Unresolved> {
    let found = |path: PathBuf| Resolved {
        path,
        fallback: None,
    };
    if let Some(p) = rules.map(name) {
        return if fs.exists(&p) {
            Ok(found(p))
        } else {
            Err(Unresolved::Missing(vec![p]))
        };
    }
    let normalized = normalize_name(name);
    if !is_absolute_name(&normalized) {
        let p = resolve(dir, &normalized);
        return if fs.exists(&p) {
            Ok(found(p))
        } else {
            Err(Unresolved::Missing(vec![p]))
        };
    }
    let mut looked = Vec::new();
    // A Windows path means nothing on this machine; a POSIX one may be a live mount.
    if normalized.starts_with('/') && !normalized.starts_with("//") {
        let p = PathBuf::from(&normalized);
        if fs.exists(&p) {
            return Ok(found(p));
        }
        looked.push(p);
    }
    let parts: Vec<&str> = normalized
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let file = parts.last().copied().filter(|f| *f != "..");
    if let Some(file) = file {
        let p = dir.join(file);
        if fs.exists(&p) {
            return Ok(Resolved {
                path: p,
                fallback: Some(format!("its file name in {}", dir.display())),
            });
        }
        looked.push(p);
    }
    let tail = match parts.as_slice() {
        [.., d, f] if *d != ".." && *f != ".." && !d.ends_with(':') => Some((*d, *f)),
        _ => None,
    };
    let mut roots: Vec<&Path> = rules.roots.iter().map(PathBuf::as_path).collect();
    if let Some(up) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        roots.push(up);
    }
    let mut seen_roots: HashSet<PathBuf> = HashSet::new();
    let mut matches: Vec<(PathBuf, PathBuf, &Path)> = Vec::new();
    if let Some((d, f)) = tail {
        for root in roots {
            let key = fs.canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            if !seen_roots.insert(key) {
                continue;
            }
            let p = root.join(d).join(f);
            if fs.exists(&p) {
                let canonical = fs.canonicalize(&p).unwrap_or_else(|_| p.clone());
                if !matches.iter().any(|(c, _, _)| *c == canonical) {
                    matches.push((canonical, p, root));
                }
            } else {
                looked.push(p);
            }
        }
    }
    match matches.len() {
        0 => Err(Unresolved::Missing(looked)),
        1 => {
            let (_, p, root) = matches.remove(0);
            Ok(Resolved {
                path: p,
                fallback: Some(format!(
                    "its last two path components under {}",
                    root.display()
                )),
            })
        }
        _ => Err(Unresolved::Ambiguous(
            matches.into_iter().map(|(c, _, _)| c).collect(),
        )),
    }
}

/// The parent of the layer at `child` named by `hint`, or the error that quotes the hint and
/// says where it was looked for.
pub fn resolve_parent(
    fs: &dyn FileSet,
    child: &Path,
    hint: &str,
    rules: &PathRules,
) -> Result<Resolved> {
    let dir = child.parent().unwrap_or(Path::new("."));
    resolve_name(fs, dir, hint, rules).map_err(|e| {
        Error::Chain(match e {
            Unresolved::Missing(looked_for) => ChainError::ParentMissing {
                child: child.to_path_buf(),
                hint: hint.to_string(),
                looked_for,
            },
            Unresolved::Ambiguous(candidates) => ChainError::ParentAmbiguous {
                child: child.to_path_buf(),
                hint: hint.to_string(),
                candidates,
            },
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{Memory, PathMap};

    const UUID: &str = "/vmfs/volumes/5f3a1c2e-8a7b9c0d-1e2f-001122334455";

    fn files(paths: &[&str]) -> Memory {
        let mut m = Memory::new();
        for p in paths {
            m.insert(p, Vec::new());
        }
        m
    }

    fn rules(roots: &[&str], maps: &[&str]) -> PathRules {
        PathRules {
            maps: maps.iter().map(|m| PathMap::parse(m).unwrap()).collect(),
            roots: roots.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn relative_hints_are_joined_to_the_child_folder() {
        let fs = files(&["/data/vm/base.vmdk", "/data/golden/base.vmdk"]);
        let dir = Path::new("/data/vm");
        let none = PathRules::default();
        assert_eq!(
            resolve_name(&fs, dir, "base.vmdk", &none),
            Ok(Resolved {
                path: PathBuf::from("/data/vm/base.vmdk"),
                fallback: None
            })
        );
        assert_eq!(
            resolve_name(&fs, dir, "../golden/base.vmdk", &none)
                .unwrap()
                .path,
            Path::new("/data/vm/../golden/base.vmdk")
        );
        // A relative hint that does not exist is not guessed at.
        assert_eq!(
            resolve_name(&fs, dir, "gone/base.vmdk", &none),
            Err(Unresolved::Missing(vec![PathBuf::from(
                "/data/vm/gone/base.vmdk"
            )]))
        );
    }

    #[test]
    fn absolute_hints_fall_back_in_the_documented_order() {
        let hint = format!("{UUID}/replica-0a1b/replica-0a1b.vmdk");
        let dir = Path::new("/copy/ds1/vdi-01");
        // 1. the file name beside the child.
        let fs = files(&[
            "/copy/ds1/vdi-01/replica-0a1b.vmdk",
            "/copy/ds1/replica-0a1b/replica-0a1b.vmdk",
        ]);
        let r = resolve_name(&fs, dir, &hint, &PathRules::default()).unwrap();
        assert_eq!(r.path, Path::new("/copy/ds1/vdi-01/replica-0a1b.vmdk"));
        assert!(r.fallback.unwrap().contains("file name"));
        // 2. the last two components under the folder above the child's.
        let fs = files(&["/copy/ds1/replica-0a1b/replica-0a1b.vmdk"]);
        let r = resolve_name(&fs, dir, &hint, &PathRules::default()).unwrap();
        assert_eq!(
            r.path,
            Path::new("/copy/ds1/replica-0a1b/replica-0a1b.vmdk")
        );
        let w = r.warning(&dir.join("vdi-01.vmdk"), &hint).unwrap();
        assert!(w.to_string().contains(&hint), "{w}");
        // ... and under each scan root (the replica on another LUN).
        let fs = files(&["/copy/ds9/replica-0a1b/replica-0a1b.vmdk"]);
        let r = resolve_name(&fs, dir, &hint, &rules(&["/copy/ds9"], &[])).unwrap();
        assert_eq!(
            r.path,
            Path::new("/copy/ds9/replica-0a1b/replica-0a1b.vmdk")
        );
        // Two candidates: an error naming both.
        let fs = files(&[
            "/copy/ds1/replica-0a1b/replica-0a1b.vmdk",
            "/copy/ds9/replica-0a1b/replica-0a1b.vmdk",
        ]);
        assert_eq!(
            resolve_name(&fs, dir, &hint, &rules(&["/copy/ds9", "/copy/ds1"], &[])),
            Err(Unresolved::Ambiguous(vec![
                PathBuf::from("/copy/ds9/replica-0a1b/replica-0a1b.vmdk"),
                PathBuf::from("/copy/ds1/replica-0a1b/replica-0a1b.vmdk"),
            ]))
        );
        // --map settles it, with no warning.
        let r = resolve_name(
            &fs,
            dir,
            &hint,
            &rules(&["/copy/ds9", "/copy/ds1"], &[&format!("{UUID}=/copy/ds1")]),
        )
        .unwrap();
        assert_eq!(
            r.path,
            Path::new("/copy/ds1/replica-0a1b/replica-0a1b.vmdk")
        );
        assert_eq!(r.fallback, None);
        // Nothing anywhere: every place looked at, in order.
        let fs = files(&[]);
        assert_eq!(
            resolve_name(&fs, dir, &hint, &PathRules::default()),
            Err(Unresolved::Missing(vec![
                PathBuf::from(&hint),
                PathBuf::from("/copy/ds1/vdi-01/replica-0a1b.vmdk"),
                PathBuf::from("/copy/ds1/replica-0a1b/replica-0a1b.vmdk"),
            ]))
        );
    }

    #[test]
    fn maps_apply_to_extent_names_and_hints() {
        let mut fs = Memory::new();
        let base = format!(
            "# Disk DescriptorFile\nversion=1\nCID=00000001\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 8 VMFS \"{UUID}/gold/gold-flat.vmdk\"\n"
        );
        let top = format!(
            "# Disk DescriptorFile\nversion=1\nCID=00000002\nparentCID=00000001\ncreateType=\"custom\"\nparentFileNameHint=\"{UUID}/gold/gold.vmdk\"\nRW 8 ZERO\n"
        );
        fs.insert("/copy/gold/gold.vmdk", base.into_bytes());
        fs.insert("/copy/gold/gold-flat.vmdk", vec![7; 4096]);
        fs.insert("/copy/vm/vm.vmdk", top.into_bytes());
        let opts = ChainOptions {
            mode: ReadMode::Read,
            paths: rules(&[], &[&format!("{UUID}=/copy")]),
            ..ChainOptions::default()
        };
        let c = Chain::open_in(&fs, Path::new("/copy/vm/vm.vmdk"), &opts).unwrap();
        assert_eq!(c.layers[0].path, Path::new("/copy/gold/gold.vmdk"));
        assert_eq!(
            c.layers[0].extents[0].file().unwrap().path(),
            Path::new("/copy/gold/gold-flat.vmdk")
        );
        assert_eq!(c.all_warnings().count(), 0);
        // Without the map the extent name is not guessed at: the error names it.
        let e = Chain::open_in(
            &fs,
            Path::new("/copy/vm/vm.vmdk"),
            &ChainOptions {
                mode: ReadMode::Read,
                ..ChainOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("gold-flat.vmdk") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn windows_hints_use_their_file_name() {
        let fs = files(&["/data/vm/gold.vmdk"]);
        let r = resolve_name(
            &fs,
            Path::new("/data/vm"),
            "C:\\VMs\\gold\\gold.vmdk",
            &PathRules::default(),
        )
        .unwrap();
        assert_eq!(r.path, Path::new("/data/vm/gold.vmdk"));
        assert!(r.fallback.is_some());
    }

    #[test]
    fn a_mapped_hint_that_is_missing_is_not_guessed_at() {
        let fs = files(&["/data/vm/replica-0a1b.vmdk"]);
        let hint = format!("{UUID}/replica-0a1b/replica-0a1b.vmdk");
        let e = resolve_parent(
            &fs,
            Path::new("/data/vm/vm.vmdk"),
            &hint,
            &rules(&[], &[&format!("{UUID}=/mnt/wrong")]),
        )
        .unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains(&format!("\"{hint}\""))
                && m.contains("/mnt/wrong/replica-0a1b/replica-0a1b.vmdk"),
            "{m}"
        );
    }
}
