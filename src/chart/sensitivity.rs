//! Sensitivity charts of the LUN model: busy fraction against VMs per LUN, for growth
//! increments of 1, 8, 16 and 64 MiB (one line each), and for SCSI-2 against ATS; with the
//! busy target and the lock and capacity limits marked. Busy fraction is linear in N
//! (`rho = N x r x h`), so each line is straight; what the chart shows is where each one
//! crosses the target, against where capacity runs out.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::FONT;
use crate::error::Result;
use crate::lun::{self, Params};
use crate::report::datastore::LunReport;
use crate::units::{format_duration, format_size};

/// The increments the chart compares (MiB).
pub const INCREMENTS_MIB: [u64; 4] = [1, 8, 16, 64];
const COLORS: [RGBColor; 4] = [
    RGBColor(202, 0, 32),
    RGBColor(244, 165, 130),
    RGBColor(5, 113, 176),
    RGBColor(146, 197, 222),
];

/// What a sensitivity chart needs: the LUN's growth per VM and the model's settings.
#[derive(Debug, Clone)]
pub struct Sensitivity {
    /// The LUN's name (empty on parameters alone).
    pub lun: String,
    /// (bytes, seconds) of every VM whose growth is known.
    pub growths: Vec<(u64, f64)>,
    /// How many VMs the growths are spread over (1 for uniform growth: one VM's figure).
    pub vms: u64,
    /// VMs on the LUN now (marked on the chart).
    pub now: u64,
    /// The increment the model used (marked as the user's).
    pub increment: u64,
    /// The model's settings.
    pub params: Params,
    /// Capacity limit, when known.
    pub capacity_limit: Option<u64>,
    /// The model's own lock limit when it gave each disk its format's increment (a LUN of
    /// mixed formats): no one line of the chart is "the model's" then.
    pub per_format_lock_limit: Option<u64>,
}

/// A chart drawer writing to a file.
pub type DrawFn = fn(&Path, &Sensitivity) -> Result<()>;

impl Sensitivity {
    /// `vms` VMs each growing `growth` bytes in `window` seconds.
    pub fn uniform(
        vms: u64,
        growth: u64,
        window: f64,
        increment: u64,
        p: &Params,
        lun: &str,
    ) -> Self {
        let capacity_limit = match (p.lun_size, p.ceiling_per_vm) {
            (Some(s), Some(c)) => lun::capacity_limit(s, p.headroom, c),
            _ => None,
        };
        Sensitivity {
            lun: lun.to_string(),
            growths: vec![(growth, window)],
            vms: 1,
            now: vms,
            increment,
            params: *p,
            capacity_limit,
            per_format_lock_limit: None,
        }
    }

    /// A scanned LUN.
    pub fn measured(l: &LunReport, increment: Option<u64>) -> Self {
        let i = &l.model.inputs;
        let p = Params {
            hold: i.hold_seconds,
            locking: i.locking,
            max_busy: i.max_busy,
            lun_size: i.lun_size_bytes,
            headroom: i.headroom,
            ceiling_per_vm: i.ceiling_per_vm_bytes,
        };
        Sensitivity {
            lun: l.name.clone(),
            growths: l
                .growths
                .iter()
                .map(|g| (g.bytes, g.window_seconds))
                .collect(),
            vms: i.vms.max(1),
            increment: increment
                .or(i.increment_bytes)
                .unwrap_or(lun::VMFS_SPARSE_INCREMENT),
            params: p,
            capacity_limit: l.model.outcome.vms_per_lun.capacity_limit,
            now: i.vms,
            per_format_lock_limit: if increment.is_none() && i.increment_bytes.is_none() {
                l.model.outcome.vms_per_lun.lock_limit
            } else {
                None
            },
        }
    }

    /// Mean lock events per second per VM at increment `inc`.
    pub fn rate_per_vm(&self, inc: u64) -> f64 {
        let total: f64 = self
            .growths
            .iter()
            .filter(|(_, w)| *w > 0.0)
            .map(|&(g, w)| lun::events_per_vm(g, inc) as f64 / w)
            .sum();
        total / self.vms.max(1) as f64
    }

    /// Lock limit at increment `inc` under SCSI-2.
    pub fn lock_limit(&self, inc: u64) -> Option<u64> {
        lun::lock_limit(
            self.rate_per_vm(inc),
            self.params.hold,
            self.params.max_busy,
        )
    }

    fn x_max(&self) -> f64 {
        let mut m = self.now.max(10) as f64;
        for v in [self.lock_limit(self.increment), self.capacity_limit]
            .into_iter()
            .flatten()
        {
            m = m.max(v as f64);
        }
        (m * 1.4).ceil().min(100_000.0)
    }

    /// Top of the y axis: four times the target, or above the busy fraction now at `slope`
    /// per VM, at most 150 % (beyond that the LUN is saturated anyway).
    fn y_max(&self, slope: f64) -> f64 {
        (self.params.max_busy * 4.0)
            .max(slope * self.now as f64 * 1.15)
            .min(1.5)
    }

    fn title(&self, what: &str) -> String {
        let lun = if self.lun.is_empty() {
            String::new()
        } else {
            format!("LUN {}: ", self.lun)
        };
        format!("{lun}{what}")
    }

    fn growth_text(&self) -> String {
        match self.growths.as_slice() {
            [(g, w)] => format!("{} per VM in {}", format_size(*g), format_duration(*w)),
            many => format!("measured growth of {} VMs", many.len()),
        }
    }
}

/// Writes the increments chart to `path` (.svg or .png).
pub fn draw_increments(path: &Path, s: &Sensitivity) -> Result<()> {
    crate::chart::draw_to_file!(path, increments, s)
}

/// Writes the SCSI-2 against ATS chart to `path` (.svg or .png).
pub fn draw_locking(path: &Path, s: &Sensitivity) -> Result<()> {
    crate::chart::draw_to_file!(path, locking, s)
}

fn pct(v: f64) -> String {
    let p = v * 100.0;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.0} %")
    } else if p >= 0.1 {
        format!("{p:.1} %")
    } else {
        format!("{p:.2} %")
    }
}

type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The axes both charts share: VMs on the LUN against the share of time it is reserved.
fn frame<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    s: &Sensitivity,
    title: &str,
    x_max: f64,
    y_max: f64,
) -> std::result::Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut ch = ChartBuilder::on(root)
        .margin(16)
        // Room for the last x label, centred on the right edge.
        .margin_right(40)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .caption(s.title(title), (FONT, 22))
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    ch.configure_mesh()
        .x_desc("VMs on the LUN")
        .y_desc("share of time the LUN is reserved")
        .y_label_formatter(&|v| pct(*v))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(244, 244, 244))
        .draw()?;
    Ok(ch)
}

/// Where a line of `slope` leaves the chart: at its right edge, or at its top for steep lines.
fn line_end(slope: f64, x_max: f64, y_max: f64) -> f64 {
    if slope > 0.0 {
        (y_max / slope).min(x_max)
    } else {
        x_max
    }
}

/// The legend box both charts share, in the upper right.
fn legend<'a, DB: DrawingBackend + 'a>(
    ch: &mut Chart<'a, DB>,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    ch.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, 15))
        .draw()
}

/// Target line, limit markers and the current VM count, shared by both charts.
fn marks<DB: DrawingBackend>(
    ch: &mut Chart<'_, DB>,
    s: &Sensitivity,
    x_max: f64,
    y_max: f64,
    limits: &[(Option<u64>, String, RGBColor)],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let target = s.params.max_busy;
    ch.draw_series(DashedLineSeries::new(
        [(0.0, target), (x_max, target)],
        10,
        6,
        BLACK.stroke_width(2),
    ))?
    .label(format!("busy target {}", pct(target)))
    .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
    for (limit, label, color) in limits {
        let Some(n) = *limit else { continue };
        let x = n as f64;
        if x > x_max {
            continue;
        }
        let c = *color;
        ch.draw_series(LineSeries::new([(x, 0.0), (x, y_max)], c.stroke_width(2)))?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new([(x + 9, y - 7), (x + 9, y + 7)], c.stroke_width(2))
            });
        // The number sits at the foot of its line, clear of the legend in the upper right.
        ch.draw_series(std::iter::once(Text::new(
            format!(" {n}"),
            (x, y_max * 0.06),
            (FONT, 17).into_font().color(&c),
        )))?;
    }
    if s.now > 0 && (s.now as f64) <= x_max {
        let x = s.now as f64;
        ch.draw_series(LineSeries::new(
            [(x, 0.0), (x, y_max)],
            RGBColor(120, 120, 120).stroke_width(1),
        ))?
        .label(format!("VMs now: {}", s.now))
        .legend(|(x, y)| {
            PathElement::new([(x + 9, y - 7), (x + 9, y + 7)], RGBColor(120, 120, 120))
        });
    }
    Ok(())
}

fn increments<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Sensitivity,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let x_max = s.x_max();
    let h = s.params.hold;
    let y_max = s.y_max(s.rate_per_vm(s.increment) * h);
    let title = format!(
        "SCSI-2 busy fraction against VMs per LUN ({}, hold {})",
        s.growth_text(),
        format_duration(h)
    );
    let mut ch = frame(root, s, &title, x_max, y_max)?;
    for (k, mib) in INCREMENTS_MIB.iter().enumerate() {
        let inc = mib << 20;
        let slope = s.rate_per_vm(inc) * h;
        let color = COLORS[k];
        let limit = s
            .lock_limit(inc)
            .map(|n| format!("lock limit {n}"))
            .unwrap_or_else(|| "no lock limit".into());
        let models = inc == s.increment && s.per_format_lock_limit.is_none();
        let width = if models { 4 } else { 2 };
        let x_end = line_end(slope, x_max, y_max);
        ch.draw_series(LineSeries::new(
            [(0.0, 0.0), (x_end, slope * x_end)],
            color.stroke_width(width),
        ))?
        .label(format!(
            "increment {mib} MiB: {limit}{}",
            if models { " (the model's)" } else { "" }
        ))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(width)));
    }
    marks(
        &mut ch,
        s,
        x_max,
        y_max,
        &[
            match s.per_format_lock_limit {
                // The model's limit, whatever line it falls near (issue 17: a LUN of
                // SESparse and hosted deltas showed 16 MiB's limit as the model's).
                Some(n) => (
                    Some(n),
                    "lock limit of the model (each disk's format increment)".to_string(),
                    RGBColor(5, 113, 176),
                ),
                None => (
                    s.lock_limit(s.increment),
                    format!("lock limit at {}", format_size(s.increment)),
                    RGBColor(5, 113, 176),
                ),
            },
            (
                s.capacity_limit,
                "capacity limit".to_string(),
                RGBColor(26, 150, 65),
            ),
        ],
    )?;
    legend(&mut ch)
}

fn locking<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Sensitivity,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let x_max = s.x_max();
    let h = s.params.hold;
    let slope = s.rate_per_vm(s.increment) * h;
    let y_max = s.y_max(slope);
    let title = format!(
        "SCSI-2 reservations against ATS ({}, increment {}, hold {})",
        s.growth_text(),
        format_size(s.increment),
        format_duration(h)
    );
    let mut ch = frame(root, s, &title, x_max, y_max)?;
    let scsi = RGBColor(202, 0, 32);
    let x_end = line_end(slope, x_max, y_max);
    ch.draw_series(LineSeries::new(
        [(0.0, 0.0), (x_end, slope * x_end)],
        scsi.stroke_width(4),
    ))?
    .label("SCSI-2: every growth lock reserves the whole LUN")
    .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], scsi.stroke_width(4)));
    // Conflict probability 1 - exp(-rho): nearly rho while rho is small, below it after.
    let pts: Vec<(f64, f64)> = (0..=200)
        .map(|i| x_end * i as f64 / 200.0)
        .map(|x| (x, 1.0 - (-(slope * x)).exp()))
        .collect();
    ch.draw_series(DashedLineSeries::new(
        pts,
        6,
        5,
        scsi.mix(0.6).stroke_width(2),
    ))?
    .label("SCSI-2: chance a lock finds the LUN reserved")
    .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], scsi.mix(0.6).stroke_width(2)));
    let ats = RGBColor(26, 150, 65);
    ch.draw_series(LineSeries::new(
        [(0.0, 0.0), (x_max, 0.0)],
        ats.stroke_width(5),
    ))?
    .label("ATS: per-sector locks, LUN-wide busy fraction 0")
    .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], ats.stroke_width(5)));
    let (scsi_rec, _) = lun::recommend(s.lock_limit(s.increment), s.capacity_limit);
    marks(
        &mut ch,
        s,
        x_max,
        y_max,
        &[
            (
                scsi_rec,
                "SCSI-2: recommended VMs per LUN".to_string(),
                scsi,
            ),
            (
                s.capacity_limit,
                "ATS: recommended = capacity limit".to_string(),
                ats,
            ),
        ],
    )?;
    legend(&mut ch)
}

/// The increments chart as an SVG document in memory (for the HTML report).
pub fn increments_svg(s: &Sensitivity) -> Result<String> {
    super::svg_string(&format!("sensitivity chart of {}", s.lun), |root| {
        increments(root, s)
    })
}
