//! MIME structure parser behind FETCH BODYSTRUCTURE/ENVELOPE: never panics on any message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mailroom_proto::imap::mime::Mime::parse(data);
});
