//! `deltascope blame`: attribute the top delta's bytes to guest files and print the groups.

use super::bar::Bar;
use crate::cli::{BlameArgs, GlobalArgs};
use crate::error::Result;
use crate::progress::{NoProgress, Progress};
use crate::render::Blame;

pub(super) fn run(g: &GlobalArgs, a: &BlameArgs) -> Result<()> {
    let chain = super::open_chain(g, &a.path)?;
    super::hint_if_base(&chain);
    let pool = super::pool(g)?;
    let top = chain.layers.len() - 1;
    let bar = super::show_progress(g).then(|| {
        Bar::new(
            crate::classify::table_units(&chain, top),
            "classifying grain tables",
        )
    });
    let progress: &dyn Progress = match &bar {
        Some(b) => b,
        None => &NoProgress,
    };
    let report = pool.install(|| crate::blame::blame_chain(&chain, a.by.into(), progress));
    if let Some(b) = &bar {
        b.finish();
    }
    let report = crate::report::blame::blame_report(&report?);
    chain.check_unchanged()?;
    super::print(
        a.format,
        &Blame {
            report: &report,
            top: a.top,
        },
    )
}
