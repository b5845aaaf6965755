//! Delivery: where a recipient goes, what headers a stored message gets, and the one atomic
//! hand-off to the store (local INBOXes and the outbound queue in the same commit).

use std::net::SocketAddr;

use mailroom_store::{AccountId, Delivery, Outbound, Receipt, Store, StoreError};

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
fn header_lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Headers a submission server adds when the client left them out (RFC 6409 §8.2, §8.3).
pub fn submission_fixups(message: &[u8], hostname: &str, id: &str) -> String {
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
    add
}

/// A transaction ready for the store.
pub struct Accepted<'a> {
    /// Envelope sender; "" for `<>`.
    pub sender: &'a str,
    pub local: Vec<AccountId>,
    pub remote: Vec<String>,
    /// Trace header(s) and any added header fields, prepended to the body.
    pub prefix: String,
    pub body: Vec<u8>,
}

/// Stores the message for every recipient in one durable commit (blocking).
pub fn store_accepted(store: &Store, a: Accepted<'_>) -> Result<Receipt, StoreError> {
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
    store.deliver(Delivery {
        local_message,
        local,
        outbound: (!remote.is_empty()).then(|| Outbound {
            sender: a.sender.to_string(),
            recipients: remote,
            message: relayed,
            first_attempt: mailroom_store::now_unix(),
        }),
    })
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
        let fix = submission_fixups(m, "mx.example.test", "ABC");
        assert!(fix.starts_with("Date: "));
        assert!(fix.contains("Message-ID: <abc."));
        assert_eq!(
            submission_fixups(b"Date: x\r\nMessage-ID: <y>\r\n\r\n", "h", "i"),
            ""
        );
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
