//! The SQLite backend: one file (rusqlite, bundled SQLite). Writes are `BEGIN IMMEDIATE`
//! transactions (the write lock is taken first, so two writers never deadlock upgrading a
//! read), retried on a busy file until [`super::BUSY_TIMEOUT`]. `PRAGMA
//! user_version` mirrors the schema version for deltascope builds older than
//! `schema_migrations`, which refuse a newer schema; a store made before that table existed
//! is adopted from it.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};

use super::schema::{MIGRATIONS, pending};
use super::sql::{Arg, DbError, Res, Sql, Val};
use super::{BUSY_TIMEOUT, Refused, State, format_time};

/// An open SQLite store.
#[derive(Debug)]
pub(super) struct Lite {
    conn: Connection,
}

impl Lite {
    /// Opens the file for writing (`create`: creating it when missing).
    pub(super) fn open(path: &Path, create: bool) -> Res<Lite> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        Lite::with(Connection::open_with_flags(path, flags)?)
    }

    /// Opens an existing file for reading. It is opened for writing when the file allows, so
    /// that a transaction a killed writer left behind is rolled back as SQLite does on open,
    /// and read-only otherwise.
    pub(super) fn open_read(path: &Path) -> Res<Lite> {
        let open = |flags: OpenFlags| {
            Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        };
        let conn = open(OpenFlags::SQLITE_OPEN_READ_WRITE)
            .or_else(|_| open(OpenFlags::SQLITE_OPEN_READ_ONLY))?;
        Lite::with(conn)
    }

    fn with(conn: Connection) -> Res<Lite> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Lite { conn })
    }

    /// What the file holds of a schema (it exists: it was opened).
    pub(super) fn state(&self) -> Res<State> {
        let (version, versioned) = version_of(&self.conn)?;
        Ok(State {
            version,
            versioned,
            exists: true,
        })
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it, retrying while another
    /// process holds the store (up to [`BUSY_TIMEOUT`]). `f` refusing rolls back.
    pub(super) fn write<T>(
        &mut self,
        mut f: impl FnMut(&mut dyn Sql) -> Res<Refused<T>>,
    ) -> Res<Refused<T>> {
        self.transaction(|tx| f(&mut On(tx)))
    }

    fn transaction<T>(
        &mut self,
        mut f: impl FnMut(&Connection) -> Res<Refused<T>>,
    ) -> Res<Refused<T>> {
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
                Err(DbError::Sqlite(e)) if is_busy(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                r => return r,
            }
        }
    }

    /// Reads through `f`, outside any transaction of ours.
    pub(super) fn read<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Res<T>) -> Res<T> {
        f(&mut On(&self.conn))
    }

    /// Brings the schema up to date in one write transaction; the versions before and after.
    pub(super) fn migrate(&mut self) -> Res<Refused<(i64, i64)>> {
        self.transaction(migrate)
    }
}

/// A connection (or a transaction, which dereferences to one) seen as [`Sql`].
struct On<'a>(&'a Connection);

impl Sql for On<'_> {
    fn dyn_sql(&mut self) -> &mut dyn Sql {
        self
    }

    fn execute(&mut self, sql: &'static str, args: &[Arg]) -> Res<u64> {
        let mut st = self.0.prepare_cached(sql)?;
        Ok(st.execute(rusqlite::params_from_iter(args.iter()))? as u64)
    }

    fn query(&mut self, sql: &'static str, args: &[Arg]) -> Res<Vec<Vec<Val>>> {
        let mut st = self.0.prepare_cached(sql)?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(match r.get_ref(i)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(v) => Val::Int(v),
                    ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Real(_) | ValueRef::Blob(_) => {
                        return Err(DbError::Shape("an integer or text"));
                    }
                });
            }
            out.push(row);
        }
        Ok(out)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Arg::Int(v) => v.to_sql(),
            Arg::Text(t) => t.to_sql(),
        }
    }
}

pub(super) fn version_of(conn: &Connection) -> Res<(i64, bool)> {
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

/// Brings the schema up to date inside the caller's transaction.
fn migrate(tx: &Connection) -> Res<Refused<(i64, i64)>> {
    let (from, _) = version_of(tx)?;
    if let Some(e) = super::too_new(from) {
        return Ok(Err(e));
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TEXT NOT NULL
        )",
    )?;
    let now = format_time(&Utc::now());
    // A store from before the table: its user_version says which migrations it has.
    for m in MIGRATIONS.iter().take_while(|m| m.version <= from) {
        tx.execute(
            "INSERT OR IGNORE INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![m.version, now],
        )?;
    }
    let mut version = from;
    for m in pending(from) {
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
    Ok(Ok((from, version)))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
