//! Sophos XG / SFOS firewall logs: `key=value`, in the pre-19 layout (`device="SFW" date=…
//! time=… log_type="Firewall" …`) and the SFOS 19+ one (`timestamp="…" log_type=… src_ip=…`).

use canh_schema::fields::events::Col;

use super::{Decoded, Input, Result};
use crate::generic::kv::Pairs;
use crate::out::Out;
use crate::time;

pub fn looks_like(body: &str) -> bool {
    let head = &body.as_bytes()[..body.len().min(600)];
    crate::find!(head, b"log_type=").is_some()
        && (crate::find!(head, b"log_component=").is_some()
            || crate::find!(head, b"device=\"SFW\"").is_some())
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let start = crate::find!(input.body.as_bytes(), b"device")
        .or_else(|| crate::find!(input.body.as_bytes(), b"timestamp="))
        .unwrap_or(0);
    let mut pairs = Pairs::new(&input.body[start..]);
    let (mut date, mut tod, mut tz, mut stamp) = (None, None, None, None);
    let (mut sb, mut db, mut sp, mut dp) = (None, None, None, None);
    let (mut log_type, mut subtype, mut component) = (None, None, None);
    let mut seen = false;
    for (k, cv) in pairs.by_ref() {
        let v: &str = &cv;
        match k {
            "date" => date = Some(cv.clone()),
            "time" => tod = Some(cv.clone()),
            "timezone" => {
                tz = Some(cv.clone());
                out.vendor(k, v);
            }
            "timestamp" => stamp = Some(cv.clone()),
            "log_id" => {
                seen = true;
                out.str(
                    Col::EventCode,
                    v.get(v.len().saturating_sub(5)..).unwrap_or(v),
                );
                out.vendor(k, v);
            }
            "log_type" => {
                log_type = Some(cv.clone());
                out.vendor(k, v);
            }
            "log_subtype" => {
                subtype = Some(cv.clone());
                out.vendor(k, v);
            }
            "log_component" => {
                component = Some(cv.clone());
                out.vendor(k, v);
            }
            "device_name" => out.str(Col::ObserverHostname, v),
            "src_ip" => out.ip(Col::SourceIp, k, v),
            "dst_ip" => out.ip(Col::DestinationIp, k, v),
            "src_port" => out.port(Col::SourcePort, k, v),
            "dst_port" => out.port(Col::DestinationPort, k, v),
            "tran_src_ip" => out.ip(Col::SourceNatIp, k, v),
            "tran_src_port" => out.port(Col::SourceNatPort, k, v),
            "tran_dst_ip" => out.ip(Col::DestinationNatIp, k, v),
            "tran_dst_port" => out.port(Col::DestinationNatPort, k, v),
            "protocol" => {
                if v.parse::<u8>().is_ok() {
                    out.iana_protocol(k, v)
                } else {
                    out.transport(v)
                }
            }
            "sent_bytes" | "bytes_sent" => sb = v.parse::<u64>().ok(),
            "recv_bytes" | "bytes_received" => db = v.parse::<u64>().ok(),
            "sent_pkts" | "packets_sent" => sp = v.parse::<u64>().ok(),
            "recv_pkts" | "packets_received" => dp = v.parse::<u64>().ok(),
            "user_name" | "user" => {
                if !v.is_empty() {
                    out.str(Col::UserName, v)
                }
            }
            "fw_rule_name" | "rule_name" => out.str(Col::RuleName, v),
            "url" => out.str(Col::UrlOriginal, v),
            "domain" => out.str(Col::UrlDomain, v),
            "message" => out.str(Col::Message, v),
            _ => out.vendor(k, v),
        }
    }
    if !seen {
        return Err("no log_id= field: not a Sophos log".into());
    }
    out.observer("Sophos", "XG", "firewall");
    out.counters(sb, db, sp, dp);
    // Time: SFOS 19 `timestamp="2022-09-07T14:37:48+0530"`, else `date` and `time` in the
    // sender's zone (the `timezone` abbreviations, like IST, are ambiguous).
    let ts = stamp.as_deref().and_then(|s| {
        let (d, rest) = s.split_once('T')?;
        let cut = rest.find(['+', '-', 'Z']).unwrap_or(rest.len());
        let c = time::parse_date_time(d, &rest[..cut])?;
        let off = time::parse_offset(&rest[cut..]).unwrap_or(input.meta.tz_offset_secs);
        Some(c.to_unix_ns(off))
    });
    let ts = ts.or_else(|| {
        let c = time::parse_date_time(date.as_deref()?, tod.as_deref()?)?;
        let off = tz
            .as_deref()
            .and_then(time::parse_offset)
            .unwrap_or(input.meta.tz_offset_secs);
        Some(c.to_unix_ns(off))
    });
    if let Some(ns) = ts {
        out.timestamp(ns);
    }
    let subtype = subtype.as_deref().unwrap_or("");
    let action = subtype.to_ascii_lowercase();
    if !action.is_empty() {
        out.str(Col::EventAction, &action);
    }
    let denied = matches!(
        action.as_str(),
        "denied" | "drop" | "dropped" | "blocked" | "deny"
    );
    let log_type = log_type.as_deref().unwrap_or("");
    match log_type {
        "Firewall" => {
            out.str(Col::EventOutcome, "success");
            let cat: &[&str] = if component
                .as_deref()
                .is_some_and(|c| c.contains("DoS") || c.contains("IPS"))
            {
                &["intrusion_detection", "network"]
            } else {
                &["network"]
            };
            let types: &[&str] = if denied {
                &["denied", "connection"]
            } else {
                &["end", "allowed", "connection"]
            };
            out.classify(cat, types);
        }
        "Event" | "Admin" | "Authentication" => {
            let failed = action.contains("fail") || action.contains("denied");
            out.str(
                Col::EventOutcome,
                if failed { "failure" } else { "success" },
            );
            out.classify(&["authentication"], &["info"]);
        }
        "IDP" | "Anti-Virus" | "Anti-Spam" | "ATP" => {
            out.str(Col::EventOutcome, "success");
            out.classify(
                &["intrusion_detection"],
                &[if denied { "denied" } else { "info" }],
            );
        }
        _ => {
            out.str(Col::EventOutcome, "success");
            out.classify(&["network"], &["info"]);
        }
    }
    if pairs.skipped > 0 {
        out.problem(|| {
            format!(
                "{} parts were not key=value pairs or lacked a closing quote",
                pairs.skipped
            )
        });
    }
    Ok(Decoded::Fields)
}
