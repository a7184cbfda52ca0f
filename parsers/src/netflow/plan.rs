//! Column-at-a-time decoding of the data templates most exporters send: every field of fixed
//! length, each element going to its own column (or the vendor map), at most one start and one
//! end time, no per-record sampler. For those, a data set is a table of equal records, and
//! each column is one tight loop over them at the field's offset — several times faster than
//! dispatching on the element of every field of every record.
//!
//! A template outside that shape has no plan and goes through [`super::ie::flow`] record by
//! record; both paths write the same rows (the fuzz targets, the property tests and a corpus
//! test decode every input both ways and compare).

use canh_schema::fields::flows::Col;
use canh_schema::TableBuilder;

use super::ie::{self, Clock, Element, Kind, Times};
use super::template::{Field, VARIABLE};
use super::text::Buf;
use super::{be_uint, Domain, Packet};
use crate::out::transport_name;

/// What one field becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Uint(Col),
    Addr(Col),
    /// protocolIdentifier: `network.iana_number` and `network.transport`.
    Protocol,
    /// flowDirection: `inbound` (0) or `outbound`.
    Direction,
    /// icmpTypeCodeIPv4/IPv6: type in the high byte, code in the low one.
    IcmpTypeCode,
    Vendor(&'static str, Kind),
    /// paddingOctets.
    Skip,
}

impl Op {
    /// The column an element must be alone on. A second address for the same column (an
    /// IPv4 and an IPv6 source, say) needs the record path, which prefers the one that is
    /// not unspecified; a second protocol needs it too, because `network.transport` stays
    /// unset (not null) for a number without a name, and the record path then takes the
    /// second one's name. For every other column the first value wins on both paths.
    fn unique_column(self) -> Option<Col> {
        match self {
            Op::Addr(c) => Some(c),
            Op::Protocol => Some(Col::NetworkIanaNumber),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeField {
    clock: Clock,
    at: usize,
    len: usize,
}

/// The columnar layout of one data template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    record_len: usize,
    /// (what, offset, length) per field.
    ops: Vec<(Op, usize, usize)>,
    start: Option<TimeField>,
    end: Option<TimeField>,
    vendor: bool,
}

impl Plan {
    /// The plan for a data template, or `None` where it needs the record-by-record path.
    pub fn new(fields: &[Field], version: u16) -> Option<Plan> {
        let mut ops = Vec::with_capacity(fields.len());
        let mut columns: Vec<Col> = Vec::new();
        let (mut start, mut end) = (None, None);
        let mut at = 0;
        for f in fields {
            if f.len == VARIABLE || f.len == 0 || f.enterprise != 0 {
                return None;
            }
            // v9 vendor ids (NSEL …) have their own handling.
            if version == 9 && f.id >= 0x8000 {
                return None;
            }
            let len = usize::from(f.len);
            let number = (1..=8).contains(&len);
            let address = len == 4 || len == 16;
            let op = match ie::element(f.id) {
                Element::Uint(col) if number => Op::Uint(col),
                Element::Addr(col) if address => Op::Addr(col),
                Element::Protocol if number => Op::Protocol,
                Element::Direction if number => Op::Direction,
                Element::IcmpTypeCode if number => Op::IcmpTypeCode,
                Element::Padding => Op::Skip,
                // One start and one end time; several, and the record path decides.
                Element::Time {
                    start: is_start,
                    clock,
                } => {
                    let fits = match clock {
                        Clock::Ntp { .. } => len == 8,
                        Clock::Uptime | Clock::Unix(_) => number,
                    };
                    let slot = if is_start { &mut start } else { &mut end };
                    if !fits || slot.is_some() {
                        return None;
                    }
                    *slot = Some(TimeField { clock, at, len });
                    Op::Skip
                }
                Element::Vendor(name, kind) => Op::Vendor(name, kind),
                // Sampling, the application id, elements Canh does not know and values that
                // do not fit their column: the record path decides.
                _ => return None,
            };
            if let Some(c) = op.unique_column() {
                if columns.contains(&c) {
                    return None;
                }
                columns.push(c);
            }
            ops.push((op, at, len));
            at += len;
        }
        (at > 0).then(|| Plan {
            record_len: at,
            vendor: ops.iter().any(|(op, ..)| matches!(op, Op::Vendor(..))),
            ops,
            start,
            end,
        })
    }

    /// Writes a data set's records as rows; returns how many. Bytes after the last whole
    /// record are padding.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decode(
        &self,
        dom: &Domain,
        body: &[u8],
        t: &Times,
        p: &Packet<'_>,
        version: u16,
        domain: u32,
        b: &mut TableBuilder,
    ) -> usize {
        let n = body.len() / self.record_len;
        if n == 0 {
            return 0;
        }
        let records = || body.chunks_exact(self.record_len);
        let number = |r: &[u8], at: usize, len: usize| be_uint(value(r, at, len)).unwrap_or(0);
        b.note_received(p.received_ns);
        let mut k = b.bulk(n);
        super::bulk_common_columns(&mut k, p, &t.observer, version, Some(domain));
        let mut buf = Buf::default();
        for &(op, at, len) in &self.ops {
            match op {
                Op::Uint(col) => k.uints(col, records().map(|r| number(r, at, len))),
                Op::Addr(col) => {
                    if let Some(c) = k.strings(col) {
                        records().for_each(|r| c.append_option(buf.address(value(r, at, len))));
                    }
                }
                Op::Protocol => {
                    let proto = |r: &[u8]| number(r, at, len) as u8;
                    k.uints(
                        Col::NetworkIanaNumber,
                        records().map(|r| u64::from(proto(r))),
                    );
                    if let Some(c) = k.strings(Col::NetworkTransport) {
                        records().for_each(|r| c.append_option(transport_name(proto(r))));
                    }
                }
                Op::Direction => {
                    if let Some(c) = k.strings(Col::NetworkDirection) {
                        records().for_each(|r| {
                            c.append_value(if number(r, at, len) == 0 {
                                "inbound"
                            } else {
                                "outbound"
                            })
                        });
                    }
                }
                Op::IcmpTypeCode => {
                    k.uints(
                        Col::NetflowIcmpType,
                        records().map(|r| number(r, at, len) >> 8),
                    );
                    k.uints(
                        Col::NetflowIcmpCode,
                        records().map(|r| number(r, at, len) & 0xff),
                    );
                }
                Op::Vendor(..) | Op::Skip => {}
            }
        }
        let time = |f: Option<TimeField>, r: &[u8]| -> Option<i64> {
            let f = f?;
            let v = value(r, f.at, f.len);
            match f.clock {
                Clock::Uptime => ie::uptime_ns(t, dom, be_uint(v)?),
                Clock::Unix(unit) => ie::scaled(be_uint(v)?, unit),
                Clock::Ntp { micro } => ie::ntp_ns(v, micro),
            }
        };
        if let Some(c) = self.start.and_then(|_| k.timestamps(Col::EventStart)) {
            records().for_each(|r| c.append_option(time(self.start, r)));
        }
        if let Some(c) = self.end.and_then(|_| k.timestamps(Col::EventEnd)) {
            records().for_each(|r| c.append_option(time(self.end, r)));
        }
        // A flow's time is its end; without one, its start, or the export time.
        let export_ns = i64::from(t.export_secs) * 1_000_000_000;
        k.times(
            Col::Timestamp,
            records().map(|r| {
                time(self.end, r)
                    .or_else(|| time(self.start, r))
                    .unwrap_or(export_ns)
            }),
        );
        if let Some(&i) = dom.sampling.get(&0) {
            k.same_uint(Col::NetflowSamplingInterval, u64::from(i));
        }
        if self.vendor {
            if let Some(m) = k.maps(Col::VendorFields) {
                let mut text = String::new();
                for r in records() {
                    for &(op, at, len) in &self.ops {
                        if let Op::Vendor(name, kind) = op {
                            ie::vendor_text(value(r, at, len), kind, &mut text);
                            m.keys().append_value(name);
                            m.values().append_value(&text);
                        }
                    }
                    let _ = m.append(true);
                }
            }
        }
        n
    }
}

/// The bytes of a field in a record (records are whole, so always all of them).
fn value(r: &[u8], at: usize, len: usize) -> &[u8] {
    r.get(at..at + len).unwrap_or_default()
}
