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
