//! LIST (RFC 9051 §6.3.9; LIST-EXTENDED RFC 5258, CHILDREN RFC 3348, SPECIAL-USE RFC 6154,
//! LIST-STATUS RFC 5819), LSUB (RFC 3501 §6.3.9) and STATUS (RFC 9051 §6.3.11), with the
//! pattern matching LIST needs.

use mailroom_proto::imap::encode::push_string;
use mailroom_proto::imap::ListOptions;
use mailroom_store::{Flags, MailboxInfo};

use super::error::ImapError;
use super::names::{normalize_mailbox, DELIM};
use super::{ok, Done, Session};

/// LIST pattern matching (RFC 9051 §6.3.9): `*` matches anything, `%` anything but the
/// hierarchy delimiter. Dynamic programming over (pattern, name) positions, so a hostile
/// pattern like `*a*a*a*...` costs O(pattern × name), not exponential time.
fn pattern_match(pat: &[u8], name: &[u8]) -> bool {
    // reach[j]: the pattern prefix consumed so far can end at name position j.
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for &p in pat {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' | b'%' => {
                let mut on = false;
                for j in 0..=name.len() {
                    if reach[j] {
                        on = true;
                    }
                    next[j] = on;
                    if p == b'%' && j < name.len() && name[j] == DELIM as u8 {
                        // `%` cannot cross a delimiter: stop carrying past it.
                        on = false;
                    }
                }
            }
            c => {
                for j in 0..name.len() {
                    if reach[j] && name[j] == c {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
        if !reach.iter().any(|&r| r) {
            return false;
        }
    }
    reach[name.len()]
}

impl Session {
    pub(super) async fn list(
        &mut self,
        reference: &str,
        patterns: &[String],
        opts: &ListOptions,
        lsub: bool,
    ) -> Result<Done, ImapError> {
        let word = if lsub { "LSUB" } else { "LIST" };
        let acct = self.account_id()?;
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter.
        if patterns.len() == 1 && patterns[0].is_empty() {
            self.send_line(&format!("* {word} (\\Noselect) \"/\" \"\""));
            return ok(&format!("{word} completed"));
        }
        let boxes = self.store(move |s| s.list_mailboxes(acct)).await?;
        let names: Vec<String> = boxes.iter().map(|b| b.name.clone()).collect();
        let mut out: Vec<&MailboxInfo> = Vec::new();
        for b in &boxes {
            let matched = patterns.iter().any(|p| {
                let full = normalize_mailbox(&format!("{reference}{p}"));
                let full = if full.is_empty() {
                    format!("{reference}{p}")
                } else {
                    full
                };
                pattern_match(full.as_bytes(), b.name.as_bytes())
            });
            if !matched {
                continue;
            }
            if opts.subscribed && !b.subscribed {
                continue;
            }
            if opts.special_use_only && b.special_use.is_none() {
                continue;
            }
            out.push(b);
        }
        out.sort_by(|a, b| (a.name != "INBOX", &a.name).cmp(&(b.name != "INBOX", &b.name)));
        let status_items = opts.return_status.clone();
        for b in out {
            let prefix = format!("{}/", b.name);
            let children = names.iter().any(|n| n.starts_with(&prefix));
            let mut attrs: Vec<&str> = Vec::new();
            if !lsub {
                // RFC 3348 CHILDREN, always given (cheap here).
                attrs.push(if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                // RFC 6154: special-use attributes are always listed.
                if let Some(su) = &b.special_use {
                    attrs.push(su);
                }
                if (opts.subscribed || opts.return_subscribed) && b.subscribed {
                    attrs.push("\\Subscribed");
                }
            }
            let mut line = format!("* {word} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            push_string(&mut line, self.name_to_wire(&b.name).as_bytes());
            line.extend_from_slice(b"\r\n");
            self.conn.send(&line);
            if let Some(items) = &status_items {
                // RFC 5819 LIST-STATUS.
                let l = self.status_line(b, items).await?;
                self.conn.send(&l);
            }
        }
        ok(&format!("{word} completed"))
    }

    async fn status_line(&self, b: &MailboxInfo, items: &[String]) -> Result<Vec<u8>, ImapError> {
        let id = b.id;
        let list = self.store(move |s| s.list_messages(id)).await?;
        let mut parts = Vec::new();
        for i in items {
            let v: u64 = match i.as_str() {
                "MESSAGES" => list.len() as u64,
                "UIDNEXT" => u64::from(b.uidnext),
                "UIDVALIDITY" => u64::from(b.uidvalidity),
                "UNSEEN" => list
                    .iter()
                    .filter(|m| !m.flags.contains(Flags::SEEN))
                    .count() as u64,
                "DELETED" => list
                    .iter()
                    .filter(|m| m.flags.contains(Flags::DELETED))
                    .count() as u64,
                "SIZE" => list.iter().map(|m| m.size).sum(),
                "RECENT" => list.iter().filter(|m| m.uid > b.recent_uid).count() as u64,
                "HIGHESTMODSEQ" => b.highest_modseq,
                "APPENDLIMIT" => self.shared.config.limits.max_message_size,
                _ => continue,
            };
            parts.push(format!("{i} {v}"));
        }
        let mut line = b"* STATUS ".to_vec();
        push_string(&mut line, self.name_to_wire(&b.name).as_bytes());
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        Ok(line)
    }

    pub(super) async fn status(&mut self, name: &str, items: &[String]) -> Result<Done, ImapError> {
        let info = self.must_mailbox(name, "NONEXISTENT").await?;
        let line = self.status_line(&info, items).await?;
        self.conn.send(&line);
        ok("STATUS completed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_match(b"*", b"a/b"));
        assert!(pattern_match(b"%", b"a"));
        assert!(!pattern_match(b"%", b"a/b"));
        assert!(pattern_match(b"a/%", b"a/b"));
        assert!(pattern_match(b"INBOX", b"INBOX"));
        assert!(!pattern_match(b"S%", b"Drafts"));
        assert!(pattern_match(b"%/%", b"a/b"));
        assert!(!pattern_match(b"%b", b"a/b"));
        assert!(pattern_match(b"*b", b"a/b"));
        assert!(pattern_match(b"a%", b"a"));
        assert!(!pattern_match(b"a", b"ab"));
        // Patterns match names after decoding: wildcards stop at character boundaries.
        assert!(pattern_match("Entwü*".as_bytes(), "Entwürfe".as_bytes()));
        assert!(pattern_match("%ü%".as_bytes(), "Entwürfe".as_bytes()));
        assert!(pattern_match(
            "Привет/%".as_bytes(),
            "Привет/台北".as_bytes()
        ));
        assert!(!pattern_match("%北".as_bytes(), "Привет/台北".as_bytes()));
        assert!(!pattern_match("Entwu*".as_bytes(), "Entwürfe".as_bytes()));
        let hostile = "*a".repeat(2000);
        assert!(!pattern_match(
            hostile.as_bytes(),
            "a".repeat(1000).as_bytes()
        ));
    }
}
