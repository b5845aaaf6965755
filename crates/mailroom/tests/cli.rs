//! The command line: accounts, config errors, the embedded default.
mod support;
use std::process::{Command, Stdio};
use support::cli::serve_refuses;
use support::*;

#[test]
fn user_add_list_passwd_remove() {
    let s = TestServer::start();
    let out = s.cli(&["user", "add", "dave@lab.test"], "davepw\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.cli(&["user", "list"], "");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.lines().any(|l| l == "dave@lab.test"), "{list}");
    assert!(list.lines().any(|l| l == ALICE.0), "{list}");
    // Adding the user made lab.test local: the running server accepts mail for it.
    s.deliver("x@far.test", &["dave@lab.test"], "Subject: hi dave\n\nx\n");
    assert_eq!(s.inbox("dave@lab.test").len(), 1);
    // And the password works for AUTH.
    smtp::login(s.submission(), ("dave@lab.test", "davepw"));
    // Duplicate add fails with a helpful message.
    let out = s.cli(&["user", "add", "dave@lab.test"], "x\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // passwd changes it.
    let out = s.cli(&["user", "passwd", "dave@lab.test"], "newpw\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    smtp::login(s.submission(), ("dave@lab.test", "newpw"));
    // Passwords are stored as argon2 hashes, never in clear.
    let db = std::fs::read(s.dir.path().join("data/mailroom.db")).unwrap();
    assert!(!db.windows(5).any(|w| w == b"newpw"));
    // remove.
    let out = s.cli(&["user", "remove", "dave@lab.test"], "");
    assert!(out.status.success());
    let out = s.cli(&["user", "list"], "");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("dave@"));
    let out = s.cli(&["user", "remove", "dave@lab.test"], "");
    assert!(!out.status.success());
    let out = s.cli(&["user", "add", "not-an-address"], "pw\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address"));
}

/// A `[[accounts]]` entry is applied again at every start: the CLI says so when it removes
/// such an account or changes its password (an account made with `user add` gets no warning).
#[test]
fn cli_warns_that_config_accounts_come_back() {
    let s = TestServer::start();
    let out = s.cli(&["user", "passwd", ALICE.0], "other-pw\n");
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning") && err.contains("[[accounts]]") && err.contains("next start"),
        "{err}"
    );
    let out = s.cli(&["user", "remove", ALICE.0], "");
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning") && err.contains("creates it again"),
        "{err}"
    );
    let out = s.cli(&["user", "add", "dave@lab.test"], "davepw\n");
    assert!(out.status.success(), "{out:?}");
    let out = s.cli(&["user", "remove", "dave@lab.test"], "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{out:?}"
    );
}

/// `mailroom compact` gives the space of deleted mail back and keeps what is left.
#[test]
fn compact_gives_space_back_and_keeps_mail() {
    let s = TestServer::start();
    let body = format!("Subject: big\n\n{}\n", "y".repeat(300 * 1024));
    for _ in 0..20 {
        s.deliver("x@far.test", &[ALICE.0], &body);
    }
    s.deliver("x@far.test", &[ALICE.0], "Subject: keep me\n\nkept\n");
    let mut p = Client::connect(s.pop3());
    let mut ok = |line: Option<&str>| {
        if let Some(line) = line {
            p.send(line);
        }
        let answer = p.line().expect("POP3 answer");
        assert!(answer.starts_with("+OK"), "{line:?}: {answer}");
    };
    ok(None);
    ok(Some(&format!("USER {}", ALICE.0)));
    ok(Some(&format!("PASS {}", ALICE.1)));
    for n in 1..=20 {
        ok(Some(&format!("DELE {n}")));
    }
    ok(Some("QUIT"));
    let out = s.cli(&["compact"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("compacted the store"), "{text}");
    let size = |n: &str| {
        std::fs::metadata(s.dir.path().join("data").join(n))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let left = size("mailroom.db") + size("mailroom.db-wal");
    assert!(
        left < 2 << 20,
        "6 MiB delivered, 20 of 21 messages deleted: {left} octets left"
    );
    let inbox = s.inbox(ALICE.0);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let out = s.cli(&["check"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn config_errors_name_the_key_and_the_file() {
    let cases = [
        (
            "hostname = \"x\"\nlisten_smtp = \"127.0.0.1:25\"\n",
            "listen_smtp",
        ),
        ("[listen]\nsmtp = \"not an address\"\n", "smtp"),
        ("[limits]\nmax_line_length = 80\n", "limits.max_line_length"),
        (
            "[[accounts]]\naddress = \"alice\"\npassword = \"x\"\n",
            "accounts[0].address",
        ),
        ("[limits]\nidle_timeout = \"soon\"\n", "idle_timeout"),
    ];
    for (text, key) in cases {
        let err = serve_refuses(text);
        assert!(
            err.contains("bad.toml") && err.contains(key),
            "{text}: {err}"
        );
    }
}

#[test]
fn embedded_default_serves_on_documented_ports_with_local_data_dir() {
    // Runs in a fresh directory, as a person following the README would. The default ports
    // may be taken on a busy machine; then the error must say which address.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .arg("serve")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(l)) = lines.next() {
        let done = l.starts_with("ready:");
        seen.push(l);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    if seen.iter().any(|l| l.starts_with("ready:")) {
        let text = seen.join("\n");
        for want in [
            "smtp 127.0.0.1:24025",
            "submission 127.0.0.1:24587",
            "pop3 127.0.0.1:24110",
        ] {
            assert!(text.contains(&format!("listening: {want}")), "{text}");
        }
        assert!(text.contains("mailroom-data"), "{text}");
        assert!(dir.path().join("mailroom-data/mailroom.db").exists());
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cannot listen") && err.contains("127.0.0.1:"),
            "{err}"
        );
    }
}
