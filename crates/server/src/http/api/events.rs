//! `GET /api/events`: Server-Sent Events (the WHATWG HTML "server-sent events" format) of
//! what changes in the user's mailboxes: a new message, changed flags, an expunge.
//!
//! It finds them as IMAP IDLE does (`imap/idle.rs`): it polls every half second, and only a
//! mailbox whose HIGHESTMODSEQ moved (every append, flag change and expunge moves it, RFC 7162)
//! is read, with the store's `mailbox_changes` (the rows changed since the last seen modseq and
//! the UIDs expunged since, from the tombstones). A mailbox recreated under the same name (a new UIDVALIDITY) starts
//! over. The stream ends when the client goes, the account is removed, or the server shuts down.
//!
//! Events (`data` is JSON): `message` `{"mailbox", "id", "uid"}`, `flags` `{"mailbox", "id",
//! "flags"}`, `expunge` `{"mailbox", "id"}`; a comment line every 15 s keeps proxies from
//! closing an idle stream.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use mailroom_store::{AccountId, MailStore, MailboxId, StoreError};

use crate::http::auth::User;
use crate::http::Ctx;

/// How often the mailboxes are looked at (as IDLE does).
const POLL: Duration = Duration::from_millis(500);

struct Known {
    uidvalidity: u32,
    modseq: u64,
    uids: HashSet<u32>,
}

struct Watch {
    ctx: Ctx,
    account: AccountId,
    known: HashMap<i64, Known>,
    queued: Vec<Event>,
    started: bool,
}

fn event(kind: &str, data: serde_json::Value) -> Event {
    Event::default().event(kind).data(data.to_string())
}

/// One look at every mailbox of the account (blocking): the events since the last look.
fn look(
    store: &dyn MailStore,
    account: AccountId,
    known: &mut HashMap<i64, Known>,
    report: bool,
) -> Result<Option<Vec<Event>>, StoreError> {
    if store.account_by_id(account)?.is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    let boxes = store.list_mailboxes(account)?;
    let live: HashSet<i64> = boxes.iter().map(|b| b.id.id).collect();
    known.retain(|id, _| live.contains(id));
    for mb in boxes {
        let fresh = !matches!(known.get(&mb.id.id), Some(k) if k.uidvalidity == mb.uidvalidity);
        if fresh {
            let uids = uids_of(store, mb.id)?;
            known.insert(
                mb.id.id,
                Known {
                    uidvalidity: mb.uidvalidity,
                    modseq: mb.highest_modseq,
                    uids,
                },
            );
            continue;
        }
        let Some(k) = known.get_mut(&mb.id.id) else {
            continue;
        };
        if k.modseq == mb.highest_modseq {
            continue;
        }
        let changes = store.mailbox_changes(mb.id, k.modseq)?;
        let changed = changes.changed;
        let now: HashSet<u32> = if changes.vanished.complete {
            let vanished: HashSet<u32> = changes.vanished.uids.into_iter().collect();
            k.uids
                .iter()
                .copied()
                .chain(changed.iter().map(|m| m.uid))
                .filter(|u| !vanished.contains(u))
                .collect()
        } else {
            // The tombstones of that time were pruned: read which messages are there.
            uids_of(store, mb.id)?
        };
        let id = |uid: u32| format!("{}.{}", mb.uidvalidity, uid);
        if report {
            let mut gone: Vec<u32> = k.uids.difference(&now).copied().collect();
            gone.sort_unstable();
            for uid in gone {
                out.push(event(
                    "expunge",
                    serde_json::json!({"mailbox": mb.name, "id": id(uid)}),
                ));
            }
            for m in &changed {
                if !now.contains(&m.uid) {
                    continue;
                }
                if k.uids.contains(&m.uid) {
                    out.push(event(
                        "flags",
                        serde_json::json!({"mailbox": mb.name, "id": id(m.uid), "flags": super::messages::flags_json(m)}),
                    ));
                } else {
                    out.push(event(
                        "message",
                        serde_json::json!({"mailbox": mb.name, "id": id(m.uid), "uid": m.uid}),
                    ));
                }
            }
        }
        k.uids = now;
        k.modseq = mb.highest_modseq;
    }
    Ok(Some(out))
}

/// The UIDs a mailbox holds now.
fn uids_of(store: &dyn MailStore, mailbox: MailboxId) -> Result<HashSet<u32>, StoreError> {
    Ok(store
        .list_messages(mailbox)?
        .into_iter()
        .map(|m| m.uid)
        .collect())
}

/// `GET /api/events`.
pub async fn events(
    State(ctx): State<Ctx>,
    user: User,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let w = Watch {
        account: user.account.id,
        ctx,
        known: HashMap::new(),
        queued: Vec::new(),
        started: false,
    };
    let s = stream::unfold(w, |mut w| async move {
        loop {
            if let Some(e) = w.queued.pop() {
                return Some((Ok(e), w));
            }
            if w.started {
                let mut shutdown = w.ctx.shutdown.clone();
                if *shutdown.borrow() {
                    return None;
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => return None,
                }
            }
            let report = w.started;
            w.started = true;
            let store = w.ctx.shared.store.clone();
            let account = w.account;
            let mut known = std::mem::take(&mut w.known);
            let r = tokio::task::spawn_blocking(move || {
                let r = look(store.as_ref(), account, &mut known, report);
                (r, known)
            })
            .await;
            match r {
                Ok((Ok(Some(mut evs)), known)) => {
                    w.known = known;
                    evs.reverse();
                    w.queued = evs;
                    if !report {
                        // The first look only learns the mailboxes: say the stream is live.
                        return Some((Ok(Event::default().event("ready").data("{}")), w));
                    }
                }
                // The account is gone, or the store failed: the stream ends (the client
                // reconnects, and a removed account then gets 401).
                _ => return None,
            }
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
