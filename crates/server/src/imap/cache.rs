//! What all IMAP sessions share about messages: [`ImapShared`], the listings of large
//! mailboxes (`listing.rs`) and the per-process caches of
//! what a message's octets give (its MIME structure for FETCH, its header fields as SEARCH
//! matches them, its SORT and THREAD fields), and [`Loaded`], one message's octets and structure, read only when a FETCH
//! item or a SEARCH key needs them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mailroom_proto::imap::mime::Mime;
use mailroom_proto::imap::sort::SortFields;
use mailroom_store::{MailStore, MailboxId, MessageId, MessageRef, StoreError};

use super::search::{Fields, SearchText};
use super::selected::Msg;

/// MIME structures cached at most; beyond this the cache starts over (simple and bounded).
const MIME_ENTRIES: usize = 4096;
/// SEARCH header fields cached at most (a few hundred octets each: about 40 MiB when full).
/// A mailbox larger than this is searched from the store's persistent copy
/// (`message_search`), not by parsing its messages again.
const FIELD_ENTRIES: usize = 65_536;
/// SORT and THREAD fields cached at most (a couple of hundred octets each); beyond, like
/// SEARCH's, they are read from the store's copy.
const SORT_ENTRIES: usize = 65_536;

/// Key: the stored message's id. The store never hands an id out twice (schema v7) and a
/// message's octets never change, so a key names one message's octets for ever, whichever
/// account or mailbox holds it: an entry can never describe another message. (It was
/// (mailbox id, UIDVALIDITY, UID) before, and both parts could repeat: a mailbox deleted and
/// created again in the same second, by this account or another one, was shown the old
/// messages' headers.) Entries of messages that are gone are never looked up again and leave
/// with the next clear.
pub(super) type Key = MessageId;

/// A per-process cache of what is computed from a message's octets, bounded to a number of
/// entries (then it starts over: simple, and a message never changes under its key).
pub(super) struct Cache<V> {
    map: Mutex<HashMap<Key, Arc<V>>>,
    capacity: usize,
}

impl<V> Cache<V> {
    fn with_capacity(capacity: usize) -> Self {
        Cache {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }
    pub(super) fn get(&self, key: Key) -> Option<Arc<V>> {
        self.map.lock().ok()?.get(&key).cloned()
    }
    pub(super) fn put(&self, key: Key, v: Arc<V>) {
        if let Ok(mut c) = self.map.lock() {
            if c.len() >= self.capacity {
                c.clear();
            }
            c.insert(key, v);
        }
    }
    pub(super) fn len(&self) -> usize {
        self.map.lock().map(|c| c.len()).unwrap_or(0)
    }
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }
}

/// IMAP state shared by all sessions: caches of what a message's octets give. A message's
/// ENVELOPE, BODYSTRUCTURE and part offsets are computed once, so FETCH does not re-parse;
/// its header fields as SEARCH matches them (lower-cased, RFC 2047 decoded) likewise, so a
/// header search does not read the message again.
pub struct ImapShared {
    /// The listings of large mailboxes that SELECT starts from (`listing.rs`).
    pub(super) listings: super::listing::Listings,
    pub(super) mime: Cache<Mime>,
    pub(super) fields: Cache<Fields>,
    pub(super) sort: Cache<SortFields>,
}

impl Default for ImapShared {
    fn default() -> Self {
        ImapShared {
            listings: Default::default(),
            mime: Cache::with_capacity(MIME_ENTRIES),
            fields: Cache::with_capacity(FIELD_ENTRIES),
            sort: Cache::with_capacity(SORT_ENTRIES),
        }
    }
}

impl ImapShared {
    /// MIME structures cached (for tests and stats).
    pub fn len(&self) -> usize {
        self.mime.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The message octets and structure, loaded only when an item needs them.
pub(super) struct Loaded<'a> {
    pub(super) store: &'a dyn MailStore,
    pub(super) cache: &'a ImapShared,
    pub(super) key: Key,
    pub(super) mailbox: MailboxId,
    pub(super) msg: &'a Msg,
    pub(super) data: Option<Vec<u8>>,
    pub(super) mime: Option<Arc<Mime>>,
    pub(super) search: SearchText,
}

impl<'a> Loaded<'a> {
    pub(super) fn new(
        store: &'a dyn MailStore,
        cache: &'a ImapShared,
        mailbox: MailboxId,
        msg: &'a Msg,
    ) -> Self {
        Loaded {
            store,
            cache,
            key: msg.message,
            mailbox,
            msg,
            data: None,
            mime: None,
            search: SearchText::default(),
        }
    }

    pub(super) fn data(&mut self) -> Result<&[u8], StoreError> {
        if self.data.is_none() {
            // Read through the session's own mailbox: the store checks that the UID is still
            // there and belongs to the session's account.
            let at = MessageRef::Mailbox {
                mailbox: self.mailbox,
                uid: self.msg.uid,
            };
            self.data = Some(self.store.message_octets(at)?);
        }
        Ok(self.data.as_deref().unwrap_or_default())
    }
    pub(super) fn mime(&mut self) -> Result<Arc<Mime>, StoreError> {
        if let Some(m) = &self.mime {
            return Ok(m.clone());
        }
        let m = match self.cache.mime.get(self.key) {
            Some(m) => m,
            None => {
                let m = Arc::new(Mime::parse(self.data()?));
                self.cache.mime.put(self.key, m.clone());
                m
            }
        };
        self.mime = Some(m.clone());
        Ok(m)
    }
}
