//! pfSense and OPNsense `filterlog` lines: the packet filter's CSV.
//!
//! ```text
//! rule,subrule,anchor,tracker,interface,reason,action,direction,ipver,
//!   IPv4: tos,ecn,ttl,id,offset,flags,proto-id,proto,length,src,dst,
//!   IPv6: class,flow-label,hop-limit,proto,proto-id,length,src,dst,
//!   TCP: sport,dport,data-length,flags,seq,ack,window,urg,options | UDP: sport,dport,data-length
//!   ICMP: icmp-type,…
//! ```

use canh_schema::fields::events::Col;

use super::{Decoded, Input, Result};
use crate::out::Out;

pub fn decode(out: &mut Out<'_>, input: &Input<'_>) -> Result {
    let f: Vec<&str> = input.body.trim().split(',').collect();
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    if f.len() < 9 {
        return Err(format!(
            "filterlog: {} fields, at least 9 expected",
            f.len()
        ));
    }
    out.observer("netgate", "pfSense", "firewall");
    out.vendor("rule_number", get(0));
    if !get(3).is_empty() {
        out.vendor("tracker", get(3));
    }
    out.vendor("interface", get(4));
    out.vendor("reason", get(5));
    let action = get(6);
    out.str(Col::EventAction, action);
    let direction = match get(7) {
        "in" => "inbound",
        "out" => "outbound",
        _ => "",
    };
    out.str(Col::NetworkDirection, direction);
    let denied = matches!(action, "block" | "reject");
    out.str(Col::EventOutcome, "success");
    out.classify(
        &["network"],
        &["connection", if denied { "denied" } else { "allowed" }],
    );

    // Where the protocol-specific part starts, and the protocol.
    let (proto, next) = match get(8) {
        "4" => {
            if f.len() < 20 {
                return Err("filterlog: IPv4 line ends early".into());
            }
            out.vendor("ttl", get(11));
            out.vendor("flags", get(14));
            out.uint(Col::NetworkBytes, "length", get(17));
            out.ip(Col::SourceIp, "src", get(18));
            out.ip(Col::DestinationIp, "dst", get(19));
            (get(16), 20)
        }
        "6" => {
            if f.len() < 17 {
                return Err("filterlog: IPv6 line ends early".into());
            }
            out.vendor("hop_limit", get(11));
            out.uint(Col::NetworkBytes, "length", get(14));
            out.ip(Col::SourceIp, "src", get(15));
            out.ip(Col::DestinationIp, "dst", get(16));
            (get(12), 17)
        }
        v => return Err(format!("filterlog: IP version {v:?}")),
    };
    let proto = proto.to_ascii_lowercase();
    match proto.as_str() {
        "tcp" | "udp" => {
            out.str(Col::NetworkTransport, &proto);
            out.port(Col::SourcePort, "sport", get(next));
            out.port(Col::DestinationPort, "dport", get(next + 1));
            if proto == "tcp" && !get(next + 3).is_empty() {
                out.vendor("tcp_flags", get(next + 3));
            }
        }
        "icmp" | "ipv6-icmp" | "icmpv6" => {
            out.str(
                Col::NetworkTransport,
                if proto == "icmp" { "icmp" } else { "ipv6-icmp" },
            );
            if !get(next).is_empty() {
                out.vendor("icmp_type", get(next));
            }
        }
        "" => {}
        other => out.str(Col::NetworkTransport, other),
    }
    Ok(Decoded::Fields)
}
