//! The HTTP API (docs/API.md) against a real server, with Python's http.client and curl: log
//! in (cookie and CSRF, Basic), mail sent by SMTP seen in the API, IMAP SEARCH keys, parts,
//! flags, move, delete; and like an attacker: another account's mailboxes and ids, traversal
//! in part sections, a stale cookie after the account is removed, CSRF without the token or
//! from a foreign Origin, bad input; a login session that outlives a restart.

mod support;

use std::process::Command;

use support::http::python;
use support::imap::msg;
use support::{ServerConfig, TestServer, ALICE, BOB};

fn start() -> TestServer {
    ServerConfig::example()
        .listen(&["smtp", "imap", "http"])
        .limits("auth_failure_delay = \"10ms\"")
        .table("http", "admins = [\"alice@example.test\"]")
        .start()
}

fn curl(args: &[&str]) -> (u32, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_string())
}

const MULTIPART: &str = "From: <bob@example.test>\r\nTo: <alice@example.test>\r\nSubject: report\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 report attached\r\n--b1\r\nContent-Type: application/octet-stream; name=\"../../etc/passwd\"\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECA3x+\r\n--b1--\r\n";

#[test]
fn messages_sent_by_smtp_are_listed_searched_read_moved_and_deleted() {
    let s = start();
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "hello", "first body"),
    );
    s.deliver(BOB.0, &[ALICE.0], MULTIPART);
    let out = python(
        &s,
        r#"
A = ("alice@example.test", "secret")
# health, and unauthenticated refusals
st, r, data = call("GET", "/healthz"); assert st == 200 and data == b"ok\n", (st, data)
err("GET", "/api/mailboxes", 401)
err("GET", "/api/nothing", 404, auth=A)
err("GET", "/api/mailboxes", 401, auth=("alice@example.test", "wrong"))
# Basic auth: mailboxes
boxes = j("GET", "/api/mailboxes", auth=A)
inbox = [b for b in boxes if b["name"] == "INBOX"][0]
assert inbox["messages"] == 2 and inbox["unseen"] == 2, boxes
assert any(b["name"] == "Archive" for b in boxes)
# list: newest first
l = j("GET", "/api/mailboxes/INBOX/messages", auth=A)
assert l["total"] == 2 and [m["subject"] for m in l["messages"]] == ["report", "hello"], l
rep, hello = l["messages"]
assert rep["id"] == "%d.%d" % (inbox["uidvalidity"], rep["uid"]), rep
assert rep["from"][0]["address"] == "bob@example.test"
# paging
l = j("GET", "/api/mailboxes/INBOX/messages?offset=1&limit=1", auth=A)
assert [m["subject"] for m in l["messages"]] == ["hello"] and l["total"] == 2, l
err("GET", "/api/mailboxes/INBOX/messages?limit=100000", 400, auth=A)
err("GET", "/api/mailboxes/INBOX/messages?offset=-1", 400, auth=A)
# search: IMAP SEARCH keys
q = lambda k: [m["subject"] for m in j("GET", "/api/mailboxes/INBOX/messages?search=" + k, auth=A)["messages"]]
assert q("SUBJECT%20hello") == ["hello"], q("SUBJECT%20hello")
assert q("BODY%20%22caf%C3%A9%22") == ["report"], q("BODY%20%22caf%C3%A9%22")
# the IMAP grammar: text beyond ASCII is a quoted string, and the error says so
e = err("GET", "/api/mailboxes/INBOX/messages?search=BODY%20caf%C3%A9", 400, auth=A)
assert "quoted string" in e["error"], e
assert q("OR%20SUBJECT%20hello%20SUBJECT%20report") == ["report", "hello"]
assert q("NOT%20FROM%20bob") == []
assert q("SENTBEFORE%202-Jan-2024") == ["hello"]
e = err("GET", "/api/mailboxes/INBOX/messages?search=FROMM%20x", 400, auth=A)
assert "SEARCH" in e["error"], e
err("GET", "/api/mailboxes/INBOX/messages?search=RETURN%20(ALL)%20ALL", 400, auth=A)
err("GET", "/api/mailboxes/Nope/messages", 404, auth=A)
# one message
m = j("GET", "/api/messages/INBOX/" + rep["id"], auth=A)
assert m["subject"] == "report" and "Café report attached" in m["text"], m
assert m["attachments"][0]["size"] == 6, m["attachments"]
assert [p["section"] for p in m["mime"]["parts"]] == ["1", "2"], m["mime"]
assert m["mime"]["content_type"] == "multipart/mixed"
assert any(h[0] == "Subject" and h[1] == "report" for h in m["headers"]), m["headers"]
# raw
st, r, data = call("GET", "/api/messages/INBOX/%s/raw" % hello["id"], auth=A)
assert st == 200 and r.getheader("Content-Type") == "message/rfc822" and b"first body" in data
# parts: decoded, served as an attachment with a safe name
st, r, data = call("GET", "/api/messages/INBOX/%s/parts/2" % rep["id"], auth=A)
assert st == 200 and data == bytes([0, 1, 2, 3, 0x7c, 0x7e]), (st, data)
assert r.getheader("Content-Type") == "application/octet-stream"
cd = r.getheader("Content-Disposition")
assert cd.startswith("attachment;") and "/" not in cd, cd
assert r.getheader("X-Content-Type-Options") == "nosniff"
st, r, data = call("GET", "/api/messages/INBOX/%s/parts/1" % rep["id"], auth=A)
assert st == 200 and data == "Café report attached".encode(), data
assert r.getheader("Content-Type") == "text/plain; charset=utf-8", r.getheader("Content-Type")
for bad in ["0", "1.a", "..", "1..2", "-1", "99999999999", "%2e%2e%2f1", "1%2F2"]:
    err("GET", "/api/messages/INBOX/%s/parts/%s" % (rep["id"], bad), 400, auth=A)
err("GET", "/api/messages/INBOX/%s/parts/3" % rep["id"], 404, auth=A)
err("GET", "/api/messages/INBOX/%s/parts/1.2" % rep["id"], 404, auth=A)
# ids: malformed, wrong UIDVALIDITY, unknown UID
for bad in ["7", "x.1", "1.0", "1.2.3", "..", "-1.1"]:
    err("GET", "/api/messages/INBOX/" + bad, 400, auth=A)
err("GET", "/api/messages/INBOX/%d.%d" % (inbox["uidvalidity"] + 1, rep["uid"]), 404, auth=A)
err("GET", "/api/messages/INBOX/%d.999" % inbox["uidvalidity"], 404, auth=A)
# flags
f = j("PATCH", "/api/messages/INBOX/" + hello["id"], {"seen": True, "flagged": True}, auth=A)
assert "\\Seen" in f["flags"] and "\\Flagged" in f["flags"], f
f = j("PATCH", "/api/messages/INBOX/" + hello["id"], {"flagged": False}, auth=A)
assert f["flags"] == ["\\Seen"], f
err("PATCH", "/api/messages/INBOX/" + hello["id"], 400, {"sen": True}, auth=A)
err("PATCH", "/api/messages/INBOX/" + hello["id"], 400, "not json", auth=A)
assert q("SEEN") == ["hello"] and q("UNSEEN") == ["report"]
# move
mv = j("POST", "/api/messages/INBOX/%s/move" % hello["id"], {"to": "Archive"}, auth=A)
assert mv["mailbox"] == "Archive", mv
err("GET", "/api/messages/INBOX/" + hello["id"], 404, auth=A)
assert j("GET", "/api/messages/Archive/" + mv["id"], auth=A)["subject"] == "hello"
err("POST", "/api/messages/Archive/%s/move" % mv["id"], 404, {"to": "Nope"}, auth=A)
err("POST", "/api/messages/Archive/%s/move" % mv["id"], 400, {"to": "Archive"}, auth=A)
# delete
st, r, data = call("DELETE", "/api/messages/Archive/" + mv["id"], auth=A)
assert st == 204, (st, data)
err("DELETE", "/api/messages/Archive/" + mv["id"], 404, auth=A)
err("PUT", "/api/messages/INBOX/" + rep["id"], 405, auth=A)
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
    // What the API changed is what IMAP sees: INBOX holds only the report now.
    assert_eq!(s.inbox(ALICE.0).len(), 1);
}

#[test]
fn cookie_sessions_need_the_csrf_token_and_a_same_origin() {
    let s = start();
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "hello", "first body"),
    );
    python(
        &s,
        r#"
st, r, data = call("POST", "/api/login", {"address": "alice@example.test", "password": "secret"})
assert st == 200, (st, data)
login = json.loads(data)
assert login["admin"] is True and len(login["csrf_token"]) == 64, login
cookie = r.getheader("Set-Cookie")
for part in ["mailroom_session=", "HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/"]:
    assert part in cookie, cookie
assert "Secure" not in cookie  # plain HTTP
sid = cookie.split(";")[0]
assert len(sid.split("=")[1]) == 64
C = {"Cookie": sid}
me = j("GET", "/api/me", headers=C)
assert me == {"address": "alice@example.test", "admin": True}, me
mid = j("GET", "/api/mailboxes/INBOX/messages", headers=C)["messages"][0]["id"]
origin = "http://127.0.0.1:%d" % PORT
good = dict(C, **{"X-CSRF-Token": login["csrf_token"], "Origin": origin, "Host": "127.0.0.1:%d" % PORT})
# a change without the token, with a wrong one, from a foreign origin, without any origin
err("PATCH", "/api/messages/INBOX/" + mid, 403, {"seen": True}, headers=dict(C, Origin=origin))
err("PATCH", "/api/messages/INBOX/" + mid, 403, {"seen": True}, headers=dict(good, **{"X-CSRF-Token": "0" * 64}))
err("PATCH", "/api/messages/INBOX/" + mid, 403, {"seen": True}, headers=dict(good, Origin="http://evil.example"))
nohost = dict(good); del nohost["Origin"]
err("PATCH", "/api/messages/INBOX/" + mid, 403, {"seen": True}, headers=nohost)
assert j("GET", "/api/mailboxes/INBOX/messages", headers=C)["messages"][0]["flags"] == []
# with both: done; a Referer of this host does as well as an Origin
j("PATCH", "/api/messages/INBOX/" + mid, {"seen": True}, headers=good)
ref = dict(nohost, Referer=origin + "/inbox")
j("PATCH", "/api/messages/INBOX/" + mid, {"flagged": True}, headers=ref)
# another login gets another session and token
st, r2, data = call("POST", "/api/login", {"address": "alice", "password": "secret"})
assert st == 200 and json.loads(data)["csrf_token"] != login["csrf_token"]
# logout needs the token too, then the cookie is dead
err("POST", "/api/logout", 403, headers=C)
j("POST", "/api/logout", headers=good)
err("GET", "/api/me", 401, headers=C)
err("GET", "/api/me", 401, headers={"Cookie": "mailroom_session=" + "ab" * 32})
# bad logins
err("POST", "/api/login", 401, {"address": "alice@example.test", "password": "nope"})
err("POST", "/api/login", 401, {"address": "nobody@example.test", "password": "nope"})
err("POST", "/api/login", 400, {"address": "alice@example.test"})
err("POST", "/api/login", 400, "{")
err("POST", "/api/login", 400, {"address": "a" * 5000, "password": "x"})
err("POST", "/api/login", 413, {"address": "a" * 2000000, "password": "x"})
err("GET", "/api/mailboxes/%ff/messages", 400, auth=("alice@example.test", "secret"))
# bob is no admin
st, r, data = call("POST", "/api/login", {"address": "bob@example.test", "password": "hunter2"})
assert json.loads(data)["admin"] is False
print("ok")
"#,
    );
    // The failed logins are in the log like any protocol's.
    s.wait_for_log("authentication failed");
    assert!(s.log_text().contains("proto=\"http\"") || s.log_text().contains("proto=http"));
}

#[test]
fn nothing_of_one_account_is_reachable_from_another() {
    let s = start();
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "alice-secret", "ALICEBODY"),
    );
    s.deliver(
        ALICE.0,
        &[BOB.0],
        &msg(ALICE.0, BOB.0, "bob-own", "BOBBODY"),
    );
    let out = python(
        &s,
        r#"
A = ("alice@example.test", "secret"); B = ("bob@example.test", "hunter2")
am = j("GET", "/api/mailboxes/INBOX/messages", auth=A)["messages"][0]
bm = j("GET", "/api/mailboxes/INBOX/messages", auth=B)["messages"][0]
assert am["subject"] == "alice-secret" and bm["subject"] == "bob-own"
seen = b""
# bob tries alice's id in every endpoint, and mailbox names that are not his
paths = ["/api/messages/INBOX/" + am["id"], "/api/messages/INBOX/%s/raw" % am["id"],
         "/api/messages/INBOX/%s/parts/1" % am["id"],
         "/api/mailboxes/alice@example.test/messages", "/api/mailboxes/..%2Falice/messages",
         "/api/mailboxes/INBOX/messages?search=ALL", "/api/mailboxes"]
for p in paths:
    st, r, data = call("GET", p, auth=B)
    seen += data
    assert st in (200, 400, 404), (p, st)
for m, p, b in [("DELETE", "/api/messages/INBOX/" + am["id"], None),
                ("PATCH", "/api/messages/INBOX/" + am["id"], {"seen": True}),
                ("POST", "/api/messages/INBOX/%s/move" % am["id"], {"to": "Trash"})]:
    st, r, data = call(m, p, b, auth=B)
    seen += data
assert b"ALICEBODY" not in seen and b"alice-secret" not in seen, seen
# alice's message is untouched
a = j("GET", "/api/messages/INBOX/" + am["id"], auth=A)
assert a["flags"] == [] and "ALICEBODY" in a["text"], a
print("ok")
"#,
    );
    assert!(out.contains("ok"));
}

#[test]
fn a_cookie_dies_with_its_account_and_curl_drives_the_api() {
    let s = start();
    let add = s.cli(&["user", "add", "dave@example.test"], "davepw\n");
    assert!(add.status.success(), "{add:?}");
    let base = format!("http://{}", s.addr("http"));
    let jar = s.data_dir().join("../cookies.txt");
    let jar = jar.to_str().expect("utf-8");
    let (code, body) = curl(&[
        "-c",
        jar,
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"address":"dave@example.test","password":"davepw"}"#,
        &format!("{base}/api/login"),
    ]);
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&["-b", jar, &format!("{base}/api/mailboxes")]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"INBOX\""), "{body}");
    let rm = s.cli(&["user", "remove", "dave@example.test"], "");
    assert!(rm.status.success(), "{rm:?}");
    let (code, body) = curl(&["-b", jar, &format!("{base}/api/mailboxes")]);
    assert_eq!(
        code, 401,
        "a removed account's cookie must not work: {body}"
    );
    assert!(body.contains("\"error\""), "{body}");
    // curl -u: Basic
    let (code, _) = curl(&[
        "-u",
        &format!("{}:{}", ALICE.0, ALICE.1),
        &format!("{base}/api/me"),
    ]);
    assert_eq!(code, 200);
    let (code, body) = curl(&["-H", "Authorization: Bearer x", &format!("{base}/api/me")]);
    assert_eq!(code, 401, "{body}");
}

#[test]
fn https_sets_secure_cookies_and_passwords_stay_off_plain_http_when_tls_is_required() {
    let s = ServerConfig::example()
        .listen(&["smtp", "http", "https"])
        .top("auth_require_tls = true")
        .limits("auth_failure_delay = \"10ms\"")
        .start();
    let login = r#"{"address":"alice@example.test","password":"secret"}"#;
    let plain = format!("http://{}/api/login", s.addr("http"));
    let (code, body) = curl(&["-H", "Content-Type: application/json", "-d", login, &plain]);
    assert_eq!(code, 403, "a password in clear must be refused: {body}");
    assert!(body.contains("TLS"), "{body}");
    let (code, body) = curl(&[
        "-u",
        "alice@example.test:secret",
        &format!("http://{}/api/me", s.addr("http")),
    ]);
    assert_eq!(code, 403, "{body}");
    let secure = format!("https://{}/api/login", s.addr("https"));
    let out = Command::new("curl")
        .args(["-s", "-k", "-i", "--max-time", "30"])
        .args(["-H", "Content-Type: application/json", "-d", login, &secure])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {text}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    // Basic over TLS.
    let (code, _) = curl(&[
        "-k",
        "-u",
        "alice@example.test:secret",
        &format!("https://{}/api/me", s.addr("https")),
    ]);
    assert_eq!(code, 200);
}

#[test]
fn events_report_a_delivery_a_flag_change_and_an_expunge() {
    let s = start();
    let smtp = s.smtp();
    let out = python(
        &s,
        &format!(
            r#"
import smtplib, threading, time
A = ("alice@example.test", "secret")
c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
c.request("GET", "/api/events", headers={{"Authorization": "Basic " + base64.b64encode(b"alice@example.test:secret").decode()}})
r = c.getresponse()
assert r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream"), (r.status, r.getheaders())
def stream(user):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    c.request("GET", "/api/events", headers={{"Authorization": "Basic " + base64.b64encode(user.encode()).decode()}})
    return c, c.getresponse()
bc, br = stream("bob@example.test:hunter2")
def next_event(r=r):
    kind, data = None, None
    while True:
        line = r.fp.readline().decode().rstrip("\r\n")
        if line.startswith("event:"): kind = line[6:].strip()
        elif line.startswith("data:"): data = json.loads(line[5:].strip())
        elif line == "" and kind: return kind, data
assert next_event()[0] == "ready"
t0 = time.time()
with smtplib.SMTP("127.0.0.1", {port}) as m:
    m.sendmail("bob@example.test", ["alice@example.test"], "Subject: live\r\n\r\nhi\r\n")
kind, data = next_event()
assert kind == "message" and data["mailbox"] == "INBOX", (kind, data)
print("latency %.3f" % (time.time() - t0))
j("PATCH", "/api/messages/INBOX/" + data["id"], {{"seen": True}}, auth=A)
kind, d2 = next_event()
assert kind == "flags" and d2["flags"] == ["\\Seen"] and d2["id"] == data["id"], (kind, d2)
st, _, _ = call("DELETE", "/api/messages/INBOX/" + data["id"], auth=A)
assert st == 204
kind, d3 = next_event()
assert kind == "expunge" and d3["id"] == data["id"], (kind, d3)
# bob's stream saw none of it
assert next_event(br)[0] == "ready"
bc.sock.settimeout(1.5)
try:
    ev = next_event(br)
    raise AssertionError("bob got an event of alice's mailbox: %r" % (ev,))
except (TimeoutError, OSError):
    pass
print("ok")
"#,
            port = smtp.port()
        ),
    );
    assert!(out.contains("ok"), "{out}");
    eprintln!("{out}");
}

#[test]
fn shutdown_ends_an_open_event_stream_and_exits_promptly() {
    use std::io::{BufRead, BufReader, Write};
    let mut s = start();
    let mut c = std::net::TcpStream::connect(s.addr("http")).expect("connect");
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let auth = support::b64(&format!("{}:{}", ALICE.0, ALICE.1));
    write!(
        c,
        "GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\r\n"
    )
    .expect("write");
    let mut r = BufReader::new(c.try_clone().expect("clone"));
    let mut line = String::new();
    while !line.starts_with("event: ready") {
        line.clear();
        assert!(
            r.read_line(&mut line).expect("read") > 0,
            "stream closed early"
        );
    }
    let t0 = std::time::Instant::now();
    assert!(
        s.terminate(),
        "the server must exit cleanly with a stream open"
    );
    let took = t0.elapsed();
    // Well under the shutdown grace (10 s): the stream ended at once.
    assert!(
        took < std::time::Duration::from_secs(5),
        "shutdown took {took:?}"
    );
}

/// Login sessions are kept in the store: a restart (here a SIGKILL) logs nobody out, and a
/// logout still ends the session afterwards.
#[test]
fn a_login_session_outlives_a_restart() {
    let mut s = start();
    let login = python(
        &s,
        r#"
st, r, data = call("POST", "/api/login", {"address": "alice@example.test", "password": "secret"})
assert st == 200, (st, data)
print(r.getheader("Set-Cookie").split(";")[0])
print(json.loads(data)["csrf_token"])
"#,
    );
    let mut lines = login.lines();
    let (cookie, csrf) = (
        lines.next().expect("cookie").to_string(),
        lines.next().expect("csrf token").to_string(),
    );
    assert!(cookie.starts_with("mailroom_session="), "{cookie}");
    s.restart();
    let script = format!(
        r#"
C = {{"Cookie": "{cookie}"}}
me = j("GET", "/api/me", headers=C)
assert me["address"] == "alice@example.test", me
origin = "http://127.0.0.1:%d" % PORT
j("POST", "/api/logout", headers=dict(C, **{{"X-CSRF-Token": "{csrf}", "Origin": origin}}))
err("GET", "/api/me", 401, headers=C)
print("ok")
"#
    );
    assert_eq!(python(&s, &script).trim(), "ok");
}
