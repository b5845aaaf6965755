//! IMAP URLs (RFC 5092) as CATENATE (RFC 4469 §3) takes them: a message, or a section of
//! one, on this server and of this user. Accepted forms:
//! - absolute path: `/mailbox;UIDVALIDITY=n/;UID=n[/;SECTION=spec][/;PARTIAL=o[.l]]`
//!   (`;UIDVALIDITY` is optional);
//! - relative to the selected mailbox: `;UID=n[/;SECTION=spec][/;PARTIAL=o[.l]]`.
//!
//! A network URL (`imap://user@host/...`), a message list (`?search`), URLAUTH
//! (`;EXPIRE=`, `;URLAUTH=`) and any `..` path segment are refused: CATENATE answers
//! `NO [BADURL "url"]` (RFC 4469 §5). The mailbox name and the section are %-decoded
//! (RFC 5092 §6: `enc-mailbox`, `enc-section`); the section goes through the same grammar as
//! FETCH BODY[...] ([`parse_section`](super::parse_section)).

use super::{parse_section, Section};

/// A parsed IMAP URL naming one message or one part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// `None`: the selected mailbox (a relative URL).
    pub mailbox: Option<String>,
    pub uidvalidity: Option<u32>,
    pub uid: u32,
    pub section: Option<Section>,
    /// RFC 5092 §3 `;PARTIAL=offset[.length]`.
    pub partial: Option<(u32, Option<u32>)>,
}

/// Why a URL was refused (each text says what the URL needs instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

fn bad<T>(m: impl Into<String>) -> Result<T, UrlError> {
    Err(UrlError(m.into()))
}

/// The longest URL accepted (RFC 5092 sets no bound; a mailbox name and a section fit).
pub const MAX_URL: usize = 4096;

/// %-decodes (RFC 3986 §2.1); a `%` not followed by two hex digits is an error.
fn pct_decode(s: &str) -> Result<Vec<u8>, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) => out.push(v),
                None => return bad("a % in the URL must be followed by two hex digits"),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn number(what: &str, v: &str) -> Result<u32, UrlError> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 && !v.starts_with('+') => Ok(n),
        _ => bad(format!("{what} must be a number from 1, not {v:?}")),
    }
}

/// Splits `;NAME=value` (case-insensitive name); `None` if the segment is not that form.
fn param<'a>(seg: &'a str, name: &str) -> Option<&'a str> {
    let rest = seg.strip_prefix(';')?;
    let (n, v) = rest.split_once('=')?;
    n.eq_ignore_ascii_case(name).then_some(v)
}

/// Parses an IMAP URL as CATENATE's `URL` part carries it (RFC 4469 §3, RFC 5092 §3).
pub fn parse_imap_url(url: &str) -> Result<ImapUrl, UrlError> {
    if url.len() > MAX_URL {
        return bad(format!("the URL is longer than {MAX_URL} octets"));
    }
    if url.contains("://") || url.to_ascii_lowercase().starts_with("imap:") {
        return bad("only URLs on this server are taken: /mailbox/;UID=n or ;UID=n");
    }
    if url.contains('?') {
        return bad("a URL naming a search (?...) is not one message");
    }
    let (mailbox_part, rest) = if let Some(path) = url.strip_prefix('/') {
        // The mailbox ends at "/;UID=" (RFC 5092 §6: imessagepart = imailbox-ref "/" iuid).
        let lower = path.to_ascii_lowercase();
        let Some(at) = lower.find("/;uid=") else {
            return bad("the URL names no message: add /;UID=n after the mailbox");
        };
        (Some(&path[..at]), &path[at + 1..])
    } else {
        (None, url)
    };
    let mut mailbox = None;
    let mut uidvalidity = None;
    if let Some(m) = mailbox_part {
        let (name, uv) = match m.to_ascii_lowercase().find(";uidvalidity=") {
            Some(i) => (&m[..i], Some(&m[i + ";uidvalidity=".len()..])),
            None => (m, None),
        };
        if name.is_empty() {
            return bad("the URL names no mailbox");
        }
        let decoded = pct_decode(name)?;
        let Ok(name) = String::from_utf8(decoded) else {
            return bad("the mailbox name in the URL is not UTF-8");
        };
        if name.split('/').any(|s| s == ".." || s == ".") {
            return bad("a URL may not hold . or .. path segments");
        }
        mailbox = Some(name);
        if let Some(uv) = uv {
            uidvalidity = Some(number("UIDVALIDITY", uv)?);
        }
    }
    let mut segs = rest.split('/');
    let Some(uid) = segs.next().and_then(|s| param(s, "UID")) else {
        return bad("the URL names no message: it needs ;UID=n");
    };
    let uid = number("UID", uid)?;
    let mut section = None;
    let mut partial = None;
    for seg in segs {
        if let Some(v) = param(seg, "SECTION") {
            if section.is_some() || partial.is_some() {
                return bad(";SECTION= comes once, before ;PARTIAL=");
            }
            let spec = pct_decode(v)?;
            match parse_section(&spec) {
                Ok(s) => section = Some(s),
                Err(_) => {
                    return bad(format!(
                        "{:?} is not a section like 1, 1.2, HEADER, TEXT or 2.MIME",
                        String::from_utf8_lossy(&spec)
                    ))
                }
            }
        } else if let Some(v) = param(seg, "PARTIAL") {
            if partial.is_some() {
                return bad(";PARTIAL= comes once");
            }
            let (o, l) = match v.split_once('.') {
                Some((o, l)) => (o, Some(l)),
                None => (v, None),
            };
            let Ok(o) = o.parse::<u32>() else {
                return bad(format!("{v:?} is not a partial range like 0.100"));
            };
            let l = match l {
                Some(l) => Some(number("the PARTIAL length", l)?),
                None => None,
            };
            partial = Some((o, l));
        } else if param(seg, "EXPIRE").is_some() || param(seg, "URLAUTH").is_some() {
            return bad("URLAUTH is not supported");
        } else {
            return bad(format!(
                "{seg:?} is not part of a message URL; after ;UID=n come /;SECTION=... and /;PARTIAL=..."
            ));
        }
    }
    Ok(ImapUrl {
        mailbox,
        uidvalidity,
        uid,
        section,
        partial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::SectionText;

    fn sec(part: &[u32], text: Option<SectionText>) -> Option<Section> {
        Some(Section {
            part: part.to_vec(),
            text,
        })
    }

    #[test]
    fn accepted() {
        let table: &[(&str, ImapUrl)] = &[
            (
                "/INBOX/;UID=3",
                ImapUrl {
                    mailbox: Some("INBOX".into()),
                    uidvalidity: None,
                    uid: 3,
                    section: None,
                    partial: None,
                },
            ),
            (
                "/INBOX;UIDVALIDITY=17/;uid=3/;section=HEADER",
                ImapUrl {
                    mailbox: Some("INBOX".into()),
                    uidvalidity: Some(17),
                    uid: 3,
                    section: sec(&[], Some(SectionText::Header)),
                    partial: None,
                },
            ),
            (
                "/Sent%20Items/;UID=9/;SECTION=1.2.MIME/;PARTIAL=100.5",
                ImapUrl {
                    mailbox: Some("Sent Items".into()),
                    uidvalidity: None,
                    uid: 9,
                    section: sec(&[1, 2], Some(SectionText::Mime)),
                    partial: Some((100, Some(5))),
                },
            ),
            (
                ";UID=1/;SECTION=1",
                ImapUrl {
                    mailbox: None,
                    uidvalidity: None,
                    uid: 1,
                    section: sec(&[1], None),
                    partial: None,
                },
            ),
            (
                "/a/b/;UID=2/;PARTIAL=0",
                ImapUrl {
                    mailbox: Some("a/b".into()),
                    uidvalidity: None,
                    uid: 2,
                    section: None,
                    partial: Some((0, None)),
                },
            ),
        ];
        for (url, want) in table {
            assert_eq!(parse_imap_url(url).as_ref(), Ok(want), "{url}");
        }
    }

    #[test]
    fn refused() {
        for url in [
            "",
            "/",
            "/INBOX",
            "/INBOX/",
            "/;UID=1",
            "/INBOX/;UID=0",
            "/INBOX/;UID=x",
            "/INBOX/;UID=+1",
            "/INBOX/;UID=99999999999",
            "/INBOX;UIDVALIDITY=/;UID=1",
            "/INBOX/;UID=1/;SECTION=BOGUS",
            "/INBOX/;UID=1/;SECTION=1/;SECTION=2",
            "/INBOX/;UID=1/;PARTIAL=x",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "/INBOX/;UID=1/;EXPIRE=2024-01-01T00:00:00Z",
            "/INBOX/;UID=1/;URLAUTH=anonymous",
            "/INBOX/;UID=1/extra",
            "/../bob/INBOX/;UID=1",
            "/INBOX/../x/;UID=1",
            "/%2E%2E/;UID=1",
            "/IN%ZZBOX/;UID=1",
            "/IN%/;UID=1",
            "/%FF/;UID=1",
            "imap://bob@localhost/INBOX/;UID=1",
            "/INBOX?SUBJECT%20x",
            "UID=1",
        ] {
            assert!(parse_imap_url(url).is_err(), "{url:?} should be refused");
        }
        let long = format!("/{}/;UID=1", "a".repeat(MAX_URL));
        assert!(parse_imap_url(&long).is_err());
    }
}
