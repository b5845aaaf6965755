//! `mailroom backup DIR` while the server runs: the copy is a data directory that another
//! server starts from, with every message accepted before the backup (and none after), and
//! the same TLS certificate.
mod support;

use support::*;

#[test]
fn a_backup_taken_while_serving_restores_into_a_working_server() {
    let s = TestServer::start();
    s.deliver(ALICE.0, &[BOB.0], "Subject: one\r\n\r\nfirst\r\n");
    s.deliver(ALICE.0, &[BOB.0], "Subject: two\r\n\r\nsecond\r\n");
    let backup = s.dir.path().join("backup");
    let out = s.cli(&["backup", &backup.display().to_string()], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("mailroom.db ("), "{stdout}");
    assert!(stdout.contains("tls/key.pem"), "{stdout}");
    // Accepted after the backup: not in it.
    s.deliver(ALICE.0, &[BOB.0], "Subject: three\r\n\r\nthird\r\n");

    // A second backup into the same directory is refused; nothing is overwritten.
    let again = s.cli(&["backup", &backup.display().to_string()], "");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists and is not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let cert = std::fs::read(s.dir.path().join("data/tls/cert.pem")).expect("cert");
    assert_eq!(
        std::fs::read(backup.join("tls/cert.pem")).expect("backup cert"),
        cert
    );
    let restored = ServerConfig::example()
        .accounts(&[])
        .listen(&["smtp", "pop3"])
        .data_dir(&backup)
        .start();
    let got = restored.python(&format!(
        r#"
import os, poplib
p = poplib.POP3("127.0.0.1", int(os.environ["POP3_PORT"]))
p.user({user:?}); p.pass_({pw:?})
n, _ = p.stat()
subjects = []
for i in range(1, n + 1):
    lines = p.retr(i)[1]
    subjects += [l.decode()[9:] for l in lines if l.startswith(b"Subject: ")]
p.quit()
print(n, " ".join(subjects))
"#,
        user = BOB.0,
        pw = BOB.1
    ));
    assert_eq!(got.trim(), "2 one two");
}
