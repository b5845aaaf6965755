//! Two mailroom nodes on one PostgreSQL database (`store = "postgres://..."`): what one node
//! accepts, the other serves at once; IDLE on one hears of deliveries on the other; flags,
//! expunges and MODSEQs agree; the POP3 maildrop lock holds across nodes and dies with the
//! node that held it. Each test gets a fresh database of the test cluster (see
//! `mailroom_store::testing`).

mod support;

use std::time::{Duration, Instant};

use support::imap::{msg, Imap};
use support::pop3::Pop;
use support::{ServerConfig, TestServer, ALICE};

/// A node with SMTP, POP3 and IMAP on the shared database `url`.
fn node(url: &str) -> TestServer {
    ServerConfig::example()
        .listen(&["smtp", "pop3", "imap"])
        .top(&format!("store = \"{url}\""))
        .start()
}

fn two_nodes() -> (TestServer, TestServer) {
    let url = mailroom_store::testing::pg_database();
    let a = node(&url);
    let b = node(&url);
    (a, b)
}

#[test]
fn mail_accepted_on_one_node_is_read_on_the_other_at_once() {
    let (a, b) = two_nodes();
    a.deliver(
        "bob@example.test",
        &[ALICE.0],
        &msg("bob@example.test", ALICE.0, "across", "from node A"),
    );
    // No waiting: the 250 on A means committed, and B reads the same database.
    let mut pop = Pop::login(b.pop3(), ALICE.0, ALICE.1);
    assert_eq!(pop.stat().0, 1);
    let (_, body) = pop.retr(1);
    assert!(String::from_utf8_lossy(&body).contains("Subject: across"));
    pop.ok("QUIT");
    let mut imap = Imap::login(b.imap(), ALICE);
    let untagged = imap.ok("SELECT INBOX");
    assert!(untagged.iter().any(|l| l == "* 1 EXISTS"), "{untagged:?}");
    let fetched = imap.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]");
    assert!(
        fetched.iter().any(|l| l.contains("Subject: across")),
        "{fetched:?}"
    );
}

#[test]
fn idle_on_one_node_hears_a_delivery_on_the_other_within_a_second() {
    let (a, b) = two_nodes();
    let mut imap = Imap::login(b.imap(), ALICE);
    imap.ok("SELECT INBOX");
    let cont = imap.raw("i1 IDLE");
    assert!(cont.starts_with('+'), "{cont}");
    a.deliver(
        "bob@example.test",
        &[ALICE.0],
        &msg("bob@example.test", ALICE.0, "wake up", "now"),
    );
    let delivered = Instant::now();
    let line = imap.line().expect("an untagged answer during IDLE");
    let waited = delivered.elapsed();
    assert_eq!(line, "* 1 EXISTS");
    assert!(
        waited < Duration::from_secs(1),
        "IDLE on B heard of A's delivery only after {waited:?}"
    );
    imap.c.send("DONE");
    let (tagged, _) = imap.until_tag("i1");
    assert!(tagged.starts_with("i1 OK"), "{tagged}");
}

#[test]
fn flags_expunges_and_modseqs_agree_across_nodes() {
    let (a, b) = two_nodes();
    for i in 1..=3 {
        a.deliver(
            "bob@example.test",
            &[ALICE.0],
            &msg("bob@example.test", ALICE.0, &format!("m{i}"), "x"),
        );
    }
    let mut on_a = Imap::login(a.imap(), ALICE);
    let mut on_b = Imap::login(b.imap(), ALICE);
    on_a.ok("ENABLE QRESYNC");
    on_b.ok("ENABLE QRESYNC");
    on_a.ok("SELECT INBOX");
    on_b.ok("SELECT INBOX");
    let stored = on_a.ok("STORE 1 +FLAGS (\\Flagged)");
    let modseq_on_a = stored
        .iter()
        .find(|l| l.starts_with("* 1 FETCH"))
        .and_then(|l| l.split("MODSEQ (").nth(1))
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no MODSEQ in {stored:?}"))
        .to_string();
    let seen_on_b = on_b.ok("FETCH 1 (FLAGS MODSEQ)");
    let line = seen_on_b
        .iter()
        .find(|l| l.starts_with("* 1 FETCH"))
        .unwrap_or_else(|| panic!("{seen_on_b:?}"));
    assert!(line.contains("\\Flagged"), "{line}");
    assert!(line.contains(&format!("MODSEQ ({modseq_on_a})")), "{line}");
    // An expunge on A reaches B's session at its next command.
    on_a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)");
    on_a.ok("EXPUNGE");
    let noop = on_b.ok("NOOP");
    assert!(
        noop.iter()
            .any(|l| l == "* VANISHED 2" || l == "* 2 EXPUNGE"),
        "{noop:?}"
    );
    let status = |i: &mut Imap| {
        i.ok("STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ)")
            .into_iter()
            .find(|l| l.starts_with("* STATUS"))
            .unwrap_or_default()
    };
    let (sa, sb) = (status(&mut on_a), status(&mut on_b));
    assert!(sa.contains("MESSAGES 2"), "{sa}");
    assert_eq!(sa, sb, "the nodes disagree");
}

/// `USER`/`PASS` on `addr`; the answer to PASS.
fn pop_pass(addr: std::net::SocketAddr) -> (Pop, String) {
    let mut p = Pop::connect(addr);
    p.ok(&format!("USER {}", ALICE.0));
    p.send(&format!("PASS {}", ALICE.1));
    let answer = p.line().expect("answer to PASS");
    (p, answer)
}

#[test]
fn the_pop3_maildrop_lock_holds_across_nodes_and_dies_with_its_node() {
    let (a, mut b) = two_nodes();
    let (mut on_a, answer) = pop_pass(a.pop3());
    assert!(answer.starts_with("+OK"), "{answer}");
    let (_, refused) = pop_pass(b.pop3());
    assert!(refused.starts_with("-ERR [IN-USE]"), "{refused}");
    on_a.ok("QUIT");
    // Released with A's QUIT: B gets the maildrop (the unlock is on its way to the database).
    let mut on_b = None;
    support::server::poll(5, Duration::from_millis(50), || {
        let (p, answer) = pop_pass(b.pop3());
        on_b = answer.starts_with("+OK").then_some(p);
        on_b.is_some()
    });
    assert!(on_b.is_some(), "A's QUIT did not release the maildrop");
    let (_, refused) = pop_pass(a.pop3());
    assert!(refused.starts_with("-ERR [IN-USE]"), "{refused}");
    // B dies holding it (no QUIT, no clean shutdown): its database connection closes, and
    // the lock goes with it.
    b.kill9();
    let mut taken = false;
    support::server::poll(10, Duration::from_millis(100), || {
        let (mut p, answer) = pop_pass(a.pop3());
        taken = answer.starts_with("+OK");
        if taken {
            p.ok("QUIT");
        }
        taken
    });
    assert!(taken, "a killed node's maildrop lock was never released");
}
