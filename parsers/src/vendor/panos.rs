//! Palo Alto Networks PAN-OS syslog (the default CSV format): TRAFFIC, THREAT, SYSTEM, CONFIG
//! and GLOBALPROTECT logs, each with its own field order (PAN-OS 9.1–11.x; later releases only
//! append fields). Field positions below are 0-based, as in the PAN-OS "Syslog Field
//! Descriptions".

use std::borrow::Cow;

use canh_schema::fields::events::Col;

use super::{word_after, Decoded, Input, Result};
use crate::out::Out;
use crate::time;

/// `1,2018/11/30 16:09:07,012801096514,TRAFFIC,…`: a receive time in field 1 and a known log
/// type in field 3.
pub fn looks_like(body: &str) -> bool {
    let mut it = body.splitn(5, ',');
    let _future = it.next();
    let recv = it.next().unwrap_or("");
    let _serial = it.next();
    let ty = it.next().unwrap_or("");
    recv.len() == 19
        && recv.as_bytes()[4] == b'/'
        && matches!(
            ty,
            "TRAFFIC"
                | "THREAT"
                | "SYSTEM"
                | "CONFIG"
                | "GLOBALPROTECT"
                | "HIPMATCH"
                | "USERID"
                | "AUTH"
                | "DECRYPTION"
                | "TUNNEL"
                | "CORRELATION"
                | "IPTAG"
                | "SCTP"
        )
}

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let mut fields: Vec<Cow<'_, str>> = Vec::with_capacity(120);
    crate::generic::csv::split_into(input.body.trim(), &mut fields);
    let f = F(&fields);
    if fields.len() < 7 {
        return Err(format!(
            "PAN-OS: {} fields, at least 7 expected",
            fields.len()
        ));
    }
    out.observer("Palo Alto Networks", "PAN-OS", "firewall");
    out.vendor("serial", f.get(2));
    let ty = f.get(3);
    let subtype = f.get(4);
    out.vendor("type", ty);
    out.vendor("subtype", subtype);
    // Generated time, in the device's zone.
    if let Some((d, t)) = f.get(6).split_once(' ') {
        if let Some(c) = time::parse_date_time(d, t) {
            out.timestamp(c.to_unix_ns(input.meta.tz_offset_secs));
        }
    }
    match ty {
        "TRAFFIC" => traffic(out, &f, fields.len()),
        "THREAT" => threat(out, &f, fields.len()),
        "SYSTEM" => system(out, &f),
        "CONFIG" => config(out, &f),
        "GLOBALPROTECT" => globalprotect(out, &f),
        _ => {
            out.classify(&["network"], &["info"]);
            Ok(Decoded::Fields)
        }
    }
}

/// The CSV fields of one line; a missing field reads as empty.
struct F<'a>(&'a [Cow<'a, str>]);

impl F<'_> {
    fn get(&self, i: usize) -> &str {
        self.0.get(i).map_or("", |c| c.as_ref())
    }
}

/// Fields 7–30, common to TRAFFIC and THREAT.
fn session_fields(out: &mut Out<'_>, f: &F<'_>) {
    out.ip(Col::SourceIp, "src", f.get(7));
    out.ip(Col::DestinationIp, "dst", f.get(8));
    let snat = f.get(9);
    let dnat = f.get(10);
    let no_nat = |ip: &str| matches!(ip, "0.0.0.0" | "::" | "");
    if !no_nat(snat) {
        out.ip(Col::SourceNatIp, "natsrc", snat);
        out.port(Col::SourceNatPort, "natsport", f.get(26));
    }
    if !no_nat(dnat) {
        out.ip(Col::DestinationNatIp, "natdst", dnat);
        out.port(Col::DestinationNatPort, "natdport", f.get(27));
    }
    out.str(Col::RuleName, f.get(11));
    let user = f.get(12);
    if !user.is_empty() {
        out.str(Col::UserName, user);
    }
    if !f.get(13).is_empty() {
        out.vendor("dstuser", f.get(13));
    }
    out.str(Col::NetworkProtocol, f.get(14));
    for (i, k) in [
        (15, "vsys"),
        (16, "from"),
        (17, "to"),
        (18, "inbound_if"),
        (19, "outbound_if"),
        (22, "sessionid"),
    ] {
        if !f.get(i).is_empty() {
            out.vendor(k, f.get(i));
        }
    }
    out.port(Col::SourcePort, "sport", f.get(24));
    out.port(Col::DestinationPort, "dport", f.get(25));
    out.transport(f.get(29));
    out.vendor("action", f.get(30));
}

fn verdict(action: &str) -> &'static str {
    match action {
        "allow" | "alert" | "continue" | "override" => "allowed",
        _ => "denied",
    }
}

fn traffic(out: &mut Out<'_>, f: &F<'_>, n: usize) -> Result {
    if n < 31 {
        return Err(format!("PAN-OS TRAFFIC: {n} fields, at least 31 expected"));
    }
    session_fields(out, f);
    let num = |i: usize| f.get(i).parse::<u64>().ok();
    out.counters(num(32), num(33), num(44), num(45));
    if let Some(b) = num(31) {
        out.num(Col::NetworkBytes, b);
    }
    if let Some(p) = num(34) {
        out.num(Col::NetworkPackets, p);
    }
    for (i, k) in [
        (36, "elapsed"),
        (37, "category"),
        (46, "session_end_reason"),
        (53, "action_source"),
    ] {
        if !f.get(i).is_empty() {
            out.vendor(k, f.get(i));
        }
    }
    let action = f.get(30);
    let (ev, phase) = match f.get(4) {
        "start" => ("flow_started", "start"),
        "end" => ("flow_terminated", "end"),
        "drop" => ("flow_dropped", "info"),
        "deny" => ("flow_denied", "info"),
        _ => ("flow", "info"),
    };
    out.str(Col::EventAction, ev);
    out.str(Col::EventOutcome, "success");
    out.classify(&["network"], &[verdict(action), phase, "connection"]);
    Ok(Decoded::Fields)
}

fn threat(out: &mut Out<'_>, f: &F<'_>, n: usize) -> Result {
    if n < 36 {
        return Err(format!("PAN-OS THREAT: {n} fields, at least 36 expected"));
    }
    session_fields(out, f);
    let subtype = f.get(4);
    let misc = f.get(31);
    match subtype {
        "url" => {
            out.str(Col::UrlOriginal, misc);
            if let Some(host) = misc.split('/').next().filter(|h| !h.is_empty()) {
                out.str(Col::UrlDomain, host);
            }
        }
        _ if !misc.is_empty() => out.vendor("misc", misc),
        _ => {}
    }
    // `Name(1234)`: the threat name is the rule the device matched.
    let threat = f.get(32);
    if !threat.is_empty() {
        out.vendor("threatid", threat);
    }
    for (i, k) in [(33, "category"), (34, "severity"), (35, "direction")] {
        if !f.get(i).is_empty() {
            out.vendor(k, f.get(i));
        }
    }
    let ev = match subtype {
        "url" => "url_filtering",
        "virus" | "wildfire-virus" => "virus_detected",
        "spyware" => "spyware_detected",
        "vulnerability" => "exploit_detected",
        "file" => "file_match",
        "scan" | "flood" | "packet" => "scan_detected",
        "data" => "data_match",
        "wildfire" => "wildfire_verdict",
        _ => "threat",
    };
    out.str(Col::EventAction, ev);
    out.str(Col::EventOutcome, "success");
    let cat = if subtype == "url" {
        "network"
    } else {
        "intrusion_detection"
    };
    out.classify(&[cat], &["info", verdict(f.get(30))]);
    Ok(Decoded::Fields)
}

fn system(out: &mut Out<'_>, f: &F<'_>) -> Result {
    out.str(Col::EventCode, f.get(8));
    for (i, k) in [(7, "vsys"), (9, "object"), (12, "module"), (13, "severity")] {
        if !f.get(i).is_empty() {
            out.vendor(k, f.get(i));
        }
    }
    let event_id = f.get(8);
    let desc = f.get(14);
    out.str(Col::Message, desc);
    // Administrator logins are SYSTEM events `auth-success`/`auth-fail` with the user in the text.
    match event_id {
        "auth-success"
        | "auth-fail"
        | "globalprotectportal-auth-succ"
        | "globalprotectportal-auth-fail" => {
            let ok = event_id.ends_with("succ") || event_id.ends_with("success");
            if let Some(u) =
                quoted_after(desc, "User name: ").or_else(|| quoted_after(desc, "user '"))
            {
                out.str(Col::UserName, u);
            }
            if let Some(ip) = word_after(desc, "From: ") {
                out.ip(Col::SourceIp, "from", ip.trim_end_matches('.'));
            }
            out.str(Col::EventAction, "authentication");
            out.str(Col::EventOutcome, if ok { "success" } else { "failure" });
            let ty = if ok {
                "authentication_success"
            } else {
                "authentication_failure"
            };
            out.classify(&["authentication"], &["info", ty]);
        }
        _ => {
            out.str(Col::EventAction, event_id);
            out.classify(&["host"], &["info"]);
        }
    }
    Ok(Decoded::Fields)
}

fn quoted_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let p = s.find(key)? + key.len();
    let rest = &s[p..];
    let end = rest.find(['\'', '.', ' ']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|u| !u.is_empty())
}

fn config(out: &mut Out<'_>, f: &F<'_>) -> Result {
    // 7 host, 8 vsys, 9 command, 10 admin, 11 client, 12 result, 13 path
    let client = f.get(7);
    if client.parse::<std::net::IpAddr>().is_ok() {
        out.ip(Col::SourceIp, "host", client);
    } else if !client.is_empty() {
        out.vendor("host", client);
    }
    out.str(Col::UserName, f.get(10));
    for (i, k) in [
        (8, "vsys"),
        (9, "cmd"),
        (11, "client"),
        (12, "result"),
        (13, "path"),
    ] {
        if !f.get(i).is_empty() {
            out.vendor(k, f.get(i));
        }
    }
    out.str(Col::EventAction, "configuration-change");
    let ok =
        f.get(12).eq_ignore_ascii_case("succeeded") || f.get(12).eq_ignore_ascii_case("submitted");
    out.str(Col::EventOutcome, if ok { "success" } else { "failure" });
    out.classify(&["configuration"], &["change"]);
    Ok(Decoded::Fields)
}

fn globalprotect(out: &mut Out<'_>, f: &F<'_>) -> Result {
    // 8 event id, 9 stage, 10 auth method, 11 tunnel, 12 user, 15 public ip, 17 private ip,
    // 25 reason, 26 error, 28 status, 31 connect method, 33 portal
    let event = f.get(8);
    out.str(Col::EventCode, event);
    out.str(Col::UserName, f.get(12));
    out.ip(Col::SourceIp, "public_ip", f.get(15));
    if !f.get(17).is_empty() && f.get(17) != "0.0.0.0" {
        out.ip(Col::SourceNatIp, "private_ip", f.get(17));
    }
    for (i, k) in [
        (9, "stage"),
        (10, "auth_method"),
        (11, "tunnel_type"),
        (14, "machine_name"),
        (22, "client_os"),
        (25, "reason"),
        (26, "error"),
        (31, "connect_method"),
        (33, "portal"),
    ] {
        if !f.get(i).is_empty() {
            out.vendor(k, f.get(i));
        }
    }
    let ok = f.get(28) == "success";
    out.str(Col::EventAction, event);
    out.str(Col::EventOutcome, if ok { "success" } else { "failure" });
    let ty = match event {
        "gateway-logout" | "portal-logout" => "end",
        _ if ok => "authentication_success",
        _ => "authentication_failure",
    };
    out.classify(&["authentication", "network"], &["info", ty]);
    Ok(Decoded::Fields)
}
