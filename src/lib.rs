//! deltascope: disk-image forensics for VMware linked clones and snapshots. Where did a delta
//! disk's growth go: into space that was zero below it (fresh), over data below it
//! (overwritten), rewriting what was there (identical), or zeroing it?
//!
//! The data flow, top to bottom:
//! 1. Every input file is opened read-only and mapped read-only (or read with `pread`);
//!    fields are read from it with bounds checks.
//! 2. Descriptors and extents (KDMV hosted sparse and streamOptimized, COWD, SESparse, flat,
//!    ZERO) are parsed into validated allocation maps.
//! 3. [`Chain::open`] follows `parentFileNameHint` from the top layer down to the base,
//!    checking CIDs, depth and loops.
//! 4. [`scan_chain`] classifies every grain and 4 KiB block of each layer against the
//!    composed view of the layers below it, in parallel on the caller's rayon pool, and
//!    returns a [`ScanReport`] (the JSON contract of `deltascope scan --json`).
//! 5. [`blame_chain`] attributes the top layer's bytes to the guest's NTFS files.
//! 6. [`lun`] models VMFS metadata locking and the VMs a LUN can take, on numbers alone.
//!
//! The library never prints or draws: progress comes in through a [`Progress`], warnings
//! travel in the reports. The command line (`deltascope`, the default `cli` feature) adds
//! the arguments, renderers, charts, progress bars and the history store; without it
//! (`default-features = false`) the engine builds without clap, plotters, rusqlite and
//! indicatif.
//!
//! ```
//! use deltascope::{Chain, ChainOptions, NoProgress, ScanOptions, scan_chain, scan_report};
//!
//! let chain = Chain::open(
//!     "testdata/demo/win10-clone-000002.vmdk".as_ref(),
//!     &ChainOptions::default(),
//! )?;
//! // On the current rayon pool; no layer cache.
//! let report = scan_report(&scan_chain(&chain, &ScanOptions::default(), &NoProgress, None)?);
//! let top = report.chain.last().expect("a chain has a top layer");
//! // Every allocated byte of a layer falls in exactly one class.
//! assert_eq!(top.classes.total(), top.allocated_bytes);
//! println!(
//!     "{}: {} bytes fresh, {} overwritten",
//!     top.path, top.classes.fresh, top.classes.overwritten
//! );
//! # Ok::<(), deltascope::Error>(())
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

/// deltascope's version, written into every JSON report and every layer cache key.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// The engine, floor by floor. The modules shown in the documentation (`error`, `lun`,
// `report`) and the re-exports below are the library's surface; the others are public only
// for the benches, the fuzz crate and the integration tests, and may change at any time.
#[doc(hidden)]
pub mod blame;
#[doc(hidden)]
pub mod bytes;
#[doc(hidden)]
pub mod cache;
#[doc(hidden)]
pub mod ceiling;
#[doc(hidden)]
pub mod chain;
#[doc(hidden)]
pub mod classify;
#[doc(hidden)]
pub mod datastore;
#[doc(hidden)]
pub mod diff;
pub mod error;
#[doc(hidden)]
pub mod files;
#[doc(hidden)]
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod guest;
#[doc(hidden)]
pub mod history;
#[doc(hidden)]
pub mod layer;
pub mod lun;
#[doc(hidden)]
pub mod map;
#[doc(hidden)]
pub mod outfile;
#[doc(hidden)]
pub mod progress;
pub mod report;
#[doc(hidden)]
pub mod sanitize;
#[doc(hidden)]
pub mod scan;
#[doc(hidden)]
pub mod source;
#[doc(hidden)]
pub mod units;
#[doc(hidden)]
pub mod verdict;
#[doc(hidden)]
pub mod view;

// The command line (feature `cli`): public only for the `deltascope` binary.
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod chart;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cmd;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod render;

pub use blame::{Blame, GroupBy, blame_chain};
pub use chain::{Chain, ChainOptions, DEFAULT_MAX_DEPTH};
pub use classify::ClassCounts;
pub use error::{Error, Result, Warning};
pub use progress::{NoProgress, Progress};
pub use report::blame::BlameReport;
pub use report::blame::blame_report;
pub use report::{LayerReport, ScanReport, WarningReport, scan_report};
pub use scan::{ChainScan, ScanOptions, scan_chain};
pub use source::ReadMode;
