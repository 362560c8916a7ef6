//! `db migrate` and `db check`: the history store seen by its operator. `migrate` creates
//! or upgrades the schema (what every writer also does on first use); `check` never changes
//! anything and exits 0 only when the store is ready for scanners.

use std::io::Write;

use crate::cli::{DbAction, DbCheckArgs, DbCommand, DbMigrateArgs};
use crate::error::{Error, Result};
use crate::history::{Health, Store, schema};

pub(super) fn run(a: &DbCommand) -> Result<()> {
    match &a.action {
        DbAction::Migrate(m) => migrate(m),
        DbAction::Check(c) => check(c),
    }
}

fn migrate(a: &DbMigrateArgs) -> Result<()> {
    let loc = super::history::store_location(&a.db)?;
    let done = Store::migrate(&loc)?;
    super::to_stdout(|w| {
        writeln!(w, "store: {loc}")?;
        let applied: Vec<_> = schema::pending(done.from)
            .take_while(|m| m.version <= done.to)
            .collect();
        for m in &applied {
            writeln!(w, "applied migration {}: {}", m.version, m.what)?;
        }
        if applied.is_empty() {
            writeln!(w, "schema version {}: up to date, nothing to do", done.to)
        } else {
            writeln!(w, "schema version {} (was {})", done.to, done.from)
        }
    })
}

fn check(a: &DbCheckArgs) -> Result<()> {
    let loc = super::history::store_location(&a.db)?;
    let h = Store::check(&loc);
    if a.json {
        super::json_to_stdout(&h)?;
    } else {
        super::to_stdout(|w| write_health(w, &h))?;
    }
    match h.status {
        "ok" => Ok(()),
        "missing" => Err(Error::Other(format!(
            "no history store at {loc} yet: `deltascope db migrate` (or the first scan --record) creates it"
        ))),
        "behind" => Err(Error::Other(format!(
            "{loc}: {} migration(s) pending: run `deltascope db migrate`",
            h.pending.len()
        ))),
        "newer" => Err(Error::Other(format!(
            "{loc}: schema version {} is newer than this deltascope knows ({}): upgrade deltascope",
            h.schema_version, h.known_version
        ))),
        _ => Err(Error::Other(
            h.error
                .clone()
                .unwrap_or_else(|| format!("{loc}: cannot be checked")),
        )),
    }
}

fn write_health(w: &mut dyn Write, h: &Health) -> std::io::Result<()> {
    let server = h
        .server_version
        .as_deref()
        .map(|v| format!(", server {v}"))
        .unwrap_or_default();
    writeln!(w, "store:     {} ({}{server})", h.store, h.backend)?;
    let status = match h.status {
        "ok" => "ok: ready",
        "missing" => "missing: no store yet",
        "behind" => "behind: migrations pending",
        "newer" => "newer: made by a newer deltascope",
        _ => "failed: cannot be reached or read",
    };
    writeln!(w, "status:    {status}")?;
    if let Some(e) = &h.error {
        writeln!(w, "error:     {e}")?;
        return Ok(());
    }
    if h.exists {
        writeln!(
            w,
            "schema:    version {} (this deltascope writes {})",
            h.schema_version, h.known_version
        )?;
        let span = match (&h.first_at, &h.last_at) {
            (Some(a), Some(b)) => format!(", {a} to {b}"),
            _ => String::new(),
        };
        writeln!(w, "points:    {} in {} disk(s){span}", h.points, h.disks)?;
    }
    if h.pending.is_empty() {
        writeln!(w, "migrate:   nothing to do")?;
    } else {
        for m in &h.pending {
            writeln!(w, "migrate:   would apply {}: {}", m.version, m.what)?;
        }
    }
    Ok(())
}
