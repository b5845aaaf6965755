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
//! Every refusal is built in [`Refusal::reply`] (refusal.rs), the one place where errors
//! become wire text.
//!
//! The driver by command family: this file holds the session, its states and the command
//! loop; `ehlo.rs` the greeting, HELO/EHLO and STARTTLS; `auth.rs` AUTH; `envelope.rs` MAIL,
//! RCPT and RSET; `verify.rs` VRFY and EXPN (switched per listener); `data.rs` DATA, BDAT and
//! the hand-off to the store; `auth_checks.rs` SPF, DKIM and DMARC on inbound mail;
//! `refusal.rs` the refusals; `help.rs` the HELP texts; `capture.rs` capture mode (any
//! recipient, any AUTH, nothing relayed; injected faults). The dialogue is recorded for the
//! transcript kept with each accepted message (`crate::transcript`). Session plumbing shared
//! with POP3 and IMAP (auth
//! policy, STARTTLS swap, SASL response reader, error and login-failure counting) is in
//! `crate::session`.

mod auth;
mod auth_checks;
pub mod capture;
mod data;
mod ehlo;
mod envelope;
mod help;
mod refusal;
#[cfg(test)]
mod tests;
mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

use mailroom_proto::line::LineError;
use mailroom_proto::smtp::{parse_command, Command, DataError, Reply, ReversePath};
use mailroom_store::Account;
use tokio::sync::watch;

use crate::budget::Reservation;
use crate::conn::{Conn, Event, Stream, Trace};
use crate::delivery::Target;
use crate::session::{self, ErrorCount, LoginFailures};
use crate::{ListenerKind, Shared};
use refusal::Refusal;

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

/// What the loop does after a command.
enum Flow {
    Continue,
    Close,
}

struct Session {
    /// The listener's policy ([`ListenerKind::base`]).
    kind: ListenerKind,
    /// The listener itself (metrics, the transcript).
    listener: ListenerKind,
    /// The code of the last reply sent (what the metrics count a message's reply by).
    last_code: u16,
    shared: Arc<Shared>,
    conn: Conn,
    id: u64,
    helo: Option<String>,
    esmtp: bool,
    auth: Option<Account>,
    /// Capture mode: the user name an AUTH gave (accepted without a check).
    captured_login: Option<String>,
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
    if cfg.trace.record_smtp {
        conn.recorder = Some(crate::transcript::Recorder::default());
    }
    let mut s = Session {
        kind,
        listener,
        last_code: 0,
        shared: shared.clone(),
        conn,
        id,
        helo: None,
        esmtp: false,
        auth: None,
        captured_login: None,
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
        self.last_code = r.code;
        self.conn.send(&r.to_bytes());
    }

    fn ok(&mut self, code: u16, enhanced: &str, text: impl Into<String>) {
        self.reply(Reply::new(code, enhanced, text));
    }

    /// Sends a refusal and counts it (except the server's own temporary trouble); too many
    /// errors end the session.
    fn refuse(&mut self, r: Refusal) -> Flow {
        let reply = r.reply();
        let code = reply.code;
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
            // The refusal is what answered the command.
            self.last_code = code;
            return Flow::Close;
        }
        Flow::Continue
    }

    async fn run(&mut self) {
        self.greet();
        loop {
            let flow = match self.conn.next_line().await {
                Event::Line(Ok(bytes)) => self.command(bytes).await,
                Event::Line(Err(LineError::TooLong { limit })) => {
                    self.conn.client_line("(over-long line discarded)");
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
        let at = self.conn.recorder.as_ref().map(|r| r.len());
        self.conn.client_line(&String::from_utf8_lossy(&bytes));
        let cmd = match parse_command(&bytes) {
            Ok(c) => c,
            Err(e) => return self.refuse(Refusal::Syntax(e)),
        };
        match cmd {
            Command::Ehlo(domain) => self.hello(domain, true),
            Command::Helo(domain) => self.hello(domain, false),
            Command::Mail { from, params } => {
                if let (Some(r), Some(at)) = (self.conn.recorder.as_mut(), at) {
                    r.begin_transaction(at);
                }
                self.mail(from, params).await
            }
            Command::Rcpt { to, params } => self.rcpt(to, params).await,
            Command::Data => self.data().await,
            Command::Bdat { size, last } => self.bdat(size, last).await,
            Command::Rset => self.rset(),
            Command::Noop => {
                self.ok(250, "2.0.0", "Ok");
                Flow::Continue
            }
            Command::Quit => {
                let host = self.host().to_string();
                self.ok(221, "2.0.0", format!("{host} closing connection; bye"));
                Flow::Close
            }
            Command::Vrfy(arg) => self.vrfy(arg).await,
            Command::Expn(arg) => self.expn(arg).await,
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
            vrfy: self.shared.config.vrfy.on(self.kind),
            expn: self.shared.config.expn.on(self.kind),
        }
    }

    /// Capture mode's state, when the server runs in it.
    fn capture(&self) -> Option<&capture::Capture> {
        self.shared.capture.as_ref()
    }

    /// Capture mode's injected fault for `stage`, if this command draws one: sent (not
    /// counted as the client's error) and counted in the metrics.
    fn injected(&mut self, stage: crate::metrics::FaultStage) -> Option<Flow> {
        let reply = self.capture()?.fault(stage)?;
        self.shared.metrics.fault(stage);
        self.conn
            .trace
            .note(&format!("capture mode: fault injected at {stage:?}"));
        self.reply(reply);
        Some(Flow::Continue)
    }

    /// The `auth_require_tls` policy: may this client send a password now?
    fn auth_allowed(&self) -> bool {
        session::auth_allowed(&self.shared, &self.conn)
    }
}
