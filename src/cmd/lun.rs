//! `deltascope lun`: the LUN model on parameters alone, or on datastore folders scanned
//! (`datastore.rs`), with its sensitivity charts.

use std::path::{Path, PathBuf};

use crate::chart::sensitivity::{self, Sensitivity};
use crate::cli::{GlobalArgs, LunArgs};
use crate::error::{Error, Result};
use crate::lun::VMFS_SPARSE_INCREMENT;
use crate::render::LunScan;
use crate::report::datastore::{GrowthSource, model_from_parameters};

pub(super) fn run(g: &GlobalArgs, a: &LunArgs) -> Result<()> {
    // Chart files that cannot be written are refused before the scan.
    for base in [&a.chart, &a.chart_locking].into_iter().flatten() {
        crate::chart::Output::for_path(base)?;
        crate::outfile::check(base)?;
    }
    if a.dirs.is_empty() && a.lun.is_empty() {
        let p = super::datastore::params(&a.model);
        let (Some(vms), Some(growth), Some(window)) =
            (a.vms, a.model.growth_per_vm, a.model.window)
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
        let inc = a.model.increment.unwrap_or(VMFS_SPARSE_INCREMENT);
        let model = model_from_parameters(vms, growth, window, inc, &p);
        let curves = Sensitivity::uniform(vms, growth, window, inc, &p, "");
        draw_charts(a, std::slice::from_ref(&curves))?;
        return super::print(a.format, &model);
    }
    let luns = super::datastore::luns(&a.dirs, &a.lun)?;
    let site = super::history::site(&a.site)?;
    let settings = super::datastore::settings(g, &a.model, &a.db, site.as_deref())?;
    if matches!(settings.growth, GrowthSource::Unknown) {
        return Err(Error::Usage(
            "the growth of the deltas is not known: give --growth-per-vm and --window (a burst), --since DATE (when the deltas were created or refreshed), or record scans over time (scan DIR --record) and pass --db".into(),
        ));
    }
    let report = super::datastore::scan_luns(g, &luns, &settings, None)?;
    let curves: Vec<Sensitivity> = report
        .luns
        .iter()
        .map(|l| Sensitivity::measured(l, settings.increment))
        .collect();
    draw_charts(a, &curves)?;
    super::print(a.format, &LunScan(&report))?;
    super::datastore::failures(&report)
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
