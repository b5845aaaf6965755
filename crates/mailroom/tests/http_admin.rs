//! The HTTP API's queue, accounts and send endpoints (docs/API.md) against a real server, with
//! Python's http.client: every endpoint, each error path, and a user who is not an
//! administrator (or another account) trying them.

mod support;

use support::http::python;
use support::{free_port, ServerConfig, TestServer, ALICE, BOB, CAROL};

/// alice is the administrator; far.test is routed to a port where nothing listens, so mail
/// for it waits in the queue with an error (no automatic retry within the test).
fn start() -> TestServer {
    ServerConfig::example()
        .listen(&["smtp", "imap", "http"])
        .limits("auth_failure_delay = \"10ms\"\nmax_message_size = 65536\nmax_recipients = 5")
        .table("http", "admins = [\"alice@example.test\"]")
        .table("queue", "retry = [\"1h\"]\nconnect_timeout = \"2s\"")
        .route("far.test", free_port())
        .start()
}

#[test]
fn the_queue_lists_retries_and_removes_entries_for_admins_only() {
    let s = start();
    let out = python(
        &s,
        r#"
import time
A = ("alice@example.test", "secret"); B = ("bob@example.test", "hunter2")
# not logged in, not an admin
err("GET", "/api/queue", 401)
e = err("GET", "/api/queue", 403, auth=B)
assert "administrator" in e["error"], e
assert j("GET", "/api/queue", auth=A) == []
# a message for far.test waits in the queue
sent = j("POST", "/api/send", {"to": "Zed <zed@far.test>", "subject": "away", "text": "hi"}, auth=A, want=201)
assert sent["queued"] and sent["delivered_locally"] == 0, sent
def entries():
    return j("GET", "/api/queue", auth=A)
deadline = time.time() + 20
while time.time() < deadline:
    q = entries()
    if q and q[0]["attempts"] >= 1 and q[0]["last_error"]:
        break
    time.sleep(0.2)
q = entries()
assert len(q) == 1, q
e = q[0]
assert e["id"] == sent["queued"] and e["sender"] == "alice@example.test", e
assert e["recipients"] == [dict(e["recipients"][0], address="zed@far.test", state="pending")], e
assert e["attempts"] == 1 and e["last_error"], e
assert e["next_retry"] > time.time() + 3000 and e["age"] >= 0, e
# retry now: the runner tries again at once (attempts goes to 2)
err("POST", "/api/queue/%d/retry" % e["id"], 403, auth=B)
r = j("POST", "/api/queue/%d/retry" % e["id"], auth=A)
assert r == {"id": e["id"], "retrying": 1}, r
deadline = time.time() + 20
while time.time() < deadline and entries()[0]["attempts"] < 2:
    time.sleep(0.2)
assert entries()[0]["attempts"] == 2, entries()
# bad and unknown ids
for bad in ["abc", "0", "-1", "1.5", "99999999999999999999"]:
    err("POST", "/api/queue/%s/retry" % bad, 400, auth=A)
    err("DELETE", "/api/queue/%s" % bad, 400, auth=A)
err("POST", "/api/queue/999999/retry", 404, auth=A)
err("DELETE", "/api/queue/999999", 404, auth=A)
err("GET", "/api/queue/%d/retry" % e["id"], 405, auth=A)
# remove: bob cannot, alice can, then it is gone
err("DELETE", "/api/queue/%d" % e["id"], 403, auth=B)
st, r, data = call("DELETE", "/api/queue/%d" % e["id"], auth=A)
assert st == 204, (st, data)
assert entries() == []
err("DELETE", "/api/queue/%d" % e["id"], 404, auth=A)
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
    assert!(s.queue().is_empty());
}

#[test]
fn accounts_are_added_changed_and_removed_by_admins_only() {
    let s = start();
    let out = python(
        &s,
        r#"
A = ("alice@example.test", "secret"); B = ("bob@example.test", "hunter2")
D = ("dave@example.test", "pw-of-dave")
err("GET", "/api/accounts", 401)
err("GET", "/api/accounts", 403, auth=B)
err("POST", "/api/accounts", 403, {"address": "x@example.test", "password": "p"}, auth=B)
err("PATCH", "/api/accounts/alice@example.test", 403, {"password": "stolen"}, auth=B)
err("DELETE", "/api/accounts/alice@example.test", 403, auth=B)
l = j("GET", "/api/accounts", auth=A)
assert sorted(a["address"] for a in l) == ["alice@example.test", "bob@example.test", "carol@example.test"], l
alice = [a for a in l if a["address"] == "alice@example.test"][0]
assert alice["admin"] and alice["in_config"] and alice["quota_source"] == "default", alice
# add
d = j("POST", "/api/accounts", {"address": "dave@example.test", "password": D[1], "quota": "1M"}, auth=A, want=201)
assert d["address"] == "dave@example.test" and d["quota"] == 1048576 and d["quota_source"] == "account", d
assert not d["in_config"] and not d["admin"] and d["used"] == 0, d
assert j("GET", "/api/me", auth=D)["address"] == "dave@example.test"
assert any(m["name"] == "INBOX" for m in j("GET", "/api/mailboxes", auth=D))
e = err("POST", "/api/accounts", 409, {"address": "DAVE@example.test", "password": "x"}, auth=A)
assert "already exists" in e["error"], e
for bad in ["dave", "@example.test", "da ve@example.test", "dave@", "dave@exa mple.test", "\"d v\"@example.test", "d@[127.0.0.1]", ""]:
    err("POST", "/api/accounts", 400, {"address": bad, "password": "x"}, auth=A)
for bad in ["", "a\nb", "x" * 2000]:
    err("POST", "/api/accounts", 400, {"address": "erin@example.test", "password": bad}, auth=A)
err("POST", "/api/accounts", 400, {"address": "erin@example.test", "password": "x", "quota": "lots"}, auth=A)
err("POST", "/api/accounts", 400, {"address": "erin@example.test"}, auth=A)
err("POST", "/api/accounts", 400, {"address": "erin@example.test", "password": "x", "admin": True}, auth=A)
err("POST", "/api/accounts", 400, "not json", auth=A)
# change the password: the old one stops working, the new one works
c = j("PATCH", "/api/accounts/dave@example.test", {"password": "new-pw"}, auth=A)
assert c["warnings"] == [], c
err("GET", "/api/me", 401, auth=D)
assert j("GET", "/api/me", auth=("dave@example.test", "new-pw"))["address"] == "dave@example.test"
# quota: a number, then null (the default)
c = j("PATCH", "/api/accounts/dave@example.test", {"quota": 5000}, auth=A)
assert c["quota"] == 5000 and c["quota_source"] == "account", c
c = j("PATCH", "/api/accounts/dave@example.test", {"quota": None}, auth=A)
assert c["quota"] is None and c["quota_source"] == "default", c
err("PATCH", "/api/accounts/dave@example.test", 400, {}, auth=A)
err("PATCH", "/api/accounts/dave@example.test", 400, {"quota": -5}, auth=A)
err("PATCH", "/api/accounts/nobody@example.test", 404, {"password": "x"}, auth=A)
# an account of the config: the change is made, with a warning
c = j("PATCH", "/api/accounts/carol@example.test", {"password": "carol2"}, auth=A)
assert c["in_config"] and "[[accounts]]" in c["warnings"][0], c
# remove
err("DELETE", "/api/accounts/alice@example.test", 409, auth=A)
r = j("DELETE", "/api/accounts/dave@example.test", auth=A)
assert r == {"removed": "dave@example.test", "warnings": []}, r
err("GET", "/api/me", 401, auth=("dave@example.test", "new-pw"))
err("DELETE", "/api/accounts/dave@example.test", 404, auth=A)
assert sorted(a["address"] for a in j("GET", "/api/accounts", auth=A)) == ["alice@example.test", "bob@example.test", "carol@example.test"]
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn send_submits_as_the_user_through_the_delivery_path() {
    let s = start();
    let out = python(
        &s,
        r#"
B = ("bob@example.test", "hunter2"); A = ("alice@example.test", "secret"); C = ("carol@example.test", "carolpw")
err("POST", "/api/send", 401, {"to": "alice@example.test"})
pdf = bytes(range(256)) * 4
r = j("POST", "/api/send", {
    "to": ["Alice <alice@example.test>"], "cc": "carol@example.test", "bcc": ["dave@far.test"],
    "subject": "Grüße", "text": "plain body", "html": "<p>html <b>body</b></p>",
    "attachments": [{"name": "data.bin", "type": "application/pdf", "data": base64.b64encode(pdf).decode()}],
}, auth=B, want=201)
assert r["recipients"] == ["alice@example.test", "carol@example.test", "dave@far.test"], r
assert r["delivered_locally"] == 2 and r["queued"], r
l = j("GET", "/api/mailboxes/INBOX/messages", auth=A)["messages"]
assert len(l) == 1 and l[0]["subject"] == "Grüße", l
m = j("GET", "/api/messages/INBOX/" + l[0]["id"], auth=A)
assert m["from"] == [{"name": None, "address": "bob@example.test"}], m["from"]
assert m["to"][0]["address"] == "alice@example.test" and m["cc"][0]["address"] == "carol@example.test", m
assert m["text"].strip() == "plain body" and "<b>body</b>" in m["html"], m
names = [h[0].lower() for h in m["headers"]]
assert "bcc" not in names and "received" in names and "return-path" in names, names
received = [h[1] for h in m["headers"] if h[0].lower() == "received"][0]
assert "with HTTP" in received, received
att = m["attachments"][0]
assert att["filename"] == "data.bin" and att["content_type"] == "application/pdf", att
sec = [p for p in m["mime"]["parts"] if p["filename"] == "data.bin"][0]["section"]
st, _, data = call("GET", "/api/messages/INBOX/%s/parts/%s" % (l[0]["id"], sec), auth=A)
assert st == 200 and data == pdf, st
raw = call("GET", "/api/messages/INBOX/%s/raw" % l[0]["id"], auth=A)[2]
assert b"dave@far.test" not in raw, raw[:600]
assert len(j("GET", "/api/mailboxes/INBOX/messages", auth=C)["messages"]) == 1
# errors: nothing is sent
def none_sent(want, body, auth=B):
    before = j("GET", "/api/mailboxes/INBOX/messages", auth=A)["total"]
    e = err("POST", "/api/send", want, body, auth=auth)
    assert j("GET", "/api/mailboxes/INBOX/messages", auth=A)["total"] == before
    return e
e = none_sent(422, {"to": ["alice@example.test", "nobody@example.test"], "text": "x"})
assert "nobody@example.test" in e["error"], e
none_sent(400, {"subject": "no one", "text": "x"})
none_sent(400, {"to": "alice@example.test", "subject": "a\r\nBcc: evil@far.test", "text": "x"})
none_sent(400, {"to": "alice@example.test\r\nBcc: evil@far.test", "text": "x"})
none_sent(400, {"to": "not an address", "text": "x"})
none_sent(400, {"to": "alice@example.test", "attachments": [{"name": "a", "data": "!!notbase64"}]})
none_sent(400, {"to": "alice@example.test", "attachments": [{"name": "a", "type": "text/html\r\nX: y", "data": ""}]})
none_sent(400, {"to": "alice@example.test", "from": "ceo@example.test", "text": "x"})
none_sent(400, {"to": ["a%d@example.test" % i for i in range(6)], "text": "x"})
e = none_sent(413, {"to": "alice@example.test", "text": "x" * 70000})
assert "max_message_size" in e["error"], e
# a body far over the limit is cut off before it is read
st, resp, data = call("POST", "/api/send", b"{" + b" " * 200000 + b"}", headers={"Content-Type": "application/json"}, auth=B)
assert st == 413 and json.loads(data)["error"], (st, data[:200])
# a cookie session needs its CSRF token to send
st, r, data = call("POST", "/api/login", {"address": "bob@example.test", "password": "hunter2"})
sid = r.getheader("Set-Cookie").split(";")[0]
st, r, data = call("POST", "/api/send", {"to": "alice@example.test", "text": "x"}, headers={"Cookie": sid})
assert st == 403, (st, data)
# with the token and this server's Origin (what the web inbox sends) it goes
st, r, data = call("POST", "/api/login", {"address": "bob@example.test", "password": "hunter2"})
sid, token = r.getheader("Set-Cookie").split(";")[0], json.loads(data)["csrf_token"]
h = {"Cookie": sid, "X-CSRF-Token": token, "Origin": "http://127.0.0.1:%d" % PORT, "Host": "127.0.0.1:%d" % PORT}
r = j("POST", "/api/send", {"to": "alice@example.test", "subject": "by cookie", "text": "x"}, headers=h, want=201)
assert r["delivered_locally"] == 1, r
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
    // Through the same path as SMTP submission: the store holds what the API sent.
    assert_eq!(s.inbox(ALICE.0).len(), 2);
    let _ = (BOB, CAROL);
}

#[test]
fn send_respects_the_recipients_quota() {
    let s = ServerConfig::example()
        .listen(&["smtp", "http"])
        .limits("auth_failure_delay = \"10ms\"")
        .table("http", "admins = [\"alice@example.test\"]")
        .start();
    let out = python(
        &s,
        r#"
A = ("alice@example.test", "secret"); B = ("bob@example.test", "hunter2")
j("PATCH", "/api/accounts/carol@example.test", {"quota": 2000}, auth=A)
e = err("POST", "/api/send", 422, {"to": "carol@example.test", "text": "x" * 3000}, auth=B)
assert "full" in e["error"] and "carol@example.test" in e["error"], e
j("POST", "/api/send", {"to": "carol@example.test", "text": "small"}, auth=B, want=201)
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
}
