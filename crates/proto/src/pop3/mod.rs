//! POP3 codec (RFC 1939, RFC 2449 CAPA, RFC 5034 SASL): commands, `+OK`/`-ERR` responses and
//! multi-line byte-stuffed responses. Not written yet; the SMTP command reader's
//! [`crate::line::LineReader`] is meant to be shared with it.
