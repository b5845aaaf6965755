//! Client side of SMTP, POP3 and IMAP, shared by the agent (`mailroom agent`, `send`, `inbox`) and
//! the server's outbound queue.
//!
//! - [`smtp`]: [`SmtpClient`](smtp::SmtpClient): greeting, EHLO/HELO, AUTH PLAIN/LOGIN, one
//!   transaction with PIPELINING, SIZE, 8BITMIME and SMTPUTF8, RSET, QUIT.
//! - [`pop3`]: [`Pop3Client`](pop3::Pop3Client): USER/PASS, APOP, STAT, LIST, UIDL, TOP, RETR,
//!   DELE, RSET, NOOP, CAPA, QUIT.
//! - [`imap`]: [`ImapClient`](imap::ImapClient): LOGIN, LIST, STATUS, SELECT/EXAMINE, FETCH
//!   (literals), STORE, SEARCH, COPY, MOVE, EXPUNGE, CREATE, DELETE, NOOP, CLOSE, LOGOUT,
//!   STARTTLS.
//! - [`trace`]: every protocol line can be reported as `C: ...` / `S: ...` (secrets masked) —
//!   the dialogue a student sees at a telnet prompt.
//!
//! The wire formats are `mailroom_proto`'s, shared with the server (SMTP replies, EHLO keywords
//! and dot-stuffing in `proto::smtp`, POP3 status lines and byte-unstuffing in `proto::pop3`,
//! IMAP responses in `proto::imap::response`), re-exported here under the client's names; the
//! async part only moves lines.
//! Each wait for the server has a timeout, and every line has a length limit.

mod conn;
pub mod error;
pub mod imap;
pub mod pop3;
pub mod smtp;
pub mod tls;
pub mod trace;

pub use conn::Stream;
pub use error::ClientError;
pub use tls::{ClientTls, TlsSetupError};
pub use trace::{Direction, TraceFn};

#[cfg(test)]
pub(crate) mod testutil;
