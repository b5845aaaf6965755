//! CATENATE (RFC 4469): an APPEND whose message is joined from parts, each the text the
//! client sent (`TEXT {n}`) or the octets an IMAP URL (RFC 5092) names on this server:
//! `/mailbox;UIDVALIDITY=n/;UID=m[/;SECTION=s][/;PARTIAL=o.l]`, or `;UID=m...` relative to the
//! selected mailbox. The URL grammar is proto's (`imap::url`); what a URL names is looked up
//! here, through the session's own account only.
//!
//! A URL that does not resolve — a syntax the server does not take, a mailbox that does not
//! exist *or belongs to another account*, a wrong UIDVALIDITY, a UID that is not there, a
//! section the message does not have — is `NO [BADURL "url"]` (RFC 4469 §5) with the same text
//! for every "nothing there" case, so another user's mailbox cannot be told from a missing one.
//! The joined message is held to `limits.max_message_size` as it grows (`NO [TOOBIG]`, RFC
//! 4469 §5), and then goes through APPEND's path (`append.rs`) as any literal does.

use mailroom_proto::imap::mime::Mime;
use mailroom_proto::imap::url::parse_imap_url;
use mailroom_proto::imap::CatPart;
use mailroom_store::{MessageRef, StoreError};

use super::error::ImapError;
use super::Session;

/// What BADURL says for every URL that names nothing this session may read.
const NOTHING_THERE: &str = "the URL names no message of yours (check the mailbox, UIDVALIDITY, UID and section); nothing was stored";

impl Session {
    /// The message `parts` join into, at most `max` octets (`which`: the message's name in
    /// a refusal, for MULTIAPPEND).
    pub(super) async fn catenate(
        &mut self,
        parts: Vec<CatPart>,
        max: u64,
        which: &str,
    ) -> Result<Vec<u8>, ImapError> {
        let mut out: Vec<u8> = Vec::new();
        for part in parts {
            let octets = match part {
                CatPart::Text(t) => t,
                CatPart::Url(url) => self.url_octets(&url).await?,
            };
            if (out.len() + octets.len()) as u64 > max {
                return Err(ImapError::no(
                    "TOOBIG",
                    format!(
                        "{which} would be over the limit of {max} octets once its parts are joined; nothing was stored"
                    ),
                ));
            }
            out.extend_from_slice(&octets);
        }
        Ok(out)
    }

    /// The octets one CATENATE URL names (RFC 4469 §3): a whole message, a section as FETCH
    /// BODY[section] gives it, and a `;PARTIAL=` window of either.
    async fn url_octets(&mut self, text: &str) -> Result<Vec<u8>, ImapError> {
        let badurl = |why: &str| ImapError::BadUrl {
            url: text.to_string(),
            text: why.to_string(),
        };
        let url = parse_imap_url(text).map_err(|e| badurl(&format!("{e}; nothing was stored")))?;
        let (mailbox, uidvalidity) = match &url.mailbox {
            None => match self.selected() {
                Some(sel) => (sel.id, sel.uidvalidity),
                None => {
                    return Err(badurl(
                        "a URL without a mailbox (;UID=n) is relative to the selected mailbox, and none is selected; write /mailbox/;UID=n",
                    ))
                }
            },
            // The session's account only: another account's mailbox is not found.
            Some(name) => match self.find_mailbox(name).await? {
                Some(info) => (info.id, info.uidvalidity),
                None => return Err(badurl(NOTHING_THERE)),
            },
        };
        if url.uidvalidity.is_some_and(|v| v != uidvalidity) {
            return Err(badurl(NOTHING_THERE));
        }
        let uid = url.uid;
        let read = self
            .store(
                move |s| match s.message_octets(MessageRef::Mailbox { mailbox, uid }) {
                    Ok(d) => Ok(Some(d)),
                    Err(StoreError::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                },
            )
            .await?;
        let Some(data) = read else {
            return Err(badurl(NOTHING_THERE));
        };
        let mut octets = match &url.section {
            None => data,
            Some(section) => match Mime::parse(&data).section(&data, section) {
                Some(b) => b,
                None => return Err(badurl(NOTHING_THERE)),
            },
        };
        // RFC 5092 §3 `;PARTIAL=offset[.length]`: a window; past the end, nothing.
        if let Some((offset, length)) = url.partial {
            let start = (offset as usize).min(octets.len());
            let end = match length {
                Some(l) => start.saturating_add(l as usize).min(octets.len()),
                None => octets.len(),
            };
            octets = octets[start..end].to_vec();
        }
        Ok(octets)
    }
}
