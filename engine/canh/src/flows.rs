//! `canh flows decode`: export packets from files of raw UDP payloads or from packet captures
//! (pcap or pcapng), decoded in order with one template cache, one JSON object per flow.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use canh_core::inventory::{Inventory, SenderInfo};
use canh_parsers::netflow::{FlowDecoder, Limits, Packet};
use canh_schema::{Table, TableBuilder};
use pcap_file::DataLink;

/// One UDP datagram: who sent it, when, and its payload.
struct Datagram {
    exporter: SocketAddr,
    received_ns: i64,
    payload: Vec<u8>,
}

/// What reading a capture skipped, reported at the end.
#[derive(Default)]
struct Skipped {
    /// Packets that are not UDP over IP (or not to one of the chosen ports).
    other: usize,
    /// UDP packets cut short by the capture's snap length, or IP fragments.
    incomplete: usize,
}

/// The first bytes of pcap (either byte order, µs or ns) and pcapng files.
fn is_capture(head: &[u8]) -> bool {
    matches!(
        head.get(..4),
        Some(
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x0a, 0x0d, 0x0d, 0x0a]
        )
    )
}

/// The UDP datagram in one captured frame, if it is one (to one of `ports`, when given).
fn udp_datagram(
    link: DataLink,
    frame: &[u8],
    ts: std::time::Duration,
    ports: &[u16],
    skipped: &mut Skipped,
) -> anyhow::Result<Option<Datagram>> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(frame),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(frame),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(frame),
        // BSD loopback: a 4-byte address family, then the IP packet.
        DataLink::NULL | DataLink::LOOP => SlicedPacket::from_ip(frame.get(4..).unwrap_or(&[])),
        other => anyhow::bail!("unsupported capture link type {other:?}"),
    };
    let sliced = match sliced {
        Ok(s) => s,
        // A frame shorter than its headers say: the capture's snap length cut it.
        Err(etherparse::err::packet::SliceError::Len(_)) => {
            skipped.incomplete += 1;
            return Ok(None);
        }
        Err(_) => {
            skipped.other += 1;
            return Ok(None);
        }
    };
    let source = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) if ip.is_payload_fragmented() => None,
        Some(NetSlice::Ipv6(ip)) if ip.is_payload_fragmented() => None,
        Some(NetSlice::Ipv4(ip)) => Some(IpAddr::V4(ip.header().source_addr())),
        Some(NetSlice::Ipv6(ip)) => Some(IpAddr::V6(ip.header().source_addr())),
        _ => {
            skipped.other += 1;
            return Ok(None);
        }
    };
    let Some(source) = source else {
        skipped.incomplete += 1;
        return Ok(None);
    };
    match &sliced.transport {
        Some(TransportSlice::Udp(udp))
            if ports.is_empty() || ports.contains(&udp.destination_port()) =>
        {
            let payload = udp.payload();
            if payload.len() + 8 < usize::from(udp.length()) {
                skipped.incomplete += 1;
                return Ok(None);
            }
            Ok(Some(Datagram {
                exporter: SocketAddr::new(source, udp.source_port()),
                received_ns: i64::try_from(ts.as_nanos()).unwrap_or(i64::MAX),
                payload: payload.to_vec(),
            }))
        }
        _ => {
            skipped.other += 1;
            Ok(None)
        }
    }
}

/// Every UDP datagram of a pcap or pcapng file, in capture order.
fn read_capture(
    bytes: &[u8],
    ports: &[u16],
    skipped: &mut Skipped,
) -> anyhow::Result<Vec<Datagram>> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = pcap_file::pcapng::PcapNgReader::new(bytes)?;
        // Link types of the interfaces the current section describes, by interface id.
        let mut links: Vec<DataLink> = Vec::new();
        while let Some(block) = r.next_block() {
            use pcap_file::pcapng::Block;
            let (interface, ts, data) = match block? {
                Block::SectionHeader(_) => {
                    links.clear();
                    continue;
                }
                Block::InterfaceDescription(i) => {
                    links.push(i.linktype);
                    continue;
                }
                Block::EnhancedPacket(p) => (p.interface_id, p.timestamp, p.data),
                Block::SimplePacket(p) => (0, std::time::Duration::ZERO, p.data),
                _ => continue,
            };
            let link = usize::try_from(interface)
                .ok()
                .and_then(|i| links.get(i))
                .context("a packet names an interface the capture does not describe")?;
            out.extend(udp_datagram(*link, &data, ts, ports, skipped)?);
        }
    } else {
        let mut r = pcap_file::pcap::PcapReader::new(bytes)?;
        let link = r.header().datalink;
        while let Some(p) = r.next_packet() {
            let p = p?;
            out.extend(udp_datagram(link, &p.data, p.timestamp, ports, skipped)?);
        }
    }
    Ok(out)
}

pub fn decode(
    files: &[PathBuf],
    exporter: SocketAddr,
    ports: &[u16],
    inventory: Option<Inventory>,
) -> anyhow::Result<ExitCode> {
    let mut decoder = FlowDecoder::new(Limits::default());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut problems = 0;
    let mut skipped = Skipped::default();
    let sender = |ip: IpAddr| match &inventory {
        Some(inv) => inv.sender(ip),
        None => SenderInfo::NoInventory,
    };
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let datagrams = if is_capture(&bytes) {
            read_capture(&bytes, ports, &mut skipped)
                .with_context(|| format!("reading the capture {}", file.display()))?
        } else {
            vec![Datagram {
                exporter,
                received_ns: canh_schema::raw::now_ns(),
                payload: bytes,
            }]
        };
        for (i, d) in datagrams.iter().enumerate() {
            let info = sender(d.exporter.ip());
            let packet = Packet {
                exporter: d.exporter,
                received_ns: d.received_ns,
                payload: &d.payload,
                organization: info.organization(),
            };
            // Where a problem is: the file, and the packet's place in a capture.
            let place = || match datagrams.len() {
                1 => file.display().to_string(),
                _ => format!("{} packet {} from {}", file.display(), i + 1, d.exporter),
            };
            problems += print_flows(&mut decoder, &packet, &place, &mut out)?;
        }
    }
    out.flush()?;
    let mut err = std::io::stderr().lock();
    if decoder.pending() > 0 {
        writeln!(
            err,
            "{} data set(s) never saw their template",
            decoder.pending()
        )?;
    }
    if skipped.other > 0 {
        writeln!(
            err,
            "{} captured packet(s) skipped: not UDP over IP{}",
            skipped.other,
            if ports.is_empty() {
                ""
            } else {
                " to the chosen port(s)"
            }
        )?;
    }
    if skipped.incomplete > 0 {
        problems += 1;
        writeln!(
            err,
            "{} captured UDP packet(s) skipped: cut short by the snap length, or IP fragments",
            skipped.incomplete
        )?;
    }
    Ok(if problems > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Decodes one packet and prints its flows; returns 1 if the packet had a problem.
fn print_flows(
    decoder: &mut FlowDecoder,
    packet: &Packet<'_>,
    place: &dyn Fn() -> String,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let mut builder = TableBuilder::new(Table::Flows, 64);
    let s = decoder.decode(packet, &mut builder);
    let mut err = std::io::stderr().lock();
    if let Some(e) = &s.error {
        writeln!(err, "{}: {e}", place())?;
    }
    if s.no_template > 0 {
        writeln!(
            err,
            "{}: {} data set(s) dropped: their template did not come in time",
            place(),
            s.no_template
        )?;
    }
    if let Some(batch) = builder.finish()? {
        for row in 0..batch.rows() {
            let mut obj = canh_core::json::row_to_json(Table::Flows, &batch.records, row);
            // Elements without a column print as `netflow.<IANA name>`.
            if let Some(serde_json::Value::Object(extra)) = obj.remove("vendor_fields") {
                for (k, v) in extra {
                    obj.insert(format!("netflow.{k}"), v);
                }
            }
            serde_json::to_writer(&mut *out, &obj)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(usize::from(s.error.is_some()))
}
