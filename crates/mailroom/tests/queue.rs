//! Mail between domains: two (or more) real servers, static routes, the outbound queue,
//! retries, bounces, loops, and the lab command.
mod support;
use support::*;

use support::peers::{self, ALICE_A, BOB_B};
use support::pop3::Pop;

/// Server A hosts a.test (alice, carol) and routes b.test to `b_smtp_port`; tests add more
/// (routes, `[queue]`, `[aliases]`) before `start()`.
fn server_a(b_smtp_port: u16) -> ServerConfig {
    peers::server_a()
        .listen(&["smtp", "submission", "pop3"])
        .route("b.test", b_smtp_port)
}

/// Server B hosts b.test on a fixed SMTP port.
fn server_b(smtp_port: u16) -> ServerConfig {
    peers::server_b()
        .listen_on("smtp", smtp_port)
        .listen(&["pop3"])
}

/// `[queue]` lines: no retry within the test (only the first attempt), a short connect
/// timeout.
const QUEUE_SLOW: &str = "retry = [\"1h\"]\nconnect_timeout = \"2s\"";

fn text(m: &[u8]) -> String {
    String::from_utf8_lossy(m).to_string()
}

#[test]
fn submitted_mail_reaches_the_other_domain_byte_exact() {
    let bport = free_port();
    let b = server_b(bport).start();
    let a = server_a(bport).start();
    let body = "From: alice@a.test\nTo: bob@b.test\nSubject: across\nMessage-ID: <x1@a.test>\nDate: Sun, 22 Nov 2026 01:00:00 +0000\n\nHello B.\n.a line with a dot\n";
    submit(a.submission(), ALICE_A, &[BOB_B.0], body);
    b.wait_for(15, "delivery to B", || b.inbox(BOB_B.0).len() == 1);
    let m = text(&b.inbox(BOB_B.0)[0]);
    let original = body.replace('\n', "\r\n");
    assert!(m.ends_with(&original), "{m}");
    // Trace: B's Return-Path and Received, then A's Received, then the original.
    let head = &m[..m.len() - original.len()];
    assert!(head.starts_with("Return-Path: <alice@a.test>\r\nReceived: from mx.a.test ([127.0.0.1])\r\n\tby mx.b.test"), "{head}");
    assert_eq!(head.matches("Received: ").count(), 2, "{head}");
    assert!(
        head.contains("by mx.a.test (mailroom) with ESMTPA"),
        "{head}"
    );
    a.wait_for(10, "A's queue to empty", || a.queue().is_empty());
}

#[test]
fn unknown_user_at_b_bounces_to_the_sender_with_a_dsn() {
    let bport = free_port();
    let _b = server_b(bport).start();
    let a = server_a(bport).start();
    submit(
        a.submission(),
        ALICE_A,
        &["nobody@b.test"],
        "Subject: to nobody\n\nhello?\n",
    );
    a.wait_for(15, "the bounce", || a.inbox(ALICE_A.0).len() == 1);
    let dsn = text(&a.inbox(ALICE_A.0)[0]);
    assert!(dsn.starts_with("Return-Path: <>\r\n"), "{dsn}");
    assert!(
        dsn.contains("From: Mail Delivery System <MAILER-DAEMON@mx.a.test>"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Content-Type: multipart/report; report-type=delivery-status"),
        "{dsn}"
    );
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@b.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        dsn.contains("550 5.1.1 <nobody@b.test>: no such user here"),
        "B's reply is quoted: {dsn}"
    );
    assert!(
        dsn.contains("Subject: to nobody"),
        "original headers: {dsn}"
    );
    a.wait_for(10, "A's queue to empty", || a.queue().is_empty());
    // Python's email package reads it as a delivery report.
    let path = a.dir.path().join("dsn.eml");
    std::fs::write(&path, &a.inbox(ALICE_A.0)[0]).unwrap();
    a.python(&format!(
        r#"
import email
m = email.message_from_bytes(open({path:?}, "rb").read())
assert m.get_content_type() == "multipart/report", m.get_content_type()
parts = [p.get_content_type() for p in m.walk()]
assert "message/delivery-status" in parts and "text/rfc822-headers" in parts, parts
"#,
        path = path.display().to_string()
    ));
}

#[test]
fn b_down_then_flush_delivers_exactly_once_even_across_a_restart() {
    let bport = free_port();
    let mut a = server_a(bport).table("queue", QUEUE_SLOW).start();
    submit(
        a.submission(),
        ALICE_A,
        &[BOB_B.0],
        "Subject: patience\n\nwait for it\n",
    );
    a.wait_for(15, "the first failed attempt", || {
        a.queue()
            .first()
            .and_then(|e| e.recipients[0].last_error.clone())
            .is_some()
    });
    let q = a.queue();
    assert_eq!(q.len(), 1);
    let r = &q[0].recipients[0];
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 1));
    assert!(
        r.last_error
            .as_deref()
            .unwrap_or("")
            .contains(&format!("127.0.0.1:{bport}")),
        "{r:?}"
    );
    let out = a.cli(&["queue", "list"], "");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("bob@b.test")
            && listing.contains("attempts=1")
            && listing.contains("last error"),
        "{listing}"
    );
    // A crashes with mail queued and comes back.
    a.kill9();
    a.restart();
    assert_eq!(a.queue().len(), 1, "the queue survives a crash");
    let b = server_b(bport).start();
    let out = a.cli(&["queue", "flush"], "");
    assert!(out.status.success());
    b.wait_for(15, "delivery after flush", || b.inbox(BOB_B.0).len() == 1);
    a.wait_for(10, "A's queue to empty", || a.queue().is_empty());
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(b.inbox(BOB_B.0).len(), 1, "delivered exactly once");
    assert!(a.inbox(ALICE_A.0).is_empty(), "no bounce");
}

#[test]
fn each_recipient_gets_its_own_outcome() {
    let bport = free_port();
    let down = free_port();
    let b = server_b(bport).start();
    let a = server_a(bport)
        .route("down.test", down)
        .table("queue", QUEUE_SLOW)
        .start();
    submit(
        a.submission(),
        ALICE_A,
        &[BOB_B.0, "nobody@b.test", "carol@a.test", "x@down.test"],
        "Subject: mixed\n\nfour ways\n",
    );
    b.wait_for(15, "bob's copy", || b.inbox(BOB_B.0).len() == 1);
    assert_eq!(a.inbox("carol@a.test").len(), 1, "local copy");
    a.wait_for(15, "the bounce for nobody", || {
        a.inbox(ALICE_A.0).len() == 1
    });
    let dsn = text(&a.inbox(ALICE_A.0)[0]);
    assert!(
        dsn.contains("Final-Recipient: rfc822; nobody@b.test"),
        "{dsn}"
    );
    assert!(
        !dsn.contains("Final-Recipient: rfc822; bob@b.test") && !dsn.contains("x@down.test"),
        "{dsn}"
    );
    a.wait_for(15, "x@down.test deferred", || {
        a.queue().iter().any(|e| {
            e.recipients
                .iter()
                .any(|r| r.recipient == "x@down.test" && r.last_error.is_some())
        })
    });
    let q = a.queue();
    assert_eq!(q.len(), 1);
    let pending: Vec<_> = q[0]
        .recipients
        .iter()
        .filter(|r| r.status == "pending")
        .map(|r| r.recipient.as_str())
        .collect();
    assert_eq!(pending, vec!["x@down.test"]);
}

#[test]
fn null_sender_mail_is_never_bounced() {
    let bport = free_port();
    let _b = server_b(bport).start();
    let a = server_a(bport)
        .table("aliases", "\"fwd@a.test\" = \"nobody@b.test\"")
        .start();
    let mut c = Client::connect(a.smtp());
    c.expect_code(220);
    c.cmd("EHLO b.test", 250);
    c.cmd("MAIL FROM:<>", 250);
    c.cmd("RCPT TO:<fwd@a.test>", 250);
    c.cmd("DATA", 354);
    c.send_raw(b"Subject: a bounce\r\n\r\nalready a bounce\r\n.\r\n");
    c.expect_code(250);
    a.wait_for(15, "the attempt to finish", || a.queue().is_empty());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(a.inbox(ALICE_A.0).is_empty() && a.inbox("carol@a.test").is_empty());
}

#[test]
fn an_alias_loop_between_two_servers_ends_in_a_bounce() {
    let (aport, bport) = (free_port(), free_port());
    let b = server_b(bport)
        .table("aliases", "\"loop@b.test\" = \"loop@a.test\"")
        .route("a.test", aport)
        .limits("max_hops = 12")
        .start();
    let a = peers::server_a()
        .accounts(&[ALICE_A])
        .listen_on("smtp", aport)
        .listen(&["submission"])
        .table("aliases", "\"loop@a.test\" = \"loop@b.test\"")
        .route("b.test", bport)
        .limits("max_hops = 12")
        .start();
    submit(
        a.submission(),
        ALICE_A,
        &["loop@a.test"],
        "Subject: round and round\n\nwhee\n",
    );
    a.wait_for(30, "the loop's bounce", || a.inbox(ALICE_A.0).len() == 1);
    let dsn = text(&a.inbox(ALICE_A.0)[0]);
    assert!(dsn.contains("5.4.6"), "{dsn}");
    a.wait_for(10, "A's queue to empty", || a.queue().is_empty());
    b.wait_for(10, "B's queue to empty", || b.queue().is_empty());
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(
        a.inbox(ALICE_A.0).len(),
        1,
        "exactly one bounce, no ping-pong"
    );
}

#[test]
fn aliases_and_catch_all_from_the_cli() {
    let s = TestServer::start();
    let ok = |args: &[&str]| {
        let out = s.cli(args, "");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    ok(&["alias", "add", "team@example.test", "bob@example.test"]);
    ok(&["alias", "add", "team@example.test", "carol@example.test"]);
    ok(&["alias", "add", "@example.test", "alice@example.test"]);
    ok(&["domain", "add", "other.test"]);
    assert!(ok(&["domain", "list"]).contains("other.test"));
    assert!(ok(&["alias", "list"]).contains("team@example.test -> carol@example.test"));
    s.deliver(
        "x@far.test",
        &["team@example.test", "whoever@example.test"],
        "Subject: to the team\n\nhi\n",
    );
    assert_eq!(s.inbox(BOB.0).len(), 1);
    assert_eq!(s.inbox(CAROL.0).len(), 1);
    assert_eq!(s.inbox(ALICE.0).len(), 1, "catch-all");
    // other.test is local but has no users and no catch-all: 550.
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    c.cmd("EHLO x", 250);
    c.cmd("MAIL FROM:<x@far.test>", 250);
    c.cmd("RCPT TO:<anyone@other.test>", 550);
    ok(&["alias", "remove", "@example.test"]);
    c.cmd("RCPT TO:<whoever@example.test>", 550);
    ok(&["domain", "remove", "other.test"]);
    c.cmd("RCPT TO:<anyone@other.test>", 554);
    let out = s.cli(&["domain", "remove", "example.test"], "");
    assert!(
        !out.status.success(),
        "a domain with accounts cannot be removed"
    );
}

#[test]
fn the_lab_command_runs_examples_lab_toml_and_mail_flows() {
    let example =
        std::fs::read_to_string(repo_root().join("examples/lab.toml")).expect("examples/lab.toml");
    // Same file, on free ports and in a scratch data directory.
    let mut lab = example.replace("lab-data/", "{data}/");
    for p in [
        "25025", "25587", "25110", "25143", "26025", "26587", "26110", "26143",
    ] {
        lab = lab.replace(
            &format!("127.0.0.1:{p}"),
            &format!("127.0.0.1:{}", free_port()),
        );
    }
    let s = TestServer::start_lab(&lab);
    submit(
        s.addr("school/submission"),
        ("usr1@school.test", "pass1"),
        &["usr1@webmail.test"],
        "Subject: lab\n\nfrom school to webmail\n",
    );
    let one_message = || {
        let mut c = Pop::connect(s.addr("webmail/pop3"));
        c.send("USER usr1@webmail.test");
        let _ = c.line();
        c.send("PASS pass1");
        let _ = c.line();
        c.send("STAT");
        let got = c.line().unwrap_or_default();
        c.send("QUIT");
        got.starts_with("+OK 1 ")
    };
    s.wait_for(15, "webmail's usr1 to have one message", one_message);
}

/// Issue 13: with a live and a dead peer and many messages, the runner once started an
/// attempt again from a stale list after it had finished (172 of 1,500 messages reached the
/// live peer twice), and 200 failing entries starved every later one. Every recipient is now
/// claimed in the store before an attempt, and due entries come longest-due first.
#[test]
fn many_messages_to_a_live_and_a_dead_peer_arrive_exactly_once_and_all_are_tried() {
    const N: usize = 600;
    let bport = free_port();
    let dead = free_port();
    let b = server_b(bport).start();
    let a = server_a(bport)
        .route("dead.test", dead)
        .table("queue", QUEUE_SLOW)
        .start();
    a.python(&format!(
        r#"
import os, smtplib
s = smtplib.SMTP(os.environ["HOST"], int(os.environ["SUBMISSION_PORT"]))
s.login("{user}", "{pw}")
for i in range({N}):
    msg = "From: {user}\r\nSubject: n{{}}\r\nMessage-ID: <n{{}}@a.test>\r\n\r\nbody {{}}\r\n".format(i, i, i)
    s.sendmail("{user}", ["{bob}", "x@dead.test"], msg)
s.quit()
"#,
        user = ALICE_A.0,
        pw = ALICE_A.1,
        bob = BOB_B.0,
    ));
    b.wait_for(180, "every message at B", || b.inbox(BOB_B.0).len() >= N);
    // Any second copy would come within the next rounds.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let inbox = b.inbox(BOB_B.0);
    let mut seen = std::collections::HashMap::new();
    for m in &inbox {
        let t = text(m);
        let id = t
            .lines()
            .find(|l| l.starts_with("Message-ID: "))
            .unwrap_or("none")
            .to_string();
        *seen.entry(id).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(inbox.len(), N);
    // Every entry's dead recipient was tried (none starved), and is waiting for its retry.
    let dead_tried = |e: &mailroom_store::QueueEntry| {
        e.recipients.iter().all(|r| {
            if r.recipient == "x@dead.test" {
                r.status == "pending" && r.attempts == 1
            } else {
                r.status == "delivered" && r.attempts == 1
            }
        })
    };
    a.wait_for(60, "an attempt for every dead recipient", || {
        a.queue().iter().all(dead_tried)
    });
    let q = a.queue();
    assert_eq!(q.len(), N, "the dead recipients stay queued");
    assert!(q.iter().all(|e| e.recipients.len() == 2 && dead_tried(e)));
}
