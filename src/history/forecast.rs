//! Projection of a disk's growth from its recorded points (the latest segment only: a
//! refreshed clone starts over). Two models are fitted by least squares, time in weeks:
//!
//! - linear: `bytes = a + b·t`;
//! - saturating: `bytes = C − (C − a)·e^(−k·t)`, approaching the expected ceiling `C` (the
//!   fresh-first limit from the latest scan), fitted as a line through `ln(C − bytes)`.
//!
//! The one with the smaller root-mean-square error in bytes is used (ties: linear). The band
//! is the usual prediction interval of a fitted line, ±1.96·s·√(1 + 1/n + (t − t̄)²/Sxx) with
//! the residual standard error s (in bytes, n − 2 degrees of freedom), so it needs three points;
//! with two it has no width. Growth never undoes itself within a segment, so the band is
//! clipped below at the last recorded size, and above at the hard ceiling.

//!
//! A pure model: recorded sizes and times in ([`Sample`]), a projection out; no store, no
//! I/O, no clock.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::units::{format_size, format_time};

/// One recorded size of a disk, as the model reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the disk had this size.
    pub at: DateTime<Utc>,
    /// Segment number (0 first); a new one starts when the delta shrank.
    pub segment: i64,
    /// The top layer's allocated bytes.
    pub bytes: u64,
    /// Expected ceiling if fresh-first allocation continues, when the scan knew it.
    pub expected_ceiling: Option<u64>,
    /// Hard ceiling, when the scan knew it.
    pub hard_ceiling: Option<u64>,
}

const WEEK: f64 = 7.0 * 86400.0;

/// A fitted model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// `a + b·t`.
    Linear,
    /// `C − (C − a)·e^(−k·t)`.
    Saturating,
}

/// One projected week.
#[derive(Debug, Clone, Serialize)]
pub struct Projected {
    /// When.
    #[serde(serialize_with = "ser")]
    pub at: DateTime<Utc>,
    /// Projected bytes.
    pub bytes: u64,
    /// Low end of the band.
    pub low: u64,
    /// High end of the band.
    pub high: u64,
}

fn ser<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(t))
}

fn ser_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_time(t)),
        None => s.serialize_none(),
    }
}

/// When the projection crosses each mark (null: not within reach of the model).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Crossings {
    /// 50 % of the ceiling.
    #[serde(serialize_with = "ser_opt")]
    pub ceiling_50: Option<DateTime<Utc>>,
    /// 80 % of the ceiling.
    #[serde(serialize_with = "ser_opt")]
    pub ceiling_80: Option<DateTime<Utc>>,
    /// The ceiling (a saturating model only approaches it: null).
    #[serde(serialize_with = "ser_opt")]
    pub ceiling_100: Option<DateTime<Utc>>,
    /// The budget (`--budget`).
    #[serde(serialize_with = "ser_opt")]
    pub budget: Option<DateTime<Utc>>,
}

/// A point as the forecast shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoint {
    /// When.
    #[serde(serialize_with = "ser")]
    pub at: DateTime<Utc>,
    /// Top layer's allocated bytes.
    pub bytes: u64,
}

/// The forecast of one disk.
#[derive(Debug, Clone, Serialize)]
pub struct DiskForecast {
    /// Disk identity.
    pub disk: String,
    /// The model used.
    pub model: Model,
    /// Why that model (fit errors).
    pub model_reason: String,
    /// RMS error of each model that could be fitted, in bytes.
    pub fit_rmse_bytes: FitErrors,
    /// The points fitted (the latest segment).
    pub points: Vec<SeriesPoint>,
    /// Expected ceiling (the crossings' 100 %), or the hard ceiling when no scan knew it.
    pub ceiling_bytes: Option<u64>,
    /// Hard ceiling (virtual size plus metadata).
    pub hard_ceiling_bytes: Option<u64>,
    /// The budget given.
    pub budget_bytes: Option<u64>,
    /// One entry per future week.
    pub forecast: Vec<Projected>,
    /// When marks are crossed.
    pub crossings: Crossings,
}

/// Fit errors.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FitErrors {
    /// Linear model.
    pub linear: Option<f64>,
    /// Saturating model (needs a ceiling above every point).
    pub saturating: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Line {
    a: f64,
    b: f64,
    n: f64,
    tbar: f64,
    sxx: f64,
}

fn fit_line(t: &[f64], y: &[f64]) -> Option<Line> {
    let n = t.len() as f64;
    let tbar = t.iter().sum::<f64>() / n;
    let ybar = y.iter().sum::<f64>() / n;
    let sxx: f64 = t.iter().map(|x| (x - tbar).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = t.iter().zip(y).map(|(x, v)| (x - tbar) * (v - ybar)).sum();
    let b = sxy / sxx;
    Some(Line {
        a: ybar - b * tbar,
        b,
        n,
        tbar,
        sxx,
    })
}

struct Fitted {
    model: Model,
    line: Line,
    c: f64,
    rmse: f64,
    /// Residual standard error (bytes), n − 2 degrees of freedom.
    s: f64,
}

impl Fitted {
    fn at(&self, t: f64) -> f64 {
        match self.model {
            Model::Linear => self.line.a + self.line.b * t,
            Model::Saturating => self.c - (self.line.a + self.line.b * t).exp(),
        }
    }
    fn half_band(&self, t: f64) -> f64 {
        let l = &self.line;
        1.96 * self.s * (1.0 + 1.0 / l.n + (t - l.tbar).powi(2) / l.sxx).sqrt()
    }
    /// Weeks until `target` bytes, if the model gets there.
    fn reaches(&self, target: f64) -> Option<f64> {
        let l = &self.line;
        match self.model {
            Model::Linear => (l.b > 0.0).then(|| (target - l.a) / l.b),
            Model::Saturating => {
                (target < self.c && l.b < 0.0).then(|| (((self.c - target).ln()) - l.a) / l.b)
            }
        }
    }
}

fn errors(f: &Fitted, t: &[f64], y: &[f64]) -> (f64, f64) {
    let sse: f64 = t.iter().zip(y).map(|(x, v)| (f.at(*x) - v).powi(2)).sum();
    let n = t.len() as f64;
    (
        (sse / n).sqrt(),
        if n > 2.0 {
            (sse / (n - 2.0)).sqrt()
        } else {
            0.0
        },
    )
}

/// The growth rate of the latest segment of `points` (one disk, oldest first), in bytes per
/// week: the slope of the least-squares line through its points, as the linear model of
/// [`forecast`] fits it. `None` with fewer than two points, or all at one time.
pub fn weekly_rate(points: &[Sample]) -> Option<f64> {
    let last_segment = points.last()?.segment;
    let pts: Vec<&Sample> = points
        .iter()
        .filter(|p| p.segment == last_segment)
        .collect();
    let t0 = pts.first()?.at;
    let t: Vec<f64> = pts
        .iter()
        .map(|p| (p.at - t0).num_seconds() as f64 / WEEK)
        .collect();
    let y: Vec<f64> = pts.iter().map(|p| p.bytes as f64).collect();
    (pts.len() >= 2)
        .then(|| fit_line(&t, &y))
        .flatten()
        .map(|l| l.b)
}

/// The fits of one disk's latest segment: the points, their times in weeks since the first,
/// the best model and the fit errors of both.
struct Fit<'a> {
    pts: Vec<&'a Sample>,
    t: Vec<f64>,
    best: Fitted,
    fit_errors: FitErrors,
    expected: Option<u64>,
    hard: Option<u64>,
}

fn fit(points: &[Sample]) -> Option<Fit<'_>> {
    let last_segment = points.last()?.segment;
    let pts: Vec<&Sample> = points
        .iter()
        .filter(|p| p.segment == last_segment)
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let t0 = pts[0].at;
    let t: Vec<f64> = pts
        .iter()
        .map(|p| (p.at - t0).num_seconds() as f64 / WEEK)
        .collect();
    let y: Vec<f64> = pts.iter().map(|p| p.bytes as f64).collect();
    let expected = pts.iter().rev().find_map(|p| p.expected_ceiling);
    let hard = pts.iter().rev().find_map(|p| p.hard_ceiling);
    let mut fits: Vec<Fitted> = Vec::new();
    let mut fit_errors = FitErrors::default();
    if let Some(line) = fit_line(&t, &y) {
        let mut f = Fitted {
            model: Model::Linear,
            line,
            c: 0.0,
            rmse: 0.0,
            s: 0.0,
        };
        (f.rmse, f.s) = errors(&f, &t, &y);
        fit_errors.linear = Some(f.rmse);
        fits.push(f);
    }
    if let Some(c) = expected
        .map(|c| c as f64)
        .filter(|c| y.iter().all(|v| v < c))
    {
        let ly: Vec<f64> = y.iter().map(|v| (c - v).ln()).collect();
        if let Some(line) = fit_line(&t, &ly) {
            let mut f = Fitted {
                model: Model::Saturating,
                line,
                c,
                rmse: 0.0,
                s: 0.0,
            };
            (f.rmse, f.s) = errors(&f, &t, &y);
            fit_errors.saturating = Some(f.rmse);
            fits.push(f);
        }
    }
    // Smallest error wins; on a tie the simpler linear model (fitted first) stays.
    let best = fits
        .into_iter()
        .reduce(|a, b| if b.rmse < a.rmse { b } else { a })?;
    Some(Fit {
        pts,
        t,
        best,
        fit_errors,
        expected,
        hard,
    })
}

/// A disk's forecast as a function of time, for figures the weekly forecast does not list
/// (a LUN's time to full, a refresh interval): the model `forecast` picks for the latest
/// segment, never below the last recorded size and never above the hard ceiling.
#[derive(Debug, Clone)]
pub struct Projection {
    model: Model,
    line: Line,
    c: f64,
    t0: DateTime<Utc>,
    last_at: DateTime<Utc>,
    last_bytes: u64,
    cap: f64,
}

impl Projection {
    /// The projection of `points` (one disk, oldest first); `None` with fewer than two
    /// points in the latest segment.
    pub fn of(points: &[Sample]) -> Option<Projection> {
        let f = fit(points)?;
        let last = f.pts[f.pts.len() - 1];
        Some(Projection {
            model: f.best.model,
            line: f.best.line,
            c: f.best.c,
            t0: f.pts[0].at,
            last_at: last.at,
            last_bytes: last.bytes,
            cap: f.hard.map_or(f64::INFINITY, |h| h as f64),
        })
    }

    /// The model used.
    pub fn model(&self) -> Model {
        self.model
    }

    /// When the last point fitted was recorded.
    pub fn last_at(&self) -> DateTime<Utc> {
        self.last_at
    }

    /// The last point's bytes.
    pub fn last_bytes(&self) -> u64 {
        self.last_bytes
    }

    fn weeks(&self, at: DateTime<Utc>) -> f64 {
        (at - self.t0).num_milliseconds() as f64 / 1000.0 / WEEK
    }

    fn raw(&self, t: f64) -> f64 {
        match self.model {
            Model::Linear => self.line.a + self.line.b * t,
            Model::Saturating => self.c - (self.line.a + self.line.b * t).exp(),
        }
    }

    /// Projected bytes at `at`: the model, at least the last recorded size (growth never
    /// undoes itself within a segment) and at most the hard ceiling.
    pub fn bytes_at(&self, at: DateTime<Utc>) -> f64 {
        self.raw(self.weeks(at))
            .max(self.last_bytes as f64)
            .min(self.cap)
    }

    /// Growth per week at the last point: the line's slope, or the saturating curve's
    /// slope there, `k·(C − y)`; never negative.
    pub fn rate_per_week(&self) -> f64 {
        let l = &self.line;
        let r = match self.model {
            Model::Linear => l.b,
            Model::Saturating => -l.b * (self.c - self.raw(self.weeks(self.last_at))),
        };
        r.max(0.0)
    }

    /// Weeks the model takes to grow from empty (0 bytes, a delta just refreshed) to
    /// `bytes`: `bytes / b` for a line, `−ln(1 − bytes / C) / k` for a saturating curve
    /// (`k = −b`); `None` when it never gets there (no growth, or `bytes` at or above the
    /// curve's ceiling).
    pub fn weeks_from_empty_to(&self, bytes: u64) -> Option<f64> {
        let l = &self.line;
        let b = bytes as f64;
        let w = match self.model {
            Model::Linear => (l.b > 0.0).then(|| b / l.b)?,
            // Both the logarithm and b are negative.
            Model::Saturating => {
                (l.b < 0.0 && b < self.c).then(|| (1.0 - b / self.c).ln() / l.b)?
            }
        };
        (w.is_finite() && b <= self.cap).then_some(w)
    }
}

/// Projects `points` (one disk, oldest first) `weeks` weeks past the last one.
pub fn forecast(
    disk: &str,
    points: &[Sample],
    weeks: u32,
    budget: Option<u64>,
) -> Option<DiskForecast> {
    let Fit {
        pts,
        t,
        best,
        fit_errors,
        expected,
        hard,
    } = fit(points)?;
    let t0 = pts[0].at;
    let last = pts[pts.len() - 1];
    let model_reason = match (fit_errors.linear, fit_errors.saturating) {
        (Some(l), Some(s)) => format!(
            "{} fits better: RMS error {} (linear) vs {} (saturating towards the expected ceiling)",
            if best.model == Model::Linear {
                "linear"
            } else {
                "saturating"
            },
            format_size(l as u64),
            format_size(s as u64)
        ),
        (Some(_), None) if expected.is_none() => {
            "linear: no expected ceiling recorded (imported sizes), so no saturating model".into()
        }
        (Some(_), None) => {
            "linear: a point reached the expected ceiling, so no saturating model".into()
        }
        _ => "saturating".into(),
    };
    let ceiling = expected.or(hard);
    let t_last = *t.last().unwrap_or(&0.0);
    let cap = hard.map(|h| h as f64).unwrap_or(f64::INFINITY);
    let forecast = (1..=weeks)
        .map(|w| {
            let tw = t_last + f64::from(w);
            let v = best.at(tw).max(last.bytes as f64).min(cap);
            let hb = best.half_band(tw);
            Projected {
                at: last.at + Duration::weeks(i64::from(w)),
                bytes: v as u64,
                low: (v - hb).max(last.bytes as f64).min(cap) as u64,
                high: (v + hb).min(cap).max(v) as u64,
            }
        })
        .collect();
    let when = |target: f64| -> Option<DateTime<Utc>> {
        if (last.bytes as f64) >= target {
            // Already past: the first recorded point at or over it.
            return pts.iter().find(|p| p.bytes as f64 >= target).map(|p| p.at);
        }
        let wk = best.reaches(target)?;
        if !wk.is_finite() || wk > 520.0 {
            return None; // more than ten years out: not a date worth printing
        }
        Some(t0 + Duration::seconds((wk * WEEK) as i64))
    };
    let crossings = Crossings {
        ceiling_50: ceiling.and_then(|c| when(c as f64 * 0.5)),
        ceiling_80: ceiling.and_then(|c| when(c as f64 * 0.8)),
        ceiling_100: ceiling.and_then(|c| when(c as f64)),
        budget: budget.and_then(|b| when(b as f64)),
    };
    Some(DiskForecast {
        disk: disk.to_string(),
        model: best.model,
        model_reason,
        fit_rmse_bytes: fit_errors,
        points: pts
            .iter()
            .map(|p| SeriesPoint {
                at: p.at,
                bytes: p.bytes,
            })
            .collect(),
        ceiling_bytes: ceiling,
        hard_ceiling_bytes: hard,
        budget_bytes: budget,
        forecast,
        crossings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(values: &[(u32, u64)], ceiling: Option<u64>) -> Vec<Sample> {
        let start = DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        values
            .iter()
            .map(|&(day, bytes)| Sample {
                at: start + Duration::days(i64::from(day)),
                segment: 0,
                bytes,
                expected_ceiling: ceiling,
                hard_ceiling: ceiling.map(|c| c * 2),
            })
            .collect()
    }

    #[test]
    fn a_straight_line_is_projected_as_one() {
        // 100, 200, 300 at weeks 0..2: slope 100 per week, exact fit.
        let f = forecast(
            "d",
            &pts(&[(0, 100), (7, 200), (14, 300)], None),
            2,
            Some(450),
        )
        .expect("forecast");
        assert_eq!(f.model, Model::Linear);
        assert_eq!(
            f.forecast.iter().map(|p| p.bytes).collect::<Vec<_>>(),
            [400, 500]
        );
        // 450 at week 3.5 = 24.5 days after 2026-10-01.
        assert_eq!(
            f.crossings.budget.map(|t| format_time(&t)),
            Some("2026-10-25T12:00:00Z".into())
        );
    }

    #[test]
    fn saturating_growth_is_recognised() {
        // C = 1000, C − y = 800·0.5^t: 200, 600, 800, 900.
        let f = forecast(
            "d",
            &pts(&[(0, 200), (7, 600), (14, 800), (21, 900)], Some(1000)),
            2,
            None,
        )
        .expect("forecast");
        assert_eq!(f.model, Model::Saturating);
        assert_eq!(
            f.forecast.iter().map(|p| p.bytes).collect::<Vec<_>>(),
            [950, 975]
        );
        assert!(f.crossings.ceiling_100.is_none());
        // 80 % = 800, already reached at day 14.
        assert_eq!(
            f.crossings.ceiling_80.map(|t| format_time(&t)),
            Some("2026-10-15T00:00:00Z".into())
        );
    }

    #[test]
    fn the_weekly_rate_is_the_slope_of_the_latest_segment() {
        // Segment 0: 500 at day 0. Segment 1: 100, 250, 300 at days 7, 14, 28, i.e. weeks
        // 0, 1, 3: t̄ = 4/3, ȳ = 650/3; Sxx = (16 + 1 + 25)/9 = 14/3, Sxy = (-4/3)(-350/3) +
        // (-1/3)(100/3) + (5/3)(250/3) = 2550/9 = 850/3: 850/14 = 425/7 bytes per week.
        let mut p = pts(&[(0, 500), (7, 100), (14, 250), (28, 300)], None);
        for x in &mut p[1..] {
            x.segment = 1;
        }
        let r = weekly_rate(&p).expect("rate");
        assert!((r - 425.0 / 7.0).abs() < 1e-9, "{r}");
        assert_eq!(weekly_rate(&p[..2]), None);
        assert_eq!(weekly_rate(&[]), None);
    }

    #[test]
    fn only_the_latest_segment_counts_and_two_points_are_needed() {
        let mut p = pts(&[(0, 500), (7, 100), (14, 200)], None);
        p[1].segment = 1;
        p[2].segment = 1;
        let f = forecast("d", &p, 1, None).expect("forecast");
        assert_eq!(f.points.len(), 2);
        assert_eq!(f.forecast[0].bytes, 300);
        assert!(forecast("d", &pts(&[(0, 1)], None), 1, None).is_none());
    }
}
