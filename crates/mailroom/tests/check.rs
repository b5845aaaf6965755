//! `mailroom check`: the report a person reads and the exit code a script reads.
mod support;
use support::*;

fn run(s: &TestServer, args: &[&str]) -> (Option<i32>, String, String) {
    let out = s.cli(args, "");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_beside_a_running_server_then_on_a_damaged_store() {
    let mut s = TestServer::start();
    for i in 0..5 {
        s.deliver(
            "x@far.test",
            &[ALICE.0, BOB.0],
            &format!("Subject: {i}\n\nhello {i}\n"),
        );
    }
    let (code, out, err) = run(&s, &["check"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.starts_with("checking "), "{out}");
    assert!(out.contains("(schema version "), "{out}");
    for name in ["integrity", "usage", "uids", "queue", "permissions"] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with("ok") && l.contains(name)),
            "{name} ok in:\n{out}"
        );
    }
    assert!(
        out.contains("3 account(s), 18 mailbox(es), 10 mailbox entries, 5 stored message(s)"),
        "{out}"
    );
    assert!(
        out.trim_end().ends_with("no fault found (0 warning(s))"),
        "{out}"
    );

    // Damage it by hand while the server is down: a usage counter off, a message's size.
    s.terminate();
    {
        let c = rusqlite::Connection::open(s.dir.path().join("data/mailroom.db")).unwrap();
        c.execute_batch(
            "UPDATE accounts SET used = used + 100 WHERE address = 'bob@example.test';
             UPDATE message_info SET size = size - 1 WHERE message_id = (SELECT MIN(message_id) FROM message_info);",
        )
        .unwrap();
    }
    let (code, out, _) = run(&s, &["check"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("FAULT") && l.contains("usage")),
        "{out}"
    );
    assert!(
        out.contains("fault: bob@example.test: accounts.used is"),
        "{out}"
    );
    assert!(out.contains("message-sizes"), "{out}");
    assert!(out.contains("fault(s)"), "{out}");
    assert!(out.contains("keep a copy of the data directory"), "{out}");

    // No store there: nothing checked, exit code 2.
    let (code, _, err) = run(
        &s,
        &[
            "--data-dir",
            &s.dir.path().join("nowhere").display().to_string(),
            "check",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cannot check") && err.contains("nothing was checked"),
        "{err}"
    );
    assert!(
        !s.dir.path().join("nowhere").exists(),
        "check creates nothing"
    );
}
