//! Storage quotas: SMTP refuses a full mailbox's recipient with `452 4.2.2` (and only that
//! recipient), IMAP answers GETQUOTAROOT / GETQUOTA (RFC 9208) and refuses APPEND and COPY
//! with `NO [OVERQUOTA]`, deleting makes room again, the CLI sets and shows quotas, and mail
//! to the postmaster and the server's own bounces get through to a full mailbox.

mod support;

use support::cli::{stderr, stdout};
use support::imap::{msg, Imap};
use support::{smtp, Client, TestServer, ALICE, BOB, CAROL};

const QUOTA_4K: &str = "[limits]\naccount_quota = \"4K\"\n";

/// A message of about `size` octets (before the server adds its trace headers).
fn sized(subject: &str, size: usize) -> String {
    let head = format!("From: <x@far.test>\r\nSubject: {subject}\r\n\r\n");
    let mut body = String::new();
    while head.len() + body.len() + 72 <= size {
        body.push_str(&"q".repeat(70));
        body.push_str("\r\n");
    }
    format!("{head}{body}")
}

/// Opens an SMTP transaction from `from`, optionally declaring SIZE=.
fn transaction(s: &TestServer, from: &str, size: Option<u64>) -> Client {
    let mut c = smtp::hello(s.smtp(), "test.example");
    let param = size.map(|n| format!(" SIZE={n}")).unwrap_or_default();
    c.cmd(&format!("MAIL FROM:<{from}>{param}"), 250);
    c
}

/// Octets an account's INBOX holds, read from the store.
fn inbox_octets(s: &TestServer, address: &str) -> u64 {
    s.inbox(address).iter().map(|m| m.len() as u64).sum()
}

fn quota_line(used: u64, limit_kib: u64) -> String {
    format!("* QUOTA \"\" (STORAGE {} {limit_kib})", used.div_ceil(1024))
}

#[test]
fn full_mailbox_over_smtp_imap_and_the_cli() {
    let s = support::imap::start_with(QUOTA_4K);

    // Fill bob: accepted while under the limit (the size is not known at RCPT), then refused.
    let mut accepted = 0;
    loop {
        assert!(accepted < 10, "bob never filled up");
        let mut c = transaction(&s, "x@far.test", None);
        c.send(&format!("RCPT TO:<{}>", BOB.0));
        let r = c.reply();
        if r.code == 452 {
            assert!(
                r.text()
                    .starts_with("4.2.2 <bob@example.test>: mailbox full; "),
                "{r:?}"
            );
            assert!(r.text().contains("try again later"), "{r:?}");
            break;
        }
        assert_eq!(r.code, 250, "{r:?}");
        c.cmd("DATA", 354);
        c.send_raw(support::wire_body(&sized(&format!("fill {accepted}"), 1500)).as_bytes());
        c.cmd(".", 250);
        accepted += 1;
    }
    // 0, ~1.7K and ~3.4K used at the three RCPTs: under 4 KiB each time.
    assert_eq!(accepted, 3);
    let used = inbox_octets(&s, BOB.0);
    assert!(used >= 4096, "{used}");

    // One transaction, two recipients: bob is refused, alice gets the message.
    let mut c = transaction(&s, "x@far.test", None);
    c.send(&format!("RCPT TO:<{}>", BOB.0));
    let r = c.reply();
    assert_eq!(r.code, 452, "{r:?}");
    assert!(r.text().starts_with("4.2.2 "), "{r:?}");
    c.cmd(&format!("RCPT TO:<{}>", ALICE.0), 250);
    c.cmd("DATA", 354);
    c.send_raw(support::wire_body(&sized("for alice only", 500)).as_bytes());
    c.cmd(".", 250);
    c.cmd("QUIT", 221);
    let alice = s.inbox(ALICE.0);
    assert_eq!(alice.len(), 1);
    assert!(String::from_utf8_lossy(&alice[0]).contains("Subject: for alice only"));
    assert_eq!(s.inbox(BOB.0).len(), 3, "nothing reached bob");

    // SIZE= larger than what is left refuses the RCPT; a smaller one is fine.
    s.deliver("x@far.test", &[CAROL.0], &sized("carol 1", 1000));
    let carol_used = inbox_octets(&s, CAROL.0);
    let room = 4096 - carol_used;
    let mut c = transaction(&s, "x@far.test", Some(room + 1));
    c.send(&format!("RCPT TO:<{}>", CAROL.0));
    let r = c.reply();
    assert_eq!(r.code, 452, "{r:?}");
    assert!(
        r.text().starts_with(&format!(
            "4.2.2 <carol@example.test>: mailbox full: a message of {} octets does not fit",
            room + 1
        )),
        "{r:?}"
    );
    c.cmd(&format!("RCPT TO:<{}>", ALICE.0), 250);
    c.cmd("RSET", 250);
    c.cmd(&format!("MAIL FROM:<x@far.test> SIZE={room}"), 250);
    c.cmd(&format!("RCPT TO:<{}>", CAROL.0), 250);
    c.cmd("QUIT", 221);

    // IMAP: the capability, the quota root and its usage.
    let mut i = Imap::login(s.addr("imap"), BOB);
    let caps = i.ok("CAPABILITY");
    assert!(
        caps[0].contains(" QUOTA QUOTA=RES-STORAGE"),
        "QUOTA advertised: {caps:?}"
    );
    let u = i.ok("GETQUOTAROOT INBOX");
    assert_eq!(
        u,
        vec!["* QUOTAROOT INBOX \"\"".to_string(), quota_line(used, 4)]
    );
    let u = i.ok("getquotaroot inbox");
    assert_eq!(u[0], "* QUOTAROOT INBOX \"\"", "the stored name: {u:?}");
    assert_eq!(i.ok("GETQUOTA \"\""), vec![quota_line(used, 4)]);
    let (t, _) = i.cmd("GETQUOTA user.bob");
    assert!(
        t.contains(" NO [NONEXISTENT] there is no quota root \"user.bob\""),
        "{t}"
    );
    let (t, _) = i.cmd("GETQUOTAROOT Nope");
    assert!(t.contains(" NO [NONEXISTENT] "), "{t}");
    let (t, _) = i.cmd("SETQUOTA \"\" (STORAGE 100000)");
    assert!(t.contains(" NO [NOPERM] "), "{t}");
    assert!(t.contains("mailroom user quota"), "{t}");

    // APPEND and COPY are refused; MOVE is not (it frees nothing and takes nothing).
    let small = msg(BOB.0, BOB.0, "draft", "tiny");
    let (t, _) = i.cmd(&format!("APPEND Drafts {{{}+}}\r\n{small}", small.len()));
    assert!(t.contains(" NO [OVERQUOTA] your mailbox is full: "), "{t}");
    assert!(t.contains("of your 4 KiB quota is used"), "{t}");
    assert!(t.contains("delete messages and EXPUNGE them"), "{t}");
    // A synchronizing literal is refused before the client sends it: no "+ go ahead".
    i.c.send(&format!("q1 APPEND Drafts {{{}}}", small.len()));
    let line = i.line().expect("reply to APPEND");
    assert!(line.starts_with("q1 NO [OVERQUOTA] "), "{line}");
    i.ok("NOOP");
    i.ok("SELECT INBOX");
    let (t, _) = i.cmd("COPY 1 Archive");
    assert!(t.contains(" NO [OVERQUOTA] "), "{t}");
    let (t, _) = i.cmd("UID COPY 1:* Archive");
    assert!(t.contains(" NO [OVERQUOTA] "), "{t}");
    assert_eq!(
        i.ok("STATUS Archive (MESSAGES)"),
        vec!["* STATUS \"Archive\" (MESSAGES 0)"]
    );
    i.ok("MOVE 1 Trash");
    assert_eq!(
        i.ok("GETQUOTA \"\""),
        vec![quota_line(used, 4)],
        "a move changes nothing"
    );

    // Deleting and expunging makes room: mail is accepted again.
    i.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)");
    i.ok("EXPUNGE");
    i.ok("SELECT Trash");
    i.ok("STORE 1:* +FLAGS.SILENT (\\Deleted)");
    i.ok("EXPUNGE");
    assert_eq!(i.ok("GETQUOTA \"\""), vec![quota_line(0, 4)]);
    s.deliver("x@far.test", &[BOB.0], &sized("after cleanup", 800));
    let used = inbox_octets(&s, BOB.0);
    assert_eq!(i.ok("GETQUOTA \"\""), vec![quota_line(used, 4)]);
    let u = i.ok(&format!("APPEND Drafts {{{}+}}\r\n{small}", small.len()));
    assert!(u.is_empty(), "{u:?}");

    // Python's imaplib.
    let out = s.python(
        r#"
import imaplib, os
M = imaplib.IMAP4(os.environ["HOST"], int(os.environ["IMAP_PORT"]))
M.login("bob@example.test", "hunter2")
typ, data = M.getquotaroot("INBOX")
print(typ, data)
typ, data = M.getquota('""')
print(typ, data)
typ, data = M.setquota('""', "(STORAGE 1)")
print(typ, data)
M.logout()
"#,
    );
    let used = used + small.len() as u64;
    let kib = used.div_ceil(1024);
    assert!(
        out.contains(&format!(
            "OK [[b'INBOX \"\"'], [b'\"\" (STORAGE {kib} 4)']]"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("OK [b'\"\" (STORAGE {kib} 4)']")),
        "{out}"
    );
    assert!(out.contains("NO [b'[NOPERM] "), "{out}");

    // The administrator raises bob's quota: the running server uses it at once.
    let out = s.cli(&["user", "quota", BOB.0, "1M"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("bob@example.test: used ") && stdout(&out).contains(" of 1 MiB"),
        "{}",
        stdout(&out)
    );
    assert_eq!(i.ok("GETQUOTA \"\""), vec![quota_line(used, 1024)]);
    let list = stdout(&s.cli(&["user", "list"], ""));
    let lines: Vec<&str> = list.lines().collect();
    let after = |address: &str| -> String {
        let at = lines
            .iter()
            .position(|l| *l == address)
            .unwrap_or_else(|| panic!("{address} in {list}"));
        lines.get(at + 1).unwrap_or(&"").to_string()
    };
    let bob = after(BOB.0);
    assert!(
        bob.starts_with("    used ")
            && bob.contains(" of 1 MiB (0%), quota set with `mailroom user quota`"),
        "{list}"
    );
    let alice = after(ALICE.0);
    assert!(
        alice.contains(" of 4 KiB (") && alice.ends_with("quota from limits.account_quota"),
        "{list}"
    );
    // Back to the default, and mistakes.
    let out = s.cli(&["user", "quota", BOB.0, "none"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(" of 4 KiB"), "{}", stdout(&out));
    assert_eq!(i.ok("GETQUOTA \"\""), vec![quota_line(used, 4)]);
    let out = s.cli(&["user", "quota", BOB.0, "5X"], "");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("\"5X\" is not a size") && stderr(&out).contains("none"),
        "{}",
        stderr(&out)
    );
    let out = s.cli(&["user", "quota", "nobody@example.test", "1M"], "");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no account nobody@example.test"),
        "{}",
        stderr(&out)
    );
    i.ok("LOGOUT");
}

#[test]
fn accounts_without_a_limit_have_no_quota_root() {
    let s = support::imap::start_with(
        "[[accounts]]\naddress = \"dave@example.test\"\npassword = \"davepw\"\nquota = \"1M\"\n",
    );
    s.deliver("x@far.test", &[BOB.0], &sized("one", 600));
    let mut i = Imap::login(s.addr("imap"), BOB);
    assert_eq!(i.ok("GETQUOTAROOT INBOX"), vec!["* QUOTAROOT INBOX"]);
    let (t, _) = i.cmd("GETQUOTA \"\"");
    assert!(
        t.contains(" NO [NONEXISTENT] your account has no storage limit"),
        "{t}"
    );
    // Mailbox names go through the modified UTF-7 conversion both ways.
    i.ok("CREATE Entw&APw-rfe");
    assert_eq!(
        i.ok("GETQUOTAROOT Entw&APw-rfe"),
        vec!["* QUOTAROOT Entw&APw-rfe"]
    );
    i.ok("ENABLE IMAP4rev2");
    // 8-bit names go out as literals, as in LIST.
    assert_eq!(
        i.ok("GETQUOTAROOT \"Entwürfe\""),
        vec!["* QUOTAROOT {9}", "Entwürfe"]
    );
    i.ok("LOGOUT");

    // An account with `quota` in its [[accounts]] entry.
    let mut d = Imap::login(s.addr("imap"), ("dave@example.test", "davepw"));
    // GETQUOTAROOT needs an existing mailbox (dave has no Entwürfe).
    let (t, _) = d.cmd("GETQUOTAROOT Entw&APw-rfe");
    assert!(t.contains(" NO [NONEXISTENT] "), "{t}");
    let u = d.ok("GETQUOTAROOT INBOX");
    assert_eq!(
        u,
        vec![
            "* QUOTAROOT INBOX \"\"".to_string(),
            "* QUOTA \"\" (STORAGE 0 1024)".to_string()
        ]
    );
    // The config's quota wins: the CLI says so and changes nothing.
    let out = s.cli(&["user", "quota", "dave@example.test", "2M"], "");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("[[accounts]]") && stderr(&out).contains("nothing changed"),
        "{}",
        stderr(&out)
    );
    let list = stdout(&s.cli(&["user", "list"], ""));
    assert!(
        list.contains("dave@example.test\n    used 0 octets of 1 MiB (0%), quota from [[accounts]] in the config\n"),
        "{list}"
    );
    assert!(
        list.contains("bob@example.test\n    used ") && list.contains(", no quota\n"),
        "{list}"
    );
}

#[test]
fn postmaster_aliases_and_bounces() {
    // A server whose MX refuses to relay: mail routed there bounces at once (554 5.7.1).
    let refuser = TestServer::start();
    let extra = format!(
        "{QUOTA_4K}[aliases]\n\"postmaster@example.test\" = \"bob@example.test\"\n\"team@example.test\" = [\"alice@example.test\", \"bob@example.test\"]\n\"solo@example.test\" = \"alice@example.test\"\n[routes]\n\"nowhere.test\" = \"{}\"\n",
        refuser.smtp()
    );
    let s = TestServer::start_with(&extra, &[]);
    s.deliver("x@far.test", &[BOB.0], &sized("big", 4200));
    assert!(inbox_octets(&s, BOB.0) >= 4096);

    let mut c = transaction(&s, "x@far.test", None);
    c.send(&format!("RCPT TO:<{}>", BOB.0));
    assert_eq!(c.reply().code, 452);
    // An alias with a full member is refused as a whole, without naming the member.
    c.send("RCPT TO:<team@example.test>");
    let r = c.reply();
    assert_eq!(r.code, 452, "{r:?}");
    assert!(
        r.text()
            .starts_with("4.2.2 <team@example.test>: mailbox full;"),
        "{r:?}"
    );
    assert!(!r.text().contains("bob"), "{r:?}");
    c.cmd("RCPT TO:<solo@example.test>", 250);
    // Mail to the postmaster gets through, even to a full mailbox (RFC 5321 §4.5.1).
    c.cmd("RCPT TO:<Postmaster>", 250);
    c.cmd("RCPT TO:<postmaster@example.test>", 250);
    c.cmd("DATA", 354);
    c.send_raw(support::wire_body("Subject: your server\r\n\r\nhello\r\n").as_bytes());
    c.cmd(".", 250);
    c.cmd("QUIT", 221);
    let bob = s.inbox(BOB.0);
    assert_eq!(bob.len(), 2, "the postmaster copy (once: one account)");
    assert!(String::from_utf8_lossy(&bob[1]).contains("Subject: your server"));

    // Bob, full, sends mail that bounces: the bounce reaches him all the same.
    support::submit(
        s.submission(),
        BOB,
        &["someone@nowhere.test"],
        "Subject: into the void\r\n\r\nhello\r\n",
    );
    s.wait_for(20, "the bounce in bob's full INBOX", || {
        s.inbox(BOB.0).iter().any(|m| {
            let t = String::from_utf8_lossy(m);
            t.contains("Undelivered Mail Returned to Sender") && t.contains("into the void")
        })
    });
    // Still full for everybody else; refusals for a full mailbox are not the client's
    // mistake and do not use up limits.max_errors (20).
    let mut c = transaction(&s, "x@far.test", None);
    for _ in 0..25 {
        c.send(&format!("RCPT TO:<{}>", BOB.0));
        assert_eq!(c.reply().code, 452);
    }
    c.cmd("RCPT TO:<solo@example.test>", 250);
    c.cmd("QUIT", 221);
}
