//! SEARCH and UID SEARCH (RFC 9051 §6.4.4; ESEARCH RFC 4731, CONDSTORE's MODSEQ RFC 7162
//! §3.1.5): the command and its responses, and the matching of a key against each message of
//! a snapshot of the mailbox, run on a blocking thread. What the text keys match against
//! (header fields, bodies, decoded and lower-cased) is in `search/text.rs`.

use std::sync::Arc;

use mailroom_proto::imap::encode::days_from_civil;
use mailroom_proto::imap::mime::header_values;
use mailroom_proto::imap::response::{Response, Value};
use mailroom_proto::imap::{SearchKey, SearchReturn};
use mailroom_store::{Flags, MailStore, MailboxId, StoreError};

use super::cache::{ImapShared, Loaded};
use super::context;
use super::error::ImapError;
use super::selected::{compress, Msg};
use super::updates;
use super::{ok, Done, Session};

mod text;

use text::{body_contains, header_contains, text_contains, FIELDS_FORMAT};
pub(super) use text::{Fields, SearchText};

impl Session {
    pub(super) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<SearchReturn>,
        charset: Option<String>,
        key: SearchKey,
    ) -> Result<Done, ImapError> {
        // RFC 5182 §2.1: a SEARCH with SAVE that fails leaves the saved result empty (any `$`
        // in this command was replaced before it ran).
        let save = ret.as_ref().is_some_and(|r| r.save);
        if save {
            if let Some(sel) = self.selected() {
                sel.saved.clear();
            }
        }
        if let Some(cs) = &charset {
            check_charset(cs)?;
        }
        // RFC 5267 §4.3: checked before the search runs.
        let keep = match (&ret, self.selected()) {
            (Some(r), Some(sel)) => updates::check_update(sel, tag, r)?,
            _ => false,
        };
        let update = ret.as_ref().is_some_and(|r| r.update);
        let update_key = update.then(|| key.clone());
        let uses_modseq = key_uses_modseq(&key);
        if uses_modseq {
            self.enable_condstore();
        }
        self.sync(uid).await?;
        let sel = self.must_selected()?;
        let job = SearchJob {
            mailbox: sel.id,
            key,
            msgs: sel.msgs.clone(),
        };
        let uids: Vec<u32> = sel.msgs.iter().map(|m| m.uid).collect();
        let modseqs: Vec<u64> = sel.msgs.iter().map(|m| m.modseq).collect();
        let snapshot = if update {
            sel.msgs.clone()
        } else {
            Default::default()
        };
        let shared = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            run_search(shared.store.as_ref(), &shared.imap, &job)
        })
        .await;
        let hits = match res {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Err(ImapError::store(e)),
            Err(_) => return Err(ImapError::no("SERVERBUG", "internal error while searching")),
        };
        let nums: Vec<u32> = hits
            .iter()
            .map(|&s| if uid { uids[s - 1] } else { s as u32 })
            .collect();
        // RFC 7162 §3.1.5: a search with MODSEQ reports the highest mod-sequence of what
        // it returns: with ESEARCH MIN and/or MAX alone, of the messages those name (RFC
        // 7162 §3.2.1); else of every match.
        let r_only_minmax = ret
            .as_ref()
            .is_some_and(|r| (r.min || r.max) && !r.all && !r.count);
        let highest = if !uses_modseq {
            None
        } else if r_only_minmax {
            // `hits` are sequence numbers in ascending order, so MIN is the first, MAX the last.
            let r = ret.clone().unwrap_or_default();
            let ends = [r.min.then(|| hits.first()), r.max.then(|| hits.last())];
            ends.into_iter()
                .flatten()
                .flatten()
                .map(|&s| modseqs[s - 1])
                .max()
        } else {
            hits.iter().map(|&s| modseqs[s - 1]).max()
        };
        if let Some(r) = ret.as_ref().filter(|r| r.save) {
            let hit_uids: Vec<u32> = hits.iter().map(|&s| uids[s - 1]).collect();
            if let Some(sel) = self.selected() {
                sel.saved = context::saved_of(r, &hit_uids);
            }
        }
        if let Some(k) = update_key {
            if keep {
                let hit_uids: Vec<u32> = hits.iter().map(|&s| uids[s - 1]).collect();
                let u = updates::Update::new(tag, uid, k, None, hit_uids, &snapshot);
                if let Some(sel) = self.selected() {
                    sel.updates.push(u);
                }
            } else {
                self.respond(&updates::noupdate(tag));
            }
        }
        if ret.as_ref().is_some_and(context::save_only) {
            // RFC 5182 §2.4: SAVE alone answers with no ESEARCH.
        } else if ret.is_some() || self.rev2 {
            // RFC 4731 / RFC 9051 §7.3.4 ESEARCH.
            let r = ret.unwrap_or_default();
            let all = r.all || !(r.min || r.max || r.count || r.update || r.partial.is_some());
            let atom = |a: &str| Value::Atom(a.to_string());
            // The correlator: the tag, always quoted (RFC 4731 §3.1; a tag has no character
            // a quoted string must escape).
            let mut data = vec![Value::List(vec![
                atom("TAG"),
                Value::Quoted(tag.as_bytes().to_vec()),
            ])];
            if uid {
                data.push(atom("UID"));
            }
            if r.min {
                if let Some(&m) = nums.iter().min() {
                    data.extend([atom("MIN"), Value::num(m)]);
                }
            }
            if r.max {
                if let Some(&m) = nums.iter().max() {
                    data.extend([atom("MAX"), Value::num(m)]);
                }
            }
            if r.count {
                data.extend([atom("COUNT"), Value::num(nums.len() as u64)]);
            }
            if all && !nums.is_empty() {
                let mut sorted = nums.clone();
                sorted.sort_unstable();
                data.extend([atom("ALL"), Value::Atom(compress(&sorted))]);
            }
            if let Some(range) = r.partial {
                // RFC 5267 §4.4 / RFC 9394 §3: `PARTIAL (range set)`, NIL when the range
                // names no match; positions in ascending order, as SORT's use sort order.
                let mut sorted = nums.clone();
                sorted.sort_unstable();
                let part = range.slice(&sorted);
                let set = if part.is_empty() {
                    Value::Nil
                } else {
                    Value::Atom(compress(part))
                };
                data.extend([
                    atom("PARTIAL"),
                    Value::List(vec![Value::Atom(range.to_string()), set]),
                ]);
            }
            if let Some(h) = highest {
                data.extend([atom("MODSEQ"), Value::num(h)]);
            }
            self.respond(&Response::data("ESEARCH", data));
        } else {
            self.respond(&Response::search(&nums, highest));
        }
        ok(if uid {
            "UID SEARCH completed"
        } else {
            "SEARCH completed"
        })
    }
}

/// RFC 9051 §6.4.4 BADCHARSET: SEARCH, SORT and THREAD take UTF-8 (and its subset US-ASCII).
pub(super) fn check_charset(charset: &str) -> Result<(), ImapError> {
    let c = charset.to_ascii_uppercase();
    if c == "UTF-8" || c == "US-ASCII" {
        return Ok(());
    }
    Err(ImapError::no(
        "BADCHARSET (UTF-8 US-ASCII)",
        format!("charset {charset} is not supported; use UTF-8"),
    ))
}

fn key_uses_modseq(k: &SearchKey) -> bool {
    use SearchKey as K;
    match k {
        K::ModSeq(_) => true,
        K::Not(a) => key_uses_modseq(a),
        K::Or(a, b) => key_uses_modseq(a) || key_uses_modseq(b),
        K::And(v) => v.iter().any(key_uses_modseq),
        _ => false,
    }
}

/// One SEARCH over a snapshot of the mailbox, on the blocking thread.
pub struct SearchJob {
    pub mailbox: MailboxId,
    pub key: SearchKey,
    pub msgs: std::sync::Arc<Vec<Msg>>,
}

/// Below this many messages without cached header fields, a search parses them rather than
/// reading the store's copy of the whole mailbox's fields.
const PRELOAD_MIN: usize = 32;

/// Sequence numbers (1-based) of matching messages.
///
/// Header keys read each message's fields from the process cache, else from the store's
/// persistent copy (`message_search`, read for the whole mailbox in one query), else parse
/// the message; what had to be parsed is written to the store after the search, so the next
/// search (also after a restart, or in a mailbox larger than the cache) reads one narrow row
/// per message.
pub fn run_search(
    store: &dyn MailStore,
    cache: &ImapShared,
    job: &SearchJob,
) -> Result<Vec<usize>, StoreError> {
    run_search_where(store, cache, job, &|_| true)
}

/// [`run_search`] over only the messages for which `only` holds (the others never match);
/// sequence numbers still count every message of the snapshot. An updating search
/// (`updates.rs`) matches again only what changed.
pub(super) fn run_search_where(
    store: &dyn MailStore,
    cache: &ImapShared,
    job: &SearchJob,
    only: &dyn Fn(&Msg) -> bool,
) -> Result<Vec<usize>, StoreError> {
    let count = job.msgs.len() as u32;
    let largest_uid = job.msgs.last().map_or(0, |m| m.uid);
    // The store's copies, by position in the snapshot (both lists are in UID order).
    let mut stored: Vec<Option<Arc<Fields>>> = Vec::new();
    if key_uses_fields(&job.key) {
        let missing = job
            .msgs
            .iter()
            .filter(|m| !m.gone && only(m) && cache.fields.get(m.message).is_none())
            .count();
        if missing >= PRELOAD_MIN {
            // A mailbox that fits the cache well is kept there; a larger one would only
            // push everything else out, and is read from the store each time.
            let keep = job.msgs.len() <= cache.fields.capacity() / 2;
            stored.resize(job.msgs.len(), None);
            let mut i = 0;
            for (uid, data) in store.search_data(job.mailbox, FIELDS_FORMAT)? {
                i += job.msgs[i..].partition_point(|m| m.uid < uid);
                let Some(m) = job.msgs.get(i).filter(|m| m.uid == uid) else {
                    continue;
                };
                if let Some(f) = Fields::from_record(data) {
                    let f = Arc::new(f);
                    if keep {
                        cache.fields.put(m.message, f.clone());
                    }
                    stored[i] = Some(f);
                }
            }
        }
    }
    let mut parsed = Vec::new();
    let mut hits = Vec::new();
    for (i, msg) in job.msgs.iter().enumerate() {
        if msg.gone || !only(msg) {
            continue;
        }
        let mut l = Loaded::new(store, cache, job.mailbox, msg);
        if let Some(f) = stored.get(i).and_then(Option::as_ref) {
            l.search.fields = Some(f.clone());
        }
        let ctx = Ctx {
            seq: i as u32 + 1,
            count,
            largest_uid,
        };
        match matches(&job.key, &mut l, &ctx) {
            Ok(true) => hits.push(i + 1),
            Ok(false) => {}
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        if l.search.fields_parsed {
            if let Some(f) = &l.search.fields {
                parsed.push((msg.uid, f.record().to_vec()));
            }
        }
    }
    if !parsed.is_empty() {
        // A copy for later searches: losing it (a full disk, say) costs only speed.
        if let Err(e) = store.put_search_data(job.mailbox, FIELDS_FORMAT, parsed) {
            tracing::debug!(error = %e, "cannot keep SEARCH fields in the store");
        }
    }
    Ok(hits)
}

/// Whether the key reads header fields (then the store's copy of them is worth reading).
fn key_uses_fields(k: &SearchKey) -> bool {
    use SearchKey as K;
    match k {
        K::Bcc(_)
        | K::Cc(_)
        | K::From(_)
        | K::To(_)
        | K::Subject(_)
        | K::Header(..)
        | K::Text(_) => true,
        K::Not(a) => key_uses_fields(a),
        K::Or(a, b) => key_uses_fields(a) || key_uses_fields(b),
        K::And(v) => v.iter().any(key_uses_fields),
        _ => false,
    }
}

struct Ctx {
    seq: u32,
    count: u32,
    largest_uid: u32,
}

fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

fn key_day((y, m, d): (i32, u32, u32)) -> i64 {
    days_from_civil(i64::from(y), m, d)
}

/// The day of the Date header in its own zone (RFC 9051 §6.4.4 SENT*), if it parses.
fn sent_day(l: &mut Loaded<'_>) -> Result<Option<i64>, StoreError> {
    use chrono::Datelike;
    let mime = l.mime()?;
    let data = l.data()?;
    let Some(v) = header_values(data, &mime.root.header, "Date")
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let s = String::from_utf8_lossy(&v).trim().to_string();
    Ok(chrono::DateTime::parse_from_rfc2822(&s).ok().map(|d| {
        let n = d.date_naive();
        days_from_civil(i64::from(n.year()), n.month(), n.day())
    }))
}

fn has_kw(msg: &Msg, k: &str) -> bool {
    msg.keywords.iter().any(|x| x.eq_ignore_ascii_case(k))
}

fn matches(key: &SearchKey, l: &mut Loaded<'_>, c: &Ctx) -> Result<bool, StoreError> {
    use SearchKey as K;
    let m = l.msg;
    let f = |bit: Flags| m.flags.contains(bit);
    Ok(match key {
        K::All => true,
        K::Answered => f(Flags::ANSWERED),
        K::Deleted => f(Flags::DELETED),
        K::Draft => f(Flags::DRAFT),
        K::Flagged => f(Flags::FLAGGED),
        K::Seen => f(Flags::SEEN),
        // RFC 3501 §6.4.4: RECENT, NEW (recent and unseen), OLD (not recent).
        K::Recent => m.recent,
        K::New => m.recent && !f(Flags::SEEN),
        K::Old => !m.recent,
        K::Unanswered => !f(Flags::ANSWERED),
        K::Undeleted => !f(Flags::DELETED),
        K::Undraft => !f(Flags::DRAFT),
        K::Unflagged => !f(Flags::FLAGGED),
        K::Unseen => !f(Flags::SEEN),
        K::Keyword(k) => has_kw(m, k),
        K::Unkeyword(k) => !has_kw(m, k),
        K::Bcc(s) => header_contains(l, "Bcc", s)?,
        K::Cc(s) => header_contains(l, "Cc", s)?,
        K::From(s) => header_contains(l, "From", s)?,
        K::To(s) => header_contains(l, "To", s)?,
        K::Subject(s) => header_contains(l, "Subject", s)?,
        K::Header(h, s) => header_contains(l, h, s)?,
        K::Body(s) => body_contains(l, s)?,
        K::Text(s) => text_contains(l, s)?,
        K::Before(d) => day_of(m.internal_date) < key_day(*d),
        K::On(d) => day_of(m.internal_date) == key_day(*d),
        K::Since(d) => day_of(m.internal_date) >= key_day(*d),
        K::SentBefore(d) => sent_day(l)?.is_some_and(|x| x < key_day(*d)),
        K::SentOn(d) => sent_day(l)?.is_some_and(|x| x == key_day(*d)),
        K::SentSince(d) => sent_day(l)?.is_some_and(|x| x >= key_day(*d)),
        K::Larger(n) => m.size > *n,
        K::Smaller(n) => m.size < *n,
        K::Uid(set) => set.contains(m.uid, c.largest_uid),
        K::Seq(set) => set.contains(c.seq, c.count),
        K::ModSeq(n) => m.modseq >= *n,
        K::Not(k) => !matches(k, l, c)?,
        K::Or(a, b) => matches(a, l, c)? || matches(b, l, c)?,
        K::And(keys) => {
            for k in keys {
                if !matches(k, l, c)? {
                    return Ok(false);
                }
            }
            true
        }
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A store in a temporary directory with the given messages in one INBOX, all with one
    /// INTERNALDATE.
    fn mailbox(messages: &[&[u8]]) -> (tempfile::TempDir, mailroom_store::Store, SearchJob) {
        let dated: Vec<(&[u8], i64)> = messages.iter().map(|m| (*m, 1_700_000_000)).collect();
        mailbox_dated(&dated)
    }

    /// A store in a temporary directory with the given (message, INTERNALDATE) in one INBOX,
    /// and a job over all of them (also for SORT's tests).
    pub(in crate::imap) fn mailbox_dated(
        messages: &[(&[u8], i64)],
    ) -> (tempfile::TempDir, mailroom_store::Store, SearchJob) {
        let dir = tempfile::tempdir().unwrap();
        let store = mailroom_store::open(dir.path()).unwrap();
        store.add_domain("x.test").unwrap();
        let acct = store.add_account("a@x.test", "h").unwrap();
        let inbox = store.mailbox(acct, "INBOX").unwrap().unwrap();
        for (m, date) in messages {
            store
                .append_message(inbox.id, m, Flags::default(), &[], *date)
                .unwrap();
        }
        let msgs = std::sync::Arc::new(
            store
                .list_messages(inbox.id)
                .unwrap()
                .iter()
                .map(Msg::from_meta)
                .collect(),
        );
        let job = SearchJob {
            mailbox: inbox.id,
            key: SearchKey::All,
            msgs,
        };
        (dir, store, job)
    }

    const ENCODED: &[&[u8]] = &[
        // 1: UTF-8 base64 subject, ISO-8859-1 display name, plain body.
        b"From: =?iso-8859-1?q?J=FCrgen?= <j@x.test>\r\nSubject: =?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n\r\nhello\r\n",
        // 2: ISO-8859-1 Q subject, base64 UTF-8 body.
        b"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_M=FCnchen?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nU2Now7ZuZSBHcsO8w59lIHZvbSBCb2RlbnNlZQ==\r\n",
        // 3: folded subject of two encoded words, folded plain field, QP ISO-8859-1 body.
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n =?utf-8?q?_aus_K=C3=B6ln?=\r\nX-Note: a\r\n\tb\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nStra=DFe in K=F6ln\r\n",
        // 4: raw UTF-8 subject (RFC 6532), nothing encoded.
        "Subject: KÖLN, Straße\r\n\r\nnothing\r\n".as_bytes(),
    ];

    fn search(job: &mut SearchJob, store: &mailroom_store::Store, key: SearchKey) -> Vec<usize> {
        job.key = key;
        run_search(store.as_ref(), &ImapShared::default(), job).unwrap()
    }

    #[test]
    fn search_decodes_headers() {
        use SearchKey as K;
        let (_d, store, mut job) = mailbox(ENCODED);
        let mut q = |k| search(&mut job, &store, k);
        assert_eq!(q(K::Subject("köln".into())), vec![1, 3, 4]);
        assert_eq!(q(K::Subject("KÖLN".into())), vec![1, 3, 4]);
        assert_eq!(q(K::Subject("aus K".into())), vec![1, 3]);
        assert_eq!(q(K::Subject("grüße aus".into())), vec![1, 2, 3]);
        assert_eq!(q(K::Subject("münchen".into())), vec![2]);
        assert_eq!(q(K::Subject("straße".into())), vec![4]);
        // The raw octets still match.
        assert_eq!(q(K::Subject("=?utf-8?B?".into())), vec![1]);
        assert_eq!(q(K::Subject("gr=C3=BC".into())), vec![3]);
        assert_eq!(q(K::From("jürgen".into())), vec![1]);
        assert_eq!(q(K::From("jürgen <j@x".into())), vec![1]);
        // A fold with a tab matches as one space; the raw unfolded value still matches too.
        assert_eq!(q(K::Header("X-Note".into(), "a b".into())), vec![3]);
        assert_eq!(q(K::Header("x-note".into(), "a\tb".into())), vec![3]);
        assert_eq!(q(K::Header("X-Note".into(), "".into())), vec![3]);
        assert_eq!(q(K::Header("Subject".into(), "".into())), vec![1, 2, 3, 4]);
        // Negative: words from different messages, a needle in the body only.
        assert_eq!(q(K::Subject("münchen köln".into())), Vec::<usize>::new());
        assert_eq!(q(K::Subject("bodensee".into())), Vec::<usize>::new());
        assert_eq!(q(K::To("köln".into())), Vec::<usize>::new());
    }

    #[test]
    fn address_searches_match_the_parsed_address() {
        use SearchKey as K;
        let (_d, store, mut job) = mailbox(&[
            b"From: <user-from (comment)@ (comment) domain.org>\r\n\r\nx\r\n",
            b"From: user-from@domain.org (Real From)\r\n\r\nx\r\n",
            b"From: other@domain.org\r\n\r\nx\r\n",
        ]);
        let mut q = |k| search(&mut job, &store, k);
        assert_eq!(q(K::From("user-from@domain.org".into())), vec![1, 2]);
        assert_eq!(q(K::From("real from <user-from@".into())), vec![2]);
        assert_eq!(
            q(K::From("comment".into())),
            vec![1],
            "the raw text still matches"
        );
    }

    #[test]
    fn search_decodes_bodies() {
        use SearchKey as K;
        let (_d, store, mut job) = mailbox(ENCODED);
        let mut q = |k| search(&mut job, &store, k);
        assert_eq!(q(K::Body("grüße vom BODENSEE".into())), vec![2]);
        assert_eq!(q(K::Body("straße in köln".into())), vec![3]);
        // Raw transfer-encoded octets still match.
        assert_eq!(q(K::Body("K=F6ln".into())), vec![3]);
        assert_eq!(q(K::Body("U2Now7Z".into())), vec![2]);
        // BODY does not look at the header; TEXT does, raw and decoded.
        assert_eq!(q(K::Body("köln".into())), vec![3]);
        assert_eq!(q(K::Text("köln".into())), vec![1, 3, 4]);
        assert_eq!(q(K::Text("subject: grüße aus köln".into())), vec![1, 3]);
        assert_eq!(q(K::Text("bodensee".into())), vec![2]);
        assert_eq!(q(K::Text("".into())), vec![1, 2, 3, 4]);
        assert_eq!(q(K::Not(Box::new(K::Body("köln".into())))), vec![1, 2, 4]);
        assert_eq!(q(K::Body("grüße".into())), vec![2]);
        assert_eq!(q(K::Body("münchen".into())), Vec::<usize>::new());
    }

    #[test]
    fn search_decodes_lazily_and_once() {
        use SearchKey as K;
        let (_d, store, job) = mailbox(&[]);
        let cache = ImapShared::default();
        let msg = Msg {
            uid: 1,
            message: mailroom_store::MessageId(1),
            size: 0,
            flags: Flags::default(),
            keywords: Vec::new(),
            internal_date: 0,
            modseq: 1,
            gone: false,
            recent: false,
        };
        let mut l = Loaded::new(store.as_ref(), &cache, job.mailbox, &msg);
        l.data = Some(ENCODED[1].to_vec());
        let c = Ctx {
            seq: 1,
            count: 1,
            largest_uid: 1,
        };
        let subject = K::Or(
            Box::new(K::Subject("xyz".into())),
            Box::new(K::Subject("münchen".into())),
        );
        assert!(matches(&subject, &mut l, &c).unwrap());
        assert!(l.search.fields.is_some());
        assert!(l.search.body_texts.is_none() && l.search.raw.is_none());
        assert!(matches(&K::Body("bodensee".into()), &mut l, &c).unwrap());
        assert_eq!(l.search.body_texts.as_ref().map(Vec::len), Some(1));
        // A second key reuses what is cached: mark it and see the mark found.
        l.search.body_texts = Some(vec!["marker".into()]);
        assert!(matches(&K::Body("MARKER".into()), &mut l, &c).unwrap());

        // The header fields outlive the search: a later one (a new Loaded, no octets) finds
        // them in the shared cache and does not read the message.
        let mut again = Loaded::new(store.as_ref(), &cache, job.mailbox, &msg);
        assert!(matches(&subject, &mut again, &c).unwrap());
        assert!(
            again.data.is_none(),
            "a cached header search read the message"
        );
        assert_eq!(cache.fields.len(), 1);
    }

    #[test]
    fn header_fields_are_kept_in_the_store_and_read_back() {
        use SearchKey as K;
        let msgs: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("Subject: note {i}\r\nFrom: a{i}@x.test\r\n\r\nbody\r\n").into_bytes())
            .collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let (_d, store, mut job) = mailbox(&refs);
        // The first search parses every message and keeps the fields in the store.
        assert_eq!(
            search(&mut job, &store, K::Subject("note 39".into())),
            vec![40]
        );
        assert_eq!(
            store.search_data(job.mailbox, FIELDS_FORMAT).unwrap().len(),
            40
        );
        // A new process (empty cache) reads them from the store: a planted record shows it.
        let planted = Fields::new(&[text::Field::for_test("subject", "planted")])
            .record()
            .to_vec();
        store
            .put_search_data(job.mailbox, FIELDS_FORMAT, vec![(7, planted)])
            .unwrap();
        assert_eq!(
            search(&mut job, &store, K::Subject("planted".into())),
            vec![7]
        );
        assert_eq!(search(&mut job, &store, K::From("a12@".into())), vec![13]);
        // A record of another format is not read: the message is parsed again.
        store
            .put_search_data(job.mailbox, FIELDS_FORMAT + 1, vec![(8, b"junk".to_vec())])
            .unwrap();
        assert_eq!(
            search(&mut job, &store, K::Subject("note 7".into())),
            vec![8]
        );
    }
}
