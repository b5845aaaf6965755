//! POP3 with Python's poplib (and smtplib to send): the everyday client paths of RFC 1939.

mod support;

use support::pop3::{message, Pop};
use support::{TestServer, ALICE, BOB};

/// Everything a mail client does on a normal day, against mail sent over SMTP.
#[test]
fn poplib_user_pass_capa_stat_list_uidl_top_retr() {
    let s = TestServer::start();
    s.python(
        r#"
import os, poplib, smtplib
host, sport, pport = os.environ["HOST"], int(os.environ["SMTP_PORT"]), int(os.environ["POP3_PORT"])
sent = [
    b"From: <bob@example.test>\r\nTo: <alice@example.test>\r\nSubject: first\r\n\r\nHello Alice.\r\n.A line that starts with a dot\r\n..and two dots\r\n.\r\nbye\r\n",
    b"From: <bob@example.test>\r\nTo: <alice@example.test>\r\nSubject: second\r\n\r\n" + b"".join(b"line %d\r\n" % i for i in range(1, 31)),
]
with smtplib.SMTP(host, sport) as smtp:
    for m in sent:
        smtp.sendmail("bob@example.test", ["alice@example.test"], m)

p = poplib.POP3(host, pport)
welcome = p.getwelcome()
assert welcome.startswith(b"+OK mailroom POP3 ready <") and welcome.endswith(b"@mx.example.test>"), welcome
caps = p.capa()
for c in ["TOP", "UIDL", "USER", "SASL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE", "IMPLEMENTATION"]:
    assert c in caps, (c, caps)
assert caps["SASL"] == ["PLAIN", "LOGIN"], caps
assert caps["EXPIRE"] == ["NEVER"], caps
assert caps["IMPLEMENTATION"] == ["mailroom"], caps

assert p.user("alice@example.test").startswith(b"+OK")
r = p.pass_("secret")
assert r.startswith(b"+OK alice@example.test has 2 messages ("), r

# CAPA works in TRANSACTION too, with the same list less STLS (RFC 2595 §4: STLS only
# before login).
assert "STLS" in caps, caps
assert p.capa() == {k: v for k, v in caps.items() if k != "STLS"}

count, total = p.stat()
assert count == 2, count
resp, listing, _ = p.list()
assert resp.startswith(b"+OK 2 messages"), resp
sizes = {int(n): int(sz) for n, sz in (l.split() for l in listing)}
assert sorted(sizes) == [1, 2] and sum(sizes.values()) == total, (sizes, total)
assert p.list(2) == b"+OK 2 %d" % sizes[2]

resp, uids, _ = p.uidl()
uids = dict(l.split() for l in uids)
assert len(set(uids.values())) == 2, uids
for u in uids.values():
    assert 1 <= len(u) <= 70 and all(0x21 <= c <= 0x7e for c in u), u
assert p.uidl(1) == b"+OK 1 " + uids[b"1"]

for n, m in enumerate(sent, 1):
    resp, lines, octets = p.retr(n)
    got = b"\r\n".join(lines) + b"\r\n"
    # The server adds Return-Path and Received at the top; the rest is what SMTP carried.
    assert got.endswith(m), (got, m)
    assert got.startswith(b"Return-Path: <bob@example.test>\r\n"), got[:80]
    # The size in LIST is the exact octet count of what RETR gives the client.
    assert octets == sizes[n] == len(got), (octets, sizes[n], len(got))
    assert resp == b"+OK %d octets follow" % sizes[n], resp

# TOP: the header, the blank line and n body lines.
resp, lines, _ = p.top(2, 3)
blank = lines.index(b"")
assert lines[blank + 1:] == [b"line 1", b"line 2", b"line 3"], lines
assert any(l == b"Subject: second" for l in lines[:blank])
resp, lines, _ = p.top(2, 0)
assert lines[-1] == b"" and b"line 1" not in lines, lines
resp, lines, _ = p.top(1, 100)
assert b"\r\n".join(lines).endswith(sent[0].rstrip(b"\r\n")), lines

assert p.noop().startswith(b"+OK")
q = p.quit()
assert q.startswith(b"+OK alice@example.test signing off"), q
print("ok")
"#,
    );
}

#[test]
fn poplib_apop_with_plain_text_config_password() {
    let s = TestServer::start();
    s.deliver(BOB.0, &[ALICE.0], &message("apop", "hi"));
    s.python(
        r#"
import os, poplib
p = poplib.POP3(os.environ["HOST"], int(os.environ["POP3_PORT"]))
r = p.apop("alice@example.test", "secret")
assert r.startswith(b"+OK alice@example.test has 1 message"), r
assert p.stat()[0] == 1
p.quit()

# A wrong secret: -ERR [AUTH], same as a wrong PASS.
p = poplib.POP3(os.environ["HOST"], int(os.environ["POP3_PORT"]))
try:
    p.apop("alice@example.test", "wrong")
    raise SystemExit("APOP with a wrong secret succeeded")
except poplib.error_proto as e:
    assert str(e).startswith("b'-ERR [AUTH] wrong user name or password"), e
p.quit()
print("ok")
"#,
    );
}

#[test]
fn poplib_dele_then_quit_removes_and_rset_restores() {
    let s = TestServer::start();
    for i in 1..=3 {
        s.deliver(BOB.0, &[ALICE.0], &message(&format!("m{i}"), "body"));
    }
    s.python(
        r#"
import os, poplib
H, P = os.environ["HOST"], int(os.environ["POP3_PORT"])
p = poplib.POP3(H, P); p.user("alice@example.test"); p.pass_("secret")
assert p.stat()[0] == 3
assert p.dele(1).startswith(b"+OK message 1 deleted")
assert p.stat()[0] == 2
resp, listing, _ = p.list()
assert [l.split()[0] for l in listing] == [b"2", b"3"], listing
assert p.rset().startswith(b"+OK maildrop has 3 messages")
assert p.stat()[0] == 3
p.dele(2)
q = p.quit()
assert q.startswith(b"+OK alice@example.test signing off (1 message deleted, 2 left)"), q

p = poplib.POP3(H, P); p.user("alice@example.test"); p.pass_("secret")
assert p.stat()[0] == 2
subjects = [[l for l in p.top(n, 0)[1] if l.startswith(b"Subject:")][0] for n in (1, 2)]
assert subjects == [b"Subject: m1", b"Subject: m3"], subjects
p.quit()
print("ok")
"#,
    );
    assert_eq!(s.inbox(ALICE.0).len(), 2);
}

#[test]
fn dele_then_dropped_connection_deletes_nothing() {
    let s = TestServer::start();
    s.deliver(BOB.0, &[ALICE.0], &message("keep me", "body"));
    s.python(
        r#"
import os, poplib
p = poplib.POP3(os.environ["HOST"], int(os.environ["POP3_PORT"]))
p.user("alice@example.test"); p.pass_("secret")
assert p.dele(1).startswith(b"+OK")
p.sock.close()   # no QUIT: RFC 1939 §3, no UPDATE state
print("ok")
"#,
    );
    // The lock is released once the server notices the close; then the message is still there.
    let mut p = None;
    s.wait_for(10, "the maildrop lock to be released", || {
        let mut c = Pop::connect(s.pop3());
        c.ok("USER alice@example.test");
        c.send("PASS secret");
        let l = c.line().unwrap_or_default();
        if l.starts_with("+OK") {
            p = Some(c);
            true
        } else {
            assert!(l.starts_with("-ERR [IN-USE]"), "{l}");
            false
        }
    });
    let mut p = p.expect("logged in");
    assert_eq!(p.stat().0, 1);
    p.ok("QUIT");
    assert_eq!(s.inbox(ALICE.0).len(), 1);
}

#[test]
fn second_concurrent_login_is_refused_with_in_use() {
    let s = TestServer::start();
    s.deliver(BOB.0, &[ALICE.0], &message("x", "y"));
    s.python(
        r#"
import os, poplib
H, P = os.environ["HOST"], int(os.environ["POP3_PORT"])
a = poplib.POP3(H, P); a.user("alice@example.test"); a.pass_("secret")
b = poplib.POP3(H, P); b.user("alice@example.test")
try:
    b.pass_("secret")
    raise SystemExit("second login succeeded")
except poplib.error_proto as e:
    msg = e.args[0]
    assert msg.startswith(b"-ERR [IN-USE] alice@example.test's maildrop is in use"), msg
# b stays in AUTHORIZATION; another account works on the same connection.
r = b.user("bob@example.test"); r = b.pass_("hunter2")
assert r.startswith(b"+OK bob@example.test has 0 messages"), r
b.quit()
a.quit()
# Once the first session has ended, the maildrop is free again.
c = poplib.POP3(H, P); c.user("alice@example.test")
assert c.pass_("secret").startswith(b"+OK")
c.quit()
print("ok")
"#,
    );
}
