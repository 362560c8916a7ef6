//! The history store: a time series of scans per disk in one SQLite file (rusqlite, bundled
//! SQLite). It owns the schema and its migrations, segmenting (a delta smaller than the point
//! before it is a refreshed or recomposed clone: a new segment), and reading series back.
//! [`import`] turns other tools' CSV exports into points, [`forecast`] fits and projects them.

pub mod forecast;
pub mod import;

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::{Error, Result};

/// Schema migrations, applied in order; `PRAGMA user_version` holds how many ran.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE scans (
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
    CREATE INDEX scans_by_disk ON scans (disk, at);
"];

/// One point of a disk's series.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Point {
    /// Stable disk identity: `--disk`, or the top layer's canonical path.
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

/// RFC 3339 in UTC, seconds precision: `2026-11-01T08:00:00Z`.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses `2026-11-01T08:00:00Z` (any RFC 3339 offset) or a bare date `2026-11-01` (midnight UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
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
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
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

impl Store {
    /// Opens (creating it and its folder when missing) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create folder", e))?;
        }
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| db_err(&path, e))?;
        if version as usize > MIGRATIONS.len() {
            return Err(Error::Other(format!(
                "{}: history schema version {version} is newer than this deltascope knows ({}); upgrade deltascope",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| db_err(&path, e))?;
            tx.execute_batch(sql).map_err(|e| db_err(&path, e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| db_err(&path, e))?;
            tx.commit().map_err(|e| db_err(&path, e))?;
        }
        Ok(())
    }

    /// Records `p` (its `segment` is computed here); a second point at the same time for the
    /// same disk is a duplicate and changes nothing.
    pub fn record(&mut self, p: &Point) -> Result<Recorded> {
        let path = self.path.clone();
        let at = p.at.timestamp();
        let tx = self.conn.transaction().map_err(|e| db_err(&path, e))?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT id FROM scans WHERE disk = ?1 AND at = ?2",
                params![p.disk, at],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err(&path, e))?;
        if exists.is_some() {
            return Ok(Recorded::Duplicate);
        }
        let before: Option<(i64, i64)> = tx
            .query_row(
                "SELECT segment, bytes FROM scans WHERE disk = ?1 AND at < ?2 ORDER BY at DESC LIMIT 1",
                params![p.disk, at],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| db_err(&path, e))?;
        let segment = match before {
            Some((seg, bytes)) if (p.bytes as i64) < bytes => seg + 1,
            Some((seg, _)) => seg,
            None => 0,
        };
        let c = p.classes;
        tx.execute(
            "INSERT INTO scans (disk, at, segment, bytes, file_size, virtual_size, grain_size, cid,
                fresh, overwritten, identical, zeroed, hard_ceiling, expected_ceiling, source, layers)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                p.disk,
                at,
                segment,
                p.bytes as i64,
                p.file_size.map(|v| v as i64),
                p.virtual_size.map(|v| v as i64),
                p.grain_size.map(|v| v as i64),
                p.cid,
                c.map(|c| c[0] as i64),
                c.map(|c| c[1] as i64),
                c.map(|c| c[2] as i64),
                c.map(|c| c[3] as i64),
                p.hard_ceiling.map(|v| v as i64),
                p.expected_ceiling.map(|v| v as i64),
                p.source,
                p.layers,
            ],
        )
        .map_err(|e| db_err(&path, e))?;
        tx.commit().map_err(|e| db_err(&path, e))?;
        Ok(Recorded::New { segment })
    }

    /// Every disk with points, sorted.
    pub fn disks(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT disk FROM scans ORDER BY disk")
            .map_err(|e| db_err(&self.path, e))?;
        let rows = st
            .query_map([], |r| r.get(0))
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| db_err(&self.path, e))
    }

    /// The points of `disk`, oldest first.
    pub fn points(&self, disk: &str) -> Result<Vec<Point>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT disk, at, segment, bytes, file_size, virtual_size, grain_size, cid, fresh,
                    overwritten, identical, zeroed, hard_ceiling, expected_ceiling, source, layers
                 FROM scans WHERE disk = ?1 ORDER BY at",
            )
            .map_err(|e| db_err(&self.path, e))?;
        let rows = st
            .query_map(params![disk], |r| {
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
            })
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<Point>>>()
            .map_err(|e| db_err(&self.path, e))
    }

    /// The disks `wanted` names (all when `None`), each with its points; an unknown name is
    /// an error listing the known ones.
    pub fn series(&self, wanted: Option<&str>) -> Result<Vec<(String, Vec<Point>)>> {
        let disks = self.disks()?;
        let chosen: Vec<String> = match wanted {
            Some(w) if disks.iter().any(|d| d == w) => vec![w.to_string()],
            Some(w) => {
                return Err(Error::Other(format!(
                    "{}: no points for disk {w:?}; known disks: {}",
                    self.path.display(),
                    if disks.is_empty() {
                        "none".to_string()
                    } else {
                        disks.join(", ")
                    }
                )));
            }
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

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Other(format!("{}: history store: {e}", path.display()))
}

#[cfg(test)]
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
        let mut s = Store::open(&db).expect("open");
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
        let s = Store::open(&db).expect("reopen");
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
}
