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

/// Syslog lines whose message no decoder claims: the header parsers and a detection miss.
fn plain_lines(rfc5424: bool, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let (m, s) = (i % 60, (i / 60) % 60);
            if rfc5424 {
                format!(
                    "<165>1 2026-11-23T10:{m:02}:{s:02}.{i:06}+07:00 host-{h}.soyte.gov.vn app{a} {pid} ID{a} [exampleSDID@32473 iut=\"3\" eventSource=\"App\"] job {i} finished in {d} ms",
                    h = i % 17, a = i % 5, pid = 1000 + i % 5000, d = i % 997
                )
            } else {
                format!(
                    "<30>Nov 23 10:{m:02}:{s:02} host-{h} app{a}[{pid}]: job {i} finished in {d} ms",
                    h = i % 17, a = i % 5, pid = 1000 + i % 5000, d = i % 997
                )
            }
            .into_bytes()
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
        organization: None,
        device: None,
    };
    for (name, rfc5424, decoded) in [
        ("rfc5424", true, false),
        ("rfc3164", false, false),
        ("mix5424", true, true),
        ("mix3164", false, true),
    ] {
        let format = Format::Auto;
        // `rfc…`: plain messages (header parsing); `mix…`: the realistic mix of FortiGate,
        // sshd, IOS and netfilter lines, every one decoded into ECS fields.
        let input = if decoded {
            lines(rfc5424, 8192)
        } else {
            plain_lines(rfc5424, 8192)
        };
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

/// Lines of a vendor's golden fixture, repeated to `n`.
fn fixture_lines(vendor: &str, n: usize) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/parsers")
        .join(vendor)
        .join(format!("{vendor}.log"));
    let text = std::fs::read(&path).unwrap_or_default();
    let base: Vec<Vec<u8>> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    if base.is_empty() {
        return Vec::new();
    }
    base.iter().cycle().take(n).cloned().collect()
}

/// Each decoder on its fixture lines, auto-detected and named: the difference is the cost of
/// detection.
fn vendors(c: &mut Criterion) {
    let meta = Meta {
        received_ns: 1_795_428_000_000_000_000,
        listener: "bench",
        input_type: "udp",
        peer_ip: "10.1.2.3",
        peer_addr: "10.1.2.3:514",
        tz_offset_secs: 0,
        organization: None,
        device: None,
    };
    for vendor in [
        "fortigate",
        "cisco_asa",
        "cef",
        "kv",
        "panos",
        "linux",
        "juniper_srx",
        "sophos",
    ] {
        let input = fixture_lines(vendor, 8192);
        if input.is_empty() {
            continue;
        }
        let named = Format::from_name(vendor).unwrap_or_default();
        let mut group = c.benchmark_group(format!("parsers::vendor::{vendor}"));
        group.throughput(Throughput::Elements(input.len() as u64));
        for (label, format) in [("auto", Format::Auto), ("named", named)] {
            if vendor == "kv" && label == "auto" {
                continue;
            }
            group.bench_function(label, |b| {
                let mut builder = TableBuilder::new(Table::Events, input.len());
                b.iter(|| {
                    for l in &input {
                        append_event(&mut builder, l, format, &meta);
                    }
                    builder.finish()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench, vendors);
criterion_main!(benches);
