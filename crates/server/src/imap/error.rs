//! The one place IMAP failures become tagged replies (RFC 9051 §7.1: `NO` for a valid command
//! that failed, `BAD` for a protocol or syntax error; response codes from RFC 9051 §7.1 and
//! RFC 5530), built as [`Response`]s: the encoder keeps the text to one line.

use mailroom_proto::imap::response::{Response, Status};
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
    /// RFC 4469 §5 `tag NO [BADURL "url"] text`: a CATENATE URL that names nothing the
    /// session may read. The code carries the client's URL.
    #[error("{text}")]
    BadUrl { url: String, text: String },
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

    /// `tag NO [CODE] text` / `tag BAD text` (or `* NO`, `* BAD` without a tag), `* BYE text`.
    /// Control characters in the text (which may quote the client) become spaces: the
    /// encoder keeps a response to one line.
    pub fn to_response(&self, tag: Option<&str>) -> Response {
        let status = |status: Status, code: Option<&str>, text: &str| match tag {
            Some(tag) => Response::tagged(tag, status, code, text),
            None => Response::untagged(status, code, text),
        };
        match self {
            ImapError::Bad(text) => status(Status::Bad, None, text),
            ImapError::No { code, text } => status(Status::No, *code, text),
            ImapError::BadUrl { url, text } => status(
                Status::No,
                Some(&format!("BADURL {}", quoted_url(url))),
                text,
            ),
            ImapError::Bye(text) => Response::untagged(Status::Bye, None, text.as_str()),
        }
    }
}

/// The URL in BADURL's code, in quotes (RFC 4469 §5's example). RFC 4469's `url-resp-text`
/// may hold neither `]` nor CR/LF: `]`, `"` and `\` are %-escaped (RFC 3986 §2.1, the same
/// URL), control characters become spaces in the encoder.
fn quoted_url(url: &str) -> String {
    let mut out = String::from("\"");
    for c in url.chars() {
        match c {
            ']' => out.push_str("%5D"),
            '"' => out.push_str("%22"),
            '\\' => out.push_str("%5C"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(e: &ImapError, tag: Option<&str>) -> String {
        String::from_utf8_lossy(&e.to_response(tag).to_bytes()).into_owned()
    }

    #[test]
    fn replies() {
        assert_eq!(
            reply(&ImapError::bad("oops\r\nx"), Some("a1")),
            "a1 BAD oops  x\r\n"
        );
        assert_eq!(
            reply(&ImapError::no("TRYCREATE", "no such mailbox"), Some("a2")),
            "a2 NO [TRYCREATE] no such mailbox\r\n"
        );
        assert_eq!(reply(&ImapError::bad("x"), None), "* BAD x\r\n");
        assert_eq!(
            reply(&ImapError::no_code("no\0way"), None),
            "* NO no way\r\n"
        );
        assert_eq!(
            reply(&ImapError::Bye("gone\x1b[2J".into()), Some("a4")),
            "* BYE gone [2J\r\n"
        );
        assert_eq!(
            reply(
                &ImapError::BadUrl {
                    url: "/INBOX/;UID=9\"]\r\nx".into(),
                    text: "no".into()
                },
                Some("a5")
            ),
            "a5 NO [BADURL \"/INBOX/;UID=9%22%5D  x\"] no\r\n"
        );
        assert_eq!(
            reply(&ImapError::auth_unavailable(), Some("a3")),
            "a3 NO [UNAVAILABLE] the server cannot check passwords right now (too busy); try again in a moment\r\n"
        );
    }
}
