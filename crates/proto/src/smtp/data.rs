//! The DATA body in both directions. The server's side: the DATA receiver (end-of-data
//! detection, dot-unstuffing, line-end normalization and the SMTP smuggling defence) and
//! [`normalize_body`] for BDAT bodies. The client's side: [`normalize_crlf`] and [`dot_stuff`],
//! which make the content a [`DataReceiver`] reads back as the same message.
//!
//! RFC 5321 §4.1.1.4: after `354` the client sends the message as lines and ends it with a line
//! holding a single dot, i.e. the sequence `<CRLF>.<CRLF>` (the first CRLF ends the last text
//! line; for an empty message it is the DATA command's own CRLF). RFC 5321 §4.5.2: a text line
//! that begins with a dot has that dot doubled by the client and removed by the server.
//!
//! # Smuggling (CVE-2023-51764 and friends)
//!
//! If a server accepts an end-of-data sequence that some other server in the path does not
//! (e.g. `<LF>.<LF>`), an attacker can hide a second SMTP transaction inside the message body
//! that the receiving server executes with the first hop's authority. Our rules, byte by byte:
//!
//! - **Only** `<CRLF>.<CRLF>` ends the data. The receiver starts as if a CRLF had just been
//!   seen, so `.<CRLF>` as the very first line ends an empty message.
//! - A line ending in a bare LF is accepted and stored with CRLF (netcat users; Postfix's
//!   `smtpd_forbid_bare_newline = normalize` does the same), **except** that a line holding just
//!   `.` with a bare LF as its own terminator or as the previous line's (`\n.\n`, `\r\n.\n`,
//!   `\n.\r\n`) never ends the data: the message is marked [`DataError::Smuggling`] and the
//!   receiver keeps reading until the real `<CRLF>.<CRLF>`.
//! - A CR not followed by LF (`\r.\r`, `\r.\r\n`, ...) marks the message [`DataError::BareCr`].
//!   A CR at the end of one [`DataReceiver::feed`] chunk whose LF comes in the next is not bare.
//!
//! The first error wins. After it the receiver still consumes everything up to the terminator
//! (so the session stays in sync and the server can answer the DATA with one 5xx reply) but
//! stores nothing more, and it drops what it had stored: memory stays bounded.
//!
//! # Limits
//!
//! - `max_size`: octets of content kept (after unstuffing and normalization). Beyond it the
//!   content is counted and dropped and the result is [`DataError::TooBig`] (RFC 1870 §6.3).
//! - `max_line`: octets of one text line *including* its CRLF, not counting a stuffing dot
//!   (RFC 5321 §4.5.3.1.6: at least 1000). Longer lines give [`DataError::LineTooLong`].

/// Why a message was refused. The `line` numbers count from 1, the first line after the `354`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// More content than `max_size`.
    #[error("message exceeds the size limit of {limit} octets")]
    TooBig {
        /// The limit.
        limit: usize,
    },
    /// A text line longer than `max_line` octets (CRLF included).
    #[error("line {line} is longer than {limit} octets")]
    LineTooLong {
        /// The first offending line.
        line: usize,
        /// The limit.
        limit: usize,
    },
    /// A CR not followed by LF.
    #[error("line {line} contains a bare CR (a CR not followed by LF)")]
    BareCr {
        /// The line holding the CR.
        line: usize,
    },
    /// A lone `.` line next to a bare LF: a possible smuggling attempt.
    #[error("line {line} is a lone '.' next to a bare LF (possible SMTP smuggling)")]
    Smuggling {
        /// The line holding the dot.
        line: usize,
    },
    /// The receiving side stopped keeping the content for a reason of its own (the server's
    /// memory budget for incoming messages, say): see [`DataReceiver::abandon`]. Temporary.
    #[error("the message was not kept (the receiver abandoned it)")]
    Abandoned,
}

/// Result of [`DataReceiver::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataProgress {
    /// All of the input was consumed; the terminator has not been seen yet.
    NeedMore,
    /// The terminator was found. `consumed` counts the bytes of this `feed`'s input up to and
    /// including it; the rest of the input belongs to the next (pipelined) command.
    Done {
        /// Bytes of the input consumed.
        consumed: usize,
    },
}

/// Where the receiver is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the beginning of a line.
    LineStart,
    /// The line so far is a single `.` (a stuffing dot or the terminator).
    Dot,
    /// The line so far is `.` CR.
    DotCr,
    /// Inside a line.
    Mid,
    /// Inside a line, just after a CR.
    MidCr,
    /// The terminator has been consumed.
    Done,
}

/// Receives the message after `354` (sans-IO: feed it bytes). See the module docs.
#[derive(Debug, Clone)]
pub struct DataReceiver {
    content: Vec<u8>,
    error: Option<DataError>,
    received: usize,
    max_size: usize,
    max_line: usize,
    state: State,
    /// The previous line ended in a bare LF.
    prev_bare_lf: bool,
    /// The current line's number, from 1.
    line: usize,
    /// Content octets of the current line so far (terminator and stuffing dot not counted).
    line_len: usize,
    /// DATA (dot handling) rather than BDAT.
    dot_mode: bool,
}

impl DataReceiver {
    /// A receiver keeping at most `max_size` octets of content, with lines of at most
    /// `max_line` octets including CRLF (RFC 5321 §4.5.3.1.6: 1000).
    pub fn new(max_size: usize, max_line: usize) -> Self {
        DataReceiver {
            content: Vec::new(),
            error: None,
            received: 0,
            max_size,
            max_line,
            state: State::LineStart,
            // RFC 5321 §4.1.1.4: the DATA command's CRLF counts as the first CRLF of the
            // terminator, so the start behaves as after a CRLF.
            prev_bare_lf: false,
            line: 1,
            line_len: 0,
            dot_mode: true,
        }
    }

    /// Feeds bytes received after the `354` reply. See [`DataProgress`]. After `Done`,
    /// further calls consume nothing and return `Done { consumed: 0 }`.
    pub fn feed(&mut self, input: &[u8]) -> DataProgress {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => return DataProgress::Done { consumed: 0 },
                State::Mid => {
                    // Fast path: copy a run of ordinary octets at once.
                    let run = input[i..]
                        .iter()
                        .position(|&c| c == b'\r' || c == b'\n')
                        .unwrap_or(input.len() - i);
                    if run > 0 {
                        self.text(&input[i..i + run]);
                        i += run;
                        continue;
                    }
                    if b == b'\r' {
                        self.state = State::MidCr;
                    } else {
                        // Bare LF ends the line; stored as CRLF.
                        self.end_line(true);
                    }
                }
                State::MidCr => match b {
                    b'\n' => self.end_line(false),
                    b'\r' => self.fail(DataError::BareCr { line: self.line }),
                    _ => {
                        self.fail(DataError::BareCr { line: self.line });
                        self.text(&[b]);
                        self.state = State::Mid;
                    }
                },
                State::LineStart => match b {
                    b'.' if self.dot_mode => self.state = State::Dot,
                    b'\r' => self.state = State::MidCr,
                    b'\n' => self.end_line(true),
                    _ => {
                        self.text(&[b]);
                        self.state = State::Mid;
                    }
                },
                State::Dot => match b {
                    b'\r' => self.state = State::DotCr,
                    b'\n' => {
                        // `.` LF: never the end of data (smuggling defence).
                        self.fail(DataError::Smuggling { line: self.line });
                        self.end_line(true);
                    }
                    _ => {
                        // RFC 5321 §4.5.2: the leading dot is removed, the rest is text.
                        self.text(&[b]);
                        self.state = State::Mid;
                    }
                },
                State::DotCr => match b {
                    b'\n' if !self.prev_bare_lf => {
                        // RFC 5321 §4.1.1.4: <CRLF>.<CRLF>, the only end of data.
                        self.state = State::Done;
                        return DataProgress::Done { consumed: i + 1 };
                    }
                    b'\n' => {
                        // LF `.` CRLF: refused as an end of data (smuggling defence).
                        self.fail(DataError::Smuggling { line: self.line });
                        self.end_line(false);
                    }
                    b'\r' => {
                        self.fail(DataError::BareCr { line: self.line });
                        self.state = State::MidCr;
                    }
                    _ => {
                        self.fail(DataError::BareCr { line: self.line });
                        self.text(&[b]);
                        self.state = State::Mid;
                    }
                },
            }
            i += 1;
        }
        if self.state == State::Done {
            DataProgress::Done { consumed: 0 }
        } else {
            DataProgress::NeedMore
        }
    }

    /// Content octets received so far, including those dropped after the size limit or an
    /// error (for logs).
    pub fn received(&self) -> usize {
        self.received
    }

    /// True once the terminator has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The first error so far, if any (the driver may log it before the data ends).
    pub fn error(&self) -> Option<&DataError> {
        self.error.as_ref()
    }

    /// Stops keeping the content (frees what was kept) while still consuming up to the
    /// terminator, so the session stays in sync; the result is then [`DataError::Abandoned`]
    /// unless an error came first.
    pub fn abandon(&mut self) {
        self.fail(DataError::Abandoned);
    }

    /// Octets of content kept so far (what the receiver holds in memory).
    pub fn kept(&self) -> usize {
        self.content.len()
    }

    /// The message (CRLF line ends, unstuffed, ending in CRLF unless empty) or the first error.
    /// Meant to be called after [`DataProgress::Done`]; before it, it returns what was stored
    /// so far.
    pub fn finish(self) -> Result<Vec<u8>, DataError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.content),
        }
    }

    /// Octets of text (not line ends) of the current line.
    fn text(&mut self, bytes: &[u8]) {
        // If this run trips a limit, go byte by byte so that the error reported is the one a
        // byte-at-a-time feed would see first (results must not depend on chunking).
        if bytes.len() > 1
            && self.error.is_none()
            && (self.line_len.saturating_add(bytes.len()).saturating_add(2) > self.max_line
                || self.received.saturating_add(bytes.len()) > self.max_size)
        {
            for b in bytes {
                self.text(std::slice::from_ref(b));
            }
            return;
        }
        self.line_len = self.line_len.saturating_add(bytes.len());
        // RFC 5321 §4.5.3.1.6: the limit includes the CRLF.
        if self.line_len.saturating_add(2) > self.max_line {
            self.fail(DataError::LineTooLong {
                line: self.line,
                limit: self.max_line,
            });
        }
        self.store(bytes);
    }

    /// Ends the current line (stored with CRLF whatever its terminator was).
    fn end_line(&mut self, bare_lf: bool) {
        // An empty line still needs room for its CRLF (only matters for a tiny max_line).
        if self.line_len.saturating_add(2) > self.max_line {
            self.fail(DataError::LineTooLong {
                line: self.line,
                limit: self.max_line,
            });
        }
        self.store(b"\r\n");
        self.line = self.line.saturating_add(1);
        self.line_len = 0;
        self.prev_bare_lf = bare_lf;
        self.state = State::LineStart;
    }

    fn store(&mut self, bytes: &[u8]) {
        self.received = self.received.saturating_add(bytes.len());
        if self.error.is_some() {
            return;
        }
        if self.received > self.max_size {
            self.fail(DataError::TooBig {
                limit: self.max_size,
            });
            return;
        }
        self.content.extend_from_slice(bytes);
    }

    /// Records the first error and frees the content: nothing more is stored.
    fn fail(&mut self, e: DataError) {
        if self.error.is_none() {
            self.error = Some(e);
            self.content = Vec::new();
        }
    }
}

/// Validates and normalizes a complete BDAT body (RFC 3030) with the DATA rules minus the dot
/// handling: bare LF line ends become CRLF, a bare CR is [`DataError::BareCr`], a line longer
/// than `max_line` octets (CRLF included) is [`DataError::LineTooLong`]. A last line without a
/// line end gets a CRLF, so a non-empty result always ends in CRLF. A body that is already
/// canonical is returned as is, without a copy. The size limit is the caller's (BDAT sizes are
/// announced, RFC 3030 §4.2).
pub fn normalize_body(body: Vec<u8>, max_line: usize) -> Result<Vec<u8>, DataError> {
    if is_canonical(&body, max_line) {
        return Ok(body);
    }
    let mut r = DataReceiver::new(usize::MAX, max_line);
    r.dot_mode = false;
    r.content.reserve(body.len().saturating_add(2));
    // Without dot handling the receiver never reaches Done.
    let _ = r.feed(&body);
    drop(body);
    match r.state {
        State::Mid => r.end_line(false),
        State::MidCr => r.fail(DataError::BareCr { line: r.line }),
        State::LineStart | State::Dot | State::DotCr | State::Done => {}
    }
    r.finish()
}

/// Every line ends in CRLF, there is no other CR, and no line is too long.
fn is_canonical(body: &[u8], max_line: usize) -> bool {
    let mut rest = body;
    while !rest.is_empty() {
        let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
            return false;
        };
        let line = &rest[..=lf];
        if line.len() < 2
            || line.len() > max_line
            || line[line.len() - 2] != b'\r'
            || line[..line.len() - 2].contains(&b'\r')
        {
            return false;
        }
        rest = &rest[lf + 1..];
    }
    true
}

/// Turns every line end (CRLF, bare LF, bare CR) into CRLF and makes sure the message ends
/// with CRLF: what a client does before sending. RFC 5321 §2.3.8: lines are terminated by
/// CRLF; a bare CR or LF would be refused by a careful server (the SMTP smuggling defence
/// above) or mangled by a careless one.
pub fn normalize_crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 40 + 2);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The DATA content a client sends for a CRLF-normalized message ([`normalize_crlf`]): every
/// line that starts with "." gets one more "." in front (RFC 5321 §4.5.2), then the
/// terminating `.` CRLF. [`DataReceiver`] takes the dots away again.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let dots = message
        .split(|&b| b == b'\n')
        .filter(|l| l.first() == Some(&b'.'))
        .count();
    let mut out = Vec::with_capacity(message.len() + dots + 3);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = (Option<usize>, Result<Vec<u8>, DataError>);

    /// Feeds `chunks` in order until Done; returns the total consumed (None if never Done) and
    /// the result. Also checks `received` against the stored content.
    fn run<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
        max_size: usize,
        max_line: usize,
    ) -> Outcome {
        let mut r = DataReceiver::new(max_size, max_line);
        let mut offset = 0;
        let mut consumed = None;
        for chunk in chunks {
            match r.feed(chunk) {
                DataProgress::NeedMore => offset += chunk.len(),
                DataProgress::Done { consumed: c } => {
                    assert!(c <= chunk.len());
                    consumed = Some(offset + c);
                    break;
                }
            }
        }
        assert_eq!(r.is_done(), consumed.is_some());
        let received = r.received();
        let result = r.finish();
        if let Ok(content) = &result {
            assert_eq!(content.len(), received);
        }
        (consumed, result)
    }

    /// Runs `input` whole, byte by byte and split at every position; all must agree.
    fn all_ways(input: &[u8], max_size: usize, max_line: usize) -> Outcome {
        let expected = run([input], max_size, max_line);
        assert_eq!(
            run(input.chunks(1), max_size, max_line),
            expected,
            "1-byte feeding of {input:?}"
        );
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(
                run([a, b], max_size, max_line),
                expected,
                "split at {i} of {input:?}"
            );
        }
        expected
    }

    fn ok(consumed: usize, content: &[u8]) -> Outcome {
        (Some(consumed), Ok(content.to_vec()))
    }

    #[test]
    fn table() {
        let cases: Vec<(&[u8], Outcome)> = vec![
            // The empty message: the DATA line's CRLF is the first CRLF of the terminator.
            (b".\r\n", ok(3, b"")),
            (b".\r\nQUIT\r\n", ok(3, b"")),
            (
                b"Subject: x\r\n\r\nHello\r\n.\r\n",
                ok(24, b"Subject: x\r\n\r\nHello\r\n"),
            ),
            // Pipelined bytes after the terminator are not consumed.
            (b"x\r\n.\r\nMAIL FROM:<a@b>\r\n", ok(6, b"x\r\n")),
            // Bare LF lines are normalized.
            (b"a\nb\r\n.\r\n", ok(8, b"a\r\nb\r\n")),
            (b"a\n\nb\n\r\n.\r\n", ok(10, b"a\r\n\r\nb\r\n\r\n")),
            (b"\n\r\n.\r\n", ok(6, b"\r\n\r\n")),
            // Dot-unstuffing (RFC 5321 §4.5.2).
            (
                b"..\r\n..foo\r\n.bar\r\n...\r\na.b\r\n.\r\n",
                ok(30, b".\r\n.foo\r\nbar\r\n..\r\na.b\r\n"),
            ),
            (b"..\n.\r\n", (None, Err(DataError::Smuggling { line: 2 }))),
            // Not terminators.
            (b"a\r\n. \r\n.\r\n", ok(10, b"a\r\n \r\n")),
            (b"a\r\n.x.\r\n.\r\n", ok(11, b"a\r\nx.\r\n")),
            // Incomplete.
            (b"", (None, Ok(b"".to_vec()))),
            (b"abc", (None, Ok(b"abc".to_vec()))),
            (b"abc\r\n.", (None, Ok(b"abc\r\n".to_vec()))),
            (b"abc\r\n.\r", (None, Ok(b"abc\r\n".to_vec()))),
        ];
        for (input, want) in cases {
            assert_eq!(all_ways(input, 1 << 20, 1000), want, "{input:?}");
        }
    }

    #[test]
    fn smuggling_shapes_never_end_the_data() {
        const REAL_END: &[u8] = b"\r\n.\r\n";
        let cases: Vec<(&[u8], DataError)> = vec![
            // <LF>.<LF>
            (
                b"a\n.\nMAIL FROM:<x@evil.test>",
                DataError::Smuggling { line: 2 },
            ),
            // <CRLF>.<LF>
            (
                b"a\r\n.\nMAIL FROM:<x@evil.test>",
                DataError::Smuggling { line: 2 },
            ),
            // <LF>.<CRLF>
            (
                b"a\n.\r\nMAIL FROM:<x@evil.test>",
                DataError::Smuggling { line: 2 },
            ),
            // <CR>.<CR> and <CR>.<CRLF>, <CRLF>.<CR>: bare CRs
            (
                b"a\r.\rMAIL FROM:<x@evil.test>",
                DataError::BareCr { line: 1 },
            ),
            (
                b"a\r.\r\nMAIL FROM:<x@evil.test>",
                DataError::BareCr { line: 1 },
            ),
            (
                b"a\r\n.\rMAIL FROM:<x@evil.test>",
                DataError::BareCr { line: 2 },
            ),
            (
                b"a\r\n.\r\rMAIL FROM:<x@evil.test>",
                DataError::BareCr { line: 2 },
            ),
            // At the very start of the data.
            (
                b".\nMAIL FROM:<x@evil.test>",
                DataError::Smuggling { line: 1 },
            ),
            (
                b"\n.\r\nMAIL FROM:<x@evil.test>",
                DataError::Smuggling { line: 2 },
            ),
            (
                b"\r.\r\nMAIL FROM:<x@evil.test>",
                DataError::BareCr { line: 1 },
            ),
            // A bare CR inside a line.
            (b"a\rb", DataError::BareCr { line: 1 }),
            (b"ok\r\nab\r\r", DataError::BareCr { line: 2 }),
        ];
        for (prefix, err) in cases {
            let mut input = prefix.to_vec();
            input.extend_from_slice(REAL_END);
            let n = input.len();
            input.extend_from_slice(b"QUIT\r\n");
            assert_eq!(
                all_ways(&input, 1 << 20, 1000),
                (Some(n), Err(err)),
                "{prefix:?}"
            );
            // Without the real end the data never ends.
            assert_eq!(all_ways(prefix, 1 << 20, 1000).0, None, "{prefix:?}");
        }
    }

    #[test]
    fn data_ends_after_a_bare_lf_line_only_with_a_proper_crlf_dot_crlf() {
        // "a\n" then an empty CRLF line: the ".\r\n" after it follows a CRLF.
        assert_eq!(
            all_ways(b"a\n\r\n.\r\n", 1 << 20, 1000),
            ok(7, b"a\r\n\r\n")
        );
        // After a smuggling line the receiver still stops at the real end.
        let input = b"a\n.\nb\r\n.\r\nNOOP\r\n";
        assert_eq!(
            all_ways(input, 1 << 20, 1000),
            (Some(10), Err(DataError::Smuggling { line: 2 }))
        );
    }

    #[test]
    fn cr_split_across_chunks_is_not_bare() {
        assert_eq!(
            run([&b"a\r"[..], b"\n.\r", b"\n"], 100, 100),
            ok(6, b"a\r\n")
        );
        assert_eq!(run([&b"a\r\n.\r"[..], b"\n"], 100, 100), ok(6, b"a\r\n"));
    }

    #[test]
    fn terminator_split_at_every_boundary_into_three_chunks() {
        let input = b"Hello\r\n..dot\r\n.\r\nQUIT\r\n";
        let want = ok(17, b"Hello\r\n.dot\r\n");
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let chunks = [&input[..i], &input[i..j], &input[j..]];
                assert_eq!(run(chunks, 100, 100), want, "{i} {j}");
            }
        }
    }

    #[test]
    fn size_limit_edge() {
        let input = b"abc\r\n.\r\n";
        assert_eq!(all_ways(input, 5, 1000), ok(8, b"abc\r\n"));
        assert_eq!(
            all_ways(input, 4, 1000),
            (Some(8), Err(DataError::TooBig { limit: 4 }))
        );
        // Normalized octets are what counts: "abc\n" is stored as 5 octets.
        assert_eq!(all_ways(b"abc\n\r\n.\r\n", 7, 1000), ok(9, b"abc\r\n\r\n"));
        assert_eq!(
            all_ways(b"abc\n\r\n.\r\n", 6, 1000),
            (Some(9), Err(DataError::TooBig { limit: 6 }))
        );
        // Stuffing dots do not count.
        assert_eq!(all_ways(b"..\r\n.\r\n", 3, 1000), ok(7, b".\r\n"));
        assert_eq!(all_ways(b".\r\n", 0, 1000), ok(3, b""));
    }

    #[test]
    fn memory_stays_bounded_past_the_limit() {
        let mut r = DataReceiver::new(10, 1000);
        let line = b"0123456789012345678\r\n";
        for _ in 0..1000 {
            assert_eq!(r.feed(line), DataProgress::NeedMore);
            assert!(r.content.capacity() <= 64);
        }
        assert_eq!(r.received(), 21_000);
        assert_eq!(r.feed(b".\r\n"), DataProgress::Done { consumed: 3 });
        assert_eq!(r.finish(), Err(DataError::TooBig { limit: 10 }));
    }

    #[test]
    fn line_length_limit() {
        // max_line 5 includes the CRLF: 3 octets of text.
        assert_eq!(all_ways(b"abc\r\n.\r\n", 100, 5), ok(8, b"abc\r\n"));
        assert_eq!(all_ways(b"abc\n\r\n.\r\n", 100, 5), ok(9, b"abc\r\n\r\n"));
        assert_eq!(
            all_ways(b"ok\r\nabcd\r\nabcdef\r\n.\r\n", 100, 5),
            (Some(21), Err(DataError::LineTooLong { line: 2, limit: 5 }))
        );
        // The stuffing dot is not counted (RFC 5321 §4.5.3.1.6).
        assert_eq!(all_ways(b"..ab\r\n.\r\n", 100, 5), ok(9, b".ab\r\n"));
        assert_eq!(
            all_ways(b"..abc\r\n.\r\n", 100, 5),
            (Some(10), Err(DataError::LineTooLong { line: 1, limit: 5 }))
        );
        // The terminator line itself is never too long.
        assert_eq!(all_ways(b".\r\n", 100, 2), ok(3, b""));
    }

    #[test]
    fn first_error_wins() {
        // In one run of text the size limit (9th octet) trips before the line limit (11th).
        assert_eq!(
            all_ways(b"abcdefghijklmnop\r\n.\r\n", 8, 12),
            (Some(21), Err(DataError::TooBig { limit: 8 }))
        );
        assert_eq!(
            all_ways(b"abcdefghijklmnop\r\n.\r\n", 12, 8),
            (Some(21), Err(DataError::LineTooLong { line: 1, limit: 8 }))
        );
        assert_eq!(
            all_ways(b"a\rb\r\nccccccccc\r\n.\r\n", 5, 6),
            (Some(19), Err(DataError::BareCr { line: 1 }))
        );
        assert_eq!(
            all_ways(b"ccccccccc\r\na\rb\r\n.\r\n", 100, 6),
            (Some(19), Err(DataError::LineTooLong { line: 1, limit: 6 }))
        );
        assert_eq!(
            all_ways(b"aaaa\r\na\n.\nb\r\n.\r\n", 3, 1000),
            (Some(16), Err(DataError::TooBig { limit: 3 }))
        );
        let mut r = DataReceiver::new(100, 100);
        r.feed(b"x\r.\n");
        assert_eq!(r.error(), Some(&DataError::BareCr { line: 1 }));
    }

    #[test]
    fn feed_after_done_consumes_nothing() {
        let mut r = DataReceiver::new(100, 100);
        assert_eq!(r.feed(b".\r\nX"), DataProgress::Done { consumed: 3 });
        assert_eq!(r.feed(b"more"), DataProgress::Done { consumed: 0 });
        assert_eq!(r.feed(b""), DataProgress::Done { consumed: 0 });
        assert_eq!(r.finish(), Ok(vec![]));
    }

    /// A small deterministic generator (no rand dependency in this crate).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn one_byte_feeding_equals_whole_feeding_for_random_inputs() {
        let alphabet = b"ab.\r\n";
        let mut rng = Lcg(0x5eed);
        for round in 0..500 {
            let len = (rng.next() % 40) as usize;
            let mut input: Vec<u8> = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            if round % 2 == 0 {
                input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            }
            let max_size = (rng.next() % 60) as usize;
            let max_line = 2 + (rng.next() % 10) as usize;
            let expected = all_ways(&input, max_size, max_line);
            // Random chunking too.
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = 1 + (rng.next() as usize % rest.len());
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
            }
            assert_eq!(run(chunks, max_size, max_line), expected, "{input:?}");
            if round % 2 == 0 {
                assert!(expected.0.is_some(), "{input:?}");
            }
        }
    }

    #[test]
    fn normalize_body_table() {
        type Case = (&'static [u8], usize, Result<&'static [u8], DataError>);
        let cases: Vec<Case> = vec![
            (b"", 1000, Ok(b"")),
            (b"a\r\nb\r\n", 1000, Ok(b"a\r\nb\r\n")),
            (b"a\nb\n", 1000, Ok(b"a\r\nb\r\n")),
            (b"abc", 1000, Ok(b"abc\r\n")),
            (b"a\r\nabc", 1000, Ok(b"a\r\nabc\r\n")),
            // No dot handling in BDAT.
            (b".\r\n..x\r\n", 1000, Ok(b".\r\n..x\r\n")),
            (b".\n", 1000, Ok(b".\r\n")),
            (b"a\rb\r\n", 1000, Err(DataError::BareCr { line: 1 })),
            (b"a\r\nb\r", 1000, Err(DataError::BareCr { line: 2 })),
            (b"\r", 1000, Err(DataError::BareCr { line: 1 })),
            (b"abc\r\n", 5, Ok(b"abc\r\n")),
            (b"abc\n", 5, Ok(b"abc\r\n")),
            (b"abc", 5, Ok(b"abc\r\n")),
            (
                b"ab\r\nabcd\r\n",
                5,
                Err(DataError::LineTooLong { line: 2, limit: 5 }),
            ),
            (
                b"abcd",
                5,
                Err(DataError::LineTooLong { line: 1, limit: 5 }),
            ),
            (
                b"\r\n",
                1,
                Err(DataError::LineTooLong { line: 1, limit: 1 }),
            ),
        ];
        for (body, max_line, want) in cases {
            assert_eq!(
                normalize_body(body.to_vec(), max_line),
                want.map(<[u8]>::to_vec),
                "{body:?} {max_line}"
            );
        }
    }

    #[test]
    fn normalize_body_does_not_copy_a_canonical_body() {
        let body = b"Subject: x\r\n\r\nhi\r\n".to_vec();
        let ptr = body.as_ptr();
        let out = normalize_body(body, 1000).unwrap();
        assert_eq!(out.as_ptr(), ptr);
    }

    #[test]
    fn abandon_frees_the_content_and_still_finds_the_end() {
        let mut r = DataReceiver::new(1000, 1000);
        assert_eq!(
            r.feed(b"Subject: x\r\n\r\nbody\r\n"),
            DataProgress::NeedMore
        );
        assert!(r.kept() > 0);
        r.abandon();
        assert_eq!(r.kept(), 0);
        assert_eq!(
            r.feed(b"more\r\n.\r\nQUIT\r\n"),
            DataProgress::Done { consumed: 9 }
        );
        assert_eq!(r.finish(), Err(DataError::Abandoned));
        // An earlier error wins.
        let mut r = DataReceiver::new(3, 1000);
        r.feed(b"toolong\r\n");
        r.abandon();
        assert_eq!(r.finish(), Err(DataError::TooBig { limit: 3 }));
    }

    #[test]
    fn crlf_normalization() {
        let cases: Vec<(&[u8], &[u8])> = vec![
            (b"", b""),
            (b"a", b"a\r\n"),
            (b"a\n", b"a\r\n"),
            (b"a\r\n", b"a\r\n"),
            (b"a\rb", b"a\r\nb\r\n"),
            (b"a\n\nb\r\n\r\n", b"a\r\n\r\nb\r\n\r\n"),
            (b"a\r\r\nb", b"a\r\n\r\nb\r\n"),
            ("é\n".as_bytes(), "é\r\n".as_bytes()),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_crlf(input), want, "{input:?}");
        }
    }

    #[test]
    fn dot_stuffing() {
        let cases: Vec<(&[u8], &[u8])> = vec![
            (b"", b".\r\n"),
            (b"hi\r\n", b"hi\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"a\r\n.b\r\n..c\r\n", b"a\r\n..b\r\n...c\r\n.\r\n"),
            (b".start\r\nx.y\r\n", b"..start\r\nx.y\r\n.\r\n"),
            (b"no end", b"no end\r\n.\r\n"),
        ];
        for (input, want) in cases {
            assert_eq!(dot_stuff(input), want, "{input:?}");
        }
    }

    /// The two directions agree: what a client stuffs, the receiver reads back, whole and in
    /// every split.
    #[test]
    fn stuffed_content_reads_back() {
        let messages: &[&[u8]] = &[
            b"",
            b"hi",
            b".",
            b"..\n.\n",
            b"Subject: x\r\n\r\n.leading dot\r\n..two\r\nend",
            b"a\rb\n.\r\n.x",
            "é.\n.é".as_bytes(),
        ];
        for m in messages {
            let normalized = normalize_crlf(m);
            let wire = dot_stuff(&normalized);
            assert_eq!(
                all_ways(&wire, 1 << 20, 1000),
                ok(wire.len(), &normalized),
                "{m:?}"
            );
        }
    }
}
