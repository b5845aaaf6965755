//! AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms: the `auth_require_tls`
//! policy, the SASL exchange over 334 challenges, and failed logins (delayed, counted,
//! logged through the session toolkit). The user name may be a bare local part when it names
//! exactly one account (`crate::auth::login`).

use mailroom_proto::sasl;
use mailroom_proto::smtp::Reply;

use super::refusal::sasl_refusal;
use super::{Flow, Refusal, Session, State};
use crate::auth;
use crate::metrics::FaultStage;
use crate::session::{self, SaslResponse};

impl Session {
    pub(super) async fn authenticate(
        &mut self,
        mechanism: String,
        initial: Option<String>,
    ) -> Flow {
        match self.state {
            State::Connected => return self.refuse(Refusal::HeloFirst),
            State::Greeted => {}
            _ => return self.refuse(Refusal::AuthNotDuringTransaction),
        }
        if self.auth.is_some() || self.captured_login.is_some() {
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
        if self.capture().is_some() {
            if let Some(flow) = self.injected(FaultStage::Auth) {
                return flow;
            }
            tracing::info!(session = self.id, %user, peer = %self.conn.peer, "capture mode: AUTH accepted without a password check");
            self.captured_login = Some(user);
            self.ok(
                235,
                "2.7.0",
                "Authentication successful (capture mode: any user name and password are accepted)",
            );
            return Flow::Continue;
        }
        match auth::login(&self.shared, &user, &pass).await {
            Ok(account) => {
                tracing::info!(session = self.id, user = %account.address, peer = %self.conn.peer, "authenticated");
                self.auth = Some(account);
                self.ok(235, "2.7.0", "Authentication successful");
                Flow::Continue
            }
            // Not a failed login: no delay, not counted (RFC 4954 §6).
            Err(auth::LoginError::Unavailable) => self.refuse(Refusal::AuthTemporary),
            Err(e) => {
                let refusal = match e {
                    auth::LoginError::Ambiguous { name } => Refusal::AuthAmbiguous(name),
                    _ => Refusal::AuthFailed,
                };
                if self.logins.record(&self.shared, &self.conn, &user).await {
                    self.reply(refusal.reply());
                    let host = self.host().to_string();
                    self.ok(
                        421,
                        "4.7.0",
                        format!("{host} Too many failed logins; closing connection"),
                    );
                    return Flow::Close;
                }
                self.refuse(refusal)
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
