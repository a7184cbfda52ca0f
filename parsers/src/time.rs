//! Calendar arithmetic for syslog timestamps, without a time-zone database.
//!
//! Only civil-date → epoch conversion and its inverse are needed on the hot path; both are a few
//! integer operations (H. Hinnant's algorithms), far cheaper than a general date library.

pub const NS_PER_SEC: i64 = 1_000_000_000;

/// Days since 1970-01-01 for a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` for days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A civil date and time, validated, as UTC nanoseconds after subtracting `offset_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl Civil {
    /// Whether every part is in range (a leap second `:60` is accepted and folded into `:59`).
    pub fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60
            && self.nanos < 1_000_000_000
    }

    /// UTC nanoseconds since the epoch, for a time at `offset_secs` east of UTC.
    pub fn to_unix_ns(&self, offset_secs: i64) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second.min(59))
            - offset_secs;
        secs.saturating_mul(NS_PER_SEC)
            .saturating_add(i64::from(self.nanos))
    }
}

/// The year of a UTC nanosecond timestamp.
pub fn year_of(ns: i64) -> i64 {
    civil_from_days(ns.div_euclid(NS_PER_SEC * 86_400)).0
}

/// Month number (1–12) of a three-letter English month abbreviation, any case.
pub fn month_from_abbrev(s: &[u8]) -> Option<u32> {
    let m = match s {
        [a, b, c] => [
            a.to_ascii_lowercase(),
            b.to_ascii_lowercase(),
            c.to_ascii_lowercase(),
        ],
        _ => return None,
    };
    Some(match &m {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// A UTC offset: `Z`, `UTC`, `GMT`, `+07:00`, `+0700`, `-07`, `+7`. Seconds east of UTC.
pub fn parse_offset(s: &str) -> Option<i64> {
    let s = s.trim();
    if matches!(s, "Z" | "z" | "UTC" | "GMT" | "utc" | "gmt") {
        return Some(0);
    }
    let s = s
        .strip_prefix("UTC")
        .or_else(|| s.strip_prefix("GMT"))
        .unwrap_or(s);
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    // Digits only below; non-ASCII would also make the byte split below cut a character.
    if !rest.is_ascii() {
        return None;
    }
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    if h.is_empty() || h.len() > 2 || m.is_empty() || m.len() > 2 {
        return None;
    }
    let h: i64 = h.parse().ok()?;
    let m: i64 = m.parse().ok()?;
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// A date (`2019-05-10` or `2019/05/10`) and a time of day (`11:37:47`, optional fraction).
pub fn parse_date_time(date: &str, tod: &str) -> Option<Civil> {
    let d = date.as_bytes();
    if d.len() != 10 || !matches!(d[4], b'-' | b'/') || d[7] != d[4] {
        return None;
    }
    civil(
        i64::from(digits(&date[..4])?),
        digits(&date[5..7])?,
        digits(&date[8..10])?,
        tod,
    )
}

/// `MMM dd yyyy HH:mm:ss[.fff] [zone]`, the default time format of CEF `rt` and LEEF
/// `devTime`, as UTC nanoseconds; without a readable zone the time is UTC.
pub fn parse_month_day_year(v: &str) -> Option<i64> {
    let mut w = v.split_ascii_whitespace();
    let month = month_from_abbrev(w.next()?.as_bytes())?;
    let day = digits(w.next()?)?;
    let year = digits(w.next()?)?;
    let c = civil(i64::from(year), month, day, w.next()?)?;
    let offset = w.next().and_then(parse_offset).unwrap_or(0);
    Some(c.to_unix_ns(offset))
}

/// A date and a time of day (`11:37:47`, optional fraction up to nanoseconds), validated.
fn civil(year: i64, month: u32, day: u32, tod: &str) -> Option<Civil> {
    let (hms, frac) = tod.split_once('.').unwrap_or((tod, ""));
    let mut parts = hms.split(':');
    let hour = digits(parts.next()?)?;
    let minute = digits(parts.next()?)?;
    let second = digits(parts.next()?)?;
    if parts.next().is_some() || frac.len() > 9 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        digits(frac)? * 10u32.pow(9 - frac.len() as u32)
    };
    let c = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    c.is_valid().then_some(c)
}

/// A run of ASCII digits (no sign, no spaces) as a number.
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_dates() {
        assert_eq!(parse_offset("-0700"), Some(-7 * 3600));
        assert_eq!(parse_offset("+07:00"), Some(7 * 3600));
        assert_eq!(parse_offset("+0530"), Some(5 * 3600 + 1800));
        assert_eq!(parse_offset("UTC"), Some(0));
        assert_eq!(parse_offset("GMT+7"), Some(7 * 3600));
        assert_eq!(parse_offset("IST"), None);
        assert_eq!(parse_offset("+99:00"), None);
        let c = parse_date_time("2019/05/10", "11:37:47.25").expect("valid");
        assert_eq!(
            (c.year, c.month, c.day, c.second, c.nanos),
            (2019, 5, 10, 47, 250_000_000)
        );
        assert!(parse_date_time("2019-02-30", "11:37:47").is_none());
        assert!(parse_date_time("2019-05-10", "25:00:00").is_none());
        assert!(parse_date_time("2019-5-10", "11:00:00").is_none());
        // Times of day: two-digit and one-digit fields, fractions; anything else is refused.
        for (tod, want) in [
            ("09:05:07", Some((9, 5, 7, 0))),
            ("9:5:7", Some((9, 5, 7, 0))),
            ("09:05:07.5", Some((9, 5, 7, 500_000_000))),
            ("09:05:0x", None),
            ("09-05-07", None),
            ("09:05:07:01", None),
            ("09:60:07", None),
        ] {
            let got =
                parse_date_time("2019-05-10", tod).map(|c| (c.hour, c.minute, c.second, c.nanos));
            assert_eq!(got, want, "{tod}");
        }
    }

    #[test]
    fn offsets_with_non_ascii_are_rejected_not_split() {
        // Found by the `sophos` fuzz target: a four-byte rest whose byte 2 is inside a
        // character (a replacement character from invalid UTF-8).
        assert_eq!(parse_offset("+\u{fffd}\u{17}"), None);
        assert_eq!(parse_offset("+0é"), None);
        assert_eq!(parse_offset("-０７００"), None);
    }

    #[test]
    fn month_day_year() {
        let utc = parse_month_day_year("Nov 23 2026 10:00:00").expect("valid");
        assert_eq!(utc, 1_795_428_000 * NS_PER_SEC);
        assert_eq!(
            parse_month_day_year("nov 23 2026 17:00:00.5 +07:00"),
            Some(utc + NS_PER_SEC / 2)
        );
        assert_eq!(parse_month_day_year("Nov 31 2026 10:00:00"), None);
        assert_eq!(parse_month_day_year("Nov 23 10:00:00"), None);
        assert_eq!(parse_month_day_year("Xyz 23 2026 10:00:00"), None);
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000i64, -1, 0, 1, 365, 19_000, 20_415, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn offsets_are_subtracted() {
        let c = Civil {
            year: 2026,
            month: 11,
            day: 23,
            hour: 7,
            minute: 0,
            second: 0,
            nanos: 5,
        };
        assert_eq!(
            c.to_unix_ns(7 * 3600),
            c.to_unix_ns(0) - 7 * 3600 * NS_PER_SEC
        );
        assert_eq!(year_of(c.to_unix_ns(0)), 2026);
    }
}
