//! The embedded backend: SQLite (bundled) in WAL mode with `synchronous=FULL`.
//!
//! # Group commit
//! All writes go through one writer thread that owns the only write connection. A caller sends
//! a job (a closure) and blocks until its batch is committed. The writer takes the first job,
//! then every job already waiting (up to [`MAX_BATCH`]), runs each inside its own SAVEPOINT (so
//! one failing job rolls back alone), and commits the batch with a single COMMIT, which in WAL
//! mode with `synchronous=FULL` is one fsync of the WAL. Each caller is answered only after that
//! COMMIT returned: an acknowledgement always means "on disk".
//!
//! # Reads
//! Reads use a small pool of read-only connections; WAL lets them run beside the writer and see
//! the last committed state.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::*;

/// At most this many write jobs share one transaction.
pub const MAX_BATCH: usize = 256;
/// Prepared statements each connection keeps (rusqlite's default of 16 is fewer than the
/// writer's hot statements: a delivery, a queue result and the savepoints alone use 15, so
/// they pushed each other out and were parsed again).
const STATEMENT_CACHE: usize = 128;
/// Read connections kept open for reuse.
const READ_POOL_SIZE: usize = 16;

type JobFn = Box<dyn FnOnce(&Connection) -> JobResult + Send>;

struct Job {
    run: JobFn,
    reply: Reply,
}

pub struct SqliteStore {
    path: PathBuf,
    data_dir: PathBuf,
    /// `limits.min_free_space`: new mail is refused while less than this would be left free
    /// (see [`SqliteStore::check_space`]).
    min_free_space: std::sync::atomic::AtomicU64,
    /// How many tombstones a mailbox keeps ([`TOMBSTONES_KEPT`] unless set).
    tombstones_kept: std::sync::atomic::AtomicU64,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    /// What the writer did (commit durations, batch sizes), for the server's metrics.
    writer_stats: std::sync::Arc<crate::stats::WriterCounters>,
}

/// Versioned schema: entry N brings the schema from version N to N+1 (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &[
    // v1: the foundation.
    r#"
    CREATE TABLE domains (
        name TEXT PRIMARY KEY
    );
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE TABLE mailboxes (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uidnext INTEGER NOT NULL DEFAULT 1,
        highest_modseq INTEGER NOT NULL DEFAULT 1,
        special_use TEXT,
        subscribed INTEGER NOT NULL DEFAULT 1,
        UNIQUE (account_id, name)
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        size INTEGER NOT NULL,
        created INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE mailbox_messages (
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        message_id INTEGER NOT NULL REFERENCES messages(id),
        flags INTEGER NOT NULL DEFAULT 0,
        keywords TEXT NOT NULL DEFAULT '',
        internal_date INTEGER NOT NULL,
        modseq INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (mailbox_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX mailbox_messages_message ON mailbox_messages(message_id);
    CREATE TABLE queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id INTEGER NOT NULL REFERENCES messages(id),
        sender TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX queue_message ON queue(message_id);
    CREATE TABLE queue_recipients (
        id INTEGER PRIMARY KEY,
        queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
        recipient TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_error TEXT
    );
    CREATE INDEX queue_recipients_due ON queue_recipients(status, next_attempt);
    "#,
    // v2: aliases and catch-alls ("@domain").
    r#"
    CREATE TABLE aliases (
        source TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (source, target)
    );
    "#,
    // v3: the facts about a message that listings need, in a narrow table of their own, so a
    // mailbox listing never touches message blobs (a column after a blob is read by walking the
    // blob's overflow pages). ends_lf: POP3 gives exact sizes without reading the message.
    r#"
    CREATE TABLE message_info (
        message_id INTEGER PRIMARY KEY,
        size INTEGER NOT NULL,
        ends_lf INTEGER NOT NULL
    );
    INSERT INTO message_info (message_id, size, ends_lf)
        SELECT id, size, (size = 0 OR substr(data, size, 1) = x'0a') FROM messages;
    "#,
    // v4: IMAP sessions catch up on changes by modseq instead of re-reading whole mailboxes.
    r#"
    CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq);
    "#,
    // v5: per-account storage quota in octets, set with `mailroom user quota`. NULL: the
    // server's default (`limits.account_quota`) applies, so existing accounts keep it.
    r#"
    ALTER TABLE accounts ADD COLUMN quota INTEGER;
    "#,
    // v6: each account's usage kept by the database itself, in the same transaction as every
    // change: a row added to or removed from mailbox_messages adds or subtracts its message's
    // size. (Every delete path removes an account's mailbox_messages rows before its
    // mailboxes, so the mailbox is still there to name the account.) The quota check then
    // reads one row instead of summing the whole account.
    r#"
    ALTER TABLE accounts ADD COLUMN used INTEGER NOT NULL DEFAULT 0;
    UPDATE accounts SET used = (
        SELECT COALESCE(SUM(mi.size), 0)
          FROM mailboxes m
         CROSS JOIN mailbox_messages mm ON mm.mailbox_id = m.id
         CROSS JOIN message_info mi ON mi.message_id = mm.message_id
         WHERE m.account_id = accounts.id);
    CREATE TRIGGER mailbox_messages_used_insert AFTER INSERT ON mailbox_messages BEGIN
        UPDATE accounts
           SET used = used + COALESCE((SELECT size FROM message_info WHERE message_id = NEW.message_id), 0)
         WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
    END;
    CREATE TRIGGER mailbox_messages_used_delete AFTER DELETE ON mailbox_messages BEGIN
        UPDATE accounts
           SET used = used - COALESCE((SELECT size FROM message_info WHERE message_id = OLD.message_id), 0)
         WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
    END;
    "#,
    // v7: ids are never handed out twice. Without AUTOINCREMENT, SQLite gives a new row the id
    // of a deleted row that had the highest id, and a session still holding the old id (a
    // selected mailbox, a POP3 maildrop, a logged-in account) reached the new row: another
    // account's mail. Each table is rebuilt with AUTOINCREMENT (SQLite's documented 12-step
    // procedure: new table, copy, drop, rename; foreign keys are off while migrating, and the
    // triggers that name the tables are dropped and made again). The counter in
    // sqlite_sequence starts at the highest id present. UIDVALIDITY gets a counter of its own
    // (`counters`), so a mailbox deleted and created again never gets the same value even in
    // the same second (RFC 9051 §2.3.1.1); it was the highest value present, which a delete
    // could lower.
    r#"
    DROP TRIGGER mailbox_messages_used_insert;
    DROP TRIGGER mailbox_messages_used_delete;

    CREATE TABLE accounts_v7 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        address TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created INTEGER NOT NULL,
        quota INTEGER,
        used INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO accounts_v7 (id, address, password_hash, created, quota, used)
        SELECT id, address, password_hash, created, quota, used FROM accounts;
    DROP TABLE accounts;
    ALTER TABLE accounts_v7 RENAME TO accounts;

    CREATE TABLE mailboxes_v7 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uidnext INTEGER NOT NULL DEFAULT 1,
        highest_modseq INTEGER NOT NULL DEFAULT 1,
        special_use TEXT,
        subscribed INTEGER NOT NULL DEFAULT 1,
        UNIQUE (account_id, name)
    );
    INSERT INTO mailboxes_v7 SELECT id, account_id, name, uidvalidity, uidnext, highest_modseq,
        special_use, subscribed FROM mailboxes;
    DROP TABLE mailboxes;
    ALTER TABLE mailboxes_v7 RENAME TO mailboxes;

    CREATE TABLE messages_v7 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        size INTEGER NOT NULL,
        created INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    INSERT INTO messages_v7 (id, size, created, data) SELECT id, size, created, data FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v7 RENAME TO messages;

    CREATE TABLE queue_recipients_v7 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
        recipient TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_error TEXT
    );
    INSERT INTO queue_recipients_v7 SELECT id, queue_id, recipient, status, attempts,
        next_attempt, last_error FROM queue_recipients;
    DROP TABLE queue_recipients;
    ALTER TABLE queue_recipients_v7 RENAME TO queue_recipients;
    CREATE INDEX queue_recipients_due ON queue_recipients(status, next_attempt);

    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO counters (name, value)
        VALUES ('uidvalidity', (SELECT COALESCE(MAX(uidvalidity), 0) FROM mailboxes));

    CREATE TRIGGER mailbox_messages_used_insert AFTER INSERT ON mailbox_messages BEGIN
        UPDATE accounts
           SET used = used + COALESCE((SELECT size FROM message_info WHERE message_id = NEW.message_id), 0)
         WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
    END;
    CREATE TRIGGER mailbox_messages_used_delete AFTER DELETE ON mailbox_messages BEGIN
        UPDATE accounts
           SET used = used - COALESCE((SELECT size FROM message_info WHERE message_id = OLD.message_id), 0)
         WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
    END;
    "#,
    // v8: a recipient is claimed before a delivery attempt (lease: Unix seconds until which
    // an attempt holds it; 0: nobody), so an attempt is never started twice and a result is
    // recorded only by the attempt that holds the claim.
    r#"
    ALTER TABLE queue_recipients ADD COLUMN lease INTEGER NOT NULL DEFAULT 0;
    "#,
    // v9: \Recent (RFC 3501 §2.3.2): the highest UID already reported recent to a session.
    // Mail already there when this version starts is not recent.
    r#"
    ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
    UPDATE mailboxes SET recent_uid = uidnext - 1;
    "#,
    // v10: subscriptions are names, apart from the mailboxes (RFC 9051 §6.3.9: a subscription
    // may name a mailbox that does not exist, and outlives a deleted one; CREATE does not
    // subscribe). The old `mailboxes.subscribed` column is carried over and no longer read.
    // And each mailbox's counts, kept by triggers in the same transaction as every change
    // (like `accounts.used`), so STATUS reads one row whatever the mailbox's size.
    r#"
    CREATE TABLE subscriptions (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        PRIMARY KEY (account_id, name)
    ) WITHOUT ROWID;
    INSERT INTO subscriptions (account_id, name)
        SELECT account_id, name FROM mailboxes WHERE subscribed = 1;
    ALTER TABLE mailboxes ADD COLUMN messages INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE mailboxes ADD COLUMN unseen INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE mailboxes ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE mailboxes ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
    UPDATE mailboxes SET
        messages = (SELECT COUNT(*) FROM mailbox_messages WHERE mailbox_id = mailboxes.id),
        unseen = (SELECT COUNT(*) FROM mailbox_messages
                   WHERE mailbox_id = mailboxes.id AND (flags & 1) = 0),
        deleted = (SELECT COUNT(*) FROM mailbox_messages
                    WHERE mailbox_id = mailboxes.id AND (flags & 8) != 0),
        size = (SELECT COALESCE(SUM(mi.size), 0) FROM mailbox_messages mm
                  JOIN message_info mi ON mi.message_id = mm.message_id
                 WHERE mm.mailbox_id = mailboxes.id);
    CREATE TRIGGER mailbox_messages_count_insert AFTER INSERT ON mailbox_messages BEGIN
        UPDATE mailboxes SET messages = messages + 1,
               unseen = unseen + ((NEW.flags & 1) = 0),
               deleted = deleted + ((NEW.flags & 8) != 0),
               size = size + COALESCE((SELECT size FROM message_info WHERE message_id = NEW.message_id), 0)
         WHERE id = NEW.mailbox_id;
    END;
    CREATE TRIGGER mailbox_messages_count_delete AFTER DELETE ON mailbox_messages BEGIN
        UPDATE mailboxes SET messages = messages - 1,
               unseen = unseen - ((OLD.flags & 1) = 0),
               deleted = deleted - ((OLD.flags & 8) != 0),
               size = size - COALESCE((SELECT size FROM message_info WHERE message_id = OLD.message_id), 0)
         WHERE id = OLD.mailbox_id;
    END;
    CREATE TRIGGER mailbox_messages_count_update AFTER UPDATE OF flags, mailbox_id ON mailbox_messages
      WHEN OLD.mailbox_id != NEW.mailbox_id OR (OLD.flags & 9) != (NEW.flags & 9) BEGIN
        UPDATE mailboxes SET messages = messages - 1,
               unseen = unseen - ((OLD.flags & 1) = 0),
               deleted = deleted - ((OLD.flags & 8) != 0),
               size = size - COALESCE((SELECT size FROM message_info WHERE message_id = OLD.message_id), 0)
         WHERE id = OLD.mailbox_id;
        UPDATE mailboxes SET messages = messages + 1,
               unseen = unseen + ((NEW.flags & 1) = 0),
               deleted = deleted + ((NEW.flags & 8) != 0),
               size = size + COALESCE((SELECT size FROM message_info WHERE message_id = NEW.message_id), 0)
         WHERE id = NEW.mailbox_id;
    END;
    "#,
    // v11: what a protocol driver computed from a message's octets for searching (IMAP: the
    // header fields as SEARCH matches them), kept with the message so that a header search
    // of a large mailbox reads one narrow row per message instead of parsing every message,
    // also after a restart. Opaque to the store; `format` lets a newer driver ignore rows of
    // an older one, and several kinds (SEARCH fields, SORT keys) live side by side. Deleted
    // with the message (cascade).
    r#"
    CREATE TABLE message_search (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        format INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (message_id, format)
    ) WITHOUT ROWID;
    "#,
    // QRESYNC (RFC 7162 §3.2): tombstones, the UIDs expunged from a mailbox and the modseq
    // of their expunge, so a client can be told what vanished since the modseq it knew. A
    // trigger writes one for every row that leaves `mailbox_messages` (EXPUNGE, MOVE, POP3
    // deletions, repairs) with the modseq the mailbox gets in the same transaction (every
    // remover bumps `highest_modseq` once after removing); they go with their mailbox
    // (cascade, and a trigger). `vanished_floor`: tombstones at or below it were pruned (or
    // never kept: the mailboxes that exist when this version starts), so a client that knew
    // only an older modseq is told every UID below UIDNEXT that is not there (§3.2.5.1,
    // §3.2.10).
    r#"
    CREATE TABLE expunged (
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
    ALTER TABLE mailboxes ADD COLUMN vanished_floor INTEGER NOT NULL DEFAULT 0;
    UPDATE mailboxes SET vanished_floor = highest_modseq;
    CREATE TRIGGER mailbox_messages_tombstone AFTER DELETE ON mailbox_messages BEGIN
        INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)
            SELECT OLD.mailbox_id, OLD.uid, highest_modseq + 1 FROM mailboxes
             WHERE id = OLD.mailbox_id;
    END;
    -- Also where foreign keys are off (repairs, a hand-edited store): no tombstone outlives
    -- its mailbox.
    CREATE TRIGGER mailboxes_tombstones_delete AFTER DELETE ON mailboxes BEGIN
        DELETE FROM expunged WHERE mailbox_id = OLD.id;
    END;
    "#,
    // APOP (RFC 1939 §7): an account's shared secret, kept apart from the argon2 password
    // hash because the server must compute MD5(timestamp + secret) from it, so it is stored
    // as given. NULL: no APOP for this account (`mailroom user add|passwd --apop` sets it).
    r#"
    ALTER TABLE accounts ADD COLUMN apop_secret TEXT;
    "#,
    // The SMTP dialogue of the session that delivered a message (issue 17: the web inbox's
    // "SMTP dialogue" tab, `GET /api/messages/{mailbox}/{id}/transcript`). One row per stored
    // message, written in the delivery's transaction and gone with the message (cascade, and
    // a trigger where foreign keys are off). `lines`: one `C: text` / `S: text` per line, each
    // already masked and escaped (no line holds a line break).
    r#"
    CREATE TABLE message_transcript (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        peer TEXT NOT NULL,
        listener TEXT NOT NULL,
        truncated INTEGER NOT NULL,
        lines TEXT NOT NULL
    );
    CREATE TRIGGER messages_transcript_delete AFTER DELETE ON messages BEGIN
        DELETE FROM message_transcript WHERE message_id = OLD.id;
    END;
    "#,
    // A queue entry's recipients found by their entry. Without it every delivery result
    // (`queue_update`) and every round's read of the due entries scanned the whole
    // queue_recipients table: relaying slowed down as the queue grew (perf, issue 18).
    // `queue_recipients_due` now holds the lease and the entry too: the due list skips
    // claimed recipients and finds their entries inside the index, without reading rows.
    r#"
    CREATE INDEX IF NOT EXISTS queue_recipients_queue ON queue_recipients(queue_id);
    DROP INDEX IF EXISTS queue_recipients_due;
    CREATE INDEX queue_recipients_due ON queue_recipients(status, next_attempt, lease, queue_id);
    "#,
    // Web login sessions (issue 18): the HTTP API's cookies, kept in the store so that a
    // restart does not log everybody out (and, on PostgreSQL, every node knows them). Keyed by
    // the SHA-256 of the cookie's id, never the id itself; gone with their account (cascade,
    // and a trigger where foreign keys are off).
    r#"
    CREATE TABLE web_sessions (
        id_hash TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        password_fp TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX web_sessions_account ON web_sessions(account_id, created_ms);
    CREATE INDEX web_sessions_expires ON web_sessions(expires_ms);
    CREATE TRIGGER accounts_web_sessions_delete AFTER DELETE ON accounts BEGIN
        DELETE FROM web_sessions WHERE account_id = OLD.id;
    END;
    "#,
];

/// How many tombstones (see the `expunged` table) a mailbox keeps; the oldest beyond this are
/// pruned and the mailbox's `vanished_floor` raised to the newest pruned one.
pub const TOMBSTONES_KEPT: u64 = 20_000;

/// Prunes a mailbox's oldest tombstones beyond `keep`, raising its `vanished_floor`.
fn prune_tombstones(c: &Connection, mailbox: i64, keep: u64) -> rusqlite::Result<()> {
    let n: i64 = c.query_row(
        "SELECT COUNT(*) FROM expunged WHERE mailbox_id = ?1",
        params![mailbox],
        |r| r.get(0),
    )?;
    let excess = n - i64::try_from(keep).unwrap_or(i64::MAX);
    if excess <= 0 {
        return Ok(());
    }
    let floor: i64 = c.query_row(
        "SELECT modseq FROM expunged WHERE mailbox_id = ?1 ORDER BY modseq LIMIT 1 OFFSET ?2",
        params![mailbox, excess - 1],
        |r| r.get(0),
    )?;
    // Whole modseqs only: one expunge's tombstones share a modseq and go together.
    c.execute(
        "DELETE FROM expunged WHERE mailbox_id = ?1 AND modseq <= ?2",
        params![mailbox, floor],
    )?;
    c.execute(
        "UPDATE mailboxes SET vanished_floor = MAX(vanished_floor, ?2) WHERE id = ?1",
        params![mailbox, floor],
    )?;
    Ok(())
}

/// The schema version this build writes (`PRAGMA user_version` of an up-to-date store).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The octets an account's messages take, computed from scratch: what the `accounts.used`
/// counter (schema v6) must always equal (the tests check it after every kind of change, and
/// `mailroom check` on every account; the v6 migration fills the counter with the same sum). Every step is an index lookup, never a
/// scan (`usage_query_uses_indexes` checks the plan):
/// ```text
/// SEARCH m USING COVERING INDEX sqlite_autoindex_mailboxes_1 (account_id=?)
/// SEARCH mm USING PRIMARY KEY (mailbox_id=?)
/// SEARCH mi USING INTEGER PRIMARY KEY (rowid=?)
/// ```
/// CROSS JOIN fixes that order (SQLite never reorders a CROSS JOIN), so the planner cannot
/// start from message_info and walk every message of every account. The cost is one lookup
/// per message of the account.
pub(crate) const USAGE_SQL: &str = "SELECT COALESCE(SUM(mi.size), 0)
       FROM mailboxes m
      CROSS JOIN mailbox_messages mm ON mm.mailbox_id = m.id
      CROSS JOIN message_info mi ON mi.message_id = mm.message_id
      WHERE m.account_id = ?1";

/// A mailbox's counts computed from scratch, in the order of the counter columns `messages,
/// unseen, deleted, size` (schema v10): what the counters must always equal (`mailroom check`
/// and the tests compare them). `?1` is the mailbox id.
pub(crate) const MAILBOX_COUNTS_SQL: &str = "SELECT COUNT(*),
            COALESCE(SUM((mm.flags & 1) = 0), 0),
            COALESCE(SUM((mm.flags & 8) != 0), 0),
            COALESCE(SUM(mi.size), 0)
       FROM mailbox_messages mm
      CROSS JOIN message_info mi ON mi.message_id = mm.message_id
      WHERE mm.mailbox_id = ?1";

const ACCOUNT_COLS: &str = "id, address, password_hash, quota";

fn row_to_account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: AccountId(r.get(0)?),
        address: r.get(1)?,
        password_hash: r.get(2)?,
        quota: r.get::<_, Option<i64>>(3)?.map(|q| q.max(0) as u64),
    })
}

impl SqliteStore {
    /// Appends messages to a mailbox in one write transaction (all or none); returns the
    /// UIDVALIDITY and the new UIDs. One path for APPEND and MULTIAPPEND.
    fn append_owned(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>)> {
        let total = messages.iter().map(|m| m.data.len()).sum::<usize>();
        self.check_space(total)?;
        // One write transaction through the group-commit writer: an error from any message
        // rolls back every one of them (RFC 3502 §6.3.11).
        self.write(move |c| {
            let mut uv = 0;
            let mut uids = Vec::with_capacity(messages.len());
            for m in &messages {
                let (v, uid, modseq): (u32, u32, i64) = c
                    .query_row(
                        "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1
                           WHERE id = ?1 AND account_id = ?2
                           RETURNING uidvalidity, uidnext - 1, highest_modseq",
                        params![mailbox.id, mailbox.account.0],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?
                    .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))?;
                let msg = insert_message(c, &m.data)?;
                c.execute(
                    "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, internal_date, modseq)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![mailbox.id, uid, msg.0, m.flags.0, m.keywords.join(" "), m.internal_date, modseq],
                )?;
                uv = v;
                uids.push(uid);
            }
            Ok((uv, uids))
        })
    }

    /// Opens `DATA_DIR/mailroom.db`, creating the directory and the schema as needed.
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        crate::files::prepare_data_dir(data_dir)?; // owner-only: 0700, the files 0600
        let path = data_dir.join("mailroom.db");
        let conn = Connection::open(&path)?;
        configure(&conn)?;
        migrate(&conn)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_stats = std::sync::Arc::new(crate::stats::WriterCounters::default());
        let counters = writer_stats.clone();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, &counters))?;
        Ok(SqliteStore {
            path,
            data_dir: data_dir.to_path_buf(),
            min_free_space: std::sync::atomic::AtomicU64::new(0),
            tombstones_kept: std::sync::atomic::AtomicU64::new(TOMBSTONES_KEPT),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            readers: Mutex::new(Vec::new()),
            writer_stats,
        })
    }

    /// Runs `f` in the next group-committed transaction and returns its result once committed.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = blocking_reply();
        self.submit(f, reply)?;
        downcast(answer.recv().map_err(|_| StoreError::Closed)?)
    }

    /// As [`SqliteStore::write`], but nothing waits: the future resolves once the writer
    /// committed (no thread blocked on the commit in the meantime).
    fn write_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
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
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
        reply: Reply,
    ) -> Result<()> {
        let job = Job {
            run: Box::new(move |c| f(c).map(|v| Box::new(v) as Box<dyn Any + Send>)),
            reply,
        };
        let guard = self.writer.lock().map_err(|_| StoreError::Closed)?;
        let tx = guard.as_ref().ok_or(StoreError::Closed)?;
        tx.send(job).map_err(|_| StoreError::Closed)
    }

    fn tombstones_kept(&self) -> u64 {
        self.tombstones_kept
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Refuses a new message of `size` octets (`StorageFull`, so SMTP answers `452 4.3.1` and
    /// IMAP `NO`) while storing it would leave less than `limits.min_free_space` free: the
    /// space kept back is what deletions (EXPUNGE, DELE, `user remove`) and status changes need
    /// on a disk that would otherwise be full to the last byte, so users can always make room.
    /// Free pages inside the database file (left by deletions, reused before the file grows)
    /// count as free. Like Postfix's `queue_minfree`; the check is outside the write
    /// transaction, so the reserve also absorbs sessions storing at the same moment.
    fn check_space(&self, size: usize) -> Result<()> {
        let reserve = self
            .min_free_space
            .load(std::sync::atomic::Ordering::Relaxed);
        if reserve == 0 {
            return Ok(());
        }
        let need = reserve.saturating_add(size as u64);
        let avail = match crate::files::available_space(&self.data_dir) {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "cannot measure the free space; not refusing");
                return Ok(());
            }
        };
        if avail >= need {
            return Ok(());
        }
        let in_file = self.read(|c| {
            let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            Ok((free.max(0) as u64).saturating_mul(page.max(0) as u64))
        })?;
        if avail.saturating_add(in_file) >= need {
            return Ok(());
        }
        const MIB: u64 = 1024 * 1024;
        Err(StoreError::StorageFull(format!(
            "{} MiB left on the disk of the data directory, and limits.min_free_space keeps {} MiB of it for deletions",
            avail.saturating_add(in_file) / MIB,
            reserve / MIB
        )))
    }

    /// Runs `f` on a pooled read connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(30))?;
                c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                c
            }
        };
        let out = f(&conn);
        if let Ok(mut pool) = self.readers.lock() {
            if pool.len() < READ_POOL_SIZE {
                pool.push(conn);
            }
        }
        out
    }
}

fn account_by_id(c: &Connection, id: AccountId) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row(params![id.0], row_to_account)
        .optional()?)
}

fn mailbox_by_id(c: &Connection, mailbox: MailboxId) -> Result<Option<MailboxInfo>> {
    let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = ?1 AND account_id = ?2");
    Ok(c.prepare_cached(&sql)?
        .query_row(params![mailbox.id, mailbox.account.0], row_to_mailbox)
        .optional()?)
}

/// The UIDs expunged from a mailbox after `since_modseq`, from its tombstones; not `complete`
/// when tombstones that old were pruned.
fn tombstones_since(c: &Connection, mailbox: MailboxId, since_modseq: u64) -> Result<Vanished> {
    let floor: i64 = c
        .prepare_cached("SELECT vanished_floor FROM mailboxes WHERE id = ?1")?
        .query_row(params![mailbox.id], |r| r.get(0))?;
    let since = i64::try_from(since_modseq).unwrap_or(i64::MAX);
    let mut st = c.prepare_cached(
        "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
    )?;
    let uids = st
        .query_map(params![mailbox.id, since], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<u32>>>()?;
    Ok(Vanished {
        uids,
        complete: since >= floor,
    })
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    // A new database returns the pages that deletions free to the file system (the writer
    // releases them a step at a time, see `release_free_pages`); this can only be chosen
    // before the first table exists. An older store keeps its mode until `mailroom compact`.
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    // WAL: readers never block the writer; synchronous=FULL: every COMMIT fsyncs the WAL,
    // so an acknowledged write survives power loss, not only a process crash.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Invalid(format!(
            "the data directory was written by a newer mailroom (schema version {version}, this build knows {})",
            MIGRATIONS.len()
        )));
    }
    if version == MIGRATIONS.len() {
        return Ok(());
    }
    // Rebuilding a table (v7) drops the old one: foreign keys must be off meanwhile (the
    // pragma is a no-op inside a transaction), and are checked before each commit.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = (|| -> Result<()> {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            let broken: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                .optional()?;
            if let Some(table) = broken {
                return Err(StoreError::Invalid(format!(
                    "schema migration to version {} left a broken reference in table {table}",
                    i + 1
                )));
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "store schema migrated");
        }
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

/// How often the writer looks for free pages to give back to the file system.
const RELEASE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// Free pages kept in the file for the next messages (4 MiB at the default 4 KiB page).
const KEEP_FREE_PAGES: i64 = 1024;
/// Pages given back per transaction, so waiting jobs run between steps.
const RELEASE_STEP: i64 = 2048;

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>, stats: &crate::stats::WriterCounters) {
    let mut next_release = std::time::Instant::now() + RELEASE_EVERY;
    let mut releasing = false;
    loop {
        let wait = if releasing {
            std::time::Duration::ZERO
        } else {
            next_release.saturating_duration_since(std::time::Instant::now())
        };
        match rx.recv_timeout(wait) {
            Ok(first) => {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                run_batch(&conn, batch, stats);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if releasing || std::time::Instant::now() >= next_release {
            releasing = match release_free_pages(&conn, RELEASE_STEP) {
                Ok(more) => more,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot give free store pages back to the disk");
                    false
                }
            };
            if !releasing {
                next_release = std::time::Instant::now() + RELEASE_EVERY;
            }
        }
    }
    // Channel closed: shutdown. Fold the WAL into the database so the files are tidy.
    if let Err(e) = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
        tracing::warn!(error = %e, "final WAL checkpoint failed");
    }
}

/// Gives up to `step` free pages of the database file back to the file system (SQLite's
/// incremental vacuum, in a transaction of its own), keeping [`KEEP_FREE_PAGES`] for the next
/// messages. Returns whether more could be given back. Does nothing for a store made before
/// auto_vacuum was set (`mailroom compact` converts it).
pub(crate) fn release_free_pages(conn: &Connection, step: i64) -> Result<bool> {
    // In a transaction: the connection reads the database header (auto_vacuum may have been
    // changed by `mailroom compact` on another connection) only when one begins.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let run = (|| -> rusqlite::Result<bool> {
        let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let excess = free - KEEP_FREE_PAGES;
        if mode != 2 || excess <= 0 {
            return Ok(false);
        }
        let n = excess.min(step);
        // The pragma frees one page per step: step it to the end.
        let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({n})"))?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        Ok(excess > n)
    })();
    match run.and_then(|more| conn.execute_batch("COMMIT").map(|()| more)) {
        Ok(more) => Ok(more),
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e.into())
        }
    }
}

/// Rewrites the whole database file without its free pages (SQLite's VACUUM) and switches a
/// store made before 0.2.0 to giving freed pages back by itself. Needs free space about the
/// size of the store, and holds the write lock while it runs.
pub(crate) fn compact(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.execute_batch("VACUUM")?;
    Ok(())
}

/// Runs a batch of jobs in as few transactions as possible and answers each job only once the
/// transaction that holds its work has committed.
///
/// A job runs inside its own SAVEPOINT, so a job that fails rolls back alone. But some errors
/// (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM, ...) can make SQLite roll back the *whole*
/// transaction: the jobs that ran before are gone too, and anything run after would execute in
/// autocommit mode, outside the batch. So after every job the connection is asked whether the
/// transaction is still open; if it is not (or a savepoint statement failed), every job of
/// that transaction is answered with an error (nothing of it is on disk; a `451` lets the
/// sender retry) and the jobs not yet run start a new transaction. A result is sent only after
/// the COMMIT of the transaction that holds it returned Ok.
///
/// `stats` gets each committed transaction's duration (BEGIN to the end of COMMIT, the fsync
/// included) and number of jobs, and counts the transactions that failed.
fn run_batch(conn: &Connection, batch: Vec<Job>, stats: &crate::stats::WriterCounters) {
    use std::sync::atomic::Ordering;
    let mut pending: std::collections::VecDeque<Job> = batch.into();
    while !pending.is_empty() {
        let began = std::time::Instant::now();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            stats.failed_commits.fetch_add(1, Ordering::Relaxed);
            let failure = Failure::of(&e, "cannot begin");
            for job in pending {
                (job.reply)(Err(failure.error()));
            }
            return;
        }
        let mut done: Vec<(Reply, JobResult)> = Vec::new();
        let mut broken: Option<Failure> = None;
        while let Some(job) = pending.pop_front() {
            let (result, intact) = run_job(conn, job.run);
            if !intact {
                broken = Some(match &result {
                    Err(e) => Failure {
                        text: format!("transaction rolled back: {e}"),
                        full: e.is_storage_full(),
                    },
                    Ok(_) => Failure {
                        text: "transaction rolled back: the transaction was rolled back".into(),
                        full: false,
                    },
                });
                done.push((job.reply, result));
                break;
            }
            done.push((job.reply, result));
        }
        if let Some(failure) = broken {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            stats.failed_commits.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %failure.text, jobs = done.len(), "store transaction rolled back; its writes were refused");
            for (reply, _) in done {
                reply(Err(failure.error()));
            }
            continue;
        }
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                stats.commit_seconds.observe(began.elapsed().as_secs_f64());
                stats.batch_size.observe(done.len() as f64);
                for (reply, result) in done {
                    reply(result);
                }
            }
            Err(e) => {
                stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                let failure = Failure::of(&e, "commit failed");
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                tracing::error!(error = %failure.text, jobs = done.len(), "store commit failed; its writes were refused");
                for (reply, _) in done {
                    reply(Err(failure.error()));
                }
            }
        }
    }
}

/// Why a whole transaction failed, answered to each of its jobs.
struct Failure {
    text: String,
    /// For want of space: each job gets [`StoreError::StorageFull`].
    full: bool,
}

impl Failure {
    fn of(e: &rusqlite::Error, what: &str) -> Failure {
        Failure {
            text: format!("{what}: {e}"),
            full: is_full(e),
        }
    }

    fn error(&self) -> StoreError {
        if self.full {
            StoreError::StorageFull(self.text.clone())
        } else {
            StoreError::Invalid(self.text.clone())
        }
    }
}

/// SQLITE_FULL: the disk is full (SQLite turns ENOSPC into it), or `max_page_count` reached.
pub(crate) fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull))
}

/// Runs one job in its own SAVEPOINT. Returns its result and whether the batch's transaction
/// is still intact (open, with every earlier job's work in it).
fn run_job(conn: &Connection, run: JobFn) -> (JobResult, bool) {
    // Cached statements: a write job per delivered message, and parsing these each time
    // was a visible share of the writer's time.
    let exec = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.execute([]).map(drop))
    };
    if let Err(e) = exec("SAVEPOINT job") {
        return (Err(StoreError::from(e)), false);
    }
    let r = run(conn);
    if conn.is_autocommit() {
        // SQLite ended the transaction itself: everything in it is rolled back.
        return (r, false);
    }
    let end = if r.is_ok() {
        exec("RELEASE job")
    } else {
        exec("ROLLBACK TO job").and_then(|()| exec("RELEASE job"))
    };
    match end {
        Ok(()) if !conn.is_autocommit() => (r, true),
        Ok(()) => (r, false),
        Err(e) => (Err(StoreError::from(e)), false),
    }
}

/// Records attempt results (see [`MailStore::queue_update`]) in the writer's transaction.
fn queue_update_in(
    c: &Connection,
    updates: &[RecipientUpdate],
    bounce: Option<&Delivery>,
) -> Result<()> {
    let mut entries = Vec::new();
    let mut lost = 0usize;
    for u in updates {
        // Only the attempt that holds the claim records a result.
        // Cached statements: the queue records a result per delivered message, and
        // parsing the SQL each time was a visible cost of relaying (perf).
        let q: Option<i64> = c
    .prepare_cached(
        "UPDATE queue_recipients SET status = ?2, attempts = ?3, next_attempt = ?4, last_error = ?5, lease = 0
          WHERE id = ?1 AND lease = ?6 AND status = 'pending' RETURNING queue_id",
    )?
    .query_row(
        params![u.id, u.status, u.attempts, u.next_attempt, u.last_error, u.lease],
        |r| r.get(0),
    )
    .optional()?;
        match q {
            Some(q) => entries.push(q),
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
            .prepare_cached(QUEUE_PENDING_SQL)?
            .query_row(params![q], |r| r.get(0))?;
        if pending == 0 {
            let msg: i64 = c
                .prepare_cached("SELECT message_id FROM queue WHERE id = ?1")?
                .query_row(params![q], |r| r.get(0))?;
            c.prepare_cached("DELETE FROM queue_recipients WHERE queue_id = ?1")?
                .execute(params![q])?;
            c.prepare_cached("DELETE FROM queue WHERE id = ?1")?
                .execute(params![q])?;
            collect_message(c, msg)?;
        }
    }
    Ok(())
}

fn normalize_address(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

fn new_uidvalidity(conn: &Connection) -> Result<u32> {
    // RFC 9051 §2.3.1.1: UIDVALIDITY must never repeat for a name. Base it on the clock and
    // make it strictly greater than any value handed out before, deleted mailboxes included:
    // the last one is kept in `counters` (schema v7), which survives deletes, restarts and
    // backups (a restored backup goes on from the clock, past anything given out since).
    let now = now_unix().clamp(1, i64::from(u32::MAX));
    let next: i64 = conn.query_row(
        "UPDATE counters SET value = MAX(value + 1, ?1) WHERE name = 'uidvalidity' RETURNING value",
        params![now],
        |r| r.get(0),
    )?;
    u32::try_from(next).map_err(|_| {
        StoreError::Invalid("UIDVALIDITY values are exhausted (beyond 2^32 - 1)".into())
    })
}

const META_COLS: &str =
    "mm.uid, mm.message_id, mi.size, mm.flags, mm.keywords, mm.internal_date, mm.modseq, mi.ends_lf";

fn row_to_meta(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageMeta> {
    let kw: String = r.get(4)?;
    Ok(MessageMeta {
        uid: r.get(0)?,
        message: MessageId(r.get(1)?),
        size: r.get::<_, i64>(2)? as u64,
        flags: Flags(r.get(3)?),
        keywords: kw.split_whitespace().map(String::from).collect(),
        internal_date: r.get(5)?,
        modseq: r.get::<_, i64>(6)? as u64,
        ends_with_lf: r.get::<_, i64>(7)? != 0,
    })
}

/// The columns of [`MAILBOX_COLS`].
const MAILBOX_COL_COUNT: usize = 9;

/// [`COUNT_COLS`] from column `at` on.
fn row_to_counts(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<MailboxCounts> {
    let n = |i: usize| r.get::<_, i64>(at + i).map(|v| v.max(0) as u64);
    Ok(MailboxCounts {
        messages: n(0)?,
        unseen: n(1)?,
        deleted: n(2)?,
        size: n(3)?,
        recent: n(4)?,
    })
}

fn row_to_mailbox(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailboxInfo> {
    Ok(MailboxInfo {
        id: MailboxId {
            account: AccountId(r.get(1)?),
            id: r.get(0)?,
        },
        account: AccountId(r.get(1)?),
        name: r.get(2)?,
        uidvalidity: r.get(3)?,
        uidnext: r.get(4)?,
        highest_modseq: r.get::<_, i64>(5)? as u64,
        special_use: r.get(6)?,
        subscribed: r.get::<_, i64>(7)? != 0,
        recent_uid: r.get(8)?,
    })
}

const MAILBOX_COLS: &str =
    "id, account_id, name, uidvalidity, uidnext, highest_modseq, special_use,
     EXISTS (SELECT 1 FROM subscriptions s
              WHERE s.account_id = mailboxes.account_id AND s.name = mailboxes.name),
     recent_uid";

/// Subscribes (`on`) or unsubscribes `name` for the account; whether anything changed.
fn set_subscription(c: &Connection, account: AccountId, name: &str, on: bool) -> Result<bool> {
    let n = if on {
        c.execute(
            "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
            params![account.0, name],
        )?
    } else {
        c.execute(
            "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2",
            params![account.0, name],
        )?
    };
    Ok(n > 0)
}

fn insert_message(conn: &Connection, data: &[u8]) -> Result<MessageId> {
    conn.prepare_cached("INSERT INTO messages (size, created, data) VALUES (?1, ?2, ?3)")?
        .execute(params![data.len() as i64, now_unix(), data])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO message_info (message_id, size, ends_lf) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        id,
        data.len() as i64,
        data.last().is_none_or(|b| *b == b'\n')
    ])?;
    Ok(MessageId(id))
}

/// `NotFound` unless the mailbox exists and belongs to the handle's account: every call that
/// takes a [`MailboxId`] goes through here (or has both in its own WHERE clause).
fn check_mailbox(c: &Connection, mailbox: MailboxId) -> Result<()> {
    let found = c
        .prepare_cached("SELECT 1 FROM mailboxes WHERE id = ?1 AND account_id = ?2")?
        .query_row(params![mailbox.id, mailbox.account.0], |_| Ok(()))
        .optional()?;
    found.ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))
}

/// The stored message a reader may see through `r`, if it is still there.
fn resolve_message(c: &Connection, r: MessageRef) -> Result<i64> {
    let found: Option<i64> = match r {
        MessageRef::Mailbox { mailbox, uid } => c
            .prepare_cached(
                "SELECT mm.message_id FROM mailbox_messages mm
                   JOIN mailboxes m ON m.id = mm.mailbox_id
                  WHERE mm.mailbox_id = ?1 AND mm.uid = ?2 AND m.account_id = ?3",
            )?
            .query_row(params![mailbox.id, uid, mailbox.account.0], |r| r.get(0))
            .optional()?,
        MessageRef::Queued(q) => c
            .prepare_cached("SELECT message_id FROM queue WHERE id = ?1")?
            .query_row(params![q.0], |r| r.get(0))
            .optional()?,
    };
    found.ok_or_else(|| StoreError::NotFound("message".into()))
}

/// Deletes a message blob once nothing refers to it any more.
fn collect_message(conn: &Connection, message: i64) -> Result<()> {
    let gone = conn
        .prepare_cached(
            "DELETE FROM messages WHERE id = ?1
           AND NOT EXISTS (SELECT 1 FROM mailbox_messages WHERE message_id = ?1)
           AND NOT EXISTS (SELECT 1 FROM queue WHERE message_id = ?1)",
        )?
        .execute(params![message])?;
    if gone > 0 {
        conn.prepare_cached("DELETE FROM message_info WHERE message_id = ?1")?
            .execute(params![message])?;
        conn.prepare_cached("DELETE FROM message_search WHERE message_id = ?1")?
            .execute(params![message])?;
    }
    Ok(())
}

/// A queue entry's recipients (by the `queue_recipients_queue` index).
const QUEUE_RECIPIENTS_SQL: &str =
    "SELECT id, recipient, status, attempts, next_attempt, last_error
           FROM queue_recipients WHERE queue_id = ?1 ORDER BY id";
/// How many of an entry's recipients are still pending (by the entry: left to itself, SQLite
/// picks the due index, which holds every pending recipient).
const QUEUE_PENDING_SQL: &str =
    "SELECT COUNT(*) FROM queue_recipients INDEXED BY queue_recipients_queue
      WHERE queue_id = ?1 AND status = 'pending'";
/// Due, unclaimed recipients' entries, longest due first, read from the index alone.
const QUEUE_DUE_SQL: &str = "SELECT queue_id FROM queue_recipients INDEXED BY queue_recipients_due
      WHERE status = 'pending' AND next_attempt <= ?1 AND lease <= ?1
      ORDER BY next_attempt";

fn load_queue_entries(
    c: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<QueueEntry>> {
    let mut st = c.prepare_cached(sql)?;
    let mut entries: Vec<QueueEntry> = st
        .query_map(params, |r| {
            Ok(QueueEntry {
                id: QueueId(r.get(0)?),
                message: MessageId(r.get(1)?),
                sender: r.get(2)?,
                created: r.get(3)?,
                recipients: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut rs = c.prepare_cached(QUEUE_RECIPIENTS_SQL)?;
    for e in &mut entries {
        e.recipients = rs
            .query_map(params![e.id.0], |r| {
                Ok(QueueRecipient {
                    id: r.get(0)?,
                    recipient: r.get(1)?,
                    status: r.get(2)?,
                    attempts: r.get(3)?,
                    next_attempt: r.get(4)?,
                    last_error: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(entries)
}

/// The body of `deliver`, shared with `queue_update` (bounces) so both commit atomically.
fn deliver_in(c: &Connection, delivery: &Delivery) -> Result<Receipt> {
    // Cached statements throughout: the writer runs this for every accepted message.
    let mut receipt = Receipt::default();
    let now = now_unix();
    if !delivery.local.is_empty() {
        let msg = insert_message(c, &delivery.local_message)?;
        for account in &delivery.local {
            // RFC 9051 §2.3.1.1: UIDs strictly ascending, never reused.
            let (mailbox, uid, modseq): (i64, u32, i64) = c
                .prepare_cached(
                    "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1
                       WHERE account_id = ?1 AND name = 'INBOX'
                       RETURNING id, uidnext - 1, highest_modseq",
                )?
                .query_row(params![account.0], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {}", account.0)))?;
            c.prepare_cached(
                "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, internal_date, modseq)
                   VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![mailbox, uid, msg.0, now, modseq])?;
            receipt.local.push((*account, uid));
        }
        if let Some(t) = &delivery.transcript {
            let lines = t.encode_lines();
            c.prepare_cached(
                "INSERT INTO message_transcript (message_id, peer, listener, truncated, lines)
                   VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![msg.0, t.peer, t.listener, t.truncated, lines])?;
        }
    }
    if let Some(out) = &delivery.outbound {
        if !out.recipients.is_empty() {
            let msg = insert_message(c, &out.message)?;
            c.prepare_cached(
                "INSERT INTO queue (message_id, sender, created) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![msg.0, out.sender, now])?;
            let qid = c.last_insert_rowid();
            let mut ids = Vec::with_capacity(out.recipients.len());
            for rcpt in &out.recipients {
                c.prepare_cached(
                    "INSERT INTO queue_recipients (queue_id, recipient, next_attempt, lease) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![qid, rcpt, out.first_attempt, out.claim_until])?;
                ids.push(c.last_insert_rowid());
            }
            receipt.queued = Some(QueueId(qid));
            receipt.queued_entry = Some(out.entry(qid, msg, now, &ids));
        }
    }
    Ok(receipt)
}

/// The range of stored (lower-case) addresses `local@...`: from `local@` up to, not
/// including, `localA` ('A' follows '@' in ASCII), so the unique index on the address column
/// finds them without a scan. `None` for an empty local part or one with `@`.
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

impl SqliteStore {
    /// Copies everything of `src` (another store, normally a PostgreSQL database that nodes
    /// shared) into this store, which must hold no account yet: the way back of
    /// [`crate::postgres::PgStore::import_from`], with the same guarantees. Domains, aliases,
    /// accounts (password hashes, quotas, APOP secrets), every mailbox with its UIDVALIDITY,
    /// UIDNEXT, HIGHESTMODSEQ and `\Recent` mark, subscriptions, every message with its UID,
    /// flags, keywords, internal date, MODSEQ and SMTP transcript, and the outbound queue with
    /// each recipient's state. A message stored once for several mailboxes stays stored once.
    /// QRESYNC tombstones are not carried over: a client that knew an older MODSEQ is told
    /// every UID that is not there (`vanished_floor`). The UIDVALIDITY counter is raised past
    /// every copied value, so a mailbox created later never repeats one. Each mailbox's count
    /// is compared with the source as it is copied, the totals at the end; a mismatch is an
    /// error. `progress(entries copied, entries in all)` is called as it goes.
    pub fn import_from(
        &self,
        src: &dyn MailStore,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<ImportCounts> {
        let existing: i64 =
            self.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))?))?;
        if existing > 0 {
            return Err(StoreError::Exists(format!(
                "{existing} accounts in the target store (it must be empty; use a new data directory)"
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
                    c.execute(
                        "INSERT OR IGNORE INTO domains (name) VALUES (?1)",
                        params![d],
                    )?;
                }
                for (s, t) in &aliases {
                    c.execute(
                        "INSERT OR IGNORE INTO aliases (source, target) VALUES (?1, ?2)",
                        params![s, t],
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
                c.execute(
                    "INSERT INTO accounts (address, password_hash, created, quota, apop_secret)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![address, hash, now_unix(), quota, apop],
                )?;
                let id = c.last_insert_rowid();
                for name in &subs {
                    c.execute(
                        "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
                        params![id, name],
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
                c.execute(
                    "INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highest_modseq,
                                            special_use, recent_uid, vanished_floor)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5)",
                    params![owner, name, uv, uidnext, hms, special, recent],
                )?;
                let id = c.last_insert_rowid();
                c.execute(
                    "UPDATE counters SET value = MAX(value, ?1) WHERE name = 'uidvalidity'",
                    params![uv],
                )?;
                Ok(id)
            })?;
            counts.mailboxes += 1;
            for chunk in msgs.chunks(crate::postgres::IMPORT_CHUNK) {
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
                                    c.execute(
                                        "INSERT INTO message_transcript (message_id, peer, listener, truncated, lines)
                                         VALUES (?1, ?2, ?3, ?4, ?5)",
                                        params![id, t.peer, t.listener, t.truncated, t.encode_lines()],
                                    )?;
                                }
                                made.push((m.message.0, id));
                                id
                            }
                            (None, None) => {
                                return Err(StoreError::Invalid(
                                    "internal: message octets missing".into(),
                                ))
                            }
                        };
                        c.execute(
                            "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, internal_date, modseq)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            params![
                                new_mb,
                                i64::from(m.uid),
                                blob,
                                i64::from(m.flags.0),
                                m.keywords.join(" "),
                                m.internal_date,
                                i64::try_from(m.modseq).unwrap_or(i64::MAX),
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
            // Verify: the store's own counters (kept by its triggers) against the source.
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
            self.write(move |c| {
                let msg = insert_message(c, &data)?;
                c.execute(
                    "INSERT INTO queue (message_id, sender, created) VALUES (?1, ?2, ?3)",
                    params![msg.0, e.sender, e.created],
                )?;
                let qid = c.last_insert_rowid();
                for r in &e.recipients {
                    c.execute(
                        "INSERT INTO queue_recipients (queue_id, recipient, status, attempts, next_attempt, last_error)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![qid, r.recipient, r.status, i64::from(r.attempts), r.next_attempt, r.last_error],
                    )?;
                }
                Ok(())
            })?;
            counts.queued += 1;
        }
        // The totals once more, from the store.
        let (n_accounts, n_entries, n_queue): (i64, i64, i64) = self.read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM mailbox_messages),
                        (SELECT COUNT(*) FROM queue)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })?;
        if n_accounts as usize != counts.accounts
            || n_entries as usize != counts.messages
            || n_queue as usize != counts.queued
        {
            return Err(StoreError::Invalid(format!(
                "after copying, the store holds {n_accounts} accounts, {n_entries} messages and {n_queue} queue entries; the source had {}, {} and {}",
                counts.accounts, counts.messages, counts.queued
            )));
        }
        Ok(counts)
    }
}

impl MailStore for SqliteStore {
    fn backup(&self, dest: &Path) -> Result<u64> {
        if dest.exists() {
            return Err(StoreError::Exists(dest.display().to_string()));
        }
        let target = dest
            .to_str()
            .ok_or_else(|| StoreError::Invalid("the backup path is not valid UTF-8".into()))?;
        // VACUUM INTO writes a consistent snapshot (a read transaction) into a new database
        // file; in WAL mode it does not stop the writer. It does not fsync the copy: we do.
        crate::files::create_private_file(dest)?; // owner-only from the start; SQLite fills it
        self.read(|c| {
            c.execute("VACUUM INTO ?1", [target])?;
            Ok(())
        })?;
        let file = std::fs::File::open(dest)?;
        file.sync_all()?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(file.metadata()?.len())
    }

    fn add_domain(&self, domain: &str) -> Result<()> {
        let d = domain.trim().to_ascii_lowercase();
        if d.is_empty() {
            return Err(StoreError::Invalid("empty domain".into()));
        }
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO domains (name) VALUES (?1)",
                params![d],
            )?;
            Ok(())
        })
    }

    fn list_domains(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT name FROM domains ORDER BY name")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    fn is_local_domain(&self, domain: &str) -> Result<bool> {
        let d = domain.to_ascii_lowercase();
        self.read(|c| {
            let n: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM domains WHERE name = ?1")?
                .query_row(params![d], |r| r.get(0))?;
            Ok(n > 0)
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
            let exists: i64 = c.query_row(
                "SELECT COUNT(*) FROM accounts WHERE address = ?1",
                params![address],
                |r| r.get(0),
            )?;
            if exists > 0 {
                return Err(StoreError::Exists(format!("account {address}")));
            }
            c.execute("INSERT OR IGNORE INTO domains (name) VALUES (?1)", params![domain])?;
            c.execute(
                "INSERT INTO accounts (address, password_hash, created) VALUES (?1, ?2, ?3)",
                params![address, hash, now_unix()],
            )?;
            let id = c.last_insert_rowid();
            for (name, special) in DEFAULT_FOLDERS {
                let uv = new_uidvalidity(c)?;
                c.execute(
                    "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use) VALUES (?1, ?2, ?3, ?4)",
                    params![id, name, uv, special],
                )?;
                // The default folders start subscribed, so every client shows them.
                c.execute(
                    "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
                    params![id, name],
                )?;
            }
            Ok(AccountId(id))
        })
    }

    fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        let address = normalize_address(address);
        let hash = password_hash.to_string();
        self.write(move |c| {
            let n = c.execute(
                "UPDATE accounts SET password_hash = ?2 WHERE address = ?1",
                params![address, hash],
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
            let n = c.execute(
                "UPDATE accounts SET apop_secret = ?2 WHERE address = ?1",
                params![address, secret],
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
            Ok(c.query_row(
                "SELECT apop_secret FROM accounts WHERE address = ?1",
                params![address],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
        })
    }

    fn remove_account(&self, address: &str) -> Result<()> {
        let address = normalize_address(address);
        self.write(move |c| {
            let id: Option<i64> = c
                .query_row(
                    "SELECT id FROM accounts WHERE address = ?1",
                    params![address],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else {
                return Err(StoreError::NotFound(format!("account {address}")));
            };
            let mut st = c.prepare(
                "SELECT DISTINCT mm.message_id FROM mailbox_messages mm
                   JOIN mailboxes m ON m.id = mm.mailbox_id WHERE m.account_id = ?1",
            )?;
            let messages: Vec<i64> = st
                .query_map(params![id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            c.execute(
                "DELETE FROM mailbox_messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1)",
                params![id],
            )?;
            c.execute("DELETE FROM mailboxes WHERE account_id = ?1", params![id])?;
            c.execute("DELETE FROM accounts WHERE id = ?1", params![id])?;
            for m in messages {
                collect_message(c, m)?;
            }
            Ok(())
        })
    }

    fn find_account(&self, address: &str) -> Result<Option<Account>> {
        let address = normalize_address(address);
        self.read(|c| {
            let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE address = ?1");
            Ok(c.prepare_cached(&sql)?
                .query_row(params![address], row_to_account)
                .optional()?)
        })
    }

    fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read(|c| {
            let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY address");
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map([], row_to_account)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn accounts_with_local_part(&self, local: &str) -> Result<Vec<Account>> {
        let Some((low, high)) = local_part_range(local) else {
            return Ok(Vec::new());
        };
        self.read(|c| {
            let sql = format!(
                "SELECT {ACCOUNT_COLS} FROM accounts WHERE address >= ?1 AND address < ?2 ORDER BY address"
            );
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(params![low, high], row_to_account)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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
            let n = c.execute(
                "UPDATE accounts SET quota = ?2 WHERE address = ?1",
                params![address, quota],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("account {address}")));
            }
            Ok(())
        })
    }

    fn account_usage(&self, account: AccountId) -> Result<u64> {
        // The counter the v6 triggers keep (USAGE_SQL computes the same from scratch).
        self.read(|c| {
            let used: Option<i64> = c
                .prepare_cached("SELECT used FROM accounts WHERE id = ?1")?
                .query_row(params![account.0], |r| r.get(0))
                .optional()?;
            Ok(used.unwrap_or(0).max(0) as u64)
        })
    }

    fn deliver(&self, delivery: Delivery) -> Result<Receipt> {
        let size = delivery.local_message.len()
            + delivery.outbound.as_ref().map_or(0, |o| o.message.len());
        self.check_space(size)?;
        self.write(move |c| deliver_in(c, &delivery))
    }

    fn deliver_async(self: Arc<Self>, delivery: Delivery) -> StoreFuture<Receipt> {
        let size = delivery.local_message.len()
            + delivery.outbound.as_ref().map_or(0, |o| o.message.len());
        if let Err(e) = self.check_space(size) {
            return Box::pin(std::future::ready(Err(e)));
        }
        self.write_async(move |c| deliver_in(c, &delivery))
    }

    fn message_transcript(&self, message: MessageRef) -> Result<Option<Transcript>> {
        self.read(|c| {
            let id = resolve_message(c, message)?;
            let row: Option<(String, String, bool, String)> = c
                .prepare_cached(
                    "SELECT peer, listener, truncated, lines FROM message_transcript
                      WHERE message_id = ?1",
                )?
                .query_row(params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            Ok(row.map(|(peer, listener, truncated, text)| Transcript {
                lines: Transcript::decode_lines(&text),
                truncated,
                peer,
                listener,
            }))
        })
    }

    fn writer_stats(&self) -> Option<crate::stats::WriterStats> {
        Some(self.writer_stats.snapshot())
    }

    fn remove_domain(&self, domain: &str) -> Result<()> {
        let d = domain.trim().to_ascii_lowercase();
        self.write(move |c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM accounts WHERE address LIKE '%@' || ?1",
                params![d],
                |r| r.get(0),
            )?;
            if n > 0 {
                return Err(StoreError::Invalid(format!(
                    "domain {d} still has {n} accounts; remove them first"
                )));
            }
            let gone = c.execute("DELETE FROM domains WHERE name = ?1", params![d])?;
            if gone == 0 {
                return Err(StoreError::NotFound(format!("domain {d}")));
            }
            c.execute(
                "DELETE FROM aliases WHERE source LIKE '%@' || ?1",
                params![d],
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
            c.execute(
                "INSERT OR IGNORE INTO domains (name) VALUES (?1)",
                params![domain],
            )?;
            c.execute(
                "INSERT OR IGNORE INTO aliases (source, target) VALUES (?1, ?2)",
                params![source, target],
            )?;
            Ok(())
        })
    }

    fn remove_alias(&self, source: &str, target: Option<&str>) -> Result<usize> {
        let source = alias_key(source);
        let target = target.map(alias_key);
        self.write(move |c| {
            let n = match &target {
                Some(t) => c.execute(
                    "DELETE FROM aliases WHERE source = ?1 AND target = ?2",
                    params![source, t],
                )?,
                None => c.execute("DELETE FROM aliases WHERE source = ?1", params![source])?,
            };
            Ok(n)
        })
    }

    fn list_aliases(&self) -> Result<Vec<(String, String)>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT source, target FROM aliases ORDER BY source, target")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn alias_targets(&self, source: &str) -> Result<Vec<String>> {
        let source = alias_key(source);
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT target FROM aliases WHERE source = ?1 ORDER BY target")?;
            let rows = st.query_map(params![source], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    fn aliases_with_local_part(&self, local: &str) -> Result<Vec<String>> {
        let Some((low, high)) = local_part_range(local) else {
            return Ok(Vec::new());
        };
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT source FROM aliases WHERE source >= ?1 AND source < ?2 ORDER BY source",
            )?;
            let rows = st.query_map(params![low, high], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
    }

    fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxInfo>> {
        self.read(|c| {
            let sql =
                format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE account_id = ?1 AND name = ?2");
            Ok(c.prepare_cached(&sql)?
                .query_row(params![account.0, name], row_to_mailbox)
                .optional()?)
        })
    }

    fn list_mailboxes(&self, account: AccountId) -> Result<Vec<MailboxInfo>> {
        self.read(|c| {
            let sql =
                format!("SELECT {MAILBOX_COLS} FROM mailboxes WHERE account_id = ?1 ORDER BY name");
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(params![account.0], row_to_mailbox)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn list_messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        self.read(|c| {
            check_mailbox(c, mailbox)?;
            let sql = format!(
                "SELECT {META_COLS} FROM mailbox_messages mm JOIN message_info mi ON mi.message_id = mm.message_id
                  WHERE mm.mailbox_id = ?1 ORDER BY mm.uid"
            );
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(params![mailbox.id], row_to_meta)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn search_data(&self, mailbox: MailboxId, format: u32) -> Result<Vec<(u32, Vec<u8>)>> {
        self.read(|c| {
            check_mailbox(c, mailbox)?;
            let mut st = c.prepare_cached(
                "SELECT mm.uid, ms.data FROM mailbox_messages mm
                   JOIN message_search ms ON ms.message_id = mm.message_id
                  WHERE mm.mailbox_id = ?1 AND ms.format = ?2 ORDER BY mm.uid",
            )?;
            let rows = st.query_map(params![mailbox.id, format], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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
            let mut st = c.prepare_cached(
                "INSERT OR REPLACE INTO message_search (message_id, format, data)
                 SELECT message_id, ?3, ?4 FROM mailbox_messages WHERE mailbox_id = ?1 AND uid = ?2",
            )?;
            for (uid, data) in entries {
                // A message expunged meanwhile matches no row: nothing is written for it.
                st.execute(params![mailbox.id, uid, format, data])?;
            }
            Ok(())
        })
    }

    fn mailbox_changes(&self, mailbox: MailboxId, since_modseq: u64) -> Result<MailboxChanges> {
        self.read(|c| {
            check_mailbox(c, mailbox)?;
            let sql = format!(
                "SELECT {META_COLS} FROM mailbox_messages mm JOIN message_info mi ON mi.message_id = mm.message_id
                  WHERE mm.mailbox_id = ?1 AND mm.modseq > ?2 ORDER BY mm.uid"
            );
            let mut st = c.prepare_cached(&sql)?;
            let since = i64::try_from(since_modseq).unwrap_or(i64::MAX);
            let changed = st
                .query_map(params![mailbox.id, since], row_to_meta)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let vanished = tombstones_since(c, mailbox, since_modseq)?;
            Ok(MailboxChanges { changed, vanished })
        })
    }

    fn message_size(&self, message: MessageRef) -> Result<u64> {
        self.read(|c| {
            let id = resolve_message(c, message)?;
            c.prepare_cached("SELECT size FROM message_info WHERE message_id = ?1")?
                .query_row(params![id], |r| r.get::<_, i64>(0))
                .optional()?
                .map(|s| s as u64)
                .ok_or_else(|| StoreError::NotFound(format!("message {id}")))
        })
    }

    fn read_message_at(&self, message: MessageRef, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.read(|c| {
            // The reference is checked and the blob read in one read transaction (one WAL
            // snapshot): a message expunged meanwhile is either read whole as it was or not
            // found, never "no such rowid".
            let tx = c.unchecked_transaction()?;
            let id = resolve_message(&tx, message)?;
            let blob = tx.blob_open("main", "messages", "data", id, true)?;
            let size = blob.len() as u64;
            if offset >= size {
                return Ok(0);
            }
            let want = buf.len().min((size - offset) as usize);
            let off = usize::try_from(offset).map_err(|_| StoreError::Invalid("offset".into()))?;
            blob.read_at_exact(&mut buf[..want], off)?;
            Ok(want)
        })
    }

    fn message_octets(&self, message: MessageRef) -> Result<Vec<u8>> {
        self.read(|c| {
            // One read transaction (one WAL snapshot): the message as it was, or NotFound.
            let tx = c.unchecked_transaction()?;
            let id = resolve_message(&tx, message)?;
            let mut blob = tx.blob_open("main", "messages", "data", id, true)?;
            let mut out = Vec::with_capacity(blob.len());
            std::io::Read::read_to_end(&mut blob, &mut out)?;
            Ok(out)
        })
    }

    fn expunge(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<u32>> {
        let uids = uids.to_vec();
        let self_kept = self.tombstones_kept();
        self.write(move |c| {
            check_mailbox(c, mailbox)?;
            let mut removed = Vec::new();
            let mut touched = Vec::new();
            for uid in uids {
                let msg: Option<i64> = c
                    .query_row(
                        "DELETE FROM mailbox_messages WHERE mailbox_id = ?1 AND uid = ?2 RETURNING message_id",
                        params![mailbox.id, uid],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(m) = msg {
                    removed.push(uid);
                    touched.push(m);
                }
            }
            if !removed.is_empty() {
                c.execute(
                    "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?1",
                    params![mailbox.id],
                )?;
                prune_tombstones(c, mailbox.id, self_kept)?;
            }
            for m in touched {
                collect_message(c, m)?;
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
        self.read(|c| {
            // One read transaction: SQLite takes its read lock once for both (each
            // statement on its own takes and drops it: 6 system calls).
            let tx = c.unchecked_transaction()?;
            let now = account_by_id(&tx, account)?;
            let info = match mailbox {
                Some(m) => mailbox_by_id(&tx, m)?,
                None => None,
            };
            tx.commit()?;
            Ok((now, info))
        })
    }

    fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxId> {
        let name = name.to_string();
        self.write(move |c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM mailboxes WHERE account_id = ?1 AND name = ?2",
                params![account.0, name],
                |r| r.get(0),
            )?;
            if n > 0 {
                return Err(StoreError::Exists(format!("mailbox {name}")));
            }
            let uv = new_uidvalidity(c)?;
            c.execute(
                "INSERT INTO mailboxes (account_id, name, uidvalidity) VALUES (?1, ?2, ?3)",
                params![account.0, name, uv],
            )?;
            Ok(MailboxId {
                account,
                id: c.last_insert_rowid(),
            })
        })
    }

    fn delete_mailbox(&self, mailbox: MailboxId) -> Result<()> {
        self.write(move |c| {
            check_mailbox(c, mailbox)?;
            let mut st = c.prepare(
                "SELECT DISTINCT message_id FROM mailbox_messages WHERE mailbox_id = ?1",
            )?;
            let messages: Vec<i64> = st
                .query_map(params![mailbox.id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            c.execute(
                "DELETE FROM mailbox_messages WHERE mailbox_id = ?1",
                params![mailbox.id],
            )?;
            c.execute("DELETE FROM mailboxes WHERE id = ?1", params![mailbox.id])?;
            for m in messages {
                collect_message(c, m)?;
            }
            Ok(())
        })
    }

    fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let (from, to) = (from.to_string(), to.to_string());
        self.write(move |c| {
            let taken: i64 = c.query_row(
                "SELECT COUNT(*) FROM mailboxes WHERE account_id = ?1 AND name = ?2",
                params![account.0, to],
                |r| r.get(0),
            )?;
            if taken > 0 {
                return Err(StoreError::Exists(format!("mailbox {to}")));
            }
            let mut st = c.prepare(
                "SELECT id, name FROM mailboxes WHERE account_id = ?1
                   AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '/')",
            )?;
            let rows: Vec<(i64, String)> = st
                .query_map(params![account.0, from], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            if !rows.iter().any(|(_, n)| *n == from) {
                return Err(StoreError::NotFound(format!("mailbox {from}")));
            }
            for (id, name) in rows {
                let new_name = format!("{to}{}", &name[from.len()..]);
                let uv = new_uidvalidity(c)?;
                c.execute(
                    "UPDATE mailboxes SET name = ?2, uidvalidity = ?3 WHERE id = ?1",
                    params![id, new_name, uv],
                )?;
                // A subscription follows its mailbox (as Dovecot does).
                c.execute(
                    "UPDATE OR REPLACE subscriptions SET name = ?3 WHERE account_id = ?1 AND name = ?2",
                    params![account.0, name, new_name],
                )?;
            }
            Ok(())
        })
    }

    fn subscribe(&self, account: AccountId, name: &str, on: bool) -> Result<bool> {
        let name = name.to_string();
        self.write(move |c| {
            let exists: Option<i64> = c
                .query_row(
                    "SELECT 1 FROM accounts WHERE id = ?1",
                    params![account.0],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("account {}", account.0)));
            }
            set_subscription(c, account, &name, on)
        })
    }

    fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name",
            )?;
            let names = st
                .query_map(params![account.0], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(names)
        })
    }

    fn mailbox_counts(&self, mailbox: MailboxId) -> Result<MailboxCounts> {
        self.read(|c| {
            let sql =
                format!("SELECT {COUNT_COLS} FROM mailboxes WHERE id = ?1 AND account_id = ?2");
            c.prepare_cached(&sql)?
                .query_row(params![mailbox.id, mailbox.account.0], |r| {
                    row_to_counts(r, 0)
                })
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))
        })
    }

    fn mailbox_status(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<(MailboxInfo, MailboxCounts)>> {
        // One statement: one read lock taken and dropped (STATUS is what clients poll).
        self.read(|c| {
            let sql = format!(
                "SELECT {MAILBOX_COLS}, {COUNT_COLS} FROM mailboxes
                  WHERE account_id = ?1 AND name = ?2"
            );
            Ok(c.prepare_cached(&sql)?
                .query_row(params![account.0, name], |r| {
                    Ok((row_to_mailbox(r)?, row_to_counts(r, MAILBOX_COL_COUNT)?))
                })
                .optional()?)
        })
    }

    fn claim_recent(&self, mailbox: MailboxId, up_to: u32) -> Result<u32> {
        self.write(move |c| {
            let prev: u32 = c
                .query_row(
                    "SELECT recent_uid FROM mailboxes WHERE id = ?1 AND account_id = ?2",
                    params![mailbox.id, mailbox.account.0],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", mailbox.id)))?;
            if up_to > prev {
                c.execute(
                    "UPDATE mailboxes SET recent_uid = ?2 WHERE id = ?1",
                    params![mailbox.id, up_to],
                )?;
            }
            Ok(prev)
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
            check_mailbox(c, mailbox)?;
            let mut changed = Vec::new();
            let mut modified = Vec::new();
            let mut modseq: Option<i64> = None;
            for uid in uids {
                let row: Option<(i64, u32, String, i64, i64, i64, bool)> = c
                    .query_row(
                        "SELECT mm.message_id, mm.flags, mm.keywords, mm.internal_date, mi.size, mm.modseq, mi.ends_lf
                           FROM mailbox_messages mm JOIN message_info mi ON mi.message_id = mm.message_id
                          WHERE mm.mailbox_id = ?1 AND mm.uid = ?2",
                        params![mailbox.id, uid],
                        |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                                r.get::<_, i64>(6)? != 0,
                            ))
                        },
                    )
                    .optional()?;
                let Some((message, old_flags, old_kw, internal_date, size, old_modseq, ends_with_lf)) = row
                else {
                    continue;
                };
                if unchanged_since.is_some_and(|u| old_modseq as u64 > u) {
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
                        let m: i64 = c.query_row(
                            "UPDATE mailboxes SET highest_modseq = highest_modseq + 1
                               WHERE id = ?1 RETURNING highest_modseq",
                            params![mailbox.id],
                            |r| r.get(0),
                        )?;
                        modseq = Some(m);
                        m
                    }
                };
                c.execute(
                    "UPDATE mailbox_messages SET flags = ?3, keywords = ?4, modseq = ?5
                      WHERE mailbox_id = ?1 AND uid = ?2",
                    params![mailbox.id, uid, new_flags.0, new_kw.join(" "), ms],
                )?;
                changed.push(MessageMeta {
                    uid,
                    message: MessageId(message),
                    size: size as u64,
                    flags: new_flags,
                    keywords: new_kw,
                    internal_date,
                    modseq: ms as u64,
                    ends_with_lf,
                });
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
            check_mailbox(c, from)?;
            let uv: u32 = c
                .query_row(
                    "SELECT uidvalidity FROM mailboxes WHERE id = ?1 AND account_id = ?2",
                    params![to.id, to.account.0],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {}", to.id)))?;
            let mut pairs = Vec::new();
            for uid in uids {
                let row: Option<(i64, u32, String, i64)> = c
                    .query_row(
                        "SELECT message_id, flags, keywords, internal_date FROM mailbox_messages
                          WHERE mailbox_id = ?1 AND uid = ?2",
                        params![from.id, uid],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let Some((message, flags, kw, date)) = row else {
                    continue;
                };
                // RFC 9051 §2.3.1.1: UIDs strictly ascending in the target, never reused.
                let (new_uid, modseq): (u32, i64) = c.query_row(
                    "UPDATE mailboxes SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1
                       WHERE id = ?1 RETURNING uidnext - 1, highest_modseq",
                    params![to.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                c.execute(
                    "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, flags, keywords, internal_date, modseq)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![to.id, new_uid, message, flags, kw, date, modseq],
                )?;
                if remove {
                    c.execute(
                        "DELETE FROM mailbox_messages WHERE mailbox_id = ?1 AND uid = ?2",
                        params![from.id, uid],
                    )?;
                }
                pairs.push((uid, new_uid));
            }
            if remove && !pairs.is_empty() {
                c.execute(
                    "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?1",
                    params![from.id],
                )?;
                prune_tombstones(c, from.id, kept)?;
            }
            Ok((uv, pairs))
        })
    }

    fn queue_list(&self) -> Result<Vec<QueueEntry>> {
        self.read(|c| {
            load_queue_entries(
                c,
                "SELECT id, message_id, sender, created FROM queue ORDER BY id",
                &[],
            )
        })
    }

    fn queue_due(&self, now: i64, limit: usize) -> Result<Vec<QueueEntry>> {
        let limit = limit as i64;
        self.read(|c| {
            // The due recipients in the order of the index (longest due first), read only
            // until `limit` entries are found: a round costs what it takes, not the size of
            // the queue (claimed recipients are skipped inside the index).
            let mut ids: Vec<i64> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            {
                let mut st = c.prepare_cached(QUEUE_DUE_SQL)?;
                let mut rows = st.query(params![now])?;
                while let Some(r) = rows.next()? {
                    let id: i64 = r.get(0)?;
                    if seen.insert(id) {
                        ids.push(id);
                        if ids.len() as i64 >= limit {
                            break;
                        }
                    }
                }
            }
            let mut entries = Vec::with_capacity(ids.len());
            for id in ids {
                entries.extend(load_queue_entries(
                    c,
                    "SELECT id, message_id, sender, created FROM queue WHERE id = ?1",
                    &[&id],
                )?);
            }
            Ok(entries)
        })
    }

    fn queue_next_due(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT MIN(next_attempt) FROM queue_recipients WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )?)
        })
    }

    fn queue_claim(&self, ids: &[i64], now: i64, until: i64) -> Result<Vec<i64>> {
        let ids = ids.to_vec();
        self.write(move |c| {
            let mut st = c.prepare_cached(
                "UPDATE queue_recipients SET lease = ?3
                  WHERE id = ?1 AND status = 'pending' AND next_attempt <= ?2 AND lease <= ?2
                  RETURNING id",
            )?;
            let mut claimed = Vec::new();
            for id in ids {
                if let Some(id) = st
                    .query_row(params![id, now, until], |r| r.get::<_, i64>(0))
                    .optional()?
                {
                    claimed.push(id);
                }
            }
            Ok(claimed)
        })
    }

    fn queue_renew(&self, claims: &[(i64, i64)], until: i64) -> Result<Vec<i64>> {
        let claims = claims.to_vec();
        self.write(move |c| {
            let mut st = c.prepare_cached(
                "UPDATE queue_recipients SET lease = ?3
                  WHERE id = ?1 AND lease = ?2 AND lease <> 0 AND status = 'pending'
                  RETURNING id",
            )?;
            let mut renewed = Vec::new();
            for (id, lease) in claims {
                if let Some(id) = st
                    .query_row(params![id, lease, until], |r| r.get::<_, i64>(0))
                    .optional()?
                {
                    renewed.push(id);
                }
            }
            Ok(renewed)
        })
    }

    fn queue_release_claims(&self) -> Result<usize> {
        self.write(|c| Ok(c.execute("UPDATE queue_recipients SET lease = 0 WHERE lease <> 0", [])?))
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
            Ok(c.execute(
                "UPDATE queue_recipients SET next_attempt = 0 WHERE status = 'pending'",
                [],
            )?)
        })
    }

    fn queue_retry(&self, id: QueueId) -> Result<usize> {
        self.write(move |c| {
            let exists: i64 = c.query_row(
                "SELECT COUNT(*) FROM queue WHERE id = ?1",
                params![id.0],
                |r| r.get(0),
            )?;
            if exists == 0 {
                return Err(StoreError::NotFound(format!("queue entry {}", id.0)));
            }
            Ok(c.execute(
                "UPDATE queue_recipients SET next_attempt = 0 WHERE queue_id = ?1 AND status = 'pending'",
                params![id.0],
            )?)
        })
    }

    fn queue_remove(&self, id: QueueId) -> Result<()> {
        self.write(move |c| {
            let msg: Option<i64> = c
                .query_row(
                    "SELECT message_id FROM queue WHERE id = ?1",
                    params![id.0],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(msg) = msg else {
                return Err(StoreError::NotFound(format!("queue entry {}", id.0)));
            };
            c.execute(
                "DELETE FROM queue_recipients WHERE queue_id = ?1",
                params![id.0],
            )?;
            c.execute("DELETE FROM queue WHERE id = ?1", params![id.0])?;
            collect_message(c, msg)?;
            Ok(())
        })
    }

    fn compact(&self) -> Result<(u64, u64)> {
        let wal = self.path.with_extension("db-wal");
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let total = || size(&self.path) + size(&wal);
        let before = total();
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        compact(&conn)?;
        conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        drop(conn);
        Ok((before, total()))
    }

    fn set_tombstones_kept(&self, n: u64) {
        self.tombstones_kept
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn set_min_free_space(&self, octets: u64) {
        self.min_free_space
            .store(octets, std::sync::atomic::Ordering::Relaxed);
    }

    fn session_create(&self, session: &WebSession, max_per_account: usize) -> Result<()> {
        let s = session.clone();
        let keep = i64::try_from(max_per_account.max(1)).unwrap_or(i64::MAX);
        self.write(move |c| {
            c.execute(
                "DELETE FROM web_sessions WHERE expires_ms <= ?1",
                params![now_unix_ms()],
            )?;
            c.execute(
                "INSERT OR REPLACE INTO web_sessions
                   (id_hash, account_id, password_fp, csrf, created_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    s.id_hash,
                    s.account.0,
                    s.password_fp,
                    s.csrf,
                    s.created_ms,
                    s.expires_ms
                ],
            )?;
            // The account's newest `keep` stay.
            c.execute(
                "DELETE FROM web_sessions WHERE account_id = ?1 AND id_hash NOT IN
                   (SELECT id_hash FROM web_sessions WHERE account_id = ?1
                     ORDER BY created_ms DESC, id_hash LIMIT ?2)",
                params![s.account.0, keep],
            )?;
            Ok(())
        })
    }

    fn session_get(&self, id_hash: &str) -> Result<Option<WebSession>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id_hash, account_id, password_fp, csrf, created_ms, expires_ms
                   FROM web_sessions WHERE id_hash = ?1",
                params![id_hash],
                |r| {
                    Ok(WebSession {
                        id_hash: r.get(0)?,
                        account: AccountId(r.get(1)?),
                        password_fp: r.get(2)?,
                        csrf: r.get(3)?,
                        created_ms: r.get(4)?,
                        expires_ms: r.get(5)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn session_touch(&self, id_hash: &str, expires_ms: i64) -> Result<bool> {
        let id = id_hash.to_string();
        self.write(move |c| {
            Ok(c.execute(
                "UPDATE web_sessions SET expires_ms = MAX(expires_ms, ?2) WHERE id_hash = ?1",
                params![id, expires_ms],
            )? > 0)
        })
    }

    fn session_remove(&self, id_hash: &str) -> Result<bool> {
        let id = id_hash.to_string();
        self.write(move |c| {
            Ok(c.execute("DELETE FROM web_sessions WHERE id_hash = ?1", params![id])? > 0)
        })
    }

    fn shutdown(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        if let Some(h) = self.writer_thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
        if let Ok(mut pool) = self.readers.lock() {
            pool.clear();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        (dir, Arc::new(s))
    }

    #[test]
    fn backup_is_a_store_with_everything_in_it() {
        let (d, s) = store();
        let a = s.add_account("a@x.test", "h").unwrap();
        let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
        for i in 0..3 {
            let m = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
            s.append_message(inbox.id, m.as_bytes(), Flags::default(), &[], 0)
                .unwrap();
        }
        let dest = d.path().join("copy").join("mailroom.db");
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let size = s.backup(&dest).unwrap();
        assert!(size > 0);
        assert!(matches!(s.backup(&dest), Err(StoreError::Exists(_))));
        // A change after the backup is not in it.
        s.append_message(
            inbox.id,
            b"Subject: later\r\n\r\n",
            Flags::default(),
            &[],
            0,
        )
        .unwrap();
        let copy = SqliteStore::open(dest.parent().unwrap()).unwrap();
        let acct = copy.find_account("a@x.test").unwrap().unwrap();
        let inbox2 = copy.mailbox(acct.id, "INBOX").unwrap().unwrap();
        let msgs = copy.list_messages(inbox2.id).unwrap();
        assert_eq!(msgs.len(), 3);
        let body = copy
            .message_octets(MessageRef::Mailbox {
                mailbox: inbox2.id,
                uid: msgs[2].uid,
            })
            .unwrap();
        assert_eq!(body, b"Subject: 2\r\n\r\nbody 2\r\n");
    }

    #[test]
    fn the_writer_reports_its_commits() {
        let (_d, s) = store();
        let a = s.add_account("a@x.test", "h").unwrap();
        for _ in 0..3 {
            s.deliver(Delivery::to_inboxes(
                b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
                vec![a],
            ))
            .unwrap();
        }
        let stats = s.writer_stats().unwrap();
        assert!(stats.commit_seconds.count >= 4, "{stats:?}");
        assert_eq!(stats.batch_size.count, stats.commit_seconds.count);
    }

    // ---- group commit never lies ----

    /// A writer connection on a fresh store file, and jobs built by hand, so a test decides
    /// exactly which jobs share a batch.
    fn writer_conn() -> (tempfile::TempDir, Connection) {
        let d = tempfile::tempdir().unwrap();
        let c = Connection::open(d.path().join("mailroom.db")).unwrap();
        configure(&c).unwrap();
        migrate(&c).unwrap();
        (d, c)
    }

    fn job(
        f: impl FnOnce(&Connection) -> Result<()> + Send + 'static,
    ) -> (Job, mpsc::Receiver<JobResult>) {
        let (reply, rx) = blocking_reply();
        let run: JobFn = Box::new(move |c| f(c).map(|v| Box::new(v) as Box<dyn Any + Send>));
        (Job { run, reply }, rx)
    }

    fn insert_job(tag: &'static str, size: usize) -> (Job, mpsc::Receiver<JobResult>) {
        job(move |c| {
            let mut data = tag.as_bytes().to_vec();
            data.resize(size.max(tag.len()), b'x');
            insert_message(c, &data)?;
            Ok(())
        })
    }

    fn stored_tags(c: &Connection) -> Vec<String> {
        let mut st = c
            .prepare("SELECT substr(data, 1, 2) FROM messages ORDER BY id")
            .unwrap();
        st.query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|b| String::from_utf8(b.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn a_job_that_ends_the_transaction_fails_the_whole_batch() {
        let (_d, c) = writer_conn();
        let (j1, r1) = insert_job("j1", 10);
        // Stands for an error after which SQLite rolled the transaction back by itself.
        let (j2, r2) = job(|c| {
            c.execute_batch("ROLLBACK")?;
            Ok(())
        });
        let (j3, r3) = insert_job("j3", 10);
        run_batch(&c, vec![j1, j2, j3], &Default::default());
        assert!(
            r1.recv().unwrap().is_err(),
            "j1 was rolled back with the batch"
        );
        assert!(r2.recv().unwrap().is_err());
        assert!(
            r3.recv().unwrap().is_ok(),
            "j3 ran in a transaction of its own"
        );
        assert_eq!(stored_tags(&c), vec!["j3"]);
        assert!(c.is_autocommit());
    }

    #[test]
    fn a_full_database_never_acknowledges_what_is_not_stored() {
        let (_d, c) = writer_conn();
        let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        // Room for a few small messages, not for a large one: SQLITE_FULL mid-batch.
        c.pragma_update(None, "max_page_count", pages + 8).unwrap();
        let mut jobs = Vec::new();
        let mut answers = Vec::new();
        for (tag, size) in [
            ("a1", 100),
            ("a2", 100),
            ("b1", 200_000),
            ("a3", 100),
            ("b2", 300_000),
            ("a4", 100),
        ] {
            let (j, r) = insert_job(tag, size);
            jobs.push(j);
            answers.push((tag, r));
        }
        run_batch(&c, jobs, &Default::default());
        let stored = stored_tags(&c);
        let mut acknowledged = Vec::new();
        for (tag, r) in answers {
            let answer = r.recv().unwrap();
            if let Err(e) = &answer {
                // SMTP answers these 452 4.3.1 (insufficient system storage).
                assert!(e.is_storage_full(), "{tag}: {e}");
            }
            let ok = answer.is_ok();
            assert_eq!(
                ok,
                stored.contains(&tag.to_string()),
                "{tag}: acknowledged {ok}, stored {stored:?}"
            );
            if ok {
                acknowledged.push(tag);
            }
        }
        assert!(!acknowledged.contains(&"b1") && !acknowledged.contains(&"b2"));
        assert!(c.is_autocommit(), "no transaction left open");
        // The writer goes on: room again, a later batch commits.
        c.pragma_update(None, "max_page_count", 1_000_000).unwrap();
        let (j, r) = insert_job("c1", 200_000);
        run_batch(&c, vec![j], &Default::default());
        assert!(r.recv().unwrap().is_ok());
        assert!(stored_tags(&c).contains(&"c1".to_string()));
    }

    /// The counter the triggers keep equals the sum from scratch, for every account.
    fn counter_matches_sum(s: &SqliteStore) {
        let rows: Vec<(i64, i64, i64)> = s
            .read(|c| {
                let mut st = c.prepare(&format!(
                    "SELECT id, used, ({}) FROM accounts",
                    USAGE_SQL.replace("?1", "accounts.id")
                ))?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .unwrap();
        for (id, used, sum) in rows {
            assert_eq!(used, sum, "account {id}: counter {used}, sum {sum}");
        }
        // And each mailbox's counts (v10).
        let boxes: Vec<(i64, [i64; 4], [i64; 4])> = s
            .read(|c| {
                let mut st =
                    c.prepare("SELECT id, messages, unseen, deleted, size FROM mailboxes")?;
                let rows = st
                    .query_map([], |r| {
                        Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
                    })?
                    .collect::<rusqlite::Result<Vec<(i64, [i64; 4])>>>()?;
                let mut out = Vec::new();
                for (id, kept) in rows {
                    let fresh = c.query_row(MAILBOX_COUNTS_SQL, params![id], |r| {
                        Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
                    })?;
                    out.push((id, kept, fresh));
                }
                Ok(out)
            })
            .unwrap();
        for (id, kept, fresh) in boxes {
            assert_eq!(
                kept, fresh,
                "mailbox {id}: counters (messages, unseen, deleted, size)"
            );
        }
    }

    #[test]
    fn usage_counter_follows_every_change() {
        let (_d, s) = store();
        let a = s.add_account("a@x.test", "h").unwrap();
        let b = s.add_account("b@x.test", "h").unwrap();
        let inbox = s.mailbox(a, "INBOX").unwrap().unwrap().id;
        for i in 0..5 {
            s.deliver(Delivery::to_inboxes(vec![b'x'; 100 + i], vec![a, b]))
                .unwrap();
            counter_matches_sum(&s);
        }
        let work = s.create_mailbox(a, "Work").unwrap();
        s.store_flags(inbox, &[1, 2], FlagOp::Add, Flags::SEEN, &[], None)
            .unwrap();
        counter_matches_sum(&s);
        s.store_flags(inbox, &[2, 3], FlagOp::Add, Flags::DELETED, &[], None)
            .unwrap();
        counter_matches_sum(&s);
        s.store_flags(inbox, &[2], FlagOp::Replace, Flags::FLAGGED, &[], None)
            .unwrap();
        counter_matches_sum(&s);
        s.copy_messages(inbox, &[1, 2, 3], work, false).unwrap();
        counter_matches_sum(&s);
        s.copy_messages(inbox, &[4], work, true).unwrap();
        counter_matches_sum(&s);
        s.expunge(inbox, &[1, 5]).unwrap();
        counter_matches_sum(&s);
        s.rename_mailbox(a, "Work", "Old").unwrap();
        counter_matches_sum(&s);
        s.delete_mailbox(work).unwrap();
        counter_matches_sum(&s);
        s.remove_account("b@x.test").unwrap();
        counter_matches_sum(&s);
        let c = s.mailbox_counts(inbox).unwrap();
        assert_eq!((c.messages, c.unseen, c.deleted), (2, 2, 1), "{c:?}");
        assert!(s.account_usage(a).unwrap() > 0);
        assert_eq!(
            s.account_usage(b).unwrap(),
            0,
            "a removed account uses nothing"
        );
    }

    #[test]
    fn queue_queries_use_indexes() {
        // Without an index on queue_recipients(queue_id) every delivery result scanned the
        // whole table (perf of a relaying server: 45 % of its CPU).
        let (_d, s) = store();
        let plan = |sql: &str| -> Vec<String> {
            s.read(|c| {
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let n = st.parameter_count();
                let args: Vec<i64> = vec![1; n];
                let rows =
                    st.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .unwrap()
        };
        for sql in [QUEUE_RECIPIENTS_SQL, QUEUE_PENDING_SQL] {
            let p = plan(sql);
            assert!(
                p.iter()
                    .any(|l| l.starts_with("SEARCH") && l.contains("queue_recipients_queue")),
                "{sql}: {p:?}"
            );
            assert!(!p.iter().any(|l| l.starts_with("SCAN")), "{sql}: {p:?}");
        }
        let p = plan(QUEUE_DUE_SQL);
        assert!(
            p.iter()
                .any(|l| l.contains("COVERING INDEX queue_recipients_due")),
            "{p:?}"
        );
        assert!(!p.iter().any(|l| l.contains("TEMP B-TREE")), "{p:?}");
    }

    #[test]
    fn usage_query_uses_indexes() {
        let (_d, s) = store();
        s.add_account("a@x.test", "h").unwrap();
        let plan: Vec<String> = s
            .read(|c| {
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {USAGE_SQL}"))?;
                let rows = st.query_map(params![1], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .unwrap();
        assert_eq!(plan.len(), 3, "{plan:?}");
        assert!(plan.iter().all(|l| l.starts_with("SEARCH")), "{plan:?}");
        assert!(
            plan[0].contains("INDEX sqlite_autoindex_mailboxes_1 (account_id=?)"),
            "{plan:?}"
        );
        assert!(plan[1].contains("PRIMARY KEY (mailbox_id=?)"), "{plan:?}");
        assert!(
            plan[2].contains("INTEGER PRIMARY KEY (rowid=?)"),
            "{plan:?}"
        );
    }

    #[test]
    fn migration_from_v4_keeps_accounts_and_counts_usage() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A data directory as the previous release (schema v4) left it.
            let c = Connection::open(dir.path().join("mailroom.db")).unwrap();
            for sql in &MIGRATIONS[..4] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 4).unwrap();
            c.execute(
                "INSERT INTO accounts (address, password_hash, created) VALUES ('old@x.test', 'h', 0)",
                [],
            )
            .unwrap();
            // One message of 42 octets in its INBOX: the v6 counter starts from it.
            c.execute_batch(
                "INSERT INTO mailboxes (account_id, name, uidvalidity) VALUES (1, 'INBOX', 1);
                 INSERT INTO messages (size, created, data) VALUES (42, 0, x'00');
                 INSERT INTO message_info (message_id, size, ends_lf) VALUES (1, 42, 0);
                 INSERT INTO mailbox_messages (mailbox_id, uid, message_id, internal_date)
                      VALUES (1, 1, 1, 0);",
            )
            .unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let v: i64 = s
            .read(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        let a = s.find_account("old@x.test").unwrap().unwrap();
        assert_eq!(a.password_hash, "h");
        assert_eq!(
            s.account_usage(a.id).unwrap(),
            42,
            "the counter starts at the sum"
        );
        assert_eq!(a.quota, None, "existing accounts get the default");
        s.set_quota("old@x.test", Some(4096)).unwrap();
        assert_eq!(
            s.find_account("old@x.test").unwrap().unwrap().quota,
            Some(4096)
        );
    }

    // ---- isolation (ids never reused, handles checked against their account) ----

    fn deliver_to(s: &SqliteStore, to: AccountId, body: &str) {
        s.deliver(Delivery::to_inboxes(body.as_bytes().to_vec(), vec![to]))
            .unwrap();
    }

    #[test]
    fn migration_to_v7_keeps_ids_and_counts_on_from_the_highest() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A v6 data directory whose highest account, mailbox and message were deleted.
            let c = Connection::open(dir.path().join("mailroom.db")).unwrap();
            for sql in &MIGRATIONS[..6] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 6).unwrap();
            c.execute_batch(
                "INSERT INTO accounts (id, address, password_hash, created) VALUES (1, 'a@x.test', 'h', 0);
                 INSERT INTO mailboxes (id, account_id, name, uidvalidity) VALUES (1, 1, 'INBOX', 1000);
                 INSERT INTO mailboxes (id, account_id, name, uidvalidity) VALUES (2, 1, 'Old', 5000);
                 INSERT INTO messages (id, size, created, data) VALUES (1, 3, 0, x'610d0a');
                 INSERT INTO message_info (message_id, size, ends_lf) VALUES (1, 3, 1);
                 INSERT INTO mailbox_messages (mailbox_id, uid, message_id, internal_date)
                      VALUES (1, 1, 1, 0);
                 INSERT INTO queue (message_id, sender, created) VALUES (1, '', 0);
                 INSERT INTO queue_recipients (queue_id, recipient, next_attempt) VALUES (1, 'z@far.test', 0);",
            )
            .unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let a = s.find_account("a@x.test").unwrap().unwrap();
        assert_eq!(a.id, AccountId(1));
        assert_eq!(s.account_usage(a.id).unwrap(), 3);
        let inbox = s.mailbox(a.id, "INBOX").unwrap().unwrap();
        assert_eq!((inbox.id.id, inbox.uidvalidity), (1, 1000));
        let msgs = s.list_messages(inbox.id).unwrap();
        assert_eq!(
            s.message_octets(MessageRef::Mailbox {
                mailbox: inbox.id,
                uid: msgs[0].uid
            })
            .unwrap(),
            b"a\r\n"
        );
        assert_eq!(s.queue_list().unwrap()[0].recipients.len(), 1);
        // New rows go on from the highest id present; UIDVALIDITY past every value present.
        let old = s.mailbox(a.id, "Old").unwrap().unwrap();
        s.delete_mailbox(old.id).unwrap();
        let new = s.create_mailbox(a.id, "Old").unwrap();
        assert!(new.id > 2);
        assert!(s.mailbox_by_id(new).unwrap().unwrap().uidvalidity > 5000);
        // The usage triggers were made again.
        s.append_message(new, b"12345", Flags::default(), &[], 0)
            .unwrap();
        assert_eq!(s.account_usage(a.id).unwrap(), 8);
        counter_matches_sum(&s);
    }

    #[test]
    fn reopen_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            s.add_account("a@x.test", "h").unwrap();
            s.shutdown();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        assert!(s.find_account("a@x.test").unwrap().is_some());
    }

    #[test]
    fn reserve_refuses_new_mail_but_never_deletions() {
        let (_d, s) = store();
        let a = s.add_account("a@x.test", "h").unwrap();
        deliver_to(&s, a, "Subject: kept\r\n\r\nbody\r\n");
        let inbox = s.mailbox(a, "INBOX").unwrap().unwrap().id;
        // A reserve larger than any disk: every new message is refused as StorageFull...
        s.set_min_free_space(u64::MAX / 4);
        let refused = s.deliver(Delivery::to_inboxes(
            b"Subject: no\r\n\r\nroom\r\n".to_vec(),
            vec![a],
        ));
        match refused {
            Err(e @ StoreError::StorageFull(_)) => {
                assert!(e.to_string().contains("limits.min_free_space"), "{e}")
            }
            other => panic!("delivery past the reserve: {other:?}"),
        }
        let appended = s.append_message(inbox, b"x\r\n", Flags(0), &[], 0);
        assert!(matches!(appended, Err(StoreError::StorageFull(_))));
        assert_eq!(s.list_messages(inbox).unwrap().len(), 1, "nothing stored");
        // ...and what frees space still works.
        assert_eq!(s.expunge(inbox, &[1]).unwrap(), vec![1]);
        // No reserve: accepted again.
        s.set_min_free_space(0);
        deliver_to(&s, a, "Subject: again\r\n\r\nbody\r\n");
    }

    #[test]
    fn freed_pages_go_back_to_the_disk() {
        let (dir, s) = store();
        let a = s.add_account("a@x.test", "h").unwrap();
        let inbox = s.mailbox(a, "INBOX").unwrap().unwrap().id;
        let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(256 * 1024));
        for _ in 0..80 {
            deliver_to(&s, a, &big);
        }
        let uids: Vec<u32> = s
            .list_messages(inbox)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        s.expunge(inbox, &uids).unwrap();
        let conn = Connection::open(dir.path().join("mailroom.db")).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let pages =
            |c: &Connection| -> i64 { c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap() };
        let before = pages(&conn);
        while release_free_pages(&conn, RELEASE_STEP).unwrap() {}
        let after = pages(&conn);
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert!(
            (before - after) * page > 15 * 1024 * 1024,
            "20 MiB of expunged mail, pages {before} -> {after}"
        );
        let free: i64 = conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        assert!(free <= KEEP_FREE_PAGES, "{free} free pages left");
        // The store still works and serves what is left.
        deliver_to(&s, a, "Subject: after\r\n\r\nbody\r\n");
        assert_eq!(s.list_messages(inbox).unwrap().len(), 1);
    }

    #[test]
    fn compact_converts_an_old_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A store made before auto_vacuum: the mode is NONE.
            let c = Connection::open(dir.path().join("mailroom.db")).unwrap();
            c.pragma_update(None, "journal_mode", "WAL").unwrap();
            c.execute_batch("CREATE TABLE early (x)").unwrap();
            c.execute_batch("DROP TABLE early").unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let a = s.add_account("a@x.test", "h").unwrap();
        let inbox = s.mailbox(a, "INBOX").unwrap().unwrap().id;
        let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(256 * 1024));
        for _ in 0..40 {
            deliver_to(&s, a, &big);
        }
        deliver_to(&s, a, "Subject: keep\r\n\r\nme\r\n");
        let uids: Vec<u32> = s
            .list_messages(inbox)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .take(40)
            .collect();
        s.expunge(inbox, &uids).unwrap();
        let mode = || -> i64 {
            let c = Connection::open(dir.path().join("mailroom.db")).unwrap();
            c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap()
        };
        assert_eq!(mode(), 0);
        let (before, after) = s.compact().unwrap();
        assert!(before > after + 8 * 1024 * 1024, "{before} -> {after}");
        assert_eq!(mode(), 2);
        let left = s.list_messages(inbox).unwrap();
        assert_eq!(left.len(), 1);
        let text = s
            .message_octets(MessageRef::Mailbox {
                mailbox: inbox,
                uid: left[0].uid,
            })
            .unwrap();
        assert!(text.ends_with(b"me\r\n"));
    }
}
