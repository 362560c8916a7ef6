//! `blame` for people and for spreadsheets: the groups of a [`BlameReport`] as a table (the
//! top ones, the rest summed) and as CSV (every group, one row each).

use std::io::{self, Write};

use crate::classify::ClassCounts;
use crate::report::blame::{BlameReport, GroupReport, OverwriteSplit};
use crate::sanitize::sanitize;
use crate::units::{format_size, percent};

fn label(g: &GroupReport) -> String {
    match g.kind.as_str() {
        "file" => g.path.clone(),
        "free_now" => "(free now: written, then deleted)".into(),
        "unpartitioned" => "(outside any partition)".into(),
        k => format!("({k}) {}", g.path),
    }
}

/// The top `top` groups as a table for people, with the rest summed.
pub fn render_text(out: &mut dyn Write, r: &BlameReport, top: usize) -> io::Result<()> {
    writeln!(
        out,
        "Blame of {} ({} allocated)",
        r.layer,
        format_size(r.allocated_bytes)
    )?;
    for v in &r.volumes {
        writeln!(
            out,
            "  partition {} {} at {}: {}{}{}",
            v.partition,
            v.partition_kind,
            v.start,
            v.file_system,
            v.cluster_bytes
                .map_or(String::new(), |c| format!(", {c}-byte clusters")),
            match v.unreadable_records {
                Some(n) if n > 0 => {
                    format!(", {n} file records unreadable (their clusters: no file record)")
                }
                _ => String::new(),
            }
        )?;
    }
    if let Some(n) = &r.parent_note {
        writeln!(out, "  note: {n}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:>10} {:>6} {}  group",
        "bytes",
        "share",
        super::text::class_heads(["fresh", "overwrite", "identical", "zeroed"], [10; 4])
    )?;
    let row = |out: &mut dyn Write, name: &str, c: &ClassCounts| {
        writeln!(
            out,
            "{:>10} {:>6} {:>10} {:>10} {:>10} {:>10}  {}",
            format_size(c.total()),
            percent(c.total(), r.allocated_bytes),
            format_size(c.fresh),
            format_size(c.overwritten),
            format_size(c.identical),
            format_size(c.zeroed),
            sanitize(name)
        )
    };
    for g in r.groups.iter().take(top) {
        row(out, &label(g), &g.classes)?;
    }
    if r.groups.len() > top {
        let rest = r.groups[top..]
            .iter()
            .fold(ClassCounts::default(), |a, g| a + g.classes);
        row(
            out,
            &format!("({} more groups)", r.groups.len() - top),
            &rest,
        )?;
    }
    let split = r
        .groups
        .iter()
        .fold(OverwriteSplit::default(), |a, g| OverwriteSplit {
            live_parent_data: a.live_parent_data + g.overwritten_split.live_parent_data,
            parent_free_space: a.parent_free_space + g.overwritten_split.parent_free_space,
            unknown: a.unknown + g.overwritten_split.unknown,
        });
    writeln!(out)?;
    writeln!(
        out,
        "Overwritten: {} over live parent data, {} into parent free space that was not zero{}",
        format_size(split.live_parent_data),
        format_size(split.parent_free_space),
        if split.unknown > 0 {
            format!(", {} unknown", format_size(split.unknown))
        } else {
            String::new()
        }
    )?;
    Ok(())
}

/// Every group as CSV, one row each.
pub fn render_csv(out: &mut dyn Write, r: &BlameReport) -> io::Result<()> {
    let mut w = super::csv::CsvOut::new(out);
    w.row([
        "kind",
        "path",
        "bytes",
        "fresh",
        "overwritten",
        "identical",
        "zeroed",
        "overwrote_live_parent_data",
        "overwrote_parent_free_space",
    ])?;
    for g in &r.groups {
        let c = &g.classes;
        let s = &g.overwritten_split;
        w.row([
            g.kind.clone(),
            g.path.clone(),
            g.bytes.to_string(),
            c.fresh.to_string(),
            c.overwritten.to_string(),
            c.identical.to_string(),
            c.zeroed.to_string(),
            s.live_parent_data.to_string(),
            s.parent_free_space.to_string(),
        ])?;
    }
    w.flush()
}
