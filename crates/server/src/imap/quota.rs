//! IMAP QUOTA (RFC 9208): GETQUOTA and GETQUOTAROOT (SETQUOTA is refused), the quota check of
//! APPEND and COPY, and the responses and refusals as plain functions of an account's usage.
//!
//! mailroom has one quota root per account, named `""` (the empty name, as Dovecot calls its
//! user quota), with one resource, STORAGE: the sum of the sizes of the account's messages in
//! all its mailboxes (see `delivery::quota_usage`). Every mailbox of the account has that root.
//! An account without a limit has no quota root at all (RFC 9208 §4.1.2 lets GETQUOTAROOT
//! answer with none). Limits are set by the administrator (`mailroom user quota`,
//! `limits.account_quota`, `[[accounts]] quota`), so SETQUOTA is refused and QUOTASET is not
//! advertised (RFC 9208 §4.1.3).

use mailroom_proto::imap::response::Response;

use super::error::ImapError;
use super::{ok, Done, Session};
use crate::config::show_size;
use crate::delivery::QuotaUsage;

/// The name of the one quota root of an account.
pub const ROOT: &str = "";

/// RFC 9208 §5.1: STORAGE is counted in units of 1024 octets. Rounded up, so a client never
/// sees room that is not there (and 1 octet used is not shown as 0).
pub fn kib(octets: u64) -> u64 {
    octets.div_ceil(1024)
}

/// `* QUOTA "" (STORAGE used limit)` (RFC 9208 §5.1).
pub fn quota_response(u: &QuotaUsage) -> Response {
    Response::quota(ROOT, kib(u.used), kib(u.limit))
}

/// The answer to GETQUOTAROOT (RFC 9208 §4.1.2): `* QUOTAROOT mailbox ""` and the root's
/// QUOTA, or `* QUOTAROOT mailbox` alone for an account without a limit. `mailbox` is the
/// name as the session writes it on the wire.
pub fn quotaroot_responses(mailbox: &str, usage: Option<&QuotaUsage>) -> Vec<Response> {
    match usage {
        Some(u) => vec![Response::quotaroot(mailbox, &[ROOT]), quota_response(u)],
        None => vec![Response::quotaroot(mailbox, &[] as &[&str])],
    }
}

/// GETQUOTA of a root that does not exist: any name but `""`, and `""` itself for an account
/// without a limit (RFC 9208 §4.1.1: NO; RFC 5530 NONEXISTENT).
pub fn no_such_root(root: &str, unlimited: bool) -> ImapError {
    if unlimited && root == ROOT {
        return ImapError::no(
            "NONEXISTENT",
            "your account has no storage limit, so it has no quota root",
        );
    }
    ImapError::no(
        "NONEXISTENT",
        format!(
            "there is no quota root {root:?}; the only one is \"\" (GETQUOTAROOT INBOX shows it)"
        ),
    )
}

/// SETQUOTA: quotas are the administrator's (RFC 5530 NOPERM).
pub fn setquota_refused() -> ImapError {
    ImapError::no(
        "NOPERM",
        "quotas are set by the administrator (mailroom user quota ADDRESS SIZE), not over IMAP",
    )
}

/// APPEND or COPY that would take the account over its limit (RFC 9208 §4.3: `NO
/// [OVERQUOTA]`): says what is used, the limit, what the command needs, and what to do.
pub fn over_quota(u: &QuotaUsage, needed: u64, what: &str) -> ImapError {
    let state = if u.full() {
        format!(
            "your mailbox is full: {} of your {} quota is used",
            show_size(u.used),
            show_size(u.limit)
        )
    } else {
        format!(
            "{what} ({}) does not fit: {} of your {} quota is used, {} is left",
            show_size(needed),
            show_size(u.used),
            show_size(u.limit),
            show_size(u.limit - u.used)
        )
    };
    ImapError::no(
        "OVERQUOTA",
        format!("{state}; delete messages and EXPUNGE them (or empty the Trash), then try again"),
    )
}

impl Session {
    /// The account's usage and limit, `None` when it has no limit.
    pub(super) async fn quota(&self) -> Result<Option<crate::delivery::QuotaUsage>, ImapError> {
        let Some(account) = self.account().cloned() else {
            return Ok(None);
        };
        let shared = self.shared.clone();
        self.store(move |s| {
            // The account as stored now: `mailroom user quota` may have changed its limit
            // since LOGIN, and the change counts at once.
            let current = s.account_by_id(account.id)?.unwrap_or(account);
            crate::delivery::quota_usage(s, &shared.config, &current)
        })
        .await
    }

    /// GETQUOTAROOT (RFC 9208 §4.1.2): every mailbox has the account's root `""`.
    pub(super) async fn get_quota_root(&mut self, name: &str) -> Result<Done, ImapError> {
        let info = self.must_mailbox(name, "NONEXISTENT").await?;
        let usage = self.quota().await?;
        let wire = self.name_to_wire(&info.name).into_owned();
        for r in quotaroot_responses(&wire, usage.as_ref()) {
            self.respond(&r);
        }
        ok("GETQUOTAROOT completed")
    }

    /// GETQUOTA (RFC 9208 §4.1.1): only `""`, and only when the account has a limit.
    pub(super) async fn get_quota(&mut self, root: &str) -> Result<Done, ImapError> {
        if root != ROOT {
            return Err(no_such_root(root, false));
        }
        match self.quota().await? {
            Some(u) => {
                self.respond(&quota_response(&u));
                ok("GETQUOTA completed")
            }
            None => Err(no_such_root(root, true)),
        }
    }

    /// RFC 9208 §4.3: refuses `octets` more for `what` (`"the message"`) when they do not fit
    /// the account's quota.
    pub(super) async fn must_fit(&self, octets: u64, what: &str) -> Result<(), ImapError> {
        if let Some(u) = self.quota().await? {
            if !u.fits(octets) {
                return Err(over_quota(&u, octets, what));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(e: &ImapError, tag: &str) -> String {
        String::from_utf8_lossy(&e.to_response(Some(tag)).to_bytes()).into_owned()
    }

    fn u(used: u64, limit: u64) -> QuotaUsage {
        QuotaUsage { used, limit }
    }

    #[test]
    fn storage_in_kib_rounded_up() {
        for (octets, want) in [(0, 0), (1, 1), (1023, 1), (1024, 1), (1025, 2), (4096, 4)] {
            assert_eq!(kib(octets), want, "{octets}");
        }
        assert_eq!(
            quota_response(&u(3000, 4096)).to_bytes(),
            b"* QUOTA \"\" (STORAGE 3 4)\r\n"
        );
    }

    fn wire(responses: &[Response]) -> Vec<u8> {
        responses.iter().flat_map(Response::to_bytes).collect()
    }

    #[test]
    fn quotaroot() {
        assert_eq!(
            wire(&quotaroot_responses("INBOX", Some(&u(5000, 1 << 20)))),
            b"* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 5 1024)\r\n"
        );
        assert_eq!(
            wire(&quotaroot_responses("My Mail", None)),
            b"* QUOTAROOT \"My Mail\"\r\n"
        );
    }

    #[test]
    fn refusals() {
        let e = over_quota(&u(4200, 4096), 10, "the message");
        let t = reply(&e, "a1");
        assert_eq!(
            t,
            "a1 NO [OVERQUOTA] your mailbox is full: 4.1 KiB of your 4 KiB quota is used; delete messages and EXPUNGE them (or empty the Trash), then try again\r\n"
        );
        let t = reply(&over_quota(&u(3072, 4096), 2048, "the message"), "a2");
        assert!(
            t.starts_with("a2 NO [OVERQUOTA] the message (2 KiB) does not fit: 3 KiB of your 4 KiB quota is used, 1 KiB is left;"),
            "{t}"
        );
        let t = reply(&no_such_root("user.bob", false), "a3");
        assert!(
            t.starts_with("a3 NO [NONEXISTENT] there is no quota root \"user.bob\""),
            "{t}"
        );
        let t = reply(&no_such_root("", true), "a4");
        assert!(t.contains("no storage limit"), "{t}");
        let t = reply(&setquota_refused(), "a5");
        assert!(t.starts_with("a5 NO [NOPERM] "), "{t}");
        assert!(t.contains("mailroom user quota"), "{t}");
    }
}
