//! IMAP command parsers (`parse_command`, and `parse_sort_thread` for SORT and THREAD):
//! never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mailroom_proto::imap::parse_command(data);
    let _ = mailroom_proto::imap::parse_sort_thread(data);
});
