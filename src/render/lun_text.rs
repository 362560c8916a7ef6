//! Tables for people of the LUN model and the datastore scan. Binary units and rounded
//! figures here; exact values stay in JSON and CSV.

use std::io::{self, Write};
use std::path::Path;

use super::text::{Style, fit, paint};
use crate::lun::Binding;
use crate::report::datastore::{DatastoreReport, LunModel, Status};
use crate::sanitize::sanitize;
use crate::units::{format_duration, format_size};

fn opt_size(v: Option<u64>) -> String {
    v.map(format_size).unwrap_or_else(|| "-".into())
}

fn opt_n(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

fn binding(b: Option<Binding>) -> &'static str {
    b.map_or("-", Binding::name)
}

/// A fraction (busy, conflict, a target) as a percentage, as headroom is shown: two
/// decimals, one above 10 %, and "< 0.01 %" below what two decimals show (a table never
/// shows `4.3e-10`; JSON and CSV keep the exact value).
pub fn percent(v: f64) -> String {
    let p = v * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if p < 0.005 {
        "< 0.01 %".into()
    } else if p >= 10.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.2} %")
    }
}

/// "the 2.0 min window" (or "each disk's window" when the disks' windows differ).
fn window_name(w: Option<f64>) -> String {
    match w {
        Some(w) => format!("the {} window", format_duration(w)),
        None => "each disk's own window".into(),
    }
}

/// Renders the model on parameters alone.
pub fn render_model(out: &mut dyn Write, m: &LunModel) -> io::Result<()> {
    let i = &m.inputs;
    let o = &m.outcome;
    writeln!(out, "inputs")?;
    writeln!(out, "  VMs on the LUN         {}", i.vms)?;
    if let (Some(g), Some(w)) = (i.growth_per_vm_bytes, i.window_seconds) {
        writeln!(
            out,
            "  growth per VM          {} in {}",
            format_size(g),
            format_duration(w)
        )?;
    }
    writeln!(
        out,
        "  growth increment       {}",
        opt_size(i.increment_bytes)
    )?;
    writeln!(
        out,
        "  hold time per lock     {}",
        format_duration(i.hold_seconds)
    )?;
    writeln!(out, "  locking                {}", i.locking.name())?;
    writeln!(out, "  busy target            {}", percent(i.max_busy))?;
    writeln!(
        out,
        "  LUN size               {} (headroom {:.0} %)",
        opt_size(i.lun_size_bytes),
        i.headroom * 100.0
    )?;
    writeln!(
        out,
        "  ceiling per VM         {}",
        opt_size(i.ceiling_per_vm_bytes)
    )?;
    writeln!(out)?;
    writeln!(out, "result")?;
    match i.window_seconds {
        Some(w) => {
            writeln!(
                out,
                "  lock events            {} per {} window",
                o.lock_events,
                format_duration(w)
            )?;
            // A burst's rate scaled to an hour is not a measured hour: say so.
            writeln!(
                out,
                "  lock events per hour   {:.1} ({}'s rate, scaled to an hour)",
                o.lock_events_per_hour,
                window_name(Some(w))
            )?;
        }
        None => {
            writeln!(out, "  lock events            {}", o.lock_events)?;
            writeln!(
                out,
                "  lock events per hour   {:.1}",
                o.lock_events_per_hour
            )?;
        }
    }
    writeln!(
        out,
        "  busy fraction          {} (share of time the LUN is reserved)",
        percent(o.busy_fraction)
    )?;
    writeln!(
        out,
        "  conflict probability   {} (chance a lock finds the LUN reserved)",
        percent(o.conflict_probability)
    )?;
    if let Some(w) = o.mean_wait_seconds {
        writeln!(out, "  mean wait per lock     {}", format_duration(w))?;
    }
    let v = &o.vms_per_lun;
    writeln!(out, "  lock limit             {}", opt_n(v.lock_limit))?;
    writeln!(out, "  capacity limit         {}", opt_n(v.capacity_limit))?;
    writeln!(
        out,
        "  recommended VMs/LUN    {} ({} binds)",
        opt_n(v.recommended),
        binding(v.binding)
    )?;
    for n in &o.notes {
        writeln!(out, "  note: {n}")?;
    }
    Ok(())
}

fn short(path: &str) -> String {
    let p = Path::new(path);
    let parent = p
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().into_owned());
    let file = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string());
    sanitize(&match parent {
        Some(d) => format!("{d}/{file}"),
        None => file,
    })
}

/// The date part of an RFC 3339 time, or `-`.
fn day(t: Option<&str>) -> &str {
    t.and_then(|t| t.get(..10)).unwrap_or("-")
}

/// When each LUN fills (with `--lun-size`) and each delta's refresh interval (with
/// `--budget`), both from the forecasts of the history store.
fn render_fill(out: &mut dyn Write, r: &DatastoreReport, dw: usize) -> io::Result<()> {
    // Without any forecast a note says why there is no date.
    let forecasts = r.vms.iter().any(|v| v.projection.is_some());
    if forecasts
        && r.luns
            .iter()
            .any(|l| l.model.inputs.lun_size_bytes.is_some())
    {
        writeln!(out)?;
        writeln!(
            out,
            "time to full: when the deltas hold the LUN size less the headroom, from their forecasts"
        )?;
        writeln!(out, "{:<10} {:>10} {:>10}", "LUN", "forecast", "worst case")?;
        for l in &r.luns {
            writeln!(
                out,
                "{:<10} {:>10} {:>10}",
                sanitize(&l.name),
                day(l.full_at.as_deref()),
                day(l.full_at_worst.as_deref())
            )?;
        }
        writeln!(
            out,
            "worst case: no delta slows down before its expected ceiling, and deltas without a forecast are at it"
        )?;
    }
    if let Some(budget) = r.budget_bytes {
        writeln!(out)?;
        writeln!(
            out,
            "{:<dw$} refresh interval that keeps the delta under {} (--budget)",
            "disk (top layer)",
            format_size(budget)
        )?;
        for v in r
            .vms
            .iter()
            .filter(|v| v.is_delta && v.status == Status::Ok)
        {
            let every = match (v.refresh_every_days, &v.projection) {
                (Some(d), _) if d < 1.0 => "refresh more than once a day".to_string(),
                (Some(d), _) if d < 2.0 => "refresh every day".to_string(),
                (Some(d), _) => format!("refresh every {} days", d.floor()),
                (None, Some(_)) => "its forecast never reaches the budget".to_string(),
                (None, None) => "no forecast (fewer than two recorded points)".to_string(),
            };
            writeln!(out, "{:<dw$} {every}", short(&v.path))?;
        }
    }
    Ok(())
}

/// Renders a datastore scan: per disk, per LUN, per VM, then failures, orphans, warnings and
/// notes. Each figure's column says which bytes it counts (legend below the tables).
pub fn render_datastore(out: &mut dyn Write, r: &DatastoreReport) -> io::Result<()> {
    // Columns as wide as their longest entry, within reason.
    let width = |head: &str, cells: &mut dyn Iterator<Item = usize>, max: usize| {
        cells.fold(head.len(), usize::max).min(max)
    };
    let dw = width(
        "disk (top layer)",
        &mut r.vms.iter().map(|v| short(&v.path).chars().count()),
        60,
    );
    let vw = width(
        "VM",
        &mut r
            .vms
            .iter()
            .map(|v| sanitize(v.vm.as_deref().unwrap_or("-")).chars().count()),
        30,
    );
    // LUN names: at least the ten columns the tables always had.
    let lw = width(
        "LUN",
        &mut r
            .luns
            .iter()
            .map(|l| sanitize(&l.name).chars().count())
            .chain(r.vms.iter().map(|v| sanitize(&v.lun).chars().count())),
        30,
    )
    .max(10);
    writeln!(
        out,
        "{:<lw$} {:<dw$} {:<vw$} {:<10} {:<15} {:>6} {:>10} {:>11} {:>10} {:>7} {:>10} {:>9}",
        "LUN",
        "disk (top layer)",
        "VM",
        "role",
        "format",
        "layers",
        "top delta",
        "chain delta",
        "ceiling",
        "fresh",
        "locks",
        "locks/h"
    )?;
    for v in &r.vms {
        let vm = fit(&sanitize(v.vm.as_deref().unwrap_or("-")), vw);
        let lun = fit(&sanitize(&v.lun), lw);
        let disk = fit(&short(&v.path), dw);
        if v.status != Status::Ok {
            let row = format!(
                "{:<lw$} {:<dw$} {:<vw$} {:<10} FAILED (see below)",
                lun, disk, vm, v.role
            );
            writeln!(out, "{}", paint(Style::Failed, &row))?;
            continue;
        }
        let fresh = match (v.classes, v.delta_bytes) {
            (Some(c), Some(d)) => crate::units::percent(c.fresh, d),
            _ => "-".into(),
        };
        writeln!(
            out,
            "{:<lw$} {:<dw$} {:<vw$} {:<10} {:<15} {:>6} {:>10} {:>11} {:>10} {:>7} {:>10} {:>9}",
            lun,
            disk,
            vm,
            v.role,
            v.format.map_or("-", |f| f.as_str()),
            v.layers.unwrap_or(0),
            opt_size(v.delta_bytes),
            opt_size(v.chain_delta_bytes.filter(|_| v.is_delta)),
            opt_size(v.ceiling.map(|c| c.expected_bytes)),
            fresh,
            opt_n(v.lock_events),
            v.lock_events_per_hour
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "-".into()),
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<lw$} {:>5} {:>6} {:>8} {:>11} {:>11} {:>11} {:>9} {:>8} {:>10} {:>14} {:>11} binds",
        "LUN",
        "disks",
        "failed",
        "machines",
        "top deltas",
        "all deltas",
        "at ceiling",
        "locks/h",
        "busy",
        "lock limit",
        "capacity limit",
        "recommended",
    )?;
    for l in &r.luns {
        let o = &l.model.outcome;
        let v = &o.vms_per_lun;
        writeln!(
            out,
            "{:<lw$} {:>5} {:>6} {:>8} {:>11} {:>11} {:>11} {:>9.1} {:>8} {:>10} {:>14} {:>11} {}",
            fit(&sanitize(&l.name), lw),
            l.vms_found - l.vms_failed,
            l.vms_failed,
            l.machines_found,
            format_size(l.delta_bytes),
            format_size(l.all_delta_bytes),
            format_size(l.projected_ceiling_bytes),
            o.lock_events_per_hour,
            percent(o.busy_fraction),
            opt_n(v.lock_limit),
            opt_n(v.capacity_limit),
            opt_n(v.recommended),
            binding(v.binding),
        )?;
    }
    writeln!(
        out,
        "disks: scanned (failed ones apart); machines: .vmx files; top delta(s): the top layers' allocated bytes;"
    )?;
    writeln!(
        out,
        "chain delta: every delta layer of the disk's chain; all deltas: every delta file on the LUN once (copies and orphans included)"
    )?;
    let i = r.luns.first().map(|l| &l.model.inputs);
    if let Some(i) = i {
        if i.growth_source != "none" {
            writeln!(
                out,
                "locks: lock events of the disk's growth in {}; locks/h: that rate scaled to an hour (a burst need not last one);",
                window_name(i.window_seconds)
            )?;
        } else {
            writeln!(
                out,
                "locks: none counted, the growth is not known (--growth-per-vm and --window, --since, or a history);"
            )?;
        }
        writeln!(
            out,
            "busy: share of time the LUN is reserved; limits: VMs per LUN that keep busy under the target (lock) and every delta at its ceiling within the LUN less the headroom (capacity)"
        )?;
        writeln!(
            out,
            "model: {} locking, hold {}, busy target {}, headroom {:.0} %, growth from {}",
            i.locking.name(),
            format_duration(i.hold_seconds),
            percent(i.max_busy),
            i.headroom * 100.0,
            i.growth_source
        )?;
    }
    render_fill(out, r, dw)?;
    if !r.machines.is_empty() {
        let mw = width(
            "machine (VM)",
            &mut r.machines.iter().map(|m| sanitize(&m.name).chars().count()),
            30,
        );
        writeln!(out)?;
        writeln!(
            out,
            "{:<mw$} {:<lw$} {:>5} {:>11} {:>9}  .vmx",
            "machine (VM)", "LUN", "disks", "deltas", "snapshots"
        )?;
        for m in &r.machines {
            writeln!(
                out,
                "{:<mw$} {:<lw$} {:>5} {:>11} {:>9}  {}",
                fit(&sanitize(&m.name), mw),
                fit(&sanitize(&m.lun), lw),
                m.disks.len(),
                format_size(m.delta_bytes),
                m.snapshots,
                short(&m.vmx)
            )?;
        }
    }
    let failed: Vec<_> = r.vms.iter().filter(|v| v.status != Status::Ok).collect();
    if !failed.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            paint(
                Style::Failed,
                &format!("{} disk(s) could not be scanned:", failed.len())
            )
        )?;
        for v in failed {
            // The error names the file (and the structure and offset) itself.
            writeln!(out, "  {}", sanitize(v.error.as_deref().unwrap_or("?")))?;
        }
    }
    // The disks' own warnings (a parent found by a fallback, a CID mismatch, ...), by kind;
    // a long list is cut, JSON has them all.
    let mut by_kind: Vec<(&str, Vec<&str>)> = Vec::new();
    for w in r.vms.iter().flat_map(|v| &v.warnings) {
        match by_kind.iter_mut().find(|(k, _)| *k == w.kind) {
            Some((_, list)) => {
                if !list.contains(&w.message.as_str()) {
                    list.push(&w.message);
                }
            }
            None => by_kind.push((&w.kind, vec![&w.message])),
        }
    }
    if !by_kind.is_empty() {
        writeln!(out)?;
        const SHOWN: usize = 5;
        for (kind, list) in &by_kind {
            for m in list.iter().take(SHOWN) {
                writeln!(out, "disk warning ({kind}): {}", sanitize(m))?;
            }
            if list.len() > SHOWN {
                writeln!(
                    out,
                    "disk warning ({kind}): ... and {} more (--json lists them all)",
                    list.len() - SHOWN
                )?;
            }
        }
    }
    if !r.orphans.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{} orphan(s): deltas nothing uses, files a .vmx/.vmsd names that are missing, entries that could not be read:",
            r.orphans.len()
        )?;
        for o in &r.orphans {
            let error = o
                .error
                .as_deref()
                .map(|e| format!(": {}", sanitize(e)))
                .unwrap_or_default();
            writeln!(out, "  {:<15} {}{error}", o.reason, sanitize(&o.path))?;
        }
    }
    if !r.warnings.is_empty() {
        writeln!(out)?;
        for w in &r.warnings {
            writeln!(
                out,
                "datastore warning ({}): {}",
                w.kind,
                sanitize(&w.message)
            )?;
        }
    }
    let mut notes: Vec<String> = Vec::new();
    for l in &r.luns {
        for n in &l.model.outcome.notes {
            let n = format!("{}: {n}", sanitize(&l.name));
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
        for u in &l.unclaimed_files {
            notes.push(format!(
                "{}: no descriptor names {}",
                sanitize(&l.name),
                sanitize(u)
            ));
        }
    }
    if !notes.is_empty() {
        writeln!(out)?;
        for n in notes {
            writeln!(out, "note: {n}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_percentages_without_exponents() {
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(percent(4.3e-10), "< 0.01 %");
        assert_eq!(percent(0.00005), "0.01 %");
        assert_eq!(percent(0.0205), "2.05 %");
        assert_eq!(percent(0.01), "1.00 %");
        assert_eq!(percent(0.2), "20.0 %");
        assert_eq!(percent(1.0), "100.0 %");
    }
}
