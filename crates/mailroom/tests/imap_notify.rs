//! NOTIFY (RFC 5465): an untagged STATUS for watched mailboxes other than the selected one,
//! at once with the STATUS indicator and afterwards at every sync point, IDLE's included
//! (issue 15).
mod support;

use std::time::Duration;

use support::imap::{start as imap_start, Imap};
use support::{ALICE, BOB};

/// The UIDVALIDITY of `mailbox` as STATUS tells it.
fn uidvalidity(c: &mut Imap, mailbox: &str) -> String {
    let u = c.ok(&format!("STATUS {mailbox} (UIDVALIDITY)"));
    let v = u[0]
        .rsplit(' ')
        .next()
        .expect("value")
        .trim_end_matches(')');
    v.to_string()
}

#[test]
fn status_indicator_sends_the_attributes_of_the_events() {
    let s = imap_start();
    let mut a = Imap::login(s.addr("imap"), ALICE);
    a.ok("CREATE Box2");
    a.append("Box2", b"Subject: one\r\n\r\nbody\r\n");
    let v = uidvalidity(&mut a, "Box2");
    let modseq = {
        let u = a.ok("STATUS Box2 (HIGHESTMODSEQ)");
        u[0].rsplit(' ')
            .next()
            .expect("value")
            .trim_end_matches(')')
            .to_string()
    };
    a.ok("SELECT INBOX");
    assert_eq!(
        a.ok("NOTIFY SET STATUS (mailboxes Box2 (MessageExpunge))"),
        vec!["* STATUS \"Box2\" (MESSAGES 1)"]
    );
    assert_eq!(
        a.ok("NOTIFY SET STATUS (mailboxes Box2 (MessageNew))"),
        vec![format!(
            "* STATUS \"Box2\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {v})"
        )]
    );
    assert_eq!(
        a.ok("NOTIFY SET STATUS (mailboxes Box2 (FlagChange))"),
        vec![format!(
            "* STATUS \"Box2\" (UIDVALIDITY {v} HIGHESTMODSEQ {modseq})"
        )]
    );
    // Without the indicator: nothing at once.
    assert!(a
        .ok("NOTIFY SET (mailboxes Box2 (MessageNew MessageExpunge FlagChange))")
        .is_empty());
    // The selected mailbox never gets a STATUS (it has its own EXISTS and EXPUNGE).
    assert!(a
        .ok("NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) (mailboxes INBOX (MessageNew))")
        .is_empty());
    // A watched mailbox changed by another session: a STATUS at the next command.
    a.ok("NOTIFY SET (personal (MessageNew MessageExpunge))");
    let mut other = Imap::login(s.addr("imap"), ALICE);
    other.append("Box2", b"Subject: two\r\n\r\nbody\r\n");
    assert_eq!(
        a.ok("NOOP"),
        vec![format!(
            "* STATUS \"Box2\" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY {v})"
        )]
    );
    assert!(a.ok("NOOP").is_empty());
}

#[test]
fn a_delivery_during_idle_gives_a_status_until_notify_none() {
    let s = imap_start();
    let mut a = Imap::login(s.addr("imap"), ALICE);
    a.ok("CREATE Work");
    a.ok("SELECT Work");
    let v = uidvalidity(&mut a, "INBOX");
    a.ok("NOTIFY SET (inboxes (MessageNew MessageExpunge))");
    a.c.send("i1 IDLE");
    assert!(a.c.line().expect("continuation").starts_with("+ "));
    s.deliver("x@far.test", &[ALICE.0], "Subject: hello\r\n\r\nbody\r\n");
    assert_eq!(
        a.c.line().expect("status"),
        format!("* STATUS \"INBOX\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {v})")
    );
    a.c.send("DONE");
    let (tagged, untagged) = a.until_tag("i1");
    assert!(tagged.starts_with("i1 OK"), "{tagged}");
    assert!(untagged.is_empty(), "{untagged:?}");
    // NOTIFY NONE: the next delivery is not told.
    a.ok("NOTIFY NONE");
    a.c.send("i2 IDLE");
    assert!(a.c.line().expect("continuation").starts_with("+ "));
    s.deliver("x@far.test", &[ALICE.0], "Subject: again\r\n\r\nbody\r\n");
    std::thread::sleep(Duration::from_millis(1500));
    a.c.send("DONE");
    let (tagged, untagged) = a.until_tag("i2");
    assert!(tagged.starts_with("i2 OK"), "{tagged}");
    assert!(untagged.is_empty(), "{untagged:?}");
    assert!(a.ok("NOOP").is_empty());
}

#[test]
fn another_accounts_mailbox_is_a_name_that_does_not_exist() {
    let s = imap_start();
    let mut b = Imap::login(s.addr("imap"), BOB);
    b.ok("CREATE Secret");
    b.append("Secret", b"Subject: private\r\n\r\nbody\r\n");
    let mut a = Imap::login(s.addr("imap"), ALICE);
    for names in ["Secret", "(Secret \"bob@example.test/Secret\" Nowhere)"] {
        let cmd =
            format!("NOTIFY SET STATUS (mailboxes {names} (MessageNew MessageExpunge FlagChange))");
        assert!(a.ok(&cmd).is_empty(), "{cmd}");
    }
    a.ok("NOTIFY SET STATUS (subtree Secret (MessageNew)) (mailboxes Secret (MessageNew))");
    b.append("Secret", b"Subject: more\r\n\r\nbody\r\n");
    assert!(a.ok("NOOP").is_empty());
    // Alice's own mailbox of that name is hers to watch.
    a.ok("CREATE Secret");
    a.ok("NOTIFY SET STATUS (mailboxes Secret (MessageExpunge))");
    b.append("Secret", b"Subject: yet more\r\n\r\nbody\r\n");
    assert!(a.ok("NOOP").is_empty());
    let (_, u) = a.cmd("NOTIFY SET STATUS (mailboxes Secret (MessageExpunge))");
    assert_eq!(u, vec!["* STATUS \"Secret\" (MESSAGES 0)"]);
}

#[test]
fn bad_syntax_is_bad_and_unsupported_events_are_badevent() {
    let s = imap_start();
    let mut a = Imap::login(s.addr("imap"), ALICE);
    for bad in [
        "NOTIFY",
        "NOTIFY SET",
        "NOTIFY SET (personal MessageNew)",
        "NOTIFY SET (everywhere (MessageNew))",
        "NOTIFY SET (selected (MessageNew))",
        "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
    ] {
        let (tagged, _) = a.cmd(bad);
        assert!(tagged.contains(" BAD "), "{bad}: {tagged}");
    }
    for (cmd, event) in [
        ("NOTIFY SET (personal (MailboxName))", "MailboxName"),
        (
            "NOTIFY SET (personal (SubscriptionChange))",
            "SubscriptionChange",
        ),
        (
            "NOTIFY SET (inboxes (MessageNew AnnotationChange))",
            "AnnotationChange",
        ),
        ("NOTIFY SET (personal (XNoSuchEvent))", "XNoSuchEvent"),
        (
            "NOTIFY SET (selected (MessageNew (UID) MessageExpunge))",
            "MessageNew with fetch attributes",
        ),
    ] {
        let (tagged, _) = a.cmd(cmd);
        assert!(tagged.contains(" NO [BADEVENT] "), "{cmd}: {tagged}");
        assert!(tagged.contains(event), "{cmd}: {tagged}");
    }
    // A refused NOTIFY SET leaves the previous set in force.
    a.ok("NOTIFY SET (inboxes (MessageNew))");
    a.cmd("NOTIFY SET (personal (MailboxName))");
    let mut other = Imap::login(s.addr("imap"), ALICE);
    other.append("INBOX", b"Subject: x\r\n\r\nbody\r\n");
    let u = a.ok("NOOP");
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(
        u[0].starts_with("* STATUS \"INBOX\" (MESSAGES 1 UIDNEXT 2 "),
        "{u:?}"
    );
    // Not before login.
    let mut n = Imap::connect(s.addr("imap"));
    let (tagged, _) = n.cmd("NOTIFY NONE");
    assert!(tagged.contains(" BAD "), "{tagged}");
}
