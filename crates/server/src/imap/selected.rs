//! The SELECTED state's view of a mailbox (RFC 9051 §3.3): the message sequence as this
//! session knows it, and the poll that brings in changes made by other sessions, SMTP
//! deliveries and POP3 deletions.
//!
//! The poll is cheap when nothing changed: one row read compares the mailbox's
//! HIGHESTMODSEQ and UIDNEXT with what the session last saw (every write in the store bumps
//! one of them). Only then is the message list read and diffed. Expunges found while a
//! FETCH, STORE or SEARCH is answered stay pending (RFC 9051 §7.5.1 forbids EXPUNGE
//! responses then); the messages keep their sequence numbers until a later command.
//!
//! What a poll finds is returned as [`Response`]s (EXPUNGE, EXISTS, FETCH FLAGS, and FLAGS
//! with PERMANENTFLAGS for new keywords) for the session to send.

use std::sync::Arc;

use mailroom_proto::imap::response::{Response, Status, Value};
use mailroom_proto::imap::{Flag, SeqSet};
use mailroom_store::{Flags, MailboxChanges, MailboxId, MessageId, MessageMeta};

use super::error::ImapError;

/// One message as this session sees it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub uid: u32,
    pub message: MessageId,
    pub size: u64,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub internal_date: i64,
    pub modseq: u64,
    /// Expunged elsewhere, not yet reported.
    pub gone: bool,
    /// `\Recent` for this session (RFC 3501 §2.3.2; IMAP4rev1 sessions only).
    pub recent: bool,
}

impl Msg {
    pub fn from_meta(m: &MessageMeta) -> Msg {
        Msg {
            uid: m.uid,
            message: m.message,
            size: m.size,
            flags: m.flags,
            keywords: m.keywords.clone(),
            internal_date: m.internal_date,
            modseq: m.modseq,
            gone: false,
            recent: false,
        }
    }

    /// Back to the store's form (`ends_with_lf` is not kept here: what uses the result
    /// compares flags, keywords and modseqs).
    pub fn to_meta(&self) -> MessageMeta {
        MessageMeta {
            uid: self.uid,
            message: self.message,
            size: self.size,
            flags: self.flags,
            keywords: self.keywords.clone(),
            internal_date: self.internal_date,
            modseq: self.modseq,
            ends_with_lf: true,
        }
    }

    /// The message's flags as this session shows them, `\Recent` included.
    pub fn flag_list(&self) -> Value {
        flag_list(self.flags, &self.keywords, self.recent)
    }

    /// `* seq FETCH (FLAGS (...) UID n)`, with `MODSEQ (m)` when CONDSTORE is on: how a
    /// change of flags is announced (RFC 9051 §7.5.2, RFC 7162 §3.2), by a poll or a STORE.
    pub fn flags_fetch(&self, seq: usize, with_modseq: bool) -> Response {
        let mut items = vec![
            Value::Atom("FLAGS".into()),
            self.flag_list(),
            Value::Atom("UID".into()),
            Value::num(self.uid),
        ];
        if with_modseq {
            items.extend(self.modseq_item());
        }
        Response::fetch(seq as u32, items)
    }

    /// The `MODSEQ (m)` FETCH item (RFC 7162 §3.1.4.1).
    pub fn modseq_item(&self) -> [Value; 2] {
        [
            Value::Atom("MODSEQ".into()),
            Value::List(vec![Value::num(self.modseq)]),
        ]
    }
}

pub struct Selected {
    pub id: MailboxId,
    pub name: String,
    pub read_only: bool,
    pub uidvalidity: u32,
    /// The messages in UID order. Shared (copy on write) with the process's listing of the
    /// mailbox (`listing.rs`) and with SEARCH and SORT jobs, so a SELECT of a large mailbox
    /// and a search copy nothing until this session changes something.
    pub msgs: Arc<Vec<Msg>>,
    /// HIGHESTMODSEQ and UIDNEXT when the list was last read.
    pub seen_modseq: u64,
    pub seen_uidnext: u32,
    /// Some messages are `gone` and still to be reported.
    pub pending_expunge: bool,
    /// Some message was ever marked `\Recent` for this session.
    any_recent: bool,
    /// The keywords announced to the session in FLAGS and PERMANENTFLAGS. RFC 9051 §7.3.5:
    /// a keyword must be announced before a FETCH FLAGS response shows it.
    pub keywords: Vec<String>,
    /// QRESYNC is enabled (RFC 7162 §3.2.10): expunges are reported as `* VANISHED uids`
    /// instead of `* n EXPUNGE`.
    pub qresync: bool,
    /// The search result saved by `RETURN (SAVE)`, as UIDs ascending (RFC 5182; see
    /// `context.rs`).
    pub saved: Vec<u32>,
    /// The updating searches and sorts (RFC 5267 §4.3; see `updates.rs`).
    pub updates: Vec<super::updates::Update>,
}

/// `(\Seen \Flagged $Label)`, with `\Recent` first when `recent`.
pub fn flag_list(flags: Flags, keywords: &[String], recent: bool) -> Value {
    let mut v: Vec<&str> = Vec::new();
    if recent {
        v.push("\\Recent");
    }
    for (bit, name) in [
        (Flags::SEEN, "\\Seen"),
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::DRAFT, "\\Draft"),
    ] {
        if flags.contains(bit) {
            v.push(name);
        }
    }
    v.extend(keywords.iter().map(String::as_str));
    Value::List(v.into_iter().map(|f| Value::Atom(f.to_string())).collect())
}

/// Splits client flags into system flag bits and keywords. `\Recent` cannot be stored
/// (RFC 9051 §2.3.2) and is ignored; other `\Word` flags are refused.
pub fn split_flags(flags: &[Flag]) -> Result<(Flags, Vec<String>), ImapError> {
    let mut bits = Flags::default();
    let mut kws: Vec<String> = Vec::new();
    for f in flags {
        match f {
            Flag::Seen => bits = bits.union(Flags::SEEN),
            Flag::Answered => bits = bits.union(Flags::ANSWERED),
            Flag::Flagged => bits = bits.union(Flags::FLAGGED),
            Flag::Deleted => bits = bits.union(Flags::DELETED),
            Flag::Draft => bits = bits.union(Flags::DRAFT),
            Flag::Recent => {}
            Flag::Keyword(k) if k.starts_with('\\') => {
                return Err(ImapError::bad(format!("{k} cannot be stored")))
            }
            Flag::Keyword(k) => {
                if !kws.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    kws.push(k.clone());
                }
            }
            Flag::Extension(e) => {
                return Err(ImapError::bad(format!(
                    "{e} is not a flag this server stores; use \\Seen \\Answered \\Flagged \\Deleted \\Draft or a keyword"
                )))
            }
        }
    }
    Ok((bits, kws))
}

/// A mailbox's list from `known`, the messages as they were at some modseq, and the store's
/// `changes` since that modseq: without the messages that vanished (or that `known` holds as
/// `gone`), with the changed rows instead of the known ones and the new ones added, in UID
/// order. `None` when the tombstones of that time were pruned (the caller then reads the
/// whole list). Only what changed was read from the store, not every message.
pub fn merged(known: &[Msg], changes: MailboxChanges) -> Option<Vec<MessageMeta>> {
    if !changes.vanished.complete {
        return None;
    }
    let vanished = &changes.vanished.uids;
    let gone = |uid: u32| vanished.binary_search(&uid).is_ok();
    let mut changed = changes
        .changed
        .into_iter()
        .filter(|c| !gone(c.uid))
        .peekable();
    let mut out = Vec::with_capacity(known.len() + changed.size_hint().0);
    for m in known.iter().filter(|m| !m.gone && !gone(m.uid)) {
        while let Some(c) = changed.next_if(|c| c.uid < m.uid) {
            out.push(c);
        }
        if let Some(c) = changed.next_if(|c| c.uid == m.uid) {
            out.push(c);
            continue;
        }
        out.push(m.to_meta());
    }
    out.extend(changed);
    Some(out)
}

/// Adds the keywords of `msgs` that `known` lacks (compared without case).
fn learn(known: &mut Vec<String>, msgs: &[Msg]) {
    for m in msgs {
        for k in &m.keywords {
            if !known.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                known.push(k.clone());
            }
        }
    }
}

/// A mailbox's messages as SELECT starts from them, with what SELECT reports of all of them
/// computed once (a shared listing keeps it: `listing.rs`): the keywords they use and the
/// first one without `\Seen`.
#[derive(Clone)]
pub struct Listed {
    pub msgs: Arc<Vec<Msg>>,
    pub keywords: Vec<String>,
    /// 0-based.
    pub first_unseen: Option<usize>,
}

impl Listed {
    pub fn of(msgs: Arc<Vec<Msg>>) -> Listed {
        let mut keywords = Vec::new();
        learn(&mut keywords, &msgs);
        let first_unseen = msgs.iter().position(|m| !m.flags.contains(Flags::SEEN));
        Listed {
            msgs,
            keywords,
            first_unseen,
        }
    }
}

/// What a sync produced: untagged responses.
pub type Untagged = Vec<Response>;

impl Selected {
    #[cfg(test)]
    pub fn new(
        id: MailboxId,
        name: String,
        read_only: bool,
        info: &mailroom_store::MailboxInfo,
        list: &[MessageMeta],
    ) -> Selected {
        let view = Listed::of(Arc::new(list.iter().map(Msg::from_meta).collect()));
        Selected::shared(id, name, read_only, info, view)
    }

    /// A session's view that starts from a listing shared with others (not copied).
    pub fn shared(
        id: MailboxId,
        name: String,
        read_only: bool,
        info: &mailroom_store::MailboxInfo,
        listed: Listed,
    ) -> Selected {
        Selected {
            id,
            name,
            read_only,
            uidvalidity: info.uidvalidity,
            msgs: listed.msgs,
            seen_modseq: info.highest_modseq,
            seen_uidnext: info.uidnext,
            pending_expunge: false,
            any_recent: false,
            keywords: listed.keywords,
            qresync: false,
            saved: Vec::new(),
            updates: Vec::new(),
        }
    }

    /// Marks the messages with a UID above `after` (and up to `up_to`) as this session's
    /// `\Recent` ones; returns how many messages are recent now.
    pub fn mark_recent(&mut self, after: u32, up_to: u32) -> usize {
        // UID order: the range is one run of the list (copied only when it is not empty).
        let lo = self.msgs.partition_point(|m| m.uid <= after);
        let hi = self.msgs.partition_point(|m| m.uid <= up_to);
        if self.msgs[lo..hi.max(lo)].iter().any(|m| !m.recent) {
            for m in &mut Arc::make_mut(&mut self.msgs)[lo..hi] {
                m.recent = true;
            }
        }
        let marked = hi.saturating_sub(lo);
        if !self.any_recent {
            // None before (SELECT): the count is the run just marked, without a scan.
            self.any_recent = marked > 0;
            return marked;
        }
        self.msgs.iter().filter(|m| m.recent).count()
    }

    /// Adds the keywords of the session's messages that were not announced yet; true when
    /// there were any (then [`Selected::flags_responses`] must be sent before any FETCH FLAGS).
    pub fn learn_keywords(&mut self) -> bool {
        let before = self.keywords.len();
        learn(&mut self.keywords, &self.msgs);
        self.keywords.len() > before
    }

    /// The untagged FLAGS and PERMANENTFLAGS responses (RFC 9051 §7.3.5, §7.1) with every
    /// keyword announced so far.
    pub fn flags_responses(&self) -> [Response; 2] {
        let mut flags = vec!["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];
        flags.extend(self.keywords.iter().map(String::as_str));
        let permanent = if self.read_only {
            Response::untagged(Status::Ok, Some("PERMANENTFLAGS ()"), "read-only mailbox")
        } else {
            // RFC 9051 §7.1: `\*`, new keywords may be created.
            let code = format!("PERMANENTFLAGS ({} \\*)", flags.join(" "));
            Response::untagged(Status::Ok, Some(&code), "flags you can change")
        };
        [Response::flags(&flags), permanent]
    }

    /// The mailbox's current list, rebuilt from what this session holds plus the store's
    /// changes since `seen_modseq` (see [`merged`]).
    pub fn rebuild(&self, changes: MailboxChanges) -> Option<Vec<MessageMeta>> {
        merged(&self.msgs, changes)
    }

    /// True when the mailbox row says something changed since the last list.
    pub fn changed(&self, info: Option<&mailroom_store::MailboxInfo>) -> bool {
        match info {
            None => true,
            Some(i) => {
                i.highest_modseq != self.seen_modseq
                    || i.uidnext != self.seen_uidnext
                    || self.pending_expunge
            }
        }
    }

    /// Applies a fresh message list (`None`: the mailbox was deleted) and returns the
    /// untagged responses: EXPUNGE (only if allowed), EXISTS, FETCH FLAGS.
    pub fn apply(
        &mut self,
        info: Option<&mailroom_store::MailboxInfo>,
        list: &[MessageMeta],
        allow_expunge: bool,
        with_modseq: bool,
    ) -> Untagged {
        let mut out = Vec::new();
        let mut flag_changes: Vec<u32> = Vec::new();
        let mut j = 0;
        // Both lists are in UID order: walk them together.
        for m in Arc::make_mut(&mut self.msgs).iter_mut() {
            while j < list.len() && list[j].uid < m.uid {
                j += 1;
            }
            if j < list.len() && list[j].uid == m.uid {
                let n = &list[j];
                if n.flags != m.flags || n.keywords != m.keywords {
                    m.flags = n.flags;
                    m.keywords = n.keywords.clone();
                    if !m.gone {
                        flag_changes.push(m.uid);
                    }
                }
                m.modseq = n.modseq;
            } else {
                m.gone = true;
            }
        }
        let last_uid = self.msgs.last().map_or(0, |m| m.uid);
        let before = self.msgs.len();
        if list.last().is_some_and(|n| n.uid > last_uid) {
            Arc::make_mut(&mut self.msgs)
                .extend(list.iter().filter(|n| n.uid > last_uid).map(Msg::from_meta));
        }
        let added = self.msgs.len() > before;
        if allow_expunge {
            // RFC 5267 §4.3.4: REMOVEFROM with the numbers the client still holds, before
            // the EXPUNGE responses.
            let gone: Vec<u32> = self.msgs.iter().filter(|m| m.gone).map(|m| m.uid).collect();
            let removals = self.context_removals(&gone);
            // Highest sequence number first, so each number is right when it is sent.
            let mut vanished = Vec::new();
            for seq in (1..=self.msgs.len()).rev() {
                if self.msgs[seq - 1].gone {
                    vanished.push(self.msgs[seq - 1].uid);
                    out.push(Response::expunge(seq as u32));
                    Arc::make_mut(&mut self.msgs).remove(seq - 1);
                }
            }
            if self.qresync && !vanished.is_empty() {
                vanished.reverse();
                out = vec![super::qresync::vanished(&vanished, false)];
            }
            out.splice(0..0, removals);
            self.pending_expunge = false;
        } else {
            self.pending_expunge = self.msgs.iter().any(|m| m.gone);
        }
        if added {
            out.push(self.exists());
        }
        for uid in flag_changes {
            if let Some((i, m)) = self.msgs.iter().enumerate().find(|(_, m)| m.uid == uid) {
                out.push(m.flags_fetch(i + 1, with_modseq));
            }
        }
        if let Some(i) = info {
            self.seen_modseq = i.highest_modseq;
            self.seen_uidnext = i.uidnext;
        }
        out
    }

    /// Indexes (0-based) named by a sequence set or UID set.
    ///
    /// RFC 9051 §6.4.5 / §9: a message sequence number above the number of messages (and `*`
    /// in an empty mailbox) is a BAD; UIDs that do not exist are ignored, and a UID range
    /// `n:*` always includes the last message.
    pub fn resolve(&self, set: &SeqSet, uid: bool) -> Result<Vec<usize>, ImapError> {
        let n = self.msgs.len();
        if uid {
            let largest = self.msgs.last().map_or(0, |m| m.uid);
            if n == 0 {
                return Ok(Vec::new());
            }
            let ranges = set.normalized(largest);
            return Ok(self
                .msgs
                .iter()
                .enumerate()
                .filter(|(_, m)| SeqSet::in_normalized(&ranges, m.uid))
                .map(|(i, _)| i)
                .collect());
        }
        let ranges = set.normalized(n as u32);
        let bad = ranges
            .iter()
            .any(|&(lo, hi)| lo == 0 || hi as usize > n || n == 0);
        if set.0.is_empty() {
            // Only `$` (RFC 5182) replaced by an empty saved result: no messages, no error.
            return Ok(Vec::new());
        }
        if bad {
            return Err(ImapError::bad(if n == 0 {
                "the mailbox is empty, so no message sequence number (not even *) is valid"
                    .to_string()
            } else {
                format!("message sequence numbers go from 1 to {n} in this mailbox")
            }));
        }
        Ok(ranges
            .iter()
            .flat_map(|&(lo, hi)| (lo as usize - 1)..(hi as usize))
            .collect())
    }

    pub fn seq_of_uid(&self, uid: u32) -> Option<usize> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i + 1)
    }

    /// Replaces a message's flags after this session's STORE.
    pub fn update(&mut self, meta: &MessageMeta) {
        if let Some(s) = self.seq_of_uid(meta.uid) {
            let m = &mut Arc::make_mut(&mut self.msgs)[s - 1];
            m.flags = meta.flags;
            m.keywords = meta.keywords.clone();
            m.modseq = meta.modseq;
        }
    }

    /// Removes messages this session expunged (or moved); returns the EXPUNGE responses.
    pub fn remove_uids(&mut self, uids: &[u32]) -> Untagged {
        // RFC 5267 §4.3.4: REMOVEFROM first, while the numbers are the client's.
        let removals = self.context_removals(uids);
        let mut seqs: Vec<usize> = uids.iter().filter_map(|&u| self.seq_of_uid(u)).collect();
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        seqs.dedup();
        let mut out = Vec::new();
        let mut vanished = Vec::new();
        for s in seqs {
            vanished.push(Arc::make_mut(&mut self.msgs).remove(s - 1).uid);
            out.push(Response::expunge(s as u32));
        }
        if self.qresync && !vanished.is_empty() {
            // RFC 7162 §3.2.10: one VANISHED for this session's own EXPUNGE or MOVE.
            vanished.sort_unstable();
            out = vec![super::qresync::vanished(&vanished, false)];
        }
        out.splice(0..0, removals);
        out
    }

    /// `* n EXISTS` (RFC 9051 §7.4.1).
    pub fn exists(&self) -> Response {
        Response::exists(self.msgs.len() as u32)
    }
}

/// `1:3,5` from sorted numbers.
pub fn compress(nums: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = nums[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_proto::imap::SeqNum;
    use mailroom_store::AccountId;

    const TEST_MAILBOX: MailboxId = MailboxId {
        account: AccountId(1),
        id: 1,
    };

    fn meta(uid: u32, flags: Flags) -> MessageMeta {
        MessageMeta {
            uid,
            message: MessageId(uid as i64),
            size: 10,
            flags,
            keywords: vec![],
            internal_date: 0,
            modseq: 1,
            ends_with_lf: true,
        }
    }

    fn info(modseq: u64) -> mailroom_store::MailboxInfo {
        mailroom_store::MailboxInfo {
            id: TEST_MAILBOX,
            account: mailroom_store::AccountId(1),
            name: "INBOX".into(),
            uidvalidity: 7,
            uidnext: 10,
            highest_modseq: modseq,
            special_use: None,
            subscribed: true,
            recent_uid: 0,
        }
    }

    /// The responses as the client reads them, one line each.
    fn wire(responses: &[Response]) -> Vec<String> {
        responses
            .iter()
            .map(|r| {
                String::from_utf8_lossy(&r.to_bytes())
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn sync_diffs() {
        let list = vec![meta(1, Flags(0)), meta(2, Flags(0)), meta(3, Flags(0))];
        let mut s = Selected::new(TEST_MAILBOX, "INBOX".into(), false, &info(1), &list);
        let new = vec![meta(1, Flags::SEEN), meta(3, Flags(0)), meta(4, Flags(0))];
        let out = s.apply(Some(&info(2)), &new, false, false);
        assert_eq!(
            wire(&out),
            vec!["* 4 EXISTS", "* 1 FETCH (FLAGS (\\Seen) UID 1)"]
        );
        assert!(s.pending_expunge);
        assert_eq!(s.msgs.len(), 4);
        let out = s.apply(Some(&info(2)), &new, true, false);
        assert_eq!(wire(&out), vec!["* 2 EXPUNGE"]);
        assert_eq!(s.msgs.len(), 3);
        // With CONDSTORE the FETCH carries MODSEQ; \Recent comes first.
        let mut changed = new.clone();
        changed[0].flags = Flags::SEEN.union(Flags::FLAGGED);
        changed[0].keywords = vec!["$Label".into()];
        changed[0].modseq = 9;
        std::sync::Arc::make_mut(&mut s.msgs)[0].recent = true;
        let out = s.apply(Some(&info(3)), &changed, true, true);
        assert_eq!(
            wire(&out),
            vec!["* 1 FETCH (FLAGS (\\Recent \\Seen \\Flagged $Label) UID 1 MODSEQ (9))"]
        );
    }

    #[test]
    fn flags_and_permanentflags() {
        let mut s = Selected::new(TEST_MAILBOX, "INBOX".into(), false, &info(1), &[]);
        s.keywords = vec!["$Label".into(), "kw".into()];
        assert_eq!(
            wire(&s.flags_responses()),
            vec![
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label kw)",
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label kw \\*)] flags you can change",
            ]
        );
        s.read_only = true;
        s.keywords.clear();
        assert_eq!(
            wire(&s.flags_responses()),
            vec![
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                "* OK [PERMANENTFLAGS ()] read-only mailbox",
            ]
        );
    }

    #[test]
    fn rebuild_from_changes_matches_a_full_list() {
        let list = vec![meta(1, Flags(0)), meta(2, Flags(0)), meta(3, Flags(0))];
        let mut a = Selected::new(TEST_MAILBOX, "INBOX".into(), false, &info(1), &list);
        let mut b = Selected::new(TEST_MAILBOX, "INBOX".into(), false, &info(1), &list);
        // Elsewhere: 1 got \Seen, 2 was expunged, 4 arrived.
        let full = vec![meta(1, Flags::SEEN), meta(3, Flags(0)), meta(4, Flags(0))];
        let changes = |changed: Vec<MessageMeta>, uids: Vec<u32>, complete| MailboxChanges {
            changed,
            vanished: mailroom_store::Vanished { uids, complete },
        };
        let rebuilt = a
            .rebuild(changes(
                vec![meta(1, Flags::SEEN), meta(4, Flags(0))],
                vec![2],
                true,
            ))
            .expect("rebuildable");
        assert_eq!(rebuilt, full);
        assert_eq!(
            a.apply(Some(&info(2)), &rebuilt, true, false),
            b.apply(Some(&info(2)), &full, true, false)
        );
        // A message that arrived and left again since (its row changed, then it vanished),
        // one that arrived and was changed, and one below every known UID.
        let rebuilt = a
            .rebuild(changes(
                vec![
                    meta(0, Flags(0)),
                    meta(5, Flags(0)),
                    meta(6, Flags::FLAGGED),
                ],
                vec![3, 5],
                true,
            ))
            .expect("rebuildable");
        assert_eq!(
            rebuilt,
            vec![
                meta(0, Flags(0)),
                meta(1, Flags::SEEN),
                meta(4, Flags(0)),
                meta(6, Flags::FLAGGED)
            ]
        );
        // Tombstones of that time pruned: what left cannot be known, so read the whole list.
        assert!(a.rebuild(changes(vec![], vec![], false)).is_none());
    }

    #[test]
    fn resolve_sets() {
        let list = vec![meta(5, Flags(0)), meta(9, Flags(0))];
        let s = Selected::new(TEST_MAILBOX, "INBOX".into(), false, &info(1), &list);
        let set = |a, b| SeqSet(vec![(a, b)]);
        assert_eq!(
            s.resolve(&set(SeqNum::Num(1), SeqNum::Star), false)
                .unwrap(),
            vec![0, 1]
        );
        assert!(s
            .resolve(&set(SeqNum::Num(3), SeqNum::Num(3)), false)
            .is_err());
        assert_eq!(
            s.resolve(&set(SeqNum::Num(9), SeqNum::Num(6)), true)
                .unwrap(),
            vec![1]
        );
        assert_eq!(
            s.resolve(&set(SeqNum::Num(100), SeqNum::Star), true)
                .unwrap(),
            vec![1]
        );
        let empty = Selected::new(TEST_MAILBOX, "INBOX".into(), false, &info(1), &[]);
        assert!(empty
            .resolve(&set(SeqNum::Num(1), SeqNum::Star), false)
            .is_err());
        assert!(empty
            .resolve(&set(SeqNum::Num(1), SeqNum::Star), true)
            .unwrap()
            .is_empty());
        assert_eq!(compress(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
    }
}
