//! Forwarding alerts to the national SOC, end to end, against real receivers started by the
//! `deploy/` scripts: the OASIS TAXII 2.1 reference server (medallion, memory backend; behind
//! gunicorn with client certificates for mutual TLS) and syslog-ng receiving CEF over TLS with
//! octet-counted framing. Events go in over TCP (util-linux `logger`); each matches a canary
//! rule with its own source address, so each raises its own alert.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use common::{eventually, logger, read_table, Canh, Deployed, CANH};

const CANARY: &str = "title: Forward canary\nid: 0badc0de-0000-4000-8000-0000000000f1\n\
status: test\nlogsource: {product: linux, service: sshd}\ndetection:\n  keywords:\n    - \
'Failed password for canary'\n  condition: keywords\nlevel: high\ntags: [attack.t1110]\n";

/// The canary rule, and (with `large`) one whose text alone is larger than a small TAXII
/// server accepts.
fn rules(dir: &Path, large: bool) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("canary.yml"), CANARY).unwrap();
    if large {
        let padding = "x".repeat(8000);
        std::fs::write(
            rules.join("large.yml"),
            format!(
                "title: Forward canary, large\nid: 0badc0de-0000-4000-8000-0000000000f2\n\
                 description: {padding}\nlogsource: {{product: linux, service: sshd}}\n\
                 detection:\n  keywords:\n    - 'Failed password for giant'\n  \
                 condition: keywords\nlevel: critical\n"
            ),
        )
        .unwrap();
    }
    rules
}

/// One sshd failure from 10.77.<i / 250>.<i % 250 + 1>: one alert of the canary rule each.
fn canary(port: u16, i: usize, user: &str) {
    let ip = format!("10.77.{}.{}", i / 250, i % 250 + 1);
    logger(
        port,
        "sshd[4242]",
        &format!("Failed password for {user} from {ip} port 50000 ssh2"),
    );
}

fn delivered(canh: &Canh, dest: &str) -> u64 {
    canh.metric(&format!(
        "canh_forward_alerts_total{{destination=\"{dest}\",kind=\"delivered\"}}"
    ))
}

/// Alert ids in the archive's alerts table.
fn archived_alert_ids(data: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for b in read_table(data, "alerts", Some(&["alert_id"])) {
        let ids = b.column(0).as_string::<i32>();
        for r in 0..b.num_rows() {
            out.insert(ids.value(r).to_owned());
        }
    }
    out
}

/// A medallion server.
struct Taxii {
    server: Deployed,
    collection: String,
}

impl Taxii {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Taxii {
        let server = Deployed::start("taxii.sh", dir, None, env);
        let collection = server.printed[1].clone();
        Taxii { server, collection }
    }

    fn url(&self, scheme: &str, login: &str) -> String {
        format!(
            "{scheme}://{login}@127.0.0.1:{}/api1/collections/{}/",
            self.server.port(),
            self.collection
        )
    }

    /// Every object of the collection (all versions), as the server lists them.
    fn objects(&self, tls: Option<&Path>) -> Vec<serde_json::Value> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--fail", "--globoff", "-u", "canh:canh-secret"])
            .args(["-H", "Accept: application/taxii+json;version=2.1"]);
        if let Some(t) = tls {
            cmd.arg("--cacert")
                .arg(t.join("ca.crt"))
                .arg("--cert")
                .arg(t.join("client.crt"))
                .arg("--key")
                .arg(t.join("client.key"));
        }
        let url = format!(
            "{scheme}://127.0.0.1:{}/api1/collections/{}/objects/?match[version]=all",
            self.server.port(),
            self.collection
        );
        let out = cmd.arg(&url).output().expect("curl is installed");
        assert!(
            out.status.success(),
            "GET {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["objects"].as_array().cloned().unwrap_or_default()
    }
}

/// The OASIS validator's verdict on objects (errors printed).
fn validate(objects: &[serde_json::Value], dir: &Path) {
    let file = dir.join("objects.json");
    std::fs::write(&file, serde_json::json!({ "objects": objects }).to_string()).unwrap();
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/stix_validate.py"))
        .arg(&file)
        .output()
        .expect("python3 with stix2-validator (scripts/deps.sh)");
    assert!(
        out.status.success(),
        "stix2-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Alert id → number of sightings carrying it.
fn sightings(objects: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for o in objects.iter().filter(|o| o["type"] == "sighting") {
        *out.entry(o["x_canh_alert_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    out
}

fn forward_cli(args: &[&str], config: &Path) -> String {
    let out = Command::new(CANH)
        .arg("forward")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "canh forward {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn alerts_arrive_in_taxii_as_valid_stix_and_redelivery_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let taxii = Taxii::start(&dir.path().join("taxii"), &[]);
    let rules = rules(dir.path(), false);
    let data = dir.path().join("data");
    let extra = format!(
        "[detection]\nrules = \"{}\"\n[[forward]]\nname = \"national\"\nurl = \"{}\"\n\
         identity = \"Province SOC (test)\"\ntlp = \"amber\"\n",
        rules.display(),
        taxii.url("taxii+http", "canh:canh-secret")
    );
    let canh = Canh::start(&data, &extra);
    for i in 0..20 {
        canary(canh.tcp.port(), i, "canary");
    }
    assert!(
        eventually(Duration::from_secs(30), || delivered(&canh, "national")
            >= 20),
        "delivered {}\n{}",
        delivered(&canh, "national"),
        canh.log()
    );
    assert!(
        !canh.log().contains("does not list this API root"),
        "{}",
        canh.log()
    );
    let objects = taxii.objects(None);
    validate(&objects, dir.path());
    let seen = sightings(&objects);
    assert_eq!(seen.len(), 20, "{seen:?}");
    assert!(seen.values().all(|&n| n == 1));
    let sighting = objects.iter().find(|o| o["type"] == "sighting").unwrap();
    assert_eq!(
        sighting["x_canh_rule_id"],
        "0badc0de-0000-4000-8000-0000000000f1"
    );
    assert_eq!(sighting["count"], 1);
    let indicator = objects.iter().find(|o| o["type"] == "indicator").unwrap();
    assert_eq!(indicator["pattern_type"], "sigma");
    assert!(indicator["pattern"]
        .as_str()
        .unwrap()
        .contains("Failed password for canary"));
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["type"].as_str()).collect();
    for k in [
        "identity",
        "marking-definition",
        "indicator",
        "sighting",
        "observed-data",
        "ipv4-addr",
        "user-account",
    ] {
        assert!(kinds.contains(k), "no {k} in {kinds:?}");
    }

    // Every alert again: the server already holds every object, so nothing is added, and
    // Canh counts them as delivered.
    let config = data.join("canh-test.toml");
    forward_cli(&["replay", "--since", "1h", "--to", "national"], &config);
    assert!(
        eventually(Duration::from_secs(30), || delivered(&canh, "national")
            >= 40),
        "replayed {}\n{}",
        delivered(&canh, "national"),
        canh.log()
    );
    let again = taxii.objects(None);
    assert_eq!(again.len(), objects.len(), "redelivery added objects");
    assert_eq!(
        canh.metric("canh_forward_alerts_total{destination=\"national\",kind=\"dead\"}"),
        0
    );
    let status = forward_cli(&["status", "--format", "json"], &config);
    let s: serde_json::Value = serde_json::from_str(status.lines().next().unwrap()).unwrap();
    assert_eq!(
        (s["destination"].as_str(), s["pending"].as_u64()),
        (Some("national"), Some(0)),
        "{status}"
    );
    assert!(canh.stop().success());
    let archived = archived_alert_ids(&data);
    assert_eq!(archived, seen.keys().cloned().collect::<BTreeSet<_>>());
}

#[test]
fn wrong_credentials_are_retried_and_oversize_envelopes_split_or_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    // A small limit: a few alerts per envelope, and the large rule's indicator never fits.
    let taxii = Taxii::start(&dir.path().join("taxii"), &[("MAX_CONTENT_LENGTH", "6000")]);
    let rules = rules(dir.path(), true);
    let data = dir.path().join("data");
    let section = |login: &str| {
        format!(
            "[detection]\nrules = \"{}\"\n[[forward]]\nname = \"national\"\nurl = \"{}\"\n\
             min_backoff = \"50ms\"\nmax_backoff = \"500ms\"\n",
            rules.display(),
            taxii.url("taxii+http", login)
        )
    };
    let canh = Canh::start(&data, &section("canh:wrong-password"));
    for i in 0..12 {
        canary(canh.tcp.port(), i, "canary");
    }
    canary(canh.tcp.port(), 100, "giant");
    let retried =
        |c: &Canh| c.metric("canh_forward_alerts_total{destination=\"national\",kind=\"retried\"}");
    assert!(
        eventually(Duration::from_secs(30), || retried(&canh) > 0),
        "{}",
        canh.log()
    );
    // 401 is a configuration to fix, not bad alerts: kept, retried, reported.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(delivered(&canh, "national"), 0);
    let config = data.join("canh-test.toml");
    let status = forward_cli(&["status"], &config);
    assert!(status.contains("HTTP 401"), "{status}");
    assert!(status.contains("dead letters 0"), "{status}");
    assert!(canh.stop().success());

    // The right password: everything that fits arrives, the large rule's alert is a dead
    // letter with the reason.
    let canh = Canh::start(&data, &section("canh:canh-secret"));
    let dead =
        |c: &Canh| c.metric("canh_forward_alerts_total{destination=\"national\",kind=\"dead\"}");
    assert!(
        eventually(Duration::from_secs(30), || delivered(&canh, "national")
            >= 12
            && dead(&canh) >= 1),
        "delivered {} dead {}\n{}",
        delivered(&canh, "national"),
        dead(&canh),
        canh.log()
    );
    assert_eq!((delivered(&canh, "national"), dead(&canh)), (12, 1));
    let letters = std::fs::read_to_string(data.join("outbox/dead/national.jsonl")).unwrap();
    assert_eq!(letters.lines().count(), 1);
    assert!(letters.contains("max_content_length 6000"), "{letters}");
    assert!(letters.contains("Forward canary, large"), "{letters}");
    let objects = taxii.objects(None);
    validate(&objects, dir.path());
    assert_eq!(sightings(&objects).len(), 12);
    // The twelve alerts did not fit in one envelope.
    let log = std::fs::read_to_string(dir.path().join("taxii/server.log")).unwrap();
    let posts = log
        .lines()
        .filter(|l| l.contains("\"POST /api1/collections/") && l.contains(" 202 "))
        .count();
    assert!(posts >= 2, "{posts} envelopes:\n{log}");
    assert!(canh.stop().success());
}

#[test]
fn mutual_tls_to_taxii_behind_gunicorn() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    common::certificates(&tls);
    let taxii = Taxii::start(
        &dir.path().join("taxii"),
        &[("TLS_DIR", tls.to_str().unwrap())],
    );
    let rules = rules(dir.path(), false);
    let data = dir.path().join("data");
    let extra = format!(
        "[detection]\nrules = \"{rules}\"\n\
         [[forward]]\nname = \"mtls\"\nurl = \"{url}\"\nca_file = \"{t}/ca.crt\"\n\
         client_cert = \"{t}/client.crt\"\nclient_key = \"{t}/client.key\"\n\
         [[forward]]\nname = \"no-client-cert\"\nurl = \"{url}\"\nca_file = \"{t}/ca.crt\"\n\
         min_backoff = \"50ms\"\nmax_backoff = \"500ms\"\n",
        rules = rules.display(),
        url = taxii.url("taxii+https", "canh:canh-secret"),
        t = tls.display()
    );
    let canh = Canh::start(&data, &extra);
    for i in 0..5 {
        canary(canh.tcp.port(), i, "canary");
    }
    assert!(
        eventually(Duration::from_secs(30), || delivered(&canh, "mtls") >= 5),
        "{}",
        canh.log()
    );
    assert!(eventually(Duration::from_secs(10), || canh.metric(
        "canh_forward_alerts_total{destination=\"no-client-cert\",kind=\"retried\"}"
    ) > 0));
    assert_eq!(delivered(&canh, "no-client-cert"), 0);
    let objects = taxii.objects(Some(&tls));
    validate(&objects, dir.path());
    assert_eq!(sightings(&objects).len(), 5);
    assert!(canh.stop().success());
}

/// The CEF messages syslog-ng wrote: alert id → how many times it arrived. Every line must be
/// `RECEIVED ISODATE HOST canh alert CEF:…` and parse as CEF (Canh's CEF decoder, `canh parse`).
fn cef_lines(receiver: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(receiver.join("messages.log")).unwrap_or_default();
    let mut bodies = String::new();
    for line in text.lines() {
        let mut parts = line.splitn(6, ' ');
        let (_received, _date, host, program, msgid, body) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next().unwrap_or(""),
        );
        assert_eq!(
            (host, program, msgid),
            (Some("canh-test"), Some("canh"), Some("alert")),
            "{line}"
        );
        bodies.push_str(body);
        bodies.push('\n');
    }
    let mut child = Command::new(CANH)
        .args(["parse", "--format", "cef"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(bodies.as_bytes()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let mut ids = BTreeMap::new();
    for l in String::from_utf8(out.stdout).unwrap().lines() {
        let e: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(e["parse.status"], "ok", "{l}");
        assert_eq!(e["parse.format"], "cef", "{l}");
        assert_eq!(
            e["event.code"], "0badc0de-0000-4000-8000-0000000000f1",
            "{l}"
        );
        assert!(
            e["source.ip"].as_str().unwrap().starts_with("10.77."),
            "{l}"
        );
        let id = e["vendor_fields"]["externalId"]
            .as_str()
            .unwrap()
            .to_owned();
        *ids.entry(id).or_default() += 1;
    }
    ids
}

/// How long the receiver stays down (the issue asks for 2 minutes; CANH_TEST_OUTAGE_SECS
/// shortens it for a quick local run).
fn outage() -> Duration {
    Duration::from_secs(
        std::env::var("CANH_TEST_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    )
}

#[test]
fn cef_over_tls_reaches_syslog_ng_once_and_survives_two_minutes_of_receiver_outage() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    common::certificates(&tls);
    let receiver_dir = dir.path().join("syslog-ng");
    // ca.crt in TLS_DIR: syslog-ng requires a client certificate from that CA.
    let mut receiver = Deployed::start(
        "syslog-ng.sh",
        &receiver_dir,
        None,
        &[("TLS_DIR", tls.to_str().unwrap())],
    );
    let port = receiver.port();
    let rules = rules(dir.path(), false);
    let data = dir.path().join("data");
    let extra = format!(
        "[detection]\nrules = \"{}\"\n[[forward]]\nname = \"soc-syslog\"\n\
         url = \"syslog+tls://127.0.0.1:{port}\"\nhostname = \"canh-test\"\n\
         ca_file = \"{t}/ca.crt\"\nclient_cert = \"{t}/client.crt\"\nclient_key = \"{t}/client.key\"\n\
         min_backoff = \"200ms\"\nmax_backoff = \"5s\"\n",
        rules.display(),
        t = tls.display()
    );
    let canh = Canh::start(&data, &extra);
    let tcp = canh.tcp.port();
    for i in 0..30 {
        canary(tcp, i, "canary");
    }
    assert!(
        eventually(Duration::from_secs(30), || cef_lines(&receiver_dir).len()
            >= 30),
        "{}",
        canh.log()
    );
    let first = cef_lines(&receiver_dir);
    assert_eq!(first.len(), 30);
    assert!(
        first.values().all(|&n| n == 1),
        "repeats without a fault: {first:?}"
    );

    // The receiver goes away; alerts keep coming for the whole outage.
    receiver.stop();
    let until = Instant::now() + outage();
    let mut i = 30;
    while Instant::now() < until {
        canary(tcp, i, "canary");
        i += 1;
        std::thread::sleep(Duration::from_millis(2000));
    }
    let total = i;
    assert!(
        canh.metric("canh_forward_alerts_total{destination=\"soc-syslog\",kind=\"retried\"}") > 0
    );
    assert!(canh.metric("canh_forward_state{destination=\"soc-syslog\",kind=\"pending\"}") > 0);
    receiver.restart(Some(port));
    assert!(
        eventually(Duration::from_secs(60), || cef_lines(&receiver_dir).len()
            >= total),
        "{} of {total} arrived\n{}",
        cef_lines(&receiver_dir).len(),
        canh.log()
    );
    assert!(canh.stop().success());
    let arrived = cef_lines(&receiver_dir);
    let archived = archived_alert_ids(&data);
    assert_eq!(archived.len(), total);
    assert_eq!(
        arrived.keys().cloned().collect::<BTreeSet<_>>(),
        archived,
        "every alert arrives"
    );
}

#[test]
fn kill_9_mid_delivery_loses_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let receiver_dir = dir.path().join("syslog-ng");
    let receiver = Deployed::start("syslog-ng.sh", &receiver_dir, None, &[]);
    let rules = rules(dir.path(), false);
    let data = dir.path().join("data");
    // Slow delivery (20 alerts/s) so that the kill comes in the middle of it.
    let extra = format!(
        "[detection]\nrules = \"{}\"\n[[forward]]\nname = \"soc\"\n\
         url = \"syslog+tcp://127.0.0.1:{}\"\nhostname = \"canh-test\"\nrate = 20\n",
        rules.display(),
        receiver.port()
    );
    let canh = Canh::start(&data, &extra);
    let n = 150;
    for i in 0..n {
        canary(canh.tcp.port(), i, "canary");
    }
    // Every alert is in the outbox (fsynced), and some are delivered: kill.
    assert!(
        eventually(Duration::from_secs(60), || canh
            .metric("canh_outbox_state{kind=\"last_seq\"}")
            >= n as u64),
        "{}",
        canh.log()
    );
    assert!(eventually(Duration::from_secs(30), || delivered(
        &canh, "soc"
    ) >= 20));
    let before = cef_lines(&receiver_dir).len();
    assert!(before < n, "all {before} delivered before the kill");
    canh.kill9();
    // Started again: the rest goes out from the acknowledged cursor.
    let canh = Canh::start(&data, &extra);
    assert!(
        eventually(Duration::from_secs(60), || cef_lines(&receiver_dir).len()
            >= n),
        "{} of {n} arrived\n{}",
        cef_lines(&receiver_dir).len(),
        canh.log()
    );
    assert!(canh.stop().success());
    let arrived = cef_lines(&receiver_dir);
    assert_eq!(arrived.len(), n);
}

#[test]
fn webhook_gets_signed_json_with_idempotency_keys_retries_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    common::certificates(&tls);
    let mut receiver = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/webhook_receiver.py"))
        .arg(&tls)
        .args(["s3cret-key", "3", "10.77.0.5"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let port_file = tls.join("port");
    assert!(eventually(Duration::from_secs(20), || port_file.exists()));
    let port = std::fs::read_to_string(&port_file).unwrap();
    let rules = rules(dir.path(), false);
    let data = dir.path().join("data");
    let extra = format!(
        "[detection]\nrules = \"{}\"\n[[forward]]\nname = \"hook\"\n\
         url = \"https://127.0.0.1:{port}/alerts\"\nca_file = \"{}/ca.crt\"\n\
         signing_key = \"s3cret-key\"\nredact = [\"samples\"]\nmin_backoff = \"50ms\"\n",
        rules.display(),
        tls.display()
    );
    let canh = Canh::start(&data, &extra);
    for i in 0..10 {
        canary(canh.tcp.port(), i, "canary");
    }
    let dead = |c: &Canh| c.metric("canh_forward_alerts_total{destination=\"hook\",kind=\"dead\"}");
    let ok = eventually(Duration::from_secs(30), || {
        delivered(&canh, "hook") >= 9 && dead(&canh) >= 1
    });
    let _ = receiver.kill();
    let _ = receiver.wait();
    assert!(
        ok,
        "delivered {} dead {}\n{}",
        delivered(&canh, "hook"),
        dead(&canh),
        canh.log()
    );
    assert!(canh.metric("canh_forward_alerts_total{destination=\"hook\",kind=\"retried\"}") > 0);
    let received = std::fs::read_to_string(tls.join("received.jsonl")).unwrap();
    let mut keys = BTreeSet::new();
    for line in received.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["key"], v["alert"]["id"],
            "Idempotency-Key is the alert id"
        );
        assert_eq!(
            v["alert"]["rule_id"],
            "0badc0de-0000-4000-8000-0000000000f1"
        );
        assert!(
            v["alert"].get("samples").is_none(),
            "samples are redacted: {line}"
        );
        assert!(v["alert"]["rule_text"]
            .as_str()
            .unwrap()
            .contains("Forward canary"));
        keys.insert(v["key"].as_str().unwrap().to_owned());
    }
    assert_eq!(keys.len(), 9);
    let letters = std::fs::read_to_string(data.join("outbox/dead/hook.jsonl")).unwrap();
    assert!(
        letters.contains("HTTP 400") && letters.contains("10.77.0.5"),
        "{letters}"
    );
    assert!(canh.stop().success());
}
