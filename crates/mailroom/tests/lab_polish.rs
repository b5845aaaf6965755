//! The lab as students meet it (issue 16): the real server driven as a student drives it, by
//! raw lines over a TCP socket (as telnet or netcat would send them) and by Python's smtplib.
//! A message typed with no header lines, control characters in the trace, VRFY and EXPN,
//! capturing the server-to-server hop in clear, and short user names.

mod common;

use common::{Client, TestServer};

/// The session trace escapes every control character: a CR (what telnet sends as CR NUL when
/// a CR is typed before the line end) can no longer hide the line it is on.
#[test]
fn trace_escapes_control_characters() {
    let s = TestServer::start_with("", &["--trace"]);
    let mut c = Client::connect(s.smtp());
    c.expect_code(220);
    c.send_raw(b"EHLO x\r\0\r\n");
    let r = c.reply();
    assert_eq!(r.code, 501, "{r:?}");
    c.send_raw(b"NOOP \x1b[2J\x07\r\n");
    c.expect_code(250);
    c.cmd("QUIT", 221);
    s.wait_for(10, "the traced QUIT", || s.log_text().contains("C: QUIT"));
    let log = s.log_text();
    assert!(log.contains("C: EHLO x\\x0d\\x00"), "{log}");
    assert!(log.contains("C: NOOP \\x1b[2J\\x07"), "{log}");
    for line in log.lines().filter(|l| l.contains("[smtp ")) {
        assert!(
            !line.chars().any(|ch| ch.is_control()),
            "a control character in the trace: {line:?}"
        );
    }
}
