//! Command framing: lines plus literals make one command (RFC 9051 §2.2, §4.3; RFC 7888).
//!
//! ```text
//!   Line ──line ending in {N}/{N+}──▶ Literal{size, sync} ──N octets──▶ Line ...
//!   Line ──any other line──▶ Complete(buffer)
//! ```
//! The buffer keeps each literal in place as `{N}` CRLF octets, so the grammar parser sees
//! the same bytes a client sent.

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The command is complete.
    Complete(Vec<u8>),
    /// A literal of `size` octets follows; `sync` means the client waits for a `+`
    /// continuation (RFC 9051 §7.5) before sending it. Refuse or read it, then call
    /// [`Assembler::push_literal`] and continue with the next line.
    Literal { size: u64, sync: bool },
}

/// Why a command could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the command (without its literals) is longer than {0} octets")]
    TooLong(usize),
    #[error("the command contains a NUL octet (RFC 9051 §4: not allowed outside literals)")]
    Nul,
}

/// Collects one command; see the module docs.
#[derive(Debug, Default)]
pub struct Assembler {
    buf: Vec<u8>,
    /// Octets of command text (not literals) so far.
    text_len: usize,
    literal_len: u64,
}

impl Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// True while a command is partly collected (after a literal).
    pub fn in_progress(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Drops a partly collected command.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.text_len = 0;
        self.literal_len = 0;
    }

    /// The tag of the command being collected, if it has one yet.
    pub fn tag(&self) -> Option<String> {
        let end = self.buf.iter().position(|&b| b == b' ')?;
        let tag = &self.buf[..end];
        (!tag.is_empty() && tag.iter().all(|&b| command::is_tag_char(b)))
            .then(|| String::from_utf8_lossy(tag).into_owned())
    }

    /// The command name (upper-case), e.g. to apply APPEND's larger literal limit.
    pub fn command_name(&self) -> Option<String> {
        let mut words = self.buf.split(|&b| b == b' ');
        words.next()?;
        let mut w = words.next()?;
        if w.eq_ignore_ascii_case(b"UID") {
            w = words.next()?;
        }
        Some(String::from_utf8_lossy(w).to_ascii_uppercase())
    }

    /// Total literal octets collected for this command.
    pub fn literal_total(&self) -> u64 {
        self.literal_len
    }

    /// Adds one line (without its CRLF). `max_text` bounds the command text without literals.
    pub fn push_line(&mut self, line: &[u8], max_text: usize) -> Result<Progress, FrameError> {
        if line.contains(&0) {
            self.reset();
            return Err(FrameError::Nul);
        }
        self.text_len += line.len();
        if self.text_len > max_text {
            self.reset();
            return Err(FrameError::TooLong(max_text));
        }
        self.buf.extend_from_slice(line);
        if let Some((size, sync)) = trailing_literal(line) {
            self.buf.extend_from_slice(b"\r\n");
            return Ok(Progress::Literal { size, sync });
        }
        self.text_len = 0;
        self.literal_len = 0;
        Ok(Progress::Complete(std::mem::take(&mut self.buf)))
    }

    /// Adds the octets of the literal announced by the last line.
    pub fn push_literal(&mut self, data: &[u8]) {
        self.literal_len += data.len() as u64;
        self.buf.extend_from_slice(data);
    }
}

use super::command;

/// `{N}` or `{N+}` (RFC 7888) at the end of a line (also `~{N}`, RFC 3516 literal8).
pub fn trailing_literal(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let mut sync = true;
    if let Some(d) = digits.strip_suffix(b"+") {
        digits = d;
        sync = false;
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((size, sync))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_markers() {
        assert_eq!(trailing_literal(b"a LOGIN {5}"), Some((5, true)));
        assert_eq!(trailing_literal(b"a LOGIN {5+}"), Some((5, false)));
        assert_eq!(trailing_literal(b"a LOGIN {}"), None);
        assert_eq!(trailing_literal(b"a LOGIN {x}"), None);
        assert_eq!(trailing_literal(b"a LOGIN {99999999999999999999}"), None);
    }

    #[test]
    fn assembles_literals() {
        let mut a = Assembler::new();
        assert_eq!(
            a.push_line(b"a1 LOGIN {5}", 100).unwrap(),
            Progress::Literal {
                size: 5,
                sync: true
            }
        );
        assert_eq!(a.tag().as_deref(), Some("a1"));
        assert_eq!(a.command_name().as_deref(), Some("LOGIN"));
        a.push_literal(b"alice");
        match a.push_line(b" pw", 100).unwrap() {
            Progress::Complete(b) => assert_eq!(b, b"a1 LOGIN {5}\r\nalice pw"),
            other => panic!("{other:?}"),
        }
        assert!(!a.in_progress());
        assert_eq!(a.push_line(b"a\0b", 100), Err(FrameError::Nul));
        assert_eq!(
            a.push_line(&[b'x'; 101], 100),
            Err(FrameError::TooLong(100))
        );
    }
}

#[cfg(test)]
pub(crate) mod chunk_tests {
    use super::*;
    use crate::line::LineReader;

    /// The whole framing path (line reader + assembler + literal bytes) fed one octet at a
    /// time, as a slow client would send.
    /// The whole commands `wire` holds, fed to a line reader and the assembler one octet at
    /// a time (literals too), as a slow client would send them.
    pub(crate) fn one_octet_at_a_time_commands(wire: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = LineReader::new(1000);
        let mut asm = Assembler::new();
        let mut literal: Option<u64> = None;
        let mut done = Vec::new();
        for &b in wire {
            if let Some(left) = literal.as_mut() {
                asm.push_literal(&[b]);
                *left -= 1;
                if *left == 0 {
                    literal = None;
                }
                continue;
            }
            lines.push(&[b]);
            while let Some(line) = lines.next_line() {
                match asm.push_line(&line.expect("a line"), 1000).expect("framed") {
                    Progress::Complete(c) => done.push(c),
                    Progress::Literal { size, .. } => {
                        literal = Some(size);
                        break;
                    }
                }
            }
        }
        done
    }

    #[test]
    fn one_octet_at_a_time() {
        let wire: &[u8] =
            b"a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\na2 APPEND INBOX {4}\r\nab\r\n\r\na3 NOOP\r\n";
        let done = one_octet_at_a_time_commands(wire);
        let parsed: Vec<_> = done
            .iter()
            .map(|c| super::super::parse_command(c).unwrap().body)
            .collect();
        assert_eq!(parsed.len(), 3);
        assert_eq!(
            parsed[0],
            super::super::CommandBody::Login {
                user: "alice".into(),
                password: "secret".into()
            }
        );
        assert!(
            matches!(&parsed[1], super::super::CommandBody::Append { messages, .. } if messages[0].message == b"ab\r\n")
        );
        assert_eq!(parsed[2], super::super::CommandBody::Noop);
    }

    /// RFC 3502 MULTIAPPEND: several literals in one command, fed one octet at a time.
    #[test]
    fn multiappend_one_octet_at_a_time() {
        let wire: &[u8] =
            b"a1 APPEND INBOX (\\Seen) {3}\r\nabc {2+}\r\nde \"1-Feb-2024 10:00:00 +0000\" {1}\r\nf\r\na2 NOOP\r\n";
        let done = one_octet_at_a_time_commands(wire);
        assert_eq!(done.len(), 2);
        let Ok(cmd) = super::super::parse_command(&done[0]) else {
            panic!("{:?}", String::from_utf8_lossy(&done[0]))
        };
        let super::super::CommandBody::Append { messages, .. } = cmd.body else {
            panic!()
        };
        let bodies: Vec<&[u8]> = messages.iter().map(|m| m.message.as_slice()).collect();
        assert_eq!(bodies, vec![&b"abc"[..], b"de", b"f"]);
    }
}
