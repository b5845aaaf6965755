//! `limits.max_incoming_memory`: messages being received are held in memory until stored, and
//! all sessions together may hold only so much. A message that would pass the budget is
//! refused for now (SMTP 452 4.3.1, IMAP NO [UNAVAILABLE]); the sessions go on, the client can
//! retry, and nothing that was accepted is lost.
mod support;

use std::time::Duration;

use support::*;

const LIMITS: &str = "[limits]\nmax_message_size = 100000\nmax_incoming_memory = 150000\n";

/// About `octets` of message text in 100-octet lines.
fn filler(octets: usize) -> String {
    let line = format!("{}\r\n", "x".repeat(98));
    line.repeat(octets / line.len())
}

/// A transaction from alice to bob, ready for DATA; `name` makes the EHLO name.
fn smtp_transaction(addr: std::net::SocketAddr, name: &str) -> Client {
    smtp::transaction(addr, &format!("{name}.example.test"), ALICE.0, &[BOB.0])
}

#[test]
fn messages_beyond_the_memory_budget_wait_and_nothing_is_lost() {
    let s = support::imap::start_with(LIMITS);
    let smtp = s.addr("smtp");
    let body = filler(90_000);

    // A holds 90 KB of an unfinished message.
    let mut a = smtp_transaction(smtp, "a");
    a.cmd("DATA", 354);
    a.send_raw(format!("Subject: from A\r\n\r\n{body}").as_bytes());
    std::thread::sleep(Duration::from_millis(1000));

    // B's 90 KB would pass the 150 KB budget: 452 4.3.1 after its end, and B's session goes on.
    let mut b = smtp_transaction(smtp, "b");
    b.cmd("DATA", 354);
    b.send_raw(format!("Subject: from B\r\n\r\n{body}.\r\n").as_bytes());
    let r = b.expect_code(452);
    assert!(r.text().starts_with("4.3.1 "), "{r:?}");
    assert!(r.text().contains("try again"), "{r:?}");
    b.cmd("NOOP", 250);

    // BDAT the same way.
    let mut c = smtp_transaction(smtp, "c");
    let chunk = format!("Subject: from C\r\n\r\n{body}");
    c.send_raw(format!("BDAT {} LAST\r\n{chunk}", chunk.len()).as_bytes());
    let r = c.expect_code(452);
    assert!(r.text().starts_with("4.3.1 "), "{r:?}");

    // An IMAP APPEND is refused before its literal is read.
    let mut imap = support::imap::Imap::login(s.addr("imap"), BOB);
    let message = format!("Subject: appended\r\n\r\n{body}");
    imap.c
        .send(&format!("t100 APPEND INBOX {{{}}}", message.len()));
    let line = imap.line().expect("reply to APPEND");
    assert!(
        line.starts_with("t100 NO [UNAVAILABLE] "),
        "expected a refusal, got {line:?}"
    );
    imap.ok("NOOP");

    // A finishes: stored. Its memory is free again, so B, C and the APPEND now succeed.
    a.send_raw(b".\r\n");
    let r = a.expect_code(250);
    assert!(r.text().starts_with("2.0.0"), "{r:?}");
    b.cmd("MAIL FROM:<alice@example.test>", 250);
    b.cmd(&format!("RCPT TO:<{}>", BOB.0), 250);
    b.cmd("DATA", 354);
    b.send_raw(format!("Subject: from B\r\n\r\n{body}.\r\n").as_bytes());
    b.expect_code(250);
    c.cmd("MAIL FROM:<alice@example.test>", 250);
    c.cmd(&format!("RCPT TO:<{}>", BOB.0), 250);
    c.send_raw(format!("BDAT {} LAST\r\n{chunk}", chunk.len()).as_bytes());
    c.expect_code(250);
    imap.c
        .send(&format!("t101 APPEND INBOX {{{}}}", message.len()));
    let go = imap.line().expect("go ahead");
    assert!(go.starts_with("+ "), "{go}");
    imap.c.send(&message);
    let (tagged, _) = imap.until_tag("t101");
    assert!(tagged.starts_with("t101 OK "), "{tagged}");

    let subjects: Vec<String> = s
        .inbox(BOB.0)
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(m);
            text.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        subjects,
        vec!["from A", "from B", "from C", "appended"],
        "every message arrived exactly once"
    );
}

#[test]
fn a_budget_smaller_than_one_message_is_a_config_error() {
    let err = support::cli::serve_refuses(
        "data_dir = \"{data}\"\n[limits]\nmax_message_size = 1000\nmax_incoming_memory = 999\n",
    );
    assert!(
        err.contains("limits.max_incoming_memory") && err.contains("max_message_size"),
        "{err}"
    );
}
