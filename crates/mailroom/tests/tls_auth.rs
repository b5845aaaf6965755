//! The authentication policy: the per-client-address failure delay (it survives reconnecting),
//! the per-connection failure limit, one log line per failure with the address and never the
//! password, and the same reply for an unknown user and a wrong password.

mod support;

use support::tls::{python_tls, tls_server};

/// Each new connection from the same address waits longer after a failure: the delay doubles
/// per failure from the address (capped at 8x), whatever the connection.
#[test]
fn failure_delay_grows_per_address_across_connections() {
    let s = tls_server("", "auth_failure_delay = \"150ms\"\nmax_auth_failures = 5");
    let out = python_tls(
        &s,
        r#"
import smtplib
times = []
for i in range(4):
    c = smtplib.SMTP(HOST, port("SUBMISSION"), timeout=20)
    c.ehlo("pc1")
    t = time.monotonic()
    try:
        c.login(ALICE, "wrong-password-%d" % i)
        raise SystemExit("login with a wrong password worked")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535, e
    times.append(time.monotonic() - t)
    c.quit()
print(" ".join("%.3f" % t for t in times))
# 150ms, 300ms, 600ms, 1200ms (cap 8x), each on a fresh connection.
assert times[1] >= 0.28 and times[2] >= 0.55 and times[3] >= 1.1, times
"#,
    );
    eprintln!("delays: {out}");
    let log = s.log_text();
    let failures = log.matches("authentication failed").count();
    assert!(failures >= 4, "{log}");
    assert!(log.contains("ip=127.0.0.1"), "{log}");
    assert!(
        !log.contains("wrong-password"),
        "a password reached the log:\n{log}"
    );
}

/// `limits.max_auth_failures` per connection: then 421 and the connection is closed. An
/// unknown user gets the same reply as a wrong password.
#[test]
fn connection_closed_after_max_failures_same_reply() {
    let s = tls_server("", "auth_failure_delay = \"10ms\"\nmax_auth_failures = 2");
    python_tls(
        &s,
        r#"
import smtplib, base64
c = smtplib.SMTP_SSL(HOST, port("SUBMISSIONS"), context=ctx, timeout=20)
c.ehlo("pc1")
def plain(u, p):
    return "PLAIN " + base64.b64encode(("\0" + u + "\0" + p).encode()).decode()
code1, msg1 = c.docmd("AUTH", plain("nobody@example.test", "x"))
assert code1 == 535, (code1, msg1)
code2, msg2 = c.docmd("AUTH", plain(ALICE, "wrong"))
assert (code2, msg2) == (code1, msg1), (code2, msg2, msg1)
# The limit was reached: 421 follows and the connection closes.
code3, msg3 = c.getreply()
assert code3 == 421, (code3, msg3)
try:
    c.docmd("NOOP")
    code = c.getreply()[0]
    assert code == -1 or code == 421, code
except (smtplib.SMTPServerDisconnected, OSError):
    pass
"#,
    );
}

/// POP3 failures count per address too, and close the connection at the limit.
#[test]
fn pop3_failures_delay_and_close() {
    let s = tls_server("", "auth_failure_delay = \"100ms\"\nmax_auth_failures = 2");
    python_tls(
        &s,
        r#"
import poplib
p = poplib.POP3_SSL(HOST, port("POP3S"), context=ctx, timeout=20)
for i in range(2):
    p.user(ALICE)
    try:
        p.pass_("nope")
        raise SystemExit("wrong password accepted")
    except poplib.error_proto as e:
        assert b"[AUTH]" in e.args[0], e
try:
    p.noop()
    raise SystemExit("connection still open after the failure limit")
except (poplib.error_proto, OSError, EOFError):
    pass
# A fresh connection from the same address: the third failure waits 4x the base.
p = poplib.POP3(HOST, port("POP3"), timeout=20)
p.user(ALICE)
t = time.monotonic()
try:
    p.pass_("nope")
except poplib.error_proto:
    pass
assert time.monotonic() - t >= 0.38, time.monotonic() - t
"#,
    );
}

/// IMAP failures count towards the same per-address delay: an IMAP login after SMTP failures
/// from the same address waits longer, and the failure is logged with proto=imap.
#[test]
fn imap_failures_share_the_per_address_delay() {
    let s = tls_server("", "auth_failure_delay = \"150ms\"\nmax_auth_failures = 5");
    python_tls(
        &s,
        r#"
import imaplib, smtplib
for i in range(2):
    c = smtplib.SMTP(HOST, port("SUBMISSION"), timeout=20)
    c.ehlo("pc1")
    try:
        c.login(ALICE, "wrong-%d" % i)
    except smtplib.SMTPAuthenticationError:
        pass
    c.quit()
m = imaplib.IMAP4(HOST, port("IMAP"), timeout=20)
t = time.monotonic()
try:
    m.login(ALICE, "wrong-imap")
    raise SystemExit("IMAP login with a wrong password worked")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e
took = time.monotonic() - t
# smtplib tries two mechanisms per login: 4 failures already, so the fifth waits 8x (capped).
assert took >= 0.9, took
"#,
    );
    let log = s.log_text();
    assert!(
        log.contains("proto=\"imap\"") || log.contains("proto=imap"),
        "{log}"
    );
    assert!(
        !log.contains("wrong-imap"),
        "a password reached the log:\n{log}"
    );
}
