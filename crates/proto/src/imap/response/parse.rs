//! Sans-IO parsing of IMAP responses (RFC 9051 §7, the formal syntax of §9) into the types of
//! [`super`]: what the client reads, the inverse of [`Response::to_bytes`].
//!
//! A response arrives as one *logical line*: the text up to CRLF, where a line ending in a
//! literal announcement `{N}` is followed by N octets and then the rest of the line. The client
//! hands such a line over in that exact form (`... {N}\r\n<N octets>...`), so one parser walks
//! quoted strings, literals, atoms and parenthesised lists alike.

use super::{Response, Status, StatusText, Value};

/// Why a response could not be read; the text says what was wrong ("a literal shorter than
/// announced"), for the client's "sent a response with ..." message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResponseError(pub String);

impl From<String> for ResponseError {
    fn from(s: String) -> Self {
        ResponseError(s)
    }
}

impl From<&str> for ResponseError {
    fn from(s: &str) -> Self {
        ResponseError(s.to_string())
    }
}

/// Parses a sequence of values separated by spaces (the whole rest of a response line).
pub fn values(input: &[u8]) -> Result<Vec<Value>, ResponseError> {
    let mut p = Parser { s: input, i: 0 };
    let mut out = Vec::new();
    loop {
        p.skip_spaces();
        if p.i >= p.s.len() {
            return Ok(out);
        }
        if p.s[p.i] == b')' {
            return Err(format!("an unmatched ')' at octet {}", p.i).into());
        }
        out.push(p.value(0)?);
    }
}

/// Nesting deeper than this is refused (a hostile BODYSTRUCTURE could otherwise recurse
/// without end).
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, ResponseError> {
        if depth > MAX_DEPTH {
            return Err("lists nested too deeply".into());
        }
        match self.s.get(self.i) {
            None => Err("a value was expected at the end of the line".into()),
            Some(b'(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.s.get(self.i) {
                        None => return Err("a list without its ')'".into()),
                        Some(b')') => {
                            self.i += 1;
                            return Ok(Value::List(items));
                        }
                        Some(_) => items.push(self.value(depth + 1)?),
                    }
                }
            }
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal().map(Value::Literal),
            // RFC 3516 §4.3: literal8, the server's form for BINARY data holding NUL.
            Some(b'~') if self.s.get(self.i + 1) == Some(&b'{') => {
                self.i += 1;
                self.literal().map(Value::Literal8)
            }
            Some(_) => {
                let a = self.atom()?;
                if a.eq_ignore_ascii_case("NIL") {
                    Ok(Value::Nil)
                } else {
                    Ok(Value::Atom(a))
                }
            }
        }
    }

    fn quoted(&mut self) -> Result<Value, ResponseError> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&b) = self.s.get(self.i) {
            self.i += 1;
            match b {
                b'"' => return Ok(Value::Quoted(out)),
                b'\\' => match self.s.get(self.i) {
                    Some(&e) => {
                        out.push(e);
                        self.i += 1;
                    }
                    None => break,
                },
                b'\r' | b'\n' => return Err("a quoted string holds a line break".into()),
                _ => out.push(b),
            }
        }
        Err("a quoted string without its closing '\"'".into())
    }

    /// `{N}\r\n` (or `{N+}`) then N octets.
    fn literal(&mut self) -> Result<Vec<u8>, ResponseError> {
        let n = literal_len(&self.s[self.i..])
            .ok_or("a literal announcement that is not {N} at the end of a line")?;
        let close = self.i
            + self.s[self.i..]
                .iter()
                .position(|&b| b == b'}')
                .unwrap_or(0);
        let start = close + 1;
        let start = match self.s.get(start..start + 2) {
            Some(b"\r\n") => start + 2,
            _ => return Err("a literal announcement not followed by CRLF".into()),
        };
        let end = start
            .checked_add(n)
            .filter(|&e| e <= self.s.len())
            .ok_or("a literal shorter than announced")?;
        self.i = end;
        Ok(self.s[start..end].to_vec())
    }

    /// Atom characters; after a FETCH item name that takes a section (`BODY`, `BINARY`,
    /// `BINARY.SIZE`) a `[` opens the section (`BODY[HEADER.FIELDS (A B)]`), which runs to its
    /// `]`, spaces and parentheses included. Elsewhere `[` is an atom character like any other
    /// (RFC 9051 §9 ATOM-CHAR: a keyword `a[b`, an astring mailbox name in QUOTAROOT).
    fn atom(&mut self) -> Result<String, ResponseError> {
        let start = self.i;
        let mut bracket = 0usize;
        while let Some(&b) = self.s.get(self.i) {
            match b {
                b'[' if bracket > 0 || takes_section(&self.s[start..self.i]) => bracket += 1,
                b']' if bracket > 0 => bracket -= 1,
                b' ' | b'(' | b')' if bracket == 0 => break,
                b'\r' | b'\n' => break,
                _ => {}
            }
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("an unexpected {:?}", self.s[start] as char).into());
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
}

/// FETCH data item names followed by a section (RFC 9051 §7.5.2, RFC 3516 §4.2); the
/// `.PEEK` forms only appear in commands, but cost nothing here.
fn takes_section(name: &[u8]) -> bool {
    ["BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

/// The N of a literal announcement `{N}` or `{N+}` at the start of `s`.
fn literal_len(s: &[u8]) -> Option<usize> {
    let close = s.iter().position(|&b| b == b'}')?;
    let inner = s.get(1..close)?;
    let inner = inner.strip_suffix(b"+").unwrap_or(inner);
    if inner.is_empty() || inner.len() > 12 || !inner.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// If a received line ends with a literal announcement (`... {N}`), the N octets that follow.
pub fn trailing_literal(line: &[u8]) -> Option<usize> {
    if line.last() != Some(&b'}') {
        return None;
    }
    let open = line.iter().rposition(|&b| b == b'{')?;
    literal_len(&line[open..])
}

/// Parses `STATUS [code] text` (resp-cond-state, resp-cond-bye, resp-cond-auth); `None` when
/// the first word is not a status.
pub fn status_text(line: &str) -> Option<StatusText> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let status = Status::parse(word)?;
    let (code, text) = match rest.strip_prefix('[') {
        Some(r) => match r.find(']') {
            Some(end) => (Some(r[..end].to_string()), r[end + 1..].trim_start()),
            None => (None, rest),
        },
        None => (None, rest),
    };
    Some(StatusText {
        status,
        code,
        text: text.to_string(),
    })
}

/// Classifies one logical response line.
pub fn response(line: &[u8]) -> Result<Response, ResponseError> {
    if let Some(rest) = line.strip_prefix(b"+") {
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        return Ok(Response::Continue(
            String::from_utf8_lossy(rest).into_owned(),
        ));
    }
    let Some(sp) = line.iter().position(|&b| b == b' ') else {
        return Err("a response line without a space".into());
    };
    let (tag, rest) = (&line[..sp], &line[sp + 1..]);
    if tag != b"*" {
        let tag = String::from_utf8_lossy(tag).into_owned();
        let text = String::from_utf8_lossy(rest);
        let status = status_text(&text)
            .filter(|s| matches!(s.status, Status::Ok | Status::No | Status::Bad))
            .ok_or_else(|| {
                ResponseError(format!(
                    "a tagged response that is not OK, NO or BAD: {text:?}"
                ))
            })?;
        return Ok(Response::Tagged { tag, status });
    }
    // Status responses carry free text, which must not go through the value parser.
    let head_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let head = String::from_utf8_lossy(&rest[..head_end]).to_ascii_uppercase();
    if Status::parse(&head).is_some() {
        let text = String::from_utf8_lossy(rest);
        if let Some(s) = status_text(&text) {
            return Ok(Response::UntaggedStatus(s));
        }
    }
    let after = rest.get(head_end + 1..).unwrap_or(&[]);
    if let Ok(n) = head.parse::<u32>() {
        let kw_end = after.iter().position(|&b| b == b' ').unwrap_or(after.len());
        let keyword = String::from_utf8_lossy(&after[..kw_end]).to_ascii_uppercase();
        if keyword.is_empty() {
            return Err("a numbered response without a keyword".into());
        }
        let rest = values(after.get(kw_end + 1..).unwrap_or(&[]))?;
        return Ok(Response::Numbered { n, keyword, rest });
    }
    Ok(Response::Data {
        keyword: head,
        rest: values(after)?,
    })
}

/// The `name value` pairs of a FETCH response's list, names in upper case.
pub fn fetch_pairs(rest: &[Value]) -> Result<Vec<(String, Value)>, ResponseError> {
    let items = match rest {
        [Value::List(items)] => items,
        _ => return Err("a FETCH response that is not one parenthesised list".into()),
    };
    if items.len() % 2 != 0 {
        return Err("a FETCH response with an item name and no value".into());
    }
    items
        .chunks(2)
        .map(|pair| match &pair[0] {
            Value::Atom(name) => Ok((name.to_ascii_uppercase(), pair[1].clone())),
            other => Err(format!("a FETCH item name that is not an atom: {other:?}").into()),
        })
        .collect()
}
