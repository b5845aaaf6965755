//! POP3 responses in both directions: status lines ([`Reply`]: built by the server with
//! [`ok`] / [`err`], read by the client with [`Reply::parse`]), RFC 2449 response codes, and
//! multi-line responses with byte-stuffing (RFC 1939 §3): [`Stuffer`] and [`multiline`] stuff on
//! the server's side, [`unstuff`] and [`MultilineBody`] take the stuffing away on the client's,
//! and [`parse_scan_listing`] / [`parse_uid_listing`] read the lines the server's LIST and UIDL
//! send.
//!
//! ```text
//! single-line = ("+OK" / "-ERR") [SP [resp-code SP] text] CRLF   ; RFC 1939 §3, RFC 2449 §8
//! resp-code   = "[" resp-level *("/" resp-level) "]"             ; RFC 2449 §8
//! multi-line  = single-line *(stuffed-line CRLF) "." CRLF        ; RFC 1939 §3
//! stuffed-line: a line that begins with "." gets one more "." in front
//! ```
//!
//! Response text never contains CR, LF or other control characters on the wire: they are
//! replaced by spaces, so text derived from client input can never inject an extra line. A
//! status line is at most 512 octets including CRLF (RFC 2449 §4); longer text is cut.
//!
//! A status line reads back as the [`Reply`] it was built from: `Reply::parse` of
//! `Reply::to_bytes` (without its CRLF) is the same reply when the text has no control
//! characters and fits in the line.

use std::fmt;

use crate::line::printable;

/// RFC 2449 §4: responses are at most 512 octets including the CRLF.
pub const MAX_RESPONSE_LINE: usize = 512;

/// The response codes mailroom sends (RFC 2449 §8, RFC 3206).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespCode {
    /// RFC 2449 §8.1.1: the maildrop is locked by another session.
    InUse,
    /// RFC 3206 §4: the failure is due to the credentials (AUTH-RESP-CODE, RFC 3206 §5).
    Auth,
    /// RFC 3206 §3: a temporary problem on the server; trying later may work.
    SysTemp,
    /// RFC 3206 §3: a permanent problem on the server; trying again will not help.
    SysPerm,
}

impl RespCode {
    /// The code as written inside the brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            RespCode::InUse => "IN-USE",
            RespCode::Auth => "AUTH",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
        }
    }
}

impl fmt::Display for RespCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.as_str())
    }
}

/// Appends `text` with control characters replaced by spaces, never letting the whole line
/// (including `prefix_len` octets already written and the CRLF) exceed [`MAX_RESPONSE_LINE`].
fn push_text(out: &mut Vec<u8>, text: &str, prefix_len: usize) {
    let room = MAX_RESPONSE_LINE.saturating_sub(prefix_len + 2);
    let mut used = 0;
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        let n = c.len_utf8();
        if used + n > room {
            break;
        }
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        used += n;
    }
}

/// One status line: `+OK text` or `-ERR text` (RFC 1939 §3). The text is everything after the
/// status indicator and its space, an RFC 2449 response code included (`[IN-USE] ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `+OK` (true) or `-ERR` (false).
    pub ok: bool,
    /// The text after the status indicator (may be empty).
    pub text: String,
}

/// A line that is not a status line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected +OK or -ERR, got {0:?}")]
pub struct StatusError(pub String);

impl Reply {
    /// `-ERR [CODE] text` (RFC 2449 §8: the response code follows "-ERR " directly).
    pub fn err(code: Option<RespCode>, text: &str) -> Reply {
        let text = match (code, text.is_empty()) {
            (None, _) => text.to_string(),
            (Some(c), true) => c.to_string(),
            (Some(c), false) => format!("{c} {text}"),
        };
        Reply { ok: false, text }
    }

    /// The wire form: `+OK text CRLF` / `-ERR text CRLF` (`+OK CRLF`-less form `+OK` when the
    /// text is empty), control characters replaced, cut to [`MAX_RESPONSE_LINE`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let status: &[u8] = if self.ok { b"+OK" } else { b"-ERR" };
        let mut out = Vec::with_capacity(self.text.len() + 7);
        out.extend_from_slice(status);
        if !self.text.is_empty() {
            out.push(b' ');
            push_text(&mut out, &self.text, status.len() + 1);
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Parses a status line (without its line end). RFC 1939 §3 says the indicators are upper
    /// case; we accept any case.
    pub fn parse(line: &[u8]) -> Result<Reply, StatusError> {
        let bad = || StatusError(printable(line));
        let text = String::from_utf8_lossy(line);
        let (ok, rest) =
            if text.len() >= 3 && text.is_char_boundary(3) && text[..3].eq_ignore_ascii_case("+OK")
            {
                (true, &text[3..])
            } else if text.len() >= 4
                && text.is_char_boundary(4)
                && text[..4].eq_ignore_ascii_case("-ERR")
            {
                (false, &text[4..])
            } else {
                return Err(bad());
            };
        let rest = match rest.strip_prefix(' ') {
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return Err(bad()),
        };
        Ok(Reply {
            ok,
            text: rest.to_string(),
        })
    }
}

/// `+OK text` / `-ERR text`, as on the wire without the CRLF.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.ok { "+OK" } else { "-ERR" })?;
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// `+OK text CRLF` (`+OK CRLF`-less form `+OK` when `text` is empty).
pub fn ok(text: &str) -> Vec<u8> {
    Reply {
        ok: true,
        text: text.to_string(),
    }
    .to_bytes()
}

/// `-ERR [CODE] text CRLF` (RFC 2449 §8: the response code follows "-ERR " directly).
pub fn err(code: Option<RespCode>, text: &str) -> Vec<u8> {
    Reply::err(code, text).to_bytes()
}

/// `+ base64 CRLF`: a SASL continuation (RFC 5034 §4). An empty challenge is `+ ` CRLF.
pub fn continuation(challenge_b64: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(challenge_b64.len() + 4);
    out.extend_from_slice(b"+ ");
    push_text(&mut out, challenge_b64, 2);
    out.extend_from_slice(b"\r\n");
    out
}

/// The capabilities mailroom announces in both states (RFC 2449 §6), in CAPA order.
/// `stls` adds STLS (RFC 2595 §4) when TLS is configured.
pub fn capabilities(stls: bool) -> Vec<&'static str> {
    let mut caps = vec![
        // RFC 2449 §6.4, §6.5, §6.8.
        "TOP",
        "UIDL",
        "USER",
        // RFC 2449 §6.3 / RFC 5034 §3.
        "SASL PLAIN LOGIN",
        // RFC 2449 §6.4, RFC 3206 §5.
        "RESP-CODES",
        "AUTH-RESP-CODE",
        // RFC 2449 §6.6: replies come back in order, in as few writes as possible.
        "PIPELINING",
        // RFC 2449 §6.7: the server never deletes mail on its own.
        "EXPIRE NEVER",
        // RFC 2449 §6.9.
        "IMPLEMENTATION mailroom",
    ];
    if stls {
        caps.push("STLS");
    }
    caps
}

/// A multi-line response body of short lines (CAPA, LIST, UIDL): each line byte-stuffed,
/// CRLF-terminated, then the terminating `.` CRLF (RFC 1939 §3).
pub fn multiline<I, S>(lines: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = Vec::new();
    for l in lines {
        let l = l.as_ref();
        if l.starts_with('.') {
            out.push(b'.');
        }
        out.extend(
            l.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Byte-stuffs a message for a multi-line response, chunk by chunk (RFC 1939 §3: "If any line
/// begins with the termination octet, the line is 'byte-stuffed' by pre-pending the termination
/// octet to that line of the response").
///
/// Line starts are tracked across chunk boundaries, so any chunking of the same message gives
/// the same output. [`Stuffer::finish`] ends the last line with CRLF if the message did not
/// (so the terminator is always on a line of its own) and appends `.` CRLF.
#[derive(Debug, Clone)]
pub struct Stuffer {
    at_line_start: bool,
    written: u64,
}

impl Default for Stuffer {
    fn default() -> Self {
        Stuffer::new()
    }
}

impl Stuffer {
    /// A stuffer at the start of a message.
    pub fn new() -> Self {
        Stuffer {
            at_line_start: true,
            written: 0,
        }
    }

    /// Appends `chunk`, stuffed, to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.at_line_start && rest[0] == b'.' {
                out.push(b'.');
            }
            // Copy up to and including the next LF in one go.
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    out.extend_from_slice(&rest[..=i]);
                    self.at_line_start = true;
                    rest = &rest[i + 1..];
                }
                None => {
                    out.extend_from_slice(rest);
                    self.at_line_start = false;
                    rest = &[];
                }
            }
        }
        self.written += chunk.len() as u64;
    }

    /// Ends the response: CRLF if the last line is unterminated, then `.` CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
        out.extend_from_slice(b".\r\n");
    }

    /// Message octets pushed so far (before stuffing).
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// One line of a multi-line response: `None` for the terminating ".", else the line with the
/// byte-stuffing "." removed (RFC 1939 §3). The client's side of [`Stuffer`].
pub fn unstuff(line: &[u8]) -> Option<&[u8]> {
    match line {
        b"." => None,
        [b'.', rest @ ..] => Some(rest),
        _ => Some(line),
    }
}

/// A multi-line response larger than the reader's limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sent a response larger than {0} octets")]
pub struct TooLarge(pub usize);

/// The sans-IO core of reading a multi-line response (RFC 1939 §3): feed it the lines after
/// the `+OK` status line, without their line ends, until it says the "." line has come. The
/// body it collects is unstuffed, with CRLF line ends, and at most `limit` octets.
#[derive(Debug)]
pub struct MultilineBody {
    body: Vec<u8>,
    limit: usize,
}

impl MultilineBody {
    pub fn new(limit: usize) -> Self {
        MultilineBody {
            body: Vec::new(),
            limit,
        }
    }

    /// Takes one line: `Ok(true)` for the terminating ".", `Ok(false)` for a content line,
    /// `Err` when the body would grow beyond the limit.
    pub fn push_line(&mut self, line: &[u8]) -> Result<bool, TooLarge> {
        let Some(content) = unstuff(line) else {
            return Ok(true);
        };
        if self.body.len() + content.len() + 2 > self.limit {
            return Err(TooLarge(self.limit));
        }
        self.body.extend_from_slice(content);
        self.body.extend_from_slice(b"\r\n");
        Ok(false)
    }

    /// The body so far (all of it once [`MultilineBody::push_line`] returned `Ok(true)`).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// The lines of a multi-line body (as [`MultilineBody`] returns it), as text: how CAPA, LIST
/// and UIDL listings are split before each line is parsed.
pub fn lines_of(body: &[u8]) -> Vec<String> {
    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect()
}

/// A scan listing `"n size"` (RFC 1939 §5, LIST and STAT); further text after the size is
/// ignored.
pub fn parse_scan_listing(text: &str) -> Option<(u32, u64)> {
    let mut words = text.split_whitespace();
    let n = words.next()?.parse().ok()?;
    let size = words.next()?.parse().ok()?;
    Some((n, size))
}

/// A unique-id listing `"n uid"` (RFC 1939 §7, UIDL); the uid is 1 to 70 characters 0x21-0x7E.
pub fn parse_uid_listing(text: &str) -> Option<(u32, String)> {
    let mut words = text.split_whitespace();
    let n = words.next()?.parse().ok()?;
    let uid = words.next()?;
    if uid.is_empty() || uid.len() > 70 || !uid.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    Some((n, uid.to_string()))
}

/// The APOP timestamp in a greeting (RFC 1939 §7): the first `<...>` holding an `@`.
pub fn apop_timestamp(greeting: &str) -> Option<&str> {
    let start = greeting.find('<')?;
    let end = start + greeting[start..].find('>')?;
    let ts = &greeting[start..=end];
    ts.contains('@').then_some(ts)
}

/// The size a client counts for a stored message (RFC 1939 §11: the octets of the message as
/// sent, CRLF line ends, without the stuffing and the terminator): the stored size, plus the
/// CRLF [`Stuffer::finish`] adds when the message does not end in a line feed. `tail` is the
/// message's last octet (None for an empty message).
pub fn wire_size(stored: u64, tail: Option<u8>) -> u64 {
    match tail {
        Some(b'\n') | None => stored,
        Some(_) => stored + 2,
    }
}

/// Where [`TopFilter`] is inside the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinePos {
    Start,
    /// A CR as the first octet of the line (an empty line if LF follows).
    CrAtStart,
    Middle,
}

/// Cuts a message after its header, the blank line and `n` body lines (RFC 1939 §7, TOP),
/// working chunk by chunk so the message never has to be in memory at once.
///
/// A message without a blank line is all header and is sent whole.
#[derive(Debug, Clone)]
pub struct TopFilter {
    remaining: u64,
    in_header: bool,
    pos: LinePos,
    done: bool,
}

impl TopFilter {
    /// A filter that lets through the header and `lines` body lines.
    pub fn new(lines: u64) -> Self {
        TopFilter {
            remaining: lines,
            in_header: true,
            pos: LinePos::Start,
            done: false,
        }
    }

    /// True once everything TOP sends has passed; later input is to be ignored.
    pub fn done(&self) -> bool {
        self.done
    }

    /// How many octets at the start of `chunk` belong to the TOP output (all of them unless
    /// the end falls inside this chunk).
    pub fn take(&mut self, chunk: &[u8]) -> usize {
        if self.done {
            return 0;
        }
        for (i, &b) in chunk.iter().enumerate() {
            let line_end_empty = match (self.pos, b) {
                (LinePos::Start | LinePos::CrAtStart, b'\n') => Some(true),
                (LinePos::Middle, b'\n') => Some(false),
                (LinePos::Start, b'\r') => {
                    self.pos = LinePos::CrAtStart;
                    None
                }
                _ => {
                    self.pos = LinePos::Middle;
                    None
                }
            };
            let Some(empty) = line_end_empty else {
                continue;
            };
            self.pos = LinePos::Start;
            if self.in_header {
                if empty {
                    // RFC 5322 §2.1: the first empty line ends the header.
                    self.in_header = false;
                    if self.remaining == 0 {
                        self.done = true;
                        return i + 1;
                    }
                }
            } else {
                self.remaining -= 1;
                if self.remaining == 0 {
                    self.done = true;
                    return i + 1;
                }
            }
        }
        chunk.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        let mut s = Stuffer::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    /// Feeds `input` whole, in 1-byte chunks and split at every position; all must agree.
    fn check_stuff(input: &[u8], want: &[u8]) {
        assert_eq!(stuff_chunks(&[input]), want, "whole {input:?}");
        let ones: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(stuff_chunks(&ones), want, "1-byte {input:?}");
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(stuff_chunks(&[a, b]), want, "split {split} {input:?}");
        }
    }

    #[test]
    fn stuffing_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"..\r\n", b"...\r\n.\r\n"),
            (b"a\r\n.b\r\n", b"a\r\n..b\r\n.\r\n"),
            (b"a.b\r\n", b"a.b\r\n.\r\n"),
            (b"a\r\n.", b"a\r\n..\r\n.\r\n"),
            // Unterminated last line: CRLF is added before the terminator.
            (b"no newline", b"no newline\r\n.\r\n"),
            (b"x\r\ny", b"x\r\ny\r\n.\r\n"),
            (b"\r\n\r\n.\r\n", b"\r\n\r\n..\r\n.\r\n"),
            // A dot after a CR that is not followed by LF is not at a line start.
            (b"a\r.b\r\n", b"a\r.b\r\n.\r\n"),
        ];
        for (input, want) in cases {
            check_stuff(input, want);
        }
    }

    #[test]
    fn wire_size_matches_what_is_sent() {
        for input in [&b""[..], b"a\r\n", b"abc", b"x\r\n.y", b".\r\n", b"\r\n"] {
            let mut s = Stuffer::new();
            let mut out = Vec::new();
            s.push(input, &mut out);
            s.finish(&mut out);
            // Undo the stuffing as a client does and count.
            let body = &out[..out.len() - 3];
            let mut unstuffed = 0u64;
            for line in body.split_inclusive(|&b| b == b'\n') {
                unstuffed += line.len() as u64 - u64::from(line.starts_with(b"."));
            }
            assert_eq!(
                wire_size(input.len() as u64, input.last().copied()),
                unstuffed,
                "{input:?}"
            );
            assert_eq!(s.written(), input.len() as u64);
        }
    }

    fn top(input: &[u8], n: u64, chunk: usize) -> Vec<u8> {
        let mut f = TopFilter::new(n);
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            let k = f.take(c);
            out.extend_from_slice(&c[..k]);
            if f.done() {
                assert_eq!(f.take(b"more\r\n"), 0);
                break;
            }
        }
        out
    }

    #[test]
    fn top_table() {
        let msg: &[u8] = b"Subject: x\r\nFrom: a\r\n\r\nline1\r\nline2\r\n\r\nline4\r\n";
        let cases: &[(&[u8], u64, &[u8])] = &[
            (msg, 0, b"Subject: x\r\nFrom: a\r\n\r\n"),
            (msg, 1, b"Subject: x\r\nFrom: a\r\n\r\nline1\r\n"),
            (msg, 2, b"Subject: x\r\nFrom: a\r\n\r\nline1\r\nline2\r\n"),
            (
                msg,
                3,
                b"Subject: x\r\nFrom: a\r\n\r\nline1\r\nline2\r\n\r\n",
            ),
            (msg, 4, msg),
            (msg, 100, msg),
            (msg, u64::MAX, msg),
            // No blank line: all header, sent whole.
            (
                b"Subject: x\r\nFrom: a\r\n",
                0,
                b"Subject: x\r\nFrom: a\r\n",
            ),
            (b"Subject: x", 0, b"Subject: x"),
            // Empty body.
            (b"Subject: x\r\n\r\n", 5, b"Subject: x\r\n\r\n"),
            // Body whose last line has no CRLF.
            (b"S: x\r\n\r\na\r\nb", 5, b"S: x\r\n\r\na\r\nb"),
            (b"S: x\r\n\r\na\r\nb", 1, b"S: x\r\n\r\na\r\n"),
            // Bare LF line ends count too; a line holding only CR before LF is empty.
            (b"S: x\n\nbody\nmore\n", 1, b"S: x\n\nbody\n"),
            (
                b"S: x\r\n\r\r\nstill header\r\n\r\nb\r\n",
                0,
                b"S: x\r\n\r\r\nstill header\r\n\r\n",
            ),
            // A message that starts with the blank line has an empty header.
            (b"\r\nbody\r\n", 0, b"\r\n"),
            (b"\r\nbody\r\nb2\r\n", 1, b"\r\nbody\r\n"),
        ];
        for (input, n, want) in cases {
            for chunk in 1..=input.len().max(1) {
                assert_eq!(
                    top(input, *n, chunk),
                    *want,
                    "TOP {n} chunk {chunk} of {:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(ok(""), b"+OK\r\n");
        assert_eq!(ok("2 320"), b"+OK 2 320\r\n");
        assert_eq!(err(None, "no such message"), b"-ERR no such message\r\n");
        assert_eq!(
            err(Some(RespCode::InUse), "locked"),
            b"-ERR [IN-USE] locked\r\n"
        );
        assert_eq!(err(Some(RespCode::SysTemp), ""), b"-ERR [SYS/TEMP]\r\n");
        assert_eq!(RespCode::Auth.to_string(), "[AUTH]");
        assert_eq!(RespCode::SysPerm.to_string(), "[SYS/PERM]");
        // No line injection.
        assert_eq!(ok("a\r\n+OK b"), b"+OK a  +OK b\r\n");
        assert_eq!(err(None, "x\ny"), b"-ERR x y\r\n");
        assert_eq!(continuation(""), b"+ \r\n");
        assert_eq!(continuation("VXNlcm5hbWU6"), b"+ VXNlcm5hbWU6\r\n");
    }

    #[test]
    fn long_text_is_cut_at_512_octets() {
        let long = "é".repeat(1000);
        for line in [ok(&long), err(Some(RespCode::SysTemp), &long)] {
            assert!(line.len() <= MAX_RESPONSE_LINE, "{}", line.len());
            assert!(line.ends_with(b"\r\n"));
            assert!(std::str::from_utf8(&line).is_ok(), "cut inside a character");
        }
    }

    #[test]
    fn multiline_stuffs_and_terminates() {
        assert_eq!(multiline(["TOP", "UIDL"]), b"TOP\r\nUIDL\r\n.\r\n");
        assert_eq!(multiline([".hidden"]), b"..hidden\r\n.\r\n");
        assert_eq!(multiline(Vec::<String>::new()), b".\r\n");
    }

    #[test]
    fn capability_list() {
        let caps = capabilities(false);
        for c in [
            "TOP",
            "UIDL",
            "USER",
            "SASL PLAIN LOGIN",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "IMPLEMENTATION mailroom",
        ] {
            assert!(caps.contains(&c), "{c}");
        }
        assert!(!caps.contains(&"STLS"));
        assert!(capabilities(true).contains(&"STLS"));
    }

    #[test]
    fn parse_status_lines() {
        let ok = |t: &str| {
            Ok(Reply {
                ok: true,
                text: t.into(),
            })
        };
        let err = |t: &str| {
            Ok(Reply {
                ok: false,
                text: t.into(),
            })
        };
        let cases: Vec<(&[u8], Result<Reply, ()>)> = vec![
            (b"+OK", ok("")),
            (b"+OK ", ok("")),
            (b"+OK 2 320", ok("2 320")),
            (b"+ok lower case", ok("lower case")),
            (b"-ERR [AUTH] wrong password", err("[AUTH] wrong password")),
            (b"-ERR", err("")),
            (b"+OKAY", Err(())),
            (b"-ERRx", Err(())),
            (b"OK", Err(())),
            (b"", Err(())),
            (b"220 smtp", Err(())),
            ("+\u{e9}".as_bytes(), Err(())),
        ];
        for (line, want) in cases {
            let got = Reply::parse(line).map_err(|_| ());
            assert_eq!(got, want, "{line:?}");
        }
        assert_eq!(
            Reply::parse(b"+OK hi").map(|r| r.to_string()),
            Ok("+OK hi".into())
        );
        assert_eq!(
            Reply::parse(b"-ERR").map(|r| r.to_string()),
            Ok("-ERR".into())
        );
        assert_eq!(
            Reply::parse(b"220\x1b smtp").map_err(|e| e.to_string()),
            Err("expected +OK or -ERR, got \"220\\\\x1b smtp\"".into())
        );
    }

    /// What the server builds, the client reads back as the same reply.
    #[test]
    fn status_lines_round_trip() {
        let replies = [
            Reply {
                ok: true,
                text: String::new(),
            },
            Reply {
                ok: true,
                text: "bob@example.test has 2 messages (300 octets)".into(),
            },
            Reply::err(Some(RespCode::InUse), "the maildrop is in use"),
            Reply::err(Some(RespCode::SysTemp), ""),
            Reply::err(None, "no such message"),
            Reply {
                ok: true,
                text: "mailroom POP3 ready <1.2@mx.example.test>".into(),
            },
        ];
        for r in replies {
            let wire = r.to_bytes();
            let line = wire.strip_suffix(b"\r\n").expect("CRLF");
            assert_eq!(Reply::parse(line), Ok(r.clone()), "{wire:?}");
            assert_eq!(r.to_string().as_bytes(), line);
        }
        assert_eq!(
            err(Some(RespCode::Auth), "wrong"),
            Reply::err(Some(RespCode::Auth), "wrong").to_bytes()
        );
    }

    #[test]
    fn unstuffing() {
        assert_eq!(unstuff(b"."), None);
        assert_eq!(unstuff(b".."), Some(&b"."[..]));
        assert_eq!(unstuff(b"..x"), Some(&b".x"[..]));
        assert_eq!(unstuff(b"x."), Some(&b"x."[..]));
        assert_eq!(unstuff(b""), Some(&b""[..]));
    }

    #[test]
    fn multiline_body() {
        let mut b = MultilineBody::new(1024);
        for (line, done) in [
            (&b"1 120"[..], false),
            (b"..x", false),
            (b"", false),
            (b".", true),
        ] {
            assert_eq!(b.push_line(line), Ok(done), "{line:?}");
        }
        assert_eq!(b.into_body(), b"1 120\r\n.x\r\n\r\n");
        assert_eq!(lines_of(b"1 120\r\n.x\r\n"), vec!["1 120", ".x"]);

        // The limit counts the body with its CRLFs: 3 + 2 fits in 5, one more octet does not.
        let mut b = MultilineBody::new(5);
        assert_eq!(b.push_line(b"abc"), Ok(false));
        let mut c = MultilineBody::new(5);
        assert_eq!(c.push_line(b"abcd"), Err(TooLarge(5)));
        assert_eq!(b.push_line(b"."), Ok(true));
        assert_eq!(b.body(), b"abc\r\n");
    }

    /// Stuffing and unstuffing agree: a message through [`Stuffer`], read back line by line.
    #[test]
    fn stuffed_message_reads_back() {
        for msg in [
            &b""[..],
            b"a\r\n",
            b".\r\n..\r\n.x\r\n",
            b"Subject: x\r\n\r\n.hidden\r\nno end",
        ] {
            let wire = stuff_chunks(&[msg]);
            let mut body = MultilineBody::new(usize::MAX);
            let mut lines = wire.split(|&b| b == b'\n');
            let done = lines.by_ref().any(|l| {
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                body.push_line(l).expect("no limit")
            });
            assert!(done, "{msg:?}");
            let mut want = msg.to_vec();
            if !want.is_empty() && !want.ends_with(b"\n") {
                want.extend_from_slice(b"\r\n");
            }
            assert_eq!(body.into_body(), want, "{msg:?}");
        }
        let built = multiline(["TOP", ".dot", "USER"]);
        let mut body = MultilineBody::new(usize::MAX);
        for l in built.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let _ = body.push_line(l.strip_suffix(b"\r").unwrap_or(l));
        }
        assert_eq!(lines_of(body.body()), vec!["TOP", ".dot", "USER"]);
    }

    #[test]
    fn listings() {
        assert_eq!(parse_scan_listing("1 120"), Some((1, 120)));
        assert_eq!(parse_scan_listing("2 200 extra"), Some((2, 200)));
        assert_eq!(parse_scan_listing("x 1"), None);
        assert_eq!(parse_scan_listing("1"), None);
        assert_eq!(
            parse_uid_listing("1 whqtswO00WBw418f9t5JxYwZ"),
            Some((1, "whqtswO00WBw418f9t5JxYwZ".into()))
        );
        assert_eq!(parse_uid_listing("1"), None);
        assert_eq!(parse_uid_listing(&format!("1 {}", "a".repeat(71))), None);
    }

    #[test]
    fn apop_timestamps() {
        // RFC 1939 §7.
        let greeting = "POP3 server ready <1896.697170952@dbc.mtview.ca.us>";
        assert_eq!(
            apop_timestamp(greeting),
            Some("<1896.697170952@dbc.mtview.ca.us>")
        );
        assert_eq!(apop_timestamp("ready <no-at-sign>"), None);
        assert_eq!(apop_timestamp("ready"), None);
    }
}
