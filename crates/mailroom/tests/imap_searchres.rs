//! SEARCHRES (RFC 5182) against a real server over raw IMAP lines: `SEARCH RETURN (SAVE)` and
//! `$` in FETCH, STORE, MOVE, SEARCH and UID EXPUNGE; the saved result after another
//! session's expunge, after a failed SEARCH and after a new SELECT; one session's result
//! never seen by another's.

mod support;

use support::imap::{msg, start, Imap};
use support::{TestServer, ALICE, BOB};

/// A server where alice's INBOX holds five messages, subjects `m1`..`m5`, UIDs 1..=5.
fn five() -> TestServer {
    let s = start();
    let mut c = Imap::login(s.imap(), ALICE);
    for i in 1..=5 {
        let m = msg(BOB.0, ALICE.0, &format!("m{i}"), "hello");
        let a = c.append("INBOX", m.as_bytes());
        assert!(a.starts_with("OK"), "{a}");
    }
    s
}

/// The `* n FETCH` lines' sequence numbers.
fn fetched(untagged: &[String]) -> Vec<u32> {
    untagged
        .iter()
        .filter(|l| l.contains(" FETCH "))
        .filter_map(|l| l.split(' ').nth(1)?.parse().ok())
        .collect()
}

#[test]
fn capability_is_advertised() {
    let s = start();
    let mut c = Imap::login(s.imap(), ALICE);
    let u = c.ok("CAPABILITY");
    assert!(u.iter().any(|l| l.contains(" SEARCHRES")), "{u:?}");
}

#[test]
fn save_then_fetch_store_move() {
    let s = five();
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("SELECT INBOX");
    // `$` before any SAVE is the empty set: OK, nothing fetched.
    let u = c.ok("FETCH $ UID");
    assert!(fetched(&u).is_empty(), "{u:?}");
    // SAVE alone: no ESEARCH response (RFC 5182 §2.4).
    let u = c.ok("SEARCH RETURN (SAVE) OR SUBJECT m2 SUBJECT m4");
    assert!(u.iter().all(|l| !l.contains("ESEARCH")), "{u:?}");
    let u = c.ok("FETCH $ (UID)");
    assert_eq!(fetched(&u), [2, 4], "{u:?}");
    let u = c.ok("UID FETCH $ (FLAGS)");
    assert_eq!(fetched(&u), [2, 4], "{u:?}");
    // STORE $ changes just those.
    c.ok("STORE $ +FLAGS.SILENT (\\Flagged)");
    let u = c.ok("SEARCH FLAGGED");
    assert!(u.contains(&"* SEARCH 2 4".to_string()), "{u:?}");
    // `$` in a SEARCH, as a sequence set and as a UID set.
    let u = c.ok("UID SEARCH UID $");
    assert!(u.contains(&"* SEARCH 2 4".to_string()), "{u:?}");
    let u = c.ok("SEARCH NOT $");
    assert!(u.contains(&"* SEARCH 1 3 5".to_string()), "{u:?}");
    // SAVE with other options answers them and saves; with MIN alone only the lowest.
    let u = c.ok("SEARCH RETURN (MIN SAVE) FLAGGED");
    assert!(u.iter().any(|l| l.ends_with(" MIN 2")), "{u:?}");
    let u = c.ok("SEARCH $");
    assert!(u.contains(&"* SEARCH 2".to_string()), "{u:?}");
    // MOVE $: message 2 leaves; the saved result follows the expunge and is empty.
    // Archive is one of the mailboxes every account starts with.
    let u = c.ok("MOVE $ Archive");
    assert!(u.iter().any(|l| l == "* 2 EXPUNGE"), "{u:?}");
    let u = c.ok("FETCH $ UID");
    assert!(fetched(&u).is_empty(), "{u:?}");
    let u = c.ok("STATUS Archive (MESSAGES)");
    assert!(u.iter().any(|l| l.ends_with("(MESSAGES 1)")), "{u:?}");
    // A new SELECT starts from an empty saved result.
    c.ok("SEARCH RETURN (SAVE) ALL");
    c.ok("SELECT INBOX");
    let u = c.ok("FETCH $ UID");
    assert!(fetched(&u).is_empty(), "{u:?}");
}

#[test]
fn saved_result_follows_another_sessions_expunge() {
    let s = five();
    let mut a = Imap::login(s.imap(), ALICE);
    let mut b = Imap::login(s.imap(), ALICE);
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    a.ok("UID SEARCH RETURN (SAVE) UID 2:4");
    b.ok("UID STORE 3 +FLAGS (\\Deleted)");
    b.ok("EXPUNGE");
    // The NOOP reports the expunge; then `$` is what is left of 2:4: UIDs 2 and 4, now at
    // sequence numbers 2 and 3.
    let u = a.ok("NOOP");
    assert!(u.iter().any(|l| l == "* 3 EXPUNGE"), "{u:?}");
    let u = a.ok("FETCH $ (UID)");
    assert_eq!(fetched(&u), [2, 3], "{u:?}");
    assert!(u.iter().any(|l| l.contains("UID 4")), "{u:?}");
    // UID EXPUNGE $ removes only the saved messages that are \Deleted.
    a.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    let u = a.ok("UID EXPUNGE $");
    assert_eq!(
        u.iter().filter(|l| l.ends_with(" EXPUNGE")).count(),
        1,
        "{u:?}"
    );
    let u = a.ok("UID SEARCH $");
    assert!(u.contains(&"* SEARCH 4".to_string()), "{u:?}");
}

#[test]
fn failed_search_empties_the_saved_result() {
    let s = five();
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("SELECT INBOX");
    c.ok("SEARCH RETURN (SAVE) ALL");
    let u = c.ok("SEARCH $");
    assert!(u.contains(&"* SEARCH 1 2 3 4 5".to_string()), "{u:?}");
    // RFC 5182 §2.1: a SEARCH with SAVE that fails (here: an unknown charset) leaves `$` empty.
    let (t, _) = c.cmd("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL");
    assert!(t.contains(" NO [BADCHARSET"), "{t}");
    let u = c.ok("SEARCH $");
    assert!(u.contains(&"* SEARCH".to_string()), "{u:?}");
    // A failed SEARCH without SAVE leaves it alone.
    c.ok("SEARCH RETURN (SAVE) 1:2");
    let (t, _) = c.cmd("SEARCH CHARSET KOI8-R ALL");
    assert!(t.contains(" NO "), "{t}");
    let u = c.ok("SEARCH $");
    assert!(u.contains(&"* SEARCH 1 2".to_string()), "{u:?}");
}

#[test]
fn hostile_dollars() {
    let s = five();
    let mut c = Imap::login(s.imap(), ALICE);
    // `$` needs a selected mailbox like any FETCH.
    let (t, _) = c.cmd("FETCH $ UID");
    assert!(t.contains(" BAD ") && t.contains("SELECT"), "{t}");
    c.ok("SELECT INBOX");
    for bad in [
        "FETCH $,1 UID",
        "FETCH 1:$ UID",
        "FETCH $:2 UID",
        "SEARCH UID $$",
    ] {
        let (t, _) = c.cmd(bad);
        assert!(t.contains(" BAD "), "{bad}: {t}");
    }
    let (t, _) = c.cmd("FETCH $,1 UID");
    assert!(t.contains("saved search result"), "{t}");
}

#[test]
fn accounts_do_not_share_saved_results() {
    let s = five();
    let mut a = Imap::login(s.imap(), ALICE);
    let mut b = Imap::login(s.imap(), BOB);
    let m = msg(ALICE.0, BOB.0, "b1", "hi");
    assert!(b.append("INBOX", m.as_bytes()).starts_with("OK"));
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    a.ok("SEARCH RETURN (SAVE) ALL");
    let u = b.ok("FETCH $ UID");
    assert!(fetched(&u).is_empty(), "{u:?}");
    b.ok("SEARCH RETURN (SAVE) ALL");
    let u = a.ok("FETCH $ UID");
    assert_eq!(fetched(&u), [1, 2, 3, 4, 5], "{u:?}");
    let u = b.ok("FETCH $ UID");
    assert_eq!(fetched(&u), [1], "{u:?}");
}

/// SEARCH's PARTIAL (RFC 5267 §4.4, RFC 9394): a window of the ascending result.
#[test]
fn search_partial_ranges() {
    let s = five();
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("EXAMINE INBOX");
    for (opts, want) in [
        ("PARTIAL 2:3", " PARTIAL (2:3 2:3)"),
        // Reversed bounds are put in order.
        ("PARTIAL 3:2", " PARTIAL (2:3 2:3)"),
        // Beyond the end: what there is, or NIL.
        ("PARTIAL 4:100", " PARTIAL (4:100 4:5)"),
        ("PARTIAL 6:9", " PARTIAL (6:9 NIL)"),
        // From the end.
        ("PARTIAL -1:-2", " PARTIAL (-1:-2 4:5)"),
        ("COUNT PARTIAL 1:1", " COUNT 5 PARTIAL (1:1 1)"),
    ] {
        let u = c.ok(&format!("SEARCH RETURN ({opts}) ALL"));
        assert!(u.iter().any(|l| l.ends_with(want)), "{opts}: {u:?}");
    }
    // Position zero does not exist: BAD, saying what a range looks like.
    let (t, _) = c.cmd("SEARCH RETURN (PARTIAL 0:2) ALL");
    assert!(t.contains(" BAD ") && t.contains("1:100"), "{t}");
}
