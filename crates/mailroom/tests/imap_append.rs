//! APPEND with MULTIAPPEND (RFC 3502) against a real server: Python's imaplib sends three
//! messages in one command and gets every UID in `[APPENDUID]`; a MULTIAPPEND whose third
//! message breaks the size limit or the quota stores none of them; hostile shapes (a trailing
//! message without its literal, more messages than allowed, a huge literal) get clear answers.
//! CATENATE (RFC 4469): TEXT parts and URLs of the same account's messages joined; a URL that
//! names nothing (another account's mailbox included) is `NO [BADURL]`, too much `[TOOBIG]`.

mod support;

use support::imap::{msg, start, start_with, Imap};
use support::{ALICE, BOB};

/// `head`, then each message as a non-synchronizing literal separated by `sep`, as one write.
fn multiappend(c: &mut Imap, tag: &str, head: &str, messages: &[&[u8]]) -> (String, Vec<String>) {
    let mut b = format!("{tag} {head}").into_bytes();
    for m in messages {
        b.extend_from_slice(format!(" {{{}+}}\r\n", m.len()).as_bytes());
        b.extend_from_slice(m);
    }
    b.extend_from_slice(b"\r\n");
    c.c.send_raw(&b);
    c.until_tag(tag)
}

fn count(c: &mut Imap, mailbox: &str) -> u32 {
    let u = c.ok(&format!("STATUS {mailbox} (MESSAGES)"));
    let line = u.iter().find(|l| l.contains("MESSAGES")).expect("STATUS");
    line.rsplit("MESSAGES ")
        .next()
        .and_then(|t| t.trim_end_matches(')').parse().ok())
        .expect("a count")
}

#[test]
fn imaplib_multiappend_three_messages() {
    let s = start();
    s.python(
        r#"
import os, imaplib, re
M = imaplib.IMAP4(os.environ["HOST"], int(os.environ["IMAP_PORT"]))
assert "MULTIAPPEND" in M.capabilities, M.capabilities
assert M.login("alice@example.test", "secret")[0] == "OK"
msgs = [b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i) for i in (1, 2, 3)]
# RFC 3502: APPEND mailbox (flags) literal (flags) "date" literal literal
args = "INBOX (\\Seen) {%d+}\r\n%s (\\Flagged) \"01-Feb-2024 10:00:00 +0000\" {%d+}\r\n%s {%d+}\r\n%s" % (
    len(msgs[0]), msgs[0].decode(), len(msgs[1]), msgs[1].decode(), len(msgs[2]), msgs[2].decode())
typ, data = M._simple_command("APPEND", args)
assert typ == "OK", (typ, data)
code = M.untagged_responses.get("APPENDUID") or M.response("APPENDUID")[1]
text = " ".join(x.decode() if isinstance(x, bytes) else str(x) for x in code if x)
m = re.search(r"(\d+) (\d+):(\d+)", text)
assert m, text
uids = list(range(int(m.group(2)), int(m.group(3)) + 1))
assert len(uids) == 3, uids
M.select("INBOX")
typ, data = M.uid("FETCH", "%d:%d" % (uids[0], uids[-1]), "(FLAGS INTERNALDATE BODY.PEEK[])")
assert typ == "OK", data
parts = [d for d in data if isinstance(d, tuple)]
assert [p[1] for p in parts] == msgs, parts
heads = [p[0].decode() for p in parts]
assert "\\Seen" in heads[0] and "\\Flagged" in heads[1], heads
assert "01-Feb-2024 10:00:00 +0000" in heads[1], heads
print("ok")
"#,
    );
}

#[test]
fn multiappend_is_all_or_nothing_on_size() {
    let s = start_with("[limits]\nmax_message_size = 2000\n");
    let mut c = Imap::login(s.imap(), ALICE);
    let small = msg(BOB.0, ALICE.0, "small", "x");
    let big = msg(BOB.0, ALICE.0, "big", &"y".repeat(3000));
    // The third literal is over the per-message limit: refused when announced.
    let (t, _) = multiappend(
        &mut c,
        "a1",
        "APPEND INBOX",
        &[small.as_bytes(), small.as_bytes(), big.as_bytes()],
    );
    assert!(t.starts_with("a1 NO [TOOBIG]"), "{t}");
    // A non-synchronizing literal over the limit ends the connection (its octets are on
    // their way); nothing of the command was stored.
    let mut c = Imap::login(s.imap(), ALICE);
    assert_eq!(count(&mut c, "INBOX"), 0);
    // Synchronizing: the third literal is refused before it is sent, the session goes on.
    c.c.send(&format!("a2 APPEND INBOX {{{}}}", small.len()));
    assert!(c.line().expect("+").starts_with('+'));
    c.c.send_raw(small.as_bytes());
    c.c.send(&format!(" {{{}}}", small.len()));
    assert!(c.line().expect("+").starts_with('+'));
    c.c.send_raw(small.as_bytes());
    c.c.send(&format!(" {{{}}}", big.len()));
    let t = c.line().expect("answer");
    assert!(t.starts_with("a2 NO [TOOBIG]"), "{t}");
    assert_eq!(count(&mut c, "INBOX"), 0);
    c.ok("NOOP");
}

#[test]
fn multiappend_is_all_or_nothing_on_quota() {
    let s = start_with("[limits]\naccount_quota = \"4K\"\n");
    let mut c = Imap::login(s.imap(), ALICE);
    let m = msg(BOB.0, ALICE.0, "part", &"z".repeat(1500));
    // Two fit (about 3 KiB), the third would not: none is stored.
    let (t, _) = multiappend(
        &mut c,
        "a1",
        "APPEND INBOX",
        &[m.as_bytes(), m.as_bytes(), m.as_bytes()],
    );
    assert!(t.starts_with("a1 NO [OVERQUOTA]"), "{t}");
    assert_eq!(count(&mut c, "INBOX"), 0);
    let (t, _) = multiappend(&mut c, "a2", "APPEND INBOX", &[m.as_bytes(), m.as_bytes()]);
    assert!(t.starts_with("a2 OK [APPENDUID "), "{t}");
    assert_eq!(count(&mut c, "INBOX"), 2);
}

#[test]
fn multiappend_to_a_missing_mailbox_and_bad_shapes() {
    let s = start();
    let mut c = Imap::login(s.imap(), ALICE);
    let m = msg(BOB.0, ALICE.0, "x", "x");
    let (t, _) = multiappend(
        &mut c,
        "a1",
        "APPEND Nowhere",
        &[m.as_bytes(), m.as_bytes()],
    );
    assert!(t.starts_with("a1 NO [TRYCREATE]"), "{t}");
    // A second message that is only flags, no literal.
    let (t, _) = c.with_literal("a2", "APPEND INBOX ", m.as_bytes(), " (\\Seen)");
    assert!(t.starts_with("a2 BAD "), "{t}");
    // A trailing space after the last literal.
    let (t, _) = c.with_literal("a3", "APPEND INBOX ", m.as_bytes(), " ");
    assert!(t.starts_with("a3 BAD "), "{t}");
    // A bad date in the second message names it; nothing is stored.
    let (t, _) = c.with_literal(
        "a4",
        "APPEND INBOX ",
        m.as_bytes(),
        " \"31-Foo-2024 10:00:00 +0000\" {1+}\r\nx",
    );
    assert!(
        t.starts_with("a4 BAD ") && t.contains("message 2 of 2"),
        "{t}"
    );
    assert_eq!(count(&mut c, "INBOX"), 0);
    // More messages than one APPEND may carry (1,001 tiny literals).
    let tiny: Vec<&[u8]> = vec![b"x"; 1001];
    let (t, _) = multiappend(&mut c, "a5", "APPEND INBOX", &tiny);
    assert!(t.starts_with("a5 BAD ") && t.contains("at most"), "{t}");
    assert_eq!(count(&mut c, "INBOX"), 0);
    // A CATENATE of one TEXT part is that message (CATENATE is served now: see below).
    let (t, _) = c.with_literal("a7", "APPEND INBOX CATENATE (TEXT ", m.as_bytes(), ")");
    assert!(t.starts_with("a7 OK [APPENDUID "), "{t}");
    assert_eq!(count(&mut c, "INBOX"), 1);
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    c.ok("CLOSE");
    assert_eq!(count(&mut c, "INBOX"), 0);
    // A huge literal is refused when announced, before any of it is read.
    c.c.send("a6 APPEND INBOX {99999999999}");
    let t = c.line().expect("answer");
    assert!(t.starts_with("a6 NO [TOOBIG]"), "{t}");
    c.ok("NOOP");
}

/// `APPEND mailbox CATENATE (...)` with `parts` written as given (TEXT literals as LITERAL+).
fn catenate(c: &mut Imap, tag: &str, mailbox: &str, parts: &[(&str, &[u8])]) -> String {
    let mut b = format!("{tag} APPEND {mailbox} CATENATE (").into_bytes();
    for (i, (kind, v)) in parts.iter().enumerate() {
        if i > 0 {
            b.push(b' ');
        }
        if *kind == "TEXT" {
            b.extend_from_slice(format!("TEXT {{{}+}}\r\n", v.len()).as_bytes());
            b.extend_from_slice(v);
        } else {
            b.extend_from_slice(b"URL \"");
            b.extend_from_slice(v);
            b.push(b'"');
        }
    }
    b.extend_from_slice(b")\r\n");
    c.c.send_raw(&b);
    c.until_tag(tag).0
}

/// The octets of message `seq` of the selected mailbox (BODY.PEEK[]).
fn body(c: &mut Imap, seq: u32) -> String {
    let tag = format!("b{seq}");
    c.c.send(&format!("{tag} FETCH {seq} BODY.PEEK[]"));
    let first = c.line().expect("FETCH");
    let n: usize = first
        .rsplit('{')
        .next()
        .and_then(|t| t.trim_end_matches('}').parse().ok())
        .unwrap_or_else(|| panic!("{first}"));
    let mut out = String::new();
    while out.len() < n {
        out.push_str(&c.line().expect("literal line"));
        out.push_str("\r\n");
    }
    c.until_tag(&tag);
    out
}

#[test]
fn catenate_joins_text_and_urls_of_the_same_account() {
    let s = start();
    let mut c = Imap::login(s.imap(), ALICE);
    let caps = c.ok("CAPABILITY");
    assert!(caps.iter().any(|l| l.contains(" CATENATE")), "{caps:?}");
    let m = "From: a@example.test\r\nSubject: one\r\n\r\nHello body\r\n";
    assert!(c.append("INBOX", m.as_bytes()).starts_with("OK"));
    let u = c.ok("STATUS INBOX (UIDVALIDITY)");
    let uv: u32 = u[0]
        .rsplit("UIDVALIDITY ")
        .next()
        .and_then(|t| t.trim_end_matches(')').parse().ok())
        .expect("uidvalidity");
    c.ok("CREATE Out");
    // Absolute URLs (with and without UIDVALIDITY) and TEXT parts.
    let hdr = format!("/INBOX;UIDVALIDITY={uv}/;UID=1/;SECTION=HEADER");
    let t = catenate(
        &mut c,
        "c1",
        "Out",
        &[("URL", hdr.as_bytes()), ("TEXT", b"new body\r\n")],
    );
    assert!(t.starts_with("c1 OK [APPENDUID "), "{t}");
    let t = catenate(
        &mut c,
        "c2",
        "Out",
        &[
            ("TEXT", b"Subject: wrapped\r\n\r\n"),
            ("URL", b"/inbox/;uid=1/;section=TEXT/;partial=6.6"),
        ],
    );
    assert!(t.starts_with("c2 OK"), "{t}");
    // Relative to the selected mailbox; a whole message.
    c.ok("SELECT INBOX");
    let t = catenate(&mut c, "c3", "Out", &[("URL", b";UID=1")]);
    assert!(t.starts_with("c3 OK"), "{t}");
    c.ok("SELECT Out");
    assert_eq!(
        body(&mut c, 1),
        "From: a@example.test\r\nSubject: one\r\n\r\nnew body\r\n"
    );
    assert_eq!(body(&mut c, 2), "Subject: wrapped\r\n\r\nbody\r\n");
    assert_eq!(body(&mut c, 3), m);
}

#[test]
fn catenate_bad_urls_and_limits() {
    let s = start_with("[limits]\nmax_message_size = 2000\n");
    let mut bob = Imap::login(s.imap(), BOB);
    assert!(bob
        .append("INBOX", b"Subject: secret\r\n\r\nbob's\r\n")
        .starts_with("OK"));
    bob.ok("CREATE Private");
    let mut c = Imap::login(s.imap(), ALICE);
    let m = msg(BOB.0, ALICE.0, "mine", &"z".repeat(1200));
    assert!(c.append("INBOX", m.as_bytes()).starts_with("OK"));
    let missing = "c NO [BADURL \"";
    // Each of these names nothing of alice's: BADURL, and the same text for all of them (bob's
    // mailbox is indistinguishable from one that does not exist).
    let mut texts = Vec::new();
    for url in [
        "/Private/;UID=1",
        "/Nowhere/;UID=1",
        "/INBOX;UIDVALIDITY=1/;UID=1",
        "/INBOX/;UID=99",
        "/INBOX/;UID=1/;SECTION=4.2",
    ] {
        let t = catenate(&mut c, "c", "INBOX", &[("URL", url.as_bytes())]);
        assert!(t.starts_with(&format!("{missing}{url}\"]")), "{url}: {t}");
        texts.push(t.split("] ").nth(1).unwrap_or_default().to_string());
    }
    assert!(texts.iter().all(|t| *t == texts[0]), "{texts:?}");
    // Forms the server does not take, and a relative URL with nothing selected.
    for url in [
        "imap://bob@example.test/INBOX/;UID=1",
        "/INBOX?ALL",
        ";UID=1",
    ] {
        let t = catenate(&mut c, "c", "INBOX", &[("URL", url.as_bytes())]);
        assert!(t.starts_with(missing), "{url}: {t}");
    }
    // Nothing was stored by any of them.
    assert_eq!(count(&mut c, "INBOX"), 1);
    // A missing destination is TRYCREATE, before any URL is looked at.
    let t = catenate(&mut c, "c", "Gone", &[("URL", b"/Nowhere/;UID=1")]);
    assert!(t.starts_with("c NO [TRYCREATE]"), "{t}");
    // Two copies of a 1200-octet message are over the 2000-octet limit: TOOBIG.
    let t = catenate(
        &mut c,
        "c",
        "INBOX",
        &[("URL", b"/INBOX/;UID=1"), ("URL", b"/INBOX/;UID=1")],
    );
    assert!(t.starts_with("c NO [TOOBIG]"), "{t}");
    assert_eq!(count(&mut c, "INBOX"), 1);
    // With MULTIAPPEND: a bad URL in the second message stores neither.
    let mut b = b"m APPEND INBOX CATENATE (TEXT {9+}\r\nSubject: )".to_vec();
    b.extend_from_slice(b" CATENATE (URL \"/INBOX/;UID=77\")\r\n");
    c.c.send_raw(&b);
    let (t, _) = c.until_tag("m");
    assert!(t.starts_with("m NO [BADURL"), "{t}");
    assert_eq!(count(&mut c, "INBOX"), 1);
    // A URL with `]` in it cannot break the response code.
    let t = catenate(&mut c, "c", "INBOX", &[("URL", b"/IN]BOX/;UID=1")]);
    assert!(t.starts_with("c NO [BADURL \"/IN%5DBOX/;UID=1\"] "), "{t}");
    // Bob's own session still sees only his one message.
    assert_eq!(count(&mut bob, "INBOX"), 1);
}
