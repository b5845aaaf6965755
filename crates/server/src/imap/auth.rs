//! The commands around logging in, and those valid in every state: CAPABILITY, STARTTLS,
//! LOGIN, AUTHENTICATE (RFC 9051 §6.1, §6.2), ENABLE (RFC 5161), ID (RFC 2971), LOGOUT.
//!
//! The pieces every protocol's sessions need in the same shape are kept together here:
//! the `auth_require_tls` policy ([`Session::auth_allowed`]), the SASL response reader
//! ([`Session::sasl_line`]), the STARTTLS swap ([`Session::starttls`]) and the counting,
//! delay and reporting of failed logins ([`Session::finish_auth`]). BADs are counted in one
//! place too, [`Session::fail`].

use mailroom_proto::imap::{Assembler, CommandBody};
use mailroom_proto::sasl;
use mailroom_store::Account;

use super::error::ImapError;
use super::{ok, Done, Session, State};
use crate::auth::{check_password, AuthError};
use crate::conn::Event;

/// The capabilities every session has; [`Session::capabilities`] adds the state-dependent ones.
const CAPABILITIES: &str = "SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH STATUS=SIZE BINARY CONDSTORE QUOTA QUOTA=RES-STORAGE";

impl Session {
    /// CAPABILITY (RFC 9051 §6.1.1).
    pub(super) fn capability(&mut self) -> Result<Done, ImapError> {
        let l = self.capability_line();
        self.send_line(&l);
        ok("CAPABILITY completed")
    }

    fn capability_line(&self) -> String {
        format!("* CAPABILITY {}", self.capabilities())
    }

    /// The capabilities for the session's current state: STARTTLS while TLS can still be
    /// started; LOGINDISABLED instead of the AUTH= mechanisms while the `auth_require_tls`
    /// policy forbids a password on this connection (RFC 9051 §6.2.3, §7.2.2).
    pub(super) fn capabilities(&self) -> String {
        let tls = self.conn.is_tls();
        let mut caps = String::from("IMAP4rev1 IMAP4rev2");
        if !tls && self.shared.tls.is_some() && matches!(self.state, State::NotAuthenticated) {
            caps.push_str(" STARTTLS");
        }
        if self.auth_allowed() {
            caps.push_str(" AUTH=PLAIN AUTH=LOGIN");
        } else {
            caps.push_str(" LOGINDISABLED");
        }
        caps.push(' ');
        caps.push_str(CAPABILITIES);
        caps
    }

    /// The `auth_require_tls` policy: may this client send a password now?
    fn auth_allowed(&self) -> bool {
        self.shared
            .config
            .auth_require_tls
            .allows(self.conn.is_tls(), self.conn.peer.ip())
    }

    /// STARTTLS (RFC 9051 §6.2.1): the tagged OK, then the handshake. Anything the client sent
    /// behind the command in clear is discarded (the CVE-2011-0411 class), and the session
    /// starts over, not authenticated.
    async fn starttls(&mut self, tag: &str) -> Result<Done, ImapError> {
        if self.conn.is_tls() {
            return Err(ImapError::bad("TLS is already active on this connection"));
        }
        let Some(acceptor) = self.shared.tls.as_ref().map(|t| t.acceptor.clone()) else {
            return Err(ImapError::no_code(
                "STARTTLS is not available: this server has no TLS certificate",
            ));
        };
        self.send_line(&format!("{tag} OK Begin TLS negotiation now"));
        match self.conn.start_tls(&acceptor).await {
            Ok(discarded) => {
                if discarded > 0 {
                    tracing::warn!(peer = %self.conn.peer, discarded, "plaintext pipelined behind STARTTLS was discarded");
                }
                self.asm = Assembler::new();
                Ok(Done::Replied)
            }
            Err(e) => {
                tracing::info!(peer = %self.conn.peer, error = %e, "STARTTLS handshake failed");
                Ok(Done::Close)
            }
        }
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
            C::Login { .. } | C::Authenticate { .. } if !self.auth_allowed() => Err(ImapError::no(
                "PRIVACYREQUIRED",
                "passwords are only accepted over TLS here: use STARTTLS first, or the implicit-TLS port",
            )),
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

    fn full_name(&self, name: &str) -> String {
        match self.shared.config.domains.as_slice() {
            [only] if !name.contains('@') => format!("{name}@{only}"),
            _ => name.to_string(),
        }
    }

    async fn login(&mut self, tag: &str, user: &str, password: &str) -> Result<Done, ImapError> {
        let user = self.full_name(user);
        let account = check_password(&self.shared, &user, password).await;
        self.finish_auth(tag, &user, account, "LOGIN").await
    }

    async fn finish_auth(
        &mut self,
        tag: &str,
        user: &str,
        account: Result<Account, AuthError>,
        what: &str,
    ) -> Result<Done, ImapError> {
        match account {
            Ok(a) => {
                self.conn.trace.note(&format!("logged in as {}", a.address));
                self.state = State::Authenticated(a);
                let caps = self.capabilities();
                Ok(Done::Ok(format!(
                    "[CAPABILITY {caps}] {what} completed, welcome"
                )))
            }
            // RFC 5530 UNAVAILABLE: not a failed login (no delay, not counted).
            Err(AuthError::Unavailable) => Err(ImapError::auth_unavailable()),
            Err(AuthError::Rejected) => {
                self.auth_failures += 1;
                // Per connection and per client address, shared with SMTP and POP3.
                let delay = crate::auth::note_failure(
                    &self.shared,
                    "imap",
                    self.conn.peer,
                    user,
                    self.auth_failures,
                );
                let max = self.shared.config.limits.max_auth_failures;
                tokio::time::sleep(delay).await;
                let e = ImapError::no(
                    "AUTHENTICATIONFAILED",
                    "wrong user name or password; check both and try again",
                );
                let reply = e.to_reply(Some(tag));
                self.conn.send(&reply);
                if self.auth_failures >= max {
                    self.send_line(&format!(
                        "* BYE too many failed logins ({max}); closing the connection"
                    ));
                    return Ok(Done::Close);
                }
                Ok(Done::Replied)
            }
        }
    }

    /// Reads one SASL response line (RFC 9051 §6.2.2); `None` if the connection ended.
    async fn sasl_line(&mut self, challenge: &str) -> Option<String> {
        self.send_line(&format!("+ {challenge}"));
        match self.conn.next_line().await {
            Event::Line(Ok(l)) => {
                self.conn.trace.client("****");
                Some(String::from_utf8_lossy(&l).into_owned())
            }
            Event::Line(Err(_)) => Some(String::from("\u{0}invalid")),
            _ => None,
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
                    None => match self.sasl_line("").await {
                        Some(r) => r,
                        None => return Ok(Done::Close),
                    },
                };
                let decoded = sasl::decode_response(&resp).map_err(sasl_err)?;
                let creds = sasl::parse_plain(&decoded).map_err(sasl_err)?;
                let user = self.full_name(&creds.authcid);
                if !creds.authzid.is_empty() && self.full_name(&creds.authzid) != user {
                    return Err(ImapError::no(
                        "AUTHORIZATIONFAILED",
                        "you may only act as yourself (leave the authorization id empty)",
                    ));
                }
                let account = check_password(&self.shared, &user, &creds.password).await;
                self.finish_auth(tag, &user, account, "AUTHENTICATE").await
            }
            "LOGIN" => {
                let user_line = match initial {
                    Some(r) => r,
                    None => match self.sasl_line(sasl::LOGIN_USERNAME_CHALLENGE).await {
                        Some(r) => r,
                        None => return Ok(Done::Close),
                    },
                };
                if user_line.trim() == "*" {
                    return Err(cancelled());
                }
                let user = sasl::decode_text(&user_line).map_err(sasl_err)?;
                let Some(pass_line) = self.sasl_line(sasl::LOGIN_PASSWORD_CHALLENGE).await else {
                    return Ok(Done::Close);
                };
                let password = sasl::decode_text(&pass_line).map_err(sasl_err)?;
                let user = self.full_name(&user);
                let account = check_password(&self.shared, &user, &password).await;
                self.finish_auth(tag, &user, account, "AUTHENTICATE").await
            }
            other => Err(ImapError::no(
                "CANNOT",
                format!("SASL mechanism {other} is not supported; use PLAIN or LOGIN"),
            )),
        }
    }

    /// ENABLE (RFC 5161): IMAP4rev2 (RFC 9051 §6.3.1, which also makes mailbox names UTF-8)
    /// and CONDSTORE (RFC 7162 §3.1).
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
        }
        self.send_line(format!("* ENABLED {}", enabled.join(" ")).trim_end());
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
        self.send_line(&format!(
            "* ID (\"name\" \"mailroom\" \"version\" \"{}\")",
            env!("CARGO_PKG_VERSION")
        ));
        ok("ID completed")
    }

    /// LOGOUT (RFC 9051 §6.1.3): `* BYE`, the tagged OK, and the connection is closed.
    pub(super) fn logout(&mut self, tag: &str) -> Result<Done, ImapError> {
        self.send_line("* BYE mailroom IMAP4 server signing off");
        self.send_line(&format!("{tag} OK LOGOUT completed"));
        Ok(Done::Close)
    }
}
