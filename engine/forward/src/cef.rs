//! Alerts as CEF (ArcSight Common Event Format, revision 25) inside RFC 5424 syslog messages.
//!
//! `CEF:0|Canh|Canh|VERSION|rule id|rule title|severity|extension`, severity 0–10 from the
//! Sigma level. The extension carries the alert id (`externalId`), the times (`rt` raised,
//! `start`/`end` first and last event, ms since the epoch), `cnt`, the observables (`src`,
//! `dst` or `c6a2`/`c6a3` for IPv6, `dpt`, `suser`) and custom strings: `cs1` organization,
//! `cs2` tags, `cs3` group key, `cs4` level, `cs5` rule id.

use std::fmt::Write;

use crate::alert::{level_rank, ForwardAlert};

/// CEF severity (0–10) of a Sigma level.
pub fn severity(level: &str) -> u8 {
    [1, 3, 5, 8, 10][usize::from(level_rank(level))]
}

/// Syslog severity of a Sigma level (critical → 2 … informational → 6).
fn syslog_severity(level: &str) -> u8 {
    [6, 5, 4, 3, 2][usize::from(level_rank(level))]
}

/// Escapes a CEF header field: `\` and `|`; line breaks become spaces.
fn header(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Escapes a CEF extension value: `\`, `=` and line breaks.
fn value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn ext(out: &mut String, key: &str, v: &str) {
    if !out.ends_with('|') {
        out.push(' ');
    }
    out.push_str(key);
    out.push('=');
    value(out, v);
}

/// The CEF text of an alert.
pub fn cef(a: &ForwardAlert) -> String {
    let mut s = String::with_capacity(512);
    s.push_str("CEF:0|Canh|Canh|");
    header(&mut s, env!("CARGO_PKG_VERSION"));
    s.push('|');
    header(&mut s, &a.rule_id);
    s.push('|');
    header(&mut s, &a.rule_title);
    let _ = write!(s, "|{}|", severity(&a.level));
    ext(&mut s, "externalId", &a.id);
    ext(&mut s, "rt", &(a.created_ns / 1_000_000).to_string());
    ext(&mut s, "start", &(a.first_ns / 1_000_000).to_string());
    ext(&mut s, "end", &(a.last_ns / 1_000_000).to_string());
    ext(&mut s, "cnt", &a.count.to_string());
    for (ip, v4_key, v6_key) in [
        (&a.source_ip, "src", "c6a2"),
        (&a.destination_ip, "dst", "c6a3"),
    ] {
        if let Some(ip) = ip {
            let key = if ip.contains(':') { v6_key } else { v4_key };
            ext(&mut s, key, ip);
            if key == "c6a2" {
                ext(&mut s, "c6a2Label", "Source IPv6 Address");
            } else if key == "c6a3" {
                ext(&mut s, "c6a3Label", "Destination IPv6 Address");
            }
        }
    }
    if let Some(p) = a.destination_port {
        ext(&mut s, "dpt", &p.to_string());
    }
    if let Some(u) = &a.user_name {
        ext(&mut s, "suser", u);
    }
    let custom = [
        (
            "cs1",
            "organization",
            a.organization.clone().unwrap_or_default(),
        ),
        ("cs2", "tags", a.tags.join(",")),
        ("cs3", "groupKey", a.group_key.clone()),
        ("cs4", "level", a.level.clone()),
        ("cs5", "ruleId", a.rule_id.clone()),
    ];
    for (key, label, v) in custom {
        if !v.is_empty() {
            ext(&mut s, key, &v);
            ext(&mut s, &format!("{key}Label"), label);
        }
    }
    ext(&mut s, "msg", &a.rule_title);
    s
}

/// An RFC 5424 message carrying the CEF text: facility local4, severity from the level,
/// APP-NAME `canh`, MSGID `alert`.
pub fn syslog_message(a: &ForwardAlert, hostname: &str) -> String {
    let pri = 20 * 8 + u32::from(syslog_severity(&a.level));
    let ts = jiff::Timestamp::from_nanosecond(i128::from(a.created_ns))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!(
        "<{pri}>1 {} {} canh {} alert - {}",
        ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
        if hostname.is_empty() { "-" } else { hostname },
        std::process::id(),
        cef(a)
    )
}

/// Octet-counted framing (RFC 5425, RFC 6587 3.4.1): `LEN SP MSG`.
pub fn frame(out: &mut Vec<u8>, msg: &str) {
    let _ = write!(ByteWriter(out), "{} ", msg.len());
    out.extend_from_slice(msg.as_bytes());
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_extension_are_escaped() {
        let a = ForwardAlert {
            id: "0a1b".into(),
            rule_id: "r|1".into(),
            rule_title: "SSH brute force \\ a=b".into(),
            level: "high".into(),
            group_key: "source.ip=10.0.0.1".into(),
            source_ip: Some("2001:db8::1".into()),
            destination_port: Some(22),
            user_name: Some("root".into()),
            count: 7,
            created_ns: 1_700_000_000_123_000_000,
            ..Default::default()
        };
        let c = cef(&a);
        assert!(
            c.starts_with("CEF:0|Canh|Canh|")
                && c.contains("|r\\|1|SSH brute force \\\\ a=b|8|externalId=0a1b rt=1700000000123"),
            "{c}"
        );
        assert!(c.contains(" c6a2=2001:db8::1 "), "{c}");
        assert!(
            c.contains(" cs3=source.ip\\=10.0.0.1 cs3Label=groupKey"),
            "{c}"
        );
        assert!(c.ends_with(" msg=SSH brute force \\\\ a\\=b"), "{c}");
        let m = syslog_message(&a, "soc1");
        assert!(
            m.starts_with("<163>1 2023-11-14T22:13:20.123000Z soc1 canh "),
            "{m}"
        );
        let mut f = Vec::new();
        frame(&mut f, "héllo");
        assert_eq!(f, "6 héllo".as_bytes());
    }
}
