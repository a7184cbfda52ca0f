//! End-to-end: the sender inventory labels events with the agency and device, applies per-sender
//! formats and time zones, counts unknown senders, and is reloaded without a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use std::net::UdpSocket;
use std::time::{Duration, SystemTime};

use common::{eventually, rows_as_json, Canh};

fn write_inventory(path: &std::path::Path, text: &str, mtime: SystemTime) {
    std::fs::write(path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(mtime))
        .unwrap();
}

fn send_from(ip: &str, to: std::net::SocketAddr, line: &str) {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.send_to(line.as_bytes(), to).unwrap();
}

#[test]
fn inventory_labels_senders_and_reloads_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.csv");
    let t0 = SystemTime::now();
    write_inventory(
        &inv,
        "cidr,organization,device,format,timezone\n\
         127.0.0.1/32,So Y te,FGT-SOYTE,fortigate,+07:00\n\
         127.0.0.2/32,\"UBND tinh, van phong\",,,\n",
        t0,
    );
    let canh = Canh::start(
        dir.path(),
        &format!(
            "[inventory]\nfile = \"{}\"\nreload_interval = \"100ms\"\n",
            inv.display()
        ),
    );
    // 127.0.0.1 is a FortiGate by its inventory entry: the line is decoded even though it does
    // not say so, and its zone-less time is read at +07:00.
    send_from(
        "127.0.0.1",
        canh.udp,
        "date=2026-11-23 time=10:00:00 logid=\"0000000013\" type=\"traffic\" srcip=10.1.1.1 dstip=10.2.2.2 action=\"accept\"",
    );
    send_from(
        "127.0.0.2",
        canh.udp,
        "<13>Nov 23 10:00:00 web01 app: from the office",
    );
    send_from(
        "127.0.0.3",
        canh.udp,
        "<13>Nov 23 10:00:00 stray app: who am I",
    );
    assert!(
        eventually(Duration::from_secs(20), || {
            canh.metric("canh_parser_unknown_sender_events_total{listener=\"udp\"}") == 1
        }),
        "unknown sender not counted:\n{}",
        canh.get("/metrics")
    );
    // All three parsed before the inventory changes: the datagrams may reach different parser
    // threads, and on a loaded machine the FortiGate line could otherwise be labelled by the
    // edited inventory (a full test run once saw that).
    assert!(eventually(Duration::from_secs(20), || {
        canh.metric("canh_parser_events_total{status=\"ok\"}") >= 3
    }));

    // Re-assign 127.0.0.1 to another agency; the file's time moves so the change is seen.
    write_inventory(
        &inv,
        "cidr,organization\n127.0.0.0/8,So Tai chinh\n",
        t0 + Duration::from_secs(10),
    );
    assert!(
        eventually(Duration::from_secs(20), || canh
            .log()
            .contains("inventory reloaded")),
        "no reload:\n{}",
        canh.log()
    );
    send_from(
        "127.0.0.1",
        canh.udp,
        "<13>Nov 23 10:00:01 fw app: after the reload",
    );
    assert!(eventually(Duration::from_secs(20), || {
        canh.metric("canh_parser_events_total{status=\"ok\"}") >= 4
    }));
    // A broken edit keeps the last good inventory.
    write_inventory(
        &inv,
        "cidr,organization\nnonsense\n",
        t0 + Duration::from_secs(20),
    );
    assert!(eventually(Duration::from_secs(20), || canh
        .log()
        .contains("inventory not reloaded")));
    send_from(
        "127.0.0.3",
        canh.udp,
        "<13>Nov 23 10:00:02 stray app: still labelled",
    );
    assert!(canh.stop().success());

    let rows = rows_as_json(dir.path());
    let by_message = |needle: &str| {
        rows.iter()
            .find(|r| r["event_original"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle}: {rows:#?}"))
    };
    let fgt = by_message("logid=");
    assert_eq!(fgt["organization_name"], "So Y te");
    assert_eq!(fgt["observer_hostname"], "FGT-SOYTE");
    assert_eq!(fgt["parse_format"], "fortigate");
    assert_eq!(fgt["timestamp"], "2026-11-23T03:00:00Z");
    assert_eq!(
        by_message("from the office")["organization_name"],
        "UBND tinh, van phong"
    );
    assert_eq!(by_message("who am I")["organization_name"], "unknown");
    assert_eq!(
        by_message("after the reload")["organization_name"],
        "So Tai chinh"
    );
    assert_eq!(
        by_message("still labelled")["organization_name"],
        "So Tai chinh"
    );
}
