//! The POP3 client's response reading (`mailroom_client::pop3`), on a byte stream from a
//! server: a status line (`Pop3Reply::parse`, i.e. `mailroom_proto::pop3::Reply`), then, after `+OK`, a multi-line body through
//! `MultilineBody` (the sans-IO core of the client's multi-line read) and the listing parsers
//! the client applies to its lines. Checks:
//! - never panics; error texts are one line;
//! - a status line printed again reads back as the same reply, and so does its wire form
//!   (`to_bytes`, what the server's `ok`/`err` send) when its text fits in a line and has no
//!   control characters (else the wire form still reads back, cut or with spaces); an APOP
//!   timestamp is a `<...@...>` piece of the greeting;
//! - the body is CRLF lines within the limit, one per content line, and byte-stuffing it
//!   again and reading it back gives the same body;
//! - a LIST/UIDL line that parses prints back to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_client::pop3::{
    apop_digest, apop_timestamp, lines_of, parse_scan_listing, parse_uid_listing, Pop3Reply,
    MultilineBody, MAX_CONTENT_LINE, MAX_STATUS_LINE,
};
use mailroom_proto::line::LineReader;
use mailroom_proto::pop3::MAX_RESPONSE_LINE;

fn one_line(text: &str) {
    assert!(!text.contains('\r') && !text.contains('\n'), "{text:?}");
}

/// Reads a multi-line body from `lines`; `None` if it did not end (or was too large).
fn read_body(lines: &[Vec<u8>], limit: usize) -> Option<(Vec<u8>, usize)> {
    let mut body = MultilineBody::new(limit);
    let mut content_lines = 0;
    for line in lines {
        match body.push_line(line) {
            Ok(true) => return Some((body.into_body(), content_lines)),
            Ok(false) => content_lines += 1,
            Err(e) => {
                one_line(&e.to_string());
                assert!(body.body().len() + line.len() + 2 > limit);
                return None;
            }
        }
        assert!(body.body().len() <= limit);
    }
    None
}

fn check_listings(line: &str) {
    if let Some((n, size)) = parse_scan_listing(line) {
        assert_eq!(parse_scan_listing(&format!("{n} {size}")), Some((n, size)));
    }
    if let Some((n, uid)) = parse_uid_listing(line) {
        assert!((1..=70).contains(&uid.len()));
        assert!(uid.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{uid:?}");
        assert_eq!(parse_uid_listing(&format!("{n} {uid}")), Some((n, uid)));
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks a small body limit, to reach the too-large path as well.
    let Some((&pick, stream)) = data.split_first() else {
        return;
    };
    let mut reader = LineReader::new(MAX_STATUS_LINE);
    reader.push(stream);
    let Some(Ok(status)) = reader.next_line() else {
        return;
    };
    let reply = match Pop3Reply::parse(&status) {
        Ok(r) => r,
        Err(e) => return one_line(&e.to_string()),
    };
    assert_eq!(
        Pop3Reply::parse(reply.to_string().as_bytes()).as_ref(),
        Ok(&reply)
    );
    // parse -> encode -> parse: the server's wire form of the same reply.
    let wire = reply.to_bytes();
    assert!(wire.len() <= MAX_RESPONSE_LINE && wire.ends_with(b"\r\n"));
    let line = &wire[..wire.len() - 2];
    assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
    let back = Pop3Reply::parse(line).expect("own wire form is a status line");
    let fits = reply.to_string().len() + 2 <= MAX_RESPONSE_LINE;
    if fits && !reply.text.chars().any(char::is_control) {
        assert_eq!(back, reply);
    } else {
        assert_eq!(back.ok, reply.ok);
    }
    if let Some(ts) = apop_timestamp(&reply.text) {
        assert!(ts.starts_with('<') && ts.ends_with('>') && ts.contains('@'));
        assert!(reply.text.contains(ts));
        let d = apop_digest(ts, "secret");
        assert!(
            d.len() == 32
                && d.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
    if !reply.ok {
        return;
    }

    reader.set_max_len(MAX_CONTENT_LINE);
    let mut lines = Vec::new();
    while let Some(Ok(line)) = reader.next_line() {
        lines.push(line);
    }
    let small = 1 + usize::from(pick) * 4;
    let limited = read_body(&lines, small);
    let Some((body, content_lines)) = read_body(&lines, usize::MAX) else {
        assert!(limited.is_none());
        return;
    };
    if let Some((limited, _)) = limited {
        assert!(limited.len() <= small);
        assert_eq!(limited, body);
    }
    if !body.is_empty() {
        assert!(body.ends_with(b"\r\n"));
    }

    // Stuff the body again (RFC 1939 §3), add ".", read it back: the same body.
    let mut again: Vec<Vec<u8>> = body
        .split_inclusive(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r\n").expect("CRLF lines"))
        .map(|l| {
            let mut s = Vec::with_capacity(l.len() + 1);
            if l.first() == Some(&b'.') {
                s.push(b'.');
            }
            s.extend_from_slice(l);
            s
        })
        .collect();
    assert_eq!(again.len(), content_lines);
    again.push(b".".to_vec());
    assert_eq!(
        read_body(&again, usize::MAX),
        Some((body.clone(), content_lines))
    );

    // The listings the client reads from such a body. A body of one empty line has no lines.
    let text_lines = lines_of(&body);
    if body != b"\r\n" {
        assert_eq!(text_lines.len(), content_lines);
    }
    for l in &text_lines {
        check_listings(l);
    }
});
