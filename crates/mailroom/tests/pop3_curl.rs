//! POP3 with curl's `pop3://` URLs: listing and retrieving (curl logs in with AUTH PLAIN).

mod support;

use std::process::Command;

use support::{TestServer, ALICE, BOB};

fn curl(url: &str, user: &str) -> std::process::Output {
    Command::new("curl")
        .args(["-s", "--max-time", "30", url, "-u", user])
        .output()
        .expect("run curl")
}

#[test]
fn curl_lists_and_retrieves() {
    let s = TestServer::start();
    s.deliver(
        BOB.0,
        &[ALICE.0],
        "From: <bob@example.test>\r\nSubject: one\r\n\r\n.a dot line\r\nbody\r\n",
    );
    s.deliver(BOB.0, &[ALICE.0], "Subject: two\r\n\r\nsecond\r\n");
    let stored = s.inbox(ALICE.0);
    let base = format!("pop3://{}", s.pop3());
    let user = format!("{}:{}", ALICE.0, ALICE.1);

    let out = curl(&format!("{base}/"), &user);
    assert!(out.status.success(), "curl list: {out:?}");
    let listing = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(
        listing,
        format!("1 {}\r\n2 {}\r\n", stored[0].len(), stored[1].len())
    );

    for (n, want) in stored.iter().enumerate() {
        let out = curl(&format!("{base}/{}", n + 1), &user);
        assert!(out.status.success(), "curl retr: {out:?}");
        assert_eq!(&out.stdout, want, "message {}", n + 1);
    }
    assert!(String::from_utf8_lossy(&stored[0]).contains("\r\n.a dot line\r\n"));

    // A message that does not exist and a wrong password are failures.
    let out = curl(&format!("{base}/3"), &user);
    assert!(!out.status.success());
    let out = curl(&format!("{base}/"), &format!("{}:wrong", ALICE.0));
    assert!(!out.status.success());
    // curl QUITs, so nothing stays locked or deleted.
    assert_eq!(s.inbox(ALICE.0).len(), 2);
}
