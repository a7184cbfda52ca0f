//! `canh rules check`: every SigmaHQ rule of the corpus loads (or is rejected with a reason),
//! and broken rules are reported with file, line and reason, as text and as JSON.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::Command;

fn check(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_canh"))
        .args(["rules", "check"])
        .args(args)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rules/check")
}

#[test]
fn broken_rules_are_rejected_with_file_line_and_reason() {
    let dir = fixtures();
    let (code, text) = check(&[dir.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = text.lines().collect();
    let bad = dir.join("bad.yml").display().to_string();
    assert_eq!(
        lines,
        [
            format!("{bad}:6: Unknown modifier 'contanis'"),
            format!(
                "{bad}:15: condition: no detection named 'filter' (the rule has: selection)"
            ),
            format!("{bad}:22: selection: process.command_line: regular expression 'nc -e ([': unclosed character class"),
            format!("{bad}:30: selection: destination.ip: '10.0.0.0/40' is not a CIDR"),
            format!("{bad}:45: filter: selection: source.ip: '10.250.0.0/99' is not a CIDR"),
            format!("{bad}:33: correlation: rules: no rule with the id or name 'no_such_rule'"),
            "1 rule(s) loaded, 6 rejected".to_owned(),
        ]
    );
    let (code, json) = check(&["--format", "json", dir.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (v["loaded"].as_u64(), v["rejected"].as_u64()),
        (Some(1), Some(6))
    );
    assert_eq!(v["errors"][0]["line"], 6);
    assert_eq!(v["errors"][0]["file"], bad);
    let (code, text) = check(&[dir.join("good.yml").to_str().unwrap()]);
    assert_eq!(
        (code, text.as_str()),
        (Some(0), "1 rule(s) loaded, 0 rejected\n")
    );
}

/// The SigmaHQ rule set (3,700+ rules): at least 99% load. Uses ../shared/corpora/sigma.
#[test]
fn sigmahq_rules_load() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/sigma");
    if !root.is_dir() {
        eprintln!("skipping: SigmaHQ corpus not found");
        return;
    }
    let index = std::fs::read_to_string(root.join("INDEX_all_rules.jsonl")).unwrap();
    let total = index.lines().count() as u64;
    let paths: Vec<String> = [
        "rules",
        "rules-compliance",
        "rules-emerging-threats",
        "rules-placeholder",
        "rules-threat-hunting",
    ]
    .iter()
    .map(|d| root.join(d).display().to_string())
    .collect();
    let args: Vec<&str> = ["--format", "json"]
        .into_iter()
        .chain(paths.iter().map(String::as_str))
        .collect();
    let (_, json) = check(&args);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let loaded = v["loaded"].as_u64().unwrap();
    let rejected = v["rejected"].as_u64().unwrap();
    eprintln!(
        "SigmaHQ: {loaded} loaded, {rejected} rejected of {total} indexed: {}",
        v["errors"]
    );
    assert_eq!(loaded + rejected, total);
    assert!(loaded * 100 >= total * 99, "{loaded} of {total}");
    // Under the built-in mapping, the rules for log sources Canh has no events of (Windows,
    // cloud, Zeek, …) load but see no events; the network and Linux ones run.
    let unmapped = &v["unmapped_log_sources"];
    eprintln!("unmapped: {}: {unmapped}", v["unmapped"]);
    assert!(unmapped["category: process_creation, product: windows"].as_u64() > Some(100));
    assert!(unmapped.get("category: firewall").is_none());
    assert!(unmapped.get("product: linux").is_none());
}

fn hunt(mapping: &str) -> (Vec<serde_json::Value>, String) {
    let dir = fixtures();
    let out = Command::new(env!("CARGO_BIN_EXE_canh"))
        .args(["hunt", "--mapping", mapping, "--rules"])
        .arg(dir.join("good.yml"))
        .arg("--input")
        .arg(dir.join("events.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let hits = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (hits, String::from_utf8(out.stderr).unwrap())
}

fn sources(hits: &[serde_json::Value]) -> Vec<String> {
    hits.iter()
        .map(|h| {
            let e = &h["event"];
            e["source.ip"]
                .as_str()
                .or(e["source"]["ip"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// `canh hunt`: rules over JSON events (nested or flat dotted keys), one line per match; the
/// built-in mapping lets a linux/sshd rule see only sshd events of Linux hosts.
#[test]
fn hunt_prints_each_match_with_its_rule() {
    let (hits, err) = hunt("builtin");
    // Failures, case-insensitive, not from the lab range; nested and flat events alike; not
    // the firewall's.
    assert_eq!(sources(&hits), ["203.0.113.9", "198.51.100.7"]);
    assert_eq!(hits[0]["rule.id"], "2f0f6d3e-6d1c-4c55-9a58-3b7b0c6c9a01");
    assert_eq!(hits[0]["rule.level"], "low");
    assert!(err.contains("5 event(s), 1 rule(s), 2 match(es)"), "{err}");
    // Without the mapping, the log source selects nothing: the firewall's event matches too.
    let (hits, _) = hunt("none");
    assert_eq!(
        sources(&hits),
        ["203.0.113.9", "198.51.100.7", "198.51.100.8"]
    );
}

/// A rule whose log source the mapping does not list (a Windows rule made of a negation, which
/// would match every event it saw) loads, is counted by log source, and sees no events; with
/// `--mapping none` it sees them all.
#[test]
fn rules_of_unlisted_log_sources_see_no_events() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("win.yml");
    std::fs::write(
        &rule,
        "title: Not a Windows path\nlogsource: {product: windows, category: process_creation}\n\
         detection:\n  sel:\n    Image|contains: '\\'\n  condition: not sel\n",
    )
    .unwrap();
    let (code, text) = check(&[rule.to_str().unwrap()]);
    assert_eq!(
        (code, text.as_str()),
        (
            Some(0),
            "1 rule(s) loaded, 0 rejected\n1 of the loaded rules see no events: the field \
             mapping does not cover their log source:\n      1  category: process_creation, \
             product: windows\n"
        )
    );
    let (_, json) = check(&["--format", "json", rule.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["unmapped"], 1, "{v}");
    assert_eq!(
        v["unmapped_log_sources"]["category: process_creation, product: windows"],
        1
    );
    let (_, json) = check(&[
        "--format",
        "json",
        "--mapping",
        "none",
        rule.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["unmapped"], 0, "{v}");
    let run = |mapping: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_canh"))
            .args(["hunt", "--mapping", mapping, "--rules"])
            .arg(&rule)
            .arg("--input")
            .arg(fixtures().join("events.jsonl"))
            .output()
            .unwrap();
        assert!(out.status.success());
        (
            String::from_utf8(out.stdout).unwrap().lines().count(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (hits, err) = run("builtin");
    assert_eq!(hits, 0, "{err}");
    assert!(
        err.contains("1 rule(s) see no events: the field mapping does not cover their log source: category: process_creation, product: windows (1)"),
        "{err}"
    );
    assert_eq!(run("none").0, 5);
}

/// `canh rules test`: `x.tests.jsonl` beside `x.yml`; a wrong expectation fails with its line.
#[test]
fn rule_tests_pass_and_fail_with_their_line() {
    let run = |path: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_canh"))
            .args(["rules", "test"])
            .arg(path)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, text) = run(&fixtures().join("good.yml"));
    assert_eq!(
        (code, text.as_str()),
        (
            Some(0),
            "5 test(s) passed, 0 failed; 0 rule(s) without tests\n"
        )
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("good.yml"), dir.path().join("r.yml")).unwrap();
    std::fs::write(
        dir.path().join("r.tests.jsonl"),
        "{\"match\": true, \"event\": {\"event.action\": \"ssh_login\", \"event.outcome\": \"success\"}, \"note\": \"wrong\"}\n",
    )
    .unwrap();
    let (code, text) = run(dir.path());
    assert_eq!(code, Some(1));
    assert!(
        text.contains("r.tests.jsonl:1: 'SSH login failure' should match this event (wrong)"),
        "{text}"
    );
    assert!(
        text.ends_with("0 test(s) passed, 1 failed; 0 rule(s) without tests\n"),
        "{text}"
    );
}

fn pack() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// The starter pack: every rule loads, and every rule test passes in both matchers.
#[test]
fn the_starter_pack_loads_and_its_tests_pass() {
    let out = Command::new(env!("CARGO_BIN_EXE_canh"))
        .args(["rules", "check", "--format", "json"])
        .arg(pack())
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rejected"], 0, "{summary}");
    assert_eq!(summary["unmapped"], 0, "{summary}");
    assert!(summary["loaded"].as_u64().unwrap() >= 20, "{summary}");
    let out = Command::new(env!("CARGO_BIN_EXE_canh"))
        .args(["rules", "test"])
        .arg(pack())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(" 0 failed; 0 rule(s) without tests"),
        "{text}"
    );
}

/// `canh hunt` with the starter pack runs correlations: failures from one address, then a
/// success, raise "SSH brute force" and "SSH login after brute force" — and the single
/// failures and the success, which only feed correlations, raise nothing of their own.
#[test]
fn hunt_runs_correlations_of_the_starter_pack() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let mut lines = String::new();
    let ev = |second: u32, outcome: &str, ip: &str| {
        serde_json::json!({
            "@timestamp": format!("2026-11-30T10:00:{second:02}Z"),
            "event.action": "ssh_login", "event.outcome": outcome,
            "source.ip": ip, "user.name": "root",
            "observer.vendor": "Linux", "log.syslog.appname": "sshd"
        })
        .to_string()
    };
    for s in 0..12 {
        lines += &(ev(s, "failure", "203.0.113.9") + "\n");
    }
    // Another address fails only three times, then logs in: nothing.
    for s in 0..3 {
        lines += &(ev(s, "failure", "198.51.100.4") + "\n");
    }
    lines += &(ev(20, "success", "198.51.100.4") + "\n");
    lines += &(ev(30, "success", "203.0.113.9") + "\n");
    std::fs::write(&input, lines).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_canh"))
        .args(["hunt", "--rules"])
        .arg(pack())
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success());
    let hits: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let titles: Vec<&str> = hits
        .iter()
        .map(|h| h["rule.title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["SSH brute force", "SSH login after brute force"],
        "{hits:?}"
    );
    assert_eq!(hits[0]["correlation"]["group"]["source.ip"], "203.0.113.9");
    assert_eq!(hits[0]["correlation"]["count"], 10);
    assert_eq!(hits[1]["rule.level"], "critical");
}

/// `canh hunt --input` over more lines than one block holds (a file of several blocks, and the
/// same through stdin, on one thread and on several): every line is read whole wherever the
/// blocks cut it, a line longer than a block and the last one without its line end included;
/// matches come out in input order; empty lines are skipped and bad lines (not JSON, not UTF-8)
/// are reported with their numbers (and fail the hunt).
#[test]
fn hunt_reads_every_line_across_blocks_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let rule = dir.path().join("hit.yml");
    std::fs::write(
        &rule,
        "title: Hit\nlogsource: {}\ndetection:\n  sel:\n    kind: hit\n  condition: sel\n",
    )
    .unwrap();
    let (rows, bad_json, bad_utf8, long) = (160_000, 12_345, 150_001, 99_999);
    let mut text = Vec::new();
    let mut want = Vec::new();
    for n in 1..=rows {
        if n == bad_json {
            text.extend_from_slice(b"{\"kind\": \"hit\", \n");
            continue;
        }
        if n == bad_utf8 {
            text.extend_from_slice(b"{\"kind\": \"hit\xff\"}\n");
            continue;
        }
        if n % 1000 == 0 && n < rows {
            text.extend_from_slice(b" \n");
            continue;
        }
        let kind = if n % 7 == 0 || n == rows || n == long {
            want.push(n);
            "hit"
        } else {
            "miss"
        };
        // Lines of many lengths, so that blocks end anywhere in them; one longer than a block.
        let pad = "x".repeat(if n == long { 5 << 20 } else { n * 37 % 113 });
        text.extend_from_slice(
            format!("{{\"n\":{n},\"kind\":\"{kind}\",\"pad\":\"{pad}\"}}").as_bytes(),
        );
        if n < rows {
            text.push(b'\n');
        }
    }
    assert!(text.len() > 16 << 20);
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, &text).unwrap();
    let run = |from_stdin: bool, threads: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_canh"));
        cmd.args(["hunt", "--mapping", "none", "--threads", threads, "--rules"])
            .arg(&rule)
            .arg("--input");
        let out = if from_stdin {
            cmd.arg("-")
                .stdin(std::fs::File::open(&input).unwrap())
                .output()
        } else {
            cmd.arg(&input).output()
        }
        .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        // A bad line makes the hunt fail, after every other line was read.
        assert_eq!(out.status.code(), Some(1), "{err}");
        let got: Vec<usize> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["event"]["n"].as_u64().unwrap() as usize
            })
            .collect();
        (got, err)
    };
    let events = rows - 2 - (rows / 1000 - 1);
    for (from_stdin, threads) in [(false, "1"), (false, "3"), (true, "1"), (true, "2")] {
        let (got, err) = run(from_stdin, threads);
        assert_eq!(got, want, "stdin: {from_stdin}, threads: {threads}");
        let name = if from_stdin {
            "-".to_owned()
        } else {
            input.display().to_string()
        };
        assert!(
            err.contains(&format!("{name}:{bad_json}: not a JSON object")),
            "{err}"
        );
        assert!(
            err.contains(&format!("{name}:{bad_utf8}: not UTF-8")),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{events} event(s), 1 rule(s), {} match(es), 2 line(s) not JSON objects",
                want.len()
            )),
            "{err}"
        );
    }
}

/// `canh hunt --config` hunts as `canh serve` runs that configuration: its rules, its data_dir
/// (where `--store` writes) and its suppression windows, per rule too.
#[test]
fn hunt_takes_rules_data_dir_and_suppression_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for (name, title) in [("hit.yml", "Hit"), ("hot.yml", "Hot")] {
        std::fs::write(
            rules.join(name),
            format!("title: {title}\nlogsource: {{}}\ndetection:\n  sel:\n    kind: hit\n  condition: sel\n"),
        )
        .unwrap();
    }
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        (1..=3)
            .map(|s| format!("{{\"@timestamp\":\"2026-12-01T10:00:0{s}Z\",\"kind\":\"hit\",\"source.ip\":\"10.0.0.1\"}}\n"))
            .collect::<String>(),
    )
    .unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("canh.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[detection]\nrules = \"{}\"\nmapping = \"none\"\nsuppress = \"1h\"\n\
             [detection.suppress_rules]\nHot = \"0s\"\n",
            data.display(),
            rules.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_canh"))
        .args(["hunt", "--store", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&events)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("3 event(s), 2 rule(s), 6 match(es)"), "{err}");
    // Hit's three matches fold into one alert (1 h), written when raised and again with its
    // final count; each of Hot's is an alert of its own (0 s).
    assert!(err.contains("5 alert row(s) stored"), "{err}");
    assert!(data.join("archive").is_dir());
}
