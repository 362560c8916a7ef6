//! Imports snapshot-size histories admins already have, as CSV, into history points. The
//! layout is recognised by its header row (names compared without case or spaces):
//!
//! - plain: `timestamp,disk,bytes` (a time as [`Written::parse`] reads it; bytes as an
//!   integer);
//! - PowerCLI `Get-VM | Get-Snapshot | Export-Csv`: `VM`, `Name`, `Created`, and `SizeGB` or
//!   `SizeMB` (a leading `#TYPE` line is skipped). PowerCLI computes both by dividing by 1024,
//!   so they are binary: SizeGB is GiB, SizeMB is MiB;
//! - RVTools vSnapshot sheet saved as CSV: `VM`, `Name`, `Date / time`, and `Size MiB (total)`
//!   (also `Size MB (total)`, or the `(vmsn)` column when total is absent; RVTools' MB columns
//!   are MiB too).
//!
//! PowerCLI and RVTools rows describe one snapshot at export time: each gives two points for
//! disk `VM/Name`, size 0 when the snapshot was created (a snapshot starts empty) and its size
//! at `at` (the export time: `--at`, or the file's modification time).
//!
//! Nothing is guessed: times without a zone are read in [`Options::zone`] (`--tz`), and
//! the day-or-month order of `1/11/2026` comes from [`Options::order`] (`--date-order`) or
//! from a date in the same file that only one order can read, which is then reported in
//! [`Import::notes`]. A size that is not a number, is negative, or is more than the store
//! holds refuses the whole file with its line number. [`parse`] is a pure function of the
//! bytes (the `import` fuzz target drives it).

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::time::{DateOrder, Written, Zone};
use super::{MAX_BYTES, Point, text_name};
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

/// How to read an export.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// When the export was taken (PowerCLI, RVTools).
    pub export_at: DateTime<Utc>,
    /// Day or month first in `A/B/YYYY` dates; `None`: from the file, or refuse.
    pub order: Option<DateOrder>,
    /// How times without a zone are read.
    pub zone: Zone,
}

/// What an export gave.
#[derive(Debug, Clone)]
pub struct Import {
    /// The layout recognised.
    pub layout: Layout,
    /// The points, in file order.
    pub points: Vec<Point>,
    /// What was assumed (the date order, the zone), for stderr.
    pub notes: Vec<String>,
}

const EXPECTED: &str = "expected one of: plain `timestamp,disk,bytes`; PowerCLI Get-Snapshot export \
    (VM, Name, Created, SizeGB or SizeMB); RVTools vSnapshot (VM, Name, Date / time, Size MiB (total))";

const RV_SIZES: &[&str] = &[
    "Size MiB (total)",
    "Size MB (total)",
    "Size MiB (vmsn)",
    "Size MB (vmsn)",
];

const MIB: f64 = 1024.0 * 1024.0;

fn norm(h: &str) -> String {
    h.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Reads the export at `path`; errors name the file.
pub fn read_csv(path: &Path, opts: &Options) -> Result<Import> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    parse(&data, opts).map_err(|e| {
        let at = |m: String| format!("{}: {m}", path.display());
        match e {
            Error::Usage(m) => Error::Usage(at(m)),
            Error::Other(m) => Error::Other(at(m)),
            e => e,
        }
    })
}

/// One row before the date order is settled.
struct Row {
    line: u64,
    disk: String,
    /// The time column as written, and the time it gives.
    time_text: String,
    time: Written,
    bytes: u64,
}

/// Parses an export (any bytes: the file's contents). Errors carry no path.
pub fn parse(data: &[u8], opts: &Options) -> Result<Import> {
    let data = data.strip_prefix("\u{feff}".as_bytes()).unwrap_or(data);
    // PowerCLI writes a type line first unless -NoTypeInformation was given.
    let mut start = 0;
    let mut skipped = 0u64;
    while start < data.len() {
        let end = data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| start + p + 1);
        let line = &data[start..end];
        if line.starts_with(b"#TYPE") || line.iter().all(u8::is_ascii_whitespace) {
            start = end;
            skipped += 1;
        } else {
            break;
        }
    }
    let body = &data[start..];
    let first = body.split(|&b| b == b'\n').next().unwrap_or(b"");
    // RVTools exports may use ';' where the locale's list separator is one.
    let count = |c: u8| first.iter().filter(|&&b| b == c).count();
    let delim = if count(b';') > count(b',') {
        b';'
    } else {
        b','
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .flexible(true)
        .from_reader(body);
    let headers: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| Error::Other(format!("CSV header: {e}")))?
        .iter()
        .map(|h| norm(&String::from_utf8_lossy(h)))
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
        && find(RV_SIZES).is_some()
    {
        Layout::RvTools
    } else {
        return Err(Error::Other(format!(
            "unknown CSV layout (columns: {}); {EXPECTED}",
            headers.join(", ")
        )));
    };
    // Which columns, and the unit of the size column (PowerCLI: SizeGB wins).
    let (time_col, size_col, unit) = match layout {
        Layout::Plain => (find(&["timestamp"]), find(&["bytes"]), 1.0),
        Layout::PowerCli => match find(&["SizeGB"]) {
            Some(c) => (find(&["Created"]), Some(c), 1024.0 * MIB),
            None => (find(&["Created"]), find(&["SizeMB"]), MIB),
        },
        Layout::RvTools => (find(&["Date / time"]), find(RV_SIZES), MIB),
    };
    // The file's line of a record, from its byte offset (the reader's own line count
    // skips blank lines, and a record's offset is where the blank lines before it begin).
    let newlines: Vec<u64> = body
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i as u64)
        .collect();
    let line_at = |p: Option<&csv::Position>| {
        let mut byte = p.map_or(0, csv::Position::byte);
        while body
            .get(byte as usize)
            .is_some_and(|&b| b == b'\n' || b == b'\r')
        {
            byte += 1;
        }
        skipped + newlines.partition_point(|&n| n < byte) as u64 + 1
    };
    let mut rows = Vec::new();
    for rec in rdr.byte_records() {
        let rec = rec.map_err(|e| {
            let line = line_at(e.position());
            Error::Other(format!("CSV line {line}: {e}"))
        })?;
        let line = line_at(rec.position());
        let cell = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .unwrap_or_default()
        };
        let name_cell = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .map(|b| text_name(b.trim_ascii()))
                .unwrap_or_default()
        };
        let row_err = |what: String| Error::Other(format!("line {line}: {what}"));
        let time_text = cell(time_col);
        let time = Written::parse(&time_text).ok_or_else(|| {
            row_err(format!(
                "time {time_text:?} is not a date and time deltascope reads (2026-11-01T08:00:00Z, 2026-11-01 08:00:00, 1/11/2026 06:00:00 with --date-order, 01.11.2026 08:00)"
            ))
        })?;
        let size_text = cell(size_col);
        let bytes = if layout == Layout::Plain {
            let b: u64 = size_text.parse().map_err(|_| {
                row_err(format!(
                    "bytes {size_text:?} is not a whole number of bytes (0 or more)"
                ))
            })?;
            if b > MAX_BYTES {
                return Err(row_err(format!(
                    "bytes {size_text} is more than the {MAX_BYTES} bytes the history store holds"
                )));
            }
            b
        } else {
            let v: f64 = size_text
                .replace(',', ".")
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| row_err(format!("size {size_text:?} is not a number")))?;
            if v < 0.0 {
                return Err(row_err(format!("size {size_text:?} is negative")));
            }
            let b = (v * unit).round();
            // 2^63 is the first value past the store's range (and exact in f64); a product
            // too large for f64 is infinite, never NaN (both factors are finite).
            if b >= 9_223_372_036_854_775_808.0 {
                return Err(row_err(format!(
                    "size {size_text:?} is more than the {MAX_BYTES} bytes the history store holds"
                )));
            }
            b as u64
        };
        let disk = if layout == Layout::Plain {
            name_cell(find(&["disk"]))
        } else {
            let vm = name_cell(find(&["VM"]));
            let name = name_cell(find(&["Name"]));
            if name.is_empty() {
                vm
            } else {
                format!("{vm}/{name}")
            }
        };
        if disk.is_empty() {
            return Err(row_err("empty disk name".into()));
        }
        rows.push(Row {
            line,
            disk,
            time_text,
            time,
            bytes,
        });
    }
    if rows.is_empty() {
        return Err(Error::Other("no rows".into()));
    }
    let mut notes = Vec::new();
    let order = date_order(&rows, opts.order, &mut notes)?;
    if rows.iter().any(|r| r.time.needs_zone()) {
        notes.push(format!(
            "times without a zone read as {}{}",
            opts.zone,
            if opts.zone == Zone::default() {
                " (--tz to change)"
            } else {
                ""
            }
        ));
    }
    let mut points = Vec::new();
    for r in rows {
        let at = r
            .time
            .resolve(order, opts.zone)
            .map_err(|e| Error::Other(format!("line {}: time {:?}: {e}", r.line, r.time_text)))?;
        match layout {
            Layout::Plain => points.push(point(&r.disk, at, r.bytes, layout)),
            Layout::PowerCli | Layout::RvTools => {
                if at < opts.export_at {
                    points.push(point(&r.disk, at, 0, layout));
                }
                points.push(point(&r.disk, opts.export_at, r.bytes, layout));
            }
        }
    }
    Ok(Import {
        layout,
        points,
        notes,
    })
}

/// The order of the file's `A/B/YYYY` dates: the one given (every date must read that
/// way), else the only one some date allows (noted), else refused when a date is ambiguous.
fn date_order(
    rows: &[Row],
    given: Option<DateOrder>,
    notes: &mut Vec<String>,
) -> Result<DateOrder> {
    if let Some(order) = given {
        if let Some(r) = rows.iter().find(|r| r.time.in_order(order).is_none()) {
            return Err(Error::Other(format!(
                "line {}: {:?} is not a date {} (--date-order {})",
                r.line,
                r.time_text,
                order.describe(),
                order.flag()
            )));
        }
        return Ok(order);
    }
    let only = |o: (bool, bool)| rows.iter().find(|r| r.time.readings() == o);
    let ambiguous = rows.iter().find(|r| r.time.is_ambiguous());
    let (order, witness) = match (only((true, false)), only((false, true))) {
        (Some(d), Some(m)) => {
            return Err(Error::Other(format!(
                "the dates need both orders: line {} has {:?} (only day first reads it), line {} has {:?} (only month first)",
                d.line, d.time_text, m.line, m.time_text
            )));
        }
        (Some(d), None) => (DateOrder::Dmy, d),
        (None, Some(m)) => (DateOrder::Mdy, m),
        (None, None) => {
            if let Some(r) = ambiguous {
                let read = |o| {
                    r.time
                        .in_order(o)
                        .map(|t| t.format("%-d %B %Y").to_string())
                        .unwrap_or_default()
                };
                return Err(Error::Usage(format!(
                    "line {}: date {:?} is {} day first or {} month first: give --date-order dmy or --date-order mdy",
                    r.line,
                    r.time_text,
                    read(DateOrder::Dmy),
                    read(DateOrder::Mdy)
                )));
            }
            return Ok(DateOrder::Dmy);
        }
    };
    if ambiguous.is_some() {
        notes.push(format!(
            "dates read {} (--date-order {}): line {} has {:?}, which only that order reads",
            order.describe(),
            order.flag(),
            witness.line,
            witness.time_text
        ));
    }
    Ok(order)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{format_time, parse_time};

    fn opts(order: Option<DateOrder>) -> Options {
        Options {
            export_at: parse_time("2026-11-20T00:00:00Z").expect("t"),
            order,
            zone: Zone::Utc,
        }
    }

    #[test]
    fn reads_the_three_layouts() {
        let (l, p) = {
            let i = parse(
                b"timestamp,disk,bytes\n2026-11-01T08:00:00Z,vdi-01,1048576\n",
                &opts(None),
            )
            .expect("plain");
            (i.layout, i.points)
        };
        assert_eq!((l, p.len(), p[0].bytes), (Layout::Plain, 1, 1 << 20));
        let pc = "#TYPE VMware.VimAutomation.ViCore.Impl.V1.VM.SnapshotImpl\n\"Description\",\"Created\",\"VM\",\"SizeMB\",\"SizeGB\",\"Name\"\n\"\",\"11/1/2026 8:00:00 AM\",\"vdi-01\",\"1536.5\",\"1.50048828125\",\"before patch\"\n";
        // Month or day first is not written: refused until said.
        let e = parse(pc.as_bytes(), &opts(None)).expect_err("ambiguous");
        assert!(e.is_usage() && e.to_string().contains("line 3"), "{e}");
        let i = parse(pc.as_bytes(), &opts(Some(DateOrder::Mdy))).expect("powercli");
        assert_eq!(i.layout, Layout::PowerCli);
        let p = i.points;
        assert_eq!(p[0].disk, "vdi-01/before patch");
        assert_eq!(
            (p[0].bytes, format_time(&p[0].at)),
            (0, "2026-11-01T08:00:00Z".to_string())
        );
        // SizeGB wins over SizeMB: 1.50048828125 GiB.
        assert_eq!(p[1].bytes, 1_611_137_024);
        let rv = "VM;Powerstate;Name;Date / time;Size MiB (vmsn);Size MiB (total)\nvdi-02;poweredOn;snap1;2026/11/02 10:00:00;12;2048\n";
        let i = parse(rv.as_bytes(), &opts(None)).expect("rvtools");
        assert_eq!((i.layout, i.points[1].bytes), (Layout::RvTools, 2048 << 20));
        assert!(
            i.notes.iter().any(|n| n.contains("as UTC")),
            "{:?}",
            i.notes
        );
        let e = parse(b"a,b\n1,2\n", &opts(None)).expect_err("unknown");
        assert!(e.to_string().contains("expected one of"), "{e}");
    }

    #[test]
    fn sizes_out_of_range_are_refused_with_the_line() {
        for (text, line) in [
            (
                "timestamp,disk,bytes\n2026-11-01,d,9223372036854775808\n",
                2,
            ),
            (
                "timestamp,disk,bytes\n2026-11-01,d,1\n\n2026-11-02,d,-1\n",
                4,
            ),
            (
                "\"Created\",\"VM\",\"SizeGB\"\n\"2026/11/01 08:00\",\"v\",\"1e30\"\n",
                2,
            ),
            (
                "#TYPE x\n\"Created\",\"VM\",\"SizeMB\"\n\"2026/11/01 08:00\",\"v\",\"NaN\"\n",
                3,
            ),
            (
                "VM;Date / time;Size MiB (total)\nv;2026/11/01 08:00;-inf\n",
                2,
            ),
        ] {
            let e = parse(text.as_bytes(), &opts(None)).expect_err(text);
            assert!(
                e.to_string().contains(&format!("line {line}:")),
                "{text}: {e}"
            );
        }
        // The largest size the store holds is accepted.
        let i = parse(
            b"timestamp,disk,bytes\n2026-11-01,d,9223372036854775807\n",
            &opts(None),
        )
        .expect("max");
        assert_eq!(i.points[0].bytes, MAX_BYTES);
    }

    #[test]
    fn names_that_are_not_utf8_stay_apart() {
        let i = parse(
            b"timestamp,disk,bytes\n2026-11-01,vm\xe9,1\n2026-11-01,vm\xe8,2\n2026-11-01,vm\xc3\xa9,3\n",
            &opts(None),
        )
        .expect("plain");
        let names: Vec<&str> = i.points.iter().map(|p| p.disk.as_str()).collect();
        assert_eq!(names, ["vm\\xE9", "vm\\xE8", "vm\u{e9}"]);
    }
}
