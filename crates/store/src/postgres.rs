//! The shared backend: PostgreSQL, for several mailroom nodes serving the same accounts.
//!
//! `store = "postgres://user@host:port/db"` in the config selects it; every node given the
//! same URL serves the same domains, accounts, mailboxes and queue.
//!
//! # Driver
//! The synchronous `postgres` crate (tokio-postgres under a small private runtime per
//! connection) with a pool of our own. The [`MailStore`] trait is synchronous and every
//! server component already calls it from a blocking thread (`spawn_blocking`), so a
//! synchronous client fits it directly: an async pool (deadpool) would need a runtime handle
//! and `block_on` bridging on each call for no gain, and sqlx would bring a second SQL layer
//! beside rusqlite's. The connections live on the store's own threads (one writer, a fixed
//! set of readers, one for advisory locks) and callers hand them work through channels, so a
//! call made from inside an async task blocks that thread (as the SQLite store's writes do)
//! instead of tripping the client's "runtime inside a runtime" check.
//!
//! # Group commit
//! As in the SQLite backend, every write is a job sent to one writer thread per node, which
//! takes the first job and every job already waiting, runs them one after another in one
//! transaction and commits them with one COMMIT: one WAL flush of PostgreSQL for many
//! sessions' deliveries. When a job fails, that transaction is rolled back and the batch runs
//! again with each job in its own SAVEPOINT (a failing job rolls back alone), as do the
//! batches of the next second: a savepoint per job costs a round trip and makes the rows it
//! changes a subtransaction's, so batches run without them while jobs succeed. A caller is answered only after that COMMIT
//! returned, so a 250 or an OK means committed (with PostgreSQL's `synchronous_commit = on`,
//! its default, on disk).
//!
//! # Several nodes
//! - UIDNEXT and HIGHESTMODSEQ are allocated with `UPDATE mailboxes ... RETURNING`: the row
//!   lock it takes is held until the allocating transaction commits, so another node's
//!   allocation for the same mailbox waits and sees the new values (UIDs and MODSEQs are
//!   committed in the order they were handed out). Writers that read a mailbox's messages
//!   before changing them (STORE, EXPUNGE, COPY/MOVE) lock the mailbox row first.
//! - UIDVALIDITY comes from one counter row (`counters`), locked the same way: it never
//!   repeats for a name, whichever node creates the mailbox.
//! - Two nodes' batches can lock rows in opposite orders; PostgreSQL then aborts one job with
//!   a deadlock error. The batch runs again job by job, that job's savepoint is rolled
//!   back and the job runs again, alone in a
//!   transaction of its own (after the rows it waited for are free), up to [`MAX_TRIES`]
//!   times. A delivery locks its recipients' INBOX rows in account order, so deliveries never
//!   deadlock each other within one job.
//! - The outbound queue's claims use `FOR UPDATE SKIP LOCKED` and a lease (a time): a claim
//!   whose node died expires by itself, so start-up does not drop other nodes' claims.
//! - POP3 maildrop locks are PostgreSQL advisory locks held by one connection per node
//!   ([`MailStore::lock_maildrop`]): when the node dies, its connection closes and its locks
//!   go with it.
//! - A delivery, an APPEND, a flag change or an expunge sends `NOTIFY mailroom_mailbox` with
//!   the mailbox id when it commits, so a listener on another node can wake its IDLE sessions.
//! - Every node that writes vacuums the small hot tables (`mailboxes`, `accounts`,
//!   `counters`) every [`VACUUM_EVERY`]: two nodes updating one mailbox row leave versions
//!   that slow every later delivery to it until a vacuum.
//! - Failed logins per client address (`auth_failures`) are counted here for all nodes: one
//!   upsert per failure that starts the count again when the last failure is older than the
//!   window and returns the new count ([`MailStore::auth_failure_record`]); every
//!   [`AUTH_PRUNE_EVERY`]-th failure a node records prunes expired rows and keeps at most
//!   [`AUTH_FAILURE_KEYS`] addresses. Web login sessions (`web_sessions`) too, as in SQLite.
//!
//! # Messages
//! Octets are kept in a `bytea` column with storage EXTERNAL (out of line, uncompressed), so
//! `read_message_at` reads only the chunks it asks for with `substring`. Everything reads
//! messages through `read_message_at`, so the column can later become a key in an object
//! store without touching the protocol drivers.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::postgres::error::SqlState;
use ::postgres::{Client, IsolationLevel, NoTls, Transaction};

use crate::*;

/// At most this many write jobs share one transaction.
pub const MAX_BATCH: usize = 256;
/// Reader threads, each with one connection: reads run this many at once (a node's share of
/// PostgreSQL's `max_connections` is this plus the writer, lock, LISTEN and vacuum ones).
pub const READERS: usize = 12;
/// How often a job that lost a deadlock or a serialization conflict is run again.
pub const MAX_TRIES: u32 = 5;
/// A node prunes the table of failed logins at every this many failures it records.
pub const AUTH_PRUNE_EVERY: u64 = 100;
/// The channel NOTIFY uses for changed mailboxes (the payload is the mailbox id).
pub const MAILBOX_CHANNEL: &str = "mailroom_mailbox";

/// A read, run on a reader thread's connection. It borrows from the caller, which waits for
/// it (see [`PgStore::read`]).
type ReadFn = BorrowingRead<'static>;
/// A read as built, borrowing from its caller for `'a`.
type BorrowingRead<'a> = Box<dyn FnOnce(Result<&mut Client>) + Send + 'a>;
type JobFn = Box<dyn FnMut(&mut Transaction<'_>) -> JobResult + Send>;

struct Job {
    run: JobFn,
    reply: Reply,
    tries: u32,
}

/// Versioned schema: entry N brings the schema from version N to N+1 (the `schema_version`
/// table holds the version). Text keys are `COLLATE "C"`: sorted and compared by bytes, as
/// SQLite does, whatever the database's own collation (the local-part range lookups need it).
const MIGRATIONS: &[&str] = &[
    // v1: everything the SQLite store has at its schema version 13, in one step.
    r#"
    CREATE TABLE domains (
        name TEXT COLLATE "C" PRIMARY KEY
    );
    CREATE TABLE accounts (
        id BIGSERIAL PRIMARY KEY,
        address TEXT COLLATE "C" NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created BIGINT NOT NULL,
        quota BIGINT,
        used BIGINT NOT NULL DEFAULT 0,
        apop_secret TEXT
    );
    CREATE TABLE mailboxes (
        id BIGSERIAL PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT COLLATE "C" NOT NULL,
        uidvalidity BIGINT NOT NULL,
        uidnext BIGINT NOT NULL DEFAULT 1,
        highest_modseq BIGINT NOT NULL DEFAULT 1,
        special_use TEXT,
        recent_uid BIGINT NOT NULL DEFAULT 0,
        messages BIGINT NOT NULL DEFAULT 0,
        unseen BIGINT NOT NULL DEFAULT 0,
        deleted BIGINT NOT NULL DEFAULT 0,
        size BIGINT NOT NULL DEFAULT 0,
        vanished_floor BIGINT NOT NULL DEFAULT 0,
        UNIQUE (account_id, name)
    );
    CREATE TABLE messages (
        id BIGSERIAL PRIMARY KEY,
        size BIGINT NOT NULL,
        ends_lf BOOLEAN NOT NULL,
        created BIGINT NOT NULL,
        data BYTEA NOT NULL
    );
    -- Out of line and uncompressed: substring() reads only the chunks it needs.
    ALTER TABLE messages ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE TABLE mailbox_messages (
        mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid BIGINT NOT NULL,
        message_id BIGINT NOT NULL REFERENCES messages(id),
        flags BIGINT NOT NULL DEFAULT 0,
        keywords TEXT NOT NULL DEFAULT '',
        internal_date BIGINT NOT NULL,
        modseq BIGINT NOT NULL DEFAULT 1,
        PRIMARY KEY (mailbox_id, uid)
    );
    CREATE INDEX mailbox_messages_message ON mailbox_messages(message_id);
    CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq);
    CREATE TABLE subscriptions (
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (account_id, name)
    );
    CREATE TABLE message_search (
        message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        format BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (message_id, format)
    );
    CREATE TABLE expunged (
        mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid BIGINT NOT NULL,
        modseq BIGINT NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    );
    CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
    CREATE TABLE aliases (
        source TEXT COLLATE "C" NOT NULL,
        target TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (source, target)
    );
    CREATE TABLE queue (
        id BIGSERIAL PRIMARY KEY,
        message_id BIGINT NOT NULL REFERENCES messages(id),
        sender TEXT NOT NULL,
        created BIGINT NOT NULL
    );
    CREATE INDEX queue_message ON queue(message_id);
    CREATE TABLE queue_recipients (
        id BIGSERIAL PRIMARY KEY,
        queue_id BIGINT NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
        recipient TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts BIGINT NOT NULL DEFAULT 0,
        next_attempt BIGINT NOT NULL,
        last_error TEXT,
        lease BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX queue_recipients_due ON queue_recipients(status, next_attempt);
    CREATE INDEX queue_recipients_queue ON queue_recipients(queue_id);
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('uidvalidity', 0);

    -- The counters of accounts.used and each mailbox's STATUS counts, kept in the same
    -- transaction as every change (as the SQLite store's triggers do), and a QRESYNC
    -- tombstone (RFC 7162 §3.2) for every row that leaves a mailbox, with the modseq the
    -- mailbox gets when the remover bumps it once afterwards. Every delete path removes a
    -- mailbox's rows before the mailbox, so the mailbox still names the account.
    CREATE FUNCTION mailroom_mm_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE sz BIGINT;
    BEGIN
        SELECT size INTO sz FROM messages WHERE id = NEW.message_id;
        UPDATE mailboxes SET messages = messages + 1,
               unseen = unseen + (CASE WHEN NEW.flags & 1 = 0 THEN 1 ELSE 0 END),
               deleted = deleted + (CASE WHEN NEW.flags & 8 <> 0 THEN 1 ELSE 0 END),
               size = size + COALESCE(sz, 0)
         WHERE id = NEW.mailbox_id;
        UPDATE accounts SET used = used + COALESCE(sz, 0)
         WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
        RETURN NULL;
    END $$;
    CREATE FUNCTION mailroom_mm_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE sz BIGINT;
    BEGIN
        SELECT size INTO sz FROM messages WHERE id = OLD.message_id;
        UPDATE mailboxes SET messages = messages - 1,
               unseen = unseen - (CASE WHEN OLD.flags & 1 = 0 THEN 1 ELSE 0 END),
               deleted = deleted - (CASE WHEN OLD.flags & 8 <> 0 THEN 1 ELSE 0 END),
               size = size - COALESCE(sz, 0)
         WHERE id = OLD.mailbox_id;
        UPDATE accounts SET used = used - COALESCE(sz, 0)
         WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
        INSERT INTO expunged (mailbox_id, uid, modseq)
            SELECT OLD.mailbox_id, OLD.uid, highest_modseq + 1 FROM mailboxes
             WHERE id = OLD.mailbox_id
            ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq;
        RETURN NULL;
    END $$;
    CREATE FUNCTION mailroom_mm_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF (OLD.flags & 9) <> (NEW.flags & 9) THEN
            UPDATE mailboxes SET
                   unseen = unseen - (CASE WHEN OLD.flags & 1 = 0 THEN 1 ELSE 0 END)
                                   + (CASE WHEN NEW.flags & 1 = 0 THEN 1 ELSE 0 END),
                   deleted = deleted - (CASE WHEN OLD.flags & 8 <> 0 THEN 1 ELSE 0 END)
                                     + (CASE WHEN NEW.flags & 8 <> 0 THEN 1 ELSE 0 END)
             WHERE id = NEW.mailbox_id;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER mailbox_messages_insert AFTER INSERT ON mailbox_messages
        FOR EACH ROW EXECUTE FUNCTION mailroom_mm_insert();
    CREATE TRIGGER mailbox_messages_delete AFTER DELETE ON mailbox_messages
        FOR EACH ROW EXECUTE FUNCTION mailroom_mm_delete();
    CREATE TRIGGER mailbox_messages_update AFTER UPDATE OF flags ON mailbox_messages
        FOR EACH ROW EXECUTE FUNCTION mailroom_mm_update();
    "#,
    // v2: the SMTP dialogue of the session that delivered a message (SQLite's
    // `message_transcript`, the same form): written in the delivery's transaction, gone with
    // the message.
    r#"
    CREATE TABLE message_transcript (
        message_id BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        peer TEXT NOT NULL,
        listener TEXT NOT NULL,
        truncated BOOLEAN NOT NULL,
        lines TEXT NOT NULL
    );
    "#,
    // Web login sessions (issue 18): the HTTP API's cookies, so that a cookie from one node
    // is known on every other (SQLite's `web_sessions`, the same form). Keyed by the SHA-256
    // of the cookie's id; gone with their account.
    r#"
    CREATE TABLE web_sessions (
        id_hash TEXT COLLATE "C" PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        password_fp TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX web_sessions_account ON web_sessions(account_id, created_ms);
    CREATE INDEX web_sessions_expires ON web_sessions(expires_ms);
    "#,
    // Failed logins per client address (issue 18), counted for all nodes together: an
    // attacker who spreads guesses over several nodes meets the same doubling delay as on
    // one. `last_ms` is the database's clock at the latest failure; rows older than the
    // window are pruned, and at most about AUTH_FAILURE_KEYS addresses are kept.
    r#"
    CREATE TABLE auth_failures (
        key TEXT COLLATE "C" PRIMARY KEY,
        failures BIGINT NOT NULL,
        last_ms BIGINT NOT NULL
    );
    CREATE INDEX auth_failures_last ON auth_failures(last_ms);
    "#,
    // A delivery counts its own message (issue 18): its one statement that allocates the UID
    // also adds to the INBOX's counts and the account's usage, and names the message in the
    // transaction-local setting `mailroom.counted`, so the insert trigger leaves that row
    // alone. Every other insert (APPEND, COPY, MOVE, a migration) is counted by the trigger
    // as before. Updating the hot INBOX row once per delivery instead of twice halves the
    // row versions that concurrent deliveries lock.
    r#"
    DROP TRIGGER mailbox_messages_insert ON mailbox_messages;
    CREATE TRIGGER mailbox_messages_insert AFTER INSERT ON mailbox_messages
        FOR EACH ROW
        WHEN (current_setting('mailroom.counted', true) IS DISTINCT FROM NEW.message_id::text)
        EXECUTE FUNCTION mailroom_mm_insert();
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Whether `store` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(store: &str) -> bool {
    let s = store.trim_start();
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

enum LockRequest {
    Lock(i64, mpsc::SyncSender<Result<bool>>),
    Unlock(i64),
    /// The store shuts down: close the connection, releasing every lock it holds.
    Close,
}

pub struct PgStore {
    tombstones_kept: AtomicU64,
    /// Failed logins this node recorded (every [`AUTH_PRUNE_EVERY`]-th prunes).
    auth_failures_recorded: AtomicU64,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Option<mpsc::Sender<ReadFn>>>,
    locks: Mutex<Option<mpsc::Sender<LockRequest>>>,
    config: ::postgres::Config,
    /// Who hears of other nodes' changes ([`MailStore::on_mailbox_change`]); the listener
    /// thread starts with the first.
    listeners: std::sync::Arc<Mutex<Vec<ChangeListener>>>,
    listening: std::sync::atomic::AtomicBool,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

type ChangeListener = Box<dyn Fn(i64) + Send + Sync>;

/// The LISTEN thread: hears `NOTIFY mailroom_mailbox` of every node (this one's too) and
/// tells the listeners; reconnects when its connection breaks, then tells them that anything
/// may have changed (-1), since notifications were lost meanwhile.
fn listen_loop(
    config: ::postgres::Config,
    listeners: std::sync::Arc<Mutex<Vec<ChangeListener>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use fallible_iterator::FallibleIterator;
    let tell = |id: i64| {
        if let Ok(l) = listeners.lock() {
            for f in l.iter() {
                f(id);
            }
        }
    };
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let mut client = match connect(&config) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach PostgreSQL to hear of other nodes' changes; retrying");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {MAILBOX_CHANNEL}")) {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        if !first {
            tell(-1);
        }
        first = false;
        while !stop.load(Ordering::Relaxed) {
            let mut n = client.notifications();
            let mut it = n.timeout_iter(Duration::from_millis(500));
            match it.next() {
                Ok(Some(note)) => {
                    if let Ok(id) = note.payload().parse::<i64>() {
                        tell(id);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the notification connection broke; reconnecting");
                    break;
                }
            }
        }
    }
}

fn connect(config: &::postgres::Config) -> Result<Client> {
    Ok(config.connect(NoTls)?)
}

/// PostgreSQL's SQLSTATE of an error, if it came from the server.
fn sqlstate(e: &StoreError) -> Option<&SqlState> {
    match e {
        StoreError::Postgres(e) => e.code(),
        _ => None,
    }
}

/// A conflict with another transaction (another node's): worth running the job again.
fn is_conflict(e: &StoreError) -> bool {
    matches!(
        sqlstate(e),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// PostgreSQL's disk is full (SQLSTATE 53100).
pub(crate) fn is_full(e: &::postgres::Error) -> bool {
    e.code() == Some(&SqlState::DISK_FULL)
}

fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    // One node migrates at a time; the others wait here, then find the work done.
    tx.execute("SELECT pg_advisory_xact_lock(7406371000)", &[])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let version: Option<i64> = tx
        .query_opt("SELECT version FROM schema_version", &[])?
        .map(|r| r.get(0));
    let version = match version {
        Some(v) => v,
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])?;
            0
        }
    };
    let at = usize::try_from(version).unwrap_or(0);
    if at > MIGRATIONS.len() {
        return Err(StoreError::Invalid(format!(
            "the database was written by a newer mailroom (schema version {version}, this build knows {})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(at) {
        tx.batch_execute(sql)?;
        tx.execute(
            "UPDATE schema_version SET version = $1",
            &[&((i + 1) as i64)],
        )?;
        tracing::info!(version = i + 1, "PostgreSQL store schema migrated");
    }
    tx.commit()?;
    Ok(())
}

impl PgStore {
    /// Connects to the database at `url`, creating or updating the schema as needed.
    pub fn open(url: &str) -> Result<PgStore> {
        let mut config: ::postgres::Config = url.parse().map_err(|e: ::postgres::Error| {
            StoreError::Invalid(format!(
                "store = \"{}\" is not a PostgreSQL URL like postgres://user@host:5432/mailroom: {e}",
                redact_url(url)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("mailroom");
        let mut first = connect(&config)?;
        migrate(&mut first)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_config = config.clone();
        let batches = std::sync::Arc::new(AtomicU64::new(0));
        let writer_batches = batches.clone();
        let handle = std::thread::Builder::new()
            .name("pg-writer".into())
            .spawn(move || writer_loop(first, writer_config, rx, writer_batches))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (vacuum_config, vacuum_stop) = (config.clone(), stop.clone());
        std::thread::Builder::new()
            .name("pg-vacuum".into())
            .spawn(move || vacuum_loop(vacuum_config, batches, vacuum_stop))?;
        let (rtx, rrx) = mpsc::channel::<ReadFn>();
        let rrx = std::sync::Arc::new(Mutex::new(rrx));
        for i in 0..READERS {
            let (rrx, reader_config) = (rrx.clone(), config.clone());
            std::thread::Builder::new()
                .name(format!("pg-reader-{i}"))
                .spawn(move || reader_loop(reader_config, rrx))?;
        }
        let (ltx, lrx) = mpsc::channel::<LockRequest>();
        let lock_config = config.clone();
        std::thread::Builder::new()
            .name("pg-locks".into())
            .spawn(move || lock_loop(lock_config, lrx))?;
        Ok(PgStore {
            config,
            listeners: std::sync::Arc::new(Mutex::new(Vec::new())),
            listening: std::sync::atomic::AtomicBool::new(false),
            stop,
            tombstones_kept: AtomicU64::new(crate::sqlite::TOMBSTONES_KEPT),
            auth_failures_recorded: AtomicU64::new(0),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            readers: Mutex::new(Some(rtx)),
            locks: Mutex::new(Some(ltx)),
        })
    }

    /// Runs `f` in the next group-committed transaction and returns its result once committed.
    /// `f` may run more than once (after a conflict with another node), each time in a fresh
    /// savepoint, so it must not consume what it captured.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = blocking_reply();
        self.submit(f, reply)?;
        downcast(answer.recv().map_err(|_| StoreError::Closed)?)
    }

    /// As [`PgStore::write`], but nothing waits: the future resolves once the writer
    /// committed.
    fn write_async<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> crate::StoreFuture<T> {
        let (reply, answer) = async_reply();
        let submitted = self.submit(f, reply);
        Box::pin(async move {
            submitted?;
            downcast(answer.await.map_err(|_| StoreError::Closed)?)
        })
    }

    /// Hands a write job to the writer thread; `reply` gets its result after the commit.
    fn submit<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T> + Send + 'static,
        reply: Reply,
    ) -> Result<()> {
        let job = Job {
            run: Box::new(move |c| f(c).map(|v| Box::new(v) as Box<dyn Any + Send>)),
            reply,
            tries: 0,
        };
        let guard = self.writer.lock().map_err(|_| StoreError::Closed)?;
        let tx = guard.as_ref().ok_or(StoreError::Closed)?;
        tx.send(job).map_err(|_| StoreError::Closed)
    }

    /// Runs `f` in a read-only REPEATABLE READ transaction (one snapshot for all its
    /// statements) on a reader thread's connection, and waits for it.
    fn read<T: Send>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T> + Send) -> Result<T> {
        let (tx, rx) = mpsc::sync_channel::<Result<T>>(1);
        let job = move |client: Result<&mut Client>| {
            let r = (|| {
                let mut t = client?
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()?;
                let r = f(&mut t)?;
                t.commit()?;
                Ok(r)
            })();
            let _ = tx.send(r);
        };
        let job: BorrowingRead<'_> = Box::new(job);
        // SAFETY: the closure borrows from this frame (arguments, `buf`s) and is made
        // 'static only to cross the channel. This function does not return before the
        // closure is finished with: `rx.recv()` returns once the closure sent its result as
        // its last act, or once it was dropped (its `tx` with it) without running; until
        // then nothing borrowed here is released.
        let job: ReadFn = unsafe { std::mem::transmute::<BorrowingRead<'_>, ReadFn>(job) };
        let sent = match self.readers.lock() {
            Ok(g) => match g.as_ref() {
                Some(s) => s.send(job).map_err(|_| StoreError::Closed),
                None => Err(StoreError::Closed),
            },
            Err(_) => Err(StoreError::Closed),
        };
        sent?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    fn tombstones_kept(&self) -> u64 {
        self.tombstones_kept.load(Ordering::Relaxed)
    }

    fn append_owned(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>)> {
        self.write(move |c| {
            lock_mailbox(c, mailbox)?;
            let mut uv = 0;
            let mut uids = Vec::with_capacity(messages.len());
            for m in &messages {
                let row = c
                    .cq_opt(
                        "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1
                          WHERE id = $1 AND account_id = $2
                          RETURNING uidvalidity, uidnext - 1, highest_modseq",
                        &[&mailbox.id, &mailbox.account.0],
                    )?
                    .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))?;
                let (v, uid, modseq): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
                let msg = insert_message(c, &m.data)?;
                c.cexec(
                    "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, internal_date, modseq)
                       VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&mailbox.id, &uid, &msg.0, &i64::from(m.flags.0), &m.keywords.join(" "), &m.internal_date, &modseq],
                )?;
                uv = to_u32(v)?;
                uids.push(to_u32(uid)?);
            }
            notify_mailbox(c, mailbox.id)?;
            Ok((uv, uids))
        })
    }
}

thread_local! {
    /// Statements prepared on this thread's connection (each store thread owns one), by SQL
    /// text: a query is parsed and planned once per connection instead of at every call.
    static STATEMENTS: std::cell::RefCell<std::collections::HashMap<String, ::postgres::Statement>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Forgets this thread's prepared statements (its connection was replaced).
fn forget_statements() {
    STATEMENTS.with(|s| s.borrow_mut().clear());
}

type Params<'a> = [&'a (dyn ::postgres::types::ToSql + Sync)];

/// Queries through this thread's statement cache.
trait Cached {
    fn statement(&mut self, sql: &str) -> Result<::postgres::Statement>;
    fn cq(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<::postgres::Row>>;
    fn cq_opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<::postgres::Row>>;
    fn cq_one(&mut self, sql: &str, params: &Params<'_>) -> Result<::postgres::Row>;
    fn cexec(&mut self, sql: &str, params: &Params<'_>) -> Result<u64>;
}

impl Cached for Transaction<'_> {
    fn statement(&mut self, sql: &str) -> Result<::postgres::Statement> {
        if let Some(st) = STATEMENTS.with(|s| s.borrow().get(sql).cloned()) {
            return Ok(st);
        }
        let st = self.prepare(sql)?;
        STATEMENTS.with(|s| s.borrow_mut().insert(sql.to_string(), st.clone()));
        Ok(st)
    }
    fn cq(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<::postgres::Row>> {
        let st = self.statement(sql)?;
        Ok(self.query(&st, params)?)
    }
    fn cq_opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<::postgres::Row>> {
        let st = self.statement(sql)?;
        Ok(self.query_opt(&st, params)?)
    }
    fn cq_one(&mut self, sql: &str, params: &Params<'_>) -> Result<::postgres::Row> {
        let st = self.statement(sql)?;
        Ok(self.query_one(&st, params)?)
    }
    fn cexec(&mut self, sql: &str, params: &Params<'_>) -> Result<u64> {
        let st = self.statement(sql)?;
        Ok(self.execute(&st, params)?)
    }
}

fn to_u32(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Invalid(format!("value {v} out of range")))
}

/// The writer thread: takes jobs, batches them, commits; reconnects when the connection
/// broke (answering the jobs of the broken transaction with an error).
fn writer_loop(
    client: Client,
    config: ::postgres::Config,
    rx: mpsc::Receiver<Job>,
    batches: std::sync::Arc<AtomicU64>,
) {
    let mut client = Some(client);
    let mut deferred: VecDeque<Job> = VecDeque::new();
    let mut careful_until: Option<Instant> = None;
    loop {
        // A job that lost a conflict runs again in a transaction of its own: it then waits
        // only for the rows it needs itself, not for the locks of a whole batch.
        let (first, alone) = match deferred.pop_front() {
            Some(j) => (j, true),
            None => match rx.recv() {
                Ok(j) => (j, false),
                Err(_) => break,
            },
        };
        let mut batch: VecDeque<Job> = VecDeque::from([first]);
        while !alone && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push_back(job),
                Err(_) => break,
            }
        }
        let conn = match client.take().filter(|c| !c.is_closed()) {
            Some(c) => Ok(c),
            None => {
                forget_statements();
                connect(&config)
            }
        };
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot reach PostgreSQL; writes are refused");
                for job in batch {
                    (job.reply)(Err(StoreError::Invalid(format!(
                        "the database cannot be reached: {e}"
                    ))));
                }
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        // All at once when the last failure is long enough ago; one by one (each in its own
        // savepoint) when a job of this batch fails, and for a while after.
        let careful = careful_until.is_some_and(|t| Instant::now() < t);
        let batch = if careful {
            Err(batch)
        } else {
            run_batch_at_once(&mut conn, batch)
        };
        if let Err(batch) = batch {
            if !careful {
                careful_until = Some(Instant::now() + ONE_BY_ONE_AFTER_FAILURE);
            }
            deferred.extend(run_batch(&mut conn, batch));
        }
        batches.fetch_add(1, Ordering::Relaxed);
        client = Some(conn);
    }
}

/// How often the small, hot tables are vacuumed while this node writes.
pub const VACUUM_EVERY: Duration = Duration::from_secs(10);
/// The tables every delivery updates (a mailbox's UIDNEXT and counts, an account's usage,
/// the UIDVALIDITY counter).
const HOT_TABLES: &str = "mailboxes, accounts, counters";

/// The vacuum thread: every [`VACUUM_EVERY`], if this node's writer committed anything
/// meanwhile, `VACUUM`s the hot tables. When two nodes update the same mailbox row, its dead
/// versions carry MultiXacts that every later delivery must decode until a vacuum; PostgreSQL's
/// autovacuum comes within minutes, and in the meantime deliveries to that mailbox ran at a
/// third of their rate (measured: docs/BENCHMARKS.md). `SKIP_LOCKED`: never waits for a lock.
fn vacuum_loop(
    config: ::postgres::Config,
    batches: std::sync::Arc<AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut client: Option<Client> = None;
    let mut seen = 0u64;
    loop {
        let step = Duration::from_millis(250);
        let mut waited = Duration::ZERO;
        while waited < VACUUM_EVERY {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(step);
            waited += step;
        }
        let now = batches.load(Ordering::Relaxed);
        if now == seen {
            continue;
        }
        seen = now;
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = connect(&config).ok();
        }
        if let Some(c) = client.as_mut() {
            if let Err(e) = c.batch_execute(&format!("VACUUM (SKIP_LOCKED) {HOT_TABLES}")) {
                tracing::debug!(error = %e, "vacuuming the hot tables failed; trying again later");
            }
        }
    }
}

/// Records attempt results (see [`MailStore::queue_update`]) in the writer's transaction.
fn queue_update_in(
    c: &mut Transaction<'_>,
    updates: &[RecipientUpdate],
    bounce: Option<&Delivery>,
) -> Result<()> {
    let mut entries = Vec::new();
    let mut lost = 0usize;
    for u in updates {
        let q = c.cq_opt(
                    "UPDATE queue_recipients SET status = $2, attempts = $3, next_attempt = $4, last_error = $5, lease = 0
                      WHERE id = $1 AND lease = $6 AND status = 'pending' RETURNING queue_id",
                    &[&u.id, &u.status, &i64::from(u.attempts), &u.next_attempt, &u.last_error, &u.lease],
                )?;
        match q {
            Some(r) => entries.push(r.get::<_, i64>(0)),
            None => lost += 1,
        }
    }
    if lost > 0 {
        tracing::warn!(
            lost,
            "delivery results for recipients no longer claimed were not recorded"
        );
    }
    if let Some(b) = bounce.filter(|_| lost == 0) {
        deliver_in(c, b)?;
    }
    entries.sort_unstable();
    entries.dedup();
    for q in entries {
        let pending: i64 = c
            .cq_one(
                "SELECT COUNT(*) FROM queue_recipients WHERE queue_id = $1 AND status = 'pending'",
                &[&q],
            )?
            .get(0);
        if pending == 0 {
            if let Some(r) = c.cq_opt(
                "DELETE FROM queue WHERE id = $1 RETURNING message_id",
                &[&q],
            )? {
                collect_message(c, r.get(0))?;
            }
        }
    }
    Ok(())
}

/// After a batch had to be run again job by job, batches go job by job at once for this
/// long: a client whose writes keep failing does not make every batch run twice.
const ONE_BY_ONE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Runs a batch of jobs in one transaction without a savepoint per job, and answers each once
/// it committed. A savepoint costs a round trip to the server and makes every row the job
/// changes a subtransaction's (rows changed by many subtransactions of one transaction carry
/// MultiXacts that later readers decode: docs/BENCHMARKS.md): one delivery in five went to
/// them. When a job fails, nothing of the batch is kept and the batch comes back, to be run
/// job by job in savepoints ([`run_batch`]): each job may run more than once (see
/// [`PgStore::write`]).
fn run_batch_at_once(client: &mut Client, mut batch: VecDeque<Job>) -> Result<(), VecDeque<Job>> {
    let Ok(mut tx) = client.transaction() else {
        return Err(batch);
    };
    let mut results: Vec<JobResult> = Vec::with_capacity(batch.len());
    for job in batch.iter_mut() {
        match (job.run)(&mut tx) {
            Ok(v) => results.push(Ok(v)),
            Err(_) => {
                let _ = tx.rollback();
                return Err(batch);
            }
        }
    }
    match tx.commit() {
        Ok(()) => {
            for (job, result) in batch.into_iter().zip(results) {
                (job.reply)(result);
            }
        }
        Err(e) => commit_failed(&e, batch.into_iter().map(|j| j.reply)),
    }
    Ok(())
}

/// Answers the jobs of a transaction whose COMMIT failed.
fn commit_failed(e: &::postgres::Error, replies: impl Iterator<Item = Reply>) {
    let full = is_full(e);
    // A COMMIT whose answer was lost may still have committed: say so.
    let text = format!("commit failed (the changes may or may not be stored): {e}");
    tracing::error!(error = %text, "PostgreSQL commit failed");
    for reply in replies {
        let err = if full {
            StoreError::StorageFull(text.clone())
        } else {
            StoreError::Invalid(text.clone())
        };
        reply(Err(err));
    }
}

/// Runs a batch of jobs in one transaction, each in its own savepoint (a failing job rolls
/// back alone), and answers each once it committed. Returns the jobs that lost a conflict
/// with another node's transaction, to run in the next one.
fn run_batch(client: &mut Client, batch: VecDeque<Job>) -> Vec<Job> {
    let mut again = Vec::new();
    let mut tx = match client.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let text = format!("cannot begin a transaction: {e}");
            for job in batch {
                (job.reply)(Err(StoreError::Invalid(text.clone())));
            }
            return again;
        }
    };
    let mut done: Vec<(Reply, JobResult)> = Vec::new();
    let mut broken: Option<String> = None;
    for mut job in batch {
        if let Some(text) = &broken {
            (job.reply)(Err(StoreError::Invalid(text.clone())));
            continue;
        }
        let mut sp = match tx.savepoint("job") {
            Ok(sp) => sp,
            Err(e) => {
                broken = Some(format!("transaction rolled back: {e}"));
                (job.reply)(Err(StoreError::Invalid(format!(
                    "transaction rolled back: {e}"
                ))));
                continue;
            }
        };
        let result = (job.run)(&mut sp);
        let end = if result.is_ok() {
            sp.commit()
        } else {
            sp.rollback()
        };
        if let Err(e) = end {
            broken = Some(format!("transaction rolled back: {e}"));
            (job.reply)(Err(StoreError::Invalid(format!(
                "transaction rolled back: {e}"
            ))));
            continue;
        }
        match result {
            Err(ref e) if is_conflict(e) && job.tries + 1 < MAX_TRIES => {
                tracing::debug!(error = %e, tries = job.tries + 1, "a write lost a conflict with another transaction; it runs again");
                job.tries += 1;
                again.push(job);
            }
            r => done.push((job.reply, r)),
        }
    }
    if let Some(text) = broken {
        let _ = tx.rollback();
        tracing::error!(error = %text, jobs = done.len(), "PostgreSQL transaction rolled back; its writes were refused");
        for (reply, _) in done {
            reply(Err(StoreError::Invalid(text.clone())));
        }
        return again;
    }
    match tx.commit() {
        Ok(()) => {
            for (reply, result) in done {
                reply(result);
            }
        }
        Err(e) => commit_failed(&e, done.into_iter().map(|(reply, _)| reply)),
    }
    again
}

/// A reader thread: takes the next read from the shared queue and runs it on its own
/// connection, (re)connecting when it has none.
fn reader_loop(config: ::postgres::Config, rx: std::sync::Arc<Mutex<mpsc::Receiver<ReadFn>>>) {
    let mut client: Option<Client> = None;
    loop {
        let job = match rx.lock() {
            Ok(r) => match r.recv() {
                Ok(j) => j,
                Err(_) => break,
            },
            Err(_) => break,
        };
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            forget_statements();
            client = match connect(&config) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "cannot reach PostgreSQL; a read failed");
                    job(Err(StoreError::Invalid(format!(
                        "the database cannot be reached: {e}"
                    ))));
                    continue;
                }
            };
        }
        match client.as_mut() {
            Some(c) => job(Ok(c)),
            None => job(Err(StoreError::Closed)),
        }
    }
}

/// The advisory-lock thread: one connection holds every POP3 maildrop lock of this node, so
/// they all end with it (a node that dies frees its maildrops when PostgreSQL sees the
/// connection close).
fn lock_loop(config: ::postgres::Config, rx: mpsc::Receiver<LockRequest>) {
    let mut client: Option<Client> = None;
    while let Ok(req) = rx.recv() {
        match req {
            LockRequest::Lock(key, reply) => {
                if client.as_ref().is_none_or(|c| c.is_closed()) {
                    client = connect(&config)
                        .inspect_err(|e| tracing::error!(error = %e, "cannot reach PostgreSQL for a maildrop lock"))
                        .ok();
                }
                let r = match client.as_mut() {
                    Some(c) => c
                        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                        .map(|r| r.get::<_, bool>(0))
                        .map_err(StoreError::from),
                    None => Err(StoreError::Invalid(
                        "the database cannot be reached for the maildrop lock".into(),
                    )),
                };
                let _ = reply.send(r);
            }
            LockRequest::Close => break,
            LockRequest::Unlock(key) => {
                if let Some(c) = client.as_mut().filter(|c| !c.is_closed()) {
                    if let Err(e) = c.query_one("SELECT pg_advisory_unlock($1)", &[&key]) {
                        tracing::warn!(error = %e, "cannot release a maildrop lock");
                    }
                }
            }
        }
    }
}

fn normalize_address(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

fn new_uidvalidity(c: &mut Transaction<'_>) -> Result<u32> {
    // RFC 9051 §2.3.1.1: UIDVALIDITY never repeats for a name. One counter row for every
    // node: clock-based, strictly greater than anything handed out before.
    let now = now_unix().clamp(1, i64::from(u32::MAX));
    let next: i64 = c
        .cq_one(
            "UPDATE counters SET value = GREATEST(value + 1, $1) WHERE name = 'uidvalidity' RETURNING value",
            &[&now],
        )?
        .get(0);
    u32::try_from(next).map_err(|_| {
        StoreError::Invalid("UIDVALIDITY values are exhausted (beyond 2^32 - 1)".into())
    })
}

/// Tells listeners (other nodes' IDLE sessions) that a mailbox changed; sent at commit.
fn notify_mailbox(c: &mut Transaction<'_>, mailbox: i64) -> Result<()> {
    c.cexec(
        "SELECT pg_notify($1, $2)",
        &[&MAILBOX_CHANNEL, &mailbox.to_string()],
    )?;
    Ok(())
}

const META_COLS: &str =
    "mm.uid, mm.message_id, m.size, mm.flags, mm.keywords, mm.internal_date, mm.modseq, m.ends_lf";

fn row_to_meta(r: &::postgres::Row) -> Result<MessageMeta> {
    let kw: String = r.get(4);
    Ok(MessageMeta {
        uid: to_u32(r.get(0))?,
        message: MessageId(r.get(1)),
        size: r.get::<_, i64>(2).max(0) as u64,
        flags: Flags(r.get::<_, i64>(3) as u32),
        keywords: kw.split_whitespace().map(String::from).collect(),
        internal_date: r.get(5),
        modseq: r.get::<_, i64>(6).max(0) as u64,
        ends_with_lf: r.get(7),
    })
}

/// The columns of [`MAILBOX_COLS`].
const MAILBOX_COL_COUNT: usize = 9;

/// [`COUNT_COLS`] from column `at` on.
fn row_to_counts(r: &::postgres::Row, at: usize) -> MailboxCounts {
    let n = |i: usize| r.get::<_, i64>(at + i).max(0) as u64;
    MailboxCounts {
        messages: n(0),
        unseen: n(1),
        deleted: n(2),
        size: n(3),
        recent: n(4),
    }
}

const MAILBOX_COLS: &str =
    "id, account_id, name, uidvalidity, uidnext, highest_modseq, special_use,
     EXISTS (SELECT 1 FROM subscriptions s
              WHERE s.account_id = mailboxes.account_id AND s.name = mailboxes.name),
     recent_uid";

fn row_to_mailbox(r: &::postgres::Row) -> Result<MailboxInfo> {
    let account = AccountId(r.get(1));
    Ok(MailboxInfo {
        id: MailboxId {
            account,
            id: r.get(0),
        },
        account,
        name: r.get(2),
        uidvalidity: to_u32(r.get(3))?,
        uidnext: to_u32(r.get(4))?,
        highest_modseq: r.get::<_, i64>(5).max(0) as u64,
        special_use: r.get(6),
        subscribed: r.get(7),
        recent_uid: to_u32(r.get(8))?,
    })
}

const ACCOUNT_COLS: &str = "id, address, password_hash, quota";

fn row_to_account(r: &::postgres::Row) -> Account {
    Account {
        id: AccountId(r.get(0)),
        address: r.get(1),
        password_hash: r.get(2),
        quota: r.get::<_, Option<i64>>(3).map(|q| q.max(0) as u64),
    }
}

fn insert_message(c: &mut Transaction<'_>, data: &[u8]) -> Result<MessageId> {
    let ends_lf = data.last().is_none_or(|b| *b == b'\n');
    let id: i64 = c
        .cq_one(
            "INSERT INTO messages (size, ends_lf, created, data) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&(data.len() as i64), &ends_lf, &now_unix(), &data],
        )?
        .get(0);
    Ok(MessageId(id))
}

/// `NotFound` unless the mailbox exists and belongs to the handle's account.
fn account_by_id(c: &mut Transaction<'_>, id: AccountId) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
    Ok(c.cq_opt(sql.as_str(), &[&id.0])?
        .as_ref()
        .map(row_to_account))
}

fn mailbox_by_id(c: &mut Transaction<'_>, mailbox: MailboxId) -> Result<Option<MailboxInfo>> {
    let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = $1 AND account_id = $2");
    c.cq_opt(sql.as_str(), &[&mailbox.id, &mailbox.account.0])?
        .as_ref()
        .map(row_to_mailbox)
        .transpose()
}

/// The UIDs expunged from a mailbox after `since_modseq`, from its tombstones; not `complete`
/// when tombstones that old were pruned.
fn tombstones_since(
    c: &mut Transaction<'_>,
    mailbox: MailboxId,
    since_modseq: u64,
) -> Result<Vanished> {
    let floor: i64 = c
        .cq_one(
            "SELECT vanished_floor FROM mailboxes WHERE id = $1",
            &[&mailbox.id],
        )?
        .get(0);
    let since = i64::try_from(since_modseq).unwrap_or(i64::MAX);
    let uids = c
        .cq(
            "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
            &[&mailbox.id, &since],
        )?
        .iter()
        .map(|r| to_u32(r.get(0)))
        .collect::<Result<Vec<u32>>>()?;
    Ok(Vanished {
        uids,
        complete: since >= floor,
    })
}

fn check_mailbox(c: &mut Transaction<'_>, mailbox: MailboxId) -> Result<()> {
    c.cq_opt(
        "SELECT 1 FROM mailboxes WHERE id = $1 AND account_id = $2",
        &[&mailbox.id, &mailbox.account.0],
    )?
    .map(|_| ())
    .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))
}

/// Like [`check_mailbox`], and locks the mailbox row until commit: writers that read a
/// mailbox's messages before changing them go one at a time, on every node.
fn lock_mailbox(c: &mut Transaction<'_>, mailbox: MailboxId) -> Result<()> {
    c.cq_opt(
        "SELECT 1 FROM mailboxes WHERE id = $1 AND account_id = $2 FOR UPDATE",
        &[&mailbox.id, &mailbox.account.0],
    )?
    .map(|_| ())
    .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))
}

fn resolve_message(c: &mut Transaction<'_>, r: MessageRef) -> Result<i64> {
    let found = match r {
        MessageRef::Mailbox { mailbox, uid } => c.cq_opt(
            "SELECT mm.message_id FROM mailbox_messages mm
               JOIN mailboxes m ON m.id = mm.mailbox_id
              WHERE mm.mailbox_id = $1 AND mm.uid = $2 AND m.account_id = $3",
            &[&mailbox.id, &i64::from(uid), &mailbox.account.0],
        )?,
        MessageRef::Queued(q) => c.cq_opt("SELECT message_id FROM queue WHERE id = $1", &[&q.0])?,
    };
    found
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::NotFound("message".into()))
}

/// Deletes a message once nothing refers to it. Another node may be copying it at this
/// moment: then its reference wins (the delete is undone in a savepoint of its own).
fn collect_message(c: &mut Transaction<'_>, message: i64) -> Result<()> {
    let mut sp = c.savepoint("collect")?;
    let r = sp.execute(
        "DELETE FROM messages WHERE id = $1
           AND NOT EXISTS (SELECT 1 FROM mailbox_messages WHERE message_id = $1)
           AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = $1)",
        &[&message],
    );
    match r {
        Ok(_) => sp.commit()?,
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => sp.rollback()?,
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn load_queue_entries(
    c: &mut Transaction<'_>,
    rows: Vec<::postgres::Row>,
) -> Result<Vec<QueueEntry>> {
    let mut entries: Vec<QueueEntry> = rows
        .iter()
        .map(|r| QueueEntry {
            id: QueueId(r.get(0)),
            message: MessageId(r.get(1)),
            sender: r.get(2),
            created: r.get(3),
            recipients: Vec::new(),
        })
        .collect();
    let st = c.prepare(
        "SELECT id, recipient, status, attempts, next_attempt, last_error
           FROM queue_recipients WHERE queue_id = $1 ORDER BY id",
    )?;
    for e in &mut entries {
        e.recipients = c
            .query(&st, &[&e.id.0])?
            .iter()
            .map(|r| QueueRecipient {
                id: r.get(0),
                recipient: r.get(1),
                status: r.get(2),
                attempts: r.get::<_, i64>(3).clamp(0, i64::from(u32::MAX)) as u32,
                next_attempt: r.get(4),
                last_error: r.get(5),
            })
            .collect();
    }
    Ok(entries)
}

/// The body of `deliver`, shared with `queue_update` (bounces) so both commit atomically.
fn deliver_in(c: &mut Transaction<'_>, delivery: &Delivery) -> Result<Receipt> {
    let mut receipt = Receipt::default();
    let now = now_unix();
    if !delivery.local.is_empty() {
        let msg = insert_message(c, &delivery.local_message)?;
        // INBOX rows are locked in account order, whatever the order of the recipients, so two
        // deliveries to the same accounts never wait for each other in a circle.
        let mut order: Vec<&AccountId> = delivery.local.iter().collect();
        order.sort_by_key(|a| a.0);
        for account in order {
            // RFC 9051 §2.3.1.1: UIDs strictly ascending, never reused; the row lock keeps
            // another node's allocation waiting until this one commits. One statement (one
            // round trip) allocates the UID, counts the new unseen message in the INBOX and
            // the account (the insert trigger skips the message `mailroom.counted` names:
            // one update of the hot INBOX row, not two), files it and announces the change.
            // The setting is made in `mb`'s RETURNING, which `ins` reads: before the insert,
            // when the trigger's WHEN is evaluated.
            let row = c
                .cq_opt(
                    "WITH sz AS (SELECT size FROM messages WHERE id = $2),
                     mb AS (
                        UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1,
                               messages = messages + 1, unseen = unseen + 1,
                               size = size + (SELECT size FROM sz)
                         WHERE account_id = $1 AND name = 'INBOX'
                         RETURNING id, uidnext - 1 AS uid, highest_modseq AS modseq,
                                   set_config('mailroom.counted', $2::text, true) AS counted),
                     acc AS (
                        UPDATE accounts SET used = used + (SELECT size FROM sz)
                         WHERE id = $1 AND EXISTS (SELECT 1 FROM mb)
                         RETURNING id),
                     ins AS (
                        INSERT INTO mailbox_messages (mailbox_id, uid, message_id, internal_date, modseq)
                        SELECT id, uid, $2, $3, modseq FROM mb
                        RETURNING mailbox_id, uid)
                     SELECT uid, pg_notify($4, mailbox_id::text)::text FROM ins",
                    &[&account.0, &msg.0, &now, &MAILBOX_CHANNEL],
                )?
                .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {}", account.0)))?;
            let uid: i64 = row.get(0);
            receipt.local.push((*account, to_u32(uid)?));
        }
        // The receipt lists the recipients in the order they were given.
        receipt.local.sort_by_key(|(a, _)| {
            delivery
                .local
                .iter()
                .position(|x| x == a)
                .unwrap_or(usize::MAX)
        });
        if let Some(t) = &delivery.transcript {
            c.cexec(
                "INSERT INTO message_transcript (message_id, peer, listener, truncated, lines)
                   VALUES ($1, $2, $3, $4, $5)",
                &[
                    &msg.0,
                    &t.peer,
                    &t.listener,
                    &t.truncated,
                    &t.encode_lines(),
                ],
            )?;
        }
    }
    if let Some(out) = &delivery.outbound {
        if !out.recipients.is_empty() {
            let msg = insert_message(c, &out.message)?;
            let qid: i64 = c
                .cq_one(
                    "INSERT INTO queue (message_id, sender, created) VALUES ($1, $2, $3) RETURNING id",
                    &[&msg.0, &out.sender, &now],
                )?
                .get(0);
            let mut ids = Vec::with_capacity(out.recipients.len());
            for rcpt in &out.recipients {
                let id: i64 = c
                    .cq_one(
                        "INSERT INTO queue_recipients (queue_id, recipient, next_attempt, lease)
                         VALUES ($1, $2, $3, $4) RETURNING id",
                        &[&qid, rcpt, &out.first_attempt, &out.claim_until],
                    )?
                    .get(0);
                ids.push(id);
            }
            receipt.queued = Some(QueueId(qid));
            receipt.queued_entry = Some(out.entry(qid, msg, now, &ids));
        }
    }
    Ok(receipt)
}

/// Prunes a mailbox's oldest tombstones beyond `keep`, raising its `vanished_floor`.
fn prune_tombstones(c: &mut Transaction<'_>, mailbox: i64, keep: u64) -> Result<()> {
    let n: i64 = c
        .cq_one(
            "SELECT COUNT(*) FROM expunged WHERE mailbox_id = $1",
            &[&mailbox],
        )?
        .get(0);
    let excess = n - i64::try_from(keep).unwrap_or(i64::MAX);
    if excess <= 0 {
        return Ok(());
    }
    let floor: i64 = c
        .cq_one(
            "SELECT modseq FROM expunged WHERE mailbox_id = $1 ORDER BY modseq LIMIT 1 OFFSET $2",
            &[&mailbox, &(excess - 1)],
        )?
        .get(0);
    // Whole modseqs only: one expunge's tombstones share a modseq and go together.
    c.cexec(
        "DELETE FROM expunged WHERE mailbox_id = $1 AND modseq <= $2",
        &[&mailbox, &floor],
    )?;
    c.cexec(
        "UPDATE mailboxes SET vanished_floor = GREATEST(vanished_floor, $2) WHERE id = $1",
        &[&mailbox, &floor],
    )?;
    Ok(())
}

fn local_part_range(local: &str) -> Option<(String, String)> {
    let local = local.trim().to_ascii_lowercase();
    if local.is_empty() || local.contains('@') {
        return None;
    }
    Some((format!("{local}@"), format!("{local}A")))
}

fn alias_key(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

fn uids_param(uids: &[u32]) -> Vec<i64> {
    uids.iter().map(|u| i64::from(*u)).collect()
}

impl MailStore for PgStore {
    fn backup(&self, _dest: &std::path::Path) -> Result<u64> {
        Err(StoreError::Invalid(
            "the store is in PostgreSQL: back it up with PostgreSQL's own tools (pg_dump, or a base backup with WAL archiving)".into(),
        ))
    }

    fn add_domain(&self, domain: &str) -> Result<()> {
        let d = domain.trim().to_ascii_lowercase();
        if d.is_empty() {
            return Err(StoreError::Invalid("empty domain".into()));
        }
        self.write(move |c| {
            c.cexec(
                "INSERT INTO domains (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&d],
            )?;
            Ok(())
        })
    }

    fn list_domains(&self) -> Result<Vec<String>> {
        self.read(|c| {
            Ok(c.cq("SELECT name FROM domains ORDER BY name", &[])?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn is_local_domain(&self, domain: &str) -> Result<bool> {
        let d = domain.to_ascii_lowercase();
        self.read(|c| {
            Ok(c.cq_opt("SELECT 1 FROM domains WHERE name = $1", &[&d])?
                .is_some())
        })
    }

    fn add_account(&self, address: &str, password_hash: &str) -> Result<AccountId> {
        let address = normalize_address(address);
        let domain = domain_of(&address);
        if domain.is_empty() || address.starts_with('@') {
            return Err(StoreError::Invalid(format!(
                "'{address}' is not an address like user@example.test"
            )));
        }
        let hash = password_hash.to_string();
        self.write(move |c| {
            c.cexec(
                "INSERT INTO domains (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&domain],
            )?;
            // ON CONFLICT: another node adding the same address at the same moment makes
            // this one `Exists`, not an error of the whole batch.
            let id: i64 = match c.cq_opt(
                "INSERT INTO accounts (address, password_hash, created) VALUES ($1, $2, $3)
                 ON CONFLICT (address) DO NOTHING RETURNING id",
                &[&address, &hash, &now_unix()],
            )? {
                Some(r) => r.get(0),
                None => return Err(StoreError::Exists(format!("account {address}"))),
            };
            for (name, special) in DEFAULT_FOLDERS {
                let uv = i64::from(new_uidvalidity(c)?);
                c.cexec(
                    "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use) VALUES ($1, $2, $3, $4)",
                    &[&id, name, &uv, special],
                )?;
                c.cexec(
                    "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&id, name],
                )?;
            }
            Ok(AccountId(id))
        })
    }

    fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        let address = normalize_address(address);
        let hash = password_hash.to_string();
        self.write(move |c| {
            let n = c.cexec(
                "UPDATE accounts SET password_hash = $2 WHERE address = $1",
                &[&address, &hash],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("account {address}")));
            }
            Ok(())
        })
    }

    fn set_apop_secret(&self, address: &str, secret: Option<&str>) -> Result<()> {
        let address = normalize_address(address);
        let secret = secret.map(str::to_string);
        self.write(move |c| {
            let n = c.cexec(
                "UPDATE accounts SET apop_secret = $2 WHERE address = $1",
                &[&address, &secret],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("account {address}")));
            }
            Ok(())
        })
    }

    fn apop_secret(&self, address: &str) -> Result<Option<String>> {
        let address = normalize_address(address);
        self.read(|c| {
            Ok(c.cq_opt(
                "SELECT apop_secret FROM accounts WHERE address = $1",
                &[&address],
            )?
            .and_then(|r| r.get::<_, Option<String>>(0)))
        })
    }

    fn remove_account(&self, address: &str) -> Result<()> {
        let address = normalize_address(address);
        self.write(move |c| {
            let Some(id) = c
                .cq_opt(
                    "SELECT id FROM accounts WHERE address = $1 FOR UPDATE",
                    &[&address],
                )?
                .map(|r| r.get::<_, i64>(0))
            else {
                return Err(StoreError::NotFound(format!("account {address}")));
            };
            let messages: Vec<i64> = c
                .cq(
                    "SELECT DISTINCT mm.message_id FROM mailbox_messages mm
                       JOIN mailboxes m ON m.id = mm.mailbox_id WHERE m.account_id = $1",
                    &[&id],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            c.cexec(
                "DELETE FROM mailbox_messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = $1)",
                &[&id],
            )?;
            c.cexec("DELETE FROM mailboxes WHERE account_id = $1", &[&id])?;
            c.cexec("DELETE FROM accounts WHERE id = $1", &[&id])?;
            for m in &messages {
                collect_message(c, *m)?;
            }
            Ok(())
        })
    }

    fn find_account(&self, address: &str) -> Result<Option<Account>> {
        let address = normalize_address(address);
        self.read(|c| {
            let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE address = $1");
            Ok(c.cq_opt(sql.as_str(), &[&address])?
                .as_ref()
                .map(row_to_account))
        })
    }

    fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read(|c| {
            let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY address");
            Ok(c.cq(sql.as_str(), &[])?
                .iter()
                .map(row_to_account)
                .collect())
        })
    }

    fn accounts_with_local_part(&self, local: &str) -> Result<Vec<Account>> {
        let Some((low, high)) = local_part_range(local) else {
            return Ok(Vec::new());
        };
        self.read(|c| {
            let sql = format!(
                "SELECT {ACCOUNT_COLS} FROM accounts WHERE address >= $1 AND address < $2 ORDER BY address"
            );
            Ok(c.cq(sql.as_str(), &[&low, &high])?
                .iter()
                .map(row_to_account)
                .collect())
        })
    }

    fn account_by_id(&self, id: AccountId) -> Result<Option<Account>> {
        self.read(|c| account_by_id(c, id))
    }

    fn set_quota(&self, address: &str, quota: Option<u64>) -> Result<()> {
        let address = normalize_address(address);
        let quota = match quota.map(i64::try_from) {
            None => None,
            Some(Ok(q)) => Some(q),
            Some(Err(_)) => {
                return Err(StoreError::Invalid(
                    "a quota must be less than 8 EiB".into(),
                ))
            }
        };
        self.write(move |c| {
            let n = c.cexec(
                "UPDATE accounts SET quota = $2 WHERE address = $1",
                &[&address, &quota],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("account {address}")));
            }
            Ok(())
        })
    }

    fn account_usage(&self, account: AccountId) -> Result<u64> {
        self.read(|c| {
            Ok(
                c.cq_opt("SELECT used FROM accounts WHERE id = $1", &[&account.0])?
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or(0)
                    .max(0) as u64,
            )
        })
    }

    fn remove_domain(&self, domain: &str) -> Result<()> {
        let d = domain.trim().to_ascii_lowercase();
        self.write(move |c| {
            let suffix = format!("@{d}");
            let n: i64 = c
                .cq_one(
                    "SELECT COUNT(*) FROM accounts WHERE right(address, length($1)) = $1",
                    &[&suffix],
                )?
                .get(0);
            if n > 0 {
                return Err(StoreError::Invalid(format!(
                    "domain {d} still has {n} accounts; remove them first"
                )));
            }
            let gone = c.cexec("DELETE FROM domains WHERE name = $1", &[&d])?;
            if gone == 0 {
                return Err(StoreError::NotFound(format!("domain {d}")));
            }
            c.cexec(
                "DELETE FROM aliases WHERE right(source, length($1)) = $1",
                &[&suffix],
            )?;
            Ok(())
        })
    }

    fn add_alias(&self, source: &str, target: &str) -> Result<()> {
        let source = alias_key(source);
        let target = alias_key(target);
        let domain = domain_of(&source);
        if domain.is_empty() || !target.contains('@') || target.starts_with('@') {
            return Err(StoreError::Invalid(format!(
                "an alias maps user@domain (or @domain for a catch-all) to an address; got '{source}' -> '{target}'"
            )));
        }
        self.write(move |c| {
            c.cexec(
                "INSERT INTO domains (name) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&domain],
            )?;
            c.cexec(
                "INSERT INTO aliases (source, target) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&source, &target],
            )?;
            Ok(())
        })
    }

    fn remove_alias(&self, source: &str, target: Option<&str>) -> Result<usize> {
        let source = alias_key(source);
        let target = target.map(alias_key);
        self.write(move |c| {
            let n = match &target {
                Some(t) => c.cexec(
                    "DELETE FROM aliases WHERE source = $1 AND target = $2",
                    &[&source, t],
                )?,
                None => c.cexec("DELETE FROM aliases WHERE source = $1", &[&source])?,
            };
            Ok(n as usize)
        })
    }

    fn list_aliases(&self) -> Result<Vec<(String, String)>> {
        self.read(|c| {
            Ok(c.cq(
                "SELECT source, target FROM aliases ORDER BY source, target",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    fn alias_targets(&self, source: &str) -> Result<Vec<String>> {
        let source = alias_key(source);
        self.read(|c| {
            Ok(c.cq(
                "SELECT target FROM aliases WHERE source = $1 ORDER BY target",
                &[&source],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn aliases_with_local_part(&self, local: &str) -> Result<Vec<String>> {
        let Some((low, high)) = local_part_range(local) else {
            return Ok(Vec::new());
        };
        self.read(|c| {
            Ok(c
                .cq(
                    "SELECT DISTINCT source FROM aliases WHERE source >= $1 AND source < $2 ORDER BY source",
                    &[&low, &high],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn deliver(&self, delivery: Delivery) -> Result<Receipt> {
        self.write(move |c| deliver_in(c, &delivery))
    }

    fn deliver_async(self: Arc<Self>, delivery: Delivery) -> StoreFuture<Receipt> {
        self.write_async(move |c| deliver_in(c, &delivery))
    }

    fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxInfo>> {
        self.read(|c| {
            let sql =
                format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE account_id = $1 AND name = $2");
            c.cq_opt(sql.as_str(), &[&account.0, &name])?
                .as_ref()
                .map(row_to_mailbox)
                .transpose()
        })
    }

    fn list_mailboxes(&self, account: AccountId) -> Result<Vec<MailboxInfo>> {
        self.read(|c| {
            let sql =
                format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE account_id = $1 ORDER BY name");
            c.cq(sql.as_str(), &[&account.0])?
                .iter()
                .map(row_to_mailbox)
                .collect()
        })
    }

    fn list_messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        self.read(|c| {
            check_mailbox(c, mailbox)?;
            let sql = format!(
                "SELECT {META_COLS} FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                  WHERE mm.mailbox_id = $1 ORDER BY mm.uid"
            );
            c.cq(sql.as_str(), &[&mailbox.id])?
                .iter()
                .map(row_to_meta)
                .collect()
        })
    }

    fn mailbox_changes(&self, mailbox: MailboxId, since_modseq: u64) -> Result<MailboxChanges> {
        self.read(|c| {
            check_mailbox(c, mailbox)?;
            let since = i64::try_from(since_modseq).unwrap_or(i64::MAX);
            let sql = format!(
                "SELECT {META_COLS} FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                  WHERE mm.mailbox_id = $1 AND mm.modseq > $2 ORDER BY mm.uid"
            );
            let changed = c
                .cq(sql.as_str(), &[&mailbox.id, &since])?
                .iter()
                .map(row_to_meta)
                .collect::<Result<Vec<_>>>()?;
            let vanished = tombstones_since(c, mailbox, since_modseq)?;
            Ok(MailboxChanges { changed, vanished })
        })
    }

    fn message_transcript(&self, message: MessageRef) -> Result<Option<Transcript>> {
        self.read(|c| {
            let id = resolve_message(c, message)?;
            Ok(c.cq_opt(
                "SELECT peer, listener, truncated, lines FROM message_transcript
                  WHERE message_id = $1",
                &[&id],
            )?
            .map(|r| Transcript {
                lines: Transcript::decode_lines(r.get::<_, &str>(3)),
                truncated: r.get(2),
                peer: r.get(0),
                listener: r.get(1),
            }))
        })
    }

    fn message_size(&self, message: MessageRef) -> Result<u64> {
        self.read(|c| {
            let id = resolve_message(c, message)?;
            c.cq_opt("SELECT size FROM messages WHERE id = $1", &[&id])?
                .map(|r| r.get::<_, i64>(0).max(0) as u64)
                .ok_or_else(|| StoreError::NotFound(format!("message {id}")))
        })
    }

    fn read_message_at(&self, message: MessageRef, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let off = i64::try_from(offset).map_err(|_| StoreError::Invalid("offset".into()))?;
        let len = i64::try_from(buf.len())
            .unwrap_or(i64::MAX)
            .min(i64::from(i32::MAX));
        self.read(|c| {
            // The reference is checked and the octets read in one snapshot: a message
            // expunged meanwhile is read as it was or not found.
            let id = resolve_message(c, message)?;
            let row = c
                .cq_opt(
                    "SELECT substring(data FROM $2::bigint::int + 1 FOR $3::bigint::int) FROM messages WHERE id = $1",
                    &[&id, &off.min(i64::from(i32::MAX)), &len],
                )?
                .ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
            let part: &[u8] = row.get(0);
            let n = part.len().min(buf.len());
            buf[..n].copy_from_slice(&part[..n]);
            Ok(n)
        })
    }

    fn expunge(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<u32>> {
        let uids = uids_param(uids);
        let kept = self.tombstones_kept();
        self.write(move |c| {
            lock_mailbox(c, mailbox)?;
            let rows = c.cq(
                "DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid = ANY($2)
                 RETURNING uid, message_id",
                &[&mailbox.id, &uids],
            )?;
            let mut removed: Vec<u32> = Vec::with_capacity(rows.len());
            let mut touched: Vec<i64> = Vec::with_capacity(rows.len());
            for r in &rows {
                removed.push(to_u32(r.get(0))?);
                touched.push(r.get(1));
            }
            // The order the caller asked for (the SQLite store answers in that order).
            let order: std::collections::HashMap<i64, usize> =
                uids.iter().enumerate().map(|(i, u)| (*u, i)).collect();
            removed.sort_by_key(|u| order.get(&i64::from(*u)).copied().unwrap_or(usize::MAX));
            if !removed.is_empty() {
                c.cexec(
                    "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1",
                    &[&mailbox.id],
                )?;
                prune_tombstones(c, mailbox.id, kept)?;
                notify_mailbox(c, mailbox.id)?;
            }
            touched.sort_unstable();
            touched.dedup();
            for m in &touched {
                collect_message(c, *m)?;
            }
            Ok(removed)
        })
    }

    fn vanished_since(&self, mailbox: MailboxId, since_modseq: u64) -> Result<Vanished> {
        self.read(|c| {
            check_mailbox(c, mailbox)?;
            tombstones_since(c, mailbox, since_modseq)
        })
    }

    fn mailbox_by_id(&self, mailbox: MailboxId) -> Result<Option<MailboxInfo>> {
        self.read(|c| mailbox_by_id(c, mailbox))
    }

    fn session_state(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<(Option<Account>, Option<MailboxInfo>)> {
        // One pooled connection and transaction for both.
        self.read(|c| {
            let now = account_by_id(c, account)?;
            let info = match mailbox {
                Some(m) => mailbox_by_id(c, m)?,
                None => None,
            };
            Ok((now, info))
        })
    }

    fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxId> {
        let name = name.to_string();
        self.write(move |c| {
            if c.cq_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account.0])?
                .is_none()
            {
                return Err(StoreError::NotFound(format!("account {}", account.0)));
            }
            let uv = i64::from(new_uidvalidity(c)?);
            match c.cq_opt(
                "INSERT INTO mailboxes (account_id, name, uidvalidity) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id, name) DO NOTHING RETURNING id",
                &[&account.0, &name, &uv],
            )? {
                Some(r) => Ok(MailboxId {
                    account,
                    id: r.get(0),
                }),
                None => Err(StoreError::Exists(format!("mailbox {name}"))),
            }
        })
    }

    fn delete_mailbox(&self, mailbox: MailboxId) -> Result<()> {
        self.write(move |c| {
            lock_mailbox(c, mailbox)?;
            let messages: Vec<i64> = c
                .cq(
                    "SELECT DISTINCT message_id FROM mailbox_messages WHERE mailbox_id = $1",
                    &[&mailbox.id],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            c.cexec(
                "DELETE FROM mailbox_messages WHERE mailbox_id = $1",
                &[&mailbox.id],
            )?;
            c.cexec("DELETE FROM mailboxes WHERE id = $1", &[&mailbox.id])?;
            for m in &messages {
                collect_message(c, *m)?;
            }
            notify_mailbox(c, mailbox.id)?;
            Ok(())
        })
    }

    fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let (from, to) = (from.to_string(), to.to_string());
        self.write(move |c| {
            if c.cq_opt(
                "SELECT 1 FROM mailboxes WHERE account_id = $1 AND name = $2",
                &[&account.0, &to],
            )?
            .is_some()
            {
                return Err(StoreError::Exists(format!("mailbox {to}")));
            }
            let prefix = format!("{from}/");
            let rows: Vec<(i64, String)> = c
                .cq(
                    "SELECT id, name FROM mailboxes WHERE account_id = $1
                       AND (name = $2 OR left(name, length($3)) = $3) ORDER BY id FOR UPDATE",
                    &[&account.0, &from, &prefix],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            if !rows.iter().any(|(_, n)| *n == from) {
                return Err(StoreError::NotFound(format!("mailbox {from}")));
            }
            for (id, name) in rows {
                let new_name = format!("{to}{}", &name[from.len()..]);
                let uv = i64::from(new_uidvalidity(c)?);
                c.cexec(
                    "UPDATE mailboxes SET name = $2, uidvalidity = $3 WHERE id = $1",
                    &[&id, &new_name, &uv],
                )?;
                // A subscription follows its mailbox, replacing one of the new name.
                c.cexec(
                    "DELETE FROM subscriptions WHERE account_id = $1 AND name = $3
                       AND EXISTS (SELECT 1 FROM subscriptions WHERE account_id = $1 AND name = $2)",
                    &[&account.0, &name, &new_name],
                )?;
                c.cexec(
                    "UPDATE subscriptions SET name = $3 WHERE account_id = $1 AND name = $2",
                    &[&account.0, &name, &new_name],
                )?;
            }
            Ok(())
        })
    }

    fn subscribe(&self, account: AccountId, name: &str, on: bool) -> Result<bool> {
        let name = name.to_string();
        self.write(move |c| {
            if c.cq_opt("SELECT 1 FROM accounts WHERE id = $1", &[&account.0])?
                .is_none()
            {
                return Err(StoreError::NotFound(format!("account {}", account.0)));
            }
            let n = if on {
                c.cexec(
                    "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&account.0, &name],
                )?
            } else {
                c.cexec(
                    "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2",
                    &[&account.0, &name],
                )?
            };
            Ok(n > 0)
        })
    }

    fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.read(|c| {
            Ok(c.cq(
                "SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name",
                &[&account.0],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn search_data(&self, mailbox: MailboxId, format: u32) -> Result<Vec<(u32, Vec<u8>)>> {
        self.read(|c| {
            check_mailbox(c, mailbox)?;
            c.cq(
                "SELECT mm.uid, ms.data FROM mailbox_messages mm
                   JOIN message_search ms ON ms.message_id = mm.message_id
                  WHERE mm.mailbox_id = $1 AND ms.format = $2 ORDER BY mm.uid",
                &[&mailbox.id, &i64::from(format)],
            )?
            .iter()
            .map(|r| Ok((to_u32(r.get(0))?, r.get(1))))
            .collect()
        })
    }

    fn put_search_data(
        &self,
        mailbox: MailboxId,
        format: u32,
        entries: Vec<(u32, Vec<u8>)>,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write(move |c| {
            check_mailbox(c, mailbox)?;
            let st = c.prepare(
                "INSERT INTO message_search (message_id, format, data)
                 SELECT message_id, $3, $4 FROM mailbox_messages WHERE mailbox_id = $1 AND uid = $2
                 ON CONFLICT (message_id, format) DO UPDATE SET data = EXCLUDED.data",
            )?;
            for (uid, data) in &entries {
                c.execute(
                    &st,
                    &[&mailbox.id, &i64::from(*uid), &i64::from(format), data],
                )?;
            }
            Ok(())
        })
    }

    fn mailbox_counts(&self, mailbox: MailboxId) -> Result<MailboxCounts> {
        self.read(|c| {
            let sql =
                format!("SELECT {COUNT_COLS} FROM mailboxes WHERE id = $1 AND account_id = $2");
            let r = c
                .cq_opt(sql.as_str(), &[&mailbox.id, &mailbox.account.0])?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))?;
            Ok(row_to_counts(&r, 0))
        })
    }

    fn mailbox_status(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<(MailboxInfo, MailboxCounts)>> {
        // One statement, one round trip (STATUS is what clients poll).
        self.read(|c| {
            let sql = format!(
                "SELECT {MAILBOX_COLS}, {COUNT_COLS} FROM mailboxes
                  WHERE account_id = $1 AND name = $2"
            );
            c.cq_opt(sql.as_str(), &[&account.0, &name])?
                .map(|r| Ok((row_to_mailbox(&r)?, row_to_counts(&r, MAILBOX_COL_COUNT))))
                .transpose()
        })
    }

    fn claim_recent(&self, mailbox: MailboxId, up_to: u32) -> Result<u32> {
        self.write(move |c| {
            let prev: i64 = c
                .cq_opt(
                    "SELECT recent_uid FROM mailboxes WHERE id = $1 AND account_id = $2 FOR UPDATE",
                    &[&mailbox.id, &mailbox.account.0],
                )?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))?
                .get(0);
            if i64::from(up_to) > prev {
                c.cexec(
                    "UPDATE mailboxes SET recent_uid = $2 WHERE id = $1",
                    &[&mailbox.id, &i64::from(up_to)],
                )?;
            }
            to_u32(prev)
        })
    }

    fn append_message(
        &self,
        mailbox: MailboxId,
        data: &[u8],
        flags: Flags,
        keywords: &[String],
        internal_date: i64,
    ) -> Result<(u32, u32)> {
        let message = NewMessage {
            data: data.to_vec(),
            flags,
            keywords: keywords.to_vec(),
            internal_date,
        };
        let (uv, uids) = self.append_owned(mailbox, vec![message])?;
        let uid = uids
            .first()
            .copied()
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))?;
        Ok((uv, uid))
    }

    fn append_messages(
        &self,
        mailbox: MailboxId,
        messages: &[NewMessage],
    ) -> Result<(u32, Vec<u32>)> {
        self.append_owned(mailbox, messages.to_vec())
    }

    fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        op: FlagOp,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<(Vec<MessageMeta>, Vec<u32>)> {
        let uids = uids.to_vec();
        let keywords = keywords.to_vec();
        self.write(move |c| {
            lock_mailbox(c, mailbox)?;
            let mut changed = Vec::new();
            let mut modified = Vec::new();
            let mut modseq: Option<i64> = None;
            let read = c.prepare(
                "SELECT mm.message_id, mm.flags, mm.keywords, mm.internal_date, m.size, mm.modseq, m.ends_lf
                   FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id
                  WHERE mm.mailbox_id = $1 AND mm.uid = $2",
            )?;
            for &uid in &uids {
                let Some(row) = c.query_opt(&read, &[&mailbox.id, &i64::from(uid)])? else {
                    continue;
                };
                let message: i64 = row.get(0);
                let old_flags = row.get::<_, i64>(1) as u32;
                let old_kw: String = row.get(2);
                let internal_date: i64 = row.get(3);
                let size: i64 = row.get(4);
                let old_modseq: i64 = row.get(5);
                let ends_with_lf: bool = row.get(6);
                if unchanged_since.is_some_and(|u| old_modseq.max(0) as u64 > u) {
                    modified.push(uid);
                    continue;
                }
                let old_kw: Vec<String> = old_kw.split_whitespace().map(String::from).collect();
                let (new_flags, new_kw) = match op {
                    FlagOp::Replace => (flags, keywords.clone()),
                    FlagOp::Add => {
                        let mut k = old_kw.clone();
                        for w in &keywords {
                            if !k.iter().any(|x| x.eq_ignore_ascii_case(w)) {
                                k.push(w.clone());
                            }
                        }
                        (Flags(old_flags).union(flags), k)
                    }
                    FlagOp::Remove => (
                        Flags(old_flags).without(flags),
                        old_kw
                            .iter()
                            .filter(|x| !keywords.iter().any(|w| w.eq_ignore_ascii_case(x)))
                            .cloned()
                            .collect(),
                    ),
                };
                if new_flags.0 == old_flags && new_kw == old_kw {
                    continue;
                }
                let ms = match modseq {
                    Some(m) => m,
                    None => {
                        let m: i64 = c
                            .cq_one(
                                "UPDATE mailboxes SET highest_modseq = highest_modseq + 1
                                  WHERE id = $1 RETURNING highest_modseq",
                                &[&mailbox.id],
                            )?
                            .get(0);
                        modseq = Some(m);
                        m
                    }
                };
                c.cexec(
                    "UPDATE mailbox_messages SET flags = $3, keywords = $4, modseq = $5
                      WHERE mailbox_id = $1 AND uid = $2",
                    &[&mailbox.id, &i64::from(uid), &i64::from(new_flags.0), &new_kw.join(" "), &ms],
                )?;
                changed.push(MessageMeta {
                    uid,
                    message: MessageId(message),
                    size: size.max(0) as u64,
                    flags: new_flags,
                    keywords: new_kw,
                    internal_date,
                    modseq: ms.max(0) as u64,
                    ends_with_lf,
                });
            }
            if modseq.is_some() {
                notify_mailbox(c, mailbox.id)?;
            }
            Ok((changed, modified))
        })
    }

    fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
        remove: bool,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        let kept = self.tombstones_kept();
        self.write(move |c| {
            // Both mailboxes locked, in id order, so two nodes copying between the same two
            // mailboxes in opposite directions take turns instead of deadlocking.
            let (first, second) = if from.id <= to.id { (from, to) } else { (to, from) };
            lock_mailbox(c, first)?;
            if second != first {
                lock_mailbox(c, second)?;
            }
            let uv: i64 = c
                .cq_one("SELECT uidvalidity FROM mailboxes WHERE id = $1", &[&to.id])?
                .get(0);
            let mut pairs = Vec::new();
            for &uid in &uids {
                let Some(row) = c.cq_opt(
                    "SELECT message_id, flags, keywords, internal_date FROM mailbox_messages
                      WHERE mailbox_id = $1 AND uid = $2",
                    &[&from.id, &i64::from(uid)],
                )?
                else {
                    continue;
                };
                let (message, fl, kw, date): (i64, i64, String, i64) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                // RFC 9051 §2.3.1.1: UIDs strictly ascending in the target, never reused.
                let r = c.cq_one(
                    "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1
                       WHERE id = $1 RETURNING uidnext - 1, highest_modseq",
                    &[&to.id],
                )?;
                let (new_uid, modseq): (i64, i64) = (r.get(0), r.get(1));
                c.cexec(
                    "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, internal_date, modseq)
                       VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&to.id, &new_uid, &message, &fl, &kw, &date, &modseq],
                )?;
                if remove {
                    c.cexec(
                        "DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid = $2",
                        &[&from.id, &i64::from(uid)],
                    )?;
                }
                pairs.push((uid, to_u32(new_uid)?));
            }
            if !pairs.is_empty() {
                notify_mailbox(c, to.id)?;
            }
            if remove && !pairs.is_empty() {
                c.cexec(
                    "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1",
                    &[&from.id],
                )?;
                prune_tombstones(c, from.id, kept)?;
                notify_mailbox(c, from.id)?;
            }
            Ok((to_u32(uv)?, pairs))
        })
    }

    fn queue_list(&self) -> Result<Vec<QueueEntry>> {
        self.read(|c| {
            let rows = c.cq(
                "SELECT id, message_id, sender, created FROM queue ORDER BY id",
                &[],
            )?;
            load_queue_entries(c, rows)
        })
    }

    fn queue_due(&self, now: i64, limit: usize) -> Result<Vec<QueueEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            let rows = c.cq(
                "SELECT q.id, q.message_id, q.sender, q.created FROM queue q
                   JOIN (SELECT queue_id, MIN(next_attempt) AS due FROM queue_recipients
                          WHERE status = 'pending' AND next_attempt <= $1 AND lease <= $1
                          GROUP BY queue_id) d ON d.queue_id = q.id
                  ORDER BY d.due, q.id LIMIT $2",
                &[&now, &limit],
            )?;
            load_queue_entries(c, rows)
        })
    }

    fn queue_claim(&self, ids: &[i64], now: i64, until: i64) -> Result<Vec<i64>> {
        let ids = ids.to_vec();
        self.write(move |c| {
            // SKIP LOCKED: a recipient another node is claiming at this moment is simply not
            // ours; its lease decides the rest.
            let mut claimed: Vec<i64> = c
                .cq(
                    "UPDATE queue_recipients SET lease = $3
                      WHERE id IN (SELECT id FROM queue_recipients
                                    WHERE id = ANY($1) AND status = 'pending'
                                      AND next_attempt <= $2 AND lease <= $2
                                    FOR UPDATE SKIP LOCKED)
                      RETURNING id",
                    &[&ids, &now, &until],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let order: std::collections::HashMap<i64, usize> =
                ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
            claimed.sort_by_key(|id| order.get(id).copied().unwrap_or(usize::MAX));
            Ok(claimed)
        })
    }

    fn queue_renew(&self, claims: &[(i64, i64)], until: i64) -> Result<Vec<i64>> {
        let (ids, leases): (Vec<i64>, Vec<i64>) = claims.iter().copied().unzip();
        self.write(move |c| {
            // One statement for all: a row another node is claiming at this moment waits for
            // that claim's commit, and then its lease no longer matches.
            let mut renewed: Vec<i64> = c
                .cq(
                    "UPDATE queue_recipients q SET lease = $3
                       FROM unnest($1::bigint[], $2::bigint[]) AS c(id, lease)
                      WHERE q.id = c.id AND q.lease = c.lease AND q.lease <> 0
                        AND q.status = 'pending'
                      RETURNING q.id",
                    &[&ids, &leases, &until],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let order: std::collections::HashMap<i64, usize> =
                ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
            renewed.sort_by_key(|id| order.get(id).copied().unwrap_or(usize::MAX));
            Ok(renewed)
        })
    }

    fn queue_release_claims(&self) -> Result<usize> {
        // Other nodes' attempts may be running on the claims: they are never dropped here.
        // A claim whose node died expires with its lease.
        Ok(0)
    }

    fn queue_next_due(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.cq_one(
                "SELECT MIN(next_attempt) FROM queue_recipients WHERE status = 'pending'",
                &[],
            )?
            .get(0))
        })
    }

    fn queue_update(&self, updates: Vec<RecipientUpdate>, bounce: Option<Delivery>) -> Result<()> {
        self.write(move |c| queue_update_in(c, &updates, bounce.as_ref()))
    }

    fn queue_update_async(
        self: Arc<Self>,
        updates: Vec<RecipientUpdate>,
        bounce: Option<Delivery>,
    ) -> StoreFuture<()> {
        self.write_async(move |c| queue_update_in(c, &updates, bounce.as_ref()))
    }

    fn queue_flush(&self) -> Result<usize> {
        self.write(|c| {
            Ok(c.cexec(
                "UPDATE queue_recipients SET next_attempt = 0 WHERE status = 'pending'",
                &[],
            )? as usize)
        })
    }

    fn queue_retry(&self, id: QueueId) -> Result<usize> {
        self.write(move |c| {
            if c.cq_opt("SELECT 1 FROM queue WHERE id = $1", &[&id.0])?.is_none() {
                return Err(StoreError::NotFound(format!("queue entry {}", id.0)));
            }
            Ok(c.cexec(
                "UPDATE queue_recipients SET next_attempt = 0 WHERE queue_id = $1 AND status = 'pending'",
                &[&id.0],
            )? as usize)
        })
    }

    fn queue_remove(&self, id: QueueId) -> Result<()> {
        self.write(move |c| {
            let Some(r) = c.cq_opt(
                "DELETE FROM queue WHERE id = $1 RETURNING message_id",
                &[&id.0],
            )?
            else {
                return Err(StoreError::NotFound(format!("queue entry {}", id.0)));
            };
            collect_message(c, r.get(0))?;
            Ok(())
        })
    }

    fn compact(&self) -> Result<(u64, u64)> {
        Err(StoreError::Invalid(
            "the store is in PostgreSQL, which reclaims space itself (autovacuum); VACUUM FULL by hand gives it back to the disk".into(),
        ))
    }

    fn set_min_free_space(&self, _octets: u64) {
        // The database server's disk is not ours to measure; PostgreSQL refuses writes
        // itself when it is full (SQLSTATE 53100, answered as StorageFull).
    }

    fn set_tombstones_kept(&self, n: u64) {
        self.tombstones_kept.store(n, Ordering::Relaxed);
    }

    fn lock_maildrop(&self, account: AccountId) -> Result<Option<HeldLock>> {
        let tx = self
            .locks
            .lock()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = mpsc::sync_channel(1);
        tx.send(LockRequest::Lock(account.0, reply))
            .map_err(|_| StoreError::Closed)?;
        let held = answer.recv().map_err(|_| StoreError::Closed)??;
        if !held {
            return Ok(None);
        }
        let key = account.0;
        Ok(Some(HeldLock::new(move || {
            let _ = tx.send(LockRequest::Unlock(key));
        })))
    }

    fn on_mailbox_change(&self, f: Box<dyn Fn(i64) + Send + Sync>) {
        if let Ok(mut l) = self.listeners.lock() {
            l.push(f);
        }
        if !self.listening.swap(true, Ordering::AcqRel) {
            let (config, listeners, stop) = (
                self.config.clone(),
                self.listeners.clone(),
                self.stop.clone(),
            );
            if let Err(e) = std::thread::Builder::new()
                .name("pg-listen".into())
                .spawn(move || listen_loop(config, listeners, stop))
            {
                tracing::error!(error = %e, "cannot start the notification thread; IDLE polls only");
            }
        }
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn auth_failure_record(&self, key: &str, window_ms: i64) -> Result<Option<u32>> {
        let key = key.to_string();
        let window = window_ms.max(1);
        // Every AUTH_PRUNE_EVERY-th failure this node records prunes the table: at most
        // AUTH_FAILURE_KEYS rows plus what the nodes add until their next pruning.
        let prune = self
            .auth_failures_recorded
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(AUTH_PRUNE_EVERY);
        let n: i64 = self.write(move |c| {
            // One statement: a count whose last failure is older than the window starts
            // again; the row lock orders the nodes' failures for one address.
            let n: i64 = c
                .cq_one(
                    "INSERT INTO auth_failures (key, failures, last_ms)
                     VALUES ($1, 1, (extract(epoch from clock_timestamp()) * 1000)::bigint)
                     ON CONFLICT (key) DO UPDATE SET
                        failures = CASE WHEN auth_failures.last_ms <= EXCLUDED.last_ms - $2 THEN 1
                                        ELSE auth_failures.failures + 1 END,
                        last_ms = EXCLUDED.last_ms
                     RETURNING failures",
                    &[&key, &window],
                )?
                .get(0);
            if prune {
                c.cexec(
                    "DELETE FROM auth_failures
                      WHERE last_ms <= (extract(epoch from clock_timestamp()) * 1000)::bigint - $1",
                    &[&window],
                )?;
                c.cexec(
                    "DELETE FROM auth_failures WHERE key IN
                       (SELECT key FROM auth_failures ORDER BY last_ms DESC OFFSET $1)",
                    &[&(AUTH_FAILURE_KEYS as i64)],
                )?;
            }
            Ok(n)
        })?;
        Ok(Some(u32::try_from(n).unwrap_or(u32::MAX)))
    }

    fn auth_failure_count(&self, key: &str, window_ms: i64) -> Result<Option<u32>> {
        let window = window_ms.max(1);
        let n: Option<i64> = self.read(|c| {
            Ok(c.cq_opt(
                "SELECT failures FROM auth_failures WHERE key = $1
                    AND last_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint - $2",
                &[&key, &window],
            )?
            .map(|r| r.get(0)))
        })?;
        Ok(Some(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))))
    }

    fn session_create(&self, session: &WebSession, max_per_account: usize) -> Result<()> {
        let s = session.clone();
        let keep = i64::try_from(max_per_account.max(1)).unwrap_or(i64::MAX);
        self.write(move |c| {
            c.cexec(
                "DELETE FROM web_sessions WHERE expires_ms <= $1",
                &[&now_unix_ms()],
            )?;
            c.cexec(
                "INSERT INTO web_sessions (id_hash, account_id, password_fp, csrf, created_ms, expires_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id_hash) DO UPDATE SET account_id = EXCLUDED.account_id,
                    password_fp = EXCLUDED.password_fp, csrf = EXCLUDED.csrf,
                    created_ms = EXCLUDED.created_ms, expires_ms = EXCLUDED.expires_ms",
                &[&s.id_hash, &s.account.0, &s.password_fp, &s.csrf, &s.created_ms, &s.expires_ms],
            )?;
            // The account's newest `keep` stay.
            c.cexec(
                "DELETE FROM web_sessions WHERE account_id = $1 AND id_hash NOT IN
                   (SELECT id_hash FROM web_sessions WHERE account_id = $1
                     ORDER BY created_ms DESC, id_hash LIMIT $2)",
                &[&s.account.0, &keep],
            )?;
            Ok(())
        })
    }

    fn session_get(&self, id_hash: &str) -> Result<Option<WebSession>> {
        self.read(|c| {
            Ok(c.cq_opt(
                "SELECT id_hash, account_id, password_fp, csrf, created_ms, expires_ms
                   FROM web_sessions WHERE id_hash = $1",
                &[&id_hash],
            )?
            .map(|r| WebSession {
                id_hash: r.get(0),
                account: AccountId(r.get(1)),
                password_fp: r.get(2),
                csrf: r.get(3),
                created_ms: r.get(4),
                expires_ms: r.get(5),
            }))
        })
    }

    fn session_touch(&self, id_hash: &str, expires_ms: i64) -> Result<bool> {
        let id = id_hash.to_string();
        self.write(move |c| {
            Ok(c.cexec(
                "UPDATE web_sessions SET expires_ms = GREATEST(expires_ms, $2) WHERE id_hash = $1",
                &[&id, &expires_ms],
            )? > 0)
        })
    }

    fn session_remove(&self, id_hash: &str) -> Result<bool> {
        let id = id_hash.to_string();
        self.write(move |c| Ok(c.cexec("DELETE FROM web_sessions WHERE id_hash = $1", &[&id])? > 0))
    }

    fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Some(h) = self.writer_thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
        if let Some(l) = self.locks.lock().ok().and_then(|mut l| l.take()) {
            let _ = l.send(LockRequest::Close);
        }
        if let Ok(mut r) = self.readers.lock() {
            r.take();
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Mailbox entries copied per transaction.
pub(crate) const IMPORT_CHUNK: usize = 200;

impl PgStore {
    /// Copies everything of `src` (another store, normally the SQLite one of a data
    /// directory) into this database, which must hold no account yet: domains, aliases,
    /// accounts (password hashes, quotas, APOP secrets), every mailbox with its UIDVALIDITY,
    /// UIDNEXT, HIGHESTMODSEQ and `\Recent` mark, subscriptions, every message with its UID,
    /// flags, keywords, internal date and MODSEQ, and the outbound queue with each
    /// recipient's state. IMAP clients keep their caches: nothing they see changes. A message
    /// stored once for several mailboxes stays stored once. QRESYNC tombstones are not
    /// carried over: a client that knew an older MODSEQ is told every UID that is not there
    /// (`vanished_floor`). Then the counts are compared, mailbox by mailbox; a mismatch is an
    /// error. `progress(entries copied, entries in all)` is called as it goes.
    pub fn import_from(
        &self,
        src: &dyn MailStore,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ImportCounts> {
        let existing: i64 =
            self.read(|c| Ok(c.cq_one("SELECT COUNT(*) FROM accounts", &[])?.get(0)))?;
        if existing > 0 {
            return Err(StoreError::Exists(format!(
                "{existing} accounts in the target database (it must be empty; use a new database)"
            )));
        }
        let mut counts = ImportCounts::default();
        let domains = src.list_domains()?;
        let aliases = src.list_aliases()?;
        let accounts = src.list_accounts()?;
        let mut plan = Vec::new();
        let mut total = 0usize;
        for a in &accounts {
            for mb in src.list_mailboxes(a.id)? {
                let msgs = src.list_messages(mb.id)?;
                total += msgs.len();
                plan.push((a.id, mb, msgs));
            }
        }
        {
            let (domains, aliases) = (domains.clone(), aliases.clone());
            self.write(move |c| {
                for d in &domains {
                    c.cexec("INSERT INTO domains (name) VALUES ($1) ON CONFLICT DO NOTHING", &[d])?;
                }
                for (s, t) in &aliases {
                    c.cexec(
                        "INSERT INTO aliases (source, target) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[s, t],
                    )?;
                }
                Ok(())
            })?;
        }
        counts.domains = domains.len();
        counts.aliases = aliases.len();
        // Source account id -> new id; source message id -> new message id (shared blobs).
        let mut account_ids = std::collections::HashMap::new();
        for a in &accounts {
            let apop = src.apop_secret(&a.address)?;
            let subs = src.subscriptions(a.id)?;
            let (address, hash) = (a.address.clone(), a.password_hash.clone());
            let quota = a.quota.map(|q| i64::try_from(q).unwrap_or(i64::MAX));
            let id: i64 = self.write(move |c| {
                let id: i64 = c
                    .cq_one(
                        "INSERT INTO accounts (address, password_hash, created, quota, apop_secret)
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                        &[&address, &hash, &now_unix(), &quota, &apop],
                    )?
                    .get(0);
                for name in &subs {
                    c.cexec(
                        "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[&id, name],
                    )?;
                }
                Ok(id)
            })?;
            account_ids.insert(a.id, id);
        }
        counts.accounts = accounts.len();
        let mut blobs: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
        let mut done = 0usize;
        progress(0, total);
        for (account, mb, msgs) in &plan {
            let owner = *account_ids
                .get(account)
                .ok_or_else(|| StoreError::Invalid("internal: account not copied".into()))?;
            let (name, uv, uidnext, hms, special, recent) = (
                mb.name.clone(),
                i64::from(mb.uidvalidity),
                i64::from(mb.uidnext),
                i64::try_from(mb.highest_modseq).unwrap_or(i64::MAX),
                mb.special_use.clone(),
                i64::from(mb.recent_uid),
            );
            let new_mb: i64 = self.write(move |c| {
                let id: i64 = c
                    .cq_one(
                        "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highest_modseq,
                                                special_use, recent_uid, vanished_floor)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $5) RETURNING id",
                        &[&owner, &name, &uv, &uidnext, &hms, &special, &recent],
                    )?
                    .get(0);
                c.cexec(
                    "UPDATE counters SET value = GREATEST(value, $1) WHERE name = 'uidvalidity'",
                    &[&uv],
                )?;
                Ok(id)
            })?;
            counts.mailboxes += 1;
            for chunk in msgs.chunks(IMPORT_CHUNK) {
                // Read outside the transaction; the octets of blobs already copied are not
                // read again.
                let mut rows = Vec::with_capacity(chunk.len());
                for m in chunk {
                    let at = MessageRef::Mailbox {
                        mailbox: mb.id,
                        uid: m.uid,
                    };
                    // A new blob comes with its SMTP transcript, if it has one.
                    let data = match blobs.get(&m.message.0) {
                        Some(_) => None,
                        None => Some((src.message_octets(at)?, src.message_transcript(at)?)),
                    };
                    counts.octets += m.size;
                    rows.push((m.clone(), blobs.get(&m.message.0).copied(), data));
                }
                let new_ids: Vec<(i64, i64)> = self.write(move |c| {
                    let mut made = Vec::new();
                    for (m, known, data) in &rows {
                        let blob = match (known, data) {
                            (Some(id), _) => *id,
                            (None, Some((d, transcript))) => {
                                let id = insert_message(c, d)?.0;
                                if let Some(t) = transcript {
                                    c.cexec(
                                        "INSERT INTO message_transcript (message_id, peer, listener, truncated, lines)
                                         VALUES ($1, $2, $3, $4, $5)",
                                        &[&id, &t.peer, &t.listener, &t.truncated, &t.encode_lines()],
                                    )?;
                                }
                                made.push((m.message.0, id));
                                id
                            }
                            (None, None) => {
                                return Err(StoreError::Invalid("internal: message octets missing".into()))
                            }
                        };
                        c.cexec(
                            "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, internal_date, modseq)
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            &[
                                &new_mb,
                                &i64::from(m.uid),
                                &blob,
                                &i64::from(m.flags.0),
                                &m.keywords.join(" "),
                                &m.internal_date,
                                &i64::try_from(m.modseq).unwrap_or(i64::MAX),
                            ],
                        )?;
                    }
                    Ok(made)
                })?;
                blobs.extend(new_ids);
                done += chunk.len();
                counts.messages += chunk.len();
                progress(done, total);
            }
            // Verify: the database's own counters against the source.
            let mid = MailboxId {
                account: AccountId(owner),
                id: new_mb,
            };
            let got = self.mailbox_counts(mid)?;
            if got.messages != msgs.len() as u64 {
                return Err(StoreError::Invalid(format!(
                    "mailbox {} of {}: {} messages copied, {} in the source",
                    mb.name,
                    accounts
                        .iter()
                        .find(|a| a.id == *account)
                        .map(|a| a.address.as_str())
                        .unwrap_or("?"),
                    got.messages,
                    msgs.len()
                )));
            }
        }
        for e in src.queue_list()? {
            let data = src.message_octets(MessageRef::Queued(e.id))?;
            let entry = e.clone();
            self.write(move |c| {
                let msg = insert_message(c, &data)?;
                let qid: i64 = c
                    .cq_one(
                        "INSERT INTO queue (message_id, sender, created) VALUES ($1, $2, $3) RETURNING id",
                        &[&msg.0, &entry.sender, &entry.created],
                    )?
                    .get(0);
                for r in &entry.recipients {
                    c.cexec(
                        "INSERT INTO queue_recipients (queue_id, recipient, status, attempts, next_attempt, last_error)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&qid, &r.recipient, &r.status, &i64::from(r.attempts), &r.next_attempt, &r.last_error],
                    )?;
                }
                Ok(())
            })?;
            counts.queued += 1;
        }
        // The totals once more, from the database.
        let (n_accounts, n_entries, n_queue): (i64, i64, i64) = self.read(|c| {
            let r = c.cq_one(
                "SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM mailbox_messages),
                        (SELECT COUNT(*) FROM queue)",
                &[],
            )?;
            Ok((r.get(0), r.get(1), r.get(2)))
        })?;
        if n_accounts as usize != counts.accounts
            || n_entries as usize != counts.messages
            || n_queue as usize != counts.queued
        {
            return Err(StoreError::Invalid(format!(
                "after copying, the database holds {n_accounts} accounts, {n_entries} messages and {n_queue} queue entries; the source had {}, {} and {}",
                counts.accounts, counts.messages, counts.queued
            )));
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Two stores on one database: two nodes.
    fn two_nodes() -> (Arc<PgStore>, Arc<PgStore>) {
        let url = crate::testing::pg_database();
        (
            Arc::new(PgStore::open(&url).unwrap()),
            Arc::new(PgStore::open(&url).unwrap()),
        )
    }

    #[test]
    fn a_writing_node_vacuums_its_hot_tables() {
        // Two nodes' updates of one mailbox row leave versions that slow every delivery
        // until a vacuum; a node that writes vacuums the hot tables itself.
        let url = crate::testing::pg_database();
        let s = PgStore::open(&url).unwrap();
        let mut probe = connect(&url.parse().unwrap()).unwrap();
        let count = |c: &mut Client| -> i64 {
            c.query_one(
                "SELECT COALESCE(SUM(vacuum_count), 0)::bigint FROM pg_stat_user_tables
                  WHERE relname IN ('mailboxes', 'accounts', 'counters')",
                &[],
            )
            .unwrap()
            .get(0)
        };
        let before = count(&mut probe);
        let a = s.add_account("a@x.test", "h").unwrap();
        s.deliver(Delivery::to_inboxes(b"m\r\n".to_vec(), vec![a]))
            .unwrap();
        let deadline = std::time::Instant::now() + VACUUM_EVERY * 3;
        while count(&mut probe) < before + 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "no vacuum of the hot tables within {:?}",
                VACUUM_EVERY * 3
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    #[test]
    fn a_call_from_async_code_blocks_instead_of_panicking() {
        // The driver's own client panics inside a runtime; ours runs on the store's threads.
        let url = crate::testing::pg_database();
        let s = PgStore::open(&url).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let domains = rt.block_on(async {
            s.add_domain("x.test").unwrap();
            s.list_domains().unwrap()
        });
        assert_eq!(domains, ["x.test"]);
    }

    /// Everything a store's user sees of it, in a comparable form (ids left out: they are
    /// the backend's own).
    fn snapshot(s: &dyn MailStore) -> Vec<String> {
        let mut out = vec![
            format!("domains {:?}", s.list_domains().unwrap()),
            format!("aliases {:?}", s.list_aliases().unwrap()),
        ];
        for a in s.list_accounts().unwrap() {
            out.push(format!(
                "account {} {} {:?} apop {:?} usage {} subs {:?}",
                a.address,
                a.password_hash,
                a.quota,
                s.apop_secret(&a.address).unwrap(),
                s.account_usage(a.id).unwrap(),
                s.subscriptions(a.id).unwrap()
            ));
            for mb in s.list_mailboxes(a.id).unwrap() {
                out.push(format!(
                    "  {} uv {} next {} hms {} recent {} use {:?} {:?}",
                    mb.name,
                    mb.uidvalidity,
                    mb.uidnext,
                    mb.highest_modseq,
                    mb.recent_uid,
                    mb.special_use,
                    s.mailbox_counts(mb.id).unwrap()
                ));
                for m in s.list_messages(mb.id).unwrap() {
                    let at = MessageRef::Mailbox {
                        mailbox: mb.id,
                        uid: m.uid,
                    };
                    out.push(format!(
                        "    {} {} {:?} {:?} {} {} {} {:?} transcript {:?}",
                        m.uid,
                        m.size,
                        m.flags,
                        m.keywords,
                        m.internal_date,
                        m.modseq,
                        m.ends_with_lf,
                        String::from_utf8_lossy(&s.message_octets(at).unwrap()),
                        s.message_transcript(at).unwrap().map(|t| t.encode_lines())
                    ));
                }
            }
        }
        for q in s.queue_list().unwrap() {
            out.push(format!(
                "queue {} {} {:?} {:?}",
                q.sender,
                q.created,
                q.recipients
                    .iter()
                    .map(|r| (
                        &r.recipient,
                        &r.status,
                        r.attempts,
                        r.next_attempt,
                        &r.last_error
                    ))
                    .collect::<Vec<_>>(),
                String::from_utf8_lossy(&s.message_octets(MessageRef::Queued(q.id)).unwrap())
            ));
        }
        out
    }

    #[test]
    fn a_store_goes_from_sqlite_to_postgres_and_back_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let src = crate::sqlite::SqliteStore::open(dir.path()).unwrap();
        let a = src.add_account("a@x.test", "hash-a").unwrap();
        let b = src.add_account("b@y.test", "hash-b").unwrap();
        src.set_quota("a@x.test", Some(5000)).unwrap();
        src.set_apop_secret("b@y.test", Some("tanstaaf")).unwrap();
        src.add_alias("team@x.test", "a@x.test").unwrap();
        src.subscribe(a, "Gone", true).unwrap();
        let t = Transcript {
            lines: vec![
                (Direction::Server, "220 mx ESMTP".into()),
                (Direction::Client, "MAIL FROM:<z@z.test>".into()),
            ],
            truncated: false,
            peer: "127.0.0.1:5000".into(),
            listener: "smtp".into(),
        };
        src.deliver(Delivery {
            transcript: Some(t),
            local_message: b"Subject: both\r\n\r\nhi\r\n".to_vec(),
            local: vec![a, b],
            outbound: Some(Outbound {
                sender: "a@x.test".into(),
                recipients: vec!["far@away.test".into(), "near@away.test".into()],
                message: b"Subject: out\r\n\r\n".to_vec(),
                first_attempt: 77,
                claim_until: 0,
            }),
        })
        .unwrap();
        let inbox = src.mailbox(a, "INBOX").unwrap().unwrap();
        for i in 0..5 {
            src.append_message(
                inbox.id,
                format!("m{i}\n").as_bytes(),
                Flags::default(),
                &[],
                1000 + i,
            )
            .unwrap();
        }
        src.expunge(inbox.id, &[3]).unwrap();
        src.store_flags(
            inbox.id,
            &[2],
            FlagOp::Add,
            Flags::SEEN,
            &["$Work".into()],
            None,
        )
        .unwrap();
        src.claim_recent(inbox.id, 4).unwrap();
        let work = src.create_mailbox(a, "Work/2026").unwrap();
        src.copy_messages(inbox.id, &[1, 2], work, false).unwrap();
        let before = snapshot(&src);

        let url = crate::testing::pg_database();
        let pg = PgStore::open(&url).unwrap();
        pg.import_from(&src, |_, _| ()).unwrap();
        assert_eq!(snapshot(&pg), before, "SQLite -> PostgreSQL");

        let back_dir = tempfile::tempdir().unwrap();
        let back = crate::sqlite::SqliteStore::open(back_dir.path()).unwrap();
        let mut calls = 0;
        let counts = back.import_from(&pg, |_, _| calls += 1).unwrap();
        assert!(calls > 1);
        assert_eq!(
            (
                counts.accounts,
                counts.mailboxes > 2,
                counts.messages,
                counts.queued
            ),
            (2, true, 5 + 1 + 2, 1)
        );
        assert_eq!(snapshot(&back), before, "PostgreSQL -> SQLite");
        // Twice is refused: the target is not empty.
        assert!(matches!(
            back.import_from(&pg, |_, _| ()),
            Err(StoreError::Exists(_))
        ));
        // Blobs stay shared (the one delivered to both, four appended, the queued one).
        let blobs: i64 = rusqlite::Connection::open(back_dir.path().join("mailroom.db"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(blobs, 6);
        // A QRESYNC client that knew an older MODSEQ is told every UID not there.
        let a3 = back.find_account("a@x.test").unwrap().unwrap();
        let inbox3 = back.mailbox(a3.id, "INBOX").unwrap().unwrap();
        assert!(!back.vanished_since(inbox3.id, 1).unwrap().complete);
        // New mailboxes never reuse a copied UIDVALIDITY.
        let fresh = back.create_mailbox(a3.id, "Fresh").unwrap();
        let uv = back.mailbox_by_id(fresh).unwrap().unwrap().uidvalidity;
        for acc in src.list_accounts().unwrap() {
            for m in src.list_mailboxes(acc.id).unwrap() {
                assert!(uv > m.uidvalidity, "{uv} {}", m.uidvalidity);
            }
        }
        // And the copy works as a store: a delivery gets the next UID.
        back.append_message(inbox3.id, b"new\r\n", Flags::default(), &[], 5)
            .unwrap();
        assert_eq!(
            back.mailbox(a3.id, "INBOX").unwrap().unwrap().uidnext,
            inbox3.uidnext + 1
        );
    }

    #[test]
    fn an_sqlite_store_is_copied_with_its_uids_flags_and_queue() {
        let dir = tempfile::tempdir().unwrap();
        let src = crate::sqlite::SqliteStore::open(dir.path()).unwrap();
        let a = src.add_account("a@x.test", "hash-a").unwrap();
        let b = src.add_account("b@y.test", "hash-b").unwrap();
        src.set_quota("a@x.test", Some(5000)).unwrap();
        src.set_apop_secret("b@y.test", Some("tanstaaf")).unwrap();
        src.add_alias("team@x.test", "a@x.test").unwrap();
        src.subscribe(a, "Gone", true).unwrap();
        // One delivery to both: one blob, two entries.
        src.deliver(Delivery {
            transcript: None,
            local_message: b"Subject: both\r\n\r\nhi\r\n".to_vec(),
            local: vec![a, b],
            outbound: Some(Outbound {
                sender: "a@x.test".into(),
                recipients: vec!["far@away.test".into()],
                message: b"Subject: out\r\n\r\n".to_vec(),
                first_attempt: 77,
                claim_until: 0,
            }),
        })
        .unwrap();
        let inbox = src.mailbox(a, "INBOX").unwrap().unwrap();
        for i in 0..5 {
            src.append_message(
                inbox.id,
                format!("m{i}\r\n").as_bytes(),
                Flags::default(),
                &[],
                1000 + i,
            )
            .unwrap();
        }
        src.expunge(inbox.id, &[3]).unwrap();
        src.store_flags(
            inbox.id,
            &[2],
            FlagOp::Add,
            Flags::SEEN,
            &["$Work".into()],
            None,
        )
        .unwrap();
        let work = src.create_mailbox(a, "Work/2026").unwrap();
        src.copy_messages(inbox.id, &[1, 2], work, false).unwrap();
        let before = src.mailbox(a, "INBOX").unwrap().unwrap();

        let url = crate::testing::pg_database();
        let dst = PgStore::open(&url).unwrap();
        let mut calls = 0;
        let counts = dst.import_from(&src, |_, _| calls += 1).unwrap();
        assert!(calls > 1);
        assert_eq!(counts.accounts, 2);
        assert_eq!(counts.queued, 1);
        assert_eq!(counts.messages, 5 + 1 + 2);
        // The same again is refused: the target is not empty.
        assert!(matches!(
            dst.import_from(&src, |_, _| ()),
            Err(StoreError::Exists(_))
        ));

        let a2 = dst.find_account("a@x.test").unwrap().unwrap();
        assert_eq!(a2.password_hash, "hash-a");
        assert_eq!(a2.quota, Some(5000));
        assert_eq!(
            dst.apop_secret("b@y.test").unwrap().as_deref(),
            Some("tanstaaf")
        );
        assert_eq!(dst.alias_targets("team@x.test").unwrap(), ["a@x.test"]);
        assert!(dst
            .subscriptions(a2.id)
            .unwrap()
            .contains(&"Gone".to_string()));
        let after = dst.mailbox(a2.id, "INBOX").unwrap().unwrap();
        assert_eq!(
            (
                after.uidvalidity,
                after.uidnext,
                after.highest_modseq,
                after.recent_uid
            ),
            (
                before.uidvalidity,
                before.uidnext,
                before.highest_modseq,
                before.recent_uid
            )
        );
        let strip = |v: Vec<MessageMeta>| {
            v.into_iter()
                .map(|m| {
                    (
                        m.uid,
                        m.size,
                        m.flags,
                        m.keywords,
                        m.internal_date,
                        m.modseq,
                        m.ends_with_lf,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strip(dst.list_messages(after.id).unwrap()),
            strip(src.list_messages(before.id).unwrap())
        );
        assert_eq!(
            dst.account_usage(a2.id).unwrap(),
            src.account_usage(a).unwrap()
        );
        let body = dst
            .message_octets(MessageRef::Mailbox {
                mailbox: after.id,
                uid: 1,
            })
            .unwrap();
        assert_eq!(body, b"Subject: both\r\n\r\nhi\r\n");
        let q = dst.queue_list().unwrap();
        assert_eq!(q[0].recipients[0].recipient, "far@away.test");
        assert_eq!(q[0].recipients[0].next_attempt, 77);
        // Blobs stay shared: the one delivered to both, the four appended left (the copies
        // share theirs), the queued one.
        let mut c = Client::connect(&url, NoTls).unwrap();
        let blobs: i64 = c
            .query_one("SELECT COUNT(*) FROM messages", &[])
            .unwrap()
            .get(0);
        assert_eq!(blobs, 6);
        // New mailboxes never reuse a copied UIDVALIDITY.
        let fresh = dst.create_mailbox(a2.id, "Fresh").unwrap();
        let uv = dst.mailbox_by_id(fresh).unwrap().unwrap().uidvalidity;
        for m in src
            .list_mailboxes(a)
            .unwrap()
            .iter()
            .chain(src.list_mailboxes(b).unwrap().iter())
        {
            assert!(uv > m.uidvalidity);
        }
    }

    #[test]
    fn migrations_run_once_and_record_the_version() {
        let url = crate::testing::pg_database();
        let a = PgStore::open(&url).unwrap();
        a.add_account("a@x.test", "h").unwrap();
        drop(a);
        let b = PgStore::open(&url).unwrap();
        assert!(b.find_account("a@x.test").unwrap().is_some());
        let mut c = Client::connect(&url, NoTls).unwrap();
        let v: i64 = c
            .query_one("SELECT version FROM schema_version", &[])
            .unwrap()
            .get(0);
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_bad_url_says_what_a_good_one_looks_like() {
        let e = match PgStore::open("postgres://u:secret@127.0.0.1:notaport/db") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("opened a bad URL"),
        };
        assert!(e.contains("postgres://user@host:5432/mailroom"), "{e}");
        assert!(!e.contains("secret"), "the password leaked: {e}");
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn two_nodes_delivering_at_once_hand_out_every_uid_once() {
        let (n1, n2) = two_nodes();
        let a = n1.add_account("a@x.test", "h").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let s = if i % 2 == 0 { n1.clone() } else { n2.clone() };
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        s.deliver(Delivery::to_inboxes(b"m\r\n".to_vec(), vec![a]))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let inbox = n2.mailbox(a, "INBOX").unwrap().unwrap();
        let uids: Vec<u32> = n2
            .list_messages(inbox.id)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, (1..=200).collect::<Vec<_>>());
        assert_eq!(inbox.uidnext, 201);
        assert_eq!(inbox.highest_modseq, 201);
        assert_eq!(n1.mailbox_counts(inbox.id).unwrap().messages, 200);
        assert_eq!(n1.account_usage(a).unwrap(), 600);
    }

    #[test]
    fn deliveries_in_opposite_orders_on_two_nodes_all_commit() {
        // Recipients given in opposite orders on two nodes: INBOX rows are locked in account
        // order, so neither job waits for the other in a circle.
        let (n1, n2) = two_nodes();
        let a = n1.add_account("a@x.test", "h").unwrap();
        let b = n1.add_account("b@x.test", "h").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (s, to) = if i % 2 == 0 {
                    (n1.clone(), vec![a, b])
                } else {
                    (n2.clone(), vec![b, a])
                };
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        s.deliver(Delivery::to_inboxes(b"m\r\n".to_vec(), to.clone()))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for acct in [a, b] {
            let inbox = n2.mailbox(acct, "INBOX").unwrap().unwrap();
            assert_eq!(n2.list_messages(inbox.id).unwrap().len(), 160);
        }
    }

    #[test]
    fn single_deliveries_batched_in_opposite_orders_on_two_nodes_all_commit() {
        // Each node's writer batches the jobs waiting: node 1 [a, b], node 2 [b, a] hold the
        // INBOX rows in opposite orders across jobs; the losing job runs again alone.
        let (n1, n2) = two_nodes();
        let a = n1.add_account("a@x.test", "h").unwrap();
        let b = n1.add_account("b@x.test", "h").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let s = if i % 2 == 0 { n1.clone() } else { n2.clone() };
                let seq = if i % 4 < 2 { [a, b] } else { [b, a] };
                std::thread::spawn(move || {
                    for k in 0..40 {
                        s.deliver(Delivery::to_inboxes(b"m\r\n".to_vec(), vec![seq[k % 2]]))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for acct in [a, b] {
            let inbox = n2.mailbox(acct, "INBOX").unwrap().unwrap();
            assert_eq!(n2.list_messages(inbox.id).unwrap().len(), 160);
        }
    }

    #[test]
    fn uidvalidity_never_repeats_whichever_node_creates() {
        let (n1, n2) = two_nodes();
        let a = n1.add_account("a@x.test", "h").unwrap();
        let mut seen = std::collections::HashSet::new();
        for m in n1.list_mailboxes(a).unwrap() {
            assert!(seen.insert(m.uidvalidity));
        }
        for i in 0..10 {
            let s = if i % 2 == 0 { &n1 } else { &n2 };
            let id = s.create_mailbox(a, "Again").unwrap();
            let uv = s.mailbox_by_id(id).unwrap().unwrap().uidvalidity;
            assert!(seen.insert(uv), "UIDVALIDITY {uv} handed out twice");
            s.delete_mailbox(id).unwrap();
        }
    }

    #[test]
    fn the_maildrop_lock_holds_across_nodes_and_dies_with_its_node() {
        let (n1, n2) = two_nodes();
        let a = n1.add_account("a@x.test", "h").unwrap();
        let held = n1.lock_maildrop(a).unwrap().expect("first lock");
        assert!(n2.lock_maildrop(a).unwrap().is_none());
        drop(held);
        // The unlock is sent to the lock thread; it is done when the next request is.
        let mut again = None;
        for _ in 0..50 {
            again = n2.lock_maildrop(a).unwrap();
            if again.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let again = again.expect("released lock taken by the other node");
        assert!(n1.lock_maildrop(a).unwrap().is_none());
        // The holding node goes away without releasing: its connection closes, and with it
        // the lock.
        std::mem::forget(again);
        n2.shutdown();
        drop(n2);
        let mut taken = false;
        for _ in 0..100 {
            if n1.lock_maildrop(a).unwrap().is_some() {
                taken = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(taken, "a dead node's maildrop lock was never released");
    }

    #[test]
    fn two_nodes_claim_each_recipient_once() {
        let (n1, n2) = two_nodes();
        for i in 0..50 {
            n1.deliver(Delivery {
                outbound: Some(Outbound {
                    sender: "a@x.test".into(),
                    recipients: vec![format!("r{i}@far.test")],
                    message: b"m".to_vec(),
                    first_attempt: 0,
                    claim_until: 0,
                }),
                ..Delivery::default()
            })
            .unwrap();
        }
        let ids: Vec<i64> = n1
            .queue_due(10, 100)
            .unwrap()
            .iter()
            .flat_map(|e| e.recipients.iter().map(|r| r.id))
            .collect();
        assert_eq!(ids.len(), 50);
        let claims: Vec<_> = [n1.clone(), n2.clone(), n1.clone(), n2.clone()]
            .into_iter()
            .map(|s| {
                let ids = ids.clone();
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for chunk in ids.chunks(5) {
                        mine.extend(s.queue_claim(chunk, 10, 100).unwrap());
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<i64> = claims.into_iter().flat_map(|t| t.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(
            all,
            ids.iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn another_nodes_change_reaches_on_mailbox_change() {
        let (n1, n2) = two_nodes();
        let a = n1.add_account("a@x.test", "h").unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        n2.on_mailbox_change(Box::new(move |id| {
            if let Ok(t) = tx.lock() {
                let _ = t.send(id);
            }
        }));
        let inbox = n1.mailbox(a, "INBOX").unwrap().unwrap();
        // The listener may still be connecting: deliver until it hears one.
        let mut heard = None;
        for _ in 0..20 {
            n1.deliver(Delivery::to_inboxes(b"m\r\n".to_vec(), vec![a]))
                .unwrap();
            if let Ok(id) = rx.recv_timeout(Duration::from_millis(500)) {
                heard = Some(id);
                break;
            }
        }
        assert_eq!(heard, Some(inbox.id.id));
        n2.shutdown();
    }

    #[test]
    fn a_change_on_one_node_is_announced_to_listeners() {
        let url = crate::testing::pg_database();
        let s = PgStore::open(&url).unwrap();
        let a = s.add_account("a@x.test", "h").unwrap();
        let mut listener = Client::connect(&url, NoTls).unwrap();
        listener
            .batch_execute(&format!("LISTEN {MAILBOX_CHANNEL}"))
            .unwrap();
        s.deliver(Delivery::to_inboxes(b"m\r\n".to_vec(), vec![a]))
            .unwrap();
        let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
        use fallible_iterator::FallibleIterator;
        let mut n = listener.notifications();
        let got = n
            .timeout_iter(Duration::from_secs(1))
            .next()
            .unwrap()
            .expect("a notification within a second");
        assert_eq!(got.payload(), inbox.id.id.to_string());
    }
}
