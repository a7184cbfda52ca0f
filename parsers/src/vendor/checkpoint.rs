//! Check Point Log Exporter, syslog format: `[action:"Accept"; src:"10.0.0.1"; dst:"…"; …]`
//! after an RFC 5424 header (APP-NAME `CheckPoint`). Values may contain `\"` and `\\`.

use std::borrow::Cow;

use canh_schema::fields::events::Col;

use super::{Decoded, Input, Result};
use crate::out::Out;

/// A `[key:"value"` opening anywhere in the body.
pub fn looks_like(body: &str) -> bool {
    fields_start(body).is_some()
}

fn fields_start(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    memchr::memchr_iter(b'[', b).take(4).find(|&p| {
        let rest = &b[p + 1..];
        let n = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        n > 0 && rest[n..].starts_with(b":\"")
    })
}

/// The `key:"value"` pairs of the bracketed list, and whether the list was closed by `]`.
fn pairs(s: &str) -> (Vec<(&str, Cow<'_, str>)>, bool) {
    let mut out = Vec::with_capacity(48);
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', ';', '[']);
        if rest.starts_with(']') {
            return (out, true);
        }
        let Some(colon) = crate::scan::find_str(rest, ":\"") else {
            break;
        };
        let key = rest[..colon].trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            break;
        }
        let Some((value, end)) = crate::generic::kv::quoted(rest, colon + 2) else {
            break;
        };
        out.push((key, value));
        rest = &rest[end..];
    }
    (out, false)
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let start = fields_start(input.body).ok_or("no [key:\"value\" list: not a Check Point log")?;
    let (fields, closed) = pairs(&input.body[start + 1..]);
    if fields.is_empty() {
        return Err("Check Point: empty field list".into());
    }
    if !closed {
        out.problem(|| "Check Point: the field list ends before its closing bracket".into());
    }
    let (mut sb, mut db, mut sp, mut dp) = (None, None, None, None);
    let mut action = String::new();
    let mut product = String::new();
    for (k, cv) in &fields {
        let v: &str = cv;
        match *k {
            "src" => out.ip(Col::SourceIp, k, v),
            "dst" => out.ip(Col::DestinationIp, k, v),
            "s_port" => out.port(Col::SourcePort, k, v),
            "service" => out.port(Col::DestinationPort, k, v),
            "proto" => out.iana_protocol(k, v),
            "xlatesrc" => out.ip(Col::SourceNatIp, k, v),
            "xlatedst" => out.ip(Col::DestinationNatIp, k, v),
            "xlatesport" => out.port(Col::SourceNatPort, k, v),
            "xlatedport" => out.port(Col::DestinationNatPort, k, v),
            "rule_name" => out.str(Col::RuleName, v),
            "action" => action = v.to_ascii_lowercase(),
            "product" => {
                product = v.to_owned();
                out.vendor(k, v);
            }
            "origin" => out.vendor(k, v),
            "originsicname" | "hostname" => out.vendor(k, v),
            "user" | "src_user_name" | "user_name" => {
                // `John Doe (jdoe)` → `jdoe`.
                let u = v
                    .rsplit_once('(')
                    .and_then(|(_, r)| r.strip_suffix(')'))
                    .unwrap_or(v);
                out.str(Col::UserName, u.trim());
            }
            "ifdir" => out.str(Col::NetworkDirection, v),
            "client_outbound_bytes" => sb = v.parse::<u64>().ok(),
            "client_inbound_bytes" => db = v.parse::<u64>().ok(),
            "client_outbound_packets" => sp = v.parse::<u64>().ok(),
            "client_inbound_packets" => dp = v.parse::<u64>().ok(),
            "time" => {
                if let Ok(secs) = v.parse::<i64>() {
                    out.timestamp(secs.saturating_mul(1_000_000_000));
                }
            }
            "resource" | "url" => out.str(Col::UrlOriginal, v),
            _ => out.vendor(k, v),
        }
    }
    out.counters(sb, db, sp, dp);
    out.observer(
        "Check Point",
        if product.is_empty() { "Gaia" } else { &product },
        "firewall",
    );
    if !action.is_empty() {
        out.str(Col::EventAction, &action);
    }
    let denied = matches!(
        action.as_str(),
        "drop" | "reject" | "block" | "deny" | "prevent"
    );
    match action.as_str() {
        "failed log in" => {
            out.str(Col::EventOutcome, "failure");
            out.classify(&["authentication"], &["info", "authentication_failure"]);
        }
        "log in" => {
            out.str(Col::EventOutcome, "success");
            out.classify(&["authentication"], &["info", "authentication_success"]);
        }
        _ => {
            out.str(Col::EventOutcome, "success");
            out.classify(
                &["network"],
                &["connection", if denied { "denied" } else { "allowed" }],
            );
        }
    }
    Ok(Decoded::Fields)
}
