//! POP3 raw-socket transcripts: every error path answers `-ERR` with a helpful text and the
//! session goes on (or ends exactly where the RFC or a limit says so).

mod support;

use std::time::{Duration, Instant};

use support::pop3::{message, Pop};
use support::{b64, TestServer, ALICE, BOB};

/// Fast failure delays so tests do not sleep.
const FAST: &str = "[limits]\nauth_failure_delay = \"10ms\"\n";

fn server_with_two_messages() -> TestServer {
    let s = TestServer::start_with(FAST, &[]);
    s.deliver(BOB.0, &[ALICE.0], &message("one", "first"));
    s.deliver(BOB.0, &[ALICE.0], &message("two", "second"));
    s
}

#[test]
fn greeting_carries_a_unique_apop_timestamp() {
    let s = TestServer::start();
    let a = Pop::connect(s.pop3()).greeting;
    let b = Pop::connect(s.pop3()).greeting;
    for g in [&a, &b] {
        let ts = g
            .strip_prefix("+OK mailroom POP3 ready <")
            .and_then(|r| r.strip_suffix("@mx.example.test>"))
            .unwrap_or_else(|| panic!("{g}"));
        let (pid, clock) = ts.split_once('.').expect("pid.clock");
        assert_eq!(pid, s.pid().to_string());
        assert!(clock.bytes().all(|b| b.is_ascii_digit()), "{g}");
    }
    assert_ne!(a, b);
}

#[test]
fn authorization_state_errors() {
    let s = server_with_two_messages();
    let mut p = Pop::connect(s.pop3());
    // TRANSACTION commands before login say how to log in.
    for cmd in [
        "STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL",
    ] {
        let l = p.err(cmd);
        assert!(
            l.starts_with("-ERR log in first: USER name, then PASS password"),
            "{cmd}: {l}"
        );
    }
    assert!(p.err("PASS secret").starts_with("-ERR give USER first"));
    assert_eq!(
        p.err("XYZZY"),
        "-ERR unknown command 'XYZZY'; type CAPA to see what this server understands"
    );
    assert!(p.err("USER").contains("USER alice@example.test"));
    assert!(p
        .err("USER a b")
        .starts_with("-ERR USER takes one argument"));
    assert!(p.err("APOP alice").starts_with("-ERR APOP needs"));
    assert!(p.err("APOP alice xyz").contains("32 hexadecimal digits"));
    // STLS itself is tested in tls_pop3.rs.
    assert!(p
        .err("CAPA now")
        .starts_with("-ERR CAPA takes no arguments"));
    // Empty line, NUL, invalid UTF-8: -ERR and the session goes on.
    assert!(p.err("").starts_with("-ERR empty command"));
    p.send_raw(b"NO\0OP\r\n");
    assert!(p.expect_err().contains("NUL"));
    p.send_raw(b"USER \xff\xfe\r\n");
    assert!(p.expect_err().contains("UTF-8"));
    // Still alive, and a bare LF (netcat) ends a line too.
    p.send_raw(b"CAPA\n");
    assert_eq!(p.line().as_deref(), Some("+OK capability list follows"));
    assert!(p.body().starts_with(b"TOP\r\n"));
    p.ok("USER alice");
    let l = p.ok("PASS secret");
    assert!(
        l.starts_with("+OK alice@example.test has 2 messages ("),
        "{l}"
    );
    assert!(l.ends_with(" octets)"), "{l}");
    p.ok("QUIT");
    assert!(p.closed());
}

#[test]
fn transaction_state_errors() {
    let s = server_with_two_messages();
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    assert_eq!(
        p.err("RETR 7"),
        "-ERR no message 7 (you have 2, numbered 1 to 2)"
    );
    assert!(p.err("LIST 3").starts_with("-ERR no message 3 (you have 2"));
    assert!(p.err("UIDL 9").starts_with("-ERR no message 9"));
    assert!(p.err("TOP 5 1").starts_with("-ERR no message 5"));
    assert!(p.err("DELE 3").starts_with("-ERR no message 3"));
    assert!(p
        .err("RETR 0")
        .starts_with("-ERR message numbers start at 1"));
    assert!(p
        .err("LIST 0")
        .starts_with("-ERR message numbers start at 1"));
    assert!(p
        .err("RETR")
        .starts_with("-ERR RETR needs a message number, e.g. RETR 1"));
    assert!(p
        .err("DELE")
        .starts_with("-ERR DELE needs a message number"));
    assert!(p
        .err("RETR one")
        .starts_with("-ERR 'one' is not a message number"));
    assert!(p
        .err("RETR -1")
        .starts_with("-ERR '-1' is not a message number"));
    assert!(p
        .err("RETR 1 2")
        .starts_with("-ERR RETR takes one message number"));
    assert!(p
        .err("LIST 1 2")
        .starts_with("-ERR LIST takes at most one message number"));
    assert!(p.err("STAT 1").starts_with("-ERR STAT takes no arguments"));
    assert!(p
        .err("TOP 1")
        .starts_with("-ERR TOP needs a message number and a number of lines"));
    assert!(p
        .err("TOP 1 x")
        .starts_with("-ERR 'x' is not a number of lines"));
    assert!(p
        .err("RETR 99999999999")
        .starts_with("-ERR there is no message 99999999999"));
    // AUTHORIZATION commands after login.
    for cmd in [
        "USER bob",
        "PASS x",
        "AUTH PLAIN",
        "APOP a 0123456789abcdef0123456789abcdef",
    ] {
        let l = p.err(cmd);
        assert!(
            l.starts_with("-ERR you are already logged in as alice@example.test"),
            "{cmd}: {l}"
        );
    }
    assert!(p
        .err("STLS")
        .starts_with("-ERR STLS is only possible before logging in"));
    // A deleted message: gone from STAT/LIST/UIDL, every access is -ERR.
    let (_, before) = p.stat();
    p.ok("DELE 1");
    let (n, after) = p.stat();
    assert_eq!(n, 1);
    assert!(after < before);
    for cmd in ["RETR 1", "DELE 1", "LIST 1", "UIDL 1", "TOP 1 0"] {
        assert_eq!(
            p.err(cmd),
            "-ERR message 1 is deleted; RSET undeletes all messages (until you QUIT)",
            "{cmd}"
        );
    }
    let (status, lines) = p.list("LIST");
    assert!(status.starts_with("+OK 1 message ("), "{status}");
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("2 "));
    let (_, uids) = p.list("UIDL");
    assert_eq!(uids.len(), 1);
    assert!(uids[0].starts_with("2 "));
    let l = p.ok("RSET");
    assert!(l.starts_with("+OK maildrop has 2 messages"), "{l}");
    assert_eq!(p.stat().1, before);
    assert!(p.ok("NOOP") == "+OK");
    p.ok("QUIT");
    assert!(p.closed());
    assert_eq!(s.inbox(ALICE.0).len(), 2, "RSET then QUIT deletes nothing");
}

#[test]
fn command_keywords_are_case_insensitive() {
    let s = server_with_two_messages();
    let mut p = Pop::connect(s.pop3());
    p.ok("user alice@example.test");
    p.ok("pass secret");
    assert_eq!(p.stat().0, 2);
    p.ok("list 1");
    p.ok("Quit");
}

#[test]
fn long_lines_are_refused_with_bounded_memory_and_the_session_goes_on() {
    let s = TestServer::start();
    let mut p = Pop::connect(s.pop3());
    // RFC 2449 §4: 255 octets including CRLF must be accepted.
    let name = "a".repeat(255 - "USER \r\n".len());
    let l = p.ok(&format!("USER {name}"));
    assert!(l.contains(&name), "{l}");
    // 10 MB on one line: refused once, without the server keeping it.
    let rss_before = s.rss_kib();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..10 {
        p.send_raw(&chunk);
    }
    p.send_raw(b"\r\n");
    let l = p.expect_err();
    assert!(
        l.starts_with("-ERR command line too long (the limit is "),
        "{l}"
    );
    let rss_after = s.rss_kib();
    assert!(
        rss_after < rss_before + 8 * 1024,
        "server memory grew from {rss_before} to {rss_after} KiB"
    );
    p.ok("CAPA");
    p.body();
    p.ok("QUIT");
}

#[test]
fn pass_with_spaces_is_taken_verbatim() {
    let extra = "[[accounts]]\naddress = \"dave@example.test\"\npassword = \"two words \"\n";
    let s = TestServer::start_with(extra, &[]);
    let mut p = Pop::connect(s.pop3());
    p.ok("USER dave@example.test");
    assert!(p.err("PASS two words").starts_with("-ERR [AUTH]"));
    p.ok("USER dave@example.test");
    p.ok("PASS two words ");
    p.ok("QUIT");
}

#[test]
fn failed_logins_are_delayed_counted_and_indistinguishable() {
    let s = TestServer::start_with(
        "[limits]\nauth_failure_delay = \"200ms\"\nmax_auth_failures = 3\n",
        &[],
    );
    let mut p = Pop::connect(s.pop3());
    p.ok("USER alice@example.test");
    let t = Instant::now();
    let wrong_pw = p.err("PASS wrong");
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    // An unknown user gets +OK to USER and exactly the same -ERR to PASS.
    let l = p.ok("USER nobody@example.test");
    assert!(l.starts_with("+OK"), "{l}");
    let t = Instant::now();
    let unknown = p.err("PASS secret");
    // The second failure waits twice as long.
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(wrong_pw, unknown);
    assert_eq!(
        wrong_pw,
        "-ERR [AUTH] wrong user name or password; try again: USER name, then PASS password"
    );
    // After a failure USER must be given again.
    assert!(p.err("PASS secret").starts_with("-ERR give USER first"));
    p.ok("USER alice@example.test");
    assert_eq!(
        p.err("PASS stillwrong"),
        "-ERR [AUTH] too many failures, closing"
    );
    assert!(p.closed());
}

#[test]
fn apop_fails_like_a_wrong_password_for_hashed_and_unknown_accounts() {
    // dave's password is only an argon2 hash in the config and he has no APOP secret: APOP
    // cannot work for him.
    let hash = mailroom_store::password::hash_password("davepw").expect("hash");
    let extra =
        format!("{FAST}\n[[accounts]]\naddress = \"dave@example.test\"\npassword = \"{hash}\"\n");
    let s = TestServer::start_with(&extra, &[]);
    let digest = |greeting: &str, secret: &str| {
        let ts = &greeting[greeting.find('<').expect("<")..];
        let out = support::python::python_stdin(
            "import hashlib,sys; print(hashlib.md5(sys.argv[1].encode()+sys.argv[2].encode()).hexdigest())",
            &[ts, secret],
            b"",
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    };
    let mut p = Pop::connect(s.pop3());
    let g = p.greeting.clone();
    let bad_dave = p.err(&format!("APOP dave@example.test {}", digest(&g, "davepw")));
    let bad_nobody = p.err(&format!("APOP nobody@example.test {}", digest(&g, "x")));
    // The same answer, the name the client gave aside (no user enumeration); it says what
    // to do instead (issue 16: APOP needs a secret that `user passwd --apop` sets).
    assert_eq!(bad_dave.replace("dave@", "nobody@"), bad_nobody);
    assert!(
        bad_dave.starts_with("-ERR [AUTH] APOP is not set up for this account; "),
        "{bad_dave}"
    );
    // An uppercase digest is accepted; a digest for another greeting is not.
    let ok = p.ok(&format!(
        "APOP alice {}",
        digest(&g, "secret").to_uppercase()
    ));
    assert!(
        ok.starts_with("+OK alice@example.test has 0 messages"),
        "{ok}"
    );
    p.ok("QUIT");
    let mut q = Pop::connect(s.pop3());
    assert!(q
        .err(&format!("APOP alice@example.test {}", digest(&g, "secret")))
        .starts_with("-ERR [AUTH]"));
    // USER/PASS works for dave.
    q.ok("USER dave@example.test");
    q.ok("PASS davepw");
    q.ok("QUIT");
}

#[test]
fn auth_plain_and_login_with_and_without_initial_response() {
    let s = TestServer::start_with(FAST, &[]);
    s.deliver(BOB.0, &[ALICE.0], &message("x", "y"));
    let plain = b64("\0alice@example.test\0secret");
    // PLAIN with an initial response.
    let mut p = Pop::connect(s.pop3());
    let l = p.ok(&format!("AUTH PLAIN {plain}"));
    assert!(l.starts_with("+OK alice@example.test has 1 message"), "{l}");
    p.ok("QUIT");
    // PLAIN with an empty challenge.
    let mut p = Pop::connect(s.pop3());
    p.send("AUTH PLAIN");
    assert_eq!(p.line().as_deref(), Some("+ "));
    p.ok(&plain);
    p.ok("QUIT");
    // LOGIN, the way Outlook and lab clients do it.
    let mut p = Pop::connect(s.pop3());
    p.send("AUTH LOGIN");
    assert_eq!(p.line().as_deref(), Some("+ VXNlcm5hbWU6"));
    p.send(&b64("alice@example.test"));
    assert_eq!(p.line().as_deref(), Some("+ UGFzc3dvcmQ6"));
    p.ok(&b64("secret"));
    p.ok("QUIT");
    // LOGIN with the user name as initial response.
    let mut p = Pop::connect(s.pop3());
    p.send(&format!("AUTH LOGIN {}", b64("alice@example.test")));
    assert_eq!(p.line().as_deref(), Some("+ UGFzc3dvcmQ6"));
    p.ok(&b64("secret"));
    p.ok("QUIT");
    // A bare AUTH lists the mechanisms (RFC 1734 behaviour).
    let mut p = Pop::connect(s.pop3());
    let (_, mechs) = p.list("AUTH");
    assert_eq!(mechs, ["PLAIN", "LOGIN"]);
    p.ok("QUIT");
}

#[test]
fn auth_errors() {
    let s = TestServer::start_with(FAST, &[]);
    let mut p = Pop::connect(s.pop3());
    // Invalid base64, as initial response and as a continuation.
    assert!(p
        .err("AUTH PLAIN !!!notbase64")
        .contains("not valid base64"));
    p.send("AUTH PLAIN");
    assert_eq!(p.line().as_deref(), Some("+ "));
    assert!(p.err("@@@").contains("not valid base64"));
    // Cancel with "*" (RFC 5034 §4).
    p.send("AUTH LOGIN");
    assert_eq!(p.line().as_deref(), Some("+ VXNlcm5hbWU6"));
    assert!(p.err("*").starts_with("-ERR authentication cancelled"));
    // Unknown mechanism.
    assert!(p
        .err("AUTH CRAM-MD5")
        .starts_with("-ERR unknown SASL mechanism 'CRAM-MD5'; this server offers PLAIN and LOGIN"));
    // Wrong credentials: [AUTH], like PASS.
    let l = p.err(&format!("AUTH PLAIN {}", b64("\0alice@example.test\0nope")));
    assert!(
        l.starts_with("-ERR [AUTH] wrong user name or password"),
        "{l}"
    );
    // Someone else's authorization identity is refused.
    let l = p.err(&format!(
        "AUTH PLAIN {}",
        b64("bob@example.test\0alice@example.test\0secret")
    ));
    assert!(l.starts_with("-ERR [AUTH]"), "{l}");
    // Still usable: the failures were two of three.
    p.ok(&format!(
        "AUTH PLAIN {}",
        b64("\0alice@example.test\0secret")
    ));
    p.ok("QUIT");
}

#[test]
fn too_many_bad_commands_close_the_connection() {
    let s = TestServer::start_with("[limits]\nmax_errors = 4\n", &[]);
    let mut p = Pop::connect(s.pop3());
    for cmd in ["FOO", "BAR", "STAT"] {
        p.err(cmd);
    }
    let l = p.err("BAZ");
    assert!(
        l.starts_with("-ERR too many bad commands (4), closing"),
        "{l}"
    );
    assert!(p.closed());
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let s = server_with_two_messages();
    let mut p = Pop::connect(s.pop3());
    // Everything in one write (RFC 2449 §6.6), login included.
    p.send_raw(b"USER alice@example.test\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 9\r\nTOP 1 0\r\nDELE 2\r\nSTAT\r\nNOOP\r\nQUIT\r\n");
    assert!(p.line().expect("USER").starts_with("+OK"));
    assert!(p
        .line()
        .expect("PASS")
        .starts_with("+OK alice@example.test has 2 messages"));
    let stat = p.line().expect("STAT");
    assert!(stat.starts_with("+OK 2 "), "{stat}");
    assert!(p.line().expect("LIST").starts_with("+OK 2 messages"));
    let list = String::from_utf8(p.body()).expect("utf8");
    assert_eq!(list.lines().count(), 2);
    assert!(p.line().expect("UIDL").starts_with("+OK 2 "));
    assert!(p.line().expect("RETR").starts_with("-ERR no message 9"));
    assert!(p.line().expect("TOP").starts_with("+OK top of message 1"));
    let top = p.body();
    assert!(
        top.ends_with(b"\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&top)
    );
    assert!(p.line().expect("DELE").starts_with("+OK message 2 deleted"));
    assert!(p.line().expect("STAT").starts_with("+OK 1 "));
    assert_eq!(p.line().as_deref(), Some("+OK"));
    assert!(p
        .line()
        .expect("QUIT")
        .starts_with("+OK alice@example.test signing off (1 message deleted, 1 left)"));
    assert!(p.closed());
    assert_eq!(s.inbox(ALICE.0).len(), 1);
}

#[test]
fn quit_before_login_and_capa_in_both_states() {
    let s = TestServer::start();
    let mut p = Pop::connect(s.pop3());
    let (status, caps) = p.list("CAPA");
    assert_eq!(status, "+OK capability list follows");
    assert_eq!(
        caps,
        [
            "TOP",
            "UIDL",
            "USER",
            "SASL PLAIN LOGIN",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "IMPLEMENTATION mailroom",
            "STLS"
        ]
    );
    p.ok("USER alice@example.test");
    p.ok("PASS secret");
    // RFC 2595 §4: STLS only in AUTHORIZATION, so it leaves the list after the login.
    let (_, again) = p.list("CAPA");
    assert_eq!(again, caps[..caps.len() - 1]);
    p.ok("QUIT");
    let mut p = Pop::connect(s.pop3());
    assert_eq!(p.ok("QUIT"), "+OK mailroom POP3 server signing off");
    assert!(p.closed());
}

#[test]
fn autologout_timer_closes_without_deleting() {
    let s = TestServer::start_with("[limits]\npop3_idle_timeout = \"1s\"\n", &[]);
    s.deliver(BOB.0, &[ALICE.0], &message("x", "y"));
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    p.ok("DELE 1");
    let t = Instant::now();
    assert_eq!(
        p.line().as_deref(),
        Some("-ERR autologout timer expired; nothing was deleted, log in again")
    );
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert!(p.closed());
    assert_eq!(s.inbox(ALICE.0).len(), 1);
    // And the lock is free again.
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    p.ok("QUIT");
}

#[test]
fn shutdown_says_goodbye_and_deletes_nothing() {
    let mut s = TestServer::start();
    s.deliver(BOB.0, &[ALICE.0], &message("x", "y"));
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    p.ok("DELE 1");
    assert!(s.terminate(), "clean exit");
    assert_eq!(
        p.line().as_deref(),
        Some("-ERR [SYS/TEMP] server shutting down; nothing was deleted, try again in a moment")
    );
    assert!(p.closed());
    assert_eq!(s.inbox(ALICE.0).len(), 1);
}

#[test]
fn new_mail_during_a_session_does_not_change_its_numbering() {
    let s = TestServer::start();
    s.deliver(BOB.0, &[ALICE.0], &message("old", "x"));
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    let before = p.stat();
    s.deliver(BOB.0, &[ALICE.0], &message("new", "y"));
    assert_eq!(p.stat(), before);
    assert!(p
        .err("RETR 2")
        .starts_with("-ERR no message 2 (you have 1, number 1)"));
    p.ok("DELE 1");
    p.ok("QUIT");
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    assert_eq!(p.stat().0, 1);
    let (_, top) = p.list("TOP 1 0");
    assert!(top.iter().any(|l| l == "Subject: new"), "{top:?}");
    p.ok("QUIT");
}

#[test]
fn uidl_is_stable_across_sessions_and_restarts_and_deletions_are_durable() {
    let mut s = TestServer::start();
    for i in 0..3 {
        s.deliver(BOB.0, &[ALICE.0], &message(&format!("m{i}"), "x"));
    }
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    let (_, uids) = p.list("UIDL");
    let ids: Vec<String> = uids
        .iter()
        .map(|l| l.split(' ').nth(1).expect("id").to_string())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3);
    p.ok("DELE 2");
    p.ok("QUIT");
    // +OK to QUIT means on disk: a SIGKILL right after loses nothing.
    s.restart();
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    let (_, after) = p.list("UIDL");
    let after: Vec<String> = after
        .iter()
        .map(|l| l.split(' ').nth(1).expect("id").to_string())
        .collect();
    assert_eq!(after, [ids[0].clone(), ids[2].clone()]);
    p.ok("QUIT");
}

#[test]
fn retr_is_octet_exact_and_byte_stuffed() {
    let s = TestServer::start();
    let body = ".starts with a dot\r\n..two dots\r\n.\r\nnormal\r\n . space first";
    // TestServer::deliver dot-stuffs for SMTP (RFC 5321 §4.5.2); the store has it unstuffed.
    s.deliver(BOB.0, &[ALICE.0], &message("dots", body));
    let stored = s.inbox(ALICE.0).remove(0);
    assert!(
        String::from_utf8_lossy(&stored).contains(body),
        "stored unstuffed"
    );
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    let (status, got) = p.retr(1);
    assert_eq!(got, stored, "RETR gives exactly the stored octets");
    assert_eq!(status, format!("+OK {} octets follow", stored.len()));
    assert_eq!(p.ok("LIST 1"), format!("+OK 1 {}", stored.len()));
    // On the wire each dot line got one more dot.
    p.send("RETR 1");
    p.line();
    let mut wire = Vec::new();
    loop {
        let l = p.raw_line().expect("line");
        wire.extend_from_slice(&l);
        if l == b".\r\n" {
            break;
        }
    }
    let wire = String::from_utf8(wire).expect("utf8");
    assert!(
        wire.contains(
            "\r\n..starts with a dot\r\n...two dots\r\n..\r\nnormal\r\n . space first\r\n.\r\n"
        ),
        "{wire}"
    );
    p.ok("QUIT");
}

#[test]
fn an_unterminated_stored_message_gets_a_crlf_that_its_size_counts() {
    let s = TestServer::start();
    let raw = b"Subject: x\r\n\r\n.no line break at the end".to_vec();
    s.store_directly(ALICE.0, [raw.clone(), Vec::new()]);
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    let (_, got) = p.retr(1);
    let mut want = raw.clone();
    want.extend_from_slice(b"\r\n");
    assert_eq!(got, want);
    assert_eq!(p.ok("LIST 1"), format!("+OK 1 {}", want.len()));
    // An empty message is just the terminator.
    assert_eq!(p.ok("LIST 2"), "+OK 2 0");
    let (status, empty) = p.retr(2);
    assert_eq!(status, "+OK 0 octets follow");
    assert!(empty.is_empty());
    assert_eq!(p.stat(), (2, want.len() as u64));
    p.ok("QUIT");
}

#[test]
fn trace_masks_passwords_and_sasl_responses() {
    let s = TestServer::start_with("", &["--trace"]);
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &message("traced", "body text not traced"),
    );
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    p.retr(1);
    p.ok("QUIT");
    let mut p = Pop::connect(s.pop3());
    p.ok(&format!(
        "AUTH PLAIN {}",
        b64("\0bob@example.test\0hunter2")
    ));
    p.ok("QUIT");
    let mut p = Pop::connect(s.pop3());
    p.send("AUTH LOGIN");
    p.line();
    p.send(&b64("carol@example.test"));
    p.line();
    p.ok(&b64("carolpw"));
    p.ok("QUIT");
    s.wait_for(10, "the trace of the last session", || {
        s.log_text().matches("connection closed").count() >= 3
    });
    let log = s.log_text();
    assert!(log.contains("C: PASS ****"), "{log}");
    assert!(log.contains("C: AUTH PLAIN ****"), "{log}");
    assert!(log.contains("C: ****"), "{log}");
    assert!(
        log.contains("S: +OK alice@example.test has 1 message"),
        "{log}"
    );
    assert!(log.contains("octets of message 1, not traced>"), "{log}");
    for secret in [
        "secret",
        "hunter2",
        "carolpw",
        &b64("carolpw"),
        "body text not traced",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
