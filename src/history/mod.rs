//! The history store: a time series of scans per disk, in one SQLite file (the embedded
//! default) or in a PostgreSQL database shared by many scanners. It owns the schema and its
//! migrations ([`schema`]), segmenting (a delta smaller than the point before it is a
//! refreshed or recomposed clone: a new segment), and reading series back. [`import`] turns
//! other tools' CSV exports into points, [`forecast`] fits and projects them, [`time`] reads
//! the times people and tools write.
//!
//! [`Store`] (`store.rs`) is the whole interface: the commands never see SQL, rusqlite or
//! postgres. The rules (`sql.rs`) are written once over both backends (`sqlite.rs`,
//! `pg.rs`), so both give the same answers. The store and its two database crates are the
//! `store` feature; without it this module is the points, names and models alone. The rules
//! it keeps, on both:
//!
//! - **Where.** A [`Location`] is a file path or a `postgresql://` URL (`--db`, else
//!   `$DELTASCOPE_DB`, else a file under the user's data folder), read in two steps as the
//!   command line reads every value: [`StoreSpec`] checks what was written, and
//!   [`Location::resolve`] fills in a URL's defaults from the environment.
//! - **Who creates.** Writers ([`Store::create`]: `scan --record`, `import`, `db migrate`)
//!   create the store: the file and its folder, or the schema in an existing PostgreSQL
//!   database. Everything else opens an existing store ([`Store::open_existing`],
//!   [`Store::open_read`]) and says "no history store at LOCATION" when there is none.
//! - **Writes are transactions that wait.** Every write is one transaction that takes the
//!   store's write lock first (SQLite's `BEGIN IMMEDIATE`, a PostgreSQL advisory lock),
//!   waiting for another writer up to [`BUSY_TIMEOUT`]. A whole datastore scan or import is
//!   one transaction: all its points or none.
//! - **Versioned migrations.** `schema_migrations` lists each migration applied; they run in
//!   order inside such a transaction, re-reading the version once the lock is held, so
//!   processes opening a fresh store at once run each migration once. A newer schema than
//!   this build knows is refused.
//! - **Names.** A disk recorded from a path is named by [`disk_name`], which keeps paths
//!   apart that differ only in bytes that are not UTF-8; [`site_name`] prefixes a site
//!   (`--site`), so that two hosts' identical paths stay two disks in a shared store.

// Without the `store` feature the module is the store's data and models only; the links
// above to `Store` then lead nowhere.
#![cfg_attr(not(feature = "store"), allow(rustdoc::broken_intra_doc_links))]

pub mod fill;
pub mod forecast;
pub mod import;
#[cfg(feature = "store")]
mod pg;
#[cfg(feature = "store")]
pub mod pgpass;
pub mod schema;
#[cfg(feature = "store")]
mod sql;
#[cfg(feature = "store")]
mod sqlite;
#[cfg(feature = "store")]
mod store;
pub mod time;
#[cfg(feature = "store")]
pub mod tls;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[cfg(feature = "store")]
pub use pg::{ServerUrl, Target, WRITE_LOCK};
pub use schema::{MIGRATIONS, Migration};
#[cfg(feature = "store")]
pub use store::{
    BUSY_TIMEOUT, Change, Health, Location, Migrated, Readiness, Recorded, Step, Store, StoreSpec,
    TlsSeen, default_db,
};
#[cfg(feature = "store")]
use store::{Refused, State, too_new};

/// The largest size a point can hold: both stores keep signed 64-bit integers.
pub const MAX_BYTES: u64 = i64::MAX as u64;

/// A test-only hook, documented in docs/RELIABILITY.md: when this variable names a file, a
/// write of several points creates that file half-way through its transaction and waits
/// while the file exists (at most ten minutes), so a test can kill the process there.
pub const PAUSE_HOOK: &str = "DELTASCOPE_TEST_PAUSE_IN_RECORD";

/// One point of a disk's series.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Point {
    /// Stable disk identity: `--disk`, or [`disk_name`] of the top layer's canonical path
    /// (after [`site_name`]'s prefix, with `--site`).
    pub disk: String,
    /// When the disk had this size.
    #[serde(serialize_with = "ser_time")]
    pub at: DateTime<Utc>,
    /// Segment number (0 first); a new one starts when the delta shrank.
    pub segment: i64,
    /// The top layer's allocated bytes (or the exported snapshot size).
    pub bytes: u64,
    /// Size of the top layer's files on disk.
    pub file_size: Option<u64>,
    /// Virtual size.
    pub virtual_size: Option<u64>,
    /// Grain size of the top layer.
    pub grain_size: Option<u64>,
    /// CID of the top layer (recorded, never splits a series).
    pub cid: Option<String>,
    /// Class bytes of the top layer: fresh, overwritten, identical, zeroed.
    pub classes: Option<[u64; 4]>,
    /// Hard ceiling of the top layer.
    pub hard_ceiling: Option<u64>,
    /// Expected ceiling if fresh-first allocation continues.
    pub expected_ceiling: Option<u64>,
    /// Where the point came from: scan, rvtools, powercli, plain.
    pub source: String,
    /// Per-layer summary (JSON text), for scans.
    #[serde(skip)]
    pub layers: Option<String>,
}

fn ser_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

pub use crate::units::format_time;

impl Point {
    /// What the forecast model reads of the point.
    pub fn sample(&self) -> forecast::Sample {
        forecast::Sample {
            at: self.at,
            segment: self.segment,
            bytes: self.bytes,
            expected_ceiling: self.expected_ceiling,
            hard_ceiling: self.hard_ceiling,
        }
    }
}

/// Parses `2026-11-01T08:00:00Z` (any RFC 3339 offset), or a date or date and time without
/// a zone (`2026-11-01`, `2026-11-01 08:00`) as UTC. See [`time::parse_arg`] for other zones.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    time::parse_arg(s, time::Zone::Utc).ok()
}

/// The disk name of a file: its path as it is when that is UTF-8 text without a backslash;
/// otherwise every backslash doubled and every byte that is not UTF-8 written `\xNN`
/// (uppercase hex). Two different paths never get the same name (`vm\xe9` and `vm\xe8`,
/// which a lossy conversion would both turn into `vm\u{fffd}`), and the names of ordinary
/// paths are the paths, as stores made before this rule hold them.
pub fn disk_name(path: &Path) -> String {
    let bytes = path.as_os_str().as_encoded_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.contains('\\') => s.to_string(),
        _ => escape_bytes(bytes),
    }
}

/// A name from other text (an imported CSV cell): kept as it is when it is UTF-8, else
/// escaped as [`disk_name`] escapes a path.
pub fn text_name(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => escape_bytes(bytes),
    }
}

fn escape_bytes(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

/// Checks a site name (`--site`): one or more ASCII letters, digits, `.`, `_` or `-`, so
/// that `SITE:` can never be part of a path-derived name, which starts with `/`. The refusal
/// quotes the name and says what is allowed.
pub fn check_site(site: &str) -> std::result::Result<(), String> {
    let ok = !site.is_empty()
        && site
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{site:?}: a site is named with letters, digits, '.', '_' and '-' (such as paris or dc-2)"
        ))
    }
}

/// The name a disk has in the store when recorded from `site`: `SITE:NAME` (a path-derived
/// `NAME` starts with `/`, so `paris:/vmfs/volumes/ds1/vm/vm.vmdk`); `NAME` alone without
/// a site.
pub fn site_name(site: Option<&str>, name: String) -> String {
    match site {
        Some(s) => format!("{s}:{name}"),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_documented() {
        assert_eq!(
            format_time(&parse_time("2026-11-01T09:00:00+01:00").expect("t")),
            "2026-11-01T08:00:00Z"
        );
        assert_eq!(
            format_time(&parse_time("2026-11-01").expect("t")),
            "2026-11-01T00:00:00Z"
        );
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn disk_names_are_injective_and_keep_plain_paths() {
        use std::os::unix::ffi::OsStrExt;
        let name = |b: &[u8]| disk_name(Path::new(std::ffi::OsStr::from_bytes(b)));
        assert_eq!(name(b"/ds/vm\xc3\xa9/d.vmdk"), "/ds/vm\u{e9}/d.vmdk");
        assert_eq!(name(b"/ds/vm\xe9/d.vmdk"), "/ds/vm\\xE9/d.vmdk");
        assert_eq!(name(b"/ds/vm\xe8/d.vmdk"), "/ds/vm\\xE8/d.vmdk");
        // A path that spells an escape is escaped itself, so it cannot meet one.
        assert_eq!(name(b"/ds/vm\\xE9/d.vmdk"), "/ds/vm\\\\xE9/d.vmdk");
        assert_ne!(name(b"/a\\xE9"), name(b"/a\xe9"));
        assert_eq!(text_name(b"a\\b"), "a\\b");
        assert_eq!(text_name(b"a\xff"), "a\\xFF");
    }
}
