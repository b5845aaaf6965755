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
//! The sans-IO pieces are [`parse_status`], [`unstuff`], [`MultilineBody`], [`lines_of`],
//! [`parse_scan_listing`], [`parse_uid_listing`], [`apop_timestamp`] and [`apop_digest`].

use std::fmt;
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

/// A status line: `+OK text` or `-ERR text` (RFC 1939 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop3Reply {
    pub ok: bool,
    /// The text after the status indicator (may be empty).
    pub text: String,
}

impl fmt::Display for Pop3Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.ok { "+OK" } else { "-ERR" })?;
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// Parses a status line. RFC 1939 §3 says the indicators are upper case; we accept any case.
pub fn parse_status(line: &[u8]) -> Result<Pop3Reply, String> {
    let text = String::from_utf8_lossy(line);
    let (ok, rest) = if text.len() >= 3
        && text.is_char_boundary(3)
        && text[..3].eq_ignore_ascii_case("+OK")
    {
        (true, &text[3..])
    } else if text.len() >= 4 && text.is_char_boundary(4) && text[..4].eq_ignore_ascii_case("-ERR")
    {
        (false, &text[4..])
    } else {
        return Err(format!(
            "expected +OK or -ERR, got {:?}",
            crate::trace::printable(line)
        ));
    };
    let rest = match rest.strip_prefix(' ') {
        Some(r) => r,
        None if rest.is_empty() => rest,
        None => {
            return Err(format!(
                "expected +OK or -ERR, got {:?}",
                crate::trace::printable(line)
            ))
        }
    };
    Ok(Pop3Reply {
        ok,
        text: rest.to_string(),
    })
}

/// One line of a multi-line response: `None` for the terminating ".", else the line with the
/// byte-stuffing "." removed (RFC 1939 §3).
pub fn unstuff(line: &[u8]) -> Option<&[u8]> {
    match line {
        b"." => None,
        [b'.', rest @ ..] => Some(rest),
        _ => Some(line),
    }
}

/// The sans-IO core of reading a multi-line response (RFC 1939 §3): feed it the lines after
/// the `+OK` status line, without their line ends, until it says the "." line has come. The
/// body it collects is unstuffed, with CRLF line ends, and at most `limit` octets.
#[derive(Debug)]
pub struct MultilineBody {
    body: Vec<u8>,
    limit: usize,
}

impl MultilineBody {
    pub fn new(limit: usize) -> Self {
        MultilineBody {
            body: Vec::new(),
            limit,
        }
    }

    /// Takes one line: `Ok(true)` for the terminating ".", `Ok(false)` for a content line,
    /// `Err` when the body would grow beyond the limit.
    pub fn push_line(&mut self, line: &[u8]) -> Result<bool, String> {
        let Some(content) = unstuff(line) else {
            return Ok(true);
        };
        if self.body.len() + content.len() + 2 > self.limit {
            return Err(format!("sent a response larger than {} octets", self.limit));
        }
        self.body.extend_from_slice(content);
        self.body.extend_from_slice(b"\r\n");
        Ok(false)
    }

    /// The body so far (all of it once [`MultilineBody::push_line`] returned `Ok(true)`).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// A scan listing `"n size"` (RFC 1939 §5, LIST); further text after the size is ignored.
pub fn parse_scan_listing(text: &str) -> Option<(u32, u64)> {
    let mut words = text.split_whitespace();
    let n = words.next()?.parse().ok()?;
    let size = words.next()?.parse().ok()?;
    Some((n, size))
}

/// A unique-id listing `"n uid"` (RFC 1939 §7, UIDL); the uid is 1 to 70 characters 0x21-0x7E.
pub fn parse_uid_listing(text: &str) -> Option<(u32, String)> {
    let mut words = text.split_whitespace();
    let n = words.next()?.parse().ok()?;
    let uid = words.next()?;
    if uid.is_empty() || uid.len() > 70 || !uid.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    Some((n, uid.to_string()))
}

/// The APOP timestamp in a greeting (RFC 1939 §7): the first `<...>` holding an `@`.
pub fn apop_timestamp(greeting: &str) -> Option<&str> {
    let start = greeting.find('<')?;
    let end = start + greeting[start..].find('>')?;
    let ts = &greeting[start..=end];
    ts.contains('@').then_some(ts)
}

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
        parse_status(&line).map_err(|m| self.protocol(m))
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
                Err(m) => break Err(self.protocol(m)),
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

/// The lines of a multi-line body (as [`MultilineBody`] returns it), as text: how CAPA, LIST
/// and UIDL listings are split before each line is parsed.
pub fn lines_of(body: &[u8]) -> Vec<String> {
    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect()
}

#[cfg(test)]
mod tests;

fn conn_error(server: String, e: ConnError) -> Pop3Error {
    Pop3Error::from_conn(server, e)
}
