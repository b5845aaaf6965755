//! Mailbox listings shared by all sessions: what SELECT and EXAMINE start from.
//!
//! A session in the SELECTED state holds the mailbox's messages in UID order (`selected.rs`).
//! Reading them from the store costs time in proportion to the mailbox (7 ms for 16,000
//! messages, most of it in the store), on every SELECT. So the process keeps the last listing
//! of each large mailbox, labelled with the HIGHESTMODSEQ and UIDNEXT it was read at; a
//! SELECT takes it as it is when the mailbox has not changed since (every append, flag
//! change and expunge moves one of them), or reads only the changes since (the store's
//! `mailbox_changes`: the changed rows and the tombstones of the expunged ones) and merges
//! them. The session shares the list (an `Arc`) until it changes something of its own.
//!
//! The label is the mailbox row as read *before* the list or the changes, so a listing holds
//! at least everything up to its label; a change committed meanwhile may be in it already,
//! and reading the changes since the label again brings it in whole (merging is idempotent).
//! Mailbox ids are never reused and the UIDVALIDITY is part of the key, so a listing can never
//! be taken for another mailbox, of this account or another.
//!
//! Bounded: only mailboxes of at least [`MIN_MESSAGES`] are kept (a small one is read as fast
//! as a listing is found), [`MAX_MESSAGES`] messages over all listings at most, the least
//! recently used listing leaving first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mailroom_store::{MailboxId, MailboxInfo};

use super::error::ImapError;
use super::selected::{merged, Listed, Msg};
use super::Session;

/// Smaller mailboxes are not kept.
const MIN_MESSAGES: usize = 1_000;
/// At most this many messages over every listing (about 80 octets each, plus keywords).
const MAX_MESSAGES: usize = 2_000_000;

/// The process's listings, by mailbox.
pub(super) struct Listings {
    inner: Mutex<Inner>,
    max: usize,
    /// How SELECTs found their messages: a current listing, a listing and the changes since,
    /// the whole list from the store.
    hits: AtomicU64,
    merges: AtomicU64,
    reads: AtomicU64,
}

impl Default for Listings {
    fn default() -> Self {
        Listings::with_max(MAX_MESSAGES)
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<MailboxId, Listing>,
    messages: usize,
    tick: u64,
}

/// One mailbox's messages at a point in time.
#[derive(Clone)]
pub(super) struct Listing {
    pub(super) uidvalidity: u32,
    pub(super) modseq: u64,
    pub(super) uidnext: u32,
    pub(super) listed: Listed,
    used: u64,
}

impl Listing {
    /// True when it is the mailbox as `info` describes it.
    pub(super) fn current(&self, info: &MailboxInfo) -> bool {
        self.modseq == info.highest_modseq && self.uidnext == info.uidnext
    }
}

impl Session {
    /// The messages of the mailbox `info` describes (read just before), for SELECT: the
    /// process's listing when it is current, else that listing with the changes since merged
    /// in, else the whole list from the store; kept for the next SELECT.
    pub(super) async fn listing(&self, info: &MailboxInfo) -> Result<Listed, ImapError> {
        let listings = &self.shared.imap.listings;
        let id = info.id;
        let kept = listings.get(info);
        if let Some(l) = &kept {
            if l.current(info) {
                listings.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(l.listed.clone());
            }
        }
        let mut msgs = None;
        if let Some(l) = kept {
            let since = l.modseq;
            let changes = self.store(move |s| s.mailbox_changes(id, since)).await?;
            msgs = merged(&l.listed.msgs, changes)
                .map(|list| list.iter().map(Msg::from_meta).collect());
        }
        let msgs = match msgs {
            Some(m) => {
                listings.merges.fetch_add(1, Ordering::Relaxed);
                Arc::new(m)
            }
            None => {
                listings.reads.fetch_add(1, Ordering::Relaxed);
                let list = self.store(move |s| s.list_messages(id)).await?;
                Arc::new(list.iter().map(Msg::from_meta).collect())
            }
        };
        let listed = Listed::of(msgs);
        listings.put(info, &listed);
        Ok(listed)
    }
}

impl Listings {
    fn with_max(max: usize) -> Self {
        Listings {
            inner: Mutex::default(),
            max,
            hits: AtomicU64::new(0),
            merges: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }

    /// The listing kept for a mailbox with this UIDVALIDITY, however old.
    pub(super) fn get(&self, info: &MailboxInfo) -> Option<Listing> {
        let mut inner = self.inner.lock().ok()?;
        inner.tick += 1;
        let tick = inner.tick;
        let l = inner.map.get_mut(&info.id)?;
        if l.uidvalidity != info.uidvalidity {
            return None;
        }
        l.used = tick;
        Some(l.clone())
    }

    /// Keeps `msgs` as the mailbox's listing at `info` (read before the messages were), unless
    /// the mailbox is small or a newer listing is kept already.
    pub(super) fn put(&self, info: &MailboxInfo, listed: &Listed) {
        let msgs = &listed.msgs;
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let newer_kept = inner.map.get(&info.id).is_some_and(|l| {
            l.uidvalidity == info.uidvalidity
                && (l.modseq, l.uidnext) >= (info.highest_modseq, info.uidnext)
        });
        if newer_kept {
            return;
        }
        if let Some(old) = inner.map.remove(&info.id) {
            inner.messages -= old.listed.msgs.len();
        }
        if msgs.len() < MIN_MESSAGES || msgs.len() > self.max {
            return;
        }
        while inner.messages + msgs.len() > self.max {
            let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, l)| l.used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(l) = inner.map.remove(&oldest) {
                inner.messages -= l.listed.msgs.len();
            }
        }
        inner.tick += 1;
        let used = inner.tick;
        inner.messages += msgs.len();
        inner.map.insert(
            info.id,
            Listing {
                uidvalidity: info.uidvalidity,
                modseq: info.highest_modseq,
                uidnext: info.uidnext,
                listed: listed.clone(),
                used,
            },
        );
    }

    /// Messages kept over all listings (for tests).
    #[cfg(test)]
    pub(super) fn messages(&self) -> usize {
        self.inner.lock().map(|i| i.messages).unwrap_or(0)
    }

    /// How SELECTs found their messages so far: (current listings taken, listings brought up
    /// to date with the changes, whole lists read).
    #[cfg(test)]
    pub(super) fn counts(&self) -> (u64, u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.merges.load(Ordering::Relaxed),
            self.reads.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Client, Harness};
    use mailroom_store::{AccountId, Flags, MessageId, NewMessage};

    fn info(id: i64, uidvalidity: u32, modseq: u64) -> MailboxInfo {
        MailboxInfo {
            id: MailboxId {
                account: AccountId(1),
                id,
            },
            account: AccountId(1),
            name: "INBOX".into(),
            uidvalidity,
            uidnext: 5000,
            highest_modseq: modseq,
            special_use: None,
            subscribed: true,
            recent_uid: 0,
        }
    }

    fn msgs(n: usize) -> Listed {
        Listed::of(Arc::new(
            (1..=n as u32)
                .map(|uid| Msg {
                    uid,
                    message: MessageId(uid as i64),
                    size: 1,
                    flags: Flags(0),
                    keywords: vec![],
                    internal_date: 0,
                    modseq: 1,
                    gone: false,
                    recent: false,
                })
                .collect(),
        ))
    }

    /// One command's lines, up to and including the tagged reply.
    async fn run(c: &mut Client, tag: &str, command: &str) -> Vec<String> {
        c.send(format!("{tag} {command}\r\n")).await;
        let mut out = Vec::new();
        loop {
            let line = c.line().await;
            let done = line.starts_with(&format!("{tag} "));
            out.push(line);
            if done {
                return out;
            }
        }
    }

    async fn logged_in(h: &Harness) -> Client {
        let mut c = h.start(crate::imap::run_session);
        c.line().await;
        let r = run(&mut c, "l", "LOGIN alice alice-secret").await;
        assert!(r.last().is_some_and(|l| l.starts_with("l OK")), "{r:?}");
        c
    }

    /// `(UID, RFC822.SIZE, flags)` of every message, from a session's FETCH 1:*.
    async fn fetch_all(c: &mut Client) -> Vec<(u32, u64, String)> {
        let lines = run(c, "f", "FETCH 1:* (UID RFC822.SIZE FLAGS)").await;
        assert!(
            lines.last().is_some_and(|l| l.starts_with("f OK")),
            "{lines:?}"
        );
        let item = |l: &str, key: &str| {
            let rest = &l[l.find(key).expect("item") + key.len()..];
            rest.split([' ', ')'])
                .next()
                .unwrap_or_default()
                .to_string()
        };
        lines[..lines.len() - 1]
            .iter()
            .map(|l| {
                let flags = &l[l.find("FLAGS (").expect("FLAGS") + 7..];
                // \Recent is this session's, not the store's.
                let flags = flags[..flags.find(')').expect("list")]
                    .split(' ')
                    .filter(|f| *f != "\\Recent")
                    .collect::<Vec<_>>()
                    .join(" ");
                (
                    item(l, "UID ").parse().expect("uid"),
                    item(l, "RFC822.SIZE ").parse().expect("size"),
                    flags,
                )
            })
            .collect()
    }

    /// The same from the store, formatted as the server shows the flags.
    fn truth(h: &Harness, mailbox: MailboxId) -> Vec<(u32, u64, String)> {
        h.shared
            .store
            .list_messages(mailbox)
            .expect("list")
            .iter()
            .map(|m| {
                let flags = match crate::imap::selected::flag_list(m.flags, &m.keywords, false) {
                    mailroom_proto::imap::response::Value::List(v) => v
                        .iter()
                        .map(|f| match f {
                            mailroom_proto::imap::response::Value::Atom(a) => a.clone(),
                            other => panic!("{other:?}"),
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                    other => panic!("{other:?}"),
                };
                (m.uid, m.size, flags)
            })
            .collect()
    }

    /// Fails with the first difference (the lists are a thousand entries long).
    #[track_caller]
    fn same(seen: &[(u32, u64, String)], truth: &[(u32, u64, String)]) {
        let first = seen.iter().zip(truth).position(|(a, b)| a != b);
        assert!(
            first.is_none() && seen.len() == truth.len(),
            "{} seen, {} in the store; first difference at {first:?}: {:?} / {:?}",
            seen.len(),
            truth.len(),
            first.map(|i| &seen[i]),
            first.map(|i| &truth[i]),
        );
    }

    fn fill(h: &Harness, mailbox: MailboxId, n: usize, tag: &str) {
        let messages: Vec<NewMessage> = (0..n)
            .map(|i| NewMessage {
                data: format!("Subject: {tag} {i}\r\n\r\n{}\r\n", "x".repeat(i % 50)).into_bytes(),
                flags: Flags(0),
                keywords: vec![],
                internal_date: 0,
            })
            .collect();
        h.shared
            .store
            .append_messages(mailbox, &messages)
            .expect("append");
    }

    /// SELECT of a large mailbox takes the process's listing, or the listing and the changes
    /// since: a session that selects after another one flagged, expunged and received mail
    /// sees exactly what the store holds, and one that selects a mailbox deleted and made
    /// again under the same name never sees the old one's messages.
    #[tokio::test]
    async fn select_from_a_shared_listing_sees_the_truth() {
        let h = Harness::new(|_| {});
        let store = &h.shared.store;
        let alice = store
            .find_account("alice@example.test")
            .unwrap()
            .unwrap()
            .id;
        let inbox = store.mailbox(alice, "INBOX").unwrap().unwrap().id;
        fill(&h, inbox, 1_100, "first");
        let listings = &h.shared.imap.listings;

        let mut a = logged_in(&h).await;
        let r = run(&mut a, "s", "SELECT INBOX").await;
        assert!(r.contains(&"* 1100 EXISTS".to_string()), "{r:?}");
        assert_eq!(listings.counts(), (0, 0, 1));
        same(&fetch_all(&mut a).await, &truth(&h, inbox));

        // Another session changes flags, sets a new keyword, expunges; mail arrives.
        let mut b = logged_in(&h).await;
        run(&mut b, "s", "SELECT INBOX").await;
        assert_eq!(
            listings.counts(),
            (1, 0, 1),
            "the second SELECT takes the listing"
        );
        run(&mut b, "t1", "STORE 1:5 +FLAGS (\\Seen $Hot)").await;
        run(&mut b, "t2", "STORE 10:12 +FLAGS (\\Deleted)").await;
        let r = run(&mut b, "t3", "EXPUNGE").await;
        assert_eq!(
            r.iter().filter(|l| l.ends_with("EXPUNGE")).count(),
            3,
            "{r:?}"
        );
        fill(&h, inbox, 2, "later");

        let mut c = logged_in(&h).await;
        let r = run(&mut c, "s", "SELECT INBOX").await;
        assert_eq!(
            listings.counts(),
            (1, 1, 1),
            "the changes merged into the listing"
        );
        assert!(r.contains(&"* 1099 EXISTS".to_string()), "{r:?}");
        assert!(r[0].contains("$Hot"), "the new keyword announced: {r:?}");
        let seen = fetch_all(&mut c).await;
        same(&seen, &truth(&h, inbox));
        assert!(seen[0].2.contains("$Hot") && !seen.iter().any(|m| m.0 == 10));
        // The first session, still selected, is brought up to date by its own sync.
        run(&mut a, "n", "NOOP").await;
        same(&fetch_all(&mut a).await, &truth(&h, inbox));

        // A mailbox deleted and made again: never the old listing.
        let big = store.create_mailbox(alice, "Big").unwrap();
        fill(&h, big, 1_000, "old");
        run(&mut a, "s2", "SELECT Big").await;
        run(&mut b, "u", "UNSELECT").await;
        assert!(run(&mut b, "d", "DELETE Big")
            .await
            .last()
            .unwrap()
            .starts_with("d OK"));
        assert!(run(&mut b, "c", "CREATE Big")
            .await
            .last()
            .unwrap()
            .starts_with("c OK"));
        let again = store.mailbox(alice, "Big").unwrap().unwrap().id;
        let messages: Vec<NewMessage> = (0..1_000)
            .map(|i| NewMessage {
                data: format!("Subject: new {i}\r\n\r\n{}\r\n", "y".repeat(100 + i % 7))
                    .into_bytes(),
                flags: Flags::FLAGGED,
                keywords: vec![],
                internal_date: 0,
            })
            .collect();
        store.append_messages(again, &messages).expect("append");
        run(&mut c, "s2", "SELECT Big").await;
        same(&fetch_all(&mut c).await, &truth(&h, again));
        assert!(truth(&h, again).iter().all(|m| m.1 > 100));
    }

    #[test]
    fn kept_by_mailbox_and_uidvalidity_only_when_large() {
        let l = Listings::default();
        l.put(&info(1, 7, 10), &msgs(10));
        assert!(
            l.get(&info(1, 7, 10)).is_none(),
            "a small mailbox is not kept"
        );
        l.put(&info(1, 7, 10), &msgs(MIN_MESSAGES));
        let got = l.get(&info(1, 7, 10)).expect("kept");
        assert!(got.current(&info(1, 7, 10)));
        assert!(
            !got.current(&info(1, 7, 11)),
            "an older label is not current"
        );
        assert!(l.get(&info(1, 8, 10)).is_none(), "another UIDVALIDITY");
        assert!(l.get(&info(2, 7, 10)).is_none(), "another mailbox");
        // An older listing does not replace a newer one; a newer one does.
        l.put(&info(1, 7, 9), &msgs(MIN_MESSAGES + 1));
        assert_eq!(
            l.get(&info(1, 7, 10)).map(|g| g.listed.msgs.len()),
            Some(MIN_MESSAGES)
        );
        l.put(&info(1, 7, 12), &msgs(MIN_MESSAGES + 2));
        assert_eq!(l.get(&info(1, 7, 12)).map(|g| g.modseq), Some(12));
        assert_eq!(l.messages(), MIN_MESSAGES + 2);
        // A mailbox recreated (new UIDVALIDITY) replaces the old listing.
        l.put(&info(1, 9, 1), &msgs(MIN_MESSAGES));
        assert!(l.get(&info(1, 7, 12)).is_none());
        assert_eq!(l.messages(), MIN_MESSAGES);
    }

    #[test]
    fn bounded_least_recently_used_first() {
        let big = MIN_MESSAGES;
        let l = Listings::with_max(2 * big);
        l.put(&info(1, 1, 1), &msgs(big));
        l.put(&info(2, 1, 1), &msgs(big));
        assert!(l.get(&info(1, 1, 1)).is_some()); // 1 used after 2
        l.put(&info(3, 1, 1), &msgs(big));
        assert!(l.messages() <= 2 * big);
        assert!(
            l.get(&info(2, 1, 1)).is_none(),
            "the least recently used left"
        );
        assert!(l.get(&info(1, 1, 1)).is_some());
        assert!(l.get(&info(3, 1, 1)).is_some());
    }
}
