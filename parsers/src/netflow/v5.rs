//! NetFlow v5: a 24-byte header and up to 30 fixed 48-byte records.
//!
//! Flow start and end are router uptimes in ms; they become wall-clock times through the
//! header's uptime and export time. The header's sampling field (2 bits of mode, 14 of
//! interval) travels with every flow.

use std::net::Ipv4Addr;

use canh_schema::fields::flows::Col;
use canh_schema::TableBuilder;

use super::{
    common_columns, err, gap, set_protocol, DecodeError, FlowDecoder, Packet, Reader, Summary,
};

const HEADER: usize = 24;
const RECORD: usize = 48;
/// The format allows 30 records per packet; exporters keep to it.
const MAX_RECORDS: usize = 30;

pub(super) fn decode(
    d: &mut FlowDecoder,
    p: &Packet<'_>,
    b: &mut TableBuilder,
    s: &mut Summary,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(p.payload);
    r.u16("version")?;
    let count = usize::from(r.u16("count")?);
    let uptime_ms = r.u32("sys_uptime")?;
    let secs = r.u32("unix_secs")?;
    let nsecs = r.u32("unix_nsecs")?;
    let sequence = r.u32("flow_sequence")?;
    let engine_type = r.u8("engine_type")?;
    let engine_id = r.u8("engine_id")?;
    let sampling = r.u16("sampling_interval")?;
    if count == 0 || count > MAX_RECORDS {
        return Err(err(
            "count",
            format!("{count} records (1 to {MAX_RECORDS} allowed)"),
        ));
    }
    if p.payload.len() < HEADER + count * RECORD {
        return Err(err(
            "truncated",
            format!(
                "{count} records need {} bytes, the packet has {}",
                HEADER + count * RECORD,
                p.payload.len()
            ),
        ));
    }
    let engine = u16::from_be_bytes([engine_type, engine_id]);
    let key = (p.exporter.ip(), engine);
    // v5 sequence numbers count flows, not packets.
    s.sequence_gap = gap(d.v5_sequence.get(&key).copied(), sequence);
    d.v5_sequence
        .insert(key, sequence.wrapping_add(count as u32));
    let export_ns = i64::from(secs) * 1_000_000_000 + i64::from(nsecs.min(999_999_999));
    // Uptime of a record → wall clock: the export time minus how long before it the record's
    // uptime was (uptimes wrap at 2^32 ms, so the difference is taken modulo 2^32).
    let at = |t: u32| export_ns - i64::from(uptime_ms.wrapping_sub(t)) * 1_000_000;
    let interval = sampling & 0x3fff;
    for _ in 0..count {
        let src = Ipv4Addr::from(r.u32("srcaddr")?);
        let dst = Ipv4Addr::from(r.u32("dstaddr")?);
        let next_hop = Ipv4Addr::from(r.u32("nexthop")?);
        let input = r.u16("input")?;
        let output = r.u16("output")?;
        let packets = r.u32("dPkts")?;
        let octets = r.u32("dOctets")?;
        let first = r.u32("First")?;
        let last = r.u32("Last")?;
        let sport = r.u16("srcport")?;
        let dport = r.u16("dstport")?;
        r.u8("pad1")?;
        let tcp_flags = r.u8("tcp_flags")?;
        let proto = r.u8("prot")?;
        let tos = r.u8("tos")?;
        let src_as = r.u16("src_as")?;
        let dst_as = r.u16("dst_as")?;
        let src_mask = r.u8("src_mask")?;
        let dst_mask = r.u8("dst_mask")?;
        r.u16("pad2")?;

        common_columns(b, p, 5, None);
        let end = at(last);
        b.set_ts(Col::Timestamp, end);
        b.set_ts(Col::EventStart, at(first));
        b.set_ts(Col::EventEnd, end);
        b.set_str(Col::SourceIp, &src.to_string());
        b.set_str(Col::DestinationIp, &dst.to_string());
        b.set_uint(Col::SourcePort, u64::from(sport));
        b.set_uint(Col::DestinationPort, u64::from(dport));
        set_protocol(b, proto);
        b.set_uint(Col::NetflowTcpFlags, u64::from(tcp_flags));
        b.set_uint(Col::NetworkBytes, u64::from(octets));
        b.set_uint(Col::NetworkPackets, u64::from(packets));
        b.set_uint(Col::NetflowIngressInterface, u64::from(input));
        b.set_uint(Col::NetflowEgressInterface, u64::from(output));
        b.set_uint(Col::SourceAsNumber, u64::from(src_as));
        b.set_uint(Col::DestinationAsNumber, u64::from(dst_as));
        b.set_str(Col::NetflowNextHop, &next_hop.to_string());
        if interval > 0 {
            b.set_uint(Col::NetflowSamplingInterval, u64::from(interval));
        }
        for (k, v) in [
            ("ipClassOfService", u32::from(tos)),
            ("sourceIPv4PrefixLength", u32::from(src_mask)),
            ("destinationIPv4PrefixLength", u32::from(dst_mask)),
            ("engineType", u32::from(engine_type)),
            ("engineId", u32::from(engine_id)),
            ("samplingAlgorithm", u32::from(sampling >> 14)),
        ] {
            b.insert_map(Col::VendorFields, k, Some(&v.to_string()));
        }
        b.end_row();
        s.flows += 1;
    }
    Ok(())
}
