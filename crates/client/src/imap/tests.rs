use super::parse::*;
use super::*;
use crate::testutil::{collector, fake, Step::*};

const T: Duration = Duration::from_secs(5);

fn atom(s: &str) -> Value {
    Value::Atom(s.into())
}

#[test]
fn fetch_items_and_sets() {
    let r = response(b"* 2 FETCH (UID 9 FLAGS (\\Seen) RFC822.SIZE 120 BODY[]<0> {3}\r\nabc)")
        .expect("fetch");
    let Response::Numbered { n, rest, .. } = r else {
        panic!("not numbered")
    };
    let f = fetched(n, &rest).expect("items");
    assert_eq!(f.seq, 2);
    assert_eq!(f.uid, Some(9));
    assert_eq!(f.flags, Some(vec!["\\Seen".to_string()]));
    assert_eq!(f.size, Some(120));
    assert_eq!(f.sections, vec![("BODY[]".to_string(), b"abc".to_vec())]);
    assert!(fetched(1, &[atom("UID")]).is_err());
    assert_eq!(expand_set("1:3,7,9:8"), vec![1, 2, 3, 7, 8, 9]);
    assert_eq!(quote("INBOX").as_deref(), Some("INBOX"));
    assert_eq!(quote("My Folder").as_deref(), Some("\"My Folder\""));
    assert_eq!(quote("a\"b\\").as_deref(), Some("\"a\\\"b\\\\\""));
    assert_eq!(quote("nil").as_deref(), Some("\"nil\""));
    assert_eq!(quote(""), Some("\"\"".into()));
    assert_eq!(quote("Grüße"), None);
    assert_eq!(
        split_words(r#"FROM alice SUBJECT "lunch \"at\" noon"  x"#),
        vec![
            ("FROM".to_string(), false),
            ("alice".to_string(), false),
            ("SUBJECT".to_string(), false),
            ("lunch \"at\" noon".to_string(), true),
            ("x".to_string(), false),
        ]
    );
}

#[tokio::test]
async fn login_select_fetch_logout_with_a_literal() {
    let (addr, task) = fake(vec![
        Send("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"),
        Expect("a1 LOGIN bob \"p w\""),
        Send("a1 OK [CAPABILITY IMAP4rev1 MOVE] logged in\r\n"),
        Expect("a2 SELECT INBOX"),
        Send("* 2 EXISTS\r\n* FLAGS (\\Seen \\Deleted)\r\n* OK [UIDVALIDITY 42] ok\r\n"),
        Send("* OK [UIDNEXT 5] ok\r\na2 OK [READ-WRITE] SELECT completed\r\n"),
        Expect("a3 FETCH 2 BODY.PEEK[]"),
        Send("* 2 FETCH (BODY[] {14}\r\nSubject: x\r\n\r\n UID 4)\r\n"),
        Send("a3 OK FETCH completed\r\n"),
        Expect("a4 LOGOUT"),
        Send("* BYE bye\r\na4 OK LOGOUT completed\r\n"),
    ])
    .await;
    let (trace, lines) = collector();
    let mut c = ImapClient::connect(&addr, T, trace).await.expect("connect");
    assert!(c.has("literal+"));
    c.login("bob", "p w").await.expect("login");
    assert!(c.has("MOVE"), "{:?}", c.capabilities());
    let sel = c.select("INBOX", false).await.expect("select");
    assert_eq!(sel.exists, 2);
    assert_eq!(sel.uidvalidity, Some(42));
    assert_eq!(sel.uidnext, Some(5));
    assert!(!sel.read_only);
    let msg = c.fetch_message(2, true).await.expect("fetch");
    assert_eq!(msg, b"Subject: x\r\n\r\n");
    c.logout().await.expect("logout");
    task.await.expect("join").expect("script");
    let lines = lines.lock().expect("lock").clone();
    assert!(
        lines.contains(&"C: a1 LOGIN bob ****".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"S: Subject: x".to_string()), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("p w")), "{lines:?}");
}

#[tokio::test]
async fn synchronizing_literal_waits_for_go_ahead() {
    // An 8-bit password can only go as a literal; without LITERAL+ the client waits for "+".
    let (addr, task) = fake(vec![
        Send("* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        Expect("a1 LOGIN bob {9}"),
        Send("+ Ready for literal data\r\n"),
        Expect("pässwort"),
        Send("a1 OK [CAPABILITY IMAP4rev1] logged in\r\n"),
    ])
    .await;
    let (trace, lines) = collector();
    let mut c = ImapClient::connect(&addr, T, trace).await.expect("connect");
    c.login("bob", "pässwort").await.expect("login");
    task.await.expect("join").expect("script");
    let lines = lines.lock().expect("lock").clone();
    assert!(lines.contains(&"C: ****".to_string()), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("pässwort")), "{lines:?}");
}

#[tokio::test]
async fn mailbox_names_go_in_modified_utf7_both_ways() {
    let (addr, task) = fake(vec![
        Send("* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        Expect("a1 CREATE Gr&APwA3w-"),
        Send("a1 OK CREATE completed\r\n"),
        Expect("a2 LIST \"\" \"*\""),
        Send("* LIST (\\HasNoChildren) \"/\" Gr&APwA3w-\r\n"),
        Send("* LIST (\\HasNoChildren) \"/\" \"R&-D\"\r\n"),
        Send("* LIST () \"/\" \"Bad&-&\"\r\n"),
        Send("a2 OK LIST completed\r\n"),
        Expect("a3 SELECT R&-D"),
        Send("* 0 EXISTS\r\na3 OK [READ-WRITE] SELECT completed\r\n"),
    ])
    .await;
    let mut c = ImapClient::connect(&addr, T, None).await.expect("connect");
    c.create("Grüß").await.expect("create");
    let names: Vec<String> = c
        .list("*")
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.name)
        .collect();
    // A name that is not valid modified UTF-7 is shown as it came.
    assert_eq!(names, vec!["Grüß", "R&D", "Bad&-&"]);
    let sel = c.select("R&D", false).await.expect("select");
    assert_eq!(sel.name, "R&D");
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn refusals_and_a_bye_before_close() {
    let (addr, task) = fake(vec![Send("* BYE too many connections\r\n")]).await;
    let err = ImapClient::connect(&addr, T, None)
        .await
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!("{addr} refused the connection: BYE too many connections")
    );
    task.await.expect("join").expect("script");

    let (addr, task) = fake(vec![
        Send("* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        Expect("a1 LOGIN bob x"),
        Send("a1 NO [AUTHENTICATIONFAILED] wrong user name or password\r\n"),
        Expect("a2 SELECT Nope"),
        Send("* BYE autologout\r\n"),
        Close,
    ])
    .await;
    let mut c = ImapClient::connect(&addr, T, None).await.expect("connect");
    let err = c.login("bob", "x").await.expect_err("refused");
    assert!(
        matches!(&err, ImapError::Rejected { command, reply, .. }
            if command == "LOGIN" && reply.code.as_deref() == Some("AUTHENTICATIONFAILED")),
        "{err:?}"
    );
    let err = c.select("Nope", false).await.expect_err("bye");
    assert!(
        matches!(&err, ImapError::Rejected { reply, .. } if reply.status == Status::Bye),
        "{err:?}"
    );
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn close_in_the_middle_of_a_literal_is_closed() {
    let (addr, _task) = fake(vec![
        Send("* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        Expect("a1 FETCH 1 BODY[]"),
        Send("* 1 FETCH (BODY[] {100}\r\nonly a part"),
        Close,
    ])
    .await;
    let mut c = ImapClient::connect(&addr, T, None).await.expect("connect");
    let err = c.fetch_message(1, false).await.expect_err("closed");
    assert!(matches!(err, ImapError::Closed { .. }), "{err:?}");
}

#[tokio::test]
async fn login_disabled_is_refused_locally() {
    let (addr, _task) = fake(vec![Send(
        "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n",
    )])
    .await;
    let mut c = ImapClient::connect(&addr, T, None).await.expect("connect");
    let err = c.login("bob", "x").await.expect_err("disabled");
    assert!(err.to_string().contains("LOGINDISABLED"), "{err}");
}

#[tokio::test]
async fn idle_reports_news_then_done() {
    let (addr, task) = fake(vec![
        Send("* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"),
        Expect("a1 IDLE"),
        Send("+ idling\r\n"),
        Sleep(100),
        Send("* 3 EXISTS\r\n* 1 EXPUNGE\r\n"),
        Expect("DONE"),
        Send("a1 OK IDLE terminated\r\n"),
    ])
    .await;
    let mut c = ImapClient::connect(&addr, T, None).await.expect("connect");
    let mut news = Vec::new();
    let started = std::time::Instant::now();
    let done = c
        .idle(Duration::from_millis(600), |r| news.push(r.clone()))
        .await
        .expect("idle");
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(done.text, "IDLE terminated");
    assert_eq!(news.len(), 2, "{news:?}");
    assert!(matches!(&news[0], Response::Numbered { n: 3, keyword, .. } if keyword == "EXISTS"));
    // The connection's own timeout is back in force afterwards.
    assert_eq!(c.conn.timeout, T);
    task.await.expect("join").expect("script");
}

#[tokio::test]
async fn append_sends_the_message_as_a_literal_with_crlf() {
    let (addr, task) = fake(vec![
        Send("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"),
        Expect("a1 APPEND Entw&APw-rfe (\\Draft) {20+}"),
        Expect("Subject: x"),
        Expect(""),
        Expect("body"),
        Expect(""),
        Send("a1 OK [APPENDUID 7 5] APPEND completed\r\n"),
    ])
    .await;
    let (trace, lines) = collector();
    let mut c = ImapClient::connect(&addr, T, trace).await.expect("connect");
    let ok = c
        .append("Entwürfe", &["\\Draft"], b"Subject: x\n\nbody\n")
        .await
        .expect("append");
    assert_eq!(ok.code.as_deref(), Some("APPENDUID 7 5"));
    task.await.expect("join").expect("script");
    let lines = lines.lock().expect("lock").clone();
    let at = lines
        .iter()
        .position(|l| l == "C: a1 APPEND Entw&APw-rfe (\\Draft) {20+}")
        .expect("the command line traced");
    assert_eq!(lines[at + 1..at + 4], ["C: Subject: x", "C:", "C: body"]);
    assert_eq!(crlf(b"a\nb\r\nc\rd\n"), b"a\r\nb\r\nc\rd\r\n");
}

#[tokio::test]
async fn preauth_needs_no_login() {
    let (addr, task) = fake(vec![
        Send("* PREAUTH [CAPABILITY IMAP4rev1] welcome back\r\n"),
        Expect("a1 NOOP"),
        Send("a1 OK NOOP completed\r\n"),
    ])
    .await;
    let mut c = ImapClient::connect(&addr, T, None).await.expect("connect");
    let ok = c.login("bob", "x").await.expect("login");
    assert_eq!(ok.status, Status::PreAuth);
    // No LOGIN went out: the next command the server sees is the NOOP.
    c.noop().await.expect("noop");
    task.await.expect("join").expect("script");
}
