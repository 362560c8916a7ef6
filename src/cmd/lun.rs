//! `lun`, and `scan` of datastore folders: find every disk, scan them all under one progress
//! bar, and run the LUN model per LUN on what was found.

use std::path::{Path, PathBuf};

use crate::chart::sensitivity::{self, Sensitivity};
use crate::cli::{DbArgs, GlobalArgs, LunArgs, ModelArgs, ScanArgs};
use crate::datastore::{Found, discover, plan};
use crate::error::{Error, Result};
use crate::history::disk_name;
use crate::lun::{Params, VMFS_SPARSE_INCREMENT};
use crate::progress::{Bar, NoProgress, Progress};
use crate::render::lun_text;
use crate::report::datastore::{
    DatastoreReport, GrowthSource, LunModel, ModelSettings, datastore_report, model_from_parameters,
};
use crate::units::parse_duration;

use super::history::Recording;

fn size(flag: &str, v: &Option<String>) -> Result<Option<u64>> {
    super::history::size_arg(flag, v)
}

fn duration(flag: &str, v: &str) -> Result<f64> {
    let s = parse_duration(v).map_err(|e| Error::Usage(format!("{flag}: {e}")))?;
    if s <= 0.0 {
        return Err(Error::Usage(format!("{flag} must be longer than 0")));
    }
    Ok(s)
}

/// The fixed part of the model from the command line (everything but growth).
pub(super) fn params(m: &ModelArgs) -> Result<Params> {
    if !(m.max_busy > 0.0 && m.max_busy <= 1.0) {
        return Err(Error::Usage(format!(
            "--max-busy {}: expected a fraction above 0 and at most 1 (0.01 = 1 % of the time)",
            m.max_busy
        )));
    }
    if !(0.0..1.0).contains(&m.headroom) {
        return Err(Error::Usage(format!(
            "--headroom {}: expected a fraction from 0 up to (not including) 1",
            m.headroom
        )));
    }
    let ceiling = size("--ceiling-per-vm", &m.ceiling_per_vm)?;
    if ceiling == Some(0) {
        return Err(Error::Usage("--ceiling-per-vm must be more than 0".into()));
    }
    Ok(Params {
        hold: duration("--hold", &m.hold)?,
        locking: m.locking,
        max_busy: m.max_busy,
        lun_size: size("--lun-size", &m.lun_size)?,
        headroom: m.headroom,
        ceiling_per_vm: ceiling,
    })
}

pub(super) fn increment(m: &ModelArgs) -> Result<Option<u64>> {
    let i = size("--increment", &m.increment)?;
    if i == Some(0) {
        return Err(Error::Usage("--increment must be more than 0".into()));
    }
    Ok(i)
}

/// Where each VM's growth comes from: a given burst, --since, or the history store (read
/// only: a store named with --db must exist).
pub(super) fn growth_source(g: &GlobalArgs, m: &ModelArgs, db: &DbArgs) -> Result<GrowthSource> {
    growth_source_for(g, m, db, None)
}

/// As [`growth_source`] for a run that records into the store: a store that does not
/// exist yet has no growth, and one that cannot be read is a warning (the scan is still
/// printed; recording into it then fails).
fn growth_source_for(
    g: &GlobalArgs,
    m: &ModelArgs,
    db: &DbArgs,
    recording: Option<&Recording>,
) -> Result<GrowthSource> {
    if let (Some(g), Some(w)) = (&m.growth_per_vm, &m.window) {
        let bytes = size("--growth-per-vm", &Some(g.clone()))?.unwrap_or(0);
        return Ok(GrowthSource::Given {
            bytes,
            window: duration("--window", w)?,
        });
    }
    if let Some(since) = &m.since {
        let at = super::history::past_time_arg("--since", since, super::history::zone(g)?)?;
        let secs = (chrono::Utc::now() - at).num_milliseconds() as f64 / 1000.0;
        if secs <= 0.0 {
            return Err(Error::Usage(format!(
                "--since {since}: that is now, not in the past"
            )));
        }
        return Ok(GrowthSource::Since { window: secs });
    }
    let creating = recording.is_some_and(Recording::creates_store);
    Ok(match super::history::recorded_growth(db, creating) {
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
pub(super) fn luns(dirs: &[PathBuf], specs: &[String]) -> Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for d in dirs {
        let name = std::fs::canonicalize(d)
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| d.display().to_string());
        out.push((name, d.clone()));
    }
    for s in specs {
        let Some((name, dir)) = s
            .split_once('=')
            .filter(|(n, d)| !n.is_empty() && !d.is_empty())
        else {
            return Err(Error::Usage(format!(
                "--lun {s:?}: expected NAME=DIR, such as ds1=/vmfs/volumes/ds1"
            )));
        };
        out.push((name.to_string(), PathBuf::from(dir)));
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
    let total: u64 = measured.iter().filter_map(|m| m.as_ref().ok()).sum();
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
    let scans =
        pool.install(|| crate::scan::scan_disks(disks, &measured, &opts, progress, cache.as_ref()));
    if let Some(b) = &bar {
        b.finish();
    }
    if let Some(r) = record {
        for s in &scans {
            if let Ok(report) = &s.result {
                r.add(disk_name(&s.path), report);
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
pub(super) fn scan_datastore(g: &GlobalArgs, a: &ScanArgs) -> Result<()> {
    let luns = luns(&a.paths, &a.lun)?;
    // A bad --at or --tz fails before the scan; the store is written after the report.
    let mut recording = a
        .record
        .then(|| Recording::new(g, a.at.as_deref(), &a.db))
        .transpose()?;
    let settings = ModelSettings {
        params: params(&a.model)?,
        increment: increment(&a.model)?,
        growth: growth_source_for(g, &a.model, &a.db, recording.as_ref())?,
    };
    let report = scan_luns(g, &luns, &settings, recording.as_mut())?;
    let printed = if a.json {
        super::json_to_stdout(&report)
    } else if a.csv {
        super::to_stdout(|w| write_vm_csv(w, &report))
    } else {
        super::to_terminal(|w| lun_text::render_datastore(w, &report))
    };
    if let Some(r) = recording {
        r.commit()?;
    }
    printed?;
    failures(&report)
}

/// Exit 1 after the report when a disk failed, an entry could not be read or a LUN holds no
/// disk (and, under `--strict`, when the datastore has warnings).
pub(super) fn failures(report: &DatastoreReport) -> Result<()> {
    let mut why = Vec::new();
    if report.any_failed() {
        let failed = report.vms.iter().filter(|v| v.status != "ok").count();
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

/// `lun`.
pub(super) fn run(g: &GlobalArgs, a: &LunArgs) -> Result<()> {
    // Chart files that cannot be written are refused before the scan.
    for base in [&a.chart, &a.chart_locking].into_iter().flatten() {
        crate::chart::Output::for_path(base)?;
        crate::outfile::check(base)?;
    }
    let p = params(&a.model)?;
    if a.dirs.is_empty() && a.lun.is_empty() {
        let (Some(vms), Some(growth), Some(window)) =
            (a.vms, &a.model.growth_per_vm, &a.model.window)
        else {
            return Err(Error::Usage(
                "lun on parameters alone needs --vms, --growth-per-vm and --window (or give datastore folders to scan)".into(),
            ));
        };
        if a.model.since.is_some() {
            return Err(Error::Usage(
                "--since needs datastore folders to scan".into(),
            ));
        }
        let growth = size("--growth-per-vm", &Some(growth.clone()))?.unwrap_or(0);
        let window = duration("--window", window)?;
        let inc = increment(&a.model)?.unwrap_or(VMFS_SPARSE_INCREMENT);
        let model = model_from_parameters(vms, growth, window, inc, &p);
        let curves = Sensitivity::uniform(vms, growth, window, inc, &p, "");
        draw_charts(a, std::slice::from_ref(&curves))?;
        return if a.json {
            super::json_to_stdout(&model)
        } else if a.csv {
            super::to_stdout(|w| write_lun_csv(w, &[("", &model)]))
        } else {
            super::to_terminal(|w| lun_text::render_model(w, &model))
        };
    }
    let luns = luns(&a.dirs, &a.lun)?;
    let settings = ModelSettings {
        params: p,
        increment: increment(&a.model)?,
        growth: growth_source(g, &a.model, &a.db)?,
    };
    if matches!(settings.growth, GrowthSource::Unknown) {
        return Err(Error::Usage(
            "the growth of the deltas is not known: give --growth-per-vm and --window (a burst), --since DATE (when the deltas were created or refreshed), or record scans over time (scan DIR --record) and pass --db".into(),
        ));
    }
    let report = scan_luns(g, &luns, &settings, None)?;
    let curves: Vec<Sensitivity> = report
        .luns
        .iter()
        .map(|l| Sensitivity::measured(l, settings.increment))
        .collect();
    draw_charts(a, &curves)?;
    if a.json {
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            lun: &'a str,
            path: &'a str,
            vms_failed: usize,
            #[serde(flatten)]
            model: &'a LunModel,
        }
        #[derive(serde::Serialize)]
        struct Out<'a> {
            deltascope_version: &'a str,
            luns: Vec<Entry<'a>>,
        }
        super::json_to_stdout(&Out {
            deltascope_version: &report.deltascope_version,
            luns: report
                .luns
                .iter()
                .map(|l| Entry {
                    lun: &l.name,
                    path: &l.path,
                    vms_failed: l.vms_failed,
                    model: &l.model,
                })
                .collect(),
        })?;
    } else if a.csv {
        let rows: Vec<(&str, &LunModel)> = report
            .luns
            .iter()
            .map(|l| (l.name.as_str(), &l.model))
            .collect();
        super::to_stdout(|w| write_lun_csv(w, &rows))?;
    } else {
        super::to_terminal(|w| lun_text::render_datastore(w, &report))?;
    }
    failures(&report)
}

/// Chart files for each LUN: FILE itself for one, FILE-NAME.ext for several.
fn chart_path(base: &Path, lun: &str, several: bool) -> PathBuf {
    if !several {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = base
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe: String = lun
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.with_file_name(format!("{stem}-{safe}.{ext}"))
}

fn draw_charts(a: &LunArgs, curves: &[Sensitivity]) -> Result<()> {
    for (file, draw) in [
        (
            &a.chart,
            sensitivity::draw_increments as sensitivity::DrawFn,
        ),
        (
            &a.chart_locking,
            sensitivity::draw_locking as sensitivity::DrawFn,
        ),
    ] {
        let Some(base) = file else { continue };
        crate::chart::Output::for_path(base)?;
        for c in curves {
            let path = chart_path(base, &c.lun, curves.len() > 1);
            draw(&path, c)?;
            super::note(format_args!("wrote {}", path.display()));
        }
    }
    Ok(())
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// One row per LUN: the model's inputs that vary and its outcome.
fn write_lun_csv(w: &mut dyn std::io::Write, rows: &[(&str, &LunModel)]) -> std::io::Result<()> {
    let mut out = crate::render::csv::CsvOut::new(w);
    out.row([
        "lun",
        "vms",
        "growth_per_vm_bytes",
        "window_seconds",
        "increment_bytes",
        "hold_seconds",
        "locking",
        "lock_events",
        "lock_events_per_hour",
        "busy_fraction",
        "conflict_probability",
        "lock_limit",
        "capacity_limit",
        "recommended",
        "binding",
    ])?;
    for (name, m) in rows {
        let i = &m.inputs;
        let o = &m.outcome;
        let v = &o.vms_per_lun;
        out.row([
            name.to_string(),
            i.vms.to_string(),
            opt(i.growth_per_vm_bytes),
            opt(i.window_seconds),
            opt(i.increment_bytes),
            i.hold_seconds.to_string(),
            i.locking.name().to_string(),
            o.lock_events.to_string(),
            o.lock_events_per_hour.to_string(),
            o.busy_fraction.to_string(),
            o.conflict_probability.to_string(),
            opt(v.lock_limit),
            opt(v.capacity_limit),
            opt(v.recommended),
            opt(v.binding.map(crate::lun::Binding::name)),
        ])?;
    }
    out.flush()
}

/// One row per disk of a datastore scan. The free-text `error` stays the last column; columns
/// added later go just before it.
fn write_vm_csv(w: &mut dyn std::io::Write, r: &DatastoreReport) -> std::io::Result<()> {
    let mut out = crate::render::csv::CsvOut::new(w);
    out.row([
        "lun",
        "path",
        "status",
        "format",
        "layers",
        "virtual_size",
        "delta_bytes",
        "delta_file_bytes",
        "fresh",
        "overwritten",
        "identical",
        "zeroed",
        "expected_ceiling",
        "hard_ceiling",
        "growth_bytes",
        "window_seconds",
        "increment_bytes",
        "lock_events",
        "lock_events_per_hour",
        "vm",
        "role",
        "chain_delta_bytes",
        "error",
    ])?;
    for v in &r.vms {
        let c = v.classes;
        out.row([
            v.lun.clone(),
            v.path.clone(),
            v.status.to_string(),
            opt(v.format.clone()),
            opt(v.layers),
            opt(v.virtual_size),
            opt(v.delta_bytes),
            opt(v.delta_file_bytes),
            opt(c.map(|c| c.fresh)),
            opt(c.map(|c| c.overwritten)),
            opt(c.map(|c| c.identical)),
            opt(c.map(|c| c.zeroed)),
            opt(v.ceiling.map(|c| c.expected_bytes)),
            opt(v.ceiling.map(|c| c.hard_bytes)),
            opt(v.growth.map(|g| g.bytes)),
            opt(v.growth.map(|g| g.window_seconds)),
            opt(v.increment_bytes),
            opt(v.lock_events),
            opt(v.lock_events_per_hour),
            opt(v.vm.clone()),
            v.role.to_string(),
            opt(v.chain_delta_bytes),
            opt(v.error.clone()),
        ])?;
    }
    out.flush()
}
