//! What Dovecot's imaptest checks across concurrent sessions (issue 15): keywords announced
//! before they are shown, FETCH of a message another session just expunged, and imaptest's
//! own stress mode run against the server with zero `Error:` lines.
mod support;

use support::imap::Imap;
use support::*;

/// RFC 9051 §7.3.5: a keyword appears in a FETCH FLAGS response only after FLAGS (and
/// PERMANENTFLAGS) announced it to the session: for the session that set it, and for another
/// session that learns of it at its next command.
#[test]
fn a_new_keyword_is_announced_before_any_fetch_shows_it() {
    let s = support::imap::start();
    s.deliver("x@far.test", &[ALICE.0], "Subject: k\n\nhi\n");
    let mut a = Imap::login(s.addr("imap"), ALICE);
    let mut b = Imap::login(s.addr("imap"), ALICE);
    a.ok("SELECT INBOX");
    b.ok("SELECT INBOX");
    let check = |lines: &[String], who: &str| {
        let flags = lines
            .iter()
            .position(|l| l.starts_with("* FLAGS (") && l.contains("$Project"));
        let permanent = lines
            .iter()
            .position(|l| l.contains("[PERMANENTFLAGS (") && l.contains("$Project"));
        let fetch = lines
            .iter()
            .position(|l| l.contains(" FETCH (") && l.contains("$Project"));
        match (flags, permanent, fetch) {
            (Some(f), Some(p), Some(x)) => assert!(f < x && p < x, "{who}: {lines:?}"),
            _ => panic!("{who}: keyword not announced before FETCH: {lines:?}"),
        }
    };
    let lines = b.ok("STORE 1 +FLAGS ($Project)");
    check(&lines, "the session that stored it");
    let lines = a.ok("NOOP");
    check(&lines, "another session");
    // Announced once: a later change with the same keyword sends no new FLAGS.
    let lines = b.ok("STORE 1 +FLAGS (\\Flagged)");
    assert!(!lines.iter().any(|l| l.starts_with("* FLAGS")), "{lines:?}");
}

/// RFC 2180 §4.1, RFC 9051 §7.5.1: a FETCH of a message that another session expunged (and
/// this one was not told of yet) is never a store error; the message is left out of the
/// answer and the command completes.
#[test]
fn fetch_of_a_message_expunged_elsewhere_completes() {
    let s = support::imap::start();
    for i in 0..3 {
        s.deliver(
            "x@far.test",
            &[ALICE.0],
            &format!("Subject: m{i}\n\nbody {i}\n"),
        );
    }
    for _ in 0..20 {
        let mut a = Imap::login(s.addr("imap"), ALICE);
        let mut b = Imap::login(s.addr("imap"), ALICE);
        a.ok("SELECT INBOX");
        b.ok("SELECT INBOX");
        b.ok("STORE 1 +FLAGS (\\Deleted)");
        b.ok("EXPUNGE");
        let (tagged, untagged) = a.cmd("FETCH 1:* (BODY.PEEK[] FLAGS)");
        assert!(tagged.contains(" OK "), "{tagged} {untagged:?}");
        a.ok("LOGOUT");
        s.deliver("x@far.test", &[ALICE.0], "Subject: again\n\nbody\n");
    }
    assert!(!s.log_text().contains("no such rowid"), "{}", s.log_text());
}

/// Dovecot's imaptest in stress mode: many sessions run a random mix of commands on one
/// mailbox and check every reply for consistency across sessions. Any `Error:` line is a bug.
/// CI runs 10 clients for 10 s with and without logouts; by hand, e.g.
/// `IMAPTEST_SECS=60 IMAPTEST_CLIENTS=50 cargo test -p mailroom --test imap_consistency stress`.
#[test]
fn imaptest_stress_reports_no_errors() {
    let imaptest = imaptest_binary();
    let s = support::imap::start_with(
        "[[accounts]]\naddress = \"tester@example.test\"\npassword = \"secret\"\n",
    );
    let tests = imaptest.parent().expect("src dir").join("tests");
    let secs = std::env::var("IMAPTEST_SECS").unwrap_or_else(|_| "10".into());
    let clients = std::env::var("IMAPTEST_CLIENTS").unwrap_or_else(|_| "10".into());
    let port = s.addr("imap").port();
    for logout in ["logout=0", "logout=100"] {
        let out = std::process::Command::new(&imaptest)
            .args([
                "host=127.0.0.1".to_string(),
                format!("port={port}"),
                "user=tester@example.test".into(),
                "pass=secret".into(),
                format!("mbox={}", tests.join("default.mbox").display()),
                format!("clients={clients}"),
                format!("secs={secs}"),
                logout.into(),
            ])
            .output()
            .expect("run imaptest");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error:")).collect();
        assert!(
            errors.is_empty(),
            "imaptest {logout}: {} errors:\n{}",
            errors.len(),
            errors.join("\n")
        );
        assert!(text.contains("Logi"), "imaptest did not run: {text}");
    }
    assert!(!s.log_text().contains(" ERROR "), "{}", s.log_text());
}

/// The imaptest binary: `IMAPTEST` if set, else built (once) with the build script of the
/// shared imaptest source beside the repository, as `.ci/run` does.
fn imaptest_binary() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("IMAPTEST") {
        return p.into();
    }
    let root = repo_root();
    let built = root.join("target/imaptest/imaptest/src/imaptest");
    if built.exists() {
        return built;
    }
    let script = root.join("../shared/imaptest/build.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(root.join("target/imaptest"))
        .output()
        .expect("run the imaptest build script");
    assert!(
        out.status.success() && built.exists(),
        "building imaptest failed (run `bash .ci/run`, which installs what it needs):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    built
}

/// RFC 3501 §2.3.2: `\Recent` belongs to the first read-write session told of a message.
#[test]
fn recent_goes_to_the_first_session_and_only_to_it() {
    let s = support::imap::start();
    for i in 0..2 {
        s.deliver(
            "x@far.test",
            &[ALICE.0],
            &format!("Subject: r{i}\n\nbody\n"),
        );
    }
    // Before any session: STATUS counts both; EXAMINE sees them recent and takes nothing.
    let mut e = Imap::login(s.addr("imap"), ALICE);
    let (_, u) = e.cmd("STATUS INBOX (RECENT)");
    assert_eq!(u, vec!["* STATUS \"INBOX\" (RECENT 2)"]);
    let u = e.ok("EXAMINE INBOX");
    assert!(u.contains(&"* 2 RECENT".to_string()), "{u:?}");
    // The first SELECT takes them.
    let mut a = Imap::login(s.addr("imap"), ALICE);
    let u = a.ok("SELECT INBOX");
    assert!(u.contains(&"* 2 RECENT".to_string()), "{u:?}");
    let u = a.ok("FETCH 1 FLAGS");
    assert_eq!(u, vec!["* 1 FETCH (FLAGS (\\Recent))"]);
    a.ok("STORE 1 +FLAGS.SILENT (\\Seen)");
    assert_eq!(a.ok("SEARCH RECENT"), vec!["* SEARCH 1 2"]);
    assert_eq!(a.ok("SEARCH NEW"), vec!["* SEARCH 2"]);
    assert_eq!(a.ok("SEARCH OLD"), vec!["* SEARCH"]);
    // A second session sees none recent.
    let mut b = Imap::login(s.addr("imap"), ALICE);
    let u = b.ok("SELECT INBOX");
    assert!(u.contains(&"* 0 RECENT".to_string()), "{u:?}");
    assert_eq!(b.ok("SEARCH OLD"), vec!["* SEARCH 1 2"]);
    let (_, u) = e.cmd("STATUS INBOX (RECENT)");
    assert_eq!(u[0], "* STATUS \"INBOX\" (RECENT 0)", "{u:?}");
    // New mail: recent for whichever session is told first, with RECENT after EXISTS.
    s.deliver("x@far.test", &[ALICE.0], "Subject: r2\n\nbody\n");
    assert_eq!(b.ok("NOOP"), vec!["* 3 EXISTS", "* 1 RECENT"]);
    assert_eq!(a.ok("NOOP"), vec!["* 3 EXISTS", "* 2 RECENT"]);
    assert_eq!(b.ok("SEARCH RECENT"), vec!["* SEARCH 3"]);
    assert_eq!(a.ok("SEARCH RECENT"), vec!["* SEARCH 1 2"]);
    // IMAP4rev2 has no \Recent.
    let mut r = Imap::login(s.addr("imap"), ALICE);
    r.ok("ENABLE IMAP4rev2");
    s.deliver("x@far.test", &[ALICE.0], "Subject: r3\n\nbody\n");
    let u = r.ok("SELECT INBOX");
    assert!(!u.iter().any(|l| l.contains("RECENT")), "{u:?}");
    let u = r.ok("FETCH 4 FLAGS");
    assert_eq!(u, vec!["* 4 FETCH (FLAGS ())"]);
}

/// A MOVE into the selected mailbox itself gives the message a new UID (as Dovecot does;
/// RFC 6851 does not forbid it), with COPYUID and the EXPUNGE of the old one.
#[test]
fn move_into_the_same_mailbox_renumbers_the_message() {
    let s = support::imap::start();
    s.deliver("x@far.test", &[ALICE.0], "Subject: m\n\nbody\n");
    let mut a = Imap::login(s.addr("imap"), ALICE);
    a.ok("SELECT INBOX");
    let u = a.ok("UID MOVE 1 INBOX");
    assert!(
        u[0].starts_with("* OK [COPYUID ") && u[0].contains(" 1 2]"),
        "{u:?}"
    );
    assert!(u.contains(&"* 1 EXPUNGE".to_string()), "{u:?}");
    assert_eq!(
        a.ok("UID SEARCH ALL").last().map(String::as_str),
        Some("* SEARCH 2")
    );
}

/// imaptest's scripted test groups that do not pass yet, each with what is missing. The
/// scripted test below runs every other group and fails on any failed command; a group that
/// starts passing must leave this list (the test says so).
const SCRIPTED_KNOWN_FAILING: &[(&str, &str)] = &[];

/// Dovecot's imaptest scripted suite (the conformance tests a Dovecot release passes): every
/// group but the known-failing ones above must pass with zero failed commands.
#[test]
fn imaptest_scripted_suite_passes() {
    let imaptest = imaptest_binary();
    let s = support::imap::start_with(
        "[[accounts]]\naddress = \"tester@example.test\"\npassword = \"secret\"\n",
    );
    let source = imaptest.parent().expect("src dir").join("tests");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut groups = 0;
    for entry in std::fs::read_dir(&source).expect("imaptest tests") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let group = name.strip_suffix(".mbox").unwrap_or(name);
        if !path.is_file() || SCRIPTED_KNOWN_FAILING.iter().any(|(g, _)| *g == group) {
            continue;
        }
        if !name.ends_with(".mbox") {
            groups += 1;
        }
        std::fs::copy(&path, dir.path().join(name)).expect("copy a test");
    }
    let run = |test_dir: &std::path::Path| {
        let out = std::process::Command::new(&imaptest)
            .args([
                "host=127.0.0.1".to_string(),
                format!("port={}", s.addr("imap").port()),
                "user=tester@example.test".into(),
                "pass=secret".into(),
                format!("test={}", test_dir.display()),
            ])
            .output()
            .expect("run imaptest");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let text = run(dir.path());
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("test groups:") || l.contains("individual commands failed"))
        .collect();
    // The totals, for `--nocapture` (which groups ran depends on the capabilities).
    eprintln!("{}", summary.join("\n"));
    assert!(
        summary.iter().any(|l| l.contains(" 0 failed")),
        "imaptest scripted groups failed:\n{text}"
    );
    for l in summary
        .iter()
        .filter(|l| l.contains("individual commands failed"))
    {
        assert!(
            l.contains(": 0/"),
            "imaptest scripted commands failed: {l}\n{text}"
        );
    }
    let ran: usize = summary
        .iter()
        .find_map(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        ran >= groups.min(60),
        "imaptest ran {ran} of {groups} groups:\n{text}"
    );
    // A known failure that passes now must leave the list.
    for (group, why) in SCRIPTED_KNOWN_FAILING {
        let one = tempfile::tempdir().expect("tempdir");
        for name in [
            group.to_string(),
            format!("{group}.mbox"),
            "default.mbox".into(),
        ] {
            let from = source.join(&name);
            if from.is_file() {
                std::fs::copy(&from, one.path().join(&name)).expect("copy a test");
            }
        }
        let text = run(one.path());
        assert!(
            text.contains("1 failed"),
            "imaptest group {group} passes now: take it off SCRIPTED_KNOWN_FAILING ({why})\n{text}"
        );
    }
    assert!(!s.log_text().contains(" ERROR "), "{}", s.log_text());
}
