//! Renderers: the report types (`report/`) and the history's points turned into bytes, for
//! people (text tables through the [`text::Terminal`] writer, one HTML page) or for programs
//! (JSON, CSV). They lay out what they are given and compute nothing, and they write into any
//! `Write`, so tests render into a `Vec<u8>` (hyperfine's exporters).
//!
//! A command's printed result is a [`Printable`]: one value with a table, a JSON and (where
//! the command offers one) a CSV form, chosen by `--format` ([`Format`]). The `cmd` layer
//! picks the format, the renderer only writes it.

pub mod blame;
pub mod csv;
pub mod db;
pub mod history;
pub mod html;
pub mod json;
pub mod lun_text;
pub mod metrics;
pub mod text;

use std::io::{self, Write};

use crate::history::forecast::DiskForecast;
use crate::history::{Health, Point};
use crate::report::datastore::{DatastoreReport, LunModel};
use crate::report::{LayerInfo, ScanReport, WarningReport};

/// The forms a result is printed in (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tables for people, escaped for terminals, binary units.
    Table,
    /// JSON, as documented in docs/JSON.md.
    Json,
    /// CSV, one row per item, formula cells neutralised.
    Csv,
}

/// A command's result, printable in each format the command offers.
pub trait Printable {
    /// The table for people (the caller writes it through [`text::Terminal`]).
    fn table(&self, out: &mut dyn Write) -> io::Result<()>;
    /// The JSON document, pretty-printed, with a final newline.
    fn json(&self, out: &mut dyn Write) -> io::Result<()>;
    /// The CSV rows; a result without a CSV form says so (the command line refuses
    /// `--format csv` for such results before any work is done).
    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        let _ = out;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this result has no CSV form",
        ))
    }
}

/// `info`: the metadata of every layer of a chain, and the chain's warnings.
#[derive(Debug)]
pub struct Info<'a> {
    /// Every layer, base first.
    pub layers: &'a [LayerInfo],
    /// What opening the chain found suspicious.
    pub warnings: &'a [WarningReport],
}

impl Printable for Info<'_> {
    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        text::render_info(out, self.layers)
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(out, &json::info(self.layers, self.warnings))
    }
}

/// `scan PATH`: the classes of every layer of one chain.
impl Printable for ScanReport {
    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        text::render_scan(out, self)
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(out, self)
    }
}

/// `scan DIR`: every disk of a datastore, its VMs and the model of each LUN.
#[derive(Debug)]
pub struct DatastoreScan<'a>(pub &'a DatastoreReport);

impl Printable for DatastoreScan<'_> {
    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        lun_text::render_datastore(out, self.0)
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(out, self.0)
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        csv::datastore_disks(out, self.0)
    }
}

/// `lun DIR`: the model of each scanned LUN.
#[derive(Debug)]
pub struct LunScan<'a>(pub &'a DatastoreReport);

impl Printable for LunScan<'_> {
    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        lun_text::render_datastore(out, self.0)
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(out, &json::Luns::of(self.0))
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        let rows: Vec<(&str, &LunModel)> = self
            .0
            .luns
            .iter()
            .map(|l| (l.name.as_str(), &l.model))
            .collect();
        csv::lun_models(out, &rows)
    }
}

/// `lun` on parameters alone: one LUN's model.
impl Printable for LunModel {
    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        lun_text::render_model(out, self)
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(out, self)
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        csv::lun_models(out, &[("", self)])
    }
}

/// `blame`: the groups of the top layer's bytes.
#[derive(Debug)]
pub struct Blame<'a> {
    /// The report.
    pub report: &'a crate::report::blame::BlameReport,
    /// Groups shown in the table (the rest summed in one line); JSON and CSV have all.
    pub top: usize,
}

impl Printable for Blame<'_> {
    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        blame::render_text(out, self.report, self.top)
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(out, self.report)
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        blame::render_csv(out, self.report)
    }
}

/// `history`: the recorded points of each disk.
#[derive(Debug)]
pub struct History<'a> {
    /// Where the store is, as people name it (for "no points in ...").
    pub store: &'a str,
    /// Each disk and its points, oldest first.
    pub series: &'a [(String, Vec<Point>)],
}

impl Printable for History<'_> {
    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.series.is_empty() {
            writeln!(out, "no points in {}", self.store)?;
        }
        history::render_series(out, self.series)
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(out, &json::history(self.series))
    }

    fn csv(&self, out: &mut dyn Write) -> io::Result<()> {
        csv::history_points(out, self.series)
    }
}

/// `db check`: whether the history store is ready, and what it holds.
impl Printable for Health {
    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        db::render_health(out, self)
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(out, self)
    }
}

/// `forecast`: the projection of each disk.
#[derive(Debug)]
pub struct Forecasts<'a>(pub &'a [&'a DiskForecast]);

impl Printable for Forecasts<'_> {
    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        history::render_forecasts(out, self.0)
    }

    fn json(&self, out: &mut dyn Write) -> io::Result<()> {
        json::write(out, &json::forecasts(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(p: &dyn Printable, format: Format) -> io::Result<String> {
        let mut out = Vec::new();
        match format {
            Format::Table => p.table(&mut out)?,
            Format::Json => p.json(&mut out)?,
            Format::Csv => p.csv(&mut out)?,
        }
        Ok(String::from_utf8(out).expect("UTF-8"))
    }

    #[test]
    fn an_empty_history_prints_in_every_format() {
        let h = History {
            store: "h.sqlite",
            series: &[],
        };
        assert_eq!(
            printed(&h, Format::Table).unwrap(),
            "no points in h.sqlite\n"
        );
        assert_eq!(
            printed(&h, Format::Json).unwrap(),
            "{\n  \"disks\": []\n}\n"
        );
        assert!(
            printed(&h, Format::Csv)
                .unwrap()
                .starts_with("disk,at,segment,bytes,")
        );
    }

    #[test]
    fn a_result_without_csv_says_so() {
        let f = Forecasts(&[]);
        let e = printed(&f, Format::Csv).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert_eq!(printed(&f, Format::Table).unwrap(), "");
    }
}
