//! FETCH and SEARCH work, run on a blocking thread against the store (RFC 9051 §6.4.4,
//! §6.4.5, §7.5.2), and the per-process MIME structure cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mailroom_proto::imap::encode::{days_from_civil, internal_date, push_nstring};
use mailroom_proto::imap::mime::{header_values, Mime};
use mailroom_proto::imap::{FetchAtt, SearchKey, Section};
use mailroom_store::{Flags, MailStore, MailboxId, MessageId, MessageRef, StoreError};

use super::selected::Msg;

mod decode;

/// Cached structures at most; beyond this the cache starts over (simple and bounded).
const CACHE_ENTRIES: usize = 4096;

/// Key: the stored message's id. The store never hands an id out twice (schema v7) and a
/// message's octets never change, so a key names one message's octets for ever, whichever
/// account or mailbox holds it: an entry can never describe another message. (It was
/// (mailbox id, UIDVALIDITY, UID) before, and both parts could repeat: a mailbox deleted and
/// created again in the same second, by this account or another one, was shown the old
/// messages' headers.) Entries of messages that are gone are never looked up again and leave
/// with the next clear.
type Key = MessageId;

/// A per-process cache of what is computed from a message's octets, bounded to
/// [`CACHE_ENTRIES`] (then it starts over: simple, and a message never changes under its key).
struct Cache<V>(Mutex<HashMap<Key, Arc<V>>>);

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Cache(Mutex::new(HashMap::new()))
    }
}

impl<V> Cache<V> {
    fn get(&self, key: Key) -> Option<Arc<V>> {
        self.0.lock().ok()?.get(&key).cloned()
    }
    fn put(&self, key: Key, v: Arc<V>) {
        if let Ok(mut c) = self.0.lock() {
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert(key, v);
        }
    }
    fn len(&self) -> usize {
        self.0.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// IMAP state shared by all sessions: caches of what a message's octets give. A message's
/// ENVELOPE, BODYSTRUCTURE and part offsets are computed once, so FETCH does not re-parse;
/// its header fields as SEARCH matches them (lower-cased, RFC 2047 decoded) likewise, so a
/// header search does not read the message again.
#[derive(Default)]
pub struct ImapShared {
    mime: Cache<Mime>,
    fields: Cache<Vec<Field>>,
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
struct Loaded<'a> {
    store: &'a dyn MailStore,
    cache: &'a ImapShared,
    key: Key,
    mailbox: MailboxId,
    msg: &'a Msg,
    data: Option<Vec<u8>>,
    mime: Option<Arc<Mime>>,
    search: SearchText,
}

/// The lower-cased texts SEARCH matches against, each computed at most once per message and
/// only when a key needs it.
#[derive(Default)]
struct SearchText {
    /// The top-level header fields (shared through [`ImapShared`]).
    fields: Option<Arc<Vec<Field>>>,
    /// The whole message, raw (TEXT).
    raw: Option<String>,
    /// The top-level body, raw (BODY).
    raw_body: Option<String>,
    /// The decoded text parts that differ from their raw octets (see [`decode::body_texts`]).
    body_texts: Option<Vec<String>>,
}

/// One header field for SEARCH, lower-cased.
struct Field {
    name: String,
    /// The unfolded value as sent.
    raw: String,
    /// The value with encoded words decoded and blanks collapsed, when that differs.
    decoded: Option<String>,
    /// Address fields: the parsed addresses as `name <mailbox@host>, ...` (comments and
    /// folding gone, names decoded), so `FROM user@domain` finds `<user (c)@ (c) domain>`.
    addresses: Option<String>,
}

/// Header fields whose value is an address list (RFC 5322 §3.6.2, §3.6.3).
const ADDRESS_FIELDS: &[&str] = &["from", "sender", "reply-to", "to", "cc", "bcc"];

/// The addresses of an address field as SEARCH matches them, lower-cased.
fn address_text(value: &[u8]) -> String {
    use mailroom_proto::imap::mime::{parse_addresses, Addr};
    let mut out: Vec<String> = Vec::new();
    for a in parse_addresses(value) {
        if let Addr::Mailbox {
            name,
            mailbox,
            host,
            ..
        } = a
        {
            let spec = format!(
                "{}@{}",
                String::from_utf8_lossy(&mailbox),
                String::from_utf8_lossy(&host)
            );
            out.push(match name {
                Some(n) => {
                    let n = decode::header_text(&n)
                        .unwrap_or_else(|| String::from_utf8_lossy(&n).into_owned());
                    format!("{n} <{spec}>")
                }
                None => spec,
            });
        }
    }
    out.join(", ").to_lowercase()
}

impl<'a> Loaded<'a> {
    fn new(
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

    fn data(&mut self) -> Result<&[u8], StoreError> {
        if self.data.is_none() {
            // Read through the session's own mailbox: the store checks that the UID is still
            // there and belongs to the session's account.
            let at = MessageRef::Mailbox {
                mailbox: self.mailbox,
                uid: self.msg.uid,
            };
            self.data = Some(mailroom_store::read_message(self.store, at)?);
        }
        Ok(self.data.as_deref().unwrap_or_default())
    }
    fn mime(&mut self) -> Result<Arc<Mime>, StoreError> {
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

/// One FETCH request for the blocking thread.
pub struct FetchJob {
    pub mailbox: MailboxId,
    pub items: Vec<FetchAtt>,
    /// (sequence number, message, whether FLAGS must be added because \Seen was just set).
    pub msgs: Vec<(usize, Msg, bool)>,
    pub uid: bool,
    /// CONDSTORE is on: a FETCH that set \Seen also reports MODSEQ (RFC 7162 §3.1).
    pub condstore: bool,
}

/// Why a whole FETCH failed.
pub enum FetchFail {
    Store(StoreError),
    /// BINARY on a part whose Content-Transfer-Encoding we cannot decode (RFC 3516).
    UnknownCte,
}

impl From<StoreError> for FetchFail {
    fn from(e: StoreError) -> Self {
        FetchFail::Store(e)
    }
}

/// The untagged FETCH responses, one per message still present.
pub fn run_fetch(
    store: &dyn MailStore,
    cache: &ImapShared,
    job: &FetchJob,
) -> Result<Vec<Vec<u8>>, FetchFail> {
    let mut out = Vec::with_capacity(job.msgs.len());
    for (seq, msg, add_flags) in &job.msgs {
        let mut l = Loaded::new(store, cache, job.mailbox, msg);
        match fetch_one(&mut l, *seq, job, *add_flags) {
            Ok(r) => out.push(r),
            // Expunged by another session meanwhile: RFC 9051 §7.5.1 lets us leave it out.
            Err(FetchFail::Store(StoreError::NotFound(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn push_literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

fn partial_slice(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    &data[mailroom_proto::imap::mime::partial_range(data.len(), partial)]
}

fn fetch_one(
    l: &mut Loaded<'_>,
    seq: usize,
    job: &FetchJob,
    add_flags: bool,
) -> Result<Vec<u8>, FetchFail> {
    let msg = l.msg;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let wants_uid = job.items.contains(&FetchAtt::Uid);
    if job.uid && !wants_uid {
        // RFC 9051 §6.4.9: UID FETCH responses always include UID.
        parts.push(format!("UID {}", msg.uid).into_bytes());
    }
    let wants_flags = job.items.contains(&FetchAtt::Flags);
    for item in &job.items {
        let mut p = Vec::new();
        match item {
            FetchAtt::Uid => p.extend_from_slice(format!("UID {}", msg.uid).as_bytes()),
            FetchAtt::Flags => p.extend_from_slice(format!("FLAGS {}", msg.flag_list()).as_bytes()),
            FetchAtt::InternalDate => p.extend_from_slice(
                format!("INTERNALDATE {}", internal_date(msg.internal_date)).as_bytes(),
            ),
            FetchAtt::Rfc822Size => {
                p.extend_from_slice(format!("RFC822.SIZE {}", msg.size).as_bytes())
            }
            FetchAtt::ModSeq => p.extend_from_slice(format!("MODSEQ ({})", msg.modseq).as_bytes()),
            FetchAtt::Envelope => {
                p.extend_from_slice(b"ENVELOPE ");
                p.extend_from_slice(&l.mime()?.envelope);
            }
            FetchAtt::Body => {
                p.extend_from_slice(b"BODY ");
                p.extend_from_slice(&l.mime()?.body);
            }
            FetchAtt::BodyStructure => {
                p.extend_from_slice(b"BODYSTRUCTURE ");
                p.extend_from_slice(&l.mime()?.bodystructure);
            }
            FetchAtt::Rfc822 => {
                p.extend_from_slice(b"RFC822 ");
                push_literal(&mut p, l.data()?);
            }
            FetchAtt::Rfc822Header | FetchAtt::Rfc822Text => {
                let mime = l.mime()?;
                let data = l.data()?;
                let (name, r) = if *item == FetchAtt::Rfc822Header {
                    ("RFC822.HEADER ", mime.root.header.clone())
                } else {
                    ("RFC822.TEXT ", mime.root.body.clone())
                };
                p.extend_from_slice(name.as_bytes());
                push_literal(&mut p, data.get(r).unwrap_or_default());
            }
            FetchAtt::BodySection {
                section, partial, ..
            } => {
                let bytes = section_bytes(l, section)?;
                p.extend_from_slice(format!("BODY[{}]", section.spec()).as_bytes());
                if let Some((o, _)) = partial {
                    p.extend_from_slice(format!("<{o}>").as_bytes());
                }
                p.push(b' ');
                match bytes {
                    // RFC 9051 §6.4.5: a part that does not exist is sent as NIL.
                    None => p.extend_from_slice(b"NIL"),
                    Some(b) => push_literal(&mut p, partial_slice(&b, *partial)),
                }
            }
            FetchAtt::Binary { part, partial, .. } => {
                let decoded = binary(l, part)?;
                let spec: Vec<String> = part.iter().map(|n| n.to_string()).collect();
                p.extend_from_slice(format!("BINARY[{}]", spec.join(".")).as_bytes());
                if let Some((o, _)) = partial {
                    p.extend_from_slice(format!("<{o}>").as_bytes());
                }
                p.push(b' ');
                match decoded {
                    None => p.extend_from_slice(b"NIL"),
                    Some(b) => {
                        let s = partial_slice(&b, *partial);
                        // RFC 3516 §4.3: literal8 when the octets hold NUL.
                        if s.contains(&0) {
                            p.push(b'~');
                        }
                        push_literal(&mut p, s);
                    }
                }
            }
            FetchAtt::BinarySize(part) => {
                let decoded = binary(l, part)?;
                let spec: Vec<String> = part.iter().map(|n| n.to_string()).collect();
                p.extend_from_slice(
                    format!(
                        "BINARY.SIZE[{}] {}",
                        spec.join("."),
                        decoded.map_or(0, |d| d.len())
                    )
                    .as_bytes(),
                );
            }
        }
        parts.push(p);
    }
    if add_flags && !wants_flags {
        parts.push(format!("FLAGS {}", msg.flag_list()).into_bytes());
    }
    if add_flags && job.condstore && !job.items.contains(&FetchAtt::ModSeq) {
        parts.push(format!("MODSEQ ({})", msg.modseq).into_bytes());
    }
    let mut out = format!("* {seq} FETCH (").into_bytes();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(p);
    }
    out.extend_from_slice(b")\r\n");
    Ok(out)
}

fn section_bytes(l: &mut Loaded<'_>, section: &Section) -> Result<Option<Vec<u8>>, StoreError> {
    if section.part.is_empty() && section.text.is_none() {
        return Ok(Some(l.data()?.to_vec()));
    }
    let mime = l.mime()?;
    let data = l.data()?;
    Ok(mime.section(data, section))
}

/// BINARY[part]: the part's body with its transfer encoding undone (RFC 3516).
fn binary(l: &mut Loaded<'_>, part: &[u32]) -> Result<Option<Vec<u8>>, FetchFail> {
    if part.is_empty() {
        return Ok(Some(l.data()?.to_vec()));
    }
    let mime = l.mime()?;
    let data = l.data()?;
    let Some(p) = mime.part(part) else {
        return Ok(None);
    };
    let body = data.get(p.body.clone()).unwrap_or_default();
    let cte = p
        .encoding
        .as_deref()
        .map(|e| String::from_utf8_lossy(e).trim().to_ascii_lowercase())
        .unwrap_or_default();
    match cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => Ok(Some(body.to_vec())),
        "base64" => decode::decode_base64(body)
            .map(Some)
            .ok_or(FetchFail::UnknownCte),
        "quoted-printable" => Ok(Some(decode_qp(body))),
        _ => Err(FetchFail::UnknownCte),
    }
}

/// Quoted-printable (RFC 2045 §6.7), leniently: bad escapes stay as they are. Line by line:
/// whitespace at the end of an encoded line is transport padding and goes (rule 3); a line
/// that then ends in `=` is a soft line break (rule 5, also `= ` + padding); every other line
/// ends in CRLF (a bare LF counts as a line end too).
pub fn decode_qp(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut lines = s.split(|b| *b == b'\n').peekable();
    while let Some(raw) = lines.next() {
        let last = lines.peek().is_none();
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        let line = &line[..end];
        let (line, soft) = match line.strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            if line[i] == b'=' {
                if let (Some(h), Some(l)) = (
                    line.get(i + 1).copied().and_then(hex),
                    line.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
            }
            out.push(line[i]);
            i += 1;
        }
        if !soft && !last {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

// ------------------------------------------------------------------ SEARCH

/// One SEARCH over a snapshot of the mailbox, on the blocking thread.
pub struct SearchJob {
    pub mailbox: MailboxId,
    pub key: SearchKey,
    pub msgs: Vec<Msg>,
}

/// Sequence numbers (1-based) of matching messages.
pub fn run_search(
    store: &dyn MailStore,
    cache: &ImapShared,
    job: &SearchJob,
) -> Result<Vec<usize>, StoreError> {
    let count = job.msgs.len() as u32;
    let largest_uid = job.msgs.last().map_or(0, |m| m.uid);
    let mut hits = Vec::new();
    for (i, msg) in job.msgs.iter().enumerate() {
        if msg.gone {
            continue;
        }
        let mut l = Loaded::new(store, cache, job.mailbox, msg);
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
    }
    Ok(hits)
}

struct Ctx {
    seq: u32,
    count: u32,
    largest_uid: u32,
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_lowercase()
}

/// Substring match, case-insensitive by Unicode lower-casing (RFC 9051 §6.4.4); `hay` is
/// already lower-cased.
fn has(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.contains(needle)
}

impl Loaded<'_> {
    fn search_fields(&mut self) -> Result<&[Field], StoreError> {
        if self.search.fields.is_none() {
            let fields = match self.cache.fields.get(self.key) {
                Some(f) => f,
                None => {
                    let mime = self.mime()?;
                    let data = self.data()?;
                    let fields: Vec<Field> =
                        mailroom_proto::imap::mime::fields(data, &mime.root.header)
                            .into_iter()
                            .map(|(name, value)| {
                                let name = name.to_lowercase();
                                let addresses = ADDRESS_FIELDS
                                    .contains(&name.as_str())
                                    .then(|| address_text(&value));
                                Field {
                                    raw: lower(&value),
                                    decoded: decode::header_text(&value).map(|t| t.to_lowercase()),
                                    addresses,
                                    name,
                                }
                            })
                            .collect();
                    let fields = Arc::new(fields);
                    self.cache.fields.put(self.key, fields.clone());
                    fields
                }
            };
            self.search.fields = Some(fields);
        }
        Ok(self
            .search
            .fields
            .as_deref()
            .map(Vec::as_slice)
            .unwrap_or_default())
    }

    fn search_raw(&mut self) -> Result<&str, StoreError> {
        if self.search.raw.is_none() {
            self.search.raw = Some(lower(self.data()?));
        }
        Ok(self.search.raw.as_deref().unwrap_or_default())
    }

    fn search_raw_body(&mut self) -> Result<&str, StoreError> {
        if self.search.raw_body.is_none() {
            let mime = self.mime()?;
            let data = self.data()?;
            self.search.raw_body =
                Some(lower(data.get(mime.root.body.clone()).unwrap_or_default()));
        }
        Ok(self.search.raw_body.as_deref().unwrap_or_default())
    }

    fn search_body_texts(&mut self) -> Result<&[String], StoreError> {
        if self.search.body_texts.is_none() {
            let mime = self.mime()?;
            let data = self.data()?;
            let mut texts = Vec::new();
            decode::body_texts(data, &mime.root, &mut texts);
            for t in &mut texts {
                *t = t.to_lowercase();
            }
            self.search.body_texts = Some(texts);
        }
        Ok(self.search.body_texts.as_deref().unwrap_or_default())
    }
}

/// FROM, TO, CC, BCC, SUBJECT, HEADER: the needle in a field's value as sent or decoded.
fn header_contains(l: &mut Loaded<'_>, field: &str, needle: &str) -> Result<bool, StoreError> {
    let n = needle.to_lowercase();
    let field = field.to_lowercase();
    // RFC 9051 §6.4.4 HEADER with an empty string matches every message with the field.
    Ok(l.search_fields()?.iter().any(|f| {
        f.name == field
            && (has(&f.raw, &n)
                || f.decoded.as_deref().is_some_and(|d| has(d, &n))
                || f.addresses.as_deref().is_some_and(|a| has(a, &n)))
    }))
}

/// BODY: the needle in the raw body or in the decoded text of a text part.
fn body_contains(l: &mut Loaded<'_>, needle: &str) -> Result<bool, StoreError> {
    let n = needle.to_lowercase();
    if has(l.search_raw_body()?, &n) {
        return Ok(true);
    }
    Ok(l.search_body_texts()?.iter().any(|t| has(t, &n)))
}

/// TEXT: the needle in the raw message, a decoded header field (`name: value`) or the
/// decoded text of a text part.
fn text_contains(l: &mut Loaded<'_>, needle: &str) -> Result<bool, StoreError> {
    let n = needle.to_lowercase();
    if has(l.search_raw()?, &n) {
        return Ok(true);
    }
    let in_header = l.search_fields()?.iter().any(|f| {
        f.decoded.as_deref().is_some_and(|d| {
            has(d, &n) || (n.contains(':') && has(&format!("{}: {d}", f.name), &n))
        })
    });
    if in_header {
        return Ok(true);
    }
    Ok(l.search_body_texts()?.iter().any(|t| has(t, &n)))
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

/// `nstring` helper re-exported for the session's responses.
pub fn nstring(s: Option<&[u8]>) -> Vec<u8> {
    let mut v = Vec::new();
    push_nstring(&mut v, s);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp() {
        assert_eq!(decode_qp(b"a=3Db=\r\nc=ZZ"), b"a=bc=ZZ");
        // imaptest's fetch-binary-mime-qp: padding stripped, soft breaks with padding after
        // the `=`, bare LF lines.
        let body = b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\nfoo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n";
        let want = b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n";
        assert_eq!(
            String::from_utf8_lossy(&decode_qp(body)),
            String::from_utf8_lossy(want)
        );
        assert_eq!(decode_qp(b"a\nb"), b"a\r\nb");
        assert_eq!(decode_qp(b"no end="), b"no end");
    }

    /// A store in a temporary directory with the given messages in one INBOX.
    fn mailbox(messages: &[&[u8]]) -> (tempfile::TempDir, mailroom_store::Store, SearchJob) {
        let dir = tempfile::tempdir().unwrap();
        let store = mailroom_store::open(dir.path()).unwrap();
        store.add_domain("x.test").unwrap();
        let acct = store.add_account("a@x.test", "h").unwrap();
        let inbox = store.mailbox(acct, "INBOX").unwrap().unwrap();
        for m in messages {
            store
                .append_message(inbox.id, m, Flags::default(), &[], 1_700_000_000)
                .unwrap();
        }
        let msgs = store
            .list_messages(inbox.id)
            .unwrap()
            .iter()
            .map(Msg::from_meta)
            .collect();
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
    fn partial() {
        assert_eq!(partial_slice(b"hello", Some((1, 3))), b"ell");
        assert_eq!(partial_slice(b"hello", Some((4, 100))), b"o");
        assert_eq!(partial_slice(b"hello", Some((10, 1))), b"");
    }
}
