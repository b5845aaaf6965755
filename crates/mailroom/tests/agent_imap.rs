//! The agent's IMAP mode: the `imap:FOLDER>>> ` sub-prompt of `mailroom agent` driven by a
//! batch script, and `mailroom inbox --imap` for scripts, against a real server on ephemeral
//! loopback ports (and scripted fake servers for the failures a real one does not produce).
mod support;

use std::path::Path;

use support::cli::Step::*;
use support::cli::*;
use support::*;

/// One message of `mailroom inbox --imap ... list --json`, as Python's json module read it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JsonRow {
    number: u32,
    size: u64,
    uid: String,
    subject: String,
    flags: Vec<String>,
}

impl JsonRow {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }
}

/// Parses the `--json` listing with Python's json module (a real JSON parser, which also
/// checks each field's type) and returns one row per message.
fn parse_json_listing(json: &str) -> Vec<JsonRow> {
    let script = r#"
import json, sys
rows = json.loads(sys.stdin.read())
assert isinstance(rows, list), rows
for r in rows:
    assert isinstance(r["number"], int), r
    assert isinstance(r["size"], int), r
    assert isinstance(r["uid"], str), r
    assert isinstance(r["subject"], str), r
    assert isinstance(r["flags"], list) and all(isinstance(f, str) for f in r["flags"]), r
    for k in ("from", "to", "date", "message_id"):
        assert isinstance(r[k], str), (k, r)
    print("\t".join([str(r["number"]), str(r["size"]), r["uid"], r["subject"], " ".join(r["flags"])]))
"#;
    let out = support::python::python_stdin(script, &[], json.as_bytes());
    assert!(
        out.status.success(),
        "not the JSON listing expected: {}\n--- json\n{json}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 from python")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l:?}");
            JsonRow {
                number: f[0].parse().expect("number"),
                size: f[1].parse().expect("size"),
                uid: f[2].to_string(),
                subject: f[3].to_string(),
                flags: f[4].split_whitespace().map(str::to_string).collect(),
            }
        })
        .collect()
}

/// bob's `mailroom inbox --protocol imap [--folder F] ARGS...`.
fn inbox(imap: &str, folder: Option<&str>, args: &[&str]) -> Run {
    let mut v = vec![
        "inbox",
        "-e",
        BOB.0,
        "-p",
        BOB.1,
        "--protocol",
        "imap",
        "--imap",
        imap,
    ];
    if let Some(f) = folder {
        v.extend_from_slice(&["--folder", f]);
    }
    v.extend_from_slice(args);
    mailroom(&v, b"", &[])
}

/// The folder's messages as `inbox ... list --json` shows them (asserting it succeeds).
fn listing(imap: &str, folder: &str) -> Vec<JsonRow> {
    let r = inbox(imap, Some(folder), &["list", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    parse_json_listing(&r.stdout)
}

/// alice sends bob a message with `mailroom send` through the MX port (no AUTH needed for a
/// local recipient).
fn send_to_bob(s: &TestServer, subject: &str, body: &str, attach: Option<&Path>) {
    let smtp = s.smtp().to_string();
    let mut args = vec![
        "send",
        "--smtp",
        &smtp,
        "--no-auth",
        "--from",
        ALICE.0,
        "--to",
        BOB.0,
        "-s",
        subject,
        "--body",
        body,
    ];
    let att;
    if let Some(a) = attach {
        att = a.display().to_string();
        args.extend_from_slice(&["-a", &att]);
    }
    let r = mailroom(&args, b"", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.starts_with("sent to bob@example.test: 250 "),
        "{}",
        r.all()
    );
}

/// Waits until bob's INBOX holds `n` messages.
fn wait_for_inbox(s: &TestServer, n: usize) {
    s.wait_for(10, &format!("{n} messages for bob"), || {
        s.inbox(BOB.0).len() == n
    });
}

/// The output of the `nth` (0-based) run of `command` at `prompt`: the text after the echoed
/// command up to the next prompt.
fn after<'a>(out: &'a str, prompt_and_command: &str, nth: usize) -> &'a str {
    let needle = format!("{prompt_and_command}\n");
    let (at, _) = out
        .match_indices(&needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {needle:?} (#{nth}) in:\n{out}"));
    let rest = &out[at + needle.len()..];
    let end = rest.find(">>> ").map(|e| {
        // Back up to the start of the prompt's line.
        rest[..e].rfind('\n').map(|n| n + 1).unwrap_or(0)
    });
    &rest[..end.unwrap_or(rest.len())]
}

/// The flags column (`N`, `NF`, ...) of the row of `list` whose subject is `subject`.
fn row_flags(list_output: &str, subject: &str) -> String {
    let row = list_output
        .lines()
        .find(|l| l.ends_with(&format!("  {subject}")))
        .unwrap_or_else(|| panic!("no row for {subject:?} in:\n{list_output}"));
    // "{:>4} {:<4} {:>8}  from  subject": the flags are columns 5..9.
    row.get(5..9)
        .unwrap_or_else(|| panic!("short row {row:?}"))
        .trim_end()
        .to_string()
}

#[test]
fn a_batch_script_reads_flags_copies_moves_and_expunges() {
    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    send_to_bob(&s, "Grüße aus Köln", "Hallo Bob, schöne Grüße.", None);
    send_to_bob(&s, "Lunch", "Lunch at noon?", None);
    wait_for_inbox(&s, 2);

    let script = "imap\nlist\nread 1\nlist\nsearch unseen\nflag 2 flagged\ncreate Archive2\n\
                  copy 1 Archive2\nmove 2 Archive2\nfolders\nread 9\nselect Archive2\nlist\n\
                  delete 1\nexpunge\nsearch unseen\nquit\nexit\n";
    let r = mailroom(
        &["agent", "-e", BOB.0, "--imap", &imap],
        script.as_bytes(),
        &[("MAILROOM_PASSWORD", BOB.1)],
    );
    // `read 9` was refused: a command failed, so the exit code is 5.
    assert_eq!(r.code, 5, "{}", r.all());
    let out = &r.stdout;
    for want in [
        "[smtp|pop|imap|exit]>>> imap\nOK LOGIN completed",
        "\nINBOX: 2 messages\n",
        &format!("Logged in to {imap}. Commands: folders select list read"),
        "imap:INBOX>>> list\n2 messages in INBOX\n",
        "imap:INBOX>>> read 1\n--- message 1 (",
        "From: alice@example.test\n",
        "To: bob@example.test\n",
        "Subject: Grüße aus Köln\n",
        "Hallo Bob, schöne Grüße.\n",
        "--- end of message 1 ---\n",
        "imap:INBOX>>> search unseen\n1 match: 2\n",
        "imap:INBOX>>> flag 2 flagged\nmessage 2: \\Flagged\n",
        "imap:INBOX>>> create Archive2\nOK CREATE completed\n",
        "imap:INBOX>>> copy 1 Archive2\ncopied 1 to Archive2\n",
        "imap:INBOX>>> move 2 Archive2\nmoved 2 to Archive2; the others are renumbered (type list)\n(INBOX now has 1 message; it had 2)\n",
        "imap:INBOX>>> select Archive2\nArchive2: 2 messages\n",
        "imap:Archive2>>> list\n2 messages in Archive2\n",
        "imap:Archive2>>> delete 1\nmessage 1 marked \\Deleted (expunge removes it; undelete 1 undoes this)\n",
        "imap:Archive2>>> expunge\nremoved 1 message; the others are renumbered (type list)\n(Archive2 now has 1 message; it had 2)\n",
        "imap:Archive2>>> search unseen\n1 match: 1\n",
        "imap:Archive2>>> quit\nOK LOGOUT completed\n[smtp|pop|imap|exit]>>> exit\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    assert!(
        !out.contains(BOB.1) && !r.stderr.contains(BOB.1),
        "{}",
        r.all()
    );

    // Both new before reading; reading 1 (BODY[]) set \Seen on it only.
    let first = after(out, "imap:INBOX>>> list", 0);
    assert_eq!(row_flags(first, "Grüße aus Köln"), "N", "{first}");
    assert_eq!(row_flags(first, "Lunch"), "N", "{first}");
    let second = after(out, "imap:INBOX>>> list", 1);
    assert_eq!(row_flags(second, "Grüße aus Köln"), "", "{second}");
    assert_eq!(row_flags(second, "Lunch"), "N", "{second}");
    // The copy kept \Seen, the move kept \Flagged (and no \Seen).
    let archived = after(out, "imap:Archive2>>> list", 0);
    assert_eq!(row_flags(archived, "Grüße aus Köln"), "", "{archived}");
    assert_eq!(row_flags(archived, "Lunch"), "NF", "{archived}");

    // folders: every folder with its counts, Archive2 among them.
    let folders = after(out, "imap:INBOX>>> folders", 0);
    let row = |name: &str| {
        folders
            .lines()
            .find(|l| l.starts_with(&format!("  {name} ")))
            .unwrap_or_else(|| panic!("no folder {name} in:\n{folders}"))
            .to_string()
    };
    assert!(
        row("INBOX").contains(" 1 message, 0 unseen"),
        "{}",
        row("INBOX")
    );
    assert!(
        row("Archive2").contains(" 2 messages, 1 unseen"),
        "{}",
        row("Archive2")
    );

    // read 9: the server's tagged refusal, shown as it came; the session went on.
    let refused = after(out, "imap:INBOX>>> read 9", 0);
    assert!(
        refused.starts_with("BAD ") || refused.starts_with("NO "),
        "{}",
        r.all()
    );
    assert_eq!(refused.lines().count(), 1, "{}", r.all());

    // The server's side: INBOX has the read message, Archive2 the flagged unread one.
    let inbox_rows = listing(&imap, "INBOX");
    assert_eq!(inbox_rows.len(), 1, "{inbox_rows:?}");
    assert_eq!(inbox_rows[0].subject, "Grüße aus Köln");
    assert!(inbox_rows[0].has("\\Seen"), "{inbox_rows:?}");
    assert!(!inbox_rows[0].has("\\Deleted"), "{inbox_rows:?}");
    let archive = listing(&imap, "Archive2");
    assert_eq!(archive.len(), 1, "{archive:?}");
    assert_eq!(archive[0].number, 1);
    assert_eq!(archive[0].subject, "Lunch");
    assert!(archive[0].has("\\Flagged"), "{archive:?}");
    assert!(!archive[0].has("\\Seen"), "{archive:?}");
    assert_eq!(s.inbox(BOB.0).len(), 1);
}

#[test]
fn trace_masks_the_password_and_end_of_input_logs_out() {
    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    s.deliver(
        "x@elsewhere.test",
        &[BOB.0],
        &support::imap::msg("x@elsewhere.test", BOB.0, "one", "first body"),
    );
    wait_for_inbox(&s, 1);

    // The script ends inside the sub-prompt: the agent logs out by itself.
    let r = mailroom(
        &[
            "agent", "-e", BOB.0, "-p", BOB.1, "--imap", &imap, "--trace",
        ],
        b"imap\nnoop\n",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let out = &r.stdout;
    for want in [
        "[smtp|pop|imap|exit]>>> imap\nS: * OK ",
        "\nC: a1 LOGIN bob@example.test ****\n",
        "\nC: a2 SELECT INBOX\n",
        "\nINBOX: 1 message\n",
        "imap:INBOX>>> noop\nC: a3 NOOP\n",
        "imap:INBOX>>> \n(end of input: sending LOGOUT)\nC: a4 LOGOUT\n",
        "\nOK LOGOUT completed\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    assert!(
        !out.contains(BOB.1) && !r.stderr.contains(BOB.1),
        "the password leaked:\n{}",
        r.all()
    );
    // The server saw the LOGOUT (its IMAP trace is on in this config).
    s.wait_for(5, "LOGOUT in the server log", || {
        s.log_text().contains("LOGOUT")
    });
}

#[test]
fn a_deleted_message_survives_quit_until_expunged() {
    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    for subject in ["keep me", "me too"] {
        s.deliver(
            "x@elsewhere.test",
            &[BOB.0],
            &support::imap::msg("x@elsewhere.test", BOB.0, subject, "body"),
        );
    }
    wait_for_inbox(&s, 2);
    let r = mailroom(
        &["agent", "-e", BOB.0, "-p", BOB.1, "--imap", &imap],
        b"imap\ndelete 1\nlist\nquit\nexit\n",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let list = after(&r.stdout, "imap:INBOX>>> list", 0);
    assert_eq!(row_flags(list, "keep me"), "ND", "{}", r.all());
    assert!(r
        .stdout
        .contains("imap:INBOX>>> quit\nOK LOGOUT completed\n"));
    // LOGOUT is not EXPUNGE: both are still there, the first one still \Deleted.
    let rows = listing(&imap, "INBOX");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].subject, "keep me");
    assert!(rows[0].has("\\Deleted"), "{rows:?}");
    assert!(!rows[1].has("\\Deleted"), "{rows:?}");
    assert_eq!(s.inbox(BOB.0).len(), 2);

    // A second session: undelete, then expunge finds nothing to remove.
    let r = mailroom(
        &["agent", "-e", BOB.0, "-p", BOB.1, "--imap", &imap],
        b"imap\nundelete 1\nexpunge\nexit\n",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    for want in [
        "imap:INBOX>>> undelete 1\nmessage 1 no longer marked \\Deleted\n",
        "imap:INBOX>>> expunge\nno message was marked \\Deleted: nothing removed\n",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    assert!(listing(&imap, "INBOX").iter().all(|r| !r.has("\\Deleted")));
    assert_eq!(s.inbox(BOB.0).len(), 2);
}

#[test]
fn inbox_over_imap_lists_reads_saves_and_deletes() {
    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let attachment: Vec<u8> = (0u8..=255).cycle().take(3000).collect();
    let att = dir.path().join("data.bin");
    std::fs::write(&att, &attachment).expect("write attachment");
    send_to_bob(&s, "first", "body one", None);
    send_to_bob(&s, "Grüße", "body two", None);
    send_to_bob(&s, "with a file", "see the attachment", Some(&att));
    send_to_bob(&s, "fourth", "body four", None);
    wait_for_inbox(&s, 4);
    let stored = s.inbox(BOB.0);

    // list --json: number, size, uid, subject and flags of each message.
    let rows = listing(&imap, "INBOX");
    assert_eq!(rows.len(), 4, "{rows:?}");
    let subjects: Vec<&str> = rows.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(subjects, ["first", "Grüße", "with a file", "fourth"]);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.number as usize, i + 1, "{rows:?}");
        assert_eq!(row.size as usize, stored[i].len(), "{rows:?}");
        assert!(row.uid.parse::<u32>().is_ok_and(|u| u > 0), "{rows:?}");
        assert!(row.flags.is_empty(), "{rows:?}");
    }
    let mut uids: Vec<&str> = rows.iter().map(|r| r.uid.as_str()).collect();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), 4, "UIDs are distinct: {rows:?}");
    // The table form says the same, with the N column.
    let r = inbox(&imap, None, &["list"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.starts_with("4 messages, "), "{}", r.all());
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("   2 N ") && l.ends_with("  Grüße")),
        "{}",
        r.all()
    );

    // read --raw: the octets as stored, exactly.
    let r = inbox(&imap, None, &["read", "1", "--raw"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\r\nSubject: first\r\n"), "{}", r.all());
    assert!(r.stdout.contains("\r\n\r\nbody one"), "{}", r.all());
    assert_eq!(r.stdout.as_bytes(), &stored[0][..], "{}", r.all());
    assert_eq!(r.stdout.len() as u64, rows[0].size);

    // read (decoded) over IMAP peeks: no \Seen afterwards.
    let r = inbox(&imap, None, &["read", "2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("Subject: Grüße\n"), "{}", r.all());
    assert!(r.stdout.contains("body two"), "{}", r.all());
    let r = inbox(&imap, None, &["read", "3"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("data.bin"), "{}", r.all());
    assert!(
        listing(&imap, "INBOX").iter().all(|r| !r.has("\\Seen")),
        "read must not set \\Seen"
    );

    // save: the attachment's bytes, identical.
    let out_dir = dir.path().join("saved");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let r = inbox(
        &imap,
        None,
        &["save", "3", out_dir.to_str().expect("utf-8 path")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains(&format!(
            "saved {} (3000 bytes)",
            out_dir.join("data.bin").display()
        )),
        "{}",
        r.all()
    );
    assert_eq!(
        std::fs::read(out_dir.join("data.bin")).expect("saved file"),
        attachment
    );
    let r = inbox(
        &imap,
        None,
        &["save", "1", out_dir.to_str().expect("utf-8 path")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.stdout, "message 1 has no attachments\n", "{}", r.all());

    // A message marked \Deleted by another client must not be swept away by `delete 1 2`.
    let mut other = support::imap::Imap::login(s.addr("imap"), BOB);
    other.ok("SELECT INBOX");
    other.ok("STORE 4 +FLAGS (\\Deleted)");
    other.ok("LOGOUT");

    // delete with one bad number: refused, and nothing deleted.
    let r = inbox(&imap, None, &["delete", "1", "9"]);
    assert_eq!(r.code, 5, "{}", r.all());
    assert!(r.stderr.contains("no message 9"), "{}", r.all());
    assert!(r.stderr.contains("nothing was deleted"), "{}", r.all());
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.all());
    assert_eq!(listing(&imap, "INBOX").len(), 4);
    assert_eq!(s.inbox(BOB.0).len(), 4);

    // delete 1 2: exactly those two go.
    let r = inbox(&imap, None, &["delete", "1", "2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        r.stdout,
        "deleted 1 2 (2 messages expunged from INBOX)\n",
        "{}",
        r.all()
    );
    let left = listing(&imap, "INBOX");
    let subjects: Vec<&str> = left.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(subjects, ["with a file", "fourth"], "{left:?}");
    assert_eq!(left[0].uid, rows[2].uid);
    assert!(!left[0].has("\\Deleted"), "{left:?}");
    assert!(left[1].has("\\Deleted"), "{left:?}");

    // A folder that does not exist: the server's NONEXISTENT refusal, exit 5.
    let r = inbox(&imap, Some("Nope"), &["list"]);
    assert_eq!(r.code, 5, "{}", r.all());
    assert!(
        r.stderr.starts_with("mailroom: the IMAP server "),
        "{}",
        r.all()
    );
    assert!(r.stderr.contains("NONEXISTENT"), "{}", r.all());
    assert!(r.stdout.is_empty(), "{}", r.all());
}

#[test]
fn cannot_connect_and_wrong_password() {
    let addr = format!("127.0.0.1:{}", closed_port());
    let r = inbox(&addr, None, &["list"]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr.starts_with(&format!(
            "mailroom: cannot connect to the IMAP server {addr}: "
        )),
        "{}",
        r.all()
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.all());
    assert!(r.stdout.is_empty(), "{}", r.all());
    // The agent says the same and goes on to the next command; the exit code stays 3.
    let r = mailroom(
        &["agent", "-e", BOB.0, "-p", BOB.1, "--imap", &addr],
        b"imap\nexit\n",
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr
            .contains(&format!("cannot connect to the IMAP server {addr}: ")),
        "{}",
        r.all()
    );
    assert!(
        r.stdout
            .contains("[smtp|pop|imap|exit]>>> imap\n[smtp|pop|imap|exit]>>> exit\n"),
        "{}",
        r.all()
    );

    // Accepted by the kernel (the listen backlog) but never greeted: a timeout is exit 3 too.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    let r = inbox(&silent_addr, None, &["--timeout", "1", "list"]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert_eq!(
        r.stderr,
        format!("mailroom: the IMAP server {silent_addr} did not answer in time (waiting for the greeting (* OK))\n"),
        "{}",
        r.all()
    );
    drop(silent);

    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    let r = mailroom(
        &[
            "inbox", "-e", BOB.0, "-p", "Sesame42", "--imap", &imap, "list",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(
        r.stderr.starts_with(&format!(
            "mailroom: the IMAP server {imap} refused the login of bob@example.test (LOGIN): NO "
        )),
        "{}",
        r.all()
    );
    let r = mailroom(
        &[
            "agent", "-e", BOB.0, "-p", "Sesame42", "--imap", &imap, "--trace",
        ],
        b"imap\nexit\n",
        &[],
    );
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stderr.contains("refused the login"), "{}", r.all());
    assert!(
        r.stdout.contains("C: a1 LOGIN bob@example.test ****\n"),
        "{}",
        r.all()
    );
    assert!(!r.stdout.contains("Sesame42"), "{}", r.all());
    assert!(!r.stdout.contains("imap:INBOX>>>"), "{}", r.all());
}

/// A fake IMAP server that logs bob in, opens INBOX (1 message) and closes the connection
/// in the middle of the FETCH literal.
fn closes_mid_literal() -> (String, std::thread::JoinHandle<()>) {
    fake_server(vec![
        Send("* OK [CAPABILITY IMAP4rev1 IMAP4rev2] fake ready\r\n"),
        Read,
        Send("a1 OK [CAPABILITY IMAP4rev1 IMAP4rev2] welcome\r\n"),
        Read,
        Send("* 1 EXISTS\r\n* FLAGS (\\Seen \\Deleted)\r\na2 OK [READ-WRITE] selected\r\n"),
        Read,
        Send("* 1 FETCH (BODY[] {400}\r\nFrom: <x@elsewhere.test>\r\nSubject: cut\r\n"),
        Sleep(100),
        Close,
    ])
}

#[test]
fn connection_closed_in_the_middle_of_a_literal() {
    let (addr, h) = closes_mid_literal();
    let r = inbox(&addr, None, &["read", "1"]);
    h.join().expect("fake server");
    assert_eq!(r.code, 6, "{}", r.all());
    assert_eq!(
        r.stderr,
        format!("mailroom: the IMAP server {addr} closed the connection unexpectedly\n"),
        "{}",
        r.all()
    );
    assert!(!r.stdout.contains("Subject: cut"), "{}", r.all());

    // The same in the sub-prompt: the session is over, the agent goes on, the code is 6.
    let (addr, h) = closes_mid_literal();
    let r = mailroom(
        &["agent", "-e", BOB.0, "-p", BOB.1, "--imap", &addr],
        b"imap\nread 1\nexit\n",
        &[],
    );
    h.join().expect("fake server");
    assert_eq!(r.code, 6, "{}", r.all());
    assert!(r.stderr.contains("closed the connection"), "{}", r.all());
    assert!(
        r.stdout.contains(
            "imap:INBOX>>> read 1\n(the IMAP session is over; type imap to log in again)\n[smtp|pop|imap|exit]>>> exit\n"
        ),
        "{}",
        r.all()
    );
}

#[test]
fn a_bye_greeting_is_a_refused_connection() {
    let (addr, h) = fake_server(vec![Send("* BYE busy\r\n"), Sleep(200), Close]);
    let r = inbox(&addr, None, &["list"]);
    h.join().expect("fake server");
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stderr.starts_with(&format!(
            "mailroom: the IMAP server {addr} refused the connection: "
        )),
        "{}",
        r.all()
    );
    assert_eq!(
        r.stderr,
        format!("mailroom: the IMAP server {addr} refused the connection: BYE busy\n"),
        "{}",
        r.all()
    );
    assert!(r.stdout.is_empty(), "{}", r.all());
}

// With no folder selected (after a failed `select`: the server deselects, RFC 9051 §6.3.2),
// `list` says so instead of listing an unnamed empty folder.
#[test]
fn list_without_a_selected_folder_says_so() {
    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    let r = mailroom(
        &["agent", "-e", BOB.0, "-p", BOB.1, "--imap", &imap],
        b"imap\nselect Nope\nlist\nexit\n",
        &[],
    );
    assert!(
        r.stdout
            .contains("imap:INBOX>>> select Nope\nNO [NONEXISTENT]"),
        "{}",
        r.all()
    );
    let list = after(&r.stdout, "imap>>> list", 0);
    assert!(!list.starts_with("0 messages in \n"), "{}", r.all());
    assert!(
        format!("{list}{}", r.stderr)
            .to_lowercase()
            .contains("select"),
        "{}",
        r.all()
    );
}

// Deleting the selected folder leaves nothing selected, on the server and in the prompt.
#[test]
fn deleting_the_selected_folder_deselects_it() {
    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    let r = mailroom(
        &["agent", "-e", BOB.0, "-p", BOB.1, "--imap", &imap],
        b"imap\ncreate Tmp\nselect Tmp\nrmfolder Tmp\nexit\n",
        &[],
    );
    assert!(
        r.stdout
            .contains("imap:Tmp>>> rmfolder Tmp\nOK DELETE completed\n"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("OK DELETE completed\nimap>>> exit\n"),
        "{}",
        r.all()
    );
}

/// A server config without an IMAP listener: the agent still starts (you can send and read
/// over POP3), and `imap` says what is missing instead of failing at start.
#[test]
fn a_config_without_imap_still_starts_and_imap_says_why() {
    let s = TestServer::start();
    let config = s.config_path.display().to_string();
    let r = mailroom(
        &[
            "--config",
            &config,
            "agent",
            "-e",
            BOB.0,
            "-p",
            BOB.1,
            "--smtp",
            &s.submission().to_string(),
            "--pop3",
            &s.pop3().to_string(),
        ],
        b"imap\npop\nstat\nquit\nexit\n",
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains(", IMAP none\n"), "{}", r.all());
    assert!(
        r.stderr
            .contains("has no listen.imap; give --imap HOST:PORT"),
        "{}",
        r.all()
    );
    // POP3 still works in the same run.
    assert!(
        r.stdout.contains("pop>>> stat\n0 messages, 0 octets"),
        "{}",
        r.all()
    );
}

/// Folder names that are not plain ASCII, and one with `&`: the agent sends them in modified
/// UTF-7 (RFC 3501 §5.1.3) and shows them decoded; an IMAP4rev1 client sees the same folders
/// under their encoded names.
#[test]
fn folder_names_beyond_ascii_go_in_modified_utf7() {
    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    send_to_bob(&s, "Grüße", "Hallo", None);
    wait_for_inbox(&s, 1);
    let script = "imap\ncreate Entwürfe\ncreate R&D\ncopy 1 Entwürfe\nfolders\n\
                  select Entwürfe\nlist\nrmfolder R&D\nquit\nexit\n";
    let r = mailroom(
        &[
            "agent", "-e", BOB.0, "-p", BOB.1, "--imap", &imap, "--trace",
        ],
        script.as_bytes(),
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let out = &r.stdout;
    for want in [
        "C: a3 CREATE Entw&APw-rfe\n",
        "C: a4 CREATE R&-D\n",
        "imap:INBOX>>> copy 1 Entwürfe\n",
        "copied 1 to Entwürfe\n",
        "imap:INBOX>>> select Entwürfe\n",
        "Entwürfe: 1 message\n",
        "imap:Entwürfe>>> list\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    let folders = after(out, "imap:INBOX>>> folders", 0);
    let shown: Vec<&str> = folders
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert!(shown.contains(&"Entwürfe"), "{folders}");
    assert!(shown.contains(&"R&D"), "{folders}");
    // An IMAP4rev1 client (no ENABLE) lists the encoded names.
    let mut i = support::imap::Imap::login(s.addr("imap"), BOB);
    let names = i.ok("LIST \"\" *").join("\n");
    assert!(names.contains("Entw&APw-rfe"), "{names}");
    assert!(!names.contains("R&-D"), "R&D was deleted: {names}");
}

/// `idle`: the agent waits with IMAP IDLE and shows a message that arrives meanwhile as it
/// happens, then ends the wait with DONE.
#[test]
fn idle_shows_new_mail_as_it_arrives() {
    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    send_to_bob(&s, "first", "one", None);
    wait_for_inbox(&s, 1);
    let sender = {
        let smtp = s.smtp();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(1000));
            let mut c = Client::connect(smtp);
            c.expect_code(220);
            c.cmd("EHLO test.example", 250);
            c.cmd(&format!("MAIL FROM:<{}>", ALICE.0), 250);
            c.cmd(&format!("RCPT TO:<{}>", BOB.0), 250);
            c.cmd("DATA", 354);
            c.send_raw(b"Subject: second\r\n\r\ntwo\r\n");
            c.cmd(".", 250);
        })
    };
    let r = mailroom(
        &[
            "agent", "-e", BOB.0, "-p", BOB.1, "--imap", &imap, "--trace",
        ],
        b"imap\nidle 3\nidle 0\nquit\nexit\n",
        &[],
    );
    sender.join().expect("sender");
    // `idle 0` is refused locally: exit code 1.
    assert_eq!(r.code, 1, "{}", r.all());
    let out = &r.stdout;
    for want in [
        "imap:INBOX>>> idle 3\nwaiting up to 3 s for news (IDLE, RFC 2177)",
        "C: a3 IDLE\n",
        "S: + ",
        "* 2 EXISTS: the folder has 2 messages now\n",
        "C: DONE\n",
        "S: a3 OK ",
        "(INBOX now has 2 messages; it had 1)\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    assert!(
        r.stderr
            .contains("'0' is not a number of seconds from 1 to 1740"),
        "{}",
        r.all()
    );
}

/// `append FILE [FOLDER]`: a message file (LF line ends, as an editor writes them) is stored
/// with APPEND as a literal, CRLF on the wire and in the store.
#[test]
fn append_stores_a_message_file() {
    let s = support::imap::start();
    let imap = s.addr("imap").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("draft.eml");
    std::fs::write(
        &file,
        "From: bob@example.test\nSubject: offline draft\n\nwritten on the train\n",
    )
    .expect("write");
    let script = format!(
        "imap\nappend {f} Drafts\nselect Drafts\nlist\nraw 1\nappend {f}/missing\nquit\nexit\n",
        f = file.display()
    );
    let r = mailroom(
        &[
            "agent", "-e", BOB.0, "-p", BOB.1, "--imap", &imap, "--trace",
        ],
        script.as_bytes(),
        &[],
    );
    // The missing file is a local error: exit code 1, and the session went on.
    assert_eq!(r.code, 1, "{}", r.all());
    let out = &r.stdout;
    for want in [
        "C: a3 APPEND Drafts () {",
        "C: Subject: offline draft\n",
        "OK [APPENDUID ",
        "1 message in Drafts\n",
        "Subject: offline draft\r\n\r\nwritten on the train\r\n",
        "OK LOGOUT completed",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    assert!(r.stderr.contains("cannot read "), "{}", r.all());
}
