//! The growth chart of one disk: above, the top layer's size over time with the projection
//! (dashed, with its band), the ceiling and the budget; below, growth per ISO week as bars,
//! stacked by class when the scans know the classes.

use chrono::{DateTime, Datelike, Duration, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{FONT, binary_unit, bytes_label, tick};
use crate::history::Point;
use crate::history::forecast::DiskForecast;

/// Everything the chart shows.
#[derive(Debug)]
pub struct GrowthChart<'a> {
    /// Disk identity (the title).
    pub disk: &'a str,
    /// All recorded points, oldest first.
    pub points: &'a [Point],
    /// The projection, when there were enough points.
    pub forecast: Option<&'a DiskForecast>,
}

/// One ISO week's growth, per class (fresh, overwritten, identical, zeroed) or as one total.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekGrowth {
    /// Monday 00:00 UTC of the ISO week.
    pub monday: DateTime<Utc>,
    /// ISO year and week number.
    pub iso: (i32, u32),
    /// Growth in bytes (never negative: a shrink starts a new segment).
    pub total: u64,
    /// Per class, when the scans at both ends of the week knew the classes.
    pub classes: Option<[u64; 4]>,
}

/// Growth per ISO week: the last point of each week against the last point before that week
/// (a new segment counts from zero; the first week from zero: the delta started empty).
pub fn weekly_growth(points: &[Point]) -> Vec<WeekGrowth> {
    let mut out: Vec<WeekGrowth> = Vec::new();
    let mut prev: Option<&Point> = None;
    let mut i = 0;
    while i < points.len() {
        let iw = points[i].at.iso_week();
        let key = (iw.year(), iw.week());
        let mut j = i;
        while j + 1 < points.len() {
            let w = points[j + 1].at.iso_week();
            if (w.year(), w.week()) != key {
                break;
            }
            j += 1;
        }
        let last = &points[j];
        let base = prev.filter(|p| p.segment == last.segment);
        let total = last.bytes.saturating_sub(base.map_or(0, |p| p.bytes));
        let classes = match (last.classes, base.map(|p| p.classes)) {
            (Some(c), Some(Some(b))) => Some(std::array::from_fn(|k| c[k].saturating_sub(b[k]))),
            (Some(c), None) => Some(c),
            _ => None,
        };
        let d = last.at.date_naive();
        let monday = (d - Duration::days(i64::from(d.weekday().num_days_from_monday())))
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(last.at);
        out.push(WeekGrowth {
            monday,
            iso: key,
            total,
            classes,
        });
        prev = Some(last);
        i = j + 1;
    }
    out
}

const CLASS_COLORS: [RGBColor; 4] = [
    RGBColor(214, 96, 77),   // fresh: the growth the tool exists to show
    RGBColor(67, 147, 195),  // overwritten
    RGBColor(146, 197, 222), // identical
    RGBColor(190, 190, 190), // zeroed
];
const CLASS_NAMES: [&str; 4] = ["fresh", "overwritten", "identical", "zeroed"];
/// A week's growth without classes.
const TOTAL_COLOR: RGBColor = RGBColor(120, 120, 120);

fn days(t: DateTime<Utc>, t0: DateTime<Utc>) -> f64 {
    (t - t0).num_seconds() as f64 / 86400.0
}

/// Draws the chart onto `root`.
pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &GrowthChart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let title = format!("Delta growth of {}", c.disk);
    let root = root.titled(&title, (FONT, 26).into_font())?;
    let (upper, lower) = root.split_vertically((root.dim_in_pixel().1 as f64 * 0.62) as u32);
    let Some(first) = c.points.first() else {
        return Ok(());
    };
    let t0 = first.at;
    let weeks = weekly_growth(c.points);
    let t_end = c
        .forecast
        .and_then(|f| f.forecast.last().map(|p| p.at))
        .unwrap_or(c.points[c.points.len() - 1].at);
    let x0 = weeks.first().map_or(0.0, |w| days(w.monday, t0)).min(0.0) - 1.0;
    let x1 = days(t_end, t0) + 3.0;
    let mut y_max = c.points.iter().map(|p| p.bytes).max().unwrap_or(1) as f64;
    if let Some(f) = c.forecast {
        y_max = y_max.max(f.forecast.iter().map(|p| p.high).max().unwrap_or(0) as f64);
        for v in [f.ceiling_bytes, f.budget_bytes].into_iter().flatten() {
            y_max = y_max.max(v as f64);
        }
    }
    let y_max = (y_max * 1.08).max(1.0);
    let (su, unit) = binary_unit(y_max);
    let y = move |b: f64| b / su;
    let date_label = |x: &f64| {
        (t0 + Duration::seconds((x * 86400.0) as i64))
            .format("%Y-%m-%d")
            .to_string()
    };

    // Size over time.
    let mut ch = ChartBuilder::on(&upper)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(90)
        .caption(
            "Top layer: allocated bytes, projection and ceilings",
            (FONT, 18),
        )
        .build_cartesian_2d(x0..x1, 0.0..y(y_max))?;
    ch.configure_mesh()
        .x_label_formatter(&date_label)
        .y_label_formatter(&|v| format!("{} {unit}", tick(*v)))
        .y_desc(format!("allocated ({unit})"))
        .x_labels(8)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    if let Some(f) = c.forecast {
        let last = f.points.last().map(|p| (days(p.at, t0), y(p.bytes as f64)));
        let mut band: Vec<(f64, f64)> = Vec::new();
        let mut lows: Vec<(f64, f64)> = Vec::new();
        if let Some(l) = last {
            band.push(l);
            lows.push(l);
        }
        band.extend(
            f.forecast
                .iter()
                .map(|p| (days(p.at, t0), y(p.high as f64))),
        );
        lows.extend(f.forecast.iter().map(|p| (days(p.at, t0), y(p.low as f64))));
        band.extend(lows.into_iter().rev());
        ch.draw_series(std::iter::once(Polygon::new(
            band,
            RGBColor(214, 96, 77).mix(0.15),
        )))?
        .label("projection band (95 %)")
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 5), (x + 18, y + 5)],
                RGBColor(214, 96, 77).mix(0.15).filled(),
            )
        });
        let mut proj: Vec<(f64, f64)> = last.into_iter().collect();
        proj.extend(
            f.forecast
                .iter()
                .map(|p| (days(p.at, t0), y(p.bytes as f64))),
        );
        let model = match f.model {
            crate::history::forecast::Model::Linear => "linear",
            crate::history::forecast::Model::Saturating => "saturating",
        };
        ch.draw_series(DashedLineSeries::new(
            proj,
            8,
            6,
            RGBColor(214, 96, 77).stroke_width(2),
        ))?
        .label(format!("projection ({model} model)"))
        .legend(|(x, y)| {
            PathElement::new([(x, y), (x + 18, y)], RGBColor(214, 96, 77).stroke_width(2))
        });
        if let Some(v) = f.ceiling_bytes {
            let v = v as f64;
            ch.draw_series(LineSeries::new(
                [(x0, y(v)), (x1, y(v))],
                BLACK.stroke_width(1),
            ))?
            .label(format!("expected ceiling {}", bytes_label(v)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK));
        }
        if let Some(v) = f.budget_bytes {
            let v = v as f64;
            ch.draw_series(DashedLineSeries::new(
                [(x0, y(v)), (x1, y(v))],
                4,
                4,
                RGBColor(120, 40, 140).stroke_width(2),
            ))?
            .label(format!("budget {}", bytes_label(v)))
            .legend(|(x, y)| {
                PathElement::new(
                    [(x, y), (x + 18, y)],
                    RGBColor(120, 40, 140).stroke_width(2),
                )
            });
        }
    }
    let seg_line: Vec<Vec<(f64, f64)>> = {
        let mut v: Vec<Vec<(f64, f64)>> = Vec::new();
        for (i, p) in c.points.iter().enumerate() {
            if i == 0 || p.segment != c.points[i - 1].segment {
                v.push(Vec::new());
            }
            if let Some(s) = v.last_mut() {
                s.push((days(p.at, t0), y(p.bytes as f64)));
            }
        }
        v
    };
    for (i, s) in seg_line.into_iter().enumerate() {
        let drawn = ch.draw_series(LineSeries::new(
            s.clone(),
            RGBColor(30, 30, 30).stroke_width(2),
        ))?;
        if i == 0 {
            drawn.label("recorded size").legend(|(x, y)| {
                PathElement::new([(x, y), (x + 18, y)], RGBColor(30, 30, 30).stroke_width(2))
            });
        }
        ch.draw_series(
            s.into_iter()
                .map(|p| Circle::new(p, 4, RGBColor(30, 30, 30).filled())),
        )?;
    }
    ch.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, 14))
        .draw()?;

    // Weekly growth. The legend lists the classes the bars show and grey when a week has
    // no classes; the y range leaves room above the bars for it, so it covers none.
    let shown: Vec<usize> = (0..4)
        .filter(|&k| weeks.iter().any(|w| w.classes.is_some_and(|c| c[k] > 0)))
        .collect();
    let any_total = weeks.iter().any(|w| w.classes.is_none());
    let rows = shown.len() + usize::from(any_total);
    let plot_h = (f64::from(lower.dim_in_pixel().1) - 100.0).max(60.0);
    let legend_share = if rows == 0 {
        0.0
    } else {
        ((rows as f64 * 19.0 + 16.0) / plot_h).min(0.6)
    };
    let g_max = (weeks
        .iter()
        .map(|w| w.total.max(w.classes.map_or(0, |c| c.iter().sum())))
        .max()
        .unwrap_or(1) as f64
        * 1.15
        / (1.0 - legend_share))
        .max(1.0);
    let (gs, gunit) = binary_unit(g_max);
    let g_max = g_max / gs;
    let mut gc = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(90)
        .caption("Growth per ISO week", (FONT, 18))
        .build_cartesian_2d(x0..x1, 0.0..g_max)?;
    gc.configure_mesh()
        .x_label_formatter(&date_label)
        .y_label_formatter(&|v| format!("{} {gunit}", tick(*v)))
        .y_desc(format!("growth ({gunit})"))
        .x_labels(8)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(246, 246, 246))
        .draw()?;
    let any_classes = weeks.iter().any(|w| w.classes.is_some());
    for w in &weeks {
        let a = days(w.monday, t0) + 0.5;
        let b = a + 6.0;
        match w.classes {
            Some(cls) => {
                let mut y = 0.0;
                for (k, v) in cls.iter().enumerate() {
                    let v = *v as f64 / gs;
                    if v > 0.0 {
                        gc.draw_series(std::iter::once(Rectangle::new(
                            [(a, y), (b, y + v)],
                            CLASS_COLORS[k].filled(),
                        )))?;
                    }
                    y += v;
                }
            }
            None => {
                gc.draw_series(std::iter::once(Rectangle::new(
                    [(a, 0.0), (b, w.total as f64 / gs)],
                    TOTAL_COLOR.filled(),
                )))?;
            }
        }
        let label = format!("W{:02}", w.iso.1);
        let top = w.total.max(w.classes.map_or(0, |c| c.iter().sum())) as f64 / gs;
        gc.draw_series(std::iter::once(Text::new(
            label,
            ((a + b) / 2.0 - 1.2, top + g_max * 0.08),
            (FONT, 13),
        )))?;
    }
    // Every colour drawn has its legend entry: the classes, and grey for weeks whose points
    // carry no classes (imported sizes), which used to have none (issue 17).
    if any_classes {
        for &k in &shown {
            gc.draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
                .label(CLASS_NAMES[k])
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], CLASS_COLORS[k].filled())
                });
        }
    }
    if any_total {
        gc.draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label("growth (no classes recorded, e.g. imported sizes)")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], TOTAL_COLOR.filled())
            });
    }
    if rows > 0 {
        gc.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font((FONT, 14))
            .draw()?;
    }
    Ok(())
}

/// The growth chart as an SVG document in memory (for the HTML report).
pub fn svg(c: &GrowthChart) -> crate::error::Result<String> {
    super::svg_string(&format!("growth chart of {}", c.disk), |root| draw(root, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::parse_time;

    #[test]
    fn growth_is_counted_per_iso_week_and_restarts_with_a_segment() {
        let p = |day: &str, bytes: u64, segment: i64| Point {
            at: parse_time(day).expect("t"),
            bytes,
            segment,
            ..Point::default()
        };
        // 2026-11-02 is a Monday (ISO week 45).
        let points = [
            p("2026-11-02", 100, 0),
            p("2026-11-05", 150, 0),
            p("2026-11-10", 400, 0),
            p("2026-11-17", 50, 1),
        ];
        let w = weekly_growth(&points);
        assert_eq!(
            w.iter().map(|w| (w.iso.1, w.total)).collect::<Vec<_>>(),
            [(45, 150), (46, 250), (47, 50)]
        );
        assert_eq!(w[1].monday, parse_time("2026-11-09").expect("t"));
    }
}
