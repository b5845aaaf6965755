//! IMAP URLs as CATENATE takes them (`imap::url::parse_imap_url`, RFC 5092 / RFC 4469) on
//! arbitrary text. Checks:
//! - never panics;
//! - an accepted URL names a UID from 1, a mailbox (if any) without `.` or `..` segments,
//!   and a partial length (if any) from 1;
//! - parsing is deterministic, and an error text is one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_proto::imap::url::parse_imap_url;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_imap_url(&text) {
        Ok(u) => {
            assert!(u.uid >= 1);
            assert!(u.uidvalidity.is_none_or(|v| v >= 1));
            if let Some(m) = &u.mailbox {
                assert!(!m.is_empty());
                assert!(m.split('/').all(|s| s != ".." && s != "."), "{m:?}");
            }
            if let Some((_, Some(l))) = u.partial {
                assert!(l >= 1);
            }
            assert_eq!(parse_imap_url(&text), Ok(u));
        }
        Err(e) => assert!(!e.0.contains('\n'), "{e}"),
    }
});
