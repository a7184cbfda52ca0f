//! End-to-end: NetFlow v5, v9 and IPFIX datagrams over UDP to a running `canh serve` land in
//! the `flows` table of the archive, with the exporter's organization, and the metrics count
//! packets, flows, errors and template misses. The datagrams are the real ones of the
//! logstash-codec-netflow corpus (skips where it is absent).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use canh_parsers::netflow::{FlowDecoder, Limits, Packet};
use canh_schema::{Table, TableBuilder};
use common::{eventually, read_table, Canh};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/logstash-codec-netflow/spec/codecs");
    dir.is_dir().then_some(dir)
}

/// One exporter's datagrams, templates first: a v5 packet, v9 Cisco ASA and IPFIX Mikrotik.
const FILES: &[&str] = &[
    "netflow5.dat",
    "netflow9_test_cisco_asa_1_tpl.dat",
    "netflow9_test_cisco_asa_1_data.dat",
    "ipfix_test_mikrotik_tpl.dat",
    "ipfix_test_mikrotik_data258.dat",
    "ipfix_test_mikrotik_data259.dat",
];

#[test]
fn flows_over_udp_land_in_the_flows_table() {
    let Some(dir) = corpus() else {
        eprintln!("skipping: logstash-codec-netflow corpus not found (clone without ../shared)");
        return;
    };
    let datagrams: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    // What the same datagrams decode to in process: the count the archive must hold.
    let mut decoder = FlowDecoder::new(Limits::default());
    let mut b = TableBuilder::new(Table::Flows, 256);
    let expected: usize = datagrams
        .iter()
        .map(|d| {
            let p = Packet {
                exporter: "127.0.0.1:9".parse().unwrap(),
                received_ns: 0,
                payload: d,
                organization: None,
            };
            decoder.decode(&p, &mut b).flows
        })
        .sum();
    assert!(expected > 30, "{expected}");

    let data = tempfile::tempdir().unwrap();
    let inv = data.path().join("inventory.csv");
    std::fs::write(&inv, "cidr,organization\n127.0.0.0/8,So TT-TT\n").unwrap();
    let canh = Canh::start(
        data.path(),
        &format!("[inventory]\nfile = \"{}\"\n", inv.display()),
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        sock.send_to(d, canh.netflow).unwrap();
        // Templates must arrive before their data: keep the order on the wire.
        std::thread::sleep(Duration::from_millis(20));
    }
    // Data before its template (from another exporter: templates are per exporter) is held,
    // and decoded when the template comes.
    let orphan = std::fs::read(dir.join("ipfix_test_netscaler_data.dat")).unwrap();
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    other.send_to(&orphan, canh.netflow).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let template = std::fs::read(dir.join("ipfix_test_netscaler_tpl.dat")).unwrap();
    other.send_to(&template, canh.netflow).unwrap();
    let late = {
        let mut d = FlowDecoder::new(Limits::default());
        let mut b = TableBuilder::new(Table::Flows, 64);
        [&orphan, &template]
            .iter()
            .map(|payload| {
                let p = Packet {
                    exporter: "127.0.0.2:9".parse().unwrap(),
                    received_ns: 0,
                    payload,
                    organization: None,
                };
                d.decode(&p, &mut b).flows
            })
            .sum::<usize>()
    };
    assert!(late > 0);
    let expected = expected + late;
    // A truncated datagram is an error with a reason.
    sock.send_to(&datagrams[0][..30], canh.netflow).unwrap();

    let flows = |c: &Canh| {
        c.metric("canh_flows_total{listener=\"netflow\",version=\"5\"}")
            + c.metric("canh_flows_total{listener=\"netflow\",version=\"9\"}")
            + c.metric("canh_flows_total{listener=\"netflow\",version=\"ipfix\"}")
    };
    assert!(
        eventually(Duration::from_secs(20), || flows(&canh) == expected as u64),
        "flows counted: {} of {expected}\n{}\n{}",
        flows(&canh),
        canh.get("/metrics")
            .lines()
            .filter(|l| l.contains("flow"))
            .collect::<Vec<_>>()
            .join("\n"),
        canh.log()
    );
    assert!(eventually(Duration::from_secs(10), || canh.metric(
        "canh_flow_decode_errors_total{code=\"truncated\",listener=\"netflow\"}"
    ) == 1));
    assert_eq!(
        canh.metric("canh_flow_packets_total{listener=\"netflow\",version=\"ipfix\"}"),
        5
    );
    assert!(
        canh.metric("canh_flow_templates{worker=\"0\"}") > 0
            || canh.metric("canh_flow_templates{worker=\"1\"}") > 0
    );
    assert!(canh.stop().success());

    let batches = read_table(data.path(), "flows", None);
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, expected);
    let mut from_other = 0;
    for b in &batches {
        let org = b
            .column_by_name("organization_name")
            .unwrap()
            .as_string::<i32>();
        let exporter = b.column_by_name("observer_ip").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            assert_eq!(org.value(i), "So TT-TT");
            from_other += usize::from(exporter.value(i) == "127.0.0.2");
        }
        assert_eq!(b.column_by_name("source_ip").unwrap().null_count(), 0);
    }
    assert_eq!(from_other, late);
}
