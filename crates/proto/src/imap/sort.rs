//! SORT (RFC 5256 §3; DISPLAYFROM and DISPLAYTO of RFC 5957 SORT=DISPLAY) and the ESEARCH
//! answer of ESORT and CONTEXT=SORT's PARTIAL (RFC 5267), sans-IO.
//!
//! What a message gives SORT and THREAD is read once from its header section into
//! [`SortFields`] (base subject, sent date, first addresses, Message-ID and references), which
//! the server may cache or store per message (see [`SortFields::to_bytes`]); a
//! [`SortMessage`] adds what the mailbox knows (sequence number, UID, INTERNALDATE, size).
//! [`sort`] orders messages by a sort program; [`super::thread`] threads them.
//!
//! Strings are compared as RFC 5256 §3 and Dovecot do it: decoded (RFC 2047), case-mapped
//! (see [`casemap`]), then octet by octet; a missing header field is the empty string, which
//! sorts first. Ties are broken by sequence number, ascending, whatever REVERSE says
//! (RFC 5256 §3).

use std::cmp::Ordering;
use std::sync::Arc;

use super::command::{SearchReturn, SortCriterion, SortKey};
use super::decode::header_text;
use super::mime::{fields, parse_addresses, Addr};

/// What SORT and THREAD need of one message's header section, computed once by
/// [`SortFields::parse`]. Strings that are sort keys are already case-mapped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SortFields {
    /// The base subject (RFC 5256 §2.1), case-mapped; empty without a Subject.
    pub subject: String,
    /// The subject marks a reply or forward: base subject extraction removed a `Re:`/`Fwd:`
    /// leader, a `(fwd)` trailer or a `[fwd: ...]` wrapper (RFC 5256 §3, REFERENCES step 5).
    pub reply: bool,
    /// The Date header as Unix seconds (UTC), when there is one that parses (RFC 5256 §2.2).
    pub sent: Option<i64>,
    /// The addr-mailbox (local part) of the first From, To and Cc address, case-mapped
    /// (RFC 5256 §3). A group's first entry is its name, as in ENVELOPE.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// The display name of the first From / To address, else its addr-spec, case-mapped
    /// (RFC 5957 §3).
    pub display_from: String,
    pub display_to: String,
    /// The first valid message ID of the Message-ID field, without `<>`.
    pub message_id: Option<String>,
    /// The message IDs of References, or when it has none, the first of In-Reply-To
    /// (RFC 5256 §3, REFERENCES step 1).
    pub references: Vec<String>,
}

impl SortFields {
    /// Reads a message's header section (the octets up to and including the blank line; a
    /// whole message works too, its body is not read). Lenient: what does not parse is
    /// treated as absent. The first of repeated fields counts.
    pub fn parse(header: &[u8]) -> SortFields {
        let end = header_end(header);
        let all = fields(header, &(0..end));
        let first = |name: &str| {
            all.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_slice())
        };
        let (subject, reply) = first("Subject").map_or((String::new(), false), base_subject);
        let sent = first("Date").and_then(parse_sent_date);
        let (from, display_from) = first_address(first("From"));
        let (to, display_to) = first_address(first("To"));
        let (cc, _) = first_address(first("Cc"));
        let message_id = first("Message-ID").and_then(|v| message_ids(v).into_iter().next());
        let mut references = first("References").map(message_ids).unwrap_or_default();
        if references.is_empty() {
            references = first("In-Reply-To")
                .and_then(|v| message_ids(v).into_iter().next())
                .into_iter()
                .collect();
        }
        SortFields {
            subject,
            reply,
            sent,
            from,
            to,
            cc,
            display_from,
            display_to,
            message_id,
            references,
        }
    }

    /// A compact, versioned form to keep with the stored message (so a SORT or THREAD of a
    /// large mailbox need not read every header again). [`SortFields::from_bytes`] reads it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        let mut flags = 0u8;
        if self.reply {
            flags |= 1;
        }
        if self.sent.is_some() {
            flags |= 2;
        }
        if self.message_id.is_some() {
            flags |= 4;
        }
        out.push(flags);
        if let Some(t) = self.sent {
            out.extend_from_slice(&t.to_le_bytes());
        }
        for s in [
            &self.subject,
            &self.from,
            &self.to,
            &self.cc,
            &self.display_from,
            &self.display_to,
        ] {
            push_str(&mut out, s);
        }
        if let Some(id) = &self.message_id {
            push_str(&mut out, id);
        }
        out.extend_from_slice(&(self.references.len() as u32).to_le_bytes());
        for r in &self.references {
            push_str(&mut out, r);
        }
        out
    }

    /// Reads [`SortFields::to_bytes`]; `None` for another format version or damaged data
    /// (then parse the header again).
    pub fn from_bytes(b: &[u8]) -> Option<SortFields> {
        let mut r = Reader(b);
        if r.take(1)? != [FORMAT_VERSION] {
            return None;
        }
        let flags = r.take(1)?[0];
        if flags & !7 != 0 {
            return None;
        }
        let sent = if flags & 2 != 0 {
            Some(i64::from_le_bytes(r.take(8)?.try_into().ok()?))
        } else {
            None
        };
        let mut f = SortFields {
            reply: flags & 1 != 0,
            sent,
            subject: r.string()?,
            from: r.string()?,
            to: r.string()?,
            cc: r.string()?,
            display_from: r.string()?,
            display_to: r.string()?,
            ..SortFields::default()
        };
        if flags & 4 != 0 {
            f.message_id = Some(r.string()?);
        }
        let n = r.u32()? as usize;
        // Each reference takes at least its 4-octet length: no allocation beyond the input.
        if n > r.0.len() / 4 {
            return None;
        }
        f.references = (0..n).map(|_| r.string()).collect::<Option<_>>()?;
        if !r.0.is_empty() {
            return None;
        }
        Some(f)
    }
}

/// The first octet of [`SortFields::to_bytes`]; a change of what is stored or how changes it.
/// 2: keys under i;unicode-casemap with its decomposition (version 1 kept only the upper
/// case, so stored rows of it are parsed again).
const FORMAT_VERSION: u8 = 2;

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// Where the header section ends: after its blank line, or at the end.
fn header_end(data: &[u8]) -> usize {
    if data.starts_with(b"\r\n") {
        return 2;
    }
    if data.starts_with(b"\n") {
        return 1;
    }
    let mut i = 0;
    while let Some(off) = data[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        let rest = &data[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return nl + 3;
        }
        if rest.starts_with(b"\n") {
            return nl + 2;
        }
        i = nl + 1;
    }
    data.len()
}

/// One message as SORT and THREAD see it: its [`SortFields`] (shared, so a cache can hand
/// out the same) and what the mailbox knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortMessage {
    /// Sequence number in the mailbox as the session sees it (the final tie-break).
    pub seq: u32,
    pub uid: u32,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// RFC822.SIZE.
    pub size: u64,
    pub fields: Arc<SortFields>,
}

impl SortMessage {
    /// From the raw header section (or the whole message) and what the mailbox knows.
    pub fn new(header: &[u8], seq: u32, uid: u32, internal_date: i64, size: u64) -> SortMessage {
        Self::with_fields(
            Arc::new(SortFields::parse(header)),
            seq,
            uid,
            internal_date,
            size,
        )
    }

    /// From fields parsed (or stored) before.
    pub fn with_fields(
        fields: Arc<SortFields>,
        seq: u32,
        uid: u32,
        internal_date: i64,
        size: u64,
    ) -> SortMessage {
        SortMessage {
            seq,
            uid,
            internal_date,
            size,
            fields,
        }
    }

    /// The sent date (RFC 5256 §2.2): the Date header, else INTERNALDATE.
    pub fn sent_date(&self) -> i64 {
        self.fields.sent.unwrap_or(self.internal_date)
    }

    /// The number a response names this message by.
    pub fn id(&self, uid: bool) -> u32 {
        if uid {
            self.uid
        } else {
            self.seq
        }
    }
}

/// The messages in the order of the sort program (RFC 5256 §3), as sequence numbers, or as
/// UIDs for UID SORT. Each criterion breaks the ties of the one before; REVERSE reverses its
/// own criterion only; what is still equal at the end is ordered by sequence number.
pub fn sort(msgs: &[SortMessage], criteria: &[SortCriterion], uid: bool) -> Vec<u32> {
    let mut order: Vec<&SortMessage> = msgs.iter().collect();
    order.sort_by(|a, b| compare(a, b, criteria));
    order.into_iter().map(|m| m.id(uid)).collect()
}

fn compare(a: &SortMessage, b: &SortMessage, criteria: &[SortCriterion]) -> Ordering {
    for c in criteria {
        let (fa, fb) = (&a.fields, &b.fields);
        let o = match c.key {
            SortKey::Arrival => a.internal_date.cmp(&b.internal_date),
            SortKey::Date => a.sent_date().cmp(&b.sent_date()),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Subject => fa.subject.cmp(&fb.subject),
            SortKey::From => fa.from.cmp(&fb.from),
            SortKey::To => fa.to.cmp(&fb.to),
            SortKey::Cc => fa.cc.cmp(&fb.cc),
            SortKey::DisplayFrom => fa.display_from.cmp(&fb.display_from),
            SortKey::DisplayTo => fa.display_to.cmp(&fb.display_to),
        };
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.seq.cmp(&b.seq)
}

/// `* SORT n n n` (RFC 5256 §4 `sort-data`); `* SORT` when nothing matched.
/// `* SORT n...` as a [`Response`](super::response::Response) for the encoder.
pub fn sort_data(sorted: &[u32]) -> super::response::Response {
    use super::response::{Response, Value};
    Response::data(
        "SORT",
        sorted.iter().map(|n| Value::Atom(n.to_string())).collect(),
    )
}

/// The ESEARCH response to `SORT RETURN (...)` (RFC 5267 §3.2, §4.4) as typed values: `sorted`
/// is the whole sorted result. MIN and MAX are the first and the last in sort order, ALL keeps
/// the order, COUNT counts all; `RETURN ()` means ALL (RFC 4731 §3.1; UPDATE alone does not). An empty result has no
/// MIN, MAX or ALL, and `PARTIAL (range NIL)`. SAVE (RFC 5182) is the server's to act on: it
/// changes nothing here.
pub fn esort_data(
    tag: &str,
    uid: bool,
    ret: &SearchReturn,
    sorted: &[u32],
) -> super::response::Response {
    use super::response::{Response, Value};
    let atom = |a: &str| Value::Atom(a.to_string());
    // The correlator, always quoted (RFC 4731 §3.1).
    let mut data = vec![Value::List(vec![
        atom("TAG"),
        Value::Quoted(tag.as_bytes().to_vec()),
    ])];
    if uid {
        data.push(atom("UID"));
    }
    if ret.min {
        if let Some(&m) = sorted.first() {
            data.extend([atom("MIN"), Value::num(m)]);
        }
    }
    if ret.max {
        if let Some(&m) = sorted.last() {
            data.extend([atom("MAX"), Value::num(m)]);
        }
    }
    if ret.count {
        data.extend([atom("COUNT"), Value::num(sorted.len() as u64)]);
    }
    let all = ret.all || !(ret.min || ret.max || ret.count || ret.update || ret.partial.is_some());
    if all && !sorted.is_empty() {
        data.extend([atom("ALL"), Value::Atom(sequence_list(sorted))]);
    }
    if let Some(range) = ret.partial {
        let part = range.slice(sorted);
        let list = if part.is_empty() {
            Value::Nil
        } else {
            Value::Atom(sequence_list(part))
        };
        data.extend([
            atom("PARTIAL"),
            Value::List(vec![Value::Atom(range.to_string()), list]),
        ]);
    }
    Response::data("ESEARCH", data)
}

pub fn sort_response(sorted: &[u32]) -> String {
    let mut line = String::from("* SORT");
    for n in sorted {
        line.push(' ');
        line.push_str(&n.to_string());
    }
    line
}

/// The numbers in the order given, each run of consecutive ascending numbers as `a:b`:
/// `5,3:4,2,1`. This is how ESORT writes ALL and PARTIAL results (RFC 5267 §3.2: a
/// sequence-set that keeps the sort order).
pub fn sequence_list(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && end.checked_add(1) == Some(nums[i + 1]) {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&start.to_string());
        if end != start {
            out.push(':');
            out.push_str(&end.to_string());
        }
        i += 1;
    }
    out
}

/// One ADDTO or REMOVEFROM pair of a context update (RFC 5267 §4.3.3, §4.3.4): messages (UIDs
/// or sequence numbers, as the context's command named them) at successive context positions
/// from `position`. A SEARCH context has no order: its position is 0 and its messages are
/// written as an ascending set; a SORT context's position is 1-based and its messages keep
/// their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRun {
    pub position: u32,
    pub messages: Vec<u32>,
}

/// `* ESEARCH (TAG "t") [UID] [REMOVEFROM (pos set ...)] [ADDTO (pos set ...)]`: the change of
/// an updating search or sort (RFC 5267 §4.3). The client applies the pairs in the order
/// written (§4.3.2), so the removals go first, each position counted after the ones before
/// it were applied. `None` when there is nothing to say.
pub fn context_update(
    tag: &str,
    uid: bool,
    removed: &[ContextRun],
    added: &[ContextRun],
) -> Option<super::response::Response> {
    use super::response::{Response, Value};
    if removed.iter().chain(added).all(|r| r.messages.is_empty()) {
        return None;
    }
    let atom = |a: &str| Value::Atom(a.to_string());
    let mut data = vec![Value::List(vec![
        atom("TAG"),
        Value::Quoted(tag.as_bytes().to_vec()),
    ])];
    if uid {
        data.push(atom("UID"));
    }
    let pairs = |runs: &[ContextRun]| {
        let mut v = Vec::new();
        for r in runs.iter().filter(|r| !r.messages.is_empty()) {
            let mut msgs = r.messages.clone();
            if r.position == 0 {
                msgs.sort_unstable();
                msgs.dedup();
            }
            v.push(Value::num(r.position));
            v.push(Value::Atom(sequence_list(&msgs)));
        }
        Value::List(v)
    };
    if removed.iter().any(|r| !r.messages.is_empty()) {
        data.extend([atom("REMOVEFROM"), pairs(removed)]);
    }
    if added.iter().any(|r| !r.messages.is_empty()) {
        data.extend([atom("ADDTO"), pairs(added)]);
    }
    Some(Response::data("ESEARCH", data))
}

/// [`esort_data`] as the line the client reads, without its CRLF (for tests and tools).
pub fn esort_response(tag: &str, uid: bool, ret: &SearchReturn, sorted: &[u32]) -> String {
    let bytes = esort_data(tag, uid, ret, sorted).to_bytes();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

// ------------------------------------------------------------------ keys

/// The collation key of a string under i;unicode-casemap (RFC 5051 §2, which RFC 5256 §7
/// names for SORT and THREAD): each character mapped to its title case, then fully
/// decomposed (Unicode's compatibility decomposition, NFKD), so that comparing keys octet by
/// octet compares case-insensitively and an accented letter sorts with its base letter
/// (`É` as `E` followed by a combining acute, before `F`). For ASCII it is i;ascii-casemap.
///
/// Title case is taken as the simple upper-case mapping, which is the same for every
/// character but the four Latin digraphs with a title-case form of their own (`ǅ`, `ǈ`,
/// `ǋ`, `ǲ`), mapped here by hand.
pub fn casemap(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    // Mapped again after the decomposition: a compatibility decomposition can give lower-case
    // letters (the ligature `ﬁ` is `f`, `i`), which must compare as their capitals.
    s.chars().map(title_case).nfkd().map(title_case).collect()
}

/// One character's simple title case (see [`casemap`]).
fn title_case(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    match c {
        '\u{01C4}'..='\u{01C6}' => '\u{01C5}',
        '\u{01C7}'..='\u{01C9}' => '\u{01C8}',
        '\u{01CA}'..='\u{01CC}' => '\u{01CB}',
        '\u{01F1}'..='\u{01F3}' => '\u{01F2}',
        _ => {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        }
    }
}

/// A header value as text: RFC 2047 words decoded, blanks collapsed.
fn decoded(value: &[u8]) -> String {
    header_text(value).unwrap_or_else(|| String::from_utf8_lossy(value).into_owned())
}

/// The base subject of a Subject field value (RFC 5256 §2.1), case-mapped, and whether it
/// marked a reply or forward (a subj-refwd leader, a `(fwd)` trailer or a `[fwd: ...]`
/// wrapper was removed; RFC 5256 §3, REFERENCES step 5).
///
/// The steps work on the case-mapped text, so `re`, `RE` and `Re` all match.
pub fn base_subject(value: &[u8]) -> (String, bool) {
    // (1) RFC 2047 words to UTF-8; tabs, line breaks and runs of blanks to one space.
    let mapped = casemap(&decoded(value));
    let mut s = String::with_capacity(mapped.len());
    let mut blank = false;
    for c in mapped.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !blank {
                s.push(' ');
            }
            blank = true;
        } else {
            s.push(c);
            blank = false;
        }
    }
    let b = s.as_bytes();
    let (mut start, mut end) = (0, b.len());
    let mut reply = false;
    loop {
        // (2) Trailers: subj-trailer = "(fwd)" / WSP, as often as they match.
        loop {
            if end > start && b[end - 1] == b' ' {
                end -= 1;
            } else if end >= start + 5 && &b[end - 5..end] == b"(FWD)" {
                end -= 5;
                reply = true;
            } else {
                break;
            }
        }
        loop {
            // (3) Leaders: subj-leader = (*subj-blob subj-refwd) / WSP.
            let mut found = false;
            if let Some((n, refwd)) = leader(&b[start..end]) {
                start += n;
                reply |= refwd;
                found = true;
            }
            // (4) A leading subj-blob, unless removing it leaves nothing.
            if let Some(n) = blob(&b[start..end]) {
                if start + n < end {
                    start += n;
                    found = true;
                }
            }
            // (5) Until neither matches.
            if !found {
                break;
            }
        }
        // (6) "[fwd:" ... "]" around the whole: remove both, and again from (2).
        let rest = &b[start..end];
        if rest.starts_with(b"[FWD:") && rest.ends_with(b"]") {
            start += 5;
            end -= 1;
            reply = true;
            continue;
        }
        break;
    }
    // Every cut is next to an ASCII octet, so both ends are character boundaries.
    (s.get(start..end).unwrap_or_default().to_string(), reply)
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP` at the start: its length.
fn blob(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'[') {
        return None;
    }
    let close = b[1..].iter().position(|&c| c == b'[' || c == b']')? + 1;
    if b[close] != b']' {
        return None;
    }
    let mut n = close + 1;
    while b.get(n) == Some(&b' ') {
        n += 1;
    }
    Some(n)
}

/// A subj-leader at the start: its length, and whether it held a subj-refwd (`re:`,
/// `fw:`, `fwd:`, each with an optional blob before the colon, after any number of blobs).
/// A leading blank is a leader by itself (its removal marks no reply).
fn leader(b: &[u8]) -> Option<(usize, bool)> {
    let space = usize::from(b.first() == Some(&b' '));
    let mut i = space;
    while let Some(n) = blob(&b[i..]) {
        i += n;
    }
    let rest = &b[i..];
    let word = if rest.starts_with(b"RE") {
        2
    } else if rest.starts_with(b"FWD") {
        3
    } else if rest.starts_with(b"FW") {
        2
    } else {
        0
    };
    let refwd = word > 0 && {
        i += word;
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        if let Some(n) = blob(&b[i..]) {
            i += n;
        }
        b.get(i) == Some(&b':')
    };
    if refwd {
        Some((i + 1, true))
    } else if space > 0 {
        Some((space, false))
    } else {
        None
    }
}

/// The sent date of a Date field (RFC 5322 §3.3, obsolete forms and a trailing comment
/// included), Unix seconds. The day of the week is not checked (a wrong one is read as
/// Dovecot reads it: ignored). SEARCH's SENTBEFORE/SENTON/SENTSINCE read Date with chrono
/// too (without the weekday leniency, for now).
pub fn parse_sent_date(value: &[u8]) -> Option<i64> {
    let s = String::from_utf8_lossy(value);
    let s = s.trim();
    let parse = |s: &str| chrono::DateTime::parse_from_rfc2822(s).ok();
    parse(s)
        .or_else(|| {
            let (day, rest) = s.split_once(',')?;
            (day.trim().len() == 3).then_some(())?;
            parse(rest.trim_start())
        })
        .map(|d| d.timestamp())
}

/// The first address of an address field, decoded (RFC 2047) as Dovecot reads it: (its
/// addr-mailbox, its display name or else addr-spec), both case-mapped. A group's first
/// entry is the group's name for both, as in ENVELOPE (RFC 9051 §7.5.2).
fn first_address(value: Option<&[u8]>) -> (String, String) {
    let Some(value) = value else {
        return (String::new(), String::new());
    };
    let text = decoded(value);
    let lossy = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let (mailbox, display) = match parse_addresses(text.as_bytes()).into_iter().next() {
        Some(Addr::Mailbox {
            name,
            mailbox,
            host,
            ..
        }) => {
            let mb = lossy(&mailbox);
            let display = match name.filter(|n| !n.is_empty()) {
                Some(n) => lossy(&n),
                None if !host.is_empty() => format!("{mb}@{}", lossy(&host)),
                None => mb.clone(),
            };
            (mb, display)
        }
        Some(Addr::GroupStart(name)) => (lossy(&name), lossy(&name)),
        Some(Addr::GroupEnd) | None => (String::new(), String::new()),
    };
    (casemap(&mailbox), casemap(&display))
}

/// The message IDs in a Message-ID, References or In-Reply-To value, without `<>`, in order:
/// each `<...>` that holds an `@`, blanks and line breaks inside removed (as Dovecot reads
/// them); other text (phrases in In-Reply-To, comments) is skipped. IDs compare
/// case-sensitively (RFC 5256 §3).
pub fn message_ids(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.iter().position(|&b| b == b'>') else {
            break;
        };
        let inner = &rest[..close];
        rest = &rest[close + 1..];
        let id: Vec<u8> = inner
            .iter()
            .copied()
            .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .collect();
        if id.contains(&b'@') && !id.contains(&b'<') {
            out.push(String::from_utf8_lossy(&id).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::command::PartialRange;

    #[test]
    fn unicode_casemap_collation() {
        // RFC 5051: case-insensitive, and an accented letter sorts with its base letter.
        assert_eq!(casemap("hello World"), "HELLO WORLD");
        assert_eq!(casemap("é"), casemap("É"));
        assert_eq!(casemap("É"), "E\u{301}");
        let mut words = vec!["Zebra", "éclair", "Eagle", "fig", "Ångström", "apple"];
        words.sort_by_key(|w| casemap(w));
        assert_eq!(
            words,
            ["apple", "Ångström", "Eagle", "éclair", "fig", "Zebra"]
        );
        // Compatibility forms fold too (the ﬁ ligature is f, i); the digraphs' title case.
        assert_eq!(casemap("ﬁle"), "FILE");
        assert_eq!(casemap("ǆ"), casemap("Ǆ"));
        assert_eq!(casemap("ǆ"), casemap("ǅ"));
        // German ß has no one-character upper case: it stays itself, not "SS".
        assert_eq!(casemap("ß"), "ß");
    }

    #[test]
    fn base_subjects() {
        // (subject, base subject, reply or forward)
        for (subject, base, reply) in [
            ("", "", false),
            ("a", "A", false),
            ("Re: a", "A", true),
            ("RE:a", "A", true),
            ("re : a", "A", true),
            ("Fw: a", "A", true),
            ("FWD: a", "A", true),
            ("Re[2]: a", "A", true),
            ("Re [2]: a", "A", true),
            ("Re: Re: Fwd: a", "A", true),
            ("[list] Re: a", "A", true),
            ("[list] a", "A", false),
            ("[list] [other] a", "A", false),
            ("[xyz]", "[XYZ]", false),
            ("Re: [xyz]", "[XYZ]", true),
            ("a (fwd)", "A", true),
            ("a (FWD)  (fwd) ", "A", true),
            ("a(fwd)", "A", true),
            ("[Fwd: a]", "A", true),
            ("Re: [FWD: c]", "C", true),
            ("[fwd: [fwd: re: [fwd: babylon]]]", "BABYLON", true),
            ("[fwd: a] b", "B", false),
            ("Ad: Re: Ad: Re: Ad: x", "AD: RE: AD: RE: AD: X", false),
            ("Reply: a", "REPLY: A", false),
            ("Re", "RE", false),
            ("Re:", "", true),
            ("  a \t  b  ", "A B", false),
            ("a\r\n b", "A B", false),
            ("_", "_", false),
            ("=?iso-8859-1?q?_?=", "", false),
            ("Re: =?utf-8?q?b?=", "B", true),
            ("=?iso-8859-1?q?RE:_C?=", "C", true),
            ("=?us-ascii?b?UmU6IGM=?=", "C", true),
            ("=?utf-8?q?gr=C3=BC=C3=9Fe?=", "GRU\u{308}ßE", false),
            ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "B", true),
            ("[", "[", false),
            ("[a", "[A", false),
            ("]", "]", false),
            ("re: [", "[", true),
        ] {
            assert_eq!(
                base_subject(subject.as_bytes()),
                (base.to_string(), reply),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn message_id_lists() {
        for (value, want) in [
            ("<a@b>", vec!["a@b"]),
            ("  <a@b> (comment)", vec!["a@b"]),
            ("<a@b> <c@d>\r\n\t<e@f>", vec!["a@b", "c@d", "e@f"]),
            ("<a\r\n @b>", vec!["a@b"]),
            ("<no-at> <x@y>", vec!["x@y"]),
            ("Your message of 1 Jan <x@y>", vec!["x@y"]),
            ("<A@B> <a@b>", vec!["A@B", "a@b"]),
            ("<>", vec![]),
            ("<a@b", vec![]),
            ("", vec![]),
        ] {
            assert_eq!(message_ids(value.as_bytes()), want, "{value:?}");
        }
    }

    #[test]
    fn fields_of_a_header() {
        let f = SortFields::parse(
            b"Subject: Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
              From: \"Doe, Jane\" <Jane.Doe@example.org>, bob@example.org\r\n\
              To: =?iso-8859-1?q?J=F6rg?= <joerg@example.org>\r\n\
              Cc: team: a@example.org, b@example.org;\r\n\
              Date: Fri, 22 Feb 2008 02:00:00 +0200\r\n\
              Message-ID: <m1@example.org>\r\n\
              In-Reply-To: <ignored@example.org>\r\n\
              References: <r1@example.org>\r\n <r2@example.org>\r\n\
              Subject: second subject\r\n\
              \r\n\
              Subject: in the body\r\n",
        );
        assert_eq!(
            f,
            SortFields {
                subject: "GRU\u{308}ßE".into(),
                reply: true,
                sent: Some(1_203_638_400),
                from: "JANE.DOE".into(),
                to: "JOERG".into(),
                cc: "TEAM".into(),
                display_from: "DOE, JANE".into(),
                display_to: "JO\u{308}RG".into(),
                message_id: Some("m1@example.org".into()),
                references: vec!["r1@example.org".into(), "r2@example.org".into()],
            }
        );
        // In-Reply-To when References has no ID; missing fields are empty.
        let f = SortFields::parse(b"In-Reply-To: <x@y> <z@y>\nReferences: none\n\nbody");
        assert_eq!(f.references, vec!["x@y".to_string()]);
        assert_eq!(
            (f.subject.as_str(), f.from.as_str(), f.sent),
            ("", "", None)
        );
        assert_eq!(SortFields::parse(b""), SortFields::default());
        // RFC 5957 §3: no display name gives the addr-spec; a bare word, itself.
        for (to, display) in [
            ("b@c.d", "B@C.D"),
            ("d", "D"),
            ("empty:;", "EMPTY"),
            ("<>", ""),
            ("\"\" <x@y>", "X@Y"),
            ("x@y (Real Name)", "REAL NAME"),
        ] {
            let f = SortFields::parse(format!("To: {to}\r\n\r\n").as_bytes());
            assert_eq!(f.display_to, display, "{to}");
        }
        for (date, want) in [
            ("Sat, 24 Mar 2007 23:00:00 +0200", Some(1_174_770_000)),
            ("24 Mar 2007 23:00:00 +0200", Some(1_174_770_000)),
            ("Sat, 24 Mar 07 23:00 +0200 (EET)", Some(1_174_770_000)),
            ("Sat, 24 Mar 2007 23:00:00 GMT", Some(1_174_777_200)),
            ("Sat, 24 Mar 2007 23:00:00 EST", Some(1_174_795_200)),
            // A wrong day of the week is ignored.
            ("Sun, 24 Mar 2007 23:00:00 +0200", Some(1_174_770_000)),
            ("Sat, 24 Mar 2007 23:00:00", None),
            ("not a date", None),
            ("Sunday, 24 Mar 2007 23:00:00 +0200", None),
        ] {
            let f = SortFields::parse(format!("Date: {date}\r\n\r\n").as_bytes());
            assert_eq!(f.sent, want, "{date}");
        }
    }

    #[test]
    fn stored_form_round_trips() {
        let full = SortFields::parse(
            b"Subject: Fwd: x\r\nFrom: a@b\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\n\
              Message-ID: <1@b>\r\nReferences: <0@b> <00@b>\r\n\r\n",
        );
        for f in [full.clone(), SortFields::default()] {
            let b = f.to_bytes();
            assert_eq!(SortFields::from_bytes(&b), Some(f.clone()));
            // Any truncation or an extra octet is refused, never misread.
            for cut in 0..b.len() {
                assert_eq!(SortFields::from_bytes(&b[..cut]), None, "cut at {cut}");
            }
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(SortFields::from_bytes(&longer), None);
        }
        // Rows of another version (an older casemap) are parsed again, not read.
        for version in [1, FORMAT_VERSION + 1] {
            let mut other = full.to_bytes();
            other[0] = version;
            assert_eq!(SortFields::from_bytes(&other), None, "version {version}");
        }
        // A reference count larger than the data allocates nothing.
        let mut huge = vec![FORMAT_VERSION, 0];
        huge.extend_from_slice(&[0; 6 * 4]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(SortFields::from_bytes(&huge), None);
        huge.truncate(huge.len() - 4);
        huge.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(SortFields::from_bytes(&huge), Some(SortFields::default()));
    }

    fn msg(seq: u32, header: &str, internal_date: i64, size: u64) -> SortMessage {
        SortMessage::new(header.as_bytes(), seq, seq + 100, internal_date, size)
    }

    fn c(reverse: bool, key: SortKey) -> SortCriterion {
        SortCriterion { reverse, key }
    }

    #[test]
    fn sort_programs() {
        use SortKey as K;
        let msgs = [
            msg(
                1,
                "Subject: b\r\nDate: Thu, 1 Jan 2004 00:00:00 +0000\r\nFrom: z@x\r\n\r\n",
                50,
                30,
            ),
            msg(2, "Subject: Re: a\r\nFrom: Y@x\r\nCc: m@x\r\n\r\n", 10, 20),
            msg(
                3,
                "Subject: A\r\nDate: Thu, 1 Jan 2004 00:00:00 +0000\r\n\r\n",
                40,
                20,
            ),
            msg(
                4,
                "Subject: b\r\nDate: garbage\r\nFrom: y@x\r\n\r\n",
                30,
                10,
            ),
        ];
        for (criteria, want) in [
            (vec![c(false, K::Arrival)], vec![2, 4, 3, 1]),
            (vec![c(true, K::Arrival)], vec![1, 3, 4, 2]),
            // No Date, or one that does not parse: INTERNALDATE (RFC 5256 §2.2).
            (vec![c(false, K::Date)], vec![2, 4, 1, 3]),
            (vec![c(false, K::Size)], vec![4, 2, 3, 1]),
            // Ties by sequence number, ascending, even under REVERSE.
            (vec![c(true, K::Size)], vec![1, 2, 3, 4]),
            (vec![c(false, K::Subject)], vec![2, 3, 1, 4]),
            (vec![c(true, K::Subject)], vec![1, 4, 2, 3]),
            (
                vec![c(false, K::Subject), c(true, K::Arrival)],
                vec![3, 2, 1, 4],
            ),
            // A missing field is the empty string and sorts first; case does not count.
            (vec![c(false, K::From)], vec![3, 2, 4, 1]),
            (vec![c(false, K::Cc), c(false, K::Size)], vec![4, 3, 1, 2]),
            (vec![], vec![1, 2, 3, 4]),
        ] {
            assert_eq!(sort(&msgs, &criteria, false), want, "{criteria:?}");
            let uids: Vec<u32> = want.iter().map(|s| s + 100).collect();
            assert_eq!(sort(&msgs, &criteria, true), uids, "UID SORT {criteria:?}");
        }
        assert_eq!(sort(&[], &[c(false, K::Date)], false), Vec::<u32>::new());
    }

    #[test]
    fn responses() {
        assert_eq!(sort_response(&[3, 1, 2]), "* SORT 3 1 2");
        assert_eq!(sort_response(&[]), "* SORT");
        for (nums, want) in [
            (&[][..], ""),
            (&[1], "1"),
            (&[1, 2, 3, 4, 5], "1:5"),
            (&[5, 3, 4, 2, 1], "5,3:4,2,1"),
            (&[2, 4, 5], "2,4:5"),
            (&[u32::MAX, 1], "4294967295,1"),
            (&[4294967294, u32::MAX], "4294967294:4294967295"),
        ] {
            assert_eq!(sequence_list(nums), want, "{nums:?}");
        }
        let r = |f: fn(&mut SearchReturn)| {
            let mut r = SearchReturn::default();
            f(&mut r);
            r
        };
        let sorted = [5, 3, 4, 2, 1];
        for (ret, uid, want) in [
            (r(|r| r.min = true), false, "* ESEARCH (TAG \"t\") MIN 5"),
            (r(|r| r.max = true), true, "* ESEARCH (TAG \"t\") UID MAX 1"),
            (
                r(|r| r.count = true),
                false,
                "* ESEARCH (TAG \"t\") COUNT 5",
            ),
            (r(|_| {}), false, "* ESEARCH (TAG \"t\") ALL 5,3:4,2,1"),
            (
                r(|r| {
                    r.min = true;
                    r.max = true;
                    r.count = true;
                    r.all = true
                }),
                false,
                "* ESEARCH (TAG \"t\") MIN 5 MAX 1 COUNT 5 ALL 5,3:4,2,1",
            ),
            (
                r(|r| r.partial = Some(PartialRange::First(2, 4))),
                false,
                "* ESEARCH (TAG \"t\") PARTIAL (2:4 3:4,2)",
            ),
            (
                r(|r| r.partial = Some(PartialRange::First(6, 9))),
                false,
                "* ESEARCH (TAG \"t\") PARTIAL (6:9 NIL)",
            ),
            (
                r(|r| r.partial = Some(PartialRange::Last(1, 2))),
                true,
                "* ESEARCH (TAG \"t\") UID PARTIAL (-1:-2 2,1)",
            ),
        ] {
            assert_eq!(esort_response("t", uid, &ret, &sorted), want);
        }
        // Nothing matched: no MIN, MAX or ALL; COUNT 0.
        let all = r(|r| {
            r.min = true;
            r.max = true;
            r.count = true;
            r.all = true
        });
        assert_eq!(
            esort_response("t", false, &all, &[]),
            "* ESEARCH (TAG \"t\") COUNT 0"
        );
        assert_eq!(
            esort_response("t", false, &r(|_| {}), &[]),
            "* ESEARCH (TAG \"t\")"
        );
    }

    #[test]
    fn context_updates() {
        let line = |r: Option<crate::imap::response::Response>| {
            r.map(|r| {
                String::from_utf8_lossy(&r.to_bytes())
                    .trim_end()
                    .to_string()
            })
        };
        let run = |position, messages: &[u32]| ContextRun {
            position,
            messages: messages.to_vec(),
        };
        // SEARCH: position 0, ascending sets, REMOVEFROM before ADDTO.
        assert_eq!(
            line(context_update(
                "a1",
                false,
                &[run(0, &[4, 2, 1])],
                &[run(0, &[7])]
            ))
            .as_deref(),
            Some("* ESEARCH (TAG \"a1\") REMOVEFROM (0 1:2,4) ADDTO (0 7)")
        );
        // SORT: positions, order kept, several pairs.
        assert_eq!(
            line(context_update(
                "s",
                true,
                &[],
                &[run(1, &[9, 3]), run(5, &[4, 5])]
            ))
            .as_deref(),
            Some("* ESEARCH (TAG \"s\") UID ADDTO (1 9,3 5 4:5)")
        );
        assert_eq!(line(context_update("a", true, &[run(0, &[])], &[])), None);
    }
}
