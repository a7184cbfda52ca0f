//! Syslog message formats: RFC 5424 and RFC 3164 with the variants real devices send.
//!
//! Both parsers produce a [`Syslog`] that borrows from the input line; writing it into a row is a
//! separate step ([`crate::event`]) so tests and `canh parse` can look at the parsed parts.

use std::borrow::Cow;

pub mod rfc3164;
pub mod rfc5424;
mod sd;

/// One RFC 5424 structured-data element: `[id name="value" …]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement<'a> {
    pub id: &'a str,
    /// Parameters in order; values have their `\"`, `\\` and `\]` escapes resolved.
    pub params: Vec<(&'a str, Cow<'a, str>)>,
}

/// A syslog message, as far as it could be parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Syslog<'a> {
    /// PRI value (0–191).
    pub priority: Option<u8>,
    /// RFC 5424 VERSION.
    pub version: Option<u16>,
    /// Event time, UTC nanoseconds.
    pub timestamp_ns: Option<i64>,
    pub hostname: Option<&'a str>,
    pub appname: Option<&'a str>,
    pub procid: Option<&'a str>,
    pub msgid: Option<&'a str>,
    pub structured_data: Vec<SdElement<'a>>,
    /// The MSG part, as received (an RFC 5424 BOM is kept); `None` when empty.
    pub message: Option<&'a [u8]>,
}

impl Syslog<'_> {
    pub fn facility(&self) -> Option<u8> {
        self.priority.map(|p| p >> 3)
    }

    pub fn severity(&self) -> Option<u8> {
        self.priority.map(|p| p & 7)
    }
}

/// What went wrong, with the byte offset where it went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogError {
    pub kind: ErrorKind,
    /// Byte offset into the line.
    pub col: usize,
}

impl std::fmt::Display for SyslogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [col {}]", self.kind.describe(), self.col)
    }
}

/// The kinds of syslog parse errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No `<PRI>` at the start, or a PRI outside 0–191.
    Priority,
    /// RFC 5424 VERSION missing or malformed.
    Version,
    /// A timestamp that is malformed or out of range.
    Timestamp,
    Hostname,
    Appname,
    Procid,
    Msgid,
    /// Malformed structured data.
    StructuredData,
    /// A space was expected between header fields.
    Space,
    /// An RFC 5424 MSG that starts with a BOM but is not valid UTF-8.
    Message,
    /// The line ended inside the header.
    Truncated,
}

impl ErrorKind {
    /// A short stable code, used as a metric label.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Priority => "priority",
            ErrorKind::Version => "version",
            ErrorKind::Timestamp => "timestamp",
            ErrorKind::Hostname => "hostname",
            ErrorKind::Appname => "appname",
            ErrorKind::Procid => "procid",
            ErrorKind::Msgid => "msgid",
            ErrorKind::StructuredData => "structured_data",
            ErrorKind::Space => "space",
            ErrorKind::Message => "message",
            ErrorKind::Truncated => "truncated",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Priority => "expecting a priority value within angle brackets (0-191)",
            ErrorKind::Version => "expecting a version value (1-999, no leading zero)",
            ErrorKind::Timestamp => "expecting an RFC 3339 timestamp or a nil value",
            ErrorKind::Hostname => "expecting a hostname (1-255 printable US-ASCII) or a nil value",
            ErrorKind::Appname => "expecting an app-name (1-48 printable US-ASCII) or a nil value",
            ErrorKind::Procid => "expecting a procid (1-128 printable US-ASCII) or a nil value",
            ErrorKind::Msgid => "expecting a msgid (1-32 printable US-ASCII) or a nil value",
            ErrorKind::StructuredData => "expecting structured data elements or a nil value",
            ErrorKind::Space => "expecting a space",
            ErrorKind::Message => "expecting UTF-8 after the BOM",
            ErrorKind::Truncated => "message ends inside the header",
        }
    }
}

/// Parses `<PRI>` at the start of `line`: the PRI value and the bytes after `>`.
///
/// Accepts 1–3 digits without leading zeros (except `<0>`), value at most 191.
pub fn parse_pri(line: &[u8]) -> Result<(u8, &[u8]), SyslogError> {
    let err = |col| SyslogError {
        kind: ErrorKind::Priority,
        col,
    };
    if line.first() != Some(&b'<') {
        return Err(err(0));
    }
    let mut value: u32 = 0;
    let mut i = 1;
    while i < line.len() && i <= 4 {
        let c = line[i];
        if c == b'>' {
            break;
        }
        if !c.is_ascii_digit() || (i == 2 && line[1] == b'0') {
            return Err(err(i));
        }
        value = value * 10 + u32::from(c - b'0');
        i += 1;
    }
    if i == 1 || i > 4 || line.get(i) != Some(&b'>') || value > 191 {
        return Err(err(i.min(line.len())));
    }
    Ok((value as u8, &line[i + 1..]))
}

/// Whether `b` is PRINTUSASCII (RFC 5424: `%d33-126`).
#[inline]
pub(crate) fn is_print_us_ascii(b: u8) -> bool {
    (33..=126).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pri_accepts_range_and_rejects_leading_zeros() {
        assert_eq!(parse_pri(b"<0>x").map(|(p, r)| (p, r.len())), Ok((0, 1)));
        assert_eq!(parse_pri(b"<191>").map(|(p, _)| p), Ok(191));
        assert!(parse_pri(b"<192>").is_err());
        assert!(parse_pri(b"<01>").is_err());
        assert!(parse_pri(b"<>").is_err());
        assert!(parse_pri(b"<1").is_err());
        assert!(parse_pri(b"<1234>").is_err());
        assert!(parse_pri(b"").is_err());
    }
}
