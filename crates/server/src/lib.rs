//! mailroom's network side: listeners, connection limits, sessions and delivery.
//!
//! [`Server::start`] binds every configured listener and returns at once with the addresses it
//! bound (port 0 is allowed, which is what the tests use); [`Server::shutdown`] stops accepting,
//! tells idle sessions to say goodbye, waits a bounded time for busy ones and closes the store.

pub mod auth;
pub mod budget;
pub mod config;
pub mod conn;
pub mod delivery;
pub mod dkim;
pub mod dns;
pub mod http;
pub mod imap;
pub mod metrics;
pub mod pop3;
pub mod publish;
pub mod queue;
pub mod session;
pub mod smtp;
#[cfg(test)]
mod test_support;
pub mod tls;
pub mod transcript;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use config::Config;
use mailroom_store::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tracing::Instrument;

/// The kinds of listener; each runs one protocol driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// SMTP for inbound mail (the MX): any sender, local recipients, relaying only after AUTH.
    Smtp,
    /// Message submission (RFC 6409): AUTH before MAIL, may relay.
    Submission,
    Pop3,
    Imap,
    /// Submission over implicit TLS (RFC 8314 §3.3, the port 465 kind).
    SubmissionTls,
    /// POP3 over implicit TLS (RFC 8314, the port 995 kind).
    Pop3Tls,
    /// IMAP over implicit TLS (RFC 8314, the port 993 kind).
    ImapTls,
    /// The HTTP API (docs/API.md).
    Http,
    /// The HTTP API over TLS.
    Https,
}

impl ListenerKind {
    /// Every kind, in the order of [`ListenerKind::index`].
    pub const ALL: [ListenerKind; 9] = [
        ListenerKind::Smtp,
        ListenerKind::Submission,
        ListenerKind::Pop3,
        ListenerKind::Imap,
        ListenerKind::SubmissionTls,
        ListenerKind::Pop3Tls,
        ListenerKind::ImapTls,
        ListenerKind::Http,
        ListenerKind::Https,
    ];

    /// The kind's place in [`ListenerKind::ALL`] (metrics keep one number per kind).
    pub fn index(self) -> usize {
        self as usize
    }

    /// An SMTP listener (MX, submission, implicit-TLS submission).
    pub fn is_smtp(self) -> bool {
        matches!(
            self,
            ListenerKind::Smtp | ListenerKind::Submission | ListenerKind::SubmissionTls
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Smtp => "smtp",
            ListenerKind::Submission => "submission",
            ListenerKind::Pop3 => "pop3",
            ListenerKind::Imap => "imap",
            ListenerKind::SubmissionTls => "submissions",
            ListenerKind::Pop3Tls => "pop3s",
            ListenerKind::ImapTls => "imaps",
            ListenerKind::Http => "http",
            ListenerKind::Https => "https",
        }
    }

    /// The protocol policy of the listener (an implicit-TLS listener behaves like its
    /// plaintext twin once TLS is up).
    pub fn base(self) -> ListenerKind {
        match self {
            ListenerKind::SubmissionTls => ListenerKind::Submission,
            ListenerKind::Pop3Tls => ListenerKind::Pop3,
            ListenerKind::ImapTls => ListenerKind::Imap,
            ListenerKind::Https => ListenerKind::Http,
            k => k,
        }
    }

    /// True for listeners where TLS starts before the first byte (RFC 8314).
    pub fn implicit_tls(self) -> bool {
        matches!(
            self,
            ListenerKind::SubmissionTls
                | ListenerKind::Pop3Tls
                | ListenerKind::ImapTls
                | ListenerKind::Https
        )
    }
}

/// Mailbox changes an IDLE session may fall behind by before it is told to look anyway.
pub const MAILBOX_CHANGES: usize = 1024;

/// What every session can reach.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    /// POP3 maildrop locks (RFC 1939 §8): accounts with a session in TRANSACTION state.
    pub maildrop_locks: Mutex<std::collections::HashSet<i64>>,
    /// Wakes the outbound queue runner when a message was queued.
    pub queue_notify: Arc<Notify>,
    /// Messages sessions queued and claimed for this node's queue runner.
    pub queue_handoffs: queue::Handoffs,
    /// The ids of mailboxes another server sharing the store changed (the store's
    /// [`mailroom_store::MailStore::on_mailbox_change`]; -1: any may have): an IDLE session
    /// with that mailbox selected looks at once. Never sent for a store of our own.
    pub mailbox_changed: tokio::sync::broadcast::Sender<i64>,
    /// IMAP state shared by sessions (the MIME structure cache).
    pub imap: imap::ImapShared,
    /// The TLS acceptor for STARTTLS/STLS and the implicit-TLS listeners.
    pub tls: Option<tls::ServerTls>,
    /// Recent authentication failures per client address (the per-address delay).
    pub auth_failures: auth::FailureTracker,
    /// Password checks: bounded thread pool, cache of successful checks.
    pub auth: auth::Authenticator,
    /// Octets of messages being received, all sessions together (`limits.max_incoming_memory`).
    pub incoming: Arc<budget::MemoryBudget>,
    /// The HTTP API's login sessions.
    pub http: http::HttpShared,
    /// Counters and gauges for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Capture mode's state (`[capture] enabled`): `None` when mail is handled for real.
    pub capture: Option<smtp::capture::Capture>,
    /// The resolver (`[dns]`) with its record caches: queue MX lookups, inbound checks.
    pub dns: Arc<dns::Dns>,
    /// DKIM signing keys by domain (`[dkim]`).
    pub dkim: Arc<dkim::DkimKeys>,
    session_ids: AtomicU64,
}

tokio::task_local! {
    /// The listener whose session runs in this task (set by the accept loop), so that code
    /// every protocol shares (`auth::login`) can count per listener without being told.
    pub static LISTENER: ListenerKind;
}

/// The listener of the session running in this task, if any.
pub fn current_listener() -> Option<ListenerKind> {
    LISTENER.try_with(|k| *k).ok()
}

impl Shared {
    pub fn next_session_id(&self) -> u64 {
        self.session_ids.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be opened: the whole sentence, said once (which server, which
    /// key of which file, which address, why, and what to do).
    #[error("{0}")]
    Listen(String),
    #[error("store: {0}")]
    Store(#[from] mailroom_store::StoreError),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
}

/// "server NAME: " for a server of a lab file, else nothing.
fn server_prefix(config: &Config) -> String {
    config
        .name
        .as_ref()
        .map(|n| format!("server {n}: "))
        .unwrap_or_default()
}

/// Why `[listen] key` could not be opened on `addr`, and what to do about it.
fn listen_failure(config: &Config, key: &str, addr: SocketAddr, e: &std::io::Error) -> ServerError {
    use std::io::ErrorKind as K;
    let file = &config.source;
    let change = format!("change [listen] {key} in {file}");
    let why = match e.kind() {
        K::AddrInUse => format!(
            "the address is already in use (another program, or another mailroom, listens there); {change}, or see what uses it: ss -ltnp 'sport = :{}'",
            addr.port()
        ),
        K::PermissionDenied => format!(
            "permission denied (ports below 1024 need root or the CAP_NET_BIND_SERVICE capability); {change} to a port above 1024"
        ),
        K::AddrNotAvailable => format!(
            "no network interface of this machine has the address {}; {change}",
            addr.ip()
        ),
        _ => format!("{e}; {change}"),
    };
    ServerError::Listen(format!(
        "{}cannot listen for {key} on {addr}: {why}",
        server_prefix(config)
    ))
}

/// Counts sessions so shutdown can wait for them.
#[derive(Default)]
struct Sessions {
    active: AtomicUsize,
    idle: Notify,
}

struct SessionGuard(Arc<Sessions>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Connection limits of one listener: total and per client address.
struct Limiter {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

struct LimitGuard {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

impl Limiter {
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<LimitGuard> {
        let mut st = self.state.lock().ok()?;
        if st.0 >= self.max_total {
            return None;
        }
        let n = st.1.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        st.0 += 1;
        Some(LimitGuard {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for LimitGuard {
    fn drop(&mut self) {
        if let Ok(mut st) = self.limiter.state.lock() {
            st.0 = st.0.saturating_sub(1);
            if let Some(n) = st.1.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    st.1.remove(&self.ip);
                }
            }
        }
    }
}

/// A running server.
pub struct Server {
    /// (listener name, bound address) of every listener, mail and lab services alike.
    pub bound: Vec<(String, SocketAddr)>,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    sessions: Arc<Sessions>,
}

impl Server {
    /// Binds every configured listener and starts serving.
    pub async fn start(config: Config, store: Store) -> Result<Server, ServerError> {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let tls = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || tls::load_or_create(&config))
                .await
                .map_err(|e| tls::TlsError::Generate(e.to_string()))??
        };
        if tls.created {
            tracing::info!(path = %tls.cert_path.display(), fingerprint = %tls.fingerprint, "created a self-signed TLS certificate");
        }
        let incoming = budget::MemoryBudget::new(config.limits.max_incoming_memory);
        let auth_failures =
            auth::FailureTracker::for_store(config.limits.auth_failure_window, &store);
        let auth = auth::Authenticator::new(&config.limits);
        let capture = if config.capture.enabled {
            let cfg = config.capture.clone();
            let capture = tokio::task::spawn_blocking(move || smtp::capture::Capture::new(&cfg))
                .await
                .map_err(|e| ServerError::Listen(e.to_string()))??;
            tracing::warn!(
                "capture mode is on: mail for any address is accepted and kept here, nothing is relayed, any AUTH is accepted"
            );
            Some(capture)
        } else {
            None
        };
        let dns = Arc::new(dns::Dns::new(&config.dns));
        let dkim = Arc::new(dkim::DkimKeys::new(&config.data_dir, &config.dkim));
        let shared = Arc::new(Shared {
            config,
            store,
            maildrop_locks: Mutex::new(Default::default()),
            queue_notify: Arc::new(Notify::new()),
            queue_handoffs: queue::Handoffs::default(),
            mailbox_changed: tokio::sync::broadcast::channel(MAILBOX_CHANGES).0,
            imap: imap::ImapShared::default(),
            tls: Some(tls),
            auth_failures,
            auth,
            incoming,
            http: http::HttpShared::default(),
            metrics: metrics::Metrics::default(),
            capture,
            dns,
            dkim,
            session_ids: AtomicU64::new(0),
        });
        {
            // Another node's change wakes every IDLE session at once (each looks whether its
            // mailbox changed); the poll stays as the fallback.
            let changed = shared.mailbox_changed.clone();
            shared.store.on_mailbox_change(Box::new(move |id| {
                // No receiver (no IDLE session) is not an error.
                let _ = changed.send(id);
            }));
        }
        if shared.dkim.enabled() {
            // First start: each local domain's keys are made now, off the listeners' way (a
            // message signed before they are ready waits for them).
            let shared = shared.clone();
            tokio::task::spawn_blocking(move || {
                let mut domains = shared.config.local_domains();
                domains.extend(shared.store.list_domains().unwrap_or_default());
                domains.sort();
                domains.dedup();
                for d in domains {
                    if let Err(e) = shared.dkim.keys_for(&d) {
                        tracing::error!(domain = %d, error = %e, "DKIM keys unavailable; mail from this domain leaves unsigned");
                    }
                }
            });
        }
        let sessions = Arc::new(Sessions::default());
        let mut bound = Vec::new();
        let listen = shared.config.listen.clone();
        let wanted = [
            (ListenerKind::Smtp, listen.smtp),
            (ListenerKind::Submission, listen.submission),
            (ListenerKind::Pop3, listen.pop3),
            (ListenerKind::Imap, listen.imap),
            (ListenerKind::SubmissionTls, listen.submissions),
            (ListenerKind::Pop3Tls, listen.pop3s),
            (ListenerKind::ImapTls, listen.imaps),
            (ListenerKind::Http, listen.http),
            (ListenerKind::Https, listen.https),
        ];
        for (kind, addr) in wanted {
            let Some(addr) = addr else { continue };
            let listener = bind_listener(addr)
                .map_err(|e| listen_failure(&shared.config, kind.name(), addr, &e))?;
            let local = listener.local_addr().unwrap_or(addr);
            bound.push((kind.name().to_string(), local));
            tokio::spawn(
                accept_loop(
                    listener,
                    kind,
                    shared.clone(),
                    sessions.clone(),
                    shutdown_rx.clone(),
                )
                .instrument(tracing::Span::current()),
            );
        }
        let services = mailroom_services::start(&shared.config.services, shutdown_rx.clone())
            .await
            .map_err(|e| {
                ServerError::Listen(format!(
                    "{}{e} (in {})",
                    server_prefix(&shared.config),
                    shared.config.source
                ))
            })?;
        bound.extend(services.into_iter().map(|b| (b.name, b.addr)));
        queue::spawn(shared.clone(), shutdown_rx.clone());
        Ok(Server {
            bound,
            shared,
            shutdown_tx,
            sessions,
        })
    }

    /// The start-up line about the TLS certificate (`tls: certificate SHA256 ...`).
    pub fn tls_summary(&self) -> Option<String> {
        self.shared.tls.as_ref().map(|t| t.summary())
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, asks sessions to finish, waits up to `limits.shutdown_grace` for them,
    /// then closes the store (pending writes are committed first).
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        let grace = self.shared.config.limits.shutdown_grace;
        let wait = async {
            loop {
                let notified = self.sessions.idle.notified();
                if self.sessions.active.load(Ordering::Acquire) == 0 {
                    break;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(grace, wait).await.is_err() {
            tracing::warn!(
                sessions = self.sessions.active.load(Ordering::Acquire),
                "sessions still open after the shutdown grace period; closing anyway"
            );
        }
        let store = self.shared.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
    }
}

/// Connections the kernel completes and holds for a listener before it accepts them. tokio's
/// `TcpListener::bind` asks for 128, so a burst of clients connecting at once (a fleet
/// reconnecting after a restart; the login benchmark's 900) overflows the queue: the kernel
/// drops the handshake's last ACK, and the client, which thinks it is connected, waits for a
/// greeting until its SYN-ACK retries give up (half a minute). 1024 covers a burst of the
/// default `limits.max_connections`; the kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listening socket (SO_REUSEADDR, as `TcpListener::bind` does) with
/// [`LISTEN_BACKLOG`].
fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop(
    listener: TcpListener,
    kind: ListenerKind,
    shared: Arc<Shared>,
    sessions: Arc<Sessions>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = &shared.config.limits;
    let limiter = Arc::new(Limiter {
        max_total: limits.max_connections,
        max_per_ip: limits.max_connections_per_ip,
        state: Mutex::new((0, HashMap::new())),
    });
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, listener = kind.name(), "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.metrics.connection(kind);
        let Some(limit) = limiter.acquire(peer.ip()) else {
            shared.metrics.refused(kind);
            tokio::spawn(refuse_busy(stream, kind, shared.config.hostname.clone()));
            continue;
        };
        sessions.active.fetch_add(1, Ordering::AcqRel);
        let guard = SessionGuard(sessions.clone());
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        // A panic inside a session ends that task only; the guards release its slots.
        tokio::spawn(
            async move {
                let _guard = guard;
                let _limit = limit;
                let _active = shared.metrics.session(kind);
                LISTENER
                    .scope(
                        kind,
                        run_session(kind, stream, peer, shared.clone(), shutdown),
                    )
                    .await;
            }
            .instrument(tracing::Span::current()),
        );
    }
}

async fn run_session(
    kind: ListenerKind,
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let stream = match (kind.implicit_tls(), &shared.tls) {
        (false, _) => conn::Stream::Plain(stream),
        (true, Some(tls)) => {
            let timeout = shared
                .config
                .limits
                .idle_timeout
                .min(Duration::from_secs(60));
            match conn::Stream::Plain(stream)
                .accept_tls(&tls.acceptor, timeout)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::info!(%peer, listener = kind.name(), error = %e, "TLS handshake failed");
                    return;
                }
            }
        }
        (true, None) => return,
    };
    match kind {
        ListenerKind::Smtp | ListenerKind::Submission | ListenerKind::SubmissionTls => {
            smtp::run_session(kind, stream, peer, shared, shutdown).await
        }
        ListenerKind::Pop3 | ListenerKind::Pop3Tls => {
            pop3::run_session(kind, stream, peer, shared, shutdown).await
        }
        ListenerKind::Imap | ListenerKind::ImapTls => {
            imap::run_session(stream, peer, shared, shutdown).await
        }
        ListenerKind::Http | ListenerKind::Https => {
            http::run_connection(kind, stream, peer, shared, shutdown).await
        }
    }
}

/// Answers a connection over the limits with the protocol's "busy" reply and closes it.
async fn refuse_busy(mut stream: TcpStream, kind: ListenerKind, hostname: String) {
    use tokio::io::AsyncWriteExt;
    if kind.implicit_tls() {
        // No TLS session to say it in: a plaintext reply would be garbage to the client.
        let _ = stream.shutdown().await;
        return;
    }
    let msg = match kind {
        ListenerKind::Smtp | ListenerKind::Submission | ListenerKind::SubmissionTls => format!(
            "421 4.7.0 {hostname} Too many connections from your address or in total; try again later\r\n"
        ),
        ListenerKind::Pop3 | ListenerKind::Pop3Tls => "-ERR [SYS/TEMP] Too many connections; try again later\r\n".to_string(),
        ListenerKind::Imap | ListenerKind::ImapTls => "* BYE [UNAVAILABLE] Too many connections; try again later\r\n".to_string(),
        ListenerKind::Http | ListenerKind::Https => "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 69\r\n\r\n{\"error\":\"too many connections\",\"hint\":\"try again in a little while\"}".to_string(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(msg.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// Brings the store in line with the config: local domains and `[[accounts]]` (created when
/// missing; the password updated when the config's differs). Blocking.
pub fn apply_config_to_store(
    config: &Config,
    store: &Store,
) -> Result<(), mailroom_store::StoreError> {
    use mailroom_store::password;
    for d in &config.domains {
        store.add_domain(d)?;
    }
    for (source, targets) in &config.aliases {
        for t in targets.list() {
            store.add_alias(source, &t)?;
        }
    }
    for a in &config.accounts {
        let wanted_hash =
            |existing: Option<&str>| -> Result<Option<String>, mailroom_store::StoreError> {
                if password::is_hash(&a.password) {
                    return Ok((existing != Some(a.password.as_str())).then(|| a.password.clone()));
                }
                match existing {
                    Some(h) if password::verify_password(&a.password, h) => Ok(None),
                    _ => password::hash_password(&a.password).map(Some),
                }
            };
        match store.find_account(&a.address)? {
            Some(acct) => {
                if let Some(h) = wanted_hash(Some(&acct.password_hash))? {
                    store.set_password(&a.address, &h)?;
                }
            }
            None => {
                let h = wanted_hash(None)?.unwrap_or_else(|| a.password.clone());
                match store.add_account(&a.address, &h) {
                    // Another server sharing the store added it meanwhile (both starting).
                    Ok(_) | Err(mailroom_store::StoreError::Exists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if let Some(secret) = &a.apop_secret {
            if store.apop_secret(&a.address)?.as_deref() != Some(secret.as_str()) {
                store.set_apop_secret(&a.address, Some(secret))?;
            }
        }
    }
    Ok(())
}
