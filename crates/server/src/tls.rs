//! TLS for every listener (rustls with the ring provider).
//!
//! The certificate and key come from `[tls] cert`/`key` (PEM files). With none configured the
//! server creates a self-signed certificate in `<data_dir>/tls/` on first start (names: the
//! configured hostname, `localhost`, `127.0.0.1`, `::1`) and reuses it afterwards. Its SHA-256
//! fingerprint is printed at start so a person can compare it with what a client shows.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("cannot write the self-signed certificate to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create a self-signed certificate: {0}")]
    Generate(String),
    #[error("the TLS certificate/key pair is not usable: {0}")]
    Config(String),
}

/// The server side of TLS: the acceptor every listener shares and what to tell people.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the leaf certificate (DER), as colon-separated upper-case hex.
    pub fingerprint: String,
    pub cert_path: PathBuf,
    /// True when the certificate was made by this server (not configured).
    pub self_signed: bool,
    /// True when it was created on this start (not reused).
    pub created: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("fingerprint", &self.fingerprint)
            .field("cert_path", &self.cert_path)
            .finish()
    }
}

impl ServerTls {
    /// One line for the start-up summary: `tls: certificate SHA256 ... (self-signed, PATH)`.
    pub fn summary(&self) -> String {
        let how = match (self.self_signed, self.created) {
            (true, true) => "self-signed, created",
            (true, false) => "self-signed",
            (false, _) => "configured",
        };
        format!(
            "tls: certificate SHA256 {} ({how}, {})",
            self.fingerprint,
            self.cert_path.display()
        )
    }
}

/// The crypto provider used everywhere (ring: no C build beyond ring's own).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 fingerprint of a DER certificate: `AB:CD:...`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Loads the configured certificate, or creates/reuses the self-signed one. Blocking.
pub fn load_or_create(config: &Config) -> Result<ServerTls, TlsError> {
    let (cert_path, key_path, self_signed, created) = match (&config.tls.cert, &config.tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), false, false),
        _ => {
            let dir = config.data_dir.join("tls");
            let cert = dir.join("cert.pem");
            let key = dir.join("key.pem");
            let created = if cert.exists() && key.exists() {
                false
            } else {
                create_self_signed(&config.hostname, &dir, &cert, &key)?;
                true
            };
            (cert, key, true, created)
        }
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let fp = fingerprint(certs[0].as_ref());
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(ServerTls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        fingerprint: fp,
        cert_path,
        self_signed,
        created,
    })
}

/// Reads every certificate of a PEM file (leaf first).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |message: String| TlsError::Read {
        what: "certificate",
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block in the file".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Read {
        what: "key",
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn create_self_signed(hostname: &str, dir: &Path, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let mut names = vec![hostname.to_string(), "localhost".to_string()];
    names.retain(|n| !n.is_empty());
    names.dedup();
    let mut params =
        rcgen::CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    for ip in ["127.0.0.1", "::1"] {
        if let Ok(ip) = ip.parse() {
            params.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
        }
    }
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "mailroom self-signed");
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86400)).into();
    params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 86400)).into();
    let pair = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let c = params
        .self_signed(&pair)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    std::fs::create_dir_all(dir)
        .and_then(|()| mailroom_store::files::private_dir(dir))
        .map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    write_private(key, pair.serialize_pem().as_bytes())?;
    std::fs::write(cert, c.pem()).map_err(|source| TlsError::Write {
        path: cert.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Writes the key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    // The mode given to open() passes through the umask and only applies to a new file:
    // set it explicitly.
    let res = opts
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| mailroom_store::files::private_file(path));
    res.map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::embedded();
        cfg.data_dir = dir.path().to_path_buf();
        cfg.hostname = "mx.example.test".into();
        let a = load_or_create(&cfg).unwrap();
        assert!(a.self_signed && a.created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("tls")), 0o700);
            assert_eq!(mode(&dir.path().join("tls/key.pem")), 0o600);
        }
        let b = load_or_create(&cfg).unwrap();
        assert!(!b.created);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        assert!(a.summary().starts_with("tls: certificate SHA256 "));
    }
}
