//! Modified UTF-7 for IMAP4rev1 mailbox names (`imap::mutf7`, RFC 3501 §5.1.3):
//! - decoding arbitrary octets never panics, and an offset it reports is inside the input;
//! - whatever decodes is canonical: encoding it again gives the same octets;
//! - a suggested spelling decodes;
//! - for any UTF-8 text in the input, the encoding is 7-bit printable and decodes back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_proto::imap::mutf7::{decode, encode};

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(s) => assert_eq!(encode(&s).as_bytes(), data, "accepted but not canonical"),
        Err(e) => {
            assert!(e.offset <= data.len());
            if let Some(s) = &e.suggestion {
                assert!(decode(s.as_bytes()).is_ok(), "bad suggestion {s:?}");
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    let wire = encode(&text);
    assert!(wire.bytes().all(|b| (0x20..0x7f).contains(&b)), "{wire:?}");
    assert_eq!(decode(wire.as_bytes()).as_deref(), Ok(&*text));
});
