//! End-to-end with a real exporter: softflowd turns a packet capture that this test writes into
//! NetFlow v5, v9 and IPFIX export traffic sent to a running `canh serve`; dumpcap records
//! that traffic and tshark decodes it independently. The archive's flows (count and byte
//! total per version) must match tshark's, and `canh flows decode` of the recorded capture
//! must match too. Needs softflowd, dumpcap and tshark (`scripts/deps.sh` installs them) and
//! the right to capture on lo; the scripts are in `deploy/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::{UInt16Type, UInt64Type};
use common::{eventually, read_table, Canh};
use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapWriter};

fn deploy(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(script)
}

/// Traffic for softflowd: `flows` conversations, IPv4 and (every tenth) IPv6, TCP and UDP,
/// 1 to 5 packets each of varied sizes, a few milliseconds apart. Returns the IP bytes
/// (what NetFlow counts) of the IPv4 and of the IPv6 flows.
fn write_traffic(path: &Path, flows: u32) -> (u64, u64) {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    let t0 = Duration::from_secs(1_795_435_200);
    let (mut v4_bytes, mut v6_bytes) = (0u64, 0u64);
    let mut frames = Vec::new();
    for i in 0..flows {
        let v6 = i % 10 == 0;
        let tcp = i % 3 != 2;
        let sport = 20_000 + (i % 40_000) as u16;
        let dport = if tcp { 443 } else { 53 };
        let (a, b) = ((i >> 8) as u8, i as u8);
        let src = if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                u16::from(a),
                u16::from(b),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, a, b, 1))
        };
        let dst = if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                1,
                0,
                0,
                0,
                0,
                (i % 200) as u16,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 200) as u8))
        };
        for k in 0..(1 + i % 5) {
            let payload = vec![0x5a; ((i * 7 + k * 131) % 900) as usize];
            let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
            let ip = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
                (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
                _ => unreachable!(),
            };
            let mut frame = Vec::new();
            if tcp {
                let tcp = ip.tcp(sport, dport, 1000 + k, 64_000);
                let tcp = if k == 0 { tcp.syn() } else { tcp.ack(1) };
                tcp.write(&mut frame, &payload).unwrap();
            } else {
                ip.udp(sport, dport).write(&mut frame, &payload).unwrap();
            }
            let ip_bytes = (frame.len() - 14) as u64;
            if v6 {
                v6_bytes += ip_bytes;
            } else {
                v4_bytes += ip_bytes;
            }
            let at = t0 + Duration::from_millis(u64::from(i) * 3 + u64::from(k) * 40);
            frames.push((at, frame));
        }
    }
    // A capture is in time order.
    frames.sort_by_key(|(at, _)| *at);
    for (at, frame) in &frames {
        w.write_packet(&PcapPacket::new(*at, frame.len() as u32, frame))
            .unwrap();
    }
    (v4_bytes, v6_bytes)
}

/// Flows and octets in a capture of export traffic, as tshark decodes it.
fn tshark_totals(capture: &Path, port: u16) -> (u64, u64) {
    let out = Command::new("timeout")
        .arg("120")
        .arg("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-d", &format!("udp.port=={port},cflow")])
        .args(["-T", "fields", "-e", "cflow.octets", "-E", "occurrence=a"])
        .output()
        .expect("tshark: run scripts/deps.sh");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut flows, mut octets) = (0, 0);
    for value in String::from_utf8(out.stdout)
        .unwrap()
        .split(['\n', ','])
        .filter(|v| !v.is_empty())
    {
        flows += 1;
        octets += value.trim().parse::<u64>().unwrap();
    }
    (flows, octets)
}

/// Flows and octets of one NetFlow version in the archive.
fn archive_totals(data: &Path, version: u16) -> (u64, u64) {
    let (mut flows, mut octets) = (0, 0);
    for batch in read_table(data, "flows", Some(&["netflow_version", "network_bytes"])) {
        let v = batch.column(0).as_primitive::<UInt16Type>();
        let b = batch.column(1).as_primitive::<UInt64Type>();
        for i in 0..batch.num_rows() {
            if v.value(i) == version {
                flows += 1;
                octets += b.value(i);
            }
        }
    }
    (flows, octets)
}

/// Flows and octets that `canh flows decode` reads from a capture.
fn cli_totals(capture: &Path, port: u16) -> (u64, u64) {
    let out = Command::new(common::CANH)
        .args(["flows", "decode", "--port", &port.to_string()])
        .arg(capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "canh flows decode: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut flows, mut octets) = (0, 0);
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        flows += 1;
        octets += row["network.bytes"].as_u64().unwrap();
    }
    (flows, octets)
}

#[test]
fn softflowd_exports_match_tshark_in_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("traffic.pcap");
    let flows = 3_000;
    let (v4_bytes, v6_bytes) = write_traffic(&traffic, flows);
    let canh = Canh::start(&dir.path().join("data"), "");
    let port = canh.netflow.port();
    let mut expected = Vec::new();
    for version in [5u16, 9, 10] {
        let capture = dir.path().join(format!("export-v{version}.pcapng"));
        let status = Command::new("bash")
            .arg(deploy("flow-export.sh"))
            .arg(&traffic)
            .arg(version.to_string())
            .arg(port.to_string())
            .arg(&capture)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "deploy/flow-export.sh failed for v{version}"
        );
        let tshark = tshark_totals(&capture, port);
        eprintln!("v{version}: tshark decodes {tshark:?} (flows, octets)");
        // The exporter saw the whole capture: v5 carries the IPv4 flows only.
        let ip_bytes = if version == 5 {
            v4_bytes
        } else {
            v4_bytes + v6_bytes
        };
        assert_eq!(
            tshark.1, ip_bytes,
            "v{version}: softflowd exported every byte"
        );
        assert!(
            tshark.0 >= u64::from(flows) * 9 / 10,
            "v{version}: {tshark:?}"
        );
        assert_eq!(
            cli_totals(&capture, port),
            tshark,
            "v{version}: canh flows decode of the capture"
        );
        expected.push((version, tshark));
    }
    // The listener's datagrams reach the archive once Canh stops and completes its files.
    let want: u64 = expected.iter().map(|(_, t)| t.0).sum();
    let counted = || -> u64 {
        ["5", "9", "ipfix"]
            .iter()
            .map(|v| {
                canh.metric(&format!(
                    "canh_flows_total{{listener=\"netflow\",version=\"{v}\"}}"
                ))
            })
            .sum()
    };
    assert!(
        eventually(Duration::from_secs(30), || counted() >= want),
        "flows counted: {} of {want}\n{}\n{}",
        counted(),
        canh.log(),
        canh.get("/metrics")
            .lines()
            .filter(|l| l.starts_with("canh_flow") || l.starts_with("canh_collector"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Nothing was lost on loopback, and the three exporters' sequence numbers are apart.
    assert_eq!(
        canh.metric("canh_flow_sequence_gap_total{exporter=\"127.0.0.1\"}"),
        0
    );
    let data = canh.data.clone();
    assert!(canh.stop().success());
    for (version, tshark) in expected {
        assert_eq!(
            archive_totals(&data, version),
            tshark,
            "v{version}: (flows, octets) in the archive vs tshark"
        );
    }
}
