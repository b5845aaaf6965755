//! SMTP replies in both directions (`mailroom_proto::smtp::reply`, the type the server builds
//! and the client reads). Each input is used twice.
//!
//! As a byte stream from a server: the client's line splitter (`LineReader` with
//! `MAX_REPLY_LINE`), `ReplyAssembler`, and `Extensions::from_ehlo` on every reply as if it
//! answered EHLO. Checks:
//! - never panics; the same replies however the stream is split;
//! - a reply has a code 200-599 and 1 to `MAX_REPLY_LINES` lines, and the assembler is idle
//!   after a reply or an error; error texts are one line (they end up in logs and bounces);
//! - parse -> encode: `to_bytes` of a parsed reply reads back as the same reply (control
//!   characters aside, which the encoder turns into spaces: then its octets are stable), and
//!   the wire form (`{:#}`) is those octets without the CRLFs; the one-line form starts with
//!   the code;
//! - the enhanced code is the start of the first line; AUTH mechanisms are upper case,
//!   non-empty and listed once.
//!
//! As a reply to build (code, enhanced code, text lines): encode -> parse -> equal. A built
//! reply reads back as itself unless its first line starts with an enhanced code it was not
//! given (then the parser moves that code out of the lines, and the octets still agree).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_proto::line::{LineError, LineReader};
use mailroom_proto::smtp::{
    parse_reply_line, EnhancedCode, Extensions, Reply, ReplyAssembler, MAX_REPLY_LINE,
    MAX_REPLY_LINES,
};

#[derive(Debug, PartialEq)]
enum Event {
    Reply(Reply),
    Error(String),
    TooLong,
}

fn one_line(text: &str) {
    assert!(!text.contains('\r') && !text.contains('\n'), "{text:?}");
}

/// Reads a whole wire form (`to_bytes`) back with a fresh assembler: exactly one reply.
fn read_back(wire: &[u8]) -> Reply {
    let mut lines = LineReader::new(usize::MAX);
    lines.push(wire);
    let mut asm = ReplyAssembler::new();
    let mut got = None;
    while let Some(line) = lines.next_line() {
        let line = line.expect("no limit");
        assert!(got.is_none(), "a line after the last one: {wire:?}");
        got = asm.push_line(&line).expect("own wire form is a reply");
    }
    assert!(!asm.in_progress());
    got.expect("a complete reply")
}

fn has_controls(r: &Reply) -> bool {
    r.texts().any(|t| t.chars().any(char::is_control))
}

fn check_reply(r: &Reply) {
    assert!((200..600).contains(&r.code), "{r:?}");
    assert!(!r.lines.is_empty() && r.lines.len() <= MAX_REPLY_LINES);
    let kinds = [r.is_success(), r.is_transient(), r.is_permanent()];
    assert!(kinds.iter().filter(|&&k| k).count() <= 1);
    assert_eq!(r.is_positive(), (200..400).contains(&r.code));

    // parse -> encode -> parse.
    let wire = r.to_bytes();
    let again = read_back(&wire);
    if has_controls(r) {
        assert_eq!(again.to_bytes(), wire, "{r:?}");
    } else {
        assert_eq!(&again, r, "{wire:?}");
    }
    let shown = format!("{r:#}");
    assert_eq!(
        shown.replace('\n', "\r\n") + "\r\n",
        String::from_utf8_lossy(&wire)
    );

    let summary = r.to_string();
    assert!(summary.starts_with(&format!("{:03}", r.code)), "{summary:?}");
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

/// encode -> parse -> equal, for a reply built from the input: the first two octets pick
/// the code (200-599) and the enhanced code, the rest are the text lines (split at LF).
fn build_and_read(data: &[u8]) {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let code = 200 + u16::from_le_bytes([*a, *b & 1]) % 400;
    let class = [2u8, 4, 5][usize::from(*b >> 1) % 3];
    let enhanced = (*b & 0x80 != 0).then(|| EnhancedCode(class, u16::from(*a % 8), u16::from(*b % 13)));
    let lines: Vec<String> = String::from_utf8_lossy(rest)
        .split('\n')
        .take(MAX_REPLY_LINES)
        .map(str::to_string)
        .collect();
    let built = Reply {
        code,
        enhanced,
        lines,
    };
    let wire = built.to_bytes();
    let got = read_back(&wire);
    assert_eq!(got.to_bytes(), wire, "{built:?}");
    let first_word = built.lines[0].split(' ').next().unwrap_or("");
    let code_in_text = built.enhanced.is_none() && EnhancedCode::parse(first_word).is_some();
    if !has_controls(&built) && !code_in_text {
        assert_eq!(got, built, "{wire:?}");
    }
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

    build_and_read(data);
});
