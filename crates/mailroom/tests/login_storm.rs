//! Many logins at once: password checks (argon2id) run on a bounded pool, so a storm of logins
//! gets answers — success, a failed login, or a temporary failure (SMTP `454 4.7.0`, POP3
//! `-ERR [SYS/TEMP]`, IMAP `NO [UNAVAILABLE]`) — and never a hang; a temporary failure is not
//! counted as a failed login. Successful checks are cached, and a password changed or an
//! account removed by `mailroom user` invalidates the cache at once.

mod support;

use support::imap::Imap;
use support::pop3::Pop;
use support::{smtp, ServerConfig, TestServer, ALICE, BOB, CAROL};

/// A server with SMTP, submission, POP3 and IMAP listeners, the usual three accounts, and
/// `extra` appended (more `[[accounts]]`, then a `[limits]` table).
fn start(extra: &str) -> TestServer {
    ServerConfig::example()
        .listen(&["smtp", "submission", "pop3", "imap"])
        .extra(extra)
        .start()
}

/// `[[accounts]]` user0..user{n-1}@example.test with passwords pw0.., as argon2id hashes with
/// the default (full-cost) parameters, made in parallel.
fn many_accounts(n: usize) -> String {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            std::thread::spawn(move || {
                let h = mailroom_store::password::hash_password(&format!("pw{i}")).expect("hash");
                format!("[[accounts]]\naddress = \"user{i}@example.test\"\npassword = \"{h}\"\n\n")
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("hash thread"))
        .collect()
}

/// 60 clients at once, each logging in with its own account over IMAP (3 times), POP3 (twice)
/// and SMTP submission (twice): every login succeeds.
#[test]
fn concurrent_correct_logins_all_succeed() {
    let s = start(&many_accounts(60));
    let out = s.python(
        r#"
import base64, imaplib, os, poplib, smtplib, threading
host = os.environ["HOST"]
iport, pport, sport = int(os.environ["IMAP_PORT"]), int(os.environ["POP3_PORT"]), int(os.environ["SUBMISSION_PORT"])
N = 60
ok = [0] * N
errors = []
start = threading.Barrier(N)

def client(i):
    user, pw = f"user{i}@example.test", f"pw{i}"
    try:
        start.wait(timeout=60)
        for _ in range(3):
            m = imaplib.IMAP4(host, iport, timeout=60)
            typ, _ = m.login(user, pw)
            assert typ == "OK", typ
            m.logout()
            ok[i] += 1
        for _ in range(2):
            p = poplib.POP3(host, pport, timeout=60)
            p.user(user)
            r = p.pass_(pw)
            assert r.startswith(b"+OK " + user.encode()), r
            p.quit()
            ok[i] += 1
        for _ in range(2):
            with smtplib.SMTP(host, sport, timeout=60) as c:
                c.ehlo("client.test")
                code, text = c.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{user}\0{pw}".encode()).decode())
                assert code == 235, (code, text)
            ok[i] += 1
    except Exception as e:
        errors.append(f"{user}: {e!r}")

threads = [threading.Thread(target=client, args=(i,)) for i in range(N)]
for t in threads: t.start()
for t in threads: t.join(timeout=120)
assert not any(t.is_alive() for t in threads), "a client hung"
assert not errors, errors
print("logins", sum(ok))
"#,
    );
    assert!(out.contains("logins 420"), "{out}");
    assert!(
        !s.log_text().contains("authentication failed"),
        "{}",
        s.log_text()
    );
}

/// The Python side of the storm: `N` clients of one protocol connect, wait for each other,
/// then all send a wrong password (each a different one, or an unknown user) at once. Repeated
/// up to five rounds until some got the temporary failure. Prints `temp=T rejected=R`.
const STORM: &str = r#"
import base64, imaplib, os, poplib, smtplib, socket, sys, threading
host = os.environ["HOST"]
proto = sys.argv[1]
port = int(os.environ[{"imap": "IMAP_PORT", "pop3": "POP3_PORT", "smtp": "SUBMISSION_PORT"}[proto]])
N = 30
IMAP_TEMP = b"[UNAVAILABLE] the server cannot check passwords right now (too busy); try again in a moment"
IMAP_FAIL = b"[AUTHENTICATIONFAILED] "
POP_TEMP = b"-ERR [SYS/TEMP] the server cannot check passwords right now (too busy); try again in a moment"
POP_FAIL = b"-ERR [AUTH] "
SMTP_TEMP = (454, b"4.7.0 Temporary authentication failure; try again later")

def attempt(round_, i, barrier):
    # Half wrong passwords for alice, half unknown users: every (user, password) differs.
    user = "alice@example.test" if i % 2 else f"nobody{i}@example.test"
    pw = f"wrong-{round_}-{i}"
    if proto == "imap":
        m = imaplib.IMAP4(host, port, timeout=30)
        barrier.wait(timeout=30)
        try:
            m.login(user, pw)
            return "ok"
        except imaplib.IMAP4.error as e:
            text = e.args[0]
            if text == IMAP_TEMP: return "temp"
            if text.startswith(IMAP_FAIL): return "rejected"
            return f"unexpected {text!r}"
        finally:
            m.shutdown()
    if proto == "pop3":
        p = poplib.POP3(host, port, timeout=30)
        p.user(user)
        barrier.wait(timeout=30)
        try:
            p.pass_(pw)
            return "ok"
        except poplib.error_proto as e:
            text = e.args[0]
            if text == POP_TEMP: return "temp"
            if text.startswith(POP_FAIL): return "rejected"
            return f"unexpected {text!r}"
        finally:
            p.close()
    c = smtplib.SMTP(host, port, timeout=30)
    c.ehlo("client.test")
    barrier.wait(timeout=30)
    try:
        code, text = c.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{user}\0{pw}".encode()).decode())
        if (code, text) == SMTP_TEMP: return "temp"
        if code == 535: return "rejected"
        return f"unexpected {code} {text!r}"
    finally:
        c.close()

temp = rejected = 0
for round_ in range(5):
    results = [None] * N
    barrier = threading.Barrier(N)
    def run(i):
        try:
            results[i] = attempt(round_, i, barrier)
        except Exception as e:
            results[i] = f"error {e!r}"
    threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
    for t in threads: t.start()
    for t in threads: t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client hung"
    bad = [r for r in results if r not in ("temp", "rejected")]
    assert not bad, bad
    temp += results.count("temp")
    rejected += results.count("rejected")
    if temp:
        break
print(f"temp={temp} rejected={rejected}")
"#;

fn storm(s: &TestServer, proto: &str) -> (usize, usize) {
    let out = s.python_output(&format!(
        "import sys\nsys.argv = ['storm', '{proto}']\n{STORM}"
    ));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{proto} storm failed\nstdout:\n{stdout}\nstderr:\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
    let field = |name: &str| -> usize {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {stdout:?}"))
    };
    (field("temp="), field("rejected="))
}

/// One password-checking thread and one queue place: most of 30 wrong logins sent at once get
/// the temporary failure, in each protocol, with its code and text; none hangs; the failed
/// logins logged are exactly the rejected ones (a temporary failure is not a failed login);
/// and afterwards a correct login works in each protocol.
#[test]
fn a_storm_of_wrong_logins_gets_temporary_failures_and_never_hangs() {
    let s = start(
        "[limits]\nauth_workers = 1\nauth_queue = 1\nauth_failure_delay = \"20ms\"\nmax_connections_per_ip = 200\n",
    );
    let mut rejected_total = 0;
    for proto in ["imap", "pop3", "smtp"] {
        let (temp, rejected) = storm(&s, proto);
        eprintln!("{proto}: {temp} temporary failures, {rejected} rejected");
        assert!(temp >= 1, "{proto}: no temporary failure");
        assert!(
            rejected >= 1,
            "{proto}: every login refused; one should have been checked"
        );
        rejected_total += rejected;
    }
    // Exactly one "authentication failed" line per rejected login.
    let failed_lines = || s.log_text().matches("authentication failed").count();
    s.wait_for(10, "the failed logins in the log", || {
        failed_lines() >= rejected_total
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        failed_lines(),
        rejected_total,
        "temporary failures were counted"
    );
    assert!(s.log_text().contains("password checks are overloaded"));

    // After the storm: a correct login in each protocol.
    Imap::login(s.imap(), ALICE);
    let mut p = Pop::connect(s.pop3());
    p.ok(&format!("USER {}", BOB.0));
    let r = p.ok(&format!("PASS {}", BOB.1));
    assert!(r.starts_with("+OK bob@example.test has"), "{r}");
    smtp::login(s.submission(), CAROL);
}

/// The tagged answer to LOGIN.
fn imap_login(s: &TestServer, user: &str, pw: &str) -> String {
    Imap::connect(s.imap()).cmd(&format!("LOGIN {user} {pw}")).0
}

/// The answer to PASS.
fn pop3_login(s: &TestServer, user: &str, pw: &str) -> String {
    let mut p = Pop::connect(s.pop3());
    p.ok(&format!("USER {user}"));
    p.send(&format!("PASS {pw}"));
    let r = p.line().expect("PASS");
    // Wait for the session to end: a logged-in session holds the maildrop lock until then,
    // and the next login of the same user would get [IN-USE].
    p.send("QUIT");
    while p.line().is_some() {}
    r
}

/// The code of the answer to AUTH PLAIN.
fn smtp_auth(s: &TestServer, user: &str, pw: &str) -> u16 {
    let mut c = smtp::hello(s.submission(), "client.test");
    c.send(&smtp::auth_plain(user, pw));
    c.reply().code
}

/// A cached login is worth nothing once `mailroom user passwd` (another process) changed the
/// password, or `mailroom user remove` removed the account.
#[test]
fn passwd_and_remove_invalidate_cached_logins_at_once() {
    let s = start("[limits]\nauth_failure_delay = \"20ms\"\n");
    // Logged in twice in each protocol: the second time from the cache.
    for _ in 0..2 {
        let t = imap_login(&s, ALICE.0, ALICE.1);
        assert!(t.contains(" OK "), "{t}");
        assert!(pop3_login(&s, ALICE.0, ALICE.1).starts_with("+OK"));
        assert_eq!(smtp_auth(&s, ALICE.0, ALICE.1), 235);
    }
    let out = s.cli(&["user", "passwd", ALICE.0], "n3w-secret\n");
    assert!(out.status.success(), "{out:?}");

    let t = imap_login(&s, ALICE.0, ALICE.1);
    assert!(t.contains(" NO [AUTHENTICATIONFAILED] "), "{t}");
    let r = pop3_login(&s, ALICE.0, ALICE.1);
    assert!(r.starts_with("-ERR [AUTH] "), "{r}");
    assert_eq!(smtp_auth(&s, ALICE.0, ALICE.1), 535);
    for _ in 0..2 {
        let t = imap_login(&s, ALICE.0, "n3w-secret");
        assert!(t.contains(" OK "), "{t}");
    }
    assert!(pop3_login(&s, ALICE.0, "n3w-secret").starts_with("+OK"));
    assert_eq!(smtp_auth(&s, ALICE.0, "n3w-secret"), 235);

    let out = s.cli(&["user", "remove", ALICE.0], "");
    assert!(out.status.success(), "{out:?}");
    let t = imap_login(&s, ALICE.0, "n3w-secret");
    assert!(t.contains(" NO [AUTHENTICATIONFAILED] "), "{t}");
    let r = pop3_login(&s, ALICE.0, "n3w-secret");
    assert!(r.starts_with("-ERR [AUTH] "), "{r}");
    assert_eq!(smtp_auth(&s, ALICE.0, "n3w-secret"), 535);
    // The other accounts are untouched.
    let t = imap_login(&s, "bob@example.test", "hunter2");
    assert!(t.contains(" OK "), "{t}");
}
