//! Time zones for syslog timestamps that carry none (RFC 3164, FortiGate `date`/`time`, PAN-OS).
//!
//! A listener (and, later, an inventory entry) names a zone: `UTC`, a fixed offset (`+07:00`)
//! or an IANA name (`Asia/Ho_Chi_Minh`, from the time-zone database built into the binary, so a
//! machine without tzdata behaves the same). The parsers take a plain offset; it is looked up
//! once per received chunk, at the receive time. A message delayed across a daylight-saving
//! change by more than the chunk's age would get the new offset: a bounded, documented error
//! for zones that have DST (Vietnam has none).

use std::fmt;

/// A time zone for zone-less device timestamps.
#[derive(Clone, PartialEq)]
pub enum Zone {
    Fixed(i64),
    Named(jiff::tz::TimeZone, String),
}

impl Default for Zone {
    fn default() -> Self {
        Zone::Fixed(0)
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Fixed(secs) => write!(f, "Fixed({secs})"),
            Zone::Named(_, name) => write!(f, "Named({name})"),
        }
    }
}

impl Zone {
    /// `UTC`, `+07:00`, `-0530`, `GMT+7` or an IANA zone name.
    pub fn parse(s: &str) -> Result<Zone, String> {
        if let Some(secs) = canh_parsers::time::parse_offset(s) {
            return Ok(Zone::Fixed(secs));
        }
        jiff::tz::TimeZone::get(s)
            .map(|tz| Zone::Named(tz, s.to_string()))
            .map_err(|_| format!("{s:?} is not a UTC offset (\"+07:00\") or a time zone name (\"Asia/Ho_Chi_Minh\")"))
    }

    /// Seconds east of UTC at the instant `ns` (UTC nanoseconds).
    pub fn offset_at(&self, ns: i64) -> i64 {
        match self {
            Zone::Fixed(secs) => *secs,
            Zone::Named(tz, _) => {
                let ts = jiff::Timestamp::from_nanosecond(i128::from(ns))
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                i64::from(tz.to_offset(ts).seconds())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_names() {
        assert_eq!(Zone::parse("+07:00").map(|z| z.offset_at(0)), Ok(7 * 3600));
        assert_eq!(Zone::parse("UTC").map(|z| z.offset_at(0)), Ok(0));
        let hcm = Zone::parse("Asia/Ho_Chi_Minh").expect("bundled tzdb");
        assert_eq!(hcm.offset_at(1_795_435_200_000_000_000), 7 * 3600);
        // New York: EST in November, EDT in July.
        let ny = Zone::parse("America/New_York").expect("bundled tzdb");
        assert_eq!(ny.offset_at(1_795_435_200_000_000_000), -5 * 3600);
        assert_eq!(ny.offset_at(1_783_000_000_000_000_000), -4 * 3600);
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(Zone::parse("IST").is_err());
    }
}
