//! A disk's chain: the layer named on the command line and its parents, base first.
//!
//! Parents come only from `parentFileNameHint`, relative to the child's directory (never from
//! file-name habits such as `-000001.vmdk`). Loops are found on canonical paths, depth is
//! capped, and a parent whose CID is not the child's `parentCID` is a warning (an error under
//! `--strict`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{ChainError, Error, Result, Warning};
use crate::files::{Disk, FileSet};
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
    /// The evidence tree: folders the chain's files may lie in besides the top's own folder
    /// (the scanned datastore folders; `--map` targets add theirs). A file elsewhere (an
    /// absolute or `..` extent, a parent hint of `/etc/shadow`) is an `outside_tree` warning.
    pub roots: Vec<PathBuf>,
    /// Refuse a file outside the roots before it is opened (`--confine`).
    pub confine: bool,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            mode: ReadMode::Mmap,
            max_depth: DEFAULT_MAX_DEPTH,
            strict: false,
            roots: Vec::new(),
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
            .roots
            .iter()
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
                Some(child) if e.kind() == std::io::ErrorKind::NotFound => {
                    Error::Chain(ChainError::ParentMissing {
                        child: child.path.clone(),
                        looked_for: next.clone(),
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
            let mut layer = Layer::open_checked(fs, &next, opts.mode, &mut |p| tree.check(fs, p))?;
            layer.warnings.append(&mut tree.pending);
            let parent = layer
                .descriptor
                .parent()
                .map(|hint| parent_path_in(fs, &next, hint));
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

/// Where a parent hint points, seen from the child at `child`: relative hints are joined to
/// the child's directory (FORMATS.md 1.7). An absolute hint that does not exist here (an ESXi
/// datastore path such as `/vmfs/volumes/<uuid>/vm/vm.vmdk`, or a Windows path) is looked for
/// by its file name in the child's directory: the name still comes from the hint.
pub fn parent_path(child: &Path, hint: &str) -> PathBuf {
    parent_path_in(&Disk, child, hint)
}

fn parent_path_in(fs: &dyn FileSet, child: &Path, hint: &str) -> PathBuf {
    let dir = child.parent().unwrap_or(Path::new("."));
    let normalized = hint.replace('\\', "/");
    let windows_abs = normalized.len() > 2 && normalized.as_bytes()[1] == b':';
    let p = Path::new(&normalized);
    if (p.is_absolute() || windows_abs)
        && !fs.exists(p)
        && let Some(name) = p.file_name()
    {
        return dir.join(name);
    }
    resolve(dir, &normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_paths_follow_the_hint() {
        let child = Path::new("/data/vm/clone-000001.vmdk");
        assert_eq!(
            parent_path(child, "base.vmdk"),
            Path::new("/data/vm/base.vmdk")
        );
        assert_eq!(
            parent_path(child, "../golden/base.vmdk"),
            Path::new("/data/vm/../golden/base.vmdk")
        );
        assert_eq!(
            parent_path(child, "/vmfs/volumes/5f1e-uuid/gold/gold.vmdk"),
            Path::new("/data/vm/gold.vmdk")
        );
        assert_eq!(
            parent_path(child, "C:\\VMs\\gold\\gold.vmdk"),
            Path::new("/data/vm/gold.vmdk")
        );
    }
}
