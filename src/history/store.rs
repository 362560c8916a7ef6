//! The store itself (feature `store`): where a store is ([`Location`]), opening it on one
//! of the two backends (`sqlite.rs`, `pg.rs`), and every read and write the commands make
//! ([`Store`]), each in terms of the rules of `sql.rs`, so both backends give the same
//! answers. What `db check` finds is a [`Health`].

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::pg::{self, Target};
use super::sql::{self, DbError, Sql};
use super::{MAX_BYTES, PAUSE_HOOK, Point, format_time, schema, sqlite};
use crate::error::{Error, Result};

/// How long a write waits for another process's write to finish before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a history store is, as written (`--db`, `$DELTASCOPE_DB`): read and checked
/// without looking at the environment or the network. [`Location::resolve`] fills in what
/// a URL leaves out (user, host, port, database, password) as libpq does.
#[derive(Debug, Clone)]
pub enum StoreSpec {
    /// A SQLite file.
    File(PathBuf),
    /// A `postgresql://` or `postgres://` URL.
    Server(Box<pg::ServerUrl>),
}

impl StoreSpec {
    /// Reads a `--db` value: a `postgresql://` or `postgres://` URL names a server,
    /// anything else a file. A malformed URL is refused with a message that quotes it
    /// without its password.
    pub fn parse(arg: &OsStr) -> std::result::Result<StoreSpec, String> {
        match arg.to_str() {
            Some(s) if pg::is_url(s) => Ok(StoreSpec::Server(Box::new(pg::ServerUrl::parse(s)?))),
            _ => Ok(StoreSpec::File(PathBuf::from(arg))),
        }
    }
}

/// Where a history store is: a SQLite file, or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum Location {
    /// A SQLite file.
    File(PathBuf),
    /// A PostgreSQL database (`postgresql://user@host:port/dbname`).
    Server(Box<Target>),
}

impl Location {
    /// The store `spec` names, a URL's defaults filled in from the environment (`PGUSER`,
    /// `PGHOST`, `PGPORT`, `PGDATABASE`, `PGPASSWORD`, the password file). What is missing
    /// or malformed there is a usage error.
    pub fn resolve(spec: &StoreSpec) -> Result<Location> {
        match spec {
            StoreSpec::File(p) => Ok(Location::File(p.clone())),
            StoreSpec::Server(url) => Ok(Location::Server(Box::new(
                Target::resolve(url).map_err(Error::Usage)?,
            ))),
        }
    }

    /// The store a `--db` value (or `$DELTASCOPE_DB`) names ([`StoreSpec::parse`], then
    /// [`Location::resolve`]); a malformed URL is a usage error.
    pub fn parse(arg: &OsStr) -> Result<Location> {
        Location::resolve(&StoreSpec::parse(arg).map_err(Error::Usage)?)
    }

    /// Whether the store exists: the file, or the schema in the database (connecting to
    /// find out; a server that cannot be reached is an error).
    pub fn exists(&self) -> Result<bool> {
        match self {
            Location::File(p) => Ok(std::fs::symlink_metadata(p).is_ok()),
            Location::Server(t) => {
                let mut c = t.connect().map_err(Error::Other)?;
                Ok(c.state().map_err(|e| db_err(self, e))?.exists)
            }
        }
    }

    /// The backend's name: `sqlite` or `postgresql`.
    pub fn backend(&self) -> &'static str {
        match self {
            Location::File(_) => "sqlite",
            Location::Server(_) => "postgresql",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Server(t) => write!(f, "{t}"),
        }
    }
}

/// Where the store lives unless `--db` says otherwise: `$DELTASCOPE_DB` (a path or a
/// URL), else `$XDG_DATA_HOME/deltascope/history.sqlite`, else
/// `~/.local/share/deltascope/history.sqlite`.
pub fn default_db() -> Result<Location> {
    if let Some(p) = std::env::var_os("DELTASCOPE_DB") {
        return Location::parse(&p);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| Error::Usage("no HOME: give the history store with --db".into()))?;
    Ok(Location::File(base.join("deltascope/history.sqlite")))
}

/// An open connection to one of the two backends.
#[derive(Debug)]
enum Backend {
    Lite(sqlite::Lite),
    Pg(Box<pg::Conn>),
}

impl Backend {
    fn write<T>(
        &mut self,
        f: impl FnMut(&mut dyn Sql) -> sql::Res<Refused<T>>,
    ) -> sql::Res<Refused<T>> {
        match self {
            Backend::Lite(l) => l.write(f),
            Backend::Pg(c) => c.write(f),
        }
    }

    fn read<T>(&mut self, f: impl FnOnce(&mut dyn Sql) -> sql::Res<T>) -> sql::Res<T> {
        match self {
            Backend::Lite(l) => l.read(f),
            Backend::Pg(c) => c.read(f),
        }
    }

    fn migrate(&mut self) -> sql::Res<Refused<(i64, i64)>> {
        match self {
            Backend::Lite(l) => l.migrate(),
            Backend::Pg(c) => c.migrate(),
        }
    }

    /// What the store holds of a schema.
    fn state(&mut self) -> sql::Res<State> {
        match self {
            Backend::Lite(l) => l.state(),
            Backend::Pg(c) => c.state(),
        }
    }
}

/// What a store holds of a schema.
#[derive(Debug, Clone, Copy)]
pub(super) struct State {
    /// The schema version (0: none).
    pub(super) version: i64,
    /// Whether `schema_migrations` gave it, as this build records it (a SQLite store made
    /// before that table holds only `PRAGMA user_version`).
    pub(super) versioned: bool,
    /// Whether the store exists: the file, or either table in the database.
    pub(super) exists: bool,
}

/// An open history store.
#[derive(Debug)]
pub struct Store {
    backend: RefCell<Backend>,
    location: Location,
    /// The schema version; 0 for an empty store (no points).
    version: i64,
}

/// What recording a point did.
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
#[derive(Debug, Clone)]
pub struct Change {
    /// Each disk with its points, before.
    pub before: Vec<(String, Vec<Point>)>,
    /// Each disk with its points, after.
    pub after: Vec<(String, Vec<Point>)>,
}

/// What `db migrate` did: the schema version before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (0: no schema yet).
    pub from: i64,
    /// The version now.
    pub to: i64,
}

/// A migration `db migrate` would apply.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Its version.
    pub version: i64,
    /// What it does.
    pub what: &'static str,
}

/// What `db check` concluded, as the JSON writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// `ok`: reachable, schema up to date.
    Ok,
    /// `missing`: no store yet (no file, or no tables in the database).
    Missing,
    /// `behind`: migrations pending (`db migrate`).
    Behind,
    /// `newer`: a newer deltascope made it.
    Newer,
    /// `failed`: cannot be reached or read (`error` says why).
    Failed,
}

/// A PostgreSQL connection's encryption, as `db check` found it.
#[derive(Debug, Clone, Serialize)]
pub struct TlsSeen {
    /// The `sslmode` in force (the URL's, else `PGSSLMODE`, else `prefer`).
    pub sslmode: &'static str,
    /// The protocol the server reports for the connection (`TLSv1.3`), null when the
    /// connection is not encrypted.
    pub protocol: Option<String>,
    /// What the server's certificate was checked against, in words.
    pub certificate: String,
    /// The client certificate presented when the server asks for one (its file), if any.
    pub client_certificate: Option<String>,
}

/// What `db check` found (docs/JSON.md).
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// The store, as shown (never with a password).
    pub store: String,
    /// `sqlite` or `postgresql`.
    pub backend: &'static str,
    /// Whether the store is ready, and if not why.
    pub status: Readiness,
    /// Whether the store could be reached (the file read, the server connected to).
    pub reachable: bool,
    /// The server's version (PostgreSQL).
    pub server_version: Option<String>,
    /// The connection's encryption (PostgreSQL).
    pub tls: Option<TlsSeen>,
    /// Whether the store exists (the file, or the schema in the database).
    pub exists: bool,
    /// The schema version found (0: none).
    pub schema_version: i64,
    /// The schema version this deltascope writes.
    pub known_version: i64,
    /// What `db migrate` would apply, in order.
    pub pending: Vec<Step>,
    /// Points stored.
    pub points: u64,
    /// Disks with points.
    pub disks: u64,
    /// The earliest point's time.
    pub first_at: Option<String>,
    /// The latest point's time.
    pub last_at: Option<String>,
    /// Why the store could not be reached or read.
    pub error: Option<String>,
}

/// A write refused for what it asked (not for the database): rolled back, passed on.
pub(super) type Refused<T> = std::result::Result<T, Error>;

/// The refusal of a schema newer than this build's.
pub(super) fn too_new(version: i64) -> Option<Error> {
    let known = schema::known_version();
    (version > known).then(|| {
        Error::Other(format!(
            "history schema version {version} is newer than this deltascope knows ({known}); upgrade deltascope"
        ))
    })
}

impl Store {
    /// Opens the store for writing, creating it when missing (a file and its folder, or
    /// the schema in an existing database), and migrates it.
    pub fn create(loc: &Location) -> Result<Store> {
        prepare_folder(loc)?;
        Ok(Store::writer(loc, true)?.0)
    }

    /// Opens an existing store for writing (and migrates it); never creates one.
    pub fn open_existing(loc: &Location) -> Result<Store> {
        Ok(Store::writer(loc, false)?.0)
    }

    /// Creates or migrates the store (`db migrate`): the schema version before and after.
    pub fn migrate(loc: &Location) -> Result<Migrated> {
        prepare_folder(loc)?;
        Ok(Store::writer(loc, true)?.1)
    }

    fn writer(loc: &Location, create: bool) -> Result<(Store, Migrated)> {
        let mut backend = match loc {
            Location::File(path) => {
                if !create {
                    no_store_unless(loc, std::fs::symlink_metadata(path).is_ok())?;
                }
                Backend::Lite(sqlite::Lite::open(path, create).map_err(|e| db_err(loc, e))?)
            }
            Location::Server(t) => Backend::Pg(Box::new(t.connect().map_err(Error::Other)?)),
        };
        let state = backend.state().map_err(|e| db_err(loc, e))?;
        if !create {
            no_store_unless(loc, state.exists)?;
        }
        let mut migrated = Migrated {
            from: state.version,
            to: state.version,
        };
        if !(state.versioned && state.version == schema::known_version()) {
            let (from, to) = backend
                .migrate()
                .map_err(|e| db_err(loc, e))?
                .map_err(|e| in_store(loc, e))?;
            migrated = Migrated { from, to };
        }
        Ok((
            Store {
                backend: RefCell::new(backend),
                location: loc.clone(),
                version: migrated.to,
            },
            migrated,
        ))
    }

    /// Opens an existing store for reading; never creates or changes one.
    pub fn open_read(loc: &Location) -> Result<Store> {
        let mut backend = match loc {
            Location::File(path) => {
                no_store_unless(loc, std::fs::symlink_metadata(path).is_ok())?;
                Backend::Lite(sqlite::Lite::open_read(path).map_err(|e| db_err(loc, e))?)
            }
            Location::Server(t) => Backend::Pg(Box::new(t.connect().map_err(Error::Other)?)),
        };
        let state = backend.state().map_err(|e| db_err(loc, e))?;
        no_store_unless(loc, state.exists)?;
        let version = state.version;
        if let Some(e) = too_new(version) {
            return Err(in_store(loc, e));
        }
        Ok(Store {
            backend: RefCell::new(backend),
            location: loc.clone(),
            version,
        })
    }

    /// What `db check` reports; never creates or changes the store.
    pub fn check(loc: &Location) -> Health {
        let mut h = Health {
            store: loc.to_string(),
            backend: loc.backend(),
            status: Readiness::Failed,
            reachable: false,
            server_version: None,
            tls: None,
            exists: false,
            schema_version: 0,
            known_version: schema::known_version(),
            pending: Vec::new(),
            points: 0,
            disks: 0,
            first_at: None,
            last_at: None,
            error: None,
        };
        if let Err(e) = Store::inspect(loc, &mut h) {
            h.error = Some(e.to_string());
            h.status = Readiness::Failed;
            return h;
        }
        h.pending = schema::pending(h.schema_version)
            .map(|m| Step {
                version: m.version,
                what: m.what,
            })
            .collect();
        h.status = if !h.exists {
            Readiness::Missing
        } else if h.schema_version > h.known_version {
            Readiness::Newer
        } else if !h.pending.is_empty() {
            Readiness::Behind
        } else {
            Readiness::Ok
        };
        h
    }

    fn inspect(loc: &Location, h: &mut Health) -> Result<()> {
        let mut backend = match loc {
            Location::File(path) => {
                if std::fs::symlink_metadata(path).is_err() {
                    h.reachable = true;
                    return Ok(());
                }
                Backend::Lite(sqlite::Lite::open_read(path).map_err(|e| db_err(loc, e))?)
            }
            Location::Server(t) => {
                let mut c = t.connect().map_err(Error::Other)?;
                h.server_version = Some(c.server_version().map_err(|e| db_err(loc, e))?);
                h.tls = Some(TlsSeen {
                    sslmode: t.tls().mode().name(),
                    protocol: c.encryption().map_err(|e| db_err(loc, e))?,
                    certificate: t.tls().checked_against(),
                    client_certificate: t.tls().client_cert().map(|p| p.display().to_string()),
                });
                Backend::Pg(Box::new(c))
            }
        };
        h.reachable = true;
        let state = backend.state().map_err(|e| db_err(loc, e))?;
        h.exists = state.exists;
        h.schema_version = state.version;
        if state.version > 0 {
            let (points, disks, first, last) = backend
                .read(|db| sql::summary(db))
                .map_err(|e| db_err(loc, e))?;
            let t = |s: Option<i64>| {
                s.and_then(|s| DateTime::from_timestamp(s, 0))
                    .map(|t| format_time(&t))
            };
            (h.points, h.disks, h.first_at, h.last_at) = (points, disks, t(first), t(last));
        }
        Ok(())
    }

    fn write<T>(&mut self, f: impl FnMut(&mut dyn Sql) -> sql::Res<Refused<T>>) -> Result<T> {
        let r = self.backend.get_mut().write(f);
        r.map_err(|e| db_err(&self.location, e))?
    }

    fn read<T>(&self, f: impl FnOnce(&mut dyn Sql) -> sql::Res<T>) -> Result<T> {
        let r = self.backend.borrow_mut().read(f);
        r.map_err(|e| db_err(&self.location, e))
    }

    /// Records `points` in one transaction (each one's `segment` is computed here); a point
    /// at a time its disk already has is a duplicate and changes nothing. A size past
    /// [`MAX_BYTES`] or a NUL in a name refuses them all.
    pub fn record_all(&mut self, points: &[Point]) -> Result<Vec<Recorded>> {
        for p in points {
            check_range(p)?;
        }
        let hook = std::env::var_os(PAUSE_HOOK).map(PathBuf::from);
        self.write(|db| {
            let out = sql::insert_all(db, points, || {
                if let Some(marker) = &hook {
                    pause(marker);
                }
            })?;
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
        let loc = self.location.clone();
        self.write(|db| {
            let before = sql::points(db, disk)?;
            if before.is_empty() {
                return Ok(Err(unknown(&loc, disk, &sql::disks(db)?)));
            }
            if !sql::delete(db, disk, at)? {
                let times: Vec<String> = before.iter().map(|p| format_time(&p.at)).collect();
                return Ok(Err(Error::Other(format!(
                    "{loc}: {disk} has no point at {}; its points are at {}",
                    format_time(&at),
                    times.join(", ")
                ))));
            }
            sql::resegment(db, disk)?;
            let after = sql::points(db, disk)?;
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
        if new.contains('\0') {
            return Err(Error::Usage(format!(
                "--rename {old:?} {new:?}: a name cannot hold a NUL byte"
            )));
        }
        let loc = self.location.clone();
        self.write(|db| {
            let old_points = sql::points(db, old)?;
            if old_points.is_empty() {
                return Ok(Err(unknown(&loc, old, &sql::disks(db)?)));
            }
            let new_points = sql::points(db, new)?;
            let clash: Vec<String> = new_points
                .iter()
                .filter(|p| old_points.iter().any(|q| q.at == p.at))
                .map(|p| format_time(&p.at))
                .collect();
            if !clash.is_empty() {
                return Ok(Err(Error::Other(format!(
                    "{loc}: {new} already has points at {}, when {old} has points too: delete one of each pair first (history --delete)",
                    clash.join(", ")
                ))));
            }
            let mut before = vec![(old.to_string(), old_points)];
            if !new_points.is_empty() {
                before.push((new.to_string(), new_points));
            }
            sql::rename(db, old, new)?;
            sql::resegment(db, new)?;
            let after = vec![(new.to_string(), sql::points(db, new)?)];
            Ok(Ok(Change { before, after }))
        })
    }

    /// Every disk with points, sorted (byte order).
    pub fn disks(&self) -> Result<Vec<String>> {
        if self.version == 0 {
            return Ok(Vec::new());
        }
        self.read(|db| sql::disks(db))
    }

    /// The points of `disk`, oldest first.
    pub fn points(&self, disk: &str) -> Result<Vec<Point>> {
        if self.version == 0 {
            return Ok(Vec::new());
        }
        self.read(|db| sql::points(db, disk))
    }

    /// The disks `wanted` names (all when `None`, read in one query), each with its
    /// points; an unknown name is an error listing the known ones.
    pub fn series(&self, wanted: Option<&str>) -> Result<Vec<(String, Vec<Point>)>> {
        match wanted {
            None if self.version == 0 => Ok(Vec::new()),
            None => self.read(|db| sql::all_points(db)),
            Some(w) => {
                let points = self.points(w)?;
                if points.is_empty() {
                    return Err(unknown(&self.location, w, &self.disks()?));
                }
                Ok(vec![(w.to_string(), points)])
            }
        }
    }

    /// Where the store is.
    pub fn location(&self) -> &Location {
        &self.location
    }
}

/// Creates the folder of a store file.
fn prepare_folder(loc: &Location) -> Result<()> {
    if let Location::File(path) = loc
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create folder", e))?;
    }
    Ok(())
}

/// "no history store at LOCATION" unless `exists`.
fn no_store_unless(loc: &Location, exists: bool) -> Result<()> {
    if exists {
        return Ok(());
    }
    Err(Error::Other(format!(
        "no history store at {loc} (scan --record, import or db migrate create one)"
    )))
}

/// A refusal, prefixed with the store it came from.
fn in_store(loc: &Location, e: Error) -> Error {
    match e {
        Error::Other(m) if !m.starts_with(&loc.to_string()) => Error::Other(format!("{loc}: {m}")),
        e => e,
    }
}

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
    // PostgreSQL text cannot hold NUL; SQLite refuses it too, so both stores agree.
    let texts = [
        Some(&p.disk),
        p.cid.as_ref(),
        Some(&p.source),
        p.layers.as_ref(),
    ];
    if texts.into_iter().flatten().any(|t| t.contains('\0')) {
        return Err(Error::Other(format!(
            "{} at {}: a NUL byte in its name or text, which the history store cannot hold: nothing recorded",
            p.disk.replace('\0', "\\0"),
            format_time(&p.at)
        )));
    }
    Ok(())
}

fn unknown(loc: &Location, disk: &str, known: &[String]) -> Error {
    Error::Other(format!(
        "{loc}: no points for disk {disk:?}; known disks: {}",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

/// The test hook's wait (see [`PAUSE_HOOK`]).
fn pause(marker: &Path) {
    if std::fs::write(marker, b"paused inside a history transaction\n").is_err() {
        return;
    }
    let until = Instant::now() + Duration::from_secs(600);
    while marker.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn db_err(loc: &Location, e: DbError) -> Error {
    let why = match (&e, loc) {
        (DbError::Postgres(e), Location::Server(t)) => t.explain(e),
        (DbError::Postgres(e), _) => e.to_string(),
        (DbError::Sqlite(e), _) => e.to_string(),
        (DbError::Shape(what), _) => format!("a row of an unexpected shape (expected {what})"),
    };
    Error::Other(format!("{loc}: history store: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{MIGRATIONS, parse_time};
    use rusqlite::Connection;

    fn file(p: &Path) -> Location {
        Location::File(p.to_path_buf())
    }

    /// The version SQLite's tables say, and whether schema_migrations said it.
    fn schema_version_of(c: &Connection) -> (i64, bool) {
        sqlite::version_of(c).expect("version")
    }

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
        let mut s = Store::create(&file(&db)).expect("open");
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
        let s = Store::open_read(&file(&db)).expect("reopen");
        let p = s.points("a").expect("points");
        assert_eq!(
            p.iter().map(|p| (p.bytes, p.segment)).collect::<Vec<_>>(),
            [(10, 0), (20, 0), (5, 1)]
        );
        assert!(s.series(Some("b")).is_err());
    }

    #[test]
    fn a_point_recorded_between_others_segments_the_disk_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Store::create(&file(&dir.path().join("h.sqlite"))).expect("open");
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
        let r = Store::open_read(&file(&db)).expect("read");
        assert_eq!(r.points("a").expect("p")[0].bytes, 7);
        drop(r);
        let c = Connection::open(&db).expect("open");
        assert_eq!(schema_version_of(&c), (1, false));
        drop(c);
        // A writer records the version in the table; again and again changes nothing.
        for _ in 0..2 {
            drop(Store::create(&file(&db)).expect("create"));
            let c = Connection::open(&db).expect("open");
            assert_eq!(schema_version_of(&c), (1, true));
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
            Store::open_read(&file(&db))
                .unwrap_err()
                .to_string()
                .contains("newer")
        );
        assert!(
            Store::create(&file(&db))
                .unwrap_err()
                .to_string()
                .contains("newer")
        );
        // Readers never create.
        let none = dir.path().join("none.sqlite");
        let e = Store::open_read(&file(&none)).unwrap_err().to_string();
        assert!(e.contains("no history store at"), "{e}");
        assert!(!none.exists());
    }
}
