//! Finding the disks of a datastore: every chain in a directory tree (a datastore mount, or a
//! copy of one), and what the VMs' `.vmx` and `.vmsd` files say about them, without opening
//! any chain yet.
//!
//! A file is a *layer* when it holds a descriptor: a text `.vmdk`, or a `KDMV` file with one
//! embedded. Everything else (`-flat`, `-delta`, `-sesparse`, `-s001` files) is extent data,
//! named by some descriptor. The *tops* are the layers no other layer names as its parent:
//! one per disk (a VM's disk with its snapshots, a linked clone over its replica). Parents
//! are resolved exactly as [`crate::chain`] resolves them ([`resolve_name`]: `--map`, the hint,
//! then its fallbacks); they may live outside the tree (a replica on another datastore).
//!
//! No claim hides a disk without a word:
//! - the extent lines of a descriptor embedded in a `KDMV` file name that file itself (qemu
//!   reads them so): they claim nothing, and a name other than the file's own is a
//!   `renamed_copy` warning (`cp vm-000001.vmdk vm-000001-copy.vmdk` leaves both disks; a lone
//!   renamed file is a `renamed_disk` warning);
//! - a file that holds its own disk, named as an extent by another descriptor, stays a disk,
//!   and the naming descriptor gets an `extent_is_a_disk` warning;
//! - extent data named by two descriptors is an `extent_shared` warning;
//! - a delta named as parent from another folder, or by a child whose `parentCID` is not its
//!   `CID`, is a `parent_claim` warning (it is a layer of that chain, not a disk of its own);
//! - an unreadable folder or file is an orphan with its error (the walk goes on), a folder
//!   past [`MAX_DIR_DEPTH`] a `depth_limit` warning, a symbolic link a `symlink_not_followed`
//!   warning.
//!
//! [`plan`] then looks at every LUN at once: the disks to scan (the tops, and any disk a
//! `.vmx` names that is not a top), which VM uses each, and the deltas nothing uses
//! (`not_referenced` orphans). [`role`] names what a disk is for.

pub mod dict;
pub mod vmsd;
pub mod vmx;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::chain::{Unresolved, resolve_name};
use crate::error::{Error, Result};
use crate::files::{Disk, PathRules};
use crate::format::descriptor::{self, Descriptor, MAX_DESCRIPTOR_BYTES};
use crate::format::{Magic, detect};
use crate::layer::{extent_path, resolve};
use crate::sanitize::sanitize;
use crate::units::SECTOR;

/// Most files (`.vmdk`, `.vmx`, `.vmsd`) looked at in one tree: a bound against walking a
/// whole file system by mistake.
pub const MAX_FILES: usize = 1_000_000;
/// Deepest folder level walked below the LUN's folder (a datastore has two: VM folders and,
/// rarely, one below); deeper folders are a `depth_limit` warning.
pub const MAX_DIR_DEPTH: usize = 32;
/// Most warnings and orphans kept per tree; the rest are counted in one last warning.
pub const MAX_NOTES: usize = 10_000;

/// Why a file is listed as an orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanReason {
    /// A delta no `.vmx`, `.vmsd` or other disk uses (left behind by a failed consolidation,
    /// or a copy).
    NotReferenced,
    /// A `.vmx` or `.vmsd` names it, and it does not exist.
    Missing,
    /// It could not be read (a folder or file: permissions, I/O error, not a regular file).
    Unreadable,
}

impl OrphanReason {
    /// The name in JSON: `not_referenced`, `missing`, `unreadable`.
    pub fn name(self) -> &'static str {
        match self {
            OrphanReason::NotReferenced => "not_referenced",
            OrphanReason::Missing => "missing",
            OrphanReason::Unreadable => "unreadable",
        }
    }
}

/// A file found unused, missing or unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The file or folder.
    pub path: PathBuf,
    /// Why it is listed.
    pub reason: OrphanReason,
    /// The error, for `missing` and `unreadable`.
    pub error: Option<String>,
    /// What it is, for people.
    pub detail: String,
}

/// A datastore-level warning: a stable kind and a message naming the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `extent_is_a_disk`, `extent_shared`, `renamed_copy`, `renamed_disk`, `parent_claim`,
    /// `depth_limit`,
    /// `symlink_not_followed`, `path_remapped`, `ambiguous_name`, `disk_in_two_vms`,
    /// `vmsd_without_vmx`, `too_many_notes`.
    pub kind: &'static str,
    /// What it means.
    pub message: String,
}

/// What discovery knows of one layer file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerFacts {
    /// It names a parent, or its createType is a redo log (vmfsSparse, seSparse).
    pub is_delta: bool,
    /// Some layer of the tree names it as its parent.
    pub has_children: bool,
}

/// One disk device of a `.vmx`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDisk {
    /// The device node, e.g. `scsi0:1`.
    pub node: String,
    /// The disk's file (canonical).
    pub path: PathBuf,
    /// The device's `mode`.
    pub mode: Option<String>,
    /// `present` is not `FALSE`.
    pub present: bool,
}

/// One snapshot of a `.vmsd`, its disk names resolved (those that exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFacts {
    /// `uid`.
    pub uid: Option<String>,
    /// `displayName`.
    pub name: Option<String>,
    /// The uid of the snapshot it was taken on.
    pub parent: Option<String>,
    /// When it was taken, microseconds since 1970 UTC.
    pub created_micros: Option<i64>,
    /// The layers that were the disks' tops then (canonical).
    pub disks: Vec<PathBuf>,
    /// It is `snapshot.current`.
    pub current: bool,
}

/// A virtual machine: a `.vmx` and, beside it, its `.vmsd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The `.vmx` (canonical).
    pub vmx: PathBuf,
    /// `displayName`, or the `.vmx` file name without `.vmx`.
    pub name: String,
    /// Its disks that exist.
    pub disks: Vec<VmDisk>,
    /// The `.vmsd`, when there is one.
    pub vmsd: Option<PathBuf>,
    /// The snapshots it lists.
    pub snapshots: Vec<SnapshotFacts>,
}

/// What a walk of one tree found.
#[derive(Debug, Default, Clone)]
pub struct Found {
    /// `.vmdk` files seen (readable or not).
    pub vmdk_files: usize,
    /// Top layers, one per disk, sorted (canonical paths).
    pub tops: Vec<PathBuf>,
    /// Every layer file of the tree (canonical), with what its descriptor says.
    pub layers: BTreeMap<PathBuf, LayerFacts>,
    /// Extent data files that no descriptor in the tree names, sorted.
    pub unclaimed: Vec<PathBuf>,
    /// The VMs whose `.vmx` is in the tree.
    pub machines: Vec<Machine>,
    /// Unreadable entries and files that `.vmx`/`.vmsd` files name but do not exist (and,
    /// after [`plan`], unused deltas).
    pub orphans: Vec<Orphan>,
    /// Datastore-level warnings.
    pub warnings: Vec<Note>,
}

impl Found {
    fn warn(&mut self, kind: &'static str, message: String) {
        if self.warnings.len() < MAX_NOTES {
            self.warnings.push(Note { kind, message });
        } else if self.warnings.len() == MAX_NOTES {
            self.warnings.push(Note {
                kind: "too_many_notes",
                message: format!("more than {MAX_NOTES} warnings; the rest are not listed"),
            });
        }
    }

    fn orphan(&mut self, o: Orphan) {
        if self.orphans.len() < MAX_NOTES {
            self.orphans.push(o);
        } else if self.orphans.len() == MAX_NOTES {
            self.warn(
                "too_many_notes",
                format!("more than {MAX_NOTES} orphans; the rest are not listed"),
            );
            self.orphans.push(Orphan {
                path: PathBuf::new(),
                reason: OrphanReason::Unreadable,
                error: Some("not listed".into()),
                detail: format!("more than {MAX_NOTES} orphans"),
            });
        }
    }

    fn unreadable(&mut self, path: &Path, what: &str, error: String) {
        self.orphan(Orphan {
            path: path.to_path_buf(),
            reason: OrphanReason::Unreadable,
            error: Some(error),
            detail: format!("this {what} could not be read; what it holds is not in the report"),
        });
    }
}

fn show(p: &Path) -> String {
    sanitize(&p.display().to_string())
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The files a walk collects.
#[derive(Default)]
struct Walked {
    vmdk: Vec<PathBuf>,
    vmx: Vec<PathBuf>,
    vmsd: Vec<PathBuf>,
}

impl Walked {
    fn len(&self) -> usize {
        self.vmdk.len() + self.vmx.len() + self.vmsd.len()
    }
}

fn extension(p: &Path) -> Option<String> {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// Walks `dir` and finds the disks and VMs in it. `rules` resolve parent hints and `.vmx`
/// disk names as chains will.
pub fn discover(dir: &Path, rules: &PathRules) -> Result<Found> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, "open folder", e))?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!("{}: not a folder", dir.display())));
    }
    // The folder itself must be listable: nothing would be found otherwise.
    std::fs::read_dir(dir).map_err(|e| Error::io(dir, "list folder", e))?;
    let mut found = Found::default();
    let mut files = Walked::default();
    walk(dir, dir, 0, &mut files, &mut found)?;
    files.vmdk.sort();
    files.vmx.sort();
    files.vmsd.sort();
    found.vmdk_files = files.vmdk.len();

    // Probe every .vmdk: layer or data.
    let mut probes: Vec<(PathBuf, PathBuf, Probe)> = Vec::new();
    for f in &files.vmdk {
        match probe(f) {
            Ok(p) => probes.push((f.clone(), canonical(f), p)),
            Err(why) => found.unreadable(f, "file", why),
        }
    }
    // Files that hold a disk of their own: a descriptor that parses. One that does not parse
    // is still opened as a disk when nothing names it, but an extent line naming it is
    // taken at its word.
    let disk_files: HashSet<PathBuf> = probes
        .iter()
        .filter(|(_, _, p)| matches!(p, Probe::Layer { desc: Some(_), .. }))
        .map(|(_, c, _)| c.clone())
        .collect();
    let mut parents: HashSet<PathBuf> = HashSet::new();
    // (child, parent, the child's parentCID): what each parent claim rests on.
    let mut parent_claims: Vec<(PathBuf, PathBuf, Option<u32>)> = Vec::new();
    // Extent data file -> the descriptors that name it.
    let mut claims: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    let mut data: Vec<PathBuf> = Vec::new();
    for (f, c, p) in &probes {
        let Probe::Layer { embedded, desc } = p else {
            data.push(c.clone());
            continue;
        };
        let dir_of = f.parent().unwrap_or(Path::new("."));
        let mut facts = LayerFacts::default();
        if let Some(d) = desc {
            facts.is_delta = d.parent().is_some()
                || matches!(d.create_type.as_deref(), Some("vmfsSparse" | "seSparse"));
            if let Some(hint) = d.parent()
                && let Ok(r) = resolve_name(&Disk, dir_of, hint, rules)
            {
                let parent = canonical(&r.path);
                parent_claims.push((c.clone(), parent.clone(), d.parent_cid));
                parents.insert(parent);
            }
            for name in d.extents.iter().filter_map(|e| e.file.as_deref()) {
                if *embedded {
                    // qemu reads an embedded descriptor's extent as the file itself.
                    let own = f.file_name().map(|n| n.to_string_lossy().into_owned());
                    let named = Path::new(&name.replace('\\', "/"))
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned());
                    if named.is_some() && named != own {
                        let other = resolve(dir_of, name);
                        if other.exists() {
                            found.warn(
                                "renamed_copy",
                                format!(
                                    "{}: its embedded descriptor names its extent \"{}\", and a file of that name is beside it: one is a renamed copy of the other (cp vm-000001.vmdk vm-000001-copy.vmdk); each is read as itself, as qemu reads it, and both are disks",
                                    show(c),
                                    sanitize(name)
                                ),
                            );
                        } else {
                            found.warn(
                                "renamed_disk",
                                format!(
                                    "{}: its embedded descriptor names its extent \"{}\": the file was renamed since it was made; it is read as itself, as qemu reads it",
                                    show(c),
                                    sanitize(name)
                                ),
                            );
                        }
                    }
                    continue;
                }
                let e = canonical(&extent_path(dir_of, name, rules));
                if e == *c {
                    continue;
                }
                if disk_files.contains(&e) {
                    found.warn(
                        "extent_is_a_disk",
                        format!(
                            "{} names {} as an extent, but that file holds a disk of its own (a descriptor); it stays a disk in this report, and {} reads its bytes as raw data",
                            show(c),
                            show(&e),
                            show(c)
                        ),
                    );
                } else {
                    claims.entry(e).or_default().push(c.clone());
                }
            }
        }
        found.layers.insert(c.clone(), facts);
    }
    for (extent, by) in &claims {
        if by.len() > 1 {
            let names: Vec<String> = by.iter().map(|b| show(b)).collect();
            found.warn(
                "extent_shared",
                format!(
                    "{} is named as an extent by {} descriptors: {}; each is scanned as a disk of its own, reading the same data",
                    show(extent),
                    by.len(),
                    names.join(", ")
                ),
            );
        }
    }
    for p in &parents {
        if let Some(f) = found.layers.get_mut(p) {
            f.has_children = true;
        }
    }
    // A parent claim takes a disk out of the list of disks: say so when the claim is odd. A
    // snapshot's delta sits in its VM's folder and a clone hangs on a base, so a delta named
    // as parent from another folder (a Workstation linked clone of a snapshot, or a decoy),
    // or by a child whose parentCID is not its CID, is worth a word.
    let descs: HashMap<&Path, &Descriptor> = probes
        .iter()
        .filter_map(|(_, c, p)| match p {
            Probe::Layer { desc: Some(d), .. } => Some((c.as_path(), d)),
            _ => None,
        })
        .collect();
    for (child, parent, parent_cid) in &parent_claims {
        let Some(pd) = descs.get(parent.as_path()) else {
            continue;
        };
        let parent_is_delta = found.layers.get(parent).is_some_and(|f| f.is_delta);
        let other_folder = child.parent() != parent.parent();
        let cid_differs = match (parent_cid, pd.cid) {
            (Some(want), Some(have)) => *want != have,
            _ => false,
        };
        let why = match (parent_is_delta && other_folder, cid_differs) {
            (_, true) => format!(
                "its parentCID {:08x} is not that file's CID {:08x}",
                parent_cid.unwrap_or_default(),
                pd.cid.unwrap_or_default()
            ),
            (true, false) => "that file is a delta in another folder".to_string(),
            (false, false) => continue,
        };
        found.warn(
            "parent_claim",
            format!(
                "{} names {} as its parent, and {why}; {} is not listed as a disk of its own, only as a layer of the chains above it",
                show(child),
                show(parent),
                show(parent)
            ),
        );
    }
    // `claims` holds only files without a disk of their own (see `disk_files`).
    found.tops = found
        .layers
        .keys()
        .filter(|l| !parents.contains(*l) && !claims.contains_key(*l))
        .cloned()
        .collect();
    found.unclaimed = data
        .into_iter()
        .filter(|d| !claims.contains_key(d) && !parents.contains(d))
        .collect();
    found.unclaimed.sort();

    // The VMs.
    let mut vmsd_used: HashSet<PathBuf> = HashSet::new();
    for vmx_path in &files.vmx {
        let bytes = match read_config(vmx_path) {
            Ok(b) => b,
            Err(e) => {
                found.unreadable(vmx_path, ".vmx", e);
                continue;
            }
        };
        let parsed = match vmx::parse_vmx(&bytes) {
            Ok(v) => v,
            Err(e) => {
                found.unreadable(vmx_path, ".vmx", e.to_string());
                continue;
            }
        };
        let vdir = vmx_path.parent().unwrap_or(Path::new("."));
        let stem = vmx_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut m = Machine {
            vmx: canonical(vmx_path),
            name: parsed.display_name.clone().unwrap_or(stem.clone()),
            disks: Vec::new(),
            vmsd: None,
            snapshots: Vec::new(),
        };
        for d in &parsed.disks {
            let what = format!("{} ({}.fileName)", show(&m.vmx), d.node);
            if let Some(path) = resolve_named(&mut found, vdir, &d.file_name, rules, &what) {
                m.disks.push(VmDisk {
                    node: d.node.clone(),
                    path,
                    mode: d.mode.clone(),
                    present: d.present,
                });
            }
        }
        // VMware names the .vmsd after the .vmx; a folder with one .vmx and one .vmsd pairs
        // them whatever their names.
        let same_stem = files.vmsd.iter().find(|s| {
            s.parent() == Some(vdir)
                && s.file_stem().map(|x| x.to_string_lossy().into_owned()) == Some(stem.clone())
        });
        let alone = || {
            let in_dir = |v: &Vec<PathBuf>| v.iter().filter(|s| s.parent() == Some(vdir)).count();
            (in_dir(&files.vmx) == 1 && in_dir(&files.vmsd) == 1)
                .then(|| files.vmsd.iter().find(|s| s.parent() == Some(vdir)))
                .flatten()
        };
        if let Some(vmsd_path) = same_stem.or_else(alone) {
            vmsd_used.insert(vmsd_path.clone());
            m.vmsd = Some(canonical(vmsd_path));
            match read_config(vmsd_path)
                .and_then(|b| vmsd::parse_vmsd(&b).map_err(|e| e.to_string()))
            {
                Err(e) => found.unreadable(vmsd_path, ".vmsd", e),
                Ok(tree) => {
                    for s in &tree.snapshots {
                        let mut disks = Vec::new();
                        for d in &s.disks {
                            let what =
                                format!("{} (snapshot{}.disk.fileName)", show(vmsd_path), s.index);
                            if let Some(p) =
                                resolve_named(&mut found, vdir, &d.file_name, rules, &what)
                            {
                                disks.push(p);
                            }
                        }
                        m.snapshots.push(SnapshotFacts {
                            uid: s.uid.clone(),
                            name: s.display_name.clone(),
                            parent: s.parent.clone(),
                            created_micros: s.created_micros,
                            disks,
                            current: s.uid.is_some() && s.uid == tree.current,
                        });
                    }
                }
            }
        }
        found.machines.push(m);
    }
    for s in files.vmsd.iter().filter(|s| !vmsd_used.contains(*s)) {
        found.warn(
            "vmsd_without_vmx",
            format!(
                "{}: no .vmx of the same name beside it; its snapshots are not attached to a VM",
                show(s)
            ),
        );
    }
    Ok(found)
}

/// Resolves a disk name from a `.vmx` or `.vmsd` in `dir`; a missing file becomes a
/// `missing` orphan, a fallback a `path_remapped` warning, several candidates an
/// `ambiguous_name` warning.
fn resolve_named(
    found: &mut Found,
    dir: &Path,
    name: &str,
    rules: &PathRules,
    what: &str,
) -> Option<PathBuf> {
    match resolve_name(&Disk, dir, name, rules) {
        Ok(r) => {
            if let Some(how) = &r.fallback {
                found.warn(
                    "path_remapped",
                    format!(
                        "{what} names \"{}\", which does not exist here; using {} ({how}); give --map PREFIX=DIR to say where the datastore is",
                        sanitize(name),
                        show(&r.path)
                    ),
                );
            }
            Some(canonical(&r.path))
        }
        Err(Unresolved::Missing(looked)) => {
            let places: Vec<String> = looked.iter().map(|p| show(p)).collect();
            found.orphan(Orphan {
                path: looked
                    .first()
                    .cloned()
                    .unwrap_or_else(|| PathBuf::from(name)),
                reason: OrphanReason::Missing,
                error: Some(match places.as_slice() {
                    [_] => "no such file".to_string(),
                    _ => format!("not found; looked for {}", places.join(", ")),
                }),
                detail: format!("{what} names \"{}\"", sanitize(name)),
            });
            None
        }
        Err(Unresolved::Ambiguous(c)) => {
            let c: Vec<String> = c.iter().map(|p| show(p)).collect();
            found.warn(
                "ambiguous_name",
                format!(
                    "{what} names \"{}\", which does not exist here, and {} files could be it: {}; say which with --map PREFIX=DIR",
                    sanitize(name),
                    c.len(),
                    c.join(", ")
                ),
            );
            None
        }
    }
}

/// Reads a `.vmx` or `.vmsd`: at most one byte more than [`dict::MAX_CONFIG_BYTES`], which
/// the parser then refuses.
fn read_config(path: &Path) -> std::result::Result<Vec<u8>, String> {
    crate::bytes::read_small(path, dict::MAX_CONFIG_BYTES as u64, true).map_err(|e| e.to_string())
}

/// Collects `.vmdk`, `.vmx` and `.vmsd` files under `dir`. Symbolic links are not followed
/// (a datastore has none of its own, and a link back up would loop); a link to a folder or
/// to one of those files is a warning. An unreadable folder or entry is an orphan, and the
/// walk goes on.
fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Walked, found: &mut Found) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            found.unreadable(dir, "folder", e.to_string());
            return Ok(());
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                found.unreadable(dir, "folder", e.to_string());
                return Ok(());
            }
        };
        let path = entry.path();
        let kind = match entry.file_type() {
            Ok(k) => k,
            Err(e) => {
                found.unreadable(&path, "entry", e.to_string());
                continue;
            }
        };
        let ext = extension(&path);
        let ours = matches!(ext.as_deref(), Some("vmdk" | "vmx" | "vmsd"));
        if kind.is_symlink() {
            let target = std::fs::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            let to_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
            if ours || to_dir {
                found.warn(
                    "symlink_not_followed",
                    format!(
                        "{} is a symbolic link (to {}); links are not followed: give its target as a folder to scan",
                        show(&path),
                        sanitize(&target)
                    ),
                );
            }
        } else if kind.is_dir() {
            if depth >= MAX_DIR_DEPTH {
                found.warn(
                    "depth_limit",
                    format!(
                        "{}: more than {MAX_DIR_DEPTH} folder levels below {}; not searched",
                        show(&path),
                        show(root)
                    ),
                );
                continue;
            }
            walk(root, &path, depth + 1, out, found)?;
        } else if ours {
            if !kind.is_file() {
                found.unreadable(
                    &path,
                    "entry",
                    "not a regular file (a FIFO, socket or device)".into(),
                );
                continue;
            }
            if out.len() >= MAX_FILES {
                return Err(Error::Usage(format!(
                    "{}: more than {MAX_FILES} .vmdk, .vmx and .vmsd files; give the datastore folder itself",
                    root.display()
                )));
            }
            match ext.as_deref() {
                Some("vmx") => out.vmx.push(path),
                Some("vmsd") => out.vmsd.push(path),
                _ => out.vmdk.push(path),
            }
        }
    }
    Ok(())
}

/// What the first bytes of one `.vmdk` say.
enum Probe {
    /// A layer: a text descriptor, or a `KDMV` file with one embedded; `desc` is `None` when
    /// it does not parse (opening it as a chain then says what is wrong).
    Layer {
        embedded: bool,
        desc: Option<Descriptor>,
    },
    /// Extent data (or an unknown file).
    Data,
}

/// Reads the head of `path` (and an embedded descriptor) to tell layers from extent data.
fn probe(path: &Path) -> std::result::Result<Probe, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    (&mut file)
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| e.to_string())?;
    match detect(&head) {
        Magic::Descriptor => {
            let len = file.metadata().map_err(|e| e.to_string())?.len();
            if len > MAX_DESCRIPTOR_BYTES {
                return Ok(Probe::Layer {
                    embedded: false,
                    desc: None,
                });
            }
            let mut text = head;
            file.read_to_end(&mut text).map_err(|e| e.to_string())?;
            Ok(Probe::Layer {
                embedded: false,
                desc: descriptor::parse_descriptor(&text, 0).ok(),
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
            .map_err(|e| e.to_string())?;
            let desc = descriptor::parse_descriptor(&text, 0).ok();
            // qemu's twoGbMaxExtentSparse extents reserve a descriptor area and leave it
            // empty: extent data, as Layer::open refuses to open them on their own.
            if desc
                .as_ref()
                .is_some_and(|d| d.create_type.is_none() && d.extents.is_empty())
            {
                return Ok(Probe::Data);
            }
            Ok(Probe::Layer {
                embedded: true,
                desc,
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

/// The disks to scan over every LUN, and which VM uses each.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// (LUN index, disk): each LUN's tops, and the disks `.vmx` files name that are not tops
    /// (a VM's disk under a left-over delta, a replica), under the LUN whose folder holds them;
    /// sorted per LUN.
    pub disks: Vec<(usize, PathBuf)>,
    /// Disk -> (LUN index, machine index in that LUN's [`Found::machines`]): the first VM
    /// (by `.vmx` path) that names it.
    pub vm_of: HashMap<PathBuf, (usize, usize)>,
    /// Every file a `.vmx` or `.vmsd` names.
    pub referenced: HashSet<PathBuf>,
    /// Whether any `.vmx` was found: without one, no delta can be called unused.
    pub any_vmx: bool,
}

/// Looks at every LUN at once: which disks to scan, which VM uses each, and which deltas no
/// `.vmx`, `.vmsd` or other disk uses (added to the LUN's orphans as `not_referenced`). A VM
/// may keep disks on another LUN (Horizon puts persistent disks on their own datastore), so
/// this cannot be done one LUN at a time.
pub fn plan(founds: &mut [Found]) -> Plan {
    let mut p = Plan::default();
    for (l, f) in founds.iter().enumerate() {
        for (k, m) in f.machines.iter().enumerate() {
            p.any_vmx = true;
            for d in &m.disks {
                p.referenced.insert(d.path.clone());
                p.vm_of.entry(d.path.clone()).or_insert((l, k));
            }
            for s in &m.snapshots {
                p.referenced.extend(s.disks.iter().cloned());
            }
        }
    }
    // A disk named by two VMs.
    let mut named_by: BTreeMap<&Path, Vec<&Path>> = BTreeMap::new();
    for f in founds.iter() {
        for m in &f.machines {
            for d in &m.disks {
                named_by.entry(&d.path).or_default().push(&m.vmx);
            }
        }
    }
    let mut shared_notes = Vec::new();
    for (disk, vmx) in named_by.iter().filter(|(_, v)| v.len() > 1) {
        let names: Vec<String> = vmx.iter().map(|v| show(v)).collect();
        shared_notes.push((
            disk.to_path_buf(),
            format!(
                "{} is a disk of {} VMs: {}; it is listed under the first",
                show(disk),
                vmx.len(),
                names.join(", ")
            ),
        ));
    }
    let lun_of =
        |path: &Path, founds: &[Found]| founds.iter().position(|f| f.layers.contains_key(path));
    let mut extra: Vec<(usize, PathBuf)> = Vec::new();
    let mut extra_seen: HashSet<&Path> = HashSet::new();
    for f in founds.iter() {
        for m in &f.machines {
            for d in m.disks.iter().filter(|d| d.present) {
                // A disk outside every folder scanned (a persistent disk on a datastore not
                // given) is not scanned: it is on no LUN of this run. `machines` names it.
                let Some(home) = lun_of(&d.path, founds) else {
                    continue;
                };
                // `tops` is sorted (it comes from a BTreeMap's keys).
                if founds[home].tops.binary_search(&d.path).is_err() && extra_seen.insert(&d.path) {
                    extra.push((home, d.path.clone()));
                }
            }
        }
    }
    for (disk, message) in shared_notes {
        let home = lun_of(&disk, founds).unwrap_or(0);
        if let Some(f) = founds.get_mut(home) {
            f.warn("disk_in_two_vms", message);
        }
    }
    for (l, f) in founds.iter_mut().enumerate() {
        let mut disks: Vec<PathBuf> = f.tops.clone();
        disks.extend(
            extra
                .iter()
                .filter(|(h, _)| *h == l)
                .map(|(_, d)| d.clone()),
        );
        disks.sort();
        disks.dedup();
        if p.any_vmx {
            let unused: Vec<PathBuf> = f
                .tops
                .iter()
                .filter(|t| f.layers.get(*t).is_some_and(|x| x.is_delta))
                .filter(|t| !p.referenced.contains(*t))
                .cloned()
                .collect();
            for t in unused {
                f.orphan(Orphan {
                    path: t,
                    reason: OrphanReason::NotReferenced,
                    error: None,
                    detail: "a delta that no .vmx or .vmsd names and no other disk has as its parent (left behind by a failed consolidation, or a copy); it is scanned and counted in all_delta_bytes, not in the LUN model".into(),
                });
            }
        }
        p.disks.extend(disks.into_iter().map(|d| (l, d)));
    }
    p
}

/// What a disk is for, from its name, its chain and the VM that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A delta whose chain reaches a replica or base (a linked or instant clone's OS disk).
    OsDelta,
    /// A base that clones hang on (Horizon names them `replica-*`).
    Replica,
    /// Horizon's disposable disk (`*-vdm-disposable-*`): paging and temp files.
    Disposable,
    /// A persistent disk (`*-vdm-user-disk-*`, or `mode = "independent-persistent"`).
    Persistent,
    /// Horizon's internal disk (`*-vdm-internal-*`, `*-internal-*`).
    Internal,
    /// A delta of a VM whose `.vmsd` lists snapshots.
    Snapshot,
    /// A disk without a parent.
    Base,
    /// None of the above can be told (the chain failed, a delta without a parent).
    Unknown,
}

impl Role {
    /// The name in JSON, CSV and tables.
    pub fn name(self) -> &'static str {
        match self {
            Role::OsDelta => "os_delta",
            Role::Replica => "replica",
            Role::Disposable => "disposable",
            Role::Persistent => "persistent",
            Role::Internal => "internal",
            Role::Snapshot => "snapshot",
            Role::Base => "base",
            Role::Unknown => "unknown",
        }
    }
}

/// What [`role`] looks at besides the file name.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoleFacts<'a> {
    /// Whether the disk is a delta; `None` when its chain could not be opened.
    pub is_delta: Option<bool>,
    /// Layers of its chain, when opened.
    pub layers: Option<usize>,
    /// Other disks have it as their parent.
    pub has_children: bool,
    /// The `mode` of the `.vmx` device that uses it.
    pub vmx_mode: Option<&'a str>,
    /// The VM that uses it lists snapshots in its `.vmsd`.
    pub vm_has_snapshots: bool,
}

/// The role of the disk whose top layer is `path`. Names decide first (Horizon's disposable,
/// persistent and internal disks, replicas), then the `.vmx` mode, then the chain.
pub fn role(path: &Path, f: &RoleFacts) -> Role {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let stem = name.strip_suffix(".vmdk").unwrap_or(&name);
    if stem.contains("-vdm-disposable-") {
        return Role::Disposable;
    }
    if stem.contains("-vdm-user-disk-") {
        return Role::Persistent;
    }
    if stem.contains("-internal-") || stem.ends_with("-internal") {
        return Role::Internal;
    }
    if f.vmx_mode
        .is_some_and(|m| m.eq_ignore_ascii_case("independent-persistent"))
    {
        return Role::Persistent;
    }
    if stem.starts_with("replica-") && f.is_delta != Some(true) {
        return Role::Replica;
    }
    match (f.is_delta, f.layers) {
        (Some(true), Some(n)) if n > 1 => {
            if f.vm_has_snapshots {
                Role::Snapshot
            } else {
                Role::OsDelta
            }
        }
        (Some(false), _) if f.has_children => Role::Replica,
        (Some(false), _) => Role::Base,
        _ => Role::Unknown,
    }
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
        let f = discover(root, &PathRules::default()).unwrap();
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
        assert!(matches!(
            discover(t.path(), &PathRules::default()),
            Err(Error::Usage(_))
        ));
    }
}
