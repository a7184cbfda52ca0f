//! NetFlow v5, v9 and IPFIX (v10) export packets into rows of the `flows` table.
//!
//! One [`FlowDecoder`] holds the state a collector keeps between packets: the templates of every
//! exporter (keyed by exporter address, observation domain or source id, and template id), the
//! sampling options each exporter announced, and the last sequence number, to count lost
//! export packets. Packets of any version go to [`FlowDecoder::decode`], which dispatches on the
//! version in the header.
//!
//! Everything an exporter sends is bounded before it is kept: templates per exporter and
//! domain, fields per template, and the number of exporters; a packet that breaks the format
//! (a set longer than the packet, a template field of length zero, a record past the end) is
//! an error with a reason code, and the flows decoded before the problem are kept.
//!
//! Counters are stored as received: a sampled flow keeps its sampled byte and packet counts,
//! and its sampling interval travels with it in `netflow.sampling_interval`.

mod ie;
mod plan;
mod template;
mod text;
mod v5;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use canh_schema::fields::flows::Col;
use canh_schema::TableBuilder;

pub use plan::Plan;
pub use template::{Field, Template};

/// Limits on what one exporter may make the decoder keep.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Templates kept per exporter and domain; more are refused (counted as errors).
    pub templates_per_domain: usize,
    /// Exporter/domain pairs kept; past this, the least recently used is dropped.
    pub domains: usize,
    /// Fields in one template.
    pub fields_per_template: usize,
    /// A template not refreshed for this long is dropped (ns).
    pub template_ttl_ns: i64,
    /// Data sets that arrive before their template are held, per exporter and domain, up to
    /// this many …
    pub pending_sets: usize,
    /// … and this many bytes, for at most this long (ns); then they are dropped and counted.
    pub pending_bytes: usize,
    pub pending_ttl_ns: i64,
    /// Decode data sets of fixed-layout templates column by column ([`Plan`]). `false`
    /// sends every record through the record-by-record path: the same rows, slower; tests
    /// compare the two.
    pub columnar: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            templates_per_domain: 1024,
            domains: 16_384,
            fields_per_template: 512,
            template_ttl_ns: 3600 * 1_000_000_000,
            pending_sets: 64,
            pending_bytes: 256 * 1024,
            pending_ttl_ns: 30 * 1_000_000_000,
            columnar: true,
        }
    }
}

/// Why a packet (or the rest of it) could not be decoded. The codes are metric labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub code: &'static str,
    pub detail: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for DecodeError {}

pub(crate) fn err(code: &'static str, detail: impl Into<String>) -> DecodeError {
    DecodeError {
        code,
        detail: detail.into(),
    }
}

/// What one packet held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub version: u16,
    /// Flow rows appended.
    pub flows: usize,
    /// Templates and options templates learned or refreshed.
    pub templates: usize,
    /// Templates withdrawn.
    pub withdrawn: usize,
    /// Options records read (sampling, system init time, …).
    pub options: usize,
    /// Data sets held because their template is not known yet.
    pub held: usize,
    /// Data sets dropped because their template did not come in time (or the hold was full).
    pub no_template: usize,
    /// Export packets (v9) or records (v5, IPFIX) missing before this one, by sequence number.
    pub sequence_gap: u64,
    /// The first problem, if the packet was not read to its end.
    pub error: Option<DecodeError>,
}

/// The sender and time of one export packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub exporter: SocketAddr,
    pub received_ns: i64,
    pub payload: &'a [u8],
    /// `organization.name` of the exporter, if an inventory is configured.
    pub organization: Option<&'a str>,
}

/// Per exporter and observation domain: its templates and announced options.
#[derive(Debug, Default)]
struct Domain {
    templates: HashMap<u16, Arc<Template>>,
    /// Sampling interval announced in options data (v9 sampler options, IPFIX sampling IEs),
    /// by sampler id (0 when the exporter gives none).
    sampling: HashMap<u64, u32>,
    /// IPFIX systemInitTimeMilliseconds, for times given as sysUpTime offsets.
    system_init_ms: Option<i64>,
    /// The sequence number expected next, and the last one seen.
    next_sequence: Option<u32>,
    last_sequence: Option<u32>,
    /// Data sets waiting for their template, oldest first.
    pending: std::collections::VecDeque<template::Pending>,
    pending_bytes: usize,
    last_used_ns: i64,
}

/// Whose templates these are. IPFIX scopes templates to the transport session and the
/// observation domain (RFC 7011 §8: for UDP, the exporter's address and port); v9 to the
/// exporter's address and source id (RFC 3954 §5.1), whatever port it sends from. The version
/// keeps a v9 and an IPFIX exporter on one address apart (their sequence numbers count
/// different things).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DomainKey {
    exporter: IpAddr,
    /// The exporter's UDP port for IPFIX; 0 for v9.
    port: u16,
    version: u16,
    domain: u32,
}

/// The collector-side state of NetFlow/IPFIX decoding.
#[derive(Debug, Default)]
pub struct FlowDecoder {
    limits: Limits,
    domains: HashMap<DomainKey, Domain>,
    /// v5 sequence numbers per exporter and engine.
    v5_sequence: HashMap<(IpAddr, u16), u32>,
}

impl FlowDecoder {
    pub fn new(limits: Limits) -> Self {
        FlowDecoder {
            limits,
            ..FlowDecoder::default()
        }
    }

    /// Data sets held for a template that has not come yet, over all exporters.
    pub fn pending(&self) -> usize {
        self.domains.values().map(|d| d.pending.len()).sum()
    }

    /// Templates currently cached, over all exporters.
    pub fn templates(&self) -> usize {
        self.domains.values().map(|d| d.templates.len()).sum()
    }

    /// Decodes one export packet, appending a row per flow to `b` (a `flows` table builder).
    pub fn decode(&mut self, p: &Packet<'_>, b: &mut TableBuilder) -> Summary {
        let version = match p.payload {
            [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
            _ => {
                return Summary {
                    error: Some(err("truncated", "shorter than a version number")),
                    ..Summary::default()
                }
            }
        };
        let mut s = Summary {
            version,
            ..Summary::default()
        };
        let result = match version {
            5 => v5::decode(self, p, b, &mut s),
            9 | 10 => template::decode(self, p, b, &mut s),
            v => Err(err("version", format!("unsupported NetFlow version {v}"))),
        };
        if let Err(e) = result {
            s.error = Some(e);
        }
        s
    }

    fn domain(&mut self, exporter: SocketAddr, version: u16, id: u32, now_ns: i64) -> &mut Domain {
        let key = DomainKey {
            exporter: exporter.ip(),
            port: if version == 10 { exporter.port() } else { 0 },
            version,
            domain: id,
        };
        if !self.domains.contains_key(&key) && self.domains.len() >= self.limits.domains {
            // Bounded: forget the exporter heard from least recently.
            if let Some(oldest) = self
                .domains
                .iter()
                .min_by_key(|(_, d)| d.last_used_ns)
                .map(|(k, _)| *k)
            {
                self.domains.remove(&oldest);
            }
        }
        let d = self.domains.entry(key).or_default();
        d.last_used_ns = now_ns;
        d
    }
}

/// Big-endian reads with bounds checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let s = self
            .b
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| {
                err(
                    "truncated",
                    format!(
                        "{what}: needs {n} bytes at offset {}, {} left",
                        self.pos,
                        self.remaining()
                    ),
                )
            })?;
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        let s = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let s = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// An unsigned big-endian number of 1 to 8 bytes (IPFIX reduced-size encoding).
pub(crate) fn be_uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    Some(b.iter().fold(0u64, |n, &x| (n << 8) | u64::from(x)))
}

/// The exporter's address as text, once per packet.
pub(crate) fn exporter_text(p: &Packet<'_>) -> text::Buf {
    let mut t = text::Buf::default();
    match p.exporter.ip() {
        IpAddr::V4(a) => t.ipv4(a.octets()),
        IpAddr::V6(a) => t.ipv6(a.octets()),
    };
    t
}

/// Columns every flow row carries; `observer` is [`exporter_text`].
pub(crate) fn common_columns(
    b: &mut TableBuilder,
    p: &Packet<'_>,
    observer: &text::Buf,
    version: u16,
    domain: Option<u32>,
) {
    b.note_received(p.received_ns);
    b.set_ts(Col::EventCreated, p.received_ns);
    b.set_str(Col::ObserverIp, observer.as_str());
    b.set_uint(Col::NetflowVersion, u64::from(version));
    if let Some(d) = domain {
        b.set_uint(Col::NetflowObservationDomainId, u64::from(d));
    }
    if let Some(org) = p.organization {
        b.set_str(Col::OrganizationName, org);
    }
}

/// [`common_columns`] for the `n` rows of a [`canh_schema::builder::Bulk`].
pub(crate) fn bulk_common_columns(
    k: &mut canh_schema::builder::Bulk<'_>,
    p: &Packet<'_>,
    observer: &text::Buf,
    version: u16,
    domain: Option<u32>,
) {
    let n = k.rows();
    k.times(Col::EventCreated, std::iter::repeat_n(p.received_ns, n));
    k.same_str(Col::ObserverIp, observer.as_str());
    k.same_uint(Col::NetflowVersion, u64::from(version));
    if let Some(d) = domain {
        k.same_uint(Col::NetflowObservationDomainId, u64::from(d));
    }
    if let Some(org) = p.organization {
        k.same_str(Col::OrganizationName, org);
    }
}

/// `network.transport` for an IANA protocol number.
pub(crate) fn set_protocol(b: &mut TableBuilder, proto: u8) {
    b.set_uint(Col::NetworkIanaNumber, u64::from(proto));
    if let Some(name) = crate::out::transport_name(proto) {
        b.set_str(Col::NetworkTransport, name);
    }
}

/// Counts packets missing between `expected` and `got` (sequence numbers wrap at 2^32).
pub(crate) fn gap(expected: Option<u32>, got: u32) -> u64 {
    match expected {
        Some(e) => {
            let d = got.wrapping_sub(e);
            // A small step back is reordering or an exporter restart, not a loss.
            if d < 1 << 31 {
                u64::from(d)
            } else {
                0
            }
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gaps_wrap_and_ignore_steps_back() {
        assert_eq!(gap(None, 7), 0);
        assert_eq!(gap(Some(7), 7), 0);
        assert_eq!(gap(Some(7), 10), 3);
        assert_eq!(gap(Some(u32::MAX), 1), 2);
        assert_eq!(gap(Some(10), 7), 0);
    }

    fn packet(payload: &[u8]) -> Packet<'_> {
        Packet {
            exporter: "127.0.0.1:4739".parse().expect("addr"),
            received_ns: 1_795_435_200_000_000_000,
            payload,
            organization: Some("So Y te"),
        }
    }

    /// An IPFIX message around `sets`.
    fn ipfix(sets: &[Vec<u8>]) -> Vec<u8> {
        ipfix_numbered(0, sets)
    }

    /// An IPFIX message with sequence number `sequence`.
    fn ipfix_numbered(sequence: u32, sets: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = sets.concat();
        let mut m = vec![0, 10];
        m.extend(((16 + body.len()) as u16).to_be_bytes());
        m.extend(1_795_435_200u32.to_be_bytes()); // export time
        m.extend(sequence.to_be_bytes());
        m.extend(7u32.to_be_bytes()); // observation domain
        m.extend(body);
        m
    }

    fn set(id: u16, body: &[u8]) -> Vec<u8> {
        let mut s = id.to_be_bytes().to_vec();
        s.extend(((4 + body.len()) as u16).to_be_bytes());
        s.extend(body);
        s
    }

    /// Template `id` with (element, length) fields.
    fn template(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
        let mut t = id.to_be_bytes().to_vec();
        t.extend((fields.len() as u16).to_be_bytes());
        for (e, l) in fields {
            t.extend(e.to_be_bytes());
            t.extend(l.to_be_bytes());
        }
        t
    }

    #[test]
    fn ipfix_template_then_data_with_reduced_size_and_variable_fields() {
        let mut d = FlowDecoder::default();
        let mut b = TableBuilder::new(canh_schema::Table::Flows, 4);
        // src/dst v4, ports, protocol, octets in 2 bytes (reduced), applicationName (variable).
        let t = template(
            300,
            &[
                (8, 4),
                (12, 4),
                (7, 2),
                (11, 2),
                (4, 1),
                (1, 2),
                (96, 0xFFFF),
            ],
        );
        let rec = [
            &[10, 0, 0, 1][..],
            &[192, 0, 2, 9],
            &[0xC3, 0x50],
            &[0, 53],
            &[17],
            &[0x01, 0x00],
            &[3, b'd', b'n', b's'],
        ]
        .concat();
        let s = d.decode(&packet(&ipfix(&[set(2, &t), set(300, &rec)])), &mut b);
        assert_eq!((s.templates, s.flows, s.error), (1, 1, None));
        let batch = b.finish().expect("ok").expect("rows");
        let row = |col: Col| {
            arrow::util::display::array_value_to_string(batch.records.column(col as usize), 0)
                .expect("display")
        };
        assert_eq!(row(Col::SourceIp), "10.0.0.1");
        assert_eq!(row(Col::DestinationPort), "53");
        assert_eq!(row(Col::NetworkTransport), "udp");
        assert_eq!(row(Col::NetworkBytes), "256");
        assert_eq!(row(Col::OrganizationName), "So Y te");
        assert_eq!(row(Col::NetflowObservationDomainId), "7");
        assert!(row(Col::VendorFields).contains("applicationName: dns"));
    }

    #[test]
    fn malformed_sets_and_templates_are_errors_not_panics() {
        let mut d = FlowDecoder::new(Limits {
            templates_per_domain: 2,
            ..Limits::default()
        });
        let mut b = TableBuilder::new(canh_schema::Table::Flows, 4);
        let code = |d: &mut FlowDecoder, b: &mut TableBuilder, sets: &[Vec<u8>]| {
            d.decode(&packet(&ipfix(sets)), b).error.map(|e| e.code)
        };
        // A set longer than the message.
        let mut long = set(2, &template(300, &[(8, 4)]));
        long[3] = 200;
        assert_eq!(code(&mut d, &mut b, &[long]), Some("set_length"));
        // Only zero-length fields: a record of nothing would never end.
        assert_eq!(
            code(
                &mut d,
                &mut b,
                &[set(2, &template(301, &[(8, 0), (12, 0)]))]
            ),
            Some("template")
        );
        // Template ids below 256 are reserved.
        assert_eq!(
            code(&mut d, &mut b, &[set(2, &template(5, &[(8, 4)]))]),
            Some("template")
        );
        // A flood of templates stops at the limit; the highest id is fine.
        let flood: Vec<u8> = [300u16, 301, 65535]
            .iter()
            .flat_map(|&id| template(id, &[(8, 4)]))
            .collect();
        assert_eq!(
            code(&mut d, &mut b, &[set(2, &flood)]),
            Some("template_limit")
        );
        assert_eq!(d.templates(), 2);
        // A field that runs past the record's end.
        let var = template(302, &[(96, 0xFFFF)]);
        let mut d2 = FlowDecoder::default();
        assert_eq!(
            code(&mut d2, &mut b, &[set(2, &var), set(302, &[200, b'x'])]),
            Some("truncated")
        );
        assert_eq!(b.rows(), 0);
    }

    #[test]
    fn data_before_its_template_is_held_then_decoded_or_dropped() {
        let mut d = FlowDecoder::new(Limits {
            pending_sets: 2,
            ..Limits::default()
        });
        let mut b = TableBuilder::new(canh_schema::Table::Flows, 4);
        let rec = [10, 0, 0, 1, 10, 0, 0, 2];
        // Three data sets for two unknown templates; the hold keeps the last two.
        for id in [400u16, 400, 401] {
            let s = d.decode(&packet(&ipfix(&[set(id, &rec)])), &mut b);
            assert_eq!((s.held, s.flows), (1, 0));
        }
        assert_eq!(d.pending(), 2);
        // Template 400 arrives: its held set is decoded; 401 still waits.
        let s = d.decode(
            &packet(&ipfix(&[set(2, &template(400, &[(8, 4), (12, 4)]))])),
            &mut b,
        );
        assert_eq!((s.templates, s.flows, s.error), (1, 1, None));
        assert_eq!(d.pending(), 1);
        assert_eq!(b.rows(), 1);
        // Past the hold time it is dropped and counted.
        let late = Packet {
            received_ns: packet(&[]).received_ns + Limits::default().pending_ttl_ns + 1,
            ..packet(&[])
        };
        let msg = ipfix(&[set(2, &template(402, &[(8, 4)]))]);
        let s = d.decode(
            &Packet {
                payload: &msg,
                ..late
            },
            &mut b,
        );
        assert_eq!((s.no_template, d.pending()), (1, 0));
    }

    #[test]
    fn v5_times_sampling_and_sequence() {
        let secs: u32 = 1_795_435_200;
        let v5 = |sequence: u32| {
            let mut p = vec![0, 5, 0, 1];
            p.extend(10_000u32.to_be_bytes()); // uptime 10 s
            p.extend(secs.to_be_bytes());
            p.extend(0u32.to_be_bytes());
            p.extend(sequence.to_be_bytes());
            p.extend([0, 0]);
            p.extend(0x4064u16.to_be_bytes()); // mode 1, 1 in 100
            let mut r = [0u8; 48];
            r[0..4].copy_from_slice(&[10, 0, 0, 1]);
            r[4..8].copy_from_slice(&[192, 0, 2, 1]);
            r[16..20].copy_from_slice(&3u32.to_be_bytes()); // packets
            r[20..24].copy_from_slice(&180u32.to_be_bytes()); // octets
            r[24..28].copy_from_slice(&4_000u32.to_be_bytes()); // first
            r[28..32].copy_from_slice(&9_000u32.to_be_bytes()); // last
            r[32..34].copy_from_slice(&51_000u16.to_be_bytes());
            r[34..36].copy_from_slice(&443u16.to_be_bytes());
            r[38] = 6;
            p.extend(r);
            p
        };
        let mut d = FlowDecoder::default();
        let mut b = TableBuilder::new(canh_schema::Table::Flows, 4);
        assert_eq!(d.decode(&packet(&v5(100)), &mut b).sequence_gap, 0);
        // One flow per packet: 101 is next; 105 means four flows were lost.
        assert_eq!(d.decode(&packet(&v5(105)), &mut b).sequence_gap, 4);
        let batch = b.finish().expect("ok").expect("rows");
        let cell = |col: Col| {
            arrow::util::display::array_value_to_string(batch.records.column(col as usize), 0)
                .expect("display")
        };
        let export = i64::from(secs) * 1_000_000_000;
        let ts = |c: Col| {
            use arrow::array::AsArray;
            batch
                .records
                .column(c as usize)
                .as_primitive::<arrow::datatypes::TimestampNanosecondType>()
                .value(0)
        };
        assert_eq!(ts(Col::EventStart), export - 6_000_000_000);
        assert_eq!(ts(Col::EventEnd), export - 1_000_000_000);
        assert_eq!(ts(Col::Timestamp), export - 1_000_000_000);
        assert_eq!(cell(Col::NetflowSamplingInterval), "100");
        assert_eq!(
            cell(Col::NetworkBytes),
            "180",
            "counters as received, not scaled"
        );
        assert_eq!(cell(Col::NetworkTransport), "tcp");
        assert_eq!(cell(Col::NetflowSamplingAlgorithm), "1");
        assert_eq!(
            cell(Col::VendorFields),
            "{}",
            "v5 has a column for every field"
        );
    }

    #[test]
    fn ipfix_sequence_numbers_count_records_either_way() {
        let tpl = set(2, &template(300, &[(8, 4)]));
        let data = |n: usize| set(300, &[10, 0, 0, 1].repeat(n));
        let gaps = |numbers: &[(u32, usize)]| -> Vec<u64> {
            let mut d = FlowDecoder::default();
            let mut b = TableBuilder::new(canh_schema::Table::Flows, 64);
            d.decode(
                &packet(&ipfix_numbered(0, std::slice::from_ref(&tpl))),
                &mut b,
            );
            numbers
                .iter()
                .map(|&(seq, n)| {
                    d.decode(&packet(&ipfix_numbered(seq, &[data(n)])), &mut b)
                        .sequence_gap
                })
                .collect()
        };
        // RFC 7011: the records sent before this message.
        assert_eq!(gaps(&[(0, 3), (3, 5), (8, 2)]), [0, 0, 0]);
        // softflowd: the records up to and including this message.
        assert_eq!(gaps(&[(3, 3), (8, 5), (10, 2)]), [0, 0, 0]);
        // A lost message of 4 records.
        assert_eq!(gaps(&[(0, 3), (7, 5)]), [0, 4]);
    }

    #[test]
    fn withdrawal_forgets_a_template() {
        let mut d = FlowDecoder::default();
        let mut b = TableBuilder::new(canh_schema::Table::Flows, 4);
        d.decode(
            &packet(&ipfix(&[set(2, &template(300, &[(8, 4)]))])),
            &mut b,
        );
        assert_eq!(d.templates(), 1);
        let s = d.decode(&packet(&ipfix(&[set(2, &template(300, &[]))])), &mut b);
        assert_eq!((s.withdrawn, d.templates()), (1, 0));
    }

    #[test]
    fn short_and_unknown_packets_are_errors() {
        let mut d = FlowDecoder::default();
        let mut b = TableBuilder::new(canh_schema::Table::Flows, 4);
        let p = |payload| Packet {
            exporter: "127.0.0.1:2055".parse().expect("addr"),
            received_ns: 0,
            payload,
            organization: None,
        };
        assert_eq!(
            d.decode(&p(&[0]), &mut b).error.map(|e| e.code),
            Some("truncated")
        );
        assert_eq!(
            d.decode(&p(&[0, 7, 0, 0]), &mut b).error.map(|e| e.code),
            Some("version")
        );
        assert_eq!(
            d.decode(&p(&[0, 5, 0, 1]), &mut b).error.map(|e| e.code),
            Some("truncated")
        );
        assert_eq!(b.rows(), 0);
    }
}
