//! FETCH and SEARCH work, run on a blocking thread against the store (RFC 9051 §6.4.4,
//! §6.4.5, §7.5.2), and the per-process MIME structure cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mailroom_proto::imap::encode::{days_from_civil, internal_date, push_nstring};
use mailroom_proto::imap::mime::{header_values, Mime};
use mailroom_proto::imap::{FetchAtt, SearchKey, Section};
use mailroom_store::{Flags, MailStore, MailboxId, StoreError};

use super::selected::{flag_list, Msg};

/// Cached structures at most; beyond this the cache starts over (simple and bounded).
const CACHE_ENTRIES: usize = 4096;

/// Key: mailbox, UIDVALIDITY and UID name one message for ever (RFC 9051 §2.3.1.1), unlike a
/// blob id, which SQLite may hand out again after a delete.
type Key = (MailboxId, u32, u32);

/// IMAP state shared by all sessions: the MIME structure cache. A message's ENVELOPE,
/// BODYSTRUCTURE and part offsets are computed once and kept here, so FETCH does not re-parse.
#[derive(Default)]
pub struct ImapShared {
    mime: Mutex<HashMap<Key, Arc<Mime>>>,
}

impl ImapShared {
    fn get(&self, key: Key) -> Option<Arc<Mime>> {
        self.mime.lock().ok()?.get(&key).cloned()
    }
    fn put(&self, key: Key, m: Arc<Mime>) {
        if let Ok(mut c) = self.mime.lock() {
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert(key, m);
        }
    }
    /// Entries cached (for tests and stats).
    pub fn len(&self) -> usize {
        self.mime.lock().map(|c| c.len()).unwrap_or(0)
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
    msg: &'a Msg,
    data: Option<Vec<u8>>,
    mime: Option<Arc<Mime>>,
}

impl Loaded<'_> {
    fn data(&mut self) -> Result<&[u8], StoreError> {
        if self.data.is_none() {
            self.data = Some(mailroom_store::read_message(self.store, self.msg.message)?);
        }
        Ok(self.data.as_deref().unwrap_or_default())
    }
    fn mime(&mut self) -> Result<Arc<Mime>, StoreError> {
        if let Some(m) = &self.mime {
            return Ok(m.clone());
        }
        let m = match self.cache.get(self.key) {
            Some(m) => m,
            None => {
                let m = Arc::new(Mime::parse(self.data()?));
                self.cache.put(self.key, m.clone());
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
    pub uidvalidity: u32,
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
        let mut l = Loaded {
            store,
            cache,
            key: (job.mailbox, job.uidvalidity, msg.uid),
            msg,
            data: None,
            mime: None,
        };
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
    match partial {
        None => data,
        Some((o, n)) => {
            let o = (o as usize).min(data.len());
            let e = o.saturating_add(n as usize).min(data.len());
            &data[o..e]
        }
    }
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
            FetchAtt::Flags => p.extend_from_slice(
                format!("FLAGS {}", flag_list(msg.flags, &msg.keywords)).as_bytes(),
            ),
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
        parts.push(format!("FLAGS {}", flag_list(msg.flags, &msg.keywords)).into_bytes());
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
        "base64" => {
            use base64::Engine;
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            engine
                .decode(&clean)
                .map(Some)
                .map_err(|_| FetchFail::UnknownCte)
        }
        "quoted-printable" => Ok(Some(decode_qp(body))),
        _ => Err(FetchFail::UnknownCte),
    }
}

/// Quoted-printable (RFC 2045 §6.7), leniently: bad escapes stay as they are.
pub fn decode_qp(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < s.len() {
        if s[i] == b'=' {
            if s.get(i + 1) == Some(&b'\r') && s.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if s.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

// ------------------------------------------------------------------ SEARCH

/// One SEARCH over a snapshot of the mailbox, on the blocking thread.
pub struct SearchJob {
    pub mailbox: MailboxId,
    pub uidvalidity: u32,
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
        let mut l = Loaded {
            store,
            cache,
            key: (job.mailbox, job.uidvalidity, msg.uid),
            msg,
            data: None,
            mime: None,
        };
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

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let n = needle.to_lowercase();
    if n.is_empty() {
        return true;
    }
    lower(hay).contains(&n)
}

fn header_contains(l: &mut Loaded<'_>, field: &str, needle: &str) -> Result<bool, StoreError> {
    let mime = l.mime()?;
    let data = l.data()?;
    let values = header_values(data, &mime.root.header, field);
    // RFC 9051 §6.4.4 HEADER with an empty string matches every message with the field.
    Ok(values.iter().any(|v| contains_ci(v, needle)))
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
        // \Recent is not kept (RFC 9051 drops it); no message is recent.
        K::Recent | K::New => false,
        K::Old => true,
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
        K::Body(s) => {
            let mime = l.mime()?;
            let data = l.data()?;
            contains_ci(data.get(mime.root.body.clone()).unwrap_or_default(), s)
        }
        K::Text(s) => contains_ci(l.data()?, s),
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
    }

    #[test]
    fn partial() {
        assert_eq!(partial_slice(b"hello", Some((1, 3))), b"ell");
        assert_eq!(partial_slice(b"hello", Some((4, 100))), b"o");
        assert_eq!(partial_slice(b"hello", Some((10, 1))), b"");
    }
}
