//! POP3 codec (RFC 1939, RFC 2449 CAPA and response codes, RFC 3206, RFC 5034 SASL).
//!
//! Both directions of the wire format live here: the server and the client use the same types.
//!
//! - [`command`]: parse one command line into a [`Command`] ([`parse_command`]).
//! - [`response`]: status lines ([`Reply`]: built with [`ok`], [`err`] and [`RespCode`], read
//!   with [`Reply::parse`]), the capability list, and multi-line responses: [`Stuffer`]
//!   byte-stuffs a message chunk by chunk, [`TopFilter`] cuts it after the header and n body
//!   lines (TOP); on the reading side [`MultilineBody`] and [`unstuff`] take the stuffing away
//!   and [`parse_scan_listing`] / [`parse_uid_listing`] read LIST and UIDL lines.
//!
//! # Session states (RFC 1939 §3), for the server driver
//!
//! ```text
//!   connect ──"+OK ... <pid.clock@host>"──▶ AUTHORIZATION ◀──────────────┐
//!                                            │  USER name  (+OK)           │ -ERR [AUTH]: wrong
//!                                            │  PASS secret / APOP / AUTH ─┘ name or password;
//!                                            │                               -ERR [IN-USE]: the
//!                                            │ +OK (maildrop locked,         maildrop is locked
//!                                            ▼      numbered once)
//!                                        TRANSACTION   STAT LIST RETR DELE NOOP RSET TOP UIDL
//!                                            │          (CAPA and QUIT in both states)
//!                                            │ QUIT
//!                                            ▼
//!                                          UPDATE     messages marked by DELE are removed,
//!                                            │        durably, then "+OK ... signing off"
//!                                            ▼
//!                                          close
//!
//!   QUIT in AUTHORIZATION: "+OK", close (no UPDATE). A connection that ends any other way
//!   (dropped, autologout timer, shutdown) never enters UPDATE: nothing is deleted (RFC 1939 §3).
//! ```
//!
//! Command lines are read with [`crate::line::LineReader`] (RFC 2449 §4: commands up to 255
//! octets including CRLF; the server's limit is at least that). Message bodies are read from
//! the store in chunks and passed through a [`Stuffer`], so a message never has to be in memory
//! whole.

pub mod command;
pub mod response;

pub use command::{parse_command, shown, Command, CommandError, KEYWORDS};
pub use response::{
    apop_timestamp, capabilities, continuation, err, lines_of, multiline, ok, parse_scan_listing,
    parse_uid_listing, unstuff, wire_size, MultilineBody, Reply, RespCode, StatusError, Stuffer,
    TooLarge, TopFilter, MAX_RESPONSE_LINE,
};
