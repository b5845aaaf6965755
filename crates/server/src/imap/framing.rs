//! A command off the wire (RFC 9051 §2.2, §4.3): each line goes to the
//! [`Assembler`](mailroom_proto::imap::Assembler), a literal it announces is checked against
//! its limit before any of it is read (and, for APPEND, against the memory budget shared by
//! all sessions and the account's quota), then read; a whole command is traced with its
//! secrets masked.

use mailroom_proto::imap::response::Response;
use mailroom_proto::imap::{assemble::FrameError, Command, CommandBody, Progress};

use super::append::MAX_APPEND_TOTAL_FACTOR;
use super::error::ImapError;
use super::{quota, Flow, Session, MAX_COMMAND_TEXT};
use crate::conn::{mask_secrets, MASK};

/// Literals of commands other than APPEND (user names, passwords, mailbox names, search
/// strings) are small; APPEND's limit is `limits.max_message_size`.
const MAX_SMALL_LITERAL: u64 = 64 * 1024;

impl Session {
    /// One line from the client: frame it, reading literals as needed.
    pub(super) async fn line(&mut self, line: Vec<u8>) -> Flow {
        let progress = self.asm.push_line(&line, MAX_COMMAND_TEXT);
        match progress {
            Err(e) => {
                let tag = line
                    .split(|&b| b == b' ')
                    .next()
                    .filter(|t| {
                        !t.is_empty() && t.iter().all(|&b| mailroom_proto::imap::is_tag_char(b))
                    })
                    .map(|t| String::from_utf8_lossy(t).into_owned());
                self.conn.trace.client(&format!("<bad command: {e}>"));
                let text = match e {
                    FrameError::Nul => {
                        "NUL octets are not allowed in commands (RFC 9051 §4)".to_string()
                    }
                    FrameError::TooLong(n) => format!("command longer than {n} octets"),
                };
                self.fail(tag.as_deref(), ImapError::bad(text))
            }
            Ok(Progress::Literal { size, sync }) => self.literal(size, sync).await,
            Ok(Progress::Complete(buf)) => {
                let flow = self.command(buf).await;
                // The message is stored (or refused): its memory is free again.
                self.append_held = None;
                flow
            }
        }
    }

    /// A literal was announced: refuse it if too large, else read it.
    async fn literal(&mut self, size: u64, sync: bool) -> Flow {
        let is_append = self.asm.command_name().as_deref() == Some("APPEND");
        let limit = if is_append {
            self.shared.config.limits.max_message_size
        } else {
            MAX_SMALL_LITERAL
        };
        // RFC 3502: a MULTIAPPEND carries several literals; each is one message (at most
        // `limit`), all of them together at most `MAX_APPEND_TOTAL_FACTOR` times that.
        let total_limit = if is_append {
            limit.saturating_mul(MAX_APPEND_TOTAL_FACTOR)
        } else {
            limit
        };
        let total = self.asm.literal_total().saturating_add(size);
        // An APPEND holds its messages in memory until stored: reserve them from the budget
        // shared by all sessions before reading each.
        let over_budget = is_append && size <= limit && total <= total_limit && {
            let budget = &self.shared.incoming;
            let held = self.append_held.get_or_insert_with(|| budget.reserve());
            !held.grow_to(total)
        };
        if over_budget {
            let budget = self.shared.config.limits.max_incoming_memory;
            tracing::warn!(
                size,
                limit = budget,
                "limits.max_incoming_memory reached: an APPEND is refused"
            );
            let e = ImapError::no(
                "UNAVAILABLE",
                "the server is receiving too many messages at once; try the APPEND again in a few minutes",
            );
            return self.refuse_literal(size, sync, e, "memory budget used up");
        }
        if is_append && size <= limit && total > total_limit {
            let e = ImapError::no(
                "TOOBIG",
                format!(
                    "the messages of this APPEND would be {total} octets together, over the limit of {total_limit}; send fewer at a time"
                ),
            );
            return self.refuse_literal(size, sync, e, "too large");
        }
        let over = if is_append {
            size > limit
        } else {
            total > limit
        };
        if over {
            let e = ImapError::no(
                "TOOBIG",
                format!(
                    "a literal of {size} octets is over the limit of {limit} octets{}",
                    if is_append {
                        " for a message"
                    } else {
                        " for this command"
                    }
                ),
            );
            return self.refuse_literal(size, sync, e, "too large");
        }
        // RFC 9208 §4.3: a message that cannot fit the account's quota is refused before the
        // client sends it (only a synchronizing literal waits for our go-ahead; the octets of
        // a non-synchronizing one are on their way, and APPEND checks again once it is read).
        if is_append && sync {
            if let Ok(Some(u)) = self.quota().await {
                if !u.fits(total) {
                    let e = quota::over_quota(&u, total, "the message");
                    return self.refuse_literal(size, sync, e, "over quota");
                }
            }
        }
        if sync {
            // RFC 9051 §7.5: go ahead.
            self.respond(&Response::continuation("go ahead"));
        }
        let mut got: u64 = 0;
        while got < size {
            self.conn.quick_ack();
            match self.conn.read_raw().await {
                Ok(Some(chunk)) => {
                    let need = usize::try_from(size - got).unwrap_or(usize::MAX);
                    if chunk.len() > need {
                        self.asm.push_literal(&chunk[..need]);
                        self.conn.unread(&chunk[need..]);
                        got = size;
                    } else {
                        self.asm.push_literal(&chunk);
                        got += chunk.len() as u64;
                    }
                }
                _ => return Flow::Close,
            }
        }
        // The literal is in: acknowledge it now, so a client holding its CRLF back (Nagle) sends it.
        self.conn.quick_ack();
        Flow::Continue
    }

    /// Refuses an announced literal without reading it: the command's tagged NO, and for a
    /// non-synchronizing literal, whose octets are already on their way (RFC 7888 §4), the end
    /// of the connection.
    fn refuse_literal(&mut self, size: u64, sync: bool, e: ImapError, why: &str) -> Flow {
        self.append_held = None;
        let tag = self.asm.tag();
        self.asm.reset();
        self.conn.trace.client(&format!(
            "{} <literal of {size} octets refused: {why}>",
            tag.as_deref().unwrap_or("*")
        ));
        self.respond(&e.to_response(tag.as_deref()));
        if !sync {
            self.bye("the literal cannot be read now; closing the connection");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Traces a whole command (its literals included). Trace::client masks every LOGIN and
    /// AUTHENTICATE, parsed or not; only a parsed LOGIN shows its user name.
    pub(super) fn trace_command(&self, cmd: Option<&Command>, buf: &[u8]) {
        match cmd {
            Some(Command {
                tag,
                body: CommandBody::Login { user, .. },
            }) => {
                self.conn
                    .trace
                    .client_masked(&format!("{tag} LOGIN {user} {MASK}"));
            }
            Some(Command {
                tag,
                body: CommandBody::Append { mailbox, messages },
            }) => {
                let sizes: Vec<String> = messages
                    .iter()
                    .map(|m| format!("<{} octets>", m.message.len()))
                    .collect();
                let text = format!("{tag} APPEND {mailbox} {}", sizes.join(" "));
                self.conn.trace.client(&text);
            }
            _ => {
                let text = String::from_utf8_lossy(buf);
                let text = mask_secrets(&text);
                let text = text.chars().take(300).collect::<String>();
                self.conn.trace.client(&text.replace("\r\n", "\\r\\n"));
            }
        }
    }
}
