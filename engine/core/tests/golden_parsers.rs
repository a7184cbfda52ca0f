//! Golden fixtures: every `fixtures/parsers/<format>/<case>.log` line, parsed as the pipeline
//! parses it (`auto`, or the format named in `<case>.format`) and written as a row, must equal
//! the matching line of `<case>.expected.jsonl` (flat dotted ECS keys). The receive time and sender are fixed so the
//! output is deterministic.
//!
//! `CANH_BLESS=1 cargo test -p canh-core --test golden_parsers` rewrites the expected files; read
//! the diff before committing it.

#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};

use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Table, TableBuilder};

/// 2026-11-23T12:00:00Z: year inference and the rows' `event.created`.
const RECEIVED_NS: i64 = 1_795_435_200_000_000_000;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/parsers");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root)
        .expect("fixtures/parsers exists")
        .flatten()
    {
        for f in std::fs::read_dir(dir.path())
            .expect("format folder")
            .flatten()
        {
            if f.path().extension().is_some_and(|e| e == "log") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

fn render(log: &Path, batch_rows: usize) -> String {
    let text = std::fs::read(log).expect("read case");
    let format = match std::fs::read_to_string(log.with_extension("format")) {
        Ok(name) => Format::from_name(name.trim()).expect("known format name"),
        Err(_) => Format::Auto,
    };
    let meta = Meta {
        received_ns: RECEIVED_NS,
        listener: "golden",
        input_type: "udp",
        peer_ip: "192.0.2.10",
        peer_addr: "192.0.2.10:514",
        tz_offset_secs: 0,
        organization: None,
        device: None,
    };
    let mut out = String::new();
    let mut builder = TableBuilder::new(Table::Events, batch_rows);
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for chunk in lines.chunks(batch_rows) {
        for line in chunk {
            append_event(&mut builder, line, format, &meta);
        }
        let batch = builder.finish().expect("batch builds").expect("rows");
        for row in 0..batch.rows() {
            let obj = canh_core::json::row_to_json(Table::Events, &batch.records, row);
            out.push_str(&serde_json::to_string(&obj).expect("json"));
            out.push('\n');
        }
    }
    out
}

#[test]
fn every_fixture_matches_its_expected_rows_at_every_batch_size() {
    let cases = cases();
    assert!(cases.len() >= 5, "fixtures missing: {cases:?}");
    let bless = std::env::var_os("CANH_BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let expected_path = case.with_extension("expected.jsonl");
        let got = render(case, 8192);
        if bless {
            std::fs::write(&expected_path, &got).expect("write expected");
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        // One case through every batch size: the row builder must not depend on batching.
        for rows in [1, 7, 8192] {
            let got = if rows == 8192 {
                got.clone()
            } else {
                render(case, rows)
            };
            for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
                if g != w {
                    failures.push(format!(
                        "{}:{} (batch {rows})\n  got:  {g}\n  want: {w}",
                        case.display(),
                        i + 1
                    ));
                }
            }
            if got.lines().count() != want.lines().count() {
                failures.push(format!(
                    "{}: {} rows, expected {}",
                    case.display(),
                    got.lines().count(),
                    want.lines().count()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
