//! The Prometheus text exposition format (version 0.0.4, what node_exporter's textfile
//! collector reads) of a datastore scan, for `scan DIR --metrics FILE.prom`: one gauge per
//! figure, each value the same number `scan DIR --json` prints (docs/JSON.md, "scan DIR
//! --metrics" maps every metric to its field). Label values are escaped as the format asks
//! (`\\`, `\"`, `\n`); names from disks need no other care, the format takes any UTF-8 there.
//!
//! No sample carries a timestamp (the textfile collector refuses them): when the scan ran is
//! `deltascope_scan_timestamp_seconds`. A figure the JSON leaves null is left out, not
//! written as 0: a disk that failed has no delta metrics, a LUN whose growth is unknown no
//! busy fraction, a LUN the model gives no recommendation no recommended VMs.

use std::io::{self, Write};

use crate::report::datastore::DatastoreReport;

/// One metric family: its name, its help text, and its samples (label pairs and value).
struct Family<'a> {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, &'a str)>, Value)>,
}

/// A sample's value: integers as integers, fractions in the shortest form that reads back
/// as the same number (with an exponent when very small or large, as Go's parser accepts).
#[derive(Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() => {
                f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(v) if v != 0.0 && !(1e-4..1e15).contains(&v.abs()) => write!(f, "{v:e}"),
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

/// The metrics of `report`, scanned at `scanned_at` (seconds since 1970, UTC).
pub fn render_metrics(
    out: &mut dyn Write,
    report: &DatastoreReport,
    scanned_at: i64,
) -> io::Result<()> {
    let mut allocated = Family {
        name: "deltascope_delta_allocated_bytes",
        help: "Allocated bytes of the disk's top delta layer (vms[].delta_bytes).",
        samples: Vec::new(),
    };
    let mut classes = Family {
        name: "deltascope_delta_class_bytes",
        help: "Bytes of the disk's top delta layer in each class: fresh, overwritten, identical, zeroed (vms[].classes).",
        samples: Vec::new(),
    };
    let mut ceiling = Family {
        name: "deltascope_delta_expected_ceiling_bytes",
        help: "Bytes the disk's top delta reaches if fresh-first growth goes on (vms[].ceiling.expected_bytes).",
        samples: Vec::new(),
    };
    for v in &report.vms {
        let Some(bytes) = v.delta_bytes else { continue };
        let labels = vec![
            ("lun", v.lun.as_str()),
            ("disk", v.path.as_str()),
            ("vm", v.vm.as_deref().unwrap_or("")),
        ];
        allocated.samples.push((labels.clone(), Value::Int(bytes)));
        if let Some(c) = &v.classes {
            for (class, b) in [
                ("fresh", c.fresh),
                ("overwritten", c.overwritten),
                ("identical", c.identical),
                ("zeroed", c.zeroed),
            ] {
                let mut l = labels.clone();
                l.push(("class", class));
                classes.samples.push((l, Value::Int(b)));
            }
        }
        if let Some(c) = &v.ceiling {
            ceiling.samples.push((labels, Value::Int(c.expected_bytes)));
        }
    }
    let mut lun_delta = Family {
        name: "deltascope_lun_delta_bytes",
        help: "Allocated bytes of the top delta layers of the LUN's disks (luns[].delta_bytes).",
        samples: Vec::new(),
    };
    let mut busy = Family {
        name: "deltascope_lun_busy_fraction",
        help: "Share of time the LUN is reserved by VMFS growth locks, by the LUN model (luns[].model.busy_fraction); left out when growth is unknown.",
        samples: Vec::new(),
    };
    let mut recommended = Family {
        name: "deltascope_lun_recommended_vms",
        help: "VMs per LUN the model recommends, the smaller of its lock and capacity limits (luns[].model.vms_per_lun.recommended).",
        samples: Vec::new(),
    };
    let mut failed = Family {
        name: "deltascope_scan_failed_disks",
        help: "Disks of the LUN whose scan failed (luns[].vms_failed).",
        samples: Vec::new(),
    };
    let mut when = Family {
        name: "deltascope_scan_timestamp_seconds",
        help: "When the scan that wrote these metrics ended, in seconds since 1970 (UTC).",
        samples: Vec::new(),
    };
    for l in &report.luns {
        let labels = vec![("lun", l.name.as_str())];
        lun_delta
            .samples
            .push((labels.clone(), Value::Int(l.delta_bytes)));
        if l.model.inputs.growth_source != "none" {
            busy.samples
                .push((labels.clone(), Value::Float(l.model.outcome.busy_fraction)));
        }
        if let Some(n) = l.model.outcome.vms_per_lun.recommended {
            recommended.samples.push((labels.clone(), Value::Int(n)));
        }
        failed
            .samples
            .push((labels.clone(), Value::Int(l.vms_failed as u64)));
        when.samples
            .push((labels, Value::Int(u64::try_from(scanned_at).unwrap_or(0))));
    }
    for family in [
        allocated,
        classes,
        ceiling,
        lun_delta,
        busy,
        recommended,
        failed,
        when,
    ] {
        write_family(out, &family)?;
    }
    Ok(())
}

fn write_family(out: &mut dyn Write, f: &Family) -> io::Result<()> {
    writeln!(out, "# HELP {} {}", f.name, escape_help(f.help))?;
    writeln!(out, "# TYPE {} gauge", f.name)?;
    for (labels, value) in &f.samples {
        out.write_all(f.name.as_bytes())?;
        if !labels.is_empty() {
            out.write_all(b"{")?;
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write!(out, "{k}=\"{}\"", escape_label(v))?;
            }
            out.write_all(b"}")?;
        }
        writeln!(out, " {value}")?;
    }
    Ok(())
}

/// A label value as the exposition format writes it: backslash, double quote and line feed
/// escaped (`\\`, `\"`, `\n`); everything else as it is.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_what_the_format_asks() {
        assert_eq!(escape_label("a\\b\"c\nd\te"), "a\\\\b\\\"c\\nd\te");
        assert_eq!(
            escape_label("/vmfs/volumes/ds1/vdi-01.vmdk"),
            "/vmfs/volumes/ds1/vdi-01.vmdk"
        );
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn values_read_back_as_the_same_number() {
        for v in [0.0, 0.0205, 1.0, 4.259995117470495e-10, 3.5e17, 12345.678] {
            let text = Value::Float(v).to_string();
            assert_eq!(text.parse::<f64>().unwrap(), v, "{text}");
        }
        assert_eq!(
            Value::Float(4.259995117470495e-10).to_string(),
            "4.259995117470495e-10"
        );
        assert_eq!(Value::Float(0.0205).to_string(), "0.0205");
        assert_eq!(Value::Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::Int(u64::MAX).to_string(), "18446744073709551615");
    }
}
