//! fetchmail, the classic mail retriever, against the POP3 and IMAP servers: it upgrades with
//! STLS / STARTTLS, checks the server's self-signed certificate against the file it is given,
//! logs in, fetches every message into a local mbox through an MDA, and deletes (POP3) or
//! marks `\Seen` (IMAP with `keep`). Fails with a clear message where fetchmail is not
//! installed (.ci/run installs it: the Debian package fetchmail).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::cli::require_tool;
use support::imap::{msg, start, Imap};
use support::{TestServer, ALICE, BOB};

/// Runs fetchmail once with a one-server rc file; returns (exit code, output) and the mbox.
fn fetchmail(s: &TestServer, protocol: &str, port: u16, options: &str) -> (i32, String, String) {
    let dir = s.dir.path();
    let mbox = dir.join(format!("{protocol}.mbox"));
    let rc = dir.join(format!("{protocol}.fetchmailrc"));
    let cert = dir.join("data/tls/cert.pem");
    std::fs::write(
        &rc,
        format!(
            "set no bouncemail\n\
             poll 127.0.0.1 service {port} protocol {protocol} user \"{}\" password \"{}\" \
             sslcertck sslcertfile \"{}\" sslcommonname \"mx.example.test\" {options} \
             mda \"/bin/sh -c 'cat >> {}'\"\n",
            BOB.0,
            BOB.1,
            cert.display(),
            mbox.display()
        ),
    )
    .expect("write rc");
    // fetchmail refuses an rc file others can read (it holds a password).
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .arg("--idfile")
        .arg(dir.join(format!("{protocol}.ids")))
        .arg("--nodetach")
        .arg("--verbose")
        // Its own lock file: as root the default is one for the whole machine, and the tests
        // run at the same time.
        .arg("--pidfile")
        .arg(dir.join(format!("{protocol}.pid")))
        .env("HOME", dir)
        .output()
        .expect("run fetchmail");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got = std::fs::read_to_string(&mbox).unwrap_or_default();
    (out.status.code().unwrap_or(-1), text, got)
}

fn subjects(mbox: &str) -> Vec<&str> {
    mbox.lines()
        .filter_map(|l| l.strip_prefix("Subject: "))
        .collect()
}

fn deliver_three(s: &TestServer) {
    for (subject, body) in [
        ("one", "first body"),
        ("two", "second body"),
        ("three", "x"),
    ] {
        s.deliver(ALICE.0, &[BOB.0], &msg(ALICE.0, BOB.0, subject, body));
    }
}

fn check_fetched(code: i32, out: &str, mbox: &str, s: &TestServer) {
    assert_eq!(
        code,
        0,
        "fetchmail failed:\n{out}\nserver log:\n{}",
        s.log_text()
    );
    assert!(out.contains("3 messages for bob@example.test"), "{out}");
    assert_eq!(subjects(mbox), vec!["one", "two", "three"], "{mbox}");
    assert!(
        mbox.contains("first body") && mbox.contains("second body"),
        "{mbox}"
    );
}

#[test]
fn fetchmail_over_pop3_with_stls_fetches_and_deletes() {
    require_tool("fetchmail", "--version", "fetchmail");
    let s = start();
    deliver_three(&s);
    let port = s.addr("pop3").port();
    let (code, out, mbox) = fetchmail(&s, "POP3", port, "");
    check_fetched(code, &out, &mbox, &s);
    // It upgraded to TLS (and checked the certificate: sslcertck) before logging in.
    let stls = out.find("POP3> STLS").expect("fetchmail sent STLS");
    let user = out
        .find("POP3> USER")
        .expect("fetchmail logged in with USER");
    assert!(stls < user, "{out}");
    // Fetched and deleted (fetchmail's default without `keep`): nothing left on the server,
    // and a second run finds no mail (fetchmail's exit code 1).
    assert!(s.inbox(BOB.0).is_empty(), "messages left on the server");
    let (code, out, _) = fetchmail(&s, "POP3", port, "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("No mail for bob@example.test"), "{out}");
}

#[test]
fn fetchmail_over_imap_with_starttls_keeps_and_marks_seen() {
    require_tool("fetchmail", "--version", "fetchmail");
    let s = start();
    deliver_three(&s);
    let addr = s.addr("imap");
    let (code, out, mbox) = fetchmail(&s, "IMAP", addr.port(), "keep");
    check_fetched(code, &out, &mbox, &s);
    let starttls = out.find("STARTTLS\n").expect("fetchmail sent STARTTLS");
    let login = out.find(" LOGIN ").expect("fetchmail logged in with LOGIN");
    assert!(starttls < login, "{out}");
    // `keep`: the messages stay, marked \Seen; a second run fetches nothing new.
    let mut i = Imap::login(addr, BOB);
    let (_, u) = i.cmd("STATUS INBOX (MESSAGES UNSEEN)");
    assert_eq!(u, vec!["* STATUS \"INBOX\" (MESSAGES 3 UNSEEN 0)"]);
    let (code, out, mbox) = fetchmail(&s, "IMAP", addr.port(), "keep");
    assert_eq!(code, 1, "{out}");
    assert_eq!(subjects(&mbox).len(), 3, "nothing fetched twice: {mbox}");
    let log = s.log_text();
    assert!(!log.contains(" BAD "), "fetchmail got a BAD:\n{log}");
}
