//! Parse-only throughput: lines into Arrow builders, one core.
//!
//! `cargo bench -p canh-benches --bench parse`

use canh_benches::Mix;
use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Table, TableBuilder};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn lines(rfc5424: bool, n: usize) -> Vec<Vec<u8>> {
    let mut mix = Mix::new(42, rfc5424);
    (0..n)
        .map(|_| {
            let mut l = Vec::new();
            mix.line(&mut l);
            l
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let meta = Meta {
        received_ns: 1_795_428_000_000_000_000,
        listener: "bench",
        input_type: "tcp",
        peer_ip: "10.1.2.3",
        peer_addr: "10.1.2.3:514",
        tz_offset_secs: 0,
    };
    for (name, rfc5424, format) in [
        ("rfc5424", true, Format::Auto),
        ("rfc3164", false, Format::Auto),
    ] {
        let input = lines(rfc5424, 8192);
        let bytes: usize = input.iter().map(Vec::len).sum();
        let mut group = c.benchmark_group(format!("parsers::syslog::{name}"));
        let run = |b: &mut criterion::Bencher<'_>| {
            let mut builder = TableBuilder::new(Table::Events, input.len());
            b.iter(|| {
                for l in &input {
                    append_event(&mut builder, l, format, &meta);
                }
                builder.finish()
            })
        };
        // The same work, reported per line and per byte.
        group.throughput(Throughput::Elements(input.len() as u64));
        group.bench_function("lines_to_batch", run);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function("bytes_to_batch", run);
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
