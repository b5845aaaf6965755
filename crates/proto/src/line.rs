//! Bounded line splitter for line-oriented protocols (SMTP and POP3 commands).
//!
//! RFC 5321 §2.3.8 and RFC 1939 §3 say that command lines end in CRLF. People at a telnet or
//! netcat prompt often send a bare LF instead, and well-known servers (Postfix among them)
//! accept it for *commands*, so we do too: a line ends at LF, and one CR immediately before that
//! LF is part of the terminator. Any other CR stays in the line (the command parser rejects it
//! where it matters).
//!
//! Memory is bounded per line: a line that grows beyond `max_len` octets (not counting its
//! terminator) is truncated while it is received, the rest of it is discarded, and when its
//! terminator finally arrives the reader yields `Err(LineError::TooLong)` in the position the
//! line had in the stream (RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including
//! CRLF; the caller picks the limit, e.g. larger when AUTH responses or extensions need it).
//!
//! Bytes already received but not yet returned as lines can be taken out with
//! [`LineReader::take_buffered`]: the SMTP driver does this when it switches to the DATA/BDAT
//! body, and after STARTTLS, where RFC 3207 §4.2 / CVE-2011-0411 ("STARTTLS command injection")
//! require that anything pipelined after the STARTTLS command in plaintext is thrown away.
//!
//! [`printable`] is how a received line is shown in an error message or a trace.

/// Error for one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line (without its terminator) was longer than the limit; its content was discarded.
    #[error("line too long (the limit is {limit} octets)")]
    TooLong {
        /// The limit in force when the line was returned.
        limit: usize,
    },
}

/// How many octets beyond `max_len` we keep of an incomplete line: one for a CR that may turn
/// out to belong to the CRLF terminator, and one more to know for sure that the line is too long.
const SLACK: usize = 2;

/// Splits a byte stream into lines with a per-line size limit. See the module docs.
#[derive(Debug, Clone)]
pub struct LineReader {
    /// Raw received bytes; `buf[head..]` have not been returned yet.
    buf: Vec<u8>,
    /// Start of the unreturned bytes in `buf`.
    head: usize,
    /// Start of the incomplete (LF-less) last line in `buf`.
    tail_start: usize,
    /// The incomplete last line was truncated: drop input until its LF.
    truncating: bool,
    max_len: usize,
}

impl LineReader {
    /// A reader whose lines may hold at most `max_len` octets, not counting the terminator.
    pub fn new(max_len: usize) -> Self {
        LineReader {
            buf: Vec::new(),
            head: 0,
            tail_start: 0,
            truncating: false,
            max_len,
        }
    }

    /// Changes the limit; it applies to lines returned from now on (e.g. a larger limit while
    /// reading a SASL response).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// The current limit.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Appends received bytes. Of a line longer than the limit only `max_len + 2` octets are kept.
    pub fn push(&mut self, mut data: &[u8]) {
        self.compact();
        let cap = self.max_len.saturating_add(SLACK);
        while !data.is_empty() {
            let lf = data.iter().position(|&b| b == b'\n');
            let (segment, rest) = match lf {
                Some(i) => data.split_at(i + 1),
                None => (data, &[][..]),
            };
            if !self.truncating {
                let content = match lf {
                    Some(_) => &segment[..segment.len() - 1],
                    None => segment,
                };
                let current = self.buf.len() - self.tail_start;
                let room = cap.saturating_sub(current);
                if content.len() > room {
                    // Too long already: keep a prefix that is certainly over the limit, so that
                    // next_line() reports it, and drop the rest until the LF.
                    self.buf.extend_from_slice(&content[..room]);
                    self.truncating = true;
                } else {
                    self.buf.extend_from_slice(content);
                }
            }
            if lf.is_some() {
                self.buf.push(b'\n');
                self.truncating = false;
                self.tail_start = self.buf.len();
            }
            data = rest;
        }
    }

    /// The next complete line without its terminator, `None` if more input is needed.
    ///
    /// Lines end in CRLF or a bare LF; a CR immediately before the LF is stripped, other CRs stay.
    /// An over-long line yields `Some(Err(LineError::TooLong))` once its terminator has arrived.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, LineError>> {
        let pending = &self.buf[self.head..];
        let lf = pending.iter().position(|&b| b == b'\n')?;
        let mut line = &pending[..lf];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        let result = if line.len() > self.max_len {
            Err(LineError::TooLong {
                limit: self.max_len,
            })
        } else {
            Ok(line.to_vec())
        };
        self.head += lf + 1;
        if self.head == self.buf.len() {
            self.clear();
        }
        Some(result)
    }

    /// Removes and returns every buffered byte not yet returned as a line, raw (terminators
    /// included). If the incomplete last line was being truncated, only its kept prefix is
    /// returned and the reader stops discarding.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.buf);
        rest.drain(..self.head);
        self.clear();
        rest
    }

    /// Number of buffered bytes not yet returned as lines.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.head
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.head = 0;
        self.tail_start = 0;
        self.truncating = false;
    }

    /// Drops the bytes already returned so the buffer does not grow with the session.
    fn compact(&mut self) {
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.tail_start -= self.head;
            self.head = 0;
        }
    }
}

/// Makes received or sent octets printable: invalid UTF-8 becomes U+FFFD and control
/// characters other than TAB become `\xNN`. Error messages that quote a line from the peer use
/// it, so they stay one line.
pub fn printable(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Lines = Vec<Result<Vec<u8>, LineError>>;

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable(b"250 ok"), "250 ok");
        assert_eq!(printable(b"a\tb"), "a\tb");
        assert_eq!(printable(b"\x1b[2Jx"), "\\x1b[2Jx");
        assert_eq!(printable(b"a\rb"), "a\\x0db");
        assert_eq!(printable(b"\xff"), "\u{fffd}");
        assert_eq!(printable("é".as_bytes()), "é");
    }

    fn lines(max: usize, chunks: &[&[u8]]) -> Vec<Result<Vec<u8>, LineError>> {
        let mut r = LineReader::new(max);
        let mut out = Vec::new();
        for c in chunks {
            r.push(c);
            while let Some(l) = r.next_line() {
                out.push(l);
            }
        }
        out
    }

    fn ok(s: &str) -> Result<Vec<u8>, LineError> {
        Ok(s.as_bytes().to_vec())
    }

    fn too_long(limit: usize) -> Result<Vec<u8>, LineError> {
        Err(LineError::TooLong { limit })
    }

    /// Feeds `input` whole, then byte by byte, and checks both give `expected`.
    fn check(max: usize, input: &[u8], expected: &[Result<Vec<u8>, LineError>]) {
        assert_eq!(lines(max, &[input]), expected, "whole: {input:?}");
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(lines(max, &bytes), expected, "1-byte: {input:?}");
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(lines(max, &[a, b]), expected, "split at {split}: {input:?}");
        }
    }

    #[test]
    fn table() {
        let cases: Vec<(usize, &[u8], Lines)> = vec![
            (512, b"", vec![]),
            (512, b"HELO x", vec![]),
            (512, b"HELO x\r\n", vec![ok("HELO x")]),
            (512, b"HELO x\n", vec![ok("HELO x")]),
            (512, b"a\r\nb\nc\r\n", vec![ok("a"), ok("b"), ok("c")]),
            (512, b"\r\n\n", vec![ok(""), ok("")]),
            // Only the CR right before LF is stripped.
            (512, b"a\rb\r\n", vec![ok("a\rb")]),
            (512, b"a\r\r\n", vec![ok("a\r")]),
            (512, b"\r\r\n", vec![ok("\r")]),
            (512, b"a\r", vec![]),
            // Exactly at the limit, with either terminator.
            (3, b"abc\r\nabc\n", vec![ok("abc"), ok("abc")]),
            (3, b"abcd\r\nxy\n", vec![too_long(3), ok("xy")]),
            (3, b"abcd\nxy\n", vec![too_long(3), ok("xy")]),
            // A CR inside the limit that is not part of the terminator counts.
            (3, b"ab\r\r\n", vec![ok("ab\r")]),
            (3, b"abc\r\r\n", vec![too_long(3)]),
            (
                3,
                b"a\nlonger than three\r\nb\r\n",
                vec![ok("a"), too_long(3), ok("b")],
            ),
            (0, b"\r\nx\n\n", vec![ok(""), too_long(0), ok("")]),
            (512, "é\r\n".as_bytes(), vec![ok("é")]),
        ];
        for (max, input, expected) in cases {
            check(max, input, &expected);
        }
    }

    #[test]
    fn memory_stays_bounded_for_a_long_line() {
        let mut r = LineReader::new(10);
        for _ in 0..10_000 {
            r.push(b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
            assert!(r.buffered_len() <= 12, "{}", r.buffered_len());
            assert_eq!(r.next_line(), None);
        }
        r.push(b"yyy\r\nQUIT\r\n");
        assert_eq!(r.next_line(), Some(too_long(10)));
        assert_eq!(r.next_line(), Some(ok("QUIT")));
        assert_eq!(r.next_line(), None);
        assert_eq!(r.buffered_len(), 0);
    }

    #[test]
    fn long_line_inside_one_big_push_is_not_copied_whole() {
        let mut r = LineReader::new(4);
        let mut data = vec![b'z'; 100_000];
        data.extend_from_slice(b"\nok\n");
        r.push(&data);
        assert!(r.buffered_len() <= 4 + 2 + 1 + 3);
        assert_eq!(r.next_line(), Some(too_long(4)));
        assert_eq!(r.next_line(), Some(ok("ok")));
    }

    #[test]
    fn take_buffered_returns_raw_unreturned_bytes() {
        let mut r = LineReader::new(512);
        r.push(b"DATA\r\nSubject: x\n\r\nbody\r\n.\r\nQU");
        assert_eq!(r.next_line(), Some(ok("DATA")));
        assert_eq!(r.buffered_len(), 24);
        assert_eq!(
            r.take_buffered(),
            b"Subject: x\n\r\nbody\r\n.\r\nQU".to_vec()
        );
        assert_eq!(r.buffered_len(), 0);
        assert_eq!(r.next_line(), None);
        // The reader is usable again afterwards.
        r.push(b"IT\r\n");
        assert_eq!(r.next_line(), Some(ok("IT")));
    }

    #[test]
    fn take_buffered_while_truncating_resets() {
        let mut r = LineReader::new(2);
        r.push(b"abcdefgh");
        assert_eq!(r.take_buffered(), b"abcd".to_vec());
        r.push(b"xy\r\n");
        assert_eq!(r.next_line(), Some(ok("xy")));
    }

    #[test]
    fn set_max_len_applies_to_later_lines() {
        let mut r = LineReader::new(3);
        r.push(b"abc\r\n");
        r.set_max_len(2);
        assert_eq!(r.max_len(), 2);
        assert_eq!(r.next_line(), Some(too_long(2)));
        r.set_max_len(100);
        r.push(b"a longer line\r\n");
        assert_eq!(r.next_line(), Some(ok("a longer line")));
    }

    #[test]
    fn huge_limit_does_not_overflow() {
        let mut r = LineReader::new(usize::MAX);
        r.push(b"abc\r\n");
        assert_eq!(r.next_line(), Some(ok("abc")));
    }

    #[test]
    fn buffer_is_compacted() {
        let mut r = LineReader::new(512);
        for _ in 0..1000 {
            r.push(b"NOOP\r\nNO");
            assert_eq!(r.next_line(), Some(ok("NOOP")));
            r.push(b"OP\r\n");
            assert_eq!(r.next_line(), Some(ok("NOOP")));
        }
        assert_eq!(r.buffered_len(), 0);
        assert!(r.buf.capacity() < 4096);
    }
}
