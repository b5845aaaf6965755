//! QRESYNC (RFC 7162 §3.2): quick mailbox resynchronisation. After `ENABLE QRESYNC`
//! (`auth.rs`; it implies CONDSTORE), a client that reopens a mailbox with
//! `SELECT mbox (QRESYNC (uidvalidity modseq [known-uids]))` is told, right after the usual
//! SELECT responses, which of its UIDs vanished (`* VANISHED (EARLIER) uids`) and the flags
//! of the messages changed since its modseq (`* n FETCH (UID FLAGS MODSEQ)`), instead of
//! fetching the whole mailbox again; `UID FETCH set (...) (CHANGEDSINCE n VANISHED)` does the
//! same inside a selected mailbox. Expunges are then announced as `* VANISHED uids`
//! (`selected.rs`).
//!
//! What vanished comes from the store's tombstones (`MailStore::vanished_since`). When the
//! tombstones the client would need were pruned, every UID below UIDNEXT that is not in the
//! mailbox is reported (§3.2.5.1 and §3.2.10 allow UIDs the client never had): the answer
//! is longer, never wrong.

use mailroom_proto::imap::response::{Response, Value};
use mailroom_proto::imap::{Qresync, SeqSet};

use super::error::ImapError;
use super::Session;

/// `* VANISHED [(EARLIER)] uids` (RFC 7162 §3.2.10, §7) for ascending UIDs.
pub fn vanished(uids: &[u32], earlier: bool) -> Response {
    vanished_ranges(&to_ranges(uids), earlier)
}

fn vanished_ranges(ranges: &[(u32, u32)], earlier: bool) -> Response {
    let mut rest = Vec::new();
    if earlier {
        rest.push(Value::List(vec![Value::Atom("EARLIER".into())]));
    }
    let set: Vec<String> = ranges
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}:{hi}")
            }
        })
        .collect();
    rest.push(Value::Atom(set.join(",")));
    Response::data("VANISHED", rest)
}

/// Ascending numbers as inclusive ranges.
fn to_ranges(nums: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &n in nums {
        match out.last_mut() {
            Some(last) if last.1.checked_add(1) == Some(n) => last.1 = n,
            _ => out.push((n, n)),
        }
    }
    out
}

/// The UIDs from 1 to `top` that are not in `present` (ascending), as ranges.
fn gaps(present: &[u32], top: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next = 1u32;
    for &p in present {
        if p > top {
            break;
        }
        if p > next {
            out.push((next, p - 1));
        }
        next = p.saturating_add(1);
    }
    if next <= top && top > 0 {
        out.push((next, top));
    }
    out
}

/// The intersection of two sorted, merged range lists.
fn intersect(a: &[(u32, u32)], b: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

impl Session {
    /// RFC 7162 §3.2.5: a QRESYNC parameter without ENABLE QRESYNC is a BAD.
    pub(super) fn check_qresync_param(&self, given: bool) -> Result<(), ImapError> {
        if given && !self.qresync {
            return Err(ImapError::bad(
                "the QRESYNC parameter needs ENABLE QRESYNC first (RFC 7162 section 3.2.5)",
            ));
        }
        Ok(())
    }

    /// What vanished from the selected mailbox since `modseq`, among the UIDs in `within`
    /// (normalized ranges), as ranges; empty when nothing did.
    async fn vanished_within(
        &mut self,
        modseq: u64,
        within: Option<&[(u32, u32)]>,
    ) -> Result<Vec<(u32, u32)>, ImapError> {
        let Some(sel) = self.selected() else {
            return Ok(Vec::new());
        };
        let id = sel.id;
        let present: Vec<u32> = sel.msgs.iter().filter(|m| !m.gone).map(|m| m.uid).collect();
        let top = sel.seen_uidnext.saturating_sub(1);
        let v = self.store(move |s| s.vanished_since(id, modseq)).await?;
        let ranges = if v.complete {
            let uids: Vec<u32> = v
                .uids
                .into_iter()
                .filter(|u| present.binary_search(u).is_err())
                .collect();
            to_ranges(&uids)
        } else {
            // Tombstones that old were pruned: everything that is not here may have vanished.
            gaps(&present, top)
        };
        Ok(match within {
            Some(w) => intersect(&ranges, w),
            None => ranges,
        })
    }

    /// After a successful SELECT/EXAMINE: remembers that expunges are VANISHED for this
    /// session, and answers the QRESYNC parameter (RFC 7162 §3.2.5.1): nothing when the
    /// UIDVALIDITY differs (the client must resync in full), else `* VANISHED (EARLIER)` for
    /// the known UIDs that are gone and `FETCH (UID FLAGS MODSEQ)` for those changed since.
    pub(super) async fn resync(&mut self, q: Option<&Qresync>) -> Result<(), ImapError> {
        let qresync = self.qresync;
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        sel.qresync = qresync;
        let Some(q) = q else {
            return Ok(());
        };
        if q.uidvalidity != sel.uidvalidity {
            return Ok(());
        }
        let largest = sel
            .msgs
            .last()
            .map_or(0, |m| m.uid)
            .max(sel.seen_uidnext.saturating_sub(1));
        let known = q.known_uids.as_ref().map(|k| k.normalized(largest));
        let gone = self.vanished_within(q.modseq, known.as_deref()).await?;
        if !gone.is_empty() {
            self.respond(&vanished_ranges(&gone, true));
        }
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        let changed: Vec<Response> = sel
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.modseq > q.modseq)
            .filter(|(_, m)| {
                known
                    .as_ref()
                    .is_none_or(|k| SeqSet::in_normalized(k, m.uid))
            })
            .map(|(i, m)| m.flags_fetch(i + 1, true))
            .collect();
        for r in &changed {
            self.respond(r);
        }
        Ok(())
    }

    /// `UID FETCH set (...) (CHANGEDSINCE n VANISHED)` (RFC 7162 §3.2.6): the UIDs of the set
    /// expunged since n, as `* VANISHED (EARLIER)`, before the FETCH responses.
    pub(super) async fn fetch_vanished(
        &mut self,
        uid: bool,
        set: &SeqSet,
        changed_since: Option<u64>,
    ) -> Result<(), ImapError> {
        if !self.qresync {
            return Err(ImapError::bad(
                "the VANISHED modifier needs ENABLE QRESYNC first (RFC 7162 section 3.2.6)",
            ));
        }
        if !uid {
            return Err(ImapError::bad(
                "VANISHED goes with UID FETCH only, e.g. UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)",
            ));
        }
        let Some(since) = changed_since else {
            return Err(ImapError::bad(
                "VANISHED needs CHANGEDSINCE, e.g. UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)",
            ));
        };
        let Some(sel) = self.selected() else {
            return Ok(());
        };
        let largest = sel
            .msgs
            .last()
            .map_or(0, |m| m.uid)
            .max(sel.seen_uidnext.saturating_sub(1));
        let within = set.normalized(largest);
        let gone = self.vanished_within(since, Some(&within)).await?;
        if !gone.is_empty() {
            self.respond(&vanished_ranges(&gone, true));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: &Response) -> String {
        String::from_utf8_lossy(&r.to_bytes())
            .trim_end()
            .to_string()
    }

    #[test]
    fn vanished_responses_and_ranges() {
        assert_eq!(wire(&vanished(&[1, 2, 3, 7], false)), "* VANISHED 1:3,7");
        assert_eq!(wire(&vanished(&[5], true)), "* VANISHED (EARLIER) 5");
        assert_eq!(gaps(&[2, 3, 6], 8), vec![(1, 1), (4, 5), (7, 8)]);
        assert_eq!(gaps(&[1, 2], 2), vec![]);
        assert_eq!(gaps(&[], 0), vec![]);
        assert_eq!(
            intersect(&[(1, 5), (8, 10)], &[(3, 9)]),
            vec![(3, 5), (8, 9)]
        );
        assert_eq!(to_ranges(&[u32::MAX]), vec![(u32::MAX, u32::MAX)]);
    }
}
