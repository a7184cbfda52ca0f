//! Decode-only throughput of NetFlow v5, v9 and IPFIX: export packets into `flows` rows, one
//! core. Packets are synthetic (`canh_benches::flows`): 30 records each, one template.
//!
//! `cargo bench -p canh-benches --bench flows`

use canh_benches::flows::{template_packet, v5_packet, TEMPLATE_RECORDS, V5_RECORDS};
use canh_benches::Rng;
use canh_parsers::netflow::{FlowDecoder, Limits, Packet};
use canh_schema::{Table, TableBuilder};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PACKETS: usize = 256;

fn bench(c: &mut Criterion) {
    let exporter = std::net::SocketAddr::from(([10, 0, 0, 1], 2055));
    let secs = 1_795_435_200;
    for (name, version) in [("v5", 5u16), ("v9", 9), ("ipfix", 10)] {
        let mut rng = Rng::new(7);
        let packets: Vec<Vec<u8>> = (0..PACKETS)
            .map(|i| match version {
                5 => v5_packet(&mut rng, (i * V5_RECORDS) as u32, secs),
                v => template_packet(&mut rng, v, i as u32, secs, i == 0),
            })
            .collect();
        let per_packet = if version == 5 {
            V5_RECORDS
        } else {
            TEMPLATE_RECORDS
        };
        let mut group = c.benchmark_group(format!("netflow::{name}"));
        group.throughput(Throughput::Elements((PACKETS * per_packet) as u64));
        group.bench_function("flows_to_batch", |b| {
            let mut decoder = FlowDecoder::new(Limits::default());
            let mut builder = TableBuilder::new(Table::Flows, PACKETS * per_packet);
            b.iter(|| {
                let mut flows = 0;
                for p in &packets {
                    let packet = Packet {
                        exporter,
                        received_ns: i64::from(secs) * 1_000_000_000,
                        payload: p,
                        organization: Some("So TT-TT"),
                    };
                    flows += decoder.decode(&packet, &mut builder).flows;
                }
                assert_eq!(flows, PACKETS * per_packet);
                builder.finish()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
