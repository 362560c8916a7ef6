//! Units of the disk: sectors, human sizes (`2GiB`, `2GB`) and durations for input and output,
//! and the one way times are written (RFC 3339, UTC).
//!
//! JSON always carries plain byte integers; binary units appear only in text for people.

/// RFC 3339 in UTC, seconds precision: `2026-11-01T08:00:00Z` (how JSON and CSV write times).
pub fn format_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Bytes per sector in every VMDK format (FORMATS.md, introduction).
pub const SECTOR: u64 = 512;

/// Parses a size such as `16MiB`, `2GB`, `4096` or `0x1000` into bytes, following the unit
/// written: `KiB`, `MiB`, `GiB`, `TiB`, `PiB` are binary (2^10, 2^20, ...), `KB`, `MB`, `GB`,
/// `TB`, `PB` decimal (10^3, 10^6, ...), without regard to case; `B` or nothing is bytes.
///
/// A bare `K`, `M`, `G`, `T` or `P` is refused: people write `2G` for both 2 GiB and 2 GB,
/// and a size read the other way is off by 7 % (GiB) to 13 % (PiB) without a word. The
/// error keeps the user's text and shows both readings.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "invalid size {text:?}: expected a number of bytes with an optional unit: binary KiB, MiB, GiB, TiB (2^10 ...) or decimal KB, MB, GB, TB (10^3 ...), such as 4096, 64KiB, 2GiB or 2GB"
        )
    };
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| bad());
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let suffix = suffix.trim();
    const PREFIXES: [char; 5] = ['k', 'm', 'g', 't', 'p'];
    let lower = suffix.to_ascii_lowercase();
    let mult: u64 = match lower.as_str() {
        "" | "b" => 1,
        _ => {
            let mut chars = lower.chars();
            let Some(power) = chars
                .next()
                .and_then(|p| PREFIXES.iter().position(|&q| q == p))
            else {
                return Err(bad());
            };
            let power = power as u32 + 1;
            match chars.as_str() {
                "ib" => 1u64 << (10 * power),
                "b" => 1000u64.pow(power),
                "" if !num.is_empty() => {
                    let p = &suffix[..1].to_ascii_uppercase();
                    return Err(format!(
                        "size {text:?} is ambiguous: write {num}{p}iB for {num} x 2^{} bytes or {num}{p}B for {num} x 10^{} bytes",
                        10 * power,
                        3 * power
                    ));
                }
                _ => return Err(bad()),
            }
        }
    };
    if num.is_empty() {
        return Err(bad());
    }
    if num.contains('.') {
        let v: f64 = num.parse().map_err(|_| bad())?;
        let bytes = v * mult as f64;
        if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) {
            return Err(bad());
        }
        Ok(bytes.round() as u64)
    } else {
        let v: u64 = num.parse().map_err(|_| bad())?;
        v.checked_mul(mult).ok_or_else(bad)
    }
}

/// Formats bytes in binary units with one decimal (`1.5 GiB`), exact below 1 KiB.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Formats a share as a percentage with one decimal; `-` when the whole is zero.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Parses a duration such as `2m`, `300us`, `1.5ms`, `120s`, `8h`, `1d`, `4w` or `120`
/// (seconds) into seconds. `m` is minutes; there are no months (their length varies).
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "invalid duration {text:?}: expected a number with a unit: us, ms, s, m (minutes), h, d or w, such as 300us, 2m or 4w"
        )
    };
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "us" | "\u{b5}s" | "\u{3bc}s" | "usec" => 1e-6,
        "ms" | "msec" => 1e-3,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        _ => return Err(bad()),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let secs = v * scale;
    if secs.is_finite() && secs >= 0.0 {
        Ok(secs)
    } else {
        Err(bad())
    }
}

/// Formats seconds for people: `300 us`, `2.0 min`, `4.0 weeks`.
pub fn format_duration(secs: f64) -> String {
    if secs < 1e-3 {
        format!("{:.0} us", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else if secs < 120.0 {
        format!("{secs:.1} s")
    } else if secs < 7200.0 {
        format!("{:.1} min", secs / 60.0)
    } else if secs < 2.0 * 86_400.0 {
        format!("{:.1} h", secs / 3600.0)
    } else if secs < 14.0 * 86_400.0 {
        format!("{:.1} days", secs / 86_400.0)
    } else {
        format!("{:.1} weeks", secs / 604_800.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_unit_written() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("16MB"), Ok(16_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("2gb"), Ok(2_000_000_000));
        assert_eq!(parse_size("2 KB"), Ok(2000));
        assert_eq!(parse_size("2kB"), Ok(2000));
        assert_eq!(parse_size("1TB"), Ok(1_000_000_000_000));
        assert_eq!(parse_size("1PiB"), Ok(1 << 50));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("1.5KB"), Ok(1500));
        assert_eq!(parse_size("0x200"), Ok(512));
        let e = parse_size("2G").unwrap_err();
        assert!(
            e.contains("2GiB") && e.contains("2GB") && e.contains("ambiguous"),
            "{e}"
        );
        assert!(parse_size("16m").unwrap_err().contains("16MiB"));
        assert!(parse_size("12 apples").unwrap_err().contains("12 apples"));
        assert!(parse_size("G").is_err());
        assert!(parse_size("2Gi").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn formats_binary_units() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(3 << 30), "3.0 GiB");
        assert_eq!(percent(1, 4), "25.0%");
        assert_eq!(percent(1, 0), "-");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("2m"), Ok(120.0));
        assert_eq!(parse_duration("120"), Ok(120.0));
        assert!((parse_duration("300us").unwrap() - 3e-4).abs() < 1e-15);
        assert!((parse_duration("1.5ms").unwrap() - 1.5e-3).abs() < 1e-15);
        assert_eq!(parse_duration("4w"), Ok(4.0 * 604_800.0));
        assert_eq!(parse_duration("1d"), Ok(86_400.0));
        assert!(
            parse_duration("2 fortnights")
                .unwrap_err()
                .contains("fortnights")
        );
        assert!(parse_duration("-1s").is_err());
        assert_eq!(format_duration(3e-4), "300 us");
        assert_eq!(format_duration(120.0), "2.0 min");
    }
}
