//! Juniper SRX `RT_FLOW` session logs, structured (RFC 5424 `[junos@2636… key="value"]`) and
//! plain (`RT_FLOW_SESSION_CREATE: session created 10.0.0.1/594->1.2.3.4/80 …`).
//!
//! `event.action`: `flow_started` (create), `flow_close` (close), `flow_deny` (deny), as the
//! Elastic Juniper module names them.

use std::borrow::Cow;

use canh_schema::fields::events::Col;

use super::{Decoded, Input, Result};
use crate::out::Out;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Close,
    Deny,
}

fn kind_of(tag: &str) -> Option<Kind> {
    if tag.starts_with("RT_FLOW_SESSION_CREATE") {
        Some(Kind::Create)
    } else if tag.starts_with("RT_FLOW_SESSION_CLOSE") {
        Some(Kind::Close)
    } else if tag.starts_with("RT_FLOW_SESSION_DENY") {
        Some(Kind::Deny)
    } else {
        None
    }
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    out.observer("Juniper", "SRX", "firewall");
    // Structured: the MSGID names the event, the SD element holds the fields.
    if let Some(kind) = input.header.msgid.and_then(kind_of) {
        if let Some(sd) = input
            .header
            .structured_data
            .iter()
            .find(|e| e.id.starts_with("junos@"))
        {
            out.str(Col::EventCode, input.header.msgid.unwrap_or(""));
            structured(out, kind, sd.params.iter().map(|(k, v)| (*k, v)));
            finish(out, kind);
            return Ok(Decoded::Fields);
        }
    }
    // Plain: `RT_FLOW_SESSION_CREATE: session created …` (after `RT_FLOW:` or not).
    let body = input.body.trim_start();
    let body = body.strip_prefix("RT_FLOW:").map_or(body, str::trim_start);
    let (tag, text) = body.split_once(": ").ok_or("RT_FLOW: no event tag")?;
    let kind = kind_of(tag).ok_or_else(|| format!("RT_FLOW: unsupported event {tag}"))?;
    out.str(Col::EventCode, tag);
    plain(out, kind, text).ok_or_else(|| format!("{tag}: unexpected message text"))?;
    finish(out, kind);
    Ok(Decoded::Fields)
}

fn finish(out: &mut Out<'_>, kind: Kind) {
    let (action, types): (&str, &[&str]) = match kind {
        Kind::Create => ("flow_started", &["start", "allowed", "connection"]),
        Kind::Close => ("flow_close", &["end", "allowed", "connection"]),
        Kind::Deny => ("flow_deny", &["denied", "connection"]),
    };
    out.str(Col::EventAction, action);
    out.str(Col::EventOutcome, "success");
    out.classify(&["network"], types);
}

fn structured<'a>(
    out: &mut Out<'_>,
    _kind: Kind,
    params: impl Iterator<Item = (&'a str, &'a Cow<'a, str>)>,
) {
    let (mut sb, mut db, mut sp, mut dp) = (None, None, None, None);
    for (k, v) in params {
        let v: &str = v;
        match k {
            "source-address" => out.ip(Col::SourceIp, k, v),
            "source-port" => out.port(Col::SourcePort, k, v),
            "destination-address" => out.ip(Col::DestinationIp, k, v),
            "destination-port" => out.port(Col::DestinationPort, k, v),
            "nat-source-address" => out.ip(Col::SourceNatIp, k, v),
            "nat-source-port" => out.port(Col::SourceNatPort, k, v),
            "nat-destination-address" => out.ip(Col::DestinationNatIp, k, v),
            "nat-destination-port" => out.port(Col::DestinationNatPort, k, v),
            "protocol-id" => out.iana_protocol(k, v),
            "policy-name" => out.str(Col::RuleName, v),
            "username" if !crate::out::is_placeholder(v) => out.str(Col::UserName, v),
            "bytes-from-client" => sb = v.parse().ok(),
            "bytes-from-server" => db = v.parse().ok(),
            "packets-from-client" => sp = v.parse().ok(),
            "packets-from-server" => dp = v.parse().ok(),
            _ => out.vendor(k, v),
        }
    }
    out.counters(sb, db, sp, dp);
}

/// `a/p->b/p`
fn tuple(s: &str) -> Option<(&str, &str, &str, &str)> {
    let (src, dst) = s.split_once("->")?;
    let (a, ap) = src.rsplit_once('/')?;
    let (b, bp) = dst.rsplit_once('/')?;
    Some((a, ap, b, bp))
}

/// `count(bytes)`
fn count_bytes(s: &str) -> Option<(u64, u64)> {
    let (n, rest) = s.split_once('(')?;
    Some((n.parse().ok()?, rest.strip_suffix(')')?.parse().ok()?))
}

/// The plain form. Releases differ in optional words (connection tags `0x0`, NAT rule types),
/// so the fixed anchors are the address tuples and the protocol number that follows the NAT
/// rules.
fn plain(out: &mut Out<'_>, kind: Kind, text: &str) -> Option<()> {
    let text = match kind {
        Kind::Create => text.strip_prefix("session created ")?,
        Kind::Close => {
            let r = text.strip_prefix("session closed ")?;
            let (reason, rest) = r.split_once(": ")?;
            out.vendor("reason", reason);
            rest
        }
        Kind::Deny => text.strip_prefix("session denied ")?,
    };
    let w: Vec<&str> = text.split_ascii_whitespace().collect();
    let (a, ap, b, bp) = tuple(w.first()?)?;
    out.ip(Col::SourceIp, "source-address", a);
    out.port(Col::SourcePort, "source-port", ap);
    out.ip(Col::DestinationIp, "destination-address", b);
    out.port(Col::DestinationPort, "destination-port", bp);
    let mut i = 1;
    if w.get(i).is_some_and(|t| t.starts_with("0x")) {
        i += 1;
    }
    out.vendor("service-name", w.get(i)?);
    i += 1;
    if kind == Kind::Deny {
        // `proto(icmp-type) policy from-zone to-zone …`
        let proto = w.get(i)?.split('(').next()?;
        out.iana_protocol("protocol-id", proto);
        out.str(Col::RuleName, w.get(i + 1)?);
        out.vendor("source-zone-name", w.get(i + 2)?);
        out.vendor("destination-zone-name", w.get(i + 3)?);
        return Some(());
    }
    if let Some((na, nap, nb, nbp)) = w.get(i).and_then(|t| tuple(t)) {
        out.ip(Col::SourceNatIp, "nat-source-address", na);
        out.port(Col::SourceNatPort, "nat-source-port", nap);
        out.ip(Col::DestinationNatIp, "nat-destination-address", nb);
        out.port(Col::DestinationNatPort, "nat-destination-port", nbp);
        i += 1;
    }
    // Skip the NAT rule words up to the protocol number.
    while w.get(i).is_some_and(|t| t.parse::<u8>().is_err()) {
        i += 1;
    }
    out.iana_protocol("protocol-id", w.get(i)?);
    out.str(Col::RuleName, w.get(i + 1)?);
    out.vendor("source-zone-name", w.get(i + 2)?);
    out.vendor("destination-zone-name", w.get(i + 3)?);
    out.vendor("session-id-32", w.get(i + 4)?);
    if kind == Kind::Close {
        let c = w.get(i + 5).and_then(|t| count_bytes(t));
        let s = w.get(i + 6).and_then(|t| count_bytes(t));
        out.counters(
            c.map(|x| x.1),
            s.map(|x| x.1),
            c.map(|x| x.0),
            s.map(|x| x.0),
        );
        if let Some(e) = w.get(i + 7) {
            out.vendor("elapsed-time", e);
        }
    }
    Some(())
}
