//! From a raw line to one row of the `events` table.

use std::borrow::Cow;

use canh_schema::fields::events::Col;
use canh_schema::TableBuilder;

use crate::out::Out;
use crate::syslog::{rfc3164, rfc5424, Syslog, SyslogError};
use crate::vendor::{self, Decoder, Input};

/// Which parser reads a line: a syslog header format, or a body decoder after an automatically
/// read header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// RFC 5424 when the line has `<PRI>1 `, else lenient RFC 3164 (or no header at all); the
    /// body decoder is chosen from the line ([`crate::vendor::detect`]). A line nothing can
    /// read is kept raw with status `failed`.
    #[default]
    Auto,
    /// Strict RFC 5424 header; body decoder chosen from the line.
    Rfc5424,
    /// Strict RFC 3164 header (PRI, timestamp and hostname required); body decoder chosen from
    /// the line.
    Rfc3164,
    /// Any header, and this body decoder whatever the line looks like.
    Decoder(Decoder),
}

impl Format {
    /// Every format name, for help texts and error messages.
    pub fn names() -> Vec<&'static str> {
        let mut v = vec!["auto", "rfc5424", "rfc3164"];
        v.extend(Decoder::ALL.iter().map(|d| d.name()));
        v
    }

    pub fn from_name(s: &str) -> Option<Format> {
        Some(match s {
            "auto" => Format::Auto,
            "rfc5424" => Format::Rfc5424,
            "rfc3164" => Format::Rfc3164,
            other => Format::Decoder(Decoder::from_name(other)?),
        })
    }

    /// Like [`Format::from_name`], with an error that lists every name.
    pub fn parse(s: &str) -> Result<Format, String> {
        Format::from_name(s).ok_or_else(|| {
            format!(
                "unknown format {s:?} (one of {})",
                Format::names().join(", ")
            )
        })
    }

    fn header(self) -> Format {
        match self {
            Format::Decoder(_) => Format::Auto,
            f => f,
        }
    }
}

/// Outcome of parsing one line, stored in `parse.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Partial,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Partial => "partial",
            Status::Failed => "failed",
        }
    }

    pub const ALL: [Status; 3] = [Status::Ok, Status::Partial, Status::Failed];
}

/// What the collector knows about a line: who sent it, where and when.
#[derive(Debug, Clone, Copy)]
pub struct Meta<'a> {
    pub received_ns: i64,
    pub listener: &'a str,
    pub input_type: &'a str,
    /// The sender's IP address, formatted (`10.1.2.3`); empty when there is none (stdin).
    pub peer_ip: &'a str,
    /// The sender's address and port, formatted (`10.1.2.3:514`).
    pub peer_addr: &'a str,
    /// Offset east of UTC for RFC 3164 timestamps without a zone.
    pub tz_offset_secs: i64,
    /// The agency that owns the sender, from the inventory (`unknown` for a sender the
    /// inventory does not list; `None` when there is no inventory).
    pub organization: Option<&'a str>,
    /// The device's name, from the inventory.
    pub device: Option<&'a str>,
}

/// The result of [`parse_line`], before it is written as a row.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    pub syslog: Syslog<'a>,
    pub status: Status,
    /// Which header parser read the line (`rfc5424`, `rfc3164`), if any did.
    pub format: Option<&'static str>,
    pub error: Option<Cow<'static, str>>,
    /// The body decoder that read the message, if one did.
    pub decoder: Option<Decoder>,
}

/// Parses a line (without trailing newline) as `format` says.
pub fn parse_line<'a>(line: &'a [u8], format: Format, meta: &Meta<'_>) -> Parsed<'a> {
    let failed = |e: SyslogError| Parsed {
        syslog: Syslog::default(),
        status: Status::Failed,
        format: None,
        error: Some(Cow::Owned(e.to_string())),
        decoder: None,
    };
    let opts3164 = |strict| rfc3164::Options {
        received_ns: meta.received_ns,
        tz_offset_secs: meta.tz_offset_secs,
        strict,
    };
    let from_3164 = |(syslog, missing): (Syslog<'a>, Option<rfc3164::Missing>)| Parsed {
        syslog,
        status: if missing.is_some() {
            Status::Partial
        } else {
            Status::Ok
        },
        format: Some("rfc3164"),
        error: missing.map(|m| Cow::Borrowed(m.describe())),
        decoder: None,
    };
    let ok5424 = |syslog| Parsed {
        syslog,
        status: Status::Ok,
        format: Some("rfc5424"),
        error: None,
        decoder: None,
    };
    match format.header() {
        Format::Rfc5424 => rfc5424::parse(line).map_or_else(failed, ok5424),
        Format::Rfc3164 => rfc3164::parse(line, &opts3164(true)).map_or_else(failed, from_3164),
        Format::Auto | Format::Decoder(_) => {
            if looks_like_5424(line) {
                match rfc5424::parse_lenient_sd(line) {
                    Ok((m, false)) => return ok5424(m),
                    Ok((m, true)) => {
                        return Parsed {
                            status: Status::Partial,
                            error: Some(Cow::Borrowed(
                                "malformed structured data, kept in the message",
                            )),
                            ..ok5424(m)
                        }
                    }
                    Err(_) => {}
                }
            }
            rfc3164::parse(line, &opts3164(false)).map_or_else(failed, from_3164)
        }
    }
}

/// `<PRI>` followed by a version digit and a space.
fn looks_like_5424(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b'>') {
        Some(p) if p <= 4 => {
            let rest = &line[p + 1..];
            let n = rest
                .iter()
                .take(3)
                .take_while(|b| b.is_ascii_digit())
                .count();
            n > 0 && rest.get(n) == Some(&b' ')
        }
        _ => false,
    }
}

/// What [`append_event`] reports about the row it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub status: Status,
    /// The event time the message gave (UTC ns); `None` when the receive time was used.
    pub event_ns: Option<i64>,
}

/// Parses `raw` (one framed message) and appends it as a row.
pub fn append_event(b: &mut TableBuilder, raw: &[u8], format: Format, meta: &Meta<'_>) -> Appended {
    let line = canh_schema::raw::trim_line_end(raw);
    let mut parsed = parse_line(line, format, meta);
    // The raw bytes are validated once; the line (a prefix of them) and every slice of it are
    // then cut from the validated text. Invalid UTF-8 (rare) is replaced for the decoders.
    let raw_text = std::str::from_utf8(raw).ok();
    let text: Cow<'_, str> = match raw_text {
        Some(t) => Cow::Borrowed(&t[..line.len()]),
        None => String::from_utf8_lossy(line),
    };
    let strict_failure = parsed.status == Status::Failed && format.header() != Format::Auto;
    let body: Cow<'_, str> = if parsed.status == Status::Failed {
        Cow::Borrowed(&text[..])
    } else {
        match parsed.syslog.message {
            Some(m) => match slice_of(&text, line, m) {
                Some(s) => Cow::Borrowed(s),
                // Not valid UTF-8: the decoders read the message with replacements.
                None => String::from_utf8_lossy(m),
            },
            None => Cow::Borrowed(""),
        }
    };
    let decoded = if strict_failure {
        None
    } else {
        let input = Input {
            line: &text,
            body: &body,
            header: &parsed.syslog,
            meta,
        };
        let decoder = match format {
            Format::Decoder(d) => Some(d),
            _ => vendor::detect(&input),
        };
        decoder.map(|d| {
            let mut out = Out::new(b);
            let result = d.decode(&mut out, &input);
            (d, result, out.take_problem(), out.event_ns())
        })
    };
    let mut event_ns = parsed.syslog.timestamp_ns;
    if let Some((d, result, problem, decoder_ns)) = decoded {
        event_ns = decoder_ns.or(event_ns);
        // The decoder's verdict replaces the header's: a vendor format defines what a
        // complete line is (FortiGate sends no syslog header at all).
        let verdict = match (result, problem) {
            (Ok(vendor::Decoded::Plain), _) => None,
            (Ok(vendor::Decoded::Fields), None) => Some((Status::Ok, None)),
            (Ok(vendor::Decoded::Fields), Some(p)) => Some((Status::Partial, Some(p))),
            (Err(e), _) => Some((Status::Partial, Some(e))),
        };
        if let Some((status, error)) = verdict {
            parsed.status = status;
            parsed.error = error.map(Cow::Owned);
            parsed.decoder = Some(d);
        }
    }
    write_row(b, raw, raw_text, line, &parsed, meta);
    Appended {
        status: parsed.status,
        event_ns,
    }
}

/// `part` (a sub-slice of `line`) as a slice of `text`, the line's validated copy.
fn slice_of<'t>(text: &'t str, line: &[u8], part: &[u8]) -> Option<&'t str> {
    let start = (part.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    match text.get(start..start + part.len()) {
        // Only when the text is the line itself (valid UTF-8) do offsets line up.
        Some(s) if text.len() == line.len() => Some(s),
        _ => None,
    }
}

fn write_row(
    b: &mut TableBuilder,
    raw: &[u8],
    raw_text: Option<&str>,
    line: &[u8],
    p: &Parsed<'_>,
    meta: &Meta<'_>,
) {
    let m = &p.syslog;
    b.note_received(meta.received_ns);
    b.set_ts(Col::Timestamp, m.timestamp_ns.unwrap_or(meta.received_ns));
    b.set_ts(Col::EventCreated, meta.received_ns);
    if let Some(org) = meta.organization {
        b.set_str(Col::OrganizationName, org);
    }
    if let Some(dev) = meta.device {
        b.set_str(Col::ObserverHostname, dev);
    }
    for (col, v) in [
        (Col::ObserverIp, meta.peer_ip),
        (Col::CanhListener, meta.listener),
        (Col::InputType, meta.input_type),
        (Col::LogSourceAddress, meta.peer_addr),
    ] {
        if !v.is_empty() {
            b.set_str(col, v);
        }
    }
    if let Some(pri) = m.priority {
        b.set_uint(Col::LogSyslogPriority, u64::from(pri));
        b.set_uint(Col::LogSyslogFacilityCode, u64::from(pri >> 3));
        b.set_uint(Col::LogSyslogSeverityCode, u64::from(pri & 7));
    }
    if let Some(v) = m.version {
        b.set_uint(Col::LogSyslogVersion, u64::from(v));
    }
    if let Some(h) = m.hostname {
        b.set_str(Col::HostHostname, h);
    }
    if let Some(a) = m.appname {
        b.set_str(Col::LogSyslogAppname, a);
    }
    if let Some(p) = m.procid {
        b.set_str(Col::LogSyslogProcid, p);
    }
    if let Some(id) = m.msgid {
        b.set_str(Col::LogSyslogMsgid, id);
    }
    let mut key = String::new();
    for el in &m.structured_data {
        if el.params.is_empty() {
            b.insert_map(Col::LogSyslogStructuredData, el.id, None);
        }
        for (name, value) in &el.params {
            key.clear();
            key.push_str(el.id);
            key.push('.');
            key.push_str(name);
            b.insert_map(Col::LogSyslogStructuredData, &key, Some(value));
        }
    }
    // A line without a readable header keeps its text in `message` too. A body that is a list
    // of fields, all decoded, is not kept again (it is in `event.original`); one the decoder
    // could not fully read stays, for the analyst to see.
    let message = if p.format.is_none() {
        Some(line)
    } else if p.status == Status::Ok && p.decoder.is_some_and(Decoder::body_is_fields) {
        None
    } else {
        m.message
    };
    // The raw line is validated once; the message, a slice of it that starts after an ASCII
    // delimiter, is then cut from the validated text instead of being validated again.
    match raw_text {
        Some(text) => {
            if let Some(msg) = message {
                let start = (msg.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
                match text.get(start..start + msg.len()) {
                    Some(t) => b.set_str(Col::Message, t),
                    None => b.set_str_lossy(Col::Message, msg),
                }
            }
            b.set_str(Col::EventOriginal, text);
        }
        None => {
            if let Some(msg) = message {
                b.set_str_lossy(Col::Message, msg);
            }
            b.set_str(Col::EventOriginal, &String::from_utf8_lossy(raw));
            b.set_bytes(Col::EventOriginalBytes, raw);
        }
    }
    b.set_str(Col::ParseStatus, p.status.as_str());
    if let Some(e) = &p.error {
        b.set_str(Col::ParseError, e);
    }
    if let Some(f) = p.decoder.map(Decoder::name).or(p.format) {
        b.set_str(Col::ParseFormat, f);
    }
    b.end_row();
}
