//! Every failure gives one sentence naming the server (and its reply) and an exit code:
//! 1 local, 3 cannot connect / timeout, 4 login refused, 5 refused, 6 connection lost.
//! Nothing half-sent is reported as sent.
mod support;

use support::cli::Step::*;
use support::cli::*;
use support::*;

#[test]
fn connection_refused() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let r = mailroom(&send_args(&addr, &[]), b"", &[]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr.starts_with(&format!(
            "mailroom: cannot connect to the SMTP server {addr}: "
        )),
        "{}",
        r.all()
    );
    assert!(r.stderr.to_lowercase().contains("refused"), "{}", r.all());
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.all());
    assert!(r.stdout.is_empty(), "{}", r.all());

    let r = mailroom(
        &["inbox", "-e", BOB.0, "-p", BOB.1, "--pop3", &addr, "list"],
        b"",
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr.starts_with(&format!(
            "mailroom: cannot connect to the POP3 server {addr}: "
        )),
        "{}",
        r.all()
    );
}

#[test]
fn a_silent_server_times_out() {
    // Accepted by the kernel (the listen backlog) but never greeted.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let started = std::time::Instant::now();
    let r = mailroom(&send_args(&addr, &["--timeout", "1"]), b"", &[]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert_eq!(
        r.stderr.trim(),
        format!("mailroom: the SMTP server {addr} did not answer in time (waiting for the greeting (220)); nothing was sent")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let r = mailroom(
        &[
            "inbox",
            "-e",
            BOB.0,
            "-p",
            BOB.1,
            "--pop3",
            &addr,
            "--timeout",
            "1",
            "list",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr
            .contains(&format!("the POP3 server {addr} did not answer in time")),
        "{}",
        r.all()
    );
    drop(l);
}

#[test]
fn bad_credentials() {
    let s = TestServer::start();
    let sub = s.submission().to_string();
    let mut args = send_args(&sub, &[]);
    let pw = args
        .iter()
        .position(|a| *a == ALICE.1)
        .expect("password arg");
    args[pw] = "wrong";
    let r = mailroom(&args, b"", &[]);
    assert_eq!(r.code, 4, "{}", r.all());
    assert_eq!(
        r.stderr.trim(),
        format!("mailroom: the SMTP server {sub} refused the login of alice@example.test (AUTH PLAIN): 535 5.7.8 Authentication credentials invalid; nothing was sent")
    );
    assert!(s.inbox(BOB.0).is_empty());

    let r = mailroom(
        &[
            "inbox",
            "-e",
            BOB.0,
            "-p",
            "wrong",
            "--pop3",
            &s.pop3().to_string(),
            "list",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(
        r.stderr.starts_with(&format!(
            "mailroom: the POP3 server {} refused the login of bob@example.test (PASS): -ERR ",
            s.pop3()
        )),
        "{}",
        r.all()
    );
}

#[test]
fn refused_recipient_is_named_with_the_servers_reply() {
    let s = TestServer::start();
    let sub = s.submission().to_string();
    let r = mailroom(
        &[
            "send",
            "--smtp",
            &sub,
            "--from",
            ALICE.0,
            "--to",
            "bob@example.test,nobody@example.test",
            "--body",
            "x",
            "-p",
            ALICE.1,
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 5, "{}", r.all());
    assert!(
        r.stdout.starts_with("sent to bob@example.test: 250 "),
        "{}",
        r.all()
    );
    assert!(!r.stdout.contains("nobody"), "{}", r.all());
    assert_eq!(
        r.stderr.trim(),
        format!("mailroom: not sent to nobody@example.test: the SMTP server {sub} refused RCPT TO:<nobody@example.test>: 550 5.1.1 <nobody@example.test>: no such user here")
    );
    assert_eq!(s.inbox(BOB.0).len(), 1);

    // Only refused recipients: no message content goes out at all.
    let r = mailroom(
        &[
            "send",
            "--trace",
            "--smtp",
            &sub,
            "--from",
            ALICE.0,
            "--to",
            "nobody@example.test",
            "--body",
            "x",
            "-p",
            ALICE.1,
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 5, "{}", r.all());
    assert!(r.stdout.is_empty(), "{}", r.all());
    assert!(!r.stderr.contains("C: ."), "{}", r.all());
    assert!(r.stderr.contains("C: RSET"), "{}", r.all());

    // A sender the login does not own: the server's sentence, verbatim.
    let r = mailroom(
        &[
            "send", "--smtp", &sub, "--from", BOB.0, "-e", ALICE.0, "--to", CAROL.0, "--body", "x",
            "-p", ALICE.1,
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 5, "{}", r.all());
    assert!(
        r.stderr.starts_with(&format!("mailroom: not sent to carol@example.test: the SMTP server {sub} refused MAIL FROM:<bob@example.test>: 553 ")),
        "{}",
        r.all()
    );
    assert!(s.inbox(CAROL.0).is_empty());
}

#[test]
fn server_closing_mid_transfer_is_not_reported_as_sent() {
    let (addr, h) = fake_server(vec![
        Send("220 fake ESMTP\r\n"),
        Read,
        Send("250-fake\r\n250 AUTH PLAIN\r\n"),
        Read,
        Send("235 2.7.0 ok\r\n"),
        Read,
        Send("250 2.1.0 ok\r\n"),
        Read,
        Send("250 2.1.5 ok\r\n"),
        Read,
        Send("354 go ahead\r\n"),
        ReadData,
        Close,
    ]);
    let r = mailroom(&send_args(&addr, &[]), b"", &[]);
    h.join().expect("fake server");
    assert_eq!(r.code, 6, "{}", r.all());
    assert!(r.stdout.is_empty(), "{}", r.all());
    assert_eq!(
        r.stderr.trim(),
        format!("mailroom: the SMTP server {addr} closed the connection unexpectedly; the message was NOT sent")
    );

    // Closed before the message could even be written.
    let (addr, h) = fake_server(vec![
        Send("220 fake ESMTP\r\n"),
        Read,
        Send("250-fake\r\n250 AUTH PLAIN\r\n"),
        Read,
        Send("235 2.7.0 ok\r\n"),
        Read,
        Send("250 ok\r\n"),
        Read,
        Send("250 ok\r\n"),
        Read,
        Close,
    ]);
    let r = mailroom(&send_args(&addr, &[]), b"", &[]);
    h.join().expect("fake server");
    assert_eq!(r.code, 6, "{}", r.all());
    assert!(r.stderr.contains("the message was NOT sent"), "{}", r.all());
    assert!(!r.stdout.contains("sent to"), "{}", r.all());
}

#[test]
fn silence_after_the_message_is_not_reported_as_sent() {
    let (addr, h) = fake_server(vec![
        Send("220 fake ESMTP\r\n"),
        Read,
        Send("250-fake\r\n250 AUTH PLAIN\r\n"),
        Read,
        Send("235 2.7.0 ok\r\n"),
        Read,
        Send("250 ok\r\n"),
        Read,
        Send("250 ok\r\n"),
        Read,
        Send("354 go ahead\r\n"),
        ReadData,
        Sleep(3000),
    ]);
    let r = mailroom(&send_args(&addr, &["--timeout", "1"]), b"", &[]);
    h.join().expect("fake server");
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stdout.is_empty(), "{}", r.all());
    assert!(
        r.stderr.contains("did not answer in time (waiting for the reply after the message (end of data)); the message was NOT confirmed"),
        "{}",
        r.all()
    );
}

#[test]
fn a_greeting_that_refuses_service() {
    let (addr, h) = fake_server(vec![
        Send("554 5.3.2 not accepting mail now\r\n"),
        Read,
        Send("221 bye\r\n"),
    ]);
    let r = mailroom(&send_args(&addr, &[]), b"", &[]);
    h.join().expect("fake server");
    assert_eq!(r.code, 3, "{}", r.all());
    assert_eq!(
        r.stderr.trim(),
        format!("mailroom: the SMTP server {addr} refused the connection: 554 5.3.2 not accepting mail now; nothing was sent")
    );
}

#[test]
fn pop3_server_closing_mid_retr() {
    let (addr, h) = fake_server(vec![
        Send("+OK fake POP3\r\n"),
        Read,
        Send("+OK\r\n"),
        Read,
        Send("+OK logged in\r\n"),
        Read,
        Send("+OK message follows\r\nSubject: cut\r\n\r\nhalf of it"),
        Close,
    ]);
    let r = mailroom(
        &[
            "inbox", "-e", BOB.0, "-p", BOB.1, "--pop3", &addr, "read", "1",
        ],
        b"",
        &[],
    );
    h.join().expect("fake server");
    assert_eq!(r.code, 6, "{}", r.all());
    assert!(r.stdout.is_empty(), "{}", r.all());
    assert!(
        r.stderr.starts_with(&format!(
            "mailroom: the POP3 server {addr} closed the connection unexpectedly"
        )),
        "{}",
        r.all()
    );
}

#[test]
fn deleting_a_missing_message_deletes_nothing() {
    let s = TestServer::start();
    s.deliver("x@elsewhere.test", &[BOB.0], "Subject: one\r\n\r\nbody\r\n");
    let pop = s.pop3().to_string();
    let r = mailroom(
        &[
            "inbox", "-e", BOB.0, "-p", BOB.1, "--pop3", &pop, "delete", "1", "7",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 5, "{}", r.all());
    assert!(
        r.stderr.starts_with(&format!(
            "mailroom: the POP3 server {pop} refused DELE 7: -ERR "
        )),
        "{}",
        r.all()
    );
    assert!(
        r.stderr.trim_end().ends_with("; nothing was deleted"),
        "{}",
        r.all()
    );
    assert_eq!(s.inbox(BOB.0).len(), 1);
    let r = mailroom(
        &[
            "inbox", "-e", BOB.0, "-p", BOB.1, "--pop3", &pop, "read", "9",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 5, "{}", r.all());
    assert!(r.stderr.contains("refused RETR 9: -ERR "), "{}", r.all());
}

#[test]
fn local_mistakes() {
    // (what is wrong, the arguments after `send --smtp 127.0.0.1:1 -p x --body x`, stderr)
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "a sender that is not an address",
            &["--from", "not-an-address", "--to", BOB.0],
            "'not-an-address' is not an address",
        ),
        ("no recipient", &["--from", ALICE.0], "no recipients"),
        (
            "an attachment that does not exist",
            &[
                "--from",
                ALICE.0,
                "--to",
                BOB.0,
                "--attach",
                "/nonexistent/file.pdf",
            ],
            "cannot attach /nonexistent/file.pdf",
        ),
    ];
    for (what, extra, says) in cases {
        let mut args = vec!["send", "--smtp", "127.0.0.1:1", "-p", "x", "--body", "x"];
        args.extend_from_slice(extra);
        let r = mailroom(&args, b"", &[]);
        assert_eq!(r.code, 1, "{what}: {}", r.all());
        assert!(r.stderr.contains(says), "{what}: {}", r.all());
    }
    // Usage errors come from the argument parser, with its own code.
    let r = mailroom(&["inbox", "-e", BOB.0, "read", "one"], b"", &[]);
    assert_eq!(r.code, 2, "{}", r.all());
}
