//! HTTPS JSON webhooks: one POST per alert, its JSON as the body.
//!
//! * `Idempotency-Key: <alert id>`: a receiver that keeps the keys it has seen drops repeats.
//! * With a signing key, a detached signature of the body: `X-Canh-Timestamp: <unix seconds>`
//!   and `X-Canh-Signature: sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>`. The
//!   receiver recomputes it, and refuses old timestamps to stop replays.
//! * 2xx and 409 (a conflict on the idempotency key: already received) are delivered; 413 and
//!   other 4xx answers reject the alert for good (dead letter); 401/403/404/408/429 and 5xx
//!   are retried.

use crate::alert::ForwardAlert;
use crate::deliver::{Adapter, Rejected, Retry};
use crate::dest::{Destination, Kind};
use crate::http::{short, Http, Verdict};

pub struct Webhook {
    url: String,
    http: Http,
    key: Option<ring::hmac::Key>,
}

/// `sha256=<hex>` of `timestamp.body`.
pub fn signature(key: &ring::hmac::Key, timestamp: i64, body: &[u8]) -> String {
    let mut ctx = ring::hmac::Context::with_key(key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let mut out = String::from("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

impl Webhook {
    pub fn new(d: &Destination) -> Result<Webhook, String> {
        let Kind::Webhook { url } = &d.kind else {
            return Err("not a webhook destination".into());
        };
        Ok(Webhook {
            url: url.clone(),
            http: Http::new(d)?,
            key: d
                .signing_key
                .as_ref()
                .map(|k| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.as_bytes())),
        })
    }
}

impl Adapter for Webhook {
    fn send(&mut self, alerts: &[ForwardAlert]) -> Result<Vec<Rejected>, Retry> {
        let mut rejected = Vec::new();
        for (i, a) in alerts.iter().enumerate() {
            let body = serde_json::to_vec(a).map_err(|e| Retry::new(e.to_string()))?;
            let mut headers = vec![
                ("Idempotency-Key", a.id.clone()),
                ("X-Canh-Alert-Id", a.id.clone()),
            ];
            if let Some(key) = &self.key {
                let ts = jiff::Timestamp::now().as_second();
                headers.push(("X-Canh-Timestamp", ts.to_string()));
                headers.push(("X-Canh-Signature", signature(key, ts, &body)));
            }
            let answer = self.http.post(
                &self.url,
                "application/json",
                "application/json",
                &headers,
                &body,
            )?;
            match answer.verdict() {
                Verdict::Delivered => {}
                _ if answer.status == 409 => {}
                Verdict::Retry => return Err(answer.retry(&self.url)),
                Verdict::TooLarge | Verdict::Rejected => rejected.push(Rejected {
                    index: i,
                    reason: format!("HTTP {}: {}", answer.status, short(&answer.body)),
                }),
            }
        }
        Ok(rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // `printf '1700000000.{}' | openssl dgst -sha256 -hmac Jefe`
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        let s = signature(&key, 1700000000, b"{}");
        assert_eq!(
            s,
            "sha256=d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207"
        );
        assert_ne!(s, signature(&key, 1700000001, b"{}"));
    }
}
