//! IMAP response parsing for the client: the response types and their parser are
//! `mailroom_proto::imap::response`'s (the same types the server's encoder writes), re-exported
//! here. What stays is the client's side of commands: [`quote`] (an argument as atom or quoted
//! string) and [`split_words`] (typed search criteria).

pub use mailroom_proto::imap::response::{
    fetch_pairs, response, status_text, trailing_literal, values, Response, ResponseError, Status,
    StatusText, Value,
};

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
