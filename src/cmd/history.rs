//! `history`, `import` and `forecast`: the history store seen from the command line, and
//! `scan --record`'s point (built here from a scan report).

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::cli::{DbArgs, ForecastArgs, HistoryArgs, ImportArgs, ScanArgs};
use crate::error::{Error, Result};
use crate::history::forecast::{DiskForecast, forecast as project};
use crate::history::{
    Point, Recorded, Store, default_db, format_time, import::read_csv, parse_time,
};
use crate::report::ScanReport;
use crate::units::{format_size, parse_size};

pub(super) fn open_store(db: &DbArgs) -> Result<Store> {
    let path: PathBuf = match &db.db {
        Some(p) => p.clone(),
        None => default_db()?,
    };
    Store::open(&path)
}

pub(super) fn time_arg(flag: &str, text: &str) -> Result<DateTime<Utc>> {
    parse_time(text).ok_or_else(|| {
        Error::Usage(format!(
            "{flag} {text:?}: expected a time such as 2026-11-01T08:00:00Z or a date 2026-11-01"
        ))
    })
}

pub(super) fn size_arg(flag: &str, text: &Option<String>) -> Result<Option<u64>> {
    text.as_deref()
        .map(|t| parse_size(t).map_err(|e| Error::Usage(format!("{flag}: {e}"))))
        .transpose()
}

/// Records the scan in `report` as `scan --record` asked; prints what happened to stderr.
pub(super) fn record_scan(a: &ScanArgs, path: &std::path::Path, report: &ScanReport) -> Result<()> {
    let at = record_time(a)?;
    let disk = match &a.disk {
        Some(d) => d.clone(),
        None => std::fs::canonicalize(path)
            .map_err(|e| Error::io(path, "resolve", e))?
            .display()
            .to_string(),
    };
    let Some(point) = point_of(disk, at, report) else {
        return Ok(());
    };
    record_points(&a.db, &[point])
}

/// When `scan --record` records: `--at`, or now.
pub(super) fn record_time(a: &ScanArgs) -> Result<DateTime<Utc>> {
    match &a.at {
        Some(t) => time_arg("--at", t),
        None => Ok(Utc::now()),
    }
}

/// The history point of a scan: the top layer's sizes, classes and ceilings.
pub(super) fn point_of(disk: String, at: DateTime<Utc>, report: &ScanReport) -> Option<Point> {
    let top = report.chain.last()?;
    let layers: Vec<serde_json::Value> = report
        .chain
        .iter()
        .map(|l| {
            serde_json::json!({
                "path": l.path, "allocated_bytes": l.allocated_bytes, "file_size": l.file_size,
                "virtual_size": l.virtual_size, "cid": l.cid, "parent_cid": l.parent_cid,
                "grain_size": l.grain_size, "classes": l.classes,
            })
        })
        .collect();
    let c = &top.classes;
    Some(Point {
        disk,
        at,
        segment: 0,
        bytes: top.allocated_bytes,
        file_size: Some(top.file_size),
        virtual_size: Some(top.virtual_size),
        grain_size: Some(top.grain_size),
        cid: top.cid.clone(),
        classes: Some([c.fresh, c.overwritten, c.identical, c.zeroed]),
        hard_ceiling: report.ceiling.map(|c| c.hard_bytes),
        expected_ceiling: report.ceiling.map(|c| c.expected_bytes),
        source: "scan".into(),
        layers: Some(serde_json::Value::Array(layers).to_string()),
    })
}

/// Records points in the store, saying on stderr what became of each.
pub(super) fn record_points(db: &DbArgs, points: &[Point]) -> Result<()> {
    let mut store = open_store(db)?;
    for point in points {
        match store.record(point)? {
            Recorded::New { segment } => super::note(format_args!(
                "recorded {} at {} ({}, segment {segment}) in {}",
                point.disk,
                format_time(&point.at),
                format_size(point.bytes),
                store.path().display()
            )),
            Recorded::Duplicate => super::note(format_args!(
                "{} already has a point at {}: not recorded again",
                point.disk,
                format_time(&point.at)
            )),
        }
    }
    Ok(())
}

/// Growth of every recorded disk over its latest segment: (bytes grown, seconds), for disks
/// with at least two points there. `None` when no store exists yet (nothing is created).
pub(super) fn recorded_growth(
    db: &DbArgs,
) -> Result<Option<std::collections::HashMap<String, (u64, f64)>>> {
    let path: PathBuf = match &db.db {
        Some(p) => p.clone(),
        None => default_db()?,
    };
    if !path.exists() {
        if db.db.is_some() {
            return Err(Error::Usage(format!(
                "{}: no such history file",
                path.display()
            )));
        }
        return Ok(None);
    }
    let store = Store::open(&path)?;
    let mut out = std::collections::HashMap::new();
    for (disk, points) in store.series(None)? {
        let Some(last) = points.last() else { continue };
        let seg: Vec<&Point> = points
            .iter()
            .filter(|p| p.segment == last.segment)
            .collect();
        let first = seg[0];
        let secs = (last.at - first.at).num_milliseconds() as f64 / 1000.0;
        if seg.len() >= 2 && secs > 0.0 {
            out.insert(disk, (last.bytes.saturating_sub(first.bytes), secs));
        }
    }
    Ok(Some(out))
}

pub(super) fn list(a: &HistoryArgs) -> Result<()> {
    let store = open_store(&a.db)?;
    let series = store.series(a.disk.as_deref())?;
    if a.json {
        let disks: Vec<serde_json::Value> = series
            .iter()
            .map(|(d, p)| serde_json::json!({"disk": d, "points": p}))
            .collect();
        return super::json_to_stdout(&serde_json::json!({ "disks": disks }));
    }
    if a.csv {
        return super::to_stdout(|w| {
            let mut out = crate::report::csv_out::CsvOut::new(w);
            out.row([
                "disk",
                "at",
                "segment",
                "bytes",
                "file_size",
                "virtual_size",
                "fresh",
                "overwritten",
                "identical",
                "zeroed",
                "expected_ceiling",
                "hard_ceiling",
                "cid",
                "source",
            ])?;
            let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
            for (_, points) in &series {
                for p in points {
                    let c = p
                        .classes
                        .map(|c| c.map(|v| v.to_string()))
                        .unwrap_or_default();
                    out.row([
                        p.disk.clone(),
                        format_time(&p.at),
                        p.segment.to_string(),
                        p.bytes.to_string(),
                        opt(p.file_size),
                        opt(p.virtual_size),
                        c[0].clone(),
                        c[1].clone(),
                        c[2].clone(),
                        c[3].clone(),
                        opt(p.expected_ceiling),
                        opt(p.hard_ceiling),
                        p.cid.clone().unwrap_or_default(),
                        p.source.clone(),
                    ])?;
                }
            }
            out.flush()
        });
    }
    super::to_terminal(|w| {
        if series.is_empty() {
            writeln!(w, "no points in {}", store.path().display())?;
        }
        for (disk, points) in &series {
            writeln!(w, "{}", crate::sanitize::sanitize(disk))?;
            writeln!(
                w,
                "  {:<21} {:>3} {:>11} {:>10} {:>10} {:>12} {:<8} source",
                "at", "seg", "allocated", "growth", "fresh", "exp. ceiling", "cid"
            )?;
            let mut prev: Option<&Point> = None;
            for p in points {
                let growth = match prev {
                    Some(q) if q.segment == p.segment => {
                        format_size(p.bytes.saturating_sub(q.bytes))
                    }
                    _ => "-".into(),
                };
                writeln!(
                    w,
                    "  {:<21} {:>3} {:>11} {:>10} {:>10} {:>12} {:<8} {}",
                    format_time(&p.at),
                    p.segment,
                    format_size(p.bytes),
                    growth,
                    p.classes
                        .map(|c| format_size(c[0]))
                        .unwrap_or_else(|| "-".into()),
                    p.expected_ceiling
                        .map(format_size)
                        .unwrap_or_else(|| "-".into()),
                    p.cid.as_deref().unwrap_or("-"),
                    p.source
                )?;
                prev = Some(p);
            }
        }
        Ok(())
    })
}

pub(super) fn import(a: &ImportArgs) -> Result<()> {
    let at = match &a.at {
        Some(t) => time_arg("--at", t)?,
        None => {
            let m = std::fs::metadata(&a.file)
                .and_then(|m| m.modified())
                .map_err(|e| Error::io(&a.file, "stat", e))?;
            DateTime::<Utc>::from(m)
        }
    };
    let (layout, points) = read_csv(&a.file, at)?;
    let mut store = open_store(&a.db)?;
    let (mut new, mut dup) = (0, 0);
    for p in &points {
        match store.record(p)? {
            Recorded::New { .. } => new += 1,
            Recorded::Duplicate => dup += 1,
        }
    }
    let disks: std::collections::BTreeSet<&str> = points.iter().map(|p| p.disk.as_str()).collect();
    super::note(format_args!(
        "{}: {} layout, {new} point(s) recorded, {dup} already there, {} disk(s), in {}",
        a.file.display(),
        layout.name(),
        disks.len(),
        store.path().display()
    ));
    Ok(())
}

/// Forecasts for the chosen disks (those with fewer than two points in their latest segment
/// are named on stderr and left out).
pub(super) fn forecasts(
    store: &Store,
    disk: Option<&str>,
    weeks: u32,
    budget: Option<u64>,
) -> Result<Vec<(Vec<Point>, Option<DiskForecast>)>> {
    let series = store.series(disk)?;
    Ok(series
        .into_iter()
        .map(|(d, points)| {
            let f = project(&d, &points, weeks, budget);
            if f.is_none() {
                super::note(format_args!(
                    "{d}: fewer than two points in its latest segment: no forecast"
                ));
            }
            (points, f)
        })
        .collect())
}

pub(super) fn forecast(a: &ForecastArgs) -> Result<()> {
    let budget = size_arg("--budget", &a.budget)?;
    let store = open_store(&a.db)?;
    let all = forecasts(&store, a.disk.as_deref(), a.weeks, budget)?;
    let disks: Vec<&DiskForecast> = all.iter().filter_map(|(_, f)| f.as_ref()).collect();
    if a.json {
        return super::json_to_stdout(&serde_json::json!({ "disks": disks }));
    }
    let opt_t = |t: &Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "not within reach".into())
    };
    super::to_terminal(|w| {
        for f in &disks {
            writeln!(w, "{}", crate::sanitize::sanitize(&f.disk))?;
            writeln!(w, "  model: {}", f.model_reason)?;
            if let Some(c) = f.ceiling_bytes {
                writeln!(
                    w,
                    "  ceiling {}; crosses 50 % {}, 80 % {}, 100 % {}",
                    format_size(c),
                    opt_t(&f.crossings.ceiling_50),
                    opt_t(&f.crossings.ceiling_80),
                    opt_t(&f.crossings.ceiling_100)
                )?;
            }
            if let Some(b) = f.budget_bytes {
                writeln!(
                    w,
                    "  budget {}: crossed {}",
                    format_size(b),
                    opt_t(&f.crossings.budget)
                )?;
            }
            writeln!(
                w,
                "  {:<12} {:>11} {:>11} {:>11}",
                "week of", "projected", "low", "high"
            )?;
            for p in &f.forecast {
                writeln!(
                    w,
                    "  {:<12} {:>11} {:>11} {:>11}",
                    p.at.format("%Y-%m-%d"),
                    format_size(p.bytes),
                    format_size(p.low),
                    format_size(p.high)
                )?;
            }
        }
        Ok(())
    })
}
