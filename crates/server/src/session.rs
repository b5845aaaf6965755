//! The session toolkit: the plumbing every protocol driver (SMTP, POP3, IMAP) needs around its
//! [`Conn`], written once so the three cannot drift apart.
//!
//! | piece | what it does | the driver keeps |
//! |---|---|---|
//! | [`auth_allowed`] | the `auth_require_tls` policy: may this client send a password now? | what to advertise, which refusal to send |
//! | [`tls_acceptor`], [`swap_to_tls`] | STARTTLS/STLS: the checks, then the handshake with the clear-text pipeline discarded (RFC 3207 §4.2, RFC 2595 §4, the CVE-2011-0411 class) and logged | its go-ahead line and what it forgets after the swap |
//! | [`sasl_response`] | one step of a SASL exchange: queue the challenge, read the response line, trace it as `****` | the challenge's framing, decoding, its error replies |
//! | [`ErrorCount`] | client errors counted against `limits.max_errors` | which errors count, its last words |
//! | [`LoginFailures`] | a rejected login: logged with the user name, counted per connection and per client address, delayed (doubling); `limits.max_auth_failures` | its refusal and goodbye |
//!
//! ## One behaviour for an over-long SASL response
//!
//! The line reader discards a line longer than the command-line limit. The drivers used to
//! answer that three ways (SMTP and IMAP as "not base64", POP3 as "line too long"). Now
//! [`sasl_response`] gives [`SaslResponse::TooLong`], and every driver answers it as what it
//! is: the response was too long. The exchange is over (a cut response cannot be used), it
//! counts as a client error (like any other over-long line), and it is *not* a failed login
//! (no password was checked, so no delay and no count towards `max_auth_failures`). Each
//! protocol says it in its own words: SMTP `500 5.5.6` (RFC 4954 §6, "Authentication Exchange
//! line is too long"), POP3 `-ERR command line too long ...`, IMAP a tagged `BAD`.
//!
//! ## Adopting it in a driver
//!
//! As IMAP does it (`imap/auth.rs`, and the BAD counter in `imap/mod.rs`), in outline:
//!
//! ```text
//! struct Session { conn: Conn, shared: Arc<Shared>, errors: ErrorCount, logins: LoginFailures, .. }
//!
//! capabilities:   if session::auth_allowed(&shared, &conn) { "AUTH=PLAIN" } else { "LOGINDISABLED" }
//! a BAD reply:    if self.errors.count(&shared) { send "* BYE too many ..."; close }
//! STARTTLS:       let acceptor = match session::tls_acceptor(&shared, &conn) {
//!                     Err(TlsUnavailable::AlreadyActive) => BAD ..., Err(NotConfigured) => NO ...,
//!                     Ok(a) => a };
//!                 send "tag OK Begin TLS negotiation now";
//!                 if !session::swap_to_tls(&mut conn, &acceptor, "STARTTLS").await { close }
//!                 reset what the session knew before (the IMAP command assembler)
//! AUTHENTICATE:   match session::sasl_response(&mut conn, b"+ \r\n").await {
//!                     SaslResponse::Line(bytes) => decode ...,
//!                     SaslResponse::TooLong { limit } => tagged BAD "line too long ...",
//!                     SaslResponse::Ended(_) => close }
//! wrong password: if self.logins.record(&shared, &conn, &user).await { NO + BYE; close } else { NO }
//! ```

use tokio_rustls::TlsAcceptor;

use crate::conn::{Conn, Event};
use crate::Shared;
use mailroom_proto::line::LineError;

/// Runs a store read of a few rows by key (an account, a mailbox row, an alias): on the
/// session's own thread when the store is this process's own SQLite file (an indexed read
/// takes a few microseconds, less than the hand-off to a blocking thread and back), else on a
/// blocking thread (a shared store is across a network). Never for writes or for reads that
/// grow with a mailbox.
pub async fn quick_read<T: Send + 'static>(
    store: &mailroom_store::Store,
    f: impl FnOnce(&dyn mailroom_store::MailStore) -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if store.is_shared() {
        let store = store.clone();
        return tokio::task::spawn_blocking(move || f(store.as_ref())).await;
    }
    Ok(f(store.as_ref()))
}

/// The `auth_require_tls` policy: may this client send a password on this connection now
/// (TLS is up, or the policy exempts its address)? Drivers advertise AUTH mechanisms only
/// where this holds (RFC 4954 §4, RFC 3207 §4, RFC 2595 §4, RFC 9051 §7.2.2 LOGINDISABLED) and
/// refuse passwords where it does not.
pub fn auth_allowed(shared: &Shared, conn: &Conn) -> bool {
    shared
        .config
        .auth_require_tls
        .allows(conn.is_tls(), conn.peer.ip())
}

/// Why STARTTLS/STLS cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsUnavailable {
    /// TLS already runs on this connection (implicit TLS, or a STARTTLS before).
    AlreadyActive,
    /// The server has no TLS configured.
    NotConfigured,
}

/// The checks before STARTTLS/STLS, in the order every driver makes them: TLS already active,
/// then TLS not configured. The acceptor to hand to [`swap_to_tls`].
pub fn tls_acceptor(shared: &Shared, conn: &Conn) -> Result<TlsAcceptor, TlsUnavailable> {
    if conn.is_tls() {
        return Err(TlsUnavailable::AlreadyActive);
    }
    shared
        .tls
        .as_ref()
        .map(|t| t.acceptor.clone())
        .ok_or(TlsUnavailable::NotConfigured)
}

/// STARTTLS/STLS after the driver has queued its go-ahead: sends it in clear, discards what
/// the client pipelined behind the command (RFC 3207 §4.2, RFC 2595 §4; logged when there was
/// any), runs the handshake. `command` names the verb in the log. False when the handshake
/// failed: the connection is unusable and the driver closes it without another word.
pub async fn swap_to_tls(conn: &mut Conn, acceptor: &TlsAcceptor, command: &str) -> bool {
    match conn.start_tls(acceptor).await {
        Ok(discarded) => {
            if discarded > 0 {
                tracing::warn!(session = conn.trace.id, peer = %conn.peer, discarded, "plaintext pipelined behind {command} was discarded");
            }
            true
        }
        Err(e) => {
            tracing::info!(session = conn.trace.id, peer = %conn.peer, error = %e, "{command} handshake failed");
            false
        }
    }
}

/// What one step of a SASL exchange produced.
#[derive(Debug)]
pub enum SaslResponse {
    /// The client's response line, without its line end (base64, `=` or `*`; not yet decoded).
    Line(Vec<u8>),
    /// The response was longer than the command-line limit and has been discarded: the
    /// exchange is over, and the driver answers with its "too long" reply (see the module
    /// doc). Not a failed login.
    TooLong { limit: usize },
    /// The connection closed, went idle too long, or the server is shutting down: what
    /// [`Conn::next_line`] said, for the driver's own goodbye (if any).
    Ended(Event),
}

/// Queues `challenge` (the protocol's continuation line, framed and with its CRLF: SMTP
/// `334 ...`, POP3 and IMAP `+ ...`) and reads the client's response. The response is
/// traced as `****` whatever it holds: it may be a password.
pub async fn sasl_response(conn: &mut Conn, challenge: &[u8]) -> SaslResponse {
    conn.send(challenge);
    match conn.next_line().await {
        Event::Line(Ok(line)) => {
            conn.client_masked("****");
            SaslResponse::Line(line)
        }
        Event::Line(Err(LineError::TooLong { limit })) => {
            conn.client_masked(&format!("<line longer than {limit} octets>"));
            SaslResponse::TooLong { limit }
        }
        other => SaslResponse::Ended(other),
    }
}

/// The client errors of one session, counted against `limits.max_errors`. Which errors count
/// is the driver's call (its own server trouble never does).
#[derive(Debug, Default)]
pub struct ErrorCount(u32);

impl ErrorCount {
    /// Counts one client error. True when it reaches `limits.max_errors`: the driver sends
    /// its last words and closes the connection.
    pub fn count(&mut self, shared: &Shared) -> bool {
        self.0 += 1;
        self.0 >= shared.config.limits.max_errors
    }
}

/// The failed logins of one connection.
#[derive(Debug, Default)]
pub struct LoginFailures(u32);

impl LoginFailures {
    /// Reports a rejected login: logs it with `user` (the name the client gave, completed as
    /// the driver completes names; empty only when no name could be read from the client's
    /// message), records it for the client's address, notes it in the session trace and waits
    /// the failure delay (doubling per failure, on this connection or from this address). True
    /// when the connection has reached `limits.max_auth_failures`: the driver refuses and
    /// closes.
    ///
    /// A check that could not be made (`LoginError::Unavailable`) is not a failure: do not
    /// call this for it.
    pub async fn record(&mut self, shared: &Shared, conn: &Conn, user: &str) -> bool {
        self.0 += 1;
        let delay =
            crate::auth::note_failure(shared, conn.trace.proto, conn.peer, user, self.0).await;
        let max = shared.config.limits.max_auth_failures;
        conn.trace
            .note(&format!("authentication failure {} of {max}", self.0));
        tokio::time::sleep(delay).await;
        self.0 >= max
    }
}
