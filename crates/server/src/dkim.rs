//! DKIM signing (RFC 6376, RFC 8463): the keys of each domain and the signature added to mail
//! submitted by authenticated users that leaves this server, and to bounces.
//!
//! Keys come from `[[dkim.key]]` entries, or are made on first use for a local domain (at
//! start for the domains known then, like the self-signed certificate) and kept in
//! `DATA_DIR/dkim/DOMAIN/SELECTOR.pem` (PKCS#8 PEM, mode 0600): an ed25519 key (selector
//! `mailroom-ed25519`) and a 2048-bit RSA key (`mailroom-rsa`) by default. Each message gets
//! one signature per key: receivers that do not know ed25519 ignore that signature (RFC 8463
//! §5 asks them to) and check the RSA one.
//!
//! Signatures use relaxed/relaxed canonicalisation (RFC 6376 §3.4.2, §3.4.4: they survive the
//! header re-folding and trailing-space changes of relays) and oversign From (the name is
//! listed once more than it occurs, RFC 6376 §8.15), so a second From added later breaks the
//! signature. The cryptography and the header's format are `mail-auth`'s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};

use crate::config::{DkimAlgorithm, DkimConfig};

/// The header fields signed (RFC 6376 §5.4.1's list of those that matter to a reader);
/// From twice: oversigned.
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
];

/// RSA key size of generated keys: RFC 8301 §3.2 requires at least 1024 and recommends 2048;
/// 2048 still fits one TXT record.
const RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("cannot read the DKIM key {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write the DKIM key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make a DKIM key: {0}")]
    Generate(String),
    #[error("DKIM signing failed: {0}")]
    Sign(String),
}

enum Signer {
    Ed25519(DkimSigner<Ed25519Key, Done>),
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
}

/// One signing key of a domain.
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// The `p=` value of the DNS record: base64 of the raw ed25519 key (RFC 8463 §4.2) or of
    /// the RSA key's SubjectPublicKeyInfo (RFC 6376 §3.6.1, as everyone publishes it).
    pub public_key: String,
    /// Where the private key is.
    pub path: PathBuf,
    signer: Signer,
}

impl DkimKey {
    /// The TXT record to publish at `SELECTOR._domainkey.DOMAIN` (RFC 6376 §3.6.1).
    pub fn dns_record(&self) -> String {
        let k = match self.algorithm {
            DkimAlgorithm::Ed25519 => "ed25519",
            DkimAlgorithm::Rsa => "rsa",
        };
        format!("v=DKIM1; k={k}; p={}", self.public_key)
    }

    /// The name the record is published at.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    fn sign(&self, parts: &[&[u8]]) -> Result<String, DkimError> {
        let sig = match &self.signer {
            Signer::Ed25519(s) => s.sign_chained(parts.iter().copied()),
            Signer::Rsa(s) => s.sign_chained(parts.iter().copied()),
        };
        sig.map(|s| s.to_header())
            .map_err(|e| DkimError::Sign(e.to_string()))
    }
}

/// The selector of a generated key.
pub fn generated_selector(algorithm: DkimAlgorithm) -> &'static str {
    match algorithm {
        DkimAlgorithm::Ed25519 => "mailroom-ed25519",
        DkimAlgorithm::Rsa => "mailroom-rsa",
    }
}

/// The keys of every domain, loaded (or made) once and kept.
pub struct DkimKeys {
    dir: PathBuf,
    config: DkimConfig,
    keys: Mutex<HashMap<String, Arc<Vec<DkimKey>>>>,
}

impl DkimKeys {
    pub fn new(data_dir: &Path, config: &DkimConfig) -> DkimKeys {
        DkimKeys {
            dir: data_dir.join("dkim"),
            config: config.clone(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Is signing switched on?
    pub fn enabled(&self) -> bool {
        self.config.sign
    }

    /// The keys of `domain` (blocking: may read files or make keys): the configured ones
    /// when `[[dkim.key]]` names the domain, else the generated ones, made now if missing.
    pub fn keys_for(&self, domain: &str) -> Result<Arc<Vec<DkimKey>>, DkimError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        // Held while loading, so two sessions never make the same key twice.
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = keys.get(&domain) {
            return Ok(k.clone());
        }
        let configured: Vec<_> = self
            .config
            .key
            .iter()
            .filter(|k| k.domain.eq_ignore_ascii_case(&domain))
            .collect();
        let mut list = Vec::new();
        if configured.is_empty() {
            for &alg in &self.config.algorithms {
                let dir = self.dir.join(&domain);
                let path = dir.join(format!("{}.pem", generated_selector(alg)));
                if !path.exists() {
                    create_key(&dir, &path, alg)?;
                    tracing::info!(%domain, path = %path.display(), "made a DKIM key; publish its record (`mailroom dns {domain}`)");
                }
                list.push(load_key(&domain, generated_selector(alg), alg, &path)?);
            }
        } else {
            for k in configured {
                list.push(load_key(&domain, &k.selector, k.algorithm, &k.file)?);
            }
        }
        let list = Arc::new(list);
        keys.insert(domain, list.clone());
        Ok(list)
    }

    /// DKIM-Signature header fields for a message given in parts (prefix, body), one per key
    /// of `domain`, ready to be put in front of it.
    pub fn sign(&self, domain: &str, parts: &[&[u8]]) -> Result<String, DkimError> {
        let keys = self.keys_for(domain)?;
        let mut out = String::new();
        for k in keys.iter() {
            out.push_str(&k.sign(parts)?);
        }
        Ok(out)
    }
}

/// The domain whose keys sign mail with `from_domain` in From: the local domain itself, or
/// the nearest local domain it lies under (relaxed alignment, RFC 7489 §3.1.1: mail from
/// `MAILER-DAEMON@mx.example.test` signed by `example.test` aligns). None: not ours to sign.
pub fn signing_domain(from_domain: &str, is_local: impl Fn(&str) -> bool) -> Option<String> {
    let d = from_domain.trim_end_matches('.').to_ascii_lowercase();
    let mut rest = d.as_str();
    loop {
        // A bare top-level label is never a signing domain.
        if !rest.contains('.') {
            return None;
        }
        if is_local(rest) {
            return Some(rest.to_string());
        }
        rest = rest.split_once('.')?.1;
    }
}

/// The domain of the (first) From address in a message's header section, if any.
pub fn from_domain(parts: &[&[u8]]) -> Option<String> {
    let mut joined = Vec::new();
    for p in parts {
        joined.extend_from_slice(p);
        if joined.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let parsed = mail_parser::MessageParser::new()
        .parse_headers(&joined)
        .or_else(|| mail_parser::MessageParser::new().parse(&joined))?;
    let addr = parsed.from()?.first()?.address()?.to_string();
    let (_, domain) = addr.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

fn create_key(dir: &Path, path: &Path, alg: DkimAlgorithm) -> Result<(), DkimError> {
    let pem = match alg {
        DkimAlgorithm::Ed25519 => {
            let der =
                Ed25519Key::generate_pkcs8().map_err(|e| DkimError::Generate(e.to_string()))?;
            pem_encode("PRIVATE KEY", &der)
        }
        DkimAlgorithm::Rsa => {
            let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), RSA_BITS)
                .map_err(|e| DkimError::Generate(e.to_string()))?;
            key.to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| DkimError::Generate(e.to_string()))?
                .to_string()
        }
    };
    std::fs::create_dir_all(dir)
        .and_then(|()| mailroom_store::files::private_dir(dir))
        .and_then(|()| {
            if let Some(parent) = dir.parent() {
                mailroom_store::files::private_dir(parent)?;
            }
            Ok(())
        })
        .map_err(|source| DkimError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    write_private(path, pem.as_bytes())
}

/// Creates the key file unless it exists: written under a temporary name, then linked to
/// its name (which fails if another process, `mailroom dns` beside a running server, made it
/// first; its key is then the one used). A crash never leaves half a key.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DkimError> {
    use std::io::Write;
    let tmp = path.with_extension(format!(
        "tmp{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let res = opts
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        // The mode given to open() passes through the umask: set it explicitly.
        .and_then(|()| mailroom_store::files::private_file(&tmp))
        .and_then(|()| match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        });
    let _ = std::fs::remove_file(&tmp);
    res.map_err(|source| DkimError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn load_key(
    domain: &str,
    selector: &str,
    alg: DkimAlgorithm,
    path: &Path,
) -> Result<DkimKey, DkimError> {
    use rustls_pki_types::pem::PemObject;
    let bad = |message: String| DkimError::Read {
        path: path.to_path_buf(),
        message,
    };
    let pem = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let (signer, public_key) = match alg {
        DkimAlgorithm::Ed25519 => {
            let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| bad(format!("not a PKCS#8 PEM ed25519 key ({e})")))?;
            let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_pkcs8_der())
                .map_err(|e| bad(format!("not an ed25519 key ({e})")))?;
            let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
            let signer = DkimSigner::from_key(key)
                .domain(domain)
                .selector(selector)
                .headers(SIGNED_HEADERS.iter().copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed);
            (Signer::Ed25519(signer), public)
        }
        DkimAlgorithm::Rsa => {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem))
                .map_err(|e| bad(format!("not a PKCS#8 or PKCS#1 PEM RSA key ({e})")))?;
            let spki = rsa::RsaPublicKey::from(&key)
                .to_public_key_der()
                .map_err(|e| bad(e.to_string()))?;
            let pkcs8 = key.to_pkcs8_der().map_err(|e| bad(e.to_string()))?;
            let ring_key = RsaKey::<Sha256>::from_pkcs8_der(pkcs8.as_bytes())
                .map_err(|e| bad(format!("RSA key not usable for signing ({e})")))?;
            let public = base64::engine::general_purpose::STANDARD.encode(spki.as_bytes());
            let signer = DkimSigner::from_key(ring_key)
                .domain(domain)
                .selector(selector)
                .headers(SIGNED_HEADERS.iter().copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed);
            (Signer::Rsa(signer), public)
        }
    };
    Ok(DkimKey {
        domain: domain.to_string(),
        selector: selector.to_string(),
        algorithm: alg,
        public_key,
        path: path.to_path_buf(),
        signer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_once_private_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DkimKeys::new(dir.path(), &DkimConfig::default());
        let first = keys.keys_for("Example.TEST").unwrap();
        assert_eq!(first.len(), 2);
        let ed = dir.path().join("dkim/example.test/mailroom-ed25519.pem");
        let rsa = dir.path().join("dkim/example.test/mailroom-rsa.pem");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [&ed, &rsa] {
                let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", p.display());
            }
            let mode = std::fs::metadata(dir.path().join("dkim"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o700);
        }
        // A second registry (a restart) reads the same keys.
        let again = DkimKeys::new(dir.path(), &DkimConfig::default());
        let second = again.keys_for("example.test").unwrap();
        assert_eq!(first[0].public_key, second[0].public_key);
        assert_eq!(first[1].public_key, second[1].public_key);
        assert!(first[0].dns_record().starts_with("v=DKIM1; k=ed25519; p="));
        assert!(first[1].dns_record().starts_with("v=DKIM1; k=rsa; p=MII"));

        let msg = b"From: a@example.test\r\nTo: b@other.test\r\nSubject: hi\r\n\r\nHello\r\n";
        let headers = keys.sign("example.test", &[&msg[..]]).unwrap();
        assert_eq!(headers.matches("DKIM-Signature:").count(), 2);
        assert!(headers.contains("a=ed25519-sha256"));
        assert!(headers.contains("a=rsa-sha256"));
        assert!(headers.contains("c=relaxed/relaxed"));
        assert!(headers.contains("d=example.test"));
        // From oversigned: listed twice though it occurs once.
        let h = headers
            .split("h=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_ascii_lowercase();
        assert_eq!(h.matches("from").count(), 2, "{h}");
    }

    #[test]
    fn configured_keys_win_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, "not a key").unwrap();
        let cfg = DkimConfig {
            key: vec![crate::config::DkimKeyConfig {
                domain: "example.test".into(),
                selector: "s1".into(),
                algorithm: DkimAlgorithm::Ed25519,
                file: path.clone(),
            }],
            ..DkimConfig::default()
        };
        let keys = DkimKeys::new(dir.path(), &cfg);
        let err = keys.keys_for("example.test").err().unwrap().to_string();
        assert!(err.contains("k.pem"), "{err}");
        let der = Ed25519Key::generate_pkcs8().unwrap();
        std::fs::write(&path, pem_encode("PRIVATE KEY", &der)).unwrap();
        let keys = DkimKeys::new(dir.path(), &cfg);
        let list = keys.keys_for("example.test").unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].selector, "s1");
        assert!(!dir.path().join("dkim").exists());
    }

    #[test]
    fn signing_domains() {
        let list = ["example.test", "b.example.test"];
        let local = |d: &str| list.contains(&d);
        assert_eq!(
            signing_domain("EXAMPLE.test", local).as_deref(),
            Some("example.test")
        );
        assert_eq!(
            signing_domain("mx.example.test", local).as_deref(),
            Some("example.test")
        );
        assert_eq!(
            signing_domain("x.b.example.test", local).as_deref(),
            Some("b.example.test")
        );
        assert_eq!(signing_domain("notexample.test", local), None);
        assert_eq!(
            from_domain(&[b"Subject: x\r\nFrom: A <a@Example.TEST>\r\n", b"\r\nbody"]).as_deref(),
            Some("example.test")
        );
        assert_eq!(from_domain(&[b"Subject: x\r\n\r\nbody"]), None);
    }
}
