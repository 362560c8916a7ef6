//! The report of `blame`: the JSON contract (docs/JSON.md, "blame") and its text and CSV
//! renderings. Groups' `bytes` sum to `allocated_bytes`.

use std::io::{self, Write};

use serde::Serialize;

use crate::classify::ClassCounts;
use crate::units::{format_size, percent};

/// Overwritten bytes, by what the parent view held there.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OverwriteSplit {
    /// Replaced a file's (or NTFS metadata's) data that was live in the parent.
    pub live_parent_data: u64,
    /// Written into clusters the parent's `$Bitmap` marks free but which were not zero (old
    /// deleted data): growth into free space, like `fresh`.
    pub parent_free_space: u64,
    /// The parent view has no readable NTFS volume there.
    pub unknown: u64,
}

/// Whose parent data a group's overwritten bytes replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentShare {
    /// Group kind in the parent view (`file`, `free_now` for free clusters, `metadata`, ...).
    pub kind: String,
    /// Path in the parent view (empty for `free_now` and `unpartitioned`).
    pub path: String,
    /// Bytes.
    pub bytes: u64,
}

/// One group: a file (or directory, or extension), or one of the other kinds.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// `file`, `free_now`, `metadata`, `unpartitioned` or `other_fs`.
    pub kind: String,
    /// The file's path in the top view (a directory or `*.ext` when grouped so; empty for
    /// `free_now` and `unpartitioned`).
    pub path: String,
    /// Bytes of the layer in this group (sum of `classes`).
    pub bytes: u64,
    /// Bytes per class (classes of whole 4 KiB blocks, as `scan` counts blocks).
    pub classes: ClassCounts,
    /// `classes.overwritten`, split by what the parent view held.
    pub overwritten_split: OverwriteSplit,
    /// Whose parent data the overwritten bytes replaced, most first.
    pub overwrote: Vec<ParentShare>,
}

/// One partition of the top view.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeReport {
    /// Partition number.
    pub partition: u32,
    /// `mbr:0x07`, `gpt:<type GUID>` or `whole-disk`.
    pub partition_kind: String,
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub bytes: u64,
    /// `ntfs` or `unknown`.
    pub file_system: String,
    /// NTFS cluster size.
    pub cluster_bytes: Option<u64>,
    /// NTFS file records that could not be read.
    pub unreadable_records: Option<u64>,
}

/// `blame --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BlameReport {
    /// The version that wrote this.
    pub deltascope_version: String,
    /// The top layer's file.
    pub layer: String,
    /// Virtual disk size.
    pub disk_bytes: u64,
    /// Bytes the layer's tables map; the groups' bytes sum to it.
    pub allocated_bytes: u64,
    /// The layer's bytes per class of their 4 KiB block (`scan`'s `blocks_4k`, in bytes; the
    /// groups' classes sum to it).
    pub classes: ClassCounts,
    /// `file`, `dir` or `ext`.
    pub group_by: String,
    /// The partitions found in the top view.
    pub volumes: Vec<VolumeReport>,
    /// Why overwritten bytes could not be looked up in the parent, if so.
    pub parent_note: Option<String>,
    /// Every group, most bytes first.
    pub groups: Vec<GroupReport>,
}

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
        "{:>10} {:>6} {:>10} {:>10} {:>10} {:>10}  group",
        "bytes", "share", "fresh", "overwrite", "identical", "zeroed"
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
            crate::sanitize::sanitize(name)
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
    let mut w = crate::render::csv::CsvOut::new(out);
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
