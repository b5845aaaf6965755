//! The interactive agent, `[smtp|pop|imap|exit]>>>`: driven through a pipe (a lab's batch script)
//! and once through a pseudo-terminal (password asked without echo, line editing).
mod support;

use support::cli::*;
use support::*;

#[test]
fn a_batch_script_sends_reads_and_deletes() {
    let s = TestServer::start();
    let (smtp, pop) = (s.submission().to_string(), s.pop3().to_string());
    let dir = tempfile::tempdir().expect("tempdir");
    let att = dir.path().join("photo.png");
    std::fs::write(&att, [0x89u8, b'P', b'N', b'G', 0, 1, 2, 3]).expect("write");
    // alice's script: send bob a message with a Cc, a dotted line and an attachment.
    let script = format!(
        "smtp\nbob@example.test\n\nHallo Bob, schöne Grüße\n~c carol@example.test\nFirst line.\n..not the end\n~a {}\nLast line.\n.\nexit\n",
        att.display()
    );
    let r = mailroom(
        &["agent", "-e", ALICE.0, "--smtp", &smtp, "--pop3", &pop],
        script.as_bytes(),
        &[("MAILROOM_PASSWORD", ALICE.1)],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let out = &r.stdout;
    for want in [
        "[smtp|pop|imap|exit]>>> smtp\n",
        "To: bob@example.test\n",
        "  Cc: carol@example.test\n",
        "Subject: Hallo Bob, schöne Grüße\n",
        "attached photo.png (image/png, 8 bytes)",
        &format!("connected to {smtp}: 220 "),
        "logged in as alice@example.test",
        "MAIL FROM:<alice@example.test> -> 250 2.1.0 ",
        "RCPT TO:<bob@example.test> -> 250 2.1.5 ",
        "RCPT TO:<carol@example.test> -> 250 2.1.5 ",
        "DATA -> 250 2.0.0 ",
        "sent to bob@example.test\n",
        "sent to carol@example.test\n",
        "[smtp|pop|imap|exit]>>> exit\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    assert_eq!(s.inbox(BOB.0).len(), 1);
    assert_eq!(s.inbox(CAROL.0).len(), 1);

    // bob's script: read it over POP3, decoded, then delete it.
    let script =
        "pop\nstat\nlist\nuidl\ntop 1 0\nretr 1\nretr 7\ndele 1\nrset\nnoop\ndele 1\nquit\nexit\n";
    let r = mailroom(
        &[
            "agent", "-e", BOB.0, "-p", BOB.1, "--smtp", &smtp, "--pop3", &pop, "--trace",
        ],
        script.as_bytes(),
        &[],
    );
    // retr 7 was refused: the exit code says a command failed.
    assert_eq!(r.code, 5, "{}", r.all());
    let out = &r.stdout;
    for want in [
        "[smtp|pop|imap|exit]>>> pop\n",
        "C: USER bob@example.test\n",
        "C: PASS ****\n",
        "+OK bob@example.test has 1 message",
        "pop>>> stat\n",
        "1 message, ",
        "pop>>> retr 1\n",
        "From: alice@example.test\n",
        "To: bob@example.test\n",
        "Cc: carol@example.test\n",
        "Subject: Hallo Bob, schöne Grüße\n",
        "First line.\n..not the end\nLast line.\n",
        "1. photo.png (image/png, 8 bytes)",
        "pop>>> retr 7\n",
        "-ERR ",
        "pop>>> dele 1\nC: DELE 1\nS: +OK message 1 deleted",
        "pop>>> quit\n",
        "C: QUIT\n",
        "+OK bob@example.test signing off",
        "[smtp|pop|imap|exit]>>> exit\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    // From a pipe the refused command's reply is on stderr too.
    assert!(
        r.stderr
            .contains("mailroom: the POP3 server refused 'retr 7': -ERR "),
        "{}",
        r.all()
    );
    assert!(!out.contains(BOB.1), "{}", r.all());
    assert!(s.inbox(BOB.0).is_empty(), "QUIT removed the message");
}

#[test]
fn end_of_input_ends_the_pop_session_with_quit() {
    let s = TestServer::start();
    s.deliver("x@elsewhere.test", &[BOB.0], "Subject: one\r\n\r\nbody\r\n");
    let r = mailroom(
        &[
            "agent",
            "-e",
            BOB.0,
            "-p",
            BOB.1,
            "--pop3",
            &s.pop3().to_string(),
        ],
        b"pop\ndele 1\n",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("(end of input: sending QUIT)"),
        "{}",
        r.all()
    );
    assert!(s.inbox(BOB.0).is_empty());
    // An unknown command is named and the agent goes on.
    let r = mailroom(&["agent", "-e", BOB.0, "-p", BOB.1], b"hello\nexit\n", &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("unknown command 'hello': type smtp, pop, imap or exit"),
        "{}",
        r.all()
    );
}

#[test]
fn the_interactive_prompt_on_a_pseudo_terminal() {
    let s = TestServer::start();
    s.deliver(
        "x@elsewhere.test",
        &[BOB.0],
        "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nHello over a tty\r\n",
    );
    // Python's pty module plays the person at the keyboard.
    let (smtp, pop) = (s.submission().to_string(), s.pop3().to_string());
    let args = [
        "agent",
        "-e",
        "bob@example.test",
        "--smtp",
        &smtp,
        "--pop3",
        &pop,
    ];
    let script = pty_session_script(
        &args,
        r#"
expect("Password for bob@example.test: ")
type_password("hunter2")
out = expect("[smtp|pop|imap|exit]>>> ")
assert "hunter2" not in out, "the password was echoed: %r" % out
# Line editing: a typo fixed with backspace.
send("popx\x7f\r")
out = expect("pop>>> ")
assert "+OK bob@example.test has 1 message" in out, out
send("retr 1\r")
out = expect("pop>>> ")
assert "Subject: Grüße" in out, out
assert "Hello over a tty" in out, out
send("quit\r")
out = expect("[smtp|pop|imap|exit]>>> ")
assert "signing off" in out, out
# History (shared by both prompts): three times up is "pop" again.
send("\x1b[A\x1b[A\x1b[A\r")
expect("pop>>> ")
send("quit\r")
expect("[smtp|pop|imap|exit]>>> ")
# Tab completes the command word at each prompt.
send("po\t\r")
expect("pop>>> ")
send("re\t1\r")
# (After Tab the line is redrawn, prompt included: wait for the message's end instead.)
out = expect("--- end of message 1 ---")
assert "retr " in out and "Hello over a tty" in out, out
expect("pop>>> ")
send("qu\t\r")
expect("[smtp|pop|imap|exit]>>> ")
send("exit\r")
"#,
    );
    assert_eq!(s.python(&script).trim(), "ok");
}
