//! The one CSV writer of every `--csv` output (scan of a datastore, lun, blame, history).
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
