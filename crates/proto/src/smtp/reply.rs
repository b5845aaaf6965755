//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034), in both
//! directions: the server builds a [`Reply`] and sends [`Reply::to_bytes`]; the client reads
//! reply lines with [`ReplyAssembler`] (line by line, [`parse_reply_line`]) and gets the same
//! type back.
//!
//! ```text
//! Reply-line     = *( Reply-code "-" [ textstring ] CRLF )
//!                     Reply-code [ SP textstring ] CRLF        ; RFC 5321 §4.2
//! Reply-code     = %x32-35 %x30-35 %x30-39
//! status-code    = class "." subject "." detail                ; RFC 3463 §2
//! class          = "2" / "4" / "5"
//! subject, detail = 1*3digit
//! ```
//!
//! With ENHANCEDSTATUSCODES (RFC 2034 §4) every line of a reply carries the enhanced code right
//! after the basic code: `250-2.0.0 first` / `250 2.0.0 last`. EHLO replies are the one place
//! where we send none, so the capability lines stay bare (`250-PIPELINING`), as clients expect.
//!
//! Reply text never contains CR, LF or other control characters on the wire: they are replaced
//! by spaces in [`Reply::to_bytes`], so text derived from client input (an echoed address, a
//! verb) can never inject an extra reply line.
//!
//! # Reading replies
//!
//! A received reply is stored the way [`Reply::new`] builds one: when every line starts with
//! the same enhanced code (written the way [`EnhancedCode`] displays it), that code goes to
//! [`Reply::enhanced`] and the lines keep the text after it; otherwise (a server without
//! ENHANCEDSTATUSCODES, or one that puts a code on some lines only) the lines stay as received
//! and `enhanced` is `None`. Either way [`Reply::to_bytes`] gives the received octets back
//! (control characters aside), and [`Reply::texts`] gives each line's text as received, enhanced
//! code included. So `encode -> parse` gives the same reply and `parse -> encode` the same
//! octets; the `smtp_reply` fuzz target checks both.

use std::borrow::Cow;
use std::fmt;

use crate::line::printable;

/// An RFC 3463 enhanced status code, e.g. `5.1.1`. Displays as `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedCode(pub u8, pub u16, pub u16);

impl EnhancedCode {
    /// Parses `"2.1.0"`. `None` unless it matches RFC 3463 §2: class 2, 4 or 5; subject and
    /// detail of 1 to 3 digits each.
    pub fn parse(s: &str) -> Option<EnhancedCode> {
        let mut parts = s.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let class = match class {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return None,
        };
        Some(EnhancedCode(class, digits3(subject)?, digits3(detail)?))
    }
}

fn digits3(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

static EMPTY_LINE: [String; 1] = [String::new()];

/// One SMTP reply, possibly multi-line: what the server sends and what the client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit basic code (RFC 5321 §4.2.1).
    pub code: u16,
    /// The enhanced code shown after the basic code on every line, if any.
    pub enhanced: Option<EnhancedCode>,
    /// The text lines (after the enhanced code, when there is one); an empty vector sends one
    /// line with no text.
    pub lines: Vec<String>,
}

impl Reply {
    /// `Reply::new(250, "2.1.0", "Ok")`. `enhanced` may be `""` for none; a malformed
    /// enhanced code also gives none (never a panic).
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: EnhancedCode::parse(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply (e.g. EHLO with `enhanced = ""`, or HELP).
    pub fn multiline(code: u16, enhanced: &str, lines: Vec<String>) -> Self {
        Reply {
            code,
            enhanced: EnhancedCode::parse(enhanced),
            lines,
        }
    }

    /// The wire form: `CODE-` on every line but the last, `CODE ` on the last, each followed
    /// by CRLF and each carrying the enhanced code when there is one (RFC 2034 §4).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_lines(|line| {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        });
        out
    }

    /// 2xx and 3xx replies (RFC 5321 §4.2.1: positive completion / positive intermediate).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx replies: transient negative completion (RFC 5321 §4.2.1).
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx replies: permanent negative completion (RFC 5321 §4.2.1).
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// 2xx only: the command is done.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// A received reply (see the module docs): the code and each line's text after the code
    /// and its separator. The enhanced code moves to [`Reply::enhanced`] when every line
    /// carries the same one.
    pub fn received(code: u16, texts: Vec<String>) -> Self {
        let first = texts
            .first()
            .and_then(|t| t.split(' ').next())
            .and_then(canonical_enhanced);
        let shared = first.filter(|e| {
            let word = e.to_string();
            texts.iter().all(|t| {
                t == &word
                    || t.strip_prefix(word.as_str())
                        .and_then(|rest| rest.strip_prefix(' '))
                        .is_some_and(|rest| !rest.is_empty())
            })
        });
        let Some(e) = shared else {
            return Reply {
                code,
                enhanced: None,
                lines: texts,
            };
        };
        let word_len = e.to_string().len();
        let lines = texts
            .into_iter()
            .map(|t| t.get(word_len + 1..).unwrap_or("").to_string())
            .collect();
        Reply {
            code,
            enhanced: Some(e),
            lines,
        }
    }

    /// Each line's text as it is on the wire after the code and separator, enhanced code
    /// included (`"5.1.1 no such user"`), control characters not replaced. A reply built
    /// without lines has one empty line.
    pub fn texts(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.wire_lines().iter().map(move |l| match self.enhanced {
            None => Cow::Borrowed(l.as_str()),
            Some(e) if l.is_empty() => Cow::Owned(e.to_string()),
            Some(e) => Cow::Owned(format!("{e} {l}")),
        })
    }

    /// The enhanced status code at the start of the first line, as sent (RFC 3463), e.g.
    /// `"5.1.1"`: [`Reply::enhanced`], or the first word of the first line when that is one.
    pub fn enhanced_text(&self) -> Option<Cow<'_, str>> {
        if let Some(e) = self.enhanced {
            return Some(Cow::Owned(e.to_string()));
        }
        let word = self.wire_lines().first()?.split(' ').next()?;
        is_enhanced_code(word).then_some(Cow::Borrowed(word))
    }

    /// The text of all lines joined by spaces, without the enhanced codes.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in self.texts() {
            let t = strip_enhanced(&line);
            if t.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(t);
        }
        out
    }

    /// The lines as sent: an empty vector is one line with no text.
    fn wire_lines(&self) -> &[String] {
        if self.lines.is_empty() {
            &EMPTY_LINE
        } else {
            &self.lines
        }
    }

    fn write_lines(&self, mut sink: impl FnMut(&str)) {
        let lines = self.wire_lines();
        let last = lines.len() - 1;
        let mut line = String::new();
        for (i, text) in lines.iter().enumerate() {
            line.clear();
            // RFC 5321 §4.2.1: continuation lines use "-", the last line SP (or nothing).
            let sep = if i == last { ' ' } else { '-' };
            line.push_str(&format!("{:03}", self.code));
            let mut rest = String::new();
            if let Some(e) = self.enhanced {
                rest.push_str(&e.to_string());
            }
            if !text.is_empty() {
                if !rest.is_empty() {
                    rest.push(' ');
                }
                // Control characters would break the framing (or inject a reply line).
                rest.extend(text.chars().map(|c| if c.is_control() { ' ' } else { c }));
            }
            if rest.is_empty() {
                if sep == '-' {
                    line.push('-');
                }
            } else {
                line.push(sep);
                line.push_str(&rest);
            }
            sink(&line);
        }
    }
}

/// `"550 5.1.1 <x@example.test>: no such user here"`: the code, the enhanced code (once) and
/// the text of every line joined by spaces, for messages and logs. The alternate form (`{:#}`)
/// is the wire form without CRLFs, lines joined by `"\n"`: `250-first` / `250 last`.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            let mut first = true;
            let mut result = Ok(());
            self.write_lines(|line| {
                if result.is_ok() {
                    if !first {
                        result = f.write_str("\n");
                    }
                    if result.is_ok() {
                        result = f.write_str(line);
                    }
                }
                first = false;
            });
            return result;
        }
        write!(f, "{:03}", self.code)?;
        if let Some(e) = self.enhanced_text() {
            write!(f, " {e}")?;
        }
        let text = self.text();
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// An enhanced code written the way [`EnhancedCode`] displays it (`2.1.0`, not `2.01.0`), so
/// that taking it out of a line and putting it back gives the same octets.
fn canonical_enhanced(word: &str) -> Option<EnhancedCode> {
    EnhancedCode::parse(word).filter(|e| e.to_string() == word)
}

/// RFC 3463 §2 syntax: `class.subject.detail`, class 2, 4 or 5, subject and detail 1 to 3
/// digits. Unlike [`canonical_enhanced`], leading zeros are fine (`5.01.1`).
fn is_enhanced_code(word: &str) -> bool {
    EnhancedCode::parse(word).is_some()
}

/// The line without a leading enhanced code and the space after it.
fn strip_enhanced(line: &str) -> &str {
    match line.split_once(' ') {
        Some((w, rest)) if is_enhanced_code(w) => rest,
        None if is_enhanced_code(line) => "",
        _ => line,
    }
}

/// Reply lines longer than this are a protocol error for a client. RFC 5321 §4.5.3.1.5 allows
/// 512 octets; we take much more before giving up on a server.
pub const MAX_REPLY_LINE: usize = 4096;
/// A reply with more lines than this is a protocol error (an EHLO reply has about a dozen).
pub const MAX_REPLY_LINES: usize = 200;

/// Why a reply line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Not `3DIGIT [("-" / SP) text]` (RFC 5321 §4.2).
    #[error("not an SMTP reply line (expected a 3-digit code and a space or '-'): {0:?}")]
    Malformed(String),
    /// RFC 5321 §4.2.1: every line of a multi-line reply carries the same code.
    #[error("the code changed inside a multi-line reply ({first}, then {line:?})")]
    CodeChanged { first: u16, line: String },
    /// More than [`MAX_REPLY_LINES`] lines.
    #[error("a reply with more than {0} lines")]
    TooManyLines(usize),
}

/// Parses one reply line: `(code, is_last_line, text)`.
///
/// RFC 5321 §4.2: `Reply-code [ SP textstring ]` on the last line, `Reply-code "-" [ textstring ]`
/// on the others. The first digit must be 2 to 5; the other two are not checked further
/// (§4.2.1: a client must cope with unknown codes by their first digit).
pub fn parse_reply_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let bad = || ReplyError::Malformed(printable(line));
    let digits = line.get(..3).ok_or_else(bad)?;
    if !digits.iter().all(|b| b.is_ascii_digit()) || !(b'2'..=b'5').contains(&digits[0]) {
        return Err(bad());
    }
    let code = u16::from(digits[0] - b'0') * 100
        + u16::from(digits[1] - b'0') * 10
        + u16::from(digits[2] - b'0');
    let (last, text) = match line.get(3) {
        None => (true, &b""[..]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(bad()),
    };
    Ok((code, last, String::from_utf8_lossy(text).into_owned()))
}

/// Collects reply lines into replies (sans-IO): the client's side of [`Reply::to_bytes`].
#[derive(Debug, Default)]
pub struct ReplyAssembler {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (without CRLF). Returns the reply when this line completed it.
    /// After an error the assembler starts over: the lines of a half-read reply are dropped.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let (code, last, text) = match parse_reply_line(line) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.code = None;
                self.lines.clear();
                return Err(e);
            }
        };
        if let Some(first) = self.code {
            if first != code {
                let e = ReplyError::CodeChanged {
                    first,
                    line: printable(line),
                };
                self.code = None;
                self.lines.clear();
                return Err(e);
            }
        }
        self.code = Some(code);
        self.lines.push(text);
        if last {
            self.code = None;
            return Ok(Some(Reply::received(code, std::mem::take(&mut self.lines))));
        }
        if self.lines.len() >= MAX_REPLY_LINES {
            self.lines.clear();
            self.code = None;
            return Err(ReplyError::TooManyLines(MAX_REPLY_LINES));
        }
        Ok(None)
    }

    /// True while a multi-line reply is incomplete.
    pub fn in_progress(&self) -> bool {
        self.code.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_code_parse_table() {
        let cases: &[(&str, Option<EnhancedCode>)] = &[
            ("2.1.0", Some(EnhancedCode(2, 1, 0))),
            ("5.7.139", Some(EnhancedCode(5, 7, 139))),
            ("4.4.2", Some(EnhancedCode(4, 4, 2))),
            ("5.999.999", Some(EnhancedCode(5, 999, 999))),
            ("", None),
            ("3.1.0", None),
            ("2.1", None),
            ("2.1.0.1", None),
            ("2..0", None),
            ("2.1000.0", None),
            ("2.+1.0", None),
            ("2.1.-0", None),
            ("x.y.z", None),
            ("25.1.0", None),
            (" 2.1.0", None),
        ];
        for (s, want) in cases {
            assert_eq!(EnhancedCode::parse(s), *want, "{s:?}");
        }
        assert_eq!(EnhancedCode(5, 1, 1).to_string(), "5.1.1");
    }

    #[test]
    fn wire_form_table() {
        let cases: Vec<(Reply, &str)> = vec![
            (Reply::new(250, "2.1.0", "Ok"), "250 2.1.0 Ok\r\n"),
            (Reply::new(250, "", "Ok"), "250 Ok\r\n"),
            (Reply::new(250, "bogus", "Ok"), "250 Ok\r\n"),
            (
                Reply::new(220, "", "mx.example.test ESMTP"),
                "220 mx.example.test ESMTP\r\n",
            ),
            (Reply::new(221, "2.0.0", "Bye"), "221 2.0.0 Bye\r\n"),
            (Reply::new(334, "", "VXNlcm5hbWU6"), "334 VXNlcm5hbWU6\r\n"),
            // RFC 4954 §4: an empty challenge is "334 " (we send "334").
            (Reply::new(334, "", ""), "334\r\n"),
            (Reply::new(250, "2.0.0", ""), "250 2.0.0\r\n"),
            (Reply::multiline(250, "", vec![]), "250\r\n"),
            (
                Reply::multiline(
                    250,
                    "",
                    vec![
                        "mx.example.test".into(),
                        "PIPELINING".into(),
                        "8BITMIME".into(),
                    ],
                ),
                "250-mx.example.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            ),
            (
                Reply::multiline(214, "2.0.0", vec!["a".into(), "b".into()]),
                "214-2.0.0 a\r\n214 2.0.0 b\r\n",
            ),
            (
                Reply::multiline(250, "", vec!["".into(), "".into()]),
                "250-\r\n250\r\n",
            ),
            // Injection attempt through echoed text.
            (
                Reply::new(501, "5.1.3", "bad <x\r\n250 ok>"),
                "501 5.1.3 bad <x  250 ok>\r\n",
            ),
            (Reply::new(7, "", "x"), "007 x\r\n"),
        ];
        for (reply, want) in cases {
            assert_eq!(String::from_utf8(reply.to_bytes()).unwrap(), want);
            assert_eq!(format!("{reply:#}"), want.trim_end().replace("\r\n", "\n"));
        }
    }

    #[test]
    fn classes() {
        for (code, pos, trans, perm) in [
            (220, true, false, false),
            (354, true, false, false),
            (421, false, true, false),
            (550, false, false, true),
            (199, false, false, false),
        ] {
            let r = Reply::new(code, "", "");
            assert_eq!(r.is_positive(), pos, "{code}");
            assert_eq!(r.is_transient(), trans, "{code}");
            assert_eq!(r.is_permanent(), perm, "{code}");
        }
    }

    /// A reply as a client reads it, from the text of each line.
    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply::received(code, lines.iter().map(|s| s.to_string()).collect())
    }

    /// Feeds `input` in chunks of `chunk` octets through the line splitter and the assembler.
    fn parse_all(input: &[u8], chunk: usize) -> Vec<Result<Reply, ReplyError>> {
        let mut lines = crate::line::LineReader::new(MAX_REPLY_LINE);
        let mut asm = ReplyAssembler::new();
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            lines.push(c);
            while let Some(Ok(line)) = lines.next_line() {
                match asm.push_line(&line) {
                    Ok(Some(r)) => out.push(Ok(r)),
                    Ok(None) => {}
                    Err(e) => out.push(Err(e)),
                }
            }
        }
        out
    }

    #[test]
    fn reply_lines_table() {
        type Case<'a> = (&'a [u8], Result<(u16, bool, &'a str), ()>);
        let cases: Vec<Case> = vec![
            (b"250 ok", Ok((250, true, "ok"))),
            (b"250-first", Ok((250, false, "first"))),
            (b"250", Ok((250, true, ""))),
            (b"250 ", Ok((250, true, ""))),
            (b"250-", Ok((250, false, ""))),
            (
                b"550 5.1.1 <x>: no such user here",
                Ok((550, true, "5.1.1 <x>: no such user here")),
            ),
            (
                b"354 End data with <CR><LF>.<CR><LF>",
                Ok((354, true, "End data with <CR><LF>.<CR><LF>")),
            ),
            (b"421 4.3.0 bye", Ok((421, true, "4.3.0 bye"))),
            (b"", Err(())),
            (b"25", Err(())),
            (b"25x ok", Err(())),
            (b"650 ok", Err(())),
            (b"150 ok", Err(())),
            (b"250x", Err(())),
            (b"250_ok", Err(())),
            (b"hello", Err(())),
            (b"+OK pop3", Err(())),
        ];
        for (line, want) in cases {
            let got = parse_reply_line(line);
            match (got, want) {
                (Ok((c, l, t)), Ok((wc, wl, wt))) => {
                    assert_eq!((c, l, t.as_str()), (wc, wl, wt), "{line:?}");
                }
                (Err(ReplyError::Malformed(_)), Err(())) => {}
                (got, want) => panic!("{line:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn multiline_replies_in_any_chunking() {
        let input =
            b"220 mx ready\r\n250-mx Hello\r\n250-PIPELINING\r\n250 SIZE 100\r\n550 5.1.1 nope\r\n";
        let want = vec![
            reply(220, &["mx ready"]),
            reply(250, &["mx Hello", "PIPELINING", "SIZE 100"]),
            reply(550, &["5.1.1 nope"]),
        ];
        for chunk in [1, 2, 3, 7, 1000] {
            let got: Vec<Reply> = parse_all(input, chunk)
                .into_iter()
                .map(|r| r.expect("ok"))
                .collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
        assert_eq!(want[2], Reply::new(550, "5.1.1", "nope"));
        // Bare LF line ends (a netcat-made server) are read too.
        let got = parse_all(b"250-a\n250 b\n", 1);
        assert_eq!(got, vec![Ok(reply(250, &["a", "b"]))]);
    }

    #[test]
    fn bad_multiline_replies() {
        let got = parse_all(b"250-a\r\n251 b\r\n250 c\r\n", 5);
        assert!(
            matches!(got[0], Err(ReplyError::CodeChanged { first: 250, .. })),
            "{got:?}"
        );
        // The assembler starts over after an error.
        assert_eq!(got[1], Ok(reply(250, &["c"])));

        let mut many = Vec::new();
        for _ in 0..MAX_REPLY_LINES + 1 {
            many.extend_from_slice(b"250-x\r\n");
        }
        let got = parse_all(&many, 4096);
        assert_eq!(got, vec![Err(ReplyError::TooManyLines(MAX_REPLY_LINES))]);

        // A malformed line inside a multi-line reply also starts over (found by the smtp_reply
        // fuzz target): the half reply's lines must not end up in the next reply.
        let got = parse_all(b"220-mx.example.test\r\n22ESMTP\r\n250 ok\r\n", 3);
        assert!(matches!(got[0], Err(ReplyError::Malformed(_))), "{got:?}");
        assert_eq!(got[1], Ok(reply(250, &["ok"])));
        let mut asm = ReplyAssembler::new();
        assert_eq!(asm.push_line(b"250-first"), Ok(None));
        assert!(asm.push_line(b"garbage").is_err());
        assert!(!asm.in_progress());
    }

    #[test]
    fn reply_display_and_classes() {
        let r = reply(550, &["5.1.1 <x@example.test>: no such user here"]);
        assert_eq!(
            r.to_string(),
            "550 5.1.1 <x@example.test>: no such user here"
        );
        assert_eq!(r.enhanced_text().as_deref(), Some("5.1.1"));
        assert_eq!(r.text(), "<x@example.test>: no such user here");
        assert!(r.is_permanent() && !r.is_positive() && !r.is_transient());
        let m = reply(550, &["5.7.1 first part", "5.7.1 second part"]);
        assert_eq!(m.to_string(), "550 5.7.1 first part second part");
        assert_eq!(
            format!("{m:#}"),
            "550-5.7.1 first part\n550 5.7.1 second part"
        );
        let plain = reply(250, &["ok"]);
        assert_eq!(plain.to_string(), "250 ok");
        assert_eq!(plain.enhanced_text(), None);
        assert_eq!(reply(250, &[""]).to_string(), "250");
        assert_eq!(format!("{:#}", reply(250, &[""])), "250");
        assert!(reply(354, &["go"]).is_positive());
        assert!(!reply(354, &["go"]).is_success());
        assert!(reply(451, &["4.3.0 later"]).is_transient());
        assert_eq!(reply(250, &["2.0.0"]).text(), "");
        assert_eq!(reply(250, &["2.0.0"]).to_string(), "250 2.0.0");
        // Not an enhanced code: kept as text.
        assert_eq!(reply(250, &["3.1.1 x"]).enhanced_text(), None);
        assert_eq!(reply(250, &["2.1 x"]).enhanced_text(), None);
        // A code on the first line only, or one with leading zeros, stays in the text.
        let mixed = reply(250, &["2.0.0 a", "b"]);
        assert_eq!(mixed.enhanced, None);
        assert_eq!(mixed.enhanced_text().as_deref(), Some("2.0.0"));
        assert_eq!(mixed.to_string(), "250 2.0.0 a b");
        let zeros = reply(550, &["5.01.1 x"]);
        assert_eq!(
            (zeros.enhanced, zeros.lines.clone()),
            (None, vec!["5.01.1 x".to_string()])
        );
        assert_eq!(zeros.enhanced_text().as_deref(), Some("5.01.1"));
        assert_eq!(zeros.text(), "x");
    }

    #[test]
    fn received_takes_a_shared_enhanced_code_out() {
        type Case<'a> = (&'a [&'a str], Option<EnhancedCode>, &'a [&'a str]);
        let cases: &[Case] = &[
            (&["5.1.1 nope"], Some(EnhancedCode(5, 1, 1)), &["nope"]),
            (&["2.0.0"], Some(EnhancedCode(2, 0, 0)), &[""]),
            (
                &["2.0.0 a", "2.0.0", "2.0.0 b"],
                Some(EnhancedCode(2, 0, 0)),
                &["a", "", "b"],
            ),
            (
                &["2.0.0  two spaces"],
                Some(EnhancedCode(2, 0, 0)),
                &[" two spaces"],
            ),
            // Stays as received: trailing space, different codes, no code, odd spellings.
            (&["2.0.0 "], None, &["2.0.0 "]),
            (&["2.0.0 a", "2.0.1 b"], None, &["2.0.0 a", "2.0.1 b"]),
            (&["2.0.0 a", "b"], None, &["2.0.0 a", "b"]),
            (
                &["mx Hello", "PIPELINING"],
                None,
                &["mx Hello", "PIPELINING"],
            ),
            (&["2.00.0 x"], None, &["2.00.0 x"]),
            (&["2.0.0x"], None, &["2.0.0x"]),
            (&[""], None, &[""]),
        ];
        for (texts, enhanced, lines) in cases {
            let r = reply(250, texts);
            assert_eq!(r.enhanced, *enhanced, "{texts:?}");
            assert_eq!(r.lines, *lines, "{texts:?}");
            // Whatever the form, the texts and the wire octets are what was received.
            let back: Vec<String> = r.texts().map(|t| t.into_owned()).collect();
            assert_eq!(back, *texts);
            let wire: Vec<u8> = texts
                .iter()
                .enumerate()
                .flat_map(|(i, t)| {
                    let sep = if i + 1 == texts.len() { " " } else { "-" };
                    let line = if t.is_empty() {
                        if sep == " " {
                            "250".to_string()
                        } else {
                            "250-".to_string()
                        }
                    } else {
                        format!("250{sep}{t}")
                    };
                    format!("{line}\r\n").into_bytes()
                })
                .collect();
            assert_eq!(r.to_bytes(), wire, "{texts:?}");
        }
    }

    #[test]
    fn encode_then_parse_gives_the_same_reply() {
        let replies = vec![
            Reply::new(250, "2.1.0", "Ok"),
            Reply::new(250, "", "Ok"),
            Reply::new(220, "", "mx.example.test ESMTP mailroom ready"),
            Reply::new(334, "", ""),
            Reply::new(250, "2.0.0", ""),
            Reply::new(550, "5.1.1", "<x@example.test>: no such user here"),
            Reply::multiline(
                250,
                "",
                vec![
                    "mx.example.test Hello pc [127.0.0.1]".into(),
                    "PIPELINING".into(),
                    "SIZE 100".into(),
                ],
            ),
            Reply::multiline(214, "2.0.0", vec!["a".into(), "".into(), "b".into()]),
            Reply::multiline(250, "", vec!["".into(), "".into()]),
        ];
        for r in replies {
            let wire = r.to_bytes();
            let got = parse_all(&wire, 1);
            assert_eq!(got, vec![Ok(r.clone())], "{wire:?}");
        }
    }
}
