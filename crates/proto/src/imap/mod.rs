//! IMAP4 codec (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1), sans-IO.
//!
//! - [`assemble`]: turns lines and literals into one complete command buffer. A literal
//!   (`{N}` / `{N+}`, RFC 9051 §4.3, RFC 7888) is an explicit state: the driver is told the
//!   declared size *before* any of it is read and may refuse it; bytes are never pre-allocated
//!   from the declared size.
//! - [`command`]: the command grammar (RFC 9051 §9) over a complete buffer.
//! - [`decode`]: RFC 2047 header words, base64 and quoted-printable, charsets to UTF-8 (for
//!   SEARCH, BINARY, SORT and THREAD).
//! - [`mime`]: MIME structure for ENVELOPE, BODYSTRUCTURE and BODY[section] (RFC 9051 §7.5.2),
//!   computed once per message so the server can cache it.
//! - [`response`]: responses as types ([`response::Response`], [`response::Value`]) in both
//!   directions: one encoder for the server, the parser the client reads them with.
//! - [`encode`]: which form a string takes (quoted / literal / atom, shared with
//!   [`response::Value`]), dates (`date-time` written and APPEND's read).
//! - [`mutf7`]: modified UTF-7, the IMAP4rev1 spelling of mailbox names (RFC 3501 §5.1.3).
//! - [`sort`]: what SORT and THREAD read of a message ([`sort::SortFields`], base subjects),
//!   SORT itself and the SORT / ESORT responses (RFC 5256, RFC 5267, RFC 5957).
//! - [`thread`]: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES and their response (RFC 5256).
//!
//! Why hand-written rather than imap-codec: imap-codec's parser is strict in places where we
//! want to be lenient (bare LF line ends from telnet users) and it hides literal sizes behind
//! its own framing; our driver needs the declared size first, to refuse a huge literal with
//! `NO [TOOBIG]` before reading it, and it needs exact octet offsets of MIME parts.

pub mod assemble;
pub mod command;
pub mod decode;
pub mod encode;
pub mod mime;
pub mod mutf7;
pub mod response;
pub mod sort;
pub mod thread;
pub mod url;

pub use assemble::{Assembler, Progress};
pub use command::*;
