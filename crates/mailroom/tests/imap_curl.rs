//! IMAP with curl's `imap://` URLs: list, fetch by UID, search, custom commands, APPEND
//! by upload (curl logs in with AUTHENTICATE PLAIN and SASL-IR).

mod support;

use std::process::Command;

use support::imap::{msg, start};
use support::{ALICE, BOB};

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-s", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl")
}

#[test]
fn curl_lists_fetches_searches_and_uploads() {
    let s = start();
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "hello", "first body"),
    );
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "other", "second body"),
    );
    let stored = s.inbox(ALICE.0);
    let base = format!("imap://{}", s.addr("imap"));
    let user = format!("{}:{}", ALICE.0, ALICE.1);

    let out = curl(&[&format!("{base}/"), "-u", &user]);
    assert!(out.status.success(), "curl list: {out:?}");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("* LIST (\\HasNoChildren) \"/\" \"INBOX\""),
        "{listing}"
    );
    assert!(listing.contains("\\Sent"), "{listing}");

    for (n, want) in stored.iter().enumerate() {
        let out = curl(&[&format!("{base}/INBOX;UID={}", n + 1), "-u", &user]);
        assert!(out.status.success(), "curl fetch: {out:?}");
        assert_eq!(&out.stdout, want, "message {}", n + 1);
    }

    let out = curl(&[&format!("{base}/INBOX?SUBJECT%20other"), "-u", &user]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "* SEARCH 2");

    let out = curl(&[
        &format!("{base}/INBOX"),
        "-u",
        &user,
        "-X",
        "STATUS INBOX (MESSAGES UNSEEN)",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 0)",
        "fetching the bodies set \\Seen"
    );

    // Upload = APPEND.
    let file = s.dir.path().join("upload.eml");
    std::fs::write(&file, "Subject: uploaded\r\n\r\nvia curl\r\n").expect("write");
    let out = curl(&[
        &format!("{base}/Drafts"),
        "-u",
        &user,
        "-T",
        file.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = curl(&[&format!("{base}/Drafts;UID=1"), "-u", &user]);
    assert_eq!(out.stdout, b"Subject: uploaded\r\n\r\nvia curl\r\n");

    // A wrong password fails.
    let out = curl(&[&format!("{base}/"), "-u", &format!("{}:wrong", ALICE.0)]);
    assert!(!out.status.success());
    let log = s.log_text();
    assert!(!log.contains(" BAD "), "curl got a BAD:\n{log}");
}
