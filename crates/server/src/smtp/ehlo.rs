//! The start of an SMTP session: the 220 greeting, HELO/EHLO with the extensions this server
//! offers (RFC 5321 §4.1.1.1), and STARTTLS (RFC 3207).

use mailroom_proto::smtp::Reply;

use super::{Flow, Refusal, Session, State};
use crate::session::{self, TlsUnavailable};

impl Session {
    /// The 220 greeting (RFC 5321 §4.2, §3.1).
    pub(super) fn greet(&mut self) {
        let greeting = format!(
            "{} ESMTP mailroom ready; say EHLO your.host.name",
            self.host()
        );
        self.ok(220, "", greeting);
    }

    /// STARTTLS (RFC 3207): 220, then the handshake. Whatever the client pipelined behind the
    /// command is discarded (§4.2, CVE-2011-0411), and the session starts over (§4.2: the
    /// server forgets the EHLO and any AUTH; the client must EHLO again).
    pub(super) async fn start_tls(&mut self) -> Flow {
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

    /// HELO/EHLO (RFC 5321 §4.1.1.1): 250, with the extension list for EHLO.
    pub(super) fn hello(&mut self, domain: String, esmtp: bool) -> Flow {
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
}
