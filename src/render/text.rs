//! Tables for people. Renders [`ScanReport`] and [`LayerInfo`] into any `Write`; binary units
//! here only, exact bytes stay in JSON.

use std::io::{self, Write};
use std::path::Path;

use crate::classify::ClassCounts;
use crate::report::{LayerInfo, LayerReport, ScanReport};
use crate::units::{format_size, percent};

fn name(path: &str) -> String {
    let n = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string());
    crate::sanitize::sanitize(&n)
}

/// Renders `info`.
pub fn render_info(out: &mut dyn Write, layers: &[LayerInfo]) -> io::Result<()> {
    writeln!(out, "chain of {} layer(s), base first:", layers.len())?;
    for (i, l) in layers.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "[{i}] {}", crate::sanitize::sanitize(&l.path))?;
        writeln!(
            out,
            "    format        {} (createType {})",
            l.format,
            crate::sanitize::sanitize(&l.create_type)
        )?;
        writeln!(
            out,
            "    virtual size  {} ({} bytes)",
            format_size(l.virtual_size),
            l.virtual_size
        )?;
        writeln!(
            out,
            "    grain size    {} ({} bytes)",
            format_size(l.grain_size),
            l.grain_size
        )?;
        writeln!(
            out,
            "    CID           {}   parentCID {}",
            l.cid.as_deref().unwrap_or("-"),
            l.parent_cid.as_deref().unwrap_or("-")
        )?;
        if let Some(h) = &l.parent_hint {
            writeln!(out, "    parent hint   {}", crate::sanitize::sanitize(h))?;
        }
        writeln!(
            out,
            "    file size     {} ({} bytes)",
            format_size(l.file_size),
            l.file_size
        )?;
        for e in &l.extents {
            writeln!(
                out,
                "    extent        {:<16} at {:>10} len {:>10}  {}",
                e.kind,
                format_size(e.virtual_offset),
                format_size(e.length),
                e.file
                    .as_deref()
                    .map(name)
                    .unwrap_or_else(|| "(no file)".into())
            )?;
        }
    }
    Ok(())
}

fn class_cells(c: &ClassCounts, total: u64, fmt: &dyn Fn(u64) -> String) -> [String; 4] {
    [c.fresh, c.overwritten, c.identical, c.zeroed]
        .map(|v| format!("{} {:>6}", fmt(v), percent(v, total)))
}

/// Renders `scan`.
pub fn render_scan(out: &mut dyn Write, r: &ScanReport) -> io::Result<()> {
    writeln!(
        out,
        "deltascope {}: chain of {} layer(s), base first",
        r.deltascope_version,
        r.chain.len()
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<3} {:<32} {:<16} {:>10} {:>9} {:>11} {:>11}",
        "#", "layer", "format", "virtual", "grain", "allocated", "file size"
    )?;
    for (i, l) in r.chain.iter().enumerate() {
        writeln!(
            out,
            "{:<3} {:<32} {:<16} {:>10} {:>9} {:>11} {:>11}",
            i,
            truncate(&name(&l.path), 32),
            l.format,
            format_size(l.virtual_size),
            format_size(l.grain_size),
            format_size(l.allocated_bytes),
            format_size(l.file_size)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "What each layer's grains hold, against the layers below it (bytes):"
    )?;
    writeln!(
        out,
        "{:<3} {:>19} {:>19} {:>19} {:>19}",
        "#", "fresh", "overwritten", "identical", "zeroed"
    )?;
    for (i, l) in r.chain.iter().enumerate() {
        let c = class_cells(&l.classes, l.allocated_bytes, &|v| {
            format!("{:>10}", format_size(v))
        });
        writeln!(
            out,
            "{:<3} {:>19} {:>19} {:>19} {:>19}",
            i, c[0], c[1], c[2], c[3]
        )?;
    }
    writeln!(out)?;
    writeln!(out, "The same at 4 KiB (blocks):")?;
    writeln!(
        out,
        "{:<3} {:>19} {:>19} {:>19} {:>19}",
        "#", "fresh", "overwritten", "identical", "zeroed"
    )?;
    for (i, l) in r.chain.iter().enumerate() {
        let total = l.blocks_4k.total();
        let c = class_cells(&l.blocks_4k, total, &|v| format!("{v:>10}"));
        writeln!(
            out,
            "{:<3} {:>19} {:>19} {:>19} {:>19}",
            i, c[0], c[1], c[2], c[3]
        )?;
    }
    if let Some(top) = r.chain.last().filter(|_| r.chain.len() > 1) {
        writeln!(out)?;
        summary(out, top)?;
        if let Some(s) = &r.ntfs_overwritten {
            writeln!(
                out,
                "  NTFS in the parent: of the overwritten bytes, {} replaced live data and {} went into free space that was not zero (growth, like fresh){}.",
                format_size(s.live_parent_data),
                format_size(s.parent_free_space),
                if s.unknown > 0 {
                    format!("; {} outside NTFS", format_size(s.unknown))
                } else {
                    String::new()
                }
            )?;
        }
        profile(out, top)?;
    }
    if let (Some(c), Some(top)) = (&r.ceiling, r.chain.last()) {
        writeln!(out)?;
        writeln!(out, "Ceilings of {}:", name(&top.path))?;
        writeln!(
            out,
            "  hard (virtual size + metadata): {}; now {} ({}).",
            format_size(c.hard_bytes),
            format_size(top.allocated_bytes),
            percent(top.allocated_bytes, c.hard_bytes)
        )?;
        writeln!(
            out,
            "  expected if fresh-first allocation continues: {} ({} more: space that reads as zero below and is not yet written).",
            format_size(c.expected_bytes),
            format_size(c.parent_zero_unwritten_bytes)
        )?;
    }
    let warnings: Vec<_> = r.chain.iter().flat_map(|l| l.warnings.iter()).collect();
    if !warnings.is_empty() {
        writeln!(out)?;
        for w in warnings {
            writeln!(out, "warning: {}", w.message)?;
        }
    }
    Ok(())
}

fn summary(out: &mut dyn Write, top: &LayerReport) -> io::Result<()> {
    let c = &top.classes;
    let changed_4k = (top.blocks_4k.fresh + top.blocks_4k.overwritten) * 4096;
    writeln!(out, "Top delta {}:", name(&top.path))?;
    writeln!(
        out,
        "  {} allocated; {} ({}) went into space that was zero below it (fresh), {} ({}) replaced data below it (overwritten).",
        format_size(top.allocated_bytes),
        format_size(c.fresh),
        percent(c.fresh, top.allocated_bytes),
        format_size(c.overwritten),
        percent(c.overwritten, top.allocated_bytes)
    )?;
    if top.grain_size > 4096 && changed_4k > 0 {
        writeln!(
            out,
            "  At 4 KiB, {} of it differs from below: copy-on-write amplification {:.2}x ({} grains).",
            format_size(changed_4k),
            top.allocated_bytes as f64 / changed_4k as f64,
            format_size(top.grain_size)
        )?;
    }
    Ok(())
}

/// The allocation-order profile: grains in file order replay the delta's growth.
fn profile(out: &mut dyn Write, top: &LayerReport) -> io::Result<()> {
    let total: u64 = top.allocation_profile.iter().map(|c| c.total()).sum();
    if total == 0 {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "  In allocation order (tenths of the file, oldest first), share of each tenth:"
    )?;
    writeln!(
        out,
        "  {:<8} {:>8} {:>12} {:>10} {:>8}",
        "tenth", "fresh", "overwritten", "identical", "zeroed"
    )?;
    for (i, c) in top.allocation_profile.iter().enumerate() {
        let t = c.total();
        if t == 0 {
            continue;
        }
        writeln!(
            out,
            "  {:<8} {:>8} {:>12} {:>10} {:>8}",
            format!("{}", i + 1),
            percent(c.fresh, t),
            percent(c.overwritten, t),
            percent(c.identical, t),
            percent(c.zeroed, t)
        )?;
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let keep: String = s.chars().take(n - 1).collect();
        format!("{keep}…")
    }
}
