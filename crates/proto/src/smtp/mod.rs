//! SMTP codec (RFC 5321 and the extensions mailroom implements).
//!
//! Both directions of the wire format live here: the server and the client use the same types.
//!
//! - [`command`]: parse one command line into a [`Command`].
//! - [`reply`]: replies with enhanced status codes ([`Reply`], [`EnhancedCode`]): built by the
//!   server ([`Reply::to_bytes`]), read by the client ([`ReplyAssembler`]).
//! - [`ehlo`]: the EHLO extension keywords a client reads from the reply ([`Extensions`]).
//! - [`data`]: the DATA body: received by the server ([`DataReceiver`], dot-unstuffing; BDAT
//!   bodies normalized), prepared by the client ([`normalize_crlf`], [`dot_stuff`]).
//!
//! # Session state (RFC 5321 §3.3, §4.1.4), for the server driver
//!
//! ```text
//!  connect ─220─▶ Connected ─EHLO/HELO 250─▶ Greeted ─MAIL 250─▶ Mail{from}
//!                     ▲                        ▲  ▲                 │ RCPT 250 (repeatable)
//!                     │ STARTTLS 220           │  │                 ▼
//!                     │ (RFC 3207 §4.2: forget │  └──RSET/EHLO─ Rcpt{from, to[]}
//!                     │  everything, discard   │                    │ DATA 354 / BDAT
//!                     │  pipelined input)      │                    ▼
//!                     └──────── Greeted        └───250 or 5xx─── Data / Bdat chunks
//!
//!  any state: NOOP, HELP, VRFY, EXPN, RSET (back to Greeted if greeted), QUIT (221, close)
//!  AUTH (RFC 4954 §4): in Greeted, outside a transaction, at most once per session
//! ```
//!
//! Command lines are read with [`crate::line::LineReader`] (RFC 5321 §4.5.3.1.4: 512 octets
//! including CRLF, i.e. `max_len` 510, "SMTP extensions may be used to increase this limit":
//! MAIL/RCPT parameters and AUTH initial responses need more, so a few KiB is usual). When
//! the driver enters DATA it moves the reader's buffered bytes into the [`DataReceiver`]
//! ([`crate::line::LineReader::take_buffered`]), and gives the bytes after the terminator back
//! to the line reader (PIPELINING, RFC 2920).

pub mod command;
pub mod data;
pub mod ehlo;
pub mod reply;

pub use command::{
    parse_command, Address, AddressError, Command, CommandError, ForwardPath, Param, ReversePath,
};
pub use data::{dot_stuff, normalize_body, normalize_crlf, DataError, DataProgress, DataReceiver};
pub use ehlo::Extensions;
pub use reply::{
    parse_reply_line, EnhancedCode, Reply, ReplyAssembler, ReplyError, MAX_REPLY_LINE,
    MAX_REPLY_LINES,
};
