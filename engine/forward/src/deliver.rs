//! Delivery: one thread per destination reads the outbox from its cursor and hands alerts to
//! the destination's adapter, in order.
//!
//! * A batch is acknowledged (the cursor moves past it) only once the adapter says it was
//!   delivered; a failed attempt is retried, the same batch again, after an exponential
//!   backoff with jitter (or the server's `Retry-After`), for as long as it takes. So delivery
//!   is at least once and in order per destination.
//! * Alerts a destination refuses for good (the adapter's [`Rejected`]) go to its dead-letter
//!   file, `<outbox>/dead/<destination>.jsonl`, with the reason, and delivery goes on.
//! * A rate limit (alerts per second) is a token bucket.
//! * The thread keeps `<outbox>/state/<destination>.json` up to date for `canh forward status`
//!   and picks up replay requests (`<outbox>/replay/<destination>`) written by
//!   `canh forward replay`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use canh_metrics::Metrics;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::alert::ForwardAlert;
use crate::dest::{Destination, Kind};
use crate::outbox::{now_ns, Outbox, Record};

/// An attempt that failed in a way that may pass: the batch is tried again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub reason: String,
    /// The server's `Retry-After`.
    pub after: Option<Duration>,
    /// For the metrics and the status: network, auth, throttled, server, http, other.
    pub kind: &'static str,
}

impl Retry {
    pub fn new(reason: String) -> Retry {
        Retry {
            reason,
            after: None,
            kind: "other",
        }
    }
}

/// An alert of the batch that the destination refuses for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Position in the batch given to [`Adapter::send`].
    pub index: usize,
    pub reason: String,
}

/// One destination's protocol.
pub trait Adapter: Send {
    /// Delivers a batch; `Ok` lists the alerts refused for good (the rest are delivered).
    fn send(&mut self, alerts: &[ForwardAlert]) -> Result<Vec<Rejected>, Retry>;
}

/// The adapter for a destination's protocol.
pub fn adapter(d: &Destination) -> Result<Box<dyn Adapter>, String> {
    Ok(match d.kind {
        Kind::Taxii { .. } => Box::new(crate::taxii::Taxii::new(d)?),
        Kind::Syslog { .. } => Box::new(crate::syslog::Syslog::new(d)?),
        Kind::Webhook { .. } => Box::new(crate::webhook::Webhook::new(d)?),
    })
}

/// What `canh forward status` shows of a destination (kept across restarts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    /// The URL, password hidden.
    pub url: String,
    /// The next outbox seq not acknowledged.
    pub cursor: u64,
    pub delivered: u64,
    pub dead: u64,
    pub retried: u64,
    pub filtered: u64,
    pub up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_at: Option<String>,
    pub updated_at: String,
}

pub fn state_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("state").join(format!("{name}.json"))
}

pub fn replay_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("replay").join(name)
}

pub fn dead_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("dead").join(format!("{name}.jsonl"))
}

fn now_text() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Reads a destination's state file.
pub fn read_state(dir: &Path, name: &str) -> Option<State> {
    let text = fs::read_to_string(state_path(dir, name)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Asks the delivery of `name` to go back to the alerts appended since `since_ns` (taken up
/// by the running instance, or by the next one to start).
pub fn request_replay(dir: &Path, name: &str, since_ns: i64) -> io::Result<()> {
    let path = replay_path(dir, name);
    if let Some(p) = path.parent() {
        fs::create_dir_all(p)?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, format!("{since_ns}\n"))?;
    fs::rename(&tmp, &path)
}

struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// How long to wait before `n` alerts may go.
    fn wait_for(&mut self, n: usize) -> Duration {
        let now = Instant::now();
        let capacity = self.rate.max(1.0);
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(capacity);
        self.last = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// One destination's delivery.
pub struct Delivery {
    dest: Destination,
    url: String,
    outbox: Arc<Outbox>,
    adapter: Box<dyn Adapter>,
    metrics: Metrics,
    state: State,
    state_written: Instant,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("dest", &self.dest.name)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Checks the destination (TLS files, URL) and prepares its delivery.
    pub fn new(
        dest: Destination,
        url: String,
        outbox: Arc<Outbox>,
        metrics: Metrics,
    ) -> Result<Delivery, String> {
        let adapter = adapter(&dest)?;
        Delivery::with_adapter(dest, url, outbox, metrics, adapter)
    }

    /// The same with a given adapter.
    pub fn with_adapter(
        dest: Destination,
        url: String,
        outbox: Arc<Outbox>,
        metrics: Metrics,
        adapter: Box<dyn Adapter>,
    ) -> Result<Delivery, String> {
        let mut state = read_state(outbox.dir(), &dest.name).unwrap_or_default();
        state.name = dest.name.clone();
        state.url = url.clone();
        state.up = false;
        for sub in ["state", "dead", "replay"] {
            fs::create_dir_all(outbox.dir().join(sub))
                .map_err(|e| format!("{}: {e}", outbox.dir().join(sub).display()))?;
        }
        Ok(Delivery {
            dest,
            url,
            outbox,
            adapter,
            metrics,
            state,
            state_written: Instant::now() - Duration::from_secs(10),
        })
    }

    pub fn name(&self) -> &str {
        &self.dest.name
    }

    fn write_state(&mut self, force: bool) {
        if !force && self.state_written.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.state_written = Instant::now();
        self.state.updated_at = now_text();
        let path = state_path(self.outbox.dir(), &self.dest.name);
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(&self.state).unwrap_or_default();
        if let Err(e) = fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, &path)) {
            warn!(destination = %self.dest.name, error = %e, "cannot write the delivery state");
        }
    }

    fn dead_letter(&mut self, rec: &Record, reason: &str) {
        self.metrics.forward(&self.dest.name, "dead", 1);
        self.state.dead += 1;
        warn!(destination = %self.dest.name, seq = rec.seq, reason, "alert refused for good: dead letter");
        let alert: Value = serde_json::from_slice(&rec.payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&rec.payload).into_owned()));
        let line = serde_json::json!({
            "at": now_text(),
            "destination": self.dest.name,
            "seq": rec.seq,
            "reason": reason,
            "alert": alert,
        });
        let path = dead_path(self.outbox.dir(), &self.dest.name);
        let written = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            warn!(file = %path.display(), error = %e, "cannot write a dead letter");
        }
    }

    /// A replay request, if one was made: the new cursor.
    fn replay_request(&mut self, cursor: u64) -> Option<u64> {
        let path = replay_path(self.outbox.dir(), &self.dest.name);
        let text = fs::read_to_string(&path).ok()?;
        let _ = fs::remove_file(&path);
        let since_ns: i64 = text.trim().parse().ok()?;
        match self.outbox.seq_since(since_ns) {
            Ok(seq) => {
                info!(destination = %self.dest.name, from = seq, "replaying alerts on request");
                Some(seq.min(cursor))
            }
            Err(e) => {
                warn!(destination = %self.dest.name, error = %e, "replay request not carried out");
                None
            }
        }
    }

    /// Sleeps up to `d`, in steps, until `stop`. Returns whether stop was asked.
    fn pause(d: Duration, stop: &AtomicBool) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if stop.load(Ordering::Acquire) {
                return true;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        stop.load(Ordering::Acquire)
    }

    /// Delivers until `stop`. What is not acknowledged then is delivered after the restart.
    pub fn run(&mut self, stop: &AtomicBool) {
        let name = self.dest.name.clone();
        let mut cursor = match self.outbox.cursor(&name) {
            Ok(c) => c,
            Err(e) => {
                warn!(destination = %name, error = %e, "cannot read the cursor; delivery stopped");
                self.metrics.error("forward", "cursor");
                return;
            }
        };
        self.state.cursor = cursor;
        let mut reader = self.outbox.reader(cursor);
        let rate = self.dest.rate.filter(|r| *r > 0.0);
        let mut bucket = rate.map(|rate| Bucket {
            rate,
            tokens: rate.max(1.0),
            last: Instant::now(),
        });
        let batch_max = match rate {
            Some(r) => self.dest.batch.min((r.ceil() as usize).max(1)),
            None => self.dest.batch,
        }
        .max(1);
        let mut records = Vec::new();
        let mut rng = rand::rng();
        info!(destination = %name, url = %self.url, from = cursor, "delivery started");
        while !stop.load(Ordering::Acquire) {
            if let Some(c) = self.replay_request(cursor) {
                cursor = c;
                reader.seek(cursor);
                self.state.cursor = cursor;
                if let Err(e) = self.outbox.acknowledge(&name, cursor) {
                    warn!(destination = %name, error = %e, "cannot write the cursor");
                }
            }
            let end = self.outbox.committed();
            self.metrics
                .set_forward(&name, "pending", end.saturating_sub(cursor));
            if cursor >= end {
                self.metrics
                    .set_forward(&name, "oldest_pending_age_seconds", 0);
                self.write_state(false);
                self.outbox.wait_for(cursor, Duration::from_millis(200));
                continue;
            }
            records.clear();
            let (_, skipped) = match reader.read(end, batch_max, &mut records) {
                Ok(r) => r,
                Err(e) => {
                    warn!(destination = %name, error = %e, "cannot read the outbox");
                    self.metrics.error("forward", "outbox_read");
                    if Self::pause(Duration::from_secs(1), stop) {
                        break;
                    }
                    reader.seek(cursor);
                    continue;
                }
            };
            self.metrics.outbox("skipped", skipped);
            let Some(last) = records.last().map(|r| r.seq) else {
                cursor = reader.position().max(cursor);
                continue;
            };
            if let Some(first) = records.first() {
                let age = (now_ns() - first.appended_ns).max(0) / 1_000_000_000;
                self.metrics
                    .set_forward(&name, "oldest_pending_age_seconds", age as u64);
            }
            // Decode and filter.
            let mut alerts = Vec::with_capacity(records.len());
            let mut sources = Vec::with_capacity(records.len());
            let mut filtered = 0;
            for (i, rec) in records.iter().enumerate() {
                match serde_json::from_slice::<ForwardAlert>(&rec.payload) {
                    Ok(mut a) => {
                        if !self.dest.filter.accepts(&a) {
                            filtered += 1;
                            continue;
                        }
                        self.dest.redact.apply(&mut a);
                        alerts.push(a);
                        sources.push(i);
                    }
                    Err(e) => {
                        let r = rec.clone();
                        self.dead_letter(&r, &format!("not an alert record: {e}"));
                    }
                }
            }
            self.metrics.forward(&name, "filtered", filtered);
            self.state.filtered += filtered;
            if let Some(b) = bucket.as_mut() {
                let wait = b.wait_for(alerts.len());
                if Self::pause(wait, stop) {
                    break;
                }
            }
            let mut attempt = 0u32;
            let outcome = loop {
                if alerts.is_empty() {
                    break Some(Vec::new());
                }
                match self.adapter.send(&alerts) {
                    Ok(rejected) => break Some(rejected),
                    Err(retry) => {
                        self.metrics.forward(&name, "retried", alerts.len() as u64);
                        self.metrics.set_forward(&name, "up", 0);
                        self.state.retried += alerts.len() as u64;
                        if self.state.up || attempt == 0 {
                            warn!(destination = %name, kind = retry.kind, reason = %retry.reason, "delivery failed; retrying");
                        }
                        self.state.up = false;
                        self.state.last_error = Some(format!("{}: {}", retry.kind, retry.reason));
                        self.state.last_error_at = Some(now_text());
                        self.write_state(true);
                        let base = self
                            .dest
                            .min_backoff
                            .saturating_mul(1u32 << attempt.min(20))
                            .min(self.dest.max_backoff);
                        let jittered = base.mul_f64(rng.random_range(0.5..=1.0));
                        let wait = retry.after.unwrap_or(jittered);
                        attempt = attempt.saturating_add(1);
                        if Self::pause(wait, stop) {
                            break None;
                        }
                    }
                }
            };
            let Some(rejected) = outcome else {
                break;
            };
            for r in &rejected {
                if let Some(&i) = sources.get(r.index) {
                    let rec = records[i].clone();
                    self.dead_letter(&rec, &r.reason);
                }
            }
            let delivered = alerts.len() - rejected.len();
            let now = now_ns();
            for (k, a) in alerts.iter().enumerate() {
                if !rejected.iter().any(|r| r.index == k) {
                    let secs = (now - a.created_ns).max(0) as f64 / 1e9;
                    self.metrics.forward_latency(&name, secs);
                }
            }
            self.metrics.forward(&name, "delivered", delivered as u64);
            self.state.delivered += delivered as u64;
            if !alerts.is_empty() {
                if !self.state.up {
                    info!(destination = %name, "delivering");
                }
                self.state.up = true;
                self.state.last_delivery_at = Some(now_text());
                self.metrics.set_forward(&name, "up", 1);
            }
            cursor = last + 1;
            self.state.cursor = cursor;
            if let Err(e) = self.outbox.acknowledge(&name, cursor) {
                warn!(destination = %name, error = %e, "cannot write the cursor (alerts may be sent again after a restart)");
                self.metrics.error("forward", "cursor");
            }
            self.write_state(false);
        }
        self.write_state(true);
        info!(destination = %name, cursor, "delivery stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::OutboxConfig;
    use std::sync::Mutex;

    /// Fails its first call, then refuses the second alert of each batch for good.
    struct Flaky {
        calls: Arc<Mutex<Vec<Vec<String>>>>,
    }

    impl Adapter for Flaky {
        fn send(&mut self, alerts: &[ForwardAlert]) -> Result<Vec<Rejected>, Retry> {
            let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
            calls.push(alerts.iter().map(|a| a.id.clone()).collect());
            if calls.len() == 1 {
                return Err(Retry::new("down".into()));
            }
            Ok(vec![Rejected {
                index: 1,
                reason: "refused".into(),
            }])
        }
    }

    #[test]
    fn a_failed_batch_is_sent_again_and_refused_alerts_become_dead_letters() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let outbox = Arc::new(
            Outbox::open(OutboxConfig::new(dir.path().to_path_buf()), Metrics::new())
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let mut dest =
            Destination::from_url("https://127.0.0.1:9/x").unwrap_or_else(|e| panic!("{e}"));
        dest.min_backoff = Duration::from_millis(1);
        dest.filter.min_level = Some("high".into());
        outbox.cursor(&dest.name).unwrap_or_else(|e| panic!("{e}"));
        let alert = |id: &str, level: &str| {
            serde_json::to_vec(&ForwardAlert {
                id: id.into(),
                level: level.into(),
                ..Default::default()
            })
            .unwrap_or_default()
        };
        outbox
            .append(&[
                alert("a", "high"),
                alert("b", "low"),
                alert("c", "critical"),
                alert("d", "high"),
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let adapter = Box::new(Flaky {
            calls: calls.clone(),
        });
        let name = dest.name.clone();
        let mut d =
            Delivery::with_adapter(dest, "u".into(), outbox.clone(), Metrics::new(), adapter)
                .unwrap_or_else(|e| panic!("{e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || d.run(&s2));
        let until = Instant::now() + Duration::from_secs(20);
        while outbox.min_cursor() != Some(5) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Release);
        let _ = t.join();
        let calls = calls.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // The low alert is filtered out; the failed batch goes again, whole and in order.
        assert_eq!(calls, vec![vec!["a", "c", "d"], vec!["a", "c", "d"]]);
        let dead = fs::read_to_string(dead_path(dir.path(), &name)).unwrap_or_default();
        assert_eq!(dead.lines().count(), 1);
        assert!(
            dead.contains("\"id\":\"c\"") && dead.contains("refused"),
            "{dead}"
        );
        let state = read_state(dir.path(), &name).unwrap_or_default();
        assert_eq!(
            (
                state.cursor,
                state.delivered,
                state.dead,
                state.retried,
                state.filtered
            ),
            (5, 2, 1, 3, 1)
        );
    }

    #[test]
    fn the_bucket_spreads_alerts_over_time() {
        let mut b = Bucket {
            rate: 10.0,
            tokens: 10.0,
            last: Instant::now(),
        };
        assert_eq!(b.wait_for(10), Duration::ZERO);
        let w = b.wait_for(5);
        assert!(
            w > Duration::from_millis(400) && w <= Duration::from_millis(500),
            "{w:?}"
        );
    }
}
