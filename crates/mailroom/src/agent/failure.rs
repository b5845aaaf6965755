//! How an agent command fails: the exit codes (docs/AGENT.md) and the one sentence that says
//! what went wrong, for every error the SMTP, POP3 and IMAP clients can give.

use std::fmt;
use std::process::ExitCode;

use mailroom_client::imap::parse::Status;
use mailroom_client::imap::ImapError;
use mailroom_client::pop3::Pop3Error;
use mailroom_client::smtp::SmtpError;
use mailroom_client::ClientError;

/// The exit codes of `agent`, `send` and `inbox` (docs/AGENT.md). 2 is left to the argument
/// parser, which uses it for usage errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 1: a local problem (unreadable file, bad address, no password, bad message number).
    Local = 1,
    /// 3: the server could not be reached, or did not answer in time.
    Connect = 3,
    /// 4: the server refused the login.
    Auth = 4,
    /// 5: the server refused a recipient, the message, or a command (e.g. no such message).
    Refused = 5,
    /// 6: the server closed the connection or broke the protocol mid-dialogue.
    Broken = 6,
}

impl Failure {
    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// A failure with the one sentence that explains it.
#[derive(Debug)]
pub struct AgentError {
    pub failure: Failure,
    pub message: String,
}

impl AgentError {
    pub fn new(failure: Failure, message: impl Into<String>) -> Self {
        AgentError {
            failure,
            message: message.into(),
        }
    }

    pub fn local(message: impl Into<String>) -> Self {
        Self::new(Failure::Local, message)
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AgentError {}

/// Prints the error as `mailroom: ...` on stderr and returns its exit code.
pub fn report(e: &AgentError) -> ExitCode {
    eprintln!("mailroom: {}", e.message);
    e.failure.code()
}

/// What the caller was doing when an SMTP error happened (to pick the sentence and the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpPhase {
    Connect,
    Hello,
    Login,
    Transfer,
}

/// What to try when a certificate is not trusted.
const TLS_HINT: &str = " (for a mailroom server's self-signed certificate give --ca <data_dir>/tls/cert.pem; --insecure skips the check on throwaway setups)";

/// The endings of the shared sentences: after a timeout, after a closed connection, after
/// anything else (e.g. "; nothing was sent").
struct Tails<'a> {
    timeout: &'a str,
    closed: &'a str,
    other: &'a str,
}

/// The sentences the three protocols share: cannot connect, no answer in time, closed, a
/// network error, TLS. A refusal (`Rejected`) or a broken protocol (`Protocol`) is given back
/// for the protocol's own sentence.
fn transport_failure<R: fmt::Display + fmt::Debug>(
    proto: &str,
    flag: &str,
    e: ClientError<R>,
    tails: Tails<'_>,
) -> Result<AgentError, ClientError<R>> {
    Ok(match e {
        ClientError::Connect { server, source } => AgentError::new(
            Failure::Connect,
            format!(
                "cannot connect to the {proto} server {server}: {source} (is `mailroom serve` running there? check {flag} or the config)"
            ),
        ),
        ClientError::Timeout {
            server,
            waiting_for,
        } => AgentError::new(
            Failure::Connect,
            format!(
                "the {proto} server {server} did not answer in time (waiting for {waiting_for}){}",
                tails.timeout
            ),
        ),
        ClientError::Closed { server } => AgentError::new(
            Failure::Broken,
            format!(
                "the {proto} server {server} closed the connection unexpectedly{}",
                tails.closed
            ),
        ),
        ClientError::Io(e) => AgentError::new(
            Failure::Broken,
            format!("network error talking to the {proto} server: {e}{}", tails.other),
        ),
        ClientError::Tls { server, message } => AgentError::new(
            Failure::Connect,
            format!(
                "TLS with the {proto} server {server} failed: {message}{}{TLS_HINT}",
                tails.other
            ),
        ),
        other => return Err(other),
    })
}

/// One clear sentence for an SMTP failure. `Transfer` errors say that nothing was sent.
pub fn smtp_failure(e: SmtpError, phase: SmtpPhase, user: &str) -> AgentError {
    let not_sent = if phase == SmtpPhase::Transfer {
        "; the message was NOT sent"
    } else {
        "; nothing was sent"
    };
    // After the message went out, silence is not a refusal either: say what we know.
    let timeout = match &e {
        SmtpError::Timeout { waiting_for, .. }
            if phase == SmtpPhase::Transfer && waiting_for.contains("end of data") =>
        {
            "; the message was NOT confirmed, so it does not count as sent (the server may still deliver it)"
        }
        _ => not_sent,
    };
    let tails = Tails {
        timeout,
        closed: not_sent,
        other: not_sent,
    };
    match transport_failure("SMTP", "--smtp", e, tails) {
        Ok(e) => e,
        Err(SmtpError::Rejected {
            server,
            command,
            reply,
        }) => {
            let failure = match phase {
                SmtpPhase::Connect => Failure::Connect,
                SmtpPhase::Login => Failure::Auth,
                _ => Failure::Broken,
            };
            let what = if phase == SmtpPhase::Login {
                format!("the login of {user} ({command})")
            } else {
                command
            };
            AgentError::new(
                failure,
                format!("the SMTP server {server} refused {what}: {reply}{not_sent}"),
            )
        }
        Err(other) => protocol_failure("SMTP", other, phase == SmtpPhase::Login, not_sent),
    }
}

/// A broken protocol: a failed login when it happened while logging in, else a broken session.
fn protocol_failure<R: fmt::Display + fmt::Debug>(
    proto: &str,
    e: ClientError<R>,
    login: bool,
    tail: &str,
) -> AgentError {
    let failure = if login {
        Failure::Auth
    } else {
        Failure::Broken
    };
    match e {
        ClientError::Protocol { server, message } => AgentError::new(
            failure,
            format!("the {proto} server {server} {message}{tail}"),
        ),
        // transport_failure took every other kind.
        other => AgentError::new(failure, format!("{proto}: {other}{tail}")),
    }
}

/// The sentence for a refusal by a reading server (POP3 or IMAP): of the connection, of the
/// login, or of a command.
fn read_refusal(
    proto: &str,
    server: String,
    command: String,
    reply: &dyn fmt::Display,
    login: bool,
    user: &str,
) -> AgentError {
    if command == "the connection" {
        AgentError::new(
            Failure::Connect,
            format!("the {proto} server {server} refused the connection: {reply}"),
        )
    } else if login {
        AgentError::new(
            Failure::Auth,
            format!("the {proto} server {server} refused the login of {user} ({command}): {reply}"),
        )
    } else {
        AgentError::new(
            Failure::Refused,
            format!("the {proto} server {server} refused {command}: {reply}"),
        )
    }
}

/// One clear sentence for a POP3 failure.
pub fn pop3_failure(e: Pop3Error, login: bool, user: &str) -> AgentError {
    let tails = Tails {
        timeout: "",
        closed: "; messages marked for deletion were NOT deleted",
        other: "",
    };
    match transport_failure("POP3", "--pop3", e, tails) {
        Ok(e) => e,
        Err(Pop3Error::Rejected {
            server,
            command,
            reply,
        }) => read_refusal("POP3", server, command, &reply, login, user),
        Err(other) => protocol_failure("POP3", other, login, ""),
    }
}

/// One clear sentence for an IMAP failure (`login`: the failure happened while logging in).
pub fn imap_failure(e: ImapError, login: bool, user: &str) -> AgentError {
    let tails = Tails {
        timeout: "",
        closed: "",
        other: "",
    };
    match transport_failure("IMAP", "--imap", e, tails) {
        Ok(e) => e,
        // A BYE (not a NO or BAD) ends the session, whatever the command was.
        Err(ImapError::Rejected {
            server,
            command,
            reply,
        }) if reply.status == Status::Bye && command != "the connection" => AgentError::new(
            Failure::Broken,
            format!("the IMAP server {server} ended the session during {command}: {reply}"),
        ),
        Err(ImapError::Rejected {
            server,
            command,
            reply,
        }) => read_refusal("IMAP", server, command, &reply, login, user),
        // The server takes no password in clear (RFC 9051 §6.2.3): say which flag fixes it.
        Err(other @ ImapError::Protocol { .. }) if other.to_string().contains("LOGINDISABLED") => {
            protocol_failure(
                "IMAP",
                other,
                true,
                ": give --starttls or --tls (with --ca FILE for a self-signed certificate)",
            )
        }
        Err(other) => protocol_failure("IMAP", other, login, ""),
    }
}
