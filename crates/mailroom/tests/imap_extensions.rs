//! Extensions: ENABLE IMAP4rev2 (RFC 9051 behaviour), ESEARCH, LIST-EXTENDED / LIST-STATUS /
//! SPECIAL-USE, UIDPLUS, ID, NAMESPACE, UNSELECT, BINARY.

mod support;

use support::imap::{msg, start, Imap};
use support::{ALICE, BOB};

#[test]
fn enable_imap4rev2_changes_select_and_search() {
    let s = start();
    s.deliver(BOB.0, &[ALICE.0], &msg(BOB.0, ALICE.0, "one", "x"));
    s.deliver(BOB.0, &[ALICE.0], &msg(BOB.0, ALICE.0, "two", "y"));
    let mut i = Imap::login(s.addr("imap"), ALICE);
    // rev1: RECENT and SEARCH.
    let u = i.ok("SELECT INBOX");
    assert!(u.contains(&"* 2 RECENT".to_string()), "{u:?}");
    assert!(u.contains(&"* 2 EXISTS".to_string()), "{u:?}");
    assert!(
        u.contains(&"* OK [UNSEEN 1] first unseen message".to_string()),
        "{u:?}"
    );
    assert_eq!(i.ok("SEARCH ALL"), vec!["* SEARCH 1 2"]);
    // ESEARCH on request.
    let (t, u) = i.cmd("UID SEARCH RETURN (MIN MAX COUNT) ALL");
    assert!(t.contains(" OK "), "{t}");
    let tag = t.split(' ').next().unwrap_or("");
    assert_eq!(
        u,
        vec![format!("* ESEARCH (TAG \"{tag}\") UID MIN 1 MAX 2 COUNT 2")]
    );

    let u = i.ok("ENABLE IMAP4rev2");
    assert_eq!(u, vec!["* ENABLED IMAP4rev2"]);
    let u = i.ok("SELECT INBOX");
    assert!(u[0] == "* OK [CLOSED] previous mailbox closed", "{u:?}");
    assert!(!u.iter().any(|l| l.contains("RECENT")), "{u:?}");
    assert!(
        u.contains(&"* LIST () \"/\" \"INBOX\"".to_string()),
        "{u:?}"
    );
    let (t, u) = i.cmd("SEARCH SUBJECT two");
    let tag = t.split(' ').next().unwrap_or("");
    assert_eq!(u, vec![format!("* ESEARCH (TAG \"{tag}\") ALL 2")]);
    let (_, u) = i.cmd("SEARCH SUBJECT nothing");
    assert_eq!(
        u.len(),
        1,
        "ESEARCH without ALL when nothing matched: {u:?}"
    );
    assert!(!u[0].contains("ALL"));
    // ENABLE twice reports nothing new.
    assert_eq!(i.ok("ENABLE IMAP4rev2 XYZZY"), vec!["* ENABLED"]);
    i.ok("UNSELECT");
    let (t, _) = i.cmd("FETCH 1 FLAGS");
    assert!(t.contains(" BAD "), "UNSELECT left the selected state: {t}");
}

#[test]
fn list_extended_status_and_special_use() {
    let s = start();
    s.deliver(BOB.0, &[ALICE.0], &msg(BOB.0, ALICE.0, "one", "x"));
    let mut i = Imap::login(s.addr("imap"), ALICE);
    i.ok("CREATE Projects/2024");
    i.ok("UNSUBSCRIBE Junk");
    let u = i.ok("LIST (SPECIAL-USE) \"\" \"*\"");
    assert_eq!(u.len(), 5, "{u:?}");
    assert!(
        u.contains(&"* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"".to_string()),
        "{u:?}"
    );
    let u = i.ok("LIST (SUBSCRIBED) \"\" \"*\"");
    assert!(!u.iter().any(|l| l.contains("\"Junk\"")), "{u:?}");
    assert!(u.iter().all(|l| l.contains("\\Subscribed")), "{u:?}");
    let u = i.ok("LIST \"\" (INBOX Projects) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))");
    assert_eq!(
        u,
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* STATUS \"INBOX\" (MESSAGES 1 UNSEEN 1)",
            "* LIST (\\HasChildren) \"/\" \"Projects\"",
            "* STATUS \"Projects\" (MESSAGES 0 UNSEEN 0)",
        ]
    );
    let u = i.ok("LIST \"\" \"\"");
    assert_eq!(u, vec!["* LIST (\\Noselect) \"/\" \"\""]);
    let u = i.ok("LIST \"Projects/\" \"%\"");
    assert_eq!(u, vec!["* LIST (\\HasNoChildren) \"/\" \"Projects/2024\""]);
    let u = i.ok("LIST \"\" \"inbox\"");
    assert_eq!(u, vec!["* LIST (\\HasNoChildren) \"/\" \"INBOX\""]);
    let u = i.ok("NAMESPACE");
    assert_eq!(u, vec!["* NAMESPACE ((\"\" \"/\")) NIL NIL"]);
    let u = i.ok("ID NIL");
    assert!(u[0].starts_with("* ID (\"name\" \"mailroom\""), "{u:?}");
    // RENAME INBOX moves the messages and leaves INBOX empty.
    i.ok("RENAME INBOX Old");
    let (_, u) = i.cmd("STATUS INBOX (MESSAGES)");
    assert_eq!(u, vec!["* STATUS \"INBOX\" (MESSAGES 0)"]);
    let (_, u) = i.cmd("STATUS Old (MESSAGES)");
    assert_eq!(u, vec!["* STATUS \"Old\" (MESSAGES 1)"]);
}

#[test]
fn uidplus_and_uid_expunge() {
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
    let (t, _) = i.cmd("UID COPY 1:3 Archive");
    let uv = t
        .split("[COPYUID ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_default()
        .to_string();
    assert!(t.contains(&format!("[COPYUID {uv} 1:3 1:3]")), "{t}");
    i.ok("STORE 1:3 +FLAGS.SILENT (\\Deleted)");
    // UID EXPUNGE removes only the given UIDs (RFC 4315 §2.1).
    let u = i.ok("UID EXPUNGE 2");
    assert_eq!(u, vec!["* 2 EXPUNGE"]);
    let u = i.ok("UID SEARCH DELETED");
    assert_eq!(u, vec!["* SEARCH 1 3"]);
    // CLOSE expunges the rest silently.
    let u = i.ok("CLOSE");
    assert!(u.is_empty(), "{u:?}");
    let (_, u) = i.cmd("STATUS INBOX (MESSAGES UIDNEXT)");
    assert_eq!(u, vec!["* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 4)"]);
    // UIDs are never reused.
    let (t, _) = i.cmd("APPEND INBOX {8+}\r\nSubj: x");
    assert!(t.contains(" 4] APPEND completed"), "{t}");
}

/// CONDSTORE (RFC 7162): HIGHESTMODSEQ, FETCH MODSEQ / CHANGEDSINCE, STORE UNCHANGEDSINCE
/// with MODIFIED, SEARCH MODSEQ, MODSEQ in unsolicited FETCH.
#[test]
fn condstore() {
    let s = start();
    for n in 1..=2 {
        s.deliver(
            BOB.0,
            &[ALICE.0],
            &msg(BOB.0, ALICE.0, &format!("m{n}"), "x"),
        );
    }
    let mut a = Imap::login(s.addr("imap"), ALICE);
    let mut b = Imap::login(s.addr("imap"), ALICE);
    let u = a.ok("SELECT INBOX (CONDSTORE)");
    let hms: u64 = u
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.parse().ok())
        .expect("HIGHESTMODSEQ in SELECT");
    let u = a.ok("FETCH 1:* (UID MODSEQ)");
    assert_eq!(u.len(), 2, "{u:?}");
    assert!(u[1].ends_with(&format!("MODSEQ ({hms}))")), "{u:?}");
    // Nothing changed since hms.
    assert!(a
        .ok(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})"))
        .is_empty());
    let u = a.ok("STORE 1 +FLAGS (\\Seen)");
    let m1: u64 = u[0]
        .split("MODSEQ (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .expect("MODSEQ in STORE response");
    assert!(m1 > hms);
    let u = a.ok(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})"));
    assert_eq!(
        u,
        vec![format!(
            "* 1 FETCH (UID 1 FLAGS (\\Recent \\Seen) MODSEQ ({m1}))"
        )]
    );
    // UNCHANGEDSINCE: message 1 changed after hms, message 2 did not.
    let (t, u) = a.cmd(&format!(
        "UID STORE 1:2 (UNCHANGEDSINCE {hms}) +FLAGS.SILENT (\\Flagged)"
    ));
    assert!(t.contains(" OK [MODIFIED 1] "), "{t}");
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].starts_with("* 2 FETCH (UID 2 MODSEQ ("), "{u:?}");
    let u = a.ok(&format!("SEARCH MODSEQ {}", hms + 1));
    assert!(u[0].starts_with("* SEARCH 1 2 (MODSEQ "), "{u:?}");
    // Another session's flag change arrives with MODSEQ.
    b.ok("SELECT INBOX");
    b.ok("STORE 2 -FLAGS.SILENT (\\Flagged)");
    let u = a.ok("NOOP");
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(
        // \Recent: A was the first session told of message 2 (RFC 3501 §2.3.2).
        u[0].starts_with("* 2 FETCH (FLAGS (\\Recent) UID 2 MODSEQ ("),
        "{u:?}"
    );
    let (_, u) = b.cmd("STATUS INBOX (HIGHESTMODSEQ)");
    // STATUS HIGHESTMODSEQ enables CONDSTORE, which in a selected mailbox is announced first
    // (RFC 7162 §3.1).
    assert!(u[0].starts_with("* OK [HIGHESTMODSEQ "), "{u:?}");
    assert!(
        u[1].starts_with("* STATUS \"INBOX\" (HIGHESTMODSEQ "),
        "{u:?}"
    );
}

/// RFC 7162 §3.1: the first CONDSTORE-enabling command in a selected mailbox gets `OK
/// [HIGHESTMODSEQ]`; ESEARCH with a MODSEQ key reports the highest mod-sequence of what it
/// returns (MIN/MAX alone: of those messages; else of every match), as imaptest checks.
#[test]
fn condstore_enabled_by_fetch_and_esearch_modseq() {
    let s = start();
    for i in 0..4 {
        s.deliver(
            "x@far.test",
            &[ALICE.0],
            &format!("Subject: m{i}\n\nbody\n"),
        );
    }
    let mut a = Imap::login(s.addr("imap"), ALICE);
    a.ok("SELECT INBOX");
    let u = a.ok("FETCH 1 MODSEQ");
    assert!(
        u.iter().any(|l| l.starts_with("* OK [HIGHESTMODSEQ ")),
        "{u:?}"
    );
    // Only the first time.
    let u = a.ok("FETCH 2 MODSEQ");
    assert!(!u.iter().any(|l| l.contains("HIGHESTMODSEQ")), "{u:?}");
    let mut modseq = std::collections::HashMap::new();
    for n in [1, 3, 2, 4] {
        let u = a.ok(&format!("STORE {n} +FLAGS (\\Seen)"));
        let m: u64 = u[0]
            .split("MODSEQ (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{u:?}"));
        modseq.insert(n, m);
    }
    let search = |a: &mut Imap, ret: &str, set: &str| {
        a.ok(&format!(
            "SEARCH RETURN ({ret}) {set} MODSEQ \"/flags/\\\\seen\" all 1"
        ))
    };
    let u = search(&mut a, "MIN", "1:3");
    assert!(u.len() == 1 && u[0].starts_with("* ESEARCH (TAG "), "{u:?}");
    assert!(
        u[0].ends_with(&format!(" MIN 1 MODSEQ {}", modseq[&1])),
        "{u:?}"
    );
    let u = search(&mut a, "MAX", "1:3");
    assert!(
        u[0].ends_with(&format!(" MAX 3 MODSEQ {}", modseq[&3])),
        "{u:?}"
    );
    let u = search(&mut a, "", "1:3");
    assert!(
        u[0].ends_with(&format!(" ALL 1:3 MODSEQ {}", modseq[&2])),
        "{u:?}"
    );
    let u = search(&mut a, "MIN MAX", "2:3");
    assert!(
        u[0].ends_with(&format!(" MIN 2 MAX 3 MODSEQ {}", modseq[&2])),
        "{u:?}"
    );
}

/// RFC 3516: a binary part (NUL octets, appended with a literal8) comes back base64-encoded
/// in BODY[1] (a literal may not hold NUL) and as its octets in BINARY[1] (literal8).
#[test]
fn a_binary_part_is_encoded_for_body_and_raw_for_binary() {
    let s = start();
    let mut a = Imap::login(s.addr("imap"), ALICE);
    let msg = b"From: a@b.test\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00-\xe4\r\n";
    let mut line = format!("b1 APPEND INBOX ~{{{}+}}\r\n", msg.len()).into_bytes();
    line.extend_from_slice(msg);
    line.extend_from_slice(b"\r\n");
    a.c.send_raw(&line);
    let (t, _) = a.until_tag("b1");
    assert!(t.starts_with("b1 OK "), "{t}");
    a.ok("SELECT INBOX");
    let (t, u) = a.cmd("FETCH 1 (BODY.PEEK[1])");
    assert!(t.contains(" OK "), "{t}");
    // "\0-\xe4\r\n" in base64.
    assert_eq!(u, vec!["* 1 FETCH (BODY[1] {10}", "AC3kDQo=", ")"], "{u:?}");
    a.c.send("b2 FETCH 1 (BINARY.PEEK[1])");
    let head = a.c.line().expect("answer");
    assert_eq!(head, "* 1 FETCH (BINARY[1] ~{5}");
}
