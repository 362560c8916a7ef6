//! The store's rules, written once for both backends: recording a point (duplicates,
//! segments, back-filled points), segmenting a disk again, deleting, renaming and reading.
//! They speak to a database through [`Sql`], which runs one statement with `?N`
//! placeholders (PostgreSQL gets them as `$N`) and returns rows of [`Val`]; every statement
//! here is plain SQL both dialects read the same way, so both stores give the same answers.
//! Opening, locking, transactions and migrations are each backend's own (`sqlite.rs`,
//! `pg.rs`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Point, Recorded};

/// A failure of the database itself (not a refusal of what was asked).
#[derive(Debug)]
pub(super) enum DbError {
    /// From SQLite.
    Sqlite(rusqlite::Error),
    /// From PostgreSQL.
    Postgres(postgres::Error),
    /// A row of an unexpected shape (a column of another type).
    Shape(&'static str),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

pub(super) type Res<T> = std::result::Result<T, DbError>;

/// A statement's argument.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    /// A 64-bit integer, or NULL.
    Int(Option<i64>),
    /// Text, or NULL.
    Text(Option<&'a str>),
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl Val {
    fn int(&self) -> Res<i64> {
        match self {
            Val::Int(v) => Ok(*v),
            _ => Err(DbError::Shape("an integer")),
        }
    }

    fn opt_int(&self) -> Res<Option<i64>> {
        match self {
            Val::Null => Ok(None),
            v => v.int().map(Some),
        }
    }

    fn opt_u64(&self) -> Res<Option<u64>> {
        Ok(self.opt_int()?.map(|v| v.max(0) as u64))
    }

    fn text(self) -> Res<String> {
        match self {
            Val::Text(t) => Ok(t),
            _ => Err(DbError::Shape("text")),
        }
    }

    fn opt_text(self) -> Res<Option<String>> {
        match self {
            Val::Null => Ok(None),
            v => v.text().map(Some),
        }
    }
}

/// The latest point of a disk: its time (seconds), segment and bytes.
pub(super) type Latest = (i64, i64, i64);

/// One statement at a time, on a connection or inside a transaction; and two bulk steps a
/// backend may do in one statement (PostgreSQL does, so that recording 10,000 disks costs
/// a few round trips to the server rather than 20,000). The defaults run the shared
/// statements row by row, which is what an in-process SQLite does best.
pub(super) trait Sql {
    /// Runs a statement; the rows it changed.
    fn execute(&mut self, sql: &'static str, args: &[Arg]) -> Res<u64>;
    /// Runs a query; its rows.
    fn query(&mut self, sql: &'static str, args: &[Arg]) -> Res<Vec<Vec<Val>>>;

    /// The latest point of each of `disks` that has one.
    fn latest_of(&mut self, disks: &[&str]) -> Res<HashMap<String, Latest>> {
        let mut out = HashMap::with_capacity(disks.len());
        for d in disks {
            if let Some(l) = latest(self.dyn_sql(), d)? {
                out.insert((*d).to_string(), l);
            }
        }
        Ok(out)
    }

    /// Inserts each point with its segment.
    fn insert_rows(&mut self, rows: &[(&Point, i64)]) -> Res<()> {
        for (p, segment) in rows {
            write_row(self.dyn_sql(), p, *segment)?;
        }
        Ok(())
    }

    /// Itself, as a trait object (for the default methods).
    fn dyn_sql(&mut self) -> &mut dyn Sql;
}

const LATEST: &str =
    "SELECT at, segment, bytes FROM scans WHERE disk = ?1 ORDER BY at DESC LIMIT 1";
const AT: &str = "SELECT id FROM scans WHERE disk = ?1 AND at = ?2";
const BEFORE: &str =
    "SELECT segment, bytes FROM scans WHERE disk = ?1 AND at < ?2 ORDER BY at DESC LIMIT 1";
const INSERT: &str = "INSERT INTO scans (disk, at, segment, bytes, file_size, virtual_size,
    grain_size, cid, fresh, overwritten, identical, zeroed, hard_ceiling, expected_ceiling,
    source, layers)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
const SEGMENTS: &str = "SELECT id, at, segment, bytes FROM scans WHERE disk = ?1 ORDER BY at";
const SET_SEGMENT: &str = "UPDATE scans SET segment = ?2 WHERE id = ?1";
const DELETE: &str = "DELETE FROM scans WHERE disk = ?1 AND at = ?2";
const RENAME: &str = "UPDATE scans SET disk = ?2 WHERE disk = ?1";
const DISKS: &str = "SELECT DISTINCT disk FROM scans ORDER BY disk";
const POINTS_OF: &str = "SELECT disk, at, segment, bytes, file_size, virtual_size, grain_size,
    cid, fresh, overwritten, identical, zeroed, hard_ceiling, expected_ceiling, source, layers
    FROM scans WHERE disk = ?1 ORDER BY at";
const ALL_POINTS: &str = "SELECT disk, at, segment, bytes, file_size, virtual_size, grain_size,
    cid, fresh, overwritten, identical, zeroed, hard_ceiling, expected_ceiling, source,
    CAST(NULL AS TEXT) FROM scans ORDER BY disk, at";
const SUMMARY: &str = "SELECT count(*), count(DISTINCT disk), min(at), max(at) FROM scans";

/// Inserts `points` in order, each one's segment following the point before it; a point
/// inserted before later ones segments its disk again, and a point at a time its disk
/// already has is a duplicate that changes nothing. Points newer than their disk's latest
/// (a weekly scan, a datastore scan, an import in time order) are inserted together at the
/// end, or before a back-filled point needs the table as it is. `halfway` runs once half
/// the points are written (the test hook). Figures were checked against `MAX_BYTES` by the
/// caller.
pub(super) fn insert_all(
    db: &mut dyn Sql,
    points: &[Point],
    mut halfway: impl FnMut(),
) -> Res<Vec<Recorded>> {
    let mut seen = HashSet::new();
    let disks: Vec<&str> = points
        .iter()
        .map(|p| p.disk.as_str())
        .filter(|d| seen.insert(*d))
        .collect();
    let mut latest_of = db.latest_of(&disks)?;
    let mut pending: Vec<(&Point, i64)> = Vec::new();
    let mut out = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let at = p.at.timestamp();
        let r = match latest_of.get(&p.disk) {
            None => New(0),
            Some(&(last, seg, bytes)) if last < at => New(if (p.bytes as i64) < bytes {
                seg + 1
            } else {
                seg
            }),
            Some(&(last, ..)) if last == at => Dup,
            Some(_) => Between,
        };
        match r {
            New(segment) => {
                pending.push((p, segment));
                latest_of.insert(p.disk.clone(), (at, segment, p.bytes as i64));
                out.push(Recorded::New { segment });
            }
            Dup => out.push(Recorded::Duplicate),
            Between => {
                db.insert_rows(&std::mem::take(&mut pending))?;
                let r = insert_between(db, p)?;
                // Segmenting again may have renumbered the disk's latest point.
                if r != Recorded::Duplicate
                    && let Some(l) = latest(db, &p.disk)?
                {
                    latest_of.insert(p.disk.clone(), l);
                }
                out.push(r);
            }
        }
        if points.len() > 1 && i + 1 == points.len() / 2 {
            db.insert_rows(&std::mem::take(&mut pending))?;
            halfway();
        }
    }
    db.insert_rows(&pending)?;
    Ok(out)
}

/// Where a point goes, relative to its disk's latest point.
enum Place {
    /// After it (or the disk's first): a new point in this segment.
    New(i64),
    /// At its time: a duplicate.
    Dup,
    /// Before it: a back-filled point.
    Between,
}
use Place::{Between, Dup, New};

/// The latest point of `disk`.
fn latest(db: &mut dyn Sql, disk: &str) -> Res<Option<Latest>> {
    match db.query(LATEST, &[Arg::Text(Some(disk))])?.first() {
        Some(r) => Ok(Some((r[0].int()?, r[1].int()?, r[2].int()?))),
        None => Ok(None),
    }
}

/// A point older than its disk's latest one (a back-filled scan or import).
fn insert_between(db: &mut dyn Sql, p: &Point) -> Res<Recorded> {
    let at = p.at.timestamp();
    let disk = Arg::Text(Some(&p.disk));
    if !db.query(AT, &[disk, Arg::Int(Some(at))])?.is_empty() {
        return Ok(Recorded::Duplicate);
    }
    let before = db.query(BEFORE, &[disk, Arg::Int(Some(at))])?;
    let segment = match before.first() {
        Some(r) if (p.bytes as i64) < r[1].int()? => r[0].int()? + 1,
        Some(r) => r[0].int()?,
        None => 0,
    };
    write_row(db, p, segment)?;
    let segments = resegment(db, &p.disk)?;
    let segment = segments
        .iter()
        .find(|(t, _)| *t == at)
        .map_or(segment, |(_, s)| *s);
    Ok(Recorded::New { segment })
}

fn write_row(db: &mut dyn Sql, p: &Point, segment: i64) -> Res<()> {
    // Every figure was checked against MAX_BYTES (check_range): the casts are exact.
    let i = |v: Option<u64>| Arg::Int(v.map(|v| v as i64));
    let c = p.classes;
    db.execute(
        INSERT,
        &[
            Arg::Text(Some(&p.disk)),
            Arg::Int(Some(p.at.timestamp())),
            Arg::Int(Some(segment)),
            i(Some(p.bytes)),
            i(p.file_size),
            i(p.virtual_size),
            i(p.grain_size),
            Arg::Text(p.cid.as_deref()),
            i(c.map(|c| c[0])),
            i(c.map(|c| c[1])),
            i(c.map(|c| c[2])),
            i(c.map(|c| c[3])),
            i(p.hard_ceiling),
            i(p.expected_ceiling),
            Arg::Text(Some(&p.source)),
            Arg::Text(p.layers.as_deref()),
        ],
    )?;
    Ok(())
}

/// Numbers the disk's segments again from its first point: a point smaller than the one
/// before it starts a new one. Returns each point's time and segment.
pub(super) fn resegment(db: &mut dyn Sql, disk: &str) -> Res<Vec<(i64, i64)>> {
    let rows = db.query(SEGMENTS, &[Arg::Text(Some(disk))])?;
    let mut seg = 0;
    let mut prev: Option<i64> = None;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (id, at, old, bytes) = (r[0].int()?, r[1].int()?, r[2].int()?, r[3].int()?);
        if prev.is_some_and(|p| bytes < p) {
            seg += 1;
        }
        prev = Some(bytes);
        if old != seg {
            db.execute(SET_SEGMENT, &[Arg::Int(Some(id)), Arg::Int(Some(seg))])?;
        }
        out.push((at, seg));
    }
    Ok(out)
}

/// Deletes the point of `disk` at `at`; whether there was one. The caller segments again.
pub(super) fn delete(db: &mut dyn Sql, disk: &str, at: DateTime<Utc>) -> Res<bool> {
    let n = db.execute(
        DELETE,
        &[Arg::Text(Some(disk)), Arg::Int(Some(at.timestamp()))],
    )?;
    Ok(n > 0)
}

/// Gives every point of `old` to `new`.
pub(super) fn rename(db: &mut dyn Sql, old: &str, new: &str) -> Res<()> {
    db.execute(RENAME, &[Arg::Text(Some(old)), Arg::Text(Some(new))])?;
    Ok(())
}

/// Every disk with points, in byte order of their names.
pub(super) fn disks(db: &mut dyn Sql) -> Res<Vec<String>> {
    db.query(DISKS, &[])?
        .into_iter()
        .map(|mut r| r.swap_remove(0).text())
        .collect()
}

/// The points of `disk`, oldest first.
pub(super) fn points(db: &mut dyn Sql, disk: &str) -> Res<Vec<Point>> {
    db.query(POINTS_OF, &[Arg::Text(Some(disk))])?
        .into_iter()
        .map(point)
        .collect()
}

/// Every disk with its points, disks in byte order of their names, points oldest first:
/// one query, however many disks. The per-layer summaries (`layers`, most of a row's bytes)
/// are left out: no reader of a whole store uses them.
pub(super) fn all_points(db: &mut dyn Sql) -> Res<Vec<(String, Vec<Point>)>> {
    let mut out: Vec<(String, Vec<Point>)> = Vec::new();
    for r in db.query(ALL_POINTS, &[])? {
        let p = point(r)?;
        match out.last_mut() {
            Some((d, points)) if *d == p.disk => points.push(p),
            _ => out.push((p.disk.clone(), vec![p])),
        }
    }
    Ok(out)
}

/// Points, disks, and the first and last times (seconds), for `db check`.
pub(super) fn summary(db: &mut dyn Sql) -> Res<(u64, u64, Option<i64>, Option<i64>)> {
    let r = db.query(SUMMARY, &[])?;
    let r = r.first().ok_or(DbError::Shape("one row"))?;
    Ok((
        r[0].int()?.max(0) as u64,
        r[1].int()?.max(0) as u64,
        r[2].opt_int()?,
        r[3].opt_int()?,
    ))
}

fn point(r: Vec<Val>) -> Res<Point> {
    let mut r = r.into_iter();
    let mut next = || r.next().ok_or(DbError::Shape("16 columns"));
    let disk = next()?.text()?;
    let at = next()?.int()?;
    let segment = next()?.int()?;
    let bytes = next()?.int()?.max(0) as u64;
    let file_size = next()?.opt_u64()?;
    let virtual_size = next()?.opt_u64()?;
    let grain_size = next()?.opt_u64()?;
    let cid = next()?.opt_text()?;
    let c = [
        next()?.opt_u64()?,
        next()?.opt_u64()?,
        next()?.opt_u64()?,
        next()?.opt_u64()?,
    ];
    let classes = match c {
        [Some(a), Some(b), Some(c), Some(d)] => Some([a, b, c, d]),
        _ => None,
    };
    Ok(Point {
        disk,
        at: DateTime::from_timestamp(at, 0).unwrap_or_default(),
        segment,
        bytes,
        file_size,
        virtual_size,
        grain_size,
        cid,
        classes,
        hard_ceiling: next()?.opt_u64()?,
        expected_ceiling: next()?.opt_u64()?,
        source: next()?.text()?,
        layers: next()?.opt_text()?,
    })
}
