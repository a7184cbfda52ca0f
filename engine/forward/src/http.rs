//! The HTTPS client of TAXII and webhook destinations, and what an answer means for delivery.

use std::time::Duration;

use crate::deliver::Retry;
use crate::dest::Destination;

/// An HTTP(S) client with the destination's TLS and credentials.
pub struct Http {
    agent: ureq::Agent,
    authorization: Option<String>,
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

/// What an answer means for the alerts sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again later (after the server's `Retry-After` where it gave one).
    Retry,
    /// The request is too large for the server (413).
    TooLarge,
    /// The server refuses this content for good.
    Rejected,
}

impl Answer {
    /// The usual meaning of an HTTP status for a delivery. 401/403 are retried: they mean the
    /// configuration is wrong, which an operator fixes, not that the alerts are bad.
    pub fn verdict(&self) -> Verdict {
        match self.status {
            200..=299 => Verdict::Delivered,
            413 => Verdict::TooLarge,
            401 | 403 | 404 | 408 | 425 | 429 | 500..=599 => Verdict::Retry,
            _ => Verdict::Rejected,
        }
    }

    /// A retry for this answer.
    pub fn retry(&self, what: &str) -> Retry {
        let hint = match self.status {
            401 => ": authentication refused, check the user and password or token",
            403 => ": not allowed, check the account's permissions on the collection",
            404 => ": not found, check the URL",
            429 => ": rate limited by the server",
            _ => "",
        };
        let mut r = Retry::new(format!(
            "{what}: HTTP {}{hint} {}",
            self.status,
            short(&self.body)
        ));
        r.after = self.retry_after;
        r.kind = match self.status {
            401 | 403 => "auth",
            429 => "throttled",
            500..=599 => "server",
            _ => "http",
        };
        r
    }
}

/// The first line of a body, shortened, for messages.
pub fn short(body: &str) -> String {
    let line = body.lines().next().unwrap_or("").trim();
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(T[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Retry-After` in seconds (an HTTP date is taken as "a while": 5 s).
fn retry_after(v: Option<&str>) -> Option<Duration> {
    let v = v?.trim();
    Some(match v.parse::<u64>() {
        Ok(s) => Duration::from_secs(s.min(3600)),
        Err(_) => Duration::from_secs(5),
    })
}

impl Http {
    pub fn new(d: &Destination) -> Result<Http, String> {
        let tls = crate::tls::ureq_config(&d.tls)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(d.timeout))
            .tls_config(tls)
            .user_agent(concat!("canh/", env!("CARGO_PKG_VERSION")))
            .build();
        let authorization = match (&d.token, &d.user) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, Some(u)) => Some(format!(
                "Basic {}",
                base64(format!("{u}:{}", d.password.as_deref().unwrap_or("")).as_bytes())
            )),
            (None, None) => None,
        };
        Ok(Http {
            agent: ureq::Agent::new_with_config(config),
            authorization,
        })
    }

    fn answer(
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Result<Answer, Retry> {
        let mut r = r.map_err(|e| {
            let mut retry = Retry::new(format!("{what}: {e}"));
            retry.kind = "network";
            retry
        })?;
        let status = r.status().as_u16();
        let after = retry_after(r.headers().get("retry-after").and_then(|v| v.to_str().ok()));
        let body = r
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_default();
        Ok(Answer {
            status,
            retry_after: after,
            body,
        })
    }

    pub fn get(&self, url: &str, accept: &str) -> Result<Answer, Retry> {
        let mut req = self.agent.get(url).header("Accept", accept);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        Self::answer(req.call(), url)
    }

    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        accept: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Answer, Retry> {
        let mut req = self
            .agent
            .post(url)
            .header("Content-Type", content_type)
            .header("Accept", accept);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        Self::answer(req.send(body), url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Answer {
        Answer {
            status,
            retry_after: super::retry_after(retry_after),
            body: "{\"title\": \"x\"}\nmore".into(),
        }
    }

    #[test]
    fn statuses_mean_delivered_retry_or_rejected() {
        assert_eq!(answer(202, None).verdict(), Verdict::Delivered);
        assert_eq!(answer(413, None).verdict(), Verdict::TooLarge);
        assert_eq!(answer(422, None).verdict(), Verdict::Rejected);
        for s in [401, 403, 404, 408, 429, 500, 502, 503] {
            assert_eq!(answer(s, None).verdict(), Verdict::Retry, "{s}");
        }
        let r = answer(429, Some("7")).retry("u");
        assert_eq!(
            (r.kind, r.after),
            ("throttled", Some(Duration::from_secs(7)))
        );
        assert!(
            r.reason.starts_with("u: HTTP 429: rate limited"),
            "{}",
            r.reason
        );
        let r = answer(503, Some("Wed, 21 Oct 2015 07:28:00 GMT")).retry("u");
        assert_eq!((r.kind, r.after), ("server", Some(Duration::from_secs(5))));
        assert_eq!(answer(401, None).retry("u").kind, "auth");
    }

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }
}
