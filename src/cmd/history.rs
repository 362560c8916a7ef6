//! `history` (listing, `--delete`, `--rename`), `import` and `forecast`: the history store
//! seen from the command line; and `scan --record`'s [`Recording`], whose points are built
//! here from scan reports and written after the report is printed. Times typed on the
//! command line (`--at`, `--since`) are read in `--tz` here.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::cli::{DbArgs, ForecastArgs, GlobalArgs, HistoryArgs, ImportArgs, SiteArgs, TimeArg};
use crate::error::{Error, Result};
use crate::history::forecast::{DiskForecast, forecast as project};
use crate::history::import::{Options, read_csv};
use crate::history::time::Zone;
use crate::history::{
    Location, Point, Recorded, Store, check_site, default_db, disk_name, format_time, site_name,
};
use crate::render::history::render_series;
use crate::render::{Forecasts, History};
use crate::report::ScanReport;
use crate::units::format_size;

/// The store `--db` names (a file, or a PostgreSQL URL with its defaults filled in from
/// the environment), or the default one.
pub(super) fn store_location(db: &DbArgs) -> Result<Location> {
    match &db.db {
        Some(spec) => Location::resolve(spec),
        None => default_db(),
    }
}

/// The store, for reading: never created ("no history store at LOCATION").
pub(super) fn open_store(db: &DbArgs) -> Result<Store> {
    Store::open_read(&store_location(db)?)
}

/// The site of `--site` (checked by its value parser), else `$DELTASCOPE_SITE` (checked
/// here: letters, digits, '.', '_', '-').
pub(super) fn site(a: &SiteArgs) -> Result<Option<String>> {
    if let Some(s) = &a.site {
        return Ok(Some(s.clone()));
    }
    match std::env::var("DELTASCOPE_SITE") {
        Ok(s) if !s.is_empty() => {
            check_site(&s).map_err(|e| Error::Usage(format!("$DELTASCOPE_SITE {e}")))?;
            Ok(Some(s))
        }
        _ => Ok(None),
    }
}

/// How times without a zone are read (`--tz`, UTC by default).
pub(super) fn zone(g: &GlobalArgs) -> Zone {
    g.tz.unwrap_or(Zone::Utc)
}

/// A time that must not be in the future (`--at` of a record or import, `--since`).
pub(super) fn past_time(flag: &str, t: &TimeArg, zone: Zone) -> Result<DateTime<Utc>> {
    let at = t.resolve(flag, zone)?;
    let now = Utc::now();
    if at > now {
        return Err(Error::Usage(format!(
            "{flag} {}: {} is in the future (it is {} now)",
            t.text,
            format_time(&at),
            format_time(&now)
        )));
    }
    Ok(at)
}

/// What `scan --record` will record: the time and store are settled before the scan (a bad
/// `--at` fails at once), points are added as disks are scanned, and the store is written
/// only after the report is printed (a store that fails loses no output).
#[derive(Debug)]
pub(super) struct Recording {
    db: Location,
    at: DateTime<Utc>,
    site: Option<String>,
    points: Vec<Point>,
}

impl Recording {
    /// From `scan --record`'s `--at` (not in the future; default now), `--tz`, `--db` and
    /// the site (`--site`, read by [`site`]).
    pub(super) fn new(
        g: &GlobalArgs,
        at: Option<&TimeArg>,
        db: &DbArgs,
        site: Option<String>,
    ) -> Result<Recording> {
        let at = match at {
            Some(t) => past_time("--at", t, zone(g))?,
            None => Utc::now(),
        };
        Ok(Recording {
            db: store_location(db)?,
            at,
            site,
            points: Vec::new(),
        })
    }

    /// The name a disk scanned at `path` is recorded under: its disk name, after the site.
    pub(super) fn name_of(&self, path: &Path) -> String {
        site_name(self.site.as_deref(), disk_name(path))
    }

    /// Adds the point of `report` under `disk`.
    pub(super) fn add(&mut self, disk: String, report: &ScanReport) {
        if let Some(p) = point_of(disk, self.at, report) {
            self.points.push(p);
        }
    }

    /// Whether the store does not exist yet (a record creates it). A server that cannot be
    /// reached counts as an existing store: reading its growth then fails with the reason.
    pub(super) fn creates_store(&self) -> bool {
        matches!(self.db.exists(), Ok(false))
    }

    /// Writes every point in one transaction, creating the store when missing, and says
    /// on stderr what became of each.
    pub(super) fn commit(self) -> Result<()> {
        let mut store = Store::create(&self.db)?;
        let done = store.record_all(&self.points)?;
        for (point, r) in self.points.iter().zip(done) {
            match r {
                Recorded::New { segment } => super::note(format_args!(
                    "recorded {} at {} ({}, segment {segment}) in {}",
                    point.disk,
                    format_time(&point.at),
                    format_size(point.bytes),
                    store.location()
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
}

/// The name `scan --record` gives the disk whose top layer is `path`: `--disk`, or the
/// store's name for its canonical path (`SITE:` first, with a site).
pub(super) fn scan_disk_name(
    disk: Option<&str>,
    path: &Path,
    site: Option<&str>,
) -> Result<String> {
    Ok(match disk {
        Some(d) => d.to_string(),
        None => site_name(
            site,
            disk_name(&std::fs::canonicalize(path).map_err(|e| Error::io(path, "resolve", e))?),
        ),
    })
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

/// Growth of every recorded disk over its latest segment: (bytes grown, seconds), for disks
/// with at least two points there, keyed by the name a datastore scan gives the disk (its
/// path; with a site, only that site's disks, without their `SITE:`). `None` when there is
/// no store yet and none was named, or when this run is about to create it (`creating`); a
/// store named with --db that does not exist is an error, and nothing is created.
pub(super) fn recorded_growth(
    db: &DbArgs,
    creating: bool,
    site: Option<&str>,
) -> Result<Option<std::collections::HashMap<String, (u64, f64)>>> {
    let loc = store_location(db)?;
    if (creating || db.db.is_none()) && !loc.exists()? {
        return Ok(None);
    }
    let store = Store::open_read(&loc)?;
    let prefix = site.map(|s| format!("{s}:"));
    let mut out = std::collections::HashMap::new();
    for (disk, points) in store.series(None)? {
        let disk = match &prefix {
            Some(p) => match disk.strip_prefix(p.as_str()) {
                Some(path) => path.to_string(),
                None => continue,
            },
            None => disk,
        };
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

/// `history`: list, or change with --delete or --rename.
pub(super) fn list(g: &GlobalArgs, a: &HistoryArgs) -> Result<()> {
    if a.delete || a.rename.is_some() {
        return change(g, a);
    }
    let store = open_store(&a.db)?;
    let series = store.series(a.disk.as_deref())?;
    super::print(
        a.format,
        &History {
            store: &store.location().to_string(),
            series: &series,
        },
    )
}

/// `history --delete` and `history --rename`: one transaction each, the disks' points
/// printed as they were before and as they are after.
fn change(g: &GlobalArgs, a: &HistoryArgs) -> Result<()> {
    let mut store = Store::open_existing(&store_location(&a.db)?)?;
    let (change, what) = match (&a.rename, &a.disk, &a.at) {
        (Some(names), _, _) => {
            let [old, new] = names.as_slice() else {
                return Err(Error::Usage("--rename takes two names: OLD NEW".into()));
            };
            (store.rename(old, new)?, format!("renamed {old} to {new}"))
        }
        (None, Some(disk), Some(at)) => {
            let at = at.resolve("--at", zone(g))?;
            (
                store.delete(disk, at)?,
                format!("deleted the point of {disk} at {}", format_time(&at)),
            )
        }
        _ => {
            return Err(Error::Usage(
                "--delete needs --disk and --at: the point to delete".into(),
            ));
        }
    };
    super::to_terminal(|w| {
        writeln!(w, "before:")?;
        render_series(w, &change.before)?;
        writeln!(w, "after:")?;
        render_series(w, &change.after)
    })?;
    super::note(format_args!("{what} in {}", store.location()));
    Ok(())
}

/// `import`: the whole file is parsed first and recorded in one transaction, so a bad line
/// stores nothing (and creates no store).
pub(super) fn import(g: &GlobalArgs, a: &ImportArgs) -> Result<()> {
    let zone = zone(g);
    let export_at = match &a.at {
        Some(t) => past_time("--at", t, zone)?,
        None => {
            let m = std::fs::metadata(&a.file)
                .and_then(|m| m.modified())
                .map_err(|e| Error::io(&a.file, "stat", e))?;
            DateTime::<Utc>::from(m)
        }
    };
    let site = site(&a.site)?;
    let mut import = read_csv(
        &a.file,
        &Options {
            export_at,
            order: a.date_order.map(Into::into),
            zone,
        },
    )?;
    for note in &import.notes {
        super::note(format_args!("{}: {note}", a.file.display()));
    }
    if let Some(site) = &site {
        for p in &mut import.points {
            p.disk = site_name(Some(site), std::mem::take(&mut p.disk));
        }
    }
    let mut store = Store::create(&store_location(&a.db)?)?;
    let done = store.record_all(&import.points)?;
    let new = done
        .iter()
        .filter(|r| matches!(r, Recorded::New { .. }))
        .count();
    let dup = done.len() - new;
    let disks: std::collections::BTreeSet<&str> =
        import.points.iter().map(|p| p.disk.as_str()).collect();
    super::note(format_args!(
        "{}: {} layout, {new} point(s) recorded, {dup} already there, {} disk(s), in {}",
        a.file.display(),
        import.layout.name(),
        disks.len(),
        store.location()
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
            let samples: Vec<_> = points.iter().map(|p| p.sample()).collect();
            let f = project(&d, &samples, weeks, budget);
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
    let store = open_store(&a.db)?;
    let all = forecasts(&store, a.disk.as_deref(), a.weeks, a.budget)?;
    let disks: Vec<&DiskForecast> = all.iter().filter_map(|(_, f)| f.as_ref()).collect();
    super::print(a.format, &Forecasts(&disks))
}
