//! Sans-IO parsing of IMAP responses (RFC 9051 §7, the formal syntax of §9).
//!
//! A response arrives as one *logical line*: the text up to CRLF, where a line ending in a
//! literal announcement `{N}` is followed by N octets and then the rest of the line. The client
//! hands such a line over in that exact form (`... {N}\r\n<N octets>...`), so one parser walks
//! quoted strings, literals, atoms and parenthesised lists alike.

/// One value of a response: what RFC 9051 calls atom, number, string (quoted or literal),
/// NIL and parenthesised list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An atom or number, e.g. `FETCH`, `\Seen`, `42`, `BODY[HEADER.FIELDS (FROM)]`.
    Atom(String),
    /// A quoted string or a literal, as octets.
    Str(Vec<u8>),
    /// `NIL`.
    Nil,
    /// `( ... )`.
    List(Vec<Value>),
}

impl Value {
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

    /// An atom, string or NIL as text (NIL is `None`); lists are `None` too.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Atom(a) => Some(a.clone()),
            Value::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }

    /// The octets of a string (or of an atom).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s),
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
}

/// Parses a sequence of values separated by spaces (the whole rest of a response line).
pub fn values(input: &[u8]) -> Result<Vec<Value>, String> {
    let mut p = Parser { s: input, i: 0 };
    let mut out = Vec::new();
    loop {
        p.skip_spaces();
        if p.i >= p.s.len() {
            return Ok(out);
        }
        if p.s[p.i] == b')' {
            return Err(format!("an unmatched ')' at octet {}", p.i));
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

    fn value(&mut self, depth: usize) -> Result<Value, String> {
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
            Some(b'{') => self.literal(),
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

    fn quoted(&mut self) -> Result<Value, String> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&b) = self.s.get(self.i) {
            self.i += 1;
            match b {
                b'"' => return Ok(Value::Str(out)),
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

    /// `{N}\r\n` (or `{N+}`, `~{N}` is not used by servers towards clients) then N octets.
    fn literal(&mut self) -> Result<Value, String> {
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
        Ok(Value::Str(self.s[start..end].to_vec()))
    }

    /// Atom characters; a `[` opens a section (`BODY[HEADER.FIELDS (A B)]`) that runs to its
    /// `]`, spaces and parentheses included.
    fn atom(&mut self) -> Result<String, String> {
        let start = self.i;
        let mut bracket = 0usize;
        while let Some(&b) = self.s.get(self.i) {
            match b {
                b'[' => bracket += 1,
                b']' if bracket > 0 => bracket -= 1,
                b' ' | b'(' | b')' if bracket == 0 => break,
                b'\r' | b'\n' => break,
                _ => {}
            }
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("an unexpected {:?}", self.s[start] as char));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
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
    fn parse(word: &str) -> Option<Status> {
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

impl std::fmt::Display for StatusText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

/// Classifies one logical response line.
pub fn response(line: &[u8]) -> Result<Response, String> {
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
            .ok_or_else(|| format!("a tagged response that is not OK, NO or BAD: {text:?}"))?;
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
pub fn fetch_pairs(rest: &[Value]) -> Result<Vec<(String, Value)>, String> {
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
            other => Err(format!("a FETCH item name that is not an atom: {other:?}")),
        })
        .collect()
}

/// An astring argument for a command: an atom when that is safe, else a quoted string; `None`
/// when only a literal would do (CR, LF, NUL or 8-bit octets).
pub fn quote(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.iter()
        .any(|&c| c == 0 || c == b'\r' || c == b'\n' || c >= 0x80)
    {
        return None;
    }
    let atom = !b.is_empty()
        && b.iter().all(|&c| {
            c > 0x20
                && c < 0x7f
                && !matches!(
                    c,
                    b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']' | b'['
                )
        })
        && !s.eq_ignore_ascii_case("NIL");
    if atom {
        return Some(s.to_string());
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// Splits typed search criteria into words; `"..."` groups words (the quotes removed, `\"`
/// and `\\` unescaped). The flag says whether the word was quoted, i.e. is a string argument.
pub fn split_words(s: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let mut w = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        if let Some(e) = chars.next() {
                            w.push(e);
                        }
                    }
                    _ => w.push(c),
                }
            }
            out.push((w, true));
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push((w, false));
        }
    }
    out
}
