//! `db migrate` and `db check`: the history store seen by its operator. `migrate` creates
//! or upgrades the schema (what every writer also does on first use); `check` never changes
//! anything and exits 0 only when the store is ready for scanners.

use crate::cli::{DbAction, DbCheckArgs, DbCommand, DbMigrateArgs};
use crate::error::{Error, Result};
use crate::history::{Readiness, Store};
use crate::render::db::render_migrated;

pub(super) fn run(a: &DbCommand) -> Result<()> {
    match &a.action {
        DbAction::Migrate(m) => migrate(m),
        DbAction::Check(c) => check(c),
    }
}

fn migrate(a: &DbMigrateArgs) -> Result<()> {
    let loc = super::history::store_location(&a.db)?;
    let done = Store::migrate(&loc)?;
    super::to_terminal(|w| render_migrated(w, &loc, done))
}

/// Prints what was found in `--format`, then fails (exit 1) unless the store is ready.
fn check(a: &DbCheckArgs) -> Result<()> {
    let loc = super::history::store_location(&a.db)?;
    let h = Store::check(&loc);
    super::print(a.format, &h)?;
    match h.status {
        Readiness::Ok => Ok(()),
        Readiness::Missing => Err(Error::Other(format!(
            "no history store at {loc} yet: `deltascope db migrate` (or the first scan --record) creates it"
        ))),
        Readiness::Behind => Err(Error::Other(format!(
            "{loc}: {} migration(s) pending: run `deltascope db migrate`",
            h.pending.len()
        ))),
        Readiness::Newer => Err(Error::Other(format!(
            "{loc}: schema version {} is newer than this deltascope knows ({}): upgrade deltascope",
            h.schema_version, h.known_version
        ))),
        Readiness::Failed => Err(Error::Other(
            h.error
                .clone()
                .unwrap_or_else(|| format!("{loc}: cannot be checked")),
        )),
    }
}
