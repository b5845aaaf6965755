//! The agent's IMAP response parser (mailroom-client): never panics on any logical line
//! (literals included), and a FETCH response it accepts yields its data items.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_client::imap::{fetched, parse};

fuzz_target!(|data: &[u8]| {
    let _ = parse::trailing_literal(data);
    let _ = parse::values(data);
    let _ = parse::split_words(&String::from_utf8_lossy(data));
    if let Ok(parse::Response::Numbered { n, keyword, rest }) = parse::response(data) {
        if keyword == "FETCH" {
            let _ = fetched(n, &rest);
        }
    }
});
