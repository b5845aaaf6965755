//! IMAP4 client (RFC 9051 IMAP4rev2, and IMAP4rev1 servers per RFC 3501).
//!
//! ```text
//!  connect ─▶ S: * OK [CAPABILITY ...] greeting          not authenticated
//!  (starttls ─▶ C: a1 STARTTLS ─▶ a1 OK, then TLS and CAPABILITY again)
//!  login ─▶ C: a2 LOGIN user **** ─▶ a2 OK              authenticated
//!  list status create delete
//!  select ─▶ C: a3 SELECT INBOX ─▶ * 3 EXISTS ...        selected
//!  fetch store search copy move expunge noop close
//!  logout ─▶ C: a9 LOGOUT ─▶ * BYE, a9 OK
//! ```
//!
//! Every command gets a tag (`a1`, `a2`, ...); the server may send untagged responses
//! (`* ...`) at any time, and the command ends with the tagged `OK`, `NO` or `BAD`. A response
//! line that ends with `{N}` is followed by N octets (a literal: a message, a header), then the
//! rest of the line. Message numbers here are sequence numbers, as in POP3: 1 is the oldest
//! message of the selected mailbox, and EXPUNGE renumbers the ones after it.
//!
//! The parsing is sans-IO: `mailroom_proto::imap::response`, re-exported as [`parse`] (the
//! same response types the server's encoder writes); this module moves lines and literals.

pub mod parse;

use std::fmt;
use std::time::Duration;

use crate::conn::{Conn, ConnError};
use crate::tls::ClientTls;
use crate::trace::{BodyTracer, Direction, TraceFn, MASK};
use mailroom_proto::imap::mutf7;
use parse::{Response, Status, StatusText, Value};

/// A response line (literals aside) longer than this is a protocol error. It must stay well
/// above the 16 KiB the connection reads at a time, so that the octets of a literal that
/// arrive with its announcement are never cut.
pub const MAX_RESPONSE_LINE: usize = 1024 * 1024;
/// A single response (all its literals together) larger than this is refused.
pub const MAX_RESPONSE_SIZE: usize = 512 * 1024 * 1024;

/// Errors of the IMAP client. A tagged `NO` or `BAD`, a greeting `* BYE`, or a `* BYE`
/// before the connection closed is [`ClientError::Rejected`](crate::error::ClientError).
pub type ImapError = crate::error::ClientError<StatusText>;

/// A mailbox as LIST shows it (RFC 9051 §7.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub name: String,
    /// The hierarchy delimiter, `None` for a flat namespace.
    pub delimiter: Option<char>,
    /// `\HasNoChildren`, `\Sent`, `\Trash`, ...
    pub attributes: Vec<String>,
}

/// What SELECT (or EXAMINE) reported (RFC 9051 §6.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    pub name: String,
    pub exists: u32,
    pub uidvalidity: Option<u32>,
    pub uidnext: Option<u32>,
    /// The flags of the mailbox (`* FLAGS (...)`).
    pub flags: Vec<String>,
    pub read_only: bool,
}

/// One message's FETCH data (RFC 9051 §7.5.2); what was not asked for is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The message sequence number.
    pub seq: u32,
    pub uid: Option<u32>,
    pub flags: Option<Vec<String>>,
    /// RFC822.SIZE.
    pub size: Option<u64>,
    pub internal_date: Option<String>,
    /// The body sections, e.g. `("BODY[]", octets)`, `("BODY[HEADER]", octets)`.
    pub sections: Vec<(String, Vec<u8>)>,
}

impl Fetched {
    /// The first body section returned (the one a FETCH of a single section asked for).
    pub fn body(&self) -> Option<&[u8]> {
        self.sections.first().map(|(_, b)| b.as_slice())
    }

    fn merge(&mut self, other: Fetched) {
        if other.uid.is_some() {
            self.uid = other.uid;
        }
        if other.flags.is_some() {
            self.flags = other.flags;
        }
        if other.size.is_some() {
            self.size = other.size;
        }
        if other.internal_date.is_some() {
            self.internal_date = other.internal_date;
        }
        self.sections.extend(other.sections);
    }
}

/// How a flag change applies (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
    /// `FLAGS`: replace.
    Set,
}

/// One piece of a command line.
enum Arg<'a> {
    /// Sent as it is (command names, sequence sets, search keys).
    Raw(&'a str),
    /// An astring: atom, quoted string or literal, whichever the text needs.
    Str(&'a str),
    /// A mailbox name (or LIST pattern): sent in modified UTF-7 (RFC 3501 §5.1.3), which
    /// every server understands while the session has not enabled UTF-8.
    Mailbox(&'a str),
    /// An astring shown as `****` in the trace.
    Secret(&'a str),
    /// Octets that always go as a literal (a message for APPEND); traced line by line.
    Literal(&'a [u8]),
}

/// What the trace shows of a command, in order.
enum Shown {
    Line(String),
    /// A literal's octets, shown as lines (the first few, then a summary).
    Body(Vec<u8>),
}

/// The responses of one command: the untagged ones in order, then the tagged status.
#[derive(Debug)]
pub struct Answer {
    pub untagged: Vec<Response>,
    pub status: StatusText,
}

/// An IMAP client session.
pub struct ImapClient {
    conn: Conn,
    next_tag: u32,
    greeting: StatusText,
    capabilities: Vec<String>,
    authenticated: bool,
    selected: Option<Selected>,
}

impl fmt::Debug for ImapClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapClient")
            .field("server", &self.conn.server)
            .field("selected", &self.selected)
            .finish()
    }
}

impl ImapClient {
    /// Connects (with timeout) and reads the greeting: `* OK` (or `* PREAUTH`); `* BYE` is
    /// a refusal.
    pub async fn connect(
        server: &str,
        timeout: Duration,
        trace: Option<TraceFn>,
    ) -> Result<ImapClient, ImapError> {
        Self::open(server, timeout, trace, None).await
    }

    /// Connects, with `tls` at once (implicit TLS, RFC 8314: the port 465/993/995 kind) or
    /// in clear, and reads the greeting.
    pub async fn open(
        server: &str,
        timeout: Duration,
        trace: Option<TraceFn>,
        tls: Option<&ClientTls>,
    ) -> Result<ImapClient, ImapError> {
        let conn = Conn::open(server, timeout, trace, MAX_RESPONSE_LINE, tls)
            .await
            .map_err(|e| conn_error(server.to_string(), e))?;
        let mut c = ImapClient {
            conn,
            next_tag: 1,
            greeting: StatusText {
                status: Status::Ok,
                code: None,
                text: String::new(),
            },
            capabilities: Vec::new(),
            authenticated: false,
            selected: None,
        };
        let greeting = match c.read_response("the greeting (* OK)").await? {
            Response::UntaggedStatus(s) => s,
            other => {
                return Err(c.protocol(format!("greeted with {other:?}, not * OK")));
            }
        };
        match greeting.status {
            Status::Ok => {}
            Status::PreAuth => c.authenticated = true,
            _ => return Err(c.rejected("the connection", greeting)),
        }
        c.note_code(&greeting);
        c.greeting = greeting;
        Ok(c)
    }

    /// "host:port" as given to [`ImapClient::connect`].
    pub fn server(&self) -> &str {
        &self.conn.server
    }

    pub fn greeting(&self) -> &StatusText {
        &self.greeting
    }

    /// True when the session runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// Changes how long each wait for the server may take from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.conn.timeout = timeout;
    }

    /// The capabilities last announced (greeting code, CAPABILITY, or the login's OK code).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Whether the server announced `cap` (case-insensitive).
    pub fn has(&self, cap: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// The selected mailbox, if any.
    pub fn selected(&self) -> Option<&Selected> {
        self.selected.as_ref()
    }

    /// CAPABILITY (RFC 9051 §6.1.1).
    pub async fn capability(&mut self) -> Result<Vec<String>, ImapError> {
        self.command(&[Arg::Raw("CAPABILITY")], "CAPABILITY")
            .await?;
        Ok(self.capabilities.clone())
    }

    /// STARTTLS (RFC 9051 §6.2.1): the tagged OK, the handshake, then CAPABILITY again
    /// (what was announced in clear must be forgotten).
    pub async fn starttls(&mut self, tls: &ClientTls) -> Result<(), ImapError> {
        if self.capabilities.is_empty() {
            self.capability().await?;
        }
        if !self.has("STARTTLS") {
            return Err(self.protocol("does not offer STARTTLS".into()));
        }
        self.command(&[Arg::Raw("STARTTLS")], "STARTTLS").await?;
        self.conn
            .start_tls(tls)
            .await
            .map_err(|e| self.conn_error(e))?;
        self.capabilities.clear();
        self.capability().await?;
        Ok(())
    }

    /// LOGIN (RFC 9051 §6.2.3), the password masked in the trace. Returns the tagged OK.
    pub async fn login(&mut self, user: &str, password: &str) -> Result<StatusText, ImapError> {
        // A PREAUTH greeting (RFC 9051 §7.1.4) logged us in already; LOGIN would be a BAD.
        if self.authenticated {
            return Ok(self.greeting.clone());
        }
        if self.capabilities.is_empty() {
            self.capability().await?;
        }
        if self.has("LOGINDISABLED") {
            return Err(self.protocol(
                "does not allow a password on this connection (LOGINDISABLED): use TLS".into(),
            ));
        }
        let a = self
            .command(
                &[Arg::Raw("LOGIN"), Arg::Str(user), Arg::Secret(password)],
                "LOGIN",
            )
            .await?;
        self.authenticated = true;
        // The OK may carry the new capabilities; if not, ask (they often change at login).
        if !a
            .status
            .code
            .as_deref()
            .is_some_and(|c| c.to_ascii_uppercase().starts_with("CAPABILITY "))
        {
            self.capability().await?;
        }
        Ok(a.status)
    }

    /// LIST "" pattern (RFC 9051 §6.3.9): the mailboxes matching `pattern` (`*` for all).
    pub async fn list(&mut self, pattern: &str) -> Result<Vec<Folder>, ImapError> {
        let a = self
            .command(
                &[Arg::Raw("LIST"), Arg::Raw("\"\""), Arg::Mailbox(pattern)],
                "LIST",
            )
            .await?;
        let mut out = Vec::new();
        for r in a.untagged {
            let Response::Data { keyword, rest } = r else {
                continue;
            };
            if keyword != "LIST" {
                continue;
            }
            let (Some(attrs), Some(delim), Some(name)) = (
                rest.first().and_then(Value::list),
                rest.get(1),
                rest.get(2).and_then(Value::text),
            ) else {
                return Err(self.protocol(format!("sent a LIST response without a name: {rest:?}")));
            };
            out.push(Folder {
                name: mailbox_name(&name),
                delimiter: delim.text().and_then(|d| d.chars().next()),
                attributes: attrs.iter().filter_map(Value::text).collect(),
            });
        }
        Ok(out)
    }

    /// STATUS mailbox (items) (RFC 9051 §6.3.11), e.g. items `["MESSAGES", "UNSEEN"]`.
    pub async fn status(
        &mut self,
        mailbox: &str,
        items: &[&str],
    ) -> Result<Vec<(String, u64)>, ImapError> {
        let list = format!("({})", items.join(" "));
        let a = self
            .command(
                &[Arg::Raw("STATUS"), Arg::Mailbox(mailbox), Arg::Raw(&list)],
                "STATUS",
            )
            .await?;
        let mut out = Vec::new();
        for r in a.untagged {
            if let Response::Data { keyword, rest } = r {
                if keyword == "STATUS" {
                    if let Some(l) = rest.get(1).and_then(Value::list) {
                        for pair in l.chunks(2) {
                            if let (Some(k), Some(v)) =
                                (pair[0].atom(), pair.get(1).and_then(Value::number))
                            {
                                out.push((k.to_ascii_uppercase(), v));
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// SELECT (or with `read_only` EXAMINE) a mailbox (RFC 9051 §6.3.2, §6.3.3).
    pub async fn select(&mut self, mailbox: &str, read_only: bool) -> Result<Selected, ImapError> {
        let cmd = if read_only { "EXAMINE" } else { "SELECT" };
        self.selected = None;
        let a = self
            .command(&[Arg::Raw(cmd), Arg::Mailbox(mailbox)], cmd)
            .await?;
        let mut sel = Selected {
            name: mailbox.to_string(),
            ..Selected::default()
        };
        for r in &a.untagged {
            match r {
                Response::Numbered { n, keyword, .. } if keyword == "EXISTS" => sel.exists = *n,
                Response::Data { keyword, rest } if keyword == "FLAGS" => {
                    sel.flags = rest
                        .first()
                        .and_then(Value::list)
                        .map(|l| l.iter().filter_map(Value::text).collect())
                        .unwrap_or_default();
                }
                Response::UntaggedStatus(s) => {
                    let code = s.code.as_deref().unwrap_or("");
                    let (name, arg) = code.split_once(' ').unwrap_or((code, ""));
                    match name.to_ascii_uppercase().as_str() {
                        "UIDVALIDITY" => sel.uidvalidity = arg.trim().parse().ok(),
                        "UIDNEXT" => sel.uidnext = arg.trim().parse().ok(),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        sel.read_only = a
            .status
            .code
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("READ-ONLY"));
        self.selected = Some(sel.clone());
        Ok(sel)
    }

    /// FETCH set items (RFC 9051 §6.4.5), e.g. `fetch("1:*", "(UID FLAGS RFC822.SIZE)")`.
    /// One entry per message, in the order of the sequence numbers.
    pub async fn fetch(&mut self, set: &str, items: &str) -> Result<Vec<Fetched>, ImapError> {
        let a = self
            .command(
                &[Arg::Raw("FETCH"), Arg::Raw(set), Arg::Raw(items)],
                "FETCH",
            )
            .await?;
        self.collect_fetches(a.untagged)
    }

    /// The whole message `seq` as octets: `BODY[]`, or with `peek` `BODY.PEEK[]`, which does
    /// not set `\Seen` (RFC 9051 §6.4.5).
    pub async fn fetch_message(&mut self, seq: u32, peek: bool) -> Result<Vec<u8>, ImapError> {
        let items = if peek { "BODY.PEEK[]" } else { "BODY[]" };
        let set = seq.to_string();
        let a = self
            .command(
                &[Arg::Raw("FETCH"), Arg::Raw(&set), Arg::Raw(items)],
                &format!("FETCH {seq} {items}"),
            )
            .await?;
        let fetched = self.collect_fetches(a.untagged)?;
        fetched
            .into_iter()
            .find(|f| f.seq == seq)
            .and_then(|f| {
                f.sections
                    .into_iter()
                    .find(|(name, _)| name.starts_with("BODY[]"))
                    .map(|(_, b)| b)
            })
            .ok_or_else(|| {
                let count = self.selected.as_ref().map(|s| s.exists).unwrap_or(0);
                self.protocol_missing(seq, count)
            })
    }

    /// STORE set ±FLAGS (flags) (RFC 9051 §6.4.6); returns the messages' new flags.
    pub async fn store(
        &mut self,
        set: &str,
        op: FlagOp,
        flags: &[&str],
    ) -> Result<Vec<Fetched>, ImapError> {
        let item = match op {
            FlagOp::Add => "+FLAGS",
            FlagOp::Remove => "-FLAGS",
            FlagOp::Set => "FLAGS",
        };
        let list = format!("({})", flags.join(" "));
        let a = self
            .command(
                &[
                    Arg::Raw("STORE"),
                    Arg::Raw(set),
                    Arg::Raw(item),
                    Arg::Raw(&list),
                ],
                &format!("STORE {set} {item}"),
            )
            .await?;
        self.collect_fetches(a.untagged)
    }

    /// EXPUNGE (RFC 9051 §6.4.3): removes the messages flagged `\Deleted`; returns the
    /// sequence numbers as the server reported them (each relative to the ones before).
    pub async fn expunge(&mut self) -> Result<Vec<u32>, ImapError> {
        let a = self.command(&[Arg::Raw("EXPUNGE")], "EXPUNGE").await?;
        Ok(expunged(&a.untagged))
    }

    /// UID EXPUNGE uids (RFC 4315 UIDPLUS, part of IMAP4rev2): removes only these messages,
    /// if flagged `\Deleted`, and leaves other `\Deleted` messages alone.
    pub async fn uid_expunge(&mut self, uids: &[u32]) -> Result<Vec<u32>, ImapError> {
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        let set = set.join(",");
        let a = self
            .command(
                &[Arg::Raw("UID EXPUNGE"), Arg::Raw(&set)],
                &format!("UID EXPUNGE {set}"),
            )
            .await?;
        Ok(expunged(&a.untagged))
    }

    /// SEARCH criteria (RFC 9051 §6.4.4), criteria as typed (`UNSEEN`, `FROM alice`,
    /// `SUBJECT "lunch plans"`); the matching sequence numbers. Quoted words and words that are
    /// not ASCII go as strings (a literal when they must), the latter with `CHARSET UTF-8`.
    pub async fn search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let words = parse::split_words(criteria);
        let mut args = vec![Arg::Raw("SEARCH")];
        if !criteria.is_ascii() {
            args.push(Arg::Raw("CHARSET UTF-8"));
        }
        for (w, quoted) in &words {
            args.push(if *quoted || !w.is_ascii() {
                Arg::Str(w)
            } else {
                Arg::Raw(w)
            });
        }
        let a = self.command(&args, "SEARCH").await?;
        let mut out = Vec::new();
        for r in a.untagged {
            if let Response::Data { keyword, rest } = r {
                match keyword.as_str() {
                    "SEARCH" => out.extend(rest.iter().filter_map(Value::number).map(|n| n as u32)),
                    // An IMAP4rev2 server answers with ESEARCH: `ALL 1:3,7`.
                    "ESEARCH" => {
                        let mut it = rest.iter();
                        while let Some(v) = it.next() {
                            if v.atom().is_some_and(|a| a.eq_ignore_ascii_case("ALL")) {
                                if let Some(set) = it.next().and_then(Value::atom) {
                                    out.extend(expand_set(set));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// COPY set mailbox (RFC 9051 §6.4.7).
    pub async fn copy(&mut self, set: &str, mailbox: &str) -> Result<StatusText, ImapError> {
        let a = self
            .command(
                &[Arg::Raw("COPY"), Arg::Raw(set), Arg::Mailbox(mailbox)],
                "COPY",
            )
            .await?;
        Ok(a.status)
    }

    /// MOVE set mailbox (RFC 6851, part of IMAP4rev2); returns the expunged sequence numbers.
    pub async fn move_to(&mut self, set: &str, mailbox: &str) -> Result<Vec<u32>, ImapError> {
        let a = self
            .command(
                &[Arg::Raw("MOVE"), Arg::Raw(set), Arg::Mailbox(mailbox)],
                "MOVE",
            )
            .await?;
        Ok(expunged(&a.untagged))
    }

    /// APPEND mailbox (flags) message (RFC 9051 §6.3.12): stores a message the client has,
    /// as a literal. Line ends are made CRLF first (RFC 5322 §2.1). Returns the tagged OK
    /// (with `[APPENDUID uidvalidity uid]` where the server has UIDPLUS).
    pub async fn append(
        &mut self,
        mailbox: &str,
        flags: &[&str],
        message: &[u8],
    ) -> Result<StatusText, ImapError> {
        let message = crlf(message);
        let flags = format!("({})", flags.join(" "));
        let a = self
            .command(
                &[
                    Arg::Raw("APPEND"),
                    Arg::Mailbox(mailbox),
                    Arg::Raw(&flags),
                    Arg::Literal(&message),
                ],
                "APPEND",
            )
            .await?;
        Ok(a.status)
    }

    /// CREATE mailbox (RFC 9051 §6.3.4).
    pub async fn create(&mut self, mailbox: &str) -> Result<StatusText, ImapError> {
        let a = self
            .command(&[Arg::Raw("CREATE"), Arg::Mailbox(mailbox)], "CREATE")
            .await?;
        Ok(a.status)
    }

    /// DELETE mailbox (RFC 9051 §6.3.5). Deleting the selected mailbox leaves it unselected.
    pub async fn delete(&mut self, mailbox: &str) -> Result<StatusText, ImapError> {
        let a = self
            .command(&[Arg::Raw("DELETE"), Arg::Mailbox(mailbox)], "DELETE")
            .await?;
        if self.selected.as_ref().is_some_and(|s| {
            s.name == mailbox
                || (s.name.eq_ignore_ascii_case("INBOX") && mailbox.eq_ignore_ascii_case("INBOX"))
        }) {
            self.selected = None;
        }
        Ok(a.status)
    }

    /// NOOP (RFC 9051 §6.1.2): lets the server report news (new messages, expunges).
    pub async fn noop(&mut self) -> Result<Answer, ImapError> {
        self.command(&[Arg::Raw("NOOP")], "NOOP").await
    }

    /// IDLE (RFC 2177, RFC 9051 §6.3.13) for at most `wait`: the server reports news as it
    /// happens (new messages, expunges, flag changes); each untagged response is handed to
    /// `on_news` as it arrives. Then DONE, and the tagged OK is returned.
    pub async fn idle(
        &mut self,
        wait: Duration,
        mut on_news: impl FnMut(&Response),
    ) -> Result<StatusText, ImapError> {
        if !self.has("IDLE") && !self.has("IMAP4rev2") {
            return Err(self.protocol("does not offer IDLE".into()));
        }
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        let line = format!("{tag} IDLE");
        self.conn.trace_text(Direction::Client, &line);
        self.conn
            .write_all(format!("{line}\r\n").as_bytes(), "IDLE to be sent")
            .await
            .map_err(|e| self.conn_error(e))?;
        // The server says "+ idling" (news may come before it).
        loop {
            match self.read_response("the go-ahead (+) for IDLE").await? {
                Response::Continue(_) => break,
                Response::Tagged { tag: t, status } if t == tag => {
                    return Err(self.rejected("IDLE", status));
                }
                r => {
                    self.note_untagged(&r);
                    on_news(&r);
                }
            }
        }
        // Wait, with the wait as the read timeout (reading a line is cancel-safe: nothing read
        // is lost when the time is up).
        let deadline = tokio::time::Instant::now() + wait;
        let timeout = self.conn.timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            self.conn.timeout = left;
            let r = self.read_response("news during IDLE").await;
            self.conn.timeout = timeout;
            match r {
                Ok(r) => {
                    self.note_untagged(&r);
                    on_news(&r);
                }
                Err(ImapError::Timeout { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        self.conn.timeout = timeout;
        self.conn.trace_text(Direction::Client, "DONE");
        self.conn
            .write_all(b"DONE\r\n", "DONE to be sent")
            .await
            .map_err(|e| self.conn_error(e))?;
        loop {
            match self.read_response("the end of IDLE").await? {
                Response::Tagged { tag: t, status } if t == tag => {
                    return match status.status {
                        Status::Ok => Ok(status),
                        _ => Err(self.rejected("IDLE", status)),
                    };
                }
                r => {
                    self.note_untagged(&r);
                    on_news(&r);
                }
            }
        }
    }

    /// CLOSE (RFC 9051 §6.4.1): expunges silently and leaves the selected state.
    pub async fn close(&mut self) -> Result<StatusText, ImapError> {
        let a = self.command(&[Arg::Raw("CLOSE")], "CLOSE").await?;
        self.selected = None;
        Ok(a.status)
    }

    /// LOGOUT (RFC 9051 §6.1.3): `* BYE`, then the tagged OK; then closes. Messages flagged
    /// `\Deleted` stay (only EXPUNGE or CLOSE remove them).
    pub async fn logout(mut self) -> Result<StatusText, ImapError> {
        let r = self.command(&[Arg::Raw("LOGOUT")], "LOGOUT").await;
        self.conn.shutdown().await;
        r.map(|a| a.status)
    }

    // ---- plumbing ----

    /// Sends one tagged command and reads responses up to its tagged status. `NO` and `BAD`
    /// become [`ImapError::Rejected`] naming `name`.
    async fn command(&mut self, args: &[Arg<'_>], name: &str) -> Result<Answer, ImapError> {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        for a in args {
            let (Arg::Raw(s) | Arg::Str(s) | Arg::Mailbox(s) | Arg::Secret(s)) = a else {
                continue;
            };
            if s.contains(['\r', '\n', '\0']) {
                return Err(self.protocol(format!(
                    "the {} command cannot carry a line break or NUL",
                    name
                )));
            }
        }
        // Pieces: each ends where a synchronizing literal must wait for the server's "+".
        let literal_plus = self.has("LITERAL+") || self.has("LITERAL-");
        let mut wire = tag.clone().into_bytes();
        let mut line = tag.clone();
        let mut shown: Vec<Shown> = Vec::new();
        let mut pieces: Vec<(Vec<u8>, Vec<Shown>)> = Vec::new();
        let encoded: Vec<String> = args
            .iter()
            .map(|a| match a {
                Arg::Mailbox(m) => mutf7::encode(m),
                _ => String::new(),
            })
            .collect();
        for (a, enc) in args.iter().zip(&encoded) {
            wire.push(b' ');
            line.push(' ');
            let (octets, secret, quoted): (&[u8], bool, Option<String>) = match a {
                Arg::Raw(s) => (s.as_bytes(), false, Some(s.to_string())),
                Arg::Str(s) => (s.as_bytes(), false, parse::quote(s)),
                Arg::Mailbox(_) => (enc.as_bytes(), false, parse::quote(enc)),
                Arg::Secret(s) => (s.as_bytes(), true, parse::quote(s)),
                Arg::Literal(b) => (b, false, None),
            };
            match quoted {
                Some(q) => {
                    wire.extend_from_slice(q.as_bytes());
                    line.push_str(if secret { MASK } else { &q });
                }
                None => {
                    // A literal (8-bit text, or a message): `{n}` CRLF, then the octets.
                    let n = octets.len();
                    let head = if literal_plus {
                        format!("{{{n}+}}")
                    } else {
                        format!("{{{n}}}")
                    };
                    wire.extend_from_slice(head.as_bytes());
                    wire.extend_from_slice(b"\r\n");
                    line.push_str(&head);
                    shown.push(Shown::Line(std::mem::take(&mut line)));
                    if !literal_plus {
                        pieces.push((std::mem::take(&mut wire), std::mem::take(&mut shown)));
                    }
                    wire.extend_from_slice(octets);
                    if secret {
                        line.push_str(MASK);
                    } else if matches!(a, Arg::Literal(_)) {
                        shown.push(Shown::Body(octets.to_vec()));
                    } else {
                        line.push_str(&String::from_utf8_lossy(octets));
                    }
                }
            }
        }
        wire.extend_from_slice(b"\r\n");
        // After a message literal the command's last line is empty: nothing to show.
        if !line.is_empty() || !matches!(shown.last(), Some(Shown::Body(_))) {
            shown.push(Shown::Line(line));
        }
        pieces.push((wire, shown));
        let last = pieces.len() - 1;
        for (i, (bytes, shown)) in pieces.into_iter().enumerate() {
            for item in shown {
                match item {
                    Shown::Line(l) => self.conn.trace_text(Direction::Client, &l),
                    Shown::Body(b) => {
                        if self.conn.trace.is_some() {
                            let mut tracer = BodyTracer::new();
                            let body = b.strip_suffix(b"\r\n").unwrap_or(&b);
                            for l in body.split(|&c| c == b'\n') {
                                let l = l.strip_suffix(b"\r").unwrap_or(l);
                                tracer.line(&self.conn.trace, Direction::Client, l);
                            }
                            tracer.finish(&self.conn.trace, Direction::Client);
                        }
                    }
                }
            }
            self.conn
                .write_all(&bytes, "the command to be sent")
                .await
                .map_err(|e| self.conn_error(e))?;
            if i < last {
                // A synchronizing literal: the server says "+" before we may send it.
                match self.read_response("the go-ahead (+) for a literal").await? {
                    Response::Continue(_) => {}
                    Response::Tagged { status, .. } => return Err(self.rejected(name, status)),
                    other => {
                        return Err(
                            self.protocol(format!("answered a literal with {other:?}, not +"))
                        )
                    }
                }
            }
        }
        let mut untagged = Vec::new();
        let mut bye: Option<StatusText> = None;
        loop {
            let r = match self.read_response("the reply").await {
                Ok(r) => r,
                Err(ImapError::Closed { .. }) if bye.is_some() => {
                    let reply = bye.take().unwrap_or_else(|| StatusText {
                        status: Status::Bye,
                        code: None,
                        text: String::new(),
                    });
                    return Err(self.rejected(name, reply));
                }
                Err(e) => return Err(e),
            };
            match r {
                Response::Tagged { tag: t, status } if t == tag => {
                    self.note_code(&status);
                    return match status.status {
                        Status::Ok => Ok(Answer { untagged, status }),
                        _ => Err(self.rejected(name, status)),
                    };
                }
                Response::Tagged { tag: t, .. } => {
                    return Err(
                        self.protocol(format!("answered with tag {t}, but the command was {tag}"))
                    )
                }
                Response::Continue(_) => {
                    return Err(self.protocol(format!(
                        "asked for more (+) where {name} needs nothing more"
                    )))
                }
                other => {
                    self.note_untagged(&other);
                    if let Response::UntaggedStatus(s) = &other {
                        if s.status == Status::Bye && name != "LOGOUT" {
                            bye = Some(s.clone());
                        }
                    }
                    untagged.push(other);
                }
            }
        }
    }

    /// Keeps what untagged responses tell about the session: capabilities, the number of
    /// messages.
    fn note_untagged(&mut self, r: &Response) {
        match r {
            Response::Data { keyword, rest } if keyword == "CAPABILITY" => {
                self.capabilities = rest.iter().filter_map(Value::text).collect();
            }
            Response::UntaggedStatus(s) => self.note_code(s),
            Response::Numbered { n, keyword, .. } => {
                if let Some(sel) = &mut self.selected {
                    match keyword.as_str() {
                        "EXISTS" => sel.exists = *n,
                        "EXPUNGE" => sel.exists = sel.exists.saturating_sub(1),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// A `[CAPABILITY ...]` response code replaces the capabilities.
    fn note_code(&mut self, s: &StatusText) {
        if let Some(code) = &s.code {
            if let Some((name, caps)) = code.split_once(' ') {
                if name.eq_ignore_ascii_case("CAPABILITY") {
                    self.capabilities = caps.split_whitespace().map(str::to_string).collect();
                }
            }
        }
    }

    /// The FETCH responses among `untagged`, merged per message, in sequence order.
    fn collect_fetches(&self, untagged: Vec<Response>) -> Result<Vec<Fetched>, ImapError> {
        let mut out: Vec<Fetched> = Vec::new();
        for r in untagged {
            let Response::Numbered { n, keyword, rest } = r else {
                continue;
            };
            if keyword != "FETCH" {
                continue;
            }
            let f = fetched(n, &rest).map_err(|m| self.protocol(format!("sent {m}")))?;
            match out.iter_mut().find(|o| o.seq == n) {
                Some(o) => o.merge(f),
                None => out.push(f),
            }
        }
        out.sort_by_key(|f| f.seq);
        Ok(out)
    }

    /// Reads one logical response: a line, and for each `{N}` at its end, N octets and the
    /// line that continues after them. Every part is traced (a literal like a message body).
    async fn read_response(&mut self, waiting_for: &'static str) -> Result<Response, ImapError> {
        let mut logical = Vec::new();
        loop {
            let line = self
                .conn
                .read_line(waiting_for)
                .await
                .map_err(|e| self.conn_error(e))?;
            self.conn.trace(Direction::Server, &line);
            logical.extend_from_slice(&line);
            let Some(n) = parse::trailing_literal(&line) else {
                break;
            };
            if logical.len().saturating_add(n) > MAX_RESPONSE_SIZE {
                return Err(self.protocol(format!(
                    "sent a response larger than {MAX_RESPONSE_SIZE} octets"
                )));
            }
            logical.extend_from_slice(b"\r\n");
            let literal = self
                .conn
                .read_exact(n, waiting_for)
                .await
                .map_err(|e| self.conn_error(e))?;
            if self.conn.trace.is_some() {
                let mut tracer = BodyTracer::new();
                let body = literal.strip_suffix(b"\r\n").unwrap_or(&literal);
                for l in body.split(|&b| b == b'\n') {
                    tracer.line(
                        &self.conn.trace,
                        Direction::Server,
                        l.strip_suffix(b"\r").unwrap_or(l),
                    );
                }
                tracer.finish(&self.conn.trace, Direction::Server);
            }
            logical.extend_from_slice(&literal);
        }
        parse::response(&logical).map_err(|e| self.protocol(format!("sent a response with {e}")))
    }

    fn protocol_missing(&self, seq: u32, count: u32) -> ImapError {
        self.rejected(
            &format!("FETCH {seq}"),
            StatusText {
                status: Status::No,
                code: None,
                text: format!("no message {seq} (the mailbox has {count})"),
            },
        )
    }

    fn conn_error(&self, e: ConnError) -> ImapError {
        conn_error(self.conn.server.clone(), e)
    }

    fn rejected(&self, command: &str, reply: StatusText) -> ImapError {
        ImapError::Rejected {
            server: self.conn.server.clone(),
            command: command.to_string(),
            reply,
        }
    }

    fn protocol(&self, message: String) -> ImapError {
        ImapError::Protocol {
            server: self.conn.server.clone(),
            message,
        }
    }
}

/// A mailbox name from the server, decoded from modified UTF-7; a name that is not valid
/// modified UTF-7 (a server sending UTF-8 anyway) is kept as it came.
fn mailbox_name(wire: &str) -> String {
    mutf7::decode(wire.as_bytes()).unwrap_or_else(|_| wire.to_string())
}

/// `message` with every line ending in CRLF (a bare LF becomes CRLF; a lone CR stays).
pub fn crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 40);
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// The sequence numbers of the `* n EXPUNGE` responses, in order.
fn expunged(untagged: &[Response]) -> Vec<u32> {
    untagged
        .iter()
        .filter_map(|r| match r {
            Response::Numbered { n, keyword, .. } if keyword == "EXPUNGE" => Some(*n),
            _ => None,
        })
        .collect()
}

/// One FETCH response's data items.
pub fn fetched(seq: u32, rest: &[Value]) -> Result<Fetched, String> {
    let mut f = Fetched {
        seq,
        ..Fetched::default()
    };
    for (name, value) in parse::fetch_pairs(rest).map_err(|e| e.to_string())? {
        match name.as_str() {
            "UID" => f.uid = value.number().map(|n| n as u32),
            "FLAGS" => {
                f.flags = Some(
                    value
                        .list()
                        .ok_or("FLAGS that are not a list")?
                        .iter()
                        .filter_map(Value::text)
                        // \Recent says only which session was told first (RFC 3501
                        // §2.3.2; IMAP4rev2 dropped it): not a property of the message.
                        .filter(|flag| !flag.eq_ignore_ascii_case("\\Recent"))
                        .collect(),
                )
            }
            "RFC822.SIZE" => f.size = value.number(),
            "INTERNALDATE" => f.internal_date = value.text(),
            n if n.starts_with("BODY[") || n.starts_with("BINARY[") || n.starts_with("RFC822") => {
                // `BODY[]<0>` names the same section as `BODY[]`.
                let name = match n.find(']') {
                    Some(end) => n[..=end].to_string(),
                    None => n.to_string(),
                };
                f.sections
                    .push((name, value.bytes().map(<[u8]>::to_vec).unwrap_or_default()));
            }
            _ => {}
        }
    }
    Ok(f)
}

/// The numbers of a sequence set like `1:3,7` (as ESEARCH returns it); `*` is not expected
/// in a server's answer and is skipped. Ranges are capped to keep a hostile answer small.
pub fn expand_set(set: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
            let (lo, hi) = (a.min(b), a.max(b));
            for n in lo..=hi.min(lo.saturating_add(1_000_000)) {
                out.push(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;

fn conn_error(server: String, e: ConnError) -> ImapError {
    ImapError::from_conn(server, e)
}
