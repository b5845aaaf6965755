//! The lab as students meet it (issue 16): the real server driven as a student drives it, by
//! raw lines over a TCP socket (as telnet or netcat would send them) and by Python's smtplib.
//! A message typed with no header lines, control characters in the trace, VRFY and EXPN,
//! capturing the server-to-server hop in clear, and short user names.

mod common;

use common::{Client, TestServer};

/// The session trace escapes every control character: a CR (what telnet sends as CR NUL when
/// a CR is typed before the line end) can no longer hide the line it is on.
#[test]
fn trace_escapes_control_characters() {
    let s = TestServer::start_with("", &["--trace"]);
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    c.send_raw(b"EHLO x\r\0\r\n");
    let r = c.reply();
    assert_eq!(r.code, 501, "{r:?}");
    c.send_raw(b"NOOP \x1b[2J\x07\r\n");
    c.expect_code(250);
    c.cmd("QUIT", 221);
    s.wait_for(10, "the traced QUIT", || s.log_text().contains("C: QUIT"));
    let log = s.log_text();
    assert!(log.contains("C: EHLO x\\x0d\\x00"), "{log}");
    assert!(log.contains("C: NOOP \\x1b[2J\\x07"), "{log}");
    for line in log.lines().filter(|l| l.contains("[smtp ")) {
        assert!(
            !line.chars().any(|ch| ch.is_control()),
            "a control character in the trace: {line:?}"
        );
    }
}

/// A server with SMTP, submission, POP3 and IMAP on ephemeral ports; `extra` is appended.
fn start_full(extra: &str) -> TestServer {
    TestServer::start_raw(&format!(
        r#"hostname = "mx.example.test"
data_dir = "{{data}}"
domains = ["example.test"]

[listen]
smtp = "127.0.0.1:0"
submission = "127.0.0.1:0"
pop3 = "127.0.0.1:0"
imap = "127.0.0.1:0"

[[accounts]]
address = "alice@example.test"
password = "secret"

[[accounts]]
address = "bob@example.test"
password = "hunter2"

{extra}
"#
    ))
}

/// Item 1: `DATA`, `Dit is de body.`, `.` typed at telnet on the MX. Every reader sees the
/// text as the body: IMAP BODY[TEXT], POP3 TOP 0 (the header section alone), and Python's
/// email package.
#[test]
fn a_message_typed_without_headers_keeps_its_body() {
    let s = start_full("");
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    c.cmd("HELO pc1", 250);
    c.cmd("MAIL FROM:<student@pc1.test>", 250);
    c.cmd("RCPT TO:<bob@example.test>", 250);
    c.cmd("DATA", 354);
    c.send("Dit is de body.");
    c.cmd(".", 250);
    c.cmd("QUIT", 221);

    let stored = s.inbox("bob@example.test");
    assert_eq!(stored.len(), 1);
    let text = String::from_utf8_lossy(&stored[0]).into_owned();
    assert!(text.ends_with("\r\n\r\nDit is de body.\r\n"), "{text:?}");

    // POP3 TOP 1 0: the header section and the empty line, none of the student's text.
    let mut p = Client::connect(s.pop3());
    assert!(p.line().unwrap_or_default().starts_with("+OK"));
    for l in ["USER bob@example.test", "PASS hunter2", "TOP 1 0"] {
        p.send(l);
        let r = p.line().unwrap_or_default();
        assert!(r.starts_with("+OK"), "{l}: {r}");
    }
    let mut top = Vec::new();
    loop {
        let l = p.line().expect("TOP lines");
        if l == "." {
            break;
        }
        top.push(l);
    }
    assert_eq!(top.last().map(String::as_str), Some(""), "{top:?}");
    assert!(!top.iter().any(|l| l.contains("Dit is")), "{top:?}");

    let out = s.python(
        r#"
import os, imaplib, email
M = imaplib.IMAP4(os.environ["HOST"], int(os.environ["IMAP_PORT"]))
M.login("bob@example.test", "hunter2")
M.select("INBOX")
typ, data = M.fetch("1", "(BODY.PEEK[TEXT])")
assert typ == "OK", data
print("TEXT", repr(data[0][1]))
typ, data = M.fetch("1", "(RFC822)")
msg = email.message_from_bytes(data[0][1])
print("PAYLOAD", repr(msg.get_payload()))
print("DEFECTS", len(msg.defects))
M.logout()
"#,
    );
    assert!(out.contains("TEXT b'Dit is de body.\\r\\n'"), "{out}");
    assert!(out.contains("PAYLOAD 'Dit is de body.\\r\\n'"), "{out}");
    assert!(out.contains("DEFECTS 0"), "{out}");
}

/// Item 1 on submission, with smtplib as a lab program would send it: a body and no header
/// lines. The stored message gets Date, Message-ID and From (the authenticated sender) and
/// the empty line; a message with its own headers is stored byte-exact behind the prefix.
#[test]
fn submission_completes_a_message_without_headers() {
    let s = start_full("");
    s.python(
        r#"
import os, smtplib
c = smtplib.SMTP(os.environ["HOST"], int(os.environ["SUBMISSION_PORT"]))
c.login("alice@example.test", "secret")
c.sendmail("alice@example.test", ["bob@example.test"], "Dit is de body.\r\n")
c.sendmail("alice@example.test", ["bob@example.test"], "Subject: own\r\nX-Kept:  as  typed \r\n\r\nbody\r\n")
c.quit()
"#,
    );
    let stored = s.inbox("bob@example.test");
    assert_eq!(stored.len(), 2);
    let first = String::from_utf8_lossy(&stored[0]).into_owned();
    let (headers, body) = first.split_once("\r\n\r\n").expect("an empty line");
    assert_eq!(body, "Dit is de body.\r\n");
    for field in ["\r\nDate: ", "\r\nMessage-ID: <", "\r\nFrom: <alice@example.test>"] {
        assert!(headers.contains(field), "{field:?} missing: {headers}");
    }
    let own = b"Subject: own\r\nX-Kept:  as  typed \r\n\r\nbody\r\n";
    assert!(stored[1].ends_with(own), "{}", String::from_utf8_lossy(&stored[1]));
    let second = String::from_utf8_lossy(&stored[1]).into_owned();
    assert!(second.contains("\r\nFrom: <alice@example.test>\r\nSubject: own"), "{second}");
}

/// Item 7: short user names with no `domains` in the config (as the embedded default has
/// none): POP3 `USER alice`, IMAP `LOGIN alice`, SMTP AUTH PLAIN with `alice` (smtplib). Once
/// a second alice exists in another domain, the logins fail and SMTP and POP3 say to use the
/// full address.
#[test]
fn short_user_names_work_when_they_name_one_account() {
    let s = TestServer::start_raw(
        r#"hostname = "mx.example.test"
data_dir = "{data}"

[listen]
smtp = "127.0.0.1:0"
submission = "127.0.0.1:0"
pop3 = "127.0.0.1:0"
imap = "127.0.0.1:0"

[[accounts]]
address = "alice@example.test"
password = "secret"

[[accounts]]
address = "bob@example.test"
password = "hunter2"
"#,
    );
    let pop3_login = |user: &str, pass: &str| -> String {
        let mut p = Client::connect(s.pop3());
        assert!(p.line().unwrap_or_default().starts_with("+OK"));
        p.send(&format!("USER {user}"));
        assert!(p.line().unwrap_or_default().starts_with("+OK"));
        p.send(&format!("PASS {pass}"));
        let r = p.line().unwrap_or_default();
        p.send("QUIT");
        let _ = p.line();
        r
    };
    assert_eq!(
        pop3_login("alice", "secret"),
        "+OK alice@example.test has 0 messages (0 octets)"
    );
    let out = s.python(
        r#"
import os, smtplib, imaplib
c = smtplib.SMTP(os.environ["HOST"], int(os.environ["SUBMISSION_PORT"]))
print("SMTP", c.login("alice", "secret"))
c.sendmail("alice@example.test", ["bob@example.test"], "Subject: short\r\n\r\nhi\r\n")
c.quit()
M = imaplib.IMAP4(os.environ["HOST"], int(os.environ["IMAP_PORT"]))
print("IMAP", M.login("bob", "hunter2")[0])
M.select("INBOX")
print("COUNT", len(M.search(None, "ALL")[1][0].split()))
M.logout()
"#,
    );
    assert!(out.contains("SMTP (235"), "{out}");
    assert!(out.contains("IMAP OK"), "{out}");
    assert!(out.contains("COUNT 1"), "{out}");

    // A second alice, added while the server runs.
    let added = s.cli(&["user", "add", "alice@school.test"], "other\n");
    assert!(added.status.success(), "{added:?}");
    let r = pop3_login("alice", "secret");
    assert!(
        r.starts_with("-ERR [AUTH] the user name alice is not unique here")
            && r.contains("full address"),
        "{r}"
    );
    let mut c = Client::connect(s.submission());
    c.expect_code(220);
    c.cmd("EHLO pc1", 250);
    let r = c.cmd(&format!("AUTH PLAIN {}", common::b64("\0alice\0secret")), 535);
    assert!(r.text().contains("log in with your full address"), "{r:?}");
    c.cmd(
        &format!("AUTH PLAIN {}", common::b64("\0alice@example.test\0secret")),
        235,
    );
    let out = s.python(
        r#"
import os, imaplib
M = imaplib.IMAP4(os.environ["HOST"], int(os.environ["IMAP_PORT"]))
try:
    M.login("alice", "secret")
    print("LOGGED IN")
except imaplib.IMAP4.error as e:
    print("NO", e)
print("FULL", M.login("alice@school.test", "other")[0])
"#,
    );
    assert!(out.contains("NO ") && out.contains("FULL OK"), "{out}");
    assert_eq!(
        pop3_login("alice@school.test", "other"),
        "+OK alice@school.test has 0 messages (0 octets)"
    );
}
