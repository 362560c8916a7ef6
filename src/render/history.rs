//! Tables for people of the history store: the points of each disk (`history`, and the
//! before/after of `history --delete` and `--rename`) and the projections of `forecast`.

use std::io::{self, Write};

use chrono::{DateTime, Utc};

use crate::history::forecast::DiskForecast;
use crate::history::{Point, format_time};
use crate::sanitize::sanitize;
use crate::units::format_size;

/// Each disk, then one line per point: time, segment, size, growth since the point before
/// in the same segment, fresh bytes, expected ceiling, CID and where the point came from.
pub fn render_series(w: &mut dyn Write, series: &[(String, Vec<Point>)]) -> io::Result<()> {
    for (disk, points) in series {
        writeln!(w, "{disk}")?;
        if points.is_empty() {
            writeln!(w, "  no points")?;
            continue;
        }
        writeln!(
            w,
            "  {:<21} {:>3} {:>11} {:>10} {:>10} {:>12} {:<8} source",
            "at", "seg", "allocated", "growth", "fresh", "exp. ceiling", "cid"
        )?;
        let mut prev: Option<&Point> = None;
        for p in points {
            let growth = match prev {
                Some(q) if q.segment == p.segment => format_size(p.bytes.saturating_sub(q.bytes)),
                _ => "-".into(),
            };
            writeln!(
                w,
                "  {:<21} {:>3} {:>11} {:>10} {:>10} {:>12} {:<8} {}",
                format_time(&p.at),
                p.segment,
                format_size(p.bytes),
                growth,
                p.classes
                    .map(|c| format_size(c[0]))
                    .unwrap_or_else(|| "-".into()),
                p.expected_ceiling
                    .map(format_size)
                    .unwrap_or_else(|| "-".into()),
                p.cid.as_deref().unwrap_or("-"),
                p.source
            )?;
            prev = Some(p);
        }
    }
    Ok(())
}

/// A day, or "not within reach".
fn day(t: &Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "not within reach".into())
}

/// Each disk's model, crossings and weekly projection with its band.
pub fn render_forecasts(w: &mut dyn Write, disks: &[&DiskForecast]) -> io::Result<()> {
    for f in disks {
        writeln!(w, "{}", sanitize(&f.disk))?;
        writeln!(w, "  model: {}", f.model_reason)?;
        if let Some(c) = f.ceiling_bytes {
            writeln!(
                w,
                "  ceiling {}; crosses 50 % {}, 80 % {}, 100 % {}",
                format_size(c),
                day(&f.crossings.ceiling_50),
                day(&f.crossings.ceiling_80),
                day(&f.crossings.ceiling_100)
            )?;
        }
        if let Some(b) = f.budget_bytes {
            writeln!(
                w,
                "  budget {}: crossed {}",
                format_size(b),
                day(&f.crossings.budget)
            )?;
        }
        writeln!(
            w,
            "  {:<12} {:>11} {:>11} {:>11}",
            "week of", "projected", "low", "high"
        )?;
        for p in &f.forecast {
            writeln!(
                w,
                "  {:<12} {:>11} {:>11} {:>11}",
                p.at.format("%Y-%m-%d"),
                format_size(p.bytes),
                format_size(p.low),
                format_size(p.high)
            )?;
        }
    }
    Ok(())
}
