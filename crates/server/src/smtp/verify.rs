//! VRFY and EXPN (RFC 5321 §3.5, §4.1.1.6, §4.1.1.7): who a name or address is, and who is
//! on a mailing list (an alias). Each is switched per listener (`[vrfy]`, `[expn]`: off by
//! default, since they tell anybody which addresses exist, §7.3); switched off, both answer
//! `252` (§7.3: a site that disables them MUST answer 252, not a code that could be taken for
//! a verification).
//!
//! Switched on:
//!
//! | question | answer |
//! |---|---|
//! | `VRFY usr1` (a user name: accounts and aliases with that local part, in any local domain) | `250 2.1.5 usr1 <usr1@school.test>` when exactly one; `553 5.1.4` with the possibilities, one per line, when several (§3.5.1); `550 5.1.1` when none |
//! | `VRFY usr1@school.test` | `250` when mail to it is delivered here (an account, an alias, a catch-all), `550 5.1.1` when not; an address elsewhere: `252` after AUTH (it would be relayed), else `550 5.7.1` |
//! | `EXPN staff` / `EXPN staff@school.test` | `250 2.1.5` one line per member (§3.5.2, the alias's own targets, as the administrator wrote them); a user, not a list: `550 5.1.1` saying so; `553 5.1.4` when several lists have the name; `550 5.1.1` when none |
//!
//! The lookups are blocking store reads ([`verify`], [`expand`]); the session runs them on a
//! blocking thread and builds the reply here ([`vrfy_reply`], [`expn_reply`]). The answers
//! are not refusals: they do not count towards `limits.max_errors`.

use mailroom_proto::smtp::Reply;
use mailroom_store::{Store, StoreError};

use super::{Flow, Session};
use crate::delivery::{self, Route};

/// What `VRFY` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verified {
    /// Mail to this address is delivered here.
    Found(String),
    /// A user name that several addresses here have (sorted).
    Several(Vec<String>),
    /// No such user here.
    Unknown(String),
    /// An address in a domain this server does not serve.
    NotLocal(String),
}

/// What `EXPN` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expanded {
    /// The list and its members, as the alias lists them.
    Members { list: String, members: Vec<String> },
    /// A user (an account), not a list.
    NotAList(String),
    /// A list name that several lists here have (sorted).
    Several(Vec<String>),
    /// No such list here.
    Unknown(String),
    /// An address in a domain this server does not serve.
    NotLocal(String),
}

/// The name or address in a VRFY/EXPN argument: `usr1`, `usr1@school.test`,
/// `<usr1@school.test>`, `Some Name <usr1@school.test>`.
fn query(arg: &str) -> String {
    let arg = arg.trim();
    match arg.find('<') {
        Some(open) => {
            let inner = &arg[open + 1..];
            inner[..inner.find('>').unwrap_or(inner.len())]
                .trim()
                .to_string()
        }
        None => arg.to_string(),
    }
}

/// `usr1 <usr1@school.test>`: RFC 5321 §3.5.1's "User Name <mailbox>", with the local part as
/// the name (the store keeps no full names).
fn mailbox_line(address: &str) -> String {
    let name = address.rsplit_once('@').map_or(address, |(l, _)| l);
    format!("{name} <{address}>")
}

/// VRFY's lookup (blocking).
pub(crate) fn verify(store: &Store, arg: &str) -> Result<Verified, StoreError> {
    let q = query(arg);
    if q.contains('@') {
        let address = q.to_ascii_lowercase();
        return Ok(match delivery::resolve(store, &address)? {
            Route::Local(_) => Verified::Found(address),
            Route::UnknownUser => Verified::Unknown(address),
            Route::Remote { .. } => Verified::NotLocal(address),
        });
    }
    let mut found: Vec<String> = store
        .accounts_with_local_part(&q)?
        .into_iter()
        .map(|a| a.address)
        .collect();
    found.extend(store.aliases_with_local_part(&q)?);
    found.sort();
    found.dedup();
    Ok(match found.len() {
        0 => Verified::Unknown(q),
        1 => Verified::Found(found.remove(0)),
        _ => Verified::Several(found),
    })
}

/// EXPN's lookup (blocking).
pub(crate) fn expand(store: &Store, arg: &str) -> Result<Expanded, StoreError> {
    let q = query(arg);
    let members = |list: String| -> Result<Expanded, StoreError> {
        let members = store.alias_targets(&list)?;
        Ok(Expanded::Members { list, members })
    };
    if q.contains('@') {
        let address = q.to_ascii_lowercase();
        if address.starts_with('@')
            || !store.is_local_domain(&mailroom_store::domain_of(&address))?
        {
            return Ok(Expanded::NotLocal(address));
        }
        if !store.alias_targets(&address)?.is_empty() {
            return members(address);
        }
        return Ok(match store.find_account(&address)? {
            Some(a) => Expanded::NotAList(a.address),
            None => Expanded::Unknown(address),
        });
    }
    let mut lists = store.aliases_with_local_part(&q)?;
    match lists.len() {
        1 => members(lists.remove(0)),
        0 => Ok(match store.accounts_with_local_part(&q)?.as_slice() {
            [one] => Expanded::NotAList(one.address.clone()),
            _ => Expanded::Unknown(q),
        }),
        _ => Ok(Expanded::Several(lists)),
    }
}

/// A 553 5.1.4 (RFC 3463 X.1.4: address ambiguous) listing the possibilities, one a line.
fn ambiguous(name: &str, verb: &str, candidates: &[String]) -> Reply {
    let mut lines = vec![format!(
        "{name} is ambiguous; {verb} one of these full addresses:"
    )];
    lines.extend(candidates.iter().map(|c| mailbox_line(c)));
    Reply::multiline(553, "5.1.4", lines)
}

/// The reply to a VRFY that was looked up; `relays` when the session may send anywhere.
pub(crate) fn vrfy_reply(v: &Verified, relays: bool) -> Reply {
    match v {
        // RFC 5321 §3.5.1: "250 User Name <mailbox>"; RFC 3463 X.1.5: address valid.
        Verified::Found(a) => Reply::new(250, "2.1.5", mailbox_line(a)),
        Verified::Several(c) => ambiguous(&name_of(c), "VRFY", c),
        Verified::Unknown(q) => Reply::new(
            550,
            "5.1.1",
            format!("{}: no such user here", shown_query(q)),
        ),
        Verified::NotLocal(a) if relays => Reply::new(
            252,
            "2.5.0",
            format!("<{a}> is not a local address: it cannot be verified here, but mail to it will be relayed"),
        ),
        Verified::NotLocal(a) => Reply::new(
            550,
            "5.7.1",
            format!("<{a}> is not a local address; this server verifies (and accepts mail for) its own domains only"),
        ),
    }
}

/// The reply to an EXPN that was looked up.
pub(crate) fn expn_reply(e: &Expanded) -> Reply {
    match e {
        // RFC 5321 §3.5.2: one "250-" line per member, the last "250 ".
        Expanded::Members { members, .. } => Reply::multiline(
            250,
            "2.1.5",
            members.iter().map(|m| mailbox_line(m)).collect(),
        ),
        Expanded::NotAList(a) => {
            let name = a.rsplit_once('@').map_or(a.as_str(), |(l, _)| l);
            Reply::new(
                550,
                "5.1.1",
                format!(
                    "{} is a user, not a mailing list; VRFY {name} checks a user",
                    mailbox_line(a)
                ),
            )
        }
        Expanded::Several(c) => ambiguous(&name_of(c), "EXPN", c),
        Expanded::Unknown(q) => Reply::new(
            550,
            "5.1.1",
            format!("{}: no such mailing list here", shown_query(q)),
        ),
        Expanded::NotLocal(a) => Reply::new(
            550,
            "5.7.1",
            format!("<{a}> is not a local address; EXPN shows this server's own lists only"),
        ),
    }
}

/// The user name the candidates share.
fn name_of(candidates: &[String]) -> String {
    candidates
        .first()
        .and_then(|c| c.rsplit_once('@'))
        .map_or(String::new(), |(l, _)| l.to_string())
}

/// A queried name or address as the reply shows it: `<a@b>` for an address, the name as
/// given (at most 64 characters, control characters as `?`).
fn shown_query(q: &str) -> String {
    let q: String = q
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(64)
        .collect();
    if q.contains('@') {
        format!("<{q}>")
    } else {
        q
    }
}

/// VRFY switched off (`[vrfy]`): RFC 5321 §3.5.3, §7.3.
fn vrfy_off() -> Reply {
    Reply::new(
        252,
        "2.5.0",
        "Cannot VRFY user, but will accept message and attempt delivery",
    )
}

/// EXPN switched off (`[expn]`): RFC 5321 §7.3 asks for 252 here too.
fn expn_off() -> Reply {
    Reply::new(
        252,
        "2.5.0",
        "Cannot EXPN: mailing lists are private here; mail to a list is accepted and delivered",
    )
}

impl Session {
    /// VRFY (RFC 5321 §4.1.1.6), in any state; never changes the transaction.
    pub(super) async fn vrfy(&mut self, arg: String) -> Flow {
        if !self.shared.config.vrfy.on(self.kind) {
            self.reply(vrfy_off());
            return Flow::Continue;
        }
        let store = self.shared.store.clone();
        let found = tokio::task::spawn_blocking(move || verify(&store, &arg)).await;
        let reply = match found {
            Ok(Ok(v)) => vrfy_reply(&v, self.auth.is_some()),
            Ok(Err(e)) => self.lookup_failed(&e.to_string()),
            Err(e) => self.lookup_failed(&e.to_string()),
        };
        self.reply(reply);
        Flow::Continue
    }

    /// EXPN (RFC 5321 §4.1.1.7), in any state; never changes the transaction.
    pub(super) async fn expn(&mut self, arg: String) -> Flow {
        if !self.shared.config.expn.on(self.kind) {
            self.reply(expn_off());
            return Flow::Continue;
        }
        let store = self.shared.store.clone();
        let found = tokio::task::spawn_blocking(move || expand(&store, &arg)).await;
        let reply = match found {
            Ok(Ok(e)) => expn_reply(&e),
            Ok(Err(e)) => self.lookup_failed(&e.to_string()),
            Err(e) => self.lookup_failed(&e.to_string()),
        };
        self.reply(reply);
        Flow::Continue
    }

    /// The store could not answer: a temporary failure (RFC 5321 §4.2.2 451).
    fn lookup_failed(&self, error: &str) -> Reply {
        tracing::error!(session = self.id, error, "VRFY/EXPN lookup failed");
        Reply::new(
            451,
            "4.3.0",
            "Temporary failure looking up the name; try again later",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let store = mailroom_store::open(dir.path()).expect("store");
        for a in [
            "usr1@school.test",
            "usr2@school.test",
            "usr1@webmail.test",
            "solo@school.test",
        ] {
            store.add_account(a, "h").expect("account");
        }
        for (s, t) in [
            ("staff@school.test", "usr1@school.test"),
            ("staff@school.test", "usr2@school.test"),
            ("staff@school.test", "friend@elsewhere.test"),
            ("team@school.test", "usr1@school.test"),
            ("team@webmail.test", "usr1@webmail.test"),
            ("@catchall.test", "solo@school.test"),
        ] {
            store.add_alias(s, t).expect("alias");
        }
        (dir, store)
    }

    #[test]
    fn arguments() {
        assert_eq!(query(" usr1 "), "usr1");
        assert_eq!(query("<usr1@school.test>"), "usr1@school.test");
        assert_eq!(query("Usr One <usr1@school.test>"), "usr1@school.test");
        assert_eq!(query("<unclosed@x.test"), "unclosed@x.test");
        assert_eq!(mailbox_line("usr1@school.test"), "usr1 <usr1@school.test>");
    }

    #[test]
    fn vrfy_lookups_and_replies() {
        let (_d, s) = store();
        let v = |a: &str| verify(&s, a).expect("lookup");
        let wire = |a: &str, relays: bool| {
            String::from_utf8(vrfy_reply(&v(a), relays).to_bytes()).expect("utf8")
        };
        assert_eq!(wire("solo", false), "250 2.1.5 solo <solo@school.test>\r\n");
        assert_eq!(wire("SOLO", false), "250 2.1.5 solo <solo@school.test>\r\n");
        assert_eq!(
            wire("<Usr1@School.test>", false),
            "250 2.1.5 usr1 <usr1@school.test>\r\n"
        );
        // An alias and a catch-all are delivered to: verified.
        assert_eq!(
            wire("staff", false),
            "250 2.1.5 staff <staff@school.test>\r\n"
        );
        assert_eq!(
            wire("anyone@catchall.test", false),
            "250 2.1.5 anyone <anyone@catchall.test>\r\n"
        );
        assert_eq!(
            wire("usr1", false),
            "553-5.1.4 usr1 is ambiguous; VRFY one of these full addresses:\r\n553-5.1.4 usr1 <usr1@school.test>\r\n553 5.1.4 usr1 <usr1@webmail.test>\r\n"
        );
        assert_eq!(
            v("team"),
            Verified::Several(vec!["team@school.test".into(), "team@webmail.test".into()])
        );
        assert_eq!(
            wire("nobody", false),
            "550 5.1.1 nobody: no such user here\r\n"
        );
        assert_eq!(
            wire("nobody@school.test", false),
            "550 5.1.1 <nobody@school.test>: no such user here\r\n"
        );
        assert!(
            wire("x@far.test", false).starts_with("550 5.7.1 <x@far.test> is not a local address")
        );
        assert!(
            wire("x@far.test", true).starts_with("252 2.5.0 <x@far.test> is not a local address")
        );
    }

    #[test]
    fn expn_lookups_and_replies() {
        let (_d, s) = store();
        let wire = |a: &str| {
            String::from_utf8(expn_reply(&expand(&s, a).expect("lookup")).to_bytes()).expect("utf8")
        };
        let staff = "250-2.1.5 friend <friend@elsewhere.test>\r\n250-2.1.5 usr1 <usr1@school.test>\r\n250 2.1.5 usr2 <usr2@school.test>\r\n";
        assert_eq!(wire("staff"), staff);
        assert_eq!(wire("Staff@School.test"), staff);
        assert_eq!(wire("<staff@school.test>"), staff);
        assert_eq!(
            wire("team"),
            "553-5.1.4 team is ambiguous; EXPN one of these full addresses:\r\n553-5.1.4 team <team@school.test>\r\n553 5.1.4 team <team@webmail.test>\r\n"
        );
        assert_eq!(
            wire("team@webmail.test"),
            "250 2.1.5 usr1 <usr1@webmail.test>\r\n"
        );
        assert_eq!(
            wire("solo"),
            "550 5.1.1 solo <solo@school.test> is a user, not a mailing list; VRFY solo checks a user\r\n"
        );
        assert_eq!(
            wire("usr1"),
            "550 5.1.1 usr1: no such mailing list here\r\n"
        );
        assert_eq!(
            wire("nolist"),
            "550 5.1.1 nolist: no such mailing list here\r\n"
        );
        assert_eq!(
            wire("nolist@school.test"),
            "550 5.1.1 <nolist@school.test>: no such mailing list here\r\n"
        );
        assert!(
            wire("list@far.test").starts_with("550 5.7.1 <list@far.test> is not a local address")
        );
        assert!(wire("@catchall.test").starts_with("550 5.7.1"));
    }
}
