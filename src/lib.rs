//! deltascope: disk-image forensics for VMware linked clones and snapshots.
//!
//! Data flow, top to bottom:
//! 1. [`source`] opens each input file read-only and maps it read-only (or reads with
//!    `pread`); [`bytes`] reads little-endian fields from it with bounds checks.
//! 2. [`format`](mod@format) parses descriptors and extents (KDMV hosted sparse and streamOptimized,
//!    COWD, SESparse, flat, ZERO) into validated allocation maps.
//! 3. [`layer`] turns one descriptor into a [`layer::Layer`] of extents; [`chain`] follows
//!    `parentFileNameHint` down to the base and checks CIDs, depth and loops.
//! 4. [`view`] reads the composed parent view under a layer without building it.
//! 5. [`classify`] walks every grain table of a layer in parallel and classifies each grain
//!    and 4 KiB block against its parent view; [`map`] lists a layer's allocation.
//! 6. [`scan`] runs a whole scan of one chain, or of many at once; [`datastore`] finds the
//!    disks and VMs (`.vmx`, `.vmsd`) of a datastore tree; [`lun`] models VMFS lock frequency
//!    and VMs per LUN.
//! 7. [`guest`] reads partition tables and NTFS cluster owners through a composed view;
//!    [`blame`] attributes the top delta's blocks to guest files.
//! 8. [`history`] keeps scans over time and projects them; [`chart`] draws growth and the
//!    LUN model's sensitivity.
//! 9. [`report`] holds the results (the JSON contract), [`render`] renders them; [`cmd`]
//!    wires the command line ([`cli`]) to all of this.
#![deny(unsafe_code)]

pub mod blame;
pub mod bytes;
pub mod cache;
pub mod ceiling;
pub mod chain;
pub mod chart;
pub mod classify;
pub mod cli;
pub mod cmd;
pub mod datastore;
pub mod error;
pub mod files;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod guest;
pub mod history;
pub mod layer;
pub mod lun;
pub mod map;
pub mod outfile;
pub mod progress;
pub mod render;
pub mod report;
pub mod sanitize;
pub mod scan;
pub mod source;
pub mod units;
pub mod view;
