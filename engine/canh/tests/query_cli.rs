//! `canh query` over a Parquet archive written by the archive sink: SQL, the partition
//! columns, output formats, the row limit, and statements that would write being refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use canh_schema::fields::events::Col;
use canh_schema::{Table, TableBuilder};

fn archive(data: &Path) {
    let mut b = TableBuilder::new(Table::Events, 16);
    for i in 0..10u64 {
        // 2026-11-30T10:00:00Z + i s
        let t = 1_796_032_800_000_000_000 + i as i64 * 1_000_000_000;
        b.set_ts(Col::Timestamp, t);
        b.set_ts(Col::EventCreated, t);
        b.set_str(Col::SourceIp, if i < 7 { "10.0.0.1" } else { "10.0.0.2" });
        b.set_uint(Col::DestinationPort, 22);
        b.push_list(Col::EventCategory, "authentication");
        b.set_str(Col::EventOriginal, &format!("line {i}"));
        b.set_str(Col::ParseStatus, "ok");
        b.end_row();
    }
    let mut batch = b.finish().unwrap().unwrap();
    // Received as they happened: the archive partitions by receive time.
    batch.received_min_ns = 1_796_032_800_000_000_000;
    batch.received_max_ns = 1_796_032_809_000_000_000;
    let mut a = canh_core::sink::parquet::ParquetArchive::open(
        &data.join("archive"),
        canh_core::config::ArchiveConfig::default(),
        canh_metrics::Metrics::new(),
    )
    .unwrap();
    a.write(&batch).unwrap();
    a.close().unwrap();
}

fn query(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(common::CANH)
        .arg("query")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn sql_over_the_archive_in_every_output_format() {
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path());
    let top = "SELECT source_ip, count(*) AS n FROM events \
               WHERE date = '2026-11-30' AND destination_port = 22 \
               GROUP BY source_ip ORDER BY n DESC";
    let (ok, out, err) = query(dir.path(), &["--format", "json", top]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "{\"source_ip\":\"10.0.0.1\",\"n\":7}\n{\"source_ip\":\"10.0.0.2\",\"n\":3}\n"
    );
    let (ok, out, _) = query(dir.path(), &["--format", "csv", top]);
    assert!(ok);
    assert_eq!(out, "source_ip,n\n10.0.0.1,7\n10.0.0.2,3\n");
    let (ok, out, _) = query(dir.path(), &[top]);
    assert!(ok);
    assert!(out.contains("| 10.0.0.1  | 7 |"), "{out}");
    // Lists and times are queryable; an empty table (flows) answers with no rows.
    let (ok, out, err) = query(
        dir.path(),
        &[
            "--format",
            "csv",
            "SELECT min(timestamp) AS first, array_element(event_category, 1) AS c, \
             (SELECT count(*) FROM flows) AS flows FROM events GROUP BY c",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "first,c,flows\n2026-11-30T10:00:00Z,authentication,0\n"
    );

    // The row limit stops the query and says so.
    let (ok, out, err) = query(
        dir.path(),
        &[
            "--format",
            "csv",
            "--max-rows",
            "4",
            "SELECT event_original FROM events",
        ],
    );
    assert!(ok);
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(err.contains("stopped at 4 rows"), "{err}");
}

#[test]
fn statements_that_write_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    archive(dir.path());
    for sql in [
        "CREATE TABLE x AS SELECT * FROM events",
        "COPY events TO '/tmp/canh-query-copy.parquet'",
        "INSERT INTO events SELECT * FROM events",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let (ok, _, err) = query(dir.path(), &[sql]);
        assert!(!ok, "{sql} was accepted");
        assert!(err.contains("query failed"), "{sql}: {err}");
    }
    assert!(!Path::new("/tmp/canh-query-copy.parquet").exists());
    let (ok, _, err) = query(dir.path(), &["SELECT nope FROM events"]);
    assert!(!ok);
    assert!(err.contains("nope"), "{err}");
}
