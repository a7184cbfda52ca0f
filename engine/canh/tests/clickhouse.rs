//! ClickHouse against a real server: the one Debian 12 ships (18.16), installed and started on
//! loopback by `deploy/clickhouse.sh` in a folder of the test's own, and stopped afterwards.
//! The tables and the RowBinary encoder; `canh serve` storing events through an outage of the
//! server and a restart of Canh with a full spool; a million events over TCP stored field for
//! field as in the Parquet archive; two servers as the shards of a cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use canh_core::sink::clickhouse::{encode, encode_native, Dialect, Layout, Server};
use canh_schema::fields::events::Col;
use canh_schema::{Table, TableBuilder};
use common::{eventually, read_events, Canh, ClickHouse};

/// Events with every kind of column: nulls, lists, the vendor map (with a null value),
/// non-ASCII text, bytes that need escaping in text formats, nanosecond times.
fn events() -> canh_schema::Batch {
    let mut b = TableBuilder::new(Table::Events, 8);
    let rows = [
        (
            "10.0.0.1",
            Some("Sở Tài chính"),
            &["network", "authentication"][..],
        ),
        ("2001:db8::7", None, &[][..]),
        ("192.0.2.9", Some("tab\there\nline"), &["network"][..]),
    ];
    for (i, (ip, org, cats)) in rows.iter().enumerate() {
        b.set_ts(Col::Timestamp, 1_764_460_800_123_456_789 + i as i64);
        b.set_ts(Col::EventCreated, 1_764_460_801_000_000_007 + i as i64);
        b.set_str(Col::SourceIp, ip);
        if let Some(org) = org {
            b.set_str(Col::OrganizationName, org);
        }
        for c in *cats {
            b.push_list(Col::EventCategory, c);
        }
        if i != 1 {
            b.set_uint(Col::DestinationPort, 443 + i as u64);
            b.insert_map(Col::VendorFields, "srcintf", Some("port1"));
            b.insert_map(Col::VendorFields, "policyid", None);
        }
        b.set_str(Col::EventOriginal, &format!("<13>line {i} \u{1F600}"));
        b.set_str(Col::ParseStatus, "ok");
        b.end_row();
    }
    b.finish().unwrap().unwrap()
}

#[test]
fn events_round_trip_through_clickhouse_18_16() {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = Server::connect(&ch.url()).await.unwrap();
        let layout = Layout {
            database: "canh_test".into(),
            dialect: server.dialect,
            retention_days: Some(30),
            cluster: None,
        };
        server.create(&layout).await.unwrap();
        // Creating again is harmless.
        server.create(&layout).await.unwrap();
        let batch = events();
        server
            .insert(Table::Events, &layout, std::slice::from_ref(&batch.records))
            .await
            .unwrap();
        let got = server
            .text(
                "SELECT timestamp, event_created, source_ip, organization_name, \
                 event_category, destination_port, vendor_fields.key, vendor_fields.value, \
                 event_original, timestamp_time \
                 FROM canh_test.events ORDER BY timestamp FORMAT JSONEachRow",
            )
            .await
            .unwrap();
        let rows: Vec<serde_json::Value> = got
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 3, "{got}");
        let r0 = &rows[0];
        // 18.16 writes 64-bit integers in JSON as strings.
        assert_eq!(r0["timestamp"], "1764460800123456789");
        assert_eq!(r0["event_created"], "1764460801000000007");
        assert_eq!(r0["source_ip"], "10.0.0.1");
        assert_eq!(r0["organization_name"], "Sở Tài chính");
        assert_eq!(
            r0["event_category"],
            serde_json::json!(["network", "authentication"])
        );
        assert_eq!(r0["destination_port"], 443);
        assert_eq!(
            r0["vendor_fields.key"],
            serde_json::json!(["srcintf", "policyid"])
        );
        assert_eq!(
            r0["vendor_fields.value"],
            serde_json::json!(["port1", null])
        );
        assert_eq!(r0["event_original"], "<13>line 0 \u{1F600}");
        assert_eq!(r0["timestamp_time"], "2025-11-30 00:00:00");
        let r1 = &rows[1];
        assert_eq!(r1["source_ip"], "2001:db8::7");
        assert_eq!(r1["organization_name"], serde_json::Value::Null);
        assert_eq!(r1["event_category"], serde_json::json!([]));
        assert_eq!(r1["destination_port"], serde_json::Value::Null);
        assert_eq!(r1["vendor_fields.key"], serde_json::json!([]));
        assert_eq!(rows[2]["organization_name"], "tab\there\nline");
        // One partition per day of @timestamp.
        let parts = server
            .text(
                "SELECT DISTINCT partition FROM system.parts \
                 WHERE database = 'canh_test' AND table = 'events' AND active",
            )
            .await
            .unwrap();
        assert_eq!(parts.trim(), "20251130");
    });
}

/// Sends `n` syslog lines over one TCP connection, numbered from `first` (`seq=N`).
fn send(canh: &Canh, first: usize, n: usize) {
    let mut s = TcpStream::connect(canh.tcp).unwrap();
    let mut text = String::new();
    for i in first..first + n {
        text.push_str(&format!(
            "<134>Nov 30 10:00:00 fw1 app[1]: seq={i} src=10.0.{}.{} action=deny\n",
            i / 256 % 256,
            i % 256
        ));
    }
    s.write_all(text.as_bytes()).unwrap();
}

fn count(ch: &ClickHouse) -> u64 {
    ch.try_query("SELECT count() FROM canh.events")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn serve_keeps_every_event_through_an_outage_and_a_restart_with_a_full_spool() {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start(&dir.path().join("clickhouse"));
    let ports = Some((ch.http, ch.tcp));
    let data = dir.path().join("data");
    // An INSERT that outlasts the timeout may still land, and is sent again: the timeout stays
    // well above what a server just restarted takes while the other tests load the machine.
    let extra = format!(
        "[clickhouse]\nurl = \"{}\"\nflush_interval = \"100ms\"\ntimeout = \"15s\"\n",
        ch.url()
    );
    let canh = Canh::start(&data, &extra);
    let up = "canh_clickhouse_state{kind=\"up\"}";
    let files = "canh_clickhouse_state{kind=\"spool_files\"}";

    // 1. Server up: rows go straight in.
    send(&canh, 0, 3000);
    assert!(
        eventually(Duration::from_secs(60), || count(&ch) == 3000),
        "{} rows in ClickHouse\n{}",
        count(&ch),
        canh.log()
    );
    assert_eq!(canh.metric(up), 1);

    // 2. Server down: rows are spooled, the metrics say so.
    ch.stop();
    send(&canh, 3000, 3000);
    assert!(
        eventually(Duration::from_secs(60), || canh.metric(files) > 0
            && canh.metric(up) == 0),
        "{}",
        canh.get("/metrics")
    );
    let rows = |kind: &str| {
        canh.metric(&format!(
            "canh_clickhouse_rows_total{{kind=\"{kind}\",table=\"events\"}}"
        ))
    };
    assert_eq!(rows("inserted"), 3000);
    assert!(rows("spooled") > 0);

    // 3. Back up: the spool drains in order, nothing is lost or doubled.
    let ch = ClickHouse::start_on(&ch.dir, ports);
    assert!(
        eventually(Duration::from_secs(60), || count(&ch) == 6000
            && canh.metric(files) == 0),
        "{} rows in ClickHouse\n{}",
        count(&ch),
        canh.log()
    );
    assert!(eventually(Duration::from_secs(10), || canh.metric(up) == 1));
    // Spooled rows are replayed, not inserted a second time.
    assert_eq!(rows("replayed") + rows("inserted"), 6000);
    assert_eq!(rows("spooled"), rows("replayed"));

    // 4. Down again, Canh stopped with rows in the spool, ClickHouse back, Canh started again:
    //    the replay resumes.
    ch.stop();
    send(&canh, 6000, 2000);
    assert!(eventually(Duration::from_secs(60), || canh.metric(files) > 0));
    // Everything received has reached the archive and the spool before Canh exits.
    assert!(canh.stop().success());
    let spooled = std::fs::read_dir(data.join("spool/clickhouse"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".arrows"))
        })
        .count();
    assert!(spooled > 0, "the spool is empty after the stop");
    let ch = ClickHouse::start_on(&ch.dir, ports);
    let canh = Canh::start(&data, &extra);
    assert!(
        eventually(Duration::from_secs(60), || count(&ch) == 8000
            && canh.metric(files) == 0),
        "{} rows in ClickHouse\n{}",
        count(&ch),
        canh.log()
    );
    assert!(canh.stop().success());

    // The archive and ClickHouse hold the same 8,000 events, each once.
    let archived: usize = read_events(&data, Some(&["message"]))
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(archived, 8000);
    let distinct =
        ch.query("SELECT uniqExact(message), min(message), max(source_ip) FROM canh.events");
    assert!(distinct.starts_with("8000\t"), "{distinct}");
    let dead = std::fs::read_dir(data.join("spool/clickhouse/dead"))
        .unwrap()
        .count();
    assert_eq!(dead, 0, "nothing should be dead-lettered");

    // `canh query` on ClickHouse: the same answer as the archive; read-only.
    let q = |sql: &str| {
        std::process::Command::new(common::CANH)
            .args([
                "query",
                "--format",
                "csv",
                "--clickhouse-url",
                &ch.url(),
                sql,
            ])
            .output()
            .unwrap()
    };
    let out = q("SELECT count() AS n FROM events WHERE message LIKE 'seq=%'");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"n\"\n8000\n");
    let out = q("DROP TABLE events");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readonly"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&ch), 8000);

    // Every panel of the Grafana dashboard runs on this server.
    for (title, sql) in dashboard_queries() {
        if let Err(e) = ch.try_query(&sql) {
            panic!("dashboard panel {title:?}: {e}\n{sql}");
        }
    }
    let per_org = ch.query(&dashboard_queries()[0].1);
    assert!(
        per_org.contains("(unknown sender)"),
        "events/s by organization: {per_org}"
    );
}

/// The SQL of every panel of `deploy/grafana/canh-overview.json`, with the Grafana ClickHouse
/// plugin's macros filled in as the plugin would for "the last 10 years, 1-minute buckets".
fn dashboard_queries() -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/grafana/canh-overview.json");
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let re_filter = |sql: &str, macro_: &str, f: &dyn Fn(&str) -> String| {
        let mut out = String::new();
        let mut rest = sql;
        while let Some(at) = rest.find(macro_) {
            out.push_str(&rest[..at]);
            let after = &rest[at + macro_.len()..];
            let end = after.find(')').unwrap();
            out.push_str(&f(&after[..end]));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    };
    d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let sql = p["targets"][0]["rawSql"].as_str().unwrap();
            let sql = re_filter(sql, "$__timeFilter(", &|c| {
                format!("{c} >= now() - 315360000 AND {c} <= now() + 315360000")
            });
            let sql = re_filter(&sql, "$__timeInterval(", &|c| {
                format!("toStartOfMinute({c})")
            });
            (
                p["title"].as_str().unwrap().to_owned(),
                sql.replace("$__interval_s", "60"),
            )
        })
        .collect()
}

/// The modern dialect cannot be served on this machine (Debian ships 18.16): its DDL, the
/// Parquet archive loaded into it, and the RowBinary encoder's output are checked in chDB
/// (ClickHouse 26 in process; `scripts/deps.sh` installs it).
#[test]
fn the_modern_tables_take_the_archive_and_the_encoder_in_chdb() {
    let dir = tempfile::tempdir().unwrap();
    let batch = events();
    let mut archive = canh_core::sink::parquet::ParquetArchive::open(
        &dir.path().join("archive"),
        canh_core::config::ArchiveConfig::default(),
        canh_metrics::Metrics::new(),
    )
    .unwrap();
    archive.write(&batch).unwrap();
    archive.close().unwrap();
    let rb = dir.path().join("rowbinary");
    std::fs::create_dir_all(&rb).unwrap();
    let mut data = Vec::new();
    encode(Table::Events, Dialect::Modern, &batch.records, &mut data).unwrap();
    std::fs::write(rb.join("events.rowbinary"), data).unwrap();
    let mut data = Vec::new();
    encode_native(Table::Events, Dialect::Modern, &batch.records, &mut data).unwrap();
    std::fs::write(rb.join("events.native"), data).unwrap();
    let ddl = std::process::Command::new(common::CANH)
        .args([
            "clickhouse",
            "ddl",
            "--dialect",
            "modern",
            "--retention-days",
            "3650",
        ])
        .output()
        .unwrap();
    assert!(ddl.status.success());
    std::fs::write(dir.path().join("ddl.sql"), &ddl.stdout).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/chdb_check.py");
    let queries = dir.path().join("queries.json");
    std::fs::write(
        &queries,
        serde_json::to_string(&dashboard_queries()).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(dir.path().join("ddl.sql"))
        .arg(dir.path().join("archive"))
        .arg(&rb)
        .arg(&queries)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chdb_check.py: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let tables: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tables.len(), 4, "{tables:?}");
    assert_eq!(
        tables[3]["failed_queries"],
        serde_json::json!([]),
        "dashboard panels on ClickHouse 26"
    );
    let events = &tables[0];
    assert_eq!(events["parquet_rows"], 3, "{events}");
    assert_eq!(events["rowbinary_rows"], 3, "{events}");
    assert_eq!(events["native_rows"], 3, "{events}");
    assert_eq!(events["same"], true, "{events}");
}

/// A RowBinary dump of `canh.events` sorted by sender and line, as the server sends it back.
fn dump_sorted(ch: &ClickHouse) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", ch.http)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let sql =
        "SELECT * FROM canh.events ORDER BY log_source_address, event_original FORMAT RowBinary";
    write!(
        s,
        "POST / HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n\r\n{sql}",
        sql.len()
    )
    .unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut out).unwrap();
    let head = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    assert!(
        out.starts_with(b"HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&out[..head])
    );
    out.split_off(head + 4)
}

/// The archive's events sorted as [`dump_sorted`], encoded as Canh sends them.
fn archive_sorted(data: &std::path::Path, dialect: Dialect) -> (usize, Vec<u8>) {
    use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
    let batches = read_events(data, None);
    let all = concat_batches(&batches[0].schema(), &batches).unwrap();
    let key = |name: &str| SortColumn {
        values: all.column_by_name(name).unwrap().clone(),
        options: None,
    };
    let order =
        lexsort_to_indices(&[key("log_source_address"), key("event_original")], None).unwrap();
    let sorted = take_record_batch(&all, &order).unwrap();
    let mut bytes = Vec::new();
    encode(Table::Events, dialect, &sorted, &mut bytes).unwrap();
    (sorted.num_rows(), bytes)
}

#[test]
fn a_million_events_over_tcp_land_in_clickhouse_as_in_the_archive() {
    const LINES: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start(&dir.path().join("clickhouse"));
    let data = dir.path().join("data");
    // INSERTs of 50,000 rows, three under way at once: every row lands once all the same.
    let canh = Canh::start(
        &data,
        &format!(
            "[clickhouse]\nurl = \"{}\"\ntimeout = \"60s\"\nbatch_rows = 50000\nparallel_inserts = 3\n",
            ch.url()
        ),
    );
    let spec = canh_benches::Spec {
        target: canh.tcp,
        proto: canh_benches::Proto::TcpOctet,
        count: Some(LINES),
        duration: None,
        rate: 0,
        connections: 4,
        seq: true,
        source: canh_benches::Source::Mix { rfc5424: true },
        seed: 5,
    };
    assert_eq!(canh_benches::run(&spec).unwrap().lines, LINES);
    assert!(
        eventually(Duration::from_secs(300), || count(&ch) == LINES),
        "{} rows in ClickHouse\n{}",
        count(&ch),
        canh.log()
    );
    assert!(canh.stop().success());
    assert_eq!(count(&ch), LINES, "no row more after the stop");

    // Every field of every row: the server's RowBinary dump of the table is byte for byte the
    // archive's rows (Parquet), sorted alike and encoded as the sink encodes them.
    let version = ch.query("SELECT version()");
    let dialect = Dialect::of_version(&version);
    let (rows, from_archive) = archive_sorted(&data, dialect);
    assert_eq!(rows as u64, LINES);
    let from_clickhouse = dump_sorted(&ch);
    assert_eq!(from_clickhouse.len(), from_archive.len());
    assert!(
        from_clickhouse == from_archive,
        "the rows differ from byte {:?}",
        from_clickhouse
            .iter()
            .zip(&from_archive)
            .position(|(a, b)| a != b)
    );
    // And a few columns checked as values, not bytes.
    let summary = ch.query(
        "SELECT uniqExact(log_source_address), countIf(observer_vendor = 'Fortinet'), \
         countIf(parse_status = 'ok') > 0, sum(source_bytes) > 0 FROM canh.events",
    );
    let fields: Vec<&str> = summary.split_whitespace().collect();
    assert_eq!(fields[0], "4", "{summary}");
    assert!(fields[1].parse::<u64>().unwrap() > LINES / 3, "{summary}");
    assert_eq!(&fields[2..], ["1", "1"], "{summary}");
}

#[test]
fn a_two_shard_cluster_gets_rows_on_both_shards_and_reads_them_back_whole() {
    const LINES: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let shards = ClickHouse::start_cluster(
        "canh_pair",
        &[dir.path().join("shard1"), dir.path().join("shard2")],
    );
    let data = dir.path().join("data");
    let canh = Canh::start(
        &data,
        &format!(
            "[clickhouse]\nurl = \"{}\"\ncluster = \"canh_pair\"\nshards = [\"{}\", \"{}\"]\n\
             flush_interval = \"100ms\"\n",
            shards[0].url(),
            shards[0].url(),
            shards[1].url()
        ),
    );
    send(&canh, 0, LINES);
    // The Distributed table forwards rows to the other shard in the background.
    let total = |ch: &ClickHouse| {
        ch.try_query("SELECT count() FROM canh.events")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .unwrap_or(0)
    };
    assert!(
        eventually(Duration::from_secs(120), || total(&shards[0]) == LINES),
        "{} rows through the Distributed table\n{}",
        total(&shards[0]),
        canh.log()
    );
    assert!(canh.stop().success());
    let local: Vec<usize> = shards
        .iter()
        .map(|ch| {
            ch.query("SELECT count() FROM canh.events_local")
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(local.iter().sum::<usize>(), LINES, "{local:?}");
    assert!(
        local.iter().all(|&n| n > LINES / 4),
        "rows should spread over both shards: {local:?}"
    );
    // Either shard's Distributed table reads the whole, each line once.
    for ch in &shards {
        let whole = ch.query(
            "SELECT count(), uniqExact(message), countIf(message LIKE 'seq=%') FROM canh.events",
        );
        assert_eq!(whole.trim(), format!("{LINES}\t{LINES}\t{LINES}"));
    }
    // `canh query` on the cluster.
    let out = std::process::Command::new(common::CANH)
        .args(["query", "--format", "csv", "--clickhouse-url"])
        .arg(shards[1].url())
        .arg("SELECT count() AS n FROM events")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("\"n\"\n{LINES}\n")
    );
}

#[test]
fn serve_stores_over_https_with_a_private_ca_a_client_certificate_and_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    common::certificates(&tls);
    // The server requires a client certificate signed by the CA, and the password.
    let (ch, https) = ClickHouse::start_tls(&dir.path().join("clickhouse"), &tls, "pw:s3cret");
    let url = format!("https://127.0.0.1:{https}");
    let data = dir.path().join("data");
    let section = format!(
        "[clickhouse]\nurl = \"{url}\"\nuser = \"default\"\npassword = \"pw:s3cret\"\n\
         ca_file = \"{0}/ca.crt\"\nclient_cert = \"{0}/client.crt\"\nclient_key = \"{0}/client.key\"\n\
         flush_interval = \"100ms\"\n",
        tls.display()
    );
    let canh = Canh::start(&data, &section);
    send(&canh, 0, 500);
    let config = data.join("canh-test.toml");
    let query = |args: &[&str], config: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(common::CANH);
        cmd.args(["query", "--format", "csv"]).args(args);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("SELECT count() AS n FROM events")
            .env("SSL_CERT_FILE", tls.join("ca.crt"))
            .output()
            .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(60), || {
            String::from_utf8_lossy(&query(&["--clickhouse-url", &url], Some(&config)).stdout)
                == "\"n\"\n500\n"
        }),
        "{}",
        canh.log()
    );
    assert_eq!(canh.metric("canh_clickhouse_state{kind=\"up\"}"), 1);
    assert!(canh.stop().success());
    // Without the client certificate, the server refuses the connection.
    let out = query(
        &[
            "--clickhouse-url",
            &format!("https://default:pw%3As3cret@127.0.0.1:{https}"),
        ],
        None,
    );
    assert!(!out.status.success());
    drop(ch);
}
