//! IMAP responses (RFC 9051 §7, the formal syntax of §9) as types, in both directions: one
//! encoder ([`Response::to_bytes`]) for the server and the parser ([`parse::response`]) the
//! client reads them with. The parser's result encodes back to the octets it read, and what
//! the encoder writes parses back to the same value (the `imap_response` fuzz target checks
//! both ways).
//!
//! A response is one *logical line*: the text up to CRLF, where a literal announcement `{N}`
//! at the end of a line is followed by N octets and then the rest of the line. The encoder
//! writes literals in that form and ends the response with CRLF; the parser takes the same
//! form without the final CRLF (the client reads a line, then each announced literal, then the
//! line that continues after it: see [`parse::trailing_literal`]).
//!
//! # The model
//!
//! - [`Response`]: a tagged status (`a1 OK ...`), an untagged status (`* OK|NO|BAD|BYE|PREAUTH
//!   ...`), numbered data (`* 3 EXISTS`, `* 2 FETCH (...)`), other untagged data (`* LIST ...`)
//!   or a continuation request (`+ text`).
//! - [`StatusText`]: the status, the response code inside `[...]` (its text, e.g.
//!   `UIDVALIDITY 17`, `PERMANENTFLAGS (\Seen \*)`, `COPYUID 7 1:3 4:6`) and the human text.
//! - [`Value`]: atom (numbers, flags, section names such as `BODY[HEADER.FIELDS (FROM)]`),
//!   quoted string, literal, literal8, NIL, parenthesised list. Which string form goes on the
//!   wire is the value's choice: [`Value::string`] picks quoted when that is safe and a literal
//!   otherwise (the server's rule for names), [`Value::astring`] an atom when possible.
//!
//! # What the server sends, and how it is built
//!
//! | response | built with |
//! |---|---|
//! | `a1 OK [READ-WRITE] SELECT completed`, `a2 NO [TRYCREATE] no such mailbox`, `a3 BAD ...` | [`Response::tagged`] |
//! | `* OK [UIDVALIDITY 7] UIDs valid`, `* OK [CAPABILITY ...] ready`, `* BYE ...`, `* BAD ...` | [`Response::untagged`] |
//! | `+ go ahead`, `+ <base64 challenge>`, `+ idling; send DONE to stop` | [`Response::continuation`] |
//! | `* 4 EXISTS`, `* 2 EXPUNGE`, `* 1 RECENT` | [`Response::exists`], [`Response::expunge`], [`Response::recent`] |
//! | `* 1 FETCH (FLAGS (\Seen) UID 1 MODSEQ (5) BODY[] {12}\r\n...)` | [`Response::fetch`] with the items as values ([`Value::Literal`] for section data, [`Value::Literal8`] for BINARY octets with NUL, [`Value::date_time`] for INTERNALDATE, [`Value::Encoded`] for the ENVELOPE, BODY and BODYSTRUCTURE the MIME module wrote) |
//! | `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)` | [`Response::flags`] |
//! | `* LIST (\HasNoChildren) "/" "INBOX"`, `* LSUB ...` | [`Response::list`] |
//! | `* LIST (\NonExistent) "/" "Ghost" ("CHILDINFO" ("SUBSCRIBED"))` | [`Response::list`] then [`Response::with_childinfo`] |
//! | `* STATUS "INBOX" (MESSAGES 2 UIDNEXT 5)` | [`Response::status`] |
//! | `* SEARCH 2 5 (MODSEQ 9)`, `* SEARCH` | [`Response::search`] |
//! | `* CAPABILITY IMAP4rev1 IMAP4rev2 ...`, `* ENABLED CONDSTORE` | [`Response::capability`], [`Response::enabled`] |
//! | `* QUOTA "" (STORAGE 3 4)`, `* QUOTAROOT INBOX ""` | [`Response::quota`], [`Response::quotaroot`] |
//! | `* ESEARCH (TAG "a1") UID ALL 1:3`, `* ID (...)`, `* NAMESPACE (("" "/")) NIL NIL` | [`Response::data`] with the values |
//!
//! Text (status text, response codes, continuation text) never carries CR, LF or other
//! control characters onto the wire: they become spaces, so text derived from client input
//! cannot inject a line (as the server's `ImapError::to_reply` does). Atoms are written as
//! given, with the same replacement; a [`Value::Quoted`] holding CR, LF or NUL, which a quoted
//! string cannot carry (RFC 9051 §4.3), is written as a literal.
//!
//! [`Value::Encoded`] is the one exception to "the encoder writes every octet": it holds
//! values already in their wire form (the server's cached ENVELOPE and BODYSTRUCTURE, built
//! once per message by [`crate::imap::mime`]), written as they are; the parser never produces
//! it, and reads its octets back as the values they spell.
//!
//! The encoder writes a response into one buffer sized beforehand ([`Response::to_bytes`]):
//! a FETCH carrying a large literal is copied once, into the buffer, and never moved again
//! while the buffer grows.

pub mod parse;

#[cfg(test)]
mod tests;

use std::fmt;

use super::encode::{astring_is_atom, date_time, string_is_quoted};

pub use parse::{fetch_pairs, response, status_text, trailing_literal, values, ResponseError};

/// One value of a response: what RFC 9051 calls atom, number, string (quoted or literal),
/// NIL and parenthesised list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An atom or number, e.g. `FETCH`, `\Seen`, `42`, `BODY[HEADER.FIELDS (FROM)]`.
    Atom(String),
    /// A quoted string, as octets (without the quotes and escapes).
    Quoted(Vec<u8>),
    /// A literal `{N}` CRLF and N octets (RFC 9051 §4.3).
    Literal(Vec<u8>),
    /// A literal8 `~{N}` CRLF and N octets (RFC 3516 §4.3: BINARY data holding NUL).
    Literal8(Vec<u8>),
    /// `NIL`.
    Nil,
    /// `( ... )`.
    List(Vec<Value>),
    /// Values already in their wire form, written as they are: the server's ENVELOPE, BODY
    /// and BODYSTRUCTURE, which [`crate::imap::mime`] encodes once per message and the server
    /// caches (RFC 9051 §7.5.2). The octets must be complete values on one logical line (no
    /// CRLF outside a literal); the parser never produces this variant, it reads the octets
    /// back as the values they spell.
    Encoded(Vec<u8>),
}

impl Value {
    /// A string as the server writes names and text: quoted when that is safe (printable
    /// US-ASCII, shorter than 1024 octets), otherwise a literal (RFC 9051 §4.3).
    pub fn string(s: &[u8]) -> Value {
        if string_is_quoted(s) {
            Value::Quoted(s.to_vec())
        } else {
            Value::Literal(s.to_vec())
        }
    }

    /// `astring` (mailbox names in QUOTAROOT): an atom when possible, else [`Value::string`].
    pub fn astring(s: &str) -> Value {
        if astring_is_atom(s) {
            Value::Atom(s.to_string())
        } else {
            Value::string(s.as_bytes())
        }
    }

    /// `nstring`: NIL or [`Value::string`].
    pub fn nstring(s: Option<&[u8]>) -> Value {
        s.map_or(Value::Nil, Value::string)
    }

    /// A number (an atom of digits).
    pub fn num(n: impl Into<u64>) -> Value {
        Value::Atom(n.into().to_string())
    }

    /// INTERNALDATE's `date-time`, `"dd-Mon-yyyy hh:mm:ss +0000"`, from Unix seconds (RFC
    /// 9051 §9; written in UTC).
    pub fn date_time(unix: i64) -> Value {
        Value::Quoted(date_time(unix).into_bytes())
    }

    /// The atom's text, if this is an atom.
    pub fn atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// An atom that is a number.
    pub fn number(&self) -> Option<u64> {
        self.atom()?.parse().ok()
    }

    /// An atom or string as text (NIL is `None`); lists are `None` too.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Atom(a) => Some(a.clone()),
            Value::Quoted(s) | Value::Literal(s) | Value::Literal8(s) => {
                Some(String::from_utf8_lossy(s).into_owned())
            }
            _ => None,
        }
    }

    /// The octets of a string (or of an atom).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Quoted(s) | Value::Literal(s) | Value::Literal8(s) => Some(s),
            Value::Atom(a) => Some(a.as_bytes()),
            _ => None,
        }
    }

    /// The items of a list.
    pub fn list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// Appends the wire form.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Value::Atom(a) => push_clean(out, a),
            Value::Quoted(s) if s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) => {
                push_literal(out, b"", s)
            }
            Value::Quoted(s) => {
                out.push(b'"');
                for &b in s {
                    if b == b'"' || b == b'\\' {
                        out.push(b'\\');
                    }
                    out.push(b);
                }
                out.push(b'"');
            }
            Value::Literal(s) => push_literal(out, b"", s),
            Value::Literal8(s) => push_literal(out, b"~", s),
            Value::Nil => out.extend_from_slice(b"NIL"),
            Value::List(items) => {
                out.push(b'(');
                push_values(out, items);
                out.push(b')');
            }
            Value::Encoded(octets) => out.extend_from_slice(octets),
        }
    }

    /// At least the length of the wire form (exact unless text has control characters to
    /// replace): what [`Response::to_bytes`] reserves.
    fn wire_len(&self) -> usize {
        match self {
            Value::Atom(a) => a.len(),
            // Every octet may need an escape, or the string goes as a literal.
            Value::Quoted(s) => (2 + 2 * s.len()).max(literal_len(s.len())),
            Value::Literal(s) | Value::Literal8(s) => literal_len(s.len()),
            Value::Nil => 3,
            Value::List(items) => 2 + values_len(items),
            Value::Encoded(octets) => octets.len(),
        }
    }
}

/// `~{N}` CRLF and N octets, at most.
fn literal_len(n: usize) -> usize {
    // '~', braces, CRLF and up to 20 digits.
    1 + 2 + 2 + 20 + n
}

/// Values and the spaces between them.
fn values_len(values: &[Value]) -> usize {
    values.iter().map(|v| v.wire_len() + 1).sum()
}

fn push_literal(out: &mut Vec<u8>, prefix: &[u8], s: &[u8]) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Values separated by single spaces.
fn push_values(out: &mut Vec<u8>, values: &[Value]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        v.write_to(out);
    }
}

/// Text with control characters replaced by spaces: one line, whatever its origin.
fn push_clean(out: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

/// The status of a tagged or untagged status response (RFC 9051 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    PreAuth,
}

impl Status {
    pub(crate) fn parse(word: &str) -> Option<Status> {
        Some(match word.to_ascii_uppercase().as_str() {
            "OK" => Status::Ok,
            "NO" => Status::No,
            "BAD" => Status::Bad,
            "BYE" => Status::Bye,
            "PREAUTH" => Status::PreAuth,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
            Status::PreAuth => "PREAUTH",
        }
    }
}

/// `OK [CODE args] human text`: the status, the response code, the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusText {
    pub status: Status,
    /// The response code without its brackets, e.g. `UIDVALIDITY 17` or `CAPABILITY IMAP4rev1 ...`.
    pub code: Option<String>,
    pub text: String,
}

impl StatusText {
    /// A status with an optional response code and text.
    pub fn new(status: Status, code: Option<&str>, text: impl Into<String>) -> Self {
        StatusText {
            status,
            code: code.map(str::to_string),
            text: text.into(),
        }
    }

    /// Appends `STATUS [SP "[" code "]"] [SP text]`, control characters replaced.
    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.status.as_str().as_bytes());
        if let Some(c) = &self.code {
            out.extend_from_slice(b" [");
            push_clean(out, c);
            out.push(b']');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            push_clean(out, &self.text);
        }
    }
}

impl fmt::Display for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status.as_str())?;
        if let Some(c) = &self.code {
            write!(f, " [{c}]")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// One response, classified (RFC 9051 §2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `tag OK|NO|BAD [code] text`: the end of a command.
    Tagged { tag: String, status: StatusText },
    /// `* OK|NO|BAD|BYE|PREAUTH [code] text`.
    UntaggedStatus(StatusText),
    /// `* n KEYWORD ...` (EXISTS, EXPUNGE, FETCH, ...): the number, the keyword (upper case),
    /// and the values that follow.
    Numbered {
        n: u32,
        keyword: String,
        rest: Vec<Value>,
    },
    /// `* KEYWORD values` (CAPABILITY, LIST, STATUS, SEARCH, ESEARCH, FLAGS, ENABLED, ...).
    Data { keyword: String, rest: Vec<Value> },
    /// `+ text`: the server waits for more (a literal, a SASL response).
    Continue(String),
}

impl Response {
    /// `tag OK|NO|BAD [code] text`.
    pub fn tagged(tag: &str, status: Status, code: Option<&str>, text: impl Into<String>) -> Self {
        Response::Tagged {
            tag: tag.to_string(),
            status: StatusText::new(status, code, text),
        }
    }

    /// `* OK|NO|BAD|BYE|PREAUTH [code] text`.
    pub fn untagged(status: Status, code: Option<&str>, text: impl Into<String>) -> Self {
        Response::UntaggedStatus(StatusText::new(status, code, text))
    }

    /// `+ text` (RFC 9051 §7.5), e.g. `+ go ahead` or a base64 SASL challenge.
    pub fn continuation(text: impl Into<String>) -> Self {
        Response::Continue(text.into())
    }

    /// `* n KEYWORD values`.
    pub fn numbered(n: u32, keyword: &str, rest: Vec<Value>) -> Self {
        Response::Numbered {
            n,
            keyword: keyword.to_string(),
            rest,
        }
    }

    /// `* KEYWORD values`.
    pub fn data(keyword: &str, rest: Vec<Value>) -> Self {
        Response::Data {
            keyword: keyword.to_string(),
            rest,
        }
    }

    /// `* n EXISTS` (RFC 9051 §7.4.1).
    pub fn exists(n: u32) -> Self {
        Response::numbered(n, "EXISTS", Vec::new())
    }

    /// `* n EXPUNGE` (RFC 9051 §7.5.1).
    pub fn expunge(n: u32) -> Self {
        Response::numbered(n, "EXPUNGE", Vec::new())
    }

    /// `* n RECENT` (RFC 3501 §7.3.2; IMAP4rev1 sessions only).
    pub fn recent(n: u32) -> Self {
        Response::numbered(n, "RECENT", Vec::new())
    }

    /// `* seq FETCH (name value ...)` (RFC 9051 §7.5.2): `items` alternate names (atoms such
    /// as `UID`, `FLAGS`, `BODY[]<0>`) and values.
    pub fn fetch(seq: u32, items: Vec<Value>) -> Self {
        Response::numbered(seq, "FETCH", vec![Value::List(items)])
    }

    /// `* FLAGS (flag ...)` (RFC 9051 §7.3.5).
    pub fn flags<S: AsRef<str>>(flags: &[S]) -> Self {
        Response::data("FLAGS", vec![atoms(flags)])
    }

    /// `* LIST (attributes) "delimiter" name` (RFC 9051 §7.3.1; `word` is `LIST` or `LSUB`):
    /// the name as [`Value::string`] (quoted or literal), as the server writes it.
    pub fn list<S: AsRef<str>>(word: &str, attributes: &[S], delimiter: &str, name: &[u8]) -> Self {
        Response::data(
            word,
            vec![
                atoms(attributes),
                Value::Quoted(delimiter.as_bytes().to_vec()),
                Value::string(name),
            ],
        )
    }

    /// Adds the LIST-EXTENDED `CHILDINFO` data to a LIST response (RFC 5258 §4, §3.5):
    /// `("CHILDINFO" ("SUBSCRIBED"))` after the name, for a name listed only because
    /// something below it matches the selection (RECURSIVEMATCH). Other responses are
    /// returned as they are.
    pub fn with_childinfo<S: AsRef<str>>(mut self, options: &[S]) -> Self {
        if let Response::Data { rest, .. } = &mut self {
            let options = options
                .iter()
                .map(|o| Value::Quoted(o.as_ref().as_bytes().to_vec()))
                .collect();
            rest.push(Value::List(vec![
                Value::Quoted(b"CHILDINFO".to_vec()),
                Value::List(options),
            ]));
        }
        self
    }

    /// `* STATUS name (ITEM n ...)` (RFC 9051 §7.3.2).
    pub fn status(name: &[u8], items: &[(&str, u64)]) -> Self {
        let list = items
            .iter()
            .flat_map(|(k, v)| [Value::Atom(k.to_string()), Value::num(*v)])
            .collect();
        Response::data("STATUS", vec![Value::string(name), Value::List(list)])
    }

    /// `* SEARCH n ...` with `(MODSEQ m)` after the numbers when a CONDSTORE search asked for
    /// it (RFC 9051 §7.3.4 via RFC 3501 §7.2.5, RFC 7162 §3.1.5); `* SEARCH` when nothing
    /// matched.
    pub fn search(numbers: &[u32], modseq: Option<u64>) -> Self {
        let mut rest: Vec<Value> = numbers.iter().map(|&n| Value::num(n)).collect();
        if let (Some(m), false) = (modseq, numbers.is_empty()) {
            rest.push(Value::List(vec![
                Value::Atom("MODSEQ".into()),
                Value::num(m),
            ]));
        }
        Response::data("SEARCH", rest)
    }

    /// `* CAPABILITY cap ...` (RFC 9051 §7.2.2).
    pub fn capability<S: AsRef<str>>(caps: &[S]) -> Self {
        Response::data("CAPABILITY", atom_values(caps))
    }

    /// `* ENABLED cap ...` (RFC 5161 §3.2); `* ENABLED` when nothing was enabled.
    pub fn enabled<S: AsRef<str>>(caps: &[S]) -> Self {
        Response::data("ENABLED", atom_values(caps))
    }

    /// `* QUOTA root (STORAGE used limit)` (RFC 9208 §5.1), in units of 1024 octets.
    pub fn quota(root: &str, used: u64, limit: u64) -> Self {
        Response::data(
            "QUOTA",
            vec![
                Value::astring(root),
                Value::List(vec![
                    Value::Atom("STORAGE".into()),
                    Value::num(used),
                    Value::num(limit),
                ]),
            ],
        )
    }

    /// `* QUOTAROOT mailbox root ...` (RFC 9208 §5.2), names as [`Value::astring`].
    pub fn quotaroot<S: AsRef<str>>(mailbox: &str, roots: &[S]) -> Self {
        let mut rest = vec![Value::astring(mailbox)];
        rest.extend(roots.iter().map(|r| Value::astring(r.as_ref())));
        Response::data("QUOTAROOT", rest)
    }

    /// The wire form, CRLF included, in a buffer allocated once: a literal's octets are
    /// copied into it and never again while it grows.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_len());
        self.write_to(&mut out);
        out
    }

    /// At least the length of the wire form (see [`Value::wire_len`]).
    fn wire_len(&self) -> usize {
        let status =
            |s: &StatusText| 8 + s.code.as_ref().map_or(0, |c| c.len() + 3) + s.text.len() + 1;
        2 + match self {
            Response::Tagged { tag, status: s } => tag.len() + 1 + status(s),
            Response::UntaggedStatus(s) => 2 + status(s),
            Response::Numbered { keyword, rest, .. } => 2 + 11 + keyword.len() + values_len(rest),
            Response::Data { keyword, rest } => 2 + keyword.len() + values_len(rest),
            Response::Continue(text) => 2 + text.len(),
        }
    }

    /// Appends the wire form, CRLF included.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Response::Tagged { tag, status } => {
                push_clean(out, tag);
                out.push(b' ');
                status.write_to(out);
            }
            Response::UntaggedStatus(status) => {
                out.extend_from_slice(b"* ");
                status.write_to(out);
            }
            Response::Numbered { n, keyword, rest } => {
                out.extend_from_slice(format!("* {n} ").as_bytes());
                push_clean(out, keyword);
                if !rest.is_empty() {
                    out.push(b' ');
                    push_values(out, rest);
                }
            }
            Response::Data { keyword, rest } => {
                out.extend_from_slice(b"* ");
                push_clean(out, keyword);
                if !rest.is_empty() {
                    out.push(b' ');
                    push_values(out, rest);
                }
            }
            Response::Continue(text) => {
                out.extend_from_slice(b"+ ");
                push_clean(out, text);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn atom_values<S: AsRef<str>>(words: &[S]) -> Vec<Value> {
    words
        .iter()
        .map(|w| Value::Atom(w.as_ref().to_string()))
        .collect()
}

fn atoms<S: AsRef<str>>(words: &[S]) -> Value {
    Value::List(atom_values(words))
}
