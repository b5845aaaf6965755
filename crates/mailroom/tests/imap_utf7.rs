//! Mailbox names on the wire: modified UTF-7 in IMAP4rev1 sessions (RFC 3501 §5.1.3), UTF-8
//! after `ENABLE IMAP4rev2` (RFC 9051 §5.1), UTF-8 in the store. Two sessions of one account
//! side by side, one of each kind, see the same folders.

mod support;

use support::imap::{msg, start, start_with, Imap};
use support::{ALICE, BOB};

/// A session that sent `ENABLE IMAP4rev2`.
fn rev2(s: &support::TestServer) -> Imap {
    let mut i = Imap::login(s.addr("imap"), ALICE);
    assert_eq!(i.ok("ENABLE IMAP4rev2"), vec!["* ENABLED IMAP4rev2"]);
    i
}

/// The mailbox names of LIST / LSUB responses, with literals joined back (`{9}` then the
/// next line).
fn names(untagged: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = untagged.iter();
    while let Some(l) = it.next() {
        if !(l.starts_with("* LIST ") || l.starts_with("* LSUB ")) {
            continue;
        }
        let name = l.rsplit_once("\"/\" ").map_or("", |(_, n)| n);
        if name.starts_with('{') && name.ends_with('}') {
            out.push(it.next().cloned().unwrap_or_default());
        } else {
            out.push(name.trim_matches('"').to_string());
        }
    }
    out
}

fn list(i: &mut Imap, args: &str) -> Vec<String> {
    let u = i.ok(&format!("LIST {args}"));
    names(&u)
}

#[test]
fn rev1_and_rev2_sessions_see_the_same_names() {
    let s = start();
    let mut a = Imap::login(s.addr("imap"), ALICE);
    // Thunderbird's spelling of "Entwürfe" in a rev1 session.
    a.ok("CREATE Entw&APw-rfe");
    let u = a.ok("LIST \"\" *");
    assert!(
        u.contains(&"* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"".to_string()),
        "{u:?}"
    );

    // A rev2 session sees UTF-8 (8-bit: sent as a literal).
    let mut b = rev2(&s);
    let u = b.ok("LIST \"\" *");
    let at = u
        .iter()
        .position(|l| l == "* LIST (\\HasNoChildren) \"/\" {9}")
        .unwrap_or_else(|| panic!("no literal name in {u:?}"));
    assert_eq!(u[at + 1], "Entwürfe");
    assert!(!u.iter().any(|l| l.contains("&APw-")), "{u:?}");

    // A rev2 session creates a UTF-8 name (a literal, as mailroom's agent sends it); the
    // rev1 session sees it encoded, with the parent CREATE made.
    let (t, _) = b.with_literal("c1", "CREATE ", "Привет/台北".as_bytes(), "");
    assert!(t.starts_with("c1 OK"), "{t}");
    let all = list(&mut a, "\"\" *");
    assert!(all.contains(&"&BB8EQAQ4BDIENQRC-".to_string()), "{all:?}");
    assert!(
        all.contains(&"&BB8EQAQ4BDIENQRC-/&U,BTFw-".to_string()),
        "{all:?}"
    );
    assert!(!all.iter().any(|n| !n.is_ascii()), "8-bit in rev1: {all:?}");
    let all = list(&mut b, "\"\" *");
    assert!(all.contains(&"Привет/台北".to_string()), "{all:?}");

    // Wildcards match the decoded names in both kinds of session.
    assert_eq!(list(&mut a, "\"\" Entw&APw-*"), vec!["Entw&APw-rfe"]);
    assert_eq!(list(&mut a, "\"\" *&APw-rf%"), vec!["Entw&APw-rfe"]);
    assert_eq!(
        list(&mut a, "\"\" &BB8EQAQ4BDIENQRC-/%"),
        vec!["&BB8EQAQ4BDIENQRC-/&U,BTFw-"]
    );
    assert_eq!(
        list(&mut a, "&BB8EQAQ4BDIENQRC-/ *"),
        vec!["&BB8EQAQ4BDIENQRC-/&U,BTFw-"]
    );
    assert_eq!(list(&mut b, "\"\" \"Entwü*\""), vec!["Entwürfe"]);
    assert_eq!(list(&mut b, "\"\" \"%北\""), Vec::<String>::new());
    assert_eq!(list(&mut b, "\"\" \"*北\""), vec!["Привет/台北"]);
    let top = list(&mut b, "\"\" %");
    assert!(top.contains(&"Привет".to_string()), "{top:?}");
    assert!(!top.contains(&"Привет/台北".to_string()), "{top:?}");
    // LSUB too.
    a.ok("SUBSCRIBE Entw&APw-rfe");
    let u = a.ok("LSUB \"\" Entw*");
    assert_eq!(u, vec!["* LSUB () \"/\" \"Entw&APw-rfe\""]);
    assert_eq!(names(&b.ok("LSUB \"\" *rfe")), vec!["Entwürfe"]);

    // SELECT by the UTF-8 name in rev2 (its LIST line has the UTF-8 name) ...
    let u = b.ok("SELECT \"Entwürfe\"");
    let at = u
        .iter()
        .position(|l| l == "* LIST () \"/\" {9}")
        .unwrap_or_else(|| panic!("no LIST in {u:?}"));
    assert_eq!(u[at + 1], "Entwürfe");
    // ... where "&" is just a character: this is another name, which does not exist.
    let (t, _) = b.cmd("SELECT Entw&APw-rfe");
    assert!(
        t.ends_with("NO [NONEXISTENT] there is no mailbox \"Entw&APw-rfe\""),
        "{t}"
    );
}

#[test]
fn rev1_commands_take_encoded_names() {
    let s = start();
    let mut a = Imap::login(s.addr("imap"), ALICE);
    a.ok("CREATE Entw&APw-rfe");
    a.ok("CREATE &BB8EQAQ4BDIENQRC-");
    let (t, _) = a.cmd("CREATE Entw&APw-rfe");
    assert!(
        t.ends_with("NO [ALREADYEXISTS] mailbox \"Entw&APw-rfe\" already exists"),
        "{t}"
    );

    // APPEND, STATUS, LIST-STATUS, SELECT, COPY, MOVE, EXAMINE by the encoded names.
    let m = msg(BOB.0, ALICE.0, "hallo", "Gruss");
    let (t, _) = a.with_literal("p1", "APPEND Entw&APw-rfe (\\Seen) ", m.as_bytes(), "");
    assert!(t.starts_with("p1 OK [APPENDUID "), "{t}");
    let (t, _) = a.with_literal("p2", "APPEND \"Entw&APw-rfe\" ", m.as_bytes(), "");
    assert!(t.starts_with("p2 OK [APPENDUID "), "{t}");
    assert_eq!(
        a.ok("STATUS Entw&APw-rfe (MESSAGES UNSEEN)"),
        vec!["* STATUS \"Entw&APw-rfe\" (MESSAGES 2 UNSEEN 1)"]
    );
    let u = a.ok("LIST \"\" Entw* RETURN (STATUS (MESSAGES))");
    assert_eq!(
        u,
        vec![
            "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"",
            "* STATUS \"Entw&APw-rfe\" (MESSAGES 2)"
        ]
    );
    let u = a.ok("SELECT Entw&APw-rfe");
    assert!(u.contains(&"* 2 EXISTS".to_string()), "{u:?}");
    let (t, _) = a.cmd("COPY 1 &BB8EQAQ4BDIENQRC-");
    assert!(t.contains(" OK [COPYUID "), "{t}");
    let (t, _) = a.cmd("UID MOVE 2 &BB8EQAQ4BDIENQRC-");
    assert!(t.contains(" OK "), "{t}");
    // A target that does not exist: the name in the text as the client wrote it.
    let (t, _) = a.cmd("COPY 1 &BB8EQAQ4BDIENQRC-2");
    assert!(
        t.ends_with("NO [TRYCREATE] there is no mailbox \"&BB8EQAQ4BDIENQRC-2\"; CREATE it first"),
        "{t}"
    );
    let u = a.ok("EXAMINE &BB8EQAQ4BDIENQRC-");
    assert!(u.contains(&"* 2 EXISTS".to_string()), "{u:?}");

    // The rev2 session sees the same mailboxes and counts under the UTF-8 names.
    let mut b = rev2(&s);
    let u = b.ok("STATUS \"Привет\" (MESSAGES)");
    assert_eq!(u, vec!["* STATUS {12}", "Привет (MESSAGES 2)"]);

    // RENAME to "Été/Brouillons", UNSUBSCRIBE, DELETE.
    a.ok("SUBSCRIBE Entw&APw-rfe");
    a.ok("CREATE &AMk-t&AOk-");
    a.ok("RENAME Entw&APw-rfe &AMk-t&AOk-/Brouillons");
    assert_eq!(
        list(&mut a, "\"\" &AMk-t&AOk-*"),
        vec!["&AMk-t&AOk-", "&AMk-t&AOk-/Brouillons"]
    );
    assert_eq!(list(&mut b, "\"\" \"Ét*\""), vec!["Été", "Été/Brouillons"]);
    let (t, _) = a.cmd("RENAME Entw&APw-rfe Other");
    assert!(
        t.ends_with("NO [NONEXISTENT] there is no mailbox \"Entw&APw-rfe\""),
        "{t}"
    );
    let moved = "&AMk-t&AOk-/Brouillons".to_string();
    assert!(names(&a.ok("LSUB \"\" *")).contains(&moved));
    a.ok("UNSUBSCRIBE &AMk-t&AOk-/Brouillons");
    assert!(!names(&a.ok("LSUB \"\" *")).contains(&moved));
    a.ok("DELETE &AMk-t&AOk-/Brouillons");
    a.ok("DELETE &AMk-t&AOk-");
    a.ok("DELETE &BB8EQAQ4BDIENQRC-");
    let all = list(&mut b, "\"\" *");
    assert!(
        all.iter().all(|n| n.is_ascii()),
        "everything non-ASCII is gone: {all:?}"
    );
}

#[test]
fn invalid_names_are_refused_with_how_to_write_them() {
    // NO (not BAD) does not count towards max_errors: the session goes on.
    let s = start_with("[limits]\nmax_errors = 3\n");
    let mut a = Imap::login(s.addr("imap"), ALICE);
    // Raw UTF-8 in a rev1 session (quoted, or as a literal).
    for (t, _) in [
        a.cmd("CREATE \"Entwürfe\""),
        a.with_literal("l1", "CREATE ", "Entwürfe".as_bytes(), ""),
    ] {
        assert!(
            t.contains(" NO [CANNOT] mailbox name \"Entw\\xC3\\xBCrfe\" is not valid modified UTF-7: octet 0xC3 at offset 4 is not 7-bit"),
            "{t}"
        );
        assert!(t.contains("; write it as \"Entw&APw-rfe\". "), "{t}");
        assert!(t.contains("RFC 3501 section 5.1.3"), "{t}");
        assert!(t.contains("ENABLE IMAP4rev2"), "{t}");
        assert!(t.is_ascii(), "a rev1 response text is 7-bit: {t}");
    }
    // Latin-1 octets (not even UTF-8), as a literal: the same refusal, without a guess.
    let (t, _) = a.with_literal("l2", "CREATE ", b"Entw\xfcrfe", "");
    assert!(
        t.starts_with("l2 NO [CANNOT] mailbox name \"Entw\\xFCrfe\" is not valid modified UTF-7: octet 0xFC at offset 4"),
        "{t}"
    );
    assert!(!t.contains("write it as"), "{t}");
    // Malformed modified UTF-7 (RFC 3501 §5.1.3's own examples among them).
    for (name, why, fix) in [
        (
            "&Jjo!",
            "'!' at offset 4 is not modified BASE64",
            Some("&Jjo-!"),
        ),
        (
            "&U,BTFw-&ZeVnLIqe-",
            "two runs in a row must be one run",
            Some("&U,BTF2XlZyyKng-"),
        ),
        ("&AMA-&AMA-", "two runs in a row", Some("&AMAAwA-")),
        (
            "&AGE-",
            "encodes 'a', which must stand for itself",
            Some("a"),
        ),
        ("R&D", "not ended by -", Some("R&-D")),
        ("&2D0-", "unpaired UTF-16 surrogate", None),
        ("&APx-", "whole UTF-16 characters", None),
    ] {
        let (t, _) = a.cmd(&format!("CREATE \"{name}\""));
        assert!(t.contains(" NO [CANNOT] mailbox name "), "{name}: {t}");
        assert!(t.contains(why), "{name}: {t}");
        match fix {
            Some(f) => assert!(t.contains(&format!("write it as \"{f}\"")), "{name}: {t}"),
            None => assert!(!t.contains("write it as"), "{name}: {t}"),
        }
    }
    // Every command that takes a name refuses it the same way.
    for cmd in [
        "SELECT \"Entwürfe\"",
        "EXAMINE \"Entwürfe\"",
        "DELETE \"Entwürfe\"",
        "RENAME INBOX/x \"Entwürfe\"",
        "RENAME \"Entwürfe\" x",
        "SUBSCRIBE \"Entwürfe\"",
        "UNSUBSCRIBE \"Entwürfe\"",
        "STATUS \"Entwürfe\" (MESSAGES)",
        "LIST \"\" \"Entwü*\"",
        "LIST \"Entwü/\" *",
        "LSUB \"\" \"Entwü*\"",
    ] {
        let (t, _) = a.cmd(cmd);
        assert!(t.contains(" NO [CANNOT] mailbox name "), "{cmd}: {t}");
    }
    let (t, _) = a.with_literal("l3", "APPEND \"Entwürfe\" ", b"Subject: x\r\n\r\nx\r\n", "");
    assert!(t.starts_with("l3 NO [CANNOT] mailbox name "), "{t}");
    a.ok("SELECT INBOX");
    for cmd in [
        "COPY 1:* \"&AGE-\"",
        "MOVE 1:* \"&AGE-\"",
        "UID COPY 1 &AGE-",
    ] {
        let (t, _) = a.cmd(cmd);
        assert!(t.contains(" NO [CANNOT] mailbox name "), "{cmd}: {t}");
    }
    // A SELECT refused for its name still deselects (RFC 9051 §6.3.2).
    let (t, u) = a.cmd("SELECT &AGE-");
    assert!(t.contains(" NO [CANNOT] mailbox name "), "{t}");
    assert_eq!(u, vec!["* OK [CLOSED] previous mailbox closed"]);
    let (t, _) = a.cmd("FETCH 1 FLAGS");
    assert!(t.contains(" BAD "), "still selected: {t}");
    // The session went on, and nothing was created.
    a.ok("NOOP");
    let all = list(&mut a, "\"\" *");
    assert_eq!(all.len(), 6, "{all:?}");

    // A rev2 session: UTF-8 is fine, other octets are not.
    let mut b = rev2(&s);
    let (t, _) = b.with_literal("r1", "CREATE ", b"Entw\xfcrfe", "");
    assert!(
        t.starts_with(
            "r1 NO [CANNOT] mailbox name \"Entw\\xFCrfe\" is not valid UTF-8 (at octet 4)"
        ),
        "{t}"
    );
    b.ok("CREATE \"Entwürfe\"");
    assert_eq!(list(&mut a, "\"\" Entw*"), vec!["Entw&APw-rfe"]);
}

#[test]
fn ampersand_round_trips() {
    let s = start();
    let mut a = Imap::login(s.addr("imap"), ALICE);
    let mut b = rev2(&s);
    a.ok("CREATE \"R&-D/Q&-A\"");
    assert_eq!(list(&mut a, "\"\" R*"), vec!["R&-D", "R&-D/Q&-A"]);
    assert_eq!(list(&mut b, "\"\" R*"), vec!["R&D", "R&D/Q&A"]);
    // rev2 writes "&" as itself; rev1 sees "&-".
    b.ok("CREATE \"Tom & Jerry\"");
    assert_eq!(list(&mut a, "\"\" Tom*"), vec!["Tom &- Jerry"]);
    a.ok("SELECT \"Tom &- Jerry\"");
    b.ok("SELECT \"R&D/Q&A\"");
    a.ok("RENAME \"Tom &- Jerry\" \"Tom &- J&AOk-r&AOk-my\"");
    assert_eq!(list(&mut b, "\"\" Tom*"), vec!["Tom & Jérémy"]);
}

/// Names stored before names were converted: a rev1 client's `Entw&APw-rfe` was kept as
/// those octets. They stay reachable (rev1 clients see `Entw&-APw-rfe`, i.e. the literal
/// text) and a RENAME fixes them.
#[test]
fn names_stored_as_sent_by_old_versions_can_be_renamed() {
    let s = start();
    let mut b = rev2(&s);
    // What the old behaviour stored: the modified UTF-7 octets as the name.
    b.ok("CREATE Entw&APw-rfe");
    let mut a = Imap::login(s.addr("imap"), ALICE);
    assert_eq!(list(&mut a, "\"\" Entw*"), vec!["Entw&-APw-rfe"]);
    a.ok("SELECT Entw&-APw-rfe");
    a.ok("RENAME Entw&-APw-rfe Entw&APw-rfe");
    assert_eq!(list(&mut a, "\"\" Entw*"), vec!["Entw&APw-rfe"]);
    assert_eq!(list(&mut b, "\"\" Entw*"), vec!["Entwürfe"]);
}

#[test]
fn imaplib_creates_and_lists_an_encoded_name() {
    let s = start();
    let out = s.python(
        r#"
import os, imaplib, re
M = imaplib.IMAP4(os.environ["HOST"], int(os.environ["IMAP_PORT"]))
M.login("alice@example.test", "secret")

def mutf7_decode(name):
    # An independent decoder: modified UTF-7 is UTF-7 with "&" for "+" and "," for "/".
    out, i = "", 0
    while i < len(name):
        j = name.find("&", i)
        if j < 0:
            return out + name[i:]
        out += name[i:j]
        k = name.index("-", j)
        run = name[j + 1:k]
        out += "&" if run == "" else ("+" + run.replace(",", "/") + "-").encode().decode("utf-7")
        i = k + 1
    return out

for wire in ["Entw&APw-rfe", "&BB8EQAQ4BDIENQRC-/&U,BTFw-", "R&-D"]:
    typ, data = M.create(wire)
    assert typ == "OK", (wire, data)
typ, data = M.list('""', "*")
assert typ == "OK", data
names = [re.search(r'"/" "?([^"]*)"?$', d.decode()).group(1) for d in data]
for n in names:
    print(n, "=", mutf7_decode(n))
assert "Entw&APw-rfe" in names and "R&-D" in names, names
decoded = [mutf7_decode(n) for n in names]
assert "Entwürfe" in decoded and "Привет/台北" in decoded and "R&D" in decoded, decoded

typ, data = M.select("Entw&APw-rfe")
assert typ == "OK" and data == [b"0"], data
typ, data = M.append("Entw&APw-rfe", None, None, b"Subject: hi\r\n\r\nhello\r\n")
assert typ == "OK", data
typ, data = M.status("Entw&APw-rfe", "(MESSAGES)")
assert typ == "OK" and data == [b'"Entw&APw-rfe" (MESSAGES 1)'], data
# imaplib sends str as ASCII: raw UTF-8 goes as bytes.
typ, data = M.create('"Entwürfe"'.encode())
assert typ == "NO" and b"write it as" in data[0], data
typ, data = M.noop()
assert typ == "OK", data
M.logout()
print("done")
"#,
    );
    assert!(out.contains("Entw&APw-rfe = Entwürfe"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
    // And a rev2 session sees the UTF-8 names.
    let mut b = rev2(&s);
    let all = list(&mut b, "\"\" *");
    for n in ["Entwürfe", "Привет", "Привет/台北", "R&D"] {
        assert!(all.contains(&n.to_string()), "{n}: {all:?}");
    }
}

/// A LIST pattern that is not valid modified UTF-7 names no mailbox: OK with nothing (as
/// Dovecot answers, imaptest `atoms`), while SELECT of such a name is still refused with NO.
#[test]
fn list_with_an_undecodable_pattern_is_ok_and_empty() {
    let s = start();
    let mut a = Imap::login(s.addr("imap"), ALICE);
    assert!(a.ok("LIST \"\" a&'b%*").is_empty());
    assert!(a.ok("LSUB \"\" a&'b%*").is_empty());
    assert!(a.ok("LIST a&'b %").is_empty());
    let (tagged, _) = a.cmd("SELECT a&'b");
    assert!(tagged.contains(" NO "), "{tagged}");
    // A valid pattern in the same command still matches.
    let lines = a.ok("LIST \"\" (a&'b INBOX)");
    assert_eq!(lines, vec!["* LIST (\\HasNoChildren) \"/\" \"INBOX\""]);
}
