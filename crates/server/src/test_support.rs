//! Support for session tests that run in memory: the server's shared state over a real store
//! in a temporary directory, and the client end of a `tokio::io::duplex` pipe whose other end
//! a protocol driver serves as [`Stream::other`]. No socket is opened.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::conn::{Io, Stream};
use crate::{auth, budget, imap, tls, Shared};

/// The config every harness starts from: one local domain and two accounts.
const BASE: &str = r#"
hostname = "mx.example.test"
domains = ["example.test"]

[[accounts]]
address = "alice@example.test"
password = "alice-secret"

[[accounts]]
address = "bob@example.test"
password = "bob-secret"
"#;

/// How long a test waits for one line before it fails (instead of hanging).
const WAIT: Duration = Duration::from_secs(20);

/// A server's shared state for in-memory sessions; the store lives as long as this.
pub(crate) struct Harness {
    pub shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// [`BASE`] with `adjust` applied (limits, policies), no TLS.
    pub fn new(adjust: impl FnOnce(&mut Config)) -> Harness {
        Harness::build(adjust, false)
    }

    /// As [`Harness::new`], with a self-signed certificate for STARTTLS/STLS.
    pub fn with_tls(adjust: impl FnOnce(&mut Config)) -> Harness {
        Harness::build(adjust, true)
    }

    fn build(adjust: impl FnOnce(&mut Config), with_tls: bool) -> Harness {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config::parse(BASE, "test.toml").expect("test config");
        config.data_dir = dir.path().to_path_buf();
        // Failed logins wait (doubling) before the reply: keep the tests quick.
        config.limits.auth_failure_delay = Duration::from_millis(10);
        adjust(&mut config);
        let store = mailroom_store::open(dir.path()).expect("store");
        crate::apply_config_to_store(&config, &store).expect("accounts");
        let tls = with_tls.then(|| tls::load_or_create(&config).expect("certificate"));
        let (shutdown_tx, _) = watch::channel(false);
        let dns = Arc::new(crate::dns::Dns::new(&config.dns));
        let dkim = Arc::new(crate::dkim::DkimKeys::new(&config.data_dir, &config.dkim));
        let shared = Arc::new(Shared {
            incoming: budget::MemoryBudget::new(config.limits.max_incoming_memory),
            auth_failures: auth::FailureTracker::for_store(
                config.limits.auth_failure_window,
                &store,
            ),
            auth: auth::Authenticator::new(&config.limits),
            config,
            store,
            maildrop_locks: Mutex::new(Default::default()),
            queue_notify: Arc::new(Notify::new()),
            queue_handoffs: crate::queue::Handoffs::default(),
            mailbox_changed: tokio::sync::broadcast::channel(crate::MAILBOX_CHANGES).0,
            imap: imap::ImapShared::default(),
            http: crate::http::HttpShared::default(),
            metrics: crate::metrics::Metrics::default(),
            capture: None,
            dns,
            dkim,
            tls,
            session_ids: AtomicU64::new(0),
        });
        Harness {
            shared,
            shutdown_tx,
            _dir: dir,
        }
    }

    /// A new in-memory connection: the stream for the driver and the client's end.
    pub fn pipe(&self) -> (Stream, Client) {
        let (server, client) = tokio::io::duplex(256 * 1024);
        (Stream::other(server), Client::new(client))
    }

    /// Runs a driver's session (`run` is given the stream, the peer, the shared state and the
    /// shutdown signal) over a new in-memory connection; the client's end.
    pub fn start<F>(
        &self,
        run: impl FnOnce(Stream, SocketAddr, Arc<Shared>, watch::Receiver<bool>) -> F,
    ) -> Client
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stream, client) = self.pipe();
        tokio::spawn(run(stream, peer(), self.shared.clone(), self.shutdown()));
        client
    }

    /// The shutdown signal to hand to a session.
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    /// The octets of every message in `address`'s INBOX, in UID order.
    pub fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        use mailroom_store::MessageRef;
        let store = &self.shared.store;
        let account = store
            .find_account(address)
            .expect("store")
            .expect("account");
        let inbox = store
            .mailbox(account.id, "INBOX")
            .expect("store")
            .expect("INBOX");
        let metas = store.list_messages(inbox.id).expect("store");
        metas
            .iter()
            .map(|m| {
                let message = MessageRef::Mailbox {
                    mailbox: inbox.id,
                    uid: m.uid,
                };
                store.message_octets(message).expect("read")
            })
            .collect()
    }
}

/// The client's address as the sessions see it.
pub(crate) fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40000))
}

/// The client end of an in-memory session.
pub(crate) struct Client {
    io: BufReader<Box<dyn Io>>,
}

impl Client {
    fn new(io: impl Io + 'static) -> Client {
        Client {
            io: BufReader::new(Box::new(io)),
        }
    }

    /// Writes `text` as it is (include the CRLFs; several commands at once is pipelining).
    pub async fn send(&mut self, text: impl AsRef<[u8]>) {
        self.io.write_all(text.as_ref()).await.expect("write");
        self.io.flush().await.expect("flush");
    }

    /// The next line the server sent, without its CRLF.
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(WAIT, self.io.read_line(&mut line))
            .await
            .expect("the server did not answer in time")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        assert!(line.ends_with("\r\n"), "no CRLF: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// True when the server has closed the connection (after reading nothing more).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match tokio::time::timeout(WAIT, self.io.read_to_end(&mut rest)).await {
            Ok(Ok(_)) => rest.is_empty(),
            _ => false,
        }
    }

    /// Runs a TLS handshake as the client (after the server's go-ahead has been read) and
    /// goes on over TLS, checking the server's self-signed certificate.
    pub async fn start_tls(self, server: &tls::ServerTls) -> Client {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName};
        assert!(
            self.io.buffer().is_empty(),
            "the server sent more than its go-ahead"
        );
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&server.cert_path).expect("certificate") {
            roots.add(cert.expect("certificate")).expect("root");
        }
        let config = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from("localhost").expect("name");
        let stream = connector
            .connect(name, self.io.into_inner())
            .await
            .expect("TLS handshake");
        Client::new(stream)
    }
}
