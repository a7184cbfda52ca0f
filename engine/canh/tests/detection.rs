//! End-to-end detection: `canh serve` with the starter rule pack, and a scripted attack sent
//! over the network — an SSH brute force followed by a successful login (sshd lines sent by
//! `logger`), a port scan seen in NetFlow v5, and a firewall logging traffic to an address on
//! the IOC list. The archive's `alerts` table must hold exactly the expected alerts; `canh hunt`
//! over the archive and over ClickHouse (which `canh serve` also stored everything in) finds the
//! same matches, and `--store` makes the same alerts again. A second
//! test changes the rules while events flow: the new rule fires without a restart and every
//! event is archived.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::UInt64Type;
use common::{eventually, logger, logger_lines, read_table, Canh, ClickHouse};

fn pack() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// A NetFlow v5 datagram: one TCP flow of one packet per destination port.
fn v5_scan(src: [u8; 4], dst: [u8; 4], ports: &[u16], sequence: u32) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let uptime: u32 = 600_000;
    let mut p = Vec::new();
    p.extend_from_slice(&5u16.to_be_bytes());
    p.extend_from_slice(&(ports.len() as u16).to_be_bytes());
    p.extend_from_slice(&uptime.to_be_bytes());
    p.extend_from_slice(&(now.as_secs() as u32).to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&sequence.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    for port in ports {
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0; 4]); // next hop
        p.extend_from_slice(&[0, 1, 0, 2]); // input, output
        p.extend_from_slice(&1u32.to_be_bytes()); // packets
        p.extend_from_slice(&44u32.to_be_bytes()); // octets
        p.extend_from_slice(&(uptime - 1_000).to_be_bytes()); // first
        p.extend_from_slice(&(uptime - 900).to_be_bytes()); // last
        p.extend_from_slice(&40_000u16.to_be_bytes());
        p.extend_from_slice(&port.to_be_bytes());
        p.extend_from_slice(&[0, 0x02, 6, 0]); // pad, SYN, TCP, tos
        p.extend_from_slice(&[0; 8]); // AS numbers, masks, pad
    }
    p
}

/// Alerts in the archive, the last row of each id (a window that folded more in writes its
/// alert again with the final count): id → (title, count, group key, source.ip).
fn alerts(data: &Path) -> BTreeMap<String, (String, u64, String, String)> {
    let mut out = BTreeMap::new();
    for b in read_table(data, "alerts", None) {
        let col = |name: &str| b.column_by_name(name).unwrap().clone();
        let (ids, titles, counts, keys, ips) = (
            col("alert_id"),
            col("rule_title"),
            col("event_count"),
            col("alert_group_key"),
            col("source_ip"),
        );
        let (ids, titles, keys, ips) = (
            ids.as_string::<i32>(),
            titles.as_string::<i32>(),
            keys.as_string::<i32>(),
            ips.as_string::<i32>(),
        );
        let counts = counts.as_primitive::<UInt64Type>();
        for r in 0..b.num_rows() {
            out.insert(
                ids.value(r).to_owned(),
                (
                    titles.value(r).to_owned(),
                    counts.value(r),
                    keys.value(r).to_owned(),
                    ips.value(r).to_owned(),
                ),
            );
        }
    }
    out
}

#[test]
fn a_scripted_attack_raises_the_expected_alerts_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    let ch = ClickHouse::start(&dir.path().join("clickhouse"));
    let extra = format!(
        "[detection]\nrules = \"{}\"\n[clickhouse]\nurl = \"{}\"\nflush_interval = \"100ms\"\n",
        pack().display(),
        ch.url()
    );
    let canh = Canh::start(dir.path(), &extra);
    let port = canh.tcp.port();
    // SSH: twelve failed passwords from one address, then it gets in — in order over one
    // connection, as the host's syslog daemon sends them. (One `logger` per line made a
    // connection per line; lines that straddled a second and reached different parser threads
    // out of order could start the live correlation a second later than the hunt over history
    // does, which gives the alert another id.)
    let mut ssh: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "Failed password for root from 203.0.113.9 port {} ssh2",
                50_000 + i
            )
        })
        .collect();
    ssh.push("Accepted password for root from 203.0.113.9 port 50100 ssh2".into());
    let ssh: Vec<&str> = ssh.iter().map(String::as_str).collect();
    logger_lines(port, "sshd[4242]", &ssh);
    // A port scan: 60 ports of one host, seen by a NetFlow exporter.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ports: Vec<u16> = (1..=60).collect();
    for (i, chunk) in ports.chunks(30).enumerate() {
        let d = v5_scan([10, 66, 6, 6], [10, 1, 1, 1], chunk, i as u32 * 30);
        udp.send_to(&d, canh.netflow).unwrap();
    }
    // A host's firewall blocks a connection to an address on the IOC list.
    logger(
        port,
        "kernel",
        "[UFW BLOCK] IN=eth0 OUT= MAC=00:00:00:00:00:00 SRC=10.1.2.3 DST=203.0.113.66 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=50000 DPT=443 WINDOW=64240 RES=0x00 SYN URGP=0",
    );
    assert!(
        eventually(Duration::from_secs(20), || canh
            .metric_sum("canh_detection_alerts_total")
            >= 4),
        "alerts: {}\n{}",
        canh.get("/metrics"),
        canh.log()
    );
    // Nothing more is coming: give stragglers a moment, then stop (which writes everything).
    std::thread::sleep(Duration::from_millis(500));
    assert!(canh.stop().success());
    let alerts = alerts(dir.path());
    let mut titles: Vec<&str> = alerts.values().map(|a| a.0.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(
        titles,
        [
            "Port scan",
            "SSH brute force",
            "SSH login after brute force",
            "Traffic to or from an IOC-listed address",
        ],
        "{alerts:#?}"
    );
    for (title, count, key, ip) in alerts.values() {
        match title.as_str() {
            "SSH brute force" => {
                assert_eq!(key, "source.ip=203.0.113.9");
                assert!(*count >= 10, "{count}");
            }
            "SSH login after brute force" => assert_eq!(ip, "203.0.113.9"),
            "Port scan" => {
                assert_eq!(key, "source.ip=10.66.6.6,destination.ip=10.1.1.1");
                assert_eq!(*count, 50);
            }
            _ => assert_eq!(ip, "10.1.2.3"),
        }
    }

    // The same rules over the archive afterwards find the same things…
    let hunt = |source: &[&str]| -> (Vec<String>, String) {
        let out = std::process::Command::new(common::CANH)
            .args(["hunt", "--rules"])
            .arg(pack())
            .args(source)
            .args([
                "--from",
                "2000-01-01T00:00:00Z",
                "--to",
                "2100-01-01T00:00:00Z",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        (lines, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (from_archive, _) = hunt(&["--data-dir", dir.path().to_str().unwrap()]);
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    for line in &from_archive {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        *found
            .entry(m["rule.title"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let mut hunted: Vec<&str> = found.keys().map(String::as_str).collect();
    hunted.sort_unstable();
    assert_eq!(hunted, titles, "{found:?}");
    assert_eq!(
        found["Traffic to or from an IOC-listed address"], 1,
        "{found:?}"
    );
    // …and so do they over ClickHouse, which has every event and flow: the same lines.
    let url = ch.url();
    assert!(eventually(Duration::from_secs(30), || {
        ch.try_query("SELECT count() FROM canh.alerts")
            .is_ok_and(|n| n.trim() == alerts.len().to_string())
    }));
    let (from_clickhouse, said) = hunt(&["--clickhouse-url", &url]);
    // The rules narrowed the rows down in ClickHouse.
    let events = said
        .lines()
        .find(|l| l.starts_with("events: "))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        !events.starts_with("events: 0 ") && !events.contains("every row"),
        "{said}"
    );
    eprintln!("{said}");
    assert_eq!(from_clickhouse.len(), from_archive.len());
    for (a, c) in from_archive.iter().zip(&from_clickhouse) {
        assert_eq!(a, c);
    }

    // Stored as alerts, the hunt's matches are the live pipeline's alerts again: the same ids,
    // in the archive and in ClickHouse.
    let (_, said) = hunt(&[
        "--clickhouse-url",
        &url,
        "--store",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(said.contains("alert row(s) stored"), "{said}");
    let again = self::alerts(dir.path());
    assert_eq!(
        again.keys().collect::<Vec<_>>(),
        alerts.keys().collect::<Vec<_>>()
    );
    let in_clickhouse =
        ch.query("SELECT uniqExact(alert_id), count() > uniqExact(alert_id) FROM canh.alerts");
    assert_eq!(in_clickhouse.trim(), format!("{}\t1", alerts.len()));
}

/// `canh serve` with one file of the starter pack in `dir/rules`, reloaded 200 ms after a rule
/// file changes; data in `dir/data`.
fn serve_reloading(dir: &Path, pack_file: &str) -> (Canh, PathBuf) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let name = Path::new(pack_file).file_name().unwrap();
    std::fs::copy(pack().join(pack_file), rules.join(name)).unwrap();
    let extra = format!(
        "[detection]\nrules = \"{}\"\nreload_interval = \"200ms\"\n",
        rules.display()
    );
    (Canh::start(&dir.join("data"), &extra), rules)
}

/// Adds a rule matching `canary` to the running `canh serve`'s rules and waits for the reload.
fn add_canary_rule(canh: &Canh, rules: &Path) {
    std::fs::write(
        rules.join("canary.yml"),
        "title: Canary\nid: 0badc0de-0000-4000-8000-000000000001\nlogsource: {product: canh}\ndetection:\n  keywords:\n    - 'canary'\n  condition: keywords\nlevel: low\n",
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || canh
            .metric("canh_detection_reloads_total{result=\"ok\"}")
            >= 1),
        "{}",
        canh.log()
    );
}

#[test]
fn a_rule_added_while_running_fires_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (canh, rules) = serve_reloading(dir.path(), "network/firewall_config_change.yml");
    let port = canh.tcp.port();
    logger(port, "app", "canary one");
    assert!(eventually(Duration::from_secs(10), || canh
        .metric_sum("canh_parser_events_total")
        >= 1));
    add_canary_rule(&canh, &rules);
    for i in 0..50 {
        logger(port, "app", &format!("canary {i}"));
    }
    assert!(
        eventually(Duration::from_secs(10), || canh
            .metric_sum("canh_detection_alerts_total")
            >= 1),
        "{}",
        canh.log()
    );
    assert!(eventually(Duration::from_secs(10), || canh
        .metric_sum("canh_parser_events_total")
        >= 51));
    assert!(canh.stop().success());
    let alerts = alerts(&dir.path().join("data"));
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    // The first canary came before the rule; the fifty after it fold into one alert.
    let (title, count, _, _) = alerts.values().next().unwrap();
    assert_eq!((title.as_str(), *count), ("Canary", 50));
    let events: usize = read_table(&dir.path().join("data"), "events", None)
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(events, 51);
}

/// A rule reload that leaves a correlation unchanged keeps its windows: six SSH failures before
/// an unrelated rule is added, four after, and the brute force (ten within five minutes) is
/// still seen.
#[test]
fn a_reload_keeps_the_windows_of_unchanged_correlations() {
    let dir = tempfile::tempdir().unwrap();
    let (canh, rules) = serve_reloading(dir.path(), "linux/ssh_bruteforce.yml");
    let port = canh.tcp.port();
    let fail = |i: u32| {
        logger(
            port,
            "sshd",
            &format!(
                "Failed password for root from 203.0.113.9 port {} ssh2",
                40000 + i
            ),
        )
    };
    let held = || canh.metric("canh_detection_state{kind=\"correlation_held_events\"}");
    (0..6).for_each(fail);
    assert!(
        eventually(Duration::from_secs(10), || held() >= 6),
        "{}",
        canh.log()
    );
    add_canary_rule(&canh, &rules);
    // The first match of the new set brings the reload to the alerts thread.
    (6..10).for_each(fail);
    let carried = "canh_detection_events_total{kind=\"correlation_carried_over\"}";
    assert!(
        eventually(Duration::from_secs(10), || canh.metric(carried) >= 6),
        "{}",
        canh.log()
    );
    assert!(eventually(Duration::from_secs(10), || canh
        .metric("canh_detection_matches_total{table=\"events\"}")
        >= 10));
    assert_eq!(
        canh.metric("canh_detection_events_total{kind=\"correlation_reset\"}"),
        0
    );
    assert!(canh.stop().success());
    let alerts = alerts(&dir.path().join("data"));
    let brute: Vec<_> = alerts
        .values()
        .filter(|(title, ..)| title == "SSH brute force")
        .collect();
    assert_eq!(brute.len(), 1, "{alerts:#?}");
    assert_eq!(brute[0].1, 10, "{alerts:#?}");
}
