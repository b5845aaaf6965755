//! How protocol lines are reported: the `C:` / `S:` dialogue of a session.
//!
//! A client is given an optional [`TraceFn`]; it is called once per protocol line, without the
//! CRLF, in the order the lines were sent or received. Secrets never reach it: AUTH and PASS
//! payloads arrive already replaced by [`MASK`]. Control characters a server may send (an
//! escape sequence meant for the reader's terminal, a stray CR) arrive escaped as `\x1b`, so
//! printing a trace line is always safe.
//!
//! Long message bodies (DATA content, RETR/TOP responses) are shown up to
//! [`BODY_LINES_SHOWN`] lines, then one summary line such as
//! `[... 2041 more lines, 157088 octets, not shown ...]`, then the final `.`: enough to learn
//! from, without a 10 MiB attachment scrolling by.

use std::sync::Arc;

/// Who sent a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by us (`C:`).
    Client,
    /// Received from the server (`S:`).
    Server,
}

impl Direction {
    /// `"C: "` or `"S: "`.
    pub fn prefix(self) -> &'static str {
        match self {
            Direction::Client => "C: ",
            Direction::Server => "S: ",
        }
    }
}

/// Called with every protocol line (without CRLF): [`Direction::Client`] for "C:",
/// [`Direction::Server`] for "S:". Secrets arrive already masked.
pub type TraceFn = Arc<dyn Fn(Direction, &str) + Send + Sync>;

/// What replaces a secret in the trace (`C: AUTH PLAIN ****`, `C: ****`, `C: PASS ****`).
pub const MASK: &str = "****";

/// How many lines of a message body the trace shows before summarizing the rest.
pub const BODY_LINES_SHOWN: usize = 60;

/// `"C: EHLO pc1.example.test"`; an empty line is just `"C:"`.
pub fn format_line(dir: Direction, line: &str) -> String {
    if line.is_empty() {
        return dir.prefix().trim_end().to_string();
    }
    format!("{}{}", dir.prefix(), line)
}

/// A [`TraceFn`] that prints `C: ...` / `S: ...` lines to standard error.
pub fn to_stderr() -> TraceFn {
    Arc::new(|dir, line| eprintln!("{}", format_line(dir, line)))
}

/// A [`TraceFn`] that prints `C: ...` / `S: ...` lines to standard output.
pub fn to_stdout() -> TraceFn {
    Arc::new(|dir, line| println!("{}", format_line(dir, line)))
}

/// How a received line is shown (defined in `mailroom_proto::line`, where the parsers quote
/// lines in their errors).
pub use mailroom_proto::line::printable;

/// Shows the first [`BODY_LINES_SHOWN`] lines of a body, counts the rest, and reports them in
/// one summary line when the body ends.
#[derive(Debug)]
pub(crate) struct BodyTracer {
    shown: usize,
    hidden_lines: usize,
    hidden_octets: usize,
}

impl BodyTracer {
    pub(crate) fn new() -> Self {
        BodyTracer {
            shown: 0,
            hidden_lines: 0,
            hidden_octets: 0,
        }
    }

    /// One body line (stuffed form, without CRLF).
    pub(crate) fn line(&mut self, trace: &Option<TraceFn>, dir: Direction, line: &[u8]) {
        let Some(t) = trace else { return };
        if self.shown < BODY_LINES_SHOWN {
            self.shown += 1;
            t(dir, &printable(line));
        } else {
            self.hidden_lines += 1;
            self.hidden_octets += line.len() + 2;
        }
    }

    /// Reports what was not shown, if anything (before the final ".").
    pub(crate) fn finish(&mut self, trace: &Option<TraceFn>, dir: Direction) {
        if let Some(t) = trace {
            if self.hidden_lines > 0 {
                t(
                    dir,
                    &format!(
                        "[... {} more lines, {} octets, not shown ...]",
                        self.hidden_lines, self.hidden_octets
                    ),
                );
            }
        }
        self.hidden_lines = 0;
        self.hidden_octets = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn format_lines() {
        assert_eq!(format_line(Direction::Client, "EHLO x"), "C: EHLO x");
        assert_eq!(format_line(Direction::Server, ""), "S:");
    }

    #[test]
    fn body_tracer_summarizes_long_bodies() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let t: Option<TraceFn> = Some(Arc::new(move |d, l: &str| {
            s2.lock().unwrap().push(format_line(d, l));
        }));
        let mut b = BodyTracer::new();
        for i in 0..BODY_LINES_SHOWN + 3 {
            b.line(&t, Direction::Client, format!("line{i}").as_bytes());
        }
        b.finish(&t, Direction::Client);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), BODY_LINES_SHOWN + 1);
        assert_eq!(seen[0], "C: line0");
        let last = format!("line{}", BODY_LINES_SHOWN + 2);
        assert_eq!(
            seen[BODY_LINES_SHOWN],
            format!(
                "C: [... 3 more lines, {} octets, not shown ...]",
                (last.len() + 2) * 3
            )
        );
    }
}
