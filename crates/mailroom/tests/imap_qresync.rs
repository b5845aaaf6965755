//! QRESYNC (RFC 7162 §3.2) against a real server: a client that reopens a mailbox with
//! what it last knew is told exactly what vanished and what changed, also after a restart;
//! a mailbox deleted and made again is a full resync; pruned tombstones make VANISHED cover
//! the whole range; expunges are VANISHED in sync and during IDLE; hostile parameters get BAD.

mod support;

use support::imap::{msg, start, Imap};
use support::{ALICE, BOB};

/// The number in `* OK [NAME n]` among SELECT's responses.
fn code_number(untagged: &[String], name: &str) -> u64 {
    let key = format!("[{name} ");
    untagged
        .iter()
        .find_map(|l| {
            let rest = &l[l.find(&key)? + key.len()..];
            rest[..rest.find(']')?].parse().ok()
        })
        .unwrap_or_else(|| panic!("no {name} in {untagged:?}"))
}

fn fetches(untagged: &[String]) -> Vec<&String> {
    untagged.iter().filter(|l| l.contains(" FETCH ")).collect()
}

fn vanished(untagged: &[String]) -> Vec<&String> {
    untagged
        .iter()
        .filter(|l| l.starts_with("* VANISHED"))
        .collect()
}

fn qresync_session(addr: std::net::SocketAddr) -> Imap {
    let mut i = Imap::login(addr, ALICE);
    assert_eq!(i.ok("ENABLE QRESYNC"), vec!["* ENABLED QRESYNC"]);
    i
}

#[test]
fn resync_after_expunge_and_flags_elsewhere_and_after_restart() {
    let mut s = start();
    for n in 1..=5 {
        s.deliver(
            BOB.0,
            &[ALICE.0],
            &msg(BOB.0, ALICE.0, &format!("m{n}"), "x"),
        );
    }
    let mut a = qresync_session(s.addr("imap"));
    let u = a.ok("SELECT INBOX");
    let uv = code_number(&u, "UIDVALIDITY");
    let ms = code_number(&u, "HIGHESTMODSEQ");
    a.ok("LOGOUT");

    // Another session (QRESYNC too) flags 2 and expunges 4: its own expunge is VANISHED.
    let mut b = qresync_session(s.addr("imap"));
    b.ok("SELECT INBOX");
    b.ok("STORE 2 +FLAGS.SILENT (\\Flagged)");
    b.ok("STORE 4 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(b.ok("EXPUNGE"), vec!["* VANISHED 4"]);
    let after = code_number(&b.ok("SELECT INBOX"), "HIGHESTMODSEQ");
    assert!(after > ms, "the expunge must raise HIGHESTMODSEQ");
    b.ok("LOGOUT");

    let check = |i: &mut Imap| {
        let u = i.ok(&format!("SELECT INBOX (QRESYNC ({uv} {ms}))"));
        assert_eq!(vanished(&u), vec!["* VANISHED (EARLIER) 4"], "{u:?}");
        let f = fetches(&u);
        assert_eq!(f.len(), 1, "only the changed message: {u:?}");
        assert!(
            f[0].starts_with("* 2 FETCH (FLAGS (\\Flagged) UID 2 MODSEQ ("),
            "{u:?}"
        );
        // VANISHED comes before the FETCH, both after the SELECT responses.
        let pos = |p: &str| u.iter().position(|l| l.starts_with(p));
        assert!(pos("* VANISHED") < pos("* 2 FETCH"));
        assert!(pos("* OK [HIGHESTMODSEQ") < pos("* VANISHED"));
        // Known UIDs limit the answer: 4 is not among 1:3, 2 is.
        let u = i.ok(&format!("EXAMINE INBOX (QRESYNC ({uv} {ms} 1:3))"));
        assert!(vanished(&u).is_empty(), "{u:?}");
        assert_eq!(fetches(&u).len(), 1, "{u:?}");
        // Up to date: nothing at all.
        let u = i.ok(&format!("EXAMINE INBOX (QRESYNC ({uv} {after}))"));
        assert!(vanished(&u).is_empty() && fetches(&u).is_empty(), "{u:?}");
        // UID FETCH ... (CHANGEDSINCE n VANISHED).
        let u = i.ok(&format!(
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {ms} VANISHED)"
        ));
        assert_eq!(vanished(&u), vec!["* VANISHED (EARLIER) 4"], "{u:?}");
        assert_eq!(fetches(&u).len(), 1, "{u:?}");
        let u = i.ok(&format!("UID FETCH 5 (FLAGS) (CHANGEDSINCE {ms} VANISHED)"));
        assert!(u.is_empty(), "{u:?}");
    };
    let mut a = qresync_session(s.addr("imap"));
    check(&mut a);
    a.ok("LOGOUT");
    s.restart();
    let mut a = qresync_session(s.addr("imap"));
    check(&mut a);
}

#[test]
fn recreated_mailbox_is_a_full_resync() {
    let s = start();
    let mut a = qresync_session(s.addr("imap"));
    a.ok("CREATE Work");
    a.append("Work", msg(BOB.0, ALICE.0, "one", "x").as_bytes());
    a.append("Work", msg(BOB.0, ALICE.0, "two", "x").as_bytes());
    let u = a.ok("SELECT Work");
    let (uv, ms) = (
        code_number(&u, "UIDVALIDITY"),
        code_number(&u, "HIGHESTMODSEQ"),
    );
    a.ok("UNSELECT");
    a.ok("DELETE Work");
    a.ok("CREATE Work");
    a.append("Work", msg(BOB.0, ALICE.0, "three", "x").as_bytes());
    let u = a.ok(&format!("SELECT Work (QRESYNC ({uv} {ms}))"));
    assert_ne!(code_number(&u, "UIDVALIDITY"), uv);
    assert!(
        vanished(&u).is_empty() && fetches(&u).is_empty(),
        "a UIDVALIDITY the client did not know: nothing stale, it resyncs in full: {u:?}"
    );
    assert!(u.contains(&"* 1 EXISTS".to_string()), "{u:?}");
}

#[test]
fn pruned_tombstones_make_vanished_cover_the_range() {
    use mailroom_store::MailStore;
    let mut s = start();
    for n in 1..=5 {
        s.deliver(
            BOB.0,
            &[ALICE.0],
            &msg(BOB.0, ALICE.0, &format!("m{n}"), "x"),
        );
    }
    let mut a = qresync_session(s.addr("imap"));
    a.ok("SELECT INBOX");
    a.ok("UID STORE 4 +FLAGS.SILENT (\\Deleted)");
    a.ok("EXPUNGE");
    let u = a.ok("SELECT INBOX");
    let (uv, ms) = (
        code_number(&u, "UIDVALIDITY"),
        code_number(&u, "HIGHESTMODSEQ"),
    );
    a.ok("LOGOUT");
    assert!(s.terminate());
    {
        // Expunge 5 with a store that keeps no tombstones: the floor passes `ms`.
        let store = mailroom_store::sqlite::SqliteStore::open(&s.data_dir()).expect("open store");
        store.set_tombstones_kept(0);
        let acct = store.find_account(ALICE.0).expect("find").expect("alice");
        let inbox = store
            .mailbox(acct.id, "INBOX")
            .expect("read")
            .expect("inbox");
        assert_eq!(store.expunge(inbox.id, &[5]).expect("expunge"), vec![5]);
        store.shutdown();
    }
    s.restart();
    let mut a = qresync_session(s.addr("imap"));
    let u = a.ok(&format!("SELECT INBOX (QRESYNC ({uv} {ms}))"));
    // Exactly it would be 5; with the tombstones gone every absent UID below UIDNEXT is named.
    assert_eq!(vanished(&u), vec!["* VANISHED (EARLIER) 4:5"], "{u:?}");
    assert!(fetches(&u).is_empty(), "{u:?}");
}

#[test]
fn vanished_during_idle_and_without_qresync_plain_expunge() {
    let s = start();
    for n in 1..=3 {
        s.deliver(
            BOB.0,
            &[ALICE.0],
            &msg(BOB.0, ALICE.0, &format!("m{n}"), "x"),
        );
    }
    let mut a = qresync_session(s.addr("imap"));
    a.ok("SELECT INBOX");
    let mut plain = Imap::login(s.addr("imap"), ALICE);
    plain.ok("SELECT INBOX");
    a.c.send("i1 IDLE");
    assert!(a.line().unwrap_or_default().starts_with("+ "));
    let mut b = Imap::login(s.addr("imap"), ALICE);
    b.ok("SELECT INBOX");
    b.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(
        b.ok("EXPUNGE"),
        vec!["* 2 EXPUNGE"],
        "B did not enable QRESYNC"
    );
    assert_eq!(a.line().as_deref(), Some("* VANISHED 2"));
    a.c.send("DONE");
    let (t, _) = a.until_tag("i1");
    assert!(t.contains(" OK "), "{t}");
    assert_eq!(plain.ok("NOOP"), vec!["* 2 EXPUNGE"]);
}

#[test]
fn hostile_qresync_parameters() {
    let s = start();
    s.deliver(BOB.0, &[ALICE.0], &msg(BOB.0, ALICE.0, "m", "x"));
    let mut i = Imap::login(s.addr("imap"), ALICE);
    let (t, _) = i.cmd("SELECT INBOX (QRESYNC (1 1))");
    assert!(t.contains(" BAD ") && t.contains("ENABLE QRESYNC"), "{t}");
    i.ok("ENABLE QRESYNC");
    for bad in [
        "SELECT INBOX (QRESYNC (0 5))",
        "SELECT INBOX (QRESYNC (1 0))",
        "SELECT INBOX (QRESYNC (1 5 1:10 (1:3 1,2)))",
        "SELECT INBOX (QRESYNC (1))",
        "SELECT INBOX (QRESYNC)",
    ] {
        let (t, _) = i.cmd(bad);
        assert!(t.contains(" BAD "), "{bad}: {t}");
    }
    i.ok("SELECT INBOX");
    for (bad, hint) in [
        ("FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "UID FETCH"),
        ("UID FETCH 1 (FLAGS) (VANISHED)", "CHANGEDSINCE"),
    ] {
        let (t, _) = i.cmd(bad);
        assert!(t.contains(" BAD ") && t.contains(hint), "{bad}: {t}");
    }
    let mut plain = Imap::login(s.addr("imap"), ALICE);
    plain.ok("SELECT INBOX");
    let (t, _) = plain.cmd("UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)");
    assert!(t.contains(" BAD ") && t.contains("ENABLE QRESYNC"), "{t}");
}
