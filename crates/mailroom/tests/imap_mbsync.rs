//! mbsync (isync) against the IMAP server: a two-way sync of INBOX and the special-use
//! folders with a local Maildir. Fails with a clear message where mbsync is not installed
//! (.ci/run installs it: the Debian package isync).

mod support;

use std::path::Path;
use std::process::Command;

use support::cli::require_tool;
use support::imap::{msg, start, Imap};
use support::{ALICE, BOB};

fn mbsync(config: &Path) -> std::process::Output {
    Command::new("mbsync")
        .arg("-c")
        .arg(config)
        .arg("-a")
        .output()
        .expect("run mbsync")
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn mbsync_two_way_sync() {
    require_tool("mbsync", "--version", "isync");
    let s = start();
    s.deliver(BOB.0, &[ALICE.0], &msg(BOB.0, ALICE.0, "one", "first"));
    s.deliver(BOB.0, &[ALICE.0], &msg(BOB.0, ALICE.0, "two", "second"));
    let addr = s.addr("imap");
    let mail = s.dir.path().join("Mail");
    std::fs::create_dir_all(&mail).expect("mkdir");
    let config = s.dir.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount lab\nHost {}\nPort {}\nUser {}\nPass {}\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore far\nAccount lab\n\n\
             MaildirStore near\nPath {}/\nInbox {}/INBOX\nSubFolders Verbatim\n\n\
             Channel all\nFar :far:\nNear :near:\nPatterns *\nCreate Both\nExpunge Both\nSync All\nSyncState *\n",
            addr.ip(),
            addr.port(),
            ALICE.0,
            ALICE.1,
            mail.display(),
            mail.display()
        ),
    )
    .expect("write config");
    let out = mbsync(&config);
    assert!(
        out.status.success(),
        "mbsync: {}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );
    let inbox_new = mail.join("INBOX/new");
    let inbox_cur = mail.join("INBOX/cur");
    let got: Vec<String> = files(&inbox_new)
        .into_iter()
        .chain(files(&inbox_cur))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    for f in ["Sent", "Drafts", "Trash", "Junk", "Archive"] {
        assert!(mail.join(f).is_dir(), "{f} was created locally");
    }

    // Locally: mark one message seen, add one to Drafts; then sync again.
    let (dir, name) = if let Some(n) = files(&inbox_new).first() {
        (inbox_new.clone(), n.clone())
    } else {
        (inbox_cur.clone(), files(&inbox_cur)[0].clone())
    };
    let base = name.split(":2,").next().unwrap_or(&name).to_string();
    std::fs::rename(dir.join(&name), inbox_cur.join(format!("{base}:2,S"))).expect("rename");
    std::fs::write(
        mail.join("Drafts/new/local.1"),
        "Subject: written offline\r\n\r\nhello\r\n",
    )
    .expect("write draft");
    let out = mbsync(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut i = Imap::login(addr, ALICE);
    let (_, u) = i.cmd("STATUS INBOX (MESSAGES UNSEEN)");
    assert_eq!(u, vec!["* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 1)"]);
    i.ok("SELECT Drafts");
    let u = i.ok("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]");
    assert!(u.iter().any(|l| l.contains("written offline")), "{u:?}");

    // A message deleted on the server disappears locally.
    i.ok("SELECT INBOX");
    i.ok("STORE 1 +FLAGS.SILENT (\\Deleted)");
    i.ok("EXPUNGE");
    let out = mbsync(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = files(&inbox_new).len() + files(&inbox_cur).len();
    assert_eq!(left, 1);
    let log = s.log_text();
    assert!(!log.contains(" BAD "), "mbsync got a BAD:\n{log}");
}
