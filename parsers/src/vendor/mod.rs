//! Vendor decoders: the MSG part of a syslog line (or a whole headerless line) mapped onto ECS.
//!
//! Each decoder is a function from an [`Input`] to fields written through [`Out`]. Which one
//! runs is decided by [`detect`] from cheap looks at the header's APP-NAME and the first bytes of
//! the message, unless the listener or the sender's inventory entry names one
//! ([`crate::Format`]). A decoder that cannot read a line it was given returns the reason; the
//! row is then `partial` (header fields, raw line kept).

use crate::event::Meta;
use crate::out::Out;
use crate::syslog::Syslog;

pub mod checkpoint;
pub mod cisco_asa;
pub mod cisco_ios;
pub mod fortigate;
pub mod juniper;
pub mod linux;
pub mod mikrotik;
pub mod netfilter;
pub mod panos;
pub mod pfsense;
pub mod sophos;

/// What a decoder reads.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The whole line as text (invalid UTF-8 replaced).
    pub line: &'a str,
    /// The syslog MSG part, or the whole line when it has no syslog header.
    pub body: &'a str,
    /// The syslog header, as far as one was found.
    pub header: &'a Syslog<'a>,
    pub meta: &'a Meta<'a>,
}

/// A decoder's verdict on a line: `Err` says why it could not read it.
pub type Result = std::result::Result<Decoded, String>;

/// What a decoder made of a line it could read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// Fields were extracted.
    Fields,
    /// A message of the right program or device that has no fields to extract (a sshd startup
    /// notice): the row stays plain syslog, with the status of its header.
    Plain,
}

/// The body decoders, generic formats included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decoder {
    Cef,
    Leef,
    Kv,
    Fortigate,
    CiscoAsa,
    CiscoIos,
    Panos,
    Pfsense,
    JuniperSrx,
    Sophos,
    Checkpoint,
    Mikrotik,
    /// sshd, sudo, su, user and group tools, PAM.
    Linux,
    /// iptables / nftables LOG lines from the kernel.
    Netfilter,
}

impl Decoder {
    pub const ALL: [Decoder; 14] = [
        Decoder::Cef,
        Decoder::Leef,
        Decoder::Kv,
        Decoder::Fortigate,
        Decoder::CiscoAsa,
        Decoder::CiscoIos,
        Decoder::Panos,
        Decoder::Pfsense,
        Decoder::JuniperSrx,
        Decoder::Sophos,
        Decoder::Checkpoint,
        Decoder::Mikrotik,
        Decoder::Linux,
        Decoder::Netfilter,
    ];

    /// The name used in configuration, `--format` and `parse.format`.
    pub fn name(self) -> &'static str {
        match self {
            Decoder::Cef => "cef",
            Decoder::Leef => "leef",
            Decoder::Kv => "kv",
            Decoder::Fortigate => "fortigate",
            Decoder::CiscoAsa => "cisco_asa",
            Decoder::CiscoIos => "cisco_ios",
            Decoder::Panos => "panos",
            Decoder::Pfsense => "pfsense",
            Decoder::JuniperSrx => "juniper_srx",
            Decoder::Sophos => "sophos",
            Decoder::Checkpoint => "checkpoint",
            Decoder::Mikrotik => "mikrotik",
            Decoder::Linux => "linux",
            Decoder::Netfilter => "netfilter",
        }
    }

    /// Whether the body is a list of fields (`key=value`, CEF or LEEF extensions, CSV). Decoded
    /// into columns and kept verbatim in `event.original`, such a body is not stored again as
    /// `message`; `message` then holds the device's own message field where the format
    /// has one (FortiGate `msg`, Sophos `message`, CEF `msg`, a PAN-OS system description).
    /// Text bodies (sshd, Cisco, iptables, Juniper, MikroTik) stay the message.
    pub fn body_is_fields(self) -> bool {
        match self {
            Decoder::Cef
            | Decoder::Leef
            | Decoder::Kv
            | Decoder::Fortigate
            | Decoder::Panos
            | Decoder::Pfsense
            | Decoder::Sophos
            | Decoder::Checkpoint => true,
            Decoder::CiscoAsa
            | Decoder::CiscoIos
            | Decoder::JuniperSrx
            | Decoder::Mikrotik
            | Decoder::Linux
            | Decoder::Netfilter => false,
        }
    }

    pub fn from_name(s: &str) -> Option<Decoder> {
        Decoder::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Decodes `input` into `out`.
    pub fn decode(self, out: &mut Out<'_>, input: &Input<'_>) -> Result {
        match self {
            Decoder::Cef => crate::generic::cef::decode(out, input),
            Decoder::Leef => crate::generic::leef::decode(out, input),
            Decoder::Kv => crate::generic::kv::decode(out, input),
            Decoder::Fortigate => fortigate::decode(out, input),
            Decoder::CiscoAsa => cisco_asa::decode(out, input),
            Decoder::CiscoIos => cisco_ios::decode(out, input),
            Decoder::Panos => panos::decode(out, input),
            Decoder::Pfsense => pfsense::decode(out, input),
            Decoder::JuniperSrx => juniper::decode(out, input),
            Decoder::Sophos => sophos::decode(out, input),
            Decoder::Checkpoint => checkpoint::decode(out, input),
            Decoder::Mikrotik => mikrotik::decode(out, input),
            Decoder::Linux => linux::decode(out, input),
            Decoder::Netfilter => netfilter::decode(out, input),
        }
    }
}

/// The decoder for a line, from its APP-NAME and the start of its message; `None` leaves the
/// line as plain syslog.
pub fn detect(input: &Input<'_>) -> Option<Decoder> {
    let body = input.body;
    if let Some(app) = input.header.appname {
        match app {
            "filterlog" => return Some(Decoder::Pfsense),
            "RT_FLOW" => return Some(Decoder::JuniperSrx),
            "CheckPoint" => return Some(Decoder::Checkpoint),
            "kernel" if netfilter::looks_like(body) => return Some(Decoder::Netfilter),
            _ if linux::is_linux_app(app) => return Some(Decoder::Linux),
            _ if app.starts_with("firewall,") => return Some(Decoder::Mikrotik),
            _ => {}
        }
    }
    let b = body.as_bytes();
    match b.first() {
        Some(b'%') if cisco_asa::looks_like(body) => return Some(Decoder::CiscoAsa),
        Some(b'C') if body.starts_with("CEF:") => return Some(Decoder::Cef),
        Some(b'L') if body.starts_with("LEEF:") => return Some(Decoder::Leef),
        Some(b'0'..=b'9') if panos::looks_like(body) => return Some(Decoder::Panos),
        Some(b'R') if body.starts_with("RT_FLOW") => return Some(Decoder::JuniperSrx),
        _ => {}
    }
    // The `key=value` formats need a `=`: one scan saves several on plain messages.
    let has_eq = memchr::memchr(b'=', b).is_some();
    if has_eq && fortigate::looks_like(body) {
        return Some(Decoder::Fortigate);
    }
    if has_eq && sophos::looks_like(body) {
        return Some(Decoder::Sophos);
    }
    if checkpoint::looks_like(body) {
        return Some(Decoder::Checkpoint);
    }
    if let Some(d) = find_marker(input.line) {
        return Some(d);
    }
    if has_eq && netfilter::looks_like(body) {
        return Some(Decoder::Netfilter);
    }
    if mikrotik::looks_like(body) {
        return Some(Decoder::Mikrotik);
    }
    None
}

/// The word after the first `key` in `s`.
pub(crate) fn word_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let p = crate::scan::find_str(s, key)? + key.len();
    s[p..].split_ascii_whitespace().next()
}

/// The text between the first `open` and the next `close` after it.
pub(crate) fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let p = crate::scan::find_str(s, open)? + open.len();
    let e = crate::scan::find_str(&s[p..], close)? + p;
    Some(&s[p..e])
}

/// Markers that identify a format wherever they appear: devices and relays put all kinds of
/// prefixes before `%ASA-`, `%LINK-3-UPDOWN:` or `CEF:0|`.
fn find_marker(line: &str) -> Option<Decoder> {
    let b = line.as_bytes();
    for p in memchr::memchr_iter(b'%', b) {
        let rest = &line[p..];
        if cisco_asa::looks_like(rest) {
            return Some(Decoder::CiscoAsa);
        }
        if cisco_ios::mnemonic(rest).is_some() {
            return Some(Decoder::CiscoIos);
        }
    }
    if crate::find!(b, b"CEF:").is_some_and(|p| b.get(p + 4).is_some_and(u8::is_ascii_digit)) {
        return Some(Decoder::Cef);
    }
    if crate::find!(b, b"LEEF:").is_some_and(|p| b.get(p + 5).is_some_and(u8::is_ascii_digit)) {
        return Some(Decoder::Leef);
    }
    None
}
