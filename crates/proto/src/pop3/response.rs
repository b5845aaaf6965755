//! POP3 responses: status lines, RFC 2449 response codes, and multi-line responses with
//! byte-stuffing (RFC 1939 §3).
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

use std::fmt;

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

/// `+OK text CRLF` (`+OK CRLF`-less form `+OK` when `text` is empty).
pub fn ok(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 6);
    out.extend_from_slice(b"+OK");
    if !text.is_empty() {
        out.push(b' ');
        push_text(&mut out, text, 4);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `-ERR [CODE] text CRLF` (RFC 2449 §8: the response code follows "-ERR " directly).
pub fn err(code: Option<RespCode>, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 20);
    out.extend_from_slice(b"-ERR");
    if let Some(c) = code {
        out.extend_from_slice(format!(" {c}").as_bytes());
    }
    if !text.is_empty() {
        out.push(b' ');
        let len = out.len();
        push_text(&mut out, text, len);
    }
    out.extend_from_slice(b"\r\n");
    out
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
}
