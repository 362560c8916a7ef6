//! The one error type of the library, and the warnings that travel in reports.
//!
//! Format parsers (`format/`, `bytes.rs`) know nothing of paths: they return a path-free
//! [`Corrupt`] that names the on-disk structure, its absolute byte offset and what was wrong,
//! or a [`ReadError`] when the read itself failed. `layer.rs` attaches the file's path once, on
//! the way up ([`ReadError::in_file`], [`Error::Corrupt`]). Messages follow one shape:
//! lowercase clauses, offsets in hex, what was found and what was allowed.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::sanitize::sanitize;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An on-disk structure, named in corruption errors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Structure {
    /// The text descriptor; `line` is 1-based, 0 when the whole text is meant.
    Descriptor {
        /// Line number in the descriptor text (1-based), 0 for the whole text.
        line: usize,
    },
    /// The 512-byte `KDMV` header of a hosted sparse extent.
    KdmvHeader,
    /// The footer copy of the `KDMV` header at the end of a streamOptimized file.
    StreamFooter,
    /// A streamOptimized marker (grain, grain table, grain directory, footer, end of stream).
    StreamMarker,
    /// A compressed grain of a streamOptimized extent.
    CompressedGrain {
        /// Index of the grain in the extent's virtual space.
        grain: u64,
    },
    /// The primary grain directory.
    GrainDirectory,
    /// The redundant (secondary) grain directory of a `KDMV` extent.
    RedundantGrainDirectory,
    /// One grain table.
    GrainTable {
        /// Index of the table in the grain directory.
        index: u64,
    },
    /// The 2048-byte header of a `COWD` (vmfsSparse) extent.
    CowdHeader,
    /// The constant header of an SESparse extent.
    SesparseHeader,
    /// The volatile header of an SESparse extent.
    SesparseVolatileHeader,
    /// The data of an extent (grains, flat data).
    ExtentData,
    /// An extent line of a descriptor, by position.
    Extent {
        /// Index of the extent (0-based) in the descriptor.
        index: usize,
    },
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Structure::Descriptor { line: 0 } => write!(f, "descriptor"),
            Structure::Descriptor { line } => write!(f, "descriptor line {line}"),
            Structure::KdmvHeader => write!(f, "KDMV header"),
            Structure::StreamFooter => write!(f, "streamOptimized footer"),
            Structure::StreamMarker => write!(f, "streamOptimized marker"),
            Structure::CompressedGrain { grain } => write!(f, "compressed grain {grain}"),
            Structure::GrainDirectory => write!(f, "grain directory"),
            Structure::RedundantGrainDirectory => write!(f, "redundant grain directory"),
            Structure::GrainTable { index } => write!(f, "grain table {index}"),
            Structure::CowdHeader => write!(f, "COWD header"),
            Structure::SesparseHeader => write!(f, "SESparse constant header"),
            Structure::SesparseVolatileHeader => write!(f, "SESparse volatile header"),
            Structure::ExtentData => write!(f, "extent data"),
            Structure::Extent { index } => write!(f, "extent {index}"),
        }
    }
}

/// What was wrong with a structure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptKind {
    /// The magic number is not the one the format requires.
    BadMagic {
        /// The magic the format requires.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// The file is not a VMDK file at all; what it looks like is said in words (`a qcow2
    /// image`, `text`), never by quoting its bytes (it may be `/etc/shadow`).
    NotVmdk {
        /// What the file looks like.
        looks_like: String,
        /// What a VMDK file starts with.
        expected: String,
    },
    /// A range lies (partly) past the end of the file.
    OutOfBounds {
        /// Absolute offset of the range.
        offset: u64,
        /// Length of the range in bytes.
        len: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// A field holds a value outside what the format allows.
    BadValue {
        /// The field, as FORMATS.md spells it.
        field: &'static str,
        /// The value found.
        found: u64,
        /// What is allowed, in words.
        allowed: String,
    },
    /// Arithmetic on a field overflowed 64 bits.
    Overflow {
        /// The field involved.
        field: &'static str,
    },
    /// A count is larger than the format or the file can hold.
    TooMany {
        /// The field holding the count.
        field: &'static str,
        /// The count found.
        found: u64,
        /// The largest count allowed here.
        max: u64,
    },
    /// Two copies of the same data disagree.
    Mismatch {
        /// What disagrees.
        field: String,
        /// Value in the primary copy.
        primary: u64,
        /// Value in the redundant copy.
        redundant: u64,
    },
    /// Text that cannot be parsed.
    Syntax {
        /// What was expected and what was found, in words.
        message: String,
    },
    /// Two structures claim the same bytes of the file.
    Overlap {
        /// What overlaps what, in words.
        message: String,
    },
    /// Compressed data that does not inflate to what its marker says.
    Decompress {
        /// The inflater's complaint, or the size mismatch.
        message: String,
    },
}

/// A corrupt structure at an absolute offset of one file (the file itself is named by the
/// caller, see [`Error::Corrupt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    /// Which structure.
    pub structure: Structure,
    /// Absolute byte offset of the structure (or of the offending field) in its file.
    pub offset: u64,
    /// What is wrong.
    pub kind: CorruptKind,
}

impl Corrupt {
    /// Builds a corruption report.
    pub fn new(structure: Structure, offset: u64, kind: CorruptKind) -> Self {
        Corrupt {
            structure,
            offset,
            kind,
        }
    }

    /// Shorthand for [`CorruptKind::BadValue`].
    pub fn bad_value(
        structure: Structure,
        offset: u64,
        field: &'static str,
        found: u64,
        allowed: impl Into<String>,
    ) -> Self {
        Corrupt::new(
            structure,
            offset,
            CorruptKind::BadValue {
                field,
                found,
                allowed: allowed.into(),
            },
        )
    }

    /// Shorthand for [`CorruptKind::Overflow`].
    pub fn overflow(structure: Structure, offset: u64, field: &'static str) -> Self {
        Corrupt::new(structure, offset, CorruptKind::Overflow { field })
    }

    /// Shorthand for [`CorruptKind::Syntax`].
    pub fn syntax(structure: Structure, offset: u64, message: impl Into<String>) -> Self {
        Corrupt::new(
            structure,
            offset,
            CorruptKind::Syntax {
                message: message.into(),
            },
        )
    }
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {:#x}: ", self.structure, self.offset)?;
        match &self.kind {
            CorruptKind::BadMagic { expected, found } => {
                write!(f, "magic is {found}, expected {expected}")
            }
            CorruptKind::NotVmdk {
                looks_like,
                expected,
            } => write!(
                f,
                "not a VMDK file: it looks like {looks_like}; expected {expected}"
            ),
            CorruptKind::OutOfBounds {
                offset,
                len,
                file_len,
            } => write!(
                f,
                "{len:#x} bytes at {offset:#x} reach past the end of the file ({file_len:#x} bytes)"
            ),
            CorruptKind::BadValue {
                field,
                found,
                allowed,
            } => write!(f, "{field} is {found:#x}, expected {allowed}"),
            CorruptKind::Overflow { field } => write!(f, "{field} overflows 64-bit arithmetic"),
            CorruptKind::TooMany { field, found, max } => {
                write!(f, "{field} is {found}, more than the {max} allowed here")
            }
            CorruptKind::Mismatch {
                field,
                primary,
                redundant,
            } => write!(
                f,
                "{field} differs: primary {primary:#x}, redundant {redundant:#x}"
            ),
            CorruptKind::Syntax { message } => write!(f, "{}", sanitize(message)),
            CorruptKind::Overlap { message } => write!(f, "{message}"),
            CorruptKind::Decompress { message } => write!(f, "{message}"),
        }
    }
}

/// A failure reading one file, before anyone has said which file: the bytes are corrupt, or
/// the read itself failed. What `format/` and [`ReadAt`](crate::bytes::ReadAt) return; the
/// caller that opened the file names it with [`ReadError::in_file`].
#[derive(Debug)]
pub enum ReadError {
    /// A structure is corrupt.
    Corrupt(Corrupt),
    /// The operating system refused a read or an allocation.
    Io {
        /// What was being done ("read", "allocate a buffer", ...).
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ReadError {
    /// The error with the path of the file it happened in.
    pub fn in_file(self, path: &Path) -> Error {
        match self {
            ReadError::Corrupt(corrupt) => Error::corrupt(path, corrupt),
            ReadError::Io { op, source } => Error::io(path, op, source),
        }
    }

    /// An allocation of `what` that cannot be made: an error, never an abort.
    pub fn out_of_memory(op: &'static str, detail: String) -> Self {
        ReadError::Io {
            op,
            source: std::io::Error::new(std::io::ErrorKind::OutOfMemory, detail),
        }
    }
}

impl From<Corrupt> for ReadError {
    fn from(c: Corrupt) -> Self {
        ReadError::Corrupt(c)
    }
}

/// Problems with how the layers of a chain fit together.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// The parent named by `parentFileNameHint` does not exist.
    ParentMissing {
        /// The delta whose parent is missing.
        child: PathBuf,
        /// The hint, as written.
        hint: String,
        /// Every path deltascope looked for, in order.
        looked_for: Vec<PathBuf>,
    },
    /// An absolute `parentFileNameHint` does not exist here, and several files could be it.
    ParentAmbiguous {
        /// The delta.
        child: PathBuf,
        /// The hint, as written.
        hint: String,
        /// The files that match it.
        candidates: Vec<PathBuf>,
    },
    /// Following parents leads back to a layer already in the chain.
    Cycle {
        /// The chain from the top to the repeated layer.
        paths: Vec<PathBuf>,
    },
    /// More layers than the depth cap allows.
    TooDeep {
        /// Depth reached.
        depth: usize,
        /// The cap (`--max-depth`).
        cap: usize,
    },
    /// The parent's CID is not the child's parentCID (an error only under `--strict`).
    CidMismatch {
        /// The delta.
        child: PathBuf,
        /// The CID it records for its parent (`parentCID`).
        expected: u32,
        /// The parent's CID.
        found: u32,
    },
}

/// Every error the library reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening, reading or statting a file, or writing an output, failed.
    #[error("{}: {op}: {source}", display_path(path))]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done ("open", "read", "map", ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The image is corrupt.
    #[error("{}: {corrupt}", display_path(path))]
    Corrupt {
        /// The file holding the corrupt structure.
        path: PathBuf,
        /// What is corrupt, and where.
        corrupt: Corrupt,
    },
    /// The input cannot be read as asked, by design (a raw device mapping, an extent opened
    /// without its descriptor): the message says what to open instead.
    #[error("{}: cannot be read: {}", display_path(path), sanitize(why))]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why, and what to do instead.
        why: String,
    },
    /// The image is valid but uses something this version does not read.
    #[error("{}: not supported yet: {}", display_path(path), sanitize(what))]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported (a createType, an extent type, a flag).
        what: String,
    },
    /// The chain of layers is broken.
    #[error("{}", display_chain(.0))]
    Chain(ChainError),
    /// A warning that `--strict` turned into an error.
    #[error("{0} (an error because of --strict)")]
    Strict(Warning),
    /// A file changed while it was being read.
    #[error(
        "{}: changed while it was being read ({what}); the results are not trustworthy, scan again",
        display_path(path)
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// What changed (length, modification time).
        what: String,
    },
    /// A combination of options clap cannot express.
    #[error("{0}")]
    Usage(String),
    /// Any other failure of an analysis step, with its context.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Wraps an I/O error with the path and the operation.
    pub fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }

    /// Attaches a path to a path-free corruption report.
    pub fn corrupt(path: &Path, corrupt: Corrupt) -> Self {
        Error::Corrupt {
            path: path.to_path_buf(),
            corrupt,
        }
    }

    /// Whether this is a usage error (exit code 2) rather than bad input (exit code 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}

fn display_path(path: &Path) -> String {
    sanitize(&path.display().to_string())
}

/// Text from an image in double quotes, sanitized for a terminal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", sanitize(text))
}

fn display_chain(e: &ChainError) -> String {
    match e {
        ChainError::ParentMissing {
            child,
            hint,
            looked_for,
        } => {
            let looked: Vec<String> = looked_for.iter().map(|p| display_path(p)).collect();
            let whereto = match looked.as_slice() {
                [] => "found no place to look for it".to_string(),
                [one] => format!("looked for {one}, which does not exist"),
                [rest @ .., last] => {
                    format!("looked for {} and {last}: none exists", rest.join(", "))
                }
            };
            let map_hint = if hint.starts_with("/vmfs/volumes/") {
                "; on a copy of an ESXi datastore, say where /vmfs/volumes/<datastore> is with --map PREFIX=DIR"
            } else {
                ""
            };
            format!(
                "{}: parent not found: parentFileNameHint names {}; {whereto}{map_hint}",
                display_path(child),
                quoted(hint),
            )
        }
        ChainError::ParentAmbiguous {
            child,
            hint,
            candidates,
        } => {
            let c: Vec<String> = candidates.iter().map(|p| display_path(p)).collect();
            format!(
                "{}: parentFileNameHint names {}, which does not exist here, and {} files could be it: {}; say which with --map PREFIX=DIR",
                display_path(child),
                quoted(hint),
                c.len(),
                c.join(", ")
            )
        }
        ChainError::Cycle { paths } => {
            let names: Vec<String> = paths.iter().map(|p| display_path(p)).collect();
            format!("parent loop: {}", names.join(" -> "))
        }
        ChainError::TooDeep { depth, cap } => format!(
            "chain is deeper than {cap} layers (reached {depth}); raise --max-depth if this is real"
        ),
        ChainError::CidMismatch {
            child,
            expected,
            found,
        } => format!(
            "{}: parentCID is {expected:08x} but the parent's CID is {found:08x}: the parent changed after this delta was taken",
            display_path(child)
        ),
    }
}

/// Something worth telling that does not stop the analysis (unless `--strict`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    /// The parent's CID is not the child's parentCID.
    CidMismatch {
        /// The delta.
        child: PathBuf,
        /// Its `parentCID`.
        expected: String,
        /// The parent's `CID`.
        found: String,
    },
    /// An SESparse extent was not closed cleanly; its tables may be stale.
    DirtyJournal {
        /// The extent.
        path: PathBuf,
        /// What says it is dirty.
        detail: String,
    },
    /// A hosted sparse extent says it was not shut down cleanly.
    UncleanShutdown {
        /// The extent.
        path: PathBuf,
    },
    /// Entries whose meaning differs between readers (COWD GTE 1).
    ReaderDependent {
        /// The extent.
        path: PathBuf,
        /// What was found and how deltascope reads it.
        detail: String,
    },
    /// An absolute `parentFileNameHint` does not exist here, and its parent was found by a
    /// fallback (see `chain::resolve_name`) rather than by the hint or `--map`.
    ParentRemapped {
        /// The delta.
        child: PathBuf,
        /// The hint, as written.
        hint: String,
        /// The file used as its parent.
        used: PathBuf,
        /// How that file was found.
        how: String,
    },
    /// A file of the chain lies outside the evidence tree (the top's folder and the scanned
    /// roots): an absolute or `..` extent, a parent hint pointing elsewhere.
    OutsideTree {
        /// The file.
        path: PathBuf,
        /// The folders the chain's files were expected in.
        roots: String,
    },
    /// The top's parent view holds an NTFS volume that cannot be read, so the scan does not
    /// split the top's overwritten bytes by it (`ntfs_overwritten` is null).
    GuestUnreadable {
        /// The top layer.
        path: PathBuf,
        /// What could not be read, and why.
        detail: String,
    },
    /// Any other observation about a layer.
    Note {
        /// The file concerned.
        path: PathBuf,
        /// The observation.
        detail: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::CidMismatch {
                child,
                expected,
                found,
            } => write!(
                f,
                "{}: parentCID is {expected} but the parent's CID is {found}: the parent changed after this delta was taken, so parent data may not be what the delta was made against",
                display_path(child)
            ),
            Warning::DirtyJournal { path, detail } => write!(
                f,
                "{}: not closed cleanly ({detail}); ESXi would replay its journal first, so its grain tables may be stale",
                display_path(path)
            ),
            Warning::UncleanShutdown { path } => write!(
                f,
                "{}: the header says the disk was not shut down cleanly",
                display_path(path)
            ),
            Warning::ReaderDependent { path, detail } => {
                write!(f, "{}: {}", display_path(path), sanitize(detail))
            }
            Warning::ParentRemapped {
                child,
                hint,
                used,
                how,
            } => write!(
                f,
                "{}: parentFileNameHint names {}, which does not exist here; using {} ({}); give --map PREFIX=DIR to say where the datastore is",
                display_path(child),
                quoted(hint),
                display_path(used),
                sanitize(how)
            ),
            Warning::Note { path, detail } => {
                write!(f, "{}: {}", display_path(path), sanitize(detail))
            }
            Warning::GuestUnreadable { path, detail } => write!(
                f,
                "{}: the parent view's NTFS volume cannot be read, so overwritten bytes are not split into live parent data and parent free space: {}",
                display_path(path),
                sanitize(detail)
            ),
            Warning::OutsideTree { path, roots } => write!(
                f,
                "{}: lies outside the evidence tree ({}) and is read as part of the chain; --confine refuses such files",
                display_path(path),
                sanitize(roots)
            ),
        }
    }
}
