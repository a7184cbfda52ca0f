//! Linux netfilter `LOG` target lines (iptables, ip6tables, nftables), as the kernel prints them:
//!
//! ```text
//! kernel: [123.456] PREFIX IN=eth0 OUT= MAC=… SRC=1.2.3.4 DST=5.6.7.8 LEN=52 … PROTO=TCP SPT=1 DPT=2 …
//! ```
//!
//! The log prefix is the operator's text: its words become `event.action` (`DROP_INPUT:` →
//! `drop_input`); Ubiquiti's `[ruleset-rule-A|D|R]` form gives `rule.name` and the verdict.

use canh_schema::fields::events::Col;

use super::{Decoded, Input, Result};
use crate::out::Out;

pub fn looks_like(body: &str) -> bool {
    let b = body.as_bytes();
    crate::find!(b, b"IN=").is_some()
        && crate::find!(b, b" OUT=").is_some()
        && crate::find!(b, b" SRC=").is_some()
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let body = input.body;
    let at = find_in(body).ok_or("no IN= field: not a netfilter line")?;
    let mut prefix = body[..at].trim();
    // Kernel uptime stamp `[ 1234.5678]`.
    if prefix.starts_with('[') {
        if let Some(end) = prefix.find(']') {
            if prefix[1..end].trim().parse::<f64>().is_ok() {
                prefix = prefix[end + 1..].trim();
            }
        }
    }
    if prefix.is_empty() {
        if let Some(app) = input.header.appname.filter(|a| *a != "kernel") {
            prefix = app;
        }
    }
    let mut verdict = None;
    if let Some(inner) = prefix.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
        // Ubiquiti EdgeOS / UniFi: `[wan-lan-default-D]`.
        let mut parts = inner.rsplitn(3, '-');
        let letter = parts.next().unwrap_or("");
        let rule = parts.next().unwrap_or("");
        let set = parts.next().unwrap_or("");
        verdict = match letter {
            "D" => Some("drop"),
            "A" => Some("accept"),
            "R" => Some("reject"),
            _ => None,
        };
        if verdict.is_some() {
            out.str(Col::RuleName, set);
            out.vendor("rule_number", rule);
        }
    }
    let action = match verdict {
        Some(v) => v.to_string(),
        None => action_of(prefix),
    };
    if !action.is_empty() {
        out.str(Col::EventAction, &action);
        if verdict.is_none() {
            out.vendor("log_prefix", prefix);
        }
    }
    let mut proto = "";
    // ICMP errors quote the offending packet in brackets (`[SRC=… DST=… PROTO=UDP SPT=…]`);
    // its fields describe that packet, not this one.
    let (fields, quoted) = match crate::scan::find_str(&body[at..], " [") {
        Some(p) => (&body[at..at + p], Some(body[at + p + 1..].trim())),
        None => (&body[at..], None),
    };
    if let Some(q) = quoted {
        out.vendor("quoted_packet", q);
    }
    for word in fields.split_ascii_whitespace() {
        let Some((k, v)) = word.split_once('=') else {
            out.vendor(word, "");
            continue;
        };
        match k {
            "SRC" => out.ip(Col::SourceIp, k, v),
            "DST" => out.ip(Col::DestinationIp, k, v),
            "SPT" => out.port(Col::SourcePort, k, v),
            "DPT" => out.port(Col::DestinationPort, k, v),
            "PROTO" => proto = v,
            _ => out.vendor(k, v),
        }
    }
    match proto.parse::<u8>() {
        Ok(_) => out.iana_protocol("PROTO", proto),
        Err(_) if proto == "ICMPv6" => out.str(Col::NetworkTransport, "ipv6-icmp"),
        Err(_) => out.transport(proto),
    }
    let a = action.as_str();
    let denied = ["drop", "deny", "reject", "block"]
        .iter()
        .any(|w| a.contains(w));
    let allowed = ["accept", "allow", "pass"].iter().any(|w| a.contains(w));
    let verdict = if denied {
        "denied"
    } else if allowed {
        "allowed"
    } else {
        "info"
    };
    out.classify(&["network"], &[verdict, "connection"]);
    out.observer("Linux", "netfilter", "firewall");
    Ok(Decoded::Fields)
}

/// The offset of the `IN=` field (at the start or after a space or `]`).
fn find_in(body: &str) -> Option<usize> {
    let b = body.as_bytes();
    memchr::memmem::find_iter(b, b"IN=").find(|&p| p == 0 || matches!(b[p - 1], b' ' | b']' | b':'))
}

/// `iptables DROP_INPUT:` → `drop_input`.
fn action_of(prefix: &str) -> String {
    let p = prefix.trim_end_matches(':').trim();
    let p = ["iptables", "ip6tables", "nftables", "netfilter"]
        .iter()
        .find_map(|w| p.strip_prefix(w).filter(|r| r.starts_with(' ')))
        .unwrap_or(p)
        .trim();
    let mut s = String::with_capacity(p.len());
    for c in p.chars() {
        match c {
            ' ' | '-' => s.push('_'),
            ':' | '[' | ']' => {}
            c => s.extend(c.to_lowercase()),
        }
    }
    s
}
