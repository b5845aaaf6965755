//! Delivery: where a recipient goes, what headers a stored message gets, storage quotas, and
//! the one atomic hand-off to the store (local INBOXes and the outbound queue in the same
//! commit).

use std::net::SocketAddr;

use mailroom_store::{
    Account, AccountId, Delivery, MailStore, Outbound, Receipt, Store, StoreError,
};

use crate::config::Config;

/// Where one recipient address leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// An address of a local domain: its account, or what its alias or catch-all expands to
    /// (which may include addresses elsewhere).
    Local(Vec<Target>),
    /// Not a local domain: the outbound queue (relaying, so AUTH is needed on the MX).
    Remote { address: String },
    /// A local domain with no such account, alias or catch-all.
    UnknownUser,
}

/// One final destination of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Account { account: AccountId, address: String },
    Remote { address: String },
}

/// Alias chains longer than this are cut (a loop in the alias table).
const MAX_ALIAS_DEPTH: usize = 8;

/// Resolves an address against the store (blocking). Aliases win over accounts (so an
/// account's mail can be forwarded); the catch-all `@domain` applies when neither exists.
pub fn resolve(store: &Store, address: &str) -> Result<Route, StoreError> {
    let domain = mailroom_store::domain_of(address);
    if !store.is_local_domain(&domain)? {
        return Ok(Route::Remote {
            address: address.to_string(),
        });
    }
    let mut out = Vec::new();
    let mut seen = Vec::new();
    expand(store, address, 0, &mut seen, &mut out)?;
    Ok(if out.is_empty() {
        Route::UnknownUser
    } else {
        Route::Local(out)
    })
}

fn expand(
    store: &Store,
    address: &str,
    depth: usize,
    seen: &mut Vec<String>,
    out: &mut Vec<Target>,
) -> Result<(), StoreError> {
    let key = address.to_ascii_lowercase();
    if depth > MAX_ALIAS_DEPTH || seen.contains(&key) {
        return Ok(());
    }
    seen.push(key.clone());
    let mut targets = store.alias_targets(&key)?;
    if targets.is_empty() {
        if let Some(acct) = store.find_account(&key)? {
            out.push(Target::Account {
                account: acct.id,
                address: acct.address,
            });
            return Ok(());
        }
        let domain = mailroom_store::domain_of(&key);
        if depth == 0 {
            targets = store.alias_targets(&format!("@{domain}"))?;
        }
    }
    for t in targets {
        if store.is_local_domain(&mailroom_store::domain_of(&t))? {
            expand(store, &t, depth + 1, seen, out)?;
        } else if !out
            .iter()
            .any(|o| matches!(o, Target::Remote { address } if address.eq_ignore_ascii_case(&t)))
        {
            out.push(Target::Remote { address: t });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- storage quotas
//
// An account's usage is the sum of the sizes of its messages in all its mailboxes
// (`MailStore::account_usage`). The checks are made where mail comes in: SMTP RCPT (a
// temporary `452 4.2.2`, so the sending server keeps the message and retries) and IMAP APPEND
// and COPY (`NO [OVERQUOTA]`). They read the usage before the write, without a lock, so
// messages arriving at the same moment can take an account a little over its limit; and an
// SMTP client that does not declare SIZE= gets one message in while the account is under its
// limit, whatever its size. The next one is refused. Mail the server writes itself is never
// refused: DSN bounces go straight to the store with the queue's update (queue/mod.rs
// `record` -> `MailStore::queue_update`) and are not checked, so a full mailbox still learns
// that its owner's mail bounced; and `<Postmaster>` (RFC 5321 §4.5.1) is not checked either
// (smtp/mod.rs), so reports about problems, a full mailbox among them, get through.

/// Where an account's limit comes from (for `mailroom user list` and messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaSource {
    /// `[[accounts]] quota` in the config.
    Config,
    /// `mailroom user quota` (the store's accounts.quota).
    Store,
    /// `limits.account_quota`.
    Default,
}

/// The storage limit in octets that applies to an account (`None`: unlimited) and where it
/// comes from. The config's `[[accounts]] quota` wins, then the store's (`mailroom user
/// quota`), then `limits.account_quota`; 0 at any level means unlimited.
pub fn quota_limit(config: &Config, account: &Account) -> (Option<u64>, QuotaSource) {
    let configured = config
        .accounts
        .iter()
        .find(|a| a.address.trim().eq_ignore_ascii_case(&account.address))
        .and_then(|a| a.quota);
    let (octets, source) = match (configured, account.quota) {
        (Some(q), _) => (q, QuotaSource::Config),
        (None, Some(q)) => (q, QuotaSource::Store),
        (None, None) => (config.limits.account_quota, QuotaSource::Default),
    };
    ((octets > 0).then_some(octets), source)
}

/// How much of its quota an account uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Octets the account's messages take now.
    pub used: u64,
    /// The account's limit in octets (never 0).
    pub limit: u64,
}

impl QuotaUsage {
    /// Can `more` octets be added without going over the limit?
    pub fn fits(&self, more: u64) -> bool {
        self.used.saturating_add(more) <= self.limit
    }
    /// Is the account at or over its limit (nothing more fits)?
    pub fn full(&self) -> bool {
        self.used >= self.limit
    }
}

/// The usage of an account that has a limit; `None` for an unlimited account (whose usage is
/// then not computed, so accounts without a quota cost nothing). Blocking.
pub fn quota_usage(
    store: &dyn MailStore,
    config: &Config,
    account: &Account,
) -> Result<Option<QuotaUsage>, StoreError> {
    let (Some(limit), _) = quota_limit(config, account) else {
        return Ok(None);
    };
    let used = store.account_usage(account.id)?;
    Ok(Some(QuotaUsage { used, limit }))
}

/// The SMTP check at RCPT (RFC 5321 §4.2.5 452, RFC 3463 X.2.2): is a local target of this
/// recipient at or over its quota, or would `declared` octets (MAIL FROM's SIZE=, RFC 1870)
/// take it over? Returns the first full target's address. Blocking.
///
/// An alias that expands to several accounts is refused when *any* of them is full. The RCPT
/// is one promise for every target: accepting it while one member's mailbox cannot take the
/// message would mean dropping that member's copy without anybody being told. A temporary
/// refusal makes the sending server keep the message and retry (and bounce it to the sender
/// if the mailbox stays full), so nobody loses mail silently; the price is that one full
/// mailbox delays the alias for the others until its owner cleans up (or the administrator
/// raises that quota).
pub fn full_target(
    store: &dyn MailStore,
    config: &Config,
    targets: &[Target],
    declared: Option<u64>,
) -> Result<Option<String>, StoreError> {
    for t in targets {
        let Target::Account { address, .. } = t else {
            continue;
        };
        // The account as it is now: its quota may have been changed since it was resolved.
        let Some(account) = store.find_account(address)? else {
            continue;
        };
        if let Some(u) = quota_usage(store, config, &account)? {
            if u.full() || declared.is_some_and(|size| !u.fits(size)) {
                return Ok(Some(account.address));
            }
        }
    }
    Ok(None)
}

/// The facts about a transaction that go into its trace headers.
pub struct Trace<'a> {
    pub helo: &'a str,
    pub peer: SocketAddr,
    pub hostname: &'a str,
    /// "SMTP", "ESMTP", "ESMTPA", ... (RFC 3848, RFC 6531 §3.7.4).
    pub with: &'a str,
    pub id: &'a str,
    /// Named in `for <...>` only when there is exactly one recipient (privacy).
    pub single_recipient: Option<&'a str>,
}

/// `Received:` header (RFC 5321 §4.4), folded, ending in CRLF.
pub fn received_header(t: &Trace<'_>) -> String {
    let date = chrono::Utc::now().to_rfc2822();
    let ip = t.peer.ip();
    let for_clause = t
        .single_recipient
        .map(|r| format!("\r\n\tfor <{r}>"))
        .unwrap_or_default();
    format!(
        "Received: from {helo} ([{ip}])\r\n\tby {host} (mailroom) with {with} id {id}{for_clause};\r\n\t{date}\r\n",
        helo = sanitize(t.helo),
        host = t.hostname,
        with = t.with,
        id = t.id,
    )
}

/// Keeps a client-supplied word from breaking a header (no CR/LF, no control characters).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(255)
        .collect()
}

/// Counts `Received:` header fields in the header section (loop detection, RFC 5321 §6.3).
pub fn count_received(message: &[u8]) -> usize {
    header_lines(message)
        .filter(|l| starts_with_ignore_case(l, b"received:"))
        .count()
}

/// True when the header section has a field with this name (name includes the colon).
pub fn has_header(message: &[u8], name_with_colon: &str) -> bool {
    header_lines(message).any(|l| starts_with_ignore_case(l, name_with_colon.as_bytes()))
}

/// The lines of the header section (up to the first empty line), continuation lines included.
/// Data that does not start with a header field has none: all of it is body.
fn header_lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    let headers = starts_with_header_field(message);
    message
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(move |l| headers && !l.is_empty())
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Does the message's first line begin a header field? RFC 5322 §2.2, §3.6.8: a field name
/// is one or more printable US-ASCII characters other than the colon (33-57, 59-126),
/// followed by the colon; §4.5.3 (obsolete syntax, which readers accept): blanks may stand
/// between the name and the colon. `Dit is de body.` is not a header field (blanks inside
/// the name), nor is a blank first line, an indented one, or `From alice ...` (mbox style).
pub fn starts_with_header_field(message: &[u8]) -> bool {
    let name_len = message
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')
        .unwrap_or(message.len());
    if name_len == 0 {
        return false;
    }
    let rest = &message[name_len..];
    let blanks = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    rest.get(blanks) == Some(&b':')
}

/// The header fields a submission server adds when the message lacks them (RFC 6409 §8:
/// the MSA may complete a message; RFC 5322 §3.6: Date and From are required): `Date:`
/// (§8.2), `Message-ID:` (§8.3), and `From:` with the envelope sender, when there is one
/// (the authenticated user's own address: MAIL FROM must be it).
pub fn submission_fixups(message: &[u8], hostname: &str, id: &str, sender: Option<&str>) -> String {
    let mut add = String::new();
    if !has_header(message, "date:") {
        add.push_str(&format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822()));
    }
    if !has_header(message, "message-id:") {
        add.push_str(&format!(
            "Message-ID: <{}.{}@{}>\r\n",
            id.to_ascii_lowercase(),
            mailroom_store::now_unix(),
            hostname
        ));
    }
    if let Some(sender) = sender.filter(|s| !s.is_empty()) {
        if !has_header(message, "from:") {
            add.push_str(&format!("From: <{}>\r\n", sanitize(sender)));
        }
    }
    add
}

/// What a submission listener knows to complete a message with (see [`submission_fixups`]).
pub struct Submitted<'a> {
    pub hostname: &'a str,
    /// The transaction id (the left part of a generated Message-ID).
    pub id: &'a str,
    /// The envelope sender; `None` for `<>`.
    pub sender: Option<&'a str>,
}

/// Everything the server puts in front of the data a client sent: the trace header
/// (`received`), on submission the fields [`submission_fixups`] adds, and, when the data does
/// not start with a header field, the empty line that ends the header section (RFC 5322
/// §2.1, §3.5: header fields, an empty line, the body). Without it the text of a message
/// typed at telnet with no header lines (`DATA`, `Dit is de body.`, `.`) would be read as
/// part of the header section: IMAP's BODY[TEXT] empty, mail readers showing no text. Data
/// that starts with a header field, or with the empty line itself, is stored byte-exact
/// behind the prefix.
pub fn message_prefix(received: String, submitted: Option<Submitted<'_>>, data: &[u8]) -> String {
    let mut prefix = received;
    if let Some(s) = submitted {
        prefix.push_str(&submission_fixups(data, s.hostname, s.id, s.sender));
    }
    let blank_first = data.starts_with(b"\r\n") || data.starts_with(b"\n");
    if !blank_first && !starts_with_header_field(data) {
        prefix.push_str("\r\n");
    }
    prefix
}

/// A transaction ready for the store.
pub struct Accepted {
    /// Envelope sender; "" for `<>`.
    pub sender: String,
    pub local: Vec<AccountId>,
    pub remote: Vec<String>,
    /// Trace header(s) and any added header fields, prepended to the body.
    pub prefix: String,
    pub body: Vec<u8>,
    /// The SMTP dialogue that delivered it, kept with the local copies.
    pub transcript: Option<mailroom_store::Transcript>,
}

/// Stores the message for every recipient in one durable commit (blocking).
pub fn store_accepted(store: &Store, a: Accepted) -> Result<Receipt, StoreError> {
    store.deliver(delivery_of(a, 0))
}

/// The store's delivery of an accepted transaction: the local copy (with Return-Path) for
/// every local recipient, the queued copy for the remote ones, claimed until `claim_until`
/// (0: unclaimed; see [`mailroom_store::Outbound::claim_until`]).
pub fn delivery_of(a: Accepted, claim_until: i64) -> Delivery {
    let mut local = a.local;
    local.sort();
    local.dedup();
    let mut remote = a.remote;
    remote.sort_by_key(|r| r.to_ascii_lowercase());
    remote.dedup_by_key(|r| r.to_ascii_lowercase());

    let mut relayed = Vec::new();
    if !remote.is_empty() {
        relayed.reserve(a.prefix.len() + a.body.len());
        relayed.extend_from_slice(a.prefix.as_bytes());
        relayed.extend_from_slice(&a.body);
    }
    let mut local_message = Vec::new();
    if !local.is_empty() {
        // RFC 5321 §4.4: the final delivery adds Return-Path with the envelope sender.
        let rp = format!("Return-Path: <{}>\r\n", a.sender);
        local_message.reserve(rp.len() + a.prefix.len() + a.body.len());
        local_message.extend_from_slice(rp.as_bytes());
        local_message.extend_from_slice(a.prefix.as_bytes());
        local_message.extend_from_slice(&a.body);
    }
    Delivery {
        transcript: a.transcript.filter(|_| !local.is_empty()),
        local_message,
        local,
        outbound: (!remote.is_empty()).then(|| Outbound {
            sender: a.sender,
            recipients: remote,
            message: relayed,
            first_attempt: mailroom_store::now_unix(),
            claim_until,
        }),
    }
}

/// The mailbox quarantined mail goes to (DMARC p=quarantine, RFC 7489 §6.3), made when
/// missing. The name most clients show as the spam folder (RFC 6154's \\Junk).
pub const JUNK: &str = "Junk";

/// As [`store_accepted`], but the local copies go to each account's [`JUNK`] mailbox
/// (created if missing) instead of INBOX. Each local copy is durable when this returns.
pub fn store_quarantined(store: &Store, a: Accepted) -> Result<Receipt, StoreError> {
    let mut local = a.local.clone();
    local.sort();
    local.dedup();
    let rp = format!("Return-Path: <{}>\r\n", a.sender);
    let mut message = Vec::with_capacity(rp.len() + a.prefix.len() + a.body.len());
    message.extend_from_slice(rp.as_bytes());
    message.extend_from_slice(a.prefix.as_bytes());
    message.extend_from_slice(&a.body);
    let mut copies = Vec::new();
    for account in local {
        let mailbox = match store.mailbox(account, JUNK)? {
            Some(m) => m.id,
            None => store.create_mailbox(account, JUNK)?,
        };
        let (_, uid) = store.append_message(
            mailbox,
            &message,
            mailroom_store::Flags::default(),
            &[],
            mailroom_store::now_unix(),
        )?;
        copies.push((account, uid));
    }
    // Forwarded copies (an alias leading elsewhere) leave as any other mail does.
    let forwarded = if a.remote.is_empty() {
        Receipt::default()
    } else {
        store_accepted(
            store,
            Accepted {
                local: Vec::new(),
                ..a
            },
        )?
    };
    Ok(Receipt {
        local: copies,
        ..forwarded
    })
}

/// DKIM-Signature header fields (RFC 6376) for a message about to be queued, given as the
/// parts that will be sent in order; empty when signing is off or the From domain is not (under)
/// a local domain. Blocking: reads the store and may make or read keys. A failure is logged
/// and the message leaves unsigned (a receiver treats it as any unsigned mail) rather than
/// being refused.
pub fn dkim_signature(
    store: &Store,
    keys: &crate::dkim::DkimKeys,
    config: &Config,
    parts: &[&[u8]],
) -> String {
    if !keys.enabled() {
        return String::new();
    }
    let Some(from) = crate::dkim::from_domain(parts) else {
        return String::new();
    };
    let configured = config.local_domains();
    let Some(domain) = crate::dkim::signing_domain(&from, |d| {
        configured.iter().any(|c| c == d) || store.is_local_domain(d).unwrap_or(false)
    }) else {
        return String::new();
    };
    match keys.sign(&domain, parts) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(%domain, error = %e, "DKIM signing failed; the message leaves unsigned");
            String::new()
        }
    }
}

/// A short random transaction id, as in "queued as 4F2A9C01B3D7".
pub fn new_id() -> String {
    format!("{:012X}", rand::random::<u64>() & 0xFFFF_FFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_scanning() {
        let m =
            b"Received: a\r\nreceived: b\r\n\tcont\r\nSubject: x\r\n\r\nReceived: not a header\r\n";
        assert_eq!(count_received(m), 2);
        assert!(has_header(m, "subject:"));
        assert!(!has_header(m, "date:"));
        let fix = submission_fixups(m, "mx.example.test", "ABC", None);
        assert!(fix.starts_with("Date: "));
        assert!(fix.contains("Message-ID: <abc."));
        assert!(!fix.contains("From:"), "no envelope sender, no From");
        assert_eq!(
            submission_fixups(b"Date: x\r\nMessage-ID: <y>\r\n\r\n", "h", "i", None),
            ""
        );
        let fix = submission_fixups(m, "h", "i", Some("alice@example.test"));
        assert!(fix.ends_with("From: <alice@example.test>\r\n"), "{fix:?}");
        assert_eq!(
            submission_fixups(
                b"Date: x\r\nMessage-ID: <y>\r\nfrom: Alice <a@x.test>\r\n\r\n",
                "h",
                "i",
                Some("alice@example.test")
            ),
            ""
        );
        // A body that only looks like headers further down is not a header section.
        let typed = b"Hello\r\nDate: tomorrow\r\nReceived: twice\r\n";
        assert_eq!(count_received(typed), 0);
        assert!(submission_fixups(typed, "h", "i", None).starts_with("Date: "));
    }

    #[test]
    fn what_starts_a_header_section() {
        let yes: &[&[u8]] = &[
            b"Subject: hi\r\n\r\nbody\r\n",
            b"From: <a@b.test>\r\n",
            b"X-Odd_Name!: v\r\n",
            b"Subject : obsolete blank before the colon\r\n",
            b"Subject:\r\n",
            b"http://example.test looks like a field\r\n",
        ];
        for m in yes {
            assert!(
                starts_with_header_field(m),
                "{:?}",
                String::from_utf8_lossy(m)
            );
        }
        let no: &[&[u8]] = &[
            b"Dit is de body.\r\n",
            b"",
            b"\r\nbody after an empty header section\r\n",
            b" indented: continuation\r\n",
            b"\tSubject: x\r\n",
            b":no name\r\n",
            b"From alice@example.test Mon Jan  1 00:00:00 2024\r\n",
            b"Subject\r\n",
            b"H\xc3\xa9: non-ASCII name\r\n",
            b"Hello world\r\nSubject: too late\r\n",
        ];
        for m in no {
            assert!(
                !starts_with_header_field(m),
                "{:?}",
                String::from_utf8_lossy(m)
            );
        }
    }

    #[test]
    fn the_prefix_ends_the_header_section_when_the_client_gave_none() {
        let received = || "Received: from x\r\n".to_string();
        // Typed at telnet with no header lines: an empty line between ours and the text.
        assert_eq!(
            message_prefix(received(), None, b"Dit is de body.\r\n"),
            "Received: from x\r\n\r\n"
        );
        assert_eq!(
            message_prefix(received(), None, b""),
            "Received: from x\r\n\r\n"
        );
        // Headers given, or the empty line itself: nothing added, the data stays as sent.
        for data in [
            &b"Subject: hi\r\n\r\nbody\r\n"[..],
            b"Subject: no body\r\n",
            b"\r\nbody\r\n",
        ] {
            assert_eq!(
                message_prefix(received(), None, data),
                "Received: from x\r\n"
            );
        }
        // Submission: the added fields come before the empty line.
        let p = message_prefix(
            received(),
            Some(Submitted {
                hostname: "mx.example.test",
                id: "ID1",
                sender: Some("alice@example.test"),
            }),
            b"Dit is de body.\r\n",
        );
        assert!(p.starts_with("Received: from x\r\nDate: "), "{p:?}");
        assert!(p.contains("\r\nMessage-ID: <id1."), "{p:?}");
        assert!(
            p.ends_with("\r\nFrom: <alice@example.test>\r\n\r\n"),
            "{p:?}"
        );
        let p = message_prefix(
            received(),
            Some(Submitted {
                hostname: "h",
                id: "i",
                sender: Some("alice@example.test"),
            }),
            b"From: a@x.test\r\nDate: x\r\nMessage-ID: <y>\r\n\r\nbody\r\n",
        );
        assert_eq!(p, "Received: from x\r\n");
    }

    #[test]
    fn quota_precedence() {
        let config = Config::parse(
            "[limits]\naccount_quota = \"4K\"\n[[accounts]]\naddress = \"Cfg@x.test\"\npassword = \"p\"\nquota = \"1M\"\n[[accounts]]\naddress = \"free@x.test\"\npassword = \"p\"\nquota = 0\n",
            "t.toml",
        )
        .unwrap();
        let acct = |address: &str, quota: Option<u64>| Account {
            id: AccountId(1),
            address: address.into(),
            password_hash: String::new(),
            quota,
        };
        use QuotaSource::{Default, Store};
        assert_eq!(
            quota_limit(&config, &acct("a@x.test", None)),
            (Some(4096), Default)
        );
        assert_eq!(
            quota_limit(&config, &acct("a@x.test", Some(8192))),
            (Some(8192), Store)
        );
        assert_eq!(
            quota_limit(&config, &acct("a@x.test", Some(0))),
            (None, Store),
            "0 in the store: unlimited despite the default"
        );
        assert_eq!(
            quota_limit(&config, &acct("cfg@x.test", Some(8192))),
            (Some(1 << 20), QuotaSource::Config),
            "the config wins over the store"
        );
        assert_eq!(
            quota_limit(&config, &acct("free@x.test", None)),
            (None, QuotaSource::Config)
        );
        let unlimited = Config::parse("", "t.toml").unwrap();
        assert_eq!(
            quota_limit(&unlimited, &acct("a@x.test", None)),
            (None, Default)
        );
        let u = QuotaUsage {
            used: 3000,
            limit: 4096,
        };
        assert!(!u.full() && u.fits(1096) && !u.fits(1097));
        assert!(QuotaUsage {
            used: 4096,
            limit: 4096
        }
        .full());
    }

    #[test]
    fn full_targets_of_accounts_and_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let store: Store = mailroom_store::open(dir.path()).unwrap();
        let config = Config::parse("[limits]\naccount_quota = \"4K\"\n", "t.toml").unwrap();
        let a = store.add_account("a@x.test", "h").unwrap();
        store.add_account("b@x.test", "h").unwrap();
        store.add_alias("team@x.test", "a@x.test").unwrap();
        store.add_alias("team@x.test", "b@x.test").unwrap();
        store
            .add_alias("team@x.test", "far@elsewhere.test")
            .unwrap();
        let targets = |addr: &str| match resolve(&store, addr).unwrap() {
            Route::Local(t) => t,
            other => panic!("{other:?}"),
        };
        let full = |addr: &str, declared| {
            full_target(store.as_ref(), &config, &targets(addr), declared).unwrap()
        };
        assert_eq!(full("team@x.test", None), None);
        assert_eq!(full("a@x.test", Some(4096)), None, "exactly fits");
        assert_eq!(full("a@x.test", Some(4097)), Some("a@x.test".into()));
        store
            .deliver(Delivery::to_inboxes(vec![b'x'; 4096], vec![a]))
            .unwrap();
        assert_eq!(full("a@x.test", None), Some("a@x.test".into()));
        assert_eq!(full("b@x.test", None), None);
        // One full member refuses the alias.
        assert_eq!(full("team@x.test", None), Some("a@x.test".into()));
        // The administrator raises a's quota: accepted again at once.
        store.set_quota("a@x.test", Some(8192)).unwrap();
        assert_eq!(full("team@x.test", None), None);
        assert_eq!(full("team@x.test", Some(5000)), Some("a@x.test".into()));
        store.shutdown();
    }

    #[test]
    fn received_is_well_formed() {
        let h = received_header(&Trace {
            helo: "pc1\r\nX-Evil: 1",
            peer: "127.0.0.1:5000".parse().unwrap(),
            hostname: "mx.example.test",
            with: "ESMTPA",
            id: "ID1",
            single_recipient: Some("bob@example.test"),
        });
        assert!(
            h.starts_with("Received: from pc1??X-Evil: 1 ([127.0.0.1])\r\n\tby mx.example.test")
        );
        assert!(h.contains("with ESMTPA id ID1\r\n\tfor <bob@example.test>;"));
        assert!(h.ends_with("\r\n"));
        assert_eq!(h.matches("\r\n").count(), 4);
    }
}
