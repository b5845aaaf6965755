//! Every way an SMTP command can be refused ([`Refusal`]) and the one place where a refusal
//! becomes wire text ([`Refusal::reply`]): reply code, enhanced status code (RFC 3463) and a
//! text that says what to do next.

use mailroom_proto::sasl::SaslError;
use mailroom_proto::smtp::{CommandError, DataError, Reply};

/// Every way a command can be refused. [`Refusal::reply`] turns it into wire text.
#[derive(Debug)]
pub(super) enum Refusal {
    Syntax(CommandError),
    LineTooLong(usize),
    HeloFirst,
    NestedMail,
    MailFirst,
    RcptFirst,
    AuthRequired,
    AuthNotDuringTransaction,
    AlreadyAuthenticated,
    AuthCancelled,
    AuthBadBase64,
    /// A SASL response longer than the command-line limit (RFC 4954 §6: 500 5.5.6).
    AuthLineTooLong(usize),
    AuthMalformed(&'static str),
    AuthUnknownMechanism(String),
    AuthFailed,
    /// A user name without `@` that several accounts have: a failed login that asks for the
    /// full address.
    AuthAmbiguous(String),
    /// The password could not be checked now (RFC 4954 §6: 454 4.7.0); not a failed login
    /// and not a client error.
    AuthTemporary,
    NoStartTls,
    AlreadyTls,
    /// Plaintext AUTH refused by `auth_require_tls` (RFC 3207 §4, RFC 4954 §4).
    AuthNeedsTls,
    /// Submission without AUTH where AUTH needs TLS first (RFC 3207 §4: 530 5.7.0).
    StartTlsFirst,
    SenderNotOwned {
        sender: String,
        user: String,
    },
    NeedSmtpUtf8,
    UnknownParam {
        verb: &'static str,
        keyword: String,
    },
    BadParamValue {
        keyword: String,
        hint: &'static str,
    },
    SizeDeclaredTooBig {
        limit: u64,
    },
    TooManyRecipients {
        limit: usize,
    },
    UnknownUser(String),
    /// A local mailbox the recipient leads to is at its storage quota, or the declared size
    /// would take it over (RFC 5321 §4.2.5 452, RFC 3463 §3.3 X.2.2).
    MailboxFull {
        address: String,
        declared: Option<u64>,
    },
    RelayDenied(String),
    NoPostmaster,
    Data(DataError),
    TooManyHops(usize),
    /// The inbound checks refused the message (DMARC p=reject, a forged local sender):
    /// RFC 7489 §6.6.2 / RFC 7372 §3.2 550 5.7.1 with the reason.
    NotAuthenticated(String),
    StoreFailed,
    /// The store's disk is full (RFC 3463 §3.4 X.3.1 "mail system full"; RFC 5321 §4.2.2
    /// 452 "insufficient system storage"): nothing was stored, the sender keeps the message.
    StorageFull,
    DataAfterBdat,
    BdatWithoutRecipients,
}

impl Refusal {
    pub(super) fn reply(&self) -> Reply {
        use Refusal::*;
        match self {
            Syntax(e) => Reply::new(e.code(), &e.enhanced().to_string(), e.to_string()),
            LineTooLong(limit) => Reply::new(
                500,
                "5.5.2",
                format!("Line too long: commands may be at most {limit} octets"),
            ),
            HeloFirst => Reply::new(503, "5.5.1", "Say hello first: EHLO your.host.name"),
            NestedMail => Reply::new(
                503,
                "5.5.1",
                "Sender already given: continue with RCPT TO:<recipient>, or RSET to start over",
            ),
            MailFirst => Reply::new(503, "5.5.1", "Send MAIL FROM:<you@example.test> first"),
            RcptFirst => Reply::new(503, "5.5.1", "Send RCPT TO:<recipient> first (at least one recipient)"),
            AuthRequired => Reply::new(
                530,
                "5.7.0",
                "Authentication required: log in with AUTH LOGIN or AUTH PLAIN first",
            ),
            AuthNotDuringTransaction => Reply::new(
                503,
                "5.5.1",
                "AUTH is not allowed during a mail transaction; RSET first",
            ),
            AlreadyAuthenticated => Reply::new(503, "5.5.1", "Already authenticated"),
            AuthCancelled => Reply::new(501, "5.0.0", "Authentication cancelled"),
            AuthBadBase64 => Reply::new(
                501,
                "5.5.2",
                "That was not valid base64; start over with AUTH",
            ),
            AuthLineTooLong(limit) => Reply::new(
                500,
                "5.5.6",
                format!("Authentication Exchange line is too long (at most {limit} octets); start over with AUTH"),
            ),
            AuthMalformed(what) => Reply::new(501, "5.5.2", format!("Malformed AUTH response: {what}")),
            AuthUnknownMechanism(m) => Reply::new(
                504,
                "5.5.4",
                format!("Unrecognized authentication mechanism {m}; use AUTH PLAIN or AUTH LOGIN"),
            ),
            AuthFailed => Reply::new(535, "5.7.8", "Authentication credentials invalid"),
            // RFC 4954 §6: 535 5.7.8 for credentials that do not authenticate; the text says why.
            AuthAmbiguous(name) => Reply::new(
                535,
                "5.7.8",
                format!("Authentication credentials invalid: the user name {name} is not unique here (several domains have it); log in with your full address, like {name}@your.domain"),
            ),
            AuthTemporary => Reply::new(
                454,
                "4.7.0",
                "Temporary authentication failure; try again later",
            ),
            NoStartTls => Reply::new(502, "5.5.1", "STARTTLS is not available on this server"),
            AlreadyTls => Reply::new(503, "5.5.1", "TLS is already active on this connection"),
            AuthNeedsTls => Reply::new(
                538,
                "5.7.11",
                "Encryption required for authentication: use STARTTLS first, then EHLO and AUTH",
            ),
            StartTlsFirst => Reply::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first: passwords are not accepted in clear here",
            ),
            SenderNotOwned { sender, user } => Reply::new(
                553,
                "5.7.1",
                format!("Sender address rejected: {sender} is not owned by user {user}; use MAIL FROM:<{user}>"),
            ),
            NeedSmtpUtf8 => Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address: add the SMTPUTF8 parameter to MAIL FROM (RFC 6531)",
            ),
            UnknownParam { verb, keyword } => Reply::new(
                555,
                "5.5.4",
                format!("{verb} parameter {keyword} is not supported"),
            ),
            BadParamValue { keyword, hint } => {
                Reply::new(501, "5.5.4", format!("Bad value for {keyword}: {hint}"))
            }
            SizeDeclaredTooBig { limit } => Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size of {limit} octets"),
            ),
            TooManyRecipients { limit } => Reply::new(
                452,
                "4.5.3",
                format!("Too many recipients (at most {limit} per message); send the rest in another message"),
            ),
            UnknownUser(a) => Reply::new(550, "5.1.1", format!("<{a}>: no such user here")),
            // Temporary, so the sending server keeps the message and tries again; the text
            // gives no numbers (how full a mailbox is is nobody else's business) and, for an
            // alias, does not say which member is full (EXPN is off by default for the same
            // reason).
            MailboxFull { address, declared: None } => Reply::new(
                452,
                "4.2.2",
                format!("<{address}>: mailbox full; the recipient has to delete some mail first. Keep the message and try again later; other recipients are not affected"),
            ),
            MailboxFull { address, declared: Some(size) } => Reply::new(
                452,
                "4.2.2",
                format!("<{address}>: mailbox full: a message of {size} octets does not fit in what is left of its quota. Keep the message and try again later, or send a smaller one; other recipients are not affected"),
            ),
            RelayDenied(a) => Reply::new(
                554,
                "5.7.1",
                format!("<{a}>: relay access denied; this server only accepts mail for its own domains unless you log in (AUTH)"),
            ),
            NoPostmaster => Reply::new(550, "5.1.1", "<Postmaster>: no postmaster account is set up here"),
            Data(e) => match e {
                DataError::TooBig { limit } => Reply::new(
                    552,
                    "5.3.4",
                    format!("Message too big: the limit is {limit} octets; nothing was stored"),
                ),
                DataError::LineTooLong { line, limit } => Reply::new(
                    550,
                    "5.6.0",
                    format!("Message refused: line {line} is longer than {limit} octets; wrap long lines or encode the body (quoted-printable or base64)"),
                ),
                DataError::BareCr { line } => Reply::new(
                    550,
                    "5.6.0",
                    format!("Message refused: line {line} contains a bare CR; end every line with CRLF"),
                ),
                DataError::Abandoned => Reply::new(
                    452,
                    "4.3.1",
                    "Insufficient system storage: the server is receiving too many messages at once; try again in a few minutes (nothing was stored)",
                ),
                DataError::Smuggling { line } => Reply::new(
                    550,
                    "5.6.0",
                    format!("Message refused: line {line} is a lone '.' next to a bare LF (looks like SMTP smuggling); end every line with CRLF"),
                ),
            },
            NotAuthenticated(reason) => Reply::new(550, "5.7.1", reason.clone()),
            TooManyHops(n) => Reply::new(
                554,
                "5.4.6",
                format!("Too many hops ({n} Received: headers): this looks like a mail loop"),
            ),
            StoreFailed => Reply::new(
                451,
                "4.3.0",
                "Temporary failure storing the message; nothing was accepted, please try again later",
            ),
            StorageFull => Reply::new(
                452,
                "4.3.1",
                "Insufficient system storage: the server's disk is full; nothing was stored, keep the message and try again later",
            ),
            DataAfterBdat => Reply::new(
                503,
                "5.5.1",
                "DATA cannot follow BDAT in one message; finish with BDAT n LAST, or RSET",
            ),
            BdatWithoutRecipients => Reply::new(
                503,
                "5.5.1",
                "BDAT needs MAIL FROM and RCPT TO first; the chunk was discarded",
            ),
        }
    }
}

/// The refusal for a SASL response that could not be used (RFC 4954 §4).
pub(super) fn sasl_refusal(e: SaslError) -> Refusal {
    match e {
        SaslError::Cancelled => Refusal::AuthCancelled,
        SaslError::Base64 => Refusal::AuthBadBase64,
        SaslError::Malformed(m) => Refusal::AuthMalformed(m),
    }
}
