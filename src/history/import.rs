//! Imports snapshot-size histories admins already have, as CSV, into history points. The
//! layout is recognised by its header row (names compared without case or spaces):
//!
//! - plain: `timestamp,disk,bytes` (RFC 3339 time or a date; bytes as an integer);
//! - PowerCLI `Get-VM | Get-Snapshot | Export-Csv`: `VM`, `Name`, `Created`, and `SizeGB` or
//!   `SizeMB` (a leading `#TYPE` line is skipped);
//! - RVTools vSnapshot sheet saved as CSV: `VM`, `Name`, `Date / time`, and `Size MiB (total)`
//!   (also `Size MB (total)`, or the `(vmsn)` column when total is absent).
//!
//! PowerCLI and RVTools rows describe one snapshot at export time: each gives two points for
//! disk `VM/Name`, size 0 when the snapshot was created (a snapshot starts empty) and its size
//! at `at` (the export time: `--at`, or the file's modification time).

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{Point, parse_time};
use crate::error::{Error, Result};

/// Which tool made the CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `timestamp,disk,bytes`.
    Plain,
    /// PowerCLI `Get-Snapshot | Export-Csv`.
    PowerCli,
    /// RVTools vSnapshot.
    RvTools,
}

impl Layout {
    /// The name stored as the points' source.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Plain => "plain",
            Layout::PowerCli => "powercli",
            Layout::RvTools => "rvtools",
        }
    }
}

const EXPECTED: &str = "expected one of: plain `timestamp,disk,bytes`; PowerCLI Get-Snapshot export \
    (VM, Name, Created, SizeGB or SizeMB); RVTools vSnapshot (VM, Name, Date / time, Size MiB (total))";

fn norm(h: &str) -> String {
    h.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Reads `path` into points; `export_at` is when the export was taken (PowerCLI, RVTools).
pub fn read_csv(path: &Path, export_at: DateTime<Utc>) -> Result<(Layout, Vec<Point>)> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    let text = String::from_utf8_lossy(&text);
    // PowerCLI writes a type line first unless -NoTypeInformation was given; Excel a BOM.
    let body: String = text
        .trim_start_matches('\u{feff}')
        .lines()
        .skip_while(|l| l.starts_with("#TYPE") || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let first = body.lines().next().unwrap_or("");
    // RVTools exports may use ';' where the locale's list separator is one.
    let delim = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .flexible(true)
        .from_reader(body.as_bytes());
    let bad = |what: String| Error::Other(format!("{}: {what}", path.display()));
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| bad(format!("CSV header: {e}")))?
        .iter()
        .map(norm)
        .collect();
    let col: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| col.get(norm(n).as_str()).copied())
    };
    let layout = if find(&["timestamp"]).is_some()
        && find(&["disk"]).is_some()
        && find(&["bytes"]).is_some()
    {
        Layout::Plain
    } else if find(&["VM"]).is_some()
        && find(&["Created"]).is_some()
        && find(&["SizeGB", "SizeMB"]).is_some()
    {
        Layout::PowerCli
    } else if find(&["VM"]).is_some()
        && find(&["Date / time"]).is_some()
        && find(&[
            "Size MiB (total)",
            "Size MB (total)",
            "Size MiB (vmsn)",
            "Size MB (vmsn)",
        ])
        .is_some()
    {
        Layout::RvTools
    } else {
        return Err(bad(format!(
            "unknown CSV layout (columns: {}); {EXPECTED}",
            headers.join(", ")
        )));
    };
    let mut points = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| bad(format!("CSV row {line}: {e}")))?;
        let get = |names: &[&str]| {
            find(names)
                .and_then(|c| rec.get(c))
                .map(str::trim)
                .unwrap_or("")
        };
        let row_err = |what: String| bad(format!("row {line}: {what}"));
        match layout {
            Layout::Plain => {
                let at = parse_time(get(&["timestamp"])).ok_or_else(|| {
                    row_err(format!(
                        "timestamp {:?} is not RFC 3339 (2026-11-01T08:00:00Z) or a date",
                        get(&["timestamp"])
                    ))
                })?;
                let bytes: u64 = get(&["bytes"]).parse().map_err(|_| {
                    row_err(format!("bytes {:?} is not a whole number", get(&["bytes"])))
                })?;
                let disk = get(&["disk"]);
                if disk.is_empty() {
                    return Err(row_err("empty disk".into()));
                }
                points.push(point(disk, at, bytes, layout));
            }
            Layout::PowerCli | Layout::RvTools => {
                let (created_col, size_cols, unit): (&[&str], &[&str], f64) =
                    if layout == Layout::PowerCli {
                        if find(&["SizeGB"]).is_some() {
                            (&["Created"], &["SizeGB"], 1024.0 * 1024.0 * 1024.0)
                        } else {
                            (&["Created"], &["SizeMB"], 1024.0 * 1024.0)
                        }
                    } else {
                        (
                            &["Date / time"],
                            &[
                                "Size MiB (total)",
                                "Size MB (total)",
                                "Size MiB (vmsn)",
                                "Size MB (vmsn)",
                            ],
                            1024.0 * 1024.0,
                        )
                    };
                let vm = get(&["VM"]);
                let name = get(&["Name"]);
                let disk = if name.is_empty() {
                    vm.to_string()
                } else {
                    format!("{vm}/{name}")
                };
                let size_text = get(size_cols).replace(',', ".");
                let size: f64 = size_text
                    .parse()
                    .map_err(|_| row_err(format!("size {size_text:?} is not a number")))?;
                if !(size.is_finite() && size >= 0.0) {
                    return Err(row_err(format!("size {size_text:?} is not a size")));
                }
                let created = parse_export_time(get(created_col)).ok_or_else(|| row_err(format!("time {:?} is not a date and time deltascope reads (2026-11-01 08:00:00, 11/1/2026 8:00:00 AM, RFC 3339)", get(created_col))))?;
                if created < export_at {
                    points.push(point(&disk, created, 0, layout));
                }
                points.push(point(
                    &disk,
                    export_at,
                    (size * unit).round() as u64,
                    layout,
                ));
            }
        }
    }
    if points.is_empty() {
        return Err(bad("no rows".into()));
    }
    Ok((layout, points))
}

fn point(disk: &str, at: DateTime<Utc>, bytes: u64, layout: Layout) -> Point {
    Point {
        disk: disk.to_string(),
        at,
        bytes,
        source: layout.name().into(),
        ..Point::default()
    }
}

/// Times as PowerCLI (US culture) and RVTools write them; read as UTC.
fn parse_export_time(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_time(s) {
        return Some(t);
    }
    const FORMATS: &[&str] = &[
        "%Y/%m/%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
        "%d.%m.%Y %H:%M:%S",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn reads_the_three_layouts() {
        let d = tempfile::tempdir().expect("tmp");
        let at = parse_time("2026-11-20T00:00:00Z").expect("t");
        let plain = write(
            d.path(),
            "p.csv",
            "timestamp,disk,bytes\n2026-11-01T08:00:00Z,vdi-01,1048576\n",
        );
        let (l, p) = read_csv(&plain, at).expect("plain");
        assert_eq!((l, p.len(), p[0].bytes), (Layout::Plain, 1, 1 << 20));
        let pc = write(
            d.path(),
            "pc.csv",
            "#TYPE VMware.VimAutomation.ViCore.Impl.V1.VM.SnapshotImpl\n\"Description\",\"Created\",\"VM\",\"SizeMB\",\"SizeGB\",\"Name\"\n\"\",\"11/1/2026 8:00:00 AM\",\"vdi-01\",\"1536.5\",\"1.50048828125\",\"before patch\"\n",
        );
        let (l, p) = read_csv(&pc, at).expect("powercli");
        assert_eq!(l, Layout::PowerCli);
        assert_eq!(p[0].disk, "vdi-01/before patch");
        assert_eq!(
            (p[0].bytes, super::super::format_time(&p[0].at)),
            (0, "2026-11-01T08:00:00Z".to_string())
        );
        // SizeGB wins over SizeMB: 1.50048828125 GiB.
        assert_eq!(p[1].bytes, 1_611_137_024);
        let rv = write(
            d.path(),
            "rv.csv",
            "VM;Powerstate;Name;Date / time;Size MiB (vmsn);Size MiB (total)\nvdi-02;poweredOn;snap1;2026/11/02 10:00:00;12;2048\n",
        );
        let (l, p) = read_csv(&rv, at).expect("rvtools");
        assert_eq!((l, p[1].bytes), (Layout::RvTools, 2048 << 20));
        let other = write(d.path(), "o.csv", "a,b\n1,2\n");
        let e = read_csv(&other, at).expect_err("unknown");
        assert!(e.to_string().contains("expected one of"), "{e}");
    }
}
