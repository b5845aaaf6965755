//! APPEND with MULTIAPPEND (RFC 3502) against a real server: Python's imaplib sends three
//! messages in one command and gets every UID in `[APPENDUID]`; a MULTIAPPEND whose third
//! message breaks the size limit or the quota stores none of them; hostile shapes (a trailing
//! message without its literal, more messages than allowed, a huge literal) get clear answers.

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
    // CATENATE is parsed but not advertised: a clear BAD, nothing stored.
    let (t, _) = c.with_literal("a7", "APPEND INBOX CATENATE (TEXT ", m.as_bytes(), ")");
    assert!(t.starts_with("a7 BAD CATENATE is not supported"), "{t}");
    assert_eq!(count(&mut c, "INBOX"), 0);
    // A huge literal is refused when announced, before any of it is read.
    c.c.send("a6 APPEND INBOX {99999999999}");
    let t = c.line().expect("answer");
    assert!(t.starts_with("a6 NO [TOOBIG]"), "{t}");
    c.ok("NOOP");
}
