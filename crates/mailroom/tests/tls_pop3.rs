//! POP3 over TLS: STLS (RFC 2595 §4), implicit TLS (RFC 8314), the injection defence and the
//! `auth_require_tls` policy.

mod support;

use support::tls::{cert_path, python_tls, tls_server};

/// poplib: CAPA lists STLS; stls(); CAPA no longer lists it; USER/PASS and RETR work.
#[test]
fn poplib_stls_login_retr() {
    let s = tls_server("", "");
    s.deliver(
        "x@remote.test",
        &[support::ALICE.0],
        "Subject: one\n\nbody one\n",
    );
    python_tls(
        &s,
        r#"
import poplib
p = poplib.POP3(HOST, port("POP3"), timeout=20)
assert "STLS" in p.capa(), p.capa()
p.stls(context=ctx)
assert "STLS" not in p.capa(), p.capa()
p.user(ALICE)
p.pass_(ALICE_PW)
n, size = p.stat()
assert n == 1, n
lines = p.retr(1)[1]
assert b"body one" in lines, lines
p.quit()
"#,
    );
}

/// Implicit TLS: poplib.POP3_SSL to the pop3s listener.
#[test]
fn pop3_ssl_implicit() {
    let s = tls_server("", "");
    s.deliver(
        "x@remote.test",
        &[support::ALICE.0],
        "Subject: one\n\nbody one\n",
    );
    python_tls(
        &s,
        r#"
import poplib
p = poplib.POP3_SSL(HOST, port("POP3S"), context=ctx, timeout=20)
assert "STLS" not in p.capa()
p.user(ALICE)
p.pass_(ALICE_PW)
assert p.stat()[0] == 1
p.quit()
"#,
    );
}

/// curl --ssl-reqd upgrades POP3 with STLS and lists the maildrop.
#[test]
fn curl_ssl_reqd_pop3() {
    let s = tls_server("", "");
    s.deliver(
        "x@remote.test",
        &[support::ALICE.0],
        "Subject: one\n\nbody one\n",
    );
    let out = std::process::Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--cacert"])
        .arg(cert_path(&s))
        .arg(format!("pop3://127.0.0.1:{}/1", s.pop3().port()))
        .args([
            "--user",
            &format!("{}:{}", support::ALICE.0, support::ALICE.1),
        ])
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("body one"),
        "curl failed: {}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
}

/// `STLS\r\nNOOP\r\n` in one write: the NOOP is not answered inside TLS.
#[test]
fn stls_injection_is_discarded() {
    let s = tls_server("", "");
    python_tls(
        &s,
        r#"
tls = tls_after_injection("POP3", b"+OK", [], b"STLS\r\n", b"NOOP\r\n", b"+OK")
tls.sendall(b"STLS\r\n")
r = tls.recv(1024)
assert r.startswith(b"-ERR"), r
tls.sendall(b"QUIT\r\n")
"#,
    );
}

/// `auth_require_tls = true`: CAPA hides USER and SASL before TLS, USER gets "use STLS
/// first"; after STLS the login works.
#[test]
fn login_before_stls_refused_when_required() {
    let s = tls_server("auth_require_tls = true", "");
    python_tls(
        &s,
        r#"
import poplib
p = poplib.POP3(HOST, port("POP3"), timeout=20)
caps = p.capa()
assert "USER" not in caps and "SASL" not in caps and "STLS" in caps, caps
try:
    p.user(ALICE)
    raise SystemExit("USER accepted in clear")
except poplib.error_proto as e:
    assert b"STLS" in e.args[0], e
p.stls(context=ctx)
assert "USER" in p.capa()
p.user(ALICE)
p.pass_(ALICE_PW)
p.quit()
"#,
    );
}
