//! A destination: where alerts go, how to log in, and what it receives.

use std::time::Duration;

use crate::alert::{Filter, Redact};
use crate::tls::TlsFiles;

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    Udp,
    Tcp,
    Tls,
}

/// The wire protocol of a destination, from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `taxii+https://host/api-root/collections/ID/`: `base` is `https://host`, `api_root` the
    /// path of the API root with its trailing `/`.
    Taxii {
        base: String,
        api_root: String,
        collection: String,
    },
    /// `syslog+tls://host:6514` (also `+tcp`, `+udp`): CEF in RFC 5424 messages.
    Syslog {
        transport: SyslogTransport,
        host: String,
        port: u16,
    },
    /// `https://…` (or `http://`): one JSON alert per POST.
    Webhook { url: String },
}

/// STIX/TLP marking of what a TAXII destination receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tlp {
    White,
    Green,
    Amber,
    Red,
}

impl Tlp {
    pub fn parse(s: &str) -> Option<Tlp> {
        match s.to_ascii_lowercase().trim_start_matches("tlp:") {
            "white" | "clear" => Some(Tlp::White),
            "green" => Some(Tlp::Green),
            "amber" => Some(Tlp::Amber),
            "red" => Some(Tlp::Red),
            _ => None,
        }
    }
}

/// One configured destination.
#[derive(Clone, PartialEq)]
pub struct Destination {
    /// Names the cursor, the metrics and the dead-letter file: letters, digits, `-`, `_`, `.`.
    pub name: String,
    pub kind: Kind,
    /// Basic authentication (from the URL's user info or the config).
    pub user: Option<String>,
    pub password: Option<String>,
    /// Bearer token (instead of basic authentication).
    pub token: Option<String>,
    pub tls: TlsFiles,
    pub filter: Filter,
    pub redact: Redact,
    /// At most this many alerts per second (`None`: no limit).
    pub rate: Option<f64>,
    /// Alerts handed to the destination at once (one TAXII envelope, one syslog write).
    pub batch: usize,
    /// The first retry waits `min_backoff`, each further one twice as long up to this.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Per request (connect, send, answer).
    pub timeout: Duration,
    /// TAXII: the name of the identity that creates the objects (the province's SOC).
    pub identity: String,
    pub tlp: Tlp,
    /// Syslog: the HOSTNAME field (default: this machine's name).
    pub hostname: Option<String>,
    /// Webhook: HMAC-SHA256 key of the detached signature (`X-Canh-Signature`).
    pub signing_key: Option<String>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

/// What a URL says: the protocol, and a user and password from its user info.
pub fn parse_url(url: &str) -> Result<(Kind, Option<String>, Option<String>), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?}: expected scheme://host…"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if host_port.is_empty() {
        return Err(format!("{}: no host", redacted(url)));
    }
    let (user, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some((u, p)) => (
            Some(percent_decode(u)),
            (!p.is_empty()).then(|| percent_decode(p)),
        ),
        None => (None, None),
    };
    let kind = match scheme.to_ascii_lowercase().as_str() {
        s @ ("taxii+https" | "taxii+http") => {
            let http = &s["taxii+".len()..];
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            let n = parts.len();
            if n < 3 || parts[n - 2] != "collections" || parts[n - 1].is_empty() {
                return Err(format!(
                    "{}: a TAXII destination is the collection's URL: \
                     taxii+https://host/API-ROOT/collections/ID/",
                    redacted(url)
                ));
            }
            Kind::Taxii {
                base: format!("{http}://{host_port}"),
                api_root: format!("/{}/", parts[..n - 2].join("/")),
                collection: parts[n - 1].to_owned(),
            }
        }
        s @ ("syslog+tls" | "syslog+tcp" | "syslog+udp") => {
            let transport = match s {
                "syslog+tls" => SyslogTransport::Tls,
                "syslog+tcp" => SyslogTransport::Tcp,
                _ => SyslogTransport::Udp,
            };
            let (host, port) = split_host_port(host_port).ok_or_else(|| {
                format!("{}: a syslog destination needs host:port", redacted(url))
            })?;
            if !path.trim_matches('/').is_empty() {
                return Err(format!(
                    "{}: a syslog destination has no path",
                    redacted(url)
                ));
            }
            Kind::Syslog {
                transport,
                host,
                port,
            }
        }
        "https" | "http" => Kind::Webhook {
            url: format!("{scheme}://{host_port}{path}"),
        },
        other => {
            return Err(format!(
                "{}: unknown scheme {other:?} (taxii+https, taxii+http, syslog+tls, syslog+tcp, \
                 syslog+udp, https, http)",
                redacted(url)
            ))
        }
    };
    Ok((kind, user, password))
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

/// A URL with its password replaced, for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:…@{host}{}", &rest[end..])
        }
        None => url.to_owned(),
    }
}

/// A name for a destination given only by its URL: scheme, host and port.
pub fn default_name(url: &str) -> String {
    let without_user = match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            let host = rest[..end]
                .rsplit_once('@')
                .map_or(&rest[..end], |(_, h)| h);
            format!("{scheme}-{host}")
        }
        None => url.to_owned(),
    };
    without_user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Whether a destination name is usable as a file name and a metric label.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// `%XX` escapes of a URL's user info decoded (invalid escapes stay as they are).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Destination {
    /// A destination from its URL alone, with the defaults.
    pub fn from_url(url: &str) -> Result<Destination, String> {
        let (kind, user, password) = parse_url(url)?;
        Ok(Destination {
            name: default_name(url),
            kind,
            user,
            password,
            token: None,
            tls: TlsFiles::default(),
            filter: Filter::default(),
            redact: Redact::default(),
            rate: None,
            batch: 100,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
            identity: "Canh SOC".into(),
            tlp: Tlp::Amber,
            hostname: None,
            signing_key: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_protocol_and_the_login() {
        let (k, u, p) = parse_url("taxii+https://soc:s%40cret@taxii.example:8443/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            k,
            Kind::Taxii {
                base: "https://taxii.example:8443".into(),
                api_root: "/api1/".into(),
                collection: "91a7b528-80eb-42ed-a74d-c6fbd5a26116".into()
            }
        );
        assert_eq!((u.as_deref(), p.as_deref()), (Some("soc"), Some("s@cret")));
        let (k, ..) = parse_url("syslog+tls://[::1]:6514").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            k,
            Kind::Syslog {
                transport: SyslogTransport::Tls,
                host: "::1".into(),
                port: 6514
            }
        );
        assert!(parse_url("taxii+https://h/api1/").is_err());
        assert!(parse_url("syslog+tcp://host").is_err());
        assert!(parse_url("ftp://h/").is_err());
        let e = parse_url("gopher://u:hunter2@h/").err().unwrap_or_default();
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(
            default_name("taxii+https://u:p@127.0.0.1:5000/a/collections/x/"),
            "taxii-https-127.0.0.1-5000"
        );
        assert!(valid_name(&default_name("syslog+tls://[::1]:6514")));
    }
}
