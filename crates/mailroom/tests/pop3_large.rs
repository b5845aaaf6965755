//! POP3 at scale: a 1,000-message mailbox, and a 50 MiB message retrieved while the server's
//! memory stays bounded (RETR streams from the store in chunks, byte-stuffing on the fly).

mod support;

use std::time::Instant;

use support::pop3::Pop;
use support::{TestServer, ALICE};

#[test]
fn a_thousand_message_mailbox() {
    let s = TestServer::start();
    let msgs: Vec<Vec<u8>> = (1..=1000)
        .map(|i| {
            format!(
                "From: <bob@example.test>\r\nSubject: message {i}\r\n\r\n{}\r\n.{i}\r\n",
                "x".repeat(i % 97)
            )
            .into_bytes()
        })
        .collect();
    s.store_directly(ALICE.0, msgs.clone());

    let t = Instant::now();
    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    eprintln!("login with 1000 messages: {:?}", t.elapsed());
    let total: u64 = msgs.iter().map(|m| m.len() as u64).sum();
    assert_eq!(p.stat(), (1000, total));

    let (status, list) = p.list("LIST");
    assert_eq!(status, format!("+OK 1000 messages ({total} octets)"));
    assert_eq!(list.len(), 1000);
    for (i, l) in list.iter().enumerate() {
        assert_eq!(*l, format!("{} {}", i + 1, msgs[i].len()));
    }
    let (_, uidl) = p.list("UIDL");
    let mut ids: Vec<&str> = uidl
        .iter()
        .map(|l| l.split(' ').nth(1).expect("id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1000);

    for n in [1, 2, 500, 999, 1000] {
        let (_, got) = p.retr(n);
        assert_eq!(got, msgs[n - 1], "RETR {n}");
    }
    let (_, top) = p.list("TOP 1000 0");
    assert_eq!(top.last().map(String::as_str), Some(""));

    // Delete everything, pipelined, then QUIT: one durable expunge.
    let mut batch = String::new();
    for n in 1..=1000 {
        batch.push_str(&format!("DELE {n}\r\n"));
    }
    p.send_raw(batch.as_bytes());
    for n in 1..=1000 {
        let l = p.line().expect("DELE reply");
        assert!(l.starts_with(&format!("+OK message {n} deleted")), "{l}");
    }
    assert_eq!(p.stat(), (0, 0));
    let l = p.ok("QUIT");
    assert_eq!(
        l,
        "+OK alice@example.test signing off (1000 messages deleted, 0 left)"
    );
    assert!(s.inbox(ALICE.0).is_empty());
}

/// A 50 MiB message with dot lines everywhere, including across the server's chunk boundaries.
fn big_message() -> Vec<u8> {
    let target = 50 * 1024 * 1024;
    let mut m = Vec::with_capacity(target + 200);
    m.extend_from_slice(b"From: <bob@example.test>\r\nSubject: big\r\n\r\n");
    let mut i: u64 = 0;
    while m.len() < target {
        i += 1;
        // Line lengths vary from 1 to 120 octets so line starts fall on every offset.
        let len = (i * 7919 % 120) as usize;
        if matches!(i % 5, 0) {
            m.push(b'.');
        }
        if matches!(i % 11, 0) {
            m.push(b'.');
        }
        m.extend((0..len).map(|k| b'a' + ((i as usize + k) % 26) as u8));
        m.extend_from_slice(b"\r\n");
    }
    m
}

#[test]
fn a_50_mib_message_with_bounded_server_memory() {
    let s = TestServer::start();
    let msg = big_message();
    s.store_directly(ALICE.0, [msg.clone()]);

    let mut p = Pop::login(s.pop3(), ALICE.0, ALICE.1);
    let before = s.peak_rss_kib();
    assert_eq!(p.ok("LIST 1"), format!("+OK 1 {}", msg.len()));
    let t = Instant::now();
    let (status, got) = p.retr(1);
    eprintln!("RETR of {} octets: {:?}", msg.len(), t.elapsed());
    assert_eq!(status, format!("+OK {} octets follow", msg.len()));
    assert!(got == msg, "the 50 MiB message came back different");
    // TOP on the same message reads only what it sends.
    let (_, top) = p.list("TOP 1 3");
    assert_eq!(top.len(), 3 + 3, "{top:?}");
    p.ok("QUIT");
    let after = s.peak_rss_kib();
    eprintln!("server peak RSS: {before} KiB before RETR, {after} KiB after");
    assert!(
        after < before + 24 * 1024,
        "server peak memory grew by {} KiB while sending a 50 MiB message",
        after - before
    );
}
