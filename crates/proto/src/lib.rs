//! Sans-IO protocol codecs for mailroom.
//!
//! Everything in this crate takes bytes (or strings) and returns typed values, `NeedMore`-style
//! progress, or a typed error. Nothing here touches a socket, a file or the clock, so every
//! parser can be unit-tested in 1-byte chunks and fuzzed (see `fuzz/` at the repository root).
//!
//! - [`line`](mod@line): the bounded CRLF/LF line splitter shared by the SMTP and POP3
//!   command readers.
//! - [`smtp`]: SMTP commands (RFC 5321 and extensions), replies with enhanced status codes
//!   (RFC 3463 / RFC 2034) and the DATA receiver (dot-unstuffing, SMTP smuggling defence).
//! - [`sasl`]: the SASL pieces used by SMTP AUTH and POP3 AUTH (RFC 4954, RFC 4616, LOGIN).
//! - [`pop3`]: the POP3 codec (RFC 1939).
//! - [`secrets`]: the masking rule for protocol traces (`AUTH PLAIN ****`).

pub mod imap;
pub mod line;
pub mod pop3;
pub mod sasl;
pub mod secrets;
pub mod smtp;
