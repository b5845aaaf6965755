//! IMAP over TLS: STARTTLS (RFC 9051 §6.2.1), implicit TLS (RFC 8314), the injection defence
//! and the `auth_require_tls` policy (LOGINDISABLED, PRIVACYREQUIRED).

mod support;

use support::tls::{python_tls, tls_server};

/// imaplib: STARTTLS is offered, starttls() upgrades, it is no longer offered, login and FETCH work.
#[test]
fn imaplib_starttls_login_fetch() {
    let s = tls_server("", "");
    s.deliver(
        "x@remote.test",
        &[support::ALICE.0],
        "Subject: one\n\nbody one\n",
    );
    python_tls(
        &s,
        r#"
import imaplib
m = imaplib.IMAP4(HOST, port("IMAP"), timeout=20)
assert "STARTTLS" in m.capabilities, m.capabilities
m.starttls(ssl_context=ctx)
assert "STARTTLS" not in m.capabilities, m.capabilities
m.login(ALICE, ALICE_PW)
typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"1"], (typ, data)
typ, data = m.fetch("1", "(BODY[TEXT])")
assert b"body one" in data[0][1], data
m.logout()
"#,
    );
}

/// Implicit TLS: imaplib.IMAP4_SSL to the imaps listener.
#[test]
fn imap4_ssl_implicit() {
    let s = tls_server("", "");
    python_tls(
        &s,
        r#"
import imaplib
m = imaplib.IMAP4_SSL(HOST, port("IMAPS"), ssl_context=ctx, timeout=20)
assert "STARTTLS" not in m.capabilities, m.capabilities
m.login(ALICE, ALICE_PW)
typ, data = m.list()
assert typ == "OK" and any(b"INBOX" in l for l in data), data
m.logout()
"#,
    );
}

/// `a STARTTLS\r\nb NOOP\r\n` in one write: the NOOP is not answered inside TLS.
#[test]
fn starttls_injection_is_discarded() {
    let s = tls_server("", "");
    python_tls(
        &s,
        r#"
tls = tls_after_injection("IMAP", b"* OK", [], b"a STARTTLS\r\n", b"b NOOP\r\n", b"a OK")
tls.sendall(b"c STARTTLS\r\n")
r = tls.recv(1024)
assert r.startswith(b"c BAD"), r
tls.sendall(b"d LOGOUT\r\n")
"#,
    );
}

/// `auth_require_tls = true`: LOGINDISABLED before TLS, LOGIN refused with PRIVACYREQUIRED;
/// after STARTTLS the AUTH= mechanisms are back and LOGIN works.
#[test]
fn login_before_starttls_refused_when_required() {
    let s = tls_server("auth_require_tls = true", "");
    python_tls(
        &s,
        r#"
import imaplib
m = imaplib.IMAP4(HOST, port("IMAP"), timeout=20)
caps = m.capabilities
assert "LOGINDISABLED" in caps and "AUTH=PLAIN" not in caps and "STARTTLS" in caps, caps
raw = socket.create_connection((HOST, port("IMAP")), timeout=10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"a LOGIN alice@example.test secret\r\n")
l = f.readline()
assert l.startswith(b"a NO [PRIVACYREQUIRED]") and b"STARTTLS" in l, l
m.starttls(ssl_context=ctx)
assert "LOGINDISABLED" not in m.capabilities and "AUTH=PLAIN" in m.capabilities, m.capabilities
m.login(ALICE, ALICE_PW)
m.logout()
"#,
    );
}
