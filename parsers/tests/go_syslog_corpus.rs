//! The go-syslog test vectors (`../shared/corpora/go-syslog/cases.jsonl`): valid RFC 5424 and
//! RFC 3164 cases must parse to the expected fields; invalid RFC 5424 cases must be rejected by
//! the strict parser. Skips (with a note) where the corpus folder is absent.

#![allow(clippy::print_stderr)]

use std::path::PathBuf;

use canh_parsers::syslog::{rfc3164, rfc5424, Syslog};
use serde_json::Value;

fn corpus() -> Option<Vec<Value>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/go-syslog/cases.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "skipping: {} not found (clone without ../shared)",
            path.display()
        );
        return None;
    };
    Some(
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
    )
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn input(case: &Value) -> Vec<u8> {
    unhex(case["input_hex"].as_str().unwrap_or(""))
}

fn ts_of(rfc3339: &str) -> Option<i64> {
    rfc5424::parse(format!("<1>1 {rfc3339} - - - - -").as_bytes())
        .ok()?
        .timestamp_ns
}

/// Differences between what we parsed and what the case expects.
fn compare(m: &Syslog<'_>, exp: &Value, suite: &str) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |name: &str, got: Option<String>| {
        let want = exp.get(name).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        if got != want {
            diffs.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    };
    check("priority", m.priority.map(|p| p.to_string()));
    check("facility", m.facility().map(|p| p.to_string()));
    check("severity", m.severity().map(|p| p.to_string()));
    check("hostname", m.hostname.map(str::to_owned));
    check("appname", m.appname.map(str::to_owned));
    check("procid", m.procid.map(str::to_owned));
    check("msgid", m.msgid.map(str::to_owned));
    if suite == "rfc5424" {
        check("version", m.version.map(|v| v.to_string()));
        let want_ts = exp.get("timestamp").and_then(Value::as_str).and_then(ts_of);
        if m.timestamp_ns != want_ts {
            diffs.push(format!(
                "timestamp: got {:?}, want {want_ts:?}",
                m.timestamp_ns
            ));
        }
        let mut got_sd = serde_json::Map::new();
        for el in &m.structured_data {
            let params: serde_json::Map<String, Value> = el
                .params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String(v.to_string())))
                .collect();
            got_sd.insert(el.id.to_owned(), Value::Object(params));
        }
        let want_sd = exp
            .get("structureddata")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        if Value::Object(got_sd.clone()) != want_sd {
            diffs.push(format!("structured data: got {got_sd:?}, want {want_sd}"));
        }
    } else if m.timestamp_ns.is_none() {
        diffs.push("timestamp missing".into());
    }
    let want_msg = match exp.get("message") {
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(Value::Object(o)) => o.get("hex").and_then(Value::as_str).map(unhex),
        _ => None,
    };
    if m.message.map(<[u8]>::to_vec) != want_msg {
        diffs.push(format!("message: got {:?}, want {want_msg:?}", m.message));
    }
    diffs
}

#[test]
fn go_syslog_cases_behave_as_expected() {
    let Some(cases) = corpus() else { return };
    assert_eq!(cases.len(), 212, "corpus changed");
    let mut failures = Vec::new();
    for case in &cases {
        let suite = case["suite"].as_str().unwrap_or("");
        let valid = case["valid"].as_bool().unwrap_or(false);
        let bytes = input(case);
        let name = format!(
            "{suite}#{} {:?}",
            case["index"],
            case["input"].as_str().unwrap_or("")
        );
        let parsed = match suite {
            "rfc5424" => rfc5424::parse(&bytes).map_err(|e| e.to_string()),
            _ => {
                // The corpus does not fix the receive time; its years are the current year.
                let opts = rfc3164::Options {
                    received_ns: 0,
                    tz_offset_secs: 0,
                    strict: true,
                };
                rfc3164::parse(&bytes, &opts)
                    .map(|(m, _)| m)
                    .map_err(|e| e.to_string())
            }
        };
        match (valid, parsed) {
            (true, Ok(m)) => {
                let diffs = compare(&m, &case["expected"], suite);
                if !diffs.is_empty() {
                    failures.push(format!("{name}: {}", diffs.join("; ")));
                }
            }
            (true, Err(e)) => failures.push(format!("{name}: valid but rejected: {e}")),
            (false, Ok(_)) => {
                failures.push(format!("{name}: invalid ({}) but accepted", case["error"]))
            }
            (false, Err(_)) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
