//! The one error type of the three clients: what can go wrong is the same for SMTP, POP3 and
//! IMAP (the connection, the time, a refusal, a broken protocol, TLS); only the shape of the
//! server's reply differs, so that is the type parameter.

use std::fmt;

use crate::conn::ConnError;

/// An error of a client session. `R` is the protocol's reply: [`crate::smtp::SmtpReply`],
/// [`crate::pop3::Pop3Reply`] or [`crate::imap::parse::StatusText`]; the aliases
/// [`crate::smtp::SmtpError`], [`crate::pop3::Pop3Error`] and [`crate::imap::ImapError`] name
/// the three.
#[derive(Debug, thiserror::Error)]
pub enum ClientError<R: fmt::Display + fmt::Debug> {
    #[error("cannot connect to {server}: {source}")]
    Connect {
        server: String,
        source: std::io::Error,
    },
    #[error("{server} did not answer in time (waiting for {waiting_for})")]
    Timeout {
        server: String,
        waiting_for: &'static str,
    },
    #[error("{server} closed the connection")]
    Closed { server: String },
    /// The server said no: a reply the command does not accept (SMTP 4xx/5xx, POP3 `-ERR`,
    /// IMAP `NO`/`BAD`, or a greeting that refuses service).
    #[error("{server} refused {command}: {reply}")]
    Rejected {
        server: String,
        command: String,
        reply: R,
    },
    /// The server broke the protocol (a line we cannot parse, one too long, ...).
    #[error("{server}: {message}")]
    Protocol { server: String, message: String },
    #[error(transparent)]
    Io(std::io::Error),
    #[error("TLS with {server} failed: {message}")]
    Tls { server: String, message: String },
}

impl<R: fmt::Display + fmt::Debug> ClientError<R> {
    /// What a connection failure means for a client talking to `server`.
    pub(crate) fn from_conn(server: String, e: ConnError) -> Self {
        match e {
            ConnError::Timeout(waiting_for) => ClientError::Timeout {
                server,
                waiting_for,
            },
            ConnError::Closed => ClientError::Closed { server },
            ConnError::LineTooLong(limit) => ClientError::Protocol {
                server,
                message: format!("sent a line longer than {limit} octets"),
            },
            ConnError::Io(e) => ClientError::Io(e),
            ConnError::Connect(source) => ClientError::Connect { server, source },
            ConnError::Tls(message) => ClientError::Tls { server, message },
            ConnError::TlsInjection => ClientError::Tls {
                server,
                message: "the server sent data after its go-ahead for TLS (possible injection); session abandoned".into(),
            },
        }
    }

    /// The server's address, as given to connect.
    pub fn server(&self) -> Option<&str> {
        match self {
            ClientError::Connect { server, .. }
            | ClientError::Timeout { server, .. }
            | ClientError::Closed { server }
            | ClientError::Rejected { server, .. }
            | ClientError::Protocol { server, .. }
            | ClientError::Tls { server, .. } => Some(server),
            ClientError::Io(_) => None,
        }
    }
}
