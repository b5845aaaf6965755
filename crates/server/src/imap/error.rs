//! The one place IMAP failures become tagged replies (RFC 9051 §7.1: `NO` for a valid command
//! that failed, `BAD` for a protocol or syntax error; response codes from RFC 9051 §7.1 and
//! RFC 5530).

use mailroom_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImapError {
    /// Syntax or protocol error: `tag BAD text`.
    #[error("{0}")]
    Bad(String),
    /// A valid command that failed: `tag NO [code] text`.
    #[error("{text}")]
    No {
        code: Option<&'static str>,
        text: String,
    },
    /// The session cannot go on (its account or its selected mailbox is gone): `* BYE text`
    /// and the connection closes (RFC 9051 §7.1.5).
    #[error("{0}")]
    Bye(String),
}

impl ImapError {
    pub fn bad(text: impl Into<String>) -> Self {
        ImapError::Bad(text.into())
    }
    pub fn no(code: &'static str, text: impl Into<String>) -> Self {
        ImapError::No {
            code: Some(code),
            text: text.into(),
        }
    }
    pub fn no_code(text: impl Into<String>) -> Self {
        ImapError::No {
            code: None,
            text: text.into(),
        }
    }
    pub fn is_bad(&self) -> bool {
        matches!(self, ImapError::Bad(_))
    }
    pub fn is_bye(&self) -> bool {
        matches!(self, ImapError::Bye(_))
    }

    /// The store failed: the client may retry (RFC 5530 UNAVAILABLE / SERVERBUG).
    pub fn store(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => {
                ImapError::no("NONEXISTENT", format!("{what} does not exist"))
            }
            StoreError::Exists(what) => {
                ImapError::no("ALREADYEXISTS", format!("{what} already exists"))
            }
            full if full.is_storage_full() => {
                tracing::error!(error = %full, "IMAP store operation failed: storage full");
                ImapError::no(
                    "UNAVAILABLE",
                    "the server's disk is full; nothing was stored or changed, try again later",
                )
            }
            other => {
                tracing::error!(error = %other, "IMAP store operation failed");
                ImapError::no(
                    "UNAVAILABLE",
                    "the mail store cannot do this right now; nothing was changed, try again later",
                )
            }
        }
    }

    /// The password could not be checked now (too many logins at once, or the store failed):
    /// RFC 5530 §3 UNAVAILABLE, the client may try again.
    pub fn auth_unavailable() -> Self {
        ImapError::no(
            "UNAVAILABLE",
            "the server cannot check passwords right now (too busy); try again in a moment",
        )
    }

    /// `tag NO [CODE] text` / `tag BAD text` (or `* BAD` without a tag).
    pub fn to_reply(&self, tag: Option<&str>) -> Vec<u8> {
        let tag = tag.unwrap_or("*");
        match self {
            ImapError::Bad(text) => format!("{tag} BAD {}\r\n", clean(text)).into_bytes(),
            ImapError::No {
                code: Some(c),
                text,
            } => format!("{tag} NO [{c}] {}\r\n", clean(text)).into_bytes(),
            ImapError::No { code: None, text } => {
                format!("{tag} NO {}\r\n", clean(text)).into_bytes()
            }
            ImapError::Bye(text) => format!("* BYE {}\r\n", clean(text)).into_bytes(),
        }
    }
}

/// Response text is one line of printable characters.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(
            ImapError::bad("oops\r\nx").to_reply(Some("a1")),
            b"a1 BAD oops  x\r\n"
        );
        assert_eq!(
            ImapError::no("TRYCREATE", "no such mailbox").to_reply(Some("a2")),
            b"a2 NO [TRYCREATE] no such mailbox\r\n"
        );
        assert_eq!(ImapError::bad("x").to_reply(None), b"* BAD x\r\n");
        assert_eq!(
            ImapError::auth_unavailable().to_reply(Some("a3")),
            b"a3 NO [UNAVAILABLE] the server cannot check passwords right now (too busy); try again in a moment\r\n"
        );
    }
}
