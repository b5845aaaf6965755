//! Two mailroom nodes on one PostgreSQL database (`store = "postgres://..."`): what one node
//! accepts, the other serves at once; IDLE on one hears of deliveries on the other; flags,
//! expunges and MODSEQs agree; the POP3 maildrop lock holds across nodes and dies with the
//! node that held it; failed logins from one address add up over both nodes; a web login
//! session made on one node is known (and ended) on the other. Each test gets a fresh database of the test cluster (see
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
    // Five deliveries on A, each heard on B. The poll alone (every 500 ms) would take 250 ms
    // on average and more than 250 ms half the time; the notification takes a few ms.
    let mut waits = Vec::new();
    for i in 1..=5 {
        a.deliver(
            "bob@example.test",
            &[ALICE.0],
            &msg("bob@example.test", ALICE.0, &format!("wake up {i}"), "now"),
        );
        let delivered = Instant::now();
        // `* N RECENT` may follow the previous EXISTS.
        let line = loop {
            let l = imap.line().expect("an untagged answer during IDLE");
            if !l.ends_with(" RECENT") {
                break l;
            }
        };
        waits.push(delivered.elapsed());
        assert_eq!(line, format!("* {i} EXISTS"));
        assert!(
            waits[i - 1] < Duration::from_secs(1),
            "IDLE on B heard of A's delivery only after {:?}",
            waits[i - 1]
        );
    }
    let slow = waits
        .iter()
        .filter(|w| **w > Duration::from_millis(250))
        .count();
    assert!(
        slow <= 1,
        "IDLE on B was not woken by the notification (waits {waits:?})"
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

/// A node with IMAP and HTTP on `url`: one failed login per connection (`max_auth_failures =
/// 1`), a base delay of 100 ms, failures counted per address for 3 s after the last.
fn login_node(url: &str) -> TestServer {
    ServerConfig::example()
        .listen(&["imap", "http"])
        .top(&format!("store = \"{url}\""))
        .limits(
            "auth_failure_delay = \"100ms\"\nmax_auth_failures = 1\nauth_failure_window = \"3s\"",
        )
        .start()
}

/// One IMAP LOGIN with a wrong password on a new connection: the reply and how long it took.
fn failed_imap_login(addr: std::net::SocketAddr) -> (String, Duration) {
    let mut c = Imap::connect(addr);
    let started = Instant::now();
    let (tagged, _) = c.cmd(&format!("LOGIN {} wrong-password", ALICE.0));
    (tagged, started.elapsed())
}

/// `POST /api/login` with the right password on `node`: the HTTP status.
fn http_login_status(node: &TestServer) -> String {
    node.python(
        r#"
import http.client, json, os
c = http.client.HTTPConnection("127.0.0.1", int(os.environ["HTTP_PORT"]), timeout=30)
c.request("POST", "/api/login", body=json.dumps({"address": "alice@example.test", "password": "secret"}),
          headers={"Content-Type": "application/json"})
print(c.getresponse().status)
"#,
    )
    .trim()
    .to_string()
}

#[test]
fn failed_logins_spread_over_two_nodes_add_up_as_on_one() {
    let url = mailroom_store::testing::pg_database();
    let (a, b) = (login_node(&url), login_node(&url));
    assert_eq!(ALICE.1, "secret");
    // Ten failures from 127.0.0.1, alternately on A and B, each on a new connection (so the
    // per-connection count is always 1). The delay doubles with the address's count over both
    // nodes: 100, 200, 400, then 800 ms (capped at 8x). Counted per node, the fourth (B's
    // second) would wait 200 ms.
    let mut delays = Vec::new();
    for i in 0..10 {
        let node = if i % 2 == 0 { &a } else { &b };
        let (tagged, took) = failed_imap_login(node.imap());
        assert!(tagged.contains("NO [AUTHENTICATIONFAILED]"), "{tagged}");
        delays.push(took);
    }
    for (i, d) in delays.iter().enumerate().skip(3) {
        assert!(
            *d >= Duration::from_millis(750),
            "failure {} (on node {}) waited {d:?}: the other node's failures were not counted ({delays:?})",
            i + 1,
            if i % 2 == 0 { "A" } else { "B" }
        );
    }
    // 10 x max_auth_failures from the address: the HTTP login is refused on both nodes, even
    // with the right password (5 failures on each node alone would not reach it).
    assert_eq!(http_login_status(&a), "429");
    assert_eq!(http_login_status(&b), "429");
    // After the window, good logins work on both.
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(http_login_status(&b), "200");
    Imap::login(a.imap(), ALICE).ok("LOGOUT");
    // And the count starts again: a new failure waits the base delay.
    let (_, took) = failed_imap_login(b.imap());
    assert!(took < Duration::from_millis(700), "{took:?}");
}

#[test]
fn a_web_login_on_one_node_is_used_and_ended_on_the_other() {
    let url = mailroom_store::testing::pg_database();
    let (a, b) = (login_node(&url), login_node(&url));
    let script = r#"
import http.client, json, os, sys
A, B = int(os.environ["A_PORT"]), int(os.environ["B_PORT"])
def call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = dict(headers or {})
    h["Host"] = "127.0.0.1:%d" % port
    if body is not None:
        body = json.dumps(body); h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    return r.status, r, r.read()
st, r, data = call(A, "POST", "/api/login", {"address": "alice@example.test", "password": "secret"})
assert st == 200, (st, data)
cookie = r.getheader("Set-Cookie").split(";")[0]
csrf = json.loads(data)["csrf_token"]
# The cookie from A works on B.
st, r, data = call(B, "GET", "/api/me", headers={"Cookie": cookie})
assert st == 200 and json.loads(data)["address"] == "alice@example.test", (st, data)
st, r, data = call(B, "GET", "/api/mailboxes", headers={"Cookie": cookie})
assert st == 200 and any(m["name"] == "INBOX" for m in json.loads(data)), (st, data)
# A change on B needs A's CSRF token: without it, or with another, B refuses.
st, r, data = call(B, "POST", "/api/logout", headers={"Cookie": cookie, "Origin": "http://127.0.0.1:%d" % B})
assert st == 403, (st, data)
st, r, data = call(B, "POST", "/api/logout", headers={"Cookie": cookie, "X-CSRF-Token": "f" * 64, "Origin": "http://127.0.0.1:%d" % B})
assert st == 403, (st, data)
st, r, data = call(A, "GET", "/api/me", headers={"Cookie": cookie})
assert st == 200, (st, data)
# Logged out on B: the cookie then fails on A too.
st, r, data = call(B, "POST", "/api/logout", headers={"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:%d" % B})
assert st == 200, (st, data)
st, r, data = call(A, "GET", "/api/me", headers={"Cookie": cookie})
assert st == 401, (st, data)
st, r, data = call(B, "GET", "/api/me", headers={"Cookie": cookie})
assert st == 401, (st, data)
# A made-up cookie, and one that is not even hex, are not logged in anywhere.
for bad in ["mailroom_session=" + "0" * 64, "mailroom_session=../../etc", "mailroom_session=" + "a" * 5000]:
    st, r, data = call(A, "GET", "/api/me", headers={"Cookie": bad})
    assert st == 401, (bad[:40], st, data)
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("A_PORT", a.addr("http").port().to_string())
        .env("B_PORT", b.addr("http").port().to_string())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The shared store, opened by the test beside the nodes.
fn shared_store(url: &str) -> mailroom_store::Store {
    std::sync::Arc::new(mailroom_store::postgres::PgStore::open(url).expect("open the database"))
}

/// The subjects of an account's INBOX in the shared store.
fn subjects(store: &mailroom_store::Store, address: &str) -> Vec<String> {
    let acct = store.find_account(address).unwrap().expect("account");
    let inbox = store.mailbox(acct.id, "INBOX").unwrap().expect("INBOX");
    store
        .list_messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| {
            let at = mailroom_store::MessageRef::Mailbox {
                mailbox: inbox.id,
                uid: m.uid,
            };
            let raw = store.message_octets(at).unwrap();
            let text = String::from_utf8_lossy(&raw).to_string();
            text.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn both_nodes_run_the_queue_and_each_message_leaves_once() {
    use support::peers::{self, ALICE_A, BOB_B};
    let bport = support::free_port();
    let b = peers::server_b()
        .listen_on("smtp", bport)
        .listen(&["pop3"])
        .start();
    let url = mailroom_store::testing::pg_database();
    let node = || {
        peers::server_a()
            .listen(&["submission"])
            .route("b.test", bport)
            .top(&format!("store = \"{url}\""))
            .start()
    };
    let (a1, a2) = (node(), node());
    const N: usize = 20;
    for i in 0..N {
        let via = if i % 2 == 0 { &a1 } else { &a2 };
        support::submit(
            via.submission(),
            ALICE_A,
            &[BOB_B.0],
            &msg(
                ALICE_A.0,
                BOB_B.0,
                &format!("q{i}"),
                "through the shared queue",
            ),
        );
    }
    b.wait_for(30, "every message at B", || b.inbox(BOB_B.0).len() >= N);
    let store = shared_store(&url);
    support::server::poll(10, Duration::from_millis(100), || {
        store.queue_list().map(|q| q.is_empty()).unwrap_or(false)
    });
    assert!(
        store.queue_list().unwrap().is_empty(),
        "the queue kept entries"
    );
    // Both runners were awake the whole time: had they both sent one, B would hold it twice.
    std::thread::sleep(Duration::from_millis(500));
    let mut got: Vec<String> = b
        .inbox(BOB_B.0)
        .iter()
        .filter_map(|m| {
            String::from_utf8_lossy(m)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("q{i}")).collect();
    want.sort();
    assert_eq!(got, want, "a message was lost or sent twice");
}

#[test]
fn a_killed_nodes_queue_claims_expire_with_the_short_lease_and_another_node_sends_the_mail() {
    use support::peers::{self, ALICE_A, BOB_B};
    // A peer that accepts connections and never greets: node A's one connection to it
    // (per_destination = 1) hangs in its first attempt, the other jobs wait in the backlog
    // under claims of `claim_lease` renewed every second.
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_port = stall.local_addr().unwrap().port();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in stall.incoming().flatten() {
            held.push(c);
            let _ = seen_tx.send(());
        }
    });
    let bport = support::free_port();
    let b = peers::server_b()
        .listen_on("smtp", bport)
        .listen(&["pop3"])
        .start();
    let url = mailroom_store::testing::pg_database();
    let mut a = peers::server_a()
        .listen(&["submission"])
        .route("b.test", stall_port)
        .top(&format!("store = \"{url}\""))
        .table(
            "queue",
            "per_destination = 1\nclaim_lease = \"5s\"\nconnect_timeout = \"60s\"\ncommand_timeout = \"60s\"",
        )
        .start();
    const N: usize = 6;
    for i in 0..N {
        support::submit(
            a.submission(),
            ALICE_A,
            &[BOB_B.0],
            &msg(
                ALICE_A.0,
                BOB_B.0,
                &format!("c{i}"),
                "claimed by a node that dies",
            ),
        );
    }
    seen_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("node A connects to the stalling peer");
    let store = shared_store(&url);
    support::server::poll(10, Duration::from_millis(100), || {
        store
            .queue_due(mailroom_store::now_unix(), 100)
            .map(|d| d.is_empty())
            .unwrap_or(false)
    });
    assert!(
        store
            .queue_due(mailroom_store::now_unix(), 100)
            .unwrap()
            .is_empty(),
        "node A claimed every message"
    );
    // Past a renewal (every fifth of the lease), so the claims have been renewed at least once.
    std::thread::sleep(Duration::from_millis(2500));
    a.kill9();
    let killed = Instant::now();
    // Node B on the same database, routed to the live peer.
    let _b_node = peers::server_a()
        .listen(&["submission"])
        .route("b.test", bport)
        .top(&format!("store = \"{url}\""))
        .start();
    b.wait_for(30, "the backlog's messages at B", || {
        b.inbox(BOB_B.0).len() >= N - 1
    });
    let took = killed.elapsed();
    eprintln!("the dead node's waiting mail was sent by the other {took:?} after the kill");
    // The lease (5 s), a round (1 s) and node B's start-up; the old claims lasted for the
    // backlog's whole length in attempt budgets (hours here).
    assert!(
        took < Duration::from_secs(20),
        "the dead node's claims held for {took:?}"
    );
    // The job that was being sent keeps its claim for the attempt's budget (a node that dies
    // mid-attempt may have sent it): it is still queued (once the other node recorded its
    // deliveries), and nothing arrived twice.
    support::server::poll(10, Duration::from_millis(100), || {
        store.queue_list().map(|q| q.len() <= 1).unwrap_or(false)
    });
    assert_eq!(store.queue_list().unwrap().len(), 1);
    let mut got: Vec<String> = b
        .inbox(BOB_B.0)
        .iter()
        .filter_map(|m| {
            String::from_utf8_lossy(m)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), N - 1, "a message arrived twice: {got:?}");
}

/// One SMTP transaction by hand that tolerates a dead server: whether the 250 after DATA came.
fn try_deliver(addr: std::net::SocketAddr, subject: &str) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = stream.try_clone() else {
        return false;
    };
    let mut r = BufReader::new(read_half);
    let mut w = stream;
    let mut reply = || -> Option<String> {
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).ok()? == 0 {
                return None;
            }
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return Some(l);
            }
        }
    };
    let body = msg("bob@example.test", ALICE.0, subject, "load");
    let body = support::wire_body(&body);
    let steps: [(String, &str); 5] = [
        (String::new(), "220"),
        ("EHLO load.test\r\n".into(), "250"),
        ("MAIL FROM:<bob@example.test>\r\n".into(), "250"),
        (format!("RCPT TO:<{}>\r\n", ALICE.0), "250"),
        ("DATA\r\n".into(), "354"),
    ];
    for (send, want) in steps {
        if !send.is_empty() && w.write_all(send.as_bytes()).is_err() {
            return false;
        }
        match reply() {
            Some(l) if l.starts_with(want) => {}
            _ => return false,
        }
    }
    if w.write_all(format!("{body}.\r\n").as_bytes()).is_err() {
        return false;
    }
    let ok = matches!(reply(), Some(l) if l.starts_with("250"));
    let _ = w.write_all(b"QUIT\r\n");
    ok
}

#[test]
fn a_node_killed_under_load_loses_nothing_acknowledged_and_the_other_serves_on() {
    let url = mailroom_store::testing::pg_database();
    let mut a = node(&url);
    let b = node(&url);
    let (a_smtp, b_smtp) = (a.smtp(), b.smtp());
    // Four senders, two per node, each sending until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            let addr = if t % 2 == 0 { a_smtp } else { b_smtp };
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut failed = 0;
                for i in 0..400 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let subject = format!("s{t}-{i}");
                    if try_deliver(addr, &subject) {
                        acked.push((subject, Instant::now()));
                    } else {
                        failed += 1;
                    }
                }
                (t, acked, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    a.kill9();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut after_kill_on_b = 0usize;
    for s in senders {
        let (t, got, failed) = s.join().unwrap();
        if t % 2 == 1 {
            assert_eq!(failed, 0, "node B refused mail while A died");
            after_kill_on_b += got.iter().filter(|(_, at)| *at > killed).count();
        }
        acked.extend(got.into_iter().map(|(subject, _)| subject));
    }
    assert!(
        after_kill_on_b > 0,
        "node B accepted nothing after A was killed"
    );
    let store = shared_store(&url);
    let stored: std::collections::HashSet<String> = subjects(&store, ALICE.0).into_iter().collect();
    eprintln!(
        "acknowledged {} ({} by B after A was killed), stored {}",
        acked.len(),
        after_kill_on_b,
        stored.len()
    );
    let lost: Vec<&String> = acked.iter().filter(|s| !stored.contains(*s)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    // B still serves the account.
    let mut pop = Pop::login(b.pop3(), ALICE.0, ALICE.1);
    assert_eq!(pop.stat().0, stored.len());
    pop.ok("QUIT");
}

#[test]
fn migrate_copies_a_data_directory_and_a_node_serves_it_as_it_was() {
    let mut old = ServerConfig::example().listen(&["smtp", "imap"]).start();
    for i in 1..=3 {
        old.deliver(
            "bob@example.test",
            &[ALICE.0],
            &msg("bob@example.test", ALICE.0, &format!("old{i}"), "kept"),
        );
    }
    let mut imap = Imap::login(old.imap(), ALICE);
    imap.ok("SELECT INBOX");
    imap.ok("STORE 2 +FLAGS (\\Flagged)");
    imap.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    imap.ok("EXPUNGE");
    let status = |i: &mut Imap| {
        i.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
            .into_iter()
            .find(|l| l.starts_with("* STATUS"))
            .unwrap_or_default()
    };
    let before = status(&mut imap);
    let fetch_before = imap.ok("UID FETCH 1:* (FLAGS RFC822.SIZE)");
    drop(imap);
    assert!(old.terminate(), "the old server did not stop cleanly");

    let url = mailroom_store::testing::pg_database();
    // A bad target says what a good one looks like.
    let bad = old.cli(&["migrate", "--to", "mysql://x"], "");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("postgres://user:password@host"));
    let out = old.cli(&["migrate", "--to", &url], "");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("checked the counts"), "{said}");
    assert!(said.contains("2 messages"), "{said}");
    // Twice is refused: the database is no longer empty.
    let again = old.cli(&["migrate", "--to", &url], "");
    assert!(!again.status.success());

    let b = node(&url);
    let mut imap = Imap::login(b.imap(), ALICE);
    assert_eq!(status(&mut imap), before, "the folder changed in the move");
    imap.ok("SELECT INBOX");
    // The same messages, UIDs, flags and sizes; \Recent was the first session's (RFC 3501
    // §2.3.2) and the mark of what it was told moved with the folder, so no longer shown.
    let unrecent: Vec<String> = fetch_before
        .iter()
        .map(|l| l.replace("\\Recent ", "").replace("\\Recent", ""))
        .collect();
    assert_ne!(unrecent, fetch_before, "the old session saw \\Recent");
    assert_eq!(imap.ok("UID FETCH 1:* (FLAGS RFC822.SIZE)"), unrecent);
}

#[test]
fn migrate_goes_to_postgres_and_back_and_the_data_directory_serves_the_same_messages() {
    let mut old = ServerConfig::example().listen(&["smtp", "imap"]).start();
    for i in 1..=4 {
        old.deliver(
            "bob@example.test",
            &[ALICE.0],
            &msg("bob@example.test", ALICE.0, &format!("round{i}"), "trip"),
        );
    }
    let mut imap = Imap::login(old.imap(), ALICE);
    imap.ok("ENABLE CONDSTORE");
    imap.ok("SELECT INBOX");
    imap.ok("STORE 2 +FLAGS (\\Flagged $Work)");
    imap.ok("STORE 3 +FLAGS.SILENT (\\Deleted)");
    imap.ok("EXPUNGE");
    imap.ok("COPY 1:2 Archive");
    let status = |i: &mut Imap, mailbox: &str| {
        i.ok(&format!(
            "STATUS {mailbox} (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ UNSEEN)"
        ))
        .into_iter()
        .find(|l| l.starts_with("* STATUS"))
        .unwrap_or_default()
    };
    let fetch = |i: &mut Imap, mailbox: &str| {
        i.ok(&format!("EXAMINE {mailbox}"));
        i.ok("UID FETCH 1:* (FLAGS RFC822.SIZE MODSEQ BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    };
    imap.ok("UNSELECT");
    let before: Vec<(String, Vec<String>)> = ["INBOX", "Archive"]
        .iter()
        .map(|m| (status(&mut imap, m), fetch(&mut imap, m)))
        .collect();
    drop(imap);
    assert!(old.terminate(), "the old server did not stop cleanly");

    let url = mailroom_store::testing::pg_database();
    let out = old.cli(&["migrate", "--to", &url], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Back into a new data directory.
    let new = tempfile::tempdir().expect("temporary directory");
    let target = format!("sqlite:{}", new.path().join("data").display());
    let bad = old.cli(&["migrate", "--from", &url, "--to", "/no/scheme"], "");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("sqlite:DIRECTORY"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let itself = format!("sqlite:{}", old.data_dir().display());
    let bad = old.cli(&["migrate", "--to", &itself], "");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("the source itself"));
    let out = old.cli(&["migrate", "--from", &url, "--to", &target], "");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("checked the counts"), "{said}");
    assert!(said.contains("5 messages"), "{said}");
    assert!(said.contains("remove the store line"), "{said}");
    // Twice is refused: the data directory is no longer empty.
    let again = old.cli(&["migrate", "--from", &url, "--to", &target], "");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("must be empty"));

    let back = ServerConfig::example()
        .listen(&["imap"])
        .data_dir(&new.path().join("data"))
        .start();
    let mut imap = Imap::login(back.imap(), ALICE);
    imap.ok("ENABLE CONDSTORE");
    let after: Vec<(String, Vec<String>)> = ["INBOX", "Archive"]
        .iter()
        .map(|m| (status(&mut imap, m), fetch(&mut imap, m)))
        .collect();
    assert_eq!(
        after, before,
        "UIDs, flags, MODSEQs or counts changed on the way"
    );
    assert!(after[0].1.iter().any(|l| l.contains("$Work")), "{after:?}");
}
