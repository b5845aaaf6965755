//! POP3 driver (RFC 1939, RFC 2449 CAPA, RFC 3206 response codes, RFC 5034 SASL).
//!
//! ```text
//!   connect ──"+OK mailroom POP3 ready <pid.clock@host>"──▶ AUTHORIZATION { user }
//!        USER name ─▶ +OK (always, so names cannot be probed)
//!        PASS / APOP / AUTH PLAIN|LOGIN:
//!            wrong  ─▶ wait failure_delay, -ERR [AUTH] ...; after limits.max_auth_failures: close
//!            right, maildrop locked elsewhere ─▶ -ERR [IN-USE] ..., stay in AUTHORIZATION
//!            right ─▶ +OK alice@example.test has N messages (M octets) ─▶ TRANSACTION(Maildrop)
//!   TRANSACTION: STAT LIST RETR DELE NOOP RSET TOP UIDL CAPA
//!        QUIT ─▶ UPDATE: expunge the marked messages (durable), then +OK ... signing off
//!   Closed, autologout timer, shutdown, too many errors: close without UPDATE (RFC 1939 §3).
//! ```
//!
//! Every `-ERR` comes from [`error::Pop3Error::to_reply`]. Replies are queued in the
//! connection and written when the session next waits for input, so pipelined commands
//! (RFC 2449 §6.6) are answered in order with few writes.

mod error;
mod maildrop;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mailroom_proto::line::LineError;
use mailroom_proto::pop3::{self, Command, CommandError, Stuffer, TopFilter};
use mailroom_proto::sasl::{self, SaslError};
use mailroom_store::{password, Account, MessageRef, StoreError};
use md5::{Digest, Md5};
use tokio::sync::watch;

use crate::auth::{self, LoginError};
use crate::conn::{Conn, Event, Stream, Trace, MASK};
use crate::session::{self, ErrorCount, LoginFailures, SaslResponse, TlsUnavailable};
use crate::{ListenerKind, Shared};
use error::Pop3Error;
use maildrop::{Maildrop, MaildropLock, CHUNK};

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// RFC 1939 §3.
enum State {
    /// Not logged in; `user` is the name given by a successful USER, waiting for PASS.
    Authorization { user: Option<String> },
    /// Logged in, maildrop locked.
    Transaction(Box<Maildrop>),
}

struct Session {
    conn: Conn,
    shared: Arc<Shared>,
    /// The APOP challenge from the greeting, brackets included (RFC 1939 §7).
    timestamp: String,
    state: State,
    errors: ErrorCount,
    logins: LoginFailures,
}

/// Serves one POP3 connection until QUIT, a drop, the autologout timer or shutdown.
pub async fn run_session(
    listener: ListenerKind,
    stream: Stream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = &shared.config.limits;
    let trace = Trace {
        enabled: shared.config.trace.pop3,
        proto: listener.name(),
        id: shared.next_session_id(),
    };
    trace.note(&format!("connection from {peer}"));
    let mut conn = Conn::new(
        stream,
        peer,
        limits.max_command_line,
        // RFC 1939 §3: the autologout timer (at least 10 minutes by default).
        limits.pop3_idle_timeout,
        trace,
        shutdown,
    );
    conn.min_data_rate = limits.min_data_rate;
    let timestamp = apop_timestamp(&shared.config.hostname);
    let mut s = Session {
        conn,
        shared,
        timestamp,
        state: State::Authorization { user: None },
        errors: ErrorCount::default(),
        logins: LoginFailures::default(),
    };
    // RFC 1939 §4 (greeting) and §7 (the APOP timestamp in it).
    let greeting = pop3::ok(&format!("mailroom POP3 ready {}", s.timestamp));
    s.conn.send(&greeting);
    loop {
        let event = s.conn.next_line().await;
        let flow = match event {
            Event::Line(Ok(line)) => s.command(line).await,
            Event::Line(Err(LineError::TooLong { limit })) => {
                s.conn
                    .trace
                    .client(&format!("<line longer than {limit} octets>"));
                s.fail(CommandError::TooLong { limit }.into())
            }
            other => s.interrupted(other),
        };
        if flow == Flow::Close {
            break;
        }
    }
    // Dropping the state releases the maildrop lock (at once, not after a slow client has
    // read the last reply); nothing marked is deleted unless QUIT did it (RFC 1939 §3).
    let Session {
        mut conn, state, ..
    } = s;
    drop(state);
    conn.trace.note("connection closed");
    conn.close().await;
}

/// `<pid.clock@hostname>`, different for every greeting (RFC 1939 §7): the clock is the time
/// in microseconds, bumped so that it never repeats within the process.
/// What an APOP check found.
enum Apop {
    /// The digest was checked against the account's secret.
    Checked(Result<Account, LoginError>),
    /// The name has no APOP secret (or names no account).
    NotSetUp,
}

fn apop_timestamp(hostname: &str) -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    let clock = loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(p) => prev = p,
        }
    };
    format!("<{}.{}@{}>", std::process::id(), clock, hostname)
}

/// MD5(timestamp + secret) as lower-case hex (RFC 1939 §7).
fn apop_digest(timestamp: &str, secret: &str) -> String {
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without an early exit, so the time does not tell how much of a digest was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// "1 message" / "2 messages".
fn messages(n: usize) -> String {
    if n == 1 {
        "1 message".to_string()
    } else {
        format!("{n} messages")
    }
}

impl Session {
    /// Queues a `+OK` line.
    fn ok(&mut self, text: &str) {
        let line = pop3::ok(text);
        self.conn.send(&line);
    }

    /// Queues the `-ERR` line of `e`, counts bad commands, and closes after too many.
    fn fail(&mut self, e: Pop3Error) -> Flow {
        if e.is_bad_command() && self.errors.count(&self.shared) {
            let max = self.shared.config.limits.max_errors;
            self.conn
                .trace
                .note(&format!("too many bad commands; last: {e}"));
            let reply = Pop3Error::TooManyErrors(max).to_reply();
            self.conn.send(&reply);
            return Flow::Close;
        }
        let reply = e.to_reply();
        self.conn.send(&reply);
        match e {
            Pop3Error::TooManyAuthFailures | Pop3Error::AccountChanged => Flow::Close,
            _ => Flow::Continue,
        }
    }

    /// The connection ended while waiting for input: no UPDATE (RFC 1939 §3).
    fn interrupted(&mut self, event: Event) -> Flow {
        match event {
            Event::Timeout => {
                // RFC 1939 §3 says the server "should close the TCP connection without ...
                // sending any response"; one -ERR line first tells a telnet user what happened
                // and does no harm to a client that has gone quiet.
                self.conn.trace.note("autologout timer expired");
                let reply = Pop3Error::Autologout.to_reply();
                self.conn.send(&reply);
            }
            Event::Shutdown => {
                let reply = Pop3Error::Shutdown.to_reply();
                self.conn.send(&reply);
            }
            Event::Closed | Event::Line(_) => {}
        }
        Flow::Close
    }

    async fn command(&mut self, line: Vec<u8>) -> Flow {
        let text = String::from_utf8_lossy(&line).into_owned();
        let parsed = pop3::parse_command(&line);
        // Trace::client masks PASS, AUTH and APOP lines, parsed or not; a parsed APOP keeps
        // its mailbox name.
        match &parsed {
            Ok(Command::Apop { name, .. }) => self
                .conn
                .trace
                .client_masked(&format!("APOP {name} {MASK}")),
            _ => self.conn.trace.client(&text),
        }
        let cmd = match parsed {
            Ok(c) => c,
            Err(e) => return self.fail(e.into()),
        };
        match &self.state {
            State::Authorization { .. } => {
                if cmd.valid_in_authorization() {
                    self.authorization(cmd).await
                } else {
                    self.fail(Pop3Error::NotLoggedIn(cmd.keyword()))
                }
            }
            State::Transaction(md) => {
                // A session acts only for the account that logged in: once that account is
                // removed or its password changed, the session ends before the command runs.
                match md.still_valid(&self.shared.store).await {
                    Ok(true) => {}
                    Ok(false) => {
                        self.conn
                            .trace
                            .note("account removed or password changed; closing");
                        return self.fail(Pop3Error::AccountChanged);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot check the session's account");
                        return self.fail(Pop3Error::Store(
                            "cannot read your account right now".into(),
                        ));
                    }
                }
                let State::Transaction(md) = &self.state else {
                    return Flow::Continue;
                };
                if cmd.valid_in_transaction() {
                    self.transaction(cmd).await
                } else if matches!(cmd, Command::Stls) {
                    self.fail(Pop3Error::StlsAfterLogin)
                } else {
                    let user = md.account.address.clone();
                    self.fail(Pop3Error::AlreadyLoggedIn {
                        user,
                        keyword: cmd.keyword(),
                    })
                }
            }
        }
    }

    fn capa(&mut self) {
        // RFC 2449 §5: the list may differ by state; STLS is offered only before login and
        // before TLS (RFC 2595 §4).
        self.ok("capability list follows");
        let stls = !self.conn.is_tls()
            && self.shared.tls.is_some()
            && matches!(self.state, State::Authorization { .. });
        let mut caps = pop3::capabilities(stls);
        // RFC 2595 §4 practice: no USER/SASL where passwords are refused in clear.
        if !self.auth_allowed() {
            caps.retain(|c| *c != "USER" && !c.starts_with("SASL"));
        }
        let body = pop3::multiline(caps);
        self.conn.send(&body);
    }

    // ---------------------------------------------------------------- AUTHORIZATION

    async fn authorization(&mut self, cmd: Command) -> Flow {
        match cmd {
            Command::Capa => {
                self.capa();
                Flow::Continue
            }
            Command::Quit => {
                self.ok("mailroom POP3 server signing off");
                Flow::Close
            }
            Command::Stls => self.stls().await,
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } if !self.auth_allowed() => {
                self.clear_user();
                tracing::info!(peer = %self.conn.peer, "POP3 login refused: TLS required");
                self.fail(Pop3Error::NeedTls)
            }
            Command::User(name) => {
                let name = self.full_name(&name).await;
                // RFC 1939 §7 allows -ERR for an unknown mailbox; we always say +OK, so the
                // answer does not tell which names exist.
                self.ok(&format!("hello {name}, now type PASS and your password"));
                self.state = State::Authorization { user: Some(name) };
                Flow::Continue
            }
            Command::Pass(secret) => {
                let user = match &mut self.state {
                    State::Authorization { user } => user.take(),
                    State::Transaction(_) => None,
                };
                let Some(user) = user else {
                    return self.fail(Pop3Error::PassBeforeUser);
                };
                let account = auth::login(&self.shared, &user, &secret).await;
                self.finish_login(&user, account).await
            }
            Command::Apop { name, digest } => {
                self.clear_user();
                let name = self.full_name(&name).await;
                match self.check_apop(&name, &digest).await {
                    Apop::Checked(account) => {
                        // APOP checks its digest itself, not through `auth::login`, which
                        // counts the other logins' successes for the metrics.
                        if let (Ok(_), Some(kind)) = (&account, crate::current_listener()) {
                            self.shared.metrics.login(kind, true);
                        }
                        self.finish_login(&name, account).await
                    }
                    // Counted as a failed login, like a wrong digest.
                    Apop::NotSetUp => {
                        let shown = if name.contains('@') {
                            name.clone()
                        } else {
                            "ADDRESS".into()
                        };
                        self.auth_failed(Pop3Error::ApopNotSetUp(shown), &name)
                            .await
                    }
                }
            }
            Command::Auth {
                mechanism: None, ..
            } => {
                // RFC 1734 §2 behaviour: a bare AUTH lists the mechanisms.
                self.ok("SASL mechanisms follow");
                let body = pop3::multiline(["PLAIN", "LOGIN"]);
                self.conn.send(&body);
                Flow::Continue
            }
            Command::Auth {
                mechanism: Some(mech),
                initial_response,
            } => {
                self.clear_user();
                self.sasl(&mech, initial_response).await
            }
            // `command` only passes AUTHORIZATION commands here.
            other => self.fail(Pop3Error::NotLoggedIn(other.keyword())),
        }
    }

    /// The `auth_require_tls` policy: may this client send a password now?
    fn auth_allowed(&self) -> bool {
        session::auth_allowed(&self.shared, &self.conn)
    }

    /// STLS (RFC 2595 §4): +OK, then the handshake; plaintext pipelined behind the command is
    /// discarded (CVE-2011-0411 class) and the session starts over in AUTHORIZATION.
    async fn stls(&mut self) -> Flow {
        let acceptor = match session::tls_acceptor(&self.shared, &self.conn) {
            Ok(a) => a,
            Err(TlsUnavailable::AlreadyActive) => return self.fail(Pop3Error::AlreadyTls),
            Err(TlsUnavailable::NotConfigured) => return self.fail(Pop3Error::NoTls),
        };
        self.ok("begin TLS negotiation");
        if !session::swap_to_tls(&mut self.conn, &acceptor, "STLS").await {
            return Flow::Close;
        }
        self.clear_user();
        Flow::Continue
    }

    fn clear_user(&mut self) {
        self.state = State::Authorization { user: None };
    }

    /// Leniency: `USER alice` means `alice@example.test` when that is the one account called
    /// alice, in whatever domain, as lab users type their short name (`auth::full_address`).
    /// A name that names several accounts stays as given, and its login fails asking for the
    /// full address.
    async fn full_name(&self, name: &str) -> String {
        auth::full_address(&self.shared, name).await
    }

    /// RFC 1939 §7: APOP needs the shared secret in plain text. It is the account's APOP
    /// secret (`mailroom user add|passwd --apop`, or `apop_secret` in its `[[accounts]]`
    /// entry), else the plain-text password of its `[[accounts]]` entry; the store keeps only
    /// argon2 hashes of passwords. A name with neither gets [`Apop::NotSetUp`] (unknown names
    /// too, so the answer does not tell which accounts exist).
    /// For a config password the plain text is also checked against the store, so a password
    /// changed with `mailroom user passwd` wins over a stale config.
    async fn check_apop(&self, name: &str, digest: &str) -> Apop {
        let store = self.shared.store.clone();
        let lookup = name.to_string();
        let stored = tokio::task::spawn_blocking(move || {
            let secret = store.apop_secret(&lookup)?;
            let account = match &secret {
                Some(_) => store.find_account(&lookup)?,
                None => None,
            };
            Ok::<_, StoreError>(secret.zip(account))
        })
        .await;
        let stored = match stored {
            Ok(Ok(s)) => s,
            _ => return Apop::Checked(Err(LoginError::Unavailable)),
        };
        if let Some((secret, account)) = stored {
            let expected = apop_digest(&self.timestamp, &secret);
            return Apop::Checked(
                if constant_time_eq(expected.as_bytes(), digest.as_bytes()) {
                    Ok(account)
                } else {
                    Err(LoginError::Rejected)
                },
            );
        }
        let plain = self
            .shared
            .config
            .accounts
            .iter()
            .find(|a| a.address.eq_ignore_ascii_case(name) && !password::is_hash(&a.password))
            .map(|a| a.password.clone());
        let Some(plain) = plain else {
            return Apop::NotSetUp;
        };
        let expected = apop_digest(&self.timestamp, &plain);
        let digest_ok = constant_time_eq(expected.as_bytes(), digest.as_bytes());
        let account = auth::login(&self.shared, name, &plain).await;
        Apop::Checked(match account {
            Ok(a) if digest_ok => Ok(a),
            Ok(_) => Err(LoginError::Rejected),
            Err(e) => Err(e),
        })
    }

    /// After a credentials check for `user`: lock and open the maildrop, or count the
    /// failure. A check that could not be made is a temporary failure (RFC 3206 SYS/TEMP), not
    /// counted.
    async fn finish_login(&mut self, user: &str, account: Result<Account, LoginError>) -> Flow {
        let account = match account {
            Ok(a) => a,
            Err(LoginError::Rejected) => {
                return self.auth_failed(Pop3Error::AuthFailed, user).await
            }
            Err(LoginError::Ambiguous { name }) => {
                return self.auth_failed(Pop3Error::AmbiguousUser(name), user).await
            }
            Err(LoginError::Unavailable) => return self.fail(Pop3Error::AuthUnavailable),
        };
        // RFC 1939 §8 / RFC 2449 §8.1.1: one session per maildrop.
        let lock = match MaildropLock::acquire(&self.shared, account.id.0).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                self.conn
                    .trace
                    .note(&format!("{} is locked by another session", account.address));
                return self.fail(Pop3Error::InUse(account.address));
            }
            Err(e) => {
                tracing::error!(error = %e, account = %account.address, "cannot take the maildrop lock");
                return self.fail(Pop3Error::Store(
                    "cannot lock your maildrop right now".into(),
                ));
            }
        };
        let address = account.address.clone();
        match Maildrop::open(&self.shared.store, account, lock).await {
            Ok(md) => {
                let (n, octets) = md.stat();
                self.state = State::Transaction(Box::new(md));
                self.conn.trace.note(&format!("logged in as {address}"));
                // RFC 1939 §7 example: "+OK mrose's maildrop has 2 messages (320 octets)".
                self.ok(&format!("{address} has {} ({octets} octets)", messages(n)));
                Flow::Continue
            }
            Err(e) => self.fail(e),
        }
    }

    /// A failed authentication of `user` (the name as completed by [`Session::full_name`];
    /// empty when none could be read): logged and recorded with that name, wait (doubling per
    /// failure), then `-ERR [AUTH]`; close after `limits.max_auth_failures`.
    async fn auth_failed(&mut self, e: Pop3Error, user: &str) -> Flow {
        if self.logins.record(&self.shared, &self.conn, user).await {
            self.fail(Pop3Error::TooManyAuthFailures)
        } else {
            self.fail(e)
        }
    }

    /// RFC 5034 §4: `AUTH PLAIN` and `AUTH LOGIN`, with or without an initial response.
    async fn sasl(&mut self, mechanism: &str, initial: Option<String>) -> Flow {
        match mechanism {
            "PLAIN" => {
                // RFC 5034 §4: no initial response, so an empty challenge "+ ".
                let response = match initial {
                    Some(r) => r,
                    None => match self.sasl_line("").await {
                        Ok(r) => r,
                        Err(flow) => return flow,
                    },
                };
                let creds =
                    match sasl::decode_response(&response).and_then(|b| sasl::parse_plain(&b)) {
                        Ok(c) => c,
                        Err(e) => return self.sasl_error(e).await,
                    };
                let name = self.full_name(&creds.authcid).await;
                // RFC 4616 §2: we allow no authorization identity other than oneself.
                if !creds.authzid.is_empty() && !creds.authzid.eq_ignore_ascii_case(&creds.authcid)
                {
                    return self.auth_failed(Pop3Error::AuthFailed, &name).await;
                }
                let account = auth::login(&self.shared, &name, &creds.password).await;
                self.finish_login(&name, account).await
            }
            "LOGIN" => {
                // draft-murchison-sasl-login: "Username:", then "Password:". A client may send
                // the user name as an initial response.
                let user_b64 = match initial {
                    Some(r) => r,
                    None => match self.sasl_line(sasl::LOGIN_USERNAME_CHALLENGE).await {
                        Ok(r) => r,
                        Err(flow) => return flow,
                    },
                };
                let user = match sasl::decode_text(&user_b64) {
                    Ok(u) => u,
                    Err(e) => return self.sasl_error(e).await,
                };
                let pass_b64 = match self.sasl_line(sasl::LOGIN_PASSWORD_CHALLENGE).await {
                    Ok(r) => r,
                    Err(flow) => return flow,
                };
                let pass = match sasl::decode_text(&pass_b64) {
                    Ok(p) => p,
                    Err(e) => return self.sasl_error(e).await,
                };
                let name = if user.is_empty() {
                    String::new()
                } else {
                    self.full_name(&user).await
                };
                if user.is_empty() || pass.is_empty() {
                    return self.auth_failed(Pop3Error::AuthFailed, &name).await;
                }
                let account = auth::login(&self.shared, &name, &pass).await;
                self.finish_login(&name, account).await
            }
            other => self.fail(Pop3Error::UnknownMechanism(pop3::shown(other, 20))),
        }
    }

    async fn sasl_error(&mut self, e: SaslError) -> Flow {
        match e {
            // RFC 5034 §4: "*" cancels; the server answers -ERR.
            SaslError::Cancelled => self.fail(Pop3Error::SaslCancelled),
            // RFC 5034 §4: a response that is not base64 is rejected with -ERR.
            SaslError::Base64 => self.fail(Pop3Error::SaslBase64),
            // No user name could be read from the message: the failure is logged without one.
            SaslError::Malformed(why) => self.auth_failed(Pop3Error::SaslMalformed(why), "").await,
        }
    }

    /// Sends a continuation (`+ challenge`) and reads the client's response line, which is
    /// traced as `****`. `Err(flow)` when the exchange ended (the reply is already queued).
    async fn sasl_line(&mut self, challenge: &str) -> Result<String, Flow> {
        let cont = pop3::continuation(challenge);
        match session::sasl_response(&mut self.conn, &cont).await {
            SaslResponse::Line(line) => {
                if line.contains(&0) {
                    return Err(self.fail(CommandError::Nul.into()));
                }
                String::from_utf8(line).map_err(|_| self.fail(Pop3Error::SaslBase64))
            }
            // Too long: a client error, not a failed login (see `session`).
            SaslResponse::TooLong { limit } => {
                Err(self.fail(CommandError::TooLong { limit }.into()))
            }
            SaslResponse::Ended(event) => Err(self.interrupted(event)),
        }
    }

    // ---------------------------------------------------------------- TRANSACTION

    fn maildrop(&mut self) -> Option<&mut Maildrop> {
        match &mut self.state {
            State::Transaction(md) => Some(md),
            State::Authorization { .. } => None,
        }
    }

    async fn transaction(&mut self, cmd: Command) -> Flow {
        let Some(md) = self.maildrop() else {
            return self.fail(Pop3Error::NotLoggedIn(cmd.keyword()));
        };
        match cmd {
            Command::Capa => {
                self.capa();
                Flow::Continue
            }
            Command::Noop => {
                self.ok("");
                Flow::Continue
            }
            Command::Stat => {
                // RFC 1939 §5: exactly "+OK nn mm" (a drop listing); deleted ones not counted.
                let (n, octets) = md.stat();
                self.ok(&format!("{n} {octets}"));
                Flow::Continue
            }
            Command::List(None) => {
                let (n, octets) = md.stat();
                let lines: Vec<String> =
                    md.live().map(|(i, m)| format!("{i} {}", m.size)).collect();
                self.ok(&format!("{} ({octets} octets)", messages(n)));
                let body = pop3::multiline(lines);
                self.conn.send(&body);
                Flow::Continue
            }
            Command::List(Some(n)) => match md.get(n) {
                // RFC 1939 §5: a scan listing, "+OK n size".
                Ok(m) => {
                    let size = m.size;
                    self.ok(&format!("{n} {size}"));
                    Flow::Continue
                }
                Err(e) => self.fail(e),
            },
            Command::Uidl(None) => {
                let lines: Vec<String> = md
                    .live()
                    .map(|(i, m)| format!("{i} {}", md.unique_id(m)))
                    .collect();
                self.ok("unique-id listing follows");
                let body = pop3::multiline(lines);
                self.conn.send(&body);
                Flow::Continue
            }
            Command::Uidl(Some(n)) => match md.get(n) {
                Ok(m) => {
                    let id = md.unique_id(m);
                    self.ok(&format!("{n} {id}"));
                    Flow::Continue
                }
                Err(e) => self.fail(e),
            },
            Command::Retr(n) => match md.get(n) {
                Ok(m) => {
                    let (message, size) = (md.at(m), m.size);
                    self.send_message(message, size, None, format!("{size} octets follow"), n)
                        .await
                }
                Err(e) => self.fail(e),
            },
            Command::Top { msg: n, lines } => match md.get(n) {
                Ok(m) => {
                    let (message, size) = (md.at(m), m.size);
                    let what = if lines == u64::MAX {
                        "all its lines".to_string()
                    } else if lines == 1 {
                        "1 line".to_string()
                    } else {
                        format!("{lines} lines")
                    };
                    self.send_message(
                        message,
                        size,
                        Some(lines),
                        format!("top of message {n} follows (the header and {what} of the body)"),
                        n,
                    )
                    .await
                }
                Err(e) => self.fail(e),
            },
            Command::Dele(n) => {
                let idx = match md.get(n) {
                    Ok(_) => n as usize - 1,
                    Err(e) => return self.fail(e),
                };
                md.msgs[idx].deleted = true;
                // RFC 1939 §5: only marked; removed in the UPDATE state.
                self.ok(&format!(
                    "message {n} deleted (it is removed when you QUIT; RSET undoes this)"
                ));
                Flow::Continue
            }
            Command::Rset => {
                let undeleted = md.unmark_all();
                let (n, octets) = md.stat();
                self.ok(&format!(
                    "maildrop has {} ({octets} octets); {undeleted} undeleted",
                    messages(n)
                ));
                Flow::Continue
            }
            Command::Quit => self.update().await,
            // `command` only passes TRANSACTION commands here.
            other => self.fail(Pop3Error::NotLoggedIn(other.keyword())),
        }
    }

    /// RETR and TOP (RFC 1939 §5, §7): the message streamed from the store chunk by chunk,
    /// byte-stuffed, ending in CRLF "." CRLF. The first chunk is read before "+OK", so a store
    /// failure can still be answered with -ERR; a failure later can only end the connection.
    async fn send_message(
        &mut self,
        message: MessageRef,
        size: u64,
        top: Option<u64>,
        status: String,
        n: u32,
    ) -> Flow {
        let store = self.shared.store.clone();
        // One octet more than the message: a small message then comes back in one short read.
        let cap = maildrop::read_size(size).min(
            usize::try_from(size)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        );
        let buf = vec![0u8; cap];
        let (mut buf, mut got) = match maildrop::read_chunk(&store, message, 0, buf).await {
            Ok(x) => x,
            Err(StoreError::NotFound(_)) => return self.fail(Pop3Error::Expunged(n)),
            Err(e) => {
                tracing::error!(error = %e, "cannot read message {n}");
                return self.fail(Pop3Error::Store(format!(
                    "cannot read message {n} right now"
                )));
            }
        };
        self.ok(&status);
        let mut stuffer = Stuffer::new();
        let mut filter = top.map(TopFilter::new);
        let mut out = Vec::with_capacity(CHUNK + CHUNK / 4);
        let mut offset = 0u64;
        while got > 0 {
            let mut data = &buf[..got];
            if let Some(f) = filter.as_mut() {
                data = &data[..f.take(data)];
            }
            // Stuff and queue in CHUNK pieces, so the output buffers stay small too.
            for piece in data.chunks(CHUNK) {
                out.clear();
                stuffer.push(piece, &mut out);
                if self.conn.send_raw(&out).await.is_err() {
                    return Flow::Close;
                }
            }
            offset += got as u64;
            // A short read means the end of the message: no need to ask the store again.
            if got < buf.len() || filter.as_ref().is_some_and(TopFilter::done) {
                break;
            }
            match maildrop::read_chunk(&store, message, offset, buf).await {
                Ok((b, k)) => {
                    buf = b;
                    got = k;
                }
                Err(e) => {
                    // "+OK" is out and part of the body too: closing is the only honest end.
                    tracing::error!(error = %e, "reading message {n} failed midway; closing");
                    return Flow::Close;
                }
            }
        }
        out.clear();
        stuffer.finish(&mut out);
        if self.conn.send_raw(&out).await.is_err() {
            return Flow::Close;
        }
        self.conn.trace.server(
            format!(
                "<{} octets of message {n}, not traced>\r\n.\r\n",
                stuffer.written()
            )
            .as_bytes(),
        );
        Flow::Continue
    }

    /// QUIT in TRANSACTION: the UPDATE state (RFC 1939 §6). "+OK" only once the deletions are
    /// on disk; if they cannot be made durable, "-ERR [SYS/TEMP]" and nothing is deleted.
    async fn update(&mut self) -> Flow {
        let Some(md) = self.maildrop() else {
            return Flow::Close;
        };
        let marked = md.marked();
        let address = md.account.address.clone();
        let mailbox = md.mailbox;
        let (left, _) = md.stat();
        if marked.is_empty() {
            self.ok(&format!(
                "{address} signing off (maildrop has {})",
                messages(left)
            ));
            return Flow::Close;
        }
        match maildrop::expunge(&self.shared.store, mailbox, marked).await {
            Ok(removed) => {
                self.conn.trace.note(&format!("UPDATE: {removed} removed"));
                self.ok(&format!(
                    "{address} signing off ({} deleted, {left} left)",
                    messages(removed)
                ));
            }
            Err(e) => {
                tracing::error!(error = %e, account = %address, "POP3 UPDATE failed");
                let _ = self.fail(Pop3Error::UpdateFailed);
            }
        }
        // The lock is released when the session (and its Maildrop) is dropped, after this.
        Flow::Close
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apop_rfc_example() {
        // RFC 1939 §7.
        assert_eq!(
            apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
    }

    #[test]
    fn timestamps_are_unique_and_well_formed() {
        let a = apop_timestamp("mx.example.test");
        let b = apop_timestamp("mx.example.test");
        assert_ne!(a, b);
        let pid = std::process::id().to_string();
        let inner = a
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix("@mx.example.test>"))
            .unwrap();
        let (p, clock) = inner.split_once('.').unwrap();
        assert_eq!(p, pid);
        assert!(clock.bytes().all(|b| b.is_ascii_digit()), "{a}");
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    /// The session toolkit's one behaviour for an over-long SASL response, in POP3's words:
    /// `-ERR command line too long`, the exchange is over, and it is not a failed login.
    #[tokio::test]
    async fn over_long_sasl_response_is_not_a_failed_login() {
        use crate::test_support::Harness;
        let h = Harness::new(|c| {
            c.limits.max_command_line = 100;
            c.limits.max_auth_failures = 1;
        });
        let mut c = h.start(|stream, peer, shared, shutdown| {
            run_session(ListenerKind::Pop3, stream, peer, shared, shutdown)
        });
        assert!(c.line().await.starts_with("+OK mailroom POP3 ready <"));
        c.send("AUTH PLAIN\r\n").await;
        assert_eq!(c.line().await, "+ ");
        c.send(format!("{}\r\n", "QUFB".repeat(50))).await;
        let r = c.line().await;
        assert!(
            r.starts_with("-ERR command line too long (the limit is 100 octets)"),
            "{r}"
        );
        let plain = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "\0alice@example.test\0alice-secret",
        );
        c.send(format!("AUTH PLAIN {plain}\r\n")).await;
        assert_eq!(
            c.line().await,
            "+OK alice@example.test has 0 messages (0 octets)"
        );
    }

    /// Short user names: `USER alice` works when one account is called alice, whatever the
    /// config's domains; with a second alice elsewhere the login fails and asks for the full
    /// address (AUTH PLAIN too).
    #[tokio::test]
    async fn short_user_names() {
        use crate::test_support::Harness;
        let h = Harness::new(|c| c.domains.clear());
        let session = |h: &Harness| {
            h.start(|stream, peer, shared, shutdown| {
                run_session(ListenerKind::Pop3, stream, peer, shared, shutdown)
            })
        };
        let mut c = session(&h);
        assert!(c.line().await.starts_with("+OK mailroom POP3 ready <"));
        c.send("USER alice\r\n").await;
        assert_eq!(
            c.line().await,
            "+OK hello alice@example.test, now type PASS and your password"
        );
        c.send("PASS alice-secret\r\n").await;
        assert_eq!(
            c.line().await,
            "+OK alice@example.test has 0 messages (0 octets)"
        );
        c.send("QUIT\r\n").await;
        assert!(c.line().await.starts_with("+OK"));

        let hash = password::hash_password("other").unwrap();
        h.shared
            .store
            .add_account("alice@school.test", &hash)
            .unwrap();
        let mut c = session(&h);
        assert!(c.line().await.starts_with("+OK mailroom POP3 ready <"));
        c.send("USER alice\r\nPASS alice-secret\r\n").await;
        assert_eq!(
            c.line().await,
            "+OK hello alice, now type PASS and your password"
        );
        assert_eq!(
            c.line().await,
            "-ERR [AUTH] the user name alice is not unique here: several domains have a user of that name; log in with your full address, e.g. USER alice@your.domain"
        );
        let plain =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "\0alice\0other");
        c.send(format!("AUTH PLAIN {plain}\r\n")).await;
        assert!(c
            .line()
            .await
            .starts_with("-ERR [AUTH] the user name alice is not unique here"),);
        c.send("USER alice@school.test\r\nPASS other\r\n").await;
        assert!(c.line().await.starts_with("+OK hello alice@school.test"));
        assert_eq!(
            c.line().await,
            "+OK alice@school.test has 0 messages (0 octets)"
        );
    }

    #[test]
    fn plural() {
        assert_eq!(messages(0), "0 messages");
        assert_eq!(messages(1), "1 message");
        assert_eq!(messages(2), "2 messages");
    }
}
