//! MikroTik RouterOS firewall log lines (topics `firewall,info`):
//!
//! ```text
//! firewall,info DROP_WAN forward: in:ether1 out:bridge, src-mac 00:0c:42:aa:bb:cc,
//!   proto TCP (SYN), 203.0.113.5:51000->192.168.88.10:22, NAT (…)->…, len 60
//! ```
//!
//! The optional log prefix becomes `rule.name`, the chain is kept as `chain`.

use canh_schema::fields::events::Col;

use super::{Decoded, Input, Result};
use crate::out::Out;

pub fn looks_like(body: &str) -> bool {
    let b = body.as_bytes();
    crate::find!(b, b" in:").is_some()
        && crate::find!(b, b" out:").is_some()
        && crate::find!(b, b"proto ").is_some()
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let line = input.body;
    let at = crate::find!(line.as_bytes(), b": in:")
        .ok_or("no `chain: in:`: not a RouterOS firewall line")?;
    // Words before the chain: topics (`firewall,info`, possibly in the header) and the prefix.
    let head: Vec<&str> = line[..at].split_ascii_whitespace().collect();
    let chain = head.last().copied().unwrap_or("");
    out.vendor("chain", chain);
    let prefix: Vec<&str> = head[..head.len().saturating_sub(1)]
        .iter()
        .copied()
        .filter(|w| !w.contains(','))
        .collect();
    if !prefix.is_empty() {
        out.str(Col::RuleName, &prefix.join(" "));
    }
    let rest = &line[at + 2..];
    let mut action = None;
    for part in rest.split(", ") {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("in:") {
            let (iface, out_part) = v.split_once(" out:").unwrap_or((v, ""));
            out.vendor("in_interface", iface);
            out.vendor("out_interface", out_part);
        } else if let Some(v) = part.strip_prefix("src-mac ") {
            out.vendor("src_mac", v);
        } else if let Some(v) = part.strip_prefix("proto ") {
            let (p, flags) = v.split_once(' ').unwrap_or((v, ""));
            out.transport(p);
            if !flags.is_empty() {
                out.vendor("flags", flags.trim_matches(['(', ')']));
            }
        } else if let Some(v) = part.strip_prefix("len ") {
            out.vendor("len", v);
        } else if let Some(v) = part.strip_prefix("NAT ") {
            // `(a:p->b:p)->c:p`: the inner tuple is before source NAT, the outer after DNAT, or
            // `a:p->(b:p->c:p)`.
            nat(out, v);
        } else if part.contains("->") {
            let (src, dst) = part.split_once("->").unwrap_or(("", ""));
            endpoint(out, src, Col::SourceIp, Col::SourcePort);
            endpoint(out, dst, Col::DestinationIp, Col::DestinationPort);
        } else if let Some(v) = part.strip_prefix("action:") {
            action = Some(v.to_owned());
        }
    }
    if action.is_none() {
        let p = prefix.join(" ").to_ascii_lowercase();
        action = ["drop", "reject", "accept"]
            .iter()
            .find(|w| p.contains(*w))
            .map(|w| w.to_string());
    }
    if let Some(a) = &action {
        out.str(Col::EventAction, a);
    }
    let denied = action.as_deref().is_some_and(|a| a != "accept");
    out.observer("MikroTik", "RouterOS", "firewall");
    out.classify(
        &["network"],
        &[
            "connection",
            if action.is_none() {
                "info"
            } else if denied {
                "denied"
            } else {
                "allowed"
            },
        ],
    );
    Ok(Decoded::Fields)
}

/// `10.0.0.1:80`, `[2001:db8::1]:80`, or an address without port (ICMP).
fn endpoint(out: &mut Out<'_>, s: &str, ip: Col, port: Col) {
    let s = s.trim().trim_matches(['(', ')']);
    let (addr, p) = if let Some(r) = s.strip_prefix('[') {
        match r.split_once("]:") {
            Some((a, p)) => (a, Some(p)),
            None => (r.trim_end_matches(']'), None),
        }
    } else if s.matches(':').count() == 1 {
        let (a, p) = s.split_once(':').unwrap_or((s, ""));
        (a, Some(p))
    } else {
        (s, None)
    };
    out.ip(ip, "address", addr);
    if let Some(p) = p {
        out.port(port, "port", p);
    }
}

fn nat(out: &mut Out<'_>, v: &str) {
    if let Some(inner) = v.strip_prefix('(') {
        // Source NAT: `(orig_src->nat_src)->dst`.
        if let Some((tuple, _)) = inner.split_once(")->") {
            if let Some((_, nat_src)) = tuple.split_once("->") {
                endpoint(out, nat_src, Col::SourceNatIp, Col::SourceNatPort);
            }
        }
    } else if let Some((_, inner)) = v.split_once("->(") {
        // Destination NAT: `src->(orig_dst->nat_dst)`.
        if let Some((_, nat_dst)) = inner.trim_end_matches(')').split_once("->") {
            endpoint(out, nat_dst, Col::DestinationNatIp, Col::DestinationNatPort);
        }
    }
}
