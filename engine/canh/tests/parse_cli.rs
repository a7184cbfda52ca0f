//! `canh parse`: lines on stdin, one JSON object per line with flat dotted ECS keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

fn parse(format: &str, input: &[u8]) -> Vec<serde_json::Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_canh"))
        .args(["parse", "--format", format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const LINES: &[u8] =
    b"<165>1 2003-10-11T22:14:15.003Z mymachine evntslog 123 ID47 [ex@32473 iut=\"3\"] An event\n\
<34>Oct 11 22:14:15 mymachine su[7]: 'su root' failed\n\
not syslog at all \xff\n";

#[test]
fn auto_reads_both_formats_and_keeps_failures_raw() {
    let rows = parse("auto", LINES);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["@timestamp"], "2003-10-11T22:14:15.003Z");
    assert_eq!(rows[0]["host.hostname"], "mymachine");
    assert_eq!(rows[0]["log.syslog.msgid"], "ID47");
    assert_eq!(rows[0]["log.syslog.structured_data"]["ex@32473.iut"], "3");
    assert_eq!(rows[0]["parse.status"], "ok");
    assert_eq!(rows[1]["log.syslog.appname"], "su");
    assert_eq!(rows[1]["log.syslog.procid"], "7");
    assert_eq!(rows[1]["parse.format"], "rfc3164");
    assert_eq!(rows[2]["parse.status"], "failed");
    assert_eq!(
        rows[2]["event.original_bytes"],
        "6e6f74207379736c6f6720617420616c6c20ff"
    );
}

#[test]
fn a_named_format_is_strict() {
    let rows = parse("rfc5424", LINES);
    let status: Vec<_> = rows
        .iter()
        .map(|r| r["parse.status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["ok", "failed", "failed"]);
    let rows = parse("rfc3164", LINES);
    let status: Vec<_> = rows
        .iter()
        .map(|r| r["parse.status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["failed", "ok", "failed"]);
}

#[test]
fn vendor_lines_are_decoded_and_formats_can_be_named() {
    let asa = b"<164>Nov 23 2026 10:00:07 fw01 : %ASA-4-106023: Deny tcp src outside:192.0.2.99/40000 dst inside:10.30.0.5/22 by access-group \"outside_in\" [0x0, 0x0]\n";
    let rows = parse("auto", asa);
    assert_eq!(rows[0]["parse.format"], "cisco_asa");
    assert_eq!(rows[0]["source.ip"], "192.0.2.99");
    assert_eq!(rows[0]["destination.port"], 22);
    assert_eq!(rows[0]["rule.name"], "outside_in");
    // kv is never detected, only named.
    let kv = b"src=10.0.0.1 dst=10.0.0.2 dport=53 action=allow\n";
    assert_eq!(parse("auto", kv)[0]["parse.status"], "failed");
    let rows = parse("kv", kv);
    assert_eq!(rows[0]["parse.status"], "ok");
    assert_eq!(rows[0]["destination.port"], 53);
    // A named decoder that cannot read the line says why, and keeps the line.
    let rows = parse("fortigate", asa);
    assert_eq!(rows[0]["parse.status"], "partial");
    assert!(rows[0]["parse.error"].as_str().unwrap().contains("logid"));

    let out = Command::new(env!("CARGO_BIN_EXE_canh"))
        .args(["parse", "--format", "nosuch"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown format") && err.contains("fortigate"),
        "{err}"
    );
}

#[test]
fn a_time_zone_applies_to_timestamps_without_one() {
    let line = b"<34>Nov 23 10:00:00 host app: hello\n";
    let run = |zone: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_canh"))
            .args(["parse", &format!("--timezone={zone}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(line).unwrap();
        let out = child.wait_with_output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["@timestamp"].as_str().unwrap().to_string()
    };
    let utc = run("UTC");
    assert!(utc.ends_with("T10:00:00Z"), "{utc}");
    let hcm = run("Asia/Ho_Chi_Minh");
    assert!(hcm.ends_with("T03:00:00Z"), "{hcm}");
    assert!(run("-05:00").ends_with("T15:00:00Z"));
}
