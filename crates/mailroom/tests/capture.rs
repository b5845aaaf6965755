//! Capture mode (`mailroom serve --capture`, `[capture]`) with the clients an application
//! test suite would use: Python's smtplib and swaks send to any address at any domain with any
//! AUTH; each recipient's mail lands in its own INBOX (read over POP3, IMAP and the API with
//! the capture password); nothing enters the queue. Fault injection: rate 1 on RCPT refuses
//! every RCPT with the configured code and text, rate 0 none, a DATA fault stores nothing; bad
//! fault settings and a public listener are refused naming the key.

mod support;

use std::process::Command;

use support::pop3::Pop;
use support::{ServerConfig, TestServer};

fn capture_server(extra: &str) -> TestServer {
    ServerConfig::host("capture.test")
        .listen(&["smtp", "submission", "pop3", "imap", "http"])
        .limits("auth_failure_delay = \"10ms\"")
        .extra(extra)
        .serve_args(&["--capture"])
        .start()
}

#[test]
fn mail_to_anyone_anywhere_lands_in_that_recipients_inbox_and_nothing_is_queued() {
    let s = capture_server("");
    // Logged as the listeners start (a loaded machine may accept connections first).
    s.wait_for_log("capture mode is on");
    // Submission with made-up credentials and a sender that is nobody's; two recipients at
    // two domains that exist nowhere.
    s.python(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SUBMISSION_PORT"]))
c.login("whoever", "any password at all")
c.sendmail("app@my-service.example", ["anyone@anywhere.example", "Second@Else.example"],
           "From: app@my-service.example\r\nSubject: welcome\r\n\r\nHello from the app\r\n")
c.quit()
# The MX listener, without AUTH.
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]))
c.sendmail("", ["anyone@anywhere.example"], "Subject: second\r\n\r\nagain\r\n")
c.quit()
"#,
    );
    // swaks, with AUTH LOGIN.
    let out = Command::new("swaks")
        .args([
            "--server",
            &s.submission().to_string(),
            "--to",
            "third@swaks.example",
            "--from",
            "tester@swaks.example",
            "--auth",
            "LOGIN",
            "--auth-user",
            "someone",
            "--auth-password",
            "pw",
            "--header",
            "Subject: from swaks",
        ])
        .output()
        .expect("run swaks");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("235 2.7.0"), "{text}");

    let mut p = Pop::login(s.pop3(), "anyone@anywhere.example", "capture");
    let (_, list) = p.list("LIST");
    assert_eq!(list.len(), 2, "{list:?}");
    p.ok("QUIT");
    let inbox = s.inbox("anyone@anywhere.example");
    assert!(String::from_utf8_lossy(&inbox[0]).contains("Subject: welcome"));
    assert!(String::from_utf8_lossy(&inbox[1]).contains("Subject: second"));
    let second = s.inbox("second@else.example");
    assert_eq!(second.len(), 1);
    let third = s.inbox("third@swaks.example");
    assert_eq!(third.len(), 1);
    assert!(String::from_utf8_lossy(&third[0]).contains("Subject: from swaks"));
    // IMAP and the API read them with the capture password.
    let mut imap = support::imap::Imap::login(s.imap(), ("second@else.example", "capture"));
    let untagged = imap.ok("SELECT INBOX");
    assert!(untagged.iter().any(|l| l == "* 1 EXISTS"), "{untagged:?}");
    drop(imap);
    let out = Command::new("curl")
        .args([
            "-s",
            "-u",
            "third@swaks.example:capture",
            &format!("http://{}/api/mailboxes/INBOX/messages", s.addr("http")),
        ])
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("from swaks"), "{body}");
    // Relayed nothing.
    assert!(s.queue().is_empty(), "{:?}", s.queue());
    // The AUTH was logged as what it was.
    assert!(
        s.log_text()
            .contains("capture mode: AUTH accepted without a password check"),
        "{}",
        s.log_text()
    );
}

/// (code of each of `n` RCPTs, code of a DATA) on `s`'s MX listener.
fn rcpt_codes(s: &TestServer, n: usize) -> String {
    s.python(&format!(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]))
c.ehlo("t")
c.mail("a@b.example")
out = []
for i in range({n}):
    code, msg = c.rcpt("r%d@x.example" % i)
    out.append("%d %s" % (code, msg.decode()))
print("\n".join(out))
"#
    ))
}

#[test]
fn a_rcpt_fault_at_rate_one_refuses_every_rcpt_and_at_rate_zero_none() {
    let s = capture_server(
        "[capture.faults]\nseed = 7\nrcpt = { rate = 1.0, code = 451, text = \"Injected: try again\" }\n",
    );
    let out = rcpt_codes(&s, 30);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 30);
    for l in &lines {
        assert_eq!(*l, "451 4.0.0 Injected: try again", "{out}");
    }
    // Not counted as the client's errors: 30 > limits.max_errors (20) and still connected.
    // A refused recipient gets no account.
    let users = s.cli(&["user", "list"], "");
    let users = String::from_utf8_lossy(&users.stdout);
    assert!(!users.contains("x.example"), "{users}");
    drop(s);

    let s = capture_server(
        "[capture.faults]\nseed = 7\nrcpt = { rate = 0.0, code = 550, text = \"never\" }\n",
    );
    let out = rcpt_codes(&s, 30);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("250 ")).count(),
        30,
        "{out}"
    );
}

#[test]
fn a_data_fault_refuses_the_message_and_stores_nothing() {
    let s = capture_server(
        "[capture.faults]\ndata = { rate = 1.0, code = 554 }\nmail = { rate = 0.0, code = 421 }\n",
    );
    let out = s.python(
        r#"
import os, smtplib
c = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]))
try:
    c.sendmail("a@b.example", ["victim@x.example"], "Subject: x\r\n\r\nx\r\n")
    print("accepted")
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
"#,
    );
    assert!(
        out.starts_with(
            "554 5.0.0 Permanent failure injected by capture mode ([capture.faults] data)"
        ),
        "{out}"
    );
    assert!(s.inbox("victim@x.example").is_empty());
    let metrics = Command::new("curl")
        .args(["-s", &format!("http://{}/metrics", s.addr("http"))])
        .output()
        .expect("curl");
    let m = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        m.contains("mailroom_capture_faults_total{stage=\"data\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains("mailroom_smtp_messages_total{listener=\"smtp\",class=\"5xx\"} 1\n"),
        "{m}"
    );
}

#[test]
fn bad_fault_settings_and_public_listeners_are_refused_naming_the_key() {
    let base =
        "data_dir = \"{data}\"\n[listen]\nsmtp = \"127.0.0.1:0\"\n[capture]\nenabled = true\n";
    let cases = [
        (
            "[capture.faults]\nrcpt = { rate = 1.5, code = 451 }\n",
            "capture.faults.rcpt.rate",
        ),
        (
            "[capture.faults]\ndata = { rate = 0.5, code = 250 }\n",
            "capture.faults.data.code",
        ),
        (
            "[capture.faults]\nauth = { rate = 0.5, code = 600 }\n",
            "capture.faults.auth.code",
        ),
        (
            "[capture.faults]\nmail = { rate = 0.5, code = 451, text = \"two\\r\\nlines\" }\n",
            "capture.faults.mail.text",
        ),
        ("[capture.faults]\nrcpt = { rate = 0.5 }\n", "code"),
        (
            "[capture.faults]\nhelo = { rate = 0.5, code = 451 }\n",
            "helo",
        ),
    ];
    for (extra, key) in cases {
        let err = support::cli::serve_refuses(&format!("{base}{extra}"));
        assert!(
            err.contains(key) && err.contains("bad.toml"),
            "{extra}: {err}"
        );
    }
    // Capture mode on an address others can reach: refused unless allow_public says so. (The
    // config is refused before anything is bound.)
    let public =
        "data_dir = \"{data}\"\n[listen]\nsmtp = \"192.0.2.1:25\"\n[capture]\nenabled = true\n";
    let err = support::cli::serve_refuses(public);
    assert!(
        err.contains("capture.allow_public") && err.contains("listen.smtp = 192.0.2.1:25"),
        "{err}"
    );
    // The same for the command-line flag.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("public.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"{}\"\n[listen]\nsmtp = \"192.0.2.1:25\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = Command::new(support::bin())
        .arg("--config")
        .arg(&path)
        .args(["serve", "--capture"])
        .output()
        .expect("run mailroom");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("capture.allow_public"), "{err}");
}
