//! RFC 3164 ("BSD syslog") and the variants devices really send.
//!
//! ```text
//! [<PRI>] [SEQ: ] [*|.]TIMESTAMP[:] [HOSTNAME [:]] [TAG[[PID]]:] MSG
//! ```
//!
//! Timestamps accepted: `Mmm dd hh:mm:ss` (day space- or zero-padded), with optional fraction,
//! optional year after the day (`Mmm dd yyyy hh:mm:ss`, Cisco ASA), optional zone abbreviation
//! (`UTC`, Cisco IOS), `yyyy Mmm dd hh:mm:ss`, and RFC 3339 (`2026-11-23T10:00:00.1+07:00`, as
//! rsyslog and syslog-ng forward). A leading `*` or `.` (Cisco: clock not or once synchronised)
//! and a Cisco sequence number (`123: `) are skipped.
//!
//! Year: when the timestamp has none, it is the latest year that does not put the event more than
//! a week after the receive time: a `Dec 31` line received on 1 January (or on 23 November) lands
//! in the old year, a `Jan 1` line received at 23:59 on 31 December in the new one.
//! Zone: when the timestamp has none, `tz_offset_secs` applies (UTC unless configured).

use super::{parse_pri, ErrorKind, Syslog, SyslogError};
use crate::time::{month_from_abbrev, year_of, Civil, NS_PER_SEC};

/// How far after the receive time a year-less timestamp may lie (device clocks run ahead a bit;
/// further than this, the event is taken to be from the year before).
const FUTURE_TOLERANCE_NS: i64 = 7 * 86_400 * NS_PER_SEC;

/// How to read the parts RFC 3164 leaves unspecified.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Receive time (UTC ns), to infer the year.
    pub received_ns: i64,
    /// Offset east of UTC for timestamps without a zone.
    pub tz_offset_secs: i64,
    /// Require `<PRI>`, a timestamp and a hostname.
    pub strict: bool,
}

/// What a lenient parse could not find; the message is still usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Priority,
    Timestamp,
}

impl Missing {
    pub fn describe(self) -> &'static str {
        match self {
            Missing::Priority => "no priority",
            Missing::Timestamp => "no timestamp",
        }
    }
}

/// Parses one RFC 3164 message. `Ok` may still report one missing part (lenient mode only).
pub fn parse<'a>(
    line: &'a [u8],
    opts: &Options,
) -> Result<(Syslog<'a>, Option<Missing>), SyslogError> {
    let mut msg = Syslog::default();
    let mut missing = None;
    let mut rest = match parse_pri(line) {
        Ok((pri, rest)) => {
            msg.priority = Some(pri);
            rest
        }
        Err(e) if opts.strict => return Err(e),
        Err(_) => {
            missing = Some(Missing::Priority);
            line
        }
    };
    let col = |r: &[u8]| -> usize { line.len() - r.len() };

    rest = skip_sequence_number(rest);
    // Cisco with `logging origin-id hostname`: "host: *Mmm dd hh:mm:ss.mmm: %FAC-…".
    let mut origin = None;
    let stamped = timestamp(rest, opts).or_else(|| {
        let (tok, after_tok) = split_token(rest);
        let host = tok
            .strip_suffix(b":")
            .filter(|h| !h.is_empty() && is_hostname(h))?;
        let found = timestamp(skip_spaces(after_tok), opts)?;
        origin = std::str::from_utf8(host).ok();
        Some(found)
    });
    let Some((ts, after)) = stamped else {
        if opts.strict || missing.is_some() {
            let kind = if missing.is_some() {
                ErrorKind::Priority
            } else {
                ErrorKind::Timestamp
            };
            return Err(SyslogError {
                kind,
                col: col(rest),
            });
        }
        msg.message = Some(rest);
        return Ok((msg, Some(Missing::Timestamp)));
    };
    msg.timestamp_ns = Some(ts);
    rest = after.strip_prefix(b":").unwrap_or(after);
    rest = skip_spaces(rest);

    let (first, after_first) = split_token(rest);
    if origin.is_some() {
        msg.hostname = origin;
    } else if !first.is_empty() && tag(first, after_first).is_none() && is_hostname(first) {
        msg.hostname = std::str::from_utf8(first).ok();
        rest = skip_spaces(after_first);
        // Cisco ASA with `logging device-id`: "fw01 : %ASA-…".
        if let Some(r) = rest.strip_prefix(b": ") {
            rest = r;
        }
    } else if opts.strict {
        return Err(SyslogError {
            kind: ErrorKind::Hostname,
            col: col(rest),
        });
    }

    let (word, after_word) = split_token(rest);
    if let Some((app, pid, after_tag)) = tag(word, after_word) {
        msg.appname = Some(app);
        msg.procid = pid;
        rest = after_tag.strip_prefix(b" ").unwrap_or(after_tag);
    }
    msg.message = Some(rest);
    Ok((msg, missing))
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    &s[n..]
}

/// The bytes up to the next space, and the rest (starting at that space).
fn split_token(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
    s.split_at(n)
}

/// `123: ` as Cisco IOS prefixes with `service sequence-numbers`.
fn skip_sequence_number(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n > 0 && n <= 10 && s.get(n) == Some(&b':') && s.get(n + 1) == Some(&b' ') {
        &s[n + 2..]
    } else {
        s
    }
}

fn is_hostname(t: &[u8]) -> bool {
    t.len() <= 255
        && t.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'@' | b'/')
        })
        && !t.ends_with(b":")
}

/// A TAG: `app:`, `app[pid]:` (the token as split at the next space, plus the rest of the line).
/// Returns `(app, pid, rest after the colon)`.
fn tag<'a>(token: &'a [u8], after: &'a [u8]) -> Option<(&'a str, Option<&'a str>, &'a [u8])> {
    let first = *token.first()?;
    if !(first.is_ascii_alphanumeric() || first == b'_' || first == b'/') {
        return None;
    }
    let name_len = token.iter().position(|&b| b == b'[' || b == b':')?;
    let name = &token[..name_len];
    if name.is_empty() || name.len() > 48 {
        return None;
    }
    let (pid, tail) = if token[name_len] == b'[' {
        let close = token[name_len..].iter().position(|&b| b == b']')? + name_len;
        (Some(&token[name_len + 1..close]), &token[close + 1..])
    } else {
        (None, &token[name_len..])
    };
    if tail != b":" {
        return None;
    }
    let app = std::str::from_utf8(name).ok()?;
    let pid = match pid {
        Some(p) if !p.is_empty() => Some(std::str::from_utf8(p).ok()?),
        _ => None,
    };
    Some((app, pid, after))
}

struct Digits<'a>(&'a [u8]);

impl<'a> Digits<'a> {
    fn take(&mut self, min: usize, max: usize) -> Option<u32> {
        let n = self
            .0
            .iter()
            .take(max)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n < min {
            return None;
        }
        let v = self.0[..n]
            .iter()
            .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
        self.0 = &self.0[n..];
        Some(v)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.0 = self.0.strip_prefix(&[b])?;
        Some(())
    }

    fn eat_spaces(&mut self) -> usize {
        let n = self.0.iter().take_while(|&&b| b == b' ').count();
        self.0 = &self.0[n..];
        n
    }

    /// `hh:mm:ss[.fraction]`
    fn time(&mut self) -> Option<(u32, u32, u32, u32)> {
        let h = self.take(2, 2)?;
        self.eat(b':')?;
        let m = self.take(2, 2)?;
        self.eat(b':')?;
        let s = self.take(2, 2)?;
        let mut nanos = 0;
        if self.0.first() == Some(&b'.') || self.0.first() == Some(&b',') {
            let frac = &self.0[1..];
            let n = frac
                .iter()
                .take(9)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if n == 0 {
                return None;
            }
            nanos = frac[..n]
                .iter()
                .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'))
                * 10u32.pow(9 - n as u32);
            self.0 = &frac[n..];
            // Skip digits past nanosecond precision.
            let extra = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
            self.0 = &self.0[extra..];
        }
        Some((h, m, s, nanos))
    }

    /// `Z`, `+07:00`, `+0700`, or nothing.
    fn offset(&mut self) -> Option<Option<i64>> {
        match self.0.first() {
            Some(b'Z') => {
                self.0 = &self.0[1..];
                Some(Some(0))
            }
            Some(&sign @ (b'+' | b'-')) => {
                self.0 = &self.0[1..];
                let h = self.take(2, 2)?;
                let _ = self.eat(b':');
                let m = self.take(2, 2)?;
                let secs = i64::from(h * 3600 + m * 60);
                Some(Some(if sign == b'-' { -secs } else { secs }))
            }
            _ => Some(None),
        }
    }
}

/// Parses a timestamp at the start of `s`; returns UTC ns and the rest.
fn timestamp<'a>(s: &'a [u8], opts: &Options) -> Option<(i64, &'a [u8])> {
    let s = s
        .strip_prefix(b"*")
        .or_else(|| s.strip_prefix(b"."))
        .unwrap_or(s);
    if s.len() >= 19 && s[4] == b'-' && s[..4].iter().all(u8::is_ascii_digit) {
        return rfc3339(s, opts);
    }
    let mut d = Digits(s);
    // `yyyy Mmm dd hh:mm:ss`
    let leading_year = match d.take(4, 4) {
        Some(y) => {
            d.eat(b' ')?;
            Some(i64::from(y))
        }
        None => None,
    };
    let month = month_from_abbrev(d.0.get(..3)?)?;
    d.0 = &d.0[3..];
    if d.eat_spaces() == 0 {
        return None;
    }
    let day = d.take(1, 2)?;
    if d.eat_spaces() == 0 {
        return None;
    }
    // `Mmm dd yyyy hh:mm:ss`
    let mut year = leading_year;
    if year.is_none() && d.0.len() > 4 && d.0[4] == b' ' && d.0[..4].iter().all(u8::is_ascii_digit)
    {
        year = d.take(4, 4).map(i64::from);
        d.eat(b' ')?;
    }
    let (hour, minute, second, nanos) = d.time()?;
    let mut offset = opts.tz_offset_secs;
    // Cisco IOS `show-timezone`: " UTC:"; only UTC/GMT are unambiguous abbreviations.
    if let Some(r) =
        d.0.strip_prefix(b" UTC")
            .or_else(|| d.0.strip_prefix(b" GMT"))
    {
        if r.first().is_none_or(|&b| b == b':' || b == b' ') {
            d.0 = r;
            offset = 0;
        }
    }
    let civil_for = |year| Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    let ns = match year {
        Some(y) => {
            let c = civil_for(y);
            c.is_valid().then(|| c.to_unix_ns(offset))?
        }
        None => {
            let y = year_of(opts.received_ns);
            let limit = opts.received_ns.saturating_add(FUTURE_TOLERANCE_NS);
            let candidates = [y + 1, y, y - 1].map(civil_for);
            let mut valid = candidates
                .iter()
                .filter(|c| c.is_valid())
                .map(|c| c.to_unix_ns(offset));
            // Logs arrive late (buffered, replayed) far more often than early.
            valid
                .clone()
                .find(|&ns| ns <= limit)
                .or_else(|| valid.next_back())?
        }
    };
    Some((ns, d.0))
}

/// `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]` (a space may stand for the `T`).
fn rfc3339<'a>(s: &'a [u8], opts: &Options) -> Option<(i64, &'a [u8])> {
    let mut d = Digits(s);
    let year = i64::from(d.take(4, 4)?);
    d.eat(b'-')?;
    let month = d.take(2, 2)?;
    d.eat(b'-')?;
    let day = d.take(2, 2)?;
    if d.eat(b'T').is_none() {
        d.eat(b' ')?;
    }
    let (hour, minute, second, nanos) = d.time()?;
    let offset = d.offset()?.unwrap_or(opts.tz_offset_secs);
    let c = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    c.is_valid().then(|| (c.to_unix_ns(offset), d.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::days_from_civil;

    fn secs(s: i64) -> i64 {
        s * NS_PER_SEC
    }

    fn ns(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        secs(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
    }

    fn lenient(received_ns: i64) -> Options {
        Options {
            received_ns,
            tz_offset_secs: 0,
            strict: false,
        }
    }

    #[test]
    fn classic_with_tag_and_pid() {
        let o = lenient(ns(2026, 11, 23, 12, 0, 0));
        let (m, miss) = parse(
            b"<85>Nov  3 15:50:41 ip-172-31 sudo[6040]: ec2-user : TTY=pts/0",
            &o,
        )
        .expect("ok");
        assert_eq!(miss, None);
        assert_eq!(m.priority, Some(85));
        assert_eq!(m.timestamp_ns, Some(ns(2026, 11, 3, 15, 50, 41)));
        assert_eq!(m.hostname, Some("ip-172-31"));
        assert_eq!((m.appname, m.procid), (Some("sudo"), Some("6040")));
        assert_eq!(m.message, Some(&b"ec2-user : TTY=pts/0"[..]));
    }

    #[test]
    fn no_hostname_and_no_tag() {
        let o = lenient(ns(2026, 10, 20, 0, 0, 0));
        let (m, _) = parse(b"<34>Oct 11 22:14:15 su: 'su root' failed", &o).expect("ok");
        assert_eq!((m.hostname, m.appname), (None, Some("su")));
        let (m, _) = parse(b"<13>Oct  5 17:32:18 10.0.0.99 Use the BFG!", &o).expect("ok");
        assert_eq!((m.hostname, m.appname), (Some("10.0.0.99"), None));
        assert_eq!(m.message, Some(&b"Use the BFG!"[..]));
    }

    #[test]
    fn year_is_inferred_across_new_year() {
        let o = lenient(ns(2027, 1, 1, 0, 0, 30));
        let (m, _) = parse(b"<13>Dec 31 23:59:50 h a: x", &o).expect("ok");
        assert_eq!(m.timestamp_ns, Some(ns(2026, 12, 31, 23, 59, 50)));
        let o = lenient(ns(2026, 12, 31, 23, 59, 0));
        let (m, _) = parse(b"<13>Jan  1 00:00:10 h a: x", &o).expect("ok");
        assert_eq!(m.timestamp_ns, Some(ns(2027, 1, 1, 0, 0, 10)));
        let o = lenient(ns(2026, 11, 23, 12, 0, 0));
        let (m, _) = parse(b"<13>Dec 31 23:59:59 h a: x", &o).expect("ok");
        assert_eq!(
            m.timestamp_ns,
            Some(ns(2025, 12, 31, 23, 59, 59)),
            "late, not 38 days early"
        );
        let (m, _) = parse(b"<13>Nov 25 10:00:00 h a: x", &o).expect("ok");
        assert_eq!(
            m.timestamp_ns,
            Some(ns(2026, 11, 25, 10, 0, 0)),
            "a clock two days fast"
        );
        let o = lenient(ns(2028, 3, 1, 0, 0, 0));
        let (m, _) = parse(b"<13>Feb 29 10:00:00 h a: x", &o).expect("ok");
        assert_eq!(
            m.timestamp_ns,
            Some(ns(2028, 2, 29, 10, 0, 0)),
            "leap day in a leap year"
        );
    }

    #[test]
    fn cisco_variants() {
        let o = lenient(ns(2026, 11, 23, 12, 0, 0));
        let (m, _) = parse(b"<189>82: *Nov 23 10:00:00.123 UTC: %LINK-3-UPDOWN: Interface Gi0/1, changed state to down", &o).expect("ok");
        assert_eq!(
            m.timestamp_ns,
            Some(ns(2026, 11, 23, 10, 0, 0) + 123_000_000)
        );
        assert_eq!((m.hostname, m.appname), (None, None));
        assert_eq!(
            m.message,
            Some(&b"%LINK-3-UPDOWN: Interface Gi0/1, changed state to down"[..])
        );
        let (m, _) =
            parse(b"<166>Nov 23 2025 10:00:00 fw01 : %ASA-6-302013: Built", &o).expect("ok");
        assert_eq!(m.timestamp_ns, Some(ns(2025, 11, 23, 10, 0, 0)));
        assert_eq!(m.hostname, Some("fw01"));
        assert_eq!(m.message, Some(&b"%ASA-6-302013: Built"[..]));
    }

    #[test]
    fn rfc3339_and_zone_offsets() {
        let o = Options {
            received_ns: 0,
            tz_offset_secs: 7 * 3600,
            strict: false,
        };
        let (m, _) = parse(b"<13>2026-11-23T10:00:00.5+00:00 host app[1]: hi", &o).expect("ok");
        assert_eq!(
            m.timestamp_ns,
            Some(ns(2026, 11, 23, 10, 0, 0) + 500_000_000)
        );
        let (m, _) = parse(b"<13>2026-11-23 10:00:00 host app: hi", &o).expect("ok");
        assert_eq!(
            m.timestamp_ns,
            Some(ns(2026, 11, 23, 3, 0, 0)),
            "zone-less time is local"
        );
    }

    #[test]
    fn missing_parts_are_partial_in_lenient_mode_and_errors_in_strict() {
        let o = lenient(0);
        let (m, miss) =
            parse(b"<189>date=2026-11-23 time=10:00:00 devname=fw", &o).expect("partial");
        assert_eq!(miss, Some(Missing::Timestamp));
        assert_eq!(
            m.message,
            Some(&b"date=2026-11-23 time=10:00:00 devname=fw"[..])
        );
        let (_, miss) = parse(b"Nov 23 10:00:00 host app: x", &o).expect("partial");
        assert_eq!(miss, Some(Missing::Priority));
        assert!(parse(b"random garbage", &o).is_err());
        let strict = Options { strict: true, ..o };
        assert!(parse(b"<189>date=2026-11-23", &strict).is_err());
        assert!(parse(b"Nov 23 10:00:00 host app: x", &strict).is_err());
        assert!(
            parse(b"<13>Nov 23 10:00:00 app: x", &strict).is_err(),
            "no hostname"
        );
    }
}
