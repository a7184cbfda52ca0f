//! ClickHouse: event rows per second into a real server from one Canh instance (the sink's
//! RowBinary encoding and `INSERT`s, one thread, as `canh serve` runs it), and bytes per event
//! on disk in ClickHouse and in the Parquet archive for the same rows.
//!
//! The rows: 1,000,000 lines of the syslog mix (`canh_benches::Mix`: 50% FortiGate-style
//! firewall, 30% sshd, 20% switch), decoded into events once, in batches of 8,192 as the
//! parsers make them; inserted 200,000 rows per `INSERT` (the sink's default `batch_rows`).
//!
//! `bash benches/clickhouse.sh` starts a server (deploy/clickhouse.sh) and runs this with
//! `CANH_CLICKHOUSE_URL`; without it the bench skips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::print_stdout
)]

use std::time::Instant;

use canh_benches::Mix;
use canh_core::sink::clickhouse::{encode_native, Layout, Server};
use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Batch, Table, TableBuilder};

const ROWS: usize = 1_000_000;
const PER_INSERT: usize = 200_000;
const STREAMS: usize = 2;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage with a valid pointer to a zeroed struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn batches() -> Vec<Batch> {
    let mut mix = Mix::new(7, false);
    let meta = Meta {
        received_ns: 1_795_428_000_000_000_000,
        listener: "bench",
        input_type: "tcp",
        peer_ip: "10.1.2.3",
        peer_addr: "10.1.2.3:514",
        tz_offset_secs: 0,
        organization: Some("So Tai chinh"),
        device: None,
    };
    let mut out = Vec::new();
    let mut builder = TableBuilder::new(Table::Events, 8192);
    let mut line = Vec::new();
    for i in 0..ROWS {
        line.clear();
        mix.line(&mut line);
        append_event(&mut builder, &line, Format::Auto, &meta);
        if (i + 1) % 8192 == 0 || i + 1 == ROWS {
            out.extend(builder.finish().unwrap());
        }
    }
    out
}

fn main() {
    let Ok(url) = std::env::var("CANH_CLICKHOUSE_URL") else {
        eprintln!("skipping: CANH_CLICKHOUSE_URL is not set (benches/clickhouse.sh sets it)");
        return;
    };
    let batches = batches();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(Server::connect(&url)).unwrap();
    let layout = Layout {
        database: "canh_bench".into(),
        dialect: server.dialect,
        retention_days: None,
        cluster: None,
    };
    rt.block_on(async {
        server
            .execute("DROP DATABASE IF EXISTS canh_bench")
            .await
            .unwrap();
        server.create(&layout).await.unwrap();
    });

    // Encoding alone.
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut bytes = 0;
    for b in &batches {
        let mut data = Vec::new();
        encode_native(Table::Events, layout.dialect, &b.records, &mut data).unwrap();
        bytes += data.len();
    }
    let (encode_s, encode_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);

    // Encoding and inserting, as the sink does: one stream of INSERTs, then STREAMS at once.
    let (insert_s, insert_cpu) = insert(&url, &layout, &batches, 1);
    rt.block_on(server.execute("TRUNCATE TABLE canh_bench.events"))
        .unwrap();
    let (parallel_s, parallel_cpu) = insert(&url, &layout, &batches, STREAMS);
    let stored = rt
        .block_on(server.text("SELECT count() FROM canh_bench.events"))
        .unwrap();
    assert_eq!(stored.trim(), ROWS.to_string());
    rt.block_on(server.execute("OPTIMIZE TABLE canh_bench.events FINAL"))
        .unwrap();
    let on_disk: f64 = rt
        .block_on(server.text(
            "SELECT sum(bytes_on_disk) FROM system.parts \
             WHERE database = 'canh_bench' AND table = 'events' AND active",
        ))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // The same rows in the Parquet archive.
    let dir = tempfile::tempdir().unwrap();
    let mut archive = canh_core::sink::parquet::ParquetArchive::open(
        dir.path(),
        canh_core::config::ArchiveConfig::default(),
        canh_metrics::Metrics::new(),
    )
    .unwrap();
    for b in &batches {
        archive.write(b).unwrap();
    }
    archive.close().unwrap();
    let parquet: u64 = walk(dir.path());

    println!(
        "clickhouse {} ({:?}) rows={ROWS} native_bytes_per_row={:.0}",
        server.version,
        server.dialect,
        bytes as f64 / ROWS as f64
    );
    println!(
        "encode_only rows_per_s={:.0} rows_per_cpu_s={:.0}",
        ROWS as f64 / encode_s,
        ROWS as f64 / encode_cpu
    );
    println!(
        "encode_and_insert rows_per_s={:.0} canh_cpu_s={:.2} rows_per_canh_cpu_s={:.0} elapsed_s={:.2}",
        ROWS as f64 / insert_s,
        insert_cpu,
        ROWS as f64 / insert_cpu,
        insert_s
    );
    println!(
        "encode_and_insert_{STREAMS}_streams rows_per_s={:.0} canh_cpu_s={:.2} elapsed_s={:.2}",
        ROWS as f64 / parallel_s,
        parallel_cpu,
        parallel_s
    );
    println!(
        "bytes_per_event clickhouse={:.1} parquet={:.1}",
        on_disk / ROWS as f64,
        parquet as f64 / ROWS as f64
    );
    rt.block_on(server.execute("DROP DATABASE canh_bench"))
        .unwrap();
}

/// Encodes and inserts every batch, `PER_INSERT` rows per INSERT, over `streams` connections
/// at once (batches dealt round-robin); (elapsed s, CPU s of this process).
fn insert(url: &str, layout: &Layout, batches: &[Batch], streams: usize) -> (f64, f64) {
    let (t0, c0) = (Instant::now(), cpu_seconds());
    std::thread::scope(|scope| {
        for k in 0..streams {
            scope.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let server = rt.block_on(Server::connect(url)).unwrap();
                let mine: Vec<&Batch> = batches.iter().skip(k).step_by(streams).collect();
                let mut chunk = Vec::new();
                let mut rows = 0;
                for (i, b) in mine.iter().enumerate() {
                    encode_native(Table::Events, layout.dialect, &b.records, &mut chunk).unwrap();
                    rows += b.rows();
                    if rows >= PER_INSERT / streams || i + 1 == mine.len() {
                        rt.block_on(server.insert(
                            Table::Events,
                            layout,
                            std::mem::take(&mut chunk),
                        ))
                        .unwrap();
                        rows = 0;
                    }
                }
            });
        }
    });
    (t0.elapsed().as_secs_f64(), cpu_seconds() - c0)
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}
