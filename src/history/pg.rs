//! The PostgreSQL backend: a shared store on a server, for many scanners at once (the
//! `postgres` crate, a synchronous client; TLS as libpq sets it, [`super::tls`]).
//!
//! - **Where.** [`Target`] reads `postgresql://user[:password]@host[:port]/dbname` (or
//!   `postgres://`) and fills what it leaves out as libpq does: `PGUSER` or the login name,
//!   `PGHOST` or the local socket folder, `PGPORT` or 5432, `PGDATABASE` or the user; the
//!   password from the URL, else `PGPASSWORD`, else the password file ([`super::pgpass`]).
//!   It is shown as `postgresql://user@host:port/dbname`: a password is never printed.
//! - **Writes are serialized.** Every write transaction first takes one transaction-level
//!   advisory lock ([`WRITE_LOCK`]), so writers follow one another exactly as SQLite's
//!   `BEGIN IMMEDIATE` makes them (segments computed from what the previous writer
//!   committed, no unique-key races), waiting up to [`BUSY_TIMEOUT`] (`lock_timeout`);
//!   readers are never blocked (MVCC). The lock is released at commit or rollback, and by
//!   the server when a writer's connection dies, which also rolls its transaction back.
//! - **Migrations** run under the same lock inside one transaction (PostgreSQL's DDL is
//!   transactional), so processes meeting an empty database at once create the schema once.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::Utc;
use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use postgres::{Client, Config, GenericClient, NoTls, Statement};

use super::schema::pending;
use super::sql::{Arg, DbError, Latest, Res, Sql, Val};
use super::tls::{self, Tls};
use super::{BUSY_TIMEOUT, Point, Refused, State, format_time};

/// The key of the advisory lock every write holds ("deltascp" in ASCII). Advisory locks
/// belong to one database, so stores in other databases of the server never wait for it.
pub const WRITE_LOCK: i64 = 0x6465_6c74_6173_6370;

/// How long a connection attempt waits unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a `--db` value names a PostgreSQL server rather than a file.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// A PostgreSQL store's address, with its defaults filled in.
#[derive(Clone)]
pub struct Target {
    config: Config,
    shown: String,
    /// The TLS the connection uses (none over a Unix socket).
    tls: Tls,
    /// Why a password file was passed over, said when the server then wants a password.
    pgpass_note: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password: the address as it is shown.
        f.debug_tuple("Target").field(&self.shown).finish()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// A PostgreSQL URL as written, checked for syntax only: nothing is read from the
/// environment yet ([`Target::resolve`] does that). Shown, and debug-printed, without its
/// password.
#[derive(Clone)]
pub struct ServerUrl {
    config: Config,
    /// The URL with its password replaced by `***`, for messages.
    shown: String,
    /// Its TLS parameters, which the `postgres` crate's parser is not given.
    tls: tls::Written,
}

impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServerUrl").field(&self.shown).finish()
    }
}

impl ServerUrl {
    /// Reads a URL. A malformed one is refused with a message that quotes it without its
    /// password; so is a TLS parameter this client cannot honour.
    pub fn parse(url: &str) -> std::result::Result<ServerUrl, String> {
        let (plain, tls) = tls::split(url).map_err(|e| format!("{}: {e}", redact(url)))?;
        let config = Config::from_str(&plain).map_err(|e| {
            let why = match std::error::Error::source(&e) {
                Some(s) => format!("{e}: {s}"),
                None => e.to_string(),
            };
            // The parser's words never carry the password, but make sure.
            let why = match password_of(url) {
                Some(pw) if !pw.is_empty() => why.replace(pw, "***"),
                _ => why,
            };
            format!("{}: not a PostgreSQL URL ({why})", redact(url))
        })?;
        Ok(ServerUrl {
            config,
            shown: redact(url),
            tls,
        })
    }
}

impl Target {
    /// Reads a URL and fills in its defaults ([`ServerUrl::parse`], then [`Target::resolve`]).
    pub fn parse(url: &str) -> std::result::Result<Target, String> {
        Target::resolve(&ServerUrl::parse(url)?)
    }

    /// Fills in what `url` leaves out, as libpq does: the user from `PGUSER` or the login
    /// name, the host from `PGHOST` or the local socket folder, the port from `PGPORT` or
    /// 5432, the database from `PGDATABASE` or the user; the password from `PGPASSWORD`, else
    /// the password file.
    pub fn resolve(url: &ServerUrl) -> std::result::Result<Target, String> {
        let mut config = url.config.clone();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let user = match config.get_user() {
            Some(u) => u.to_string(),
            None => env("PGUSER")
                .or_else(|| whoami::username().ok())
                .ok_or_else(|| format!("{}: no user, and PGUSER is not set", url.shown))?,
        };
        config.user(&user);
        if config.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(h) => {
                    config.host(&h);
                }
                None => {
                    let sock = ["/var/run/postgresql", "/tmp"]
                        .into_iter()
                        .find(|d| std::path::Path::new(d).is_dir())
                        .unwrap_or("/tmp");
                    config.host_path(sock);
                }
            }
        }
        if config.get_ports().is_empty() {
            let port = match env("PGPORT") {
                Some(p) => p
                    .parse()
                    .map_err(|_| format!("PGPORT={p:?} is not a port number"))?,
                None => 5432,
            };
            config.port(port);
        }
        let dbname = match config.get_dbname() {
            Some(d) => d.to_string(),
            None => env("PGDATABASE").unwrap_or_else(|| user.clone()),
        };
        config.dbname(&dbname);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("deltascope");
        }
        let host = host_name(&config.get_hosts()[0]);
        let port = config.get_ports()[0];
        let mut pgpass_note = None;
        if config.get_password().is_none() {
            if let Some(p) = env("PGPASSWORD") {
                config.password(p);
            } else {
                let (pw, note) = super::pgpass::password_for(&host, port, &dbname, &user);
                if let Some(pw) = pw {
                    config.password(pw);
                }
                pgpass_note = note;
            }
        }
        let hosts: Vec<String> = config.get_hosts().iter().map(host_name).collect();
        let shown = format!("postgresql://{user}@{}:{port}/{dbname}", hosts.join(","));
        let tls = Tls::resolve(&url.tls, env, std::env::var_os("HOME").map(Into::into))
            .map_err(|e| format!("{shown}: {e}"))?;
        // A Unix socket never carries TLS: the server refuses it there, libpq ignores
        // sslmode, and so do we.
        let sockets_only = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, postgres::config::Host::Unix(_)));
        config.ssl_mode(if sockets_only {
            postgres::config::SslMode::Disable
        } else {
            tls.ssl_mode()
        });
        Ok(Target {
            config,
            shown,
            tls,
            pgpass_note,
        })
    }

    /// The TLS settings.
    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// Connects; an error names the server and the reason, never the password.
    pub(super) fn connect(&self) -> std::result::Result<Conn, String> {
        let connector = match self.config.get_ssl_mode() {
            postgres::config::SslMode::Disable => None,
            _ => self.tls.connector(),
        };
        let client = match connector {
            Some(c) => self.config.connect(c),
            None => self.config.connect(NoTls),
        }
        .map_err(|e| format!("{self}: cannot connect: {}", self.explain(&e)))?;
        let mut conn = Conn {
            client,
            statements: HashMap::new(),
        };
        // Writers wait for each other up to BUSY_TIMEOUT, as on SQLite; notices about
        // objects that already exist (IF NOT EXISTS) are not for the user.
        conn.client
            .batch_execute(&format!(
                "SET lock_timeout = '{}s'; SET client_min_messages = warning",
                BUSY_TIMEOUT.as_secs()
            ))
            .map_err(|e| format!("{self}: {}", self.explain(&e)))?;
        Ok(conn)
    }

    /// The reason of a failure, in words that say what to do.
    pub(super) fn explain(&self, e: &postgres::Error) -> String {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            return if *code == SqlState::INVALID_PASSWORD {
                format!("authentication failed ({})", db.message())
            } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
                let hint = if db.message().contains("client certificate")
                    && self.tls.client_cert().is_none()
                {
                    format!("; present one with {}", tls::WHERE_CLIENT_CERTS_GO)
                } else {
                    String::new()
                };
                format!("not allowed ({}){hint}", db.message())
            } else if *code == SqlState::INVALID_CATALOG_NAME {
                format!(
                    "{} (the database administrator creates it, e.g. createdb -O {} {})",
                    db.message(),
                    self.config.get_user().unwrap_or("USER"),
                    self.config.get_dbname().unwrap_or("DBNAME")
                )
            } else if *code == SqlState::LOCK_NOT_AVAILABLE {
                format!(
                    "the store stayed busy with another writer for {} s",
                    BUSY_TIMEOUT.as_secs()
                )
            } else {
                db.message().to_string()
            };
        }
        let host = self.config.get_hosts().first().map(host_name);
        let host = host.as_deref().unwrap_or("the server");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            // rustls reports through tokio-rustls inside an io::Error.
            let tls_error = s.downcast_ref::<rustls::Error>().or_else(|| {
                s.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
            });
            if let Some(t) = tls_error {
                return tls::explain(t, &self.tls, host);
            }
            if s.to_string().contains("server does not support TLS") {
                return format!(
                    "the server does not offer TLS, and sslmode={} requires it (turn ssl on in the server's configuration, or use sslmode=prefer on a trusted network)",
                    self.tls.mode().name()
                );
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::*;
                return match io.kind() {
                    ConnectionRefused => {
                        "connection refused (is the server running and listening there?)".into()
                    }
                    TimedOut => "timed out".into(),
                    NotFound => "no server socket there (is the server running?)".into(),
                    _ => io.to_string(),
                };
            }
            if s.to_string().contains("password missing") {
                let mut why = "the server asks for a password and none was given (put it in ~/.pgpass or the file PGPASSFILE names, or in PGPASSWORD)".to_string();
                if let Some(note) = &self.pgpass_note {
                    why.push_str(&format!("; {note}"));
                }
                return why;
            }
            source = s.source();
        }
        match std::error::Error::source(e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        }
    }
}

/// A host as it is shown: a name, or a socket folder.
fn host_name(h: &postgres::config::Host) -> String {
    match h {
        postgres::config::Host::Tcp(h) => h.clone(),
        postgres::config::Host::Unix(p) => p.display().to_string(),
    }
}

/// The password of a URL's user-info, as written.
fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1)
}

/// A URL with the password of its user-info (if any) replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let mut out = format!("{scheme}://{user}");
    if userinfo.contains(':') {
        out.push_str(":***");
    }
    out.push('@');
    out.push_str(host);
    // A password given as a query parameter is hidden too.
    let mut first = true;
    for (i, part) in tail.split(['?', '&']).enumerate() {
        if i == 0 {
            out.push_str(part);
            continue;
        }
        out.push(if first { '?' } else { '&' });
        first = false;
        if part.starts_with("password=") {
            out.push_str("password=***");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// An open connection and its prepared statements (prepared once per connection, so a
/// statement run 10,000 times in a datastore record costs one round trip each time).
pub(super) struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("statements", &self.statements.len())
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// What the database holds of a schema: the store exists when either of its tables
    /// does.
    pub(super) fn state(&mut self) -> Res<State> {
        state_of(&mut self.client)
    }

    /// The server's version, for `db check`.
    pub(super) fn server_version(&mut self) -> Res<String> {
        let row = self.client.query_one("SHOW server_version", &[])?;
        Ok(row.get(0))
    }

    /// The TLS protocol of this connection as the server sees it (`pg_stat_ssl`), `None`
    /// when it is not encrypted: evidence, not what was asked for.
    pub(super) fn encryption(&mut self) -> Res<Option<String>> {
        let row = self.client.query_opt(
            "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
            &[],
        )?;
        Ok(row.and_then(|r| r.get(0)))
    }

    /// Runs `f` in one transaction that holds [`WRITE_LOCK`], and commits it; retried on a
    /// serialization failure or deadlock (which the lock should make impossible) until
    /// [`BUSY_TIMEOUT`]. `f` refusing rolls back.
    pub(super) fn write<T>(
        &mut self,
        mut f: impl FnMut(&mut dyn Sql) -> Res<Refused<T>>,
    ) -> Res<Refused<T>> {
        self.transaction(|tx, statements| f(&mut On { c: tx, statements }))
    }

    fn transaction<T>(
        &mut self,
        mut f: impl FnMut(
            &mut postgres::Transaction,
            &mut HashMap<&'static str, Statement>,
        ) -> Res<Refused<T>>,
    ) -> Res<Refused<T>> {
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            let statements = &mut self.statements;
            let attempt = (|| {
                let mut tx = self.client.transaction()?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
                match f(&mut tx, statements)? {
                    Ok(v) => {
                        tx.commit()?;
                        Ok(Ok(v))
                    }
                    Err(e) => {
                        tx.rollback()?;
                        Ok(Err(e))
                    }
                }
            })();
            match attempt {
                Err(DbError::Postgres(e)) if retryable(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                r => return r,
            }
        }
    }

    /// Reads through `f`, in autocommit.
    pub(super) fn read<T>(&mut self, f: impl FnOnce(&mut dyn Sql) -> Res<T>) -> Res<T> {
        f(&mut On {
            c: &mut self.client,
            statements: &mut self.statements,
        })
    }

    /// Brings the schema up to date in one locked transaction; the versions before and
    /// after.
    pub(super) fn migrate(&mut self) -> Res<Refused<(i64, i64)>> {
        self.transaction(|tx, _| migrate(tx))
    }
}

fn retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// What the database holds of a schema. The tables are looked up by a query on the catalog
/// (read with the statement's snapshot), not with `to_regclass`: that goes through the
/// server's catalog cache, which inside a transaction is refreshed only when a table is
/// locked, so a writer that waited on the write lock while another created the tables would
/// still be told they do not exist, and would migrate again ("duplicate key value violates
/// unique constraint schema_migrations_pkey", seen with 8 processes on a fresh database).
fn state_of(c: &mut impl GenericClient) -> Res<State> {
    let row = c.query_one(
        "SELECT
            EXISTS (SELECT 1 FROM pg_catalog.pg_tables
                    WHERE schemaname = current_schema() AND tablename = 'schema_migrations'),
            EXISTS (SELECT 1 FROM pg_catalog.pg_tables
                    WHERE schemaname = current_schema() AND tablename = 'scans')",
        &[],
    )?;
    let (migrations, scans): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
    let mut version = 0;
    if migrations {
        let v: Option<i64> = c
            .query_one("SELECT MAX(version) FROM schema_migrations", &[])?
            .try_get(0)?;
        version = v.unwrap_or(0);
    }
    Ok(State {
        version,
        versioned: migrations,
        exists: migrations || scans,
    })
}

/// Brings the schema up to date inside the caller's transaction, which holds the lock.
fn migrate(tx: &mut postgres::Transaction) -> Res<Refused<(i64, i64)>> {
    let from = state_of(tx)?.version;
    if let Some(e) = super::too_new(from) {
        return Ok(Err(e));
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            applied_at TEXT NOT NULL
        )",
    )?;
    let now = format_time(&Utc::now());
    let mut version = from;
    for m in pending(from) {
        tx.batch_execute(m.postgres)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[&m.version, &now],
        )?;
        version = m.version;
    }
    Ok(Ok((from, version)))
}

/// A client or transaction seen as [`Sql`], with the connection's statement cache.
struct On<'a, C: GenericClient> {
    c: &'a mut C,
    statements: &'a mut HashMap<&'static str, Statement>,
}

impl<C: GenericClient> On<'_, C> {
    fn statement(&mut self, sql: &'static str) -> Res<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        // The shared statements number their placeholders ?N; PostgreSQL writes $N.
        let s = self.c.prepare(&sql.replace('?', "$"))?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

fn pg_args<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter()
        .map(|a| match a {
            Arg::Int(v) => v as &(dyn ToSql + Sync),
            Arg::Text(t) => t as &(dyn ToSql + Sync),
        })
        .collect()
}

/// The latest point of each disk of an array, one index look-up each, in one statement.
const LATEST_OF: &str = "SELECT d.disk, s.at, s.segment, s.bytes
    FROM unnest(?1::text[]) AS d(disk)
    CROSS JOIN LATERAL (
        SELECT at, segment, bytes FROM scans
        WHERE scans.disk = d.disk COLLATE \"C\" ORDER BY at DESC LIMIT 1
    ) AS s";

/// Many points in one statement: one array per column, zipped by `unnest`.
const INSERT_ROWS: &str = "INSERT INTO scans (disk, at, segment, bytes, file_size,
    virtual_size, grain_size, cid, fresh, overwritten, identical, zeroed, hard_ceiling,
    expected_ceiling, source, layers)
    SELECT * FROM unnest(?1::text[], ?2::bigint[], ?3::bigint[], ?4::bigint[], ?5::bigint[],
        ?6::bigint[], ?7::bigint[], ?8::text[], ?9::bigint[], ?10::bigint[], ?11::bigint[],
        ?12::bigint[], ?13::bigint[], ?14::bigint[], ?15::text[], ?16::text[])";

/// Rows per bulk insert: a few megabytes per statement at most.
const ROWS_PER_INSERT: usize = 5000;

impl<C: GenericClient> Sql for On<'_, C> {
    fn dyn_sql(&mut self) -> &mut dyn Sql {
        self
    }

    fn latest_of(&mut self, disks: &[&str]) -> Res<HashMap<String, Latest>> {
        let st = self.statement(LATEST_OF)?;
        let mut out = HashMap::with_capacity(disks.len());
        for chunk in disks.chunks(ROWS_PER_INSERT) {
            for r in self.c.query(&st, &[&chunk])? {
                out.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
            }
        }
        Ok(out)
    }

    fn insert_rows(&mut self, rows: &[(&Point, i64)]) -> Res<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let st = self.statement(INSERT_ROWS)?;
        // Every figure was checked against MAX_BYTES (check_range): the casts are exact.
        let i = |v: Option<u64>| v.map(|v| v as i64);
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let int = |f: &dyn Fn(&Point, i64) -> Option<i64>| -> Vec<Option<i64>> {
                chunk.iter().map(|(p, s)| f(p, *s)).collect()
            };
            let text = |f: &dyn Fn(&Point) -> Option<&str>| -> Vec<Option<String>> {
                chunk
                    .iter()
                    .map(|(p, _)| f(p).map(str::to_string))
                    .collect()
            };
            let class = |k: usize| int(&|p, _| i(p.classes.map(|c| c[k])));
            let columns: [&(dyn ToSql + Sync); 16] = [
                &text(&|p| Some(&p.disk)),
                &int(&|p, _| Some(p.at.timestamp())),
                &int(&|_, s| Some(s)),
                &int(&|p, _| i(Some(p.bytes))),
                &int(&|p, _| i(p.file_size)),
                &int(&|p, _| i(p.virtual_size)),
                &int(&|p, _| i(p.grain_size)),
                &text(&|p| p.cid.as_deref()),
                &class(0),
                &class(1),
                &class(2),
                &class(3),
                &int(&|p, _| i(p.hard_ceiling)),
                &int(&|p, _| i(p.expected_ceiling)),
                &text(&|p| Some(&p.source)),
                &text(&|p| p.layers.as_deref()),
            ];
            self.c.execute(&st, &columns)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &'static str, args: &[Arg]) -> Res<u64> {
        let st = self.statement(sql)?;
        Ok(self.c.execute(&st, &pg_args(args))?)
    }

    fn query(&mut self, sql: &'static str, args: &[Arg]) -> Res<Vec<Vec<Val>>> {
        let st = self.statement(sql)?;
        let rows = self.c.query(&st, &pg_args(args))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut row = Vec::with_capacity(r.len());
            for (i, col) in r.columns().iter().enumerate() {
                let v = match *col.type_() {
                    Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Val::Int),
                    Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(|v| Val::Int(v.into())),
                    Type::TEXT | Type::VARCHAR | Type::NAME => {
                        r.try_get::<_, Option<String>>(i)?.map(Val::Text)
                    }
                    _ => return Err(DbError::Shape("an integer or text")),
                };
                row.push(v.unwrap_or(Val::Null));
            }
            out.push(row);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact("postgresql://ops:s3cret@db:5432/estate"),
            "postgresql://ops:***@db:5432/estate"
        );
        assert_eq!(
            redact("postgres://ops@db/estate?password=s3cret&sslmode=disable"),
            "postgres://ops@db/estate?password=***&sslmode=disable"
        );
        assert_eq!(redact("postgresql://db/estate"), "postgresql://db/estate");
        // A password holding '@' still never shows.
        assert!(!redact("postgresql://ops:a@b@db/x").contains("a@b"));
        let t = Target::parse("postgresql://ops:s3cret@db.example:6543/estate").expect("url");
        assert_eq!(t.to_string(), "postgresql://ops@db.example:6543/estate");
        assert!(!format!("{t:?}").contains("s3cret"));
        let e = Target::parse("postgresql://ops:s3cret@db:notaport/estate").unwrap_err();
        assert!(
            !e.contains("s3cret") && e.contains("not a PostgreSQL URL"),
            "{e}"
        );
        assert!(is_url("postgres://x") && is_url("postgresql://x") && !is_url("/tmp/h.sqlite"));
    }
}
