//! POP3 command parser: never panics, and every error is one printable line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_proto::pop3::parse_command;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_command(data) {
        let text = e.to_string();
        assert!(!text.contains('\r') && !text.contains('\n'), "multi-line error: {text:?}");
    }
});
