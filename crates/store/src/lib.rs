//! The durable mail store of mailroom.
//!
//! Protocol code sees only the [`MailStore`] trait and the plain data types in this module; the
//! embedded SQLite backend ([`sqlite::SqliteStore`]) is the default, and the PostgreSQL backend
//! ([`postgres::PgStore`]) lets several mailroom nodes share one store; the protocol drivers
//! see no difference.
//!
//! # Durability
//! Every method that changes state returns only once the change is on disk: both backends run
//! all writes on one writer thread (per process) that batches concurrent requests into a
//! single transaction (group commit), so fifty sessions that finish DATA at the same moment
//! share one fsync instead of paying fifty.
//!
//! # Model
//! - An **account** is an address (`alice@example.test`) with an argon2 password hash; its domain
//!   is a local domain. Every account has mailboxes: INBOX plus the RFC 6154 special-use folders.
//! - A **mailbox** has a UIDVALIDITY, a UIDNEXT and a HIGHESTMODSEQ (RFC 9051 §2.3.1.1, RFC 7162).
//! - A **message** is stored once as raw octets; mailbox entries and queue entries refer to it by
//!   id, so a message to many local recipients costs one blob.
//! - The **outbound queue** holds a message, its envelope sender and one row per recipient with
//!   its own state, attempts and next attempt time.

#[cfg(test)]
mod backend_tests;
pub mod check;
pub mod files;
pub mod password;
pub mod postgres;
pub mod sqlite;
pub mod stats;
pub mod testing;

use std::sync::Arc;

/// The store handle every server component holds.
pub type Store = Arc<dyn MailStore>;

/// A store call that resolves without a thread waiting on it (see [`MailStore::deliver_async`]).
pub type StoreFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>;

/// A write job's result as the writer thread produces it (both backends).
pub(crate) type JobResult = Result<Box<dyn std::any::Any + Send>>;

/// Receives a write job's result once its transaction committed (or failed): a waiting
/// thread's channel, or an async caller's oneshot.
pub(crate) type Reply = Box<dyn FnOnce(JobResult) + Send>;

/// A reply that a blocking caller waits for, and what it waits on.
pub(crate) fn blocking_reply() -> (Reply, std::sync::mpsc::Receiver<JobResult>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    (
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
        rx,
    )
}

/// A reply that an async caller awaits, and what it awaits.
pub(crate) fn async_reply() -> (Reply, tokio::sync::oneshot::Receiver<JobResult>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    (
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
        rx,
    )
}

/// A write job's result as the type its caller expects.
pub(crate) fn downcast<T: 'static>(r: JobResult) -> Result<T> {
    r?.downcast::<T>()
        .map(|b| *b)
        .map_err(|_| StoreError::Invalid("internal: write result type".into()))
}

/// Runs a blocking store call on a blocking thread (the default of the `_async` methods).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Invalid(format!("internal: a store call failed: {e}")))?
}

/// Opens (creating if needed) the embedded store in `data_dir`.
pub fn open(data_dir: &std::path::Path) -> Result<Store, StoreError> {
    Ok(Arc::new(sqlite::SqliteStore::open(data_dir)?))
}

/// Opens the store the config names: the PostgreSQL database at `url` when there is one
/// (`store = "postgres://..."`), else the embedded store in `data_dir`.
pub fn open_configured(url: Option<&str>, data_dir: &std::path::Path) -> Result<Store, StoreError> {
    match url {
        Some(u) if postgres::is_postgres_url(u) => Ok(Arc::new(postgres::PgStore::open(u)?)),
        Some(u) => Err(StoreError::Invalid(format!(
            "store = \"{}\" is not a PostgreSQL URL; write postgres://user@host:5432/database, or leave store out for the embedded store in data_dir",
            postgres::redact_url(u)
        ))),
        None => open(data_dir),
    }
}

/// A lock the store holds until this is dropped (see [`MailStore::lock_maildrop`]).
pub struct HeldLock(Option<Box<dyn FnOnce() + Send + Sync>>);

impl HeldLock {
    /// A lock released by running `release` when dropped.
    pub fn new(release: impl FnOnce() + Send + Sync + 'static) -> HeldLock {
        HeldLock(Some(Box::new(release)))
    }

    /// A lock that needs no releasing (a store only one process uses).
    pub fn local() -> HeldLock {
        HeldLock(None)
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

impl std::fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldLock")
    }
}

/// Errors of the store. Protocol drivers map them to replies in one place each.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the store is shut down")]
    Closed,
    /// The disk (or the file system quota) is full: the write was rolled back, nothing of it
    /// is stored. Temporary: the same write succeeds once space is freed.
    #[error("storage full: {0}")]
    StorageFull(String),
}

impl StoreError {
    /// The write failed for want of space (SQLITE_FULL, ENOSPC, EDQUOT), so nothing of it was
    /// stored and it may be tried again later: SMTP answers `452 4.3.1`, IMAP `NO
    /// [UNAVAILABLE]` with a text that says so.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::StorageFull(_) => true,
            StoreError::Sqlite(e) => sqlite::is_full(e),
            StoreError::Postgres(e) => postgres::is_full(e),
            StoreError::Io(e) => io_is_full(e),
            _ => false,
        }
    }
}

/// ENOSPC or EDQUOT.
fn io_is_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

// Identifiers. The store never hands out an id twice (schema v7: AUTOINCREMENT on every
// table whose ids leave the store), so an id a session still holds after its row was deleted
// names nothing rather than somebody else's row.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

/// A mailbox as a session holds it: the account it belongs to and the mailbox's own id.
/// Every store call that takes one checks both, so a handle can only ever reach a mailbox of
/// its own account (and, ids never being reused, only the mailbox it was made for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId {
    pub account: AccountId,
    pub id: i64,
}

/// A stored message's octets. Never reused and never changed, so it is also what caches of
/// things computed from a message are keyed by. Sessions do not read by it: they read through
/// a [`MessageRef`] that names where they are entitled to see the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub i64);

/// Where a reader is entitled to see a message; the store reads a message only through the
/// place that holds it, and answers `NotFound` once it is no longer there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageRef {
    /// The message with this UID in this mailbox of this account.
    Mailbox { mailbox: MailboxId, uid: u32 },
    /// The message of this outbound queue entry (the queue runner's own reads).
    Queued(QueueId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub address: String,
    pub password_hash: String,
    /// The account's own storage quota in octets, set with `mailroom user quota` (`None`:
    /// the server's default applies; `Some(0)`: unlimited). The server decides what counts.
    pub quota: Option<u64>,
}

/// System flags as a bit set (RFC 9051 §2.3.2). `\Recent` is per session and not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(pub u32);

impl Flags {
    pub const SEEN: Flags = Flags(1);
    pub const ANSWERED: Flags = Flags(2);
    pub const FLAGGED: Flags = Flags(4);
    pub const DELETED: Flags = Flags(8);
    pub const DRAFT: Flags = Flags(16);

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
    pub fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
}

/// How `store_flags` combines the given flags with a message's flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// Special-use attributes of RFC 6154 given to the folders every new account gets.
pub const DEFAULT_FOLDERS: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    pub id: MailboxId,
    pub account: AccountId,
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub special_use: Option<String>,
    pub subscribed: bool,
    /// The highest UID a read-write IMAP session has already been told is `\Recent`
    /// (RFC 3501 §2.3.2): messages above it are recent for the next session to see them.
    pub recent_uid: u32,
}

/// What [`MailStore::vanished_since`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vanished {
    /// The expunged UIDs known from tombstones, ascending.
    pub uids: Vec<u32>,
    /// No tombstone newer than the modseq asked about was pruned: `uids` is all of them.
    pub complete: bool,
}

/// A mailbox's STATUS counts (kept with every change by triggers, in both backends) and its
/// recent messages, read from a `mailboxes` row: the same SQL in both dialects.
const COUNT_COLS: &str = "messages, unseen, deleted, size,
     (SELECT COUNT(*) FROM mailbox_messages mm
       WHERE mm.mailbox_id = mailboxes.id AND mm.uid > mailboxes.recent_uid)";

/// What [`MailStore::mailbox_changes`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailboxChanges {
    /// The messages whose modseq is above the one asked about, in UID order.
    pub changed: Vec<MessageMeta>,
    /// The UIDs expunged since. When not `complete` (tombstones that old were pruned), the
    /// caller cannot know what left and must read the whole list.
    pub vanished: Vanished,
}

/// What STATUS reports of a mailbox besides its UIDs (RFC 9051 §6.3.11, RFC 8438 SIZE).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxCounts {
    pub messages: u64,
    /// Messages without `\Seen`.
    pub unseen: u64,
    /// Messages with `\Deleted`.
    pub deleted: u64,
    /// Octets of all its messages.
    pub size: u64,
    /// Messages above the mailbox's `recent_uid` (RFC 3501 `\Recent`).
    pub recent: u64,
}

/// One message as seen in one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub message: MessageId,
    pub size: u64,
    pub flags: Flags,
    pub keywords: Vec<String>,
    /// Seconds since the Unix epoch when the message arrived (IMAP INTERNALDATE).
    pub internal_date: i64,
    pub modseq: u64,
    /// The message's last octet is a line feed (or it is empty): POP3 counts sizes with it.
    pub ends_with_lf: bool,
}

/// What one accepted SMTP transaction asks the store to keep, atomically.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The octets stored in each local recipient's INBOX (trace headers and Return-Path included).
    pub local_message: Vec<u8>,
    /// Local recipients (deduplicated by the caller).
    pub local: Vec<AccountId>,
    /// Recipients that leave this server, if any.
    pub outbound: Option<Outbound>,
    /// The SMTP dialogue that delivered the message, kept with the local copies (in the same
    /// transaction) and removed with the message; `None` for mail that came otherwise.
    pub transcript: Option<Transcript>,
}

impl Delivery {
    /// A message for the INBOXes of local accounts only: nothing outbound, no dialogue kept.
    pub fn to_inboxes(message: impl Into<Vec<u8>>, accounts: Vec<AccountId>) -> Delivery {
        Delivery {
            local_message: message.into(),
            local: accounts,
            ..Default::default()
        }
    }
}

/// Which side of an SMTP dialogue said a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `C:` the client.
    Client,
    /// `S:` the server.
    Server,
}

impl Direction {
    /// `"C"` or `"S"`.
    pub fn letter(self) -> &'static str {
        match self {
            Direction::Client => "C",
            Direction::Server => "S",
        }
    }
}

/// The recorded SMTP dialogue of the session that delivered a message: its lines with
/// secrets already masked and control characters escaped (so no line holds a line break),
/// the message data as one line standing for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    pub lines: Vec<(Direction, String)>,
    /// Lines were left out because the dialogue passed the recording limit.
    pub truncated: bool,
    /// The client's address and port.
    pub peer: String,
    /// The listener's name (`smtp`, `submission`, `submissions`).
    pub listener: String,
}

impl Transcript {
    /// The lines as the stores keep them: one `C: text` / `S: text` per line.
    pub fn encode_lines(&self) -> String {
        let mut out = String::new();
        for (dir, text) in &self.lines {
            out.push_str(dir.letter());
            out.push_str(": ");
            out.push_str(text);
            out.push('\n');
        }
        out
    }

    /// Reads [`Transcript::encode_lines`] back (a line of another form is skipped).
    pub fn decode_lines(text: &str) -> Vec<(Direction, String)> {
        text.lines()
            .filter_map(|l| {
                let (d, rest) = l.split_at_checked(3)?;
                let dir = match d {
                    "C: " => Direction::Client,
                    "S: " => Direction::Server,
                    _ => return None,
                };
                Some((dir, rest.to_string()))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Outbound {
    /// Envelope sender; empty for the null sender `<>`.
    pub sender: String,
    pub recipients: Vec<String>,
    /// The octets to relay (trace headers included, no Return-Path).
    pub message: Vec<u8>,
    /// Unix seconds of the first delivery attempt (normally now).
    pub first_attempt: i64,
    /// Claimed in the same commit until this time (a queue lease, see
    /// [`MailStore::queue_claim`]) by the caller, which hands the message to its own queue
    /// runner at once; 0: unclaimed, for the runner's next round.
    pub claim_until: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// (account, uid) of every local copy.
    pub local: Vec<(AccountId, u32)>,
    pub queued: Option<QueueId>,
    /// The queued entry as it was stored (its recipients pending, none tried yet).
    pub queued_entry: Option<QueueEntry>,
}

impl Outbound {
    /// The entry this outbound message became, given the ids the store gave it and its
    /// recipients (in the order of `recipients`) and the time it was queued.
    pub(crate) fn entry(
        &self,
        id: i64,
        message: MessageId,
        created: i64,
        rcpt_ids: &[i64],
    ) -> QueueEntry {
        QueueEntry {
            id: QueueId(id),
            message,
            sender: self.sender.clone(),
            created,
            recipients: self
                .recipients
                .iter()
                .zip(rcpt_ids)
                .map(|(r, &id)| QueueRecipient {
                    id,
                    recipient: r.clone(),
                    status: "pending".into(),
                    attempts: 0,
                    next_attempt: self.first_attempt,
                    last_error: None,
                })
                .collect(),
        }
    }
}

/// One recipient of a queued message, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecipient {
    pub id: i64,
    pub recipient: String,
    /// "pending", "delivered" or "failed".
    pub status: String,
    pub attempts: u32,
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

/// A change to one queued recipient after a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientUpdate {
    pub id: i64,
    /// The claim the attempt held ([`MailStore::queue_claim`]'s `until`): the update applies
    /// only while that claim is still the recipient's.
    pub lease: i64,
    /// "pending" (retry later), "delivered" or "failed".
    pub status: String,
    pub attempts: u32,
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub id: QueueId,
    pub message: MessageId,
    pub sender: String,
    pub created: i64,
    pub recipients: Vec<QueueRecipient>,
}

/// A message to be appended by [`MailStore::append_messages`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub data: Vec<u8>,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub internal_date: i64,
}

/// A web login session (the HTTP API's cookie), as the store keeps it: every server sharing
/// the store knows it, and it outlives a restart. The store never sees the cookie itself,
/// only its hash ([`WebSession::id_hash`] is the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// SHA-256 of the cookie's session id (hex): a copy of the table gives no usable cookie.
    pub id_hash: String,
    pub account: AccountId,
    /// A fingerprint of the account's password hash when the session began: a changed
    /// password ends the session.
    pub password_fp: String,
    /// The CSRF token returned at login.
    pub csrf: String,
    /// When the session began (unix milliseconds): the oldest of an account go first.
    pub created_ms: i64,
    /// When it ends unless used again (unix milliseconds).
    pub expires_ms: i64,
}

/// What a copy of a whole store ([`postgres::PgStore::import_from`],
/// [`sqlite::SqliteStore::import_from`]) copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub domains: usize,
    pub aliases: usize,
    pub accounts: usize,
    pub mailboxes: usize,
    /// Mailbox entries (a message in two mailboxes counts twice).
    pub messages: usize,
    /// Octets of those entries.
    pub octets: u64,
    pub queued: usize,
}

/// Web login sessions an account keeps at most ([`MailStore::session_create`] drops its
/// oldest beyond this).
pub const SESSIONS_PER_ACCOUNT: usize = 50;

/// Client addresses whose failed logins a shared store remembers at most, plus what the nodes
/// add between two prunings ([`MailStore::auth_failure_record`]).
pub const AUTH_FAILURE_KEYS: usize = 10_000;

/// The store's interface. Every method blocks; async callers run them on a blocking thread.
/// Methods that change state return only once the change is durable.
pub trait MailStore: Send + Sync + 'static {
    // ---- domains and accounts ----
    fn add_domain(&self, domain: &str) -> Result<()>;
    fn list_domains(&self) -> Result<Vec<String>>;
    /// Case-insensitive.
    fn is_local_domain(&self, domain: &str) -> Result<bool>;
    /// Creates the account, its domain if new, and its default folders.
    fn add_account(&self, address: &str, password_hash: &str) -> Result<AccountId>;
    fn set_password(&self, address: &str, password_hash: &str) -> Result<()>;
    /// Sets (or with `None` removes) the account's APOP shared secret (RFC 1939 §7). It is
    /// stored as given, apart from the password hash, since APOP needs MD5(timestamp + secret).
    /// It is never part of [`Account`], so it is not shown where accounts are.
    fn set_apop_secret(&self, address: &str, secret: Option<&str>) -> Result<()>;
    /// The account's APOP secret; `None` when it has none or there is no such account.
    fn apop_secret(&self, address: &str) -> Result<Option<String>>;
    /// Removes the account and all its mail.
    fn remove_account(&self, address: &str) -> Result<()>;
    /// Case-insensitive lookup.
    fn find_account(&self, address: &str) -> Result<Option<Account>>;
    fn list_accounts(&self) -> Result<Vec<Account>>;
    /// The accounts whose address has this local part, in any domain (case-insensitive),
    /// sorted by address: what a bare user name (`USER alice`, `VRFY alice`) can mean. An
    /// empty name or one with `@` matches none.
    fn accounts_with_local_part(&self, local: &str) -> Result<Vec<Account>>;
    /// The account with this id, as stored now (`None` once removed). Sessions check it
    /// before acting, so a removed account or a changed password ends them.
    fn account_by_id(&self, id: AccountId) -> Result<Option<Account>>;
    /// Sets (or with `None` clears) an account's own quota in octets (see [`Account::quota`]).
    fn set_quota(&self, address: &str, quota: Option<u64>) -> Result<()>;
    /// Octets the account's messages take: the sum of their sizes over all its mailboxes, a
    /// message in two mailboxes counted twice (as Dovecot's STORAGE does). Reads only the
    /// message sizes, never the messages.
    fn account_usage(&self, account: AccountId) -> Result<u64>;

    /// Removes a local domain; refused while accounts of it exist.
    fn remove_domain(&self, domain: &str) -> Result<()>;

    // ---- aliases ----
    /// `source` is an address, or `@domain` for the domain's catch-all; `target` any address.
    /// The source's domain becomes local.
    fn add_alias(&self, source: &str, target: &str) -> Result<()>;
    /// Removes one target of an alias, or all of them with `None`; returns how many went.
    fn remove_alias(&self, source: &str, target: Option<&str>) -> Result<usize>;
    /// (source, target) pairs, sorted.
    fn list_aliases(&self) -> Result<Vec<(String, String)>>;
    /// Targets of one source (case-insensitive), sorted.
    fn alias_targets(&self, source: &str) -> Result<Vec<String>>;
    /// The alias sources with this local part, in any domain (case-insensitive), sorted; never
    /// a catch-all (`@domain`). An empty name or one with `@` matches none.
    fn aliases_with_local_part(&self, local: &str) -> Result<Vec<String>>;

    // ---- delivery ----
    fn deliver(&self, delivery: Delivery) -> Result<Receipt>;
    /// [`MailStore::deliver`] for async callers: resolves once the delivery is durable. Both
    /// stores hand it to their writer and nothing waits meanwhile (a blocking thread per
    /// message, and its wake-ups, were a large share of a busy server's time); the default
    /// runs `deliver` on a blocking thread.
    fn deliver_async(self: Arc<Self>, delivery: Delivery) -> StoreFuture<Receipt> {
        Box::pin(async move { blocking(move || self.deliver(delivery)).await })
    }
    /// The SMTP dialogue kept with a message ([`Delivery::transcript`]), read through where
    /// the reader may see it: another account's mailbox answers `NotFound` like a missing
    /// message. `Ok(None)`: the message is there but came without one (APPEND, a bounce, mail
    /// stored before transcripts were kept).
    fn message_transcript(&self, message: MessageRef) -> Result<Option<Transcript>>;

    // ---- mailboxes ----
    fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxInfo>>;
    fn list_mailboxes(&self, account: AccountId) -> Result<Vec<MailboxInfo>>;
    /// Messages of a mailbox in UID order.
    fn list_messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>>;
    /// What a session that has seen the mailbox up to `since_modseq` needs to catch up: the
    /// full rows of the messages whose modseq is above it (new ones and changed flags) and the
    /// UIDs expunged since, from the tombstones ([`MailStore::vanished_since`]). Read in time
    /// proportional to the changes, not to the mailbox.
    fn mailbox_changes(&self, mailbox: MailboxId, since_modseq: u64) -> Result<MailboxChanges>;
    /// Size in octets of a stored message; `NotFound` once it is no longer where `message` says.
    fn message_size(&self, message: MessageRef) -> Result<u64>;
    /// Reads up to `buf.len()` octets at `offset`; returns how many were read (0 at the end).
    /// `NotFound` once the message is no longer where `message` says.
    fn read_message_at(&self, message: MessageRef, offset: u64, buf: &mut [u8]) -> Result<usize>;
    /// The whole message (for small messages, the queue and tests; drivers stream with
    /// `read_message_at`); `NotFound` once it is no longer where `message` says. The default
    /// reads its size, then its octets in chunks; the SQLite store reads it in one read
    /// transaction (the queue reads every message it relays).
    fn message_octets(&self, message: MessageRef) -> Result<Vec<u8>> {
        read_in_chunks(self, message)
    }
    /// Removes the given UIDs from a mailbox (missing ones are ignored); returns those removed.
    fn expunge(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<u32>>;
    /// The UIDs expunged from a mailbox after `since_modseq` (QRESYNC, RFC 7162 §3.2), from
    /// its tombstones; `complete` is false when tombstones that old were pruned (then the
    /// caller must treat every UID below UIDNEXT that is not present as possibly vanished).
    fn vanished_since(&self, mailbox: MailboxId, since_modseq: u64) -> Result<Vanished>;

    // ---- IMAP (RFC 9051) ----
    /// What an IMAP session checks before and after every command: its account as it is now
    /// and, when one is selected, that mailbox ([`MailStore::mailbox_by_id`]). One read where
    /// the backend can: the local store reads both in one transaction (one lock taken and
    /// dropped instead of two, for every command).
    fn session_state(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<(Option<Account>, Option<MailboxInfo>)> {
        let now = self.account_by_id(account)?;
        let info = match mailbox {
            Some(m) => self.mailbox_by_id(m)?,
            None => None,
        };
        Ok((now, info))
    }
    /// What STATUS reads: a mailbox by name ([`MailStore::mailbox`]) and its counts
    /// ([`MailStore::mailbox_counts`]), in one read where the backend can.
    fn mailbox_status(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<(MailboxInfo, MailboxCounts)>> {
        let Some(info) = self.mailbox(account, name)? else {
            return Ok(None);
        };
        let counts = self.mailbox_counts(info.id)?;
        Ok(Some((info, counts)))
    }
    /// A mailbox by id (`None` once deleted; never another account's).
    fn mailbox_by_id(&self, mailbox: MailboxId) -> Result<Option<MailboxInfo>>;
    /// Creates a mailbox with a fresh UIDVALIDITY; `Exists` if the name is taken.
    fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxId>;
    /// Deletes a mailbox and its messages (inferior names stay).
    fn delete_mailbox(&self, mailbox: MailboxId) -> Result<()>;
    /// Renames a mailbox and every `from/...` below it; each renamed mailbox gets a new
    /// UIDVALIDITY (RFC 9051 §6.3.6 lets a name never reuse an older, smaller one).
    fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()>;
    /// Subscribes (`on`) or unsubscribes a mailbox *name* of the account, whether or not such
    /// a mailbox exists (RFC 9051 §6.3.9); returns whether anything changed. Subscriptions
    /// outlive a deleted mailbox, follow a renamed one, and CREATE does not subscribe; an
    /// account's default folders start subscribed.
    fn subscribe(&self, account: AccountId, name: &str, on: bool) -> Result<bool>;
    /// The account's subscribed names, sorted.
    fn subscriptions(&self, account: AccountId) -> Result<Vec<String>>;
    /// What a driver stored for searching the mailbox's messages with [`put_search_data`]
    /// in this `format`: (uid, data) for each message that has it, by UID. Messages without
    /// are left out (the driver computes and puts them).
    ///
    /// [`put_search_data`]: MailStore::put_search_data
    fn search_data(&self, mailbox: MailboxId, format: u32) -> Result<Vec<(u32, Vec<u8>)>>;
    /// Keeps search data for messages of the mailbox (by UID; a UID no longer there is
    /// skipped). The data lives with the message's octets and goes with them.
    fn put_search_data(
        &self,
        mailbox: MailboxId,
        format: u32,
        entries: Vec<(u32, Vec<u8>)>,
    ) -> Result<()>;
    /// The mailbox's counts for STATUS, read from counters the store keeps (constant time).
    fn mailbox_counts(&self, mailbox: MailboxId) -> Result<MailboxCounts>;
    /// Claims the messages up to UID `up_to` as seen by a session (RFC 3501 §2.3.2: only the
    /// first session to be told of a message sees it `\Recent`). Returns the previous
    /// `recent_uid`: the messages above it and up to `up_to` are this session's recent ones.
    fn claim_recent(&self, mailbox: MailboxId, up_to: u32) -> Result<u32>;
    /// Adds a message to a mailbox; returns (UIDVALIDITY, UID).
    fn append_message(
        &self,
        mailbox: MailboxId,
        data: &[u8],
        flags: Flags,
        keywords: &[String],
        internal_date: i64,
    ) -> Result<(u32, u32)>;
    /// Adds several messages to a mailbox in one transaction (RFC 3502 MULTIAPPEND): all of
    /// them or, on any error, none. Each is (octets, flags, keywords, internal date).
    /// Returns UIDVALIDITY and the new UIDs in order.
    fn append_messages(
        &self,
        mailbox: MailboxId,
        messages: &[NewMessage],
    ) -> Result<(u32, Vec<u32>)>;
    /// Changes flags of the given UIDs (missing ones are ignored); every message whose flags
    /// changed gets a new MODSEQ. With `unchanged_since` (RFC 7162 UNCHANGEDSINCE), messages
    /// whose MODSEQ is higher are left alone and returned as the second list, checked in the
    /// same transaction. Returns the changed messages as they are now.
    fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<(Vec<MessageMeta>, Vec<u32>)>;
    /// Copies (or, with `remove`, moves) messages to another mailbox in one transaction;
    /// returns the target's UIDVALIDITY and (source UID, new UID) pairs in source UID order.
    fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
        remove: bool,
    ) -> Result<(u32, Vec<(u32, u32)>)>;

    // ---- backup ----
    /// Writes a consistent copy of the whole store to `dest` (a new file: an existing one is
    /// an error), flushed to disk, while the server keeps running; returns its size in
    /// octets. Restoring is copying it back in place of the store while the server is stopped.
    fn backup(&self, dest: &std::path::Path) -> Result<u64>;

    // ---- outbound queue ----
    fn queue_list(&self) -> Result<Vec<QueueEntry>>;
    /// Entries with at least one pending recipient that is due at `now` and not claimed by a
    /// running attempt (all their recipients are listed), the longest-due first, at most
    /// `limit`.
    fn queue_due(&self, now: i64, limit: usize) -> Result<Vec<QueueEntry>>;
    /// Claims recipients for a delivery attempt until `until` (a lease): in one statement per
    /// recipient, only those still pending, due at `now` and not claimed. Returns the ids
    /// claimed; an attempt delivers to those only, and its [`RecipientUpdate`]s carry `until`.
    fn queue_claim(&self, ids: &[i64], now: i64, until: i64) -> Result<Vec<i64>>;
    /// Extends claims: for each (recipient id, lease it holds), moves the lease to `until`
    /// only while the recipient is still pending and its claim is exactly that lease (a claim
    /// that expired and was taken by another claim is not renewed). One commit; returns the
    /// ids renewed, whose attempts then carry `until` in their [`RecipientUpdate`]s.
    fn queue_renew(&self, claims: &[(i64, i64)], until: i64) -> Result<Vec<i64>>;
    /// Drops every claim (at start-up: the attempts that held them died with the process).
    fn queue_release_claims(&self) -> Result<usize>;
    /// The earliest next attempt of any pending recipient.
    fn queue_next_due(&self) -> Result<Option<i64>>;
    /// Records attempt results and, in the same commit, stores the bounce (if any). An update
    /// whose claim is no longer held is skipped (and then so is the bounce, which the attempt
    /// that holds the claim will send). Entries left without pending recipients are removed
    /// with their message.
    fn queue_update(&self, updates: Vec<RecipientUpdate>, bounce: Option<Delivery>) -> Result<()>;
    /// [`MailStore::queue_update`] for async callers, as [`MailStore::deliver_async`].
    fn queue_update_async(
        self: Arc<Self>,
        updates: Vec<RecipientUpdate>,
        bounce: Option<Delivery>,
    ) -> StoreFuture<()> {
        Box::pin(async move { blocking(move || self.queue_update(updates, bounce)).await })
    }
    /// Makes every pending recipient due now; returns how many.
    fn queue_flush(&self) -> Result<usize>;
    /// Drops a queued message without delivering or bouncing it.
    fn queue_remove(&self, id: QueueId) -> Result<()>;
    /// Makes the pending recipients of one queued message due now (what `queue_flush` does
    /// for all of them); returns how many. `NotFound` when there is no such entry.
    fn queue_retry(&self, id: QueueId) -> Result<usize>;

    /// Rewrites the store file without its free pages and makes it give freed pages back to
    /// the disk from then on (a store made before 0.2.0 keeps them). Returns the file's size
    /// before and after. Holds the write lock while it runs: best with the server stopped.
    fn compact(&self) -> Result<(u64, u64)>;

    /// `limits.min_free_space`: new messages (deliveries, APPEND) are refused as
    /// `StorageFull` while storing them would leave less than `octets` free on the disk of the
    /// store, so deletions always find room. 0 (the default of a store just opened): no reserve.
    fn set_min_free_space(&self, octets: u64);
    /// How many tombstones of expunged UIDs each mailbox keeps for QRESYNC (the oldest beyond
    /// it are pruned at the next expunge).
    fn set_tombstones_kept(&self, n: u64);

    /// Takes the account's POP3 maildrop lock (RFC 1939 §8) for every server that shares the
    /// store; `None` while another server holds it. Dropping the [`HeldLock`] releases it, and
    /// so does the death of the process that holds it. A store only one process opens has
    /// nothing to share: the default grants it (the server's own lock table decides).
    fn lock_maildrop(&self, account: AccountId) -> Result<Option<HeldLock>> {
        let _ = account;
        Ok(Some(HeldLock::local()))
    }

    /// Calls `f` with a mailbox's row id whenever a mailbox may have changed through another
    /// server sharing the store (with -1: anything may have changed, e.g. after the
    /// notifications were interrupted), so IDLE sessions look at once instead of at their
    /// next poll. `f` runs on a store thread: it must only signal, never block. A store only
    /// this process opens has nobody else to hear of: the default never calls it.
    fn on_mailbox_change(&self, f: Box<dyn Fn(i64) + Send + Sync>) {
        let _ = f;
    }

    /// Whether several servers may use this store at once (each with its own memory): what
    /// must be the same on all of them then lives in the store. The default: only this
    /// process opens it.
    fn is_shared(&self) -> bool {
        false
    }

    /// Records one failed login from `key` (a client address) for every server sharing the
    /// store, and returns its failures within the last `window_ms` milliseconds (this one
    /// included): a count whose last failure is older than the window starts again at 1.
    /// `None`: this store does not share them (the caller counts in its own memory, with no
    /// disk write per failed login). Old rows are pruned as it goes; at most about
    /// [`AUTH_FAILURE_KEYS`] addresses are kept, the most recent.
    fn auth_failure_record(&self, key: &str, window_ms: i64) -> Result<Option<u32>> {
        let _ = (key, window_ms);
        Ok(None)
    }

    /// Failed logins from `key` within the last `window_ms` milliseconds, as
    /// [`MailStore::auth_failure_record`] counts them; `None` when the store does not share
    /// them.
    fn auth_failure_count(&self, key: &str, window_ms: i64) -> Result<Option<u32>> {
        let _ = (key, window_ms);
        Ok(None)
    }

    /// Keeps a new web login session. Expired sessions (of anyone) are pruned, and the
    /// account's oldest beyond `max_per_account` (counting the new one) are dropped.
    fn session_create(&self, session: &WebSession, max_per_account: usize) -> Result<()>;
    /// The session with this id hash, expired or not (the caller tells them apart).
    fn session_get(&self, id_hash: &str) -> Result<Option<WebSession>>;
    /// Moves a session's expiry (a sliding session); false when it is gone.
    fn session_touch(&self, id_hash: &str, expires_ms: i64) -> Result<bool>;
    /// Ends a session (logout); false when there was none.
    fn session_remove(&self, id_hash: &str) -> Result<bool>;

    /// What the backend's writer did (group commits: their duration and size), for the
    /// server's metrics. `None`: the backend keeps no such numbers.
    fn writer_stats(&self) -> Option<stats::WriterStats> {
        None
    }

    /// Stops background work and closes the database cleanly. Further writes fail with Closed.
    fn shutdown(&self);
}

/// [`MailStore::message_octets`] by [`MailStore::message_size`] and
/// [`MailStore::read_message_at`].
fn read_in_chunks<S: MailStore + ?Sized>(store: &S, message: MessageRef) -> Result<Vec<u8>> {
    let size = store.message_size(message)?;
    let mut out = vec![
        0u8;
        usize::try_from(size)
            .map_err(|_| StoreError::Invalid("message too large".into()))?
    ];
    let mut at = 0usize;
    while at < out.len() {
        let n = store.read_message_at(message, at as u64, &mut out[at..])?;
        if n == 0 {
            out.truncate(at);
            break;
        }
        at += n;
    }
    Ok(out)
}

/// The domain of an address, lowercased ("" when there is no @).
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Current time in Unix seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current time in unix milliseconds.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
