//! The Elastic integrations corpus (`../shared/corpora/elastic_integrations/cases_all.jsonl`):
//! real vendor lines with the ECS document Elastic's ingest pipelines make of them. For each
//! vendor, the share of the expected core ECS fields (addresses, ports, transport, action,
//! outcome, user, observer vendor/product, NAT, bytes, rule name) that Canh produces with the
//! expected value must be at least 90%. Prints the figure per vendor and every miss. Skips
//! where the corpus folder is absent.

#![allow(clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use canh_parsers::{append_event, Format, Meta};
use canh_schema::{Table, TableBuilder};
use serde_json::Value;

const CORE: [&str; 18] = [
    "source.ip",
    "source.port",
    "destination.ip",
    "destination.port",
    "network.transport",
    "event.action",
    "event.outcome",
    "user.name",
    "observer.vendor",
    "observer.product",
    "source.nat.ip",
    "source.nat.port",
    "destination.nat.ip",
    "destination.nat.port",
    "source.bytes",
    "destination.bytes",
    "network.bytes",
    "rule.name",
];

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn core_ecs_fields_per_vendor() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/elastic_integrations/cases_all.jsonl");
    let Ok(corpus) = std::fs::read_to_string(&path) else {
        eprintln!(
            "skipping: {} not found (clone without ../shared)",
            path.display()
        );
        return;
    };
    // vendor → (matched, expected)
    let mut score: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for line in corpus.lines() {
        let case: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let vendor = case["source_file"]
            .as_str()
            .and_then(|s| s.split('/').nth(1))
            .unwrap_or("?")
            .to_string();
        let input = case["input"].as_str().expect("input");
        let mut expected = BTreeMap::new();
        flatten("", &case["expected"], &mut expected);

        let meta = Meta {
            received_ns: 1_795_435_200_000_000_000,
            listener: "corpus",
            input_type: "udp",
            peer_ip: "192.0.2.1",
            peer_addr: "192.0.2.1:514",
            tz_offset_secs: 0,
            organization: None,
            device: None,
        };
        let mut b = TableBuilder::new(Table::Events, 1);
        append_event(&mut b, input.as_bytes(), Format::Auto, &meta);
        let batch = b.finish().expect("batch").expect("row");
        let got = canh_core::json::row_to_json(Table::Events, &batch.records, 0);

        let entry = score.entry(vendor.clone()).or_default();
        for field in CORE {
            let Some(want) = expected.get(field) else {
                continue;
            };
            entry.1 += 1;
            let have = got.get(field).map(text);
            if have.as_deref() == Some(text(want).as_str()) {
                entry.0 += 1;
            } else {
                misses.push(format!(
                    "{vendor}: {field}: want {want}, got {have:?} in {input}"
                ));
            }
        }
    }
    assert!(!score.is_empty(), "corpus has cases");
    for m in &misses {
        eprintln!("miss: {m}");
    }
    let mut failing = Vec::new();
    for (vendor, (hit, total)) in &score {
        let share = *hit as f64 / (*total).max(1) as f64;
        eprintln!("{vendor:20} {hit:4}/{total:<4} {:.1}%", share * 100.0);
        if share < 0.9 {
            failing.push(vendor.clone());
        }
    }
    assert!(failing.is_empty(), "below 90%: {failing:?}");
}
