//! MIME structure of a message for IMAP (RFC 9051 §7.5.2 ENVELOPE, BODY, BODYSTRUCTURE and
//! BODY[section]), from RFC 5322 headers and RFC 2045/2046 bodies.
//!
//! [`Mime::parse`] walks a message once and records, for every part, the octet ranges of its
//! header and body plus the fields IMAP reports; the ENVELOPE/BODY/BODYSTRUCTURE responses are
//! rendered at the same time. The server caches the result per stored message, so a FETCH
//! never re-parses. Header values in ENVELOPE are sent raw (encoded-words stay encoded), as
//! RFC 9051 §7.5.2 requires, which is one reason this parser keeps exact offsets instead of
//! decoding like a display-oriented MIME library.
//!
//! Limits: parts nest at most [`MAX_DEPTH`] deep and a message has at most [`MAX_PARTS`]
//! parts; deeper or further content is treated as opaque body octets.

use std::ops::Range;

use super::encode::push_nstring;

pub const MAX_DEPTH: usize = 20;
pub const MAX_PARTS: usize = 2000;

/// One MIME entity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Part {
    /// The header block, including the blank line that ends it.
    pub header: Range<usize>,
    pub body: Range<usize>,
    /// Lower-case media type and subtype.
    pub mtype: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
    pub id: Option<Vec<u8>>,
    pub description: Option<Vec<u8>>,
    pub encoding: Option<Vec<u8>>,
    pub md5: Option<Vec<u8>>,
    pub disposition: Option<(String, Vec<(String, String)>)>,
    pub language: Option<Vec<u8>>,
    pub location: Option<Vec<u8>>,
    pub lines: u64,
    pub children: Vec<Part>,
    /// The embedded message of a message/rfc822 part.
    pub message: Option<Box<Part>>,
}

/// The parsed structure of one message, with its rendered responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mime {
    pub root: Part,
    pub envelope: Vec<u8>,
    pub body: Vec<u8>,
    pub bodystructure: Vec<u8>,
}

impl Mime {
    pub fn parse(data: &[u8]) -> Mime {
        let mut count = 0;
        let root = entity(data, 0..data.len(), 0, false, &mut count);
        let envelope = envelope(data, &root.header);
        let mut body = Vec::new();
        bodystructure(data, &root, false, &mut body);
        let mut bodystructure_ext = Vec::new();
        bodystructure(data, &root, true, &mut bodystructure_ext);
        Mime {
            root,
            envelope,
            body,
            bodystructure: bodystructure_ext,
        }
    }

    /// The part a section's part numbers name (RFC 9051 §6.4.5).
    ///
    /// A part that is not multipart has a part 1: itself (§6.4.5: "non-multipart [MIME-IMB]
    /// messages ... only have a part 1"; for a non-multipart part inside a multipart, as
    /// Dovecot, `1.1` is `1`). The path may go on below it only if it is a message/rfc822:
    /// `1.1.1` of a text part inside a multipart, and `2.1.1` of a message/rfc822 part whose
    /// body is one text part, name nothing, as in Dovecot (the reference).
    pub fn part(&self, path: &[u32]) -> Option<&Part> {
        let mut cur = &self.root;
        for (i, &n) in path.iter().enumerate() {
            let container: &Part = match (&cur.message, i) {
                (Some(m), i) if i > 0 => m,
                _ => cur,
            };
            // A part that is not multipart has only part 1, itself; a path may go on below
            // it only if it is a message/rfc822, whose numbers name the encapsulated
            // message's parts (RFC 9051 §6.4.5; so `1.1` of a text part is that part, and
            // `1.1.1` names nothing, as Dovecot answers).
            let last = i + 1 == path.len();
            cur = if !container.children.is_empty() {
                container.children.get((n as usize).checked_sub(1)?)?
            } else if n == 1 && (last || container.message.is_some()) {
                container
            } else {
                return None;
            };
        }
        Some(cur)
    }

    /// The octets of a BODY[section] (before any partial range); `None` if the part does not
    /// exist.
    pub fn section(&self, data: &[u8], section: &super::Section) -> Option<Vec<u8>> {
        use super::SectionText as T;
        let part = self.part(&section.part)?;
        // For HEADER/TEXT on a part, the part must be a message/rfc822 (RFC 9051 §6.4.5).
        let msg: Option<&Part> = if section.part.is_empty() {
            Some(part)
        } else {
            part.message.as_deref()
        };
        let get = |r: &Range<usize>| data.get(r.clone()).unwrap_or_default().to_vec();
        Some(match &section.text {
            None if section.part.is_empty() => data.to_vec(),
            None => get(&part.body),
            Some(T::Mime) => get(&part.header),
            Some(T::Header) => msg.map(|m| get(&m.header)).unwrap_or_default(),
            Some(T::Text) => msg.map(|m| get(&m.body)).unwrap_or_default(),
            Some(T::HeaderFields(f)) => msg
                .map(|m| filter_fields(data, &m.header, f, true))
                .unwrap_or_default(),
            Some(T::HeaderFieldsNot(f)) => msg
                .map(|m| filter_fields(data, &m.header, f, false))
                .unwrap_or_default(),
        })
    }
}

/// The octets a partial fetch `<origin.count>` takes from a section of `len` octets
/// (RFC 9051 §6.4.5): at most `count` octets from `origin`; an origin at or past the end gives
/// an empty range at the end. Always within `0..len`.
pub fn partial_range(len: usize, partial: Option<(u32, u32)>) -> Range<usize> {
    match partial {
        None => 0..len,
        Some((o, n)) => {
            let o = (o as usize).min(len);
            let e = o.saturating_add(n as usize).min(len);
            o..e
        }
    }
}

fn entity(data: &[u8], range: Range<usize>, depth: usize, digest: bool, count: &mut usize) -> Part {
    *count += 1;
    let (header, body) = split_header(data, range);
    let mut p = Part {
        header: header.clone(),
        body: body.clone(),
        ..Part::default()
    };
    let fields = fields(data, &header);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let ct = field("Content-Type").and_then(|v| parse_content_type(&v));
    let (mtype, subtype, params) = match ct {
        Some(x) => x,
        None if digest => ("message".into(), "rfc822".into(), Vec::new()),
        None => (
            "text".into(),
            "plain".into(),
            vec![("charset".into(), "us-ascii".into())],
        ),
    };
    p.mtype = mtype;
    p.subtype = subtype;
    p.params = params;
    p.id = field("Content-ID").map(|v| trim(&v).to_vec());
    p.description = field("Content-Description").map(|v| trim(&v).to_vec());
    p.encoding = field("Content-Transfer-Encoding").map(|v| trim(&v).to_vec());
    p.md5 = field("Content-MD5").map(|v| trim(&v).to_vec());
    p.language = field("Content-Language").map(|v| trim(&v).to_vec());
    p.location = field("Content-Location").map(|v| trim(&v).to_vec());
    p.disposition = field("Content-Disposition").and_then(|v| {
        let s = String::from_utf8_lossy(&v).into_owned();
        let mut it = s.split(';');
        let kind = it.next()?.trim().to_string();
        if kind.is_empty() {
            return None;
        }
        Some((
            kind,
            parse_params(it.collect::<Vec<_>>().join(";").as_str()),
        ))
    });
    let b = data.get(body.clone()).unwrap_or_default();
    p.lines = b.iter().filter(|&&c| c == b'\n').count() as u64
        + u64::from(!b.is_empty() && b.last() != Some(&b'\n'));
    if depth >= MAX_DEPTH || *count >= MAX_PARTS {
        return p;
    }
    if p.mtype == "multipart" {
        let boundary = p
            .params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
            .map(|(_, v)| v.clone());
        if let Some(boundary) = boundary.filter(|b| !b.is_empty()) {
            let is_digest = p.subtype == "digest";
            for r in split_multipart(data, body, boundary.as_bytes()) {
                if *count >= MAX_PARTS {
                    break;
                }
                p.children
                    .push(entity(data, r, depth + 1, is_digest, count));
            }
        }
        if p.children.is_empty() {
            // RFC 9051 §7.5.2 needs at least one body part in a multipart; a broken one
            // becomes an empty text/plain part.
            p.children.push(Part {
                header: p.body.start..p.body.start,
                body: p.body.start..p.body.start,
                mtype: "text".into(),
                subtype: "plain".into(),
                params: vec![("charset".into(), "us-ascii".into())],
                ..Part::default()
            });
        }
    } else if p.mtype == "message" && (p.subtype == "rfc822" || p.subtype == "global") {
        p.message = Some(Box::new(entity(
            data,
            p.body.clone(),
            depth + 1,
            false,
            count,
        )));
    }
    p
}

/// Splits a range into its header block (blank line included) and body.
pub fn split_header(data: &[u8], range: Range<usize>) -> (Range<usize>, Range<usize>) {
    let s = data.get(range.clone()).unwrap_or_default();
    // A part that starts with its blank line has an empty header.
    if s.starts_with(b"\r\n") {
        return (range.start..range.start + 2, range.start + 2..range.end);
    }
    if s.starts_with(b"\n") {
        return (range.start..range.start + 1, range.start + 1..range.end);
    }
    let mut i = 0;
    while let Some(off) = s[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        let rest = &s[nl + 1..];
        if rest.starts_with(b"\r\n") {
            let end = range.start + nl + 3;
            return (range.start..end, end..range.end);
        }
        if rest.starts_with(b"\n") {
            let end = range.start + nl + 2;
            return (range.start..end, end..range.end);
        }
        i = nl + 1;
    }
    (range.clone(), range.end..range.end)
}

/// Header fields (name, unfolded value without leading blanks) in order.
pub fn fields(data: &[u8], header: &Range<usize>) -> Vec<(String, Vec<u8>)> {
    raw_fields(data, header)
        .into_iter()
        .map(|(name, raw)| {
            let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
            let value = raw.get(colon + 1..).unwrap_or_default();
            let mut v: Vec<u8> = value
                .iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect();
            let lead = v.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
            v.drain(..lead);
            (name, v)
        })
        .collect()
}

/// Header fields as raw octets, folding and line ends included.
fn raw_fields<'a>(data: &'a [u8], header: &Range<usize>) -> Vec<(String, &'a [u8])> {
    let s = data.get(header.clone()).unwrap_or_default();
    let mut out: Vec<(String, &[u8])> = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < s.len() {
        let end = s[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(s.len(), |p| i + p + 1);
        let line = &s[i..end];
        let is_blank = line == b"\r\n" || line == b"\n";
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            if let Some(st) = start.take() {
                push_field(&mut out, &s[st..i]);
            }
            if !is_blank {
                start = Some(i);
            }
        }
        i = end;
    }
    if let Some(st) = start {
        push_field(&mut out, &s[st..]);
    }
    out
}

fn push_field<'a>(out: &mut Vec<(String, &'a [u8])>, raw: &'a [u8]) {
    if let Some(colon) = raw.iter().position(|&b| b == b':') {
        let name = String::from_utf8_lossy(&raw[..colon]).trim().to_string();
        if !name.is_empty() {
            out.push((name, raw));
        }
    }
}

/// The values of every field called `name`.
pub fn header_values(data: &[u8], header: &Range<usize>, name: &str) -> Vec<Vec<u8>> {
    fields(data, header)
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

/// HEADER.FIELDS / HEADER.FIELDS.NOT: the chosen fields as sent, then a blank line.
fn filter_fields(data: &[u8], header: &Range<usize>, names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, raw) in raw_fields(data, header) {
        if names.iter().any(|n| n.eq_ignore_ascii_case(&name)) == keep {
            out.extend_from_slice(raw);
            if !raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(s, |p| p + 1);
    &v[s..e.max(s)]
}

/// `type/subtype; a=b; c="d"` (RFC 2045 §5.1) without comments.
/// (type, subtype, parameters).
type ContentType = (String, String, Vec<(String, String)>);

fn parse_content_type(v: &[u8]) -> Option<ContentType> {
    let s = String::from_utf8_lossy(v).into_owned();
    let s = strip_comments(&s);
    let (ty, rest) = match s.split_once(';') {
        Some((a, b)) => (a, b),
        None => (s.as_str(), ""),
    };
    let (t, st) = ty.trim().split_once('/')?;
    let (t, st) = (
        t.trim().to_ascii_lowercase(),
        st.trim().to_ascii_lowercase(),
    );
    let token = |x: &str| !x.is_empty() && x.bytes().all(|b| b > 0x20 && b < 0x7f);
    if !token(&t) || !token(&st) {
        return None;
    }
    Some((t, st, parse_params(rest)))
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let (mut depth, mut quoted, mut esc) = (0usize, false, false);
    for c in s.chars() {
        if esc {
            esc = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                esc = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// `; a=b; c="d"` parameters; names lower-cased, quotes removed.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b';' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b';' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut bytes = Vec::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                bytes.push(b[i]);
                i += 1;
            }
            i += 1;
            val = String::from_utf8_lossy(&bytes).into_owned();
        } else {
            let vs = i;
            while i < b.len() && b[i] != b';' {
                i += 1;
            }
            val.push_str(s[vs..i].trim());
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

/// Body part ranges between `--boundary` delimiter lines (RFC 2046 §5.1.1). The CRLF before
/// a delimiter belongs to the delimiter.
fn split_multipart(data: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut i = body.start;
    while i < body.end {
        let eol = data[i..body.end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.end, |p| i + p + 1);
        let line = &data[i..eol];
        if line.starts_with(&delim) {
            let rest = trim(&line[delim.len()..]);
            let close = rest == b"--";
            if rest.is_empty() || close {
                if let Some(st) = current.take() {
                    let mut end = i;
                    if end > st && data[end - 1] == b'\n' {
                        end -= 1;
                        if end > st && data[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    parts.push(st..end.max(st));
                }
                if close {
                    return parts;
                }
                current = Some(eol);
            }
        }
        i = eol;
    }
    if let Some(st) = current {
        parts.push(st..body.end);
    }
    parts
}

fn push_upper(out: &mut Vec<u8>, s: &str) {
    push_nstring(out, Some(s.to_ascii_uppercase().as_bytes()));
}

fn push_params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        push_upper(out, k);
        out.push(b' ');
        push_nstring(out, Some(v.as_bytes()));
    }
    out.push(b')');
}

fn push_ext_tail(out: &mut Vec<u8>, p: &Part) {
    out.push(b' ');
    match &p.disposition {
        None => out.extend_from_slice(b"NIL"),
        Some((kind, params)) => {
            out.push(b'(');
            push_nstring(out, Some(kind.as_bytes()));
            out.push(b' ');
            push_params(out, params);
            out.push(b')');
        }
    }
    out.push(b' ');
    push_nstring(out, p.language.as_deref());
    out.push(b' ');
    push_nstring(out, p.location.as_deref());
}

/// BODY (ext = false) or BODYSTRUCTURE (ext = true) of a part (RFC 9051 §7.5.2).
fn bodystructure(data: &[u8], p: &Part, ext: bool, out: &mut Vec<u8>) {
    out.push(b'(');
    if p.mtype == "multipart" {
        for c in &p.children {
            bodystructure(data, c, ext, out);
        }
        out.push(b' ');
        push_upper(out, &p.subtype);
        if ext {
            out.push(b' ');
            push_params(out, &p.params);
            push_ext_tail(out, p);
        }
        out.push(b')');
        return;
    }
    push_upper(out, &p.mtype);
    out.push(b' ');
    push_upper(out, &p.subtype);
    out.push(b' ');
    push_params(out, &p.params);
    out.push(b' ');
    push_nstring(out, p.id.as_deref());
    out.push(b' ');
    push_nstring(out, p.description.as_deref());
    out.push(b' ');
    match &p.encoding {
        Some(e) => push_nstring(out, Some(e.to_ascii_uppercase().as_slice())),
        None => out.extend_from_slice(b"\"7BIT\""),
    }
    out.extend_from_slice(format!(" {}", p.body.len()).as_bytes());
    if let Some(m) = &p.message {
        out.push(b' ');
        out.extend_from_slice(&envelope(data, &m.header));
        out.push(b' ');
        bodystructure(data, m, ext, out);
        out.extend_from_slice(format!(" {}", p.lines).as_bytes());
    } else if p.mtype == "text" {
        out.extend_from_slice(format!(" {}", p.lines).as_bytes());
    }
    if ext {
        out.push(b' ');
        push_nstring(out, p.md5.as_deref());
        push_ext_tail(out, p);
    }
    out.push(b')');
}

/// ENVELOPE (RFC 9051 §7.5.2): date, subject, from, sender, reply-to, to, cc, bcc,
/// in-reply-to, message-id; sender and reply-to default to from.
pub fn envelope(data: &[u8], header: &Range<usize>) -> Vec<u8> {
    let f = fields(data, header);
    let get = |name: &str| {
        f.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut out = b"(".to_vec();
    push_nstring(&mut out, get("Date").as_deref().map(trim));
    out.push(b' ');
    push_nstring(&mut out, get("Subject").as_deref().map(trim));
    let from = get("From");
    for (name, fallback) in [
        ("From", None),
        ("Sender", from.as_ref()),
        ("Reply-To", from.as_ref()),
        ("To", None),
        ("Cc", None),
        ("Bcc", None),
    ] {
        out.push(b' ');
        let v = get(name)
            .filter(|v| !trim(v).is_empty())
            .or(fallback.cloned());
        push_addresses(&mut out, v.as_deref());
    }
    out.push(b' ');
    push_nstring(&mut out, get("In-Reply-To").as_deref().map(trim));
    out.push(b' ');
    push_nstring(&mut out, get("Message-ID").as_deref().map(trim));
    out.push(b')');
    out
}

/// One address of an address list, or a group marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Mailbox {
        name: Option<Vec<u8>>,
        route: Option<Vec<u8>>,
        mailbox: Vec<u8>,
        host: Vec<u8>,
    },
    GroupStart(Vec<u8>),
    GroupEnd,
}

fn push_addresses(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let addrs = v.map(parse_addresses).unwrap_or_default();
    if addrs.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in addrs {
        out.push(b'(');
        match a {
            Addr::Mailbox {
                name,
                route,
                mailbox,
                host,
            } => {
                push_nstring(out, name.as_deref());
                out.push(b' ');
                push_nstring(out, route.as_deref());
                out.push(b' ');
                push_nstring(out, Some(&mailbox));
                out.push(b' ');
                push_nstring(out, Some(&host));
            }
            Addr::GroupStart(name) => {
                out.extend_from_slice(b"NIL NIL ");
                push_nstring(out, Some(&name));
                out.extend_from_slice(b" NIL");
            }
            Addr::GroupEnd => out.extend_from_slice(b"NIL NIL NIL NIL"),
        }
        out.push(b')');
    }
    out.push(b')');
}

/// An RFC 5322 §3.4 address list, leniently.
pub fn parse_addresses(v: &[u8]) -> Vec<Addr> {
    let mut out = Vec::new();
    let mut item: Vec<u8> = Vec::new();
    // The text of the item's comments: `user@domain (Real Name)` names the mailbox "Real Name"
    // when there is no display name (as Dovecot and most clients read it).
    let mut note: Vec<u8> = Vec::new();
    let (mut quoted, mut esc, mut angle, mut comment) = (false, false, false, 0usize);
    let mut in_group = false;
    for &c in v {
        if esc {
            esc = false;
            if comment > 0 {
                note.push(c);
            } else {
                item.push(c);
            }
            continue;
        }
        if comment > 0 {
            match c {
                b'(' => {
                    comment += 1;
                    note.push(c);
                }
                b')' => {
                    comment -= 1;
                    if comment > 0 {
                        note.push(c);
                    } else {
                        note.push(b' ');
                    }
                }
                b'\\' => esc = true,
                _ => note.push(c),
            }
            continue;
        }
        match c {
            b'\\' if quoted => {
                esc = true;
                item.push(c);
            }
            b'"' => {
                quoted = !quoted;
                item.push(c);
            }
            b'(' if !quoted => comment = 1,
            b'<' if !quoted => {
                angle = true;
                item.push(c);
            }
            b'>' if !quoted => {
                angle = false;
                item.push(c);
            }
            b':' if !quoted && !angle && !in_group => {
                in_group = true;
                out.push(Addr::GroupStart(unquote(trim(&item))));
                item.clear();
                note.clear();
            }
            b',' if !quoted && !angle => {
                finish_item(&mut out, &item, &note);
                item.clear();
                note.clear();
            }
            b';' if !quoted && !angle && in_group => {
                finish_item(&mut out, &item, &note);
                item.clear();
                note.clear();
                out.push(Addr::GroupEnd);
                in_group = false;
            }
            _ => item.push(c),
        }
    }
    finish_item(&mut out, &item, &note);
    if in_group {
        out.push(Addr::GroupEnd);
    }
    out
}

fn unquote(s: &[u8]) -> Vec<u8> {
    let s = trim(s);
    if s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"' {
        let mut out = Vec::new();
        let mut esc = false;
        for &c in &s[1..s.len() - 1] {
            if !esc && c == b'\\' {
                esc = true;
                continue;
            }
            esc = false;
            out.push(c);
        }
        out
    } else {
        s.to_vec()
    }
}

fn finish_item(out: &mut Vec<Addr>, item: &[u8], note: &[u8]) {
    let item = trim(item);
    if item.is_empty() {
        return;
    }
    let note = trim(note);
    let (name, mut spec) = match (
        item.iter().rposition(|&b| b == b'<'),
        item.iter().rposition(|&b| b == b'>'),
    ) {
        (Some(l), Some(r)) if l < r => {
            let n = unquote(&item[..l]);
            ((!n.is_empty()).then_some(n), trim(&item[l + 1..r]).to_vec())
        }
        _ => (None, item.to_vec()),
    };
    let name = name.or_else(|| (!note.is_empty()).then(|| note.to_vec()));
    let mut route = None;
    // Obsolete source route "@a,@b:user@host" (RFC 5322 §4.4).
    if spec.first() == Some(&b'@') {
        if let Some(colon) = spec.iter().position(|&b| b == b':') {
            route = Some(spec[..colon].to_vec());
            spec = spec[colon + 1..].to_vec();
        }
    }
    // Blanks left where comments were (`user (c)@ (c) domain`) are not part of the address.
    let (mailbox, host) = match spec.iter().rposition(|&b| b == b'@') {
        Some(at) => (unquote(&spec[..at]), trim(&spec[at + 1..]).to_vec()),
        None => (unquote(&spec), Vec::new()),
    };
    out.push(Addr::Mailbox {
        name,
        route,
        mailbox,
        host,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::{Section, SectionText};

    const SIMPLE: &[u8] = b"From: \"Alice A.\" <alice@example.test>\r\nTo: bob@example.test, Carol <carol@example.test>\r\nSubject: Hello\r\n world\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nline one\r\nline two\r\n";

    const MULTI: &[u8] = b"From: a@x\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--XX\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\r\nQUJD\r\n--XX--\r\nepilogue\r\n";

    #[test]
    fn simple_message() {
        let m = Mime::parse(SIMPLE);
        let env = String::from_utf8(m.envelope.clone()).unwrap();
        assert_eq!(
            env,
            "(\"Mon, 1 Jan 2024 10:00:00 +0000\" \"Hello world\" ((\"Alice A.\" NIL \"alice\" \"example.test\")) ((\"Alice A.\" NIL \"alice\" \"example.test\")) ((\"Alice A.\" NIL \"alice\" \"example.test\")) ((NIL NIL \"bob\" \"example.test\")(\"Carol\" NIL \"carol\" \"example.test\")) NIL NIL NIL \"<1@x>\")"
        );
        assert_eq!(
            String::from_utf8(m.body.clone()).unwrap(),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 20 2)"
        );
        let text = m
            .section(
                SIMPLE,
                &Section {
                    part: vec![],
                    text: Some(SectionText::Text),
                },
            )
            .unwrap();
        assert_eq!(text, b"line one\r\nline two\r\n");
        let one = m
            .section(
                SIMPLE,
                &Section {
                    part: vec![1],
                    text: None,
                },
            )
            .unwrap();
        assert_eq!(one, text);
        assert!(m
            .section(
                SIMPLE,
                &Section {
                    part: vec![2],
                    text: None
                }
            )
            .is_none());
        let hf = m
            .section(
                SIMPLE,
                &Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(vec!["subject".into()])),
                },
            )
            .unwrap();
        assert_eq!(hf, b"Subject: Hello\r\n world\r\n\r\n");
    }

    #[test]
    fn multipart_message() {
        let m = Mime::parse(MULTI);
        assert_eq!(m.root.children.len(), 3);
        let bs = String::from_utf8(m.bodystructure.clone()).unwrap();
        assert!(bs.starts_with("((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 28 (NIL \"inner\" "), "{bs}");
        assert!(bs.contains("(\"APPLICATION\" \"PDF\" (\"NAME\" \"a.pdf\") NIL NIL \"BASE64\" 4 NIL (\"attachment\" (\"FILENAME\" \"a.pdf\")) NIL NIL)"), "{bs}");
        assert!(
            bs.ends_with(" \"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)"),
            "{bs}"
        );
        let sec = |part: Vec<u32>, text| m.section(MULTI, &Section { part, text }).unwrap();
        assert_eq!(sec(vec![1], None), b"hello");
        assert_eq!(sec(vec![3], None), b"QUJD");
        assert_eq!(sec(vec![2, 1], None), b"inner body");
        assert_eq!(
            sec(vec![2], Some(SectionText::Header)),
            b"Subject: inner\r\n\r\n"
        );
        assert_eq!(sec(vec![2], Some(SectionText::Text)), b"inner body");
        // Below a part that is not multipart only its own part 1 (itself) exists; deeper
        // numbers name nothing unless it is a message/rfc822.
        assert_eq!(sec(vec![1, 1], None), b"hello");
        assert_eq!(sec(vec![3, 1], None), b"QUJD");
        for missing in [
            vec![1, 1, 1],
            vec![1, 2],
            vec![3, 1, 1],
            vec![2, 1, 1],
            vec![2, 2],
            vec![4],
            vec![0],
        ] {
            assert!(m.part(&missing).is_none(), "{missing:?}");
        }
        assert_eq!(
            sec(vec![1], Some(SectionText::Mime)),
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
    }

    /// RFC 9051 §6.4.5, answered as Dovecot answers (checked side by side): a non-multipart
    /// part's part 1 is itself once, never again below it.
    #[test]
    fn part_one_of_a_single_part_is_taken_once() {
        let m = Mime::parse(MULTI);
        let part = |p: &[u32]| m.part(p).map(|x| x.body.clone());
        // 1 is text/plain inside the multipart: 1.1 is itself, 1.1.1 nothing.
        assert_eq!(part(&[1, 1]), part(&[1]));
        assert_eq!(part(&[1, 1, 1]), None);
        assert_eq!(part(&[1, 2]), None);
        // 2 is message/rfc822 with a text body: 2.1 is that body, 2.1.1 nothing.
        assert!(part(&[2, 1]).is_some());
        assert_eq!(part(&[2, 1, 1]), None);
        // A single-part message: 1 is its body, 1.1 nothing.
        let single = Mime::parse(b"Subject: x\r\n\r\nbody\r\n");
        assert!(single.part(&[1]).is_some());
        assert!(single.part(&[1, 1]).is_none());
    }

    #[test]
    fn a_comment_names_an_address_without_a_display_name() {
        let name = |v: &[u8]| match parse_addresses(v).first() {
            Some(Addr::Mailbox { name, .. }) => name.clone(),
            _ => None,
        };
        assert_eq!(
            name(b"user@domain (Real Name)"),
            Some(b"Real Name".to_vec())
        );
        assert_eq!(
            name(b"(Real Name) user@domain"),
            Some(b"Real Name".to_vec())
        );
        assert_eq!(
            name(b"\"Phrase\" <user@domain> (comment)"),
            Some(b"Phrase".to_vec())
        );
        assert_eq!(name(b"user@domain"), None);
        // A comment alone in a group names nothing.
        let g = parse_addresses(b"group2: (foo) ;");
        assert!(
            matches!(g.as_slice(), [Addr::GroupStart(_), Addr::GroupEnd]),
            "{g:?}"
        );
    }

    #[test]
    fn addresses() {
        let a = parse_addresses(b"undisclosed-recipients: ;");
        assert_eq!(
            a,
            vec![
                Addr::GroupStart(b"undisclosed-recipients".to_vec()),
                Addr::GroupEnd
            ]
        );
        let a = parse_addresses(b"x@y (Comment), \"a, b\" <c@d>");
        assert_eq!(a.len(), 2);
        assert!(matches!(&a[1], Addr::Mailbox { name: Some(n), .. } if n == b"a, b"));
    }

    #[test]
    fn partial_ranges() {
        // RFC 9051 §6.4.5: <origin.count>; an origin beyond the end gives no octets.
        for (len, partial, want) in [
            (5, None, 0..5),
            (5, Some((1, 3)), 1..4),
            (5, Some((4, 100)), 4..5),
            (5, Some((5, 1)), 5..5),
            (5, Some((10, 1)), 5..5),
            (5, Some((0, 0)), 0..0),
            (0, Some((u32::MAX, u32::MAX)), 0..0),
            (
                usize::MAX,
                Some((u32::MAX, u32::MAX)),
                u32::MAX as usize..2 * u32::MAX as usize,
            ),
        ] {
            assert_eq!(partial_range(len, partial), want, "{len} {partial:?}");
        }
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for m in [
            &b""[..],
            b"\r\n",
            b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
            b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a\r\n--a--",
            b"Content-Type: message/rfc822\r\n\r\n",
            b"From: <<<>>>,,;;::\r\n\r\n",
        ] {
            let p = Mime::parse(m);
            let _ = p.section(
                m,
                &Section {
                    part: vec![1, 1, 1],
                    text: Some(SectionText::Header),
                },
            );
        }
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        let _ = Mime::parse(&deep);
    }
}
