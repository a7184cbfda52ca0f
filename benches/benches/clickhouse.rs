//! ClickHouse: event rows per second into a real server from one Canh instance (the sink
//! itself, `sink::clickhouse::run`, as `canh serve` runs it: Native encoding, `INSERT`s of
//! 200,000 rows, with 1, 2 and 3 `parallel_inserts`), and bytes per event on disk in
//! ClickHouse and in the Parquet archive for the same rows.
//!
//! The rows: 1,000,000 lines of the syslog mix (`canh_benches::Mix`: 50% FortiGate-style
//! firewall, 30% sshd, 20% switch), decoded into events once, in batches of 8,192 as the
//! parsers make them.
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
use canh_core::config::ClickHouseConfig;
use canh_core::sink::clickhouse::{encode_native, Layout, Server};
use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Batch, Table, TableBuilder};

const ROWS: usize = 1_000_000;

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

    // The sink, with 1, 2 and 3 INSERTs under way at once.
    let mut runs = Vec::new();
    for parallel in 1..=3 {
        rt.block_on(server.execute("TRUNCATE TABLE canh_bench.events"))
            .unwrap();
        runs.push((parallel, sink(&url, &batches, parallel)));
        let stored = rt
            .block_on(server.text("SELECT count() FROM canh_bench.events"))
            .unwrap();
        assert_eq!(stored.trim(), ROWS.to_string());
    }
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
    for (parallel, (elapsed, cpu)) in runs {
        println!(
            "sink parallel_inserts={parallel} rows_per_s={:.0} canh_cpu_s={cpu:.2} rows_per_canh_cpu_s={:.0} elapsed_s={elapsed:.2}",
            ROWS as f64 / elapsed,
            ROWS as f64 / cpu,
        );
    }
    println!(
        "bytes_per_event clickhouse={:.1} parquet={:.1}",
        on_disk / ROWS as f64,
        parquet as f64 / ROWS as f64
    );
    rt.block_on(server.execute("DROP DATABASE canh_bench"))
        .unwrap();
}

/// The sink thread over every batch, `parallel_inserts` INSERTs under way at most, until the
/// last row is in; (elapsed s, CPU s of this process).
fn sink(url: &str, batches: &[Batch], parallel: usize) -> (f64, f64) {
    let mut config = ClickHouseConfig::new(url);
    config.database = "canh_bench".into();
    config.timeout = std::time::Duration::from_secs(120);
    config.parallel_inserts = parallel;
    let spool = tempfile::tempdir().unwrap();
    let metrics = canh_metrics::Metrics::new();
    let (tx, rx) = crossbeam_channel::bounded(4);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    std::thread::scope(|scope| {
        let sink = scope
            .spawn(|| canh_core::sink::clickhouse::run(config, spool.path(), rx, metrics.clone()));
        for b in batches {
            tx.send(b.clone()).unwrap();
        }
        drop(tx);
        sink.join().unwrap();
    });
    let text = metrics.render();
    assert!(
        text.contains(&format!(
            "canh_clickhouse_rows_total{{kind=\"inserted\",table=\"events\"}} {ROWS}"
        )),
        "{text}"
    );
    (t0.elapsed().as_secs_f64(), cpu_seconds() - c0)
}

/// Bytes of every file below a folder.
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
