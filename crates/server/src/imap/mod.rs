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
//! [`error::ImapError::to_response`].
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
//!
//! # Where things are
//!
//! One `Session` type, its `impl` split by command family over these files:
//!
//! | Command                                                          | File           |
//! |------------------------------------------------------------------|----------------|
//! | CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE, ENABLE, ID, LOGOUT    | `auth.rs`      |
//! | NOOP, CHECK (the sync after every command does their work)       | `mod.rs`       |
//! | SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, | `mailboxes.rs` |
//! | NAMESPACE                                                        | `mailboxes.rs` |
//! | APPEND (with MULTIAPPEND)                                        | `append.rs`    |
//! | APPEND's CATENATE parts and their URLs (RFC 4469)                | `catenate.rs`  |
//! | LIST, LSUB, STATUS                                               | `list.rs`      |
//! | CLOSE, UNSELECT, EXPUNGE, STORE, COPY, MOVE (and the UID forms)  | `messages.rs`  |
//! | FETCH, UID FETCH                                                 | `fetch.rs`     |
//! | SEARCH, UID SEARCH                                               | `search.rs`    |
//! | SORT, THREAD (and the UID forms; ESORT, CONTEXT=SORT's PARTIAL)  | `sort.rs`      |
//! | GETQUOTA, GETQUOTAROOT, SETQUOTA                                 | `quota.rs`     |
//! | IDLE                                                             | `idle.rs`      |
//! | NOTIFY (RFC 5465; its STATUS at every sync point)                | `notify.rs`    |
//! | SELECT's QRESYNC parameter, UID FETCH's VANISHED (RFC 7162 §3.2)  | `qresync.rs`   |
//! | CANCELUPDATE; RETURN (UPDATE)'s ADDTO / REMOVEFROM (RFC 5267 §4)   | `updates.rs`   |
//!
//! And what the commands stand on:
//!
//! | File          | What it holds                                                      |
//! |---------------|--------------------------------------------------------------------|
//! | `mod.rs`      | the session and its states, the command loop, `command`, `dispatch` |
//! | `framing.rs`  | a command off the wire: lines, literals and their limits, the trace |
//! | `sync.rs`     | `verify` before every command, `sync` after it (untagged updates)  |
//! | `names.rs`    | mailbox names on the wire (modified UTF-7 or UTF-8), INBOX, checks |
//! | `selected.rs` | the selected mailbox as this session knows it                      |
//! | `cache.rs`    | caches shared by all sessions; a message's octets loaded lazily    |
//! | `listing.rs`  | the listings of large mailboxes that SELECT starts from            |
//! | `error.rs`    | `ImapError`, the one place failures become tagged replies          |
//!
//! Every response is built as a [`Response`] and written by its one encoder
//! (`mailroom_proto::imap::response`, `Session::respond`): no line here is formatted by
//! hand. FETCH responses are encoded on the blocking thread that reads the messages
//! (`fetch.rs`) and queued untraced.
//!
//! `Session::command` runs every command the same way: parse, `verify`, `dispatch`, `sync`,
//! the tagged reply. `Session::fail` sends every failure and counts the BADs
//! (`limits.max_errors`, with [`crate::session::ErrorCount`]). What every protocol's sessions
//! need in the same shape comes from the session toolkit, [`crate::session`]: the
//! `auth_require_tls` policy, the STARTTLS swap and the SASL response reader (used in
//! `auth.rs`), the BAD counter and the reporting of failed logins.

mod append;
mod auth;
mod cache;
mod catenate;
mod context;
mod error;
pub mod fetch;
mod framing;
mod idle;
mod list;
mod listing;
mod mailboxes;
mod messages;
mod names;
mod notify;
mod qresync;
mod quota;
mod search;
mod selected;
mod sort;
mod sync;
#[cfg(test)]
mod tests;
mod updates;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailroom_proto::imap::response::{Response, Status};
use mailroom_proto::imap::{parse_command, Assembler, CommandBody, ListOptions, ParseError};
use mailroom_proto::line::LineError;
use mailroom_store::{Account, AccountId, MailStore, Store, StoreError};
use tokio::sync::watch;

use crate::conn::{Conn, Event, Trace};
use crate::session::{ErrorCount, LoginFailures};
use crate::Shared;
pub use cache::ImapShared;
// For the HTTP API: the one search engine, over a mailbox snapshot and a parsed key.
use error::ImapError;
pub use search::{run_search, SearchJob};
pub use selected::Msg;
use selected::Selected;

/// RFC 9051 §5.4: the autologout timer is at least 30 minutes.
const AUTOLOGOUT_MIN: Duration = Duration::from_secs(30 * 60);
/// A command line (and a command's text without literals) may be this long: UID sets from
/// synchronising clients get long (RFC 7162 §4 suggests at least 8192 octets).
const MAX_COMMAND_TEXT: usize = 64 * 1024;

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
    /// ENABLE QRESYNC was seen (RFC 7162 §3.2.3): expunges are reported as VANISHED, SELECT
    /// takes the QRESYNC parameter. See `qresync.rs`.
    qresync: bool,
    asm: Assembler,
    /// The share of the memory budget held by an APPEND's literals while they are read and
    /// until the command is done (`limits.max_incoming_memory`).
    append_held: Option<crate::budget::Reservation>,
    /// BADs, counted against `limits.max_errors`.
    errors: ErrorCount,
    /// Failed logins (`limits.max_auth_failures`).
    logins: LoginFailures,
    /// The NOTIFY SET in force (RFC 5465), see `notify.rs`.
    notify: Option<notify::Notify>,
    /// What `verify` read before a command that changes nothing (CAPABILITY, LIST, STATUS,
    /// ...): the sync after it uses that instead of reading again (`sync.rs`). A change that
    /// another session makes meanwhile is reported at the next command, as RFC 9051 §7
    /// allows; NOOP, IDLE and every command that changes something read afresh.
    checked: Option<Option<mailroom_store::MailboxInfo>>,
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
        qresync: false,
        asm: Assembler::new(),
        append_held: None,
        errors: ErrorCount::default(),
        logins: LoginFailures::default(),
        notify: None,
        checked: None,
    };
    // RFC 9051 §7.1.1 greeting with the capabilities (saves a round trip).
    let code = s.capability_code();
    s.respond(&Response::untagged(
        Status::Ok,
        Some(&code),
        "mailroom IMAP4 server ready",
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
                s.bye("autologout: no command for too long");
                Flow::Close
            }
            Event::Shutdown => {
                s.bye("the server is shutting down; reconnect later");
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

impl Session {
    /// Queues one response (traced), written by the encoder.
    fn respond(&mut self, r: &Response) {
        self.conn.send(&r.to_bytes());
    }

    /// `* BYE text` (RFC 9051 §7.1.5): the session is about to close.
    fn bye(&mut self, text: &str) {
        self.respond(&Response::untagged(Status::Bye, None, text));
    }

    fn account(&self) -> Option<&Account> {
        match &self.state {
            State::NotAuthenticated => None,
            State::Authenticated(a) | State::Selected(a, _) => Some(a),
        }
    }

    /// The logged-in account's id, for a command of the authenticated state.
    fn account_id(&self) -> Result<AccountId, ImapError> {
        self.account()
            .map(|a| a.id)
            .ok_or_else(|| ImapError::bad("log in first"))
    }

    fn selected(&mut self) -> Option<&mut Selected> {
        match &mut self.state {
            State::Selected(_, s) => Some(s),
            _ => None,
        }
    }

    /// The selected mailbox, for a command of the selected state.
    fn must_selected(&mut self) -> Result<&mut Selected, ImapError> {
        self.selected()
            .ok_or_else(|| ImapError::bad("no mailbox selected"))
    }

    /// Sends the reply of a failure; too many BADs end the session.
    fn fail(&mut self, tag: Option<&str>, e: ImapError) -> Flow {
        if e.is_bad() && self.errors.count(&self.shared) {
            self.respond(&e.to_response(tag));
            let max = self.shared.config.limits.max_errors;
            self.bye(&format!(
                "too many bad commands ({max}); closing the connection"
            ));
            return Flow::Close;
        }
        self.respond(&e.to_response(tag));
        if e.is_bye() {
            self.conn.trace.note(&format!("closing: {e}"));
            return Flow::Close;
        }
        Flow::Continue
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
        // RFC 9051 §7.5.1: no EXPUNGE responses while answering FETCH, STORE or SEARCH
        // (nor SORT or THREAD, whose answers are sequence numbers too: RFC 5256 §3).
        let allow_expunge = !matches!(
            cmd.body,
            CommandBody::Fetch { uid: false, .. }
                | CommandBody::Store { uid: false, .. }
                | CommandBody::Search { uid: false, .. }
        ) && !sort::sequence_numbered(&cmd.body);
        // A session acts only for the account that logged in and on the mailbox it selected:
        // both are checked before every command (and by every sync, IDLE's polls included).
        let changes_nothing = matches!(
            cmd.body,
            CommandBody::Capability
                | CommandBody::List { .. }
                | CommandBody::Lsub { .. }
                | CommandBody::Namespace
                | CommandBody::Status { .. }
                | CommandBody::Id(_)
                | CommandBody::GetQuota(_)
                | CommandBody::GetQuotaRoot(_)
        );
        self.checked = None;
        match self.verify().await {
            Err(e) => return self.fail(Some(&tag), e),
            Ok(info) if changes_nothing => self.checked = Some(info),
            Ok(_) => {}
        }
        let result = self.dispatch(&tag, cmd.body).await;
        match result {
            Ok(Done::Ok { code, text }) => {
                if let Err(e) = self.sync(allow_expunge).await {
                    return self.fail(Some(&tag), e);
                }
                self.respond(&Response::tagged(&tag, Status::Ok, code.as_deref(), text));
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

    async fn dispatch(&mut self, tag: &str, body: CommandBody) -> Result<Done, ImapError> {
        use CommandBody as C;
        // Commands valid in every state (RFC 9051 §6.1).
        match body {
            C::Capability => return self.capability(),
            C::Noop => return ok("NOOP completed"),
            C::Logout => return self.logout(tag),
            C::Id(params) => return self.id(&params),
            _ => {}
        }
        if let State::NotAuthenticated = self.state {
            return self.not_authenticated(tag, body).await;
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
            C::Enable(caps) => return self.enable(caps),
            C::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                self.check_qresync_param(qresync.is_some())?;
                self.condstore |= condstore;
                let done = self.select(&mailbox, read_only).await?;
                self.resync(qresync.as_ref()).await?;
                return Ok(done);
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
            C::Namespace => return self.namespace(),
            C::Status { mailbox, items } => {
                if items.iter().any(|i| i == "HIGHESTMODSEQ") {
                    self.enable_condstore();
                }
                return self.status(&mailbox, &items).await;
            }
            C::Append { mailbox, messages } => return self.append(&mailbox, messages).await,
            C::Idle => return self.idle().await,
            C::Notify(set) => return self.notify(set).await,
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
        // RFC 5182: `$` stands for the saved search result.
        let body = match self.selected() {
            Some(sel) => context::with_saved(body, sel),
            None => body,
        };
        match body {
            C::Check => ok("CHECK completed"),
            C::CancelUpdate(tags) => self.cancel_update(&tags),
            C::Close => {
                self.close_mailbox(true).await?;
                ok("CLOSE completed")
            }
            C::Unselect => {
                self.close_mailbox(false).await?;
                ok("UNSELECT completed")
            }
            C::Expunge { uids } => self.expunge(uids).await,
            C::Search {
                uid,
                ret,
                charset,
                key,
            } => self.search(tag, uid, ret, charset, key).await,
            C::Sort(cmd) => self.sort(tag, cmd).await,
            C::Thread(cmd) => self.thread(cmd).await,
            C::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => {
                if vanished {
                    self.fetch_vanished(uid, &set, changed_since).await?;
                }
                self.fetch(uid, &set, items, changed_since).await
            }
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

    /// Runs a blocking store call on a blocking thread.
    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn MailStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ImapError> {
        let store: Store = self.shared.store.clone();
        store_outcome(tokio::task::spawn_blocking(move || f(store.as_ref())).await)
    }

    /// Runs a read of a few rows by key (the account, a mailbox row, its counters): on this
    /// thread when the store is this process's own file (an indexed SQLite read takes a few
    /// microseconds, less than handing it to a blocking thread and back, which every command
    /// pays in `verify`), else as [`Session::store`] does (a shared store is across a network).
    async fn quick<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn MailStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ImapError> {
        store_outcome(crate::session::quick_read(&self.shared.store, f).await)
    }
}

/// A store call's result as the session answers it: a store error as [`ImapError::store`]
/// says, a task that failed (a panic) as `NO [SERVERBUG]` with nothing changed.
fn store_outcome<T>(
    r: Result<Result<T, StoreError>, tokio::task::JoinError>,
) -> Result<T, ImapError> {
    match r {
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

/// How a command ended when it did not fail.
enum Done {
    /// Untagged data is queued; send `tag OK [code] text` after the sync.
    Ok {
        code: Option<String>,
        text: String,
    },
    /// The command sent its own tagged reply.
    Replied,
    Close,
}

/// `tag OK text`.
fn ok(text: &str) -> Result<Done, ImapError> {
    Ok(Done::Ok {
        code: None,
        text: text.to_string(),
    })
}

/// `tag OK [code] text`, e.g. `[APPENDUID 7 3]` (the code without its brackets).
fn ok_code(code: String, text: &str) -> Result<Done, ImapError> {
    Ok(Done::Ok {
        code: Some(code),
        text: text.to_string(),
    })
}
