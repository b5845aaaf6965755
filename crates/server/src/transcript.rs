//! The recorded SMTP dialogue of a session, kept with each message it delivers (issue 17: the
//! web inbox's "SMTP dialogue" tab, `GET /api/messages/{mailbox}/{id}/transcript`).
//!
//! A [`Recorder`] sits in the session's `Conn` (`Conn::recorder`) and receives the same lines
//! as the C:/S: trace, masked by the same rule (`mask_secrets`: `AUTH PLAIN ****`, SASL
//! responses as `****`) and with control characters escaped, whether or not the trace is
//! switched on. The message's data is never recorded: one line `C: <message, N octets>`
//! stands for it.
//!
//! What a message's transcript holds: the session's lines before its first transaction
//! (greeting, EHLO, STARTTLS, AUTH), then everything from that transaction's MAIL to the `250`
//! that accepted it. After a message is accepted its transaction's lines are dropped
//! ([`Recorder::end_transaction`]), so the next message of the same session gets the same
//! opening and its own transaction (and whatever the client said in between, a refused
//! transaction or a RSET), not the whole session's history. At most [`LIMIT`] octets of text
//! are kept; lines beyond it are left out and the transcript says `truncated`.

use mailroom_store::{Direction, Transcript};

/// Octets of dialogue text kept per message (the greeting, a long EHLO reply and a hundred
/// recipients take about 10 KiB).
pub const LIMIT: usize = 64 * 1024;

/// The recording of one SMTP session.
#[derive(Debug, Default)]
pub struct Recorder {
    lines: Vec<(Direction, String)>,
    /// Octets of text in `lines`.
    octets: usize,
    truncated: bool,
    /// Where the transaction under way began (the index of its first MAIL line), if one has.
    transaction: Option<usize>,
}

impl Recorder {
    /// Records a line (already masked and escaped).
    pub fn push(&mut self, dir: Direction, text: String) {
        if self.truncated {
            return;
        }
        if self.octets + text.len() > LIMIT {
            self.truncated = true;
            return;
        }
        self.octets += text.len();
        self.lines.push((dir, text));
    }

    /// Lines recorded so far.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// A transaction begins at line `at` (where its MAIL command was recorded), unless one has
    /// already begun since the last message was accepted.
    pub fn begin_transaction(&mut self, at: usize) {
        if self.transaction.is_none() {
            self.transaction = Some(at.min(self.lines.len()));
        }
    }

    /// The transcript of the message being accepted: everything so far, then `last` (the
    /// `250` about to be sent, which is queued only after the store has committed).
    pub fn snapshot(
        &self,
        last: &[(Direction, String)],
        peer: String,
        listener: &str,
    ) -> Transcript {
        let mut lines = self.lines.clone();
        if !self.truncated {
            lines.extend(last.iter().cloned());
        }
        Transcript {
            lines,
            truncated: self.truncated,
            peer,
            listener: listener.to_string(),
        }
    }

    /// The message was accepted: its transaction's lines are dropped, the opening stays.
    pub fn end_transaction(&mut self) {
        if let Some(at) = self.transaction.take() {
            self.lines.truncate(at);
            self.octets = self.lines.iter().map(|(_, t)| t.len()).sum();
            self.truncated = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Client as C, Server as S};

    #[test]
    fn each_message_gets_the_opening_and_its_own_transaction() {
        let mut r = Recorder::default();
        r.push(S, "220 hi".into());
        r.push(C, "EHLO a".into());
        r.begin_transaction(r.len());
        r.push(C, "MAIL FROM:<a@b>".into());
        r.begin_transaction(r.len()); // a second MAIL-like mark does not move it
        r.push(C, "<message, 5 octets>".into());
        let t = r.snapshot(&[(S, "250 ok 1".into())], "p".into(), "smtp");
        assert_eq!(t.lines.len(), 5);
        r.push(S, "250 ok 1".into());
        r.end_transaction();
        assert_eq!(r.len(), 2);
        r.begin_transaction(r.len());
        r.push(C, "MAIL FROM:<c@d>".into());
        let t = r.snapshot(&[], "p".into(), "smtp");
        let texts: Vec<_> = t.lines.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["220 hi", "EHLO a", "MAIL FROM:<c@d>"]);
    }

    #[test]
    fn the_recording_stops_at_the_limit_and_says_so() {
        let mut r = Recorder::default();
        r.push(S, "220 hi".into());
        r.begin_transaction(r.len());
        for _ in 0..2000 {
            r.push(C, "RCPT TO:<someone-with-a-long-name@example.test>".into());
        }
        let t = r.snapshot(&[(S, "250 queued".into())], "p".into(), "smtp");
        assert!(t.truncated);
        assert!(t.lines.iter().map(|(_, l)| l.len()).sum::<usize>() <= LIMIT);
        assert_ne!(t.lines.last().map(|(_, l)| l.as_str()), Some("250 queued"));
        // The next message starts afresh.
        r.end_transaction();
        r.push(C, "MAIL FROM:<x@y>".into());
        assert!(!r.snapshot(&[], "p".into(), "smtp").truncated);
    }
}
