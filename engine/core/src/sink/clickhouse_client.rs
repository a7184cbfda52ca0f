//! How Canh reaches a ClickHouse server: its HTTP(S) URL, the user, and TLS (the system's
//! trusted roots plus a private CA, and a client certificate where the server asks for one).

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

/// A server and how to log in to it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://host:8123` or `https://host:8443`.
    pub url: String,
    /// The user (ClickHouse's `default` when `None`).
    pub user: Option<String>,
    pub password: Option<String>,
    /// A CA (PEM) trusted besides the system's roots, for a private CA.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key (PEM), for servers that verify clients.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A server at `url`; `https://user:password@host:8443` gives the user and password
    /// (percent-encoded), else `default` without a password. For a private CA on the command
    /// line, `SSL_CERT_FILE` adds to the system's roots.
    pub fn new(url: &str) -> Endpoint {
        let url = url.trim_end_matches('/');
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let (userinfo, host) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.contains('/') => (Some(u), h),
            _ => (None, rest),
        };
        let (user, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
            Some((u, p)) => (
                Some(canh_forward::dest::percent_decode(u)),
                (!p.is_empty()).then(|| canh_forward::dest::percent_decode(p)),
            ),
            None => (None, None),
        };
        Endpoint {
            url: format!("{scheme}://{host}"),
            user,
            password,
            ..Endpoint::default()
        }
    }

    /// A client for the server (no database chosen, validation off: 18.16 cannot send the
    /// headers validation reads).
    pub fn client(&self) -> Result<clickhouse::Client, String> {
        // ClickHouse closes idle connections after 3 s: reuse them for less than that.
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(2))
            .build(connector(self)?);
        let mut client = clickhouse::Client::with_http_client(http)
            .with_url(&self.url)
            .with_validation(false);
        if let Some(u) = &self.user {
            client = client.with_user(u);
        }
        if let Some(p) = &self.password {
            client = client.with_password(p);
        }
        Ok(client)
    }
}

/// A connector for `http://` and `https://` URLs, with rustls (ring).
fn connector(e: &Endpoint) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, String> {
    let tls = canh_forward::tls::client_config(&canh_forward::tls::TlsFiles {
        ca_file: e.ca_file.clone(),
        client_cert: e.client_cert.clone(),
        client_key: e.client_key.clone(),
    })?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_keepalive(Some(Duration::from_secs(60)));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_the_user_and_password() {
        let e = Endpoint::new("https://canh:p%40ss:w@ch.example:8443/");
        assert_eq!(e.url, "https://ch.example:8443");
        assert_eq!(e.user.as_deref(), Some("canh"));
        assert_eq!(e.password.as_deref(), Some("p@ss:w"));
        let e = Endpoint::new("http://127.0.0.1:8123");
        assert_eq!(
            (e.url.as_str(), e.user, e.password),
            ("http://127.0.0.1:8123", None, None)
        );
        assert!(format!("{:?}", Endpoint::new("http://u:secret@h"))
            .find("secret")
            .is_none());
    }
}
