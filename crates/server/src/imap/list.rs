//! LIST (RFC 9051 §6.3.9; LIST-EXTENDED RFC 5258, CHILDREN RFC 3348, SPECIAL-USE RFC 6154,
//! LIST-STATUS RFC 5819), LSUB (RFC 3501 §6.3.9) and STATUS (RFC 9051 §6.3.11), with the
//! pattern matching LIST needs.

use mailroom_proto::imap::response::Response;
use mailroom_proto::imap::ListOptions;
use std::collections::{BTreeMap, BTreeSet};

use mailroom_store::{MailboxCounts, MailboxInfo};

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
            self.respond(&Response::list(word, &["\\Noselect"], "/", b""));
            return ok(&format!("{word} completed"));
        }
        let boxes = self.quick(move |s| s.list_mailboxes(acct)).await?;
        let needs_subs = lsub || opts.subscribed || opts.return_subscribed;
        let subs: BTreeSet<String> = if needs_subs {
            self.quick(move |s| s.subscriptions(acct))
                .await?
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        let full_patterns: Vec<String> = patterns
            .iter()
            .map(|p| {
                let full = normalize_mailbox(&format!("{reference}{p}"));
                if full.is_empty() {
                    format!("{reference}{p}")
                } else {
                    full
                }
            })
            .collect();
        let matches = |name: &str| {
            full_patterns
                .iter()
                .any(|p| pattern_match(p.as_bytes(), name.as_bytes()))
        };
        let existing: BTreeMap<&str, &MailboxInfo> =
            boxes.iter().map(|b| (b.name.as_str(), b)).collect();
        // The names to consider: every mailbox, and with a subscription-based selection
        // every subscribed name and its parents too (a subscription may name a mailbox that
        // does not exist, RFC 9051 §6.3.9; its parents can stand for it, RFC 3501 §6.3.9 and
        // RFC 5258 §3.5).
        let mut names: BTreeSet<&str> = existing.keys().copied().collect();
        if lsub || opts.subscribed {
            for s in &subs {
                names.insert(s);
                let mut at = s.as_str();
                while let Some((parent, _)) = at.rsplit_once(DELIM) {
                    names.insert(parent);
                    at = parent;
                }
            }
        }
        // A subscribed name below `name` that the patterns do not match itself.
        let unmatched_subscribed_child = |name: &str| {
            let prefix = format!("{name}{DELIM}");
            subs.iter().any(|s| s.starts_with(&prefix) && !matches(s))
        };
        let mut out: Vec<(&str, Vec<&str>, bool)> = Vec::new(); // name, attributes, CHILDINFO
        for &name in &names {
            if !matches(name) {
                continue;
            }
            let info = existing.get(name).copied();
            let subscribed = subs.contains(name);
            let mut attrs: Vec<&str> = Vec::new();
            let mut childinfo = false;
            if lsub {
                // RFC 3501 §6.3.9: a parent that is not subscribed itself is listed with
                // \Noselect when `%` stops at it above a subscribed name.
                if !subscribed {
                    if !unmatched_subscribed_child(name) {
                        continue;
                    }
                    attrs.push("\\Noselect");
                }
            } else {
                if opts.subscribed && !subscribed {
                    // RFC 5258 §3.5 RECURSIVEMATCH: a name that matches, above a subscribed
                    // name that does not, is listed with CHILDINFO ("SUBSCRIBED").
                    if !(opts.recursive_match && unmatched_subscribed_child(name)) {
                        continue;
                    }
                    childinfo = true;
                }
                if opts.special_use_only && info.and_then(|b| b.special_use.as_ref()).is_none() {
                    continue;
                }
                match info {
                    Some(b) => {
                        // RFC 3348 CHILDREN, always given (cheap here).
                        let prefix = format!("{}{DELIM}", b.name);
                        let children = existing.keys().any(|n| n.starts_with(&prefix));
                        attrs.push(if children {
                            "\\HasChildren"
                        } else {
                            "\\HasNoChildren"
                        });
                        // RFC 6154: special-use attributes are always listed.
                        if let Some(su) = &b.special_use {
                            attrs.push(su);
                        }
                    }
                    // RFC 5258 §3: a subscription without its mailbox, or a parent that
                    // only stands for what is below it.
                    None => attrs.push("\\NonExistent"),
                }
                if (opts.subscribed || opts.return_subscribed) && subscribed {
                    attrs.push("\\Subscribed");
                }
            }
            out.push((name, attrs, childinfo));
        }
        out.sort_by(|a, b| (a.0 != "INBOX", a.0).cmp(&(b.0 != "INBOX", b.0)));
        let status_items = opts.return_status.clone();
        for (name, attrs, childinfo) in out {
            let mut r = Response::list(word, &attrs, "/", self.name_to_wire(name).as_bytes());
            if childinfo {
                r = r.with_childinfo(&["SUBSCRIBED"]);
            }
            self.respond(&r);
            if let (Some(items), Some(b)) = (&status_items, existing.get(name)) {
                // RFC 5819 LIST-STATUS: for mailboxes that exist.
                let r = self.status_response(b, items).await?;
                self.respond(&r);
            }
        }
        ok(&format!("{word} completed"))
    }

    /// `* STATUS name (ITEM n ...)` with the items asked for, in their order.
    async fn status_response(
        &self,
        b: &MailboxInfo,
        items: &[String],
    ) -> Result<Response, ImapError> {
        let id = b.id;
        let counts = self.quick(move |s| s.mailbox_counts(id)).await?;
        Ok(self.status_of(b, &counts, items))
    }

    /// The STATUS response of a mailbox. The counts come from counters the store keeps with
    /// every change: constant time, however large the mailbox (no message is listed).
    fn status_of(&self, b: &MailboxInfo, counts: &MailboxCounts, items: &[String]) -> Response {
        let mut parts = Vec::new();
        for i in items {
            let v: u64 = match i.as_str() {
                "MESSAGES" => counts.messages,
                "UIDNEXT" => u64::from(b.uidnext),
                "UIDVALIDITY" => u64::from(b.uidvalidity),
                "UNSEEN" => counts.unseen,
                "DELETED" => counts.deleted,
                "SIZE" => counts.size,
                "RECENT" => counts.recent,
                "HIGHESTMODSEQ" => b.highest_modseq,
                "APPENDLIMIT" => self.shared.config.limits.max_message_size,
                _ => continue,
            };
            parts.push((i.as_str(), v));
        }
        let name = self.name_to_wire(&b.name);
        Response::status(name.as_bytes(), &parts)
    }

    pub(super) async fn status(&mut self, name: &str, items: &[String]) -> Result<Done, ImapError> {
        let acct = self.account_id()?;
        let key = normalize_mailbox(name);
        let found = self.quick(move |s| s.mailbox_status(acct, &key)).await?;
        let Some((info, counts)) = found else {
            return Err(self.no_mailbox(name, "NONEXISTENT"));
        };
        let r = self.status_of(&info, &counts, items);
        self.respond(&r);
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
