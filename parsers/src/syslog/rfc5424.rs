//! RFC 5424, strictly: a message that breaks the grammar is an error, with the column.
//!
//! ```text
//! SYSLOG-MSG = HEADER SP STRUCTURED-DATA [SP MSG]
//! HEADER     = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
//! ```

use super::{is_print_us_ascii, parse_pri, sd, ErrorKind, Syslog, SyslogError};
use crate::time::Civil;

/// Parses one RFC 5424 message (without framing or trailing newline).
pub fn parse(line: &[u8]) -> Result<Syslog<'_>, SyslogError> {
    parse_inner(line, false).map(|(m, _)| m)
}

/// Like [`parse`], but a STRUCTURED-DATA part that breaks the grammar (Check Point's
/// `[key:"value"; …]`, hand-made brackets) does not fail the message: the header is kept and
/// everything from the SD position on is the MSG. The flag says whether that happened.
pub fn parse_lenient_sd(line: &[u8]) -> Result<(Syslog<'_>, bool), SyslogError> {
    parse_inner(line, true)
}

fn parse_inner(line: &[u8], lenient_sd: bool) -> Result<(Syslog<'_>, bool), SyslogError> {
    let (priority, _) = parse_pri(line)?;
    let mut c = Cursor {
        line,
        pos: line.iter().position(|&b| b == b'>').map_or(0, |p| p + 1),
    };
    let mut msg = Syslog {
        priority: Some(priority),
        ..Syslog::default()
    };

    msg.version = Some(c.version()?);
    c.space()?;
    msg.timestamp_ns = c.timestamp()?;
    c.space()?;
    msg.hostname = c.header_field(255, ErrorKind::Hostname)?;
    c.space()?;
    msg.appname = c.header_field(48, ErrorKind::Appname)?;
    c.space()?;
    msg.procid = c.header_field(128, ErrorKind::Procid)?;
    c.space()?;
    msg.msgid = c.header_field(32, ErrorKind::Msgid)?;
    c.space()?;
    let sd_start = c.pos;
    match c.structured_data() {
        Ok(sd) => msg.structured_data = sd,
        Err(e) if lenient_sd && e.kind == ErrorKind::StructuredData => {
            let rest = &line[sd_start..];
            msg.message = (!rest.is_empty()).then_some(rest);
            return Ok((msg, true));
        }
        Err(e) => return Err(e),
    }
    if c.pos < line.len() {
        c.space()?;
        let rest = &line[c.pos..];
        // MSG is UTF-8 when it starts with a BOM (kept, as received), else any octets.
        if rest.starts_with(b"\xEF\xBB\xBF") && std::str::from_utf8(rest).is_err() {
            return Err(SyslogError {
                kind: ErrorKind::Message,
                col: c.pos + 3,
            });
        }
        msg.message = (!rest.is_empty()).then_some(rest);
    }
    Ok((msg, false))
}

struct Cursor<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, kind: ErrorKind) -> SyslogError {
        SyslogError {
            kind,
            col: self.pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.line.get(self.pos).copied()
    }

    fn space(&mut self) -> Result<(), SyslogError> {
        match self.peek() {
            Some(b' ') => {
                self.pos += 1;
                Ok(())
            }
            None => Err(self.err(ErrorKind::Truncated)),
            Some(_) => Err(self.err(ErrorKind::Space)),
        }
    }

    /// VERSION = NONZERO-DIGIT 0*2DIGIT
    fn version(&mut self) -> Result<u16, SyslogError> {
        let start = self.pos;
        let mut v: u16 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            if self.pos == start && d == b'0' || self.pos - start == 3 {
                return Err(self.err(ErrorKind::Version));
            }
            v = v * 10 + u16::from(d - b'0');
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err(ErrorKind::Version));
        }
        Ok(v)
    }

    /// A token of PRINTUSASCII up to the next space, at most `max` bytes; `-` is nil.
    fn header_field(
        &mut self,
        max: usize,
        kind: ErrorKind,
    ) -> Result<Option<&'a str>, SyslogError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' {
                break;
            }
            if !is_print_us_ascii(b) || self.pos - start == max {
                return Err(self.err(kind));
            }
            self.pos += 1;
        }
        let token = &self.line[start..self.pos];
        match token {
            b"" => Err(self.err(kind)),
            b"-" => Ok(None),
            // Checked above: every byte is printable ASCII.
            _ => Ok(std::str::from_utf8(token).ok()),
        }
    }

    fn digits(&mut self, n: usize) -> Result<u32, SyslogError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(d) if d.is_ascii_digit() => {
                    v = v * 10 + u32::from(d - b'0');
                    self.pos += 1;
                }
                _ => return Err(self.err(ErrorKind::Timestamp)),
            }
        }
        Ok(v)
    }

    fn expect(&mut self, b: u8) -> Result<(), SyslogError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(ErrorKind::Timestamp))
        }
    }

    /// TIMESTAMP = NILVALUE / FULL-DATE "T" FULL-TIME (RFC 3339, at most 6 fraction digits).
    fn timestamp(&mut self) -> Result<Option<i64>, SyslogError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            return Ok(None);
        }
        let year = self.digits(4)?;
        self.expect(b'-')?;
        let month = self.digits(2)?;
        self.expect(b'-')?;
        let day = self.digits(2)?;
        self.expect(b'T')?;
        let hour = self.digits(2)?;
        self.expect(b':')?;
        let minute = self.digits(2)?;
        self.expect(b':')?;
        let second = self.digits(2)?;
        let mut nanos = 0u32;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let start = self.pos;
            while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
                if self.pos - start == 6 {
                    return Err(self.err(ErrorKind::Timestamp));
                }
                nanos = nanos * 10 + u32::from(d - b'0');
                self.pos += 1;
            }
            let n = self.pos - start;
            if n == 0 {
                return Err(self.err(ErrorKind::Timestamp));
            }
            nanos *= 10u32.pow(9 - n as u32);
        }
        let offset = match self.peek() {
            Some(b'Z') => {
                self.pos += 1;
                0
            }
            Some(sign @ (b'+' | b'-')) => {
                self.pos += 1;
                let h = self.digits(2)?;
                self.expect(b':')?;
                let m = self.digits(2)?;
                if h > 23 || m > 59 {
                    return Err(self.err(ErrorKind::Timestamp));
                }
                let secs = i64::from(h * 3600 + m * 60);
                if sign == b'-' {
                    -secs
                } else {
                    secs
                }
            }
            _ => return Err(self.err(ErrorKind::Timestamp)),
        };
        let civil = Civil {
            year: i64::from(year),
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        };
        if !civil.is_valid() || second == 60 {
            return Err(self.err(ErrorKind::Timestamp));
        }
        Ok(Some(civil.to_unix_ns(offset)))
    }

    fn structured_data(&mut self) -> Result<Vec<super::SdElement<'a>>, SyslogError> {
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                Ok(Vec::new())
            }
            Some(b'[') => {
                let (elems, len) = sd::structured_data(&self.line[self.pos..])
                    .ok_or_else(|| self.err(ErrorKind::StructuredData))?;
                self.pos += len;
                Ok(elems)
            }
            None => Err(self.err(ErrorKind::Truncated)),
            Some(_) => Err(self.err(ErrorKind::StructuredData)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_message() {
        let line = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 123 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] \xEF\xBB\xBFAn application event";
        let m = parse(line).expect("valid");
        assert_eq!(m.priority, Some(165));
        assert_eq!(m.version, Some(1));
        assert_eq!(m.timestamp_ns, Some(1_065_910_455_003_000_000));
        assert_eq!(m.hostname, Some("mymachine.example.com"));
        assert_eq!(m.appname, Some("evntslog"));
        assert_eq!(m.procid, Some("123"));
        assert_eq!(m.msgid, Some("ID47"));
        assert_eq!(m.structured_data[0].params.len(), 2);
        assert_eq!(m.message, Some(&b"\xEF\xBB\xBFAn application event"[..]));
        assert_eq!(
            parse(b"<1>1 - - - - - - \xEF\xBB\xBF\xC1")
                .expect_err("bad utf8")
                .kind,
            ErrorKind::Message
        );
    }

    #[test]
    fn nil_values_and_offsets() {
        let m = parse(b"<10>1 - - - - - -").expect("valid");
        assert_eq!((m.hostname, m.timestamp_ns, m.message), (None, None, None));
        let a = parse(b"<1>1 2026-11-23T10:00:00+07:00 h a p m -").expect("valid");
        let b = parse(b"<1>1 2026-11-23T03:00:00Z h a p m -").expect("valid");
        assert_eq!(a.timestamp_ns, b.timestamp_ns);
    }

    #[test]
    fn errors_name_the_field_and_column() {
        let e = parse(b"<1>1 - \nhostname - - - -").expect_err("newline in hostname");
        assert_eq!((e.kind, e.col), (ErrorKind::Hostname, 7));
        let e = parse(b"<1>1 - - - - - -\n\t\t<2>1").expect_err("junk after SD");
        assert_eq!((e.kind, e.col), (ErrorKind::Space, 16));
        assert_eq!(
            parse(b"<1>1 2026-02-30T00:00:00Z - - - - -")
                .expect_err("date")
                .kind,
            ErrorKind::Timestamp
        );
        assert_eq!(
            parse(b"<1>01 - - - - - -").expect_err("version").kind,
            ErrorKind::Version
        );
        assert_eq!(
            parse(b"<1>1 - - - - -").expect_err("short").kind,
            ErrorKind::Truncated
        );
    }
}
