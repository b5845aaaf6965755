//! Configuration: a TOML file (docs/CONFIG.md documents every key) or the embedded default.
//!
//! Unknown keys are errors (`deny_unknown_fields`), every limit has a named default, and
//! [`Config::validate`] checks values with messages that name the key and the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mailroom_services::config::de_duration;
pub use mailroom_services::config::parse_duration;
use serde::{Deserialize, Deserializer};

/// Embedded defaults (also documented in docs/CONFIG.md).
pub mod defaults {
    pub const SMTP: &str = "127.0.0.1:24025";
    pub const SUBMISSION: &str = "127.0.0.1:24587";
    pub const POP3: &str = "127.0.0.1:24110";
    pub const IMAP: &str = "127.0.0.1:24143";
    pub const SUBMISSIONS: &str = "127.0.0.1:24465";
    pub const POP3S: &str = "127.0.0.1:24995";
    pub const IMAPS: &str = "127.0.0.1:24993";
    /// The HTTP API (and later the web inbox).
    pub const HTTP: &str = "127.0.0.1:24080";
    /// How long an HTTP login session lasts without being used (`[http] session_ttl`).
    pub const HTTP_SESSION_TTL_SECS: u64 = 12 * 3600;
    /// The password of the accounts capture mode creates (`[capture] password`).
    pub const CAPTURE_PASSWORD: &str = "capture";
    pub const DATA_DIR: &str = "./mailroom-data";
    /// Gmail's limit; a 10 MiB attachment grows by a third in base64.
    pub const MAX_MESSAGE_SIZE: u64 = 25 * 1024 * 1024;
    /// RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted.
    pub const MAX_RECIPIENTS: usize = 100;
    /// RFC 5321 §4.5.3.1.4 says 512; AUTH PLAIN initial responses (RFC 4954 §4) can be longer.
    pub const MAX_COMMAND_LINE: usize = 2048;
    /// RFC 5321 §4.5.3.1.6 says a text line is at most 1000 octets including CRLF, and lets
    /// a server refuse longer ones; real senders write longer lines and Postfix and Exchange
    /// accept them, so refusing at 1000 loses mail. Accepted up to 1 MiB, stored byte-exact.
    pub const MAX_LINE_LENGTH: usize = 1024 * 1024;
    pub const MAX_ERRORS: u32 = 20;
    /// RFC 5321 §4.5.3.2.7: a server should wait at least 5 minutes for the next command.
    pub const IDLE_TIMEOUT_SECS: u64 = 300;
    /// RFC 1939 §3: the POP3 autologout timer is at least 10 minutes.
    pub const POP3_IDLE_TIMEOUT_SECS: u64 = 600;
    pub const MAX_CONNECTIONS: usize = 1000;
    pub const MAX_CONNECTIONS_PER_IP: usize = 100;
    pub const MAX_AUTH_FAILURES: u32 = 3;
    pub const SHUTDOWN_GRACE_SECS: u64 = 10;
    /// RFC 5321 §6.3: a message with more Received: headers than this is looping.
    pub const MAX_HOPS: usize = 50;
    /// Octets of messages being received at once, all sessions together (512 MiB).
    pub const MAX_INCOMING_MEMORY: u64 = 512 * 1024 * 1024;
    /// Storage quota of an account without its own: 0 = unlimited.
    pub const ACCOUNT_QUOTA: u64 = 0;
    /// Free space kept on the store's disk for deletions (like Postfix's queue_minfree).
    pub const MIN_FREE_SPACE: u64 = 64 * 1024 * 1024;
    /// Logins waiting for a password-checking thread; beyond: a temporary failure.
    pub const AUTH_QUEUE: usize = 256;
    /// How long a login may wait for its password check before it gets a temporary failure.
    pub const AUTH_QUEUE_TIMEOUT_SECS: u64 = 10;
    /// How long a verified password is remembered (Dovecot's `auth_cache_ttl` is 1 h too).
    pub const AUTH_CACHE_TTL_SECS: u64 = 3600;
    /// Password-checking threads allowed at most: each holds 19 MiB of argon2 memory.
    pub const MAX_AUTH_WORKERS: usize = 256;

    /// Password-checking threads: one per core (argon2 is CPU-bound).
    pub fn auth_workers() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(MAX_AUTH_WORKERS)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The name this server uses in greetings, Received: headers and Message-IDs.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where the mail lives: absent, the embedded SQLite store in `data_dir`; or a PostgreSQL
    /// URL (`postgres://user:password@host:5432/mailroom`) that several servers share. The
    /// TLS certificate stays in `data_dir` either way.
    #[serde(default)]
    pub store: Option<String>,
    /// Local domains (domains of accounts are local too).
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub trace: TraceConfig,
    /// Which SMTP listeners answer VRFY truthfully (RFC 5321 §3.5.1); elsewhere it gets 252.
    #[serde(default)]
    pub vrfy: SmtpSwitch,
    /// Which SMTP listeners answer EXPN with an alias's members (RFC 5321 §3.5.2); elsewhere
    /// it gets 252.
    #[serde(default)]
    pub expn: SmtpSwitch,
    /// `"user@domain" = "target"` or `= ["t1", "t2"]`; `"@domain"` is the domain's catch-all.
    #[serde(default)]
    pub aliases: std::collections::BTreeMap<String, AliasTargets>,
    /// Static routes for mail that leaves: `"domain" = "host:port"`, `"*"` = default route, or
    /// `"domain" = { host = "host:port", tls = "require", verify = true, ca = "FILE" }`.
    /// They always win over the relay host and DNS.
    #[serde(default)]
    pub routes: std::collections::BTreeMap<String, Route>,
    /// Optional smart host that takes all outbound mail without a static route.
    #[serde(default)]
    pub relay: Option<RelayConfig>,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub services: mailroom_services::ServicesConfig,
    /// Certificate and key for STARTTLS/STLS and the implicit-TLS listeners.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Where plaintext passwords (AUTH PLAIN/LOGIN, USER/PASS) are accepted:
    /// `false` (default) = over TLS or from a loopback address; `true` = over TLS only;
    /// `"never"` = anywhere, even in clear over the network (throwaway labs only).
    #[serde(default)]
    pub auth_require_tls: AuthTlsPolicy,
    /// `[http]`: admins and login sessions of the HTTP API.
    #[serde(default)]
    pub http: HttpConfig,
    /// `[capture]`: capture mode for testing applications that send mail (docs/CONFIG.md).
    #[serde(default)]
    pub capture: CaptureConfig,
    /// `[dns]`: which name servers answer MX, TXT and address lookups.
    #[serde(default)]
    pub dns: DnsConfig,
    /// `[dkim]`: signing of submitted mail and bounces (RFC 6376, RFC 8463).
    #[serde(default)]
    pub dkim: DkimConfig,
    /// `[checks]`: SPF, DKIM and DMARC on mail arriving at the MX listener.
    #[serde(default)]
    pub checks: ChecksConfig,
    /// Where the config came from (for messages); not a key.
    #[serde(skip)]
    pub source: String,
    /// The server's name in a lab file (labels its log lines); not a key of a server config.
    #[serde(skip)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum AliasTargets {
    One(String),
    Many(Vec<String>),
}

impl AliasTargets {
    pub fn list(&self) -> Vec<String> {
        match self {
            AliasTargets::One(t) => vec![t.clone()],
            AliasTargets::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// `host:port` of the smart host.
    pub host: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// STARTTLS towards the smart host; unset: `queue.tls`.
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// The older spelling of `tls = "require"` (still accepted; `false` says nothing).
    #[serde(default)]
    pub require_tls: bool,
    /// Verify the smart host's certificate (implies `tls = "require"`).
    #[serde(default)]
    pub verify: bool,
    /// PEM file of the certificate(s) to trust instead of the built-in roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

impl RelayConfig {
    /// The relay's TLS mode as configured (`tls`, or `require_tls = true`, or implied by
    /// `verify`/`ca`); `None` when it leaves the choice to `queue.tls`.
    pub fn tls_mode(&self) -> Result<Option<TlsMode>, String> {
        tls_mode_of(self.tls, self.require_tls, self.verify || self.ca.is_some())
    }
}

/// How the outbound queue uses STARTTLS (RFC 3207) towards a route, the relay, or (as
/// `queue.tls`) every destination without a setting of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Never STARTTLS, even when offered: the whole dialogue in clear (a lab's packet
    /// capture).
    None,
    /// STARTTLS when the peer offers it, certificate not checked, a failed handshake retried
    /// in clear (RFC 7435).
    #[default]
    Opportunistic,
    /// No delivery without STARTTLS: a temporary failure instead.
    Require,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::Opportunistic => "opportunistic",
            TlsMode::Require => "require",
        }
    }
}

impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One TLS mode from `tls`, the older `require_tls` and whether the certificate is checked
/// (`verify` or `ca`, which need TLS); `None` when none of them says anything. Contradictions
/// are errors rather than a guess.
fn tls_mode_of(
    tls: Option<TlsMode>,
    require_tls: bool,
    verify: bool,
) -> Result<Option<TlsMode>, String> {
    if require_tls && tls.is_some_and(|m| m != TlsMode::Require) {
        return Err(format!(
            "require_tls = true contradicts tls = \"{}\"; keep only tls (require_tls = true is the older spelling of tls = \"require\")",
            tls.unwrap_or_default()
        ));
    }
    if verify && tls.is_some_and(|m| m != TlsMode::Require) {
        return Err(format!(
            "verify and ca check the certificate of a TLS connection, so they need tls = \"require\", not \"{}\"",
            tls.unwrap_or_default()
        ));
    }
    Ok(match tls {
        Some(m) => Some(m),
        None if require_tls || verify => Some(TlsMode::Require),
        None => None,
    })
}

/// One static route: where to deliver and how strict to be about TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `host:port`.
    pub host: String,
    /// STARTTLS towards this route (`tls`, or the older `require_tls = true`, or implied by
    /// `verify`); `None`: `queue.tls` decides.
    pub tls: Option<TlsMode>,
    /// Verify the peer's certificate (against `ca`, else the built-in roots); implies
    /// `tls = "require"`.
    pub verify: bool,
    pub ca: Option<PathBuf>,
}

impl From<String> for Route {
    fn from(host: String) -> Route {
        Route {
            host,
            tls: None,
            verify: false,
            ca: None,
        }
    }
}

impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            host: String,
            #[serde(default)]
            tls: Option<TlsMode>,
            #[serde(default)]
            require_tls: bool,
            #[serde(default)]
            verify: bool,
            #[serde(default)]
            ca: Option<PathBuf>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Addr(String),
            Table(Table),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "a route is \"host:port\" or { host = \"host:port\", tls = \"none\" | \"opportunistic\" | \"require\", verify = true, ca = \"FILE\" }",
            )
        })? {
            Raw::Addr(host) => Ok(Route::from(host)),
            Raw::Table(t) => {
                let verify = t.verify || t.ca.is_some();
                let tls = tls_mode_of(t.tls, t.require_tls, verify)
                    .map_err(|m| serde::de::Error::custom(format!("route to {}: {m}", t.host)))?;
                Ok(Route {
                    host: t.host,
                    tls,
                    verify,
                    ca: t.ca,
                })
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Waits between attempts; after the last one, the last step repeats until `max_age`.
    #[serde(deserialize_with = "de_durations")]
    pub retry: Vec<Duration>,
    /// A message still undelivered after this long is bounced.
    #[serde(deserialize_with = "de_duration")]
    pub max_age: Duration,
    /// Simultaneous connections to one destination.
    pub per_destination: usize,
    /// Simultaneous deliveries in total.
    pub workers: usize,
    #[serde(deserialize_with = "de_duration")]
    pub connect_timeout: Duration,
    /// How long to wait for each reply of the receiving server (RFC 5321 §4.5.3.2 suggests minutes).
    #[serde(deserialize_with = "de_duration")]
    pub command_timeout: Duration,
    /// STARTTLS towards every destination without a `tls` of its own (routes, including a
    /// lab file's derived ones, the relay, MX hosts).
    pub tls: TlsMode,
    /// How long a session with nothing to send is kept open for the next message to the same
    /// destination (connection reuse).
    #[serde(deserialize_with = "de_duration")]
    pub idle_session_timeout: Duration,
    /// Transactions one session carries before it is closed and a new one opened.
    pub messages_per_session: usize,
    /// How long a claim on mail waiting in memory for a connection lasts; the runner renews
    /// it every fifth of this while the mail waits. What a node that dies leaves claimed is
    /// picked up by another node (sharing a PostgreSQL store) after at most this long.
    #[serde(deserialize_with = "de_duration")]
    pub claim_lease: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            retry: [60, 300, 900, 3600, 14400]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            max_age: Duration::from_secs(5 * 86400),
            per_destination: 8,
            workers: 32,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            tls: TlsMode::Opportunistic,
            idle_session_timeout: Duration::from_secs(5),
            messages_per_session: 100,
            claim_lease: Duration::from_secs(300),
        }
    }
}

/// Listener addresses; a missing key turns that listener off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    /// Submission over implicit TLS (RFC 8314 §3.3, the port 465 kind).
    pub submissions: Option<SocketAddr>,
    /// POP3 over implicit TLS (RFC 8314, the port 995 kind).
    pub pop3s: Option<SocketAddr>,
    /// IMAP over implicit TLS (RFC 8314, the port 993 kind).
    pub imaps: Option<SocketAddr>,
    /// The HTTP API (docs/API.md), plain HTTP/1.1.
    pub http: Option<SocketAddr>,
    /// The HTTP API over TLS (the certificate of `[tls]`).
    pub https: Option<SocketAddr>,
}

/// `[capture]`: capture mode (`mailroom serve --capture`). The SMTP listeners take mail for
/// any recipient at any domain and any AUTH, relay nothing, and file each message in an
/// account per recipient address, created on first use with [`CaptureConfig::password`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    pub enabled: bool,
    /// Capture mode on a listener that is not on a loopback address. Off by default: the
    /// server would take in anybody's mail and let anybody read it with one shared password.
    pub allow_public: bool,
    /// The password of the accounts capture mode creates (to read them over POP3, IMAP and
    /// the HTTP API).
    pub password: String,
    /// `[capture.faults]`: injected failures for resilience tests.
    pub faults: FaultsConfig,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            enabled: false,
            allow_public: false,
            password: defaults::CAPTURE_PASSWORD.into(),
            faults: FaultsConfig::default(),
        }
    }
}

/// `[capture.faults]`: at each stage, answer a share of the commands with a chosen 4xx/5xx
/// reply instead of the real one (as Mailpit's "chaos" does).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsConfig {
    /// Seed of the random draws, for repeatable test runs (without it: a random seed).
    pub seed: Option<u64>,
    /// MAIL FROM.
    pub mail: Option<Fault>,
    /// Each RCPT TO.
    pub rcpt: Option<Fault>,
    /// The reply to the message's data (after the final `.` or BDAT LAST): nothing is stored.
    pub data: Option<Fault>,
    /// AUTH (after the exchange, instead of `235`).
    pub auth: Option<Fault>,
}

/// One injected failure: `{ rate = 0.2, code = 451, text = "..." }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Share of the commands that get the fault, 0 to 1 (0: never, 1: always).
    pub rate: f64,
    /// The reply code, 400-599.
    pub code: u16,
    /// The reply text (a default that says it is injected when missing).
    #[serde(default)]
    pub text: Option<String>,
}

impl FaultsConfig {
    /// (key, fault) of each configured stage.
    pub fn stages(&self) -> [(&'static str, Option<&Fault>); 4] {
        [
            ("mail", self.mail.as_ref()),
            ("rcpt", self.rcpt.as_ref()),
            ("data", self.data.as_ref()),
            ("auth", self.auth.as_ref()),
        ]
    }
}

impl Listen {
    /// (key, address) of every listener that is on.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, SocketAddr)> + '_ {
        [
            ("smtp", self.smtp),
            ("submission", self.submission),
            ("pop3", self.pop3),
            ("imap", self.imap),
            ("submissions", self.submissions),
            ("pop3s", self.pop3s),
            ("imaps", self.imaps),
            ("http", self.http),
            ("https", self.https),
        ]
        .into_iter()
        .filter_map(|(k, a)| a.map(|a| (k, a)))
    }
}

/// `[http]`: the HTTP API's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Accounts (full addresses) with the admin role: the queue and the accounts of every user.
    pub admins: Vec<String>,
    /// How long a login session lasts after its last use (`"12h"`).
    #[serde(deserialize_with = "de_duration")]
    pub session_ttl: Duration,
    /// A bearer token that lets a monitoring system read `GET /metrics` from any address
    /// (`Authorization: Bearer TOKEN`). Without it, only loopback clients and admins may.
    pub metrics_token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            admins: Vec::new(),
            session_ttl: Duration::from_secs(defaults::HTTP_SESSION_TTL_SECS),
            metrics_token: None,
        }
    }
}

impl HttpConfig {
    /// Is `address` one of the admins (case-insensitive)?
    pub fn is_admin(&self, address: &str) -> bool {
        self.admins.iter().any(|a| a.eq_ignore_ascii_case(address))
    }
}

/// `[tls]`: PEM files. Without them a self-signed certificate is made in `<data_dir>/tls/`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain (leaf first), PEM.
    pub cert: Option<PathBuf>,
    /// The private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: Option<PathBuf>,
}

/// `[dns]`: the resolver of the queue's MX lookups, the inbound checks and `mailroom dns
/// --check`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name servers as `"ip:port"`, asked in order over UDP (TCP when an answer is
    /// truncated); empty = the system's (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// How long one query may take before the next server is tried.
    #[serde(deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// A DKIM signing algorithm (RFC 6376 §3.3, RFC 8463 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    /// ed25519-sha256 (RFC 8463): short keys and signatures, not yet checked by every receiver.
    Ed25519,
    /// rsa-sha256 (RFC 6376 §3.3.1), 2048-bit keys: what every receiver checks.
    Rsa,
}

impl DkimAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519 => "ed25519",
            DkimAlgorithm::Rsa => "rsa",
        }
    }
}

/// `[dkim]`: which mail is signed and with which keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// Sign mail submitted by authenticated users that leaves this server, and bounces.
    pub sign: bool,
    /// The keys made on first start for each local domain without `[[dkim.key]]` entries.
    /// Both by default: receivers that do not know ed25519 (RFC 8463) ignore that signature
    /// and check the RSA one; those that do get the stronger, shorter one.
    pub algorithms: Vec<DkimAlgorithm>,
    /// Keys given by the administrator: `[[dkim.key]] domain, selector, algorithm, file`.
    pub key: Vec<DkimKeyConfig>,
}

impl Default for DkimConfig {
    fn default() -> Self {
        DkimConfig {
            sign: true,
            algorithms: vec![DkimAlgorithm::Ed25519, DkimAlgorithm::Rsa],
            key: Vec::new(),
        }
    }
}

/// One `[[dkim.key]]`: a private key file (PEM, PKCS#8; PKCS#1 for RSA too) and its selector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub file: PathBuf,
}

/// What the inbound checks do for a domain's recipients (`[checks] mode`, `[checks.domains]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckMode {
    /// No checks and no Authentication-Results header.
    Off,
    /// Check and record the results in Authentication-Results; refuse nothing.
    Tag,
    /// Check, record, and act: DMARC p=reject → 550 5.7.1, p=quarantine → Junk, a forged
    /// local sender → 550 5.7.1.
    Enforce,
}

/// `[checks]`: SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489) at the MX listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// The mode of every local domain not listed in `domains`.
    pub mode: CheckMode,
    /// Check mail from loopback peers too. Off by default: a loopback peer is this machine
    /// (the lab's other servers, a local agent, a benchmark), for which no published record
    /// can speak.
    pub loopback: bool,
    /// Per local domain: `"example.test" = "tag"`.
    pub domains: std::collections::BTreeMap<String, CheckMode>,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        ChecksConfig {
            mode: CheckMode::Enforce,
            loopback: false,
            domains: Default::default(),
        }
    }
}

impl ChecksConfig {
    /// The mode for recipients in `domain`.
    pub fn mode_for(&self, domain: &str) -> CheckMode {
        self.domains
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(domain))
            .map_or(self.mode, |(_, m)| *m)
    }
}

/// Where plaintext authentication is allowed (`auth_require_tls`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthTlsPolicy {
    /// Over TLS, or in clear from a loopback address (`false`, the default).
    #[default]
    TlsOrLoopback,
    /// Over TLS only (`true`).
    Always,
    /// Anywhere (`"never"`).
    Never,
}

impl AuthTlsPolicy {
    /// May a client at `peer` send a password on this connection?
    pub fn allows(self, tls: bool, peer: std::net::IpAddr) -> bool {
        tls || match self {
            AuthTlsPolicy::Always => false,
            AuthTlsPolicy::Never => true,
            AuthTlsPolicy::TlsOrLoopback => is_loopback(peer),
        }
    }
}

/// 127.0.0.0/8, ::1, and IPv4-mapped loopback.
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

impl<'de> Deserialize<'de> for AuthTlsPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(false) => Ok(AuthTlsPolicy::TlsOrLoopback),
            Raw::Bool(true) => Ok(AuthTlsPolicy::Always),
            Raw::Text(t) if t == "never" => Ok(AuthTlsPolicy::Never),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "auth_require_tls is true, false or \"never\", not \"{t}\""
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub address: String,
    /// Plain text or an `$argon2id$` hash.
    pub password: String,
    /// The APOP shared secret (RFC 1939 §7), stored as given (APOP needs MD5(timestamp +
    /// secret)); the password above stays what USER/PASS, AUTH and IMAP check.
    #[serde(default)]
    pub apop_secret: Option<String>,
    /// Storage quota in octets (a size: `"500M"`); wins over `limits.account_quota` and over
    /// `mailroom user quota`. 0 = unlimited.
    #[serde(default, deserialize_with = "de_opt_size")]
    pub quota: Option<u64>,
}

/// Which listeners write the C:/S: dialogue of every session to the log, and whether the SMTP
/// listeners keep each accepted message's dialogue with it (the transcript).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    #[serde(default)]
    pub smtp: bool,
    #[serde(default)]
    pub submission: bool,
    #[serde(default)]
    pub pop3: bool,
    #[serde(default)]
    pub imap: bool,
    /// Keep the SMTP dialogue (masked, at most 64 KiB, without the message data) with every
    /// message an SMTP listener accepts, for `GET /api/messages/{mailbox}/{id}/transcript`.
    #[serde(default = "yes")]
    pub record_smtp: bool,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            smtp: false,
            submission: false,
            pop3: false,
            imap: false,
            record_smtp: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// A per-listener switch of the SMTP listeners (`[vrfy]`, `[expn]`): `smtp` is the MX,
/// `submission` the submission listeners (plain and implicit TLS). Off unless turned on: VRFY
/// and EXPN tell strangers which addresses exist (RFC 5321 §7.3).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SmtpSwitch {
    #[serde(default)]
    pub smtp: bool,
    #[serde(default)]
    pub submission: bool,
}

impl SmtpSwitch {
    /// Is it on for this listener (its plaintext twin for an implicit-TLS one)?
    pub fn on(self, listener: crate::ListenerKind) -> bool {
        match listener.base() {
            crate::ListenerKind::Smtp => self.smtp,
            crate::ListenerKind::Submission => self.submission,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub max_command_line: usize,
    pub max_line_length: usize,
    pub max_errors: u32,
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub pop3_idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_auth_failures: u32,
    /// Delay before answering a failed authentication (doubles per failure, capped at 8x).
    #[serde(deserialize_with = "de_duration")]
    pub auth_failure_delay: Duration,
    /// How long a failed login counts against the client's address, across connections.
    #[serde(deserialize_with = "de_duration")]
    pub auth_failure_window: Duration,
    /// Password verifications (argon2, 19 MiB and ~20 ms of CPU each) running at once, on
    /// their own threads (see auth.rs).
    pub auth_workers: usize,
    /// Logins waiting for a password-checking thread; a login that finds the queue full gets
    /// a temporary failure.
    pub auth_queue: usize,
    /// How long a login may wait for its password check before it gets a temporary failure.
    #[serde(deserialize_with = "de_duration")]
    pub auth_queue_timeout: Duration,
    /// How long a successful password check is remembered (zero: never).
    #[serde(deserialize_with = "de_duration")]
    pub auth_cache_ttl: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
    pub max_hops: usize,
    /// Octets of messages being received at once, all sessions together: each is held in
    /// memory until stored (see budget.rs).
    pub max_incoming_memory: u64,
    /// Storage quota in octets of every account without its own (`[[accounts]] quota`,
    /// `mailroom user quota`); 0 = unlimited.
    #[serde(deserialize_with = "de_size")]
    pub account_quota: u64,
    /// The slowest a message body (DATA, BDAT, an IMAP literal) may arrive, in octets per
    /// second, beyond the idle timeout: a body must be in by `idle_timeout + size / rate`.
    /// 0: only the idle timeout per read.
    pub min_data_rate: u64,
    /// Octets kept free on the disk of the data directory: new mail is refused as "storage
    /// full" (temporarily) before storing it would leave less, so deletions always find room.
    #[serde(deserialize_with = "de_size")]
    pub min_free_space: u64,
}

impl Default for Limits {
    fn default() -> Self {
        use defaults::*;
        Limits {
            max_message_size: MAX_MESSAGE_SIZE,
            max_recipients: MAX_RECIPIENTS,
            max_command_line: MAX_COMMAND_LINE,
            max_line_length: MAX_LINE_LENGTH,
            max_errors: MAX_ERRORS,
            idle_timeout: Duration::from_secs(IDLE_TIMEOUT_SECS),
            pop3_idle_timeout: Duration::from_secs(POP3_IDLE_TIMEOUT_SECS),
            max_connections: MAX_CONNECTIONS,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            max_auth_failures: MAX_AUTH_FAILURES,
            auth_failure_delay: Duration::from_millis(500),
            auth_failure_window: Duration::from_secs(15 * 60),
            auth_workers: auth_workers(),
            auth_queue: AUTH_QUEUE,
            auth_queue_timeout: Duration::from_secs(AUTH_QUEUE_TIMEOUT_SECS),
            auth_cache_ttl: Duration::from_secs(AUTH_CACHE_TTL_SECS),
            shutdown_grace: Duration::from_secs(SHUTDOWN_GRACE_SECS),
            max_hops: MAX_HOPS,
            max_incoming_memory: MAX_INCOMING_MEMORY,
            account_quota: ACCOUNT_QUOTA,
            min_data_rate: crate::conn::DEFAULT_MIN_DATA_RATE,
            min_free_space: MIN_FREE_SPACE,
        }
    }
}

fn default_hostname() -> String {
    system_hostname()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(defaults::DATA_DIR)
}

/// The machine's host name, or "localhost".
pub fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(s) = std::str::from_utf8(&buf[..end]) {
            if !s.is_empty() {
                return s.to_string();
            }
        }
    }
    "localhost".to_string()
}

/// A size in octets: digits, optionally followed by `K`, `M`, `G` or `T` (binary: 1K = 1024;
/// `KiB`, `KB` and lower case mean the same), e.g. `"500M"`. Used for config sizes and by
/// `mailroom user quota`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let hint = "a size is a number of octets, or a number with K, M or G (1K = 1024), like \"4096\", \"500M\" or \"2G\"";
    if num.is_empty() {
        return Err(format!("{s:?} is not a size: {hint}"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is too large for a size"))?;
    let unit = unit.trim().to_ascii_uppercase();
    let prefix = unit
        .strip_suffix("IB")
        .filter(|p| !p.is_empty())
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match prefix {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{s:?} is not a size: {hint}")),
    };
    n.checked_mul(1u64 << shift)
        .filter(|v| i64::try_from(*v).is_ok())
        .ok_or_else(|| format!("{s:?} is too large for a size"))
}

/// A size for people: `512 octets`, `4 KiB`, `3.1 MiB` (binary units, one decimal).
pub fn show_size(octets: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if octets < 1024 {
        return format!("{octets} octets");
    }
    let mut unit = 0;
    let mut scale = 1024u64;
    while unit + 1 < UNITS.len() && octets >= scale * 1024 {
        unit += 1;
        scale *= 1024;
    }
    if octets.is_multiple_of(scale) {
        format!("{} {}", octets / scale, UNITS[unit])
    } else {
        // Tenths, rounded down: "4.0 KiB" never stands for a little less than 4 KiB.
        let tenths = (u128::from(octets) * 10 / u128::from(scale)) as u64;
        format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
    }
}

/// Serde helper: a size given as a number of octets or as text for [`parse_size`].
fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Octets(i64),
        Text(String),
    }
    match Raw::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "a size is a number of octets or a string like \"500M\" (K, M, G: 1K = 1024)",
        )
    })? {
        Raw::Octets(n) => u64::try_from(n)
            .map_err(|_| serde::de::Error::custom(format!("{n} is negative: a size is 0 or more"))),
        Raw::Text(s) => parse_size(&s).map_err(serde::de::Error::custom),
    }
}

fn de_opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    de_size(d).map(Some)
}

fn de_durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let raw: Vec<String> = Vec::deserialize(d)?;
    raw.iter()
        .map(|s| parse_duration(s).map_err(serde::de::Error::custom))
        .collect()
}

impl Config {
    /// The embedded default: loopback only, every mail listener on its dev port.
    pub fn embedded() -> Config {
        let parse = |s: &str| s.parse().ok();
        Config {
            hostname: default_hostname(),
            data_dir: default_data_dir(),
            store: None,
            domains: Vec::new(),
            listen: Listen {
                smtp: parse(defaults::SMTP),
                submission: parse(defaults::SUBMISSION),
                pop3: parse(defaults::POP3),
                imap: parse(defaults::IMAP),
                submissions: parse(defaults::SUBMISSIONS),
                pop3s: parse(defaults::POP3S),
                imaps: parse(defaults::IMAPS),
                http: parse(defaults::HTTP),
                https: None,
            },
            http: HttpConfig::default(),
            capture: CaptureConfig::default(),
            dns: DnsConfig::default(),
            dkim: DkimConfig::default(),
            checks: ChecksConfig::default(),
            tls: TlsConfig::default(),
            auth_require_tls: AuthTlsPolicy::default(),
            accounts: Vec::new(),
            limits: Limits::default(),
            trace: TraceConfig::default(),
            vrfy: SmtpSwitch::default(),
            expn: SmtpSwitch::default(),
            aliases: Default::default(),
            routes: Default::default(),
            relay: None,
            queue: QueueConfig::default(),
            services: mailroom_services::ServicesConfig::dev_default(),
            source: "(embedded default)".into(),
            name: None,
        }
    }

    /// Reads and validates a config file. A relative `data_dir` is taken relative to the
    /// directory the server is started in (as people expect from `./mailroom-data`).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::parse(&text, &file)
    }

    /// Reads a server config, or one server (`name`) of a lab file with `[[server]]` entries.
    pub fn load_named(path: &Path, name: Option<&str>) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        if !is_lab_file(&text) {
            if let Some(n) = name {
                return Err(ConfigError::Invalid {
                    file,
                    key: "server".into(),
                    message: format!(
                        "--name {n} was given, but this file has no [[server]] entries"
                    ),
                });
            }
            return Config::parse(&text, &file);
        }
        let servers = parse_lab(&text, &file)?;
        let names: Vec<String> = servers.iter().filter_map(|s| s.name.clone()).collect();
        let Some(name) = name else {
            return Err(ConfigError::Invalid {
                file,
                key: "server".into(),
                message: format!(
                    "this is a lab file with servers {}; choose one with --name, or run them all with `mailroom lab`",
                    names.join(", ")
                ),
            });
        };
        servers
            .into_iter()
            .find(|s| s.name.as_deref() == Some(name))
            .ok_or_else(|| ConfigError::Invalid {
                file,
                key: "server".into(),
                message: format!(
                    "no server named '{name}' (the file has {})",
                    names.join(", ")
                ),
            })
    }

    /// Every server of a lab file (with routes between them derived).
    pub fn load_lab(path: &Path) -> Result<Vec<Config>, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        if !is_lab_file(&text) {
            return Err(ConfigError::Invalid {
                file,
                key: "server".into(),
                message: "a lab file lists its servers as [[server]] entries, each with a name"
                    .into(),
            });
        }
        parse_lab(&text, &file)
    }

    /// Every domain this server delivers locally, as far as the config says.
    pub fn local_domains(&self) -> Vec<String> {
        let mut d: Vec<String> = self
            .domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        d.extend(
            self.accounts
                .iter()
                .map(|a| mailroom_store::domain_of(&a.address)),
        );
        d.extend(self.aliases.keys().map(|a| mailroom_store::domain_of(a)));
        d.retain(|x| !x.is_empty());
        d.sort();
        d.dedup();
        d
    }

    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        cfg.source = file.to_string();
        cfg.validate()?;
        Ok(cfg)
    }

    /// `[capture]`: the faults' rates and codes, and the loopback rule.
    fn validate_capture(
        &self,
        bad: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let c = &self.capture;
        for (stage, fault) in c.faults.stages() {
            let Some(f) = fault else { continue };
            let key = format!("capture.faults.{stage}");
            if !(f.rate.is_finite() && (0.0..=1.0).contains(&f.rate)) {
                return Err(bad(
                    &format!("{key}.rate"),
                    format!(
                        "{} is not a share between 0 and 1 (0.2: one command in five gets the fault)",
                        f.rate
                    ),
                ));
            }
            if !(400..=599).contains(&f.code) {
                return Err(bad(
                    &format!("{key}.code"),
                    format!(
                        "{} is not a failure code: give a temporary (4xx, like 451) or permanent (5xx, like 550) SMTP reply code",
                        f.code
                    ),
                ));
            }
            if let Some(t) = &f.text {
                if t.len() > 400 || t.chars().any(char::is_control) {
                    return Err(bad(
                        &format!("{key}.text"),
                        "must be one line of at most 400 characters".into(),
                    ));
                }
            }
        }
        if c.password.is_empty() {
            return Err(bad(
                "capture.password",
                "must not be empty (it is what reads the captured mail)".into(),
            ));
        }
        if c.enabled && !c.allow_public {
            if let Some((key, addr)) = self.listen.all().find(|(_, a)| !a.ip().is_loopback()) {
                return Err(bad(
                    "capture.allow_public",
                    format!(
                        "capture mode takes mail for anyone and any password, and lets anyone read it with the capture password; listen.{key} = {addr} is not a loopback address, so others could use it. Listen on 127.0.0.1 (or ::1), or set [capture] allow_public = true if that is what you want"
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid {
            file: self.source.clone(),
            key: key.to_string(),
            message,
        };
        if let Some(url) = &self.store {
            if !mailroom_store::postgres::is_postgres_url(url) {
                return Err(bad(
                    "store",
                    format!(
                        "'{}' is not a PostgreSQL URL; write postgres://user:password@host:5432/database, or leave store out for the embedded store in data_dir",
                        mailroom_store::postgres::redact_url(url)
                    ),
                ));
            }
        }
        if self.hostname.trim().is_empty() || self.hostname.contains(char::is_whitespace) {
            return Err(bad(
                "hostname",
                "must be a host name like mx.example.test".into(),
            ));
        }
        for (i, d) in self.domains.iter().enumerate() {
            if d.is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
                return Err(bad(
                    &format!("domains[{i}]"),
                    format!("'{d}' is not a domain name"),
                ));
            }
        }
        for (i, a) in self.accounts.iter().enumerate() {
            match a.address.split_once('@') {
                Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@') => {}
                _ => {
                    return Err(bad(
                        &format!("accounts[{i}].address"),
                        format!("'{}' is not an address like alice@example.test", a.address),
                    ))
                }
            }
            if a.password.is_empty() {
                return Err(bad(
                    &format!("accounts[{i}].password"),
                    "must not be empty".into(),
                ));
            }
        }
        for (source, targets) in &self.aliases {
            let key = format!("aliases.\"{source}\"");
            match source.split_once('@') {
                Some((_, d)) if !d.is_empty() && !d.contains('@') => {}
                _ => {
                    return Err(bad(
                        &key,
                        "an alias is user@domain, or @domain for a catch-all".into(),
                    ))
                }
            }
            let list = targets.list();
            if list.is_empty() {
                return Err(bad(&key, "needs at least one target address".into()));
            }
            for t in list {
                if !t.contains('@') || t.starts_with('@') {
                    return Err(bad(&key, format!("'{t}' is not an address")));
                }
            }
        }
        for (domain, target) in &self.routes {
            let key = format!("routes.\"{domain}\"");
            if parse_host_port(&target.host).is_none() {
                return Err(bad(
                    &key,
                    format!(
                        "'{}' is not host:port (e.g. \"127.0.0.1:25025\")",
                        target.host
                    ),
                ));
            }
        }
        if let Some(r) = &self.relay {
            if parse_host_port(&r.host).is_none() {
                return Err(bad("relay.host", format!("'{}' is not host:port", r.host)));
            }
            if let Err(m) = r.tls_mode() {
                return Err(bad("relay.tls", m));
            }
            if r.user.is_some() != r.password.is_some() {
                return Err(bad(
                    "relay",
                    "give both user and password, or neither".into(),
                ));
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(bad(
                "tls",
                "give both cert and key (PEM files), or neither for a self-signed certificate"
                    .into(),
            ));
        }
        if self.limits.max_incoming_memory < self.limits.max_message_size {
            return Err(bad(
                "limits.max_incoming_memory",
                format!(
                    "must be at least limits.max_message_size ({} octets), or no message of the largest size could ever be received",
                    self.limits.max_message_size
                ),
            ));
        }
        self.validate_capture(&bad)?;
        if let Some(t) = &self.http.metrics_token {
            if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(
                    "http.metrics_token",
                    "must be at least 16 printable characters without spaces (a random one: openssl rand -hex 20)".into(),
                ));
            }
        }
        let q = &self.queue;
        if q.retry.is_empty() || q.retry.iter().any(|d| d.is_zero()) {
            return Err(bad(
                "queue.retry",
                "needs at least one step, each longer than 0s".into(),
            ));
        }
        if q.per_destination == 0 {
            return Err(bad("queue.per_destination", "must be at least 1".into()));
        }
        if q.workers == 0 {
            return Err(bad("queue.workers", "must be at least 1".into()));
        }
        if q.messages_per_session == 0 {
            return Err(bad(
                "queue.messages_per_session",
                "must be at least 1 (1: a new connection for every message)".into(),
            ));
        }
        // At least 5 s: renewed every fifth of it, so a renewal is never due more than once
        // a second (the runner's poll); at most an hour, the point of the lease being that a
        // dead node's claims come free soon.
        if q.claim_lease < Duration::from_secs(5) || q.claim_lease > Duration::from_secs(3600) {
            return Err(bad("queue.claim_lease", "must be between 5s and 1h".into()));
        }
        let l = &self.limits;
        if l.max_command_line < 512 {
            return Err(bad(
                "limits.max_command_line",
                "must be at least 512 (RFC 5321 §4.5.3.1.4)".into(),
            ));
        }
        if l.max_line_length < 1000 {
            return Err(bad(
                "limits.max_line_length",
                "must be at least 1000 (RFC 5321 §4.5.3.1.6)".into(),
            ));
        }
        if l.max_recipients < 1 {
            return Err(bad(
                "limits.max_recipients",
                "must be at least 1 (RFC 5321 asks for 100)".into(),
            ));
        }
        if l.max_message_size < 1024 {
            return Err(bad(
                "limits.max_message_size",
                "must be at least 1024 octets".into(),
            ));
        }
        if l.max_connections == 0 || l.max_connections_per_ip == 0 {
            return Err(bad("limits.max_connections", "must be at least 1".into()));
        }
        if l.idle_timeout.is_zero() || l.pop3_idle_timeout.is_zero() {
            return Err(bad("limits.idle_timeout", "must be longer than 0s".into()));
        }
        if l.max_errors == 0 || l.max_auth_failures == 0 {
            return Err(bad("limits.max_errors", "must be at least 1".into()));
        }
        if l.auth_workers == 0 || l.auth_workers > defaults::MAX_AUTH_WORKERS {
            return Err(bad(
                "limits.auth_workers",
                format!(
                    "must be from 1 to {} (each password check holds 19 MiB; the default is the number of cores)",
                    defaults::MAX_AUTH_WORKERS
                ),
            ));
        }
        if l.auth_queue == 0 {
            return Err(bad("limits.auth_queue", "must be at least 1".into()));
        }
        if l.auth_queue_timeout.is_zero() {
            return Err(bad(
                "limits.auth_queue_timeout",
                "must be longer than 0s".into(),
            ));
        }
        self.validate_mail_auth()?;
        self.services.validate().map_err(|m| ConfigError::Invalid {
            file: self.source.clone(),
            key: "services".into(),
            message: m,
        })?;
        Ok(())
    }
}

impl Config {
    fn validate_mail_auth(&self) -> Result<(), ConfigError> {
        let bad = |key: String, message: String| ConfigError::Invalid {
            file: self.source.clone(),
            key,
            message,
        };
        if self.dns.timeout.is_some_and(|t| t.is_zero()) {
            return Err(bad("dns.timeout".into(), "must be longer than 0s".into()));
        }
        for (i, k) in self.dkim.key.iter().enumerate() {
            let ok_label = |s: &str| {
                !s.is_empty()
                    && s.split('.').all(|l| {
                        !l.is_empty()
                            && l.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    })
            };
            if !ok_label(&k.domain) {
                return Err(bad(
                    format!("dkim.key[{i}].domain"),
                    format!("'{}' is not a domain name", k.domain),
                ));
            }
            // RFC 6376 §3.1: a selector is one or more DNS labels.
            if !ok_label(&k.selector) {
                return Err(bad(
                    format!("dkim.key[{i}].selector"),
                    format!(
                        "'{}' is not a selector (letters, digits, '-', '_', dot-separated)",
                        k.selector
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn is_lab_file(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .map(|t| t.contains_key("server"))
        .unwrap_or(false)
}

/// Parses a lab file: `[[server]]` entries, each a server config plus `name`. Routes from each
/// server to the domains of the others are derived (a server's own `[routes]` win).
fn parse_lab(text: &str, file: &str) -> Result<Vec<Config>, ConfigError> {
    let parse_err = |message: String| ConfigError::Parse {
        file: file.to_string(),
        message,
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    let servers = table.remove("server");
    if let Some(k) = table.keys().next() {
        return Err(ConfigError::Invalid {
            file: file.to_string(),
            key: k.clone(),
            message: "a lab file holds only [[server]] entries".into(),
        });
    }
    let Some(toml::Value::Array(servers)) = servers else {
        return Err(parse_err(
            "`server` must be an array of tables: [[server]]".into(),
        ));
    };
    let mut out: Vec<Config> = Vec::new();
    for (i, v) in servers.into_iter().enumerate() {
        let toml::Value::Table(mut t) = v else {
            return Err(parse_err(format!("server[{i}] must be a table")));
        };
        let name = match t.remove("name") {
            Some(toml::Value::String(n)) if !n.is_empty() => n,
            _ => {
                return Err(ConfigError::Invalid {
                    file: file.to_string(),
                    key: format!("server[{i}].name"),
                    message: "every server needs a name".into(),
                })
            }
        };
        let source = format!("{file} (server {name})");
        let mut cfg: Config = t
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                file: source.clone(),
                message: e.to_string(),
            })?;
        if out.iter().any(|c| c.name.as_deref() == Some(name.as_str())) {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                key: format!("server[{i}].name"),
                message: format!("two servers are named '{name}'"),
            });
        }
        cfg.source = source;
        cfg.name = Some(name);
        out.push(cfg);
    }
    // Derived routes: each server reaches the others' domains at their SMTP listener.
    let snapshot = out.clone();
    for cfg in &mut out {
        let own = cfg.local_domains();
        for other in &snapshot {
            if other.name == cfg.name {
                continue;
            }
            let Some(addr) = other.listen.smtp else {
                continue;
            };
            for d in other.local_domains() {
                if own.contains(&d) {
                    return Err(ConfigError::Invalid {
                        file: file.to_string(),
                        key: "server".into(),
                        message: format!(
                            "servers {} and {} both claim the domain {d}",
                            cfg.name.clone().unwrap_or_default(),
                            other.name.clone().unwrap_or_default()
                        ),
                    });
                }
                cfg.routes
                    .entry(d)
                    .or_insert_with(|| Route::from(addr.to_string()));
            }
        }
        cfg.validate()?;
    }
    Ok(out)
}

/// Splits "host:port" (or "[v6]:port"); None when it is not of that form.
pub fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    Some((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capture_example_loads_and_its_faults_validate() {
        let text = include_str!("../../../examples/capture.toml");
        let c = Config::parse(text, "capture.toml").unwrap();
        assert!(c.capture.enabled && !c.capture.allow_public);
        assert_eq!(c.capture.password, defaults::CAPTURE_PASSWORD);
        // Its commented-out faults, switched on, are valid too.
        let on = text
            .replace("# [capture.faults]", "[capture.faults]")
            .replace("# seed", "seed")
            .replace("# rcpt", "rcpt")
            .replace("# data", "data");
        let c = Config::parse(&on, "capture.toml").unwrap();
        let rcpt = c.capture.faults.rcpt.unwrap();
        assert_eq!((rcpt.rate, rcpt.code), (0.2, 451));
        assert_eq!(c.capture.faults.seed, Some(42));
        // allow_public lets a public listener through.
        let public = on.replace("127.0.0.1:24025", "192.0.2.1:25");
        let e = Config::parse(&public, "capture.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("capture.allow_public") && e.contains("listen.smtp"),
            "{e}"
        );
        let allowed = public.replace("enabled = true", "enabled = true\nallow_public = true");
        assert!(Config::parse(&allowed, "capture.toml").is_ok());
    }

    #[test]
    fn minimal_and_full() {
        let c = Config::parse("hostname = \"mx.example.test\"\n", "t.toml").unwrap();
        assert!(
            c.listen.smtp.is_none(),
            "a missing key turns the listener off"
        );
        let c = Config::parse(
            r#"
hostname = "mx.example.test"
data_dir = "/tmp/x"
domains = ["example.test"]
[listen]
smtp = "127.0.0.1:0"
[[accounts]]
address = "alice@example.test"
password = "secret"
[limits]
idle_timeout = "2m"
max_recipients = 5
[trace]
smtp = true
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.limits.max_recipients, 5);
        assert!(c.trace.smtp);
    }

    #[test]
    fn queue_claim_lease_has_a_default_and_bounds() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c.queue.claim_lease, Duration::from_secs(300));
        let c = Config::parse("[queue]\nclaim_lease = \"30s\"\n", "t.toml").unwrap();
        assert_eq!(c.queue.claim_lease, Duration::from_secs(30));
        for bad in ["1s", "2h"] {
            let e = Config::parse(&format!("[queue]\nclaim_lease = \"{bad}\"\n"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains("queue.claim_lease"), "{e}");
        }
    }

    #[test]
    fn store_is_a_postgres_url_or_absent() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c.store, None, "absent: the embedded store");
        let c = Config::parse(
            "store = \"postgres://mailroom:pw@db.example.test:5432/mailroom\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(c.store.is_some());
        for bad in [
            "sqlite:///var/mail.db",
            "mysql://u:hunter2@h/db",
            "",
            "/var/lib/mailroom",
        ] {
            let e = Config::parse(&format!("store = \"{bad}\"\n"), "f.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("f.toml") && e.contains("store") && e.contains("postgres://"),
                "{bad}: {e}"
            );
            assert!(!e.contains("hunter2"), "the password leaked: {e}");
        }
    }

    #[test]
    fn vrfy_and_expn_switches() {
        use crate::ListenerKind::*;
        let c = Config::parse("", "t.toml").unwrap();
        for k in [Smtp, Submission, SubmissionTls] {
            assert!(!c.vrfy.on(k) && !c.expn.on(k), "off by default");
        }
        let c = Config::parse(
            "[vrfy]\nsmtp = true\nsubmission = true\n[expn]\nsubmission = true\n",
            "t.toml",
        )
        .unwrap();
        assert!(c.vrfy.on(Smtp) && c.vrfy.on(Submission) && c.vrfy.on(SubmissionTls));
        assert!(!c.expn.on(Smtp) && c.expn.on(SubmissionTls));
        assert!(!c.vrfy.on(Pop3));
        let e = Config::parse("[vrfy]\nmx = true\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.toml") && e.contains("mx"), "{e}");
    }

    #[test]
    fn auth_limits_default_and_validate() {
        let c = Config::parse("", "t.toml").unwrap();
        assert!(c.limits.auth_workers >= 1);
        assert_eq!(c.limits.auth_queue, 256);
        assert_eq!(c.limits.auth_queue_timeout, Duration::from_secs(10));
        assert_eq!(c.limits.auth_cache_ttl, Duration::from_secs(3600));
        let c = Config::parse(
            "[limits]\nauth_workers = 1\nauth_queue = 1\nauth_queue_timeout = \"2s\"\nauth_cache_ttl = 0\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.limits.auth_workers, 1);
        assert_eq!(c.limits.auth_queue, 1);
        assert_eq!(c.limits.auth_queue_timeout, Duration::from_secs(2));
        assert!(c.limits.auth_cache_ttl.is_zero());
        for (text, key) in [
            ("auth_workers = 0", "limits.auth_workers"),
            ("auth_workers = 100000", "limits.auth_workers"),
            ("auth_queue = 0", "limits.auth_queue"),
            ("auth_queue_timeout = \"0s\"", "limits.auth_queue_timeout"),
            ("auth_cache_ttl = \"soon\"", "auth_cache_ttl"),
        ] {
            let e = Config::parse(&format!("[limits]\n{text}\n"), "f.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("f.toml"), "{text}: {e}");
        }
    }

    #[test]
    fn errors_name_key_and_file() {
        let e = Config::parse("hostnme = \"x\"\n", "my.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("my.toml") && e.contains("hostnme"), "{e}");
        let e = Config::parse("[limits]\nmax_line_length = 10\n", "my.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.max_line_length"), "{e}");
        let e = Config::parse(
            "[[accounts]]\naddress = \"bob\"\npassword = \"x\"\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("accounts[0].address"), "{e}");
        let e = Config::parse("[limits]\nidle_timeout = \"5 parsecs\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("idle_timeout") || e.contains("parsecs"), "{e}");
    }

    #[test]
    fn lab_files_derive_routes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.toml");
        std::fs::write(
            &path,
            r#"
[[server]]
name = "school"
hostname = "mail.school.test"
domains = ["school.test"]
[server.listen]
smtp = "127.0.0.1:25025"

[[server]]
name = "webmail"
hostname = "mx.webmail.test"
[server.listen]
smtp = "127.0.0.1:26025"
[[server.accounts]]
address = "usr1@webmail.test"
password = "pw"
"#,
        )
        .unwrap();
        let all = Config::load_lab(&path).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].routes.get("webmail.test").map(|r| r.host.as_str()),
            Some("127.0.0.1:26025")
        );
        assert_eq!(
            all[1].routes.get("school.test").map(|r| r.host.as_str()),
            Some("127.0.0.1:25025")
        );
        let one = Config::load_named(&path, Some("webmail")).unwrap();
        assert_eq!(one.hostname, "mx.webmail.test");
        let e = Config::load_named(&path, None).unwrap_err().to_string();
        assert!(e.contains("school, webmail") && e.contains("--name"), "{e}");
        let e = Config::load_named(&path, Some("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no server named 'nope'"), "{e}");
    }

    #[test]
    fn tls_keys() {
        let c = Config::parse(
            r#"
auth_require_tls = true
[tls]
cert = "/etc/mail/cert.pem"
key = "/etc/mail/key.pem"
[listen]
submissions = "127.0.0.1:0"
pop3s = "127.0.0.1:0"
[routes]
"a.test" = "127.0.0.1:25"
"b.test" = { host = "127.0.0.1:26", verify = true }
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.auth_require_tls, AuthTlsPolicy::Always);
        assert!(c.listen.submissions.is_some() && c.listen.pop3s.is_some());
        assert_eq!(c.routes["a.test"].tls, None);
        assert_eq!(c.routes["b.test"].tls, Some(TlsMode::Require));
        assert!(c.routes["b.test"].verify);
        let c = Config::parse("auth_require_tls = \"never\"\n", "t.toml").unwrap();
        assert_eq!(c.auth_require_tls, AuthTlsPolicy::Never);
        assert_eq!(
            Config::parse("", "t.toml").unwrap().auth_require_tls,
            AuthTlsPolicy::TlsOrLoopback
        );
        assert!(Config::parse("auth_require_tls = \"sometimes\"\n", "t.toml").is_err());
        let e = Config::parse("[tls]\ncert = \"/x.pem\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls"), "{e}");
        let lo = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let p = AuthTlsPolicy::TlsOrLoopback;
        assert!(p.allows(false, lo("127.0.0.1")) && p.allows(false, lo("::1")));
        assert!(!p.allows(false, lo("192.0.2.1")) && p.allows(true, lo("192.0.2.1")));
        assert!(!AuthTlsPolicy::Always.allows(false, lo("127.0.0.1")));
        assert!(AuthTlsPolicy::Never.allows(false, lo("192.0.2.1")));
    }

    #[test]
    fn outbound_tls_modes() {
        let c = Config::parse(
            r#"
[routes]
"plain.test" = "127.0.0.1:25"
"none.test" = { host = "127.0.0.1:26", tls = "none" }
"opp.test" = { host = "127.0.0.1:27", tls = "opportunistic" }
"req.test" = { host = "127.0.0.1:28", tls = "require" }
"old.test" = { host = "127.0.0.1:29", require_tls = true }
"oldfalse.test" = { host = "127.0.0.1:30", require_tls = false }
"ca.test" = { host = "127.0.0.1:31", ca = "x.pem" }
[relay]
host = "smart.test:587"
tls = "none"
"#,
            "t.toml",
        )
        .unwrap();
        let mode = |d: &str| c.routes[d].tls;
        assert_eq!(mode("plain.test"), None);
        assert_eq!(mode("none.test"), Some(TlsMode::None));
        assert_eq!(mode("opp.test"), Some(TlsMode::Opportunistic));
        assert_eq!(mode("req.test"), Some(TlsMode::Require));
        assert_eq!(
            mode("old.test"),
            Some(TlsMode::Require),
            "the older spelling"
        );
        assert_eq!(mode("oldfalse.test"), None);
        assert_eq!(mode("ca.test"), Some(TlsMode::Require));
        assert!(c.routes["ca.test"].verify);
        assert_eq!(
            c.relay.as_ref().unwrap().tls_mode(),
            Ok(Some(TlsMode::None))
        );
        assert_eq!(c.queue.tls, TlsMode::Opportunistic, "the default");
        let c = Config::parse("[queue]\ntls = \"none\"\n", "t.toml").unwrap();
        assert_eq!(c.queue.tls, TlsMode::None);
        for (text, want) in [
            (
                "[routes]\n\"a.test\" = { host = \"h:1\", tls = \"none\", require_tls = true }\n",
                "contradicts tls = \"none\"",
            ),
            (
                "[routes]\n\"a.test\" = { host = \"h:1\", tls = \"opportunistic\", verify = true }\n",
                "need tls = \"require\"",
            ),
            (
                "[relay]\nhost = \"h:1\"\ntls = \"none\"\nca = \"x.pem\"\n",
                "relay.tls",
            ),
            (
                "[relay]\nhost = \"h:1\"\ntls = \"none\"\nrequire_tls = true\n",
                "relay.tls",
            ),
            ("[queue]\ntls = \"sometimes\"\n", "sometimes"),
            ("[relay]\nhost = \"h:1\"\ntls = \"always\"\n", "always"),
        ] {
            let e = Config::parse(text, "f.toml").unwrap_err().to_string();
            assert!(e.contains("f.toml") && e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn sizes() {
        let good: &[(&str, u64)] = &[
            ("0", 0),
            ("1024", 1024),
            ("1K", 1024),
            ("1k", 1024),
            ("4KiB", 4096),
            ("500M", 500 * 1024 * 1024),
            ("500 MB", 500 * 1024 * 1024),
            ("2G", 2 * 1024 * 1024 * 1024),
            ("3T", 3 << 40),
            (" 7 ", 7),
            ("12B", 12),
        ];
        for (text, want) in good {
            assert_eq!(parse_size(text), Ok(*want), "{text:?}");
        }
        let bad = [
            "",
            "M",
            "-1",
            "1.5G",
            "5X",
            "2 GG",
            "1IB",
            "KB",
            "ten",
            "9999999999999999999999",
            "8E",
            "16777216T",
        ];
        for text in bad {
            let e = parse_size(text).expect_err(text);
            assert!(e.contains(&format!("{text:?}")), "{text:?}: {e}");
        }
        assert!(parse_size("5X").unwrap_err().contains("\"500M\""));
    }

    #[test]
    fn sizes_in_the_config() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c.limits.account_quota, 0, "unlimited by default");
        let c = Config::parse("[limits]\naccount_quota = 1048576\n", "t.toml").unwrap();
        assert_eq!(c.limits.account_quota, 1 << 20);
        let c = Config::parse(
            "[limits]\naccount_quota = \"4K\"\n[[accounts]]\naddress = \"a@x.test\"\npassword = \"p\"\nquota = \"2G\"\n[[accounts]]\naddress = \"b@x.test\"\npassword = \"p\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.limits.account_quota, 4096);
        assert_eq!(c.accounts[0].quota, Some(2 << 30));
        assert_eq!(c.accounts[1].quota, None);
        for (text, key) in [
            ("[limits]\naccount_quota = \"5 parsecs\"\n", "account_quota"),
            ("[limits]\naccount_quota = -1\n", "account_quota"),
            ("[limits]\naccount_quota = 1.5\n", "account_quota"),
            (
                "[[accounts]]\naddress = \"a@x.test\"\npassword = \"p\"\nquota = \"lots\"\n",
                "quota",
            ),
        ] {
            let e = Config::parse(text, "q.toml").unwrap_err().to_string();
            assert!(e.contains("q.toml") && e.contains(key), "{text}: {e}");
            assert!(e.contains("size"), "{text}: {e}");
        }
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(show_size(0), "0 octets");
        assert_eq!(show_size(1023), "1023 octets");
        assert_eq!(show_size(1024), "1 KiB");
        assert_eq!(show_size(4095), "3.9 KiB");
        assert_eq!(show_size(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(show_size(2 << 30), "2 GiB");
        assert_eq!(show_size(u64::MAX), "16777215.9 TiB");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn mail_auth_tables_and_the_lab_default() {
        let c = Config::parse(
            "hostname = \"mx.example.test\"\n[dns]\nservers = [\"127.0.0.1:5353\"]\ntimeout = \"2s\"\n[dkim]\nalgorithms = [\"rsa\"]\n[[dkim.key]]\ndomain = \"example.test\"\nselector = \"s2026\"\nalgorithm = \"ed25519\"\nfile = \"/k.pem\"\n[checks]\nmode = \"tag\"\n[checks.domains]\n\"Other.test\" = \"enforce\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.dns.servers, vec!["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(c.dns.timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.dkim.algorithms, vec![DkimAlgorithm::Rsa]);
        assert!(c.dkim.sign);
        assert_eq!(c.checks.mode_for("example.test"), CheckMode::Tag);
        assert_eq!(c.checks.mode_for("other.TEST"), CheckMode::Enforce);
        // Defaults: both algorithms, checks enforced, loopback peers unchecked.
        let d = Config::parse("hostname = \"h.test\"\n", "t.toml").unwrap();
        assert_eq!(
            d.dkim.algorithms,
            vec![DkimAlgorithm::Ed25519, DkimAlgorithm::Rsa]
        );
        assert_eq!(d.checks.mode, CheckMode::Enforce);
        assert!(!d.checks.loopback);
        let err = Config::parse(
            "hostname = \"h.test\"\n[[dkim.key]]\ndomain = \"example.test\"\nselector = \"bad selector\"\nalgorithm = \"rsa\"\nfile = \"/k\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("dkim.key[0].selector"), "{err}");
        let err = Config::parse(
            "hostname = \"h.test\"\n[checks]\nmode = \"strict\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("strict"), "{err}");
        // The example lab has no DNS: its servers check nothing.
        let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lab.toml");
        for server in Config::load_lab(&lab).unwrap() {
            assert_eq!(server.checks.mode, CheckMode::Off, "{:?}", server.name);
        }
    }
}
