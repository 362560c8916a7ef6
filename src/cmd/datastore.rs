//! `scan DIR` and `lun DIR`: find every disk of the datastore folders (each folder a LUN),
//! scan them all under one progress bar, and run the LUN model per LUN on what was found;
//! and the model's settings read from the command line (`ModelArgs`), which `lun` on
//! parameters alone and `report DIR` use too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::bar::Bar;
use super::history::Recording;
use crate::cli::{DbArgs, GlobalArgs, LunSpec, ModelArgs, ScanArgs};
use crate::datastore::{Found, discover, plan};
use crate::error::{Error, Result};
use crate::history::forecast::Sample;
use crate::lun::Params;
use crate::progress::{NoProgress, Progress};
use crate::render::DatastoreScan;
use crate::render::metrics::render_metrics;
use crate::report::datastore::{
    DatastoreReport, GrowthSource, ModelSettings, Status, datastore_report,
};

/// The fixed part of the model from the command line (everything but growth).
pub(super) fn params(m: &ModelArgs) -> Params {
    Params {
        hold: m.hold,
        locking: m.locking.into(),
        max_busy: m.max_busy,
        lun_size: m.lun_size,
        headroom: m.headroom,
        ceiling_per_vm: m.ceiling_per_vm,
    }
}

/// The model's settings: its parameters, `--increment`, and where growth comes from (with
/// a site, the growth recorded under that site's names).
pub(super) fn settings(
    g: &GlobalArgs,
    m: &ModelArgs,
    db: &DbArgs,
    site: Option<&str>,
) -> Result<ModelSettings> {
    settings_for(g, m, db, site, None)
}

/// As [`settings`] for a run that records into the store: a store that does not exist yet
/// has no growth, and one that cannot be read is a warning (the scan is still printed;
/// recording into it then fails).
fn settings_for(
    g: &GlobalArgs,
    m: &ModelArgs,
    db: &DbArgs,
    site: Option<&str>,
    recording: Option<&Recording>,
) -> Result<ModelSettings> {
    Ok(ModelSettings {
        params: params(m),
        increment: m.increment,
        growth: growth_source(g, m, db, site, recording)?,
        series: series(m, db, site, recording)?,
        budget: m.budget,
        recorded_at: recording.map(Recording::at),
        scanned_at: recording.map_or_else(chrono::Utc::now, Recording::at),
    })
}

/// Each disk's recorded sizes, for the time to full (`--lun-size`) and refresh intervals
/// (`--budget`); read only when one of them asks. A store that cannot be read while this run
/// records is a warning, as for growth.
fn series(
    m: &ModelArgs,
    db: &DbArgs,
    site: Option<&str>,
    recording: Option<&Recording>,
) -> Result<HashMap<String, Vec<Sample>>> {
    if m.lun_size.is_none() && m.budget.is_none() {
        return Ok(HashMap::new());
    }
    let creating = recording.is_some_and(Recording::creates_store);
    match super::history::recorded_samples(db, creating, site) {
        Ok(s) => Ok(s),
        Err(e) if recording.is_some() => {
            super::note(format_args!(
                "warning: forecasts from history: {e}; no time to full or refresh interval"
            ));
            Ok(HashMap::new())
        }
        Err(e) => Err(e),
    }
}

/// Where each VM's growth comes from: a given burst, --since, or the history store (read
/// only: a store named with --db must exist, unless this run records into it).
fn growth_source(
    g: &GlobalArgs,
    m: &ModelArgs,
    db: &DbArgs,
    site: Option<&str>,
    recording: Option<&Recording>,
) -> Result<GrowthSource> {
    if let (Some(bytes), Some(window)) = (m.growth_per_vm, m.window) {
        return Ok(GrowthSource::Given { bytes, window });
    }
    if let Some(since) = &m.since {
        let at = super::history::past_time("--since", since, super::history::zone(g))?;
        let secs = (chrono::Utc::now() - at).num_milliseconds() as f64 / 1000.0;
        if secs <= 0.0 {
            return Err(Error::Usage(format!(
                "--since {}: that is now, not in the past",
                since.text
            )));
        }
        return Ok(GrowthSource::Since { window: secs });
    }
    let creating = recording.is_some_and(Recording::creates_store);
    Ok(match super::history::recorded_growth(db, creating, site) {
        Ok(Some(m)) => GrowthSource::History(m),
        Ok(None) => GrowthSource::Unknown,
        Err(e) if recording.is_some() => {
            super::note(format_args!(
                "warning: growth from history: {e}; growth is unknown"
            ));
            GrowthSource::Unknown
        }
        Err(e) => return Err(e),
    })
}

/// LUNs from positional folders (named after the folder) and `--lun NAME=DIR`.
pub(super) fn luns(dirs: &[PathBuf], specs: &[LunSpec]) -> Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for d in dirs {
        let name = std::fs::canonicalize(d)
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| d.display().to_string());
        out.push((name, d.clone()));
    }
    for s in specs {
        out.push((s.name.clone(), s.dir.clone()));
    }
    for (i, (name, _)) in out.iter().enumerate() {
        if out[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::Usage(format!(
                "two LUNs are named {name:?}: name them with --lun NAME=DIR"
            )));
        }
    }
    Ok(out)
}

/// Finds and scans every disk of the LUNs, and builds the report; with `record`, adds
/// every disk scanned to it (written by the caller after the report is printed).
pub(super) fn scan_luns(
    g: &GlobalArgs,
    luns: &[(String, PathBuf)],
    settings: &ModelSettings,
    record: Option<&mut Recording>,
) -> Result<DatastoreReport> {
    // Every LUN is a root where missing absolute parent hints are looked for: a replica may
    // sit on another datastore than its clones.
    let roots: Vec<&Path> = luns.iter().map(|(_, d)| d.as_path()).collect();
    let opts = super::chain_options(g, &roots)?;
    let mut found: Vec<Found> = Vec::new();
    for (_, dir) in luns {
        found.push(discover(dir, &opts.paths)?);
    }
    if found.iter().all(|f| f.vmdk_files == 0) {
        let dirs: Vec<String> = luns.iter().map(|(_, d)| d.display().to_string()).collect();
        let unread: Vec<String> = found
            .iter()
            .flat_map(|f| &f.orphans)
            .map(|o| {
                format!(
                    "{}: {}",
                    o.path.display(),
                    o.error.as_deref().unwrap_or("?")
                )
            })
            .collect();
        let also = if unread.is_empty() {
            String::new()
        } else {
            format!(
                " ({} could not be read: {})",
                unread.len(),
                unread.join("; ")
            )
        };
        return Err(Error::Other(format!(
            "no VMDK files under {}{also}",
            dirs.join(", ")
        )));
    }
    let plan = plan(&mut found);
    let disks = &plan.disks;
    let pool = super::pool(g)?;
    let measured = pool.install(|| crate::scan::measure(disks, &opts));
    let total = crate::scan::total_units(&measured);
    let bar = super::show_progress(g).then(|| {
        Bar::new(
            total,
            &format!("scanning {} disk(s) on {} LUN(s)", disks.len(), luns.len()),
        )
    });
    let progress: &dyn Progress = match &bar {
        Some(b) => b,
        None => &NoProgress,
    };
    let cache = super::layer_cache(g);
    let scans = pool.install(|| {
        let scan = crate::scan::ScanOptions::full(g.strict);
        crate::scan::scan_disks(disks, &measured, &opts, &scan, progress, cache.as_ref())
    });
    if let Some(b) = &bar {
        b.finish();
    }
    if let Some(r) = record {
        for s in &scans {
            if let Ok(scan) = &s.result {
                r.add(r.name_of(&s.path), &crate::report::scan_report(scan));
            }
        }
    }
    let named: Vec<(String, PathBuf, Found)> = luns
        .iter()
        .zip(found)
        .map(|((n, d), f)| (n.clone(), d.clone(), f))
        .collect();
    let mut report = datastore_report(&named, &plan, &scans, settings);
    report.strict = g.strict;
    Ok(report)
}

/// `scan DIR...` / `scan --lun NAME=DIR`.
pub(super) fn scan(g: &GlobalArgs, a: &ScanArgs) -> Result<()> {
    let luns = luns(&a.paths, &a.lun)?;
    // A metrics file that cannot be written is refused before the scan.
    if let Some(m) = &a.metrics {
        crate::outfile::check(m)?;
    }
    // An --at in the future or a bad $DELTASCOPE_SITE fails before the scan; the store is
    // written after the report.
    let site = super::history::site(&a.site)?;
    let mut recording = a
        .record
        .then(|| Recording::new(g, a.at.as_ref(), &a.db, site.clone()))
        .transpose()?;
    let settings = settings_for(g, &a.model, &a.db, site.as_deref(), recording.as_ref())?;
    let report = scan_luns(g, &luns, &settings, recording.as_mut())?;
    let printed = super::print(a.format, &DatastoreScan(&report));
    // The metrics are written whatever became of stdout (a cron job sends it nowhere), and
    // a failed scan of some disks is exactly what `deltascope_scan_failed_disks` is for.
    let metrics = a.metrics.as_deref().map(|m| {
        let at = chrono::Utc::now().timestamp();
        crate::outfile::write(m, |w| render_metrics(w, &report, at))
    });
    if let Some(r) = recording {
        r.commit()?;
    }
    printed?;
    metrics.transpose()?;
    failures(&report)
}

/// Exit 1 after the report when a disk failed, an entry could not be read or a LUN holds no
/// disk (and, under `--strict`, when the datastore has warnings).
pub(super) fn failures(report: &DatastoreReport) -> Result<()> {
    let mut why = Vec::new();
    if report.any_failed() {
        let failed = report.vms.iter().filter(|v| v.status != Status::Ok).count();
        why.push(format!(
            "{failed} of {} disk(s) could not be scanned (listed in the report); the others were scanned",
            report.vms.len()
        ));
    }
    let unreadable = report.unreadable();
    if unreadable > 0 {
        why.push(format!(
            "{unreadable} file(s) or folder(s) could not be read (listed in the report's orphans); the rest was scanned"
        ));
    }
    for l in report.luns.iter().filter(|l| l.vms_found == 0) {
        why.push(format!(
            "no disk found under {} (LUN {})",
            l.path,
            crate::sanitize::sanitize(&l.name)
        ));
    }
    if report.strict && !report.warnings.is_empty() {
        why.push(format!(
            "{} datastore warning(s) (an error because of --strict)",
            report.warnings.len()
        ));
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(Error::Other(why.join("; ")))
    }
}
