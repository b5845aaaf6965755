//! Checks on mail arriving at the MX listener: SPF (RFC 7208) of the MAIL FROM identity (of
//! the HELO identity when the reverse-path is null, §2.4), DKIM signatures (RFC 6376 §6) and
//! DMARC (RFC 7489 §6.6) alignment and policy; the `Authentication-Results` header field
//! (RFC 8601) that records them; and what the result does to the message.
//!
//! SPF and DKIM are `mail-auth`'s, through the shared resolver and its record caches
//! (`crate::dns`); DMARC's record lookup and alignment are ours (`dmarc()` below), with `mail-auth`'s
//! record parser and the Public Suffix List (`psl`) for organizational domains. It runs off the session's task: SPF is spawned when DATA starts (it needs
//! only the envelope) and DKIM and DMARC when the data is in, on a task of their own.
//!
//! Which mail is checked: mail from a session that did not authenticate, at the MX listener,
//! from a non-loopback peer (`[checks] loopback = true` checks loopback peers too), when the
//! recipients' domains are not all `off`. The strictest mode among the recipients' domains
//! applies to the message, since one reply after DATA answers for every recipient (RFC 5321
//! §4.1.1.4).
//!
//! What `enforce` does (RFC 7489 §6.6.2 leaves the action to the receiver):
//! - DMARC fails and the sender's domain publishes `p=reject` → `550 5.7.1` with the reason;
//! - DMARC fails with `p=quarantine` → the message goes to the recipients' Junk folder;
//! - the sender (MAIL FROM or From) is in one of our own domains, and neither SPF nor an
//!   aligned DKIM signature passes → `550 5.7.1`: only our users, authenticated at
//!   submission, send as our domains.

use std::net::IpAddr;
use std::sync::Arc;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::{Alignment, Policy};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, SpfOutput, SpfResult,
};
use tokio::task::JoinHandle;

use crate::config::CheckMode;
use crate::dns::Dns;

/// The envelope facts the checks need.
#[derive(Debug, Clone)]
pub(super) struct Envelope {
    pub ip: IpAddr,
    pub helo: String,
    /// The reverse-path; empty for `<>`.
    pub mail_from: String,
    /// Our hostname: the authserv-id of the Authentication-Results header (RFC 8601 §2.5).
    pub hostname: String,
}

/// SPF under way.
pub(super) struct Pending {
    env: Envelope,
    spf: JoinHandle<SpfOutput>,
}

/// What becomes of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    Deliver,
    /// To the recipients' Junk folder (DMARC p=quarantine).
    Junk(String),
    /// Refused with 550 5.7.1 and this reason.
    Refuse(String),
}

/// The outcome of the checks.
#[derive(Debug)]
pub(super) struct Verdict {
    /// The `Authentication-Results:` header field, CRLF-terminated.
    pub header: String,
    pub action: Action,
}

/// Starts the SPF check (RFC 7208 §4) of the envelope on a task of its own.
pub(super) fn start(dns: Arc<Dns>, env: Envelope) -> Pending {
    let task_env = env.clone();
    let spf = tokio::spawn(async move {
        let e = &task_env;
        let helo = if e.helo.is_empty() {
            "unknown"
        } else {
            &e.helo
        };
        let params = if e.mail_from.is_empty() {
            // RFC 7208 §2.4: with a null reverse-path the HELO identity is checked.
            SpfParameters::verify_ehlo(e.ip, helo, &e.hostname)
        } else {
            SpfParameters::verify_mail_from(e.ip, helo, &e.hostname, &e.mail_from)
        };
        dns.auth.verify_spf(dns.params(params)).await
    });
    Pending { env, spf }
}

/// The organizational domain (RFC 7489 §3.2): the public suffix of the name (from the Public
/// Suffix List, compiled in by the `psl` crate) and one label more. `mail.example.co.uk` →
/// `example.co.uk`; `a.co.uk` and `b.co.uk` are two organizations. A name under a suffix the
/// list does not know takes its last label as the suffix (the list's default rule `*`), so
/// `mx.example.test` → `example.test`. A name that is itself a public suffix is its own
/// organizational domain. Expects lower case (the list is).
fn organizational_domain(domain: &str) -> &str {
    let d = domain.trim_end_matches('.');
    psl::domain_str(d).unwrap_or(d)
}

/// Are two domains of one organization (RFC 7489 §3.1, relaxed alignment)?
fn relaxed_aligned(a: &str, b: &str) -> bool {
    organizational_domain(a) == organizational_domain(b)
}

/// The result of the DMARC evaluation (RFC 7489 §6.6) for one author domain, as RFC 8601
/// §2.7 words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DmarcWord {
    Pass,
    Fail,
    None,
    TempError,
    PermError,
}

impl DmarcWord {
    fn as_str(self) -> &'static str {
        match self {
            DmarcWord::Pass => "pass",
            DmarcWord::Fail => "fail",
            DmarcWord::None => "none",
            DmarcWord::TempError => "temperror",
            DmarcWord::PermError => "permerror",
        }
    }
}

/// What DMARC said about one author domain of a message.
#[derive(Debug)]
struct DmarcVerdict {
    /// The author (RFC5322.From) domain.
    domain: String,
    result: DmarcWord,
    /// The policy that applies: the record's `p=` when it was found at the From domain, its
    /// `sp=` (which defaults to `p=`) when found at the organizational domain (RFC 7489 §6.3).
    policy: Policy,
}

/// At most this many distinct author domains (From) are evaluated: each costs up to two DNS
/// lookups. A message naming more gets `dmarc=permerror` and is refused in enforce mode.
const MAX_FROM_DOMAINS: usize = 8;

/// The distinct domains of the From addresses (of every From field: RFC 5322 allows one, a
/// forger may send two), in order, lower case.
fn author_domains(from: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in from.iter().map(|a| domain_of(a)) {
        if !d.is_empty() && !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// The DMARC evaluation of a message (RFC 7489 §6.6): one verdict per author domain. A From
/// field with several addresses in several domains is checked for each of them, and the
/// strictest policy among those that fail applies (§6.6.1), so naming a second domain in From
/// does not step around the first one's policy. Empty when there is no From domain.
async fn dmarc(
    dns: &Dns,
    from: &[String],
    mail_from_domain: &str,
    spf: &SpfOutput,
    dkim: &[DkimOutput<'_>],
) -> Vec<DmarcVerdict> {
    let domains = author_domains(from);
    if domains.len() > MAX_FROM_DOMAINS {
        return vec![DmarcVerdict {
            domain: domains[0].clone(),
            result: DmarcWord::PermError,
            policy: Policy::None,
        }];
    }
    let mut out = Vec::with_capacity(domains.len());
    for domain in domains {
        out.push(dmarc_domain(dns, domain, mail_from_domain, spf, dkim).await);
    }
    out
}

/// The DMARC evaluation (RFC 7489 §6.6.2) for one author domain: the policy record, found at
/// the domain itself or else at its organizational domain (§6.6.3: those two names, nothing
/// in between, nothing above: a record at a public suffix speaks for none of its
/// registrants); then SPF and DKIM passes aligned with the domain, strictly or relaxed as the
/// record says (§3.1).
///
/// Written here rather than taken from `mail-auth`, whose walk asks every name up to the top
/// level, whose alignment knows no public suffixes and which skips messages with two From
/// domains; its record parser is used.
async fn dmarc_domain(
    dns: &Dns,
    domain: String,
    mail_from_domain: &str,
    spf: &SpfOutput,
    dkim: &[DkimOutput<'_>],
) -> DmarcVerdict {
    let verdict = |result, policy| DmarcVerdict {
        domain: domain.clone(),
        result,
        policy,
    };
    let org = organizational_domain(&domain);
    let found = match dns.dmarc(&domain).await {
        Ok(Some(r)) => Some((r, false)),
        Ok(None) if org != domain => match dns.dmarc(org).await {
            Ok(r) => r.map(|r| (r, true)),
            Err(_) => return verdict(DmarcWord::TempError, Policy::None),
        },
        Ok(None) => None,
        Err(_) => return verdict(DmarcWord::TempError, Policy::None),
    };
    let Some((record, at_org)) = found else {
        return verdict(DmarcWord::None, Policy::None);
    };
    let policy = if at_org { record.sp } else { record.p };
    let aligned = |other: &str, mode: &Alignment| {
        let other = other.trim_end_matches('.').to_ascii_lowercase();
        other == domain || (*mode == Alignment::Relaxed && relaxed_aligned(&other, &domain))
    };
    let spf_aligned = spf.result() == SpfResult::Pass && aligned(mail_from_domain, &record.aspf);
    let dkim_aligned = dkim.iter().any(|o| {
        o.result() == &DkimResult::Pass
            && o.signature().is_some_and(|s| aligned(&s.d, &record.adkim))
    });
    let result = if spf_aligned || dkim_aligned {
        DmarcWord::Pass
    } else {
        DmarcWord::Fail
    };
    verdict(result, policy)
}

/// How strict a policy is, for choosing the strictest (RFC 7489 §6.6.1).
fn strictness(p: &Policy) -> u8 {
    match p {
        Policy::Reject => 2,
        Policy::Quarantine => 1,
        _ => 0,
    }
}

fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default()
}

/// Finishes the checks on the received message (on a task of its own) and decides.
/// `is_local` says whether a domain is one of ours. The message is handed back.
pub(super) async fn finish(
    dns: Arc<Dns>,
    pending: Pending,
    message: Vec<u8>,
    mode: CheckMode,
    is_local: Arc<dyn Fn(&str) -> bool + Send + Sync>,
) -> (Verdict, Vec<u8>) {
    let Pending { env, spf } = pending;
    let task = tokio::spawn(async move {
        let spf = match spf.await {
            Ok(s) => s,
            Err(_) => SpfOutput::new(domain_of(&env.mail_from)).with_result(SpfResult::TempError),
        };
        let verdict = evaluate(&dns, &env, &spf, &message, mode, &*is_local).await;
        (verdict, message)
    });
    match task.await {
        Ok(done) => done,
        // The task panicked: the message is gone with it; say so rather than lose it silently.
        Err(e) => {
            tracing::error!(error = %e, "inbound checks panicked");
            (
                Verdict {
                    header: String::new(),
                    action: Action::Refuse(
                        "the message could not be checked; please try again later".into(),
                    ),
                },
                Vec::new(),
            )
        }
    }
}

async fn evaluate(
    dns: &Dns,
    env: &Envelope,
    spf: &SpfOutput,
    message: &[u8],
    mode: CheckMode,
    is_local: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Verdict {
    let helo = if env.helo.is_empty() {
        "unknown"
    } else {
        env.helo.as_str()
    };
    let mail_from_domain = if env.mail_from.is_empty() {
        helo.to_ascii_lowercase()
    } else {
        domain_of(&env.mail_from)
    };
    let Some(parsed) = AuthenticatedMessage::parse(message) else {
        // Not a message mail-auth can read (no header section): SPF only.
        let header = AuthenticationResults::new(&env.hostname)
            .with_spf_mailfrom_result(spf, env.ip, &env.mail_from, helo)
            .to_header();
        return Verdict {
            header,
            action: Action::Deliver,
        };
    };
    let dkim = dns.auth.verify_dkim(dns.params(&parsed)).await;
    let header_from = parsed.from.first().cloned().unwrap_or_default();
    let dmarc = dmarc(dns, &parsed.from, &mail_from_domain, spf, &dkim).await;
    let mut header = AuthenticationResults::new(&env.hostname)
        .with_dkim_results(&dkim, &header_from)
        .with_spf_mailfrom_result(spf, env.ip, &env.mail_from, helo)
        .to_header()
        // RFC 6376 §6.1.3: a body hash that does not match is PERMFAIL, "fail" in RFC 8601
        // §2.7.1 terms; mail-auth writes "neutral".
        .replace(
            "dkim=neutral (body hash did not verify)",
            "dkim=fail (body hash did not verify)",
        );
    if dkim.is_empty() {
        // RFC 8601 §2.7.1: "none" when the message was not signed (mail-auth writes nothing).
        header = header.replacen(";\r\n\t", ";\r\n\tdkim=none;\r\n\t", 1);
    }
    for d in &dmarc {
        // RFC 8601 §2.7: one result per author domain evaluated.
        let base = header.trim_end_matches("\r\n").to_string();
        header = format!(
            "{base};\r\n\tdmarc={} header.from={} policy.dmarc={}\r\n",
            d.result.as_str(),
            d.domain,
            d.policy
        );
    }

    let action = if mode != CheckMode::Enforce {
        Action::Deliver
    } else {
        let spf_pass = spf.result() == SpfResult::Pass;
        let dkim_aligned_pass = |domain: &str| {
            dkim.iter().any(|o| {
                o.result() == &DkimResult::Pass
                    && o.signature()
                        .is_some_and(|s| relaxed_aligned(&s.d.to_ascii_lowercase(), domain))
            })
        };
        // Every author domain counts, not only the first From address's.
        let forged = std::iter::once(mail_from_domain.clone())
            .chain(author_domains(&parsed.from))
            .filter(|d| !d.is_empty() && is_local(d))
            .find(|d| {
                let spf_vouches = spf_pass && *d == mail_from_domain;
                !spf_vouches && !dkim_aligned_pass(d)
            });
        // RFC 7489 §6.6.1: the strictest policy among the domains that fail.
        let dmarc_failed = dmarc
            .iter()
            .filter(|d| d.result == DmarcWord::Fail)
            .max_by_key(|d| strictness(&d.policy));
        let too_many = dmarc.iter().find(|d| d.result == DmarcWord::PermError);
        if let Some(d) = forged {
            Action::Refuse(format!(
                "{d} is a domain of this server, and this message was not sent by one of its users (SPF {}, no valid DKIM signature of {d}); log in to the submission port to send as {d}",
                spf_word(spf.result())
            ))
        } else if let Some(d) = too_many {
            Action::Refuse(format!(
                "the From field names more than {MAX_FROM_DOMAINS} domains (the first: {}), too many to check each one's DMARC policy; send with fewer authors",
                d.domain
            ))
        } else if let Some(d) = dmarc_failed {
            match d.policy {
                Policy::Reject => Action::Refuse(format!(
                    "DMARC policy of {} is reject, and this message passes neither SPF nor DKIM aligned with {}; ask the sender to fix their SPF or DKIM",
                    d.domain, d.domain
                )),
                Policy::Quarantine => Action::Junk(format!(
                    "DMARC policy of {} is quarantine and the message failed it",
                    d.domain
                )),
                _ => Action::Deliver,
            }
        } else {
            Action::Deliver
        }
    };
    Verdict { header, action }
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// Removes every Authentication-Results header field (with its continuation lines) whose
/// authserv-id is `hostname` (RFC 8601 §5: a border MTA removes the fields that claim to be
/// its own, or a sender could vouch for itself in our name). Others are kept.
pub(super) fn strip_our_results(message: Vec<u8>, hostname: &str) -> Vec<u8> {
    let end = header_end(&message);
    let mut out = Vec::with_capacity(message.len());
    let mut dropping = false;
    let mut pos = 0;
    let mut changed = false;
    while pos < end {
        let line_end = message[pos..end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(end, |i| pos + i + 1);
        let line = &message[pos..line_end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            dropping = claims(line, hostname);
        }
        if dropping {
            changed = true;
        } else {
            out.extend_from_slice(line);
        }
        pos = line_end;
    }
    if !changed {
        return message;
    }
    out.extend_from_slice(&message[end..]);
    out
}

/// Where the header section ends (the offset of the empty line, or the end).
fn header_end(m: &[u8]) -> usize {
    let mut pos = 0;
    while pos < m.len() {
        if m[pos..].starts_with(b"\r\n") || m[pos..].starts_with(b"\n") {
            return pos;
        }
        match m[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => pos += i + 1,
            None => return m.len(),
        }
    }
    m.len()
}

/// Is this header line an Authentication-Results field with our authserv-id?
fn claims(line: &[u8], hostname: &str) -> bool {
    const NAME: &[u8] = b"authentication-results";
    if line.len() < NAME.len() || !line[..NAME.len()].eq_ignore_ascii_case(NAME) {
        return false;
    }
    let rest = String::from_utf8_lossy(&line[NAME.len()..]);
    let Some(value) = rest.trim_start().strip_prefix(':') else {
        return false;
    };
    // RFC 8601 §2.2: authserv-id [ version ] ";" ...; a CFWS comment may precede it.
    let value = value.trim_start();
    let value = if value.starts_with('(') {
        value.split_once(')').map_or("", |(_, r)| r.trim_start())
    } else {
        value
    };
    let id = value
        .split(|c: char| c == ';' || c.is_whitespace())
        .next()
        .unwrap_or("");
    id.trim_end_matches('.')
        .eq_ignore_ascii_case(hostname.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_results_are_removed_others_kept() {
        let m = b"Received: x\r\nAuthentication-Results: mx.example.test;\r\n\tspf=pass smtp.mailfrom=a@b\r\nauthentication-results :  (c) MX.EXAMPLE.TEST. 1; dkim=pass\r\nAuthentication-Results: other.test; spf=fail\r\nSubject: s\r\n\r\nAuthentication-Results: mx.example.test; in the body\r\n".to_vec();
        let out = strip_our_results(m, "mx.example.test");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "Received: x\r\nAuthentication-Results: other.test; spf=fail\r\nSubject: s\r\n\r\nAuthentication-Results: mx.example.test; in the body\r\n"
        );
        // A host name that only begins like ours is not ours.
        let m = b"Authentication-Results: mx.example.test.evil; x\r\n\r\n".to_vec();
        assert_eq!(strip_our_results(m.clone(), "mx.example.test"), m);
        // No header section at all: untouched.
        let m = b"just text".to_vec();
        assert_eq!(strip_our_results(m.clone(), "mx.example.test"), m);
    }

    #[test]
    fn organizational_domains() {
        // Table: (name, its organizational domain under the Public Suffix List).
        for (name, org) in [
            ("a.b.example.test", "example.test"),
            ("example.test.", "example.test"),
            ("test", "test"),
            ("mail.example.co.uk", "example.co.uk"),
            ("example.co.uk", "example.co.uk"),
            // A public suffix is its own organizational domain.
            ("co.uk", "co.uk"),
            ("a.b.c.example.com", "example.com"),
            // Three-label suffixes and private-section suffixes of the list.
            ("x.school.k12.ma.us", "school.k12.ma.us"),
            ("alice.github.io", "alice.github.io"),
            ("", ""),
        ] {
            assert_eq!(organizational_domain(name), org, "{name}");
        }
        assert!(relaxed_aligned("mail.example.co.uk", "example.co.uk"));
        assert!(!relaxed_aligned("a.co.uk", "b.co.uk"));
        assert!(!relaxed_aligned("alice.github.io", "bob.github.io"));
        assert!(!relaxed_aligned("example.com", "example.net"));
    }
}
