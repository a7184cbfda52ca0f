//! TAXII 2.1 destinations: alerts as STIX 2.1 objects added to a collection.
//!
//! * First the server's discovery resource (`/taxii2/`: a warning when it does not list the API
//!   root; servers without one are fine), the API root (`max_content_length`) and the collection
//!   (`can_write`) are read; a collection that does not exist or cannot be written is retried,
//!   as a configuration to fix.
//! * Alerts go in envelopes (`POST …/collections/ID/objects/`) no larger than the server's
//!   `max_content_length`; an alert whose objects alone are larger is a dead letter. A 413
//!   answer halves the envelope; 400/422 answers are narrowed down by halving to the alert
//!   the server refuses, which alone is a dead letter.
//! * The answer is a status resource; while it is `pending`, it is polled.
//! * A failure in the status for an object the collection already holds at the same version
//!   ("we already have this object": medallion answers so for repeats) counts as delivered:
//!   each failed object is looked up in the collection before an alert is given up on.
//! * Objects shared by many alerts (the identities, the marking, indicators, observables) are
//!   sent once and then remembered, as long as the process runs.
//! * 401/403, 429 (with `Retry-After`) and 5xx are retried with backoff.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::warn;

use crate::alert::ForwardAlert;
use crate::deliver::{Adapter, Rejected, Retry};
use crate::dest::{Destination, Kind};
use crate::http::{short, Http, Verdict};
use crate::stix::{AlertObjects, Stix};

pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

pub struct Taxii {
    http: Http,
    /// `https://host`.
    base: String,
    /// `https://host/api-root/`.
    api_root: String,
    collection: String,
    stix: Stix,
    /// From the API root, once it has been read.
    max_content_length: Option<usize>,
    /// `id|modified` of objects the collection is known to hold.
    known: HashSet<String>,
    timeout: Duration,
}

fn version_key(o: &Value) -> String {
    format!(
        "{}|{}",
        o.get("id").and_then(Value::as_str).unwrap_or(""),
        o.get("modified").and_then(Value::as_str).unwrap_or("")
    )
}

fn parse(body: &str, what: &str) -> Result<Value, Retry> {
    serde_json::from_str(body)
        .map_err(|e| Retry::new(format!("{what}: not JSON ({e}): {}", short(body))))
}

enum Posted {
    Done(Vec<Rejected>),
    TooLarge,
    Refused(String),
}

impl Taxii {
    pub fn new(d: &Destination) -> Result<Taxii, String> {
        let Kind::Taxii {
            base,
            api_root,
            collection,
        } = &d.kind
        else {
            return Err("not a TAXII destination".into());
        };
        Ok(Taxii {
            http: Http::new(d)?,
            base: base.clone(),
            api_root: format!("{base}{api_root}"),
            collection: collection.clone(),
            stix: Stix::new(&d.identity, d.tlp),
            max_content_length: None,
            known: HashSet::new(),
            timeout: d.timeout,
        })
    }

    fn collection_url(&self) -> String {
        format!("{}collections/{}/", self.api_root, self.collection)
    }

    /// Reads the API root and the collection.
    fn discover(&mut self) -> Result<usize, Retry> {
        if let Some(n) = self.max_content_length {
            return Ok(n);
        }
        let url = format!("{}/taxii2/", self.base);
        let a = self.http.get(&url, MEDIA_TYPE)?;
        match a.status {
            200 => {
                let d = parse(&a.body, &url)?;
                let listed = d
                    .get("api_roots")
                    .and_then(Value::as_array)
                    .is_some_and(|roots| {
                        roots.iter().filter_map(Value::as_str).any(|r| {
                            r.trim_end_matches('/') == self.api_root.trim_end_matches('/')
                                || self.api_root.ends_with(r)
                        })
                    });
                if !listed {
                    warn!(
                        api_root = %self.api_root,
                        "the TAXII server's discovery resource does not list this API root"
                    );
                }
            }
            404 => {}
            _ if a.verdict() == Verdict::Retry => return Err(a.retry(&url)),
            _ => {}
        }
        let a = self.http.get(&self.api_root, MEDIA_TYPE)?;
        if a.verdict() != Verdict::Delivered {
            return Err(a.retry(&self.api_root));
        }
        let info = parse(&a.body, &self.api_root)?;
        let max = info
            .get("max_content_length")
            .and_then(Value::as_u64)
            .map_or(10 << 20, |n| n as usize);
        let url = self.collection_url();
        let a = self.http.get(&url, MEDIA_TYPE)?;
        if a.verdict() != Verdict::Delivered {
            return Err(a.retry(&url));
        }
        let c = parse(&a.body, &url)?;
        if c.get("can_write").and_then(Value::as_bool) != Some(true) {
            let mut r = Retry::new(format!(
                "{url}: the collection does not let this account write (can_write is not true)"
            ));
            r.kind = "auth";
            return Err(r);
        }
        self.max_content_length = Some(max);
        Ok(max)
    }

    /// Whether the collection holds this object at this version.
    fn holds(&self, id: &str, modified: Option<&str>) -> Result<bool, Retry> {
        let url = format!("{}objects/{id}/?match[version]=all", self.collection_url());
        let a = self.http.get(&url, MEDIA_TYPE)?;
        match a.status {
            200 => {
                let v = parse(&a.body, &url)?;
                let objects = v.get("objects").and_then(Value::as_array);
                Ok(objects.is_some_and(|objs| {
                    objs.iter().any(|o| {
                        modified.is_none() || o.get("modified").and_then(Value::as_str) == modified
                    })
                }))
            }
            404 => Ok(false),
            _ => Err(a.retry(&url)),
        }
    }

    /// Waits for a status resource to complete.
    fn complete(&self, mut status: Value) -> Result<Value, Retry> {
        let deadline = Instant::now() + self.timeout * 4;
        let mut pause = Duration::from_millis(100);
        while status.get("status").and_then(Value::as_str) == Some("pending") {
            if Instant::now() > deadline {
                return Err(Retry::new(format!(
                    "the TAXII server's status {} stayed pending",
                    status.get("id").and_then(Value::as_str).unwrap_or("?")
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
            let id = status.get("id").and_then(Value::as_str).unwrap_or("");
            let url = format!("{}status/{id}/", self.api_root);
            let a = self.http.get(&url, MEDIA_TYPE)?;
            if a.verdict() != Verdict::Delivered {
                return Err(a.retry(&url));
            }
            status = parse(&a.body, &url)?;
        }
        Ok(status)
    }

    /// The envelope of some alerts: the objects not yet known to be on the server.
    fn envelope(&self, alerts: &[(usize, &AlertObjects)]) -> (Vec<u8>, Vec<Value>) {
        let mut seen = HashSet::new();
        let mut objects = Vec::new();
        let common = self.stix.common();
        let all = common.iter().chain(
            alerts
                .iter()
                .flat_map(|(_, o)| o.shared.iter().chain(&o.own)),
        );
        for o in all {
            let key = version_key(o);
            if self.known.contains(&key) || !seen.insert(key) {
                continue;
            }
            objects.push(o.clone());
        }
        let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap_or_default();
        (body, objects)
    }

    fn post(&mut self, alerts: &[(usize, &AlertObjects)]) -> Result<Posted, Retry> {
        let (body, objects) = self.envelope(alerts);
        if objects.is_empty() {
            return Ok(Posted::Done(Vec::new()));
        }
        if body.len() > self.max_content_length.unwrap_or(usize::MAX) {
            return Ok(Posted::TooLarge);
        }
        let url = format!("{}objects/", self.collection_url());
        let a = self.http.post(&url, MEDIA_TYPE, MEDIA_TYPE, &[], &body)?;
        match a.verdict() {
            Verdict::Delivered => {}
            Verdict::TooLarge => return Ok(Posted::TooLarge),
            Verdict::Retry => return Err(a.retry(&url)),
            Verdict::Rejected => {
                return Ok(Posted::Refused(format!(
                    "HTTP {}: {}",
                    a.status,
                    short(&a.body)
                )))
            }
        }
        let status = self.complete(parse(&a.body, &url)?)?;
        let mut failed: Vec<(String, String)> = Vec::new();
        for f in status
            .get("failures")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = f.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
            let message = f
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("refused")
                .to_owned();
            failed.push((id, message));
        }
        let mut refused: Vec<(String, String)> = Vec::new();
        for (id, message) in failed {
            let ours = objects
                .iter()
                .find(|o| o.get("id").and_then(Value::as_str) == Some(id.as_str()));
            let modified = ours.and_then(|o| o.get("modified").and_then(Value::as_str));
            if !self.holds(&id, modified)? {
                refused.push((id, message));
            }
        }
        let mut rejected = Vec::new();
        for (i, o) in alerts {
            let mine = |id: &str| {
                o.shared
                    .iter()
                    .chain(&o.own)
                    .any(|v| v.get("id").and_then(Value::as_str) == Some(id))
            };
            if let Some((id, m)) = refused.iter().find(|(id, _)| mine(id)) {
                rejected.push(Rejected {
                    index: *i,
                    reason: format!("the TAXII server refused {id}: {m}"),
                });
            }
        }
        if self.known.len() > 200_000 {
            self.known.clear();
        }
        for o in &objects {
            let id = o.get("id").and_then(Value::as_str).unwrap_or("");
            if !refused.iter().any(|(r, _)| r == id) {
                self.known.insert(version_key(o));
            }
        }
        Ok(Posted::Done(rejected))
    }

    /// Delivers some alerts, halving the envelope where the server asks for less.
    fn deliver(&mut self, alerts: &[(usize, &AlertObjects)]) -> Result<Vec<Rejected>, Retry> {
        match self.post(alerts)? {
            Posted::Done(r) => Ok(r),
            Posted::TooLarge if alerts.len() == 1 => Ok(vec![Rejected {
                index: alerts[0].0,
                reason: format!(
                    "the alert's STIX objects are larger than the TAXII server accepts \
                     (max_content_length {})",
                    self.max_content_length.unwrap_or(0)
                ),
            }]),
            Posted::Refused(reason) if alerts.len() == 1 => Ok(vec![Rejected {
                index: alerts[0].0,
                reason,
            }]),
            Posted::TooLarge | Posted::Refused(_) => {
                let (a, b) = alerts.split_at(alerts.len() / 2);
                let mut r = self.deliver(a)?;
                r.extend(self.deliver(b)?);
                Ok(r)
            }
        }
    }
}

impl Adapter for Taxii {
    fn send(&mut self, alerts: &[ForwardAlert]) -> Result<Vec<Rejected>, Retry> {
        let result = self.discover().and_then(|_| {
            let objects: Vec<AlertObjects> = alerts.iter().map(|a| self.stix.alert(a)).collect();
            let indexed: Vec<(usize, &AlertObjects)> = objects.iter().enumerate().collect();
            self.deliver(&indexed)
        });
        if result.is_err() {
            // Read the API root again next time, and send the shared objects again: the
            // server may have been replaced and have lost them.
            self.max_content_length = None;
            self.known.clear();
        }
        result
    }
}
