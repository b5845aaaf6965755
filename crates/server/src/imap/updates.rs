//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): searches and sorts kept up to date.
//!
//! `SEARCH RETURN (UPDATE ...)` and `SORT RETURN (UPDATE ...)` (and their UID forms) keep
//! their result in the selected mailbox's [`Selected::updates`] under the command's tag. As the
//! mailbox changes, the session sends unsolicited `* ESEARCH (TAG "t") [UID] REMOVEFROM (...)
//! ADDTO (...)` (built by proto's [`context_update`]) until `CANCELUPDATE "t"` or until the
//! mailbox is no longer selected (§4.3: a new SELECT, EXAMINE, CLOSE or UNSELECT starts from
//! nothing, as `Selected` does).
//!
//! Where the updates come from:
//! - **Expunges** (this session's EXPUNGE or MOVE, or another's found by the sync):
//!   [`Selected::context_removals`] is called while the expunged messages still have their
//!   sequence numbers, and its REMOVEFROM goes out before the EXPUNGE (or VANISHED)
//!   responses, so its numbers name what the client still holds.
//! - **Everything else** (new messages, flag changes by any session): after every command's
//!   sync and at every IDLE poll, [`Session::update_contexts`] matches the key again against
//!   the messages whose MODSEQ rose or that arrived since the context was last brought up to
//!   date, and reports the messages that started or stopped matching. A SORT context sorts
//!   its matches again to learn the positions of what was added (§4.3.3): sort keys never
//!   change, so what stays keeps its order.
//!
//! A SEARCH context's position is 0 (its result has no order, §4.3.2). Message numbers in the
//! search key are taken as they are when the key is matched again.

use std::collections::HashSet;

use mailroom_proto::imap::response::{Response, Status};
use mailroom_proto::imap::sort::{context_update, sort, ContextRun};
use mailroom_proto::imap::{SearchKey, SearchReturn, SortCriterion, SortKey};

use super::error::ImapError;
use super::search::{run_search_where, SearchJob};
use super::selected::{Msg, Selected};
use super::sort::sort_messages;
use super::{ok, Done, Session};

/// The most updating searches one session keeps. Each one is matched again after every
/// command that changed the mailbox and holds its whole result, so a client must not be able
/// to multiply that work without bound; Dovecot keeps 10 too. Past it the search is answered
/// once, with `* NO [NOUPDATE "tag"]` (RFC 5267 §4.3.1).
pub const MAX_UPDATES: usize = 10;

/// One updating search or sort.
#[derive(Debug, Clone)]
pub struct Update {
    /// The tag of the command that made it: its correlator (RFC 5267 §4.3).
    pub tag: String,
    /// A UID command: updates name UIDs, else sequence numbers.
    pub uid: bool,
    pub key: SearchKey,
    /// SORT's criteria; `None` for SEARCH.
    pub sort: Option<Vec<SortCriterion>>,
    /// The result as UIDs: ascending for SEARCH, in sort order for SORT.
    pub result: Vec<u32>,
    /// The highest MODSEQ and UID among the messages the result was last matched against.
    pub modseq: u64,
    pub last_uid: u32,
}

impl Update {
    /// A new context over `msgs` (the snapshot the command matched) with its result (UIDs).
    pub fn new(
        tag: &str,
        uid: bool,
        key: SearchKey,
        sort: Option<Vec<SortCriterion>>,
        result: Vec<u32>,
        msgs: &[Msg],
    ) -> Update {
        Update {
            tag: tag.to_string(),
            uid,
            key,
            sort,
            result,
            modseq: msgs.iter().map(|m| m.modseq).max().unwrap_or(0),
            last_uid: msgs.last().map_or(0, |m| m.uid),
        }
    }
}

/// RFC 5267 §4.3 checks before an updating command runs: UPDATE with SAVE is refused (the
/// saved result `$` is a snapshot and would not follow the updates; send two commands), and a
/// tag may name one context only. `Ok(false)` when the context cannot be kept (the limit):
/// the command then answers once, after `* NO [NOUPDATE]`.
pub fn check_update(sel: &Selected, tag: &str, ret: &SearchReturn) -> Result<bool, ImapError> {
    if !ret.update {
        return Ok(false);
    }
    if ret.save {
        return Err(ImapError::bad(
            "UPDATE cannot be combined with SAVE: $ is a snapshot; save with one command and ask for updates with another",
        ));
    }
    if sel.updates.iter().any(|u| u.tag == tag) {
        return Err(ImapError::bad(format!(
            "an updating search with tag {tag} exists already; give each command its own tag"
        )));
    }
    Ok(sel.updates.len() < MAX_UPDATES)
}

/// `* NO [NOUPDATE "tag"]` (RFC 5267 §4.3.1): the result is sent, but not kept up to date.
pub fn noupdate(tag: &str) -> Response {
    Response::untagged(
        Status::No,
        Some(&format!("NOUPDATE \"{tag}\"")),
        format!(
            "this session already has {MAX_UPDATES} updating searches; CANCELUPDATE one to get updates for a new one"
        ),
    )
}

/// A message's number for a context: its UID, or its sequence number in `msgs`.
fn number(msgs: &[Msg], uid: bool, u: u32) -> Option<u32> {
    if uid {
        return Some(u);
    }
    msgs.binary_search_by_key(&u, |m| m.uid)
        .ok()
        .map(|i| i as u32 + 1)
}

/// Takes the messages for which `gone` holds out of `result` and returns the REMOVEFROM runs:
/// for a SEARCH context one run at position 0; for a SORT context the positions as the client
/// applies them one after another (a removal at the position where the previous one was,
/// continues its run).
fn take_out(
    result: &mut Vec<u32>,
    sorted: bool,
    gone: impl Fn(u32) -> bool,
    num: impl Fn(u32) -> Option<u32>,
) -> Vec<ContextRun> {
    let mut runs: Vec<ContextRun> = Vec::new();
    let mut kept = Vec::with_capacity(result.len());
    for &u in result.iter() {
        if !gone(u) {
            kept.push(u);
            continue;
        }
        let Some(n) = num(u) else { continue };
        let position = if sorted { kept.len() as u32 + 1 } else { 0 };
        match runs.last_mut() {
            Some(r) if r.position == position => r.messages.push(n),
            _ => runs.push(ContextRun {
                position,
                messages: vec![n],
            }),
        }
    }
    *result = kept;
    runs
}

impl Selected {
    /// The REMOVEFROM responses for messages about to be expunged (`uids`), while they still
    /// have their sequence numbers; takes them out of every context.
    pub fn context_removals(&mut self, uids: &[u32]) -> Vec<Response> {
        if self.updates.is_empty() || uids.is_empty() {
            return Vec::new();
        }
        let gone: HashSet<u32> = uids.iter().copied().collect();
        let msgs = &self.msgs;
        let mut out = Vec::new();
        for u in &mut self.updates {
            let uid = u.uid;
            let runs = take_out(
                &mut u.result,
                u.sort.is_some(),
                |x| gone.contains(&x),
                |x| number(msgs, uid, x),
            );
            out.extend(context_update(&u.tag, uid, &runs, &[]));
        }
        out
    }
}

/// What matching a context again found: its new result and the runs to report.
struct Change {
    result: Vec<u32>,
    removed: Vec<ContextRun>,
    added: Vec<ContextRun>,
}

/// Matches `u` again against `msgs` on a blocking thread (only the messages changed since it
/// was last matched, for a SEARCH; the whole sort for a SORT).
fn rematch(
    store: &dyn mailroom_store::MailStore,
    cache: &super::cache::ImapShared,
    mailbox: mailroom_store::MailboxId,
    u: &Update,
    msgs: &std::sync::Arc<Vec<Msg>>,
) -> Result<Change, mailroom_store::StoreError> {
    let job = SearchJob {
        mailbox,
        key: u.key.clone(),
        msgs: msgs.clone(),
    };
    let changed = |m: &Msg| m.modseq > u.modseq || m.uid > u.last_uid;
    let num = |x: u32| number(msgs, u.uid, x);
    let mut result = u.result.clone();
    if let Some(criteria) = &u.sort {
        let needs_fields = criteria
            .iter()
            .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
        let matched = sort_messages(store, cache, &job, needs_fields)?;
        let now: Vec<u32> = sort(&matched, criteria, true);
        let now_set: HashSet<u32> = now.iter().copied().collect();
        // What stopped matching, at its positions as the client removes them one by one.
        let removed = take_out(&mut result, true, |x| !now_set.contains(&x), num);
        // What started matching, in sort order: each at its position in the new order, with
        // everything before it already in place (sort keys never change, so what stays keeps
        // its order).
        let had: HashSet<u32> = result.iter().copied().collect();
        let mut added: Vec<ContextRun> = Vec::new();
        let mut last: Option<usize> = None;
        for (i, &x) in now.iter().enumerate() {
            if had.contains(&x) {
                continue;
            }
            let Some(n) = num(x) else { continue };
            match added.last_mut() {
                Some(r) if last.is_some_and(|l| l + 1 == i) => r.messages.push(n),
                _ => added.push(ContextRun {
                    position: i as u32 + 1,
                    messages: vec![n],
                }),
            }
            last = Some(i);
        }
        return Ok(Change {
            result: now,
            removed,
            added,
        });
    }
    let hits = run_search_where(store, cache, &job, &|m: &Msg| changed(m))?;
    let matched: HashSet<u32> = hits.iter().map(|&s| msgs[s - 1].uid).collect();
    let candidates: HashSet<u32> = msgs
        .iter()
        .filter(|m| !m.gone && changed(m))
        .map(|m| m.uid)
        .collect();
    let removed = take_out(
        &mut result,
        false,
        |x| candidates.contains(&x) && !matched.contains(&x),
        num,
    );
    let had: HashSet<u32> = result.iter().copied().collect();
    let mut new: Vec<u32> = matched.into_iter().filter(|x| !had.contains(x)).collect();
    new.sort_unstable();
    let added = vec![ContextRun {
        position: 0,
        messages: new.iter().filter_map(|&x| num(x)).collect(),
    }];
    result.extend(new);
    result.sort_unstable();
    Ok(Change {
        result,
        removed,
        added,
    })
}

impl Session {
    /// Brings every updating search of the selected mailbox up to date and sends what changed
    /// (after the sync's EXISTS and FETCH responses). Nothing is read when no message changed.
    pub(super) async fn update_contexts(&mut self) -> Result<(), ImapError> {
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        if sel.updates.is_empty() {
            return Ok(());
        }
        let msgs = sel.msgs.clone();
        let mailbox = sel.id;
        let top_modseq = msgs.iter().map(|m| m.modseq).max().unwrap_or(0);
        let top_uid = msgs.last().map_or(0, |m| m.uid);
        // A SORT context waits while an expunge is pending (during FETCH, STORE, SEARCH):
        // its positions count the message the client still holds, and the REMOVEFROM sent
        // with the EXPUNGE takes it out first.
        let pending = msgs.iter().any(|m| m.gone);
        let stale: Vec<Update> = sel
            .updates
            .iter()
            .filter(|u| !(pending && u.sort.is_some()))
            .filter(|u| {
                msgs.iter()
                    .any(|m| !m.gone && (m.modseq > u.modseq || m.uid > u.last_uid))
            })
            .cloned()
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let shared = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            stale
                .into_iter()
                .map(|u| {
                    rematch(shared.store.as_ref(), &shared.imap, mailbox, &u, &msgs)
                        .map(|c| (u.tag, c))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
        let changes = match res {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(ImapError::store(e)),
            Err(_) => {
                return Err(ImapError::no(
                    "SERVERBUG",
                    "internal error while updating a search",
                ))
            }
        };
        let mut out = Vec::new();
        if let Some(sel) = self.selected() {
            for (tag, change) in changes {
                // Cancelled meanwhile (not possible within one command, but cheap to check).
                let Some(u) = sel.updates.iter_mut().find(|u| u.tag == tag) else {
                    continue;
                };
                u.result = change.result;
                u.modseq = top_modseq;
                u.last_uid = top_uid;
                out.extend(context_update(&tag, u.uid, &change.removed, &change.added));
            }
        }
        for r in &out {
            self.respond(r);
        }
        Ok(())
    }

    /// `CANCELUPDATE "tag" ...` (RFC 5267 §4.3.5): those contexts send no more updates.
    /// A tag that names no updating search is a NO, and then nothing is cancelled.
    pub(super) fn cancel_update(&mut self, tags: &[String]) -> Result<Done, ImapError> {
        let sel = self.must_selected()?;
        if let Some(t) = tags
            .iter()
            .find(|t| !sel.updates.iter().any(|u| &u.tag == *t))
        {
            return Err(ImapError::no_code(format!(
                "no updating search has the tag {t}; nothing was cancelled"
            )));
        }
        sel.updates.retain(|u| !tags.contains(&u.tag));
        ok("CANCELUPDATE completed; those searches are no longer updated")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_in_sort_order_are_applied_one_after_another() {
        // Result in sort order: 5 9 3 7 2. Removing 9 and 3 (adjacent): one run at 2.
        let mut r = vec![5, 9, 3, 7, 2];
        let runs = take_out(&mut r, true, |x| x == 9 || x == 3, Some);
        assert_eq!(
            runs,
            vec![ContextRun {
                position: 2,
                messages: vec![9, 3]
            }]
        );
        assert_eq!(r, vec![5, 7, 2]);
        // Not adjacent: two runs; the second's position counts the first as done.
        let mut r = vec![5, 9, 3, 7, 2];
        let runs = take_out(&mut r, true, |x| x == 5 || x == 7, Some);
        assert_eq!(
            runs,
            vec![
                ContextRun {
                    position: 1,
                    messages: vec![5]
                },
                ContextRun {
                    position: 3,
                    messages: vec![7]
                }
            ]
        );
        // SEARCH: one run at 0.
        let mut r = vec![1, 2, 3];
        let runs = take_out(&mut r, false, |x| x != 2, |x| Some(x * 10));
        assert_eq!(
            runs,
            vec![ContextRun {
                position: 0,
                messages: vec![10, 30]
            }]
        );
    }
}
