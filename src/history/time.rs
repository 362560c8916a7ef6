//! Times as people and other tools write them, read without guessing.
//!
//! - A time with a zone (`2026-11-01T08:00:00Z`, `+01:00`) is that instant.
//! - A time without one (`2026-11-01`, `2026-11-01 08:00:00`, RVTools' `1/11/2026 06:00:00`)
//!   is read in the [`Zone`] given by `--tz`: UTC unless told otherwise, and said so.
//! - A date written `A/B/YYYY` is day first or month first by [`DateOrder`] (`--date-order`);
//!   one only a single order can read (`13/11/2026`) is read that way, and an import that
//!   relied on that says so. `D.M.YYYY` is always day first; `YYYY/M/D` and `YYYY-M-D` are
//!   never ambiguous.

use std::fmt;

use chrono::{
    DateTime, FixedOffset, Local, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};

/// How times without a zone are read (`--tz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// Coordinated universal time (the default).
    #[default]
    Utc,
    /// The machine's local time (`TZ`, else /etc/localtime).
    Local,
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
}

impl Zone {
    /// Parses `UTC` (or `Z`), `local`, or an offset `+01:00`, `-0530`, `+1`.
    pub fn parse(text: &str) -> Result<Zone, String> {
        let t = text.trim();
        let bad = || {
            format!(
                "invalid time zone {text:?}: expected UTC, local (this machine's, from TZ) or an offset such as +01:00 or -05:30 (zone names are not read)"
            )
        };
        match t.to_ascii_lowercase().as_str() {
            "utc" | "z" | "gmt" => return Ok(Zone::Utc),
            "local" => return Ok(Zone::Local),
            _ => {}
        }
        let (sign, rest) = match t.as_bytes().first() {
            Some(b'+') => (1, &t[1..]),
            Some(b'-') => (-1, &t[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "0"),
        };
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(h) && digits(m)) {
            return Err(bad());
        }
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        FixedOffset::east_opt(sign * (h * 3600 + m * 60))
            .map(|o| {
                if o.local_minus_utc() == 0 {
                    Zone::Utc
                } else {
                    Zone::Fixed(o)
                }
            })
            .ok_or_else(bad)
    }

    /// The instant `t` stands for in this zone; a local time that a clock change skips or
    /// repeats is an error rather than a guess.
    pub fn resolve(self, t: NaiveDateTime) -> Result<DateTime<Utc>, String> {
        let r = match self {
            Zone::Utc => return Ok(t.and_utc()),
            Zone::Fixed(o) => o.from_local_datetime(&t).map(|t| t.with_timezone(&Utc)),
            Zone::Local => Local.from_local_datetime(&t).map(|t| t.with_timezone(&Utc)),
        };
        match r {
            LocalResult::Single(t) => Ok(t),
            LocalResult::Ambiguous(a, b) => Err(format!(
                "{t} happens twice in {self} (at {} and at {}, the clock went back): give the time with its offset",
                super::format_time(&a),
                super::format_time(&b)
            )),
            LocalResult::None => Err(format!(
                "{t} does not exist in {self} (the clock skipped it)"
            )),
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Utc => write!(f, "UTC"),
            Zone::Local => write!(f, "local time"),
            Zone::Fixed(o) => write!(f, "{o}"),
        }
    }
}

/// Which comes first in a date written `A/B/YYYY` (`--date-order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    /// Day, month, year: `1/11/2026` is 1 November 2026.
    Dmy,
    /// Month, day, year (US): `1/11/2026` is 11 January 2026.
    Mdy,
}

impl DateOrder {
    /// `day first` / `month first`.
    pub fn describe(self) -> &'static str {
        match self {
            DateOrder::Dmy => "day first",
            DateOrder::Mdy => "month first",
        }
    }

    /// `dmy` / `mdy`, as the flag takes it.
    pub fn flag(self) -> &'static str {
        match self {
            DateOrder::Dmy => "dmy",
            DateOrder::Mdy => "mdy",
        }
    }
}

/// A time as written, before the zone (and, for slash dates, the order) is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// It carried its zone: this instant.
    Instant(DateTime<Utc>),
    /// A date and time without a zone, in an unambiguous order.
    Naive(NaiveDateTime),
    /// `A/B/YYYY` and a time: day or month first is not written.
    Slash {
        /// The first number.
        a: u32,
        /// The second number.
        b: u32,
        /// The year.
        year: i32,
        /// The time of day.
        time: NaiveTime,
    },
}

impl Written {
    /// Reads `text` in any of the forms deltascope takes: RFC 3339; `YYYY-MM-DD` or
    /// `YYYY/MM/DD` with an optional time (`T` or a space, `HH:MM[:SS]`); `D.M.YYYY HH:MM[:SS]`;
    /// `A/B/YYYY` with an optional time, 24-hour or with AM/PM.
    pub fn parse(text: &str) -> Option<Written> {
        let s = text.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(Written::Instant(t.with_timezone(&Utc)));
        }
        // Years are four digits: chrono would read `1/2/26` as the year 1.
        let b = s.as_bytes();
        let year_first =
            b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b"-/".contains(&b[4]);
        let date_part = s.split(char::is_whitespace).next().unwrap_or("");
        let dotted = date_part
            .rsplit_once('.')
            .is_some_and(|(_, y)| y.len() == 4 && y.bytes().all(|c| c.is_ascii_digit()));
        if !(year_first || dotted) {
            return Written::parse_slash(s);
        }
        const NAIVE: &[&str] = &[
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
            "%Y/%m/%d %H:%M:%S",
            "%Y/%m/%d %H:%M",
            "%d.%m.%Y %H:%M:%S",
            "%d.%m.%Y %H:%M",
        ];
        if let Some(t) = NAIVE
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        {
            return Some(Written::Naive(t));
        }
        const DATES: &[&str] = &["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y"];
        if let Some(d) = DATES
            .iter()
            .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
        {
            return Some(Written::Naive(d.and_time(NaiveTime::MIN)));
        }
        None
    }

    /// `A/B/YYYY` and an optional time.
    fn parse_slash(s: &str) -> Option<Written> {
        let (date, time) = match s.split_once(char::is_whitespace) {
            Some((d, t)) => (d, t.trim()),
            None => (s, ""),
        };
        let mut parts = date.split('/');
        let (Some(a), Some(b), Some(y), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let num = |p: &str, max_len: usize| {
            (!p.is_empty() && p.len() <= max_len && p.bytes().all(|c| c.is_ascii_digit()))
                .then(|| p.parse::<u32>().ok())
                .flatten()
        };
        let (a, b) = (num(a, 2)?, num(b, 2)?);
        let year = (y.len() == 4).then(|| num(y, 4)).flatten()? as i32;
        let time = if time.is_empty() {
            NaiveTime::MIN
        } else {
            const TIMES: &[&str] = &["%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p"];
            TIMES
                .iter()
                .find_map(|f| NaiveTime::parse_from_str(time, f).ok())?
        };
        // At least one order must make a date.
        let w = Written::Slash { a, b, year, time };
        (w.in_order(DateOrder::Dmy).is_some() || w.in_order(DateOrder::Mdy).is_some()).then_some(w)
    }

    /// The date and time under `order` (`None`: not a date that way). Instants and
    /// unambiguous forms ignore the order.
    pub fn in_order(&self, order: DateOrder) -> Option<NaiveDateTime> {
        match *self {
            Written::Instant(t) => Some(t.naive_utc()),
            Written::Naive(t) => Some(t),
            Written::Slash { a, b, year, time } => {
                let (day, month) = match order {
                    DateOrder::Dmy => (a, b),
                    DateOrder::Mdy => (b, a),
                };
                NaiveDate::from_ymd_opt(year, month, day).map(|d| d.and_time(time))
            }
        }
    }

    /// The orders that can read it: both for a non-slash form or `5/5/2026`-like dates where
    /// both read the same, one when only that order makes a date, both when it is ambiguous.
    pub fn readings(&self) -> (bool, bool) {
        (
            self.in_order(DateOrder::Dmy).is_some(),
            self.in_order(DateOrder::Mdy).is_some(),
        )
    }

    /// Whether the order changes what it means.
    pub fn is_ambiguous(&self) -> bool {
        match (self.in_order(DateOrder::Dmy), self.in_order(DateOrder::Mdy)) {
            (Some(x), Some(y)) => x != y,
            _ => false,
        }
    }

    /// Whether the zone decides the instant (it was written without one).
    pub fn needs_zone(&self) -> bool {
        !matches!(self, Written::Instant(_))
    }

    /// The instant, under `order` and in `zone`.
    pub fn resolve(&self, order: DateOrder, zone: Zone) -> Result<DateTime<Utc>, String> {
        match self {
            Written::Instant(t) => Ok(*t),
            _ => match self.in_order(order) {
                Some(t) => zone.resolve(t),
                None => Err(format!("not a date {}", order.describe())),
            },
        }
    }
}

/// A time given on the command line: RFC 3339, or a date or date and time without a zone
/// (read in `zone`). Slash dates are refused here: there is no file to tell their order.
pub fn parse_arg(text: &str, zone: Zone) -> Result<DateTime<Utc>, String> {
    match Written::parse(text) {
        Some(Written::Slash { .. }) | None => Err(format!(
            "{text:?}: expected a time such as 2026-11-01T08:00:00Z, 2026-11-01 08:00 or a date 2026-11-01 (without a zone: read in --tz, UTC by default)"
        )),
        Some(w) => w.resolve(DateOrder::Dmy, zone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("rfc3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn zones_parse_and_resolve() {
        let t =
            NaiveDateTime::parse_from_str("2026-11-01 06:00:00", "%Y-%m-%d %H:%M:%S").expect("t");
        assert_eq!(Zone::parse("UTC"), Ok(Zone::Utc));
        assert_eq!(Zone::parse("+00:00"), Ok(Zone::Utc));
        for (text, want) in [
            ("+01:00", "2026-11-01T05:00:00Z"),
            ("+0100", "2026-11-01T05:00:00Z"),
            ("+1", "2026-11-01T05:00:00Z"),
            ("-05:30", "2026-11-01T11:30:00Z"),
        ] {
            let z = Zone::parse(text).expect(text);
            assert_eq!(z.resolve(t), Ok(utc(want)), "{text}");
        }
        assert_eq!(Zone::parse("-0530").expect("z").to_string(), "-05:30");
        for bad in ["Europe/Berlin", "+25:00", "1", "+1:60", ""] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slash_dates_follow_the_order() {
        let w = Written::parse("1/11/2026 06:00:00").expect("slash");
        assert!(w.is_ambiguous() && w.needs_zone());
        assert_eq!(
            w.resolve(DateOrder::Dmy, Zone::Utc),
            Ok(utc("2026-11-01T06:00:00Z"))
        );
        assert_eq!(
            w.resolve(DateOrder::Mdy, Zone::Utc),
            Ok(utc("2026-01-11T06:00:00Z"))
        );
        let w = Written::parse("13/11/2026 6:00").expect("slash");
        assert_eq!(w.readings(), (true, false));
        assert!(!w.is_ambiguous());
        let w = Written::parse("11/1/2026 8:00:00 PM").expect("slash");
        assert_eq!(
            w.resolve(DateOrder::Mdy, Zone::Utc),
            Ok(utc("2026-11-01T20:00:00Z"))
        );
        assert!(!Written::parse("5/5/2026").expect("slash").is_ambiguous());
        assert!(Written::parse("13/13/2026").is_none());
        assert!(Written::parse("1/2/26").is_none());
        assert!(Written::parse("1.2.26 08:00").is_none());
        assert!(Written::parse("26-1-2").is_none());
        for unambiguous in ["2026/11/01 06:00:00", "01.11.2026 06:00:00", "2026-11-01"] {
            assert!(
                matches!(Written::parse(unambiguous), Some(Written::Naive(_))),
                "{unambiguous}"
            );
        }
    }

    #[test]
    fn arguments_take_a_zone_or_tz() {
        assert_eq!(
            parse_arg("2026-11-01T09:00:00+01:00", Zone::Local),
            Ok(utc("2026-11-01T08:00:00Z"))
        );
        let plus2 = Zone::parse("+02:00").expect("z");
        assert_eq!(
            parse_arg("2026-11-01 08:00", plus2),
            Ok(utc("2026-11-01T06:00:00Z"))
        );
        assert_eq!(
            parse_arg("2026-11-01", Zone::Utc),
            Ok(utc("2026-11-01T00:00:00Z"))
        );
        assert!(parse_arg("1/11/2026", Zone::Utc).is_err());
        assert!(parse_arg("yesterday", Zone::Utc).is_err());
    }
}
