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
