//! The SMTP state machine driven from memory: whole sessions over `tokio::io::duplex`, with a
//! real store in a temporary directory. The replies asserted are the ones the server gives
//! (codes, enhanced codes and texts), so a change of wire behaviour shows up here.

use base64::Engine;

use crate::test_support::{Client, Harness};
use crate::ListenerKind;

const HOST: &str = "mx.example.test";

/// Starts an MX (`ListenerKind::Smtp`) session and reads its greeting.
async fn connect(h: &Harness) -> Client {
    connect_to(h, ListenerKind::Smtp).await
}

async fn connect_to(h: &Harness, kind: ListenerKind) -> Client {
    let mut c = h.start(|stream, peer, shared, shutdown| {
        super::run_session(kind, stream, peer, shared, shutdown)
    });
    assert_eq!(
        c.line().await,
        format!("220 {HOST} ESMTP mailroom ready; say EHLO your.host.name")
    );
    c
}

/// One command, one (single-line) reply.
async fn cmd(c: &mut Client, line: &str) -> String {
    c.send(format!("{line}\r\n")).await;
    c.line().await
}

/// A multi-line reply: every line up to the one with a space after the code.
async fn reply_lines(c: &mut Client) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let l = c.line().await;
        let last = l.as_bytes().get(3) != Some(&b'-');
        lines.push(l);
        if last {
            return lines;
        }
    }
}

async fn ehlo(c: &mut Client) -> Vec<String> {
    c.send("EHLO pc1.example.test\r\n").await;
    reply_lines(c).await
}

fn plain(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

#[tokio::test]
async fn greeting_helo_and_ehlo_extensions() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    assert_eq!(
        cmd(&mut c, "HELO pc1.example.test").await,
        format!("250 {HOST} Hello pc1.example.test [127.0.0.1]")
    );
    let size = h.shared.config.limits.max_message_size;
    // Without TLS configured: no STARTTLS; AUTH is offered in clear to a loopback client
    // (the default auth_require_tls policy).
    assert_eq!(
        ehlo(&mut c).await,
        [
            format!("250-{HOST} Hello pc1.example.test [127.0.0.1]"),
            "250-PIPELINING".into(),
            format!("250-SIZE {size}"),
            "250-8BITMIME".into(),
            "250-SMTPUTF8".into(),
            "250-ENHANCEDSTATUSCODES".into(),
            "250-CHUNKING".into(),
            "250-HELP".into(),
            "250 AUTH PLAIN LOGIN".into(),
        ]
    );
}

#[tokio::test]
async fn ehlo_hides_auth_where_passwords_need_tls_and_offers_starttls() {
    let h = Harness::with_tls(|c| c.auth_require_tls = crate::config::AuthTlsPolicy::Always);
    let mut c = connect(&h).await;
    let lines = ehlo(&mut c).await;
    assert_eq!(lines.last().map(String::as_str), Some("250 STARTTLS"));
    assert!(!lines.iter().any(|l| l.contains("AUTH")), "{lines:?}");
    assert_eq!(
        cmd(
            &mut c,
            &format!("AUTH PLAIN {}", plain("alice@example.test", "x"))
        )
        .await,
        "538 5.7.11 Encryption required for authentication: use STARTTLS first, then EHLO and AUTH"
    );
}

#[tokio::test]
async fn commands_out_of_order() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    // RFC 5321 §4.1.4: MAIL needs a greeting first.
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await,
        "503 5.5.1 Say hello first: EHLO your.host.name"
    );
    ehlo(&mut c).await;
    assert_eq!(
        cmd(&mut c, "RCPT TO:<alice@example.test>").await,
        "503 5.5.1 Send MAIL FROM:<you@example.test> first"
    );
    assert_eq!(
        cmd(&mut c, "DATA").await,
        "503 5.5.1 Send MAIL FROM:<you@example.test> first"
    );
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await,
        "250 2.1.0 Sender <bob@elsewhere.test> ok"
    );
    assert_eq!(
        cmd(&mut c, "DATA").await,
        "503 5.5.1 Send RCPT TO:<recipient> first (at least one recipient)"
    );
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await,
        "503 5.5.1 Sender already given: continue with RCPT TO:<recipient>, or RSET to start over"
    );
}

#[tokio::test]
async fn bad_syntax_replies() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    ehlo(&mut c).await;
    // An unknown verb: 500 5.5.1; a known verb with bad arguments: 501 5.5.4.
    assert_eq!(
        cmd(&mut c, "FROB").await,
        "500 5.5.1 unknown command 'FROB'; try HELP"
    );
    let r = cmd(&mut c, "MAIL FROM:<no-closing-bracket").await;
    assert!(r.starts_with("501 5.5.4 "), "{r}");
    let r = cmd(&mut c, "RCPT alice@example.test").await;
    assert!(r.starts_with("501 5.5.4 "), "{r}");
    // A NUL anywhere in a command line: 501 5.5.2.
    let r = cmd(&mut c, "NOOP\0").await;
    assert!(r.starts_with("501 5.5.2 "), "{r}");
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<bob@elsewhere.test> FROB=1").await,
        "555 5.5.4 MAIL parameter FROB is not supported"
    );
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<bob@elsewhere.test> SIZE=lots").await,
        "501 5.5.4 Bad value for SIZE: SIZE=<number of octets>"
    );
    assert_eq!(
        cmd(&mut c, "EXPN staff").await,
        "252 2.5.0 Cannot EXPN: mailing lists are private here; mail to a list is accepted and delivered"
    );
    assert_eq!(
        cmd(&mut c, "VRFY alice").await,
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"
    );
    assert_eq!(cmd(&mut c, "NOOP").await, "250 2.0.0 Ok");
}

/// VRFY and EXPN switched on for the MX (`[vrfy] smtp`, `[expn] smtp`): truthful answers in
/// any state, without touching the transaction; submission keeps them off (252).
#[tokio::test]
async fn vrfy_and_expn_switched_on() {
    let h = Harness::new(|c| {
        c.vrfy.smtp = true;
        c.expn.smtp = true;
        c.aliases.insert(
            "staff@example.test".into(),
            crate::config::AliasTargets::Many(vec![
                "alice@example.test".into(),
                "bob@example.test".into(),
            ]),
        );
    });
    let mut c = connect(&h).await;
    // Before EHLO too (RFC 5321 §4.1.4: VRFY and EXPN are valid in any state).
    assert_eq!(
        cmd(&mut c, "VRFY alice").await,
        "250 2.1.5 alice <alice@example.test>"
    );
    ehlo(&mut c).await;
    cmd(&mut c, "MAIL FROM:<x@elsewhere.test>").await;
    assert_eq!(
        cmd(&mut c, "VRFY <bob@example.test>").await,
        "250 2.1.5 bob <bob@example.test>"
    );
    assert_eq!(
        cmd(&mut c, "VRFY carol").await,
        "550 5.1.1 carol: no such user here"
    );
    c.send("EXPN staff\r\n").await;
    assert_eq!(
        reply_lines(&mut c).await,
        [
            "250-2.1.5 alice <alice@example.test>",
            "250 2.1.5 bob <bob@example.test>"
        ]
    );
    assert_eq!(
        cmd(&mut c, "EXPN alice").await,
        "550 5.1.1 alice <alice@example.test> is a user, not a mailing list; VRFY alice checks a user"
    );
    // The transaction went on undisturbed, and the unknown names were no errors.
    assert_eq!(
        cmd(&mut c, "RCPT TO:<staff@example.test>").await,
        "250 2.1.5 Recipient <staff@example.test> ok"
    );
    // A second alice in another domain: ambiguous.
    h.shared
        .store
        .add_account("alice@school.test", "h")
        .expect("account");
    c.send("VRFY alice\r\n").await;
    assert_eq!(
        reply_lines(&mut c).await,
        [
            "553-5.1.4 alice is ambiguous; VRFY one of these full addresses:",
            "553-5.1.4 alice <alice@example.test>",
            "553 5.1.4 alice <alice@school.test>",
        ]
    );
    let mut s = connect_to(&h, ListenerKind::Submission).await;
    assert_eq!(
        cmd(&mut s, "VRFY alice@example.test").await,
        "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"
    );
    assert!(cmd(&mut s, "EXPN staff")
        .await
        .starts_with("252 2.5.0 Cannot EXPN"));
}

#[tokio::test]
async fn over_long_command_line() {
    let h = Harness::new(|c| c.limits.max_command_line = 100);
    let mut c = connect(&h).await;
    let long = format!("EHLO {}", "a".repeat(200));
    assert_eq!(
        cmd(&mut c, &long).await,
        "500 5.5.2 Line too long: commands may be at most 100 octets"
    );
    // The line after it is read whole.
    assert_eq!(cmd(&mut c, "NOOP").await, "250 2.0.0 Ok");
}

#[tokio::test]
async fn rset_forgets_the_transaction_but_not_the_greeting() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    // Before EHLO, RSET leaves the session ungreeted.
    assert_eq!(cmd(&mut c, "RSET").await, "250 2.0.0 Ok, transaction reset");
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await,
        "503 5.5.1 Say hello first: EHLO your.host.name"
    );
    ehlo(&mut c).await;
    cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await;
    assert_eq!(
        cmd(&mut c, "RCPT TO:<alice@example.test>").await,
        "250 2.1.5 Recipient <alice@example.test> ok"
    );
    assert_eq!(cmd(&mut c, "RSET").await, "250 2.0.0 Ok, transaction reset");
    assert_eq!(
        cmd(&mut c, "RCPT TO:<alice@example.test>").await,
        "503 5.5.1 Send MAIL FROM:<you@example.test> first"
    );
    assert_eq!(cmd(&mut c, "MAIL FROM:<>").await, "250 2.1.0 Sender <> ok");
}

#[tokio::test]
async fn recipients_unknown_and_relay_denied() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    ehlo(&mut c).await;
    cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await;
    assert_eq!(
        cmd(&mut c, "RCPT TO:<nobody@example.test>").await,
        "550 5.1.1 <nobody@example.test>: no such user here"
    );
    assert_eq!(
        cmd(&mut c, "RCPT TO:<someone@elsewhere.test>").await,
        "554 5.7.1 <someone@elsewhere.test>: relay access denied; this server only accepts mail for its own domains unless you log in (AUTH)"
    );
}

/// DATA: dot-stuffed lines lose their first dot (RFC 5321 §4.5.2) and the message is stored
/// byte for byte behind the Received: header.
#[tokio::test]
async fn data_unstuffs_dots_and_stores_the_message_exactly() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    ehlo(&mut c).await;
    cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await;
    cmd(&mut c, "RCPT TO:<alice@example.test>").await;
    assert_eq!(
        cmd(&mut c, "DATA").await,
        "354 End data with <CR><LF>.<CR><LF>"
    );
    c.send("Subject: dots\r\n\r\n..leading dot\r\n...two\r\n.\tnot alone\r\nlast line\r\n.\r\n")
        .await;
    let r = c.line().await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let stored = h.inbox("alice@example.test");
    assert_eq!(stored.len(), 1);
    // RFC 5321 §4.5.2: a line's leading dot is removed, whatever follows it.
    let body: &[u8] = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n\tnot alone\r\nlast line\r\n";
    let message = &stored[0];
    assert!(
        message.ends_with(body),
        "{}",
        String::from_utf8_lossy(message)
    );
    // Before the message: Return-Path (local delivery, RFC 5321 §4.4) and the Received:
    // header, and nothing else.
    let prefix = String::from_utf8_lossy(&message[..message.len() - body.len()]);
    assert!(
        prefix.starts_with(&format!(
            "Return-Path: <bob@elsewhere.test>\r\nReceived: from pc1.example.test ([127.0.0.1])\r\n\tby {HOST} (mailroom) with ESMTP id "
        )),
        "{prefix}"
    );
    assert!(
        prefix.contains("\r\n\tfor <alice@example.test>;\r\n\t"),
        "{prefix}"
    );
    assert_eq!(prefix.matches("\r\n").count(), 5, "{prefix}");
    // The transaction is over: the next one starts with MAIL again.
    assert_eq!(
        cmd(&mut c, "RCPT TO:<alice@example.test>").await,
        "503 5.5.1 Send MAIL FROM:<you@example.test> first"
    );
}

/// The stored message of one transaction on `kind` whose data is `data` (CRLF lines, no
/// final dot), sent by `auth` (submission) or from bob@elsewhere.test (MX), to alice.
async fn store_one(h: &Harness, kind: ListenerKind, auth: bool, data: &str) -> Vec<u8> {
    let mut c = connect_to(h, kind).await;
    ehlo(&mut c).await;
    let from = if auth {
        let r = cmd(
            &mut c,
            &format!("AUTH PLAIN {}", plain("bob@example.test", "bob-secret")),
        )
        .await;
        assert_eq!(r, "235 2.7.0 Authentication successful");
        "bob@example.test"
    } else {
        "bob@elsewhere.test"
    };
    let before = h.inbox("alice@example.test").len();
    assert!(cmd(&mut c, &format!("MAIL FROM:<{from}>"))
        .await
        .starts_with("250 "));
    assert!(cmd(&mut c, "RCPT TO:<alice@example.test>")
        .await
        .starts_with("250 "));
    assert!(cmd(&mut c, "DATA").await.starts_with("354 "));
    c.send(format!("{data}.\r\n")).await;
    let r = c.line().await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let stored = h.inbox("alice@example.test");
    assert_eq!(stored.len(), before + 1);
    stored[before].clone()
}

/// Header section and body of a stored message, split at the first empty line.
fn split_message(m: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(m).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((h, b)) => (format!("{h}\r\n"), b.to_string()),
        None => (text, String::new()),
    }
}

/// A message typed with no header lines (`DATA`, `Dit is de body.`, `.`): the MX puts the
/// empty line that ends the header section between its trace headers and the text (RFC 5322
/// §2.1), so the text is the body; nothing else is added.
#[tokio::test]
async fn data_without_headers_gets_the_empty_line_on_the_mx() {
    let h = Harness::new(|_| {});
    let m = store_one(&h, ListenerKind::Smtp, false, "Dit is de body.\r\n").await;
    let (headers, body) = split_message(&m);
    assert_eq!(body, "Dit is de body.\r\n");
    assert!(
        headers.starts_with("Return-Path: <bob@elsewhere.test>\r\nReceived: "),
        "{headers}"
    );
    assert!(
        !headers.contains("Date:") && !headers.contains("From:"),
        "{headers}"
    );
    // Text that only looks like a header further down stays in the body.
    let m = store_one(
        &h,
        ListenerKind::Smtp,
        false,
        "Hello\r\nSubject: not a header\r\n",
    )
    .await;
    assert_eq!(split_message(&m).1, "Hello\r\nSubject: not a header\r\n");
    // An empty message: a header section and an empty body.
    let m = store_one(&h, ListenerKind::Smtp, false, "").await;
    assert!(m.ends_with(b"\r\n\r\n"), "{}", String::from_utf8_lossy(&m));
    assert_eq!(split_message(&m).1, "");
}

/// On submission the same message also gets Date, Message-ID and From (the authenticated
/// sender), before the empty line (RFC 6409 §8).
#[tokio::test]
async fn data_without_headers_is_completed_on_submission() {
    let h = Harness::new(|_| {});
    let m = store_one(&h, ListenerKind::Submission, true, "Dit is de body.\r\n").await;
    let (headers, body) = split_message(&m);
    assert_eq!(body, "Dit is de body.\r\n");
    assert!(headers.contains("\r\nDate: "), "{headers}");
    assert!(headers.contains("\r\nMessage-ID: <"), "{headers}");
    assert!(
        headers.ends_with("\r\nFrom: <bob@example.test>\r\n"),
        "{headers}"
    );
}

/// A message that starts with header fields is stored byte-exact behind the prefix, on both
/// listeners; submission adds only the fields that are missing.
#[tokio::test]
async fn data_with_headers_stays_byte_exact() {
    let h = Harness::new(|_| {});
    let data = "Subject: hi\r\nFrom: Bob <bob@example.test>\r\n\r\nbody\r\n";
    let m = store_one(&h, ListenerKind::Smtp, false, data).await;
    assert!(m.ends_with(data.as_bytes()));
    let prefix = String::from_utf8_lossy(&m[..m.len() - data.len()]).into_owned();
    assert!(!prefix.contains("\r\n\r\n"), "{prefix}");
    let m = store_one(&h, ListenerKind::Submission, true, data).await;
    assert!(m.ends_with(data.as_bytes()));
    let prefix = String::from_utf8_lossy(&m[..m.len() - data.len()]).into_owned();
    assert!(
        prefix.contains("Date: ") && prefix.contains("Message-ID: "),
        "{prefix}"
    );
    assert!(
        !prefix.contains("From:"),
        "the message has its own From: {prefix}"
    );
    // Headers without a body, and a body after an empty header section: as sent.
    for data in [
        "Subject: only headers\r\n",
        "\r\nbody after an empty line\r\n",
    ] {
        let m = store_one(&h, ListenerKind::Smtp, false, data).await;
        assert!(
            m.ends_with(data.as_bytes()),
            "{}",
            String::from_utf8_lossy(&m)
        );
        let prefix = String::from_utf8_lossy(&m[..m.len() - data.len()]).into_owned();
        assert!(!prefix.contains("\r\n\r\n"), "{prefix}");
    }
}

/// BDAT (RFC 3030): chunks are counted, the last one stores the message, and the octets are
/// kept as sent (no dot handling).
#[tokio::test]
async fn bdat_chunks() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    ehlo(&mut c).await;
    // RFC 3030 §2: the chunk of a refused BDAT is still read; "abc" does not become a command.
    c.send("BDAT 3\r\nabc").await;
    assert_eq!(
        c.line().await,
        "503 5.5.1 BDAT needs MAIL FROM and RCPT TO first; the chunk was discarded"
    );
    assert_eq!(cmd(&mut c, "NOOP").await, "250 2.0.0 Ok");
    cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await;
    cmd(&mut c, "RCPT TO:<alice@example.test>").await;
    let first: &[u8] = b"Subject: chunks\r\n\r\n";
    let second: &[u8] = b".not stuffed\r\nend\r\n";
    c.send(format!("BDAT {}\r\n", first.len())).await;
    c.send(first).await;
    assert_eq!(
        c.line().await,
        format!(
            "250 2.0.0 {} octets received ({} so far)",
            first.len(),
            first.len()
        )
    );
    assert_eq!(
        cmd(&mut c, "DATA").await,
        "503 5.5.1 DATA cannot follow BDAT in one message; finish with BDAT n LAST, or RSET"
    );
    c.send(format!("BDAT {} LAST\r\n", second.len())).await;
    c.send(second).await;
    let r = c.line().await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let stored = h.inbox("alice@example.test");
    assert_eq!(stored.len(), 1);
    let body = [first, second].concat();
    assert!(
        stored[0].ends_with(&body),
        "{}",
        String::from_utf8_lossy(&stored[0])
    );
}

#[tokio::test]
async fn auth_plain_success_and_failure() {
    let h = Harness::new(|_| {});
    let mut c = connect_to(&h, ListenerKind::Submission).await;
    assert_eq!(
        cmd(
            &mut c,
            &format!("AUTH PLAIN {}", plain("alice@example.test", "x"))
        )
        .await,
        "503 5.5.1 Say hello first: EHLO your.host.name"
    );
    ehlo(&mut c).await;
    // Submission: MAIL needs AUTH first.
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<alice@example.test>").await,
        "530 5.7.0 Authentication required: log in with AUTH LOGIN or AUTH PLAIN first"
    );
    assert_eq!(
        cmd(
            &mut c,
            &format!("AUTH PLAIN {}", plain("alice@example.test", "wrong"))
        )
        .await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        cmd(&mut c, "AUTH CRAM-MD5").await,
        "504 5.5.4 Unrecognized authentication mechanism CRAM-MD5; use AUTH PLAIN or AUTH LOGIN"
    );
    // Without an initial response: an empty 334 challenge (RFC 4954 §4).
    assert_eq!(cmd(&mut c, "AUTH PLAIN").await, "334");
    assert_eq!(
        cmd(&mut c, &plain("alice@example.test", "alice-secret")).await,
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(
        cmd(
            &mut c,
            &format!("AUTH PLAIN {}", plain("alice@example.test", "x"))
        )
        .await,
        "503 5.5.1 Already authenticated"
    );
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<bob@example.test>").await,
        "553 5.7.1 Sender address rejected: <bob@example.test> is not owned by user alice@example.test; use MAIL FROM:<alice@example.test>"
    );
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<alice@example.test>").await,
        "250 2.1.0 Sender <alice@example.test> ok"
    );
    // Authenticated: mail for other domains is relayed.
    assert_eq!(
        cmd(&mut c, "RCPT TO:<someone@elsewhere.test>").await,
        "250 2.1.5 Recipient <someone@elsewhere.test> ok (will be relayed)"
    );
}

/// AUTH with a short user name: the one account called alice, whatever the config's
/// domains; with a second alice elsewhere, 535 with a text that asks for the full address.
#[tokio::test]
async fn auth_with_a_short_user_name() {
    let h = Harness::new(|c| c.domains.clear());
    let mut c = connect_to(&h, ListenerKind::Submission).await;
    ehlo(&mut c).await;
    assert_eq!(
        cmd(
            &mut c,
            &format!("AUTH PLAIN {}", plain("alice", "alice-secret"))
        )
        .await,
        "235 2.7.0 Authentication successful"
    );
    // Logged in as the account: MAIL FROM is its full address.
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<alice@example.test>").await,
        "250 2.1.0 Sender <alice@example.test> ok"
    );
    let hash = mailroom_store::password::hash_password("other").expect("hash");
    h.shared
        .store
        .add_account("alice@school.test", &hash)
        .expect("second alice");
    let mut c = connect_to(&h, ListenerKind::Submission).await;
    ehlo(&mut c).await;
    assert_eq!(
        cmd(&mut c, &format!("AUTH PLAIN {}", plain("alice", "alice-secret"))).await,
        "535 5.7.8 Authentication credentials invalid: the user name alice is not unique here (several domains have it); log in with your full address, like alice@your.domain"
    );
    // AUTH LOGIN as the lab sheets type it.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(cmd(&mut c, "AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(cmd(&mut c, &b64("alice")).await, "334 UGFzc3dvcmQ6");
    assert!(cmd(&mut c, &b64("other"))
        .await
        .contains("is not unique here"));
    assert_eq!(
        cmd(
            &mut c,
            &format!("AUTH PLAIN {}", plain("alice@school.test", "other"))
        )
        .await,
        "235 2.7.0 Authentication successful"
    );
}

#[tokio::test]
async fn auth_login_and_cancel() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    ehlo(&mut c).await;
    assert_eq!(cmd(&mut c, "AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(cmd(&mut c, "*").await, "501 5.0.0 Authentication cancelled");
    assert_eq!(cmd(&mut c, "AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(
        cmd(&mut c, "not base64!").await,
        "501 5.5.2 That was not valid base64; start over with AUTH"
    );
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(cmd(&mut c, "AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(
        cmd(&mut c, &b64("alice@example.test")).await,
        "334 UGFzc3dvcmQ6"
    );
    assert_eq!(
        cmd(&mut c, &b64("alice-secret")).await,
        "235 2.7.0 Authentication successful"
    );
}

/// Too many failed logins end the session: the last 535, then 421 (limits.max_auth_failures).
#[tokio::test]
async fn auth_failures_close_the_session() {
    let h = Harness::new(|c| c.limits.max_auth_failures = 2);
    let mut c = connect(&h).await;
    ehlo(&mut c).await;
    let wrong = format!("AUTH PLAIN {}", plain("alice@example.test", "wrong"));
    assert_eq!(
        cmd(&mut c, &wrong).await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        cmd(&mut c, &wrong).await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        c.line().await,
        format!("421 4.7.0 {HOST} Too many failed logins; closing connection")
    );
    assert!(c.closed().await);
}

/// The one behaviour for an over-long SASL response (see `crate::session`): reported as too
/// long (RFC 4954 §6), the exchange is over, and it is not a failed login.
#[tokio::test]
async fn over_long_sasl_response() {
    let h = Harness::new(|c| {
        c.limits.max_command_line = 100;
        c.limits.max_auth_failures = 1;
    });
    let mut c = connect(&h).await;
    ehlo(&mut c).await;
    assert_eq!(cmd(&mut c, "AUTH PLAIN").await, "334");
    assert_eq!(
        cmd(&mut c, &"QUFB".repeat(50)).await,
        "500 5.5.6 Authentication Exchange line is too long (at most 100 octets); start over with AUTH"
    );
    // Not counted as a failed login (max_auth_failures is 1): the session goes on.
    assert_eq!(cmd(&mut c, "AUTH PLAIN").await, "334");
    assert_eq!(
        cmd(&mut c, &plain("alice@example.test", "alice-secret")).await,
        "235 2.7.0 Authentication successful"
    );
}

/// RFC 2920: pipelined commands are answered in order.
#[tokio::test]
async fn pipelining_keeps_the_order() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    c.send(
        "EHLO pc1.example.test\r\n\
         MAIL FROM:<bob@elsewhere.test>\r\n\
         RCPT TO:<alice@example.test>\r\n\
         RCPT TO:<nobody@example.test>\r\n\
         RCPT TO:<bob@example.test>\r\n\
         DATA\r\n",
    )
    .await;
    let lines = reply_lines(&mut c).await;
    assert_eq!(
        lines.last().map(String::as_str),
        Some("250 AUTH PLAIN LOGIN")
    );
    assert_eq!(c.line().await, "250 2.1.0 Sender <bob@elsewhere.test> ok");
    assert_eq!(
        c.line().await,
        "250 2.1.5 Recipient <alice@example.test> ok"
    );
    assert_eq!(
        c.line().await,
        "550 5.1.1 <nobody@example.test>: no such user here"
    );
    assert_eq!(c.line().await, "250 2.1.5 Recipient <bob@example.test> ok");
    assert_eq!(c.line().await, "354 End data with <CR><LF>.<CR><LF>");
    c.send("Subject: both\r\n\r\nhi\r\n.\r\nQUIT\r\n").await;
    assert!(c.line().await.starts_with("250 2.0.0 Ok: queued as "));
    assert_eq!(
        c.line().await,
        format!("221 2.0.0 {HOST} closing connection; bye")
    );
    assert!(c.closed().await);
    assert_eq!(h.inbox("alice@example.test").len(), 1);
    assert_eq!(h.inbox("bob@example.test").len(), 1);
}

/// Every refusal counts towards limits.max_errors; the last one is followed by 421.
#[tokio::test]
async fn too_many_errors_close_the_session() {
    let h = Harness::new(|c| c.limits.max_errors = 3);
    let mut c = connect(&h).await;
    for _ in 0..2 {
        assert!(cmd(&mut c, "FROB").await.starts_with("500 5.5.1 "));
    }
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await,
        "503 5.5.1 Say hello first: EHLO your.host.name"
    );
    assert_eq!(
        c.line().await,
        format!("421 4.7.0 {HOST} Too many errors in this session; closing connection")
    );
    assert!(c.closed().await);
}

#[tokio::test]
async fn quit() {
    let h = Harness::new(|_| {});
    let mut c = connect(&h).await;
    assert_eq!(
        cmd(&mut c, "QUIT").await,
        format!("221 2.0.0 {HOST} closing connection; bye")
    );
    assert!(c.closed().await);
}

/// STARTTLS over the pipe: 220, plaintext pipelined behind it discarded, and the session
/// starts over (RFC 3207 §4.2): EHLO again, no STARTTLS offered any more.
#[tokio::test]
async fn starttls_starts_over() {
    let h = Harness::with_tls(|c| c.auth_require_tls = crate::config::AuthTlsPolicy::Always);
    let mut c = connect(&h).await;
    assert_eq!(
        cmd(&mut c, "STARTTLS").await,
        "503 5.5.1 Say hello first: EHLO your.host.name"
    );
    ehlo(&mut c).await;
    c.send("STARTTLS\r\nMAIL FROM:<injected@elsewhere.test>\r\n")
        .await;
    assert_eq!(c.line().await, "220 2.0.0 Ready to start TLS");
    let server_tls = h.shared.tls.clone().expect("TLS configured");
    let mut c = c.start_tls(&server_tls).await;
    // The injected MAIL was discarded, and the greeting forgotten.
    assert_eq!(
        cmd(&mut c, "MAIL FROM:<bob@elsewhere.test>").await,
        "503 5.5.1 Say hello first: EHLO your.host.name"
    );
    let lines = ehlo(&mut c).await;
    assert!(!lines.iter().any(|l| l.contains("STARTTLS")), "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("250 AUTH PLAIN LOGIN")
    );
    assert_eq!(
        cmd(&mut c, "STARTTLS").await,
        "503 5.5.1 TLS is already active on this connection"
    );
}
