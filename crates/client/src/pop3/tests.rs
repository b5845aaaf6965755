use super::*;
use crate::testutil::{collector, fake, Step::*};

const T: Duration = Duration::from_secs(5);

#[test]
fn apop_rfc1939_example() {
    // RFC 1939 §7.
    let greeting = "POP3 server ready <1896.697170952@dbc.mtview.ca.us>";
    let ts = apop_timestamp(greeting).expect("timestamp");
    assert_eq!(
        apop_digest(ts, "tanstaaf"),
        "c4c9334bac560ecc979e58001b3e22fb"
    );
}

#[tokio::test]
async fn a_whole_session() {
    let (addr, task) = fake(vec![
        Send("+OK mailroom POP3 ready <1.2@mx>\r\n"),
        Expect("USER bob@example.test"),
        Send("+OK hello\r\n"),
        Expect("PASS hunter2"),
        Send("+OK bob@example.test has 2 messages (300 octets)\r\n"),
        Expect("STAT"),
        Send("+OK 2 300\r\n"),
        Expect("LIST"),
        Send("+OK 2 messages\r\n1 100\r\n2 200\r\n.\r\n"),
        Expect("UIDL"),
        Send("+OK\r\n1 abc\r\n2 def\r\n.\r\n"),
        Expect("RETR 1"),
        Send("+OK 100 octets\r\nSubject: x\r\n\r\n..dot line\r\nend\r\n.\r\n"),
        Expect("TOP 2 0"),
        Send("+OK\r\nSubject: y\r\n\r\n.\r\n"),
        Expect("DELE 1"),
        Send("+OK message 1 deleted\r\n"),
        Expect("DELE 9"),
        Send("-ERR no message 9\r\n"),
        Expect("RSET"),
        Send("+OK\r\n"),
        Expect("NOOP"),
        Send("+OK\r\n"),
        Expect("LIST 2"),
        Send("+OK 2 200\r\n"),
        Expect("UIDL 2"),
        Send("+OK 2 def\r\n"),
        Expect("QUIT"),
        Send("+OK bye\r\n"),
    ])
    .await;
    let (trace, lines) = collector();
    // Spawned: the client's futures are Send.
    let addr2 = addr.clone();
    let mut c = tokio::spawn(async move { Pop3Client::connect(&addr2, T, trace).await })
        .await
        .expect("task")
        .expect("connect");
    assert_eq!(c.timestamp(), Some("<1.2@mx>"));
    c.user_pass("bob@example.test", "hunter2")
        .await
        .expect("login");
    assert_eq!(c.stat().await.expect("stat"), (2, 300));
    assert_eq!(c.list().await.expect("list"), vec![(1, 100), (2, 200)]);
    assert_eq!(
        c.uidl().await.expect("uidl"),
        vec![(1, "abc".into()), (2, "def".into())]
    );
    assert_eq!(
        c.retr(1).await.expect("retr"),
        b"Subject: x\r\n\r\n.dot line\r\nend\r\n"
    );
    assert_eq!(c.top(2, 0).await.expect("top"), b"Subject: y\r\n\r\n");
    assert!(c.dele(1).await.expect("dele").ok);
    let err = c.dele(9).await.expect_err("no such message");
    assert_eq!(
        err.to_string(),
        format!("{addr} refused DELE 9: -ERR no message 9")
    );
    c.rset().await.expect("rset");
    c.noop().await.expect("noop");
    assert_eq!(c.list_one(2).await.expect("list 2"), (2, 200));
    assert_eq!(c.uidl_one(2).await.expect("uidl 2"), (2, "def".into()));
    c.quit().await.expect("quit");
    task.await.expect("join").expect("script");
    let lines = lines.lock().expect("lock").clone();
    assert!(lines.contains(&"C: PASS ****".to_string()), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("hunter2")), "{lines:#?}");
    assert!(lines.contains(&"S: ..dot line".to_string()), "{lines:#?}");
}

#[tokio::test]
async fn wrong_password_and_apop() {
    let (addr, task) = fake(vec![
        Send("+OK ready <1896.697170952@dbc.mtview.ca.us>\r\n"),
        Expect("USER bob"),
        Send("+OK\r\n"),
        Expect("PASS nope"),
        Send("-ERR [AUTH] wrong user name or password\r\n"),
        Expect("APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
        Send("+OK maildrop has 1 message\r\n"),
    ])
    .await;
    let (trace, lines) = collector();
    let mut c = Pop3Client::connect(&addr, T, trace).await.expect("connect");
    let err = c.user_pass("bob", "nope").await.expect_err("refused");
    assert!(
        matches!(err, Pop3Error::Rejected { ref command, .. } if command == "PASS"),
        "{err:?}"
    );
    c.apop("mrose", "tanstaaf").await.expect("apop");
    task.await.expect("join").expect("script");
    let lines = lines.lock().expect("lock").clone();
    assert!(
        lines.contains(&"C: APOP mrose ****".to_string()),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn greeting_err_and_close_mid_retr() {
    let (addr, task) = fake(vec![Send("-ERR [SYS/TEMP] too busy\r\n")]).await;
    let err = Pop3Client::connect(&addr, T, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(
        err.to_string(),
        format!("{addr} refused the connection: -ERR [SYS/TEMP] too busy")
    );
    task.await.expect("join").expect("script");

    let (addr, _task) = fake(vec![
        Send("+OK ready\r\n"),
        Expect("RETR 1"),
        Send("+OK\r\nSubject: partial\r\nhalf a li"),
        Close,
    ])
    .await;
    let mut c = Pop3Client::connect(&addr, T, None).await.expect("connect");
    let err = c.retr(1).await.expect_err("closed");
    assert!(matches!(err, Pop3Error::Closed { .. }), "{err:?}");
}

#[tokio::test]
async fn not_pop3_at_all() {
    let (addr, _task) = fake(vec![Send("220 mx ESMTP\r\n"), Sleep(300)]).await;
    let err = Pop3Client::connect(&addr, T, None)
        .await
        .err()
        .expect("not pop3");
    assert!(matches!(err, Pop3Error::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("expected +OK or -ERR"), "{err}");
}

/// Compile-time check: every future of the client can move between threads.
#[allow(dead_code)]
fn futures_are_send(c: &mut Pop3Client) {
    fn send<T: std::marker::Send>(_: T) {}
    send(c.capa());
    send(c.user_pass("a", "b"));
    send(c.apop("a", "b"));
    send(c.stat());
    send(c.list());
    send(c.uidl());
    send(c.top(1, 0));
    send(c.retr(1));
    send(c.dele(1));
    send(c.raw_command("NOOP"));
}
