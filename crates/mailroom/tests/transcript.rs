//! The SMTP dialogue kept with each accepted message, read back through
//! `GET /api/messages/{mailbox}/{id}/transcript` with Python's smtplib and http.client:
//! AUTH PLAIN and AUTH LOGIN with the secrets masked, MAIL, RCPT, DATA, the data as one line,
//! the `250` with the id the client was given; two sessions interleaved on two accounts each
//! keep only their own lines; a second message of one session does not carry the first's
//! transaction; another account's id and an APPENDed message are 404.

mod support;

use support::{ServerConfig, TestServer};

fn start() -> TestServer {
    ServerConfig::example()
        .listen(&["smtp", "submission", "imap", "http"])
        .limits("auth_failure_delay = \"10ms\"")
        .start()
}

/// `transcript(user, password, mailbox="INBOX", index=-1)`: the newest message's transcript
/// (status, JSON); `ids(user, password)` the INBOX ids, oldest first.
const PY: &str = r##"
import base64, http.client, json, os, smtplib
H = "127.0.0.1"
def call(path, auth):
    c = http.client.HTTPConnection(H, int(os.environ["HTTP_PORT"]), timeout=30)
    h = {"Authorization": "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()}
    c.request("GET", path, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    assert r.getheader("Content-Type", "").startswith("application/json"), r.getheader("Content-Type")
    return r.status, json.loads(data)
def ids(auth):
    st, j = call("/api/mailboxes/INBOX/messages?limit=500", auth)
    assert st == 200, j
    return [m["id"] for m in reversed(j["messages"])]
def transcript(auth, mid):
    return call("/api/messages/INBOX/%s/transcript" % mid, auth)
def shape(t):
    assert set(t) == {"lines", "truncated", "peer", "listener"}, t.keys()
    assert isinstance(t["truncated"], bool) and isinstance(t["peer"], str)
    for l in t["lines"]:
        assert set(l) == {"dir", "text"} and l["dir"] in ("C", "S"), l
    return [(l["dir"], l["text"]) for l in t["lines"]]
ALICE = ("alice@example.test", "secret")
BOB = ("bob@example.test", "hunter2")
CAROL = ("carol@example.test", "carolpw")
"##;

#[test]
fn the_transcript_holds_the_dialogue_with_auth_masked_and_the_250_the_client_got() {
    let s = start();
    let out = s.python(&format!(
        "{PY}\n{}",
        r##"
c = smtplib.SMTP(H, int(os.environ["SUBMISSION_PORT"]))
c.ehlo("client.example.test")
c.user, c.password = "alice@example.test", "secret"
c.auth("PLAIN", c.auth_plain)
assert c.mail("alice@example.test")[0] == 250
assert c.rcpt("bob@example.test")[0] == 250
body = b"Subject: t1\r\n\r\nthe body must not be in the transcript\r\n"
code, msg = c.data(body)
assert code == 250, (code, msg)
queued = msg.decode().split("queued as ")[1]
c.quit()
st, t = transcript(BOB, ids(BOB)[-1])
assert st == 200, t
lines = shape(t)
text = "\n".join("%s: %s" % l for l in lines)
assert t["listener"] == "submission" and t["peer"].startswith("127.0.0.1:"), t
assert t["truncated"] is False
assert lines[0][0] == "S" and lines[0][1].startswith("220 "), lines[0]
# smtplib writes its verbs in lower case: compare without case.
low = [(d, x.lower()) for d, x in lines]
assert ("C", "ehlo client.example.test") in low, text
assert ("C", "auth plain ****") in low, text
assert ("S", "235 2.7.0 authentication successful") in low, text
assert any(d == "C" and x.startswith("mail from:<alice@example.test>") for d, x in low), text
assert any(d == "C" and x.startswith("rcpt to:<bob@example.test>") for d, x in low), text
assert ("C", "data") in low, text
assert any(d == "S" and x.startswith("354 ") for d, x in lines), text
assert ("C", "<message, %d octets>" % len(body)) in lines, text
assert lines[-1] == ("S", "250 2.0.0 Ok: queued as %s" % queued), (lines[-1], queued)
secret = base64.b64encode(b"\0alice@example.test\0secret").decode()
assert secret not in text and "secret" not in text and "the body" not in text, text
# The sender reads nothing of it: the message is bob's.
st, j = transcript(ALICE, ids(BOB)[-1])
assert st == 404, (st, j)
print("ok")
"##
    ));
    assert_eq!(out.trim(), "ok");
}

#[test]
fn auth_login_responses_are_masked_too() {
    let s = start();
    let out = s.python(&format!(
        "{PY}\n{}",
        r##"
c = smtplib.SMTP(H, int(os.environ["SUBMISSION_PORT"]))
c.ehlo("pc1")
c.user, c.password = "carol@example.test", "carolpw"
c.auth("LOGIN", c.auth_login, initial_response_ok=False)
c.sendmail("carol@example.test", ["alice@example.test"], "Subject: t\r\n\r\nx\r\n")
c.quit()
st, t = transcript(ALICE, ids(ALICE)[-1])
lines = shape(t)
text = "\n".join("%s: %s" % l for l in lines)
i = [(d, x.upper()) for d, x in lines].index(("C", "AUTH LOGIN"))
assert lines[i + 1] == ("S", "334 VXNlcm5hbWU6"), text
assert lines[i + 2] == ("C", "****"), text
assert lines[i + 3] == ("S", "334 UGFzc3dvcmQ6"), text
assert lines[i + 4] == ("C", "****"), text
for leak in ("carolpw", base64.b64encode(b"carolpw").decode(), base64.b64encode(b"carol@example.test").decode()):
    assert leak not in text, (leak, text)
print("ok")
"##
    ));
    assert_eq!(out.trim(), "ok");
}

#[test]
fn interleaved_sessions_and_later_messages_keep_only_their_own_lines() {
    let s = start();
    let out = s.python(&format!(
        "{PY}\n{}",
        r##"
P = int(os.environ["SMTP_PORT"])
a = smtplib.SMTP(H, P); b = smtplib.SMTP(H, P)
a.ehlo("session-a"); b.ehlo("session-b")
a.mail("a1@far.test"); b.mail("b1@far.test")
a.rcpt("alice@example.test"); b.rcpt("bob@example.test")
ca, ma = a.data(b"Subject: A\r\n\r\na\r\n"); cb, mb = b.data(b"Subject: B\r\n\r\nb\r\n")
assert ca == cb == 250
# A second message in session a, after a refused recipient.
a.mail("a2@far.test")
assert a.rcpt("nobody@example.test")[0] == 550
a.rcpt("alice@example.test")
ca2, ma2 = a.data(b"Subject: A2\r\n\r\na2\r\n")
a.quit(); b.quit()
qa, qb, qa2 = (m.decode().split("queued as ")[1] for m in (ma, mb, ma2))
ta = "\n".join("%s: %s" % l for l in shape(transcript(ALICE, ids(ALICE)[0])[1]))
tb = "\n".join("%s: %s" % l for l in shape(transcript(BOB, ids(BOB)[0])[1]))
ta2 = "\n".join("%s: %s" % l for l in shape(transcript(ALICE, ids(ALICE)[1])[1]))
assert "session-a" in ta and "a1@far.test" in ta and qa in ta, ta
for other in ("session-b", "b1@far.test", qb, "bob@example.test", "a2@far.test"):
    assert other not in ta, (other, ta)
assert "session-b" in tb and "b1@far.test" in tb and qb in tb, tb
for other in ("session-a", "a1@far.test", qa, "alice@example.test"):
    assert other not in tb, (other, tb)
# The second message: the session's opening, its own transaction (with the refused RCPT).
assert "session-a" in ta2 and "a2@far.test" in ta2 and "nobody@example.test" in ta2 and qa2 in ta2, ta2
assert "a1@far.test" not in ta2 and qa not in ta2, ta2
print("ok")
"##
    ));
    assert_eq!(out.trim(), "ok");
}

#[test]
fn another_accounts_id_and_a_message_without_transcript_are_404() {
    let s = start();
    s.deliver(
        "x@far.test",
        &["bob@example.test"],
        "Subject: b\r\n\r\nb\r\n",
    );
    // An APPENDed message has no SMTP dialogue.
    let mut c = support::imap::Imap::login(s.imap(), support::ALICE);
    c.append("INBOX", b"Subject: appended\r\n\r\nx\r\n");
    drop(c);
    let out = s.python(&format!(
        "{PY}\n{}",
        r##"
bob_id = ids(BOB)[0]
alice_id = ids(ALICE)[0]
st, e = transcript(ALICE, bob_id)
assert st == 404 and e["error"] and e["hint"], (st, e)
st, e2 = transcript(ALICE, alice_id)
assert st == 404 and "no SMTP dialogue" in e2["error"], (st, e2)
st, e3 = transcript(ALICE, "1.999999")
assert st == 404, (st, e3)
st, e4 = transcript(ALICE, "not-an-id")
assert st == 400, (st, e4)
st, e5 = call("/api/messages/INBOX/%s/transcript" % bob_id, ("bob@example.test", "wrong"))
assert st == 401, (st, e5)
st, t = transcript(BOB, bob_id)
assert st == 200 and t["listener"] == "smtp", t
print("ok")
"##
    ));
    assert_eq!(out.trim(), "ok");
}

#[test]
fn a_hostile_dialogue_is_escaped_and_bounded() {
    let s = start();
    let out = s.python(&format!(
        "{PY}\n{}",
        r##"
import socket
k = socket.create_connection((H, int(os.environ["SMTP_PORT"])))
f = k.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            return l
reply()
# A terminal escape and a NUL in a NOOP, then 5000 NOOPs (about 80 KiB of dialogue).
k.sendall(b"EHLO hostile\r\nNOOP \x1b[31mred\x00\r\n")
reply(); reply()
k.sendall(b"NOOP\r\n" * 5000)
for _ in range(5000):
    reply()
k.sendall(b"MAIL FROM:<x@far.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
reply(); reply(); reply()
k.sendall(b"Subject: h\r\n\r\nx\r\n.\r\nQUIT\r\n")
assert reply().startswith(b"250 "), "not accepted"
k.close()
st, t = transcript(ALICE, ids(ALICE)[-1])
lines = shape(t)
assert t["truncated"] is True, len(lines)
assert sum(len(x) for _, x in lines) <= 64 * 1024
text = "\n".join(x for _, x in lines)
assert "\x1b" not in text and "\x00" not in text, "control characters kept"
assert "NOOP \\x1b[31mred\\x00" in text, [x for _, x in lines[:6]]
print("ok")
"##
    ));
    assert_eq!(out.trim(), "ok");
}
