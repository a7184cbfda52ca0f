//! The ClickHouse tables and the RowBinary encoder against a real server: the one Debian 12
//! ships (18.16), installed and started on loopback by `deploy/clickhouse.sh` in a folder of
//! the test's own, and stopped afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use canh_core::sink::clickhouse::{encode, Layout, Server};
use canh_schema::fields::events::Col;
use canh_schema::{Table, TableBuilder};

/// A server started by the deploy script, stopped when dropped.
struct ClickHouse {
    dir: PathBuf,
    http: u16,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/clickhouse.sh")
}

impl ClickHouse {
    fn start(dir: &Path) -> ClickHouse {
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir)
            .output()
            .expect("run deploy/clickhouse.sh");
        assert!(
            out.status.success(),
            "deploy/clickhouse.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ports = String::from_utf8(out.stdout).unwrap();
        let http = ports.split_whitespace().next().unwrap().parse().unwrap();
        ClickHouse {
            dir: dir.to_owned(),
            http,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

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
    if std::env::var_os("CANH_SKIP_CLICKHOUSE").is_some() {
        eprintln!("skipping: CANH_SKIP_CLICKHOUSE is set");
        return;
    }
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
        };
        server.create(&layout).await.unwrap();
        // Creating again is harmless.
        server.create(&layout).await.unwrap();
        let batch = events();
        let mut data = Vec::new();
        encode(Table::Events, layout.dialect, &batch.records, &mut data).unwrap();
        server.insert(Table::Events, &layout, data).await.unwrap();
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
