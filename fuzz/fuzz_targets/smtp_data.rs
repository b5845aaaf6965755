//! Fuzzes the DATA receiver and the BDAT normalizer: no panic, the same result however the
//! input is chunked, and the invariants of an accepted message. And the other direction: what
//! the client sends for a message (`normalize_crlf`, `dot_stuff`) the receiver reads back as
//! that message, ending exactly at the stuffed content's terminator.
//! Run: `cargo +nightly fuzz run smtp_data` (see ../README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_proto::smtp::{
    dot_stuff, normalize_body, normalize_crlf, DataError, DataProgress, DataReceiver,
};

type Outcome = (Option<usize>, usize, Result<Vec<u8>, DataError>);

fn run<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    max_size: usize,
    max_line: usize,
) -> Outcome {
    let mut r = DataReceiver::new(max_size, max_line);
    let mut offset = 0;
    let mut consumed = None;
    for chunk in chunks {
        match r.feed(chunk) {
            DataProgress::NeedMore => offset += chunk.len(),
            DataProgress::Done { consumed: c } => {
                assert!(c <= chunk.len());
                consumed = Some(offset + c);
                break;
            }
        }
    }
    (consumed, r.received(), r.finish())
}

/// Lines end in CRLF, no other CR or LF, no line longer than `max_line` with its CRLF.
fn assert_canonical(content: &[u8], max_line: usize) {
    if content.is_empty() {
        return;
    }
    assert!(content.ends_with(b"\r\n"), "{content:?}");
    for line in content.split_inclusive(|&b| b == b'\n') {
        assert!(line.len() <= max_line, "{line:?}");
        let text = &line[..line.len() - 2];
        assert!(line.ends_with(b"\r\n"), "{line:?}");
        assert!(!text.contains(&b'\r') && !text.contains(&b'\n'), "{line:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, body @ ..] = data else {
        return;
    };
    let max_size = usize::from(*a) * 8;
    let max_line = 2 + usize::from(*b);
    let chunk = 1 + usize::from(*c) % 17;

    let whole = run([body], max_size, max_line);
    assert_eq!(run(body.chunks(chunk), max_size, max_line), whole);
    assert_eq!(run(body.chunks(1), max_size, max_line), whole);

    let (consumed, received, result) = whole;
    if let Some(n) = consumed {
        // Only <CRLF>.<CRLF> ends the data (or ".\r\n" right after the DATA command).
        assert!(n <= body.len());
        let end = &body[..n];
        assert!(end == b".\r\n" || end.ends_with(b"\r\n.\r\n"), "{end:?}");
    }
    if let Ok(content) = &result {
        assert_eq!(content.len(), received);
        assert!(content.len() <= max_size);
        if consumed.is_some() {
            assert_canonical(content, max_line);
        }
    }

    if let Ok(normalized) = normalize_body(body.to_vec(), max_line) {
        assert_canonical(&normalized, max_line);
    }

    // Client -> server: stuffing and un-stuffing agree (no size or line limit in the way).
    let message = normalize_crlf(body);
    assert_canonical(&message, usize::MAX);
    let wire = dot_stuff(&message);
    let (consumed, _, result) = run(wire.chunks(chunk), usize::MAX, usize::MAX);
    assert_eq!(consumed, Some(wire.len()));
    assert_eq!(result, Ok(message));
});
