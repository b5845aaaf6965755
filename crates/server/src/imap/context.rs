//! SEARCHRES (RFC 5182): the search result a session saved with `SEARCH RETURN (SAVE)` (or
//! SORT's, RFC 5267 §3), and `$`, the sequence set that stands for it.
//!
//! The result is kept in [`Selected::saved`] as UIDs, so it lives as long as the selection
//! (SELECT, EXAMINE, UNSELECT and CLOSE start from nothing: RFC 5182 §2.1) and follows
//! expunges by itself: a UID that is no longer in the session's message list is skipped when
//! `$` is replaced, and UIDs are never reused. Before a command runs, [`with_saved`] replaces
//! every `$` in it by the messages it stands for, as sequence numbers or UIDs as the command
//! takes them, so no command handler needs to know about `$`.

use mailroom_proto::imap::{CommandBody, SearchKey, SearchReturn, SeqNum, SeqSet};

use super::selected::Selected;

/// The messages SAVE keeps out of a result (RFC 5182 §2.4; RFC 5267 §3 for SORT): with MIN
/// and/or MAX and neither ALL, COUNT nor PARTIAL, only the message(s) those name; else every one.
/// `result` holds UIDs in result order (ascending for SEARCH, sort order for SORT), so MIN is
/// the first and MAX the last. Returned ascending, without repeats.
pub fn saved_of(ret: &SearchReturn, result: &[u32]) -> Vec<u32> {
    let only_ends = (ret.min || ret.max) && !ret.all && !ret.count && ret.partial.is_none();
    let mut v: Vec<u32> = if only_ends {
        let first = ret.min.then(|| result.first()).flatten();
        let last = ret.max.then(|| result.last()).flatten();
        first.into_iter().chain(last).copied().collect()
    } else {
        result.to_vec()
    };
    v.sort_unstable();
    v.dedup();
    v
}

/// True when SAVE is the only result option: then no ESEARCH response is sent (RFC 5182
/// §2.4: "the server MUST NOT send" one for a SAVE alone).
pub fn save_only(ret: &SearchReturn) -> bool {
    ret.save && !(ret.min || ret.max || ret.all || ret.count || ret.partial.is_some())
}

/// `nums` (ascending) as a sequence set of runs: `1,2,3,7` is `1:3,7`. Empty for none.
pub fn runs(nums: &[u32]) -> SeqSet {
    let mut out: Vec<(SeqNum, SeqNum)> = Vec::new();
    for &n in nums {
        match out.last_mut() {
            Some((_, SeqNum::Num(hi))) if hi.checked_add(1) == Some(n) => *hi = n,
            _ => out.push((SeqNum::Num(n), SeqNum::Num(n))),
        }
    }
    SeqSet(out)
}

/// The saved result as a set of UIDs (`uid`) or of sequence numbers, of the messages still in
/// the session's list.
fn saved_set(sel: &Selected, uid: bool) -> SeqSet {
    let nums: Vec<u32> = sel
        .saved
        .iter()
        .filter_map(|&u| sel.seq_of_uid(u).map(|s| if uid { u } else { s as u32 }))
        .collect();
    runs(&nums)
}

/// `body` with every `$` replaced by the saved result (RFC 5182 §2.1); before any SAVE it is
/// the empty set. In a search key `$` becomes a UID set whether it was written where a
/// sequence set or a UID set goes: it names the same messages either way, and UIDs do not
/// shift when the search's own sync reports expunges.
pub fn with_saved(mut body: CommandBody, sel: &Selected) -> CommandBody {
    use CommandBody as C;
    match &mut body {
        C::Fetch { uid, set, .. }
        | C::Store { uid, set, .. }
        | C::Copy { uid, set, .. }
        | C::Move { uid, set, .. }
            if set.is_saved() =>
        {
            *set = saved_set(sel, *uid);
        }
        C::Expunge { uids: Some(set) } if set.is_saved() => *set = saved_set(sel, true),
        C::Search { key, .. } => replace_in_key(key, sel),
        C::Sort(cmd) => replace_in_key(&mut cmd.key, sel),
        C::Thread(cmd) => replace_in_key(&mut cmd.key, sel),
        _ => {}
    }
    body
}

fn replace_in_key(key: &mut SearchKey, sel: &Selected) {
    match key {
        SearchKey::Seq(set) | SearchKey::Uid(set) if set.is_saved() => {
            *key = SearchKey::Uid(saved_set(sel, true));
        }
        SearchKey::Not(k) => replace_in_key(k, sel),
        SearchKey::Or(a, b) => {
            replace_in_key(a, sel);
            replace_in_key(b, sel);
        }
        SearchKey::And(keys) => keys.iter_mut().for_each(|k| replace_in_key(k, sel)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_store::{AccountId, Flags, MailboxId, MailboxInfo, MessageId, MessageMeta};

    fn ret(min: bool, max: bool, all: bool, count: bool) -> SearchReturn {
        SearchReturn {
            min,
            max,
            all,
            count,
            save: true,
            partial: None,
            update: false,
        }
    }

    #[test]
    fn what_save_keeps() {
        let sorted = [9, 3, 5, 7];
        assert_eq!(
            saved_of(&ret(false, false, false, false), &sorted),
            [3, 5, 7, 9]
        );
        assert_eq!(saved_of(&ret(true, false, false, false), &sorted), [9]);
        assert_eq!(saved_of(&ret(false, true, false, false), &sorted), [7]);
        assert_eq!(saved_of(&ret(true, true, false, false), &sorted), [7, 9]);
        assert_eq!(
            saved_of(&ret(true, false, false, true), &sorted),
            [3, 5, 7, 9]
        );
        assert_eq!(
            saved_of(&ret(true, true, true, false), &sorted),
            [3, 5, 7, 9]
        );
        assert_eq!(saved_of(&ret(true, true, false, false), &[4]), [4]);
        assert!(saved_of(&ret(true, true, false, false), &[]).is_empty());
        assert!(save_only(&ret(false, false, false, false)));
        assert!(!save_only(&ret(true, false, false, false)));
    }

    #[test]
    fn runs_of_numbers() {
        let n = |x| SeqNum::Num(x);
        assert_eq!(runs(&[]), SeqSet(vec![]));
        assert_eq!(runs(&[4]), SeqSet(vec![(n(4), n(4))]));
        assert_eq!(
            runs(&[1, 2, 3, 7, 9, 10]),
            SeqSet(vec![(n(1), n(3)), (n(7), n(7)), (n(9), n(10))])
        );
        assert_eq!(
            runs(&[u32::MAX - 1, u32::MAX]),
            SeqSet(vec![(n(u32::MAX - 1), n(u32::MAX))])
        );
    }

    fn selected(uids: &[u32], saved: &[u32]) -> Selected {
        let id = MailboxId {
            account: AccountId(1),
            id: 1,
        };
        let list: Vec<MessageMeta> = uids
            .iter()
            .map(|&uid| MessageMeta {
                uid,
                message: MessageId(uid as i64),
                size: 10,
                flags: Flags(0),
                keywords: vec![],
                internal_date: 0,
                modseq: 1,
                ends_with_lf: true,
            })
            .collect();
        let info = MailboxInfo {
            id,
            account: AccountId(1),
            name: "INBOX".into(),
            uidvalidity: 7,
            uidnext: 20,
            highest_modseq: 1,
            special_use: None,
            subscribed: true,
            recent_uid: 0,
        };
        let mut sel = Selected::new(id, "INBOX".into(), false, &info, &list);
        sel.saved = saved.to_vec();
        sel
    }

    #[test]
    fn dollar_becomes_the_saved_messages() {
        use mailroom_proto::imap::parse_command;
        let cmd = |s: &str| parse_command(s.as_bytes()).map(|c| c.body).ok();
        // UIDs 10..=14 at sequence numbers 1..=5; 12 saved, then expunged (not in the list).
        let sel = selected(&[10, 11, 13, 14, 15], &[11, 12, 13, 15]);
        let n = |x| SeqNum::Num(x);
        let fetch = with_saved(cmd("a FETCH $ FLAGS").unwrap_or(CommandBody::Noop), &sel);
        let CommandBody::Fetch { set, .. } = fetch else {
            panic!("{fetch:?}")
        };
        assert_eq!(set, SeqSet(vec![(n(2), n(3)), (n(5), n(5))]));
        let copy = with_saved(cmd("a UID COPY $ X").unwrap_or(CommandBody::Noop), &sel);
        let CommandBody::Copy { set, .. } = copy else {
            panic!("{copy:?}")
        };
        assert_eq!(
            set,
            SeqSet(vec![(n(11), n(11)), (n(13), n(13)), (n(15), n(15))])
        );
        let search = with_saved(
            cmd("a SEARCH OR $ SEEN NOT $").unwrap_or(CommandBody::Noop),
            &sel,
        );
        let CommandBody::Search { key, .. } = search else {
            panic!("{search:?}")
        };
        let uids = SearchKey::Uid(SeqSet(vec![(n(11), n(11)), (n(13), n(13)), (n(15), n(15))]));
        assert_eq!(
            key,
            SearchKey::And(vec![
                SearchKey::Or(Box::new(uids.clone()), Box::new(SearchKey::Seen)),
                SearchKey::Not(Box::new(uids))
            ])
        );
        // Before any SAVE, `$` is the empty set.
        let empty = selected(&[10, 11], &[]);
        let expunge = with_saved(cmd("a UID EXPUNGE $").unwrap_or(CommandBody::Noop), &empty);
        assert_eq!(
            expunge,
            CommandBody::Expunge {
                uids: Some(SeqSet(vec![]))
            }
        );
    }
}
