//! Raw IMAP transcripts for every error path: the session always goes on unless the RFC
//! says it ends.

mod support;

use support::imap::{msg, start, start_with, Imap};
use support::{ALICE, BOB};

#[test]
fn syntax_errors_are_tagged_bad_and_the_session_goes_on() {
    let s = start();
    let mut i = Imap::connect(s.addr("imap"));
    // Unknown command, with a helpful text.
    assert_eq!(
        i.raw("a1 FROBNICATE"),
        "a1 BAD unknown command FROBNICATE; try CAPABILITY for the list of what this server does"
    );
    // No tag at all.
    assert!(i.raw("").starts_with("* BAD "));
    assert!(i.raw("NOOP").starts_with("* BAD "));
    // Missing and extra arguments.
    assert!(i
        .raw("a2 LOGIN alice")
        .starts_with("a2 BAD missing the password"));
    assert!(i
        .raw("a3 NOOP now")
        .starts_with("a3 BAD unexpected text at the end"));
    // NUL octet.
    i.c.send_raw(b"a4 NOOP\0\r\n");
    assert!(i.line().unwrap().starts_with("a4 BAD NUL octets"));
    // Commands of a later state.
    assert!(i
        .raw("a5 SELECT INBOX")
        .starts_with("a5 BAD SELECT needs you to log in first"));
    // Still alive.
    assert_eq!(i.raw("a7 NOOP"), "a7 OK NOOP completed");

    i.ok(&format!("LOGIN {} {}", ALICE.0, ALICE.1));
    // STARTTLS only before login (RFC 9051 §6.2.1); tls_imap.rs tests it where it is valid.
    assert!(i.raw("a6 STARTTLS").starts_with("a6 BAD "));
    let (t, _) = i.cmd("FETCH 1 FLAGS");
    assert!(t.contains(" BAD FETCH needs a selected mailbox"), "{t}");
    i.ok("SELECT INBOX");
    // `1:*` on an empty mailbox is a BAD (RFC 9051 §6.4.5); a UID range is fine.
    let (t, _) = i.cmd("FETCH 1:* FLAGS");
    assert!(t.contains(" BAD the mailbox is empty"), "{t}");
    let (t, u) = i.cmd("UID FETCH 1:* FLAGS");
    assert!(t.contains(" OK ") && u.is_empty(), "{t} {u:?}");
    let (t, u) = i.cmd("SEARCH ALL");
    assert!(t.contains(" OK ") && u == vec!["* SEARCH"], "{t} {u:?}");
    // Unbalanced parentheses.
    let (t, _) = i.cmd("UID FETCH 1 (FLAGS UID");
    assert!(t.contains(" BAD "), "{t}");
    let (t, _) = i.cmd("UID FETCH 1 FLAGS)");
    assert!(t.contains(" BAD unexpected text"), "{t}");
    let (t, _) = i.cmd("SEARCH (SEEN");
    assert!(t.contains(" BAD "), "{t}");
    // Unknown fetch item, search key, flag.
    let (t, _) = i.cmd("UID FETCH 1 (FLAGS BOGUS)");
    assert!(t.contains(" BAD unknown FETCH data item BOGUS"), "{t}");
    let (t, _) = i.cmd("UID SEARCH BOGUS");
    assert!(t.contains(" BAD unknown search key BOGUS"), "{t}");
    let (t, _) = i.cmd("SEARCH CHARSET KOI8-R ALL");
    assert!(t.contains(" NO [BADCHARSET"), "{t}");
    // Mailbox errors carry response codes.
    let (t, _) = i.cmd("SELECT Nowhere");
    assert!(t.contains(" NO [NONEXISTENT]"), "{t}");
    // A failed SELECT leaves no mailbox selected (RFC 9051 §6.3.2).
    let (t, _) = i.cmd("FETCH 1 FLAGS");
    assert!(t.contains(" BAD FETCH needs a selected mailbox"), "{t}");
    let (t, _) = i.cmd("CREATE INBOX");
    assert!(t.contains(" NO [ALREADYEXISTS]"), "{t}");
    let (t, _) = i.cmd("DELETE Nowhere");
    assert!(t.contains(" NO [NONEXISTENT]"), "{t}");
    let (t, _) = i.cmd("STATUS Nowhere (MESSAGES)");
    assert!(t.contains(" NO [NONEXISTENT]"), "{t}");
    let (t, _) = i.cmd("STATUS INBOX (BOGUS)");
    assert!(t.contains(" BAD unknown STATUS item BOGUS"), "{t}");
    let (t, _) = i.cmd("APPEND Nowhere {3+}\r\nabc");
    assert!(t.contains(" NO [TRYCREATE]"), "{t}");
    let (t, _) = i.cmd("APPEND INBOX \"not a date\" {3+}\r\nabc");
    assert!(t.contains(" BAD "), "{t}");
    let (t, _) = i.cmd("AUTHENTICATE PLAIN");
    assert!(t.contains(" BAD you are already logged in"), "{t}");
    let (t, u) = i.cmd("LOGOUT");
    assert!(t.contains(" OK LOGOUT"), "{t}");
    assert!(u[0].starts_with("* BYE"), "{u:?}");
    assert!(i.c.is_closed());
}

#[test]
fn reversed_ranges_and_out_of_range_numbers() {
    let s = start();
    for n in 1..=3 {
        s.deliver(
            BOB.0,
            &[ALICE.0],
            &msg(BOB.0, ALICE.0, &format!("m{n}"), "x"),
        );
    }
    let mut i = Imap::login(s.addr("imap"), ALICE);
    i.ok("SELECT INBOX");
    // A UID range with reversed bounds is the same range (RFC 9051 §9 seq-range).
    let u = i.ok("UID FETCH 3:2 (UID)");
    assert_eq!(u, vec!["* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"]);
    let u = i.ok("FETCH 3:2 (UID)");
    assert_eq!(u.len(), 2);
    // Non-existent UIDs are ignored; a sequence number past the end is a BAD.
    let u = i.ok("UID FETCH 7:9 (UID)");
    assert!(u.is_empty());
    let u = i.ok("UID FETCH 7:* (UID)");
    assert_eq!(
        u,
        vec!["* 3 FETCH (UID 3)"],
        "n:* includes the last message"
    );
    let (t, _) = i.cmd("FETCH 4 (UID)");
    assert!(
        t.contains(" BAD message sequence numbers go from 1 to 3"),
        "{t}"
    );
    let (t, _) = i.cmd("FETCH 0 (UID)");
    assert!(t.contains(" BAD "), "{t}");
    let (t, _) = i.cmd("STORE 1 +FLAGS (\\Bogus)");
    assert!(t.contains(" BAD "), "{t}");
    let (t, _) = i.cmd("COPY 1 Nowhere");
    assert!(t.contains(" NO [TRYCREATE]"), "{t}");
    i.ok("EXAMINE INBOX");
    let (t, _) = i.cmd("STORE 1 +FLAGS (\\Seen)");
    assert!(t.contains(" NO [READ-ONLY]"), "{t}");
    let (t, _) = i.cmd("EXPUNGE");
    assert!(t.contains(" NO [READ-ONLY]"), "{t}");
    // FETCH BODY[] in a read-only mailbox does not set \Seen.
    i.ok("FETCH 1 BODY[]");
    let u = i.ok("FETCH 1 FLAGS");
    assert_eq!(u, vec!["* 1 FETCH (FLAGS ())"]);
}

#[test]
fn literals_limits_and_long_lines() {
    let s = start_with("[limits]\nmax_message_size = 2000\n");
    let mut i = Imap::connect(s.addr("imap"));
    // A synchronizing literal: "+" before the octets are sent.
    i.c.send("a1 LOGIN {18}");
    assert!(i.line().unwrap().starts_with("+ "));
    i.c.send_raw(b"alice@example.test {6}\r\n");
    assert!(i.line().unwrap().starts_with("+ "));
    i.c.send("secret");
    let (t, _) = i.until_tag("a1");
    assert!(t.starts_with("a1 OK "), "{t}");
    // A huge declared literal is refused before it is read, and the session goes on.
    i.c.send("a2 APPEND INBOX {99999999999}");
    assert_eq!(
        i.line().unwrap(),
        "a2 NO [TOOBIG] a literal of 99999999999 octets is over the limit of 2000 octets for a message"
    );
    i.c.send("a3 LOGIN {70000}");
    assert!(i.line().unwrap().starts_with("a3 NO [TOOBIG]"));
    assert_eq!(i.raw("a4 NOOP"), "a4 OK NOOP completed");
    // A non-synchronizing literal within the limit: no "+".
    let (t, _) = i.cmd("APPEND INBOX (\\Seen) {12+}\r\nSubject: x\r\n");
    assert!(t.contains(" OK [APPENDUID "), "{t}");
    // An over-long line is answered with an untagged BAD; the next command works.
    let long = format!("a5 NOOP {}", "x".repeat(70 * 1024));
    i.c.send(&long);
    assert!(i.line().unwrap().starts_with("* BAD command line too long"));
    assert_eq!(i.raw("a6 NOOP"), "a6 OK NOOP completed");
    // A non-synchronizing literal that is too large ends the session (RFC 7888 §4).
    i.c.send("a7 APPEND INBOX {5000+}");
    assert!(i.line().unwrap().starts_with("a7 NO [TOOBIG]"));
    assert!(i.line().unwrap().starts_with("* BYE"));
    assert!(i.c.is_closed());
}

#[test]
fn wrong_passwords_then_bye() {
    let s = start_with("[limits]\nmax_auth_failures = 2\nauth_failure_delay = \"10ms\"\n");
    let mut i = Imap::connect(s.addr("imap"));
    assert_eq!(
        i.raw("a1 LOGIN alice@example.test wrong"),
        "a1 NO [AUTHENTICATIONFAILED] wrong user name or password; check both and try again"
    );
    // AUTHENTICATE PLAIN with a continuation; "*" cancels.
    assert_eq!(i.raw("a2 AUTHENTICATE PLAIN"), "+ ");
    assert_eq!(i.raw("*"), "a2 BAD AUTHENTICATE cancelled");
    assert_eq!(i.raw("a3 AUTHENTICATE PLAIN"), "+ ");
    assert!(i.raw("!!notbase64").starts_with("a3 BAD "));
    assert!(i
        .raw("a4 AUTHENTICATE CRAM-MD5")
        .starts_with("a4 NO [CANNOT]"));
    assert!(i
        .raw(&format!(
            "a5 AUTHENTICATE PLAIN {}",
            support::b64("\0alice@example.test\0nope")
        ))
        .starts_with("a5 NO [AUTHENTICATIONFAILED]"));
    assert!(i
        .line()
        .unwrap()
        .starts_with("* BYE too many failed logins"));
    assert!(i.c.is_closed());
    // AUTHENTICATE LOGIN works, short names too.
    let mut i = Imap::connect(s.addr("imap"));
    assert_eq!(i.raw("b1 AUTHENTICATE LOGIN"), "+ VXNlcm5hbWU6");
    assert_eq!(i.raw(&support::b64("alice")), "+ UGFzc3dvcmQ6");
    assert!(i
        .raw(&support::b64("secret"))
        .starts_with("b1 OK [CAPABILITY "));
    assert!(!s.log_text().contains("nope"));
}

/// What a person typing at telnet gets wrong first, answered with what to type.
#[test]
fn telnet_mistakes_get_a_hint() {
    let s = start();
    let mut i = Imap::connect(s.addr("imap"));
    // A forgotten tag, as typed at telnet: untagged, saying what to type instead.
    assert_eq!(
        i.raw("LOGIN alice@example.test secret"),
        "* BAD every command starts with a tag of your choosing, then the command: type \"a1 LOGIN ...\" (your line with \"a1 \" in front)"
    );
    assert!(i.raw("a8 FETCH 1").starts_with(
        "a8 BAD missing the data items: say what to fetch, e.g. FETCH 1 (FLAGS BODY[])"
    ));
    assert!(i
        .raw("a9 SEARCH SUBJECT Grüße")
        .contains("text beyond ASCII must be a quoted string"));
    assert_eq!(i.raw("a10 NOOP"), "a10 OK NOOP completed");
}
