//! The SMTP server driver (RFC 5321) for the MX and submission listeners.
//!
//! ```text
//!  connect ─220─▶ Connected ─EHLO/HELO─▶ Greeted ─MAIL─▶ Mail{env} ─RCPT─▶ Rcpt{env}
//!                                          ▲   ▲                            │ DATA ─354─ body ─250─┐
//!                                          │   └──────── RSET / EHLO ───────┤ BDAT n ... BDAT n LAST
//!                                          └────────────────────────────────┴──────────────────────┘
//!  AUTH (RFC 4954): in Greeted only.  NOOP, RSET, HELP, VRFY, EXPN, QUIT: in every state.
//! ```
//!
//! The two listeners differ in policy only:
//! - **MX** (`[listen] smtp`): any sender; recipients in local domains must exist (550 5.1.1);
//!   other domains are refused (554 5.7.1) unless the session authenticated.
//! - **Submission** (`[listen] submission`, RFC 6409): AUTH before MAIL (530 5.7.0); the
//!   envelope sender must be the authenticated address (553 5.7.1); any recipient; adds
//!   Date and Message-ID when missing.
//!
//! Every refusal is built in [`Refusal::reply`], the one place where errors become wire text.

mod help;

use std::net::SocketAddr;
use std::sync::Arc;

use mailroom_proto::line::LineError;
use mailroom_proto::sasl::{self, SaslError};
use mailroom_proto::smtp::{
    normalize_body, parse_command, Address, Command, CommandError, DataError, DataProgress,
    DataReceiver, ForwardPath, Param, Reply, ReversePath,
};
use mailroom_store::Account;
use tokio::sync::watch;

use crate::budget::Reservation;
use crate::conn::{Conn, Event, Stream, Trace};
use crate::delivery::{self, Accepted, Route, Target};
use crate::session::{self, ErrorCount, LoginFailures, SaslResponse, TlsUnavailable};
use crate::{auth, ListenerKind, Shared};

/// One recipient accepted by RCPT: the address given and where it leads.
#[derive(Debug, Clone)]
struct Recipient {
    address: String,
    targets: Vec<Target>,
}

/// The envelope of the transaction in progress.
#[derive(Debug, Clone)]
struct Envelope {
    from: ReversePath,
    smtputf8: bool,
    /// The size the client declared with MAIL FROM's SIZE= (RFC 1870), if it did.
    declared_size: Option<u64>,
    rcpts: Vec<Recipient>,
}

/// RFC 5321 §4.1.4 session states; each variant carries only what is valid in it.
#[derive(Debug)]
enum State {
    Connected,
    Greeted,
    Mail(Envelope),
    Rcpt(Envelope),
    /// BDAT chunks received so far (RFC 3030), their share of the memory budget, and why
    /// the chunks are no longer kept, once they are not (too big, or the budget used up).
    Bdat {
        env: Envelope,
        body: Vec<u8>,
        held: Reservation,
        dropped: Option<DataError>,
    },
}

/// Every way a command can be refused. [`Refusal::reply`] turns it into wire text.
#[derive(Debug)]
enum Refusal {
    Syntax(CommandError),
    LineTooLong(usize),
    HeloFirst,
    NestedMail,
    MailFirst,
    RcptFirst,
    AuthRequired,
    AuthNotDuringTransaction,
    AlreadyAuthenticated,
    AuthCancelled,
    AuthBadBase64,
    /// A SASL response longer than the command-line limit (RFC 4954 §6: 500 5.5.6).
    AuthLineTooLong(usize),
    AuthMalformed(&'static str),
    AuthUnknownMechanism(String),
    AuthFailed,
    /// The password could not be checked now (RFC 4954 §6: 454 4.7.0); not a failed login
    /// and not a client error.
    AuthTemporary,
    NoStartTls,
    AlreadyTls,
    /// Plaintext AUTH refused by `auth_require_tls` (RFC 3207 §4, RFC 4954 §4).
    AuthNeedsTls,
    /// Submission without AUTH where AUTH needs TLS first (RFC 3207 §4: 530 5.7.0).
    StartTlsFirst,
    SenderNotOwned {
        sender: String,
        user: String,
    },
    NeedSmtpUtf8,
    UnknownParam {
        verb: &'static str,
        keyword: String,
    },
    BadParamValue {
        keyword: String,
        hint: &'static str,
    },
    SizeDeclaredTooBig {
        limit: u64,
    },
    TooManyRecipients {
        limit: usize,
    },
    UnknownUser(String),
    /// A local mailbox the recipient leads to is at its storage quota, or the declared size
    /// would take it over (RFC 5321 §4.2.5 452, RFC 3463 §3.3 X.2.2).
    MailboxFull {
        address: String,
        declared: Option<u64>,
    },
    RelayDenied(String),
    NoPostmaster,
    Data(DataError),
    TooManyHops(usize),
    StoreFailed,
    /// The store's disk is full (RFC 3463 §3.4 X.3.1 "mail system full"; RFC 5321 §4.2.2
    /// 452 "insufficient system storage"): nothing was stored, the sender keeps the message.
    StorageFull,
    Expn,
    DataAfterBdat,
    BdatWithoutRecipients,
}

impl Refusal {
    fn reply(&self) -> Reply {
        use Refusal::*;
        match self {
            Syntax(e) => Reply::new(e.code(), &e.enhanced().to_string(), e.to_string()),
            LineTooLong(limit) => Reply::new(
                500,
                "5.5.2",
                format!("Line too long: commands may be at most {limit} octets"),
            ),
            HeloFirst => Reply::new(503, "5.5.1", "Say hello first: EHLO your.host.name"),
            NestedMail => Reply::new(
                503,
                "5.5.1",
                "Sender already given: continue with RCPT TO:<recipient>, or RSET to start over",
            ),
            MailFirst => Reply::new(503, "5.5.1", "Send MAIL FROM:<you@example.test> first"),
            RcptFirst => Reply::new(503, "5.5.1", "Send RCPT TO:<recipient> first (at least one recipient)"),
            AuthRequired => Reply::new(
                530,
                "5.7.0",
                "Authentication required: log in with AUTH LOGIN or AUTH PLAIN first",
            ),
            AuthNotDuringTransaction => Reply::new(
                503,
                "5.5.1",
                "AUTH is not allowed during a mail transaction; RSET first",
            ),
            AlreadyAuthenticated => Reply::new(503, "5.5.1", "Already authenticated"),
            AuthCancelled => Reply::new(501, "5.0.0", "Authentication cancelled"),
            AuthBadBase64 => Reply::new(
                501,
                "5.5.2",
                "That was not valid base64; start over with AUTH",
            ),
            AuthLineTooLong(limit) => Reply::new(
                500,
                "5.5.6",
                format!("Authentication Exchange line is too long (at most {limit} octets); start over with AUTH"),
            ),
            AuthMalformed(what) => Reply::new(501, "5.5.2", format!("Malformed AUTH response: {what}")),
            AuthUnknownMechanism(m) => Reply::new(
                504,
                "5.5.4",
                format!("Unrecognized authentication mechanism {m}; use AUTH PLAIN or AUTH LOGIN"),
            ),
            AuthFailed => Reply::new(535, "5.7.8", "Authentication credentials invalid"),
            AuthTemporary => Reply::new(
                454,
                "4.7.0",
                "Temporary authentication failure; try again later",
            ),
            NoStartTls => Reply::new(502, "5.5.1", "STARTTLS is not available on this server"),
            AlreadyTls => Reply::new(503, "5.5.1", "TLS is already active on this connection"),
            AuthNeedsTls => Reply::new(
                538,
                "5.7.11",
                "Encryption required for authentication: use STARTTLS first, then EHLO and AUTH",
            ),
            StartTlsFirst => Reply::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first: passwords are not accepted in clear here",
            ),
            SenderNotOwned { sender, user } => Reply::new(
                553,
                "5.7.1",
                format!("Sender address rejected: {sender} is not owned by user {user}; use MAIL FROM:<{user}>"),
            ),
            NeedSmtpUtf8 => Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address: add the SMTPUTF8 parameter to MAIL FROM (RFC 6531)",
            ),
            UnknownParam { verb, keyword } => Reply::new(
                555,
                "5.5.4",
                format!("{verb} parameter {keyword} is not supported"),
            ),
            BadParamValue { keyword, hint } => {
                Reply::new(501, "5.5.4", format!("Bad value for {keyword}: {hint}"))
            }
            SizeDeclaredTooBig { limit } => Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size of {limit} octets"),
            ),
            TooManyRecipients { limit } => Reply::new(
                452,
                "4.5.3",
                format!("Too many recipients (at most {limit} per message); send the rest in another message"),
            ),
            UnknownUser(a) => Reply::new(550, "5.1.1", format!("<{a}>: no such user here")),
            // Temporary, so the sending server keeps the message and tries again; the text
            // gives no numbers (how full a mailbox is is nobody else's business) and, for an
            // alias, does not say which member is full (EXPN is disabled for the same reason).
            MailboxFull { address, declared: None } => Reply::new(
                452,
                "4.2.2",
                format!("<{address}>: mailbox full; the recipient has to delete some mail first. Keep the message and try again later; other recipients are not affected"),
            ),
            MailboxFull { address, declared: Some(size) } => Reply::new(
                452,
                "4.2.2",
                format!("<{address}>: mailbox full: a message of {size} octets does not fit in what is left of its quota. Keep the message and try again later, or send a smaller one; other recipients are not affected"),
            ),
            RelayDenied(a) => Reply::new(
                554,
                "5.7.1",
                format!("<{a}>: relay access denied; this server only accepts mail for its own domains unless you log in (AUTH)"),
            ),
            NoPostmaster => Reply::new(550, "5.1.1", "<Postmaster>: no postmaster account is set up here"),
            Data(e) => match e {
                DataError::TooBig { limit } => Reply::new(
                    552,
                    "5.3.4",
                    format!("Message too big: the limit is {limit} octets; nothing was stored"),
                ),
                DataError::LineTooLong { line, limit } => Reply::new(
                    550,
                    "5.6.0",
                    format!("Message refused: line {line} is longer than {limit} octets; wrap long lines or encode the body (quoted-printable or base64)"),
                ),
                DataError::BareCr { line } => Reply::new(
                    550,
                    "5.6.0",
                    format!("Message refused: line {line} contains a bare CR; end every line with CRLF"),
                ),
                DataError::Abandoned => Reply::new(
                    452,
                    "4.3.1",
                    "Insufficient system storage: the server is receiving too many messages at once; try again in a few minutes (nothing was stored)",
                ),
                DataError::Smuggling { line } => Reply::new(
                    550,
                    "5.6.0",
                    format!("Message refused: line {line} is a lone '.' next to a bare LF (looks like SMTP smuggling); end every line with CRLF"),
                ),
            },
            TooManyHops(n) => Reply::new(
                554,
                "5.4.6",
                format!("Too many hops ({n} Received: headers): this looks like a mail loop"),
            ),
            StoreFailed => Reply::new(
                451,
                "4.3.0",
                "Temporary failure storing the message; nothing was accepted, please try again later",
            ),
            StorageFull => Reply::new(
                452,
                "4.3.1",
                "Insufficient system storage: the server's disk is full; nothing was stored, keep the message and try again later",
            ),
            Expn => Reply::new(502, "5.5.1", "EXPN is disabled: mailing lists are private here"),
            DataAfterBdat => Reply::new(
                503,
                "5.5.1",
                "DATA cannot follow BDAT in one message; finish with BDAT n LAST, or RSET",
            ),
            BdatWithoutRecipients => Reply::new(
                503,
                "5.5.1",
                "BDAT needs MAIL FROM and RCPT TO first; the chunk was discarded",
            ),
        }
    }
}

/// What the loop does after a command.
enum Flow {
    Continue,
    Close,
}

struct Session {
    kind: ListenerKind,
    shared: Arc<Shared>,
    conn: Conn,
    id: u64,
    helo: Option<String>,
    esmtp: bool,
    auth: Option<Account>,
    state: State,
    errors: ErrorCount,
    logins: LoginFailures,
}

pub async fn run_session(
    listener: ListenerKind,
    stream: Stream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let id = shared.next_session_id();
    let cfg = &shared.config;
    let kind = listener.base();
    let trace = Trace {
        enabled: match kind {
            ListenerKind::Submission => cfg.trace.submission,
            _ => cfg.trace.smtp,
        },
        proto: listener.name(),
        id,
    };
    trace.note(&format!("connection from {peer}"));
    let mut conn = Conn::new(
        stream,
        peer,
        cfg.limits.max_command_line,
        cfg.limits.idle_timeout,
        trace,
        shutdown,
    );
    conn.min_data_rate = cfg.limits.min_data_rate;
    let mut s = Session {
        kind,
        shared: shared.clone(),
        conn,
        id,
        helo: None,
        esmtp: false,
        auth: None,
        state: State::Connected,
        errors: ErrorCount::default(),
        logins: LoginFailures::default(),
    };
    s.run().await;
}

impl Session {
    fn host(&self) -> &str {
        &self.shared.config.hostname
    }

    fn reply(&mut self, r: Reply) {
        self.conn.send(&r.to_bytes());
    }

    fn ok(&mut self, code: u16, enhanced: &str, text: impl Into<String>) {
        self.reply(Reply::new(code, enhanced, text));
    }

    /// Sends a refusal and counts it (except the server's own temporary trouble); too many
    /// errors end the session.
    fn refuse(&mut self, r: Refusal) -> Flow {
        let reply = r.reply();
        self.reply(reply);
        if matches!(r, Refusal::AuthTemporary) {
            return Flow::Continue;
        }
        if self.errors.count(&self.shared) {
            let host = self.host().to_string();
            self.ok(
                421,
                "4.7.0",
                format!("{host} Too many errors in this session; closing connection"),
            );
            return Flow::Close;
        }
        Flow::Continue
    }

    async fn run(&mut self) {
        let greeting = format!(
            "{} ESMTP mailroom ready; say EHLO your.host.name",
            self.host()
        );
        self.ok(220, "", greeting);
        loop {
            let flow = match self.conn.next_line().await {
                Event::Line(Ok(bytes)) => self.command(bytes).await,
                Event::Line(Err(LineError::TooLong { limit })) => {
                    self.conn.trace.client("(over-long line discarded)");
                    self.refuse(Refusal::LineTooLong(limit))
                }
                Event::Closed => break,
                Event::Timeout => {
                    let host = self.host().to_string();
                    let secs = self.shared.config.limits.idle_timeout.as_secs();
                    self.ok(
                        421,
                        "4.4.2",
                        format!(
                            "{host} Timeout: no complete command within {secs} seconds; closing connection"
                        ),
                    );
                    Flow::Close
                }
                Event::Shutdown => {
                    let host = self.host().to_string();
                    self.ok(
                        421,
                        "4.3.2",
                        format!("{host} Server shutting down; please try again later"),
                    );
                    Flow::Close
                }
            };
            if let Flow::Close = flow {
                break;
            }
        }
        self.conn.close().await;
    }

    async fn command(&mut self, bytes: Vec<u8>) -> Flow {
        // Masked by the one rule for all protocols, whether it parses or not (`AUTH PLAIN ****`).
        self.conn.trace.client(&String::from_utf8_lossy(&bytes));
        let cmd = match parse_command(&bytes) {
            Ok(c) => c,
            Err(e) => return self.refuse(Refusal::Syntax(e)),
        };
        match cmd {
            Command::Ehlo(domain) => self.hello(domain, true),
            Command::Helo(domain) => self.hello(domain, false),
            Command::Mail { from, params } => self.mail(from, params).await,
            Command::Rcpt { to, params } => self.rcpt(to, params).await,
            Command::Data => self.data().await,
            Command::Bdat { size, last } => self.bdat(size, last).await,
            Command::Rset => {
                if !matches!(self.state, State::Connected) {
                    self.state = State::Greeted;
                }
                self.ok(250, "2.0.0", "Ok, transaction reset");
                Flow::Continue
            }
            Command::Noop => {
                self.ok(250, "2.0.0", "Ok");
                Flow::Continue
            }
            Command::Quit => {
                let host = self.host().to_string();
                self.ok(221, "2.0.0", format!("{host} closing connection; bye"));
                Flow::Close
            }
            Command::Vrfy(_) => {
                // RFC 5321 §3.5.3: 252 when we will not confirm or deny (no address harvesting).
                self.ok(
                    252,
                    "2.5.0",
                    "Cannot VRFY user, but will accept message and attempt delivery",
                );
                Flow::Continue
            }
            Command::Expn(_) => self.refuse(Refusal::Expn),
            Command::Help(topic) => {
                let r = help::reply(topic.as_deref(), &self.help_state());
                self.reply(r);
                Flow::Continue
            }
            Command::StartTls => self.start_tls().await,
            Command::Auth {
                mechanism,
                initial_response,
            } => self.authenticate(mechanism, initial_response).await,
        }
    }

    fn help_state(&self) -> help::HelpState {
        help::HelpState {
            greeted: !matches!(self.state, State::Connected),
            in_mail: matches!(
                self.state,
                State::Mail(_) | State::Rcpt(_) | State::Bdat { .. }
            ),
            has_rcpt: matches!(self.state, State::Rcpt(_) | State::Bdat { .. }),
            can_auth: self.auth.is_none() && matches!(self.state, State::Greeted),
            submission: self.kind == ListenerKind::Submission,
        }
    }

    /// The `auth_require_tls` policy: may this client send a password now?
    fn auth_allowed(&self) -> bool {
        session::auth_allowed(&self.shared, &self.conn)
    }

    /// STARTTLS (RFC 3207): 220, then the handshake. Whatever the client pipelined behind the
    /// command is discarded (§4.2, CVE-2011-0411), and the session starts over (§4.2: the
    /// server forgets the EHLO and any AUTH; the client must EHLO again).
    async fn start_tls(&mut self) -> Flow {
        let acceptor = match session::tls_acceptor(&self.shared, &self.conn) {
            Ok(a) => a,
            Err(TlsUnavailable::AlreadyActive) => return self.refuse(Refusal::AlreadyTls),
            Err(TlsUnavailable::NotConfigured) => return self.refuse(Refusal::NoStartTls),
        };
        if matches!(self.state, State::Connected) {
            return self.refuse(Refusal::HeloFirst);
        }
        self.ok(220, "2.0.0", "Ready to start TLS");
        if !session::swap_to_tls(&mut self.conn, &acceptor, "STARTTLS").await {
            return Flow::Close;
        }
        self.helo = None;
        self.esmtp = false;
        self.auth = None;
        self.state = State::Connected;
        Flow::Continue
    }

    fn hello(&mut self, domain: String, esmtp: bool) -> Flow {
        // RFC 5321 §4.1.4: EHLO/HELO resets any transaction in progress.
        self.state = State::Greeted;
        self.esmtp = esmtp;
        let host = self.host().to_string();
        let peer = self.conn.peer.ip();
        let greeting = format!("{host} Hello {domain} [{peer}]");
        self.helo = Some(domain);
        if !esmtp {
            self.ok(250, "", greeting);
            return Flow::Continue;
        }
        let limits = &self.shared.config.limits;
        let mut lines = vec![
            greeting,
            "PIPELINING".to_string(),
            format!("SIZE {}", limits.max_message_size),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "CHUNKING".to_string(),
            "HELP".to_string(),
        ];
        if !self.conn.is_tls() && self.shared.tls.is_some() {
            lines.push("STARTTLS".to_string());
        }
        // RFC 4954 §4 / RFC 3207 §4: AUTH is advertised only where it is allowed.
        if self.auth_allowed() && self.auth.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        self.reply(Reply::multiline(250, "", lines));
        Flow::Continue
    }

    async fn mail(&mut self, from: ReversePath, params: Vec<Param>) -> Flow {
        match self.state {
            State::Connected => return self.refuse(Refusal::HeloFirst),
            State::Greeted => {}
            _ => return self.refuse(Refusal::NestedMail),
        }
        if self.kind == ListenerKind::Submission && self.auth.is_none() {
            if !self.auth_allowed() {
                return self.refuse(Refusal::StartTlsFirst);
            }
            return self.refuse(Refusal::AuthRequired);
        }
        // A session sends only as the account that logged in, as it is now: once that
        // account is removed or its password changed, the session ends.
        if let Some(account) = self.auth.clone() {
            let store = self.shared.store.clone();
            let now = tokio::task::spawn_blocking(move || store.account_by_id(account.id)).await;
            match now {
                Ok(Ok(now))
                    if now
                        .as_ref()
                        .is_some_and(|a| a.password_hash == account.password_hash) => {}
                Ok(Ok(_)) => {
                    let host = self.host().to_string();
                    self.conn
                        .trace
                        .note("account removed or password changed; closing");
                    self.ok(
                        421,
                        "4.7.0",
                        format!("{host} Your account was removed or its password was changed; log in again. Closing connection"),
                    );
                    return Flow::Close;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot check the session's account");
                    return self.refuse(Refusal::StoreFailed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "account check task failed");
                    return self.refuse(Refusal::StoreFailed);
                }
            }
        }
        let mut smtputf8 = false;
        let mut declared_size = None;
        let limit = self.shared.config.limits.max_message_size;
        for p in &params {
            match p.keyword.as_str() {
                // RFC 1870 §6: a declared size over the limit is refused at MAIL.
                "SIZE" => match p.value.as_deref().and_then(|v| v.parse::<u64>().ok()) {
                    Some(n) if n > limit => {
                        return self.refuse(Refusal::SizeDeclaredTooBig { limit })
                    }
                    // Kept for the quota check at RCPT; SIZE=0 tells nothing.
                    Some(n) => declared_size = (n > 0).then_some(n),
                    None => {
                        return self.refuse(Refusal::BadParamValue {
                            keyword: "SIZE".into(),
                            hint: "SIZE=<number of octets>",
                        })
                    }
                },
                // RFC 6152: BODY=7BIT or BODY=8BITMIME.
                "BODY" => match p.value.as_deref().map(|v| v.to_ascii_uppercase()) {
                    Some(v) if v == "7BIT" || v == "8BITMIME" => {}
                    _ => {
                        return self.refuse(Refusal::BadParamValue {
                            keyword: "BODY".into(),
                            hint: "use BODY=7BIT or BODY=8BITMIME",
                        })
                    }
                },
                "SMTPUTF8" if p.value.is_none() => smtputf8 = true,
                // RFC 4954 §5: AUTH= on MAIL is informational; we trust only our own AUTH.
                "AUTH" => {}
                other => {
                    return self.refuse(Refusal::UnknownParam {
                        verb: "MAIL",
                        keyword: other.to_string(),
                    })
                }
            }
        }
        if let ReversePath::Address(a) = &from {
            // RFC 6531 §3.4: non-ASCII addresses need SMTPUTF8.
            if !a.is_ascii() && !smtputf8 {
                return self.refuse(Refusal::NeedSmtpUtf8);
            }
        }
        if let Some(user) = &self.auth {
            let owned = match &from {
                ReversePath::Address(a) => a.to_string().eq_ignore_ascii_case(&user.address),
                ReversePath::Null => false,
            };
            if !owned {
                let user = user.address.clone();
                return self.refuse(Refusal::SenderNotOwned {
                    sender: from.to_string(),
                    user,
                });
            }
        }
        let shown = from.to_string();
        self.state = State::Mail(Envelope {
            from,
            smtputf8,
            declared_size,
            rcpts: Vec::new(),
        });
        self.ok(250, "2.1.0", format!("Sender {shown} ok"));
        Flow::Continue
    }

    async fn rcpt(&mut self, to: ForwardPath, params: Vec<Param>) -> Flow {
        let env = match &self.state {
            State::Mail(e) | State::Rcpt(e) => e,
            State::Bdat { .. } => return self.refuse(Refusal::NestedMail),
            _ => return self.refuse(Refusal::MailFirst),
        };
        if let Some(p) = params.first() {
            return self.refuse(Refusal::UnknownParam {
                verb: "RCPT",
                keyword: p.keyword.clone(),
            });
        }
        let limit = self.shared.config.limits.max_recipients;
        if env.rcpts.len() >= limit {
            return self.refuse(Refusal::TooManyRecipients { limit });
        }
        let smtputf8 = env.smtputf8;
        let declared_size = env.declared_size;
        let to_postmaster = match &to {
            ForwardPath::Postmaster => true,
            ForwardPath::Address(a) => a.local.eq_ignore_ascii_case("postmaster"),
        };
        let address: Address = match to {
            ForwardPath::Address(a) => a,
            // RFC 5321 §4.5.1: <Postmaster> must be accepted; it goes to postmaster@ a local domain.
            ForwardPath::Postmaster => match self.postmaster().await {
                Some(a) => a,
                None => return self.refuse(Refusal::NoPostmaster),
            },
        };
        if !address.is_ascii() && !smtputf8 {
            return self.refuse(Refusal::NeedSmtpUtf8);
        }
        let text = address.to_string();
        let shared = self.shared.clone();
        let lookup = text.clone();
        // RFC 5321 §4.5.1: mail to the postmaster must get through, so that people can report
        // problems (a full mailbox among them): no quota check for it.
        let check_quota = !to_postmaster;
        let looked = tokio::task::spawn_blocking(move || {
            let route = delivery::resolve(&shared.store, &lookup)?;
            let full = match &route {
                Route::Local(targets) if check_quota => delivery::full_target(
                    shared.store.as_ref(),
                    &shared.config,
                    targets,
                    declared_size,
                )?,
                _ => None,
            };
            Ok::<_, mailroom_store::StoreError>((route, full))
        })
        .await;
        let (route, full) = match looked {
            Ok(Ok(r)) => r,
            other => {
                if let Ok(Err(e)) = other {
                    tracing::error!(session = self.id, error = %e, "recipient lookup failed");
                }
                self.ok(
                    451,
                    "4.3.0",
                    "Temporary failure looking up the recipient; try again later",
                );
                return Flow::Continue;
            }
        };
        if let Some(full) = full {
            // RFC 5321 §4.2.5 452 / RFC 3463 X.2.2: a full mailbox refuses this recipient
            // only, for now; the others of the transaction go on. Not the client's mistake,
            // so not counted towards max_errors (a list server with many full recipients is
            // not cut off).
            tracing::info!(session = self.id, rcpt = %text, account = %full, declared = ?declared_size, "recipient refused: mailbox over quota");
            let r = Refusal::MailboxFull {
                address: text,
                declared: declared_size,
            };
            self.reply(r.reply());
            return Flow::Continue;
        }
        let (targets, relayed) = match route {
            Route::Local(targets) => (targets, false),
            Route::UnknownUser => return self.refuse(Refusal::UnknownUser(text)),
            Route::Remote { address } => {
                if self.auth.is_none() {
                    return self.refuse(Refusal::RelayDenied(text));
                }
                (vec![Target::Remote { address }], true)
            }
        };
        let rcpt = Recipient {
            address: text.clone(),
            targets,
        };
        let env = match std::mem::replace(&mut self.state, State::Greeted) {
            State::Mail(e) | State::Rcpt(e) => e,
            other => {
                self.state = other;
                return self.refuse(Refusal::MailFirst);
            }
        };
        let mut env = env;
        env.rcpts.push(rcpt);
        self.state = State::Rcpt(env);
        if relayed {
            self.ok(
                250,
                "2.1.5",
                format!("Recipient <{text}> ok (will be relayed)"),
            );
        } else {
            self.ok(250, "2.1.5", format!("Recipient <{text}> ok"));
        }
        Flow::Continue
    }

    /// The local address that receives mail for `<Postmaster>`: `postmaster@` the host name's
    /// domain or a local domain, whichever resolves (account, alias or catch-all).
    async fn postmaster(&self) -> Option<Address> {
        let store = self.shared.store.clone();
        let host = self.host().to_string();
        tokio::task::spawn_blocking(move || {
            let mut domains = vec![host.to_ascii_lowercase()];
            domains.extend(store.list_domains().ok()?);
            domains.into_iter().find_map(|d| {
                let a = format!("postmaster@{d}");
                match delivery::resolve(&store, &a) {
                    Ok(Route::Local(_)) => Address::parse(&a).ok(),
                    _ => None,
                }
            })
        })
        .await
        .ok()
        .flatten()
    }

    async fn data(&mut self) -> Flow {
        let env = match std::mem::replace(&mut self.state, State::Greeted) {
            State::Rcpt(env) => env,
            other => {
                let refusal = match &other {
                    State::Mail(_) => Refusal::RcptFirst,
                    State::Bdat { .. } => Refusal::DataAfterBdat,
                    State::Connected => Refusal::HeloFirst,
                    _ => Refusal::MailFirst,
                };
                self.state = other;
                return self.refuse(refusal);
            }
        };
        self.ok(354, "", "End data with <CR><LF>.<CR><LF>");
        let limits = &self.shared.config.limits;
        let max_size = usize::try_from(limits.max_message_size).unwrap_or(usize::MAX);
        let mut rx = DataReceiver::new(max_size, limits.max_line_length);
        // The message is held in memory until stored: its share of the budget for all sessions.
        let mut held = self.shared.incoming.reserve();
        loop {
            let chunk = match self.conn.read_raw().await {
                Ok(Some(c)) => c,
                Ok(None) | Err(_) => {
                    // The client went away (or stayed silent) mid-message: nothing is stored.
                    self.conn
                        .trace
                        .note("connection lost during DATA; message discarded");
                    let host = self.host().to_string();
                    self.ok(
                        421,
                        "4.4.2",
                        format!(
                            "{host} Timeout or connection lost during DATA; nothing was stored"
                        ),
                    );
                    return Flow::Close;
                }
            };
            let progress = rx.feed(&chunk);
            if rx.error().is_none() && !held.grow_to(rx.kept() as u64) {
                self.over_budget(rx.kept());
                rx.abandon();
            }
            match progress {
                DataProgress::NeedMore => continue,
                DataProgress::Done { consumed } => {
                    self.conn.unread(&chunk[consumed..]);
                    break;
                }
            }
        }
        self.conn
            .trace
            .client(&format!("({} octets of message data) .", rx.received()));
        match rx.finish() {
            Ok(body) => self.accept(env, body).await,
            Err(e) => self.refuse(Refusal::Data(e)),
        }
    }

    async fn bdat(&mut self, size: u64, last: bool) -> Flow {
        // RFC 3030 §2: the chunk is always read, even when the command is refused.
        let limit = self.shared.config.limits.max_message_size;
        let (mut env_body, refusal) = match std::mem::replace(&mut self.state, State::Greeted) {
            State::Rcpt(env) => (
                Some((env, Vec::new(), self.shared.incoming.reserve(), None)),
                None,
            ),
            State::Bdat {
                env,
                body,
                held,
                dropped,
            } => (Some((env, body, held, dropped)), None),
            State::Mail(env) => {
                self.state = State::Mail(env);
                (None, Some(Refusal::BdatWithoutRecipients))
            }
            other => {
                self.state = other;
                (None, Some(Refusal::BdatWithoutRecipients))
            }
        };
        let mut remaining = size;
        while remaining > 0 {
            let chunk = match self.conn.read_raw().await {
                Ok(Some(c)) => c,
                _ => {
                    self.conn
                        .trace
                        .note("connection lost during BDAT; message discarded");
                    return Flow::Close;
                }
            };
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            if let Some((_, body, held, dropped)) = env_body.as_mut() {
                if dropped.is_none() {
                    let total = (body.len() + take) as u64;
                    if total > limit {
                        *dropped = Some(DataError::TooBig {
                            limit: usize::try_from(limit).unwrap_or(usize::MAX),
                        });
                        *body = Vec::new();
                    } else if !held.grow_to(total) {
                        self.over_budget(body.len() + take);
                        *dropped = Some(DataError::Abandoned);
                        *body = Vec::new();
                    } else {
                        body.extend_from_slice(&chunk[..take]);
                    }
                }
            }
            remaining -= take as u64;
            self.conn.unread(&chunk[take..]);
        }
        self.conn.trace.client(&format!(
            "({size} octets of BDAT data{})",
            if last { ", LAST" } else { "" }
        ));
        if let Some(r) = refusal {
            return self.refuse(r);
        }
        let Some((env, body, held, dropped)) = env_body else {
            return self.refuse(Refusal::BdatWithoutRecipients);
        };
        if !last {
            let total = body.len();
            self.state = State::Bdat {
                env,
                body,
                held,
                dropped,
            };
            self.ok(
                250,
                "2.0.0",
                format!("{size} octets received ({total} so far)"),
            );
            return Flow::Continue;
        }
        if let Some(e) = dropped {
            return self.refuse(Refusal::Data(e));
        }
        let flow = match normalize_body(body, self.shared.config.limits.max_line_length) {
            Ok(body) => self.accept(env, body).await,
            Err(e) => self.refuse(Refusal::Data(e)),
        };
        drop(held);
        flow
    }

    /// The memory budget for incoming messages is used up: this message is not kept.
    fn over_budget(&mut self, octets: usize) {
        let limit = self.shared.config.limits.max_incoming_memory;
        tracing::warn!(
            octets,
            limit,
            "limits.max_incoming_memory reached: a message is refused with 452 4.3.1"
        );
        self.conn.trace.note(&format!(
            "memory budget for incoming messages ({limit} octets) used up; this message is refused"
        ));
    }

    /// Adds the trace headers and stores the message for every recipient, durably.
    async fn accept(&mut self, env: Envelope, body: Vec<u8>) -> Flow {
        let hops = delivery::count_received(&body);
        if hops >= self.shared.config.limits.max_hops {
            return self.refuse(Refusal::TooManyHops(hops));
        }
        let id = delivery::new_id();
        // RFC 3848 / RFC 6531 §3.7.4: S for TLS, A for AUTH.
        let with = match (
            env.smtputf8,
            self.esmtp,
            self.conn.is_tls(),
            self.auth.is_some(),
        ) {
            (true, _, true, true) => "UTF8SMTPSA",
            (true, _, true, false) => "UTF8SMTPS",
            (true, _, false, true) => "UTF8SMTPA",
            (true, _, false, false) => "UTF8SMTP",
            (false, true, true, true) => "ESMTPSA",
            (false, true, true, false) => "ESMTPS",
            (false, true, false, true) => "ESMTPA",
            (false, true, false, false) => "ESMTP",
            (false, false, _, true) => "SMTPA",
            (false, false, _, false) => "SMTP",
        };
        let single = match env.rcpts.as_slice() {
            [only] => Some(only.address.as_str()),
            _ => None,
        };
        let helo = self.helo.clone().unwrap_or_default();
        let mut prefix = delivery::received_header(&delivery::Trace {
            helo: &helo,
            peer: self.conn.peer,
            hostname: self.host(),
            with,
            id: &id,
            single_recipient: single,
        });
        if self.kind == ListenerKind::Submission {
            prefix.push_str(&delivery::submission_fixups(&body, self.host(), &id));
        }
        let sender = match &env.from {
            ReversePath::Null => String::new(),
            ReversePath::Address(a) => a.to_string(),
        };
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for t in env.rcpts.iter().flat_map(|r| r.targets.iter()) {
            match t {
                Target::Account { account, .. } => local.push(*account),
                Target::Remote { address } => remote.push(address.clone()),
            }
        }
        let n_rcpt = env.rcpts.len();
        let store = self.shared.store.clone();
        let result = tokio::task::spawn_blocking(move || {
            delivery::store_accepted(
                &store,
                Accepted {
                    sender: &sender,
                    local,
                    remote,
                    prefix,
                    body,
                },
            )
        })
        .await;
        match result {
            Ok(Ok(receipt)) => {
                if receipt.queued.is_some() {
                    self.shared.queue_notify.notify_one();
                }
                tracing::info!(
                    session = self.id,
                    id = %id,
                    recipients = n_rcpt,
                    local = receipt.local.len(),
                    queued = receipt.queued.map(|q| q.0),
                    "message accepted"
                );
                self.ok(250, "2.0.0", format!("Ok: queued as {id}"));
                Flow::Continue
            }
            Ok(Err(e)) if e.is_storage_full() => {
                // Not the client's mistake: not counted towards max_errors.
                tracing::error!(session = self.id, error = %e, "storing a message failed: storage full");
                self.reply(Refusal::StorageFull.reply());
                Flow::Continue
            }
            Ok(Err(e)) => {
                tracing::error!(session = self.id, error = %e, "storing a message failed");
                self.refuse(Refusal::StoreFailed)
            }
            Err(e) => {
                tracing::error!(session = self.id, error = %e, "storing a message panicked");
                self.refuse(Refusal::StoreFailed)
            }
        }
    }

    async fn authenticate(&mut self, mechanism: String, initial: Option<String>) -> Flow {
        match self.state {
            State::Connected => return self.refuse(Refusal::HeloFirst),
            State::Greeted => {}
            _ => return self.refuse(Refusal::AuthNotDuringTransaction),
        }
        if self.auth.is_some() {
            return self.refuse(Refusal::AlreadyAuthenticated);
        }
        if !self.auth_allowed() {
            tracing::info!(session = self.id, peer = %self.conn.peer, "AUTH refused: TLS required");
            return self.refuse(Refusal::AuthNeedsTls);
        }
        let creds = match mechanism.as_str() {
            "PLAIN" => {
                let resp = match initial {
                    Some(r) => r,
                    // RFC 4954 §4: an empty challenge asks for the initial response.
                    None => match self.sasl_step("").await {
                        Ok(r) => r,
                        Err(flow) => return flow,
                    },
                };
                match sasl::decode_response(&resp).and_then(|d| sasl::parse_plain(&d)) {
                    Ok(c) => (c.authcid, c.password),
                    Err(e) => return self.refuse(sasl_refusal(e)),
                }
            }
            "LOGIN" => {
                let user_resp = match initial {
                    Some(r) => r,
                    None => match self.sasl_step(sasl::LOGIN_USERNAME_CHALLENGE).await {
                        Ok(r) => r,
                        Err(flow) => return flow,
                    },
                };
                let user = match sasl::decode_response(&user_resp) {
                    Ok(u) => u,
                    Err(e) => return self.refuse(sasl_refusal(e)),
                };
                let pass_resp = match self.sasl_step(sasl::LOGIN_PASSWORD_CHALLENGE).await {
                    Ok(r) => r,
                    Err(flow) => return flow,
                };
                let pass = match sasl::decode_response(&pass_resp) {
                    Ok(p) => p,
                    Err(e) => return self.refuse(sasl_refusal(e)),
                };
                match (String::from_utf8(user), String::from_utf8(pass)) {
                    (Ok(u), Ok(p)) => (u, p),
                    _ => return self.refuse(Refusal::AuthMalformed("not UTF-8")),
                }
            }
            other => return self.refuse(Refusal::AuthUnknownMechanism(other.to_string())),
        };
        let (user, pass) = creds;
        match auth::check_password(&self.shared, &user, &pass).await {
            Ok(account) => {
                tracing::info!(session = self.id, user = %account.address, peer = %self.conn.peer, "authenticated");
                self.auth = Some(account);
                self.ok(235, "2.7.0", "Authentication successful");
                Flow::Continue
            }
            // Not a failed login: no delay, not counted (RFC 4954 §6).
            Err(auth::AuthError::Unavailable) => self.refuse(Refusal::AuthTemporary),
            Err(auth::AuthError::Rejected) => {
                if self.logins.record(&self.shared, &self.conn, &user).await {
                    self.reply(Refusal::AuthFailed.reply());
                    let host = self.host().to_string();
                    self.ok(
                        421,
                        "4.7.0",
                        format!("{host} Too many failed logins; closing connection"),
                    );
                    return Flow::Close;
                }
                self.refuse(Refusal::AuthFailed)
            }
        }
    }

    /// Sends a 334 challenge and reads the client's response line (masked in the trace).
    /// `Err(flow)` when the exchange is over: the response was too long (refused here), or
    /// the connection ended (closed without a word, as before any reply could go out).
    async fn sasl_step(&mut self, challenge: &str) -> Result<String, Flow> {
        let challenge = Reply::new(334, "", challenge).to_bytes();
        match session::sasl_response(&mut self.conn, &challenge).await {
            SaslResponse::Line(bytes) => Ok(String::from_utf8_lossy(&bytes).trim().to_string()),
            SaslResponse::TooLong { limit } => Err(self.refuse(Refusal::AuthLineTooLong(limit))),
            SaslResponse::Ended(_) => Err(Flow::Close),
        }
    }
}

fn sasl_refusal(e: SaslError) -> Refusal {
    match e {
        SaslError::Cancelled => Refusal::AuthCancelled,
        SaslError::Base64 => Refusal::AuthBadBase64,
        SaslError::Malformed(m) => Refusal::AuthMalformed(m),
    }
}
