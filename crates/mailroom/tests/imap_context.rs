//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4) against a real server over raw IMAP lines:
//! `RETURN (UPDATE)` sends ADDTO when an SMTP delivery matches and REMOVEFROM when another
//! session expunges or changes flags; SORT's updates carry positions; CANCELUPDATE ends them;
//! hostile inputs (unknown tag, UPDATE with SAVE, a reused tag, too many contexts); two
//! accounts never see each other's updates.

mod support;

use std::time::Duration;

use support::imap::{msg, start, Imap};
use support::{TestServer, ALICE, BOB};

/// A server where alice's INBOX holds messages with the given subjects (UIDs 1..).
fn with(subjects: &[&str]) -> TestServer {
    let s = start();
    let mut c = Imap::login(s.imap(), ALICE);
    for subj in subjects {
        let m = msg(BOB.0, ALICE.0, subj, "hello");
        let a = c.append("INBOX", m.as_bytes());
        assert!(a.starts_with("OK"), "{a}");
    }
    s
}

/// The tag of a tagged reply line.
fn tag_of(tagged: &str) -> String {
    tagged.split(' ').next().unwrap_or_default().to_string()
}

/// The ESEARCH lines for `tag`.
fn updates<'a>(lines: &'a [String], tag: &str) -> Vec<&'a str> {
    let marker = format!("* ESEARCH (TAG \"{tag}\")");
    lines
        .iter()
        .filter(|l| l.starts_with(&marker))
        .map(String::as_str)
        .collect()
}

#[test]
fn capabilities_are_advertised() {
    let s = start();
    let mut c = Imap::login(s.imap(), ALICE);
    let u = c.ok("CAPABILITY");
    assert!(
        u.iter()
            .any(|l| l.contains(" CONTEXT=SEARCH") && l.contains(" CONTEXT=SORT")),
        "{u:?}"
    );
}

#[test]
fn search_updates_follow_flags_deliveries_and_expunges() {
    let s = with(&["a1", "a2", "a3", "a4"]);
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("SELECT INBOX");
    let (t, u) = c.cmd("UID SEARCH RETURN (UPDATE ALL) FLAGGED");
    assert!(t.contains(" OK "), "{t}");
    let tag = tag_of(&t);
    // UPDATE with ALL and nothing matching: the correlator and UID only.
    assert_eq!(
        updates(&u, &tag),
        [format!("* ESEARCH (TAG \"{tag}\") UID")]
    );

    // This session's STORE: ADDTO.
    let u = c.ok("STORE 2,3 +FLAGS (\\Flagged)");
    assert_eq!(
        updates(&u, &tag),
        [format!("* ESEARCH (TAG \"{tag}\") UID ADDTO (0 2:3)")],
        "{u:?}"
    );
    // Another session's flag change: REMOVEFROM, seen at the next command.
    let mut other = Imap::login(s.imap(), ALICE);
    other.ok("SELECT INBOX");
    other.ok("STORE 2 -FLAGS (\\Flagged)");
    let u = c.ok("NOOP");
    assert_eq!(
        updates(&u, &tag),
        [format!("* ESEARCH (TAG \"{tag}\") UID REMOVEFROM (0 2)")],
        "{u:?}"
    );
    // An SMTP delivery that matches a second context (by subject): ADDTO after EXISTS.
    let (t2, _) = c.cmd("SEARCH RETURN (UPDATE) SUBJECT invoice");
    let tag2 = tag_of(&t2);
    s.deliver(
        "x@far.test",
        &[ALICE.0],
        "Subject: your invoice\r\n\r\nhi\r\n",
    );
    let mut u = Vec::new();
    for _ in 0..50 {
        u = c.ok("NOOP");
        if u.iter().any(|l| l.ends_with(" EXISTS")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let exists = u.iter().position(|l| l == "* 5 EXISTS");
    let add = u
        .iter()
        .position(|l| *l == format!("* ESEARCH (TAG \"{tag2}\") ADDTO (0 5)"));
    assert!(exists.is_some() && add > exists, "{u:?}");
    assert!(updates(&u, &tag).is_empty(), "{u:?}");
    // Another session's expunge of message 3 (flagged): REMOVEFROM before the EXPUNGE, with
    // the number the client still holds.
    other.ok("STORE 3 +FLAGS.SILENT (\\Deleted)");
    other.ok("EXPUNGE");
    let u = c.ok("NOOP");
    let rm = u
        .iter()
        .position(|l| *l == format!("* ESEARCH (TAG \"{tag}\") UID REMOVEFROM (0 3)"));
    let ex = u.iter().position(|l| l == "* 3 EXPUNGE");
    assert!(rm.is_some() && ex.is_some() && rm < ex, "{u:?}");
    // The delivered message, now number 4, leaves the subject context on its expunge.
    c.ok("STORE 4 +FLAGS.SILENT (\\Deleted)");
    let u = c.ok("EXPUNGE");
    assert_eq!(
        updates(&u, &tag2),
        [format!("* ESEARCH (TAG \"{tag2}\") REMOVEFROM (0 4)")],
        "{u:?}"
    );
    // CANCELUPDATE: no more updates for that tag.
    c.ok(&format!("CANCELUPDATE \"{tag}\""));
    let u = c.ok("STORE 1 +FLAGS (\\Flagged)");
    assert!(updates(&u, &tag).is_empty(), "{u:?}");
    // A new SELECT ends the others.
    c.ok("SELECT INBOX");
    let (t, _) = c.cmd(&format!("CANCELUPDATE \"{tag2}\""));
    assert!(t.contains(" NO "), "{t}");
}

#[test]
fn sort_updates_carry_positions() {
    // Sizes grow with the subject's length: SIZE order is the subject order below.
    let s = with(&["x", "xxxxx", "xxx"]);
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("SELECT INBOX");
    let (t, u) = c.cmd("UID SORT RETURN (UPDATE ALL) (SIZE) UTF-8 UNSEEN");
    let tag = tag_of(&t);
    assert_eq!(
        updates(&u, &tag),
        [format!("* ESEARCH (TAG \"{tag}\") UID ALL 1,3,2")],
        "{u:?}"
    );
    // UID 3 (the middle one by size) stops matching: REMOVEFROM at position 2.
    let u = c.ok("UID STORE 3 +FLAGS (\\Seen)");
    assert_eq!(
        updates(&u, &tag),
        [format!("* ESEARCH (TAG \"{tag}\") UID REMOVEFROM (2 3)")],
        "{u:?}"
    );
    // A new, largest message arrives: ADDTO at the end (position 3).
    let m = msg(BOB.0, ALICE.0, "xxxxxxxxxxxxxxxx", "hello");
    let mut other = Imap::login(s.imap(), ALICE);
    assert!(other.append("INBOX", m.as_bytes()).starts_with("OK"));
    let u = c.ok("NOOP");
    assert_eq!(
        updates(&u, &tag),
        [format!("* ESEARCH (TAG \"{tag}\") UID ADDTO (3 4)")],
        "{u:?}"
    );
    // UID 3 matches again: back at position 2.
    let u = c.ok("UID STORE 3 -FLAGS (\\Seen)");
    assert_eq!(
        updates(&u, &tag),
        [format!("* ESEARCH (TAG \"{tag}\") UID ADDTO (2 3)")],
        "{u:?}"
    );
    // Expunging the two smallest: one run at position 1.
    c.ok("UID STORE 1,3 +FLAGS.SILENT (\\Deleted)");
    let u = c.ok("EXPUNGE");
    assert_eq!(
        updates(&u, &tag),
        [format!("* ESEARCH (TAG \"{tag}\") UID REMOVEFROM (1 1,3)")],
        "{u:?}"
    );
}

#[test]
fn hostile_inputs() {
    let s = with(&["a"]);
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("SELECT INBOX");
    // UPDATE with SAVE: BAD, and it says why.
    let (t, _) = c.cmd("SEARCH RETURN (UPDATE SAVE) ALL");
    assert!(t.contains(" BAD ") && t.contains("SAVE"), "{t}");
    // CANCELUPDATE of a tag that names nothing: NO.
    let (t, _) = c.cmd("CANCELUPDATE \"nope\"");
    assert!(t.contains(" NO ") && t.contains("nope"), "{t}");
    // CANCELUPDATE without a tag, UPDATE twice: BAD.
    let (t, _) = c.cmd("CANCELUPDATE");
    assert!(t.contains(" BAD "), "{t}");
    let (t, _) = c.cmd("SEARCH RETURN (UPDATE UPDATE) ALL");
    assert!(t.contains(" BAD "), "{t}");
    // A reused tag: BAD.
    c.c.send("dup SEARCH RETURN (UPDATE) ALL");
    let (t, _) = c.until_tag("dup");
    assert!(t.contains(" OK "), "{t}");
    c.c.send("dup SEARCH RETURN (UPDATE) ALL");
    let (t, _) = c.until_tag("dup");
    assert!(t.contains(" BAD ") && t.contains("tag"), "{t}");
    // Too many contexts: the 11th is answered once, with NOUPDATE.
    for _ in 0..9 {
        c.ok("SEARCH RETURN (UPDATE) ALL");
    }
    let (t, u) = c.cmd("SEARCH RETURN (UPDATE COUNT) ALL");
    assert!(t.contains(" OK "), "{t}");
    let tag = tag_of(&t);
    assert!(
        u.iter()
            .any(|l| l.starts_with(&format!("* NO [NOUPDATE \"{tag}\"]"))),
        "{u:?}"
    );
    assert!(u.iter().any(|l| l.ends_with("COUNT 1")), "{u:?}");
    // Before SELECT: BAD.
    let mut d = Imap::login(s.imap(), ALICE);
    let (t, _) = d.cmd("CANCELUPDATE \"x\"");
    assert!(t.contains(" BAD "), "{t}");
}

#[test]
fn two_accounts_never_see_each_others_updates() {
    let s = with(&["a"]);
    let mut alice = Imap::login(s.imap(), ALICE);
    let mut bob = Imap::login(s.imap(), BOB);
    alice.ok("SELECT INBOX");
    bob.ok("SELECT INBOX");
    let (ta, _) = alice.cmd("SEARCH RETURN (UPDATE) ALL");
    let (tb, _) = bob.cmd("SEARCH RETURN (UPDATE) ALL");
    // Both tags are `t2`: each session has its own contexts.
    assert_eq!(tag_of(&ta), tag_of(&tb));
    // A session's own APPEND: the update comes with its answer.
    let m = msg(ALICE.0, BOB.0, "for bob", "hi");
    let (t, u) = alice.with_literal("ap", "APPEND INBOX ", m.as_bytes(), "");
    assert!(t.contains(" OK "), "{t}");
    assert_eq!(
        updates(&u, &tag_of(&ta)),
        [format!("* ESEARCH (TAG \"{}\") ADDTO (0 2)", tag_of(&ta))],
        "{u:?}"
    );
    let u = bob.ok("NOOP");
    assert!(u.iter().all(|l| !l.contains("ESEARCH")), "{u:?}");
    // Another session of bob's appends: bob's context hears of it at the next command.
    let m = msg(ALICE.0, BOB.0, "to bob", "hi");
    let mut bob2 = Imap::login(s.imap(), BOB);
    assert!(bob2.append("INBOX", m.as_bytes()).starts_with("OK"));
    let u = bob.ok("NOOP");
    assert_eq!(
        updates(&u, &tag_of(&tb)),
        [format!("* ESEARCH (TAG \"{}\") ADDTO (0 1)", tag_of(&tb))],
        "{u:?}"
    );
    let u = alice.ok("NOOP");
    assert!(u.iter().all(|l| !l.contains("ESEARCH")), "{u:?}");
}
