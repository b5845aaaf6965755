//! The IMAP command parser (`parse_command`, SORT and THREAD included): never panics on any
//! input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mailroom_proto::imap::parse_command(data);
});
