//! Mailbox names: stored in UTF-8, on the wire in modified UTF-7 (RFC 3501 §5.1.3) until the
//! client enables IMAP4rev2, in UTF-8 after (RFC 9051 §5.1). Names come in at one place,
//! [`Session::names_from_wire`] (called at the top of `dispatch`), and go out through
//! [`Session::name_to_wire`]. Also here: INBOX's case-insensitivity, the hierarchy delimiter,
//! the checks a new name must pass, and the refusals that name a mailbox.

use std::borrow::Cow;

use mailroom_proto::imap::{mutf7, CommandBody};

use super::error::ImapError;
use super::Session;

/// The hierarchy delimiter (RFC 9051 §5.1.1).
pub(super) const DELIM: char = '/';
/// A LIST pattern no mailbox name matches: stored names never hold a control character
/// (`check_name`).
const MATCHES_NOTHING: &str = "\r";

/// Octets from the client for a response text: printable ASCII as is, anything else as
/// `\xNN`, quoted, cut at 80 octets (a rev1 response text is 7-bit).
fn show_octets(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b.iter().take(80) {
        match c {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(c as char);
            }
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02X}")),
        }
    }
    if b.len() > 80 {
        s.push_str("...");
    }
    s.push('"');
    s
}

pub(super) fn normalize_mailbox(name: &str) -> String {
    // RFC 9051 §5.1: INBOX is case-insensitive, also as the first level of a hierarchy.
    let trimmed = name.trim_end_matches(DELIM);
    let base = if trimmed.is_empty() { name } else { trimmed };
    if let (Some(head), Some(rest)) = (base.get(..5), base.get(5..)) {
        if head.eq_ignore_ascii_case("INBOX") && (rest.is_empty() || rest.starts_with(DELIM)) {
            return format!("INBOX{rest}");
        }
    }
    base.to_string()
}

impl Session {
    /// Mailbox names on the wire are UTF-8 (RFC 9051 §5.1) once the client enabled
    /// IMAP4rev2, modified UTF-7 (RFC 3501 §5.1.3) before. The store always holds UTF-8.
    fn utf8_names(&self) -> bool {
        self.rev2
    }

    /// A mailbox name (or LIST reference / pattern) as the client sent it, in the store's
    /// UTF-8. Wildcards pass through (`*` and `%` are printable ASCII, never inside a
    /// modified BASE64 run), so LIST matches decoded names.
    pub(super) fn name_from_wire(&self, wire: String) -> Result<String, ImapError> {
        if self.utf8_names() || mutf7::is_plain(&wire) {
            return Ok(wire);
        }
        mutf7::decode(wire.as_bytes()).map_err(|e| self.bad_name(wire.as_bytes(), Some(&e)))
    }

    /// A LIST/LSUB reference or pattern from the wire: `None` for an ASCII one that is not
    /// valid modified UTF-7 (it matches nothing), the name's error for anything else invalid.
    fn pattern_from_wire(&self, wire: String) -> Result<Option<String>, ImapError> {
        let ascii = wire.is_ascii();
        match self.name_from_wire(wire) {
            Ok(p) => Ok(Some(p)),
            Err(_) if ascii => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A stored (UTF-8) mailbox name as this session writes it.
    pub(super) fn name_to_wire<'a>(&self, name: &'a str) -> Cow<'a, str> {
        if self.utf8_names() || mutf7::is_plain(name) {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(mutf7::encode(name))
        }
    }

    /// A stored name quoted for a response text (`"Entw&APw-rfe"` in a rev1 session).
    pub(super) fn show_name(&self, name: &str) -> String {
        format!("{:?}", self.name_to_wire(name))
    }

    /// Every mailbox name in a command, from the wire into UTF-8: the one place names come
    /// in (SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB,
    /// STATUS, APPEND, COPY, MOVE, GETQUOTAROOT). Quota root names (GETQUOTA, SETQUOTA) are
    /// not mailbox names and pass as sent.
    pub(super) fn names_from_wire(&self, body: CommandBody) -> Result<CommandBody, ImapError> {
        use CommandBody as C;
        let n = |s: String| self.name_from_wire(s);
        Ok(match body {
            C::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => C::Select {
                mailbox: n(mailbox)?,
                read_only,
                condstore,
                qresync,
            },
            C::Create(m) => C::Create(n(m)?),
            C::Delete(m) => C::Delete(n(m)?),
            C::Rename(from, to) => C::Rename(n(from)?, n(to)?),
            C::Subscribe(m) => C::Subscribe(n(m)?),
            C::Unsubscribe(m) => C::Unsubscribe(n(m)?),
            // A LIST pattern is not a mailbox name: an ASCII one that is not valid modified
            // UTF-7 (`a&'b`) matches no mailbox (every stored name has a valid spelling), so
            // it is answered `OK` with nothing for it, as Dovecot does (imaptest `atoms`).
            // Non-ASCII in a rev1 session is refused like any name, with how to write it.
            C::List {
                reference,
                patterns,
                options,
            } => match self.pattern_from_wire(reference)? {
                Some(reference) => C::List {
                    reference,
                    patterns: patterns
                        .into_iter()
                        .map(|p| self.pattern_from_wire(p))
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .flatten()
                        .collect(),
                    options,
                },
                None => C::List {
                    reference: String::new(),
                    patterns: Vec::new(),
                    options,
                },
            },
            C::Lsub { reference, pattern } => {
                match (
                    self.pattern_from_wire(reference)?,
                    self.pattern_from_wire(pattern)?,
                ) {
                    (Some(reference), Some(pattern)) => C::Lsub { reference, pattern },
                    _ => C::Lsub {
                        reference: String::new(),
                        pattern: MATCHES_NOTHING.into(),
                    },
                }
            }
            C::Status { mailbox, items } => C::Status {
                mailbox: n(mailbox)?,
                items,
            },
            C::Append { mailbox, messages } => C::Append {
                mailbox: n(mailbox)?,
                messages,
            },
            C::Copy { uid, set, mailbox } => C::Copy {
                uid,
                set,
                mailbox: n(mailbox)?,
            },
            C::Move { uid, set, mailbox } => C::Move {
                uid,
                set,
                mailbox: n(mailbox)?,
            },
            C::GetQuotaRoot(m) => C::GetQuotaRoot(n(m)?),
            C::Notify(Some(set)) => C::Notify(Some(self.notify_names_from_wire(set)?)),
            // Listed one by one, so that a new command with a name cannot slip past.
            other @ (C::Capability
            | C::Noop
            | C::Logout
            | C::StartTls
            | C::Authenticate { .. }
            | C::Login { .. }
            | C::Enable(_)
            | C::Namespace
            | C::Idle
            | C::Check
            | C::Close
            | C::Unselect
            | C::Expunge { .. }
            | C::Search { .. }
            | C::Sort(_)
            | C::Thread(_)
            | C::Fetch { .. }
            | C::Store { .. }
            | C::Id(_)
            | C::GetQuota(_)
            | C::SetQuota { .. }
            | C::CancelUpdate(_)
            | C::Notify(None)) => other,
        })
    }

    /// The refusal of a name that is not valid on the wire in this session: not modified
    /// UTF-7 in a rev1 session (`mutf7` says why, or the octets are not even UTF-8), not
    /// UTF-8 in a rev2 session. The text says how to write the name instead, in 7-bit ASCII
    /// (a rev1 response text cannot carry anything else).
    ///
    /// `NO`, not `BAD`: the command is well-formed (a literal may carry any octets), it is
    /// the name's spelling that RFC 3501 §5.1.3 / RFC 9051 §5.1 rule out, and RFC 9051 §7.1
    /// keeps BAD for protocol-level errors. Dovecot answers such names the same way
    /// (`NO Mailbox name is not valid mUTF-7`), and a NO does not count towards
    /// `limits.max_errors`. Raw 8-bit names in a rev1 session get this refusal too, as in
    /// Dovecot: RFC 3501 names are 7-bit, and storing the octets as sent (the old behaviour)
    /// left names no UTF-8 client could read.
    pub(super) fn bad_name(&self, octets: &[u8], why: Option<&mutf7::DecodeError>) -> ImapError {
        let shown = show_octets(octets);
        if self.utf8_names() {
            let at = std::str::from_utf8(octets)
                .err()
                .map_or(0, |e| e.valid_up_to());
            return ImapError::no(
                "CANNOT",
                format!(
                    "mailbox name {shown} is not valid UTF-8 (at octet {at}); after ENABLE IMAP4rev2 mailbox names are UTF-8 (RFC 9051 section 5.1)"
                ),
            );
        }
        let decoded;
        let why = match why {
            Some(w) => w,
            None => match mutf7::decode(octets) {
                Err(e) => {
                    decoded = e;
                    &decoded
                }
                // Cannot happen (the caller had a refusal); say the general rule.
                Ok(_) => {
                    return ImapError::no("CANNOT", "the mailbox name is not valid modified UTF-7")
                }
            },
        };
        let hint = match &why.suggestion {
            Some(s) => format!("; write it as {s:?}"),
            None => String::new(),
        };
        ImapError::no(
            "CANNOT",
            format!(
                "mailbox name {shown} is not valid modified UTF-7: {why}{hint}. IMAP4rev1 mailbox names are 7-bit (RFC 3501 section 5.1.3): write & as &- and other characters outside printable ASCII as one &...- run of modified BASE64 of UTF-16 (e.g. U+00FC is &APw-, so Entw&APw-rfe); or send ENABLE IMAP4rev2 first and use UTF-8"
            ),
        )
    }

    /// A store refusal about a mailbox (a concurrent CREATE or RENAME) with the name as this
    /// session spells it (the store's own text has the UTF-8 name).
    pub(super) fn name_store_error(&self, e: ImapError, exists: &str, missing: &str) -> ImapError {
        match e {
            ImapError::No {
                code: Some("ALREADYEXISTS"),
                ..
            } => ImapError::no(
                "ALREADYEXISTS",
                format!("mailbox {} already exists", self.show_name(exists)),
            ),
            ImapError::No {
                code: Some("NONEXISTENT"),
                ..
            } => ImapError::no(
                "NONEXISTENT",
                format!("there is no mailbox {}", self.show_name(missing)),
            ),
            other => other,
        }
    }

    pub(super) fn check_name(&self, name: &str) -> Result<String, ImapError> {
        let n = normalize_mailbox(name);
        if n.is_empty() {
            return Err(ImapError::bad("the mailbox name is empty"));
        }
        if n.split(DELIM).any(str::is_empty) {
            return Err(ImapError::no(
                "CANNOT",
                format!(
                    "{} has an empty level; use names like Work/Projects",
                    self.show_name(&n)
                ),
            ));
        }
        if n.chars().any(|c| c.is_control() || c == '*' || c == '%') {
            return Err(ImapError::no(
                "CANNOT",
                "mailbox names cannot contain control characters, * or %",
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octets_in_response_texts() {
        assert_eq!(show_octets(b"Entw&APw-rfe"), "\"Entw&APw-rfe\"");
        assert_eq!(show_octets("Entwü".as_bytes()), "\"Entw\\xC3\\xBC\"");
        assert_eq!(show_octets(b"a\"b\\\t"), "\"a\\\"b\\\\\\x09\"");
        let long = show_octets(&[b'x'; 100]);
        assert!(long.ends_with("x...\"") && long.len() == 85, "{long}");
    }

    #[test]
    fn inbox_and_trailing_delimiters() {
        assert_eq!(normalize_mailbox("inbox"), "INBOX");
        assert_eq!(normalize_mailbox("Inbox/Sub"), "INBOX/Sub");
        assert_eq!(normalize_mailbox("Inboxes"), "Inboxes");
        assert_eq!(normalize_mailbox("Work/"), "Work");
        assert_eq!(normalize_mailbox("abcdé"), "abcdé");
        assert_eq!(normalize_mailbox("é"), "é");
    }
}
