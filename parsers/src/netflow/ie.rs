//! Information elements: a decoded record's fields into the `flows` columns.
//!
//! IANA elements with a column go there (addresses, ports, protocol, counters, times, NAT,
//! interfaces, AS numbers, next hop, direction, VLAN, ICMP, application id); the other IANA
//! elements go to the vendor map under their IANA names (v9 uses the same numbers for the
//! elements both define), and enterprise elements under `ENTERPRISE.ID`. Unsigned numbers
//! may come in fewer bytes than their type (reduced-size encoding, RFC 7011 §6.2).

use std::fmt::Write as _;

use canh_schema::fields::flows::Col;
use canh_schema::TableBuilder;

use super::template::{Field, Template};
use super::text::Buf;
use super::{be_uint, common_columns, set_protocol, Domain, Packet};

/// What the packet header says, for every record: the time (record times may be relative to
/// it) and the exporter as text.
pub(super) struct Times {
    pub export_secs: u32,
    /// v9: the router's uptime (ms) at export.
    pub uptime_ms: Option<u32>,
    pub observer: Buf,
}

/// Seconds from the NTP epoch (1900) to the Unix epoch.
const NTP_UNIX: i64 = 2_208_988_800;

/// An NTP timestamp (RFC 5905: 32-bit seconds, 32-bit fraction) as Unix ns.
pub(super) fn ntp_ns(v: &[u8], micro: bool) -> Option<i64> {
    let n = be_uint(v).filter(|_| v.len() == 8)?;
    let secs = (n >> 32) as i64 - NTP_UNIX;
    // dateTimeMicroseconds ignores the low 11 bits of the fraction (RFC 7011 §6.1.9).
    let frac = if micro {
        n & 0xffff_f800
    } else {
        n & 0xffff_ffff
    };
    let ns = ((frac * 1_000_000_000) >> 32) as i64;
    Some(secs * 1_000_000_000 + ns)
}

/// A time in seconds or milliseconds as ns, if it fits.
pub(super) fn scaled(n: u64, ns_per_unit: i64) -> Option<i64> {
    i64::try_from(n).ok()?.checked_mul(ns_per_unit)
}

/// An uptime (ms) → wall clock: v9 from the header; IPFIX from the exporter's announced
/// system init time.
pub(super) fn uptime_ns(t: &Times, dom: &Domain, ms: u64) -> Option<i64> {
    let ms = u32::try_from(ms).ok()?;
    match t.uptime_ms {
        Some(up) => Some(
            i64::from(t.export_secs) * 1_000_000_000 - i64::from(up.wrapping_sub(ms)) * 1_000_000,
        ),
        None => dom
            .system_init_ms
            .and_then(|init| init.checked_add(i64::from(ms))?.checked_mul(1_000_000)),
    }
}

/// Writes one flow record as a row.
pub(super) fn flow(
    dom: &Domain,
    values: &[(Field, &[u8])],
    t: &Times,
    p: &Packet<'_>,
    version: u16,
    domain: u32,
    b: &mut TableBuilder,
) {
    common_columns(b, p, &t.observer, version, Some(domain));
    let export_ns = i64::from(t.export_secs) * 1_000_000_000;
    // An uptime (ms) → wall clock: v9 from the header; IPFIX from the exporter's announced
    // system init time.
    let uptime = |ms: u64| uptime_ns(t, dom, ms);
    let (mut start, mut end) = (None, None);
    let (mut sampler, mut interval) = (None, None);
    let mut key = String::new();
    let mut text = String::new();
    let mut buf = Buf::default();
    let (mut src_set, mut dst_set) = (false, false);
    let (mut unspecified_src, mut unspecified_dst) = (None, None);
    for &(f, v) in values {
        if f.enterprise != 0 {
            key.clear();
            let _ = write!(key, "{}.{}", f.enterprise, f.id);
            vendor(b, &key, v, Kind::Unknown, &mut text);
            continue;
        }
        // v9 numbers above 32767 are vendors' own (IPFIX marks those with an enterprise
        // number instead); Cisco's NSEL (ASA, FTD) is the one that matters here.
        if version == 9 && f.id >= 0x8000 {
            match f.id {
                40001 => _ = ip(b, &mut buf, Col::SourceNatIp, f.id, v, &mut text),
                40002 => _ = ip(b, &mut buf, Col::DestinationNatIp, f.id, v, &mut text),
                40003 => b.set_uint(Col::SourceNatPort, be_uint(v).unwrap_or(0)),
                40004 => b.set_uint(Col::DestinationNatPort, be_uint(v).unwrap_or(0)),
                id => {
                    let (name, kind) = nsel_name(id).unwrap_or(("", Kind::Unknown));
                    key.clear();
                    if name.is_empty() {
                        let _ = write!(key, "v9.{id}");
                    } else {
                        key.push_str(name);
                    }
                    vendor(b, &key, v, kind, &mut text);
                }
            }
            continue;
        }
        let n = be_uint(v);
        match (element(f.id), n) {
            (Element::Uint(col), Some(n)) => b.set_uint(col, n),
            (Element::Protocol, Some(n)) => set_protocol(b, n as u8),
            // Records with both families often leave one unspecified (`::`): the other is the
            // flow's address.
            (Element::Addr(Col::SourceIp), _) if is_unspecified(v) => {
                unspecified_src = unspecified_src.or(Some(v));
            }
            (Element::Addr(Col::DestinationIp), _) if is_unspecified(v) => {
                unspecified_dst = unspecified_dst.or(Some(v));
            }
            (Element::Addr(col), _) => {
                let set = ip(b, &mut buf, col, f.id, v, &mut text);
                match col {
                    Col::SourceIp => src_set |= set,
                    Col::DestinationIp => dst_set |= set,
                    _ => {}
                }
            }
            (Element::Direction, Some(n)) => b.set_str(
                Col::NetworkDirection,
                if n == 0 { "inbound" } else { "outbound" },
            ),
            (Element::IcmpTypeCode, Some(n)) => {
                b.set_uint(Col::NetflowIcmpType, n >> 8);
                b.set_uint(Col::NetflowIcmpCode, n & 0xff);
            }
            (Element::ApplicationId, _) => {
                text.clear();
                application_id(v, &mut text);
                b.set_str(Col::NetflowApplicationId, &text);
            }
            // The first uptime-relative time stays; an absolute one replaces what came before.
            (Element::Time { start: s, clock }, n) => {
                let slot = if s { &mut start } else { &mut end };
                match (clock, n) {
                    (Clock::Uptime, Some(n)) => *slot = slot.or(uptime(n)),
                    (Clock::Unix(unit), Some(n)) => *slot = scaled(n, unit).or(*slot),
                    (Clock::Ntp { micro }, _) => *slot = ntp_ns(v, micro).or(*slot),
                    _ => other(b, f.id, v, &mut key, &mut text),
                }
            }
            (Element::SamplingInterval, Some(n)) if n > 0 => interval = Some(n),
            (Element::Sampler, Some(n)) => sampler = Some(n),
            (Element::Padding, _) => {}
            // Elements without a column, and values that do not fit their column.
            _ => other(b, f.id, v, &mut key, &mut text),
        }
    }
    if let (false, Some(v)) = (src_set, unspecified_src) {
        ip(b, &mut buf, Col::SourceIp, 8, v, &mut text);
    }
    if let (false, Some(v)) = (dst_set, unspecified_dst) {
        ip(b, &mut buf, Col::DestinationIp, 12, v, &mut text);
    }
    let interval = interval.or_else(|| {
        dom.sampling
            .get(&sampler.unwrap_or(0))
            .map(|&i| u64::from(i))
    });
    if let Some(i) = interval {
        b.set_uint(Col::NetflowSamplingInterval, i);
    }
    if let Some(s) = start {
        b.set_ts(Col::EventStart, s);
    }
    if let Some(e) = end {
        b.set_ts(Col::EventEnd, e);
    }
    // A flow's time is its end; without one, the export time.
    b.set_ts(Col::Timestamp, end.or(start).unwrap_or(export_ns));
    b.end_row();
}

/// Reads an options record: sampling intervals and the system init time.
pub(super) fn options(dom: &mut Domain, _t: &Template, values: &[(Field, &[u8])]) {
    let mut sampler = 0;
    let mut interval = None;
    for &(f, v) in values {
        if f.enterprise != 0 {
            continue;
        }
        match (element(f.id), be_uint(v)) {
            (Element::Sampler, Some(n)) => sampler = n,
            (Element::SamplingInterval, Some(n)) if n > 0 => interval = u32::try_from(n).ok(),
            // systemInitTimeMilliseconds
            (_, Some(n)) if f.id == 160 => dom.system_init_ms = i64::try_from(n).ok(),
            _ => {}
        }
    }
    if let Some(i) = interval {
        dom.sampling.insert(sampler, i);
    }
}

/// How a vendor-map value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Unsigned,
    Mac,
    Text,
    Address,
    /// Unsigned up to 8 bytes, text when printable, else hex.
    Unknown,
}

fn vendor(b: &mut TableBuilder, key: &str, v: &[u8], kind: Kind, text: &mut String) {
    vendor_text(v, kind, text);
    b.insert_map(Col::VendorFields, key, Some(text));
}

/// An IANA element without a column (or whose value does not fit it): the vendor map, under
/// its IANA name, or `iana.ID` when Canh does not know it.
fn other(b: &mut TableBuilder, id: u16, v: &[u8], key: &mut String, text: &mut String) {
    match name(id) {
        Some((name, kind)) => vendor(b, name, v, kind, text),
        None => {
            key.clear();
            let _ = write!(key, "iana.{id}");
            vendor(b, key, v, Kind::Unknown, text);
        }
    }
}

/// A vendor-map value as text, into `text`.
pub(super) fn vendor_text(v: &[u8], kind: Kind, text: &mut String) {
    text.clear();
    match kind {
        Kind::Unsigned | Kind::Unknown if !v.is_empty() && v.len() <= 8 => {
            let mut buf = Buf::default();
            text.push_str(buf.decimal(be_uint(v).unwrap_or(0)));
        }
        Kind::Mac if v.len() == 6 => {
            for (i, x) in v.iter().enumerate() {
                let _ = write!(text, "{}{x:02x}", if i > 0 { ":" } else { "" });
            }
        }
        Kind::Address => match Buf::default().address(v) {
            Some(a) => text.push_str(a),
            None => hex(v, text),
        },
        Kind::Text => text.push_str(String::from_utf8_lossy(v).trim_end_matches('\0')),
        Kind::Unknown
            if v.iter()
                .all(|&c| c.is_ascii_graphic() || c == b' ' || c == 0)
                && v.first().is_some_and(|&c| c != 0) =>
        {
            text.push_str(String::from_utf8_lossy(v).trim_end_matches('\0'));
        }
        _ => hex(v, text),
    }
}

fn hex(v: &[u8], text: &mut String) {
    text.push_str("0x");
    for x in v {
        let _ = write!(text, "{x:02x}");
    }
}

/// An address column; a value of the wrong length goes to the vendor map instead. Whether
/// the column was set.
fn ip(b: &mut TableBuilder, buf: &mut Buf, col: Col, id: u16, v: &[u8], text: &mut String) -> bool {
    if let Some(a) = buf.address(v) {
        b.set_str(col, a);
        true
    } else {
        let key = name(id).map_or("address", |(n, _)| n);
        vendor(b, key, v, Kind::Unknown, text);
        false
    }
}

/// `0.0.0.0` or `::`.
fn is_unspecified(v: &[u8]) -> bool {
    matches!(v.len(), 4 | 16) && v.iter().all(|&x| x == 0)
}

/// `applicationId` (RFC 6759): a classification engine id byte, then a selector id, written
/// `engine:selector`.
fn application_id(v: &[u8], text: &mut String) {
    match v.split_first() {
        Some((engine, rest)) if !rest.is_empty() && rest.len() <= 8 => {
            let _ = write!(text, "{engine}:{}", be_uint(rest).unwrap_or(0));
        }
        _ => hex(v, text),
    }
}

/// Cisco NSEL (v9) elements without a column.
fn nsel_name(id: u16) -> Option<(&'static str, Kind)> {
    use Kind::*;
    Some(match id {
        33000 => ("ingressAclId", Unknown),
        33001 => ("egressAclId", Unknown),
        33002 => ("fwExtEvent", Unsigned),
        40000 => ("aaaUsername", Text),
        40005 => ("fwEvent", Unsigned),
        _ => return None,
    })
}

/// What an IANA element (one without an enterprise number) is to a flow row: the one table
/// both decode paths read, the record path ([`flow`]) and the columnar plans
/// ([`super::plan::Plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Element {
    /// An unsigned number, into its column.
    Uint(Col),
    /// An IPv4 or IPv6 address, into its column.
    Addr(Col),
    /// protocolIdentifier: `network.iana_number` and `network.transport`.
    Protocol,
    /// flowDirection: `inbound` (0) or `outbound`.
    Direction,
    /// icmpTypeCodeIPv4/IPv6: type in the high byte, code in the low one.
    IcmpTypeCode,
    /// The flow's start (or end) time.
    Time { start: bool, clock: Clock },
    /// applicationId (RFC 6759), written `engine:selector`.
    ApplicationId,
    /// samplingInterval, samplingPacketInterval, samplerRandomInterval.
    SamplingInterval,
    /// samplerId, selectorId: whose interval (from options data) applies.
    Sampler,
    /// paddingOctets.
    Padding,
    /// No column: the vendor map, under its IANA name.
    Vendor(&'static str, Kind),
    /// Not known to Canh: the vendor map, as `iana.ID`.
    Unknown,
}

/// How a time element is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Clock {
    /// ms of router uptime (v9 header, or IPFIX systemInitTimeMilliseconds).
    Uptime,
    /// Unix time in units of this many ns.
    Unix(i64),
    /// NTP timestamp; dateTimeMicroseconds ignores the low fraction bits.
    Ntp { micro: bool },
}

/// The [`Element`] of an IANA element id.
pub(super) fn element(id: u16) -> Element {
    use Element::*;
    let time = |start, clock| Time { start, clock };
    match id {
        1 => Uint(Col::NetworkBytes),
        2 => Uint(Col::NetworkPackets),
        4 => Protocol,
        5 => Uint(Col::NetflowIpClassOfService),
        6 => Uint(Col::NetflowTcpFlags),
        7 => Uint(Col::SourcePort),
        8 | 27 => Addr(Col::SourceIp),
        9 | 29 => Uint(Col::NetflowSourcePrefixLength),
        10 => Uint(Col::NetflowIngressInterface),
        11 => Uint(Col::DestinationPort),
        12 | 28 => Addr(Col::DestinationIp),
        13 | 30 => Uint(Col::NetflowDestinationPrefixLength),
        14 => Uint(Col::NetflowEgressInterface),
        15 | 62 => Addr(Col::NetflowNextHop),
        16 => Uint(Col::SourceAsNumber),
        17 => Uint(Col::DestinationAsNumber),
        21 => time(false, Clock::Uptime),
        22 => time(true, Clock::Uptime),
        32 | 139 => IcmpTypeCode,
        34 | 50 | 305 => SamplingInterval,
        35 | 49 => Uint(Col::NetflowSamplingAlgorithm),
        38 => Uint(Col::NetflowEngineType),
        39 => Uint(Col::NetflowEngineId),
        48 | 302 => Sampler,
        58 | 243 => Uint(Col::NetflowVlanId),
        61 => Direction,
        95 => ApplicationId,
        136 => Uint(Col::NetflowFlowEndReason),
        150 => time(true, Clock::Unix(1_000_000_000)),
        151 => time(false, Clock::Unix(1_000_000_000)),
        152 => time(true, Clock::Unix(1_000_000)),
        153 => time(false, Clock::Unix(1_000_000)),
        154 => time(true, Clock::Ntp { micro: true }),
        155 => time(false, Clock::Ntp { micro: true }),
        156 => time(true, Clock::Ntp { micro: false }),
        157 => time(false, Clock::Ntp { micro: false }),
        176 | 178 => Uint(Col::NetflowIcmpType),
        177 | 179 => Uint(Col::NetflowIcmpCode),
        210 => Padding,
        225 | 281 => Addr(Col::SourceNatIp),
        226 | 282 => Addr(Col::DestinationNatIp),
        227 => Uint(Col::SourceNatPort),
        228 => Uint(Col::DestinationNatPort),
        id => match name(id) {
            Some((name, kind)) => Vendor(name, kind),
            None => Unknown,
        },
    }
}

/// IANA names of the elements without a column (and of the addresses, for a value of the wrong
/// length), and how to print them.
pub(super) fn name(id: u16) -> Option<(&'static str, Kind)> {
    use Kind::*;
    Some(match id {
        3 => ("deltaFlowCount", Unsigned),
        8 => ("sourceIPv4Address", Address),
        12 => ("destinationIPv4Address", Address),
        15 => ("ipNextHopIPv4Address", Address),
        18 => ("bgpNextHopIPv4Address", Address),
        19 => ("postMCastPacketDeltaCount", Unsigned),
        20 => ("postMCastOctetDeltaCount", Unsigned),
        23 => ("postOctetDeltaCount", Unsigned),
        24 => ("postPacketDeltaCount", Unsigned),
        25 => ("minimumIpTotalLength", Unsigned),
        26 => ("maximumIpTotalLength", Unsigned),
        27 => ("sourceIPv6Address", Address),
        28 => ("destinationIPv6Address", Address),
        31 => ("flowLabelIPv6", Unsigned),
        33 => ("igmpType", Unsigned),
        36 => ("flowActiveTimeout", Unsigned),
        37 => ("flowIdleTimeout", Unsigned),
        40 => ("exportedOctetTotalCount", Unsigned),
        41 => ("exportedMessageTotalCount", Unsigned),
        42 => ("exportedFlowRecordTotalCount", Unsigned),
        44 => ("sourceIPv4Prefix", Address),
        45 => ("destinationIPv4Prefix", Address),
        46 => ("mplsTopLabelType", Unsigned),
        47 => ("mplsTopLabelIPv4Address", Address),
        51 => ("classId", Unsigned),
        52 => ("minimumTTL", Unsigned),
        53 => ("maximumTTL", Unsigned),
        54 => ("fragmentIdentification", Unsigned),
        55 => ("postIpClassOfService", Unsigned),
        56 => ("sourceMacAddress", Mac),
        57 => ("postDestinationMacAddress", Mac),
        59 => ("postVlanId", Unsigned),
        60 => ("ipVersion", Unsigned),
        62 => ("ipNextHopIPv6Address", Address),
        63 => ("bgpNextHopIPv6Address", Address),
        64 => ("ipv6ExtensionHeaders", Unsigned),
        70..=79 => (
            [
                "mplsTopLabelStackSection",
                "mplsLabelStackSection2",
                "mplsLabelStackSection3",
                "mplsLabelStackSection4",
                "mplsLabelStackSection5",
                "mplsLabelStackSection6",
                "mplsLabelStackSection7",
                "mplsLabelStackSection8",
                "mplsLabelStackSection9",
                "mplsLabelStackSection10",
            ][usize::from(id - 70)],
            Unsigned,
        ),
        80 => ("destinationMacAddress", Mac),
        81 => ("postSourceMacAddress", Mac),
        82 => ("interfaceName", Text),
        83 => ("interfaceDescription", Text),
        85 => ("octetTotalCount", Unsigned),
        86 => ("packetTotalCount", Unsigned),
        88 => ("fragmentOffset", Unsigned),
        89 => ("forwardingStatus", Unsigned),
        90 => ("mplsVpnRouteDistinguisher", Unknown),
        94 => ("applicationDescription", Text),
        96 => ("applicationName", Text),
        98 => ("postIpDiffServCodePoint", Unsigned),
        128 => ("bgpNextAdjacentAsNumber", Unsigned),
        129 => ("bgpPrevAdjacentAsNumber", Unsigned),
        130 => ("exporterIPv4Address", Address),
        131 => ("exporterIPv6Address", Address),
        132 => ("droppedOctetDeltaCount", Unsigned),
        133 => ("droppedPacketDeltaCount", Unsigned),
        137 => ("commonPropertiesId", Unsigned),
        138 => ("observationPointId", Unsigned),
        144 => ("exportingProcessId", Unsigned),
        148 => ("flowId", Unsigned),
        149 => ("observationDomainId", Unsigned),
        160 => ("systemInitTimeMilliseconds", Unsigned),
        161 => ("flowDurationMilliseconds", Unsigned),
        162 => ("flowDurationMicroseconds", Unsigned),
        184 => ("tcpSequenceNumber", Unsigned),
        185 => ("tcpAcknowledgementNumber", Unsigned),
        186 => ("tcpWindowSize", Unsigned),
        192 => ("ipTTL", Unsigned),
        195 => ("ipDiffServCodePoint", Unsigned),
        196 => ("ipPrecedence", Unsigned),
        197 => ("fragmentFlags", Unsigned),
        205 => ("udpMessageLength", Unsigned),
        206 => ("isMulticast", Unsigned),
        224 => ("ipTotalLength", Unsigned),
        230 => ("natEvent", Unsigned),
        231 => ("initiatorOctets", Unsigned),
        232 => ("responderOctets", Unsigned),
        233 => ("firewallEvent", Unsigned),
        234 => ("ingressVRFID", Unsigned),
        235 => ("egressVRFID", Unsigned),
        236 => ("VRFname", Text),
        239 => ("biflowDirection", Unsigned),
        256 => ("ethernetType", Unsigned),
        298 => ("initiatorPackets", Unsigned),
        299 => ("responderPackets", Unsigned),
        303 => ("informationElementId", Unsigned),
        304 => ("selectorAlgorithm", Unsigned),
        306 => ("samplingPacketSpace", Unsigned),
        323 => ("observationTimeMilliseconds", Unsigned),
        351 => ("layer2SegmentId", Unsigned),
        352 => ("layer2OctetDeltaCount", Unsigned),
        _ => return None,
    })
}
