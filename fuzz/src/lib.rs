//! Shared bodies of the fuzz targets: one line through one format, into a row, and the batch
//! must build; or a run of export packets through one NetFlow/IPFIX decoder.

use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Table, TableBuilder};

pub fn run(format_name: &str, data: &[u8]) {
    let Some(format) = Format::from_name(format_name) else {
        return;
    };
    let meta = Meta {
        received_ns: 1_795_435_200_000_000_000,
        listener: "fuzz",
        input_type: "udp",
        peer_ip: "192.0.2.1",
        peer_addr: "192.0.2.1:514",
        tz_offset_secs: 7 * 3600,
        organization: None,
        device: None,
    };
    let mut b = TableBuilder::new(Table::Events, 2);
    append_event(&mut b, data, format, &meta);
    // Every line is a row, and every row is a valid batch.
    match b.finish() {
        Ok(Some(batch)) if batch.rows() == 1 => {}
        other => panic!("no single valid row: {other:?}"),
    }
}

/// Splits the input into export packets at `SPLIT` (so one input can carry a template packet
/// and the data packets after it), stamps each with `version`, and decodes them in order with
/// one decoder under tight limits. Rows must match the flows counted, the caches must stay
/// within their limits, and the columnar and record-by-record paths must write the same rows.
pub fn run_flows(version: u16, data: &[u8]) {
    let columnar = decode_flows(version, data, true);
    let by_record = decode_flows(version, data, false);
    assert_eq!(
        columnar.as_ref().map(|b| &b.records),
        by_record.as_ref().map(|b| &b.records),
        "the columnar and record paths differ"
    );
}

fn decode_flows(version: u16, data: &[u8], columnar: bool) -> Option<canh_schema::Batch> {
    use canh_parsers::netflow::{FlowDecoder, Limits, Packet};
    const SPLIT: &[u8] = b"FUZZ";
    let limits = Limits {
        templates_per_domain: 16,
        domains: 4,
        fields_per_template: 128,
        template_ttl_ns: 3_600_000_000_000,
        pending_sets: 8,
        pending_bytes: 16 * 1024,
        pending_ttl_ns: 5_000_000_000,
        columnar,
    };
    let mut d = FlowDecoder::new(limits);
    let mut b = TableBuilder::new(Table::Flows, 64);
    let mut flows = 0;
    let mut rest = data;
    let mut i: i64 = 0;
    while !rest.is_empty() {
        let (packet, next) = match rest.windows(SPLIT.len()).position(|w| w == SPLIT) {
            Some(p) => (&rest[..p], &rest[p + SPLIT.len()..]),
            None => (rest, &[][..]),
        };
        rest = next;
        let mut payload = packet.to_vec();
        if payload.len() >= 2 {
            payload[..2].copy_from_slice(&version.to_be_bytes());
        }
        let p = Packet {
            exporter: std::net::SocketAddr::from(([192, 0, 2, (i % 3) as u8 + 1], 2055)),
            received_ns: 1_795_435_200_000_000_000 + i * 1_000_000_000,
            payload: &payload,
            organization: None,
        };
        flows += d.decode(&p, &mut b).flows;
        assert!(d.templates() <= 16 * 4 && d.pending() <= 8 * 4);
        i += 1;
    }
    match b.finish() {
        Ok(Some(batch)) if batch.rows() == flows => Some(batch),
        Ok(None) if flows == 0 => None,
        other => panic!("{flows} flows but {other:?}"),
    }
}
