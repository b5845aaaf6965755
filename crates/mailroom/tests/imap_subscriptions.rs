//! Subscriptions are names (RFC 9051 §6.3.7-§6.3.9, RFC 3501 §6.3.9 LSUB, RFC 5258
//! LIST-EXTENDED), and STATUS reads counters the store keeps (issue 15).
mod support;

use support::imap::{start as imap_start, Imap};
use support::{ALICE, BOB};

#[test]
fn subscriptions_are_names_that_outlive_their_mailbox() {
    let s = imap_start();
    let mut a = Imap::login(s.addr("imap"), ALICE);
    // The default folders start subscribed; CREATE does not subscribe.
    let lsub = a.ok("LSUB \"\" *");
    assert!(
        lsub.contains(&"* LSUB () \"/\" \"INBOX\"".to_string()),
        "{lsub:?}"
    );
    a.ok("CREATE Work/Projects");
    let lsub = a.ok("LSUB \"\" Work*");
    assert!(lsub.is_empty(), "CREATE subscribed: {lsub:?}");
    // A subscribed child below an unsubscribed parent: `%` stops at the parent (\Noselect).
    a.ok("SUBSCRIBE Work/Projects");
    assert_eq!(
        a.ok("LSUB \"\" %")
            .iter()
            .filter(|l| l.contains("Work"))
            .cloned()
            .collect::<Vec<_>>(),
        vec!["* LSUB (\\Noselect) \"/\" \"Work\""]
    );
    assert_eq!(
        a.ok("LSUB \"\" Work/%"),
        vec!["* LSUB () \"/\" \"Work/Projects\""]
    );
    // A name without a mailbox can be subscribed; DELETE keeps the subscription.
    a.ok("SUBSCRIBE Later");
    a.ok("CREATE Old");
    a.ok("SUBSCRIBE Old");
    a.ok("DELETE Old");
    let list = a.ok("LIST (SUBSCRIBED) \"\" *");
    assert!(
        list.contains(&"* LIST (\\NonExistent \\Subscribed) \"/\" \"Later\"".to_string()),
        "{list:?}"
    );
    assert!(
        list.contains(&"* LIST (\\NonExistent \\Subscribed) \"/\" \"Old\"".to_string()),
        "{list:?}"
    );
    assert!(
        list.contains(&"* LIST (\\HasNoChildren \\Subscribed) \"/\" \"Work/Projects\"".to_string()),
        "{list:?}"
    );
    // RECURSIVEMATCH: the parent stands for its subscribed child.
    let list = a.ok("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %");
    assert!(
        list.contains(
            &"* LIST (\\HasChildren) \"/\" \"Work\" (\"CHILDINFO\" (\"SUBSCRIBED\"))".to_string()
        ),
        "{list:?}"
    );
    // Plain LIST shows mailboxes only.
    let list = a.ok("LIST \"\" *");
    assert!(
        !list
            .iter()
            .any(|l| l.contains("Later") || l.contains("\"Old\"")),
        "{list:?}"
    );
    // RENAME takes the subscription along.
    a.ok("RENAME Work Job");
    let lsub = a.ok("LSUB \"\" Job/*");
    assert_eq!(lsub, vec!["* LSUB () \"/\" \"Job/Projects\""]);
    // UNSUBSCRIBE of a name that is not subscribed says so.
    let (tagged, _) = a.cmd("UNSUBSCRIBE Nothing");
    assert!(
        tagged.contains(" NO [NONEXISTENT] ") && tagged.contains("not subscribed"),
        "{tagged}"
    );
    a.ok("UNSUBSCRIBE Later");
    assert!(a.ok("LSUB \"\" Later").is_empty());
    // Another account sees none of it.
    let mut b = Imap::login(s.addr("imap"), BOB);
    let lsub = b.ok("LSUB \"\" *");
    assert!(
        !lsub.iter().any(|l| l.contains("Job") || l.contains("Old")),
        "{lsub:?}"
    );
}

#[test]
fn status_counts_follow_every_change() {
    let s = imap_start();
    for i in 0..4 {
        s.deliver(
            "x@far.test",
            &[ALICE.0],
            &format!("Subject: s{i}\n\nbody {i}\n"),
        );
    }
    let mut a = Imap::login(s.addr("imap"), ALICE);
    let mut b = Imap::login(s.addr("imap"), ALICE);
    let status = |b: &mut Imap| {
        let (_, u) = b.cmd("STATUS INBOX (MESSAGES UNSEEN DELETED RECENT)");
        u.join("")
    };
    assert_eq!(
        status(&mut b),
        "* STATUS \"INBOX\" (MESSAGES 4 UNSEEN 4 DELETED 0 RECENT 4)"
    );
    a.ok("SELECT INBOX");
    a.ok("STORE 1:2 +FLAGS (\\Seen)");
    a.ok("STORE 3 +FLAGS (\\Deleted)");
    assert_eq!(
        status(&mut b),
        "* STATUS \"INBOX\" (MESSAGES 4 UNSEEN 2 DELETED 1 RECENT 0)"
    );
    a.ok("EXPUNGE");
    a.ok("MOVE 1 Trash");
    assert_eq!(
        status(&mut b),
        "* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 1 DELETED 0 RECENT 0)"
    );
    let (_, u) = b.cmd("STATUS Trash (MESSAGES UNSEEN)");
    assert_eq!(u.join(""), "* STATUS \"Trash\" (MESSAGES 1 UNSEEN 0)");
}
