//! Archive-only throughput: finished batches into Parquet files with the archive's own writer
//! settings (`canh_core::sink::parquet::writer_properties`), one core, into memory so that the
//! disk does not count. Each iteration writes a whole row group (8 batches of ~8,192 rows, as
//! the pipeline hands them over; flows come 30 to a packet, so 8,190) and closes the file:
//! encoding, statistics, compression, footer.
//!
//! `cargo bench -p canh-benches --bench archive`
//!
//! Under callgrind (`--toggle-collect='*ArrowWriter*'`), mind that before measuring it writes
//! each table once to print its size, whatever bench is selected: count a table's writes as the
//! difference between a short and a long `--profile-time` run (benches/RESULTS.md, session 20).

#![allow(clippy::expect_used, clippy::print_stderr)]

use arrow::record_batch::RecordBatch;
use canh_benches::flows::{template_packet, TEMPLATE_RECORDS};
use canh_benches::{Mix, Rng};
use canh_core::config::ArchiveConfig;
use canh_core::sink::parquet::writer_properties;
use canh_parsers::netflow::{FlowDecoder, Limits, Packet};
use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Table, TableBuilder};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use parquet::arrow::ArrowWriter;

const BATCH_ROWS: usize = 8192;
const BATCHES: usize = 8;

/// Batches of the realistic syslog mix (FortiGate, sshd, IOS, netfilter), fully decoded.
fn event_batches() -> Vec<RecordBatch> {
    let mut mix = Mix::new(42, false);
    let mut line = Vec::new();
    (0..BATCHES)
        .map(|b| {
            let meta = Meta {
                received_ns: 1_795_428_000_000_000_000 + b as i64 * 1_000_000_000,
                listener: "bench",
                input_type: "tcp",
                peer_ip: "10.1.2.3",
                peer_addr: "10.1.2.3:514",
                tz_offset_secs: 0,
                organization: Some("So TT-TT"),
                device: None,
            };
            let mut builder = TableBuilder::new(Table::Events, BATCH_ROWS);
            for _ in 0..BATCH_ROWS {
                line.clear();
                mix.line(&mut line);
                append_event(&mut builder, &line, Format::Auto, &meta);
            }
            builder.finish().expect("batch").expect("rows").records
        })
        .collect()
}

/// Batches of decoded v9 flows (the bench template: addresses, ports, counters, interfaces).
fn flow_batches() -> Vec<RecordBatch> {
    let exporter = std::net::SocketAddr::from(([10, 0, 0, 1], 2055));
    let secs = 1_795_435_200;
    let mut rng = Rng::new(7);
    let mut decoder = FlowDecoder::new(Limits::default());
    let packets = BATCH_ROWS / TEMPLATE_RECORDS;
    (0..BATCHES)
        .map(|b| {
            let mut builder = TableBuilder::new(Table::Flows, BATCH_ROWS);
            for i in 0..packets {
                let seq = (b * packets + i) as u32;
                let payload = template_packet(&mut rng, 9, seq, secs, seq == 0);
                let packet = Packet {
                    exporter,
                    received_ns: i64::from(secs) * 1_000_000_000,
                    payload: &payload,
                    organization: Some("So TT-TT"),
                };
                decoder.decode(&packet, &mut builder);
            }
            builder.finish().expect("batch").expect("rows").records
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let config = ArchiveConfig::default();
    for (table, batches) in [
        (Table::Events, event_batches()),
        (Table::Flows, flow_batches()),
    ] {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let props = writer_properties(table, &config).expect("default archive settings");
        let mut group = c.benchmark_group(format!("archive::{}", table.name()));
        group.throughput(Throughput::Elements(rows as u64));
        let write = |out: &mut Vec<u8>| {
            out.clear();
            let mut writer = ArrowWriter::try_new(&mut *out, table.schema(), Some(props.clone()))
                .expect("writer");
            for batch in &batches {
                writer.write(batch).expect("write");
            }
            writer.close().expect("close");
        };
        let mut out = Vec::with_capacity(64 << 20);
        write(&mut out);
        eprintln!(
            "archive::{}: {:.1} bytes per row in Parquet",
            table.name(),
            out.len() as f64 / rows as f64
        );
        group.bench_function("parquet_rows", |b| b.iter(|| write(&mut out)));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
