//! POP3 client (RFC 1939, RFC 2449 CAPA).
//!
//! ```text
//!  connect ─▶ S: +OK greeting [<timestamp>]             AUTHORIZATION
//!  user_pass ─▶ C: USER name / C: PASS ****  ─▶ +OK      TRANSACTION
//!  (or apop ─▶ C: APOP name ****, RFC 1939 §7: MD5 of timestamp + password)
//!  stat list uidl top retr dele rset noop capa
//!  quit ─▶ C: QUIT ─▶ +OK                                UPDATE: the server removes what DELE marked
//! ```
//!
//! A connection that ends without QUIT deletes nothing (RFC 1939 §6), so [`Pop3Client::quit`]
//! is the only way DELE takes effect.
//!
//! Multi-line responses (RFC 1939 §3) end with a line holding a single "."; a line that starts
//! with "." had one more "." put in front by the server, which [`unstuff`] takes away.
//! The sans-IO pieces are `mailroom_proto::pop3`'s, shared with the server and re-exported here
//! ([`Pop3Reply::parse`], [`unstuff`], [`MultilineBody`], [`lines_of`], [`parse_scan_listing`],
//! [`parse_uid_listing`], [`apop_timestamp`]), plus [`apop_digest`].

use std::time::Duration;

use md5::{Digest, Md5};

use crate::conn::{Conn, ConnError};
use crate::tls::ClientTls;
use crate::trace::{BodyTracer, Direction, TraceFn, MASK};

/// RFC 2449 §4: status lines are at most 512 octets; we allow more before giving up.
pub const MAX_STATUS_LINE: usize = 4096;
/// A message line longer than this is a protocol error (RFC 5322 §2.1.1 says 998).
pub const MAX_CONTENT_LINE: usize = 1024 * 1024;
/// A multi-line response larger than this is refused (protects our memory).
pub const MAX_RESPONSE_SIZE: usize = 512 * 1024 * 1024;

/// The status line type, the multi-line reader and the listing parsers are
/// `mailroom_proto::pop3`'s (the server builds the same [`Pop3Reply`] it sends); re-exported
/// here under the client's names.
pub use mailroom_proto::pop3::{
    apop_timestamp, lines_of, parse_scan_listing, parse_uid_listing, unstuff, MultilineBody,
    Reply as Pop3Reply,
};

/// The APOP digest: lower-case hex MD5 of the timestamp followed by the password (RFC 1939 §7).
pub fn apop_digest(timestamp: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Errors of the POP3 client.
pub type Pop3Error = crate::error::ClientError<Pop3Reply>;

/// A POP3 client session.
pub struct Pop3Client {
    conn: Conn,
    greeting: Pop3Reply,
}

impl Pop3Client {
    /// Connects (with timeout) and reads the `+OK` greeting (`-ERR` → Rejected).
    pub async fn connect(
        server: &str,
        timeout: Duration,
        trace: Option<TraceFn>,
    ) -> Result<Pop3Client, Pop3Error> {
        Self::open(server, timeout, trace, None).await
    }

    /// Connects, with `tls` at once (implicit TLS, RFC 8314: the port 465/993/995 kind) or
    /// in clear, and reads the greeting.
    pub async fn open(
        server: &str,
        timeout: Duration,
        trace: Option<TraceFn>,
        tls: Option<&ClientTls>,
    ) -> Result<Pop3Client, Pop3Error> {
        let conn = Conn::open(server, timeout, trace, MAX_STATUS_LINE, tls)
            .await
            .map_err(|e| conn_error(server.to_string(), e))?;
        let mut c = Pop3Client {
            conn,
            greeting: Pop3Reply {
                ok: false,
                text: String::new(),
            },
        };
        let greeting = c.read_status("the greeting (+OK)").await?;
        if !greeting.ok {
            return Err(c.rejected("the connection", greeting));
        }
        c.greeting = greeting;
        Ok(c)
    }

    /// True when the session runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// STLS (RFC 2595 §4): `+OK`, then the handshake. CAPA may differ afterwards.
    pub async fn stls(&mut self, tls: &ClientTls) -> Result<(), Pop3Error> {
        let reply = self.raw_command("STLS").await?;
        if !reply.ok {
            return Err(self.rejected("STLS", reply));
        }
        self.conn
            .start_tls(tls)
            .await
            .map_err(|e| self.conn_error(e))
    }

    /// "host:port" as given to [`Pop3Client::connect`].
    pub fn server(&self) -> &str {
        &self.conn.server
    }

    pub fn greeting(&self) -> &Pop3Reply {
        &self.greeting
    }

    /// The APOP timestamp of the greeting, if the server offers APOP.
    pub fn timestamp(&self) -> Option<&str> {
        apop_timestamp(&self.greeting.text)
    }

    /// Changes how long each wait for the server may take from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.conn.timeout = timeout;
    }

    /// CAPA (RFC 2449 §5): the capability lines.
    pub async fn capa(&mut self) -> Result<Vec<String>, Pop3Error> {
        self.ok_command("CAPA", None, "CAPA").await?;
        let body = self.read_multiline("the capability list").await?;
        Ok(lines_of(&body))
    }

    /// USER, then PASS (shown as `PASS ****` in the trace). Returns the `+OK` of PASS.
    pub async fn user_pass(&mut self, user: &str, password: &str) -> Result<Pop3Reply, Pop3Error> {
        self.check_arg("the user name", user)?;
        self.check_arg("the password", password)?;
        self.ok_command(&format!("USER {user}"), None, "USER")
            .await?;
        self.ok_command(
            &format!("PASS {password}"),
            Some(&format!("PASS {MASK}")),
            "PASS",
        )
        .await
    }

    /// APOP (RFC 1939 §7), when the greeting carried a timestamp. The digest is masked in the
    /// trace too: it would allow an offline guess of the password.
    pub async fn apop(&mut self, user: &str, password: &str) -> Result<Pop3Reply, Pop3Error> {
        self.check_arg("the user name", user)?;
        let Some(ts) = self.timestamp().map(str::to_string) else {
            return Err(self.protocol(
                "offers no APOP (no <timestamp> in its greeting); log in with USER/PASS"
                    .to_string(),
            ));
        };
        let digest = apop_digest(&ts, password);
        self.ok_command(
            &format!("APOP {user} {digest}"),
            Some(&format!("APOP {user} {MASK}")),
            "APOP",
        )
        .await
    }

    /// STAT: (number of messages, total octets) (RFC 1939 §5, a "drop listing").
    pub async fn stat(&mut self) -> Result<(u32, u64), Pop3Error> {
        let r = self.ok_command("STAT", None, "STAT").await?;
        parse_scan_listing(&r.text)
            .ok_or_else(|| self.protocol(format!("answered STAT with {r}, not +OK count size")))
    }

    /// LIST: every message's number and size.
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.ok_command("LIST", None, "LIST").await?;
        let body = self.read_multiline("the LIST listing").await?;
        lines_of(&body)
            .iter()
            .map(|l| {
                parse_scan_listing(l)
                    .ok_or_else(|| self.protocol(format!("sent a bad LIST line {l:?}")))
            })
            .collect()
    }

    /// LIST n: one message's size.
    pub async fn list_one(&mut self, n: u32) -> Result<(u32, u64), Pop3Error> {
        let r = self
            .ok_command(&format!("LIST {n}"), None, &format!("LIST {n}"))
            .await?;
        parse_scan_listing(&r.text)
            .ok_or_else(|| self.protocol(format!("answered LIST {n} with {r}")))
    }

    /// UIDL: every message's number and unique id (RFC 1939 §7).
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        self.ok_command("UIDL", None, "UIDL").await?;
        let body = self.read_multiline("the UIDL listing").await?;
        lines_of(&body)
            .iter()
            .map(|l| {
                parse_uid_listing(l)
                    .ok_or_else(|| self.protocol(format!("sent a bad UIDL line {l:?}")))
            })
            .collect()
    }

    /// UIDL n.
    pub async fn uidl_one(&mut self, n: u32) -> Result<(u32, String), Pop3Error> {
        let r = self
            .ok_command(&format!("UIDL {n}"), None, &format!("UIDL {n}"))
            .await?;
        parse_uid_listing(&r.text)
            .ok_or_else(|| self.protocol(format!("answered UIDL {n} with {r}")))
    }

    /// TOP n lines: the header and the first `lines` body lines (RFC 1939 §7), unstuffed, CRLF.
    pub async fn top(&mut self, n: u32, lines: u32) -> Result<Vec<u8>, Pop3Error> {
        let cmd = format!("TOP {n} {lines}");
        self.ok_command(&cmd, None, &cmd).await?;
        self.read_multiline("the TOP response").await
    }

    /// RETR n: the whole message, unstuffed, with CRLF line ends, as the server sent it.
    pub async fn retr(&mut self, n: u32) -> Result<Vec<u8>, Pop3Error> {
        let cmd = format!("RETR {n}");
        self.ok_command(&cmd, None, &cmd).await?;
        self.read_multiline("the message (RETR)").await
    }

    /// DELE n: marks the message; it is removed at QUIT (RFC 1939 §6).
    pub async fn dele(&mut self, n: u32) -> Result<Pop3Reply, Pop3Error> {
        let cmd = format!("DELE {n}");
        self.ok_command(&cmd, None, &cmd).await
    }

    /// RSET: unmarks every message marked by DELE.
    pub async fn rset(&mut self) -> Result<Pop3Reply, Pop3Error> {
        self.ok_command("RSET", None, "RSET").await
    }

    pub async fn noop(&mut self) -> Result<Pop3Reply, Pop3Error> {
        self.ok_command("NOOP", None, "NOOP").await
    }

    /// Sends any single-line command and returns the status, `+OK` or `-ERR` (for teaching).
    pub async fn raw_command(&mut self, line: &str) -> Result<Pop3Reply, Pop3Error> {
        self.check_arg("the command", line)?;
        self.send_line(line, None, "the reply").await?;
        self.read_status("the reply").await
    }

    /// QUIT: enters the UPDATE state, where the server removes the marked messages; its `+OK`
    /// means they are gone (RFC 1939 §6). Then closes.
    pub async fn quit(mut self) -> Result<Pop3Reply, Pop3Error> {
        let r = self.ok_command("QUIT", None, "QUIT").await;
        self.conn.shutdown().await;
        r
    }

    // ---- plumbing ----

    /// Sends a command, reads its status line, turns `-ERR` into [`Pop3Error::Rejected`].
    async fn ok_command(
        &mut self,
        line: &str,
        shown: Option<&str>,
        command: &str,
    ) -> Result<Pop3Reply, Pop3Error> {
        self.send_line(line, shown, "the reply").await?;
        let r = self.read_status("the reply").await?;
        if !r.ok {
            return Err(self.rejected(command, r));
        }
        Ok(r)
    }

    async fn send_line(
        &mut self,
        line: &str,
        shown: Option<&str>,
        waiting_for: &'static str,
    ) -> Result<(), Pop3Error> {
        self.conn
            .trace_text(Direction::Client, shown.unwrap_or(line));
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.conn
            .write_all(&bytes, waiting_for)
            .await
            .map_err(|e| self.conn_error(e))
    }

    async fn read_status(&mut self, waiting_for: &'static str) -> Result<Pop3Reply, Pop3Error> {
        let line = self
            .conn
            .read_line(waiting_for)
            .await
            .map_err(|e| self.conn_error(e))?;
        self.conn.trace(Direction::Server, &line);
        Pop3Reply::parse(&line).map_err(|e| self.protocol(e.to_string()))
    }

    /// Reads a multi-line body up to the "." line; returns it unstuffed with CRLF line ends.
    async fn read_multiline(&mut self, waiting_for: &'static str) -> Result<Vec<u8>, Pop3Error> {
        let status_max = self.conn.max_line();
        self.conn.set_max_line(MAX_CONTENT_LINE);
        let mut tracer = BodyTracer::new();
        let mut body = MultilineBody::new(MAX_RESPONSE_SIZE);
        let result = loop {
            let line = match self.conn.read_line(waiting_for).await {
                Ok(l) => l,
                Err(e) => break Err(self.conn_error(e)),
            };
            if unstuff(&line).is_none() {
                tracer.finish(&self.conn.trace, Direction::Server);
                self.conn.trace_text(Direction::Server, ".");
            } else {
                tracer.line(&self.conn.trace, Direction::Server, &line);
            }
            match body.push_line(&line) {
                Ok(true) => break Ok(body.into_body()),
                Ok(false) => {}
                Err(e) => break Err(self.protocol(e.to_string())),
            }
        };
        self.conn.set_max_line(status_max);
        result
    }

    fn check_arg(&self, what: &str, value: &str) -> Result<(), Pop3Error> {
        if value.chars().any(|c| c.is_control()) {
            return Err(self.protocol(format!(
                "{what} contains control characters that cannot be sent in a POP3 command"
            )));
        }
        Ok(())
    }

    fn conn_error(&self, e: ConnError) -> Pop3Error {
        conn_error(self.conn.server.clone(), e)
    }

    fn rejected(&self, command: &str, reply: Pop3Reply) -> Pop3Error {
        Pop3Error::Rejected {
            server: self.conn.server.clone(),
            command: command.to_string(),
            reply,
        }
    }

    fn protocol(&self, message: String) -> Pop3Error {
        Pop3Error::Protocol {
            server: self.conn.server.clone(),
            message,
        }
    }
}

#[cfg(test)]
mod tests;

fn conn_error(server: String, e: ConnError) -> Pop3Error {
    Pop3Error::from_conn(server, e)
}
