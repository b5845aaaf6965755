//! Sans-IO protocol codecs for mailroom.
//!
//! Everything in this crate takes bytes (or strings) and returns typed values, `NeedMore`-style
//! progress, or a typed error. Nothing here touches a socket, a file or the clock, so every
//! parser can be unit-tested in 1-byte chunks and fuzzed (see `fuzz/` at the repository root).
//!
//! Each wire format is here in both directions, so the server (which builds replies and parses
//! commands) and the client (which parses replies) share one type per protocol element.
//!
//! - [`line`](mod@line): the bounded CRLF/LF line splitter shared by the SMTP and POP3
//!   command readers; `printable` for quoting a peer's line in an error.
//! - [`smtp`]: SMTP commands (RFC 5321 and extensions), replies with enhanced status codes
//!   (RFC 3463 / RFC 2034) built and read back (multi-line assembly), EHLO extensions, and
//!   the DATA body both ways (the receiver's dot-unstuffing and SMTP smuggling defence, the
//!   client's dot-stuffing).
//! - [`sasl`]: the SASL pieces used by SMTP AUTH and POP3 AUTH (RFC 4954, RFC 4616, LOGIN).
//! - [`pop3`]: the POP3 codec (RFC 1939): commands, status lines built and parsed,
//!   byte-stuffing and un-stuffing.
//! - [`imap`]: the IMAP4 codec (RFC 9051): commands, response types with one encoder and the
//!   parser the client uses, MIME structure, modified UTF-7.
//! - [`secrets`]: the masking rule for protocol traces (`AUTH PLAIN ****`).

pub mod imap;
pub mod line;
pub mod pop3;
pub mod sasl;
pub mod secrets;
pub mod smtp;
