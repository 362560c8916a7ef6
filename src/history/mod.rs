//! The history store: a time series of scans per disk in one SQLite file (rusqlite, bundled
//! SQLite). It owns the schema and its migrations, segmenting (a delta smaller than the point
//! before it is a refreshed or recomposed clone: a new segment), and reading series back.
//! [`import`] turns other tools' CSV exports into points, [`forecast`] fits and projects them,
//! [`time`] reads the times people and tools write.
//!
//! [`Store`] is the whole interface: the commands never see SQL or rusqlite, so a second
//! backend (PostgreSQL) can sit behind the same methods. The rules it keeps:
//!
//! - **Who creates.** Writers ([`Store::create`]: `scan --record`, `import`) create the file
//!   and its folder; everything else opens an existing store ([`Store::open_existing`],
//!   [`Store::open_read`]) and says "no history store at PATH" when there is none.
//! - **Writes are transactions that wait.** Every write is one `BEGIN IMMEDIATE` transaction
//!   (the write lock is taken first, so two writers never deadlock upgrading a read), retried
//!   on a busy store until [`BUSY_TIMEOUT`]. A whole datastore scan or import is one
//!   transaction: all its points or none, one sync to disk.
//! - **Versioned migrations.** `schema_migrations` lists each migration applied (version and
//!   time); [`MIGRATIONS`] are run in order inside the same kind of transaction, re-reading
//!   the version once the lock is held, so processes opening a fresh store at once run each
//!   migration once. The statements are idempotent (`IF NOT EXISTS`). `PRAGMA user_version`
//!   mirrors the version for older deltascope builds, which refuse a newer schema; a store
//!   made before the table existed is adopted from it.
//! - **Names.** A disk recorded from a path is named by [`disk_name`], which keeps paths
//!   apart that differ only in bytes that are not UTF-8.

// Without the `store` feature the module is the store's data and models only; the links
// above to `Store` then lead nowhere.
#![cfg_attr(not(feature = "store"), allow(rustdoc::broken_intra_doc_links))]

pub mod fill;
pub mod forecast;
pub mod import;
pub mod time;

use std::path::{Path, PathBuf};
use std::time::Duration;
#[cfg(feature = "store")]
use std::time::Instant;

use chrono::{DateTime, Utc};
#[cfg(feature = "store")]
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde::Serialize;

use crate::error::{Error, Result};

/// One step of the schema. A PostgreSQL backend runs its own statements for the same
/// versions; the numbers are what both agree on.
#[derive(Debug)]
pub struct Migration {
    /// Its number, from 1, in order.
    pub version: i64,
    /// What it does.
    pub what: &'static str,
    /// The SQLite statements (idempotent).
    pub sqlite: &'static str,
}

/// The migrations, in order.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    what: "scans: one row per point",
    sqlite: "
    CREATE TABLE IF NOT EXISTS scans (
        id INTEGER PRIMARY KEY,
        disk TEXT NOT NULL,
        at INTEGER NOT NULL,               -- seconds since 1970, UTC
        segment INTEGER NOT NULL,
        bytes INTEGER NOT NULL,            -- the top layer's allocated bytes
        file_size INTEGER,
        virtual_size INTEGER,
        grain_size INTEGER,
        cid TEXT,
        fresh INTEGER, overwritten INTEGER, identical INTEGER, zeroed INTEGER,
        hard_ceiling INTEGER,
        expected_ceiling INTEGER,
        source TEXT NOT NULL,              -- scan, rvtools, powercli, plain
        layers TEXT,                       -- per-layer summary (JSON) for scans
        UNIQUE (disk, at)
    );
    CREATE INDEX IF NOT EXISTS scans_by_disk ON scans (disk, at);
",
}];

/// How long a write waits for another process's write to finish before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest size a point can hold: SQLite integers are signed 64-bit.
pub const MAX_BYTES: u64 = i64::MAX as u64;

/// A test-only hook, documented in docs/RELIABILITY.md: when this variable names a file, a
/// write of several points creates that file half-way through its transaction and waits
/// while the file exists (at most ten minutes), so a test can kill the process there.
pub const PAUSE_HOOK: &str = "DELTASCOPE_TEST_PAUSE_IN_RECORD";

/// One point of a disk's series.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Point {
    /// Stable disk identity: `--disk`, or [`disk_name`] of the top layer's canonical path.
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

/// Where the store lives unless `--db` says otherwise: `$DELTASCOPE_DB`, else
/// `$XDG_DATA_HOME/deltascope/history.sqlite`, else `~/.local/share/deltascope/history.sqlite`.
pub fn default_db() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DELTASCOPE_DB") {
        return Ok(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| Error::Usage("no HOME: give the history file with --db".into()))?;
    Ok(base.join("deltascope/history.sqlite"))
}

/// An open history store.
#[cfg(feature = "store")]
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The schema version; 0 for an empty file (no points).
    version: i64,
}

/// What recording a point did.
#[cfg(feature = "store")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new point, in this segment.
    New {
        /// Its segment.
        segment: i64,
    },
    /// The disk already had a point at that time: nothing was written.
    Duplicate,
}

/// The disks a change touched, as they were before it and as they are after it (read
/// inside its transaction).
#[cfg(feature = "store")]
#[derive(Debug, Clone)]
pub struct Change {
    /// Each disk with its points, before.
    pub before: Vec<(String, Vec<Point>)>,
    /// Each disk with its points, after.
    pub after: Vec<(String, Vec<Point>)>,
}

/// A write refused for what it asked (not for the database): rolled back, passed on.
#[cfg(feature = "store")]
type Refused<T> = std::result::Result<T, Error>;

#[cfg(feature = "store")]
impl Store {
    /// Opens the store at `path` for writing, creating it and its folder when missing, and
    /// migrates it.
    pub fn create(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create folder", e))?;
        }
        Store::connect(path, OpenFlags::SQLITE_OPEN_CREATE)
    }

    /// Opens an existing store for writing (and migrates it); never creates one.
    pub fn open_existing(path: &Path) -> Result<Store> {
        exists(path)?;
        Store::connect(path, OpenFlags::empty())
    }

    /// Opens an existing store for reading; never creates or changes one. It is opened for
    /// writing when the file allows, so that a transaction a killed writer left behind is
    /// rolled back as SQLite does on open, and read-only otherwise.
    pub fn open_read(path: &Path) -> Result<Store> {
        exists(path)?;
        let open = |flags: OpenFlags| {
            Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        };
        let conn = open(OpenFlags::SQLITE_OPEN_READ_WRITE)
            .or_else(|_| open(OpenFlags::SQLITE_OPEN_READ_ONLY))
            .map_err(|e| db_err(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| db_err(path, e))?;
        let version = schema_version(&conn).map_err(|e| db_err(path, e))?;
        check_version(path, version)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            version,
        })
    }

    fn connect(path: &Path, extra: OpenFlags) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | extra,
        )
        .map_err(|e| db_err(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| db_err(path, e))?;
        let (version, versioned) = schema_version_of(&conn).map_err(|e| db_err(path, e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            version,
        };
        if !(versioned && version == MIGRATIONS.len() as i64) {
            store.version = store.write(migrate)?;
        }
        Ok(store)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it, retrying while another
    /// process holds the store (up to [`BUSY_TIMEOUT`]). `f` refusing rolls back.
    fn write<T>(
        &mut self,
        mut f: impl FnMut(&Transaction) -> rusqlite::Result<Refused<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            let attempt = (|| {
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                match f(&tx)? {
                    Ok(v) => {
                        tx.commit()?;
                        Ok(Ok(v))
                    }
                    Err(e) => Ok(Err(e)),
                }
            })();
            match attempt {
                Ok(r) => return r,
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(db_err(&self.path, e)),
            }
        }
    }

    /// Records `points` in one transaction (each one's `segment` is computed here); a point
    /// at a time its disk already has is a duplicate and changes nothing. A size past
    /// [`MAX_BYTES`] refuses them all.
    pub fn record_all(&mut self, points: &[Point]) -> Result<Vec<Recorded>> {
        for p in points {
            check_range(p)?;
        }
        let hook = std::env::var_os(PAUSE_HOOK).map(PathBuf::from);
        self.write(|tx| {
            let mut out = Vec::with_capacity(points.len());
            for (i, p) in points.iter().enumerate() {
                out.push(insert(tx, p)?);
                if let Some(marker) = &hook
                    && points.len() > 1
                    && i + 1 == points.len() / 2
                {
                    pause(marker);
                }
            }
            Ok(Ok(out))
        })
    }

    /// Records one point (see [`Store::record_all`]).
    pub fn record(&mut self, p: &Point) -> Result<Recorded> {
        Ok(self.record_all(std::slice::from_ref(p))?[0])
    }

    /// Deletes the point `disk` has at `at`, in one transaction; the disk's later points
    /// are segmented again without it.
    pub fn delete(&mut self, disk: &str, at: DateTime<Utc>) -> Result<Change> {
        let path = self.path.clone();
        self.write(|tx| {
            let before = points_of(tx, disk)?;
            if before.is_empty() {
                return Ok(Err(unknown_disk(tx, &path, disk)?));
            }
            let n = tx.execute(
                "DELETE FROM scans WHERE disk = ?1 AND at = ?2",
                params![disk, at.timestamp()],
            )?;
            if n == 0 {
                let times: Vec<String> = before.iter().map(|p| format_time(&p.at)).collect();
                return Ok(Err(Error::Other(format!(
                    "{}: {disk} has no point at {}; its points are at {}",
                    path.display(),
                    format_time(&at),
                    times.join(", ")
                ))));
            }
            resegment(tx, disk)?;
            let after = points_of(tx, disk)?;
            Ok(Ok(Change {
                before: vec![(disk.to_string(), before)],
                after: vec![(disk.to_string(), after)],
            }))
        })
    }

    /// Gives `old`'s points to `new`, in one transaction. `new` may already have points
    /// (the two series are merged and segmented again) but none at the same time as one of
    /// `old`'s.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<Change> {
        if old == new {
            return Err(Error::Usage(format!(
                "--rename {old:?} {new:?}: the names are the same"
            )));
        }
        let path = self.path.clone();
        self.write(|tx| {
            let old_points = points_of(tx, old)?;
            if old_points.is_empty() {
                return Ok(Err(unknown_disk(tx, &path, old)?));
            }
            let new_points = points_of(tx, new)?;
            let clash: Vec<String> = new_points
                .iter()
                .filter(|p| old_points.iter().any(|q| q.at == p.at))
                .map(|p| format_time(&p.at))
                .collect();
            if !clash.is_empty() {
                return Ok(Err(Error::Other(format!(
                    "{}: {new} already has points at {}, when {old} has points too: delete one of each pair first (history --delete)",
                    path.display(),
                    clash.join(", ")
                ))));
            }
            let mut before = vec![(old.to_string(), old_points)];
            if !new_points.is_empty() {
                before.push((new.to_string(), new_points));
            }
            tx.execute(
                "UPDATE scans SET disk = ?2 WHERE disk = ?1",
                params![old, new],
            )?;
            resegment(tx, new)?;
            let after = vec![(new.to_string(), points_of(tx, new)?)];
            Ok(Ok(Change { before, after }))
        })
    }

    /// Every disk with points, sorted.
    pub fn disks(&self) -> Result<Vec<String>> {
        if self.version == 0 {
            return Ok(Vec::new());
        }
        disks_of(&self.conn).map_err(|e| db_err(&self.path, e))
    }

    /// The points of `disk`, oldest first.
    pub fn points(&self, disk: &str) -> Result<Vec<Point>> {
        if self.version == 0 {
            return Ok(Vec::new());
        }
        points_of(&self.conn, disk).map_err(|e| db_err(&self.path, e))
    }

    /// The disks `wanted` names (all when `None`), each with its points; an unknown name is
    /// an error listing the known ones.
    pub fn series(&self, wanted: Option<&str>) -> Result<Vec<(String, Vec<Point>)>> {
        let disks = self.disks()?;
        let chosen: Vec<String> = match wanted {
            Some(w) if disks.iter().any(|d| d == w) => vec![w.to_string()],
            Some(w) => return Err(unknown(&self.path, w, &disks)),
            None => disks,
        };
        chosen
            .into_iter()
            .map(|d| Ok((d.clone(), self.points(&d)?)))
            .collect()
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(feature = "store")]
fn exists(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Err(Error::Other(format!(
            "no history store at {} (scan --record or import create one)",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(feature = "store")]
fn check_version(path: &Path, version: i64) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(Error::Other(format!(
            "{}: history schema version {version} is newer than this deltascope knows ({known}); upgrade deltascope",
            path.display()
        )));
    }
    Ok(())
}

/// The schema version: the highest migration in `schema_migrations`, or `PRAGMA
/// user_version` for a store made before that table.
#[cfg(feature = "store")]
fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(schema_version_of(conn)?.0)
}

/// The schema version, and whether `schema_migrations` gave it.
#[cfg(feature = "store")]
fn schema_version_of(conn: &Connection) -> rusqlite::Result<(i64, bool)> {
    let table: bool = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if table {
        let v: Option<i64> =
            conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })?;
        if let Some(v) = v {
            return Ok((v, true));
        }
    }
    Ok((
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))?,
        false,
    ))
}

/// Brings the schema up to date inside the caller's transaction; the version after.
#[cfg(feature = "store")]
fn migrate(tx: &Transaction) -> rusqlite::Result<Refused<i64>> {
    let mut version = schema_version(tx)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Ok(Err(Error::Other(format!(
            "history schema version {version} is newer than this deltascope knows ({known}); upgrade deltascope"
        ))));
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL
        )",
    )?;
    let now = format_time(&Utc::now());
    // A store from before the table: its user_version says which migrations it has.
    for m in MIGRATIONS.iter().take_while(|m| m.version <= version) {
        tx.execute(
            "INSERT OR IGNORE INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![m.version, now],
        )?;
    }
    let from = version;
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        tx.execute_batch(m.sqlite)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![m.version, now],
        )?;
        version = m.version;
    }
    if tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? != version {
        tx.pragma_update(None, "user_version", version)?;
    }
    Ok(Ok(version))
}

#[cfg(feature = "store")]
fn check_range(p: &Point) -> Result<()> {
    let fields = [
        ("bytes", Some(p.bytes)),
        ("file size", p.file_size),
        ("virtual size", p.virtual_size),
        ("grain size", p.grain_size),
        ("hard ceiling", p.hard_ceiling),
        ("expected ceiling", p.expected_ceiling),
    ];
    let classes = p
        .classes
        .iter()
        .flatten()
        .map(|&c| ("class bytes", Some(c)));
    for (what, v) in fields.into_iter().chain(classes) {
        if let Some(v) = v
            && v > MAX_BYTES
        {
            return Err(Error::Other(format!(
                "{} at {}: {what} {v} is more than the {MAX_BYTES} the history store holds: nothing recorded",
                p.disk,
                format_time(&p.at)
            )));
        }
    }
    Ok(())
}

/// Inserts one point; its segment follows the point before it, and a point inserted before
/// later ones segments the disk again.
#[cfg(feature = "store")]
fn insert(tx: &Transaction, p: &Point) -> rusqlite::Result<Recorded> {
    let at = p.at.timestamp();
    let exists: Option<i64> = tx
        .query_row(
            "SELECT id FROM scans WHERE disk = ?1 AND at = ?2",
            params![p.disk, at],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_some() {
        return Ok(Recorded::Duplicate);
    }
    let before: Option<(i64, i64)> = tx
        .query_row(
            "SELECT segment, bytes FROM scans WHERE disk = ?1 AND at < ?2 ORDER BY at DESC LIMIT 1",
            params![p.disk, at],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let segment = match before {
        Some((seg, bytes)) if (p.bytes as i64) < bytes => seg + 1,
        Some((seg, _)) => seg,
        None => 0,
    };
    let c = p.classes;
    // Every figure was checked against MAX_BYTES (check_range): the casts are exact.
    let i = |v: Option<u64>| v.map(|v| v as i64);
    tx.execute(
        "INSERT INTO scans (disk, at, segment, bytes, file_size, virtual_size, grain_size, cid,
            fresh, overwritten, identical, zeroed, hard_ceiling, expected_ceiling, source, layers)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            p.disk,
            at,
            segment,
            p.bytes as i64,
            i(p.file_size),
            i(p.virtual_size),
            i(p.grain_size),
            p.cid,
            i(c.map(|c| c[0])),
            i(c.map(|c| c[1])),
            i(c.map(|c| c[2])),
            i(c.map(|c| c[3])),
            i(p.hard_ceiling),
            i(p.expected_ceiling),
            p.source,
            p.layers,
        ],
    )?;
    let later: Option<i64> = tx
        .query_row(
            "SELECT id FROM scans WHERE disk = ?1 AND at > ?2 LIMIT 1",
            params![p.disk, at],
            |r| r.get(0),
        )
        .optional()?;
    if later.is_none() {
        return Ok(Recorded::New { segment });
    }
    resegment(tx, &p.disk)?;
    let segment = tx.query_row(
        "SELECT segment FROM scans WHERE disk = ?1 AND at = ?2",
        params![p.disk, at],
        |r| r.get(0),
    )?;
    Ok(Recorded::New { segment })
}

/// Numbers the disk's segments again from its first point: a point smaller than the one
/// before it starts a new one.
#[cfg(feature = "store")]
fn resegment(tx: &Transaction, disk: &str) -> rusqlite::Result<()> {
    let rows: Vec<(i64, i64, i64)> = {
        let mut st =
            tx.prepare("SELECT id, segment, bytes FROM scans WHERE disk = ?1 ORDER BY at")?;
        st.query_map(params![disk], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut seg = 0;
    let mut prev: Option<i64> = None;
    for (id, old, bytes) in rows {
        if prev.is_some_and(|p| bytes < p) {
            seg += 1;
        }
        prev = Some(bytes);
        if old != seg {
            tx.execute(
                "UPDATE scans SET segment = ?2 WHERE id = ?1",
                params![id, seg],
            )?;
        }
    }
    Ok(())
}

#[cfg(feature = "store")]
fn disks_of(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare("SELECT DISTINCT disk FROM scans ORDER BY disk")?;
    st.query_map([], |r| r.get(0))?.collect()
}

#[cfg(feature = "store")]
fn points_of(conn: &Connection, disk: &str) -> rusqlite::Result<Vec<Point>> {
    let mut st = conn.prepare(
        "SELECT disk, at, segment, bytes, file_size, virtual_size, grain_size, cid, fresh,
            overwritten, identical, zeroed, hard_ceiling, expected_ceiling, source, layers
         FROM scans WHERE disk = ?1 ORDER BY at",
    )?;
    st.query_map(params![disk], |r| {
        let u = |i: usize| -> rusqlite::Result<Option<u64>> {
            Ok(r.get::<_, Option<i64>>(i)?.map(|v| v.max(0) as u64))
        };
        let classes = match (u(8)?, u(9)?, u(10)?, u(11)?) {
            (Some(a), Some(b), Some(c), Some(d)) => Some([a, b, c, d]),
            _ => None,
        };
        Ok(Point {
            disk: r.get(0)?,
            at: DateTime::from_timestamp(r.get(1)?, 0).unwrap_or_default(),
            segment: r.get(2)?,
            bytes: r.get::<_, i64>(3)?.max(0) as u64,
            file_size: u(4)?,
            virtual_size: u(5)?,
            grain_size: u(6)?,
            cid: r.get(7)?,
            classes,
            hard_ceiling: u(12)?,
            expected_ceiling: u(13)?,
            source: r.get(14)?,
            layers: r.get(15)?,
        })
    })?
    .collect()
}

#[cfg(feature = "store")]
fn unknown(path: &Path, disk: &str, known: &[String]) -> Error {
    Error::Other(format!(
        "{}: no points for disk {disk:?}; known disks: {}",
        path.display(),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

#[cfg(feature = "store")]
fn unknown_disk(conn: &Connection, path: &Path, disk: &str) -> rusqlite::Result<Error> {
    Ok(unknown(path, disk, &disks_of(conn)?))
}

/// The test hook's wait (see [`PAUSE_HOOK`]).
#[cfg(feature = "store")]
fn pause(marker: &Path) {
    if std::fs::write(marker, b"paused inside a history transaction\n").is_err() {
        return;
    }
    let until = Instant::now() + Duration::from_secs(600);
    while marker.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(feature = "store")]
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(feature = "store")]
fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Other(format!("{}: history store: {e}", path.display()))
}

#[cfg(all(test, feature = "store"))]
mod tests {
    use super::*;

    fn point(disk: &str, at: &str, bytes: u64) -> Point {
        Point {
            disk: disk.into(),
            at: parse_time(at).expect("time"),
            bytes,
            source: "plain".into(),
            ..Point::default()
        }
    }

    #[test]
    fn records_once_and_segments_on_shrink() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = dir.path().join("h.sqlite");
        let mut s = Store::create(&db).expect("open");
        assert_eq!(
            s.record(&point("a", "2026-11-01", 10)).expect("rec"),
            Recorded::New { segment: 0 }
        );
        assert_eq!(
            s.record(&point("a", "2026-11-01", 10)).expect("rec"),
            Recorded::Duplicate
        );
        assert_eq!(
            s.record(&point("a", "2026-11-08", 20)).expect("rec"),
            Recorded::New { segment: 0 }
        );
        // A refreshed clone: smaller than the point before it.
        assert_eq!(
            s.record(&point("a", "2026-11-15", 5)).expect("rec"),
            Recorded::New { segment: 1 }
        );
        drop(s);
        // Reopening runs no migration twice and keeps the points.
        let s = Store::open_read(&db).expect("reopen");
        let p = s.points("a").expect("points");
        assert_eq!(
            p.iter().map(|p| (p.bytes, p.segment)).collect::<Vec<_>>(),
            [(10, 0), (20, 0), (5, 1)]
        );
        assert!(s.series(Some("b")).is_err());
    }

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
    fn a_point_recorded_between_others_segments_the_disk_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Store::create(&dir.path().join("h.sqlite")).expect("open");
        s.record(&point("a", "2026-11-01", 10)).expect("rec");
        s.record(&point("a", "2026-11-15", 20)).expect("rec");
        // Back-filled: smaller than the one before, and the one after grows from it.
        assert_eq!(
            s.record(&point("a", "2026-11-08", 5)).expect("rec"),
            Recorded::New { segment: 1 }
        );
        let segs: Vec<i64> = s
            .points("a")
            .expect("p")
            .iter()
            .map(|p| p.segment)
            .collect();
        assert_eq!(segs, [0, 1, 1]);
        let c = s
            .delete("a", parse_time("2026-11-08").expect("t"))
            .expect("delete");
        assert_eq!(c.before[0].1.len(), 3);
        let segs: Vec<i64> = c.after[0].1.iter().map(|p| p.segment).collect();
        assert_eq!(segs, [0, 0]);
        assert!(s.delete("a", parse_time("2026-11-08").expect("t")).is_err());
        let c = s.rename("a", "b").expect("rename");
        assert_eq!((c.after[0].0.as_str(), c.after[0].1.len()), ("b", 2));
        assert!(s.points("a").expect("p").is_empty());
        // Refused whole: a size the store cannot hold.
        let mut big = point("b", "2026-12-01", MAX_BYTES + 1);
        assert!(
            s.record_all(&[point("b", "2026-11-30", 1), big.clone()])
                .is_err()
        );
        assert_eq!(s.points("b").expect("p").len(), 2);
        big.bytes = MAX_BYTES;
        s.record(&big).expect("largest");
        assert_eq!(s.points("b").expect("p")[2].bytes, MAX_BYTES);
    }

    #[test]
    fn a_store_from_before_versioning_is_adopted() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = dir.path().join("old.sqlite");
        {
            // What deltascope wrote before schema_migrations: migration 1 and user_version.
            let c = Connection::open(&db).expect("open");
            c.execute_batch(MIGRATIONS[0].sqlite).expect("schema");
            c.pragma_update(None, "user_version", 1).expect("version");
            c.execute(
                "INSERT INTO scans (disk, at, segment, bytes, source) VALUES ('a', 0, 0, 7, 'plain')",
                [],
            )
            .expect("row");
        }
        // Readers read it as it is, without writing.
        let r = Store::open_read(&db).expect("read");
        assert_eq!(r.points("a").expect("p")[0].bytes, 7);
        drop(r);
        let c = Connection::open(&db).expect("open");
        assert_eq!(schema_version_of(&c).expect("v"), (1, false));
        drop(c);
        // A writer records the version in the table; again and again changes nothing.
        for _ in 0..2 {
            drop(Store::create(&db).expect("create"));
            let c = Connection::open(&db).expect("open");
            assert_eq!(schema_version_of(&c).expect("v"), (1, true));
            let n: i64 = c
                .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
                .expect("count");
            assert_eq!(n, 1);
        }
        // A newer schema is refused by readers and writers.
        let c = Connection::open(&db).expect("open");
        c.execute("INSERT INTO schema_migrations VALUES (99, 'x')", [])
            .expect("row");
        drop(c);
        assert!(
            Store::open_read(&db)
                .unwrap_err()
                .to_string()
                .contains("newer")
        );
        assert!(
            Store::create(&db)
                .unwrap_err()
                .to_string()
                .contains("newer")
        );
        // Readers never create.
        let none = dir.path().join("none.sqlite");
        let e = Store::open_read(&none).unwrap_err().to_string();
        assert!(e.contains("no history store at"), "{e}");
        assert!(!none.exists());
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
