//! TLS for destinations: the system's trusted roots plus an optional private CA, and a client
//! certificate for servers that verify clients (mutual TLS). rustls with ring.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The files of a TLS client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// A CA (PEM) trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key (PEM).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// The system's roots and the private CA, as DER.
fn root_ders(files: &TlsFiles) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut out = rustls_native_certs::load_native_certs().certs;
    if let Some(ca) = &files.ca_file {
        out.extend(certificates(ca)?);
    }
    Ok(out)
}

fn client_auth(
    files: &TlsFiles,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
    match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key)) => {
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|err| format!("{}: {err}", key.display()))?;
            Ok(Some((certificates(cert)?, key)))
        }
        (None, None) => Ok(None),
        _ => Err("a client certificate needs both the certificate and its key".into()),
    }
}

/// A rustls client configuration (for syslog over TLS).
pub fn client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in root_ders(files)? {
        // A system root that rustls cannot use is skipped, as browsers do; the private CA
        // is checked for that when it is read.
        let _ = roots.add(cert);
    }
    if let Some(ca) = &files.ca_file {
        for cert in certificates(ca)? {
            roots
                .add(cert)
                .map_err(|err| format!("{}: {err}", ca.display()))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| err.to_string())?
    .with_root_certificates(roots);
    let config = match client_auth(files)? {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|err| format!("client certificate: {err}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The same trust and client certificate for the HTTPS client.
pub fn ureq_config(files: &TlsFiles) -> Result<ureq::tls::TlsConfig, String> {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let roots: Vec<Certificate<'static>> = root_ders(files)?
        .iter()
        .map(|d| Certificate::from_der(d.as_ref()).to_owned())
        .collect();
    let mut config = TlsConfig::builder().root_certs(RootCerts::new_with_certs(&roots));
    if let Some((chain, _)) = client_auth(files)? {
        let chain: Vec<Certificate<'static>> = chain
            .iter()
            .map(|d| Certificate::from_der(d.as_ref()).to_owned())
            .collect();
        let key_path = files.client_key.as_deref().unwrap_or(Path::new(""));
        let pem = std::fs::read(key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
        let key = PrivateKey::from_pem(&pem)
            .map_err(|e| format!("{}: {e}", key_path.display()))?
            .to_owned();
        config = config.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(config.build())
}
