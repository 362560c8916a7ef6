//! The one CSV writer of every `--format csv` output ([`CsvOut`]), and the CSV forms of a
//! datastore scan, the LUN model and the history (blame's sits beside its table, in
//! `blame.rs`).
//!
//! Cells carry the real text (a file name with a newline stays a newline inside a quoted
//! cell; escaping for terminals is the text renderer's job). A text cell that a spreadsheet
//! would run as a formula, one that begins with `=`, `+`, `-`, `@`, a tab or a carriage
//! return, is neutralised with a leading `'` (OWASP's CSV injection rule). Cells that are
//! plain numbers (`-3`, `0.25`, `1e-5`) are left alone: a spreadsheet reads them as numbers,
//! never as formulas, and a `'` would turn them into text. Write errors keep their kind, so a
//! closed pipe (`| head -1`) stays a closed pipe and ends the run quietly.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::history::{Point, format_time};
use crate::report::datastore::{DatastoreReport, LunModel};

/// A CSV writer over `W` that neutralises formula cells.
#[derive(Debug)]
pub struct CsvOut<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> CsvOut<W> {
    /// Wraps `out`.
    pub fn new(out: W) -> Self {
        CsvOut {
            inner: csv::Writer::from_writer(out),
        }
    }

    /// Writes one row.
    pub fn row<I, S>(&mut self, cells: I) -> io::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.inner
            .write_record(
                cells
                    .into_iter()
                    .map(|c| neutralise(c.as_ref()).into_owned()),
            )
            .map_err(io_error)
    }

    /// Flushes the rows written so far.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The I/O error inside a CSV error, with its kind (a broken pipe stays one).
fn io_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// `cell`, with a `'` in front when a spreadsheet would take it for a formula.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    let risky = matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    );
    if risky && !is_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A plain decimal number: optional sign, digits with an optional fraction, optional exponent.
fn is_number(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    !(int.is_empty() && frac.is_empty())
        && digits(int)
        && digits(frac)
        && exponent.is_none_or(|e| !e.is_empty() && digits(e))
}

/// A value, or an empty cell.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// One row per LUN (`lun --format csv`): the model's inputs that vary and its outcome.
pub fn lun_models(w: &mut dyn Write, rows: &[(&str, &LunModel)]) -> io::Result<()> {
    let mut out = CsvOut::new(w);
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

/// One row per disk of a datastore scan (`scan DIR --format csv`). The free-text `error` stays the last column; columns
/// added later go just before it.
pub fn datastore_disks(w: &mut dyn Write, r: &DatastoreReport) -> io::Result<()> {
    let mut out = CsvOut::new(w);
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
        "refresh_every_days",
        "lun_full_at",
        "lun_full_at_worst",
        "error",
    ])?;
    for v in &r.vms {
        let c = v.classes;
        let lun = r.luns.iter().find(|l| l.name == v.lun);
        out.row([
            v.lun.clone(),
            v.path.clone(),
            v.status.to_string(),
            opt(v.format),
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
            opt(v.refresh_every_days),
            opt(lun.and_then(|l| l.full_at.clone())),
            opt(lun.and_then(|l| l.full_at_worst.clone())),
            opt(v.error.clone()),
        ])?;
    }
    out.flush()
}

/// One row per recorded point (`history --format csv`), disk by disk, oldest first.
pub fn history_points(w: &mut dyn Write, series: &[(String, Vec<Point>)]) -> io::Result<()> {
    let mut out = CsvOut::new(w);
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
    for (_, points) in series {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        for (cell, want) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+cmd", "'+cmd"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("-", "'-"),
            ("-3", "-3"),
            ("-0.25", "-0.25"),
            ("1e-5", "1e-5"),
            ("+1.5E+3", "+1.5E+3"),
            ("/vm/a=b.vmdk", "/vm/a=b.vmdk"),
            ("", ""),
        ] {
            assert_eq!(neutralise(cell), want, "{cell:?}");
        }
    }

    #[test]
    fn real_names_survive() {
        let mut out = CsvOut::new(Vec::new());
        out.row(["a\nb.txt", "a\\u{a}b.txt"]).unwrap();
        out.flush().unwrap();
        let text = String::from_utf8(out.inner.into_inner().unwrap()).unwrap();
        assert_eq!(text, "\"a\nb.txt\",a\\u{a}b.txt\n");
    }
}
