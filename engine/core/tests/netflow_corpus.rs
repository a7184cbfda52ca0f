//! The logstash-codec-netflow corpus (`../shared/corpora/logstash-codec-netflow`): real
//! NetFlow v5/v9 and IPFIX datagrams from ~30 exporters, with the flows Logstash decodes from
//! them. Each case's files go, in order, to one decoder (templates persist between files);
//! every expected flow must come out with its addresses, ports, protocol and counters.
//! Expected events that are options records (sampling, system init time) are not flows: Canh
//! keeps what they announce as decoder state instead of rows. Skips where the corpus folder is
//! absent.

#![allow(clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;

use canh_parsers::netflow::{FlowDecoder, Limits, Packet};
use canh_schema::{Table, TableBuilder};
use serde_json::{Map, Value};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/logstash-codec-netflow");
    dir.is_dir().then_some(dir)
}

/// Logstash's field names (v5/v9 and IPFIX spellings) → Canh's column.
const FIELDS: &[(&[&str], &str)] = &[
    (
        &[
            "ipv4_src_addr",
            "ipv6_src_addr",
            "sourceIPv4Address",
            "sourceIPv6Address",
        ],
        "source.ip",
    ),
    (
        &[
            "ipv4_dst_addr",
            "ipv6_dst_addr",
            "destinationIPv4Address",
            "destinationIPv6Address",
        ],
        "destination.ip",
    ),
    (&["l4_src_port", "sourceTransportPort"], "source.port"),
    (
        &["l4_dst_port", "destinationTransportPort"],
        "destination.port",
    ),
    (&["protocol", "protocolIdentifier"], "network.iana_number"),
    (&["in_bytes", "octetDeltaCount"], "network.bytes"),
    (&["in_pkts", "packetDeltaCount"], "network.packets"),
];

fn is_flow(netflow: &Map<String, Value>) -> bool {
    FIELDS
        .iter()
        .any(|(names, _)| names.iter().any(|n| netflow.contains_key(*n)))
}

#[test]
fn every_expected_flow_is_decoded() {
    let Some(dir) = corpus() else {
        eprintln!("skipping: logstash-codec-netflow corpus not found (clone without ../shared)");
        return;
    };
    let text = std::fs::read_to_string(dir.join("spec_cases.jsonl")).expect("spec_cases.jsonl");
    let (mut checked, mut misses) = (0, Vec::new());
    for line in text.lines() {
        let case: Value = serde_json::from_str(line).expect("json");
        let name = case["context"].as_str().unwrap_or("?");
        let mut decoder = FlowDecoder::new(Limits::default());
        let mut b = TableBuilder::new(Table::Flows, 64);
        for f in case["dat_files_in_order"].as_array().expect("files") {
            let payload = std::fs::read(dir.join("spec/codecs").join(f.as_str().expect("name")))
                .expect("dat file");
            let p = Packet {
                exporter: "127.0.0.1:2055".parse().expect("addr"),
                received_ns: 1_700_000_000_000_000_000,
                payload: &payload,
                organization: None,
            };
            let s = decoder.decode(&p, &mut b);
            if let Some(e) = s.error {
                eprintln!("{name}: {f}: {e}");
            }
        }
        let rows: Vec<Map<String, Value>> = match b.finish().expect("batch") {
            Some(batch) => (0..batch.rows())
                .map(|r| canh_core::json::row_to_json(Table::Flows, &batch.records, r))
                .collect(),
            None => Vec::new(),
        };
        let expected: Vec<&Map<String, Value>> = case["expected_events_json"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["netflow"].as_object())
            .filter(|n| is_flow(n))
            .collect();
        // Logstash's expectations are sometimes one flow of a packet of many: each expected
        // flow must match a decoded flow (each decoded flow used once).
        let mut used = vec![false; rows.len()];
        for (i, want) in expected.iter().enumerate() {
            // A record with both address families leaves one unspecified; the flow's address
            // is the other one.
            let unspecified = |w: &Value| matches!(w.as_str(), Some("::" | "0.0.0.0"));
            let wanted: Vec<(&str, &str, &Value)> = FIELDS
                .iter()
                .flat_map(|(names, col)| {
                    let given: Vec<(&str, &Value)> = names
                        .iter()
                        .filter_map(|n| want.get(*n).map(|w| (*n, w)))
                        .collect();
                    let any_specified = given.iter().any(|(_, w)| !unspecified(w));
                    given
                        .into_iter()
                        .filter(move |(_, w)| !(any_specified && unspecified(w)))
                        .map(move |(n, w)| (n, *col, w))
                })
                .collect();
            checked += wanted.len();
            let matches = |got: &Map<String, Value>| {
                wanted
                    .iter()
                    .filter(|(_, col, w)| got.get(*col) == Some(*w))
                    .count()
            };
            let best = (0..rows.len())
                .filter(|&r| !used[r])
                .max_by_key(|&r| (matches(&rows[r]), std::cmp::Reverse(r)));
            let Some(r) = best else {
                misses.push(format!("{name}: flow {i} missing ({} decoded)", rows.len()));
                continue;
            };
            used[r] = true;
            for (n, col, w) in &wanted {
                if rows[r].get(*col) != Some(*w) {
                    misses.push(format!(
                        "{name}: flow {i}: {n} = {w}, {col} = {:?}",
                        rows[r].get(*col)
                    ));
                }
            }
        }
    }
    eprintln!(
        "netflow corpus: {checked} expected values checked, {} misses",
        misses.len()
    );
    for m in &misses {
        eprintln!("  {m}");
    }
    assert!(misses.is_empty(), "{} expected values differ", misses.len());
}
