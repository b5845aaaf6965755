//! Client-side TLS (rustls, ring provider): STARTTLS/STLS upgrades and implicit TLS.
//!
//! Verification is on by default, against the Mozilla roots compiled in (webpki-roots), or
//! against the certificates of a given PEM file (`--ca FILE`, e.g. a server's self-signed
//! certificate). [`ClientTls::insecure`] accepts any certificate: for throwaway dev setups and
//! for opportunistic STARTTLS between mail servers (RFC 3207 §4.1 / RFC 7435), where
//! encryption without authentication still beats clear text.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read CA certificates from {path}: {message}")]
    Ca { path: String, message: String },
    #[error("TLS setup: {0}")]
    Rustls(String),
}

/// How a client does TLS: the connector and whether it verifies the server.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    verify: bool,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("verify", &self.verify)
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ClientTls {
    /// Verifies the server against the built-in Mozilla root certificates.
    pub fn webpki_roots() -> Result<ClientTls, TlsSetupError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::with_roots(roots)
    }

    /// Verifies the server against the certificates in a PEM file only (a private CA, or the
    /// server's own self-signed certificate).
    pub fn with_ca_file(path: &Path) -> Result<ClientTls, TlsSetupError> {
        let err = |message: String| TlsSetupError::Ca {
            path: path.display().to_string(),
            message,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no CERTIFICATE block in the file".into()));
        }
        let mut roots = rustls::RootCertStore::empty();
        for c in certs {
            roots.add(c).map_err(|e| err(e.to_string()))?;
        }
        Self::with_roots(roots)
    }

    fn with_roots(roots: rustls::RootCertStore) -> Result<ClientTls, TlsSetupError> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            verify: true,
        })
    }

    /// Accepts any certificate (encryption without authentication).
    pub fn insecure() -> ClientTls {
        let provider = provider();
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth();
        ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            verify: false,
        }
    }

    /// True when the server's certificate is checked.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    pub(crate) fn connector(&self) -> &TlsConnector {
        &self.connector
    }
}

/// The server name to check the certificate against: the host part of "host:port".
pub(crate) fn server_name(server: &str) -> Option<ServerName<'static>> {
    let host = match server.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => server,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).ok()
}

/// A verifier that accepts every certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(server_name("127.0.0.1:24025").is_some());
        assert!(server_name("[::1]:25").is_some());
        assert!(server_name("mx.example.test:25").is_some());
        assert!(ClientTls::webpki_roots().unwrap().verifies());
        assert!(!ClientTls::insecure().verifies());
    }
}
