//! SMTP over TLS: STARTTLS on both listeners (RFC 3207), implicit-TLS submission (RFC 8314),
//! the STARTTLS injection defence (CVE-2011-0411) and the `auth_require_tls` policy.

mod support;

use support::tls::{cert_path, python_tls, tls_server};

/// smtplib: EHLO shows STARTTLS (and AUTH, from loopback); after starttls() the EHLO shows AUTH
/// but no STARTTLS; login() and send; the Received header says ESMTPSA (RFC 3848).
#[test]
fn smtplib_starttls_login_send() {
    let s = tls_server("", "");
    assert!(
        cert_path(&s).exists(),
        "self-signed certificate in data/tls"
    );
    python_tls(
        &s,
        r#"
import smtplib
c = smtplib.SMTP(HOST, port("SUBMISSION"), timeout=20)
c.ehlo("pc1.example.test")
assert c.has_extn("starttls"), c.esmtp_features
code, _ = c.starttls(context=ctx)
assert code == 220
c.ehlo("pc1.example.test")
assert not c.has_extn("starttls"), c.esmtp_features
assert "PLAIN" in c.esmtp_features["auth"], c.esmtp_features
c.login(ALICE, ALICE_PW)
c.sendmail(ALICE, [BOB], "From: " + ALICE + "\r\nTo: " + BOB + "\r\nSubject: over tls\r\n\r\nhello\r\n")
c.quit()
# The MX listener offers STARTTLS too.
m = smtplib.SMTP(HOST, port("SMTP"), timeout=20)
m.ehlo("relay.example.test")
assert m.has_extn("starttls")
m.starttls(context=ctx)
m.ehlo("relay.example.test")
m.sendmail("x@remote.test", [BOB], "Subject: mx tls\r\n\r\nhi\r\n")
m.quit()
"#,
    );
    let inbox = s.inbox(support::BOB.0);
    assert_eq!(inbox.len(), 2);
    let first = String::from_utf8_lossy(&inbox[0]);
    assert!(first.contains("with ESMTPSA id"), "{first}");
    let second = String::from_utf8_lossy(&inbox[1]);
    assert!(second.contains("with ESMTPS id"), "{second}");
}

/// Implicit TLS (RFC 8314 §3.3): smtplib.SMTP_SSL to the submissions listener.
#[test]
fn smtp_ssl_implicit_submission() {
    let s = tls_server("", "");
    python_tls(
        &s,
        r#"
import smtplib
c = smtplib.SMTP_SSL(HOST, port("SUBMISSIONS"), context=ctx, timeout=20)
c.ehlo("pc1.example.test")
assert not c.has_extn("starttls"), c.esmtp_features
c.login(ALICE, ALICE_PW)
c.sendmail(ALICE, [BOB], "Subject: implicit\r\n\r\nhello\r\n")
c.quit()
"#,
    );
    let inbox = s.inbox(support::BOB.0);
    assert_eq!(inbox.len(), 1);
    assert!(String::from_utf8_lossy(&inbox[0]).contains("with ESMTPSA id"));
}

/// curl --ssl-reqd upgrades with STARTTLS and verifies the certificate with --cacert.
#[test]
fn curl_ssl_reqd_submission() {
    let s = tls_server("", "");
    let msg = s.dir.path().join("msg.txt");
    std::fs::write(
        &msg,
        "From: alice@example.test\r\nSubject: curl\r\n\r\nvia curl\r\n",
    )
    .unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--cacert"])
        .arg(cert_path(&s))
        .arg(format!("smtp://127.0.0.1:{}/pc1", s.submission().port()))
        .args([
            "--mail-from",
            support::ALICE.0,
            "--mail-rcpt",
            support::BOB.0,
        ])
        .args([
            "--user",
            &format!("{}:{}", support::ALICE.0, support::ALICE.1),
        ])
        .arg("--upload-file")
        .arg(&msg)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
    assert_eq!(s.inbox(support::BOB.0).len(), 1);
}

/// CVE-2011-0411: `STARTTLS\r\nRSET\r\n` in one write. The RSET arrived in clear before TLS;
/// it must not be answered inside TLS. The session starts over: MAIL needs EHLO again.
#[test]
fn starttls_injection_is_discarded() {
    let s = tls_server("", "");
    python_tls(
        &s,
        r#"
tls = tls_after_injection("SMTP", b"220", [b"EHLO pc1.example.test\r\n"], b"STARTTLS\r\n", b"RSET\r\n", b"220 ")
tls.sendall(b"MAIL FROM:<a@remote.test>\r\n")
r = tls.recv(1024)
assert r.startswith(b"503"), r
tls.sendall(b"EHLO pc1.example.test\r\n")
r = b""
while not r.endswith(b"\r\n") or b"250 " not in r:
    r += tls.recv(4096)
assert b"STARTTLS" not in r, r
tls.sendall(b"QUIT\r\n")
"#,
    );
    assert!(
        s.log_text()
            .contains("plaintext pipelined behind STARTTLS was discarded"),
        "{}",
        s.log_text()
    );
}

/// `auth_require_tls = true`: even from loopback, AUTH is not advertised before TLS, trying
/// it gets 538 "use STARTTLS first", submission MAIL gets 530; after STARTTLS all works.
#[test]
fn auth_before_tls_refused_when_required() {
    let s = tls_server("auth_require_tls = true", "");
    python_tls(
        &s,
        r#"
import smtplib, base64
c = smtplib.SMTP(HOST, port("SUBMISSION"), timeout=20)
c.ehlo("pc1.example.test")
assert not c.has_extn("auth"), c.esmtp_features
assert c.has_extn("starttls")
code, msg = c.docmd("AUTH", "PLAIN " + base64.b64encode(("\0" + ALICE + "\0" + ALICE_PW).encode()).decode())
assert code == 538 and b"STARTTLS" in msg, (code, msg)
code, msg = c.docmd("MAIL", "FROM:<" + ALICE + ">")
assert code == 530 and b"STARTTLS" in msg, (code, msg)
c.starttls(context=ctx)
c.ehlo("pc1.example.test")
assert c.has_extn("auth")
c.login(ALICE, ALICE_PW)
c.sendmail(ALICE, [BOB], "Subject: after tls\r\n\r\nok\r\n")
c.quit()
"#,
    );
    assert_eq!(s.inbox(support::BOB.0).len(), 1);
}

/// The self-signed certificate is made once and reused after a restart.
#[test]
fn self_signed_certificate_is_reused() {
    let mut s = tls_server("", "");
    let before = std::fs::read(cert_path(&s)).unwrap();
    s.restart();
    let after = std::fs::read(cert_path(&s)).unwrap();
    assert_eq!(before, after);
    python_tls(
        &s,
        r#"
import smtplib
c = smtplib.SMTP_SSL(HOST, port("SUBMISSIONS"), context=ctx, timeout=20)
c.ehlo("x")
c.quit()
"#,
    );
}
