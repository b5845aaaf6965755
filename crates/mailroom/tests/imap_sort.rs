//! IMAP SORT and THREAD (RFC 5256), ESORT (RFC 5267) and SORT=DISPLAY (RFC 5957) against a
//! real server: Python's imaplib `sort()`, `thread()` and `uid()` on a small mailbox, ESORT
//! and the refusals over a raw client, and a mailbox of a few hundred messages that sorts the
//! same after a restart, its sort fields read back from the store.

mod support;

use support::imap::{start, Imap};
use support::{ALICE, BOB};

/// One message of the small mailbox: (From, Subject, Date, Message-ID, extra header lines).
const SMALL: &[(&str, &str, &str, &str, &str)] = &[
    // Expunged before the tests, so that sequence numbers and UIDs differ by one.
    ("<junk@example.test>", "junk", "01 Jan 2020", "junk", ""),
    // 1
    (
        "\"Zed Carol\" <carol@example.test>",
        "Lunch",
        "03 Jan 2024",
        "a",
        "",
    ),
    // 2
    (
        "Alice <alice@example.test>",
        "Re: Lunch",
        "04 Jan 2024",
        "b",
        "In-Reply-To: <a@example.test>\r\n",
    ),
    // 3
    ("Bob <bob@example.test>", "Budget", "01 Jan 2024", "c", ""),
    // 4
    (
        "Dave <dave@example.test>",
        "Re: Re: lunch",
        "05 Jan 2024",
        "d",
        "References: <a@example.test> <b@example.test>\r\n",
    ),
    // 5
    ("Eve <eve@example.test>", "Agenda", "02 Jan 2024", "e", ""),
];

fn small_mailbox() -> support::TestServer {
    let s = start();
    for (from, subject, date, id, extra) in SMALL {
        let m = format!(
            "From: {from}\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Mon, {date} 10:00:00 +0000\r\nMessage-ID: <{id}@example.test>\r\n{extra}\r\nbody of {subject}\r\n",
            to = ALICE.0
        );
        s.deliver(BOB.0, &[ALICE.0], &m);
    }
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    c.ok("EXPUNGE");
    c.ok("LOGOUT");
    s
}

#[test]
fn imaplib_sort_and_thread() {
    let s = small_mailbox();
    s.python(
        r#"
import os, imaplib
M = imaplib.IMAP4(os.environ["HOST"], int(os.environ["IMAP_PORT"]))
assert M.login("alice@example.test", "secret")[0] == "OK"
caps = M.capabilities
for c in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT"):
    assert c in caps, (c, caps)
typ, data = M.select("INBOX")
assert typ == "OK" and data == [b"5"], data

def sort(criteria, *search, uid=False):
    if uid:
        typ, data = M.uid("SORT", criteria, "UTF-8", *search)
    else:
        typ, data = M.sort(criteria, "UTF-8", *search)
    assert typ == "OK", (criteria, search, typ, data)
    return [int(n) for n in (data[0] or b"").split()]

# RFC 5256 §3: each key breaks the ties of the one before, then the sequence number.
assert sort("(DATE)", "ALL") == [3, 5, 1, 2, 4]
assert sort("(REVERSE DATE)", "ALL") == [4, 2, 1, 5, 3]
assert sort("(ARRIVAL)", "ALL") == [1, 2, 3, 4, 5]
assert sort("(SUBJECT)", "ALL") == [5, 3, 1, 2, 4]
assert sort("(SUBJECT REVERSE DATE)", "ALL") == [5, 3, 4, 2, 1]
# FROM sorts by the local part, DISPLAYFROM by the display name (RFC 5957).
assert sort("(FROM)", "ALL") == [2, 3, 1, 4, 5]
assert sort("(DISPLAYFROM)", "ALL") == [2, 3, 4, 5, 1]
# The search key selects what is sorted.
assert sort("(REVERSE DATE)", "SUBJECT", "lunch") == [4, 2, 1]
# REVERSE ARRIVAL: later INTERNALDATE first; within one second the sequence number decides,
# ascending also under REVERSE (RFC 5256 §3). The deliveries may straddle a second.
import time
typ, d = M.fetch("1,2,4", "(INTERNALDATE)")
when = {int(x.split()[0]): time.mktime(imaplib.Internaldate2tuple(x)) for x in d}
want = sorted([1, 2, 4], key=lambda n: (-when[n], n))
assert sort("(REVERSE ARRIVAL)", "SUBJECT", "lunch") == want, (want, when)
assert sort("(DATE)", "FROM", "nobody") == []
# UID SORT answers UIDs (one more than the sequence numbers here).
assert sort("(DATE)", "ALL", uid=True) == [4, 6, 2, 3, 5]

typ, data = M.thread("REFERENCES", "UTF-8", "ALL")
assert typ == "OK" and data == [b"(3)(5)(1 2 4)"], data
typ, data = M.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
assert typ == "OK" and data == [b"(3)(5)(1 (2)(4))"], data
typ, data = M.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
assert typ == "OK" and data == [b"(4)(6)(2 3 5)"], data
typ, data = M.thread("REFERENCES", "US-ASCII", "SUBJECT", "agenda")
assert typ == "OK" and data == [b"(5)"], data

# A charset the server does not know: NO [BADCHARSET].
typ, data = M.sort("(DATE)", "KOI8-R", "ALL")
assert typ == "NO" and b"[BADCHARSET (UTF-8 US-ASCII)]" in data[0], (typ, data)
M.logout()
print("ok")
"#,
    );
}

#[test]
fn esort_and_refusals() {
    let s = small_mailbox();
    let mut c = Imap::login(s.imap(), ALICE);
    // SORT belongs to the selected state.
    let (t, _) = c.cmd("SORT (DATE) UTF-8 ALL");
    assert!(
        t.contains(" BAD ") && t.contains("SELECT or EXAMINE"),
        "{t}"
    );
    c.ok("EXAMINE INBOX");
    // RFC 5267 §3: ESORT answers ESEARCH, MIN and MAX in sort order, ALL keeps the order.
    let (t, u) = c.cmd("SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL");
    assert!(t.contains(" OK SORT completed"), "{t}");
    assert!(
        u.iter().any(|l| l.ends_with(") MIN 3 MAX 4 COUNT 5")),
        "{u:?}"
    );
    let (_, u) = c.cmd("UID SORT RETURN (ALL) (REVERSE DATE) UTF-8 ALL");
    assert!(
        u.iter().any(|l| l.ends_with(") UID ALL 5,3,2,6,4")),
        "{u:?}"
    );
    // CONTEXT=SORT's PARTIAL: a window of the sorted result.
    let (_, u) = c.cmd("SORT RETURN (PARTIAL 2:3) (DATE) UTF-8 ALL");
    assert!(u.iter().any(|l| l.ends_with(" PARTIAL (2:3 5,1)")), "{u:?}");
    let (_, u) = c.cmd("SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT nothing");
    assert!(u.iter().any(|l| l.ends_with(" COUNT 0")), "{u:?}");
    // SEARCHRES (RFC 5267 §3, RFC 5182): SAVE alone answers with no ESEARCH and keeps the
    // whole result; with MIN only the first in sort order.
    let (t, u) = c.cmd("SORT RETURN (SAVE) (DATE) UTF-8 ALL");
    assert!(t.contains(" OK ") && u.is_empty(), "{t} {u:?}");
    let (_, u) = c.cmd("SEARCH RETURN (COUNT) $");
    assert!(u.iter().any(|l| l.ends_with(" COUNT 5")), "{u:?}");
    // MIN in REVERSE DATE order is DATE's MAX, 4.
    let (_, u) = c.cmd("SORT RETURN (MIN SAVE) (REVERSE DATE) UTF-8 ALL");
    assert!(u.iter().any(|l| l.ends_with(" MIN 4")), "{u:?}");
    let (_, u) = c.cmd("SEARCH RETURN (ALL) $");
    assert!(u.iter().any(|l| l.ends_with(" ALL 4")), "{u:?}");
    // Grammar errors say what to send.
    let (t, _) = c.cmd("SORT (DATE) ALL");
    assert!(t.contains(" BAD "), "{t}");
    let (t, _) = c.cmd("SORT (SENDER) UTF-8 ALL");
    assert!(t.contains(" BAD ") && t.contains("DISPLAYFROM"), "{t}");
    let (t, _) = c.cmd("THREAD REFS UTF-8 ALL");
    assert!(
        t.contains(" BAD ") && t.contains("REFERENCES or ORDEREDSUBJECT"),
        "{t}"
    );
    let (t, _) = c.cmd("SORT (DATE) ISO-8859-9 ALL");
    assert!(t.contains(" NO [BADCHARSET (UTF-8 US-ASCII)]"), "{t}");
    c.ok("LOGOUT");
}

/// `message_search`'s format of the SORT fields (the server's `imap::sort::SORT_FORMAT`).
const SORT_FORMAT: u32 = 2;

/// The SORT rows the store holds for alice's INBOX (the server may be running).
fn stored_sort_rows(s: &support::TestServer) -> Vec<(u32, Vec<u8>)> {
    use mailroom_store::MailStore;
    let store = mailroom_store::sqlite::SqliteStore::open(&s.data_dir()).expect("open store");
    let acct = store.find_account(ALICE.0).expect("find").expect("alice");
    let inbox = store
        .mailbox(acct.id, "INBOX")
        .expect("mailbox")
        .expect("inbox");
    let rows = store.search_data(inbox.id, SORT_FORMAT).expect("rows");
    store.shutdown();
    rows
}

fn sorted(c: &mut Imap, command: &str) -> Vec<u32> {
    let (t, u) = c.cmd(command);
    assert!(t.contains(" OK "), "{command}: {t}");
    let line = u
        .iter()
        .find(|l| l.starts_with("* SORT"))
        .unwrap_or_else(|| panic!("{command}: no SORT in {u:?}"));
    line["* SORT".len()..]
        .split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect()
}

#[test]
fn a_large_mailbox_sorts_the_same_after_a_restart() {
    const N: usize = 300;
    let mut s = start();
    s.store_directly(
        ALICE.0,
        (0..N).map(|i| {
            // Subjects, senders and dates in three different orders.
            let subject = (i * 7) % N;
            let from = (i * 11) % N;
            let day = 1 + (i * 13) % 28;
            format!(
                "From: <u{from:03}@example.test>\r\nSubject: Re: note {subject:03}\r\nDate: Mon, {day} Feb 2024 10:{m:02}:00 +0000\r\nMessage-ID: <m{i}@example.test>\r\n\r\nbody {i}\r\n",
                m = i % 60
            )
            .into_bytes()
        }),
    );
    let commands = [
        "SORT (SUBJECT) UTF-8 ALL",
        "SORT (FROM REVERSE DATE) UTF-8 ALL",
        "UID SORT (DATE SUBJECT) UTF-8 ALL",
    ];
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("EXAMINE INBOX");
    let before: Vec<Vec<u32>> = commands.iter().map(|cmd| sorted(&mut c, cmd)).collect();
    assert_eq!(before[0].len(), N);
    let mut by_subject = before[0].clone();
    by_subject.sort_unstable();
    assert_eq!(by_subject, (1..=N as u32).collect::<Vec<_>>());
    c.ok("LOGOUT");
    // The first SORT parsed every header and kept the fields in the store.
    assert_eq!(stored_sort_rows(&s).len(), N);

    s.restart();
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("EXAMINE INBOX");
    let after: Vec<Vec<u32>> = commands.iter().map(|cmd| sorted(&mut c, cmd)).collect();
    assert_eq!(before, after);
    c.ok("LOGOUT");

    // The fields do come from the store: a planted row for message 100 (subject "AAA"
    // instead of its own) moves it to the front after the next restart, and only it.
    s.kill9();
    {
        use mailroom_store::MailStore;
        let rows = stored_sort_rows(&s);
        let (uid, data) = rows
            .iter()
            .find(|(u, _)| *u == 100)
            .expect("row of uid 100");
        let store = mailroom_store::sqlite::SqliteStore::open(&s.data_dir()).expect("store");
        let acct = store.find_account(ALICE.0).expect("find").expect("alice");
        let inbox = store.mailbox(acct.id, "INBOX").expect("mb").expect("inbox");
        let mut f = mailroom_proto::imap::sort::SortFields::from_bytes(data).expect("a row");
        f.subject = "AAA".into();
        store
            .put_search_data(inbox.id, SORT_FORMAT, vec![(*uid, f.to_bytes())])
            .expect("plant");
        store.shutdown();
    }
    s.restart();
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("EXAMINE INBOX");
    let planted = sorted(&mut c, commands[0]);
    let mut want = vec![100];
    want.extend(before[0].iter().filter(|&&n| n != 100));
    assert_eq!(planted, want);
    c.ok("LOGOUT");
}

/// RFC 5051 (i;unicode-casemap), which RFC 5256 names for SORT: case does not matter, and an
/// accented letter sorts with its base letter, not after Z; RFC 2047 subjects are decoded
/// first.
#[test]
fn subjects_sort_under_unicode_casemap() {
    let s = start();
    // Delivered in an order that is not the sorted one.
    for subject in [
        "zebra",
        "=?utf-8?q?=C3=A9clair?=",
        "Fig",
        "Eagle",
        "=?utf-8?q?=C3=89t=C3=A9?=",
        "apple",
    ] {
        let m = format!("From: <bob@example.test>\r\nSubject: {subject}\r\n\r\nx\r\n");
        s.deliver(BOB.0, &[ALICE.0], &m);
    }
    let mut c = Imap::login(s.imap(), ALICE);
    c.ok("SELECT INBOX");
    let lines = c.ok("SORT (SUBJECT) UTF-8 ALL");
    // apple, Eagle, éclair, Été, Fig, zebra: Eagle (E A...) before éclair (E, a combining
    // mark, C...) before Été (E, mark, T...).
    assert!(lines.iter().any(|l| l == "* SORT 6 4 2 5 3 1"), "{lines:?}");
    let lines = c.ok("SORT (REVERSE SUBJECT) UTF-8 ALL");
    assert!(lines.iter().any(|l| l == "* SORT 1 3 5 2 4 6"), "{lines:?}");
}
