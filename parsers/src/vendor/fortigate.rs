//! Fortinet FortiGate (FortiOS 6.x and 7.x): `key=value` logs of every type (traffic, utm,
//! event with its vpn, user and system subtypes).
//!
//! ```text
//! date=2019-05-10 time=11:37:47 devname="FG" devid="FGT60E" logid="0000000013" type="traffic"
//! subtype="forward" level="notice" vd="root" eventtime=1557513467369913239 tz="-0700"
//! srcip=10.1.100.11 srcport=58012 dstip=81.2.69.142 dstport=80 proto=6 action="close" …
//! ```
//!
//! Time: `eventtime` (seconds, ms, µs or ns since the epoch, by its length) when present, else
//! `date` and `time` in the `tz` the log gives, else in the sender's configured zone.
//! Fields without an ECS column go to the vendor map under their FortiOS names.

use canh_schema::fields::events::Col;

use super::{Decoded, Input, Result};
use crate::generic::kv::Pairs;
use crate::out::Out;
use crate::time;

/// A FortiOS log: a `key=value` body with a `logid` and a `type` (or `devid`) near the start.
pub fn looks_like(body: &str) -> bool {
    let head = &body.as_bytes()[..body.len().min(400)];
    crate::find!(head, b"logid=").is_some()
        && (crate::find!(head, b"type=").is_some() || crate::find!(head, b"devid=").is_some())
}

/// FortiOS log types, from `type=`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Traffic,
    Utm,
    Event,
    Other,
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let mut kind = Kind::Other;
    let mut subtype = "";
    let mut action = None;
    let mut status = None;
    let (mut date, mut tod, mut tz, mut eventtime) = (None, None, None, None);
    let (mut sb, mut db, mut sp, mut dp) = (None, None, None, None);
    let mut trandisp = "";
    let (mut transip, mut transport, mut tranip, mut tranport) = (None, None, None, None);
    let mut logid_seen = false;
    let mut cfg_change = false;
    let mut pairs = Pairs::new(kv_start(input.body));
    for (k, cv) in pairs.by_ref() {
        let v: &str = &cv;
        match k {
            "date" => date = Some(cv.clone()),
            "time" => tod = Some(cv.clone()),
            "tz" => tz = Some(cv.clone()),
            "eventtime" => eventtime = v.parse::<i64>().ok(),
            "logid" => {
                logid_seen = true;
                out.str(Col::EventCode, v);
            }
            "type" => {
                kind = match v {
                    "traffic" => Kind::Traffic,
                    "utm" => Kind::Utm,
                    "event" => Kind::Event,
                    _ => Kind::Other,
                };
                out.vendor(k, v);
            }
            "subtype" => {
                subtype = static_subtype(v);
                out.vendor(k, v);
            }
            "devname" => out.str(Col::ObserverHostname, v),
            "srcip" | "remip" => out.ip(Col::SourceIp, k, v),
            "srcport" => out.port(Col::SourcePort, k, v),
            "dstip" | "locip" => out.ip(Col::DestinationIp, k, v),
            "dstport" => out.port(Col::DestinationPort, k, v),
            "proto" => out.iana_protocol(k, v),
            "action" => action = Some(cv.clone()),
            "status" => {
                status = Some(cv.clone());
                out.vendor(k, v);
            }
            "user" | "unauthuser" | "dstuser" => {
                if !crate::out::is_placeholder(v) {
                    out.str(Col::UserName, v)
                }
            }
            "policyname" => out.str(Col::RuleName, v),
            "service" => {
                if !v.is_empty() && !v.bytes().any(|b| b == b'/') {
                    out.str_lower(Col::NetworkProtocol, v);
                } else {
                    out.vendor(k, v);
                }
            }
            "sentbyte" => sb = v.parse::<u64>().ok(),
            "rcvdbyte" => db = v.parse::<u64>().ok(),
            "sentpkt" => sp = v.parse::<u64>().ok(),
            "rcvdpkt" => dp = v.parse::<u64>().ok(),
            "trandisp" => {
                trandisp = match v {
                    "snat" => "snat",
                    "dnat" => "dnat",
                    "snat+dnat" => "snat+dnat",
                    _ => "",
                };
                out.vendor(k, v);
            }
            "transip" => transip = Some(cv.clone()),
            "transport" => transport = Some(cv.clone()),
            "tranip" => tranip = Some(cv.clone()),
            "tranport" => tranport = Some(cv.clone()),
            "url" => out.str(Col::UrlOriginal, v),
            "hostname" => out.str(Col::UrlDomain, v),
            "qname" => out.str(Col::DnsQuestionName, v),
            "msg" => out.str(Col::Message, v),
            "direction" => out.str(Col::NetworkDirection, direction(v)),
            "cfgpath" | "cfgobj" | "cfgattr" => {
                cfg_change = true;
                out.vendor(k, v);
            }
            _ => out.vendor(k, v),
        }
    }
    if !logid_seen {
        return Err("no logid= field: not a FortiOS log".into());
    }
    if pairs.skipped > 0 {
        out.problem(|| {
            format!(
                "{} parts were not key=value pairs or lacked a closing quote",
                pairs.skipped
            )
        });
    }

    if let Some(ns) = eventtime.and_then(epoch_ns) {
        out.timestamp(ns);
    } else if let (Some(d), Some(t)) = (date.as_deref(), tod.as_deref()) {
        let offset = tz
            .as_deref()
            .and_then(time::parse_offset)
            .unwrap_or(input.meta.tz_offset_secs);
        match time::parse_date_time(d, t) {
            Some(c) => out.timestamp(c.to_unix_ns(offset)),
            None => out.problem(|| format!("date={d} time={t} is not a valid time")),
        }
    }

    // NAT: `transip`/`transport` is the source after SNAT, `tranip`/`tranport` the destination
    // after DNAT (FortiOS names both "trans…" in older releases; `trandisp` says which).
    let dnat_only = trandisp == "dnat";
    if let Some(ip) = transip.as_deref() {
        let col = if dnat_only {
            Col::DestinationNatIp
        } else {
            Col::SourceNatIp
        };
        out.ip(col, "transip", ip);
    }
    if let Some(p) = transport.as_deref() {
        let col = if dnat_only {
            Col::DestinationNatPort
        } else {
            Col::SourceNatPort
        };
        out.port(col, "transport", p);
    }
    if let Some(ip) = tranip.as_deref() {
        out.ip(Col::DestinationNatIp, "tranip", ip);
    }
    if let Some(p) = tranport.as_deref() {
        out.port(Col::DestinationNatPort, "tranport", p);
    }
    out.counters(sb, db, sp, dp);
    out.observer("Fortinet", "Fortigate", "firewall");

    let action = action.as_deref().unwrap_or("");
    if !action.is_empty() {
        out.str(Col::EventAction, action);
    }
    classify(out, kind, subtype, action, status.as_deref(), cfg_change);
    Ok(Decoded::Fields)
}

/// Where the `key=value` part starts: FortiGates send it right after `<PRI>`, relays after a
/// syslog header; either way the body may carry a leading word that is not a pair.
fn kv_start(body: &str) -> &str {
    let b = body.as_bytes();
    let key_len = b
        .iter()
        .take_while(|&&c| crate::generic::kv::is_key_byte(c))
        .count();
    if b.get(key_len) == Some(&b'=') {
        return body;
    }
    match crate::find!(b, b"date=").or_else(|| crate::find!(b, b"logver=")) {
        Some(p) => &body[p..],
        None => body,
    }
}

fn static_subtype(v: &str) -> &'static str {
    match v {
        "forward" => "forward",
        "local" => "local",
        "multicast" => "multicast",
        "sniffer" => "sniffer",
        "vpn" => "vpn",
        "user" => "user",
        "system" => "system",
        "virus" => "virus",
        "webfilter" => "webfilter",
        "ips" => "ips",
        "anomaly" => "anomaly",
        "app-ctrl" => "app-ctrl",
        "dns" => "dns",
        "dlp" => "dlp",
        "emailfilter" => "emailfilter",
        "waf" => "waf",
        "ssl" => "ssl",
        "ha" => "ha",
        "router" => "router",
        "wireless" => "wireless",
        "endpoint" => "endpoint",
        _ => "",
    }
}

fn direction(v: &str) -> &str {
    match v {
        "incoming" => "inbound",
        "outgoing" => "outbound",
        other => other,
    }
}

/// Seconds, milliseconds, microseconds or nanoseconds since the epoch, told apart by size.
fn epoch_ns(v: i64) -> Option<i64> {
    Some(match v {
        ..=0 => return None,
        1..=99_999_999_999 => v.checked_mul(1_000_000_000)?,
        100_000_000_000..=99_999_999_999_999 => v.checked_mul(1_000_000)?,
        100_000_000_000_000..=99_999_999_999_999_999 => v.checked_mul(1_000)?,
        _ => v,
    })
}

fn classify(
    out: &mut Out<'_>,
    kind: Kind,
    subtype: &str,
    action: &str,
    status: Option<&str>,
    cfg_change: bool,
) {
    let denied = matches!(
        action,
        "deny" | "blocked" | "block" | "dropped" | "drop" | "reset" | "reject"
    );
    let failed = matches!(status, Some("failure" | "failed" | "fail" | "negate"));
    match kind {
        Kind::Traffic => {
            let verdict = if denied { "denied" } else { "allowed" };
            let phase = match action {
                "start" => "start",
                "" | "deny" | "blocked" => "info",
                _ => "end",
            };
            out.classify(&["network"], &["connection", phase, verdict]);
            out.str(Col::EventOutcome, "success");
        }
        Kind::Utm => {
            let cat = match subtype {
                "virus" => "malware",
                "ips" | "anomaly" => "intrusion_detection",
                "webfilter" | "dns" | "app-ctrl" | "ssl" | "waf" => "network",
                "dlp" | "emailfilter" => "threat",
                _ => "network",
            };
            let verdict = if denied { "denied" } else { "allowed" };
            out.classify(&[cat], &["info", verdict]);
            out.str(Col::EventOutcome, "success");
        }
        Kind::Event => {
            let auth = matches!(subtype, "vpn" | "user")
                || matches!(action, "login" | "logout" | "auth-logon" | "auth-logout");
            if auth {
                let ty = if failed {
                    "authentication_failure"
                } else {
                    "info"
                };
                out.classify(&["authentication"], &["info", ty]);
            } else if cfg_change {
                out.classify(&["configuration"], &["change"]);
            } else {
                out.classify(&["host"], &["info"]);
            }
            match status {
                Some(_) if failed => out.str(Col::EventOutcome, "failure"),
                Some("success") => out.str(Col::EventOutcome, "success"),
                _ => {}
            }
        }
        Kind::Other => out.classify(&["network"], &["info"]),
    }
}
