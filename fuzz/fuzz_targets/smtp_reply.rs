//! The SMTP client's reply reading (`mailroom_client::smtp`), on a byte stream from a server:
//! the client's line splitter (`LineReader` with `MAX_REPLY_LINE`), `ReplyAssembler`, and
//! `Extensions::from_ehlo` on every reply as if it answered EHLO. Checks:
//! - never panics; the same replies however the stream is split;
//! - a reply has a code 200-599 and 1 to `MAX_REPLY_LINES` lines, and the assembler is idle
//!   after a reply or an error; error texts are one line (they end up in logs and bounces);
//! - a reply printed in its wire form (`{:#}`) reads back as the same reply;
//! - the enhanced code is the start of the first line; AUTH mechanisms are upper case,
//!   non-empty and listed once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_client::smtp::{
    parse_reply_line, Extensions, ReplyAssembler, SmtpReply, MAX_REPLY_LINE, MAX_REPLY_LINES,
};
use mailroom_proto::line::{LineError, LineReader};

#[derive(Debug, PartialEq)]
enum Event {
    Reply(SmtpReply),
    Error(String),
    TooLong,
}

fn one_line(text: &str) {
    assert!(!text.contains('\r') && !text.contains('\n'), "{text:?}");
}

fn check_reply(r: &SmtpReply) {
    assert!((200..600).contains(&r.code), "{r:?}");
    assert!(!r.lines.is_empty() && r.lines.len() <= MAX_REPLY_LINES);
    let kinds = [r.is_success(), r.is_transient(), r.is_permanent()];
    assert!(kinds.iter().filter(|&&k| k).count() <= 1);
    assert_eq!(r.is_positive(), (200..400).contains(&r.code));

    // The wire form reads back to the same reply.
    let wire = format!("{r:#}");
    let mut again = ReplyAssembler::new();
    let wire_lines: Vec<&str> = wire.split('\n').collect();
    assert_eq!(wire_lines.len(), r.lines.len(), "{wire:?}");
    for (i, l) in wire_lines.iter().enumerate() {
        let got = again
            .push_line(l.as_bytes())
            .expect("own wire form is a reply");
        if i + 1 < wire_lines.len() {
            assert!(got.is_none() && again.in_progress());
        } else {
            assert_eq!(got.as_ref(), Some(r), "{wire:?}");
        }
    }

    let shown = r.to_string();
    assert!(shown.starts_with(&format!("{:03}", r.code)), "{shown:?}");
    if let Some(e) = r.enhanced_text() {
        let first = r.texts().next().expect("a reply has a line");
        assert!(first.starts_with(e.as_ref()));
        assert!(matches!(e.as_bytes()[0], b'2' | b'4' | b'5'));
    }

    let ext = Extensions::from_ehlo(r);
    for (i, m) in ext.auth.iter().enumerate() {
        assert!(!m.is_empty() && *m == m.to_ascii_uppercase(), "{m:?}");
        assert!(!ext.auth[..i].contains(m), "{:?}", ext.auth);
        assert!(ext.offers_auth(&m.to_ascii_lowercase()));
    }
}

fn read(pieces: &[&[u8]]) -> Vec<Event> {
    let mut lines = LineReader::new(MAX_REPLY_LINE);
    let mut asm = ReplyAssembler::new();
    let mut events = Vec::new();
    for piece in pieces {
        lines.push(piece);
        while let Some(line) = lines.next_line() {
            match line {
                Ok(line) => match asm.push_line(&line) {
                    Ok(Some(r)) => {
                        assert!(!asm.in_progress());
                        check_reply(&r);
                        events.push(Event::Reply(r));
                    }
                    Ok(None) => assert!(asm.in_progress()),
                    Err(e) => {
                        assert!(!asm.in_progress());
                        let text = e.to_string();
                        one_line(&text);
                        events.push(Event::Error(text));
                    }
                },
                // The client gives up on such a server; carry on as a new connection would.
                Err(LineError::TooLong { .. }) => {
                    asm = ReplyAssembler::new();
                    events.push(Event::TooLong);
                }
            }
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    match parse_reply_line(data) {
        Ok((code, _, _)) => {
            assert!((200..600).contains(&code));
            assert!(data[..3].iter().all(u8::is_ascii_digit));
        }
        Err(e) => one_line(&e.to_string()),
    }

    let whole = read(&[data]);
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let (a, b) = data.split_at(split);
    assert_eq!(read(&[a, b]), whole);
});
