//! Python's smtplib against a running server: what real client libraries see.
mod support;
use support::*;

#[test]
fn ehlo_advertises_extensions() {
    let s = TestServer::start();
    let out = s.python(
        r#"
import os, smtplib
for port, auth in ((os.environ["SMTP_PORT"], True), (os.environ["SUBMISSION_PORT"], True)):
    c = smtplib.SMTP("127.0.0.1", int(port), timeout=10)
    code, _ = c.ehlo("pc1.example.test")
    assert code == 250, code
    for ext in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "chunking", "help"):
        assert c.has_extn(ext), ext
    assert c.esmtp_features["size"] == "26214400", c.esmtp_features
    assert c.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"], c.esmtp_features
    c.quit()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok");
}

#[test]
fn login_and_plain_then_sendmail_to_several_local_recipients() {
    let s = TestServer::start();
    s.python(
        r#"
import os, smtplib
port = int(os.environ["SUBMISSION_PORT"])
msg = "From: alice@example.test\r\nTo: bob@example.test, carol@example.test\r\nSubject: hello\r\nDate: Sun, 22 Nov 2026 01:00:00 +0000\r\nMessage-ID: <m1@example.test>\r\n\r\nHi both.\r\n.leading dot\r\n"
for mech in ("LOGIN", "PLAIN"):
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    c.ehlo("pc1.example.test")
    c.user, c.password = "alice@example.test", "secret"
    code, text = c.auth(mech, getattr(c, "auth_" + mech.lower()))
    assert code == 235, (code, text)
    refused = c.sendmail("alice@example.test", ["bob@example.test", "carol@example.test"], msg)
    assert refused == {}, refused
    c.quit()
"#,
    );
    for who in [BOB.0, CAROL.0] {
        let inbox = s.inbox(who);
        assert_eq!(inbox.len(), 2, "{who} has both messages");
        for m in &inbox {
            let text = String::from_utf8(m.clone()).unwrap();
            // Trace headers first, then exactly the octets sent (dot-unstuffed by smtplib's stuffing).
            assert!(text.starts_with("Return-Path: <alice@example.test>\r\nReceived: from pc1.example.test ([127.0.0.1])\r\n\tby mx.example.test (mailroom) with ESMTPA id "), "{text}");
            let body_at = text
                .find("From: alice@example.test")
                .expect("original headers");
            assert_eq!(
                &text[body_at..],
                "From: alice@example.test\r\nTo: bob@example.test, carol@example.test\r\nSubject: hello\r\nDate: Sun, 22 Nov 2026 01:00:00 +0000\r\nMessage-ID: <m1@example.test>\r\n\r\nHi both.\r\n.leading dot\r\n"
            );
            // Two recipients: no "for <...>" clause.
            assert!(!text[..body_at].contains("for <"), "{text}");
        }
    }
}

#[test]
fn wrong_password_and_relay_and_sender_mismatch() {
    let s = TestServer::start_with("[limits]\nauth_failure_delay = \"10ms\"\n", &[]);
    s.python(
        r#"
import os, smtplib
sub = int(os.environ["SUBMISSION_PORT"]); mx = int(os.environ["SMTP_PORT"])
c = smtplib.SMTP("127.0.0.1", sub, timeout=10)
try:
    c.login("alice@example.test", "wrong")
    raise SystemExit("login with a wrong password succeeded")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535 and b"5.7.8" in e.smtp_error, e
c.close()
# smtplib tries PLAIN and then LOGIN: two failures per login(); use a fresh connection.
c = smtplib.SMTP("127.0.0.1", sub, timeout=10)
try:
    c.login("nobody@example.test", "secret")
    raise SystemExit("login of an unknown user succeeded")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535, e
c.close()

# Submission without AUTH: 530.
c = smtplib.SMTP("127.0.0.1", sub, timeout=10)
c.ehlo("x")
code, text = c.mail("alice@example.test")
assert code == 530 and b"5.7.0" in text, (code, text)
c.close()

# Authenticated sender must be the user's own address: 553 5.7.1.
c = smtplib.SMTP("127.0.0.1", sub, timeout=10)
c.login("alice@example.test", "secret")
code, text = c.mail("bob@example.test")
assert code == 553 and b"5.7.1" in text, (code, text)
c.close()

# MX without AUTH: relaying refused with 554 5.7.1, unknown local user 550 5.1.1.
c = smtplib.SMTP("127.0.0.1", mx, timeout=10)
c.ehlo("x")
assert c.mail("someone@far.test")[0] == 250
code, text = c.rcpt("victim@elsewhere.test")
assert code == 554 and b"5.7.1" in text and b"relay" in text, (code, text)
code, text = c.rcpt("nobody@example.test")
assert code == 550 and b"5.1.1" in text, (code, text)
code, text = c.rcpt("bob@example.test")
assert code == 250, (code, text)
c.quit()
"#,
    );
}

#[test]
fn authenticated_mail_to_other_domains_is_queued_durably() {
    // far.test is routed to a closed port: delivery keeps failing, so the mail must wait.
    let closed = free_port();
    let s = TestServer::start_with(
        &format!("[routes]\n\"far.test\" = \"127.0.0.1:{closed}\"\n[queue]\nretry = [\"1h\"]\nconnect_timeout = \"1s\"\n"),
        &[],
    );
    s.python(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]), timeout=10)
c.login("alice@example.test", "secret")
r = c.sendmail("alice@example.test", ["friend@far.test", "bob@example.test", "other@far.test"], "Subject: out\r\n\r\nbody\r\n")
assert r == {}, r
c.quit()
"#,
    );
    let q = s.queue();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].sender, ALICE.0);
    let mut rcpts: Vec<_> = q[0]
        .recipients
        .iter()
        .map(|r| r.recipient.clone())
        .collect();
    rcpts.sort();
    assert_eq!(rcpts, vec!["friend@far.test", "other@far.test"]);
    assert!(q[0].recipients.iter().all(|r| r.status == "pending"));
    assert_eq!(s.inbox(BOB.0).len(), 1);
    // Submission added the Date and Message-ID the client left out.
    let m = String::from_utf8(s.inbox(BOB.0)[0].clone()).unwrap();
    assert!(
        m.contains("\r\nDate: ") && m.contains("\r\nMessage-ID: <"),
        "{m}"
    );
}

#[test]
fn smtputf8_and_8bit_body() {
    let s = TestServer::start();
    s.python(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=10)
c.ehlo("x")
body = "Subject: caf\u00e9\r\n\r\nGr\u00fc\u00dfe aus K\u00f6ln\r\n".encode("utf-8")
r = c.sendmail("j\u00f6rg@b\u00fccher.test", ["bob@example.test"], body, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
assert r == {}, r
# Without SMTPUTF8 a non-ASCII sender is refused with 553 5.6.7.
c.rset()
c.command_encoding = "utf-8"
code, text = c.mail("j\u00f6rg@b\u00fccher.test")
assert code == 553 and b"5.6.7" in text, (code, text)
c.quit()
"#,
    );
    let m = s.inbox(BOB.0);
    assert_eq!(m.len(), 1);
    let text = String::from_utf8(m[0].clone()).unwrap();
    assert!(text.contains("Return-Path: <jörg@bücher.test>"), "{text}");
    assert!(text.contains("with UTF8SMTP id"), "{text}");
    assert!(
        text.ends_with("Subject: café\r\n\r\nGrüße aus Köln\r\n"),
        "{text}"
    );
}

#[test]
fn curl_sends_mail() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.txt");
    std::fs::write(
        &file,
        "From: alice@example.test\r\nSubject: via curl\r\n\r\nhello from curl\r\n",
    )
    .unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--url"])
        .arg(format!("smtp://127.0.0.1:{}", s.submission().port()))
        .args([
            "--mail-from",
            "alice@example.test",
            "--mail-rcpt",
            "bob@example.test",
        ])
        .args(["--user", "alice@example.test:secret", "--upload-file"])
        .arg(&file)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = s.inbox(BOB.0);
    assert_eq!(m.len(), 1);
    assert!(
        String::from_utf8_lossy(&m[0]).ends_with("Subject: via curl\r\n\r\nhello from curl\r\n")
    );
}
