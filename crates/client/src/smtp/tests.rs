use super::*;
use crate::testutil::{collector, fake, Step::*};

fn reply(code: u16, lines: &[&str]) -> SmtpReply {
    SmtpReply::received(code, lines.iter().map(|s| s.to_string()).collect())
}

fn outcome(mail: u16, rcpts: &[(&str, u16)], data: Option<u16>) -> SendOutcome {
    SendOutcome {
        mail: reply(mail, &["x"]),
        rcpts: rcpts
            .iter()
            .map(|(a, c)| (a.to_string(), reply(*c, &["x"])))
            .collect(),
        data: data.map(|c| reply(c, &["x"])),
    }
}

#[test]
fn outcome_accepted() {
    let o = outcome(250, &[("a", 250), ("b", 550)], Some(250));
    assert_eq!(o.accepted(), vec!["a"]);
    assert!(!o.all_accepted());
    let o = outcome(250, &[("a", 250), ("b", 251)], Some(250));
    assert!(o.all_accepted());
    let o = outcome(250, &[("a", 250)], Some(554));
    assert!(o.accepted().is_empty());
    let o = outcome(550, &[], None);
    assert!(!o.all_accepted());
    let rcpts = vec!["a".to_string()];
    assert_eq!(o.per_recipient(&rcpts)[0].1.code, 550);
    let o = outcome(250, &[("a", 250), ("b", 550)], Some(451));
    let rcpts = vec!["a".to_string(), "b".to_string()];
    let per = o.per_recipient(&rcpts);
    assert_eq!((per[0].1.code, per[1].1.code), (451, 550));
}

const T: Duration = Duration::from_secs(5);

fn ehlo_reply(exts: &'static str) -> crate::testutil::Step {
    Send(exts)
}

#[tokio::test]
async fn pipelined_send_with_auth_plain() {
    let (addr, task) = fake(vec![
        Send("220 mx.example.test ESMTP\r\n"),
        Expect("EHLO pc1.example.test"),
        ehlo_reply("250-mx.example.test Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"),
        // base64("\0alice@example.test\0secret")
        Expect("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ="),
        Send("235 2.7.0 Authentication successful\r\n"),
        Expect("MAIL FROM:<alice@example.test> SIZE=23"),
        Expect("RCPT TO:<bob@example.test>"),
        Expect("RCPT TO:<nobody@example.test>"),
        Expect("DATA"),
        Send("250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n550 5.1.1 <nobody@example.test>: no such user here\r\n354 go ahead\r\n"),
        ReadData,
        Send("250 2.0.0 Ok: queued as 1\r\n"),
        Expect("QUIT"),
        Send("221 2.0.0 bye\r\n"),
    ])
    .await;
    let (trace, lines) = collector();
    let mut c = SmtpClient::connect(&addr, T, trace).await.expect("connect");
    assert_eq!(c.greeting().code, 220);
    c.hello("pc1.example.test").await.expect("ehlo");
    assert!(c.extensions().pipelining);
    c.authenticate("alice@example.test", "secret")
        .await
        .expect("auth");
    let rcpts = vec![
        "bob@example.test".to_string(),
        "nobody@example.test".to_string(),
    ];
    let out = c
        .send_mail("alice@example.test", &rcpts, b"Subject: x\n\n.hidden\n")
        .await
        .expect("send");
    assert_eq!(out.accepted(), vec!["bob@example.test"]);
    assert!(!out.all_accepted());
    assert_eq!(out.rcpts[1].1.code, 550);
    assert_eq!(out.data.as_ref().map(|d| d.code), Some(250));
    c.quit().await.expect("quit");
    let seen = task.await.expect("join").expect("script");
    assert_eq!(seen.data, b"Subject: x\r\n\r\n..hidden\r\n.\r\n");
    let lines = lines.lock().expect("lock").clone();
    assert!(
        lines.contains(&"C: AUTH PLAIN ****".to_string()),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("AGFsaWNl")),
        "secret leaked: {lines:#?}"
    );
    assert!(lines.contains(&"S: 250-PIPELINING".to_string()));
    assert!(lines.contains(&"C: ..hidden".to_string()), "{lines:#?}");
    assert!(lines.contains(&"C: .".to_string()));
    assert_eq!(lines.last().map(String::as_str), Some("S: 221 2.0.0 bye"));
}

#[tokio::test]
async fn no_recipient_accepted_sends_no_content() {
    let (addr, task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250-mx\r\n250 PIPELINING\r\n"),
        Expect("MAIL FROM:<>"),
        Expect("RCPT TO:<x@example.test>"),
        Expect("DATA"),
        Send("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"),
        Expect("RSET"),
        Send("250 ok\r\n"),
        Expect("QUIT"),
        Send("221 bye\r\n"),
    ])
    .await;
    // Inside tokio::spawn: the client's futures are Send (the outbound queue needs that).
    tokio::spawn(async move {
        let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
        c.hello("me").await.expect("ehlo");
        let out = c
            .send_mail("", &["x@example.test".to_string()], b"body\r\n")
            .await
            .expect("send");
        assert!(out.data.is_none());
        assert!(out.accepted().is_empty());
        c.quit().await.expect("quit");
    })
    .await
    .expect("task");
    let seen = task.await.expect("join").expect("script");
    assert!(seen.data.is_empty());
}

#[tokio::test]
async fn pipelined_server_that_says_354_anyway_gets_only_the_dot() {
    let (addr, task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250-mx\r\n250 PIPELINING\r\n"),
        Expect("MAIL FROM:<a@b>"),
        Expect("RCPT TO:<x@b>"),
        Expect("DATA"),
        Send("250 ok\r\n550 no\r\n354 go\r\n"),
        Expect("."),
        Send("554 no valid recipients\r\n"),
        Expect("RSET"),
        Send("250 ok\r\n"),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let out = c
        .send_mail("a@b", &["x@b".to_string()], b"secret body\r\n")
        .await
        .expect("send");
    assert!(out.data.is_none());
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn without_pipelining_stops_after_refused_mail_and_falls_back_to_helo() {
    let (addr, task) = fake(vec![
        Send("220 old server\r\n"),
        Expect("EHLO me"),
        Send("502 what?\r\n"),
        Expect("HELO me"),
        Send("250 hello\r\n"),
        Expect("MAIL FROM:<a@b>"),
        Send("553 5.7.1 not your address\r\n"),
        Expect("MAIL FROM:<a@b>"),
        Send("250 ok\r\n"),
        Expect("RCPT TO:<x@b>"),
        Send("250 ok\r\n"),
        Expect("DATA"),
        Send("354 go\r\n"),
        ReadData,
        Send("451 4.3.0 disk trouble, try later\r\n"),
        Expect("QUIT"),
        Send("221 bye\r\n"),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("helo");
    assert!(!c.extensions().pipelining);
    let rcpts = vec!["x@b".to_string()];
    let out = c.send_mail("a@b", &rcpts, b"hi\r\n").await.expect("send");
    assert_eq!(out.mail.code, 553);
    assert!(out.rcpts.is_empty() && out.data.is_none());
    let out = c.send_mail("a@b", &rcpts, b"hi\r\n").await.expect("send");
    assert_eq!(out.data.as_ref().map(|d| d.code), Some(451));
    assert!(out.accepted().is_empty());
    c.quit().await.expect("quit");
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn auth_login_dialogue_is_masked() {
    let (addr, task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250-mx\r\n250 AUTH LOGIN\r\n"),
        Expect("AUTH LOGIN"),
        Send("334 VXNlcm5hbWU6\r\n"),
        Expect("YWxpY2VAZXhhbXBsZS50ZXN0"),
        Send("334 UGFzc3dvcmQ6\r\n"),
        Expect("d3Jvbmc="),
        Send("535 5.7.8 Authentication credentials invalid\r\n"),
    ])
    .await;
    let (trace, lines) = collector();
    let mut c = SmtpClient::connect(&addr, T, trace).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let err = c
        .authenticate("alice@example.test", "wrong")
        .await
        .expect_err("refused");
    match &err {
        SmtpError::Rejected { command, reply, .. } => {
            assert_eq!(command, "AUTH LOGIN");
            assert_eq!(reply.code, 535);
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("{addr} refused AUTH LOGIN: 535 5.7.8 Authentication credentials invalid")
    );
    let lines = lines.lock().expect("lock").clone();
    assert_eq!(
        lines[4..],
        [
            "C: AUTH LOGIN",
            "S: 334 VXNlcm5hbWU6",
            "C: ****",
            "S: 334 UGFzc3dvcmQ6",
            "C: ****",
            "S: 535 5.7.8 Authentication credentials invalid"
        ]
    );
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn auth_not_offered() {
    let (addr, _task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250 mx\r\n"),
        Sleep(500),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let err = c.authenticate("a", "b").await.expect_err("no auth");
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("does not offer AUTH"), "{err}");
}

#[tokio::test]
async fn greeting_554_is_rejected() {
    let (addr, task) = fake(vec![
        Send("554 5.7.1 go away\r\n"),
        Expect("QUIT"),
        Send("221 bye\r\n"),
    ])
    .await;
    let err = SmtpClient::connect(&addr, T, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(
        err.to_string(),
        format!("{addr} refused the connection: 554 5.7.1 go away")
    );
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn connection_refused() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    drop(l);
    let err = SmtpClient::connect(&addr, T, None)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, SmtpError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to {addr}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let (addr, _task) = fake(vec![Sleep(3000)]).await;
    let err = SmtpClient::connect(&addr, Duration::from_millis(200), None)
        .await
        .err()
        .expect("timeout");
    match err {
        SmtpError::Timeout { waiting_for, .. } => assert_eq!(waiting_for, "the greeting (220)"),
        e => panic!("{e:?}"),
    }
}

#[tokio::test]
async fn close_during_data_is_an_error_not_an_outcome() {
    let (addr, task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250 mx\r\n"),
        Expect("MAIL FROM:<a@b>"),
        Send("250 ok\r\n"),
        Expect("RCPT TO:<x@b>"),
        Send("250 ok\r\n"),
        Expect("DATA"),
        Send("354 go\r\n"),
        ReadData,
        Close,
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let err = c
        .send_mail("a@b", &["x@b".to_string()], b"hi\r\n")
        .await
        .expect_err("closed");
    assert!(matches!(err, SmtpError::Closed { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("{addr} closed the connection"));
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn service_closing_421_ends_the_transaction() {
    let (addr, _task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250 mx\r\n"),
        Expect("MAIL FROM:<a@b>"),
        Send("421 4.3.2 shutting down\r\n"),
        Close,
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let err = c
        .send_mail("a@b", &["x@b".to_string()], b"hi\r\n")
        .await
        .expect_err("421");
    assert!(
        matches!(err, SmtpError::Rejected { ref reply, .. } if reply.code == 421),
        "{err:?}"
    );
}

#[tokio::test]
async fn size_8bitmime_and_smtputf8_parameters() {
    let (addr, task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250-mx\r\n250-SIZE\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"),
        Expect("MAIL FROM:<jörg@example.test> SIZE=8 BODY=8BITMIME SMTPUTF8"),
        Send("250 ok\r\n"),
        Expect("RCPT TO:<bob@example.test>"),
        Send("250 ok\r\n"),
        Expect("DATA"),
        Send("354 go\r\n"),
        ReadData,
        Send("250 ok\r\n"),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let out = c
        .send_mail(
            "jörg@example.test",
            &["bob@example.test".to_string()],
            "grüß\r\n".as_bytes(),
        )
        .await
        .expect("send");
    assert!(out.all_accepted());
    let seen = task.await.expect("join").expect("script");
    assert_eq!(seen.data, "grüß\r\n.\r\n".as_bytes());
}

#[tokio::test]
async fn non_ascii_address_without_smtputf8_is_refused_locally() {
    let (addr, _task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250 mx\r\n"),
        Sleep(500),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let err = c
        .send_mail("a@b", &["jörg@example.test".to_string()], b"x\r\n")
        .await
        .expect_err("local refusal");
    assert!(err.to_string().contains("SMTPUTF8"), "{err}");
}

#[tokio::test]
async fn command_injection_is_refused() {
    let (addr, _task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250 mx\r\n"),
        Sleep(500),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    for bad in ["a@b>\r\nRCPT TO:<evil@x", "a@b\nx", "<a@b>"] {
        let err = c
            .send_mail(bad, &["x@b".to_string()], b"x\r\n")
            .await
            .expect_err("refused");
        assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
        let err = c
            .send_mail("a@b", &[bad.to_string()], b"x\r\n")
            .await
            .expect_err("refused");
        assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn garbage_reply_is_a_protocol_error() {
    let (addr, _task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("HTTP/1.1 400 Bad Request\r\n"),
        Sleep(500),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    let err = c.hello("me").await.expect_err("garbage");
    assert!(matches!(err, SmtpError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("not an SMTP reply line"), "{err}");
}

#[tokio::test]
async fn long_bodies_are_summarized_in_the_trace() {
    let (addr, _task) = fake(vec![
        Send("220 mx\r\n"),
        Expect("EHLO me"),
        Send("250 mx\r\n"),
        Expect("MAIL FROM:<a@b>"),
        Send("250 ok\r\n"),
        Expect("RCPT TO:<x@b>"),
        Send("250 ok\r\n"),
        Expect("DATA"),
        Send("354 go\r\n"),
        ReadData,
        Send("250 ok\r\n"),
    ])
    .await;
    let (trace, lines) = collector();
    let mut c = SmtpClient::connect(&addr, T, trace).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let body: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    c.send_mail("a@b", &["x@b".to_string()], body.as_bytes())
        .await
        .expect("send");
    let lines = lines.lock().expect("lock").clone();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("C: [... 940 more lines,")),
        "{lines:#?}"
    );
    assert!(lines.len() < 100);
}

/// Compile-time check: every future of the client can move between threads.
#[allow(dead_code)]
fn futures_are_send(c: &mut SmtpClient, rcpts: &[String]) {
    fn send<T: std::marker::Send>(_: T) {}
    send(SmtpClient::connect("x:25", T, None));
    send(c.hello("me"));
    send(c.authenticate("a", "b"));
    send(c.send_mail("", rcpts, b""));
    send(c.rset());
    send(c.raw_command("NOOP"));
}

/// The client side of CVE-2011-0411: a server (or a man in the middle) that sends more after
/// its 220 go-ahead for STARTTLS is not trusted; the session is abandoned before TLS.
#[tokio::test]
async fn starttls_refuses_data_sent_after_the_go_ahead() {
    let (addr, task) = fake(vec![
        Send("220 fake ESMTP\r\n"),
        Expect("EHLO pc1"),
        Send("250-fake\r\n250 STARTTLS\r\n"),
        Expect("STARTTLS"),
        Send("220 go ahead\r\n250 injected\r\n"),
        Sleep(200),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, Duration::from_secs(5), None)
        .await
        .unwrap();
    c.hello("pc1").await.unwrap();
    assert!(c.extensions().starttls);
    // The 220 and the injected line may arrive in one read; give them the chance.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = c
        .starttls(&crate::tls::ClientTls::insecure())
        .await
        .unwrap_err();
    assert!(matches!(e, SmtpError::Tls { .. }), "{e}");
    assert!(!c.is_tls());
    task.await.unwrap().unwrap();
}

/// A refused STARTTLS is a Rejected error, and the session stays usable in clear.
#[tokio::test]
async fn starttls_refused_is_rejected() {
    let (addr, task) = fake(vec![
        Send("220 fake ESMTP\r\n"),
        Expect("EHLO pc1"),
        Send("250-fake\r\n250 STARTTLS\r\n"),
        Expect("STARTTLS"),
        Send("454 4.7.0 TLS not available due to temporary reason\r\n"),
        Expect("QUIT"),
        Send("221 bye\r\n"),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, Duration::from_secs(5), None)
        .await
        .unwrap();
    c.hello("pc1").await.unwrap();
    let e = c
        .starttls(&crate::tls::ClientTls::insecure())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SmtpError::Rejected { reply, .. } if reply.code == 454),
        "{e}"
    );
    c.quit().await.unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn send_next_mail_pipelines_rset_with_the_transaction() {
    let (addr, task) = fake(vec![
        Send("220 mx ESMTP\r\n"),
        Expect("EHLO me"),
        Send("250-mx\r\n250 PIPELINING\r\n"),
        Expect("MAIL FROM:<a@b>"),
        Expect("RCPT TO:<x@b>"),
        Expect("DATA"),
        Send("250 ok\r\n250 ok\r\n354 go\r\n"),
        ReadData,
        Send("250 queued 1\r\n"),
        // The second transaction: RSET opens the same group.
        Expect("RSET"),
        Expect("MAIL FROM:<a@b>"),
        Expect("RCPT TO:<x@b>"),
        Expect("DATA"),
        Send("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n"),
        ReadData,
        Send("250 queued 2\r\n"),
        Expect("QUIT"),
        Send("221 bye\r\n"),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let rcpts = vec!["x@b".to_string()];
    let out = c.send_mail("a@b", &rcpts, b"one\r\n").await.expect("send");
    assert!(out.all_accepted() && c.content_sent());
    let out = c
        .send_next_mail("a@b", &rcpts, b"two\r\n")
        .await
        .expect("send again");
    assert!(out.all_accepted() && c.content_sent());
    c.quit().await.expect("quit");
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn send_next_mail_without_pipelining_waits_for_rset() {
    let (addr, task) = fake(vec![
        Send("220 mx ESMTP\r\n"),
        Expect("EHLO me"),
        Send("250 mx\r\n"),
        Expect("RSET"),
        Send("250 reset\r\n"),
        Expect("MAIL FROM:<a@b>"),
        Send("250 ok\r\n"),
        Expect("RCPT TO:<x@b>"),
        Send("250 ok\r\n"),
        Expect("DATA"),
        Send("354 go\r\n"),
        ReadData,
        Send("250 queued\r\n"),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let rcpts = vec!["x@b".to_string()];
    let out = c
        .send_next_mail("a@b", &rcpts, b"hi\r\n")
        .await
        .expect("send");
    assert!(out.all_accepted());
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn a_refused_rset_is_an_error_before_any_content() {
    let (addr, task) = fake(vec![
        Send("220 mx ESMTP\r\n"),
        Expect("EHLO me"),
        Send("250-mx\r\n250 PIPELINING\r\n"),
        Expect("RSET"),
        Expect("MAIL FROM:<a@b>"),
        Expect("RCPT TO:<x@b>"),
        Expect("DATA"),
        Send("451 4.3.2 too many transactions on this connection\r\n"),
    ])
    .await;
    let mut c = SmtpClient::connect(&addr, T, None).await.expect("connect");
    c.hello("me").await.expect("ehlo");
    let rcpts = vec!["x@b".to_string()];
    let e = c
        .send_next_mail("a@b", &rcpts, b"hi\r\n")
        .await
        .expect_err("RSET refused");
    assert!(
        matches!(&e, SmtpError::Rejected { command, reply, .. } if command == "RSET" && reply.code == 451),
        "{e:?}"
    );
    assert!(!c.content_sent());
    task.await.expect("join").expect("script");
}
