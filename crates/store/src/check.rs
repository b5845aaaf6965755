//! `mailroom check`: a consistency check of a data directory.
//!
//! Read-only and safe beside a running server: the database is opened read-only and every
//! check runs inside one read transaction, so they all see the same committed state (WAL
//! readers never block the writer, and the writer never changes what a reader sees).
//!
//! What is checked, and what a finding means:
//!
//! | check | fault when |
//! |---|---|
//! | `schema` | the schema version is newer than this build (an older one is a warning: it is migrated at the next start, and only SQLite's own checks run) |
//! | `integrity` | `PRAGMA integrity_check` reports anything (damaged pages, index entries that do not match their rows) |
//! | `foreign-keys` | `PRAGMA foreign_key_check` finds a row whose parent is gone |
//! | `mailbox-entries` | a mailbox entry's message, message_info or mailbox is missing |
//! | `message-sizes` | `message_info.size` or `messages.size` differs from the stored octets, or `ends_lf` is wrong; a message without message_info |
//! | `orphans` | (warning only) a stored message nothing refers to: it wastes space, nothing is lost |
//! | `usage` | `accounts.used` differs from the sum of the account's message sizes |
//! | `counts` | a mailbox's message/unseen/deleted/size counters differ from a recount |
//! | `uids` | a mailbox's UIDNEXT is not above its highest UID, or HIGHESTMODSEQ is below a message's MODSEQ |
//! | `tombstones` | a QRESYNC tombstone (an expunged UID, RFC 7162 §3.2.10) for a UID that is still in its mailbox or was never handed out (at or above UIDNEXT), or with a MODSEQ above the mailbox's HIGHESTMODSEQ; a `vanished_floor` above HIGHESTMODSEQ (clients would be told wrong VANISHED sets) |
//! | `uidvalidity` | the UIDVALIDITY counter is missing or below a mailbox's UIDVALIDITY (it would hand out a value twice) |
//! | `inbox` | an account has no INBOX (mail to it cannot be delivered) |
//! | `queue` | a queue entry without recipients or message, a recipient status other than pending/delivered/failed; (warning) an entry with no pending recipient, never removed |
//! | `domains` | (warning) an account whose domain is not local |
//! | `permissions` | (warning) the data directory or a database file that other local users can open |
//!
//! The result is a [`Report`]; it is `ok()` when no check found a fault.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::sqlite::{SCHEMA_VERSION, USAGE_SQL};
use crate::{Result, StoreError};

/// At most this many findings are listed per check; the rest are counted.
pub const MAX_LISTED: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something is wrong: mail may be unreadable, counted wrongly or at risk.
    Fault,
    /// Worth knowing, nothing is lost (wasted space, wide permissions).
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub text: String,
}

/// One check and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Short name (`usage`, `uids`, ...).
    pub name: &'static str,
    /// What it verifies, in a few words.
    pub what: &'static str,
    /// The findings listed (at most [`MAX_LISTED`]).
    pub findings: Vec<Finding>,
    /// Faults found beyond those listed.
    pub more_faults: usize,
    /// Warnings found beyond those listed.
    pub more_warnings: usize,
}

impl CheckResult {
    fn new(name: &'static str, what: &'static str) -> Self {
        CheckResult {
            name,
            what,
            findings: Vec::new(),
            more_faults: 0,
            more_warnings: 0,
        }
    }

    fn add(&mut self, severity: Severity, text: String) {
        if self.findings.len() < MAX_LISTED {
            self.findings.push(Finding { severity, text });
        } else if severity == Severity::Fault {
            self.more_faults += 1;
        } else {
            self.more_warnings += 1;
        }
    }

    fn fault(&mut self, text: String) {
        self.add(Severity::Fault, text)
    }

    fn warn(&mut self, text: String) {
        self.add(Severity::Warning, text)
    }

    pub fn faults(&self) -> usize {
        self.count(Severity::Fault) + self.more_faults
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning) + self.more_warnings
    }

    fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }
}

/// What was counted while checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub schema_version: i64,
    pub accounts: u64,
    pub mailboxes: u64,
    /// Mailbox entries (a message in two mailboxes counts twice).
    pub mailbox_entries: u64,
    /// Stored message blobs.
    pub messages: u64,
    /// Octets of the stored message blobs.
    pub message_octets: u64,
    pub queue_entries: u64,
    pub queue_recipients: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<CheckResult>,
    pub totals: Totals,
}

impl Report {
    pub fn faults(&self) -> usize {
        self.checks.iter().map(CheckResult::faults).sum()
    }
    pub fn warnings(&self) -> usize {
        self.checks.iter().map(CheckResult::warnings).sum()
    }
    /// No fault found (warnings allowed).
    pub fn ok(&self) -> bool {
        self.faults() == 0
    }
    /// The check with this name, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Checks the data directory `dir`: the database read-only in one read transaction, and the
/// files' permissions. Never changes anything (not even the files' modes). An error means
/// the check could not run (no store there, the file cannot be opened).
pub fn check_data_dir(dir: &Path) -> Result<Report> {
    let path = dir.join(crate::files::DB_FILE);
    if !path.is_file() {
        return Err(StoreError::NotFound(format!(
            "a mailroom store ({} does not exist)",
            path.display()
        )));
    }
    // The modes as found, before SQLite opens anything.
    let mut perms = CheckResult::new(
        "permissions",
        "the data directory and database files are owner-only",
    );
    for e in crate::files::exposed(dir) {
        perms.warn(e.to_string());
    }
    // Read-only: SQLite may create the empty -wal and -shm files it needs to read a WAL
    // database (with the database file's mode, and its owner when run as root), nothing else.
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let mut report = check_connection(&conn)?;
    report.checks.push(perms);
    Ok(report)
}

/// Runs the database checks on an open connection, inside one read transaction.
pub fn check_connection(conn: &Connection) -> Result<Report> {
    // A deferred transaction: its first read fixes the snapshot every check then sees.
    conn.execute_batch("BEGIN DEFERRED")?;
    let out = run_checks(conn);
    let _ = conn.execute_batch("ROLLBACK");
    out
}

fn run_checks(c: &Connection) -> Result<Report> {
    let mut report = Report::default();
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    report.totals.schema_version = version;
    let mut schema = CheckResult::new("schema", "the schema version is one this build knows");
    let full = if version > SCHEMA_VERSION {
        schema.fault(format!(
            "schema version {version} was written by a newer mailroom (this build knows {SCHEMA_VERSION}); check it with that version"
        ));
        false
    } else if version < SCHEMA_VERSION {
        schema.warn(format!(
            "schema version {version} is older than this build's {SCHEMA_VERSION}: it is migrated at the next start; only SQLite's own checks ran"
        ));
        false
    } else {
        true
    };
    report.checks.push(schema);
    report.checks.push(integrity(c)?);
    report.checks.push(foreign_keys(c)?);
    if !full {
        return Ok(report);
    }
    report.totals = totals(c, version)?;
    report.checks.push(mailbox_entries(c)?);
    report.checks.push(message_sizes(c)?);
    report.checks.push(orphans(c)?);
    report.checks.push(usage(c)?);
    report.checks.push(mailbox_counts(c)?);
    report.checks.push(uids(c)?);
    report.checks.push(tombstones(c)?);
    report.checks.push(uidvalidity(c)?);
    report.checks.push(inbox(c)?);
    report.checks.push(queue(c)?);
    report.checks.push(domains(c)?);
    Ok(report)
}

/// Runs `sql` and hands each row to `each`.
fn each_row(
    c: &Connection,
    sql: &str,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>,
) -> Result<()> {
    let mut st = c.prepare(sql)?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        each(r)?;
    }
    Ok(())
}

fn count(c: &Connection, sql: &str) -> Result<u64> {
    let n: i64 = c.query_row(sql, [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

fn totals(c: &Connection, version: i64) -> Result<Totals> {
    Ok(Totals {
        schema_version: version,
        accounts: count(c, "SELECT COUNT(*) FROM accounts")?,
        mailboxes: count(c, "SELECT COUNT(*) FROM mailboxes")?,
        mailbox_entries: count(c, "SELECT COUNT(*) FROM mailbox_messages")?,
        messages: count(c, "SELECT COUNT(*) FROM messages")?,
        message_octets: count(c, "SELECT COALESCE(SUM(size), 0) FROM message_info")?,
        queue_entries: count(c, "SELECT COUNT(*) FROM queue")?,
        queue_recipients: count(c, "SELECT COUNT(*) FROM queue_recipients")?,
    })
}

fn integrity(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new("integrity", "SQLite's integrity_check: pages and indexes");
    each_row(c, "PRAGMA integrity_check", |row| {
        let line: String = row.get(0)?;
        if line != "ok" {
            r.fault(line);
        }
        Ok(())
    })?;
    Ok(r)
}

fn foreign_keys(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "foreign-keys",
        "SQLite's foreign_key_check: every reference has its row",
    );
    each_row(c, "PRAGMA foreign_key_check", |row| {
        let table: String = row.get(0)?;
        let rowid: Option<i64> = row.get(1)?;
        let parent: String = row.get(2)?;
        r.fault(format!(
            "{table} row {} refers to a {parent} row that does not exist",
            rowid.map(|i| i.to_string()).unwrap_or_else(|| "?".into())
        ));
        Ok(())
    })?;
    Ok(r)
}

fn mailbox_entries(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "mailbox-entries",
        "every mailbox entry's mailbox, message and message_info exist",
    );
    each_row(
        c,
        "SELECT mm.mailbox_id, mm.uid, mm.message_id,
                EXISTS (SELECT 1 FROM mailboxes m WHERE m.id = mm.mailbox_id),
                EXISTS (SELECT 1 FROM messages g WHERE g.id = mm.message_id),
                EXISTS (SELECT 1 FROM message_info i WHERE i.message_id = mm.message_id)
           FROM mailbox_messages mm
          WHERE NOT EXISTS (SELECT 1 FROM mailboxes m WHERE m.id = mm.mailbox_id)
             OR NOT EXISTS (SELECT 1 FROM messages g WHERE g.id = mm.message_id)
             OR NOT EXISTS (SELECT 1 FROM message_info i WHERE i.message_id = mm.message_id)",
        |row| {
            let (mailbox, uid, message): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let mut missing = Vec::new();
            if !row.get::<_, bool>(3)? {
                missing.push("its mailbox");
            }
            if !row.get::<_, bool>(4)? {
                missing.push("its message (the octets are lost)");
            }
            if !row.get::<_, bool>(5)? {
                missing.push("its message_info (listings fail)");
            }
            r.fault(format!(
                "mailbox {mailbox} UID {uid} (message {message}): missing {}",
                missing.join(", ")
            ));
            Ok(())
        },
    )?;
    each_row(
        c,
        "SELECT q.id, q.message_id FROM queue q
          WHERE NOT EXISTS (SELECT 1 FROM messages g WHERE g.id = q.message_id)
             OR NOT EXISTS (SELECT 1 FROM message_info i WHERE i.message_id = q.message_id)",
        |row| {
            let (q, m): (i64, i64) = (row.get(0)?, row.get(1)?);
            r.fault(format!(
                "queue entry {q}: its message {m} or its message_info is missing"
            ));
            Ok(())
        },
    )?;
    Ok(r)
}

fn message_sizes(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "message-sizes",
        "message_info (size, ends with LF) matches the stored octets",
    );
    // length() of a blob reads only its header; the last octet is read with substr.
    each_row(
        c,
        "SELECT g.id, g.size, length(g.data), i.size, i.ends_lf,
                (length(g.data) = 0 OR substr(g.data, length(g.data), 1) = x'0a')
           FROM messages g LEFT JOIN message_info i ON i.message_id = g.id",
        |row| {
            let id: i64 = row.get(0)?;
            let recorded: i64 = row.get(1)?;
            let actual: i64 = row.get(2)?;
            let info_size: Option<i64> = row.get(3)?;
            let info_lf: Option<bool> = row.get(4)?;
            let ends_lf: bool = row.get(5)?;
            match (info_size, info_lf) {
                (None, _) | (_, None) => {
                    r.fault(format!("message {id} has no message_info row"));
                }
                (Some(s), Some(lf)) => {
                    if s != actual {
                        r.fault(format!(
                            "message {id}: message_info.size is {s}, the message has {actual} octets"
                        ));
                    }
                    if lf != ends_lf {
                        r.fault(format!(
                            "message {id}: message_info.ends_lf is {lf}, the message {} in LF (POP3 sizes are wrong)",
                            if ends_lf { "ends" } else { "does not end" }
                        ));
                    }
                }
            }
            if recorded != actual {
                r.fault(format!(
                    "message {id}: messages.size is {recorded}, the message has {actual} octets"
                ));
            }
            Ok(())
        },
    )?;
    let stale = count(
        c,
        "SELECT COUNT(*) FROM message_info i
          WHERE NOT EXISTS (SELECT 1 FROM messages g WHERE g.id = i.message_id)",
    )?;
    if stale > 0 {
        r.warn(format!(
            "{stale} message_info row(s) for messages that no longer exist (harmless)"
        ));
    }
    Ok(r)
}

fn orphans(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "orphans",
        "every stored message is in a mailbox or the queue",
    );
    let (n, octets): (i64, i64) = c.query_row(
        "SELECT COUNT(*), COALESCE(SUM(g.size), 0) FROM messages g
          WHERE NOT EXISTS (SELECT 1 FROM mailbox_messages mm WHERE mm.message_id = g.id)
            AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.message_id = g.id)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if n > 0 {
        r.warn(format!(
            "{n} stored message(s) ({octets} octets) are in no mailbox and not queued: wasted space, no mail is lost"
        ));
    }
    Ok(r)
}

fn usage(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "usage",
        "accounts.used equals the sum of the account's message sizes",
    );
    let sql = format!(
        "SELECT address, used, ({}) FROM accounts ORDER BY address",
        USAGE_SQL.replace("?1", "accounts.id")
    );
    each_row(c, &sql, |row| {
        let address: String = row.get(0)?;
        let used: i64 = row.get(1)?;
        let sum: i64 = row.get(2)?;
        if used != sum {
            r.fault(format!(
                "{address}: accounts.used is {used}, its messages take {sum} octets (quotas are applied wrongly)"
            ));
        }
        Ok(())
    })?;
    Ok(r)
}

fn mailbox_counts(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "counts",
        "each mailbox's message, unseen, deleted and size counters equal a recount",
    );
    let mut recount = c.prepare(crate::sqlite::MAILBOX_COUNTS_SQL)?;
    each_row(
        c,
        "SELECT a.address, m.name, m.messages, m.unseen, m.deleted, m.size, m.id
           FROM mailboxes m JOIN accounts a ON a.id = m.account_id
          ORDER BY a.address, m.name",
        |row| {
            let (address, name): (String, String) = (row.get(0)?, row.get(1)?);
            let kept: [i64; 4] = [row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?];
            let id: i64 = row.get(6)?;
            let fresh: [i64; 4] =
                recount.query_row([id], |f| Ok([f.get(0)?, f.get(1)?, f.get(2)?, f.get(3)?]))?;
            if kept != fresh {
                r.fault(format!(
                    "{address} {name}: counters (messages, unseen, deleted, octets) are {kept:?}, a recount gives {fresh:?} (STATUS answers wrongly)"
                ));
            }
            Ok(())
        },
    )?;
    Ok(r)
}

fn uids(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "uids",
        "UIDNEXT above every UID, HIGHESTMODSEQ at least every MODSEQ",
    );
    each_row(
        c,
        "SELECT a.address, m.name, m.uidnext, m.highest_modseq, s.max_uid, s.max_modseq, s.min_uid
           FROM mailboxes m
           JOIN (SELECT mailbox_id, MAX(uid) AS max_uid, MAX(modseq) AS max_modseq,
                        MIN(uid) AS min_uid
                   FROM mailbox_messages GROUP BY mailbox_id) s ON s.mailbox_id = m.id
           LEFT JOIN accounts a ON a.id = m.account_id
          WHERE m.uidnext <= s.max_uid OR m.highest_modseq < s.max_modseq OR s.min_uid < 1",
        |row| {
            let who: Option<String> = row.get(0)?;
            let name: String = row.get(1)?;
            let (uidnext, hms, max_uid, max_ms, min_uid): (i64, i64, i64, i64, i64) = (
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            );
            let at = format!("{} {name}", who.as_deref().unwrap_or("(no account)"));
            if uidnext <= max_uid {
                r.fault(format!(
                    "{at}: UIDNEXT is {uidnext} but UID {max_uid} exists (a new message would reuse a UID)"
                ));
            }
            if hms < max_ms {
                r.fault(format!(
                    "{at}: HIGHESTMODSEQ is {hms} but a message has MODSEQ {max_ms} (clients miss changes)"
                ));
            }
            if min_uid < 1 {
                r.fault(format!(
                    "{at}: a message has UID {min_uid} (UIDs start at 1)"
                ));
            }
            Ok(())
        },
    )?;
    Ok(r)
}

fn tombstones(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "tombstones",
        "expunged UIDs (QRESYNC) are gone, were handed out, and are not ahead of HIGHESTMODSEQ",
    );
    // RFC 7162 §3.2.10: VANISHED names UIDs that were expunged; a tombstone for a message
    // that is still there would make a client drop it, one ahead of HIGHESTMODSEQ would
    // never be reported to a client that synchronised at HIGHESTMODSEQ.
    each_row(
        c,
        "SELECT a.address, m.name, e.uid, e.modseq, m.uidnext, m.highest_modseq,
                EXISTS (SELECT 1 FROM mailbox_messages mm
                         WHERE mm.mailbox_id = e.mailbox_id AND mm.uid = e.uid)
           FROM expunged e
           JOIN mailboxes m ON m.id = e.mailbox_id
           LEFT JOIN accounts a ON a.id = m.account_id
          WHERE e.uid >= m.uidnext OR e.modseq > m.highest_modseq
             OR EXISTS (SELECT 1 FROM mailbox_messages mm
                         WHERE mm.mailbox_id = e.mailbox_id AND mm.uid = e.uid)
          ORDER BY e.mailbox_id, e.uid",
        |row| {
            let who: Option<String> = row.get(0)?;
            let name: String = row.get(1)?;
            let (uid, modseq, uidnext, hms): (i64, i64, i64, i64) =
                (row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?);
            let live: bool = row.get(6)?;
            let at = format!("{} {name}", who.as_deref().unwrap_or("(no account)"));
            if live {
                r.fault(format!(
                    "{at}: UID {uid} is recorded as expunged but is still in the mailbox (QRESYNC clients would drop it)"
                ));
            }
            if uid >= uidnext {
                r.fault(format!(
                    "{at}: UID {uid} is recorded as expunged but UIDNEXT is {uidnext} (it was never handed out)"
                ));
            }
            if modseq > hms {
                r.fault(format!(
                    "{at}: UID {uid} was expunged at MODSEQ {modseq}, above HIGHESTMODSEQ {hms} (clients would never hear of it)"
                ));
            }
            Ok(())
        },
    )?;
    each_row(
        c,
        "SELECT a.address, m.name, m.vanished_floor, m.highest_modseq
           FROM mailboxes m LEFT JOIN accounts a ON a.id = m.account_id
          WHERE m.vanished_floor > m.highest_modseq",
        |row| {
            let who: Option<String> = row.get(0)?;
            let name: String = row.get(1)?;
            let (floor, hms): (i64, i64) = (row.get(2)?, row.get(3)?);
            r.fault(format!(
                "{} {name}: the pruned-tombstone floor is MODSEQ {floor}, above HIGHESTMODSEQ {hms}",
                who.as_deref().unwrap_or("(no account)")
            ));
            Ok(())
        },
    )?;
    Ok(r)
}

fn uidvalidity(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "uidvalidity",
        "the UIDVALIDITY counter is at least every mailbox's UIDVALIDITY",
    );
    let counter: Option<i64> = c
        .query_row(
            "SELECT value FROM counters WHERE name = 'uidvalidity'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let highest: Option<i64> =
        c.query_row("SELECT MAX(uidvalidity) FROM mailboxes", [], |row| {
            row.get(0)
        })?;
    match (counter, highest) {
        (None, _) => r.fault(
            "the uidvalidity counter is missing (new mailboxes cannot be created)".to_string(),
        ),
        (Some(v), Some(h)) if v < h => r.fault(format!(
            "the uidvalidity counter is {v}, below the UIDVALIDITY {h} of a mailbox: a value could be handed out twice"
        )),
        _ => {}
    }
    Ok(r)
}

fn inbox(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new("inbox", "every account has an INBOX");
    each_row(
        c,
        "SELECT address FROM accounts a
          WHERE NOT EXISTS (SELECT 1 FROM mailboxes m WHERE m.account_id = a.id AND m.name = 'INBOX')
          ORDER BY address",
        |row| {
            let address: String = row.get(0)?;
            r.fault(format!(
                "{address} has no INBOX: mail to it cannot be delivered"
            ));
            Ok(())
        },
    )?;
    Ok(r)
}

fn queue(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new(
        "queue",
        "queue entries have recipients, each with a valid status",
    );
    each_row(
        c,
        "SELECT q.id,
                (SELECT COUNT(*) FROM queue_recipients qr WHERE qr.queue_id = q.id),
                (SELECT COUNT(*) FROM queue_recipients qr WHERE qr.queue_id = q.id AND qr.status = 'pending')
           FROM queue q ORDER BY q.id",
        |row| {
            let (id, all, pending): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            if all == 0 {
                r.fault(format!(
                    "queue entry {id} has no recipients: its message is never delivered nor removed"
                ));
            } else if pending == 0 {
                r.warn(format!(
                    "queue entry {id} has no pending recipient but was not removed (its message wastes space)"
                ));
            }
            Ok(())
        },
    )?;
    each_row(
        c,
        "SELECT id, queue_id, recipient, status FROM queue_recipients
          WHERE status NOT IN ('pending', 'delivered', 'failed') ORDER BY id",
        |row| {
            let (id, q, rcpt, status): (i64, i64, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            r.fault(format!(
                "queue entry {q} recipient {id} <{rcpt}> has status {status:?} (pending, delivered or failed expected)"
            ));
            Ok(())
        },
    )?;
    Ok(r)
}

fn domains(c: &Connection) -> Result<CheckResult> {
    let mut r = CheckResult::new("domains", "every account's domain is local");
    each_row(
        c,
        "SELECT address FROM accounts a
          WHERE NOT EXISTS (SELECT 1 FROM domains d
                             WHERE d.name = lower(substr(a.address, instr(a.address, '@') + 1)))
          ORDER BY address",
        |row| {
            let address: String = row.get(0)?;
            r.warn(format!(
                "{address}: its domain is not local, so mail to it is refused"
            ));
            Ok(())
        },
    )?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::{Delivery, Flags, MailStore, Outbound};

    /// A store with two accounts, mail in INBOX and another folder, a message in two
    /// mailboxes, and a queue entry; closed again, so a test can change the file by hand.
    fn populated() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        let a = s.add_account("a@x.test", "h").unwrap();
        let b = s.add_account("b@x.test", "h").unwrap();
        for i in 0..3 {
            s.deliver(Delivery::to_inboxes(
                format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes(),
                vec![a, b],
            ))
            .unwrap();
        }
        s.deliver(Delivery {
            transcript: None,
            local_message: b"Subject: out\r\n\r\nno LF at the end".to_vec(),
            local: vec![a],
            outbound: Some(Outbound {
                sender: "a@x.test".into(),
                recipients: vec!["z@far.test".into(), "y@far.test".into()],
                message: b"Subject: out\r\n\r\nx\r\n".to_vec(),
                first_attempt: 0,
                claim_until: 0,
            }),
        })
        .unwrap();
        let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
        let sent = s.mailbox(a, "Sent").unwrap().unwrap();
        s.copy_messages(inbox.id, &[1, 2], sent.id, false).unwrap();
        s.append_message(sent.id, b"Subject: draft\r\n\r\n", Flags::SEEN, &[], 0)
            .unwrap();
        s.store_flags(inbox.id, &[1], crate::FlagOp::Add, Flags::SEEN, &[], None)
            .unwrap();
        s.expunge(inbox.id, &[3]).unwrap();
        s.shutdown();
        dir
    }

    /// Changes the closed store with raw SQL (foreign keys off, as a careless hand would).
    fn corrupt(dir: &Path, sql: &str) {
        let c = Connection::open(dir.join("mailroom.db")).unwrap();
        c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        c.execute_batch(sql).unwrap();
    }

    fn faults_of(report: &Report, name: &str) -> Vec<String> {
        report
            .check(name)
            .unwrap_or_else(|| panic!("check {name} did not run: {report:#?}"))
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Fault)
            .map(|f| f.text.clone())
            .collect()
    }

    /// Every fault of the report is in the named check, and there is at least one.
    fn only_in(report: &Report, names: &[&str]) -> Vec<String> {
        for c in &report.checks {
            if !names.contains(&c.name) {
                assert_eq!(c.faults(), 0, "unexpected fault in {}: {c:#?}", c.name);
            }
        }
        let all: Vec<String> = names.iter().flat_map(|n| faults_of(report, n)).collect();
        assert!(!all.is_empty(), "no fault in {names:?}: {report:#?}");
        assert!(!report.ok());
        all
    }

    #[test]
    fn a_healthy_store_has_no_findings() {
        let dir = populated();
        let report = check_data_dir(dir.path()).unwrap();
        assert!(report.ok(), "{report:#?}");
        assert_eq!(report.warnings(), 0, "{report:#?}");
        assert_eq!(report.totals.schema_version, SCHEMA_VERSION);
        assert_eq!(report.totals.accounts, 2);
        assert_eq!(report.totals.mailboxes, 12);
        // a: 4 delivered - 1 expunged + 2 copied + 1 appended; b: 3.
        assert_eq!(report.totals.mailbox_entries, 9);
        assert_eq!(report.totals.queue_entries, 1);
        assert_eq!(report.totals.queue_recipients, 2);
        for name in [
            "schema",
            "integrity",
            "foreign-keys",
            "mailbox-entries",
            "message-sizes",
            "orphans",
            "usage",
            "uids",
            "uidvalidity",
            "inbox",
            "queue",
            "domains",
            "permissions",
        ] {
            assert!(report.check(name).is_some(), "{name} ran");
        }
    }

    #[test]
    fn check_changes_nothing() {
        let dir = populated();
        let db = dir.path().join("mailroom.db");
        let before = std::fs::read(&db).unwrap();
        check_data_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), before);
        assert!(
            !dir.path().join("mailroom.db-wal").exists() || {
                std::fs::metadata(dir.path().join("mailroom.db-wal"))
                    .unwrap()
                    .len()
                    == 0
            }
        );
    }

    #[test]
    fn a_missing_store_is_an_error_not_a_report() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_data_dir(&dir.path().join("nothing")),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn a_lost_message_is_a_fault() {
        let dir = populated();
        corrupt(dir.path(), "DELETE FROM messages WHERE id = 1");
        let report = check_data_dir(dir.path()).unwrap();
        let f = only_in(&report, &["mailbox-entries", "foreign-keys"]);
        assert!(f.iter().any(|t| t.contains("missing its message")), "{f:?}");
        assert!(
            f.iter()
                .any(|t| t.contains("mailbox_messages row") && t.contains("messages row")),
            "{f:?}"
        );
        // message_info of the lost message is left over: a warning.
        assert!(report.warnings() >= 1);
    }

    #[test]
    fn a_missing_message_info_is_a_fault() {
        let dir = populated();
        corrupt(dir.path(), "DELETE FROM message_info WHERE message_id = 2");
        let f = only_in(
            &check_data_dir(dir.path()).unwrap(),
            &["mailbox-entries", "message-sizes", "usage", "counts"],
        );
        assert!(
            f.iter().any(|t| t.contains("missing its message_info")),
            "{f:?}"
        );
        assert!(
            f.iter().any(|t| t.contains("has no message_info row")),
            "{f:?}"
        );
    }

    #[test]
    fn an_orphan_is_a_warning_not_a_fault() {
        let dir = populated();
        corrupt(
            dir.path(),
            "INSERT INTO messages (size, created, data) VALUES (5, 0, x'6869210d0a');
             INSERT INTO message_info (message_id, size, ends_lf) VALUES (last_insert_rowid(), 5, 1);",
        );
        let report = check_data_dir(dir.path()).unwrap();
        assert!(report.ok(), "{report:#?}");
        let o = report.check("orphans").unwrap();
        assert_eq!(o.warnings(), 1);
        assert!(o.findings[0]
            .text
            .starts_with("1 stored message(s) (5 octets)"));
    }

    #[test]
    fn wrong_sizes_are_faults() {
        let dir = populated();
        corrupt(
            dir.path(),
            "UPDATE message_info SET size = size + 1 WHERE message_id = 1;
             UPDATE message_info SET ends_lf = 1 - ends_lf WHERE message_id = 2;
             UPDATE messages SET size = 7 WHERE id = 3;",
        );
        let f = only_in(
            &check_data_dir(dir.path()).unwrap(),
            &["message-sizes", "usage", "counts"],
        );
        assert!(
            f.iter()
                .any(|t| t.starts_with("message 1: message_info.size")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|t| t.starts_with("message 2: message_info.ends_lf")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|t| t.starts_with("message 3: messages.size is 7")),
            "{f:?}"
        );
    }

    #[test]
    fn a_usage_counter_that_drifted_is_a_fault() {
        let dir = populated();
        corrupt(
            dir.path(),
            "UPDATE accounts SET used = used + 5 WHERE address = 'b@x.test'",
        );
        let f = only_in(&check_data_dir(dir.path()).unwrap(), &["usage"]);
        assert_eq!(f.len(), 1);
        assert!(f[0].starts_with("b@x.test: accounts.used is"), "{f:?}");
    }

    #[test]
    fn a_mailbox_counter_that_drifted_is_a_fault() {
        let dir = populated();
        corrupt(
            dir.path(),
            "UPDATE mailboxes SET unseen = unseen + 1 WHERE name = 'INBOX' AND account_id =
                 (SELECT id FROM accounts WHERE address = 'b@x.test')",
        );
        let f = only_in(&check_data_dir(dir.path()).unwrap(), &["counts"]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("b@x.test INBOX: counters"), "{f:?}");
    }

    #[test]
    fn uidnext_and_modseq_behind_are_faults() {
        let dir = populated();
        corrupt(
            dir.path(),
            "UPDATE mailboxes SET uidnext = 2 WHERE name = 'INBOX' AND account_id =
                 (SELECT id FROM accounts WHERE address = 'b@x.test');
             UPDATE mailboxes SET highest_modseq = 0 WHERE name = 'Sent';",
        );
        let f = only_in(&check_data_dir(dir.path()).unwrap(), &["uids"]);
        assert!(
            f.iter()
                .any(|t| t.starts_with("b@x.test INBOX: UIDNEXT is 2 but UID 3 exists")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|t| t.starts_with("a@x.test Sent: HIGHESTMODSEQ is 0")),
            "{f:?}"
        );
    }

    #[test]
    fn wrong_tombstones_are_faults() {
        let dir = populated();
        let report = check_data_dir(dir.path()).unwrap();
        let t = report.check("tombstones").unwrap();
        assert_eq!(t.faults(), 0, "{t:#?}");
        // The expunge of a@x.test's INBOX UID 3 left a tombstone; one for UID 1 (still
        // there), one never handed out, one ahead of HIGHESTMODSEQ.
        corrupt(
            dir.path(),
            "INSERT INTO expunged (mailbox_id, uid, modseq)
               SELECT id, 1, highest_modseq FROM mailboxes WHERE name = 'INBOX' AND account_id =
                 (SELECT id FROM accounts WHERE address = 'a@x.test');
             INSERT INTO expunged (mailbox_id, uid, modseq)
               SELECT id, uidnext + 5, highest_modseq FROM mailboxes WHERE name = 'INBOX'
                  AND account_id = (SELECT id FROM accounts WHERE address = 'b@x.test');
             UPDATE expunged SET modseq = modseq + 100 WHERE uid = 3;
             UPDATE mailboxes SET vanished_floor = highest_modseq + 1 WHERE name = 'Sent';",
        );
        let f = only_in(&check_data_dir(dir.path()).unwrap(), &["tombstones"]);
        assert!(
            f.iter().any(
                |t| t.starts_with("a@x.test INBOX: UID 1 is recorded as expunged but is still")
            ),
            "{f:?}"
        );
        assert!(
            f.iter().any(|t| t.starts_with("b@x.test INBOX: UID")
                && t.contains("was never handed out")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|t| t.starts_with("a@x.test INBOX: UID 3 was expunged at MODSEQ")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|t| t.starts_with("a@x.test Sent: the pruned-tombstone floor")),
            "{f:?}"
        );
    }

    #[test]
    fn a_uidvalidity_counter_behind_is_a_fault() {
        let dir = populated();
        corrupt(
            dir.path(),
            "UPDATE counters SET value = 5 WHERE name = 'uidvalidity'",
        );
        let f = only_in(&check_data_dir(dir.path()).unwrap(), &["uidvalidity"]);
        assert!(f[0].contains("handed out twice"), "{f:?}");
        corrupt(dir.path(), "DELETE FROM counters");
        let f = only_in(&check_data_dir(dir.path()).unwrap(), &["uidvalidity"]);
        assert!(f[0].contains("missing"), "{f:?}");
    }

    #[test]
    fn an_account_without_inbox_is_a_fault() {
        let dir = populated();
        corrupt(
            dir.path(),
            "DELETE FROM mailbox_messages WHERE mailbox_id IN
                 (SELECT id FROM mailboxes WHERE name = 'INBOX' AND account_id =
                     (SELECT id FROM accounts WHERE address = 'b@x.test'));
             DELETE FROM mailboxes WHERE name = 'INBOX' AND account_id =
                 (SELECT id FROM accounts WHERE address = 'b@x.test');",
        );
        let report = check_data_dir(dir.path()).unwrap();
        let f = only_in(&report, &["inbox"]);
        assert_eq!(
            f,
            vec!["b@x.test has no INBOX: mail to it cannot be delivered"]
        );
    }

    #[test]
    fn broken_queue_entries_are_faults() {
        let dir = populated();
        corrupt(
            dir.path(),
            "UPDATE queue_recipients SET status = 'sent' WHERE recipient = 'y@far.test';",
        );
        let f = only_in(&check_data_dir(dir.path()).unwrap(), &["queue"]);
        assert!(f[0].contains("<y@far.test> has status \"sent\""), "{f:?}");
        corrupt(dir.path(), "DELETE FROM queue_recipients;");
        let f = only_in(&check_data_dir(dir.path()).unwrap(), &["queue"]);
        assert!(f[0].contains("has no recipients"), "{f:?}");
    }

    #[test]
    fn a_queue_entry_with_nothing_pending_is_a_warning() {
        let dir = populated();
        corrupt(
            dir.path(),
            "UPDATE queue_recipients SET status = 'delivered';",
        );
        let report = check_data_dir(dir.path()).unwrap();
        assert!(report.ok(), "{report:#?}");
        assert_eq!(report.check("queue").unwrap().warnings(), 1);
    }

    #[test]
    fn a_damaged_index_is_a_fault() {
        let dir = populated();
        // The index now claims to be on another column than the one its entries hold.
        corrupt(
            dir.path(),
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = 'CREATE INDEX mailbox_messages_message ON mailbox_messages(flags)'
              WHERE name = 'mailbox_messages_message';",
        );
        let f = only_in(&check_data_dir(dir.path()).unwrap(), &["integrity"]);
        assert!(
            f.iter().any(|t| t.contains("mailbox_messages_message")),
            "{f:?}"
        );
    }

    #[test]
    fn a_newer_schema_is_a_fault_an_older_one_a_warning() {
        let dir = populated();
        corrupt(
            dir.path(),
            &format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1),
        );
        let report = check_data_dir(dir.path()).unwrap();
        let f = only_in(&report, &["schema"]);
        assert!(f[0].contains("newer mailroom"), "{f:?}");
        assert!(report.check("usage").is_none(), "nothing else is read");
        corrupt(
            dir.path(),
            &format!("PRAGMA user_version = {}", SCHEMA_VERSION - 1),
        );
        let report = check_data_dir(dir.path()).unwrap();
        assert!(report.ok());
        assert_eq!(report.check("schema").unwrap().warnings(), 1);
    }

    #[test]
    fn many_faults_are_counted_beyond_those_listed() {
        let dir = populated();
        let s = SqliteStore::open(dir.path()).unwrap();
        let a = s.find_account("a@x.test").unwrap().unwrap().id;
        let box_ = s.mailbox(a, "Archive").unwrap().unwrap();
        for _ in 0..30 {
            s.append_message(box_.id, b"x\r\n", Flags::default(), &[], 0)
                .unwrap();
        }
        s.shutdown();
        drop(s);
        corrupt(dir.path(), "UPDATE message_info SET size = size + 1");
        let report = check_data_dir(dir.path()).unwrap();
        let sizes = report.check("message-sizes").unwrap();
        assert_eq!(sizes.findings.len(), MAX_LISTED);
        assert_eq!(sizes.faults(), 30 + 6);
    }

    #[cfg(unix)]
    #[test]
    fn wide_permissions_are_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let dir = populated();
        let db = dir.path().join("mailroom.db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let report = check_data_dir(dir.path()).unwrap();
        assert!(report.ok());
        let p = report.check("permissions").unwrap();
        assert_eq!(p.warnings(), 1, "{p:#?}");
        assert!(p.findings[0].text.contains("mode 0644"));
        // Checking did not tighten it: read-only means read-only.
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn the_check_reads_beside_a_running_writer() {
        let dir = populated();
        let s = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
        let a = s.find_account("a@x.test").unwrap().unwrap().id;
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    s.deliver(Delivery::to_inboxes(
                        format!("n {i}\r\n").into_bytes(),
                        vec![a],
                    ))
                    .unwrap();
                }
            })
        };
        for _ in 0..5 {
            let report = check_data_dir(dir.path()).unwrap();
            assert!(report.ok(), "{report:#?}");
        }
        writer.join().unwrap();
        let report = check_data_dir(dir.path()).unwrap();
        assert!(report.ok(), "{report:#?}");
        assert_eq!(report.totals.mailbox_entries, 9 + 200);
    }
}
