//! JSON for programs: the writer every `--format json` goes through, and the wire shapes of
//! the outputs that are not a report type as it is (docs/JSON.md documents each).
//!
//! `info`, `history` and `forecast` have always been built as `serde_json::Value`s, whose
//! objects sort their keys; their functions here keep building values, so the key order
//! scripts see stays as it was. The other outputs serialize their types in field order.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{Value, json};

use crate::history::Point;
use crate::history::forecast::DiskForecast;
use crate::report::datastore::{DatastoreReport, LunModel};
use crate::report::{LayerInfo, WarningReport};

/// Writes `value` as pretty JSON and a newline. Write errors keep their kind (From keeps it),
/// so a closed pipe stays a closed pipe.
pub fn write<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    writeln!(out)
}

/// `info --json`: the version, every layer and the chain's warnings.
pub fn info(layers: &[LayerInfo], warnings: &[WarningReport]) -> Value {
    json!({
        "deltascope_version": crate::report::VERSION,
        "chain": layers,
        "warnings": warnings,
    })
}

/// `history --json`: each disk with its points. A point's `classes` is the array the store
/// keeps (`[fresh, overwritten, identical, zeroed]`); `class_bytes` is the same as the object
/// `scan --json` writes (`{"fresh": .., ...}`), so both read alike (issue 17; the array stays,
/// field names are a contract).
pub fn history(series: &[(String, Vec<Point>)]) -> Value {
    let disks: Vec<Value> = series
        .iter()
        .map(|(d, points)| {
            let points: Vec<Value> = points
                .iter()
                .map(|p| {
                    let mut v = json!(p);
                    if let Value::Object(o) = &mut v {
                        o.insert(
                            "class_bytes".into(),
                            p.classes.map_or(Value::Null, |[f, o, i, z]| {
                                json!({"fresh": f, "overwritten": o, "identical": i, "zeroed": z})
                            }),
                        );
                    }
                    v
                })
                .collect();
            json!({"disk": d, "points": points})
        })
        .collect();
    json!({ "disks": disks })
}

/// `forecast --json`: the projection of each disk that has one.
pub fn forecasts(disks: &[&DiskForecast]) -> Value {
    json!({ "disks": disks })
}

/// `lun DIR --json`: the model of each LUN scanned.
#[derive(Debug, Serialize)]
pub struct Luns<'a> {
    /// deltascope's version.
    pub deltascope_version: &'a str,
    /// One entry per LUN.
    pub luns: Vec<LunEntry<'a>>,
}

/// One LUN of `lun DIR --json`: its name and folder, and its model's fields inline.
#[derive(Debug, Serialize)]
pub struct LunEntry<'a> {
    /// The LUN's name.
    pub lun: &'a str,
    /// Its folder.
    pub path: &'a str,
    /// Disks found on the LUN.
    pub vms_found: usize,
    /// Disks of the LUN that could not be scanned.
    pub vms_failed: usize,
    /// Virtual machines found on the LUN (their `.vmx` files).
    pub machines_found: usize,
    /// The model: inputs, outcome and notes.
    #[serde(flatten)]
    pub model: &'a LunModel,
}

impl<'a> Luns<'a> {
    /// The LUN models of a datastore scan.
    pub fn of(report: &'a DatastoreReport) -> Luns<'a> {
        Luns {
            deltascope_version: &report.deltascope_version,
            luns: report
                .luns
                .iter()
                .map(|l| LunEntry {
                    lun: &l.name,
                    path: &l.path,
                    vms_found: l.vms_found,
                    vms_failed: l.vms_failed,
                    machines_found: l.machines_found,
                    model: &l.model,
                })
                .collect(),
        }
    }
}

/// Writes entries the way qemu-img prints them: a JSON array, one entry per line.
pub fn render_map(
    out: &mut dyn std::io::Write,
    entries: &[crate::map::MapEntry],
) -> std::io::Result<()> {
    write!(out, "[")?;
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            writeln!(out, ",")?;
        }
        serde_json::to_writer(&mut *out, e).map_err(std::io::Error::from)?;
    }
    writeln!(out, "]")
}
