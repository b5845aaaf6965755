//! Every way a POP3 command can fail, and the one place that turns a failure into a `-ERR`
//! line (RFC 1939 §3, with RFC 2449 §8 / RFC 3206 response codes).

use mailroom_proto::pop3::{self, CommandError, RespCode};

/// Why a command got `-ERR`. The Display text is what follows `-ERR [CODE] ` on the wire: a
/// sentence that tells a person at a telnet prompt what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    /// The line did not parse (unknown command, bad arguments, NUL, too long, ...).
    #[error("{0}")]
    Command(#[from] CommandError),
    /// RFC 1939 §3: a TRANSACTION command in the AUTHORIZATION state.
    #[error("log in first: USER name, then PASS password (you typed {0})")]
    NotLoggedIn(&'static str),
    /// RFC 1939 §3: an AUTHORIZATION command in the TRANSACTION state.
    #[error(
        "you are already logged in as {user}; {keyword} is for logging in (QUIT ends the session)"
    )]
    AlreadyLoggedIn { user: String, keyword: &'static str },
    /// RFC 1939 §7: PASS must follow a successful USER.
    #[error("give USER first, e.g. USER alice@example.test, then PASS with your password")]
    PassBeforeUser,
    /// A message number beyond the maildrop (numbers are fixed at login, RFC 1939 §3).
    #[error("no message {n} ({})", you_have(*count))]
    NoSuchMessage { n: u32, count: usize },
    /// The message was expunged by another session (IMAP, say) since this one logged in.
    #[error("message {0} was removed by another session since you logged in; QUIT and log in again to see the maildrop as it is now")]
    Expunged(u32),
    /// The account was removed, or its password changed, since this session logged in: the
    /// session ends (nothing marked is deleted).
    #[error("your account was removed or its password was changed; log in again, closing")]
    AccountChanged,
    /// RFC 1939 §5: a message marked as deleted may not be accessed.
    #[error("message {0} is deleted; RSET undeletes all messages (until you QUIT)")]
    Deleted(u32),
    /// A wrong user name or password: the same text for both (no user enumeration).
    #[error("wrong user name or password; try again: USER name, then PASS password")]
    AuthFailed,
    /// APOP for a name that has no APOP secret (RFC 1939 §7 needs one; the store keeps only
    /// an argon2 hash of the password): a failed login, saying what works instead. Unknown
    /// names get the same text (no user enumeration).
    #[error("APOP is not set up for this account; log in with USER and PASS, or ask the administrator to run: mailroom user passwd {0} --apop")]
    ApopNotSetUp(String),
    /// A user name without `@` that several accounts have: the login failed; the full address
    /// is needed (no password was checked).
    #[error("the user name {0} is not unique here: several domains have a user of that name; log in with your full address, e.g. USER {0}@your.domain")]
    AmbiguousUser(String),
    /// The password could not be checked now (too many logins at once, or the store failed):
    /// not a failed login; the client should try again (RFC 3206 §4 SYS/TEMP).
    #[error("the server cannot check passwords right now (too busy); try again in a moment")]
    AuthUnavailable,
    /// A malformed SASL message: still an authentication failure (delayed and counted).
    #[error(
        "authentication failed: {0}; try again, e.g. AUTH PLAIN with base64 of \\0user\\0password"
    )]
    SaslMalformed(&'static str),
    /// `limits.max_auth_failures` reached.
    #[error("too many failures, closing")]
    TooManyAuthFailures,
    /// RFC 2449 §8.1.1: another session holds the maildrop.
    #[error(
        "{0}'s maildrop is in use by another POP3 session; QUIT that session or try again later"
    )]
    InUse(String),
    /// RFC 5034 §4: the client cancelled with `*`.
    #[error("authentication cancelled; log in with USER and PASS, or AUTH again")]
    SaslCancelled,
    /// RFC 5034 §4: a response that is not base64.
    #[error("that is not valid base64, so authentication was abandoned; type AUTH again and answer in base64")]
    SaslBase64,
    /// A mechanism we do not offer.
    #[error("unknown SASL mechanism '{0}'; this server offers PLAIN and LOGIN (e.g. AUTH PLAIN)")]
    UnknownMechanism(String),
    /// RFC 2595 §4: TLS is not configured yet.
    #[error("STLS is not available: this server has no TLS configured; log in with USER and PASS")]
    NoTls,
    /// `auth_require_tls`: passwords only over TLS here (RFC 2595 §4).
    #[error(
        "plaintext authentication is not allowed on this connection: use STLS first, then log in"
    )]
    NeedTls,
    /// RFC 2595 §4: STLS on a connection that already runs TLS.
    #[error("TLS is already active on this connection")]
    AlreadyTls,
    /// RFC 2595 §4: STLS only in the AUTHORIZATION state.
    #[error("STLS is only possible before logging in")]
    StlsAfterLogin,
    /// The store failed (the detail is logged, not shown).
    #[error("{0}; please try again later")]
    Store(String),
    /// The store says the INBOX does not exist.
    #[error("{0} has no INBOX; ask the administrator")]
    NoInbox(String),
    /// QUIT could not make the deletions durable (RFC 1939 §6: nothing is claimed deleted).
    #[error("could not remove the deleted messages, so nothing was deleted; your mail is intact, try again later")]
    UpdateFailed,
    /// `limits.max_errors` reached.
    #[error("too many bad commands ({0}), closing the connection; type CAPA next time to see what this server understands")]
    TooManyErrors(u32),
    /// RFC 1939 §3: the autologout timer expired (nothing is deleted).
    #[error("autologout timer expired; nothing was deleted, log in again")]
    Autologout,
    /// The server is shutting down (nothing is deleted).
    #[error("server shutting down; nothing was deleted, try again in a moment")]
    Shutdown,
}

/// "you have 2, numbered 1 to 2" for [`Pop3Error::NoSuchMessage`].
fn you_have(count: usize) -> String {
    match count {
        0 => "you have 0; your maildrop is empty".to_string(),
        1 => "you have 1, number 1".to_string(),
        n => format!("you have {n}, numbered 1 to {n}"),
    }
}

impl Pop3Error {
    /// The RFC 2449 §8 / RFC 3206 response code.
    pub fn code(&self) -> Option<RespCode> {
        use Pop3Error::*;
        match self {
            // RFC 3206 §4 / AUTH-RESP-CODE (RFC 3206 §5): the credentials are the problem.
            AuthFailed | ApopNotSetUp(_) | AmbiguousUser(_) | SaslMalformed(_)
            | TooManyAuthFailures | AccountChanged => Some(RespCode::Auth),
            InUse(_) => Some(RespCode::InUse),
            Store(_) | UpdateFailed | Shutdown | AuthUnavailable => Some(RespCode::SysTemp),
            NoInbox(_) => Some(RespCode::SysPerm),
            _ => None,
        }
    }

    /// True for the client mistakes that count towards `limits.max_errors`.
    pub fn is_bad_command(&self) -> bool {
        use Pop3Error::*;
        matches!(
            self,
            Command(_)
                | NotLoggedIn(_)
                | AlreadyLoggedIn { .. }
                | PassBeforeUser
                | SaslBase64
                | UnknownMechanism(_)
                | StlsAfterLogin
                | AlreadyTls
        )
    }

    /// The `-ERR` line for this failure. This is the only place `-ERR` replies are built.
    pub fn to_reply(&self) -> Vec<u8> {
        pop3::err(self.code(), &self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        let cases: Vec<(Pop3Error, &str)> = vec![
            (
                Pop3Error::NoSuchMessage { n: 7, count: 2 },
                "-ERR no message 7 (you have 2, numbered 1 to 2)\r\n",
            ),
            (
                Pop3Error::NoSuchMessage { n: 2, count: 1 },
                "-ERR no message 2 (you have 1, number 1)\r\n",
            ),
            (
                Pop3Error::NoSuchMessage { n: 1, count: 0 },
                "-ERR no message 1 (you have 0; your maildrop is empty)\r\n",
            ),
            (
                Pop3Error::PassBeforeUser,
                "-ERR give USER first, e.g. USER alice@example.test, then PASS with your password\r\n",
            ),
            (
                Pop3Error::NotLoggedIn("STAT"),
                "-ERR log in first: USER name, then PASS password (you typed STAT)\r\n",
            ),
            (
                Pop3Error::AmbiguousUser("alice".into()),
                "-ERR [AUTH] the user name alice is not unique here: several domains have a user of that name; log in with your full address, e.g. USER alice@your.domain\r\n",
            ),
            (Pop3Error::TooManyAuthFailures, "-ERR [AUTH] too many failures, closing\r\n"),
            (
                Pop3Error::AuthUnavailable,
                "-ERR [SYS/TEMP] the server cannot check passwords right now (too busy); try again in a moment\r\n",
            ),
            (
                Pop3Error::InUse("alice@example.test".into()),
                "-ERR [IN-USE] alice@example.test's maildrop is in use by another POP3 session; QUIT that session or try again later\r\n",
            ),
            (
                Pop3Error::Autologout,
                "-ERR autologout timer expired; nothing was deleted, log in again\r\n",
            ),
            (
                Pop3Error::Shutdown,
                "-ERR [SYS/TEMP] server shutting down; nothing was deleted, try again in a moment\r\n",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(String::from_utf8(e.to_reply()).unwrap(), want);
        }
        assert!(Pop3Error::AuthFailed
            .to_reply()
            .starts_with(b"-ERR [AUTH] wrong user name or password"));
    }
}
