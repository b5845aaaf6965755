//! IMAP4 driver (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1 compatibility).
//!
//! ```text
//!   connect ──"* OK [CAPABILITY ...] ready"──▶ NotAuthenticated
//!     LOGIN / AUTHENTICATE PLAIN|LOGIN ──ok──▶ Authenticated
//!        wrong ─▶ wait failure_delay, NO [AUTHENTICATIONFAILED]; after max_auth_failures: BYE
//!   Authenticated ──SELECT/EXAMINE ok──▶ Selected ──CLOSE/UNSELECT/failed SELECT──▶ Authenticated
//!   any state ──LOGOUT──▶ "* BYE", "tag OK", close
//!   autologout timer (RFC 9051 §5.4: at least 30 min), shutdown ─▶ "* BYE", close
//! ```
//!
//! Commands are framed by [`mailroom_proto::imap::Assembler`]: a literal is an explicit state
//! whose declared size is checked before any of it is read (`NO [TOOBIG]` for a synchronizing
//! literal, `BYE` for a non-synchronizing one, RFC 7888 §4). Every failure goes through
//! [`error::ImapError::to_reply`].
//!
//! Mailbox names are stored in UTF-8. On the wire they are modified UTF-7 (RFC 3501 §5.1.3)
//! until the client sends `ENABLE IMAP4rev2`, UTF-8 after it (RFC 9051 §5.1, Appendix E):
//! [`Session::names_from_wire`] converts every name a command carries, at the top of
//! [`Session::dispatch`], and [`Session::name_to_wire`] every name a response carries.
//!
//! Changes by other sessions, SMTP deliveries and POP3 deletions are found by polling the
//! mailbox row (see [`selected`]) after each command and every 500 ms during IDLE. Writes
//! (APPEND, STORE, EXPUNGE, COPY, MOVE) are answered OK only after the store reports them
//! committed to disk.

mod error;
pub mod fetch;
mod quota;
mod selected;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_proto::imap::encode::{parse_date_time, push_string};
use mailroom_proto::imap::{
    assemble::FrameError, mutf7, parse_command, Assembler, Command, CommandBody, FetchAtt,
    ListOptions, ParseError, Progress, SearchReturn, StoreMode,
};
use mailroom_proto::line::LineError;
use mailroom_proto::sasl;
use mailroom_store::{now_unix, Account, FlagOp, Flags, MailStore, MailboxInfo, Store, StoreError};
use tokio::sync::watch;

use crate::auth::{check_password, AuthError};
use crate::conn::{mask_secrets, Conn, Event, Trace, MASK};
use crate::Shared;
use error::ImapError;
pub use fetch::ImapShared;
use selected::{compress, split_flags, Selected};

/// RFC 9051 §5.4: the autologout timer is at least 30 minutes.
const AUTOLOGOUT_MIN: Duration = Duration::from_secs(30 * 60);
/// A command line (and a command's text without literals) may be this long: UID sets from
/// synchronising clients get long (RFC 7162 §4 suggests at least 8192 octets).
const MAX_COMMAND_TEXT: usize = 64 * 1024;
/// Literals of commands other than APPEND (user names, passwords, mailbox names, search
/// strings) are small; APPEND's limit is `limits.max_message_size`.
const MAX_SMALL_LITERAL: u64 = 64 * 1024;
/// How often IDLE looks for changes ("within a second").
const IDLE_POLL: Duration = Duration::from_millis(500);
/// The hierarchy delimiter (RFC 9051 §5.1.1).
const DELIM: char = '/';

/// The capabilities every session has; [`Session::capabilities`] adds the state-dependent ones.
const CAPABILITIES: &str = "SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH STATUS=SIZE BINARY CONDSTORE QUOTA QUOTA=RES-STORAGE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// RFC 9051 §3.
enum State {
    NotAuthenticated,
    Authenticated(Account),
    Selected(Account, Box<Selected>),
}

struct Session {
    conn: Conn,
    shared: Arc<Shared>,
    state: State,
    /// The client said ENABLE IMAP4rev2 (RFC 9051 §6.3.1). Besides the rev2 responses, this
    /// makes mailbox names UTF-8 on the wire instead of modified UTF-7 (see
    /// [`Session::utf8_names`]).
    rev2: bool,
    /// A CONDSTORE-enabling command was seen (RFC 7162 §3.1): untagged FETCH responses
    /// then carry MODSEQ.
    condstore: bool,
    asm: Assembler,
    /// The share of the memory budget held by an APPEND's literals while they are read and
    /// until the command is done (`limits.max_incoming_memory`).
    append_held: Option<crate::budget::Reservation>,
    errors: u32,
    auth_failures: u32,
}

/// Serves one IMAP connection until LOGOUT, a drop, the autologout timer or shutdown.
pub async fn run_session(
    stream: crate::conn::Stream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let trace = Trace {
        enabled: shared.config.trace.imap,
        proto: "imap",
        id: shared.next_session_id(),
    };
    trace.note(&format!("connection from {peer}"));
    let idle = shared.config.limits.idle_timeout.max(AUTOLOGOUT_MIN);
    let mut conn = Conn::new(stream, peer, MAX_COMMAND_TEXT, idle, trace, shutdown);
    conn.min_data_rate = shared.config.limits.min_data_rate;
    let mut s = Session {
        conn,
        shared,
        state: State::NotAuthenticated,
        rev2: false,
        condstore: false,
        asm: Assembler::new(),
        append_held: None,
        errors: 0,
        auth_failures: 0,
    };
    // RFC 9051 §7.1.1 greeting with the capabilities (saves a round trip).
    let caps = s.capabilities();
    s.send_line(&format!(
        "* OK [CAPABILITY {caps}] mailroom IMAP4 server ready"
    ));
    loop {
        let event = s.conn.next_line().await;
        let flow = match event {
            Event::Line(Ok(line)) => s.line(line).await,
            Event::Line(Err(LineError::TooLong { limit })) => {
                s.conn
                    .trace
                    .client(&format!("<line longer than {limit} octets>"));
                s.asm.reset();
                // The tag is lost with the line: an untagged BAD (RFC 9051 §7.1.5).
                s.fail(
                    None,
                    ImapError::bad(format!(
                        "command line too long (the limit is {limit} octets); send long strings as literals"
                    )),
                )
            }
            Event::Timeout => {
                s.conn.trace.note("autologout timer expired");
                s.send_line("* BYE autologout: no command for too long");
                Flow::Close
            }
            Event::Shutdown => {
                s.send_line("* BYE the server is shutting down; reconnect later");
                Flow::Close
            }
            Event::Closed => Flow::Close,
        };
        if flow == Flow::Close {
            break;
        }
    }
    s.conn.trace.note("connection closed");
    s.conn.close().await;
}

/// Octets from the client for a response text: printable ASCII as is, anything else as
/// `\xNN`, quoted, cut at 80 octets (a rev1 response text is 7-bit).
fn show_octets(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b.iter().take(80) {
        match c {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(c as char);
            }
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02X}")),
        }
    }
    if b.len() > 80 {
        s.push_str("...");
    }
    s.push('"');
    s
}

fn normalize_mailbox(name: &str) -> String {
    // RFC 9051 §5.1: INBOX is case-insensitive, also as the first level of a hierarchy.
    let trimmed = name.trim_end_matches(DELIM);
    let base = if trimmed.is_empty() { name } else { trimmed };
    if let (Some(head), Some(rest)) = (base.get(..5), base.get(5..)) {
        if head.eq_ignore_ascii_case("INBOX") && (rest.is_empty() || rest.starts_with(DELIM)) {
            return format!("INBOX{rest}");
        }
    }
    base.to_string()
}

/// LIST pattern matching (RFC 9051 §6.3.9): `*` matches anything, `%` anything but the
/// hierarchy delimiter. Dynamic programming over (pattern, name) positions, so a hostile
/// pattern like `*a*a*a*...` costs O(pattern × name), not exponential time.
fn pattern_match(pat: &[u8], name: &[u8]) -> bool {
    // reach[j]: the pattern prefix consumed so far can end at name position j.
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for &p in pat {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' | b'%' => {
                let mut on = false;
                for j in 0..=name.len() {
                    if reach[j] {
                        on = true;
                    }
                    next[j] = on;
                    if p == b'%' && j < name.len() && name[j] == DELIM as u8 {
                        // `%` cannot cross a delimiter: stop carrying past it.
                        on = false;
                    }
                }
            }
            c => {
                for j in 0..name.len() {
                    if reach[j] && name[j] == c {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
        if !reach.iter().any(|&r| r) {
            return false;
        }
    }
    reach[name.len()]
}

impl Session {
    fn send_line(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.extend_from_slice(b"\r\n");
        self.conn.send(&b);
    }

    fn account(&self) -> Option<&Account> {
        match &self.state {
            State::NotAuthenticated => None,
            State::Authenticated(a) | State::Selected(a, _) => Some(a),
        }
    }

    fn selected(&mut self) -> Option<&mut Selected> {
        match &mut self.state {
            State::Selected(_, s) => Some(s),
            _ => None,
        }
    }

    /// Sends the reply of a failure; too many BADs end the session.
    fn fail(&mut self, tag: Option<&str>, e: ImapError) -> Flow {
        if e.is_bad() {
            self.errors += 1;
            let max = self.shared.config.limits.max_errors;
            if self.errors >= max {
                let reply = e.to_reply(tag);
                self.conn.send(&reply);
                self.send_line(&format!(
                    "* BYE too many bad commands ({max}); closing the connection"
                ));
                return Flow::Close;
            }
        }
        let reply = e.to_reply(tag);
        self.conn.send(&reply);
        if e.is_bye() {
            self.conn.trace.note(&format!("closing: {e}"));
            return Flow::Close;
        }
        Flow::Continue
    }

    /// One line from the client: frame it, reading literals as needed.
    async fn line(&mut self, line: Vec<u8>) -> Flow {
        let progress = self.asm.push_line(&line, MAX_COMMAND_TEXT);
        match progress {
            Err(e) => {
                let tag = line
                    .split(|&b| b == b' ')
                    .next()
                    .filter(|t| {
                        !t.is_empty() && t.iter().all(|&b| mailroom_proto::imap::is_tag_char(b))
                    })
                    .map(|t| String::from_utf8_lossy(t).into_owned());
                self.conn.trace.client(&format!("<bad command: {e}>"));
                let text = match e {
                    FrameError::Nul => {
                        "NUL octets are not allowed in commands (RFC 9051 §4)".to_string()
                    }
                    FrameError::TooLong(n) => format!("command longer than {n} octets"),
                };
                self.fail(tag.as_deref(), ImapError::bad(text))
            }
            Ok(Progress::Literal { size, sync }) => self.literal(size, sync).await,
            Ok(Progress::Complete(buf)) => {
                let flow = self.command(buf).await;
                // The message is stored (or refused): its memory is free again.
                self.append_held = None;
                flow
            }
        }
    }

    /// A literal was announced: refuse it if too large, else read it.
    async fn literal(&mut self, size: u64, sync: bool) -> Flow {
        let is_append = self.asm.command_name().as_deref() == Some("APPEND");
        let limit = if is_append {
            self.shared.config.limits.max_message_size
        } else {
            MAX_SMALL_LITERAL
        };
        let total = self.asm.literal_total().saturating_add(size);
        // An APPEND holds its message in memory until stored: reserve it from the budget
        // shared by all sessions before reading it.
        let over_budget = is_append && total <= limit && {
            let budget = &self.shared.incoming;
            let held = self.append_held.get_or_insert_with(|| budget.reserve());
            !held.grow_to(total)
        };
        if over_budget {
            let budget = self.shared.config.limits.max_incoming_memory;
            tracing::warn!(
                size,
                limit = budget,
                "limits.max_incoming_memory reached: an APPEND is refused"
            );
            let e = ImapError::no(
                "UNAVAILABLE",
                "the server is receiving too many messages at once; try the APPEND again in a few minutes",
            );
            return self.refuse_literal(size, sync, e, "memory budget used up");
        }
        if total > limit {
            let e = ImapError::no(
                "TOOBIG",
                format!(
                    "a literal of {size} octets is over the limit of {limit} octets{}",
                    if is_append {
                        " for a message"
                    } else {
                        " for this command"
                    }
                ),
            );
            return self.refuse_literal(size, sync, e, "too large");
        }
        // RFC 9208 §4.3: a message that cannot fit the account's quota is refused before the
        // client sends it (only a synchronizing literal waits for our go-ahead; the octets of
        // a non-synchronizing one are on their way, and APPEND checks again once it is read).
        if is_append && sync {
            if let Ok(Some(u)) = self.quota().await {
                if !u.fits(total) {
                    let e = quota::over_quota(&u, total, "the message");
                    return self.refuse_literal(size, sync, e, "over quota");
                }
            }
        }
        if sync {
            // RFC 9051 §7.5: go ahead.
            self.send_line("+ go ahead");
        }
        let mut got: u64 = 0;
        while got < size {
            self.conn.quick_ack();
            match self.conn.read_raw().await {
                Ok(Some(chunk)) => {
                    let need = usize::try_from(size - got).unwrap_or(usize::MAX);
                    if chunk.len() > need {
                        self.asm.push_literal(&chunk[..need]);
                        self.conn.unread(&chunk[need..]);
                        got = size;
                    } else {
                        self.asm.push_literal(&chunk);
                        got += chunk.len() as u64;
                    }
                }
                _ => return Flow::Close,
            }
        }
        // The literal is in: acknowledge it now, so a client holding its CRLF back (Nagle) sends it.
        self.conn.quick_ack();
        Flow::Continue
    }

    /// Refuses an announced literal without reading it: the command's tagged NO, and for a
    /// non-synchronizing literal, whose octets are already on their way (RFC 7888 §4), the end
    /// of the connection.
    fn refuse_literal(&mut self, size: u64, sync: bool, e: ImapError, why: &str) -> Flow {
        self.append_held = None;
        let tag = self.asm.tag();
        self.asm.reset();
        self.conn.trace.client(&format!(
            "{} <literal of {size} octets refused: {why}>",
            tag.as_deref().unwrap_or("*")
        ));
        let reply = e.to_reply(tag.as_deref());
        self.conn.send(&reply);
        if !sync {
            self.send_line("* BYE the literal cannot be read now; closing the connection");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Traces a whole command (its literals included). Trace::client masks every LOGIN and
    /// AUTHENTICATE, parsed or not; only a parsed LOGIN shows its user name.
    fn trace_command(&self, cmd: Option<&Command>, buf: &[u8]) {
        match cmd {
            Some(Command {
                tag,
                body: CommandBody::Login { user, .. },
            }) => {
                self.conn
                    .trace
                    .client_masked(&format!("{tag} LOGIN {user} {MASK}"));
            }
            Some(Command {
                tag,
                body:
                    CommandBody::Append {
                        mailbox, message, ..
                    },
            }) => {
                let text = format!("{tag} APPEND {mailbox} <{} octets>", message.len());
                self.conn.trace.client(&text);
            }
            _ => {
                let text = String::from_utf8_lossy(buf);
                let text = mask_secrets(&text);
                let text = text.chars().take(300).collect::<String>();
                self.conn.trace.client(&text.replace("\r\n", "\\r\\n"));
            }
        }
    }

    async fn command(&mut self, buf: Vec<u8>) -> Flow {
        let parsed = parse_command(&buf);
        self.trace_command(parsed.as_ref().ok(), &buf);
        let cmd = match parsed {
            Ok(c) => c,
            Err(e) => {
                let text = match e.error {
                    ParseError::NoTag => ParseError::NoTag.to_string(),
                    ParseError::MailboxNotUtf8(octets) => {
                        let err = self.bad_name(&octets, None);
                        return self.fail(e.tag.as_deref(), err);
                    }
                    other => other.to_string(),
                };
                return self.fail(e.tag.as_deref(), ImapError::bad(text));
            }
        };
        let tag = cmd.tag.clone();
        let name = cmd.body.name();
        // RFC 9051 §7.5.1: no EXPUNGE responses while answering FETCH, STORE or SEARCH.
        let allow_expunge = !matches!(
            cmd.body,
            CommandBody::Fetch { uid: false, .. }
                | CommandBody::Store { uid: false, .. }
                | CommandBody::Search { uid: false, .. }
        );
        // A session acts only for the account that logged in and on the mailbox it selected:
        // both are checked before every command (and by every sync, IDLE's polls included).
        if let Err(e) = self.verify().await {
            return self.fail(Some(&tag), e);
        }
        let result = self.dispatch(&tag, cmd.body).await;
        match result {
            Ok(Done::Ok(code_text)) => {
                if let Err(e) = self.sync(allow_expunge).await {
                    return self.fail(Some(&tag), e);
                }
                self.send_line(&format!("{tag} OK {code_text}"));
                Flow::Continue
            }
            Ok(Done::Close) => Flow::Close,
            Ok(Done::Replied) => Flow::Continue,
            Err(e) => {
                if !e.is_bad() && !e.is_bye() {
                    if let Err(bye) = self.sync(allow_expunge).await {
                        if bye.is_bye() {
                            return self.fail(Some(&tag), bye);
                        }
                    }
                }
                let flow = self.fail(Some(&tag), e);
                tracing::debug!(command = name, "IMAP command failed");
                flow
            }
        }
    }

    /// Runs a blocking store call on a blocking thread.
    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn MailStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ImapError> {
        let store: Store = self.shared.store.clone();
        match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
            Ok(r) => r.map_err(ImapError::store),
            Err(e) => {
                tracing::error!(error = %e, "IMAP store task failed");
                Err(ImapError::no(
                    "SERVERBUG",
                    "internal error; nothing was changed, try again",
                ))
            }
        }
    }

    /// Checks, in one store call, that the account that logged in is still there with the
    /// same password, and that the selected mailbox (if any) is still the one selected: not
    /// deleted, not renamed (a new UIDVALIDITY). Either change ends the session with `* BYE`:
    /// the account's mail is no longer this session's to see, and the UIDs it holds name
    /// nothing any more. Returns the selected mailbox as it is now.
    async fn verify(&mut self) -> Result<Option<MailboxInfo>, ImapError> {
        let (account, selected) = match &self.state {
            State::NotAuthenticated => return Ok(None),
            State::Authenticated(a) => (a.clone(), None),
            State::Selected(a, sel) => (a.clone(), Some((sel.id, sel.uidvalidity))),
        };
        let id = account.id;
        let mailbox = selected.map(|(m, _)| m);
        let (now, info) = self
            .store(move |s| {
                let now = s.account_by_id(id)?;
                let info = match mailbox {
                    Some(m) => s.mailbox_by_id(m)?,
                    None => None,
                };
                Ok((now, info))
            })
            .await?;
        if now.is_none_or(|a| a.password_hash != account.password_hash) {
            return Err(ImapError::Bye(
                "your account was removed or its password was changed; log in again".into(),
            ));
        }
        if let Some((_, uidvalidity)) = selected {
            match &info {
                None => {
                    return Err(ImapError::Bye(
                        "the selected mailbox was deleted by another session; closing".into(),
                    ))
                }
                Some(i) if i.uidvalidity != uidvalidity => {
                    return Err(ImapError::Bye(
                        "the selected mailbox was renamed or made again by another session (its UIDVALIDITY changed); closing".into(),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(info)
    }

    /// Takes the messages up to `top` as this session's `\\Recent` ones (the store's
    /// `claim_recent`); returns the UID above which they are this session's. When the store
    /// cannot write (a full disk), the session only looks, as EXAMINE does (`seen`): reading a
    /// mailbox must never fail for want of recording who saw it first.
    async fn claim_recent(&self, id: mailroom_store::MailboxId, top: u32, seen: u32) -> u32 {
        let store: Store = self.shared.store.clone();
        match tokio::task::spawn_blocking(move || store.claim_recent(id, top)).await {
            Ok(Ok(prev)) => prev,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot record \\Recent; the session only looks");
                seen
            }
            Err(_) => seen,
        }
    }

    /// Brings the selected mailbox up to date and queues the untagged responses.
    async fn sync(&mut self, allow_expunge: bool) -> Result<(), ImapError> {
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        let id = sel.id;
        let info = self.verify().await?;
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        if !sel.changed(info.as_ref()) {
            return Ok(());
        }
        let since = sel.seen_modseq;
        let list = if info.is_some() {
            let (uids, changed) = self.store(move |s| s.mailbox_changes(id, since)).await?;
            match self.selected().and_then(|sel| sel.rebuild(&uids, changed)) {
                Some(list) => list,
                None => self.store(move |s| s.list_messages(id)).await?,
            }
        } else {
            Vec::new()
        };
        let with_modseq = self.condstore;
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        let before = sel.msgs.last().map_or(0, |m| m.uid);
        let read_only = sel.read_only;
        let mut lines = sel.apply(info.as_ref(), &list, allow_expunge, with_modseq);
        // New messages: \Recent for this session if no other session was told of them first.
        let top = sel.msgs.last().map_or(0, |m| m.uid);
        if top > before {
            let seen = info.as_ref().map_or(top, |i| i.recent_uid);
            let after = if read_only {
                seen
            } else {
                self.claim_recent(id, top, seen).await
            };
            let rev1 = !self.rev2;
            if let Some(sel) = self.selected() {
                if rev1 {
                    let recent = sel.mark_recent(after.max(before), top);
                    // RFC 3501 §7.3.2: RECENT follows the EXISTS that announced them.
                    if let Some(i) = lines.iter().position(|l| l.ends_with(" EXISTS")) {
                        lines.insert(i + 1, format!("* {recent} RECENT"));
                    }
                }
            }
        }
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        // New keywords (set by another session) are announced before the FETCH that shows them.
        if sel.learn_keywords() {
            for l in sel.flags_lines() {
                self.send_line(&l);
            }
        }
        for l in lines {
            self.send_line(&l);
        }
        Ok(())
    }

    fn capability_line(&self) -> String {
        format!("* CAPABILITY {}", self.capabilities())
    }

    /// The capabilities for the session's current state: STARTTLS while TLS can still be
    /// started; LOGINDISABLED instead of the AUTH= mechanisms while the `auth_require_tls`
    /// policy forbids a password on this connection (RFC 9051 §6.2.3, §7.2.2).
    fn capabilities(&self) -> String {
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

    async fn dispatch(&mut self, tag: &str, body: CommandBody) -> Result<Done, ImapError> {
        use CommandBody as C;
        // Commands valid in every state (RFC 9051 §6.1).
        match body {
            C::Capability => {
                let l = self.capability_line();
                self.send_line(&l);
                return ok("CAPABILITY completed");
            }
            C::Noop => return ok("NOOP completed"),
            C::Logout => {
                self.send_line("* BYE mailroom IMAP4 server signing off");
                self.send_line(&format!("{tag} OK LOGOUT completed"));
                return Ok(Done::Close);
            }
            C::Id(params) => {
                // RFC 2971: log what the client says about itself, answer with ours.
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
                return ok("ID completed");
            }
            _ => {}
        }
        if let State::NotAuthenticated = self.state {
            return match body {
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
            };
        }
        let is_select = matches!(body, C::Select { .. });
        let body = match self.names_from_wire(body) {
            Ok(b) => b,
            Err(e) => {
                if is_select {
                    // RFC 9051 §6.3.2: a SELECT that fails still deselects.
                    self.leave_selected();
                }
                return Err(e);
            }
        };
        match body {
            C::StartTls | C::Login { .. } | C::Authenticate { .. } => {
                return Err(ImapError::bad("you are already logged in"))
            }
            C::Enable(caps) => {
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
                return ok("ENABLE completed");
            }
            C::Select {
                mailbox,
                read_only,
                condstore,
            } => {
                self.condstore |= condstore;
                return self.select(&mailbox, read_only).await;
            }
            C::Create(name) => return self.create(&name).await,
            C::Delete(name) => return self.delete(&name).await,
            C::Rename(from, to) => return self.rename(&from, &to).await,
            C::Subscribe(name) => return self.subscribe(&name, true).await,
            C::Unsubscribe(name) => return self.subscribe(&name, false).await,
            C::List {
                reference,
                patterns,
                options,
            } => return self.list(&reference, &patterns, &options, false).await,
            C::Lsub { reference, pattern } => {
                let options = ListOptions {
                    subscribed: true,
                    ..ListOptions::default()
                };
                return self.list(&reference, &[pattern], &options, true).await;
            }
            C::Namespace => {
                // RFC 2342: one personal namespace, no others.
                self.send_line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                return ok("NAMESPACE completed");
            }
            C::Status { mailbox, items } => {
                self.condstore |= items.iter().any(|i| i == "HIGHESTMODSEQ");
                return self.status(&mailbox, &items).await;
            }
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                return self
                    .append(&mailbox, &flags, date.as_deref(), message)
                    .await
            }
            C::Idle => return self.idle().await,
            C::GetQuotaRoot(mailbox) => return self.get_quota_root(&mailbox).await,
            C::GetQuota(root) => return self.get_quota(&root).await,
            C::SetQuota { .. } => return Err(quota::setquota_refused()),
            _ => {}
        }
        if self.selected().is_none() {
            return Err(ImapError::bad(format!(
                "{} needs a selected mailbox: SELECT or EXAMINE one first",
                body.name()
            )));
        }
        match body {
            C::Check => ok("CHECK completed"),
            C::Close => {
                self.close_mailbox(true).await?;
                Ok(Done::Ok("CLOSE completed".into()))
            }
            C::Unselect => {
                self.close_mailbox(false).await?;
                Ok(Done::Ok("UNSELECT completed".into()))
            }
            C::Expunge { uids } => self.expunge(uids).await,
            C::Search {
                uid,
                ret,
                charset,
                key,
            } => self.search(tag, uid, ret, charset, key).await,
            C::Fetch {
                uid,
                set,
                items,
                changed_since,
            } => self.fetch(uid, &set, items, changed_since).await,
            C::Store {
                uid,
                set,
                mode,
                silent,
                flags,
                unchanged_since,
            } => {
                self.store_cmd(uid, &set, mode, silent, &flags, unchanged_since)
                    .await
            }
            C::Copy { uid, set, mailbox } => self.copy(uid, &set, &mailbox, false).await,
            C::Move { uid, set, mailbox } => self.copy(uid, &set, &mailbox, true).await,
            other => Err(ImapError::bad(format!(
                "{} is not valid here",
                other.name()
            ))),
        }
    }

    // ------------------------------------------------------------ authentication

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

    // ------------------------------------------------------------ mailbox names on the wire

    /// Mailbox names on the wire are UTF-8 (RFC 9051 §5.1) once the client enabled
    /// IMAP4rev2, modified UTF-7 (RFC 3501 §5.1.3) before. The store always holds UTF-8.
    fn utf8_names(&self) -> bool {
        self.rev2
    }

    /// A mailbox name (or LIST reference / pattern) as the client sent it, in the store's
    /// UTF-8. Wildcards pass through (`*` and `%` are printable ASCII, never inside a
    /// modified BASE64 run), so LIST matches decoded names.
    fn name_from_wire(&self, wire: String) -> Result<String, ImapError> {
        if self.utf8_names() || mutf7::is_plain(&wire) {
            return Ok(wire);
        }
        mutf7::decode(wire.as_bytes()).map_err(|e| self.bad_name(wire.as_bytes(), Some(&e)))
    }

    /// A stored (UTF-8) mailbox name as this session writes it.
    fn name_to_wire<'a>(&self, name: &'a str) -> Cow<'a, str> {
        if self.utf8_names() || mutf7::is_plain(name) {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(mutf7::encode(name))
        }
    }

    /// A stored name quoted for a response text (`"Entw&APw-rfe"` in a rev1 session).
    fn show_name(&self, name: &str) -> String {
        format!("{:?}", self.name_to_wire(name))
    }

    /// Every mailbox name in a command, from the wire into UTF-8: the one place names come
    /// in (SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB,
    /// STATUS, APPEND, COPY, MOVE, GETQUOTAROOT). Quota root names (GETQUOTA, SETQUOTA) are
    /// not mailbox names and pass as sent.
    fn names_from_wire(&self, body: CommandBody) -> Result<CommandBody, ImapError> {
        use CommandBody as C;
        let n = |s: String| self.name_from_wire(s);
        Ok(match body {
            C::Select {
                mailbox,
                read_only,
                condstore,
            } => C::Select {
                mailbox: n(mailbox)?,
                read_only,
                condstore,
            },
            C::Create(m) => C::Create(n(m)?),
            C::Delete(m) => C::Delete(n(m)?),
            C::Rename(from, to) => C::Rename(n(from)?, n(to)?),
            C::Subscribe(m) => C::Subscribe(n(m)?),
            C::Unsubscribe(m) => C::Unsubscribe(n(m)?),
            C::List {
                reference,
                patterns,
                options,
            } => C::List {
                reference: n(reference)?,
                patterns: patterns.into_iter().map(n).collect::<Result<_, _>>()?,
                options,
            },
            C::Lsub { reference, pattern } => C::Lsub {
                reference: n(reference)?,
                pattern: n(pattern)?,
            },
            C::Status { mailbox, items } => C::Status {
                mailbox: n(mailbox)?,
                items,
            },
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => C::Append {
                mailbox: n(mailbox)?,
                flags,
                date,
                message,
            },
            C::Copy { uid, set, mailbox } => C::Copy {
                uid,
                set,
                mailbox: n(mailbox)?,
            },
            C::Move { uid, set, mailbox } => C::Move {
                uid,
                set,
                mailbox: n(mailbox)?,
            },
            C::GetQuotaRoot(m) => C::GetQuotaRoot(n(m)?),
            // Listed one by one, so that a new command with a name cannot slip past.
            other @ (C::Capability
            | C::Noop
            | C::Logout
            | C::StartTls
            | C::Authenticate { .. }
            | C::Login { .. }
            | C::Enable(_)
            | C::Namespace
            | C::Idle
            | C::Check
            | C::Close
            | C::Unselect
            | C::Expunge { .. }
            | C::Search { .. }
            | C::Fetch { .. }
            | C::Store { .. }
            | C::Id(_)
            | C::GetQuota(_)
            | C::SetQuota { .. }) => other,
        })
    }

    /// The refusal of a name that is not valid on the wire in this session: not modified
    /// UTF-7 in a rev1 session (`mutf7` says why, or the octets are not even UTF-8), not
    /// UTF-8 in a rev2 session. The text says how to write the name instead, in 7-bit ASCII
    /// (a rev1 response text cannot carry anything else).
    ///
    /// `NO`, not `BAD`: the command is well-formed (a literal may carry any octets), it is
    /// the name's spelling that RFC 3501 §5.1.3 / RFC 9051 §5.1 rule out, and RFC 9051 §7.1
    /// keeps BAD for protocol-level errors. Dovecot answers such names the same way
    /// (`NO Mailbox name is not valid mUTF-7`), and a NO does not count towards
    /// `limits.max_errors`. Raw 8-bit names in a rev1 session get this refusal too, as in
    /// Dovecot: RFC 3501 names are 7-bit, and storing the octets as sent (the old behaviour)
    /// left names no UTF-8 client could read.
    fn bad_name(&self, octets: &[u8], why: Option<&mutf7::DecodeError>) -> ImapError {
        let shown = show_octets(octets);
        if self.utf8_names() {
            let at = std::str::from_utf8(octets)
                .err()
                .map_or(0, |e| e.valid_up_to());
            return ImapError::no(
                "CANNOT",
                format!(
                    "mailbox name {shown} is not valid UTF-8 (at octet {at}); after ENABLE IMAP4rev2 mailbox names are UTF-8 (RFC 9051 section 5.1)"
                ),
            );
        }
        let decoded;
        let why = match why {
            Some(w) => w,
            None => match mutf7::decode(octets) {
                Err(e) => {
                    decoded = e;
                    &decoded
                }
                // Cannot happen (the caller had a refusal); say the general rule.
                Ok(_) => {
                    return ImapError::no("CANNOT", "the mailbox name is not valid modified UTF-7")
                }
            },
        };
        let hint = match &why.suggestion {
            Some(s) => format!("; write it as {s:?}"),
            None => String::new(),
        };
        ImapError::no(
            "CANNOT",
            format!(
                "mailbox name {shown} is not valid modified UTF-7: {why}{hint}. IMAP4rev1 mailbox names are 7-bit (RFC 3501 section 5.1.3): write & as &- and other characters outside printable ASCII as one &...- run of modified BASE64 of UTF-16 (e.g. U+00FC is &APw-, so Entw&APw-rfe); or send ENABLE IMAP4rev2 first and use UTF-8"
            ),
        )
    }

    /// A store refusal about a mailbox (a concurrent CREATE or RENAME) with the name as this
    /// session spells it (the store's own text has the UTF-8 name).
    fn name_store_error(&self, e: ImapError, exists: &str, missing: &str) -> ImapError {
        match e {
            ImapError::No {
                code: Some("ALREADYEXISTS"),
                ..
            } => ImapError::no(
                "ALREADYEXISTS",
                format!("mailbox {} already exists", self.show_name(exists)),
            ),
            ImapError::No {
                code: Some("NONEXISTENT"),
                ..
            } => ImapError::no(
                "NONEXISTENT",
                format!("there is no mailbox {}", self.show_name(missing)),
            ),
            other => other,
        }
    }

    // ------------------------------------------------------------ mailboxes

    async fn find_mailbox(&self, name: &str) -> Result<Option<MailboxInfo>, ImapError> {
        let Some(acct) = self.account().map(|a| a.id) else {
            return Ok(None);
        };
        let name = normalize_mailbox(name);
        self.store(move |s| s.mailbox(acct, &name)).await
    }

    async fn must_mailbox(&self, name: &str, code: &'static str) -> Result<MailboxInfo, ImapError> {
        self.find_mailbox(name).await?.ok_or_else(|| {
            ImapError::no(
                code,
                format!(
                    "there is no mailbox {}{}",
                    self.show_name(&normalize_mailbox(name)),
                    if code == "TRYCREATE" {
                        "; CREATE it first"
                    } else {
                        ""
                    }
                ),
            )
        })
    }

    /// Back to the authenticated state with `* OK [CLOSED]` (RFC 9051 §7.1) if a mailbox
    /// is selected.
    fn leave_selected(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::NotAuthenticated) {
            State::Selected(a, _) => {
                self.send_line("* OK [CLOSED] previous mailbox closed");
                State::Authenticated(a)
            }
            other => other,
        };
    }

    async fn select(&mut self, name: &str, read_only: bool) -> Result<Done, ImapError> {
        // RFC 9051 §6.3.2: a SELECT first deselects the current mailbox, even if it fails.
        self.leave_selected();
        let account = match &self.state {
            State::Authenticated(a) => a.clone(),
            _ => return Err(ImapError::bad("log in first")),
        };
        let info = self.must_mailbox(name, "NONEXISTENT").await?;
        let id = info.id;
        let list = self.store(move |s| s.list_messages(id)).await?;
        let mut sel = Selected::new(id, info.name.clone(), read_only, &info, &list);
        // RFC 3501 §2.3.2: the messages no session was told of yet are \Recent for this one;
        // a read-write session takes them (later sessions do not see them recent), EXAMINE
        // only looks. RFC 9051 dropped \Recent: IMAP4rev2 sessions see none, but still take.
        let top = list.last().map_or(0, |m| m.uid);
        let after = if read_only {
            info.recent_uid
        } else {
            self.claim_recent(id, top, info.recent_uid).await
        };
        let recent = if self.rev2 {
            0
        } else {
            sel.mark_recent(after, top)
        };
        let [flags, permanent] = sel.flags_lines();
        self.send_line(&flags);
        self.send_line(&sel.exists_line());
        if !self.rev2 {
            // RFC 3501 §7.3.2.
            self.send_line(&format!("* {recent} RECENT"));
            if let Some(i) = sel.msgs.iter().position(|m| !m.flags.contains(Flags::SEEN)) {
                self.send_line(&format!("* OK [UNSEEN {}] first unseen message", i + 1));
            }
        }
        self.send_line(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid",
            sel.uidvalidity
        ));
        self.send_line(&format!(
            "* OK [UIDNEXT {}] predicted next UID",
            info.uidnext
        ));
        // RFC 7162 §3.1.2.1.
        self.send_line(&format!(
            "* OK [HIGHESTMODSEQ {}] highest mod-sequence",
            info.highest_modseq
        ));
        self.send_line(&permanent);
        if self.rev2 {
            let mut l = b"* LIST () \"/\" ".to_vec();
            push_string(&mut l, self.name_to_wire(&info.name).as_bytes());
            l.extend_from_slice(b"\r\n");
            self.conn.send(&l);
        }
        self.state = State::Selected(account, Box::new(sel));
        Ok(Done::Ok(if read_only {
            "[READ-ONLY] EXAMINE completed".into()
        } else {
            "[READ-WRITE] SELECT completed".into()
        }))
    }

    async fn close_mailbox(&mut self, expunge: bool) -> Result<(), ImapError> {
        if expunge {
            if let Some(sel) = self.selected() {
                if !sel.read_only {
                    let id = sel.id;
                    // RFC 9051 §6.4.1: CLOSE removes \Deleted messages silently; read the
                    // current flags so \Deleted set by other sessions counts too.
                    let list = self.store(move |s| s.list_messages(id)).await?;
                    let uids: Vec<u32> = list
                        .iter()
                        .filter(|m| m.flags.contains(Flags::DELETED))
                        .map(|m| m.uid)
                        .collect();
                    if !uids.is_empty() {
                        self.store(move |s| s.expunge(id, &uids)).await?;
                    }
                }
            }
        }
        if let State::Selected(a, _) = std::mem::replace(&mut self.state, State::NotAuthenticated) {
            self.state = State::Authenticated(a);
        }
        Ok(())
    }

    fn check_name(&self, name: &str) -> Result<String, ImapError> {
        let n = normalize_mailbox(name);
        if n.is_empty() {
            return Err(ImapError::bad("the mailbox name is empty"));
        }
        if n.split(DELIM).any(str::is_empty) {
            return Err(ImapError::no(
                "CANNOT",
                format!(
                    "{} has an empty level; use names like Work/Projects",
                    self.show_name(&n)
                ),
            ));
        }
        if n.chars().any(|c| c.is_control() || c == '*' || c == '%') {
            return Err(ImapError::no(
                "CANNOT",
                "mailbox names cannot contain control characters, * or %",
            ));
        }
        Ok(n)
    }

    async fn create(&mut self, name: &str) -> Result<Done, ImapError> {
        let n = self.check_name(name)?;
        if n == "INBOX" {
            return Err(ImapError::no("ALREADYEXISTS", "INBOX always exists"));
        }
        let Some(acct) = self.account().map(|a| a.id) else {
            return Err(ImapError::bad("log in first"));
        };
        if self.find_mailbox(&n).await?.is_some() {
            return Err(ImapError::no(
                "ALREADYEXISTS",
                format!("mailbox {} already exists", self.show_name(&n)),
            ));
        }
        // RFC 9051 §6.3.4: create the superior levels that are missing.
        let levels: Vec<&str> = n.split(DELIM).collect();
        for i in 1..levels.len() {
            let parent = levels[..i].join("/");
            if parent != "INBOX" && self.find_mailbox(&parent).await?.is_none() {
                let p2 = parent.clone();
                self.store(move |s| s.create_mailbox(acct, &p2))
                    .await
                    .map_err(|e| self.name_store_error(e, &parent, &parent))?;
            }
        }
        let n2 = n.clone();
        self.store(move |s| s.create_mailbox(acct, &n2))
            .await
            .map_err(|e| self.name_store_error(e, &n, &n))?;
        ok("CREATE completed")
    }

    async fn delete(&mut self, name: &str) -> Result<Done, ImapError> {
        let n = normalize_mailbox(name);
        if n == "INBOX" {
            return Err(ImapError::no("CANNOT", "INBOX cannot be deleted"));
        }
        let info = self.must_mailbox(&n, "NONEXISTENT").await?;
        let id = info.id;
        self.store(move |s| s.delete_mailbox(id)).await?;
        if self.selected().is_some_and(|s| s.id == id) {
            // The selected mailbox is gone: back to Authenticated (RFC 9051 §6.3.5).
            self.close_mailbox(false).await?;
            self.send_line("* OK [CLOSED] the selected mailbox was deleted");
        }
        ok("DELETE completed")
    }

    async fn rename(&mut self, from: &str, to: &str) -> Result<Done, ImapError> {
        let from = normalize_mailbox(from);
        let to = self.check_name(to)?;
        let Some(acct) = self.account().map(|a| a.id) else {
            return Err(ImapError::bad("log in first"));
        };
        let src = self.must_mailbox(&from, "NONEXISTENT").await?;
        if self.find_mailbox(&to).await?.is_some() || to == "INBOX" {
            return Err(ImapError::no(
                "ALREADYEXISTS",
                format!("mailbox {} already exists", self.show_name(&to)),
            ));
        }
        if from == "INBOX" {
            // RFC 9051 §6.3.6: renaming INBOX moves its messages to the new mailbox and
            // leaves INBOX empty.
            let to2 = to.clone();
            let new_id = self
                .store(move |s| s.create_mailbox(acct, &to2))
                .await
                .map_err(|e| self.name_store_error(e, &to, &from))?;
            let src_id = src.id;
            let list = self.store(move |s| s.list_messages(src_id)).await?;
            let uids: Vec<u32> = list.iter().map(|m| m.uid).collect();
            self.store(move |s| s.copy_messages(src_id, &uids, new_id, true))
                .await?;
            return ok("RENAME completed");
        }
        let (f, t) = (from.clone(), to.clone());
        self.store(move |s| s.rename_mailbox(acct, &f, &t))
            .await
            .map_err(|e| self.name_store_error(e, &to, &from))?;
        // This session renamed its own selected mailbox (or one above it): it stays
        // selected under the new name and UIDVALIDITY (other sessions that have it selected
        // see the UIDVALIDITY change and are closed by `verify`).
        if let Some(id) = self.selected().map(|sel| sel.id) {
            if let Some(info) = self.store(move |s| s.mailbox_by_id(id)).await? {
                if let Some(sel) = self.selected() {
                    sel.name = info.name;
                    sel.uidvalidity = info.uidvalidity;
                }
            }
        }
        ok("RENAME completed")
    }

    async fn subscribe(&mut self, name: &str, on: bool) -> Result<Done, ImapError> {
        let info = self.must_mailbox(name, "NONEXISTENT").await?;
        let id = info.id;
        self.store(move |s| s.set_subscribed(id, on)).await?;
        ok(if on {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        })
    }

    async fn list(
        &mut self,
        reference: &str,
        patterns: &[String],
        opts: &ListOptions,
        lsub: bool,
    ) -> Result<Done, ImapError> {
        let word = if lsub { "LSUB" } else { "LIST" };
        let Some(acct) = self.account().map(|a| a.id) else {
            return Err(ImapError::bad("log in first"));
        };
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter.
        if patterns.len() == 1 && patterns[0].is_empty() {
            self.send_line(&format!("* {word} (\\Noselect) \"/\" \"\""));
            return ok(&format!("{word} completed"));
        }
        let boxes = self.store(move |s| s.list_mailboxes(acct)).await?;
        let names: Vec<String> = boxes.iter().map(|b| b.name.clone()).collect();
        let mut out: Vec<&MailboxInfo> = Vec::new();
        for b in &boxes {
            let matched = patterns.iter().any(|p| {
                let full = normalize_mailbox(&format!("{reference}{p}"));
                let full = if full.is_empty() {
                    format!("{reference}{p}")
                } else {
                    full
                };
                pattern_match(full.as_bytes(), b.name.as_bytes())
            });
            if !matched {
                continue;
            }
            if opts.subscribed && !b.subscribed {
                continue;
            }
            if opts.special_use_only && b.special_use.is_none() {
                continue;
            }
            out.push(b);
        }
        out.sort_by(|a, b| (a.name != "INBOX", &a.name).cmp(&(b.name != "INBOX", &b.name)));
        let status_items = opts.return_status.clone();
        for b in out {
            let prefix = format!("{}/", b.name);
            let children = names.iter().any(|n| n.starts_with(&prefix));
            let mut attrs: Vec<&str> = Vec::new();
            if !lsub {
                // RFC 3348 CHILDREN, always given (cheap here).
                attrs.push(if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                // RFC 6154: special-use attributes are always listed.
                if let Some(su) = &b.special_use {
                    attrs.push(su);
                }
                if (opts.subscribed || opts.return_subscribed) && b.subscribed {
                    attrs.push("\\Subscribed");
                }
            }
            let mut line = format!("* {word} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            push_string(&mut line, self.name_to_wire(&b.name).as_bytes());
            line.extend_from_slice(b"\r\n");
            self.conn.send(&line);
            if let Some(items) = &status_items {
                // RFC 5819 LIST-STATUS.
                let l = self.status_line(b, items).await?;
                self.conn.send(&l);
            }
        }
        ok(&format!("{word} completed"))
    }

    async fn status_line(&self, b: &MailboxInfo, items: &[String]) -> Result<Vec<u8>, ImapError> {
        let id = b.id;
        let list = self.store(move |s| s.list_messages(id)).await?;
        let mut parts = Vec::new();
        for i in items {
            let v: u64 = match i.as_str() {
                "MESSAGES" => list.len() as u64,
                "UIDNEXT" => u64::from(b.uidnext),
                "UIDVALIDITY" => u64::from(b.uidvalidity),
                "UNSEEN" => list
                    .iter()
                    .filter(|m| !m.flags.contains(Flags::SEEN))
                    .count() as u64,
                "DELETED" => list
                    .iter()
                    .filter(|m| m.flags.contains(Flags::DELETED))
                    .count() as u64,
                "SIZE" => list.iter().map(|m| m.size).sum(),
                "RECENT" => list.iter().filter(|m| m.uid > b.recent_uid).count() as u64,
                "HIGHESTMODSEQ" => b.highest_modseq,
                "APPENDLIMIT" => self.shared.config.limits.max_message_size,
                _ => continue,
            };
            parts.push(format!("{i} {v}"));
        }
        let mut line = b"* STATUS ".to_vec();
        push_string(&mut line, self.name_to_wire(&b.name).as_bytes());
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        Ok(line)
    }

    async fn status(&mut self, name: &str, items: &[String]) -> Result<Done, ImapError> {
        let info = self.must_mailbox(name, "NONEXISTENT").await?;
        let line = self.status_line(&info, items).await?;
        self.conn.send(&line);
        ok("STATUS completed")
    }

    async fn append(
        &mut self,
        name: &str,
        flags: &[mailroom_proto::imap::Flag],
        date: Option<&str>,
        message: Vec<u8>,
    ) -> Result<Done, ImapError> {
        let (bits, kws) = split_flags(flags)?;
        let when = match date {
            None => now_unix(),
            Some(d) => parse_date_time(d).ok_or_else(|| {
                ImapError::bad(format!(
                    "{d:?} is not a date-time like \"01-Feb-2024 10:00:00 +0000\""
                ))
            })?,
        };
        if message.is_empty() {
            return Err(ImapError::no("CANNOT", "the message is empty"));
        }
        let max = self.shared.config.limits.max_message_size;
        if message.len() as u64 > max {
            return Err(ImapError::no(
                "TOOBIG",
                format!("the message is over the limit of {max} octets"),
            ));
        }
        let info = self.must_mailbox(name, "TRYCREATE").await?;
        // RFC 9208 §4.3: refused before anything is stored when it would not fit.
        if let Some(u) = self.quota().await? {
            let size = message.len() as u64;
            if !u.fits(size) {
                return Err(quota::over_quota(&u, size, "the message"));
            }
        }
        let id = info.id;
        let (uv, uid) = self
            .store(move |s| s.append_message(id, &message, bits, &kws, when))
            .await?;
        // RFC 4315 §3 APPENDUID.
        Ok(Done::Ok(format!("[APPENDUID {uv} {uid}] APPEND completed")))
    }

    // ------------------------------------------------------------ QUOTA (RFC 9208)

    /// The account's usage and limit, `None` when it has no limit.
    async fn quota(&self) -> Result<Option<crate::delivery::QuotaUsage>, ImapError> {
        let Some(account) = self.account().cloned() else {
            return Ok(None);
        };
        let shared = self.shared.clone();
        self.store(move |s| {
            // The account as stored now: `mailroom user quota` may have changed its limit
            // since LOGIN, and the change counts at once.
            let current = s.account_by_id(account.id)?.unwrap_or(account);
            crate::delivery::quota_usage(s, &shared.config, &current)
        })
        .await
    }

    /// GETQUOTAROOT (RFC 9208 §4.1.2): every mailbox has the account's root `""`.
    async fn get_quota_root(&mut self, name: &str) -> Result<Done, ImapError> {
        let info = self.must_mailbox(name, "NONEXISTENT").await?;
        let usage = self.quota().await?;
        let wire = self.name_to_wire(&info.name).into_owned();
        let lines = quota::quotaroot_response(&wire, usage.as_ref());
        self.conn.send(&lines);
        ok("GETQUOTAROOT completed")
    }

    /// GETQUOTA (RFC 9208 §4.1.1): only `""`, and only when the account has a limit.
    async fn get_quota(&mut self, root: &str) -> Result<Done, ImapError> {
        if root != quota::ROOT {
            return Err(quota::no_such_root(root, false));
        }
        match self.quota().await? {
            Some(u) => {
                self.conn.send(&quota::quota_line(&u));
                ok("GETQUOTA completed")
            }
            None => Err(quota::no_such_root(root, true)),
        }
    }

    // ------------------------------------------------------------ IDLE (RFC 2177)

    async fn idle(&mut self) -> Result<Done, ImapError> {
        self.send_line("+ idling; send DONE to stop");
        let started = Instant::now();
        let limit = self.conn.idle;
        loop {
            if self.selected().is_none() {
                // Not selected: no sync, but the account is still checked at every poll.
                self.verify().await?;
            }
            self.sync(true).await?;
            if self.conn.flush().await.is_err() {
                return Ok(Done::Close);
            }
            match tokio::time::timeout(IDLE_POLL, self.conn.next_line()).await {
                Err(_) => {
                    if started.elapsed() > limit {
                        self.send_line("* BYE autologout: idle for too long");
                        return Ok(Done::Close);
                    }
                }
                Ok(Event::Line(Ok(l))) => {
                    let text = String::from_utf8_lossy(&l).trim().to_string();
                    self.conn.trace.client(&text);
                    if text.eq_ignore_ascii_case("DONE") {
                        return Ok(Done::Ok("IDLE terminated".into()));
                    }
                    return Err(ImapError::bad("expected DONE to end IDLE"));
                }
                Ok(Event::Line(Err(_))) => {
                    return Err(ImapError::bad("expected DONE to end IDLE"));
                }
                Ok(Event::Shutdown) => {
                    self.send_line("* BYE the server is shutting down; reconnect later");
                    return Ok(Done::Close);
                }
                Ok(Event::Timeout) => {
                    self.send_line("* BYE autologout: idle for too long");
                    return Ok(Done::Close);
                }
                Ok(Event::Closed) => return Ok(Done::Close),
            }
        }
    }

    // ------------------------------------------------------------ selected state

    async fn expunge(
        &mut self,
        uids: Option<mailroom_proto::imap::SeqSet>,
    ) -> Result<Done, ImapError> {
        self.sync(true).await?;
        let Some(sel) = self.selected() else {
            return Err(ImapError::bad("no mailbox selected"));
        };
        if sel.read_only {
            return Err(ImapError::no(
                "READ-ONLY",
                "the mailbox was opened with EXAMINE",
            ));
        }
        let largest = sel.msgs.last().map_or(0, |m| m.uid);
        let ranges = uids.as_ref().map(|s| s.normalized(largest));
        let targets: Vec<u32> = sel
            .msgs
            .iter()
            .filter(|m| m.flags.contains(Flags::DELETED))
            .filter(|m| {
                ranges
                    .as_ref()
                    .is_none_or(|r| mailroom_proto::imap::SeqSet::in_normalized(r, m.uid))
            })
            .map(|m| m.uid)
            .collect();
        let id = sel.id;
        let removed = if targets.is_empty() {
            Vec::new()
        } else {
            self.store(move |s| s.expunge(id, &targets)).await?
        };
        if let Some(sel) = self.selected() {
            let lines = sel.remove_uids(&removed);
            for l in lines {
                self.send_line(&l);
            }
        }
        ok("EXPUNGE completed")
    }

    async fn fetch(
        &mut self,
        uid: bool,
        set: &mailroom_proto::imap::SeqSet,
        mut items: Vec<FetchAtt>,
        changed_since: Option<u64>,
    ) -> Result<Done, ImapError> {
        // RFC 7162 §3.1.4: MODSEQ and CHANGEDSINCE enable CONDSTORE; CHANGEDSINCE implies
        // MODSEQ.
        if changed_since.is_some() && !items.contains(&FetchAtt::ModSeq) {
            items.push(FetchAtt::ModSeq);
        }
        if items.contains(&FetchAtt::ModSeq) {
            self.condstore = true;
        }
        let condstore = self.condstore;
        // Bring in new messages first, so "1:*" covers what just arrived.
        self.sync(uid).await?;
        let Some(sel) = self.selected() else {
            return Err(ImapError::bad("no mailbox selected"));
        };
        let mut idx = sel.resolve(set, uid)?;
        if let Some(since) = changed_since {
            idx.retain(|&i| sel.msgs[i].modseq > since);
        }
        // RFC 9051 §6.4.5: BODY[...] (not PEEK), RFC822 and RFC822.TEXT set \Seen.
        let sets_seen = !sel.read_only
            && items.iter().any(|i| {
                matches!(
                    i,
                    FetchAtt::BodySection { peek: false, .. }
                        | FetchAtt::Binary { peek: false, .. }
                        | FetchAtt::Rfc822
                        | FetchAtt::Rfc822Text
                )
            });
        let mut newly_seen: Vec<u32> = Vec::new();
        if sets_seen {
            let unseen: Vec<u32> = idx
                .iter()
                .map(|&i| &sel.msgs[i])
                .filter(|m| !m.gone && !m.flags.contains(Flags::SEEN))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let id = sel.id;
                let (changed, _) = self
                    .store(move |s| s.store_flags(id, &unseen, FlagOp::Add, Flags::SEEN, &[], None))
                    .await?;
                if let Some(sel) = self.selected() {
                    for m in &changed {
                        sel.update(m);
                        newly_seen.push(m.uid);
                    }
                }
            }
        }
        let Some(sel) = self.selected() else {
            return Err(ImapError::bad("no mailbox selected"));
        };
        let job = fetch::FetchJob {
            mailbox: sel.id,
            items,
            msgs: idx
                .iter()
                .map(|&i| {
                    let m = sel.msgs[i].clone();
                    let add = newly_seen.contains(&m.uid);
                    (i + 1, m, add)
                })
                .filter(|(_, m, _)| !m.gone)
                .collect(),
            uid,
            condstore,
        };
        let shared = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            fetch::run_fetch(shared.store.as_ref(), &shared.imap, &job)
        })
        .await;
        let responses = match res {
            Ok(Ok(r)) => r,
            Ok(Err(fetch::FetchFail::Store(e))) => return Err(ImapError::store(e)),
            Ok(Err(fetch::FetchFail::UnknownCte)) => {
                return Err(ImapError::no(
                    "UNKNOWN-CTE",
                    "a part has a Content-Transfer-Encoding this server cannot decode; fetch it with BODY[] instead",
                ))
            }
            Err(_) => return Err(ImapError::no("SERVERBUG", "internal error while fetching")),
        };
        let mut octets = 0usize;
        for r in &responses {
            octets += r.len();
            if self.conn.send_raw(r).await.is_err() {
                return Ok(Done::Close);
            }
        }
        self.conn.trace.server(
            format!(
                "<{} FETCH responses, {octets} octets, not traced>\r\n",
                responses.len()
            )
            .as_bytes(),
        );
        ok(if uid {
            "UID FETCH completed"
        } else {
            "FETCH completed"
        })
    }

    async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<SearchReturn>,
        charset: Option<String>,
        key: mailroom_proto::imap::SearchKey,
    ) -> Result<Done, ImapError> {
        if let Some(cs) = &charset {
            let c = cs.to_ascii_uppercase();
            if c != "UTF-8" && c != "US-ASCII" {
                // RFC 9051 §6.4.4 BADCHARSET.
                return Err(ImapError::no(
                    "BADCHARSET (UTF-8 US-ASCII)",
                    format!("charset {cs} is not supported; use UTF-8"),
                ));
            }
        }
        let uses_modseq = key_uses_modseq(&key);
        if uses_modseq {
            self.condstore = true;
        }
        self.sync(uid).await?;
        let Some(sel) = self.selected() else {
            return Err(ImapError::bad("no mailbox selected"));
        };
        let job = fetch::SearchJob {
            mailbox: sel.id,
            key,
            msgs: sel.msgs.clone(),
        };
        let uids: Vec<u32> = sel.msgs.iter().map(|m| m.uid).collect();
        let modseqs: Vec<u64> = sel.msgs.iter().map(|m| m.modseq).collect();
        let shared = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            fetch::run_search(shared.store.as_ref(), &shared.imap, &job)
        })
        .await;
        let hits = match res {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Err(ImapError::store(e)),
            Err(_) => return Err(ImapError::no("SERVERBUG", "internal error while searching")),
        };
        let nums: Vec<u32> = hits
            .iter()
            .map(|&s| if uid { uids[s - 1] } else { s as u32 })
            .collect();
        // RFC 7162 §3.1.5: a search with MODSEQ reports the highest mod-sequence found.
        let highest = if uses_modseq {
            hits.iter().map(|&s| modseqs[s - 1]).max()
        } else {
            None
        };
        if ret.is_some() || self.rev2 {
            // RFC 4731 / RFC 9051 §7.3.4 ESEARCH.
            let r = ret.unwrap_or_default();
            let all = r.all || !(r.min || r.max || r.count);
            let mut line = format!("* ESEARCH (TAG \"{tag}\")");
            if uid {
                line.push_str(" UID");
            }
            if r.min {
                if let Some(m) = nums.iter().min() {
                    line.push_str(&format!(" MIN {m}"));
                }
            }
            if r.max {
                if let Some(m) = nums.iter().max() {
                    line.push_str(&format!(" MAX {m}"));
                }
            }
            if r.count {
                line.push_str(&format!(" COUNT {}", nums.len()));
            }
            if all && !nums.is_empty() {
                let mut sorted = nums.clone();
                sorted.sort_unstable();
                line.push_str(&format!(" ALL {}", compress(&sorted)));
            }
            if let Some(h) = highest {
                line.push_str(&format!(" MODSEQ {h}"));
            }
            self.send_line(&line);
        } else {
            let list: Vec<String> = nums.iter().map(|n| n.to_string()).collect();
            let line = match (list.is_empty(), highest) {
                (true, _) => "* SEARCH".to_string(),
                (false, Some(h)) => format!("* SEARCH {} (MODSEQ {h})", list.join(" ")),
                (false, None) => format!("* SEARCH {}", list.join(" ")),
            };
            self.send_line(&line);
        }
        ok(if uid {
            "UID SEARCH completed"
        } else {
            "SEARCH completed"
        })
    }

    async fn store_cmd(
        &mut self,
        uid: bool,
        set: &mailroom_proto::imap::SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: &[mailroom_proto::imap::Flag],
        unchanged_since: Option<u64>,
    ) -> Result<Done, ImapError> {
        let (bits, kws) = split_flags(flags)?;
        if unchanged_since.is_some() {
            self.condstore = true;
        }
        let condstore = self.condstore;
        self.sync(uid).await?;
        let Some(sel) = self.selected() else {
            return Err(ImapError::bad("no mailbox selected"));
        };
        if sel.read_only {
            return Err(ImapError::no(
                "READ-ONLY",
                "the mailbox was opened with EXAMINE",
            ));
        }
        let idx = sel.resolve(set, uid)?;
        let uids: Vec<u32> = idx
            .iter()
            .map(|&i| &sel.msgs[i])
            .filter(|m| !m.gone)
            .map(|m| m.uid)
            .collect();
        let id = sel.id;
        let op = match mode {
            StoreMode::Replace => FlagOp::Replace,
            StoreMode::Add => FlagOp::Add,
            StoreMode::Remove => FlagOp::Remove,
        };
        let targets = uids.clone();
        let (changed, modified) = if targets.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            self.store(move |s| s.store_flags(id, &targets, op, bits, &kws, unchanged_since))
                .await?
        };
        let mut lines = Vec::new();
        let mut modified_set: Vec<u32> = Vec::new();
        if let Some(sel) = self.selected() {
            for m in &changed {
                sel.update(m);
            }
            // A keyword this STORE created is announced before the FETCH that shows it.
            if sel.learn_keywords() {
                lines.extend(sel.flags_lines());
            }
            for u in &uids {
                let Some(s) = sel.seq_of_uid(*u) else {
                    continue;
                };
                if modified.contains(u) {
                    modified_set.push(if uid { *u } else { s as u32 });
                    continue;
                }
                let m = &sel.msgs[s - 1];
                let modseq = if condstore {
                    format!(" MODSEQ ({})", m.modseq)
                } else {
                    String::new()
                };
                if !silent {
                    // RFC 9051 §6.4.6: the new flags of every message in the set.
                    lines.push(format!(
                        "* {s} FETCH (FLAGS {} UID {}{modseq})",
                        m.flag_list(),
                        m.uid
                    ));
                } else if condstore && changed.iter().any(|c| c.uid == *u) {
                    // RFC 7162 §3.1.3: the new MODSEQ even with .SILENT.
                    lines.push(format!("* {s} FETCH (UID {}{modseq})", m.uid));
                }
            }
        }
        for l in lines {
            self.send_line(&l);
        }
        let word = if uid { "UID STORE" } else { "STORE" };
        if !modified_set.is_empty() {
            modified_set.sort_unstable();
            // RFC 7162 §3.1.3: these were changed since UNCHANGEDSINCE and left alone.
            return Ok(Done::Ok(format!(
                "[MODIFIED {}] {word} completed, except for messages changed meanwhile",
                compress(&modified_set)
            )));
        }
        ok(&format!("{word} completed"))
    }

    async fn copy(
        &mut self,
        uid: bool,
        set: &mailroom_proto::imap::SeqSet,
        target: &str,
        is_move: bool,
    ) -> Result<Done, ImapError> {
        let word = match (uid, is_move) {
            (false, false) => "COPY",
            (true, false) => "UID COPY",
            (false, true) => "MOVE",
            (true, true) => "UID MOVE",
        };
        let dest = self.must_mailbox(target, "TRYCREATE").await?;
        let Some(sel) = self.selected() else {
            return Err(ImapError::bad("no mailbox selected"));
        };
        if is_move && sel.read_only {
            return Err(ImapError::no(
                "READ-ONLY",
                "the mailbox was opened with EXAMINE",
            ));
        }
        let idx = sel.resolve(set, uid)?;
        let picked: Vec<(u32, u64)> = idx
            .iter()
            .map(|&i| &sel.msgs[i])
            .filter(|m| !m.gone)
            .map(|m| (m.uid, m.size))
            .collect();
        let uids: Vec<u32> = picked.iter().map(|p| p.0).collect();
        let octets: u64 = picked.iter().map(|p| p.1).sum();
        let src = sel.id;
        if uids.is_empty() {
            return ok(&format!("{word} completed (no messages)"));
        }
        // RFC 9208 §4.3: a COPY adds the messages' sizes to the account's usage and is refused
        // when they do not fit. A MOVE stays within the account and changes nothing (the
        // copy and the removal are one transaction), so it is never refused: an account over
        // its quota can still move mail to Trash, which is how clients delete.
        if !is_move {
            if let Some(u) = self.quota().await? {
                if !u.fits(octets) {
                    let what = if uids.len() == 1 {
                        "the message".to_string()
                    } else {
                        format!("the {} messages", uids.len())
                    };
                    return Err(quota::over_quota(&u, octets, &what));
                }
            }
        }
        let dest_id = dest.id;
        let (uv, pairs) = self
            .store(move |s| s.copy_messages(src, &uids, dest_id, is_move))
            .await?;
        if pairs.is_empty() {
            return ok(&format!("{word} completed (no messages)"));
        }
        let from: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let to: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        // RFC 4315 §3 COPYUID (the source set in the order of the target UIDs).
        let code = format!("[COPYUID {uv} {} {}]", join_uids(&from), compress(&to));
        if is_move {
            // RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs.
            self.send_line(&format!("* OK {code} moved"));
            if let Some(sel) = self.selected() {
                let lines = sel.remove_uids(&from);
                for l in lines {
                    self.send_line(&l);
                }
            }
            return ok(&format!("{word} completed"));
        }
        Ok(Done::Ok(format!("{code} {word} completed")))
    }
}

fn key_uses_modseq(k: &mailroom_proto::imap::SearchKey) -> bool {
    use mailroom_proto::imap::SearchKey as K;
    match k {
        K::ModSeq(_) => true,
        K::Not(a) => key_uses_modseq(a),
        K::Or(a, b) => key_uses_modseq(a) || key_uses_modseq(b),
        K::And(v) => v.iter().any(key_uses_modseq),
        _ => false,
    }
}

fn join_uids(u: &[u32]) -> String {
    compress(u)
}

/// How a command ended when it did not fail.
enum Done {
    /// Untagged data is queued; send `tag OK <text>` after the sync.
    Ok(String),
    /// The command sent its own tagged reply.
    Replied,
    Close,
}

fn ok(text: &str) -> Result<Done, ImapError> {
    Ok(Done::Ok(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octets_in_response_texts() {
        assert_eq!(show_octets(b"Entw&APw-rfe"), "\"Entw&APw-rfe\"");
        assert_eq!(show_octets("Entwü".as_bytes()), "\"Entw\\xC3\\xBC\"");
        assert_eq!(show_octets(b"a\"b\\\t"), "\"a\\\"b\\\\\\x09\"");
        let long = show_octets(&[b'x'; 100]);
        assert!(long.ends_with("x...\"") && long.len() == 85, "{long}");
    }

    #[test]
    fn names_and_patterns() {
        assert_eq!(normalize_mailbox("inbox"), "INBOX");
        assert_eq!(normalize_mailbox("Inbox/Sub"), "INBOX/Sub");
        assert_eq!(normalize_mailbox("Inboxes"), "Inboxes");
        assert_eq!(normalize_mailbox("Work/"), "Work");
        assert!(pattern_match(b"*", b"a/b"));
        assert!(pattern_match(b"%", b"a"));
        assert!(!pattern_match(b"%", b"a/b"));
        assert!(pattern_match(b"a/%", b"a/b"));
        assert!(pattern_match(b"INBOX", b"INBOX"));
        assert!(!pattern_match(b"S%", b"Drafts"));
        assert!(pattern_match(b"%/%", b"a/b"));
        assert!(!pattern_match(b"%b", b"a/b"));
        assert!(pattern_match(b"*b", b"a/b"));
        assert!(pattern_match(b"a%", b"a"));
        assert!(!pattern_match(b"a", b"ab"));
        assert_eq!(normalize_mailbox("abcdé"), "abcdé");
        assert_eq!(normalize_mailbox("é"), "é");
        // Patterns match names after decoding: wildcards stop at character boundaries.
        assert!(pattern_match("Entwü*".as_bytes(), "Entwürfe".as_bytes()));
        assert!(pattern_match("%ü%".as_bytes(), "Entwürfe".as_bytes()));
        assert!(pattern_match(
            "Привет/%".as_bytes(),
            "Привет/台北".as_bytes()
        ));
        assert!(!pattern_match("%北".as_bytes(), "Привет/台北".as_bytes()));
        assert!(!pattern_match("Entwu*".as_bytes(), "Entwürfe".as_bytes()));
        let hostile = "*a".repeat(2000);
        assert!(!pattern_match(
            hostile.as_bytes(),
            "a".repeat(1000).as_bytes()
        ));
    }
}
