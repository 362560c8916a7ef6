//! When a LUN fills, from its deltas' forecasts, and how often a delta must be refreshed to
//! stay under a budget. A pure model: projections and sizes in, dates out; no store, no
//! clock ("now" is the latest point recorded of the LUN's deltas).
//!
//! The LUN is full when its deltas hold `lun_size x (1 - headroom)` bytes (the capacity
//! limit's usable space, docs/MODEL.md). Two dates:
//!
//! - **forecast** ([`Fill::full_at`]): each delta with a forecast follows it
//!   ([`Projection::bytes_at`]); a delta without one (fewer than two points in its latest
//!   segment) stays at its size now.
//! - **worst case** ([`Fill::full_at_worst`]): no delta slows down before its expected
//!   ceiling. A delta with a forecast grows at its rate at the last point (a straight line
//!   from its last size) until its expected ceiling, and never less than its forecast; a
//!   delta without a forecast is at its expected ceiling already. A delta whose expected
//!   ceiling is not known follows its forecast (or stays at its size). So the worst case
//!   is never later than the forecast; for deltas that grow in a straight line it differs
//!   only by the deltas whose growth is not known.
//!
//! A date is `None` when the deltas do not reach the usable space within ten years (as
//! `forecast`'s crossings), or when no delta has a forecast (nothing says when).

use chrono::{DateTime, Duration, Utc};

use super::forecast::Projection;

/// The horizon: ten years, in seconds (520 weeks, as the forecast's crossings).
const HORIZON_SECONDS: i64 = 520 * 7 * 86400;

/// One delta of the LUN, as the model sees it.
#[derive(Debug, Clone, Copy)]
pub enum Occupant<'a> {
    /// A delta with a forecast, and its expected ceiling when known.
    Projected(&'a Projection, Option<u64>),
    /// A delta without one: its size now, and its expected ceiling when known.
    Fixed(u64, Option<u64>),
}

impl Occupant<'_> {
    /// Bytes at `at` as forecast.
    fn forecast(&self, at: DateTime<Utc>) -> f64 {
        match self {
            Occupant::Projected(p, _) => p.bytes_at(at),
            Occupant::Fixed(b, _) => *b as f64,
        }
    }

    /// Bytes at `at` in the worst case.
    fn worst(&self, at: DateTime<Utc>) -> f64 {
        match *self {
            Occupant::Projected(p, ceiling) => {
                let f = p.bytes_at(at);
                let Some(c) = ceiling else { return f };
                let weeks = (at - p.last_at()).num_milliseconds() as f64 / 1000.0 / (7.0 * 86400.0);
                let line = p.last_bytes() as f64 + p.rate_per_week() * weeks.max(0.0);
                f.max(line.min(c as f64))
            }
            Occupant::Fixed(b, ceiling) => b.max(ceiling.unwrap_or(0)) as f64,
        }
    }
}

/// When a LUN fills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fill {
    /// As forecast.
    pub full_at: Option<DateTime<Utc>>,
    /// In the worst case.
    pub full_at_worst: Option<DateTime<Utc>>,
}

/// The first time from `start` on at which `bytes(t)`, a non-decreasing function of time,
/// reaches `usable`, to the second; `None` past the horizon.
fn first_reach(
    start: DateTime<Utc>,
    usable: f64,
    bytes: impl Fn(DateTime<Utc>) -> f64,
) -> Option<DateTime<Utc>> {
    let at = |s: i64| start + Duration::seconds(s);
    if bytes(start) >= usable {
        return Some(start);
    }
    if bytes(at(HORIZON_SECONDS)) < usable {
        return None;
    }
    // Not reached at `lo`, reached at `hi`.
    let (mut lo, mut hi) = (0i64, HORIZON_SECONDS);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if bytes(at(mid)) >= usable {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(at(hi))
}

/// When the deltas of a LUN hold `usable` bytes, as forecast and in the worst case, counted
/// from the latest point recorded of any of them. Both `None` when no delta has a forecast.
pub fn time_to_full(deltas: &[Occupant], usable: f64) -> Fill {
    let Some(start) = deltas
        .iter()
        .filter_map(|d| match d {
            Occupant::Projected(p, _) => Some(p.last_at()),
            Occupant::Fixed(..) => None,
        })
        .max()
    else {
        return Fill::default();
    };
    let sum = |f: &dyn Fn(&Occupant) -> f64| deltas.iter().map(f).sum::<f64>();
    Fill {
        full_at: first_reach(start, usable, |t| sum(&|d| d.forecast(t))),
        full_at_worst: first_reach(start, usable, |t| sum(&|d| d.worst(t))),
    }
}

/// Days between refreshes that keep a delta under `budget`: the time its forecast takes to
/// grow from empty (a refresh reverts the delta to its parent) to the budget
/// ([`Projection::weeks_from_empty_to`]); `None` when it never gets there.
pub fn refresh_every_days(p: &Projection, budget: u64) -> Option<f64> {
    p.weeks_from_empty_to(budget).map(|w| w * 7.0)
}

#[cfg(test)]
mod tests {
    use super::super::forecast::Sample;
    use super::*;

    const MIB: u64 = 1 << 20;

    fn t(day: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc)
            + Duration::days(day)
    }

    fn series(points: &[(i64, u64)], expected: Option<u64>, hard: Option<u64>) -> Projection {
        let s: Vec<Sample> = points
            .iter()
            .map(|&(day, bytes)| Sample {
                at: t(day),
                segment: 0,
                bytes,
                expected_ceiling: expected,
                hard_ceiling: hard,
            })
            .collect();
        Projection::of(&s).expect("projection")
    }

    #[test]
    fn two_lines_and_a_fixed_delta_fill_when_their_sum_reaches_the_usable_space() {
        // A: 0, 2, 4 MiB on days 0, 2, 4: 1 MiB a day. B: 0, 1, 2 MiB: 0.5 MiB a day.
        // C: 1 MiB, no history, expected ceiling 63 MiB.
        let a = series(&[(0, 0), (2, 2 * MIB), (4, 4 * MIB)], None, None);
        let b = series(&[(0, 0), (2, MIB), (4, 2 * MIB)], None, None);
        let d = [
            Occupant::Projected(&a, Some(63 * MIB)),
            Occupant::Projected(&b, Some(63 * MIB)),
            Occupant::Fixed(MIB, Some(63 * MIB)),
        ];
        // Usable 80 MiB (a 100 MiB LUN, 20 % headroom). Forecast from day 4: 4 + 2 + 1 = 7
        // MiB, growing 1.5 MiB a day: 73 / 1.5 = 48 2/3 days: day 52, 16:00.
        // Worst: C at 63 MiB, so 4 + 2 + 63 = 69 MiB: 11 / 1.5 = 7 1/3 days: day 11, 08:00
        // (A and B grow in straight lines: their worst case is their forecast).
        let f = time_to_full(&d, 80.0 * MIB as f64);
        let near = |got: Option<DateTime<Utc>>, want: DateTime<Utc>| {
            (got.expect("a date") - want).num_seconds().abs() <= 1
        };
        assert!(near(f.full_at, t(52) + Duration::hours(16)), "{f:?}");
        assert!(near(f.full_at_worst, t(11) + Duration::hours(8)), "{f:?}");
        // Already over: the start itself. Out of reach in ten years: none.
        assert_eq!(time_to_full(&d, 5.0 * MIB as f64).full_at, Some(t(4)));
        let g = time_to_full(&d, 1e18);
        assert_eq!(g, Fill::default());
        // No forecast at all: no date.
        assert_eq!(
            time_to_full(&[Occupant::Fixed(MIB, Some(MIB))], 0.5),
            Fill::default()
        );
    }

    #[test]
    fn the_worst_case_does_not_slow_down_before_the_expected_ceiling() {
        // C = 1000 bytes, C - y = 800 x 0.5^w at weeks 0..3: 200, 600, 800, 900. The
        // saturating curve: rate at the last point = ln 2 x (1000 - 900) = 69.31 per week.
        let s = series(
            &[(0, 200), (7, 600), (14, 800), (21, 900)],
            Some(1000),
            Some(2000),
        );
        assert_eq!(s.model(), super::super::forecast::Model::Saturating);
        assert!((s.rate_per_week() - 100.0 * 2f64.ln()).abs() < 1e-6);
        // Forecast: 950 at week 4 (day 28). Worst: 900 + 69.31 x w reaches 950 after
        // 50 / 69.31 = 0.7213 weeks = 5.049 days.
        let d = [Occupant::Projected(&s, Some(1000))];
        let f = time_to_full(&d, 950.0);
        let days =
            |x: Option<DateTime<Utc>>| (x.expect("date") - t(21)).num_seconds() as f64 / 86400.0;
        assert!((days(f.full_at) - 7.0).abs() < 1e-4, "{f:?}");
        assert!((days(f.full_at_worst) - 50.0 / (100.0 * 2f64.ln()) * 7.0).abs() < 1e-4);
        // Past the expected ceiling the worst case stops; the curve never gets there.
        assert_eq!(time_to_full(&d, 1000.5), Fill::default());
    }

    #[test]
    fn refresh_interval_is_the_time_from_empty_to_the_budget() {
        // A line of 1 MiB a day: 12 MiB after 12 days.
        let a = series(&[(0, 0), (2, 2 * MIB), (4, 4 * MIB)], None, None);
        let d = refresh_every_days(&a, 12 * MIB).expect("days");
        assert!((d - 12.0).abs() < 1e-9, "{d}");
        // The saturating curve above, k = ln 2 per week: from 0 to 750 of C = 1000 takes
        // -ln(1 - 0.75) / ln 2 = 2 weeks = 14 days; it never reaches 1000.
        let s = series(
            &[(0, 200), (7, 600), (14, 800), (21, 900)],
            Some(1000),
            Some(2000),
        );
        let d = refresh_every_days(&s, 750).expect("days");
        assert!((d - 14.0).abs() < 1e-6, "{d}");
        assert_eq!(refresh_every_days(&s, 1000), None);
        // No growth: never.
        let flat = series(&[(0, MIB), (7, MIB)], None, None);
        assert_eq!(refresh_every_days(&flat, 2 * MIB), None);
    }
}
