//! `deltascope diff`: two observations of one disk, from two JSON documents (`scan --json`
//! of one disk, `blame --json`) or two points of its history, compared by the engine
//! (`crate::diff`). Here: reading the files and the store, and the times (`--at`, else the
//! scan documents' `scanned_at`, else the files' modification times).

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::cli::{DiffArgs, GlobalArgs};
use crate::diff::{Snapshot, diff};
use crate::error::{Error, Result};
use crate::history::format_time;

pub(super) fn run(g: &GlobalArgs, a: &DiffArgs) -> Result<()> {
    let zone = super::history::zone(g);
    let times = match a.at.as_slice() {
        [] => None,
        [old, new] => Some((old.resolve("--at", zone)?, new.resolve("--at", zone)?)),
        _ => {
            return Err(Error::Usage(format!(
                "--at takes two times, OLD's then NEW's (given {} time(s))",
                a.at.len()
            )));
        }
    };
    let (old, new, source) = match (&a.disk, &a.old, &a.new) {
        (Some(disk), _, _) => {
            let Some((t_old, t_new)) = times else {
                return Err(Error::Usage(
                    "--disk compares two points of the history: give --at OLD_TIME --at NEW_TIME"
                        .into(),
                ));
            };
            let (old, new) = points(a, disk, t_old, t_new)?;
            (old, new, "history")
        }
        (None, Some(o), Some(n)) => {
            let mut old = read(o)?;
            let mut new = read(n)?;
            let source = match times {
                Some((t_old, t_new)) => {
                    (old.at, new.at) = (Some(t_old), Some(t_new));
                    "given"
                }
                // Both documents say when they were scanned: that is when the disk was seen.
                None if old.at.is_some() && new.at.is_some() => "scanned_at",
                None => {
                    (old.at, new.at) = (Some(modified(o)?), Some(modified(n)?));
                    "file_modified"
                }
            };
            (old, new, source)
        }
        _ => {
            return Err(Error::Usage(
                "diff needs OLD and NEW files, or --disk with two --at".into(),
            ));
        }
    };
    let d = diff(&old, &new, Some(source))?;
    super::print(a.format, &d)
}

/// A JSON document read from `path`.
fn read(path: &Path) -> Result<Snapshot> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    Snapshot::from_json(path, &bytes)
}

fn modified(path: &Path) -> Result<DateTime<Utc>> {
    let m = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| Error::io(path, "stat", e))?;
    Ok(DateTime::<Utc>::from(m))
}

/// The points of `disk` recorded at exactly `old` and `new`.
fn points(
    a: &DiffArgs,
    disk: &str,
    old: DateTime<Utc>,
    new: DateTime<Utc>,
) -> Result<(Snapshot, Snapshot)> {
    let store = super::history::open_store(&a.db)?;
    let points = store
        .series(Some(disk))?
        .into_iter()
        .find(|(d, _)| d == disk)
        .map(|(_, p)| p)
        .unwrap_or_default();
    if points.is_empty() {
        return Err(Error::Other(format!(
            "the history has no points for {disk} (deltascope history lists the disks)"
        )));
    }
    let pick = |t: DateTime<Utc>| {
        points
            .iter()
            .find(|p| p.at == t)
            .map(Snapshot::from_point)
            .ok_or_else(|| {
                let list: Vec<String> = points.iter().map(|p| format_time(&p.at)).collect();
                Error::Other(format!(
                    "{disk} has no point at {}; its points are at {}",
                    format_time(&t),
                    list.join(", ")
                ))
            })
    };
    Ok((pick(old)?, pick(new)?))
}
