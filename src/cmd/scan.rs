//! `deltascope scan`: classify every layer of a chain and report.

use crate::classify::{classify_layer, unit_count};
use crate::cli::{GlobalArgs, ScanArgs};
use crate::error::Result;
use crate::progress::{Bar, NoProgress, Progress};
use crate::report::{scan_report, text};

pub(super) fn run(g: &GlobalArgs, a: &ScanArgs) -> Result<()> {
    let chain = super::open_chain(g, &a.path)?;
    let pool = super::pool(g)?;
    let total: u64 = (0..chain.layers.len()).map(|i| unit_count(&chain, i)).sum();
    let bar = super::show_progress(g).then(|| Bar::new(total, "classifying grain tables"));
    let progress: &dyn Progress = match &bar {
        Some(b) => b,
        None => &NoProgress,
    };
    let stats = pool.install(|| {
        (0..chain.layers.len())
            .map(|i| classify_layer(&chain, i, progress))
            .collect::<Result<Vec<_>>>()
    });
    if let Some(b) = &bar {
        b.finish();
    }
    let stats = stats?;
    let mut report = scan_report(&chain, &stats);
    if let Some(top) = stats.last() {
        let c = pool
            .install(|| crate::ceiling::ceiling(&chain, top.allocated_bytes, top.stored_bytes))?;
        report.ceiling = Some(c);
    }
    chain.check_unchanged()?;
    if a.record {
        super::history::record_scan(a, &report)?;
    }
    if a.json {
        super::json_to_stdout(&report)
    } else {
        super::to_stdout(|w| text::render_scan(w, &report))
    }
}
