//! `GET /metrics` against a real server: real SMTP (MX and submission), POP3 and IMAP
//! sessions with good and failed logins, then the exposition text is parsed line by line and
//! each number must have moved by exactly what was done. Who may read it: loopback clients,
//! `Authorization: Bearer` with `[http] metrics_token`.

mod support;

use std::process::Command;

use support::{ServerConfig, TestServer};

const TOKEN: &str = "0123456789abcdef-metrics";

fn start() -> TestServer {
    ServerConfig::example()
        .listen(&["smtp", "submission", "pop3", "imap", "http"])
        .limits(
            "auth_failure_delay = \"10ms\"\nmax_message_size = 4096\nmax_incoming_memory = 1048576",
        )
        .table("http", &format!("metrics_token = \"{TOKEN}\""))
        .start()
}

/// Python: `scrape()` reads /metrics (checking the content type and the syntax of every
/// line) into {(name, labels): value}; `v(m, name, **labels)`.
const PY_SCRAPE: &str = r##"
import os, re, time, urllib.request
PORT = int(os.environ["HTTP_PORT"])
LINE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
def scrape():
    r = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % PORT, timeout=30)
    ct = r.headers["Content-Type"]
    assert ct.startswith("text/plain; version=0.0.4"), ct
    m, types = {}, {}
    for line in r.read().decode().splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, t = line.split(" ")
            assert t in ("counter", "gauge", "histogram"), line
            types[name] = t
            continue
        mm = LINE.fullmatch(line)
        assert mm, "not a sample line: %r" % line
        labels = tuple(sorted(LABEL.findall(mm.group(2) or "")))
        base = re.sub(r'_(bucket|sum|count)$', '', mm.group(1))
        assert mm.group(1) in types or base in types, "no TYPE for %s" % mm.group(1)
        m[(mm.group(1), labels)] = float(mm.group(3))
    return m
def v(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0.0)
def settled():
    # Sessions end a moment after the client's last reply: wait for the gauges to drop.
    for _ in range(100):
        m = scrape()
        if all(v(m, "mailroom_sessions_active", listener=l) == 0 for l in ("smtp", "submission", "pop3", "imap")):
            return m
        time.sleep(0.05)
    raise AssertionError("sessions still active")
"##;

#[test]
fn metrics_move_by_exactly_what_the_sessions_did() {
    let s = start();
    let out = s.python(&format!(
        "{PY_SCRAPE}\n{}",
        r#"
import base64, imaplib, poplib, smtplib
H = "127.0.0.1"
before = settled()
# MX: one message to two local recipients (accepted), one over the size limit (552).
c = smtplib.SMTP(H, int(os.environ["SMTP_PORT"]))
c.sendmail("x@far.test", ["alice@example.test", "bob@example.test"], "Subject: a\r\n\r\nhello\r\n")
# A SIZE over the limit is refused at MAIL: a refused command, not a message.
try:
    c.sendmail("x@far.test", ["alice@example.test"], "Subject: big\r\n\r\n" + "y" * 5000 + "\r\n")
    raise SystemExit("a message over max_message_size was accepted")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 552, e
# A looping message is refused after its data: 554.
try:
    c.sendmail("x@far.test", ["alice@example.test"], "Received: x\r\n" * 60 + "Subject: loop\r\n\r\nx\r\n")
    raise SystemExit("a looping message was accepted")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 554, e
c.quit()
# Submission: a failed login, then a good one and a message.
c = smtplib.SMTP(H, int(os.environ["SUBMISSION_PORT"]))
c.ehlo()
# One AUTH PLAIN each (smtplib's login() would go on to try LOGIN after a failure).
code, _ = c.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice@example.test\0wrong").decode())
assert code == 535, code
c.user, c.password = "alice@example.test", "secret"
c.auth("PLAIN", c.auth_plain)
c.sendmail("alice@example.test", ["carol@example.test"], "Subject: b\r\n\r\nhi\r\n")
c.quit()
# IMAP: one failed and one good login.
i = imaplib.IMAP4(H, int(os.environ["IMAP_PORT"]))
try:
    i.login("bob@example.test", "nope")
    raise SystemExit("IMAP accepted a wrong password")
except imaplib.IMAP4.error:
    pass
i.login("bob@example.test", "hunter2")
i.logout()
# POP3: one failed and one good login.
p = poplib.POP3(H, int(os.environ["POP3_PORT"]))
p.user("carol@example.test")
try:
    p.pass_("nope")
    raise SystemExit("POP3 accepted a wrong password")
except poplib.error_proto:
    pass
p.quit()
p = poplib.POP3(H, int(os.environ["POP3_PORT"]))
p.user("carol@example.test")
p.pass_("carolpw")
p.quit()
after = settled()
def d(name, **labels):
    return v(after, name, **labels) - v(before, name, **labels)
want = {
    ("mailroom_connections_total", "smtp"): 1,
    ("mailroom_connections_total", "submission"): 1,
    ("mailroom_connections_total", "imap"): 1,
    ("mailroom_connections_total", "pop3"): 2,
}
for (name, l), n in want.items():
    assert d(name, listener=l) == n, (name, l, d(name, listener=l))
for l in ("smtp", "submission", "pop3", "imap"):
    assert d("mailroom_connections_refused_total", listener=l) == 0
msgs = {("smtp", "2xx"): 1, ("smtp", "5xx"): 1, ("smtp", "4xx"): 0,
        ("submission", "2xx"): 1, ("submission", "4xx"): 0, ("submission", "5xx"): 0}
for (l, cl), n in msgs.items():
    got = d("mailroom_smtp_messages_total", listener=l, **{"class": cl})
    assert got == n, (l, cl, got)
logins = {"smtp": (0, 0), "submission": (1, 1), "imap": (1, 1), "pop3": (1, 1)}
for l, (ok, bad) in logins.items():
    assert d("mailroom_logins_total", listener=l, result="success") == ok, l
    assert d("mailroom_logins_total", listener=l, result="failure") == bad, l
assert d("mailroom_local_deliveries_total") == 3, d("mailroom_local_deliveries_total")
assert v(after, "mailroom_queue_recipients") == 0
assert v(after, "mailroom_queue_oldest_age_seconds") == 0
# Two deliveries (and the logins' nothing): at least two group commits more.
assert d("mailroom_store_commit_seconds_count") >= 2
assert d("mailroom_store_commit_batch_size_count") == d("mailroom_store_commit_seconds_count")
for h in ("mailroom_store_commit_seconds", "mailroom_store_commit_batch_size"):
    buckets = sorted((float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"]), val)
                     for k, val in after.items() if k[0] == h + "_bucket")
    counts = [c for _, c in buckets]
    assert counts == sorted(counts), (h, buckets)
    assert buckets[-1][0] == float("inf") and counts[-1] == v(after, h + "_count"), (h, buckets)
print("ok", d("mailroom_store_commit_seconds_count"))
"#
    ));
    assert!(out.starts_with("ok"), "{out}");
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

#[test]
fn loopback_clients_read_metrics_and_a_wrong_bearer_token_is_refused() {
    let s = start();
    let url = format!("http://{}/metrics", s.addr("http"));
    let (code, body) = curl(&[&url]);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("# TYPE mailroom_connections_total counter"),
        "{body}"
    );
    // An HTTP session is running: this one.
    assert!(
        body.contains("mailroom_sessions_active{listener=\"http\"} 1\n"),
        "{body}"
    );
    let (code, body) = curl(&["-H", &format!("Authorization: Bearer {TOKEN}"), &url]);
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&["-H", "Authorization: Bearer not-the-token-at-all", &url]);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("\"error\"") && body.contains("metrics_token"),
        "{body}"
    );
}

#[test]
fn a_short_metrics_token_is_refused_naming_the_key() {
    let err = support::cli::serve_refuses(
        "data_dir = \"{data}\"\n[listen]\nhttp = \"127.0.0.1:0\"\n[http]\nmetrics_token = \"short\"\n",
    );
    assert!(err.contains("http.metrics_token"), "{err}");
}
