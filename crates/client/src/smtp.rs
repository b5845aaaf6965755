//! SMTP client (RFC 5321) with the extensions a submission client needs: PIPELINING
//! (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES
//! (RFC 2034) and AUTH PLAIN / LOGIN (RFC 4954, RFC 4616).
//!
//! ```text
//!  connect ─▶ S: 220 greeting                              (else Rejected, QUIT)
//!  hello   ─▶ C: EHLO name ─▶ 250-extensions               (5xx: C: HELO name, RFC 5321 §4.1.1.1)
//!  authenticate ─▶ C: AUTH PLAIN ****  ─▶ 235              (or AUTH LOGIN, 334, ****, 334, ****)
//!  send_mail ─▶ C: MAIL FROM:<a> [SIZE=n] [BODY=8BITMIME] [SMTPUTF8]
//!               C: RCPT TO:<b> ...        (one write with DATA when PIPELINING is offered)
//!               C: DATA  ─▶ 354 ─▶ dot-stuffed message, "." ─▶ 250 (or 4xx/5xx)
//!               no recipient accepted ─▶ no content, C: RSET
//!  send_next_mail ─▶ C: RSET, then as send_mail (RSET in the same write when pipelining):
//!               the next transaction on a reused session; a dead session fails at RSET
//!  quit    ─▶ C: QUIT ─▶ 221, close
//! ```
//!
//! The sans-IO parts are `mailroom_proto::smtp`'s, shared with the server and re-exported
//! here: [`ReplyAssembler`] (reply lines → [`SmtpReply`], the same type the server builds),
//! [`Extensions::from_ehlo`], [`normalize_crlf`] and [`dot_stuff`].

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::conn::{Conn, ConnError};
use crate::tls::ClientTls;
use crate::trace::{BodyTracer, Direction, TraceFn, MASK};

/// The reply type, its reader and the EHLO keywords are `mailroom_proto::smtp`'s (the server
/// builds the same [`SmtpReply`] it sends); re-exported here under the client's names.
pub use mailroom_proto::smtp::{
    dot_stuff, normalize_crlf, parse_reply_line, Extensions, Reply as SmtpReply, ReplyAssembler,
    ReplyError, MAX_REPLY_LINE, MAX_REPLY_LINES,
};

/// Errors of the SMTP client. Refusals of MAIL, RCPT and DATA inside [`SmtpClient::send_mail`]
/// are not errors: they are in the [`SendOutcome`].
pub type SmtpError = crate::error::ClientError<SmtpReply>;

/// Every reply of one mail transaction.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    /// The reply to MAIL FROM.
    pub mail: SmtpReply,
    /// The reply to each RCPT TO, in order. Without PIPELINING nothing is sent after a refused
    /// MAIL, so this is then empty.
    pub rcpts: Vec<(String, SmtpReply)>,
    /// The final reply to the message (after the "."), or the refusal of DATA itself. `None`
    /// when DATA was not attempted (MAIL refused or no recipient accepted).
    pub data: Option<SmtpReply>,
}

impl SendOutcome {
    /// The recipients the message was accepted for: RCPT and the end of data both positive.
    pub fn accepted(&self) -> Vec<&str> {
        if !self.mail.is_success() || !self.data.as_ref().is_some_and(|d| d.is_success()) {
            return Vec::new();
        }
        self.rcpts
            .iter()
            .filter(|(_, r)| r.is_success())
            .map(|(a, _)| a.as_str())
            .collect()
    }

    /// True when the message was accepted for every recipient.
    pub fn all_accepted(&self) -> bool {
        !self.rcpts.is_empty() && self.accepted().len() == self.rcpts.len()
    }

    /// The reply that decided each recipient's fate, in order: the RCPT refusal, else the DATA
    /// (or final) reply, else (MAIL refused) the MAIL reply.
    pub fn per_recipient<'a>(&'a self, rcpts: &'a [String]) -> Vec<(&'a str, &'a SmtpReply)> {
        rcpts
            .iter()
            .map(|r| {
                let rcpt = self.rcpts.iter().find(|(a, _)| a == r).map(|(_, rep)| rep);
                let reply = if !self.mail.is_success() {
                    &self.mail
                } else {
                    match (rcpt, &self.data) {
                        (Some(rep), _) if !rep.is_success() => rep,
                        (_, Some(d)) => d,
                        (Some(rep), None) => rep,
                        (None, None) => &self.mail,
                    }
                };
                (r.as_str(), reply)
            })
            .collect()
    }
}

/// An SMTP client session.
pub struct SmtpClient {
    conn: Conn,
    greeting: SmtpReply,
    extensions: Extensions,
    assembler: ReplyAssembler,
    /// Whether the last transaction got as far as writing the message content.
    content_sent: bool,
}

impl SmtpClient {
    /// Connects (with timeout) and reads the 220 greeting (non-220 → Rejected).
    ///
    /// RFC 5321 §3.1: a server that will not serve us answers 554 (or 421); we then say QUIT
    /// and report the greeting.
    pub async fn connect(
        server: &str,
        timeout: Duration,
        trace: Option<TraceFn>,
    ) -> Result<SmtpClient, SmtpError> {
        Self::open(server, timeout, trace, None).await
    }

    /// Connects, with `tls` at once (implicit TLS, RFC 8314: the port 465/993/995 kind) or
    /// in clear, and reads the greeting.
    pub async fn open(
        server: &str,
        timeout: Duration,
        trace: Option<TraceFn>,
        tls: Option<&ClientTls>,
    ) -> Result<SmtpClient, SmtpError> {
        let conn = Conn::open(server, timeout, trace, MAX_REPLY_LINE, tls)
            .await
            .map_err(|e| conn_error(server.to_string(), e))?;
        let mut client = SmtpClient {
            conn,
            greeting: SmtpReply {
                code: 0,
                enhanced: None,
                lines: Vec::new(),
            },
            extensions: Extensions::default(),
            assembler: ReplyAssembler::new(),
            content_sent: false,
        };
        let greeting = client.read_reply("the greeting (220)").await?;
        if greeting.code != 220 {
            if greeting.code != 421 {
                let _ = client.send_line("QUIT", None, "QUIT").await;
                let _ = client.read_reply("the reply to QUIT").await;
            }
            return Err(client.rejected("the connection", greeting));
        }
        client.greeting = greeting;
        Ok(client)
    }

    /// "host:port" as given to [`SmtpClient::connect`].
    pub fn server(&self) -> &str {
        &self.conn.server
    }

    pub fn greeting(&self) -> &SmtpReply {
        &self.greeting
    }

    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Changes how long each wait for the server may take from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.conn.timeout = timeout;
    }

    /// True when the session runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// STARTTLS (RFC 3207): asks for 220, runs the handshake. The server forgets the session
    /// (§4.2), and so do we: call [`SmtpClient::hello`] again before anything else.
    pub async fn starttls(&mut self, tls: &ClientTls) -> Result<(), SmtpError> {
        let reply = self.command("STARTTLS", "the reply to STARTTLS").await?;
        if reply.code != 220 {
            return Err(self.rejected("STARTTLS", reply));
        }
        self.conn
            .start_tls(tls)
            .await
            .map_err(|e| self.conn_error(e))?;
        self.extensions = Extensions::default();
        Ok(())
    }

    /// EHLO, falling back to HELO when EHLO gets a 5xx (RFC 5321 §4.1.1.1). Fills extensions().
    pub async fn hello(&mut self, my_name: &str) -> Result<(), SmtpError> {
        check_arg(self.server(), "the EHLO name", my_name)?;
        let ehlo = format!("EHLO {my_name}");
        let reply = self.command(&ehlo, "the reply to EHLO").await?;
        if reply.code == 250 {
            self.extensions = Extensions::from_ehlo(&reply);
            return Ok(());
        }
        if !reply.is_permanent() {
            return Err(self.rejected("EHLO", reply));
        }
        // RFC 5321 §4.1.1.1 / §3.2: a server that does not know EHLO answers 5xx; say HELO.
        let helo = format!("HELO {my_name}");
        let reply = self.command(&helo, "the reply to HELO").await?;
        if reply.code != 250 {
            return Err(self.rejected("HELO", reply));
        }
        self.extensions = Extensions::default();
        Ok(())
    }

    /// AUTH PLAIN (initial response, RFC 4954 §4 and RFC 4616) when offered, else AUTH LOGIN;
    /// the trace shows AUTH payloads as "****".
    pub async fn authenticate(&mut self, user: &str, password: &str) -> Result<(), SmtpError> {
        if self.extensions.offers_auth("PLAIN") {
            let mut msg = Vec::with_capacity(user.len() + password.len() + 2);
            msg.push(0);
            msg.extend_from_slice(user.as_bytes());
            msg.push(0);
            msg.extend_from_slice(password.as_bytes());
            let line = format!("AUTH PLAIN {}", STANDARD.encode(&msg));
            self.send_line(&line, Some(&format!("AUTH PLAIN {MASK}")), "AUTH")
                .await?;
            let reply = self.read_reply("the reply to AUTH PLAIN").await?;
            return self.auth_done("AUTH PLAIN", reply).await;
        }
        if self.extensions.offers_auth("LOGIN") {
            let reply = self
                .command("AUTH LOGIN", "the reply to AUTH LOGIN")
                .await?;
            if reply.code != 334 {
                return Err(self.rejected("AUTH LOGIN", reply));
            }
            // Username: (draft-murchison-sasl-login: the challenges are "Username:" and
            // "Password:", but only their order matters).
            self.send_line(&STANDARD.encode(user), Some(MASK), "AUTH")
                .await?;
            let reply = self.read_reply("the AUTH LOGIN password challenge").await?;
            if reply.code != 334 {
                return self.auth_done("AUTH LOGIN", reply).await;
            }
            self.send_line(&STANDARD.encode(password), Some(MASK), "AUTH")
                .await?;
            let reply = self.read_reply("the reply to AUTH LOGIN").await?;
            return self.auth_done("AUTH LOGIN", reply).await;
        }
        let message = if self.extensions.auth.is_empty() {
            "does not offer AUTH (RFC 4954); log in elsewhere (the submission port) or send without logging in".to_string()
        } else {
            format!(
                "offers AUTH {} but this client speaks only PLAIN and LOGIN",
                self.extensions.auth.join(" ")
            )
        };
        Err(self.protocol(message))
    }

    async fn auth_done(&mut self, command: &str, reply: SmtpReply) -> Result<(), SmtpError> {
        match reply.code {
            235 => Ok(()),
            334 => {
                // A challenge we have no answer for: cancel the exchange (RFC 4954 §4).
                self.send_line("*", None, "AUTH").await?;
                let _ = self.read_reply("the reply to the AUTH cancel").await?;
                Err(self.protocol(format!(
                    "sent an unexpected challenge during {command}: {reply}"
                )))
            }
            _ => Err(self.rejected(command, reply)),
        }
    }

    /// One transaction: see the module docs. Refusals are in the returned [`SendOutcome`];
    /// `Err` means the session itself failed (connection, timeout, 421, unreadable reply), and
    /// then nothing may be taken as sent.
    pub async fn send_mail(
        &mut self,
        from: &str,
        rcpts: &[String],
        message: &[u8],
    ) -> Result<SendOutcome, SmtpError> {
        self.transaction(from, rcpts, message, false).await
    }

    /// The next transaction on a session that has carried one before (connection reuse):
    /// RSET first (RFC 5321 §4.1.1.5), which also proves the session is still alive. With
    /// PIPELINING it goes in the same write as MAIL, RCPT and DATA (RFC 2920 §3.1: RSET may
    /// stand anywhere in a group), so reuse costs no extra round trip. A reply to RSET other
    /// than 250 is an error (`Rejected`, command "RSET"), and so is a session that died while
    /// idle; [`SmtpClient::content_sent`] is then false: the peer cannot have taken the
    /// message, and the caller may send it again at once on a new session. After any `Err`
    /// the session must be dropped (commands pipelined behind a refused RSET may have left a
    /// transaction open on the peer; closing the connection abandons it, RFC 5321 §3.3).
    pub async fn send_next_mail(
        &mut self,
        from: &str,
        rcpts: &[String],
        message: &[u8],
    ) -> Result<SendOutcome, SmtpError> {
        self.transaction(from, rcpts, message, true).await
    }

    /// Whether the last [`SmtpClient::send_mail`] / [`SmtpClient::send_next_mail`] got as far
    /// as writing the message content. After an `Err`, false means the peer cannot have
    /// accepted the message; true means it may have (RFC 5321 §6.1: a reply lost after the
    /// final "." is why a message can arrive twice).
    pub fn content_sent(&self) -> bool {
        self.content_sent
    }

    async fn transaction(
        &mut self,
        from: &str,
        rcpts: &[String],
        message: &[u8],
        reset: bool,
    ) -> Result<SendOutcome, SmtpError> {
        self.content_sent = false;
        if rcpts.is_empty() {
            return Err(
                self.protocol("no recipients: a message needs at least one RCPT TO".to_string())
            );
        }
        check_arg(self.server(), "the sender", from)?;
        for r in rcpts {
            check_arg(self.server(), "a recipient", r)?;
            if r.is_empty() {
                return Err(self.protocol("an empty recipient address".to_string()));
            }
        }
        let message = normalize_crlf(message);
        let ext = self.extensions.clone();
        let mut mail = format!("MAIL FROM:<{from}>");
        // RFC 1870 §6: declare the size so that a server can refuse early.
        if ext.size.is_some() {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        // RFC 6152 §3: a message with 8-bit octets is declared BODY=8BITMIME.
        if ext.eightbitmime && message.iter().any(|&b| b >= 0x80) {
            mail.push_str(" BODY=8BITMIME");
        }
        // RFC 6531 §3.4: non-ASCII addresses need SMTPUTF8, and must not be sent without it.
        let needs_utf8 = !from.is_ascii() || rcpts.iter().any(|r| !r.is_ascii());
        if needs_utf8 {
            if !ext.smtputf8 {
                return Err(self.protocol(
                    "an address is not ASCII and the server does not offer SMTPUTF8 (RFC 6531); nothing was sent".to_string(),
                ));
            }
            mail.push_str(" SMTPUTF8");
        }
        let rcpt_lines: Vec<String> = rcpts.iter().map(|r| format!("RCPT TO:<{r}>")).collect();

        let (mail_reply, rcpt_replies, data_reply) = if ext.pipelining {
            // RFC 2920 §3.1: MAIL, every RCPT and DATA go in one write; the replies come in order.
            let mut batch = String::new();
            if reset {
                self.conn.trace_text(Direction::Client, "RSET");
                batch.push_str("RSET\r\n");
            }
            for line in std::iter::once(&mail)
                .chain(rcpt_lines.iter())
                .chain(std::iter::once(&"DATA".to_string()))
            {
                self.conn.trace_text(Direction::Client, line);
                batch.push_str(line);
                batch.push_str("\r\n");
            }
            self.write(batch.as_bytes(), "MAIL/RCPT/DATA to be sent")
                .await?;
            if reset {
                self.expect_rset().await?;
            }
            let mail_reply = self.read_reply("the reply to MAIL").await?;
            self.check_421("MAIL FROM", &mail_reply)?;
            let mut rcpt_replies = Vec::with_capacity(rcpts.len());
            for r in rcpts {
                let reply = self.read_reply("the reply to RCPT").await?;
                self.check_421(&format!("RCPT TO:<{r}>"), &reply)?;
                rcpt_replies.push((r.clone(), reply));
            }
            let data_reply = self.read_reply("the reply to DATA").await?;
            self.check_421("DATA", &data_reply)?;
            (mail_reply, rcpt_replies, Some(data_reply))
        } else {
            if reset {
                self.send_line("RSET", None, "the reply to RSET").await?;
                self.expect_rset().await?;
            }
            let mail_reply = self.command(&mail, "the reply to MAIL").await?;
            self.check_421("MAIL FROM", &mail_reply)?;
            if !mail_reply.is_success() {
                return Ok(SendOutcome {
                    mail: mail_reply,
                    rcpts: Vec::new(),
                    data: None,
                });
            }
            let mut rcpt_replies = Vec::with_capacity(rcpts.len());
            for (r, line) in rcpts.iter().zip(&rcpt_lines) {
                let reply = self.command(line, "the reply to RCPT").await?;
                self.check_421(line, &reply)?;
                rcpt_replies.push((r.clone(), reply));
            }
            let data_reply = if rcpt_replies.iter().any(|(_, r)| r.is_success()) {
                let reply = self.command("DATA", "the reply to DATA").await?;
                self.check_421("DATA", &reply)?;
                Some(reply)
            } else {
                None
            };
            (mail_reply, rcpt_replies, data_reply)
        };

        let any_rcpt = mail_reply.is_success() && rcpt_replies.iter().any(|(_, r)| r.is_success());
        let data = match data_reply {
            Some(d) if d.code == 354 && any_rcpt => {
                let content = dot_stuff(&message);
                self.trace_body(&content);
                self.content_sent = true;
                self.write(&content, "the message to be sent").await?;
                // RFC 5321 §4.5.3.2.6: the final reply may take long (up to 10 minutes).
                let fin = self
                    .read_reply("the reply after the message (end of data)")
                    .await?;
                self.check_421("the message", &fin)?;
                Some(fin)
            }
            Some(d) if d.code == 354 => {
                // RFC 2920 §3.1: DATA accepted although no recipient was: send the end of
                // data at once (an empty message, which the server must refuse), nothing else.
                self.send_line(".", None, "the end of data").await?;
                let _ = self.read_reply("the reply to an empty DATA").await?;
                self.rset_quietly().await?;
                None
            }
            Some(d) if any_rcpt => {
                if d.is_positive() {
                    // RFC 5321 §4.1.1.4: the only positive answer to DATA is 354.
                    return Err(self.protocol(format!("answered DATA with {d} instead of 354")));
                }
                // DATA itself refused: the transaction is still open; close it.
                self.rset_quietly().await?;
                Some(d)
            }
            _ => {
                // Nothing accepted: never any content (RFC 5321 §3.3), just reset.
                if mail_reply.is_success() {
                    self.rset_quietly().await?;
                }
                None
            }
        };
        Ok(SendOutcome {
            mail: mail_reply,
            rcpts: rcpt_replies,
            data,
        })
    }

    /// RSET (RFC 5321 §4.1.1.5): abandons the current transaction.
    pub async fn rset(&mut self) -> Result<(), SmtpError> {
        let reply = self.command("RSET", "the reply to RSET").await?;
        if reply.code != 250 {
            return Err(self.rejected("RSET", reply));
        }
        Ok(())
    }

    /// The reply to a RSET that opens a reused transaction: anything but 250 ends the session.
    async fn expect_rset(&mut self) -> Result<(), SmtpError> {
        let reply = self.read_reply("the reply to RSET").await?;
        if reply.code != 250 {
            return Err(self.rejected("RSET", reply));
        }
        Ok(())
    }

    async fn rset_quietly(&mut self) -> Result<(), SmtpError> {
        let reply = self.command("RSET", "the reply to RSET").await?;
        self.check_421("RSET", &reply)
    }

    /// NOOP (RFC 5321 §4.1.1.9).
    pub async fn noop(&mut self) -> Result<SmtpReply, SmtpError> {
        self.command("NOOP", "the reply to NOOP").await
    }

    /// Sends any command line and returns the reply, whatever it is (for teaching and tests).
    pub async fn raw_command(&mut self, line: &str) -> Result<SmtpReply, SmtpError> {
        check_arg(self.server(), "the command", line)?;
        self.command(line, "the reply").await
    }

    /// QUIT, read 221, close. Errors after DATA are not fatal to the caller's result.
    pub async fn quit(mut self) -> Result<(), SmtpError> {
        let result = match self.command("QUIT", "the reply to QUIT").await {
            Ok(r) if r.code == 221 => Ok(()),
            Ok(r) => Err(self.rejected("QUIT", r)),
            Err(e) => Err(e),
        };
        self.conn.shutdown().await;
        result
    }

    // ---- plumbing ----

    async fn command(
        &mut self,
        line: &str,
        waiting_for: &'static str,
    ) -> Result<SmtpReply, SmtpError> {
        self.send_line(line, None, waiting_for).await?;
        self.read_reply(waiting_for).await
    }

    /// Sends one line; `shown` replaces it in the trace (masked secrets).
    async fn send_line(
        &mut self,
        line: &str,
        shown: Option<&str>,
        waiting_for: &'static str,
    ) -> Result<(), SmtpError> {
        self.conn
            .trace_text(Direction::Client, shown.unwrap_or(line));
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes, waiting_for).await
    }

    async fn write(&mut self, bytes: &[u8], waiting_for: &'static str) -> Result<(), SmtpError> {
        self.conn
            .write_all(bytes, waiting_for)
            .await
            .map_err(|e| self.conn_error(e))
    }

    fn trace_body(&self, content: &[u8]) {
        if self.conn.trace.is_none() {
            return;
        }
        let mut tracer = BodyTracer::new();
        let body = content.strip_suffix(b".\r\n").unwrap_or(content);
        let body = body.strip_suffix(b"\r\n").unwrap_or(body);
        if !content.starts_with(b".\r\n") {
            for line in body.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                tracer.line(&self.conn.trace, Direction::Client, line);
            }
        }
        tracer.finish(&self.conn.trace, Direction::Client);
        self.conn.trace_text(Direction::Client, ".");
    }

    async fn read_reply(&mut self, waiting_for: &'static str) -> Result<SmtpReply, SmtpError> {
        loop {
            let line = self
                .conn
                .read_line(waiting_for)
                .await
                .map_err(|e| self.conn_error(e))?;
            self.conn.trace(Direction::Server, &line);
            match self.assembler.push_line(&line) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => continue,
                Err(e) => return Err(self.protocol(e.to_string())),
            }
        }
    }

    /// RFC 5321 §3.8: 421 means the server is closing the session; nothing more will be read.
    fn check_421(&self, command: &str, reply: &SmtpReply) -> Result<(), SmtpError> {
        if reply.code == 421 {
            return Err(self.rejected(command, reply.clone()));
        }
        Ok(())
    }

    fn conn_error(&self, e: ConnError) -> SmtpError {
        conn_error(self.conn.server.clone(), e)
    }

    fn rejected(&self, command: &str, reply: SmtpReply) -> SmtpError {
        SmtpError::Rejected {
            server: self.conn.server.clone(),
            command: command.to_string(),
            reply,
        }
    }

    fn protocol(&self, message: String) -> SmtpError {
        SmtpError::Protocol {
            server: self.conn.server.clone(),
            message,
        }
    }
}

fn conn_error(server: String, e: ConnError) -> SmtpError {
    SmtpError::from_conn(server, e)
}

/// Refuses arguments that would break the command line (CR, LF, other controls, angle
/// brackets in an address): they could inject a second command.
fn check_arg(server: &str, what: &str, value: &str) -> Result<(), SmtpError> {
    let bad_char = value.chars().any(|c| c.is_control());
    let bad_addr = what != "the command" && what != "the EHLO name" && value.contains(['<', '>']);
    if bad_char || bad_addr {
        return Err(SmtpError::Protocol {
            server: server.to_string(),
            message: format!("{what} {value:?} contains characters that cannot be sent in an SMTP command; nothing was sent"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
