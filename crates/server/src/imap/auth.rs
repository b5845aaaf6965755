//! The commands around logging in, and those valid in every state: CAPABILITY, STARTTLS,
//! LOGIN, AUTHENTICATE (RFC 9051 §6.1, §6.2), ENABLE (RFC 5161), ID (RFC 2971), LOGOUT.
//!
//! The pieces every protocol's sessions need in the same shape come from the session toolkit
//! ([`crate::session`]): the `auth_require_tls` policy ([`session::auth_allowed`]), the
//! STARTTLS checks and swap ([`session::tls_acceptor`], [`session::swap_to_tls`]), the SASL
//! response reader ([`session::sasl_response`]) and the counting, delay and reporting of failed
//! logins ([`session::LoginFailures`]). What stays here is IMAP's: the capabilities, the
//! replies, the SASL framing and decoding, and what the session forgets after STARTTLS.

use mailroom_proto::imap::response::{Response, Status, Value};
use mailroom_proto::imap::{Assembler, CommandBody};
use mailroom_proto::sasl;
use mailroom_store::Account;

use super::error::ImapError;
use super::{ok, ok_code, Done, Session, State};
use crate::auth::{self, LoginError};
use crate::session::{self, SaslResponse, TlsUnavailable};

/// The capabilities every session has; [`Session::capabilities`] adds the state-dependent ones.
const CAPABILITIES: &[&str] = &[
    "SASL-IR",
    "LITERAL+",
    "ID",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "SPECIAL-USE",
    "ESEARCH",
    "STATUS=SIZE",
    "BINARY",
    "CONDSTORE",
    "QRESYNC",
    "NOTIFY",
    "QUOTA",
    "QUOTA=RES-STORAGE",
    "SORT",
    "SORT=DISPLAY",
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "ESORT",
    "MULTIAPPEND",
    // RFC 5182: SAVE and `$` (imap/context.rs).
    "SEARCHRES",
    // RFC 5267 §4: RETURN (UPDATE), CANCELUPDATE, PARTIAL (imap/updates.rs).
    "CONTEXT=SEARCH",
    "CONTEXT=SORT",
    // RFC 4469 (imap/catenate.rs).
    "CATENATE",
];

impl Session {
    /// CAPABILITY (RFC 9051 §6.1.1).
    pub(super) fn capability(&mut self) -> Result<Done, ImapError> {
        let caps = self.capabilities();
        self.respond(&Response::capability(&caps));
        ok("CAPABILITY completed")
    }

    /// The capabilities for the session's current state: STARTTLS while TLS can still be
    /// started; LOGINDISABLED instead of the AUTH= mechanisms while the `auth_require_tls`
    /// policy forbids a password on this connection (RFC 9051 §6.2.3, §7.2.2).
    pub(super) fn capabilities(&self) -> Vec<&'static str> {
        let tls = self.conn.is_tls();
        let mut caps = vec!["IMAP4rev1", "IMAP4rev2"];
        if !tls && self.shared.tls.is_some() && matches!(self.state, State::NotAuthenticated) {
            caps.push("STARTTLS");
        }
        if session::auth_allowed(&self.shared, &self.conn) {
            caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"]);
        } else {
            caps.push("LOGINDISABLED");
        }
        caps.extend_from_slice(CAPABILITIES);
        caps
    }

    /// The `CAPABILITY ...` response code of the greeting and of a successful login
    /// (RFC 9051 §7.1).
    pub(super) fn capability_code(&self) -> String {
        format!("CAPABILITY {}", self.capabilities().join(" "))
    }

    /// STARTTLS (RFC 9051 §6.2.1): the tagged OK, then the handshake. Anything the client sent
    /// behind the command in clear is discarded (the CVE-2011-0411 class), and the session
    /// starts over, not authenticated.
    async fn starttls(&mut self, tag: &str) -> Result<Done, ImapError> {
        let acceptor = match session::tls_acceptor(&self.shared, &self.conn) {
            Ok(a) => a,
            Err(TlsUnavailable::AlreadyActive) => {
                return Err(ImapError::bad("TLS is already active on this connection"))
            }
            Err(TlsUnavailable::NotConfigured) => {
                return Err(ImapError::no_code(
                    "STARTTLS is not available: this server has no TLS certificate",
                ))
            }
        };
        self.respond(&Response::tagged(
            tag,
            Status::Ok,
            None,
            "Begin TLS negotiation now",
        ));
        if !session::swap_to_tls(&mut self.conn, &acceptor, "STARTTLS").await {
            return Ok(Done::Close);
        }
        self.asm = Assembler::new();
        Ok(Done::Replied)
    }

    /// A command in the not-authenticated state (RFC 9051 §6.2), besides those valid in every
    /// state: STARTTLS, or a login the `auth_require_tls` policy allows.
    pub(super) async fn not_authenticated(
        &mut self,
        tag: &str,
        body: CommandBody,
    ) -> Result<Done, ImapError> {
        use CommandBody as C;
        match body {
            C::StartTls => self.starttls(tag).await,
            C::Login { .. } | C::Authenticate { .. }
                if !session::auth_allowed(&self.shared, &self.conn) =>
            {
                Err(ImapError::no(
                "PRIVACYREQUIRED",
                "passwords are only accepted over TLS here: use STARTTLS first, or the implicit-TLS port",
            ))
            }
            C::Login { user, password } => self.login(tag, &user, &password).await,
            C::Authenticate { mechanism, initial } => {
                self.authenticate(tag, &mechanism, initial).await
            }
            other => Err(ImapError::bad(format!(
                "{} needs you to log in first: LOGIN user password or AUTHENTICATE PLAIN",
                other.name()
            ))),
        }
    }

    /// A short user name (no `@`) as the full address of the one account that has it, for
    /// the logs and the failure tracker; the login itself resolves it the same way.
    async fn full_name(&self, name: &str) -> String {
        auth::full_address(&self.shared, name).await
    }

    async fn login(&mut self, tag: &str, user: &str, password: &str) -> Result<Done, ImapError> {
        let account = auth::login(&self.shared, user, password).await;
        let user = self.full_name(user).await;
        self.finish_auth(tag, &user, account, "LOGIN").await
    }

    async fn finish_auth(
        &mut self,
        tag: &str,
        user: &str,
        account: Result<Account, LoginError>,
        what: &str,
    ) -> Result<Done, ImapError> {
        match account {
            Ok(a) => {
                self.conn.trace.note(&format!("logged in as {}", a.address));
                self.state = State::Authenticated(a);
                ok_code(
                    self.capability_code(),
                    &format!("{what} completed, welcome"),
                )
            }
            // RFC 5530 UNAVAILABLE: not a failed login (no delay, not counted).
            Err(LoginError::Unavailable) => Err(ImapError::auth_unavailable()),
            Err(failure) => {
                // Logged, counted per connection and per client address, delayed.
                let closing = self.logins.record(&self.shared, &self.conn, user).await;
                let text = match failure {
                    LoginError::Ambiguous { name } => format!(
                        "the user name {name} is not unique here (several domains have it); log in with your full address, like {name}@your.domain"
                    ),
                    _ => "wrong user name or password; check both and try again".to_string(),
                };
                let e = ImapError::no("AUTHENTICATIONFAILED", text);
                self.respond(&e.to_response(Some(tag)));
                if closing {
                    let max = self.shared.config.limits.max_auth_failures;
                    self.bye(&format!(
                        "too many failed logins ({max}); closing the connection"
                    ));
                    return Ok(Done::Close);
                }
                Ok(Done::Replied)
            }
        }
    }

    /// One step of a SASL exchange (RFC 9051 §6.2.2): the continuation `+ challenge`, then
    /// the client's response line (not yet decoded). `None` when the connection ended (closed,
    /// idle, shutdown): the session closes without another word. An over-long response ends
    /// the exchange with a tagged BAD (counted towards `limits.max_errors`, not a failed
    /// login; see [`crate::session`]).
    async fn sasl_step(&mut self, challenge: &str) -> Result<Option<String>, ImapError> {
        // RFC 9051 §7.5: `+ challenge` (`+ ` and nothing for an empty one).
        let challenge = Response::continuation(challenge).to_bytes();
        match session::sasl_response(&mut self.conn, &challenge).await {
            SaslResponse::Line(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            SaslResponse::TooLong { limit } => Err(ImapError::bad(format!(
                "AUTHENTICATE response line too long (the limit is {limit} octets); start over with AUTHENTICATE"
            ))),
            SaslResponse::Ended(_) => Ok(None),
        }
    }

    async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<String>,
    ) -> Result<Done, ImapError> {
        let cancelled = || ImapError::bad("AUTHENTICATE cancelled");
        let sasl_err = |e: sasl::SaslError| match e {
            sasl::SaslError::Cancelled => ImapError::bad("AUTHENTICATE cancelled"),
            other => ImapError::bad(format!("{other}")),
        };
        match mechanism {
            "PLAIN" => {
                let resp = match initial {
                    Some(r) => r,
                    None => match self.sasl_step("").await? {
                        Some(r) => r,
                        None => return Ok(Done::Close),
                    },
                };
                let decoded = sasl::decode_response(&resp).map_err(sasl_err)?;
                let creds = sasl::parse_plain(&decoded).map_err(sasl_err)?;
                let user = self.full_name(&creds.authcid).await;
                if !creds.authzid.is_empty() && self.full_name(&creds.authzid).await != user {
                    return Err(ImapError::no(
                        "AUTHORIZATIONFAILED",
                        "you may only act as yourself (leave the authorization id empty)",
                    ));
                }
                let account = auth::login(&self.shared, &creds.authcid, &creds.password).await;
                self.finish_auth(tag, &user, account, "AUTHENTICATE").await
            }
            "LOGIN" => {
                let user_line = match initial {
                    Some(r) => r,
                    None => match self.sasl_step(sasl::LOGIN_USERNAME_CHALLENGE).await? {
                        Some(r) => r,
                        None => return Ok(Done::Close),
                    },
                };
                if user_line.trim() == "*" {
                    return Err(cancelled());
                }
                let user = sasl::decode_text(&user_line).map_err(sasl_err)?;
                let Some(pass_line) = self.sasl_step(sasl::LOGIN_PASSWORD_CHALLENGE).await? else {
                    return Ok(Done::Close);
                };
                let password = sasl::decode_text(&pass_line).map_err(sasl_err)?;
                let account = auth::login(&self.shared, &user, &password).await;
                let user = self.full_name(&user).await;
                self.finish_auth(tag, &user, account, "AUTHENTICATE").await
            }
            other => Err(ImapError::no(
                "CANNOT",
                format!("SASL mechanism {other} is not supported; use PLAIN or LOGIN"),
            )),
        }
    }

    /// ENABLE (RFC 5161): IMAP4rev2 (RFC 9051 §6.3.1, which also makes mailbox names UTF-8)
    /// CONDSTORE (RFC 7162 §3.1) and QRESYNC (§3.2.3).
    pub(super) fn enable(&mut self, caps: Vec<String>) -> Result<Done, ImapError> {
        let mut enabled = Vec::new();
        for c in caps {
            if c == "IMAP4REV2" && !self.rev2 {
                self.rev2 = true;
                enabled.push("IMAP4rev2");
            }
            if c == "CONDSTORE" && !self.condstore {
                self.condstore = true;
                enabled.push("CONDSTORE");
            }
            // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
            if c == "QRESYNC" && !self.qresync {
                self.qresync = true;
                self.condstore = true;
                if let Some(sel) = self.selected() {
                    sel.qresync = true;
                }
                enabled.push("QRESYNC");
            }
        }
        self.respond(&Response::enabled(&enabled));
        ok("ENABLE completed")
    }

    /// ID (RFC 2971): log what the client says about itself, answer with ours.
    pub(super) fn id(&mut self, params: &[(String, Option<String>)]) -> Result<Done, ImapError> {
        if !params.is_empty() {
            let desc: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NIL")))
                .collect();
            self.conn
                .trace
                .note(&format!("client ID: {}", desc.join(", ")));
        }
        let ours = ["name", "mailroom", "version", env!("CARGO_PKG_VERSION")];
        let ours = ours.iter().map(|s| Value::string(s.as_bytes())).collect();
        self.respond(&Response::data("ID", vec![Value::List(ours)]));
        ok("ID completed")
    }

    /// LOGOUT (RFC 9051 §6.1.3): `* BYE`, the tagged OK, and the connection is closed.
    pub(super) fn logout(&mut self, tag: &str) -> Result<Done, ImapError> {
        self.bye("mailroom IMAP4 server signing off");
        self.respond(&Response::tagged(tag, Status::Ok, None, "LOGOUT completed"));
        Ok(Done::Close)
    }
}
