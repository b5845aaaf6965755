//! The agent as the multi-domain lab assignment (CS305-style) uses it (issue 16, item 6):
//! piped input typed in the classic order (recipient, blank line, subject, content, `.`) sends
//! the message as typed; a failed command makes a piped run exit non-zero with the reply on
//! stderr; a wrong password typed at the prompt can be typed again.
mod support;

use support::cli::*;
use support::*;

/// The assignment's input, byte for byte: `smtp`, the recipient, an empty line ending the
/// list, the subject, the content, the `.` line, `exit`.
const CS305_INPUT: &str =
    "smtp\nbob@example.test\n\nLab 5 hand-in\nHello Bob,\nthis is my content.\n.\nexit\n";

#[test]
fn cs305_input_through_a_pipe_sends_the_message_as_typed() {
    let s = TestServer::start();
    let r = mailroom(
        &[
            "agent",
            "-e",
            ALICE.0,
            "-p",
            ALICE.1,
            "--smtp",
            &s.submission().to_string(),
        ],
        CS305_INPUT.as_bytes(),
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("sent to bob@example.test\n"),
        "{}",
        r.all()
    );
    // Read back over POP3 with poplib: the subject and the body as typed.
    let out = s.python(
        r#"
import os, poplib, email
p = poplib.POP3(os.environ["HOST"], int(os.environ["POP3_PORT"]))
p.user("bob@example.test"); p.pass_("hunter2")
lines = p.retr(1)[1]
m = email.message_from_bytes(b"\r\n".join(lines) + b"\r\n")
print("SUBJECT=" + m["Subject"])
print("CC=" + str(m["Cc"]))
print("BODY=" + repr(m.get_payload()))
p.quit()
"#,
    );
    assert!(out.contains("SUBJECT=Lab 5 hand-in\n"), "{out}");
    assert!(out.contains("CC=None\n"), "{out}");
    assert!(
        out.contains(r"BODY='Hello Bob,\r\nthis is my content.\r\n'"),
        "{out}"
    );
}

#[test]
fn a_refused_recipient_in_a_pipe_exits_non_zero_with_the_reply_on_stderr() {
    let s = TestServer::start();
    let smtp = s.submission().to_string();
    let r = mailroom(
        &["agent", "-e", ALICE.0, "-p", ALICE.1, "--smtp", &smtp],
        b"smtp\nnobody@example.test\n\nhi\ntext\n.\nexit\n",
        &[],
    );
    assert_eq!(r.code, 5, "{}", r.all());
    assert!(
        r.stderr
            .contains("mailroom: NOT sent to nobody@example.test: "),
        "{}",
        r.all()
    );
    assert!(
        r.stderr.contains("RCPT TO:<nobody@example.test>: 550"),
        "{}",
        r.all()
    );

    // A message cut off before its "." line is not sent, and says so.
    let r = mailroom(
        &["agent", "-e", ALICE.0, "-p", ALICE.1, "--smtp", &smtp],
        b"smtp\nbob@example.test\n\nhi\nno end line\n",
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("the message was NOT sent"), "{}", r.all());
    assert!(s.inbox(BOB.0).is_empty());

    // A bad address from a pipe cancels the message (a script cannot type it again).
    let r = mailroom(
        &["agent", "-e", ALICE.0, "-p", ALICE.1, "--smtp", &smtp],
        b"smtp\nnot an address\nbob@example.test\n\nhi\ntext\n.\nexit\n",
        &[],
    );
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("'not an address' is not an address"),
        "{}",
        r.all()
    );

    // A failed POP3 login: the server's reply on stderr, exit code 4.
    let r = mailroom(
        &[
            "agent",
            "-e",
            BOB.0,
            "-p",
            "wrong",
            "--pop3",
            &s.pop3().to_string(),
        ],
        b"pop\nstat\nquit\nexit\n",
        &[],
    );
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stderr.contains("-ERR"), "{}", r.all());
}

#[test]
fn a_wrong_password_at_the_prompt_can_be_typed_again() {
    let s = TestServer::start();
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
type_password("wrong-one")
out = expect("Password for bob@example.test: ")
assert "try 1 of 3; type it again" in out, out
type_password("hunter2")
out = expect("[smtp|pop|imap|exit]>>> ")
assert "logged in as bob@example.test" in out, out
send("pop\r")
out = expect("pop>>> ")
assert "+OK bob@example.test has 0 messages" in out, out
send("quit\r")
expect("[smtp|pop|imap|exit]>>> ")
send("exit\r")
"#,
    );
    assert_eq!(s.python(&script).trim(), "ok");
}
