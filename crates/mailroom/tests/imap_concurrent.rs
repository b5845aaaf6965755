//! Sessions on one mailbox see each other's changes (RFC 9051 §7, §5.2), and so do SMTP
//! deliveries and POP3 deletions; IDLE reports them within a second (RFC 2177).

mod support;

use std::time::{Duration, Instant};

use support::imap::{msg, start, Imap};
use support::{Client, ALICE, BOB};

fn deliver_n(s: &support::TestServer, n: usize) {
    for k in 1..=n {
        s.deliver(
            BOB.0,
            &[ALICE.0],
            &msg(BOB.0, ALICE.0, &format!("m{k}"), "hello"),
        );
    }
}

#[test]
fn two_sessions_see_each_others_expunges_and_flags() {
    let s = start();
    deliver_n(&s, 3);
    let mut a = Imap::login(s.addr("imap"), ALICE);
    let mut b = Imap::login(s.addr("imap"), ALICE);
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");

    // A deletes message 1; B hears of it at its next NOOP.
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    let u = a.ok("EXPUNGE");
    assert_eq!(u, vec!["* 1 EXPUNGE"]);
    let u = b.ok("NOOP");
    assert_eq!(u, vec!["* 1 EXPUNGE"]);

    // Flags set by A show up in B as FETCH FLAGS.
    a.ok("STORE 1 +FLAGS.SILENT (\\Flagged)");
    let u = b.ok("NOOP");
    assert_eq!(u, vec!["* 1 FETCH (FLAGS (\\Flagged) UID 2)"]);

    // While B runs FETCH, an expunge by A is not reported (RFC 9051 §7.5.1), and the
    // sequence numbers B knows stay valid; the EXPUNGE comes with the next NOOP.
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    a.ok("EXPUNGE");
    let u = b.ok("FETCH 1:* (UID)");
    assert_eq!(
        u,
        vec!["* 1 FETCH (UID 2)"],
        "message 2 is gone and left out"
    );
    let u = b.ok("NOOP");
    assert_eq!(u, vec!["* 2 EXPUNGE"]);

    // New mail: EXISTS in both; \Recent for B, the first to be told (RFC 3501 §2.3.2).
    deliver_n(&s, 1);
    let u = b.ok("NOOP");
    assert_eq!(u, vec!["* 2 EXISTS", "* 1 RECENT"]);
    let u = a.ok("UID SEARCH ALL");
    assert_eq!(u.last().map(String::as_str), Some("* SEARCH 2 4"), "{u:?}");
    assert!(u.contains(&"* 2 EXISTS".to_string()), "{u:?}");
    // A's own recent count: message 2, which A was the first to see at SELECT.
    assert!(u.contains(&"* 1 RECENT".to_string()), "{u:?}");

    // MOVE by A: B sees the expunge; the target mailbox has the message.
    let u = a.ok("UID MOVE 4 Archive");
    assert!(u[0].starts_with("* OK [COPYUID "), "{u:?}");
    assert_eq!(u[1], "* 2 EXPUNGE");
    let u = b.ok("NOOP");
    assert_eq!(u, vec!["* 2 EXPUNGE"]);
    let (_, u) = b.cmd("STATUS Archive (MESSAGES UIDNEXT)");
    assert_eq!(u, vec!["* STATUS \"Archive\" (MESSAGES 1 UIDNEXT 2)"]);
}

#[test]
fn idle_reports_smtp_delivery_and_pop3_deletion_within_a_second() {
    let s = start();
    deliver_n(&s, 2);
    let mut b = Imap::login(s.addr("imap"), ALICE);
    b.ok("SELECT INBOX");
    b.c.send("i1 IDLE");
    assert!(b.line().unwrap().starts_with("+ "));

    let t = Instant::now();
    deliver_n(&s, 1);
    assert_eq!(b.line().unwrap(), "* 3 EXISTS");
    // All three are recent for B, the only session (RFC 3501 §7.3.2).
    assert_eq!(b.line().unwrap(), "* 3 RECENT");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // POP3 deletes message 1 in the same mailbox.
    let mut p = Client::connect(s.pop3());
    assert!(p.line().unwrap().starts_with("+OK"));
    p.send(&format!("USER {}", ALICE.0));
    assert!(p.line().unwrap().starts_with("+OK"));
    p.send(&format!("PASS {}", ALICE.1));
    assert!(p.line().unwrap().starts_with("+OK"));
    p.send("DELE 1");
    assert!(p.line().unwrap().starts_with("+OK"));
    let t = Instant::now();
    p.send("QUIT");
    assert!(p.line().unwrap().starts_with("+OK"));
    assert_eq!(b.line().unwrap(), "* 1 EXPUNGE");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    b.c.send("DONE");
    let (t, _) = b.until_tag("i1");
    assert_eq!(t, "i1 OK IDLE terminated");
    b.ok("NOOP");
}

#[test]
fn pop3_and_imap_on_the_same_mailbox() {
    let s = start();
    deliver_n(&s, 2);
    let mut i = Imap::login(s.addr("imap"), ALICE);
    i.ok("SELECT INBOX");
    // IMAP appends; POP3 sees three messages, deletes the first.
    let (t, _) = i.cmd("APPEND INBOX {22+}\r\nSubject: appended\r\n\r\n");
    assert!(t.contains("OK [APPENDUID"), "{t}");
    let out = s.python(
        r#"
import os, poplib
p = poplib.POP3(os.environ["HOST"], int(os.environ["POP3_PORT"]))
p.user("alice@example.test"); p.pass_("secret")
assert p.stat()[0] == 3, p.stat()
resp, lines, _ = p.retr(3)
assert b"Subject: appended" in lines, lines
p.dele(1)
p.quit()
print("ok")
"#,
    );
    assert!(out.contains("ok"));
    let u = i.ok("NOOP");
    assert_eq!(u, vec!["* 1 EXPUNGE"]);
    let u = i.ok("UID SEARCH ALL");
    assert_eq!(u.last().map(String::as_str), Some("* SEARCH 2 3"), "{u:?}");
}

#[test]
fn imaplib_idle_with_concurrent_smtp_delivery() {
    let s = start();
    deliver_n(&s, 1);
    let out = s.python(
        r#"
import os, imaplib, smtplib, socket, time, threading
host, port, sport = os.environ["HOST"], int(os.environ["IMAP_PORT"]), int(os.environ["SMTP_PORT"])
M = imaplib.IMAP4(host, port)
M.login("alice", "secret")
typ, data = M.select("INBOX")
assert data == [b"1"], data
tag = M._new_tag()
M.send(tag + b" IDLE\r\n")
assert M.readline().startswith(b"+ "), "no continuation"
def send():
    time.sleep(0.3)
    with smtplib.SMTP(host, sport) as s:
        s.sendmail("bob@example.test", ["alice@example.test"], b"Subject: during idle\r\n\r\nhi\r\n")
threading.Thread(target=send).start()
M.sock.settimeout(5)
t = time.time()
line = M.readline()
assert line == b"* 2 EXISTS\r\n", line
assert time.time() - t < 2.5, time.time() - t
line = M.readline()
assert line == b"* 2 RECENT\r\n", line
M.send(b"DONE\r\n")
line = M.readline()
assert line.startswith(tag + b" OK"), line
typ, data = M.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert data[0][1] == b"Subject: during idle\r\n\r\n", data
M.logout()
print("ok")
"#,
    );
    assert!(out.contains("ok"));
}

/// A large mailbox (1,100 messages: the server keeps its listing and SELECT starts from it,
/// with the changes since merged in): a session that selects after another one flagged,
/// expunged and received mail sees exactly what a session selected all along sees after
/// its NOOP, and nothing of what was expunged.
#[test]
fn a_large_mailbox_selected_after_changes_shows_each_of_them() {
    let s = start();
    let raw = |i: usize| format!("Subject: n{i}\r\n\r\nbody {i}\r\n").into_bytes();
    s.store_directly(ALICE.0, (0..1100).map(raw));
    let mut a = Imap::login(s.addr("imap"), ALICE);
    let r = a.ok("SELECT INBOX");
    assert!(r.contains(&"* 1100 EXISTS".to_string()), "{r:?}");

    let mut b = Imap::login(s.addr("imap"), ALICE);
    b.ok("SELECT INBOX");
    b.ok("STORE 1:5 +FLAGS.SILENT (\\Seen $Hot)");
    b.ok("STORE 10:12 +FLAGS.SILENT (\\Deleted)");
    let r = b.ok("EXPUNGE");
    assert_eq!(r.len(), 3, "{r:?}");
    s.store_directly(ALICE.0, (1100..1102).map(raw));

    let mut c = Imap::login(s.addr("imap"), ALICE);
    let r = c.ok("SELECT INBOX");
    assert!(r.contains(&"* 1099 EXISTS".to_string()), "{r:?}");
    assert!(r[0].contains("$Hot"), "the keyword is announced: {r:?}");
    // \Recent belongs to each session; the rest must be the same.
    let view = |i: &mut Imap| -> Vec<String> {
        i.ok("FETCH 1:* (UID FLAGS)")
            .iter()
            .map(|l| {
                l.replace("\\Recent ", "")
                    .replace(" \\Recent", "")
                    .replace("\\Recent", "")
            })
            .collect()
    };
    let seen_by_c = view(&mut c);
    a.ok("NOOP");
    assert_eq!(seen_by_c, view(&mut a));
    assert_eq!(seen_by_c.len(), 1099);
    assert_eq!(seen_by_c[0], "* 1 FETCH (UID 1 FLAGS (\\Seen $Hot))");
    assert!(seen_by_c
        .iter()
        .all(|l| !l.contains("UID 10 ") && !l.contains("UID 11 ") && !l.contains("UID 12 ")));
    assert_eq!(seen_by_c[1098], "* 1099 FETCH (UID 1102 FLAGS ())");
}
