//! NetFlow v5: a 24-byte header and up to 30 fixed 48-byte records.
//!
//! Flow start and end are router uptimes in ms; they become wall-clock times through the
//! header's uptime and export time. The header's sampling field (2 bits of mode, 14 of
//! interval) travels with every flow.

use canh_schema::fields::flows::Col;
use canh_schema::TableBuilder;

use super::text::Buf;
use super::{err, exporter_text, gap, DecodeError, FlowDecoder, Packet, Reader, Summary};
use crate::out::transport_name;

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
    let algorithm = sampling >> 14;
    let records = || p.payload[HEADER..HEADER + count * RECORD].chunks_exact(RECORD);
    let u16_at = |r: &[u8], i: usize| u64::from(u16::from_be_bytes([r[i], r[i + 1]]));
    let u32_at = |r: &[u8], i: usize| u32::from_be_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
    let addr_at = |r: &[u8], i: usize| [r[i], r[i + 1], r[i + 2], r[i + 3]];
    let observer = exporter_text(p);
    let mut text = Buf::default();
    // Column by column: the layout is fixed, so each column is one tight loop.
    b.note_received(p.received_ns);
    let mut k = b.bulk(count);
    // A flow's time is its end.
    for (col, offset) in [
        (Col::Timestamp, 28),
        (Col::EventStart, 24),
        (Col::EventEnd, 28),
    ] {
        k.times(col, records().map(|r| at(u32_at(r, offset))));
    }
    super::bulk_common_columns(&mut k, p, &observer, 5, None);
    for (col, at) in [
        (Col::SourceIp, 0),
        (Col::DestinationIp, 4),
        (Col::NetflowNextHop, 8),
    ] {
        if let Some(c) = k.strings(col) {
            records().for_each(|r| c.append_value(text.ipv4(addr_at(r, at))));
        }
    }
    k.uints(
        Col::NetflowIngressInterface,
        records().map(|r| u16_at(r, 12)),
    );
    k.uints(
        Col::NetflowEgressInterface,
        records().map(|r| u16_at(r, 14)),
    );
    k.uints(
        Col::NetworkPackets,
        records().map(|r| u64::from(u32_at(r, 16))),
    );
    k.uints(
        Col::NetworkBytes,
        records().map(|r| u64::from(u32_at(r, 20))),
    );
    k.uints(Col::SourcePort, records().map(|r| u16_at(r, 32)));
    k.uints(Col::DestinationPort, records().map(|r| u16_at(r, 34)));
    // 36: pad1
    k.uints(Col::NetflowTcpFlags, records().map(|r| u64::from(r[37])));
    k.uints(Col::NetworkIanaNumber, records().map(|r| u64::from(r[38])));
    if let Some(c) = k.strings(Col::NetworkTransport) {
        records().for_each(|r| c.append_option(transport_name(r[38])));
    }
    k.uints(
        Col::NetflowIpClassOfService,
        records().map(|r| u64::from(r[39])),
    );
    k.uints(Col::SourceAsNumber, records().map(|r| u16_at(r, 40)));
    k.uints(Col::DestinationAsNumber, records().map(|r| u16_at(r, 42)));
    k.uints(
        Col::NetflowSourcePrefixLength,
        records().map(|r| u64::from(r[44])),
    );
    k.uints(
        Col::NetflowDestinationPrefixLength,
        records().map(|r| u64::from(r[45])),
    );
    // 46..48: pad2
    k.same_uint(Col::NetflowEngineType, u64::from(engine_type));
    k.same_uint(Col::NetflowEngineId, u64::from(engine_id));
    if interval > 0 || algorithm > 0 {
        k.same_uint(Col::NetflowSamplingInterval, u64::from(interval));
        k.same_uint(Col::NetflowSamplingAlgorithm, u64::from(algorithm));
    }
    drop(k);
    s.flows += count;
    Ok(())
}
