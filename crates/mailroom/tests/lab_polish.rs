//! The lab as students meet it (issue 16): the real server driven as a student drives it, by
//! raw lines over a TCP socket (as telnet or netcat would send them) and by Python's smtplib.
//! A message typed with no header lines, control characters in the trace, VRFY and EXPN,
//! capturing the server-to-server hop in clear, and short user names.

mod support;

use support::{Client, ServerConfig, TestServer, ALICE, BOB};

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
    // The reply says where the NUL came from (issue 16 item 11).
    let text = r.lines.join(" ");
    assert!(
        text.contains("CR followed by a NUL") && text.contains("telnet"),
        "{r:?}"
    );
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

/// A server with SMTP, submission, POP3 and IMAP on ephemeral ports and alice and bob; with
/// `domains`, else their domains are local.
fn start_full(domains: &[&str]) -> TestServer {
    ServerConfig::host("mx.example.test")
        .domains(domains)
        .accounts(&[ALICE, BOB])
        .listen(&["smtp", "submission", "pop3", "imap"])
        .start()
}

/// Item 1: `DATA`, `Dit is de body.`, `.` typed at telnet on the MX. Every reader sees the
/// text as the body: IMAP BODY[TEXT], POP3 TOP 0 (the header section alone), and Python's
/// email package.
#[test]
fn a_message_typed_without_headers_keeps_its_body() {
    let s = start_full(&["example.test"]);
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
    let s = start_full(&["example.test"]);
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
    for field in [
        "\r\nDate: ",
        "\r\nMessage-ID: <",
        "\r\nFrom: <alice@example.test>",
    ] {
        assert!(headers.contains(field), "{field:?} missing: {headers}");
    }
    let own = b"Subject: own\r\nX-Kept:  as  typed \r\n\r\nbody\r\n";
    assert!(
        stored[1].ends_with(own),
        "{}",
        String::from_utf8_lossy(&stored[1])
    );
    let second = String::from_utf8_lossy(&stored[1]).into_owned();
    assert!(
        second.contains("\r\nFrom: <alice@example.test>\r\nSubject: own"),
        "{second}"
    );
}

/// Item 7: short user names with no `domains` in the config (as the embedded default has
/// none): POP3 `USER alice`, IMAP `LOGIN alice`, SMTP AUTH PLAIN with `alice` (smtplib). Once
/// a second alice exists in another domain, the logins fail and SMTP and POP3 say to use the
/// full address.
#[test]
fn short_user_names_work_when_they_name_one_account() {
    let s = start_full(&[]);
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
    let r = c.cmd(
        &format!("AUTH PLAIN {}", support::b64("\0alice\0secret")),
        535,
    );
    assert!(r.text().contains("log in with your full address"), "{r:?}");
    c.cmd(
        &format!(
            "AUTH PLAIN {}",
            support::b64("\0alice@example.test\0secret")
        ),
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

/// A fake receiving MTA on a loopback port that offers STARTTLS but refuses it (454), takes
/// every message, and records every line it was sent, over any number of connections.
struct FakePeer {
    port: u16,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakePeer {
    fn start() -> FakePeer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut out) = conn else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(out.try_clone().expect("clone"));
                    let _ = out.write_all(b"220 fake.test ESMTP\r\n");
                    let mut in_data = false;
                    let mut line = String::new();
                    while r.read_line(&mut line).unwrap_or(0) > 0 {
                        let l = line.trim_end().to_string();
                        line.clear();
                        seen.lock().expect("lock").push(l.clone());
                        let verb = l.to_ascii_uppercase();
                        let reply: &[u8] = if in_data {
                            if l == "." {
                                in_data = false;
                                b"250 2.0.0 taken\r\n"
                            } else {
                                continue;
                            }
                        } else if verb.starts_with("EHLO") {
                            b"250-fake.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
                        } else if verb.starts_with("STARTTLS") {
                            b"454 4.7.0 TLS not available now\r\n"
                        } else if verb.starts_with("DATA") {
                            in_data = true;
                            b"354 go on\r\n"
                        } else if verb.starts_with("QUIT") {
                            let _ = out.write_all(b"221 bye\r\n");
                            return;
                        } else {
                            b"250 ok\r\n"
                        };
                        if out.write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakePeer { port, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Item 5: a route with `tls = "none"` delivers in clear even to a peer that offers STARTTLS
/// (what a packet capture of the hop needs); without it the queue tries STARTTLS first.
#[test]
fn a_route_with_tls_none_delivers_in_clear() {
    for (setting, starttls) in [(", tls = \"none\"", false), ("", true)] {
        let peer = FakePeer::start();
        let s = TestServer::start_with(
            &format!(
                "[routes]\n\"fake.test\" = {{ host = \"127.0.0.1:{}\"{setting} }}\n",
                peer.port
            ),
            &[],
        );
        support::submit(
            s.submission(),
            support::ALICE,
            &["someone@fake.test"],
            "Subject: over the hop\n\nseen in clear?\n",
        );
        s.wait_for(20, "the delivery to the fake peer", || {
            peer.lines().iter().any(|l| l == ".")
        });
        let lines = peer.lines();
        assert!(
            lines.iter().any(|l| l == "MAIL FROM:<alice@example.test>"),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l == "seen in clear?"), "{lines:?}");
        assert_eq!(
            lines.iter().any(|l| l == "STARTTLS"),
            starttls,
            "route setting {setting:?}: {lines:?}"
        );
    }
}

/// `mailroom lab` on examples/lab.toml, as the README runs it, but on free ports, in a
/// scratch directory and with `--trace`; stderr (logs and traces) is collected.
struct Lab {
    child: std::process::Child,
    addrs: std::collections::HashMap<String, std::net::SocketAddr>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start() -> Lab {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("dir");
        let example = std::fs::read_to_string(support::repo_root().join("examples/lab.toml"))
            .expect("examples/lab.toml");
        let mut lab = example.replace("lab-data/", &format!("{}/", dir.path().display()));
        // Every port of the file, whatever its numbers: each "127.0.0.1:N" gets a free one.
        let mut rest = lab.as_str();
        let mut ports = Vec::new();
        while let Some(at) = rest.find("127.0.0.1:") {
            let after = &rest[at + 10..];
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            ports.push(digits.clone());
            rest = &after[digits.len()..];
        }
        ports.sort();
        ports.dedup();
        for p in ports {
            lab = lab.replace(
                &format!("127.0.0.1:{p}\""),
                &format!("127.0.0.1:{}\"", support::free_port()),
            );
        }
        let path = dir.path().join("lab.toml");
        std::fs::write(&path, &lab).expect("write");
        let mut child = std::process::Command::new(support::bin())
            .arg("--config")
            .arg(&path)
            .args(["lab", "--trace"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stderr).lines() {
                let Ok(l) = l else { return };
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&l);
                    s.push('\n');
                }
            }
        });
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut addrs = std::collections::HashMap::new();
        for l in lines.by_ref() {
            let l = l.expect("stdout");
            if let Some(rest) = l.strip_prefix("listening: ") {
                if let Some((name, addr)) = rest.split_once(' ') {
                    if let Ok(a) = addr.trim().parse() {
                        addrs.insert(name.to_string(), a);
                    }
                }
            }
            if l.starts_with("ready") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Lab {
            child,
            addrs,
            log,
            _dir: dir,
        }
    }

    fn addr(&self, name: &str) -> std::net::SocketAddr {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name}: {:?}", self.addrs))
    }

    fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Item 4 on examples/lab.toml: the textbook's VRFY and EXPN at telnet on school's MX, and
/// HELP that lists every command and explains VRFY.
#[test]
fn the_lab_answers_vrfy_and_expn() {
    let lab = Lab::start();
    let mut c = Client::connect(lab.addr("school/smtp"));
    c.expect_code(220);
    c.cmd("HELO pc1", 250);
    let r = c.cmd("VRFY usr1", 250);
    assert_eq!(r.lines, ["2.1.5 usr1 <usr1@school.test>"]);
    let r = c.cmd("VRFY usr2@school.test", 250);
    assert_eq!(r.lines, ["2.1.5 usr2 <usr2@school.test>"]);
    let r = c.cmd("VRFY usr9", 550);
    assert_eq!(r.lines, ["5.1.1 usr9: no such user here"]);
    let r = c.cmd("EXPN staff", 250);
    assert_eq!(
        r.lines,
        [
            "2.1.5 usr1 <usr1@school.test>",
            "2.1.5 usr2 <usr2@school.test>"
        ]
    );
    let r = c.cmd("EXPN usr1", 550);
    assert!(r.text().contains("is a user, not a mailing list"), "{r:?}");
    let r = c.cmd("HELP", 214);
    for verb in [
        "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "VRFY",
        "EXPN", "HELP", "QUIT",
    ] {
        assert_eq!(
            r.lines
                .iter()
                .filter(|l| l.starts_with(&format!("2.0.0   {verb} ")))
                .count(),
            1,
            "{verb}: {r:?}"
        );
    }
    let r = c.cmd("HELP VRFY", 214);
    assert!(r.text().contains("Switched on here"), "{r:?}");
    c.cmd("QUIT", 221);
    // webmail has no staff list.
    let mut c = Client::connect(lab.addr("webmail/smtp"));
    c.expect_code(220);
    c.cmd("EXPN staff", 550);
}

/// Item 5 on examples/lab.toml: school's queue relays to webmail without STARTTLS (the whole
/// hop is readable in a capture), while the servers still offer STARTTLS to clients.
#[test]
fn the_lab_relays_in_clear() {
    let lab = Lab::start();
    let mut c = Client::connect(lab.addr("school/submission"));
    c.expect_code(220);
    let ehlo = c.cmd("EHLO pc1", 250);
    assert!(ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    c.cmd(
        "AUTH PLAIN dXNyMUBzY2hvb2wudGVzdAB1c3IxQHNjaG9vbC50ZXN0AHBhc3Mx",
        235,
    );
    c.cmd("MAIL FROM:<usr1@school.test>", 250);
    c.cmd("RCPT TO:<usr1@webmail.test>", 250);
    c.cmd("DATA", 354);
    c.send("Subject: over the hop");
    c.send("");
    c.send("readable on the wire");
    c.cmd(".", 250);
    c.cmd("QUIT", 221);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let log = lab.log();
        let queue: Vec<&str> = log.lines().filter(|l| l.contains("[queue ")).collect();
        if queue.iter().any(|l| l.contains("C: QUIT")) {
            assert!(
                queue
                    .iter()
                    .any(|l| l.contains("C: MAIL FROM:<usr1@school.test>")),
                "{log}"
            );
            // webmail offers STARTTLS (S: 250-STARTTLS); the queue does not take it up.
            assert!(queue.iter().any(|l| l.contains("S: 250-STARTTLS")), "{log}");
            assert!(!queue.iter().any(|l| l.contains("C: STARTTLS")), "{log}");
            // webmail saw the whole message in clear: no STARTTLS in its session either.
            assert!(
                log.contains("[smtp 1] C: MAIL FROM:<usr1@school.test>"),
                "{log}"
            );
            assert!(!log.contains("C: STARTTLS"), "{log}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Issue 16 item 10: the start-up hint names the config the server runs with (following it
/// reaches this server's store) and a listener that is really open.
#[test]
fn start_up_hint_names_the_config_and_an_open_listener() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("my lab.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"h.test\"\ndata_dir = \"{}\"\ndomains = [\"school.test\"]\n[listen]\nimap = \"127.0.0.1:0\"\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let mut child = std::process::Command::new(support::bin())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let ready = line.starts_with("ready:");
        lines.push(line);
        if ready {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let hint = lines
        .iter()
        .find(|l| l.starts_with("hint:"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    let quoted = format!("--config '{}' user add alice@school.test", config.display());
    assert!(hint.contains(&quoted), "{hint}");
    // No SMTP listener here: the hint names the IMAP one that is open.
    assert!(hint.contains("(imap)") && !hint.contains("smtp"), "{hint}");
}

/// Issue 16 item 9: a busy port is reported once, with the key, the file and what to do.
#[test]
fn a_busy_port_is_reported_once_with_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("busy.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"h.test\"\ndata_dir = \"{}\"\n[listen]\npop3 = \"127.0.0.1:{port}\"\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let out = std::process::Command::new(support::bin())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("in use").count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot listen for pop3 on 127.0.0.1:{port}"))
            && err.contains(&format!("change [listen] pop3 in {}", config.display()))
            && err.contains(&format!("ss -ltnp 'sport = :{port}'")),
        "{err}"
    );
}
