//! APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469, the parts
//! joined in `catenate.rs`): one or several messages, each with its own flags and internal
//! date, stored in one store transaction — all of them or none —
//! and answered with `[APPENDUID uidvalidity uid-set]` (RFC 4315 §3) naming every new UID.
//! The literal limits (`limits.max_message_size` per message, [`MAX_APPEND_TOTAL_FACTOR`]
//! times that for the whole command) are checked in `framing.rs` before a literal is read.

use mailroom_proto::imap::encode::parse_date_time;
use mailroom_proto::imap::AppendMessage;
use mailroom_store::{now_unix, NewMessage};

use super::error::ImapError;
use super::selected::split_flags;
use super::{ok_code, Done, Session};

/// The octets of all messages of one APPEND together may be at most this many times
/// `limits.max_message_size` (RFC 3502 §3 leaves the bound to the server); the memory budget
/// `limits.max_incoming_memory` bounds every session together as well.
pub(super) const MAX_APPEND_TOTAL_FACTOR: u64 = 4;

impl Session {
    pub(super) async fn append(
        &mut self,
        name: &str,
        messages: Vec<AppendMessage>,
    ) -> Result<Done, ImapError> {
        let max = self.shared.config.limits.max_message_size;
        let count = messages.len();
        // RFC 4469 §5 (as Dovecot): a missing destination is TRYCREATE before any URL is
        // looked at.
        if messages.iter().any(|m| m.catenate.is_some()) {
            self.must_mailbox(name, "TRYCREATE").await?;
        }
        let mut new = Vec::with_capacity(count);
        for (i, m) in messages.into_iter().enumerate() {
            // Which message a refusal is about, when there are several (RFC 3502 §6.3.11:
            // any failure leaves none of them stored).
            let which = if count > 1 {
                format!("message {} of {count}", i + 1)
            } else {
                "the message".to_string()
            };
            let (flags, keywords) = split_flags(&m.flags)?;
            let internal_date = match m.date.as_deref() {
                None => now_unix(),
                Some(d) => parse_date_time(d).ok_or_else(|| {
                    ImapError::bad(format!(
                        "{d:?} ({which}) is not a date-time like \"01-Feb-2024 10:00:00 +0000\""
                    ))
                })?,
            };
            // RFC 4469: the message joined from its parts (`catenate.rs`).
            let data = match m.catenate {
                Some(parts) => self.catenate(parts, max, &which).await?,
                None => m.message,
            };
            if data.is_empty() {
                return Err(ImapError::no(
                    "CANNOT",
                    format!("{which} is empty; nothing was stored"),
                ));
            }
            if data.len() as u64 > max {
                return Err(ImapError::no(
                    "TOOBIG",
                    format!("{which} is over the limit of {max} octets; nothing was stored"),
                ));
            }
            new.push(NewMessage {
                data,
                flags,
                keywords,
                internal_date,
            });
        }
        let total: u64 = new.iter().map(|m| m.data.len() as u64).sum();
        let max_total = max.saturating_mul(MAX_APPEND_TOTAL_FACTOR);
        if total > max_total {
            return Err(ImapError::no(
                "TOOBIG",
                format!(
                    "the messages of this APPEND are {total} octets together, over the limit of {max_total}; send fewer at a time"
                ),
            ));
        }
        let info = self.must_mailbox(name, "TRYCREATE").await?;
        // RFC 9208 §4.3: refused before anything is stored when they would not fit, all
        // messages counted together.
        let what = if count > 1 {
            "the messages"
        } else {
            "the message"
        };
        self.must_fit(total, what).await?;
        let id = info.id;
        let (uv, uids) = self.store(move |s| s.append_messages(id, &new)).await?;
        // RFC 4315 §3 APPENDUID: the UIDs are consecutive (one transaction), so a range.
        let set = match (uids.first(), uids.last()) {
            (Some(a), Some(b)) if a != b => format!("{a}:{b}"),
            (Some(a), _) => a.to_string(),
            _ => String::new(),
        };
        ok_code(format!("APPENDUID {uv} {set}"), "APPEND completed")
    }
}
