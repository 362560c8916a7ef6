//! The table of `diff`: per layer and class, the growth rate, and per file when both sides
//! carried blame groups. Binary units, signed; exact values stay in JSON.

use std::io::{self, Write};

use crate::diff::Diff;
use crate::sanitize::sanitize;
use crate::units::{format_duration, format_size};

/// Groups shown (JSON has them all).
const GROUPS_SHOWN: usize = 20;

/// A signed size: `+1.0 MiB`, `-512.0 KiB`, `0`.
fn signed(v: i64) -> String {
    match v {
        0 => "0".into(),
        v if v > 0 => format!("+{}", format_size(v.unsigned_abs())),
        v => format!("-{}", format_size(v.unsigned_abs())),
    }
}

fn signed_f(v: f64) -> String {
    signed(v.round() as i64)
}

fn opt_size(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), format_size)
}

/// A group as blame's table names it.
fn label(g: &crate::diff::GroupChange) -> String {
    match g.kind.as_str() {
        "file" => g.path.clone(),
        "free_now" => "(free now: written, then deleted)".into(),
        "unpartitioned" => "(outside any partition)".into(),
        k => format!("({k}) {}", g.path),
    }
}

fn name(path: &str) -> String {
    sanitize(path.rsplit(['/', '\\']).next().unwrap_or(path))
}

/// Renders a diff.
pub fn render(out: &mut dyn Write, d: &Diff) -> io::Result<()> {
    for (label, s) in [("OLD", &d.old), ("NEW", &d.new)] {
        writeln!(
            out,
            "{label}  {}  (top {}{})",
            sanitize(&s.source),
            name(&s.top),
            s.at.as_deref()
                .map(|t| format!(", at {t}"))
                .unwrap_or_default()
        )?;
    }
    if let Some(secs) = d.interval_seconds {
        let from = match d.time_source {
            Some("history") => "the history's points",
            Some("given") => "--at",
            Some("file_modified") => "the files' modification times",
            Some("scanned_at") => "the scans' own times (scanned_at)",
            _ => "?",
        };
        writeln!(
            out,
            "interval {} (times from {from})",
            format_duration(secs)
        )?;
    }
    writeln!(out)?;
    let w = d
        .layers
        .iter()
        .map(|l| name(&l.path).chars().count() + if l.top { 6 } else { 0 })
        .fold("layer".len(), usize::max)
        .min(60);
    writeln!(
        out,
        "{:<w$} {:>10} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "layer", "old", "new", "grown", "fresh", "overwritten", "identical", "zeroed"
    )?;
    for l in &d.layers {
        let label = if l.top {
            format!("{} (top)", name(&l.path))
        } else {
            name(&l.path)
        };
        let c = |f: fn(&crate::diff::Classes<i64>) -> i64| {
            l.classes_grown
                .as_ref()
                .map_or_else(|| "-".into(), |c| signed(f(c)))
        };
        writeln!(
            out,
            "{:<w$} {:>10} {:>10} {:>11} {:>11} {:>11} {:>11} {:>11}",
            label,
            opt_size(l.old_bytes),
            opt_size(l.new_bytes),
            signed(l.grown_bytes),
            c(|c| c.fresh),
            c(|c| c.overwritten),
            c(|c| c.identical),
            c(|c| c.zeroed),
        )?;
    }
    writeln!(
        out,
        "{:<w$} {:>10} {:>10} {:>11}",
        "chain",
        "",
        "",
        signed(d.chain_grown_bytes)
    )?;
    if let (Some(t), Some(c)) = (d.top_per_week_bytes, d.chain_per_week_bytes) {
        writeln!(
            out,
            "growth per week: {} (top), {} (chain)",
            signed_f(t),
            signed_f(c)
        )?;
    }
    if let Some(groups) = &d.groups {
        writeln!(out)?;
        writeln!(
            out,
            "blame groups (by {}) that changed, largest growth first:",
            d.group_by.as_deref().unwrap_or("file")
        )?;
        writeln!(out, "{:>11} {:>10} {:>10}  path", "grown", "old", "new")?;
        for g in groups.iter().take(GROUPS_SHOWN) {
            writeln!(
                out,
                "{:>11} {:>10} {:>10}  {}",
                signed(g.grown_bytes),
                format_size(g.old_bytes),
                format_size(g.new_bytes),
                sanitize(&label(g))
            )?;
        }
        if groups.len() > GROUPS_SHOWN {
            writeln!(
                out,
                "... and {} more (--json lists them all)",
                groups.len() - GROUPS_SHOWN
            )?;
        }
        if groups.is_empty() {
            writeln!(out, "(none: every group holds what it held)")?;
        }
    }
    if !d.notes.is_empty() {
        writeln!(out)?;
        for n in &d.notes {
            writeln!(out, "note: {}", sanitize(n))?;
        }
    }
    Ok(())
}
