//! mutt, the terminal mail client, sending through the submission listener in batch mode
//! (`mutt -s ... -a FILE -- rcpt < body`): STARTTLS with the server's certificate checked
//! against the file it is given, AUTH, a non-ASCII subject and text, a Cc and an attachment.
//! Python's email package then reads the stored message back. Fails with a clear message where
//! mutt is not installed (.ci/run installs it: the Debian package mutt).

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::cli::require_tool;
use support::{TestServer, ALICE, BOB, CAROL};

#[test]
fn mutt_sends_with_starttls_auth_and_an_attachment() {
    require_tool("mutt", "-v", "mutt");
    let s = TestServer::start();
    let dir = s.dir.path();
    let sub = s.submission();
    let rc = dir.join("muttrc");
    std::fs::write(
        &rc,
        format!(
            "set from = \"{a}\"\n\
             set realname = \"Alice Ämmänen\"\n\
             set smtp_url = \"smtp://{a}@{ip}:{port}/\"\n\
             set smtp_pass = \"{p}\"\n\
             set ssl_starttls = yes\n\
             set ssl_force_tls = yes\n\
             set ssl_ca_certificates_file = \"{cert}\"\n\
             set certificate_file = \"{dir}/mutt-certs\"\n\
             set ssl_verify_host = no\n\
             set record = \"\"\n\
             set charset = \"utf-8\"\n\
             set send_charset = \"utf-8\"\n",
            a = ALICE.0,
            p = ALICE.1,
            ip = sub.ip(),
            port = sub.port(),
            cert = dir.join("data/tls/cert.pem").display(),
            dir = dir.display(),
        ),
    )
    .expect("write muttrc");
    let attachment = dir.join("results.bin");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    std::fs::write(&attachment, &bytes).expect("write attachment");
    let mut child = Command::new("mutt")
        .arg("-F")
        .arg(&rc)
        .args(["-s", "Grüße aus dem Labor", "-c", CAROL.0, "-a"])
        .arg(&attachment)
        .args(["--", BOB.0])
        .env("HOME", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mutt");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all("Schöne Grüße,\nAlice\n".as_bytes())
        .expect("write body");
    let out = child.wait_with_output().expect("mutt output");
    assert!(
        out.status.success(),
        "mutt failed: {}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log_text()
    );

    for rcpt in [BOB.0, CAROL.0] {
        let inbox = s.inbox(rcpt);
        assert_eq!(inbox.len(), 1, "{rcpt} got the message once");
        let raw = dir.join(format!("{rcpt}.eml"));
        std::fs::write(&raw, &inbox[0]).expect("write eml");
        let got = s.python(&format!(
            r#"
import email, email.policy
m = email.message_from_bytes(open({raw:?}, "rb").read(), policy=email.policy.default)
print(m["Subject"])
print(m["From"].addresses[0].display_name, m["From"].addresses[0].addr_spec)
print(m["Cc"])
print(m.get_body(("plain",)).get_content().replace("\r\n", "\n").strip().replace("\n", "|"))
att = [p for p in m.iter_attachments()]
print(len(att), att[0].get_filename(), len(att[0].get_content()))
print(att[0].get_content() == bytes(i % 256 for i in range(3000)))
"#,
            raw = raw.display().to_string()
        ));
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(
            lines,
            vec![
                "Grüße aus dem Labor",
                "Alice Ämmänen alice@example.test",
                "carol@example.test",
                "Schöne Grüße,|Alice",
                "1 results.bin 3000",
                "True",
            ],
            "{rcpt}"
        );
    }
}
