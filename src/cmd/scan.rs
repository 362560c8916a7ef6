//! `deltascope scan`: classify every layer of one chain and report; given folders, scan every
//! disk of a datastore (`datastore.rs`).

use super::bar::Bar;
use crate::cli::{GlobalArgs, ScanArgs};
use crate::error::{Error, Result};
use crate::progress::{NoProgress, Progress};
use crate::render::Format;

pub(super) fn run(g: &GlobalArgs, a: &ScanArgs) -> Result<()> {
    let started = chrono::Utc::now();
    let single = match (a.paths.as_slice(), a.lun.is_empty()) {
        ([one], true) => !one.is_dir(),
        _ => false,
    };
    if !single {
        if a.disk.is_some() {
            return Err(Error::Usage(
                "--disk names one disk; a datastore scan records each disk under its own path"
                    .into(),
            ));
        }
        if a.disposable_rules.is_some() {
            return Err(Error::Usage(
                "--disposable-rules is for the remedies of one disk: scan a .vmdk".into(),
            ));
        }
        return super::datastore::scan(g, a);
    }
    if a.metrics.is_some() {
        return Err(Error::Usage(
            "--metrics is for datastore scans (scan DIR, or --lun NAME=DIR)".into(),
        ));
    }
    if a.format == Format::Csv {
        // In the words the user typed.
        return Err(Error::Usage(if a.csv {
            "--csv is for datastore scans; use --json for one chain".into()
        } else {
            "--format csv is for datastore scans; use --format json for one chain".into()
        }));
    }
    let path = &a.paths[0];
    // An --at in the future or a bad $DELTASCOPE_SITE fails before the scan; the store is
    // written after the report.
    let site = super::history::site(&a.site)?;
    let mut recording = a
        .record
        .then(|| super::history::Recording::new(g, a.at.as_ref(), &a.db, site.clone()))
        .transpose()?;
    let rules = super::disposable_rules(a.disposable_rules.as_deref())?;
    let disk = super::history::scan_disk_name(a.disk.as_deref(), path, site.as_deref())?;
    let chain = super::open_chain(g, path)?;
    // The table's verdict says it first; JSON readers get the hint on stderr.
    if a.format != Format::Table {
        super::hint_if_base(&chain);
    }
    let pool = super::pool(g)?;
    let bar = super::show_progress(g)
        .then(|| Bar::new(crate::scan::table_units(&chain), "classifying grain tables"));
    let progress: &dyn Progress = match &bar {
        Some(b) => b,
        None => &NoProgress,
    };
    let cache = super::layer_cache(g);
    let scan = crate::scan::ScanOptions {
        guest_files: !a.no_guest,
        ..crate::scan::ScanOptions::single(g.strict)
    };
    let scanned = pool.install(|| crate::scan::scan_chain(&chain, &scan, progress, cache.as_ref()));
    if let Some(b) = &bar {
        b.finish();
    }
    let scanned = scanned?;
    let rate = super::history::growth_rate(&a.db, &disk);
    let judged = crate::verdict::judge(&scanned, &rules, rate);
    let at = recording
        .as_ref()
        .map_or(started, super::history::Recording::at);
    let report = crate::report::scan_report_judged(&scanned, judged, Some(at));
    let printed = super::print(a.format, &report);
    if let Some(mut r) = recording.take() {
        r.add(disk, &report);
        r.commit()?;
    }
    printed
}
