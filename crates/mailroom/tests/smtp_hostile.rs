//! Hostile and heavy input: smuggling, over-long lines, NUL bytes, limits, load, crashes.
//! Each case: the right reply, nothing lost, and the server keeps serving.
mod support;
use std::time::Duration;
use support::*;

/// A transaction to bob after DATA's 354: the message text comes next.
fn start_transaction(addr: std::net::SocketAddr) -> Client {
    let mut c = smtp::transaction(addr, "attacker.test", "a@far.test", &[BOB.0]);
    c.cmd("DATA", 354);
    c
}

/// CVE-2023-51764 shapes: the smuggled second message must never be stored.
#[test]
fn smtp_smuggling_variants_never_split_a_transaction() {
    let s = TestServer::start();
    let smuggled = "MAIL FROM:<admin@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\nSubject: SMUGGLED\r\n\r\nevil\r\n";
    for (i, sep) in ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r.\r\n", "\r\n.\r"]
        .iter()
        .enumerate()
    {
        let mut c = start_transaction(s.smtp());
        let payload = format!("Subject: legit {i}\r\n\r\nhello{sep}{smuggled}.\r\n");
        c.send_raw(payload.as_bytes());
        let r = c.reply();
        // Either refused as a whole, or one message holding everything: never two.
        assert!(r.code == 550 || r.code == 250, "variant {sep:?}: {r:?}");
        if r.code == 550 {
            assert!(r.text().starts_with("5.6.0"), "{r:?}");
        }
        // The smuggled commands were data, not commands: the session is back at the start.
        c.cmd("RSET", 250);
        c.cmd("QUIT", 221);
    }
    assert!(
        s.inbox(CAROL.0).is_empty(),
        "a smuggled message reached carol"
    );
    for m in s.inbox(BOB.0) {
        let t = String::from_utf8_lossy(&m);
        assert!(
            !t.contains("\r\nSubject: SMUGGLED\r\n\r\nevil") || t.contains("Subject: legit"),
            "{t}"
        );
    }
    // Then a clean message goes through on the same server.
    s.deliver("a@far.test", &[BOB.0], "Subject: clean\n\nok\n");
    let bob = s.inbox(BOB.0);
    assert!(String::from_utf8_lossy(bob.last().unwrap()).ends_with("Subject: clean\r\n\r\nok\r\n"));
}

#[test]
fn bare_lf_lines_are_normalized_to_crlf() {
    let s = TestServer::start();
    let mut c = start_transaction(s.smtp());
    c.send_raw(b"Subject: netcat\n\nline one\nline two\r\n.\r\n");
    c.expect_code(250);
    let m = s.inbox(BOB.0);
    assert!(
        String::from_utf8_lossy(&m[0]).ends_with("Subject: netcat\r\n\r\nline one\r\nline two\r\n")
    );
}

#[test]
fn overlong_lines_and_nul_bytes() {
    let s = TestServer::start();
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    // A 100 KiB command line: refused, memory bounded, session continues.
    let long = format!("EHLO {}\r\n", "x".repeat(100 * 1024));
    c.send_raw(long.as_bytes());
    let r = c.expect_code(500);
    assert!(r.text().contains("too long"), "{r:?}");
    // 512-octet command lines are always accepted (RFC 5321 §4.5.3.1.4).
    let filler = "h".repeat(510 - "NOOP ".len());
    c.cmd(&format!("NOOP {filler}"), 250);
    c.cmd("EHLO x", 250);
    c.send_raw(b"NO\0OP\r\n");
    c.expect_code(501);
    c.cmd("MAIL FROM:<a@far.test>", 250);
    c.cmd("RCPT TO:<bob@example.test>", 250);
    c.cmd("DATA", 354);
    // Lines longer than RFC 5321's 1000 octets are accepted, as Postfix and Exchange do
    // (real senders write them; refusing them loses mail), and stored byte-exact.
    let ok_line = "a".repeat(5000);
    c.send_raw(format!("Subject: long\r\n\r\n{ok_line}\r\n.\r\n").as_bytes());
    c.expect_code(250);
    // Beyond `limits.max_line_length` (1 MiB by default) the message is refused.
    c.cmd("MAIL FROM:<a@far.test>", 250);
    c.cmd("RCPT TO:<bob@example.test>", 250);
    c.cmd("DATA", 354);
    c.send_raw(
        format!(
            "Subject: too long\r\n\r\n{}\r\n.\r\n",
            "b".repeat(1_100_000)
        )
        .as_bytes(),
    );
    let r = c.expect_code(550);
    assert!(
        r.text().contains("line 3") && r.text().contains("longer than 1048576"),
        "{r:?}"
    );
    // NUL bytes inside message data are kept (8BITMIME transparency is the client's business).
    c.cmd("MAIL FROM:<a@far.test>", 250);
    c.cmd("RCPT TO:<bob@example.test>", 250);
    c.cmd("DATA", 354);
    c.send_raw(b"Subject: nul\r\n\r\na\0b\r\n.\r\n");
    c.expect_code(250);
    c.cmd("QUIT", 221);
    let m = s.inbox(BOB.0);
    assert_eq!(m.len(), 2);
    assert!(m[0].ends_with(format!("{ok_line}\r\n").as_bytes()));
    assert!(m[1].ends_with(b"a\0b\r\n"));
}

#[test]
fn size_limits() {
    let s = TestServer::start_with("[limits]\nmax_message_size = 20000\n", &[]);
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    let ehlo = c.cmd("EHLO x", 250);
    assert!(ehlo.lines.contains(&"SIZE 20000".to_string()));
    c.cmd("MAIL FROM:<a@far.test> SIZE=20001", 552);
    c.cmd("MAIL FROM:<a@far.test> SIZE=100", 250);
    c.cmd("RCPT TO:<bob@example.test>", 250);
    c.cmd("DATA", 354);
    let line = format!("{}\r\n", "z".repeat(98));
    c.send_raw(b"Subject: big\r\n\r\n");
    for _ in 0..300 {
        c.send_raw(line.as_bytes());
    }
    c.send_raw(b".\r\n");
    let r = c.expect_code(552);
    assert!(
        r.text().starts_with("5.3.4") && r.text().contains("20000"),
        "{r:?}"
    );
    // BDAT over the limit: also 552 after LAST, nothing stored.
    c.cmd("MAIL FROM:<a@far.test>", 250);
    c.cmd("RCPT TO:<bob@example.test>", 250);
    let chunk = vec![b'q'; 15000];
    for last in [false, true] {
        c.send_raw(
            format!(
                "BDAT {}{}\r\n",
                chunk.len(),
                if last { " LAST" } else { "" }
            )
            .as_bytes(),
        );
        c.send_raw(&chunk);
        c.expect_code(if last { 552 } else { 250 });
    }
    c.cmd("NOOP", 250);
    assert!(s.inbox(BOB.0).is_empty());
}

#[test]
fn a_ten_mebibyte_message() {
    let s = TestServer::start();
    let mut c = start_transaction(s.smtp());
    let line = format!("{}\r\n", "0123456789abcdef".repeat(4)); // 66 octets
    let n = 10 * 1024 * 1024 / line.len() + 1;
    let mut body = b"Subject: ten MiB\r\n\r\n".to_vec();
    for _ in 0..n {
        body.extend_from_slice(line.as_bytes());
    }
    c.send_raw(&body);
    c.send_raw(b".\r\n");
    c.expect_code(250);
    let m = s.inbox(BOB.0);
    assert_eq!(m.len(), 1);
    assert!(m[0].len() > 10 * 1024 * 1024);
    assert!(m[0].ends_with(&body));
}

#[test]
fn too_many_recipients() {
    let s = TestServer::start_with("[limits]\nmax_recipients = 3\n", &[]);
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    c.cmd("EHLO x", 250);
    c.cmd("MAIL FROM:<a@far.test>", 250);
    for _ in 0..3 {
        c.cmd("RCPT TO:<bob@example.test>", 250);
    }
    let r = c.cmd("RCPT TO:<carol@example.test>", 452);
    assert!(r.text().starts_with("4.5.3"), "{r:?}");
    c.cmd("DATA", 354);
    c.send_raw(b"Subject: dup\r\n\r\nx\r\n.\r\n");
    c.expect_code(250);
    // Duplicate recipients get one copy.
    assert_eq!(s.inbox(BOB.0).len(), 1);
}

#[test]
fn too_many_errors_close_the_session() {
    let s = TestServer::start_with("[limits]\nmax_errors = 5\n", &[]);
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    for _ in 0..4 {
        c.cmd("BOGUS", 500);
    }
    c.send("BOGUS");
    c.expect_code(500);
    let r = c.expect_code(421);
    assert!(r.text().contains("Too many errors"), "{r:?}");
    assert!(c.is_closed());
    // The server still serves others.
    s.deliver("a@far.test", &[BOB.0], "Subject: after\n\nstill here\n");
}

#[test]
fn idle_timeout_says_421() {
    let s = TestServer::start_with("[limits]\nidle_timeout = \"1s\"\n", &[]);
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    c.cmd("EHLO x", 250);
    let r = c.expect_code(421);
    assert!(r.text().starts_with("4.4.2"), "{r:?}");
    assert!(c.is_closed());
}

#[test]
fn connection_limits_answer_421_at_the_greeting() {
    let s = TestServer::start_with("[limits]\nmax_connections_per_ip = 2\n", &[]);
    let mut a = Client::connect(s.smtp());
    a.expect_code(220);
    let mut b = Client::connect(s.smtp());
    b.expect_code(220);
    let mut c = Client::connect(s.smtp());
    let r = c.expect_code(421);
    assert!(r.text().starts_with("4.7.0"), "{r:?}");
    assert!(c.is_closed());
    // Freeing a slot lets the next one in.
    a.cmd("QUIT", 221);
    std::thread::sleep(Duration::from_millis(200));
    let mut d = Client::connect(s.smtp());
    d.expect_code(220);
    b.cmd("NOOP", 250);
}

#[test]
fn fifty_concurrent_sessions_all_delivered() {
    let s = TestServer::start();
    let addr = s.smtp();
    let threads: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.expect_code(220);
                c.cmd("EHLO load", 250);
                for j in 0..4 {
                    c.cmd("MAIL FROM:<load@far.test>", 250);
                    c.cmd("RCPT TO:<bob@example.test>", 250);
                    c.cmd("DATA", 354);
                    c.send_raw(format!("Subject: s{i} m{j}\r\n\r\nbody\r\n.\r\n").as_bytes());
                    c.expect_code(250);
                }
                c.cmd("QUIT", 221);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("session thread");
    }
    let bob = s.inbox(BOB.0);
    assert_eq!(bob.len(), 200);
    let mut subjects: Vec<String> = bob
        .iter()
        .map(|m| {
            let t = String::from_utf8_lossy(m);
            t.lines()
                .find(|l| l.starts_with("Subject: "))
                .unwrap_or("")
                .to_string()
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 200, "every message exactly once");
}

#[test]
fn kill_9_right_after_250_loses_nothing() {
    let mut s = TestServer::start();
    let mut c = start_transaction(s.smtp());
    c.send_raw(b"Subject: durable\r\n\r\nmust survive\r\n.\r\n");
    c.expect_code(250);
    s.kill9();
    s.restart();
    let m = s.inbox(BOB.0);
    assert_eq!(m.len(), 1);
    assert!(m[0].ends_with(b"Subject: durable\r\n\r\nmust survive\r\n"));
    // And the restarted server serves.
    s.deliver("a@far.test", &[BOB.0], "Subject: second\n\nx\n");
    assert_eq!(s.inbox(BOB.0).len(), 2);
}

#[test]
fn sigterm_lets_the_session_finish_and_exits_cleanly() {
    let mut s = TestServer::start();
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    c.cmd("EHLO x", 250);
    let pid = s.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .ok();
    });
    // An idle session is told the server is going away.
    let r = c.expect_code(421);
    assert!(r.text().starts_with("4.3.2"), "{r:?}");
    killer.join().unwrap();
    assert!(s.terminate(), "clean exit after SIGTERM");
    // No new connections are accepted now.
    assert!(std::net::TcpStream::connect(s.smtp()).is_err());
}

#[test]
fn loops_are_stopped() {
    let s = TestServer::start_with("[limits]\nmax_hops = 5\n", &[]);
    let mut c = start_transaction(s.smtp());
    let mut msg = String::new();
    for i in 0..5 {
        msg.push_str(&format!(
            "Received: from hop{i} by hop{}; Sun, 22 Nov 2026 01:00:00 +0000\r\n",
            i + 1
        ));
    }
    msg.push_str("Subject: loop\r\n\r\nround and round\r\n.\r\n");
    c.send_raw(msg.as_bytes());
    let r = c.expect_code(554);
    assert!(r.text().starts_with("5.4.6"), "{r:?}");
    assert!(s.inbox(BOB.0).is_empty());
}
