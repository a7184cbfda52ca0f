//! Synthetic NetFlow v5, v9 and IPFIX export packets, for benchmarks and load: realistic
//! records (addresses from a few /16s, common ports, varied counters) in the layouts exporters
//! use. v9 and IPFIX packets carry their template in the first packet of a stream.

use crate::Rng;

/// Records per packet: v5's maximum, and what fits a 1,500-byte datagram for v9/IPFIX with
/// the template below (45 bytes per record).
pub const V5_RECORDS: usize = 30;
pub const TEMPLATE_RECORDS: usize = 30;

/// The data template v9 and IPFIX streams use (element id, length): addresses, ports,
/// protocol, TCP flags, octets, packets, interfaces, start/end, next hop, AS numbers.
const FIELDS: &[(u16, u16)] = &[
    (8, 4),  // sourceIPv4Address
    (12, 4), // destinationIPv4Address
    (7, 2),  // sourceTransportPort
    (11, 2), // destinationTransportPort
    (4, 1),  // protocolIdentifier
    (6, 1),  // tcpControlBits
    (1, 8),  // octetDeltaCount
    (2, 4),  // packetDeltaCount (reduced size)
    (10, 2), // ingressInterface (reduced size)
    (14, 2), // egressInterface (reduced size)
    (22, 4), // flowStartSysUpTime (v9) / replaced for IPFIX below
    (21, 4), // flowEndSysUpTime
    (15, 4), // ipNextHopIPv4Address
    (16, 2), // bgpSourceAsNumber (reduced size)
    (17, 2), // bgpDestinationAsNumber (reduced size)
];
const TEMPLATE_ID: u16 = 256;

/// One record's values.
struct Flow {
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    proto: u8,
    flags: u8,
    octets: u64,
    packets: u32,
    input: u16,
    output: u16,
    first: u32,
    last: u32,
    next_hop: u32,
    src_as: u16,
    dst_as: u16,
}

fn flow(rng: &mut Rng, uptime: u32) -> Flow {
    const PORTS: [u16; 8] = [443, 80, 53, 22, 3389, 445, 123, 8080];
    let proto = [6u8, 6, 6, 17, 17, 1][rng.below(6) as usize];
    let packets = 1 + rng.below(200) as u32;
    let last = uptime.saturating_sub(rng.below(30_000) as u32);
    Flow {
        src: 0x0A14_0000 | rng.below(1 << 16) as u32,
        dst: [0xCB00_7100u32, 0xC633_6400, 0x0A1E_0000][rng.below(3) as usize]
            | rng.below(256) as u32,
        sport: 1024 + rng.below(60_000) as u16,
        dport: PORTS[rng.below(PORTS.len() as u64) as usize],
        proto,
        flags: if proto == 6 { 0x1b } else { 0 },
        octets: u64::from(packets) * (40 + rng.below(1400)),
        packets,
        input: 1 + rng.below(8) as u16,
        output: 1 + rng.below(8) as u16,
        first: last.saturating_sub(rng.below(60_000) as u32),
        last,
        next_hop: 0x0A00_0001,
        src_as: 0,
        dst_as: 64_500 + rng.below(20) as u16,
    }
}

/// A NetFlow v5 packet of [`V5_RECORDS`] records.
pub fn v5_packet(rng: &mut Rng, sequence: u32, unix_secs: u32) -> Vec<u8> {
    let uptime: u32 = 86_400_000;
    let mut p = Vec::with_capacity(24 + 48 * V5_RECORDS);
    p.extend(5u16.to_be_bytes());
    p.extend((V5_RECORDS as u16).to_be_bytes());
    p.extend(uptime.to_be_bytes());
    p.extend(unix_secs.to_be_bytes());
    p.extend(0u32.to_be_bytes());
    p.extend(sequence.to_be_bytes());
    p.extend([0, 0]); // engine type, id
    p.extend(0u16.to_be_bytes()); // sampling
    for _ in 0..V5_RECORDS {
        let f = flow(rng, uptime);
        p.extend(f.src.to_be_bytes());
        p.extend(f.dst.to_be_bytes());
        p.extend(f.next_hop.to_be_bytes());
        p.extend(f.input.to_be_bytes());
        p.extend(f.output.to_be_bytes());
        p.extend(f.packets.to_be_bytes());
        p.extend((f.octets as u32).to_be_bytes());
        p.extend(f.first.to_be_bytes());
        p.extend(f.last.to_be_bytes());
        p.extend(f.sport.to_be_bytes());
        p.extend(f.dport.to_be_bytes());
        p.push(0);
        p.push(f.flags);
        p.push(f.proto);
        p.push(0); // tos
        p.extend(f.src_as.to_be_bytes());
        p.extend(f.dst_as.to_be_bytes());
        p.extend([16, 24]); // masks
        p.extend([0, 0]);
    }
    p
}

fn template_set(version: u16) -> Vec<u8> {
    let mut body = TEMPLATE_ID.to_be_bytes().to_vec();
    body.extend((FIELDS.len() as u16).to_be_bytes());
    for &(id, len) in FIELDS {
        // IPFIX has no sysUpTime in the header: its flows carry flowStart/EndSeconds.
        let id = match (version, id) {
            (10, 22) => 150,
            (10, 21) => 151,
            _ => id,
        };
        body.extend(id.to_be_bytes());
        body.extend(len.to_be_bytes());
    }
    let set_id: u16 = if version == 9 { 0 } else { 2 };
    let mut s = set_id.to_be_bytes().to_vec();
    s.extend(((4 + body.len()) as u16).to_be_bytes());
    s.extend(body);
    s
}

fn data_set(rng: &mut Rng, version: u16, uptime: u32, unix_secs: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(TEMPLATE_RECORDS * 48);
    for _ in 0..TEMPLATE_RECORDS {
        let f = flow(rng, uptime);
        body.extend(f.src.to_be_bytes());
        body.extend(f.dst.to_be_bytes());
        body.extend(f.sport.to_be_bytes());
        body.extend(f.dport.to_be_bytes());
        body.push(f.proto);
        body.push(f.flags);
        body.extend(f.octets.to_be_bytes());
        body.extend(f.packets.to_be_bytes());
        body.extend(f.input.to_be_bytes());
        body.extend(f.output.to_be_bytes());
        if version == 10 {
            let age = |t: u32| unix_secs - (uptime - t) / 1000;
            body.extend(age(f.first).to_be_bytes());
            body.extend(age(f.last).to_be_bytes());
        } else {
            body.extend(f.first.to_be_bytes());
            body.extend(f.last.to_be_bytes());
        }
        body.extend(f.next_hop.to_be_bytes());
        body.extend(f.src_as.to_be_bytes());
        body.extend(f.dst_as.to_be_bytes());
    }
    let mut s = TEMPLATE_ID.to_be_bytes().to_vec();
    s.extend(((4 + body.len()) as u16).to_be_bytes());
    s.extend(body);
    s
}

/// A v9 (`version` 9) or IPFIX (10) packet of [`TEMPLATE_RECORDS`] records; with the template
/// set first when `with_template`.
pub fn template_packet(
    rng: &mut Rng,
    version: u16,
    sequence: u32,
    unix_secs: u32,
    with_template: bool,
) -> Vec<u8> {
    let uptime: u32 = 86_400_000;
    let mut sets = Vec::new();
    if with_template {
        sets.extend(template_set(version));
    }
    sets.extend(data_set(rng, version, uptime, unix_secs));
    let mut p = Vec::with_capacity(20 + sets.len());
    p.extend(version.to_be_bytes());
    if version == 9 {
        p.extend((TEMPLATE_RECORDS as u16 + u16::from(with_template)).to_be_bytes());
        p.extend(uptime.to_be_bytes());
        p.extend(unix_secs.to_be_bytes());
        p.extend(sequence.to_be_bytes());
        p.extend(1u32.to_be_bytes()); // source id
    } else {
        p.extend(((16 + sets.len()) as u16).to_be_bytes());
        p.extend(unix_secs.to_be_bytes());
        p.extend(sequence.to_be_bytes());
        p.extend(1u32.to_be_bytes()); // observation domain
    }
    p.extend(sets);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use canh_parsers::netflow::{FlowDecoder, Limits, Packet};
    use canh_schema::{Table, TableBuilder};

    #[test]
    fn generated_packets_decode_whole() {
        let mut rng = Rng::new(1);
        let mut d = FlowDecoder::new(Limits::default());
        let mut b = TableBuilder::new(Table::Flows, 128);
        let packets = [
            v5_packet(&mut rng, 0, 1_795_435_200),
            template_packet(&mut rng, 9, 0, 1_795_435_200, true),
            template_packet(&mut rng, 9, 1, 1_795_435_200, false),
            template_packet(&mut rng, 10, 0, 1_795_435_200, true),
        ];
        for p in &packets {
            let s = d.decode(
                &Packet {
                    exporter: std::net::SocketAddr::from(([10, 0, 0, 1], 2055)),
                    received_ns: 0,
                    payload: p,
                    organization: None,
                },
                &mut b,
            );
            assert_eq!((s.flows, s.error, s.no_template), (30, None, 0));
        }
        assert_eq!(b.rows(), 120);
    }
}
