//! `deltascope blame`: attribute the top delta's bytes to guest files and print the groups.

use crate::cli::{BlameArgs, GlobalArgs};
use crate::error::Result;
use crate::progress::{Bar, NoProgress, Progress};
use crate::report::blame;

pub(super) fn run(g: &GlobalArgs, a: &BlameArgs) -> Result<()> {
    let chain = super::open_chain(g, &a.path)?;
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
    let report = pool.install(|| crate::blame::blame_chain(&chain, a.by, progress));
    if let Some(b) = &bar {
        b.finish();
    }
    let report = blame::blame_report(&report?);
    chain.check_unchanged()?;
    if a.json {
        super::json_to_stdout(&report)
    } else if a.csv {
        super::to_stdout(|w| blame::render_csv(w, &report))
    } else {
        super::to_terminal(|w| blame::render_text(w, &report, a.top))
    }
}
