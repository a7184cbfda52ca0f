//! `canh flows decode`: files of raw export packets, in order, one template cache, one JSON
//! object per flow. Uses the logstash-codec-netflow corpus (skips where it is absent).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::Command;

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/logstash-codec-netflow/spec/codecs");
    dir.is_dir().then_some(dir)
}

fn decode(args: &[&str], files: &[PathBuf]) -> (bool, Vec<serde_json::Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_canh"))
        .args(["flows", "decode"])
        .args(args)
        .args(files)
        .output()
        .unwrap();
    let rows = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.success(),
        rows,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn templates_carry_across_files_and_nsel_nat_is_decoded() {
    let Some(dir) = corpus() else {
        eprintln!("skipping: logstash-codec-netflow corpus not found");
        return;
    };
    let files = [
        dir.join("netflow9_test_cisco_asa_1_tpl.dat"),
        dir.join("netflow9_test_cisco_asa_1_data.dat"),
    ];
    let (ok, rows, err) = decode(&["--exporter", "192.0.2.7:2055"], &files);
    assert!(ok, "{err}");
    assert!(!rows.is_empty());
    let r = &rows[1];
    assert_eq!(r["source.ip"], "192.168.23.22");
    assert_eq!(r["destination.ip"], "164.164.37.11");
    assert_eq!(r["network.transport"], "icmp");
    assert_eq!(r["netflow.icmp_type"], 8);
    assert_eq!(r["source.nat.ip"], "192.168.23.22");
    assert_eq!(r["observer.ip"], "192.0.2.7");
    assert_eq!(r["netflow.version"], 9);
    assert_eq!(r["netflow.fwEvent"], "2");

    // The data alone: no template, so no flows, and it says so.
    let (ok, rows, err) = decode(&[], &files[1..]);
    assert!(ok);
    assert!(rows.is_empty());
    assert!(
        err.contains("1 data set(s) never saw their template"),
        "{err}"
    );
}

#[test]
fn a_truncated_packet_is_reported_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("short.dat");
    std::fs::write(&f, [0u8, 5, 0, 1, 0, 0]).unwrap();
    let (ok, rows, err) = decode(&[], &[f]);
    assert!(!ok);
    assert!(rows.is_empty());
    assert!(err.contains("short.dat: truncated"), "{err}");
}

/// A classic pcap of export datagrams from two exporters (IPv4 and IPv6) plus unrelated
/// traffic: each datagram is decoded with its sender as the exporter, `--port` picks the
/// collector port, and what is skipped is reported.
#[test]
fn a_pcap_of_export_traffic_is_decoded_per_sender() {
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let Some(dir) = corpus() else {
        eprintln!("skipping: logstash-codec-netflow corpus not found");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("export.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&cap).unwrap()).unwrap();
    let mut write = |frame: Vec<u8>, ms: u64| {
        let ts = std::time::Duration::from_millis(1_795_435_200_000 + ms);
        w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .unwrap();
    };
    let v5 = std::fs::read(dir.join("netflow5.dat")).unwrap();
    let eth = || PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let mut frame = Vec::new();
    eth()
        .ipv4([192, 0, 2, 1], [192, 0, 2, 100], 64)
        .udp(40_000, 2055)
        .write(&mut frame, &v5)
        .unwrap();
    write(frame, 0);
    let mut frame = Vec::new();
    let six = "2001:db8::7"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    eth()
        .ipv6(six, [0; 16], 64)
        .udp(40_001, 2055)
        .write(&mut frame, &v5)
        .unwrap();
    write(frame, 1);
    // The same datagram to another port, and a TCP segment: not chosen.
    let mut frame = Vec::new();
    eth()
        .ipv4([192, 0, 2, 1], [192, 0, 2, 100], 64)
        .udp(40_000, 9999)
        .write(&mut frame, &v5)
        .unwrap();
    write(frame, 2);
    let mut frame = Vec::new();
    eth()
        .ipv4([192, 0, 2, 1], [192, 0, 2, 100], 64)
        .tcp(1, 2, 3, 4)
        .write(&mut frame, b"x")
        .unwrap();
    write(frame, 3);
    drop(w);

    let (ok, rows, err) = decode(&["--port", "2055"], std::slice::from_ref(&cap));
    assert!(ok, "{err}");
    let per_packet = rows.len() / 2;
    assert!(per_packet > 0);
    assert!(rows[..per_packet]
        .iter()
        .all(|r| r["observer.ip"] == "192.0.2.1"));
    assert!(rows[per_packet..]
        .iter()
        .all(|r| r["observer.ip"] == "2001:db8::7"));
    assert!(
        err.contains("2 captured packet(s) skipped: not UDP over IP to the chosen port(s)"),
        "{err}"
    );
    // Without --port, every UDP datagram is decoded.
    let (ok, all, _) = decode(&[], &[cap]);
    assert!(ok);
    assert_eq!(all.len(), per_packet * 3);
}
