//! The maildrop of one POP3 session: the INBOX as it was at login (RFC 1939 §3: message
//! numbers are fixed for the session), the deletion marks, and the lock that keeps other
//! POP3 sessions out (RFC 1939 §8, RFC 2449 §8.1.1 `[IN-USE]`).

use std::sync::Arc;

use mailroom_store::{Account, MailboxId, MessageRef, Store, StoreError};

use super::error::Pop3Error;
use crate::Shared;

/// Smallest read from the store while sending a message, and the size of the pieces that are
/// byte-stuffed and queued for the socket.
pub const CHUNK: usize = 64 * 1024;
/// Largest read from the store: memory per download stays below a few MiB however large the
/// message is.
pub const MAX_CHUNK: usize = 1024 * 1024;

/// The read size for a message of `size` octets: about a sixteenth of it, within
/// [`CHUNK`]..=[`MAX_CHUNK`].
///
/// Why not always [`CHUNK`]: each `read_message_at` opens the SQLite blob anew, and SQLite
/// finds an offset inside a large blob by walking its chain of overflow pages from the start,
/// so the cost of one read grows with the offset and many small reads of a big message cost
/// O(size²) (a 50 MiB message took 12 s in 64 KiB reads, 0.9 s in 1 MiB reads). A store
/// reader that keeps the blob open would make small reads linear again.
pub fn read_size(size: u64) -> usize {
    usize::try_from(size / 16)
        .unwrap_or(MAX_CHUNK)
        .clamp(CHUNK, MAX_CHUNK)
}

/// The exclusive lock on an account's maildrop. Released on drop, so a dropped connection or
/// a panicking session frees it too. Two parts: this server's own lock table (sessions of
/// this process), and the store's lock (sessions of other servers sharing a PostgreSQL
/// store: an advisory lock, which also ends when this process dies).
pub struct MaildropLock {
    shared: Arc<Shared>,
    account: i64,
    store_lock: Option<mailroom_store::HeldLock>,
}

impl MaildropLock {
    /// `Ok(None)` if another session, here or on another server, holds the maildrop.
    pub async fn acquire(
        shared: &Arc<Shared>,
        account: i64,
    ) -> Result<Option<MaildropLock>, StoreError> {
        let mut lock = {
            let mut locks = shared
                .maildrop_locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !locks.insert(account) {
                return Ok(None);
            }
            MaildropLock {
                shared: shared.clone(),
                account,
                store_lock: None,
            }
        };
        let store = shared.store.clone();
        let held = tokio::task::spawn_blocking(move || {
            store.lock_maildrop(mailroom_store::AccountId(account))
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("maildrop lock task failed: {e}")))??;
        match held {
            // Dropping `lock` frees this server's entry again.
            None => Ok(None),
            Some(h) => {
                lock.store_lock = Some(h);
                Ok(Some(lock))
            }
        }
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        // The store's lock first, then this server's: another session here can only take
        // the maildrop once no other server can.
        drop(self.store_lock.take());
        let mut locks = self
            .shared
            .maildrop_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.remove(&self.account);
    }
}

/// One message of the maildrop: its UID in the account's INBOX, through which it is read (the
/// store checks that it is still there and still the account's).
#[derive(Debug, Clone)]
pub struct Msg {
    pub uid: u32,
    /// Octets as the client counts them (RFC 1939 §11; see `pop3::wire_size`).
    pub size: u64,
    pub deleted: bool,
}

/// The TRANSACTION state's data.
pub struct Maildrop {
    pub account: Account,
    pub mailbox: MailboxId,
    pub uidvalidity: u32,
    pub msgs: Vec<Msg>,
    _lock: MaildropLock,
}

impl Maildrop {
    /// Loads the INBOX listing of a locked account (blocking store calls on a blocking thread).
    pub async fn open(
        store: &Store,
        account: Account,
        lock: MaildropLock,
    ) -> Result<Maildrop, Pop3Error> {
        let st = store.clone();
        let id = account.id;
        let loaded = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let Some(mb) = st.mailbox(id, "INBOX")? else {
                return Ok(None);
            };
            let mut msgs = Vec::new();
            for m in st.list_messages(mb.id)? {
                // RFC 1939 §3: the terminator is on a line of its own, so a message that does
                // not end in LF is sent with a CRLF added, which the size must count.
                let tail = (m.size > 0).then_some(if m.ends_with_lf { b'\n' } else { 0 });
                msgs.push(Msg {
                    uid: m.uid,
                    size: mailroom_proto::pop3::wire_size(m.size, tail),
                    deleted: false,
                });
            }
            Ok(Some((mb.id, mb.uidvalidity, msgs)))
        })
        .await;
        match loaded {
            Ok(Ok(Some((mailbox, uidvalidity, msgs)))) => Ok(Maildrop {
                account,
                mailbox,
                uidvalidity,
                msgs,
                _lock: lock,
            }),
            Ok(Ok(None)) => Err(Pop3Error::NoInbox(account.address)),
            Ok(Err(e)) => {
                tracing::error!(error = %e, account = %account.address, "cannot open the maildrop");
                Err(Pop3Error::Store(
                    "cannot open your maildrop right now".into(),
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "maildrop loader failed");
                Err(Pop3Error::Store(
                    "cannot open your maildrop right now".into(),
                ))
            }
        }
    }

    /// The message with number `n` (from 1), unless it does not exist or is marked deleted
    /// (RFC 1939 §5: "may NOT refer to a message marked as deleted").
    pub fn get(&self, n: u32) -> Result<&Msg, Pop3Error> {
        let idx = (n as usize).checked_sub(1);
        match idx.and_then(|i| self.msgs.get(i)) {
            None => Err(Pop3Error::NoSuchMessage {
                n,
                count: self.msgs.len(),
            }),
            Some(m) if m.deleted => Err(Pop3Error::Deleted(n)),
            Some(m) => Ok(m),
        }
    }

    /// Messages not marked deleted, with their numbers.
    pub fn live(&self) -> impl Iterator<Item = (usize, &Msg)> {
        self.msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.deleted)
            .map(|(i, m)| (i + 1, m))
    }

    /// (count, octets) of the messages not marked deleted (RFC 1939 §5, STAT).
    pub fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, s), (_, m)| (n + 1, s + m.size))
    }

    /// The unique-id of a message (RFC 1939 §7: 1 to 70 octets of 0x21-0x7E, unique in the
    /// maildrop and stable across sessions). UIDVALIDITY and UID together never repeat.
    pub fn unique_id(&self, m: &Msg) -> String {
        format!("{}.{}", self.uidvalidity, m.uid)
    }

    /// Where message `m` is read from.
    pub fn at(&self, m: &Msg) -> MessageRef {
        MessageRef::Mailbox {
            mailbox: self.mailbox,
            uid: m.uid,
        }
    }

    /// The account as stored now, if it is still the one that logged in: `None` once it was
    /// removed or its password changed (the session must then end).
    pub async fn still_valid(&self, store: &Store) -> Result<bool, StoreError> {
        let (st, id) = (store.clone(), self.account.id);
        let now = tokio::task::spawn_blocking(move || st.account_by_id(id))
            .await
            .map_err(|e| StoreError::Invalid(e.to_string()))??;
        Ok(now.is_some_and(|a| a.password_hash == self.account.password_hash))
    }

    /// UIDs marked deleted.
    pub fn marked(&self) -> Vec<u32> {
        self.msgs
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.uid)
            .collect()
    }

    /// Unmarks everything (RFC 1939 §5, RSET); returns how many were marked.
    pub fn unmark_all(&mut self) -> usize {
        let mut n = 0;
        for m in &mut self.msgs {
            if m.deleted {
                m.deleted = false;
                n += 1;
            }
        }
        n
    }
}

/// Reads up to this much inline on the async worker: a few cached SQLite pages take
/// microseconds, less than the hand-off to the blocking pool costs.
const INLINE_READ: usize = 64 * 1024;

/// Reads one chunk of a message at `offset` into `buf` (its whole length); returns the buffer
/// and the number of octets read (0 at the end). Small reads run inline, larger ones on a
/// blocking thread. `NotFound`: the message was expunged since login (by IMAP, say).
pub async fn read_chunk(
    store: &Store,
    message: MessageRef,
    offset: u64,
    mut buf: Vec<u8>,
) -> Result<(Vec<u8>, usize), StoreError> {
    if buf.len() <= INLINE_READ {
        return store
            .read_message_at(message, offset, &mut buf)
            .map(|n| (buf, n));
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let n = store.read_message_at(message, offset, &mut buf)?;
        Ok::<_, StoreError>((buf, n))
    })
    .await
    .map_err(|e| StoreError::Invalid(e.to_string()))?
}

/// Removes the marked messages durably (RFC 1939 §6, UPDATE); returns how many were removed.
pub async fn expunge(store: &Store, mailbox: MailboxId, uids: Vec<u32>) -> Result<usize, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.expunge(mailbox, &uids))
        .await
        .map_err(|e| e.to_string())?
        .map(|removed| removed.len())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_sizes() {
        assert_eq!(read_size(0), CHUNK);
        assert_eq!(read_size(500), CHUNK);
        assert_eq!(read_size(16 * CHUNK as u64), CHUNK);
        assert_eq!(read_size(32 * CHUNK as u64), 2 * CHUNK);
        assert_eq!(read_size(50 << 20), MAX_CHUNK);
        assert_eq!(read_size(u64::MAX), MAX_CHUNK);
    }
}
