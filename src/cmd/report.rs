//! `deltascope report`: scan one chain (or a datastore folder), gather what the other
//! commands would print (scan, history and forecast, blame; datastore and LUN model) and
//! write it as one HTML page (`render/html.rs`). Sections whose data is missing (no history
//! for the disk, no NTFS in the top view) are left out with a note rather than failing.

use std::path::Path;

use crate::chart::sensitivity::{self, Sensitivity};
use crate::cli::{GlobalArgs, ReportArgs};
use crate::error::{Error, Result};
use crate::history::{Store, format_time};
use crate::progress::NoProgress;
use crate::render::html::{self, HistoryView, LunChart, Page, Section};

pub(super) fn run(g: &GlobalArgs, a: &ReportArgs) -> Result<()> {
    // A target that cannot be written is refused before the scan.
    crate::outfile::check(&a.output)?;
    let started = chrono::Utc::now();
    let mut page = Page {
        version: crate::report::VERSION.to_string(),
        command_line: command_line(),
        scanned_at: format_time(&started),
        target: a.path.display().to_string(),
        chain: None,
        datastore: None,
        sensitivity: Vec::new(),
        history: Section::Skipped("no history".into()),
        blame: Section::Skipped(
            "blame reads one disk's guest files: run `report` on a .vmdk".into(),
        ),
        blame_top: a.top,
    };
    let mut failed = Ok(());
    if a.path.is_dir() {
        if a.disk.is_some() {
            return Err(Error::Usage(
                "--disk names one disk; a datastore folder has many".into(),
            ));
        }
        let luns = super::datastore::luns(std::slice::from_ref(&a.path), &[])?;
        let site = super::history::site(&a.site)?;
        let settings = super::datastore::settings(g, &a.model, &a.db, site.as_deref())?;
        let report = super::datastore::scan_luns(g, &luns, &settings, None)?;
        page.sensitivity = report
            .luns
            .iter()
            .map(|l| LunChart {
                lun: l.name.clone(),
                svg: if l.growths.is_empty() {
                    Section::Skipped(
                        "the growth of the deltas is not known: give --growth-per-vm and --window, --since DATE, or --db with recorded scans".into(),
                    )
                } else {
                    match sensitivity::increments_svg(&Sensitivity::measured(
                        l,
                        settings.increment,
                    )) {
                        Ok(svg) => Section::Shown(svg),
                        Err(e) => Section::Skipped(e.to_string()),
                    }
                },
            })
            .collect();
        failed = super::datastore::failures(&report);
        page.datastore = Some(report);
    } else {
        let rules = super::disposable_rules(a.disposable_rules.as_deref())?;
        let chain = super::open_chain(g, &a.path)?;
        super::hint_if_base(&chain);
        let pool = super::pool(g)?;
        let cache = super::layer_cache(g);
        let scan = crate::scan::ScanOptions::single(g.strict);
        let scanned =
            pool.install(|| crate::scan::scan_chain(&chain, &scan, &NoProgress, cache.as_ref()))?;
        // The scan read the guest's files already: its blame is the page's. Without them,
        // blame says why.
        page.blame = match &scanned.guest {
            Some(t) => Section::Shown(crate::report::blame::blame_report(&t.blame)),
            None => match pool.install(|| {
                crate::blame::blame_chain(&chain, crate::blame::GroupBy::File, &NoProgress)
            }) {
                Ok(b) => Section::Shown(crate::report::blame::blame_report(&b)),
                Err(e) => Section::Skipped(e.to_string()),
            },
        };
        let site = super::history::site(&a.site)?;
        let disk = super::history::scan_disk_name(a.disk.as_deref(), &a.path, site.as_deref())?;
        let rate = super::history::growth_rate(&a.db, &disk);
        let judged = crate::verdict::judge(&scanned, &rules, rate);
        let report = crate::report::scan_report_judged(&scanned, judged, Some(started));
        chain.check_unchanged()?;
        page.history = history(a)?;
        page.chain = Some(report);
    }
    write_page(&a.output, &page)?;
    super::note(format_args!("wrote {}", a.output.display()));
    failed
}

/// The command line as typed, for the page's summary.
fn command_line() -> String {
    std::env::args_os()
        .map(|a| {
            let a = a.to_string_lossy().into_owned();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The growth section: the disk's points and forecast when the store has them. The store
/// is only read: a missing file is a note, not a new empty store.
fn history(a: &ReportArgs) -> Result<Section<HistoryView>> {
    let loc = super::history::store_location(&a.db)?;
    if a.db.db.is_none() && !loc.exists()? {
        return Ok(Section::Skipped(format!(
            "no history store at {loc} (record scans with `scan --record`, or pass --db)"
        )));
    }
    let site = super::history::site(&a.site)?;
    let disk = super::history::scan_disk_name(a.disk.as_deref(), &a.path, site.as_deref())?;
    // Never created here: a store named with --db that does not exist is an error.
    let store = Store::open_read(&loc)?;
    if !store.disks()?.contains(&disk) {
        return Ok(Section::Skipped(format!(
            "{loc} has no points for {disk} (name the disk with --disk)"
        )));
    }
    let Some((points, forecast)) = super::history::forecasts(&store, Some(&disk), a.weeks, None)?
        .into_iter()
        .next()
    else {
        return Ok(Section::Skipped(format!("no points for {disk}")));
    };
    let chart = crate::chart::growth::GrowthChart {
        disk: &disk,
        points: &points,
        forecast: forecast.as_ref(),
    };
    let chart_svg = crate::chart::growth::svg(&chart)?;
    Ok(Section::Shown(HistoryView {
        disk,
        points,
        forecast,
        chart_svg,
    }))
}

/// Writes the page by the rule of every output file (`outfile`): a failed run leaves no half
/// page and no temporary file behind.
fn write_page(path: &Path, page: &Page) -> Result<()> {
    crate::outfile::write(path, |w| html::render(w, page))
}
