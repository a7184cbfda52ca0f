//! The alert outbox: appends per second as the alerts thread makes them (a batch of new alerts
//! per call, fsync before the call returns), with smaller and larger batches and with fsync off,
//! and records per second read back by a delivery thread.
//!
//! A record is a typical alert as forwarded: the canary rule's Sigma text, observables and one
//! sample event, ~1.3 KB of JSON. The outbox lives in a temporary folder (`TMPDIR`).
//!
//! `cargo bench -p canh-benches --bench outbox`

#![allow(clippy::unwrap_used, clippy::print_stdout)]

// Linked for its `#[global_allocator]`: benches run with the allocator of the `canh` binary.
use canh_benches as _;
use std::time::{Duration, Instant};

use canh_forward::outbox::{Fsync, Outbox, OutboxConfig};
use canh_forward::ForwardAlert;
use canh_metrics::Metrics;

fn record(i: usize) -> Vec<u8> {
    let a = ForwardAlert {
        id: format!("5d7f0b0e-0000-4000-8000-{i:012}"),
        rule_id: "0badc0de-0000-4000-8000-0000000000f1".into(),
        rule_title: "SSH brute force".into(),
        level: "high".into(),
        tags: vec!["attack.credential_access".into(), "attack.t1110".into()],
        rule_text: Some(
            include_str!("../../rules/linux/ssh_bruteforce.yml")
                .chars()
                .take(700)
                .collect(),
        ),
        group_key: format!("source.ip=10.0.{}.{}", i / 250 % 250, i % 250),
        first_ns: 1_700_000_000_000_000_000,
        last_ns: 1_700_000_060_000_000_000,
        count: 12,
        created_ns: 1_700_000_061_000_000_000,
        organization: Some("So Tai Chinh".into()),
        source_ip: Some(format!("10.0.{}.{}", i / 250 % 250, i % 250)),
        destination_ip: Some("10.1.2.3".into()),
        destination_port: Some(22),
        user_name: Some("root".into()),
        samples: vec![serde_json::json!({
            "@timestamp": "2023-11-14T22:13:20Z",
            "event.original": "<38>Nov 14 22:13:20 fw sshd[4242]: Failed password for root from 10.0.0.1 port 50000 ssh2",
            "source.ip": "10.0.0.1",
            "user.name": "root",
            "organization.name": "So Tai Chinh"
        })],
    };
    serde_json::to_vec(&a).unwrap()
}

fn run(name: &str, fsync: Fsync, per_call: usize, records: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = OutboxConfig::new(dir.path().to_path_buf());
    config.fsync = fsync;
    config.max_size = 4 << 30;
    let outbox = Outbox::open(config, Metrics::new()).unwrap();
    let payloads: Vec<Vec<u8>> = (0..per_call).map(record).collect();
    let bytes = payloads.iter().map(Vec::len).sum::<usize>() / per_call;
    let start = Instant::now();
    let mut n = 0;
    while n < records {
        outbox.append(&payloads).unwrap();
        n += per_call;
    }
    let append = start.elapsed();
    let start = Instant::now();
    let mut reader = outbox.reader(1);
    let mut out = Vec::new();
    let mut read = 0;
    loop {
        out.clear();
        reader.read(outbox.committed(), 500, &mut out).unwrap();
        if out.is_empty() {
            break;
        }
        read += out.len();
    }
    let reading = start.elapsed();
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "outbox {name}: {n} records of {bytes} B, {per_call} per append: {:.0} appends/s \
         ({:.0} calls/s); read back {:.0} records/s",
        rate(n, append),
        rate(n / per_call, append),
        rate(read, reading)
    );
}

fn main() {
    run("fsync=batch", Fsync::Batch, 1, 2_000);
    run("fsync=batch", Fsync::Batch, 10, 20_000);
    run("fsync=batch", Fsync::Batch, 100, 200_000);
    run("fsync=off", Fsync::Off, 1, 200_000);
}
