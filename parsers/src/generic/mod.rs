//! Generic formats that many vendors share: CEF, LEEF, `key=value`, and CSV splitting.

pub mod cef;
pub mod csv;
pub mod kv;
pub mod leef;

use canh_schema::fields::events::Col;

use crate::out::Out;

/// Maps a field name that CEF, LEEF or plain `key=value` logs use for an ECS field; returns
/// `false` when the key has no ECS home (the caller keeps it in the vendor map).
pub(crate) fn common_field(out: &mut Out<'_>, k: &str, v: &str) -> bool {
    match k {
        "src" | "srcip" | "src_ip" | "source_ip" | "sourceip" | "SourceIP" | "sip"
        | "client_ip" => out.ip(Col::SourceIp, k, v),
        "dst" | "dstip" | "dst_ip" | "destination_ip" | "destip" | "dest_ip" | "DestinationIP"
        | "dip" | "server_ip" => out.ip(Col::DestinationIp, k, v),
        "spt" | "sport" | "srcport" | "src_port" | "srcPort" | "source_port" => {
            out.port(Col::SourcePort, k, v)
        }
        "dpt" | "dport" | "dstport" | "dst_port" | "dstPort" | "destination_port" | "dest_port" => {
            out.port(Col::DestinationPort, k, v)
        }
        "proto" | "protocol" => {
            if v.parse::<u8>().is_ok() {
                out.iana_protocol(k, v)
            } else {
                out.transport(v)
            }
        }
        "user" | "username" | "user_name" | "usrName" | "suser" => out.str(Col::UserName, v),
        "act" | "action" => out.str_lower(Col::EventAction, v),
        "rule" | "rule_name" | "policy" | "policyname" | "policy_name" => out.str(Col::RuleName, v),
        "srcPreNAT" => out.ip(Col::SourceIp, k, v),
        "dstPreNAT" => out.ip(Col::DestinationIp, k, v),
        "srcPostNAT" | "sourceTranslatedAddress" => out.ip(Col::SourceNatIp, k, v),
        "dstPostNAT" | "destinationTranslatedAddress" => out.ip(Col::DestinationNatIp, k, v),
        "srcPostNATPort" | "sourceTranslatedPort" => out.port(Col::SourceNatPort, k, v),
        "dstPostNATPort" | "destinationTranslatedPort" => out.port(Col::DestinationNatPort, k, v),
        "srcBytes" | "in" | "bytesIn" => out.uint(Col::SourceBytes, k, v),
        "dstBytes" | "out" | "bytesOut" => out.uint(Col::DestinationBytes, k, v),
        "srcPackets" => out.uint(Col::SourcePackets, k, v),
        "dstPackets" => out.uint(Col::DestinationPackets, k, v),
        "request" | "url" => out.str(Col::UrlOriginal, v),
        "outcome" => out.str_lower(Col::EventOutcome, v),
        "app" => out.str_lower(Col::NetworkProtocol, v),
        "dvchost" => out.str(Col::ObserverHostname, v),
        "msg" | "message" => out.str(Col::Message, v),
        _ => return false,
    }
    true
}
