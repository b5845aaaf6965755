//! What every agent command shares: where the servers are, who logs in, the trace, the
//! runtime, and how failures become one sentence and an exit code.

use std::ffi::OsString;
use std::fmt;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use mailroom_client::imap::parse::Status;
use mailroom_client::imap::ImapError;
use mailroom_client::pop3::Pop3Error;
use mailroom_client::smtp::SmtpError;
use mailroom_client::{trace, TraceFn};
use mailroom_client::{ClientError, ClientTls};
use mailroom_server::config::{defaults, Config, ConfigError};

/// The exit codes of `agent`, `send` and `inbox` (docs/AGENT.md). 2 is left to the argument
/// parser, which uses it for usage errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 1: a local problem (unreadable file, bad address, no password, bad message number).
    Local = 1,
    /// 3: the server could not be reached, or did not answer in time.
    Connect = 3,
    /// 4: the server refused the login.
    Auth = 4,
    /// 5: the server refused a recipient, the message, or a command (e.g. no such message).
    Refused = 5,
    /// 6: the server closed the connection or broke the protocol mid-dialogue.
    Broken = 6,
}

impl Failure {
    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// A failure with the one sentence that explains it.
#[derive(Debug)]
pub struct AgentError {
    pub failure: Failure,
    pub message: String,
}

impl AgentError {
    pub fn new(failure: Failure, message: impl Into<String>) -> Self {
        AgentError {
            failure,
            message: message.into(),
        }
    }

    pub fn local(message: impl Into<String>) -> Self {
        Self::new(Failure::Local, message)
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AgentError {}

/// Prints the error as `mailroom: ...` on stderr and returns its exit code.
pub fn report(e: &AgentError) -> ExitCode {
    eprintln!("mailroom: {}", e.message);
    e.failure.code()
}

/// What the caller was doing when an SMTP error happened (to pick the sentence and the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpPhase {
    Connect,
    Hello,
    Login,
    Transfer,
}

/// What to try when a certificate is not trusted.
const TLS_HINT: &str = " (for a mailroom server's self-signed certificate give --ca <data_dir>/tls/cert.pem; --insecure skips the check on throwaway setups)";

/// The endings of the shared sentences: after a timeout, after a closed connection, after
/// anything else (e.g. "; nothing was sent").
struct Tails<'a> {
    timeout: &'a str,
    closed: &'a str,
    other: &'a str,
}

/// The sentences the three protocols share: cannot connect, no answer in time, closed, a
/// network error, TLS. A refusal (`Rejected`) or a broken protocol (`Protocol`) is given back
/// for the protocol's own sentence.
fn transport_failure<R: fmt::Display + fmt::Debug>(
    proto: &str,
    flag: &str,
    e: ClientError<R>,
    tails: Tails<'_>,
) -> Result<AgentError, ClientError<R>> {
    Ok(match e {
        ClientError::Connect { server, source } => AgentError::new(
            Failure::Connect,
            format!(
                "cannot connect to the {proto} server {server}: {source} (is `mailroom serve` running there? check {flag} or the config)"
            ),
        ),
        ClientError::Timeout {
            server,
            waiting_for,
        } => AgentError::new(
            Failure::Connect,
            format!(
                "the {proto} server {server} did not answer in time (waiting for {waiting_for}){}",
                tails.timeout
            ),
        ),
        ClientError::Closed { server } => AgentError::new(
            Failure::Broken,
            format!(
                "the {proto} server {server} closed the connection unexpectedly{}",
                tails.closed
            ),
        ),
        ClientError::Io(e) => AgentError::new(
            Failure::Broken,
            format!("network error talking to the {proto} server: {e}{}", tails.other),
        ),
        ClientError::Tls { server, message } => AgentError::new(
            Failure::Connect,
            format!(
                "TLS with the {proto} server {server} failed: {message}{}{TLS_HINT}",
                tails.other
            ),
        ),
        other => return Err(other),
    })
}

/// One clear sentence for an SMTP failure. `Transfer` errors say that nothing was sent.
pub fn smtp_failure(e: SmtpError, phase: SmtpPhase, user: &str) -> AgentError {
    let not_sent = if phase == SmtpPhase::Transfer {
        "; the message was NOT sent"
    } else {
        "; nothing was sent"
    };
    // After the message went out, silence is not a refusal either: say what we know.
    let timeout = match &e {
        SmtpError::Timeout { waiting_for, .. }
            if phase == SmtpPhase::Transfer && waiting_for.contains("end of data") =>
        {
            "; the message was NOT confirmed, so it does not count as sent (the server may still deliver it)"
        }
        _ => not_sent,
    };
    let tails = Tails {
        timeout,
        closed: not_sent,
        other: not_sent,
    };
    match transport_failure("SMTP", "--smtp", e, tails) {
        Ok(e) => e,
        Err(SmtpError::Rejected {
            server,
            command,
            reply,
        }) => {
            let failure = match phase {
                SmtpPhase::Connect => Failure::Connect,
                SmtpPhase::Login => Failure::Auth,
                _ => Failure::Broken,
            };
            let what = if phase == SmtpPhase::Login {
                format!("the login of {user} ({command})")
            } else {
                command
            };
            AgentError::new(
                failure,
                format!("the SMTP server {server} refused {what}: {reply}{not_sent}"),
            )
        }
        Err(other) => protocol_failure("SMTP", other, phase == SmtpPhase::Login, not_sent),
    }
}

/// A broken protocol: a failed login when it happened while logging in, else a broken session.
fn protocol_failure<R: fmt::Display + fmt::Debug>(
    proto: &str,
    e: ClientError<R>,
    login: bool,
    tail: &str,
) -> AgentError {
    let failure = if login {
        Failure::Auth
    } else {
        Failure::Broken
    };
    match e {
        ClientError::Protocol { server, message } => AgentError::new(
            failure,
            format!("the {proto} server {server} {message}{tail}"),
        ),
        // transport_failure took every other kind.
        other => AgentError::new(failure, format!("{proto}: {other}{tail}")),
    }
}

/// The sentence for a refusal by a reading server (POP3 or IMAP): of the connection, of the
/// login, or of a command.
fn read_refusal(
    proto: &str,
    server: String,
    command: String,
    reply: &dyn fmt::Display,
    login: bool,
    user: &str,
) -> AgentError {
    if command == "the connection" {
        AgentError::new(
            Failure::Connect,
            format!("the {proto} server {server} refused the connection: {reply}"),
        )
    } else if login {
        AgentError::new(
            Failure::Auth,
            format!("the {proto} server {server} refused the login of {user} ({command}): {reply}"),
        )
    } else {
        AgentError::new(
            Failure::Refused,
            format!("the {proto} server {server} refused {command}: {reply}"),
        )
    }
}

/// One clear sentence for a POP3 failure.
pub fn pop3_failure(e: Pop3Error, login: bool, user: &str) -> AgentError {
    let tails = Tails {
        timeout: "",
        closed: "; messages marked for deletion were NOT deleted",
        other: "",
    };
    match transport_failure("POP3", "--pop3", e, tails) {
        Ok(e) => e,
        Err(Pop3Error::Rejected {
            server,
            command,
            reply,
        }) => read_refusal("POP3", server, command, &reply, login, user),
        Err(other) => protocol_failure("POP3", other, login, ""),
    }
}

/// One clear sentence for an IMAP failure (`login`: the failure happened while logging in).
pub fn imap_failure(e: ImapError, login: bool, user: &str) -> AgentError {
    let tails = Tails {
        timeout: "",
        closed: "",
        other: "",
    };
    match transport_failure("IMAP", "--imap", e, tails) {
        Ok(e) => e,
        // A BYE (not a NO or BAD) ends the session, whatever the command was.
        Err(ImapError::Rejected {
            server,
            command,
            reply,
        }) if reply.status == Status::Bye && command != "the connection" => AgentError::new(
            Failure::Broken,
            format!("the IMAP server {server} ended the session during {command}: {reply}"),
        ),
        Err(ImapError::Rejected {
            server,
            command,
            reply,
        }) => read_refusal("IMAP", server, command, &reply, login, user),
        // The server takes no password in clear (RFC 9051 §6.2.3): say which flag fixes it.
        Err(other @ ImapError::Protocol { .. }) if other.to_string().contains("LOGINDISABLED") => {
            protocol_failure(
                "IMAP",
                other,
                true,
                ": give --starttls or --tls (with --ca FILE for a self-signed certificate)",
            )
        }
        Err(other) => protocol_failure("IMAP", other, login, ""),
    }
}

/// Options shared by `agent`, `send` and `inbox`.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Password (prefer the MAILROOM_PASSWORD environment variable; without either you are
    /// asked for it without echo).
    #[arg(
        short = 'p',
        long,
        env = "MAILROOM_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub password: Option<String>,
    /// Print every protocol line as `C: ...` / `S: ...` (AUTH and PASS secrets masked).
    #[arg(long, global = true)]
    pub trace: bool,
    /// Seconds to wait for the server at each step.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, global = true)]
    pub timeout: u64,
    /// Implicit TLS (RFC 8314): TLS from the first byte, as on ports 465/995 (the config's
    /// listen.submissions / listen.pop3s / listen.imaps when no --smtp / --pop3 / --imap is given).
    #[arg(long, global = true, conflicts_with = "starttls")]
    pub tls: bool,
    /// Upgrade the plain connection with STARTTLS (SMTP, IMAP) / STLS (POP3) before logging in;
    /// fails if the server does not offer it.
    #[arg(long, global = true)]
    pub starttls: bool,
    /// Trust the certificate(s) in this PEM file (e.g. the server's self-signed
    /// `<data_dir>/tls/cert.pem`) instead of the built-in root certificates.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate at all (throwaway dev setups only).
    #[arg(long, global = true, conflicts_with = "ca")]
    pub insecure: bool,
}

/// How a client session uses TLS.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// No TLS.
    Plain,
    /// TLS from the first byte (RFC 8314).
    Implicit(ClientTls),
    /// STARTTLS / STLS before logging in.
    StartTls(ClientTls),
}

impl TlsMode {
    /// The TLS to start at once (implicit TLS), if that is the mode.
    pub fn implicit(&self) -> Option<&ClientTls> {
        match self {
            TlsMode::Implicit(t) => Some(t),
            _ => None,
        }
    }
}

impl CommonArgs {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.max(1))
    }

    /// `--tls` / `--starttls` with `--ca` / `--insecure`; verification is on by default.
    pub fn tls_mode(&self) -> Result<TlsMode, AgentError> {
        if !self.tls && !self.starttls {
            if self.ca.is_some() || self.insecure {
                return Err(AgentError::local(
                    "--ca and --insecure need --tls or --starttls",
                ));
            }
            return Ok(TlsMode::Plain);
        }
        let tls = if self.insecure {
            ClientTls::insecure()
        } else if let Some(ca) = &self.ca {
            ClientTls::with_ca_file(ca).map_err(|e| AgentError::local(e.to_string()))?
        } else {
            ClientTls::webpki_roots().map_err(|e| AgentError::local(e.to_string()))?
        };
        Ok(if self.tls {
            TlsMode::Implicit(tls)
        } else {
            TlsMode::StartTls(tls)
        })
    }

    /// The password from -p / MAILROOM_PASSWORD, or asked on the terminal without echo.
    pub fn password(&self, user: &str) -> Result<String, AgentError> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        ask_password(user)
    }
}

/// Asks on the controlling terminal (works even when stdin is a pipe).
pub fn ask_password(user: &str) -> Result<String, AgentError> {
    let no_tty = || {
        AgentError::local(format!(
            "no password for {user}: give -p PASSWORD or set MAILROOM_PASSWORD (there is no terminal to ask on)"
        ))
    };
    if !std::io::stdin().is_terminal() && !std::path::Path::new("/dev/tty").exists() {
        return Err(no_tty());
    }
    match rpassword::prompt_password(format!("Password for {user}: ")) {
        Ok(p) if !p.is_empty() => Ok(p),
        Ok(_) => Err(AgentError::local("the password is empty")),
        Err(_) => Err(no_tty()),
    }
}

/// The trace printer: stdout for the interactive agent (in order with its output), stderr
/// for `send` and `inbox` (so their stdout stays clean for scripts).
pub fn tracer(on: bool, to_stdout: bool) -> Option<TraceFn> {
    match (on, to_stdout) {
        (false, _) => None,
        (true, true) => Some(trace::to_stdout()),
        (true, false) => Some(trace::to_stderr()),
    }
}

/// A single-threaded runtime for the async clients.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The name we give in EHLO: this machine's host name (RFC 5321 §4.1.1.1 asks for the
/// client's FQDN or an address literal).
pub fn helo_name() -> String {
    let h = mailroom_server::config::system_hostname();
    if h.is_empty()
        || !h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return "[127.0.0.1]".to_string();
    }
    h
}

/// Which server a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Smtp,
    Pop3,
    /// Submission over implicit TLS (listen.submissions).
    SmtpTls,
    /// POP3 over implicit TLS (listen.pop3s).
    Pop3Tls,
    Imap,
    /// IMAP over implicit TLS (listen.imaps).
    ImapTls,
}

impl Service {
    /// The implicit-TLS twin when `tls` is set.
    pub fn with_tls(self, tls: bool) -> Service {
        match (self, tls) {
            (Service::Smtp, true) => Service::SmtpTls,
            (Service::Pop3, true) => Service::Pop3Tls,
            (Service::Imap, true) => Service::ImapTls,
            (s, _) => s,
        }
    }

    /// The command-line flag that gives this server's address.
    fn flag(self) -> &'static str {
        match self {
            Service::Smtp | Service::SmtpTls => "--smtp",
            Service::Pop3 | Service::Pop3Tls => "--pop3",
            Service::Imap | Service::ImapTls => "--imap",
        }
    }
}

/// The server config and lab server name the top-level command was given: `--config FILE`
/// (passed in by main.rs through the args' `config` field, or found on the command line),
/// else `MAILROOM_CONFIG`; `--name NAME` from the command line.
#[derive(Debug, Clone, Default)]
pub struct ConfigRef {
    pub path: Option<PathBuf>,
    pub name: Option<String>,
}

impl ConfigRef {
    pub fn find(explicit: &Option<PathBuf>) -> ConfigRef {
        let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
        let path = explicit
            .clone()
            .or_else(|| global_flag(&argv, "--config", Some("-c")).map(PathBuf::from))
            .or_else(|| {
                std::env::var_os("MAILROOM_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            });
        let name = global_flag(&argv, "--name", None).map(|n| n.to_string_lossy().into_owned());
        ConfigRef { path, name }
    }
}

/// Finds a global flag of the top-level command (`--config FILE`, `--config=FILE`, `-c FILE`,
/// `-cFILE`) on the command line: the top-level parser consumed it, so this is how the agent
/// sees it.
fn global_flag(args: &[OsString], long: &str, short: Option<&str>) -> Option<OsString> {
    let mut i = 0;
    let mut found = None;
    let long_eq = format!("{long}=");
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--" {
            break;
        }
        if a == long || short.is_some_and(|s| a == s) {
            found = args.get(i + 1).cloned();
            i += 2;
            continue;
        }
        if let Some(v) = a.strip_prefix(&long_eq) {
            found = Some(OsString::from(v));
        } else if let Some(s) = short {
            if let Some(v) = a
                .strip_prefix(s)
                .filter(|v| !v.is_empty() && !a.starts_with("--"))
            {
                found = Some(OsString::from(v));
            }
        }
        i += 1;
    }
    found
}

/// The server config for `user`: a plain server config, or from a lab file (`[[server]]`
/// entries) the server named by `--name`, else the one whose domains include the user's.
fn load_config(cfg: &ConfigRef, path: &Path, user: &str) -> Result<Config, AgentError> {
    let bad = |e: ConfigError| AgentError::local(format!("cannot use the server config: {e}"));
    let servers = match Config::load_lab(path) {
        Ok(s) => s,
        // Not a lab file: a plain server config.
        Err(ConfigError::Invalid { key, .. }) if key == "server" => {
            return Config::load(path).map_err(bad)
        }
        Err(e) => return Err(bad(e)),
    };
    let names = || {
        servers
            .iter()
            .filter_map(|s| s.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = &cfg.name {
        return servers
            .iter()
            .find(|s| s.name.as_deref() == Some(name.as_str()))
            .cloned()
            .ok_or_else(|| {
                AgentError::local(format!(
                    "{} has no server named '{name}' (it has {})",
                    path.display(),
                    names()
                ))
            });
    }
    let domain = user
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    servers
        .iter()
        .find(|s| s.local_domains().contains(&domain))
        .cloned()
        .ok_or_else(|| {
            AgentError::local(format!(
                "no server in the lab file {} hosts {domain} (its servers are {}); choose one with --name",
                path.display(),
                names()
            ))
        })
}

/// The server address for `service`: the explicit `--smtp`/`--pop3`/`--imap` value, else the listener
/// from the config file (submission preferred for SMTP; in a lab file, the user's server),
/// else the dev default. The second value says where it came from (for the banner).
pub fn server_addr(
    service: Service,
    explicit: &Option<String>,
    config: &Option<PathBuf>,
    user: &str,
) -> Result<(String, String), AgentError> {
    if let Some(s) = explicit {
        if !s.contains(':') {
            return Err(AgentError::local(format!(
                "'{s}' is not HOST:PORT (for example 127.0.0.1:2587)"
            )));
        }
        return Ok((s.clone(), "given".into()));
    }
    let cfg_ref = ConfigRef::find(config);
    if let Some(path) = &cfg_ref.path {
        let cfg = load_config(&cfg_ref, path, user)?;
        let file = match &cfg.name {
            Some(n) => format!("server {n} of {}", path.display()),
            None => path.display().to_string(),
        };
        let (addr, key) = match service {
            Service::Smtp => match (cfg.listen.submission, cfg.listen.smtp) {
                (Some(a), _) => (a, "listen.submission"),
                (None, Some(a)) => (a, "listen.smtp"),
                (None, None) => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.submission or listen.smtp; give --smtp HOST:PORT"
                    )))
                }
            },
            Service::Pop3 => match cfg.listen.pop3 {
                Some(a) => (a, "listen.pop3"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.pop3; give --pop3 HOST:PORT"
                    )))
                }
            },
            Service::SmtpTls => match cfg.listen.submissions {
                Some(a) => (a, "listen.submissions"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.submissions (implicit TLS); give --smtp HOST:PORT, or use --starttls"
                    )))
                }
            },
            Service::Pop3Tls => match cfg.listen.pop3s {
                Some(a) => (a, "listen.pop3s"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.pop3s (implicit TLS); give --pop3 HOST:PORT, or use --starttls"
                    )))
                }
            },
            Service::Imap => match cfg.listen.imap {
                Some(a) => (a, "listen.imap"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.imap; give --imap HOST:PORT"
                    )))
                }
            },
            Service::ImapTls => match cfg.listen.imaps {
                Some(a) => (a, "listen.imaps"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.imaps (implicit TLS); give --imap HOST:PORT, or use --starttls"
                    )))
                }
            },
        };
        let addr = connectable(addr).ok_or_else(|| {
            AgentError::local(format!(
                "{key} of {file} is port 0 (any free port): give the real one with {}",
                service.flag()
            ))
        })?;
        return Ok((addr, format!("{key} of {file}")));
    }
    let default = match service {
        Service::Smtp => defaults::SUBMISSION,
        Service::Pop3 => defaults::POP3,
        Service::SmtpTls => defaults::SUBMISSIONS,
        Service::Pop3Tls => defaults::POP3S,
        Service::Imap => defaults::IMAP,
        Service::ImapTls => defaults::IMAPS,
    };
    Ok((default.to_string(), "default".into()))
}

/// A listen address as something to connect to: 0.0.0.0 / [::] become loopback.
fn connectable(mut addr: SocketAddr) -> Option<String> {
    if addr.port() == 0 {
        return None;
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Some(addr.to_string())
}

/// Parses a message number typed by a person.
pub fn message_number(s: &str) -> Result<u32, AgentError> {
    match s.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(AgentError::local(format!(
            "'{s}' is not a message number (1, 2, ... as LIST shows them)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Option<PathBuf> {
        let a: Vec<OsString> = a.iter().map(OsString::from).collect();
        global_flag(&a, "--config", Some("-c")).map(PathBuf::from)
    }

    #[test]
    fn finds_the_global_config_flag() {
        assert_eq!(argv(&["agent", "-e", "a@b"]), None);
        assert_eq!(
            argv(&["--config", "x.toml", "agent"]),
            Some("x.toml".into())
        );
        assert_eq!(argv(&["agent", "--config=y.toml"]), Some("y.toml".into()));
        assert_eq!(argv(&["-c", "z.toml", "send"]), Some("z.toml".into()));
        assert_eq!(argv(&["-cw.toml", "send"]), Some("w.toml".into()));
        assert_eq!(argv(&["send", "--", "--config", "no"]), None);
        assert_eq!(argv(&["send", "--cc", "a@b"]), None);
        let a: Vec<OsString> = ["--name", "school", "agent"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(global_flag(&a, "--name", None), Some("school".into()));
    }

    #[test]
    fn listen_addresses_become_connectable() {
        assert_eq!(
            connectable("0.0.0.0:25".parse().unwrap()),
            Some("127.0.0.1:25".into())
        );
        assert_eq!(
            connectable("[::]:25".parse().unwrap()),
            Some("[::1]:25".into())
        );
        assert_eq!(
            connectable("127.0.0.2:2525".parse().unwrap()),
            Some("127.0.0.2:2525".into())
        );
        assert_eq!(connectable("127.0.0.1:0".parse().unwrap()), None);
    }

    #[test]
    fn message_numbers() {
        assert_eq!(message_number("3").ok(), Some(3));
        assert!(message_number("0").is_err());
        assert!(message_number("x").is_err());
        assert!(message_number("-1").is_err());
    }
}
