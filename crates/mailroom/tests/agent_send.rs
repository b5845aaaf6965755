//! `mailroom send` and `mailroom inbox` against a running server: send, read back over POP3,
//! delete; MIME checked with Python's email package; the --trace dialogue.
mod support;

use support::cli::*;
use support::*;

fn sub(s: &TestServer) -> String {
    s.submission().to_string()
}

fn pop(s: &TestServer) -> String {
    s.pop3().to_string()
}

#[test]
fn send_then_list_read_and_delete_over_pop3() {
    let s = TestServer::start();
    let r = mailroom(
        &[
            "send",
            "--smtp",
            &sub(&s),
            "--from",
            ALICE.0,
            "--to",
            BOB.0,
            "-s",
            "Lunch?",
            "-p",
            ALICE.1,
        ],
        b"Shall we have lunch at noon?\n",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.starts_with("sent to bob@example.test: 250 2.0.0 "),
        "{}",
        r.all()
    );
    assert_eq!(s.inbox(BOB.0).len(), 1);

    // The password from the environment this time.
    let env = [("MAILROOM_PASSWORD", BOB.1)];
    let r = mailroom(
        &["inbox", "-e", BOB.0, "--pop3", &pop(&s), "list"],
        b"",
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.starts_with("1 message, "), "{}", r.all());
    assert!(r.stdout.contains("alice@example.test"), "{}", r.all());
    assert!(r.stdout.contains("Lunch?"), "{}", r.all());

    let r = mailroom(
        &["inbox", "list", "--json", "-e", BOB.0, "--pop3", &pop(&s)],
        b"",
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let check = format!(
        r#"
import json
rows = json.loads({json:?})
assert len(rows) == 1, rows
row = rows[0]
assert row["number"] == 1 and row["size"] > 100, row
assert row["from"] == "alice@example.test" and row["subject"] == "Lunch?", row
assert row["to"] == "bob@example.test" and row["uid"] and row["date"] and row["message_id"], row
print("ok")
"#,
        json = r.stdout
    );
    assert_eq!(s.python(&check).trim(), "ok");

    let r = mailroom(
        &["inbox", "-e", BOB.0, "--pop3", &pop(&s), "read", "1"],
        b"",
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("From: alice@example.test\n"),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("To: bob@example.test\n"), "{}", r.all());
    assert!(r.stdout.contains("Subject: Lunch?\n"), "{}", r.all());
    assert!(r.stdout.contains("Date: "), "{}", r.all());
    assert!(
        r.stdout.contains("\n\nShall we have lunch at noon?\n"),
        "{}",
        r.all()
    );

    // --raw: the octets as stored (trace headers first), CRLF line ends.
    let r = mailroom(
        &[
            "inbox",
            "-e",
            BOB.0,
            "--pop3",
            &pop(&s),
            "read",
            "1",
            "--raw",
        ],
        b"",
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let stored = String::from_utf8(s.inbox(BOB.0)[0].clone()).expect("utf-8");
    assert_eq!(r.stdout, stored);
    assert!(
        r.stdout
            .starts_with("Return-Path: <alice@example.test>\r\n"),
        "{}",
        r.all()
    );

    let r = mailroom(
        &["inbox", "-e", BOB.0, "--pop3", &pop(&s), "delete", "1"],
        b"",
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.starts_with("deleted 1 (+OK"), "{}", r.all());
    assert!(s.inbox(BOB.0).is_empty());
    let r = mailroom(
        &["inbox", "-e", BOB.0, "--pop3", &pop(&s), "list", "--json"],
        b"",
        &env,
    );
    assert_eq!((r.code, r.stdout.trim()), (0, "[]"), "{}", r.all());
}

#[test]
fn mime_with_attachments_parses_back_in_python_email() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let binary: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 256) as u8).collect();
    let bin_path = dir.path().join("data.bin");
    std::fs::write(&bin_path, &binary).expect("write");
    // LF line ends, trailing blanks and a leading dot must survive as they are.
    let text = "first line\nsecond line with trailing blanks  \n.leading dot\n\ttab\n";
    let txt_path = dir.path().join("notes.txt");
    std::fs::write(&txt_path, text).expect("write");
    let pdf_path = dir.path().join("Übersicht März.pdf");
    std::fs::write(&pdf_path, b"%PDF-1.4 fake\r\n%%EOF\r\n").expect("write");
    let body =
        "Grüße aus Köln!\nA line with trailing blank \n.a line starting with a dot\n\nEnd.\n";
    let r = mailroom(
        &[
            "send",
            "--smtp",
            &sub(&s),
            "--from",
            "Alice Müller <alice@example.test>",
            "--to",
            "Bob <bob@example.test>",
            "--cc",
            CAROL.0,
            "--bcc",
            "alice@example.test",
            "--subject",
            "Grüße: the report ✓",
            "--attach",
            bin_path.to_str().expect("path"),
            "--attach",
            txt_path.to_str().expect("path"),
            "--attach",
            pdf_path.to_str().expect("path"),
            "-p",
            ALICE.1,
        ],
        body.as_bytes(),
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    for who in [BOB.0, CAROL.0, ALICE.0] {
        assert_eq!(s.inbox(who).len(), 1, "{who}: {}", r.all());
    }
    let stored = s.inbox(BOB.0).remove(0);
    // What was sent is 7-bit: every non-ASCII character is encoded.
    let sent_at = stored
        .windows(6)
        .position(|w| w == b"From: ")
        .expect("From:");
    assert!(
        stored[sent_at..].is_ascii(),
        "{}",
        String::from_utf8_lossy(&stored)
    );
    let msg_path = dir.path().join("stored.eml");
    std::fs::write(&msg_path, &stored).expect("write");
    let script = format!(
        r#"
import email, email.policy
raw = open({msg:?}, "rb").read()
m = email.message_from_bytes(raw, policy=email.policy.default)
assert m["Subject"] == "Grüße: the report ✓", m["Subject"]
assert m["From"].addresses[0].display_name == "Alice Müller", m["From"]
assert m["From"].addresses[0].addr_spec == "alice@example.test"
assert m["To"].addresses[0].addr_spec == "bob@example.test", m["To"]
assert m["Cc"].addresses[0].addr_spec == "carol@example.test", m["Cc"]
assert m["Bcc"] is None, "Bcc must not be a header"
assert m["Date"].datetime is not None
assert m["Message-ID"].startswith("<") and m["Message-ID"].endswith("@example.test>"), m["Message-ID"]
assert m["MIME-Version"] == "1.0"
assert m.get_content_type() == "multipart/mixed", m.get_content_type()
text = m.get_body(preferencelist=("plain",))
assert text.get_content_charset() == "utf-8"
assert text["Content-Transfer-Encoding"] in ("quoted-printable", "base64"), text["Content-Transfer-Encoding"]
got = text.get_content().replace("\r\n", "\n")
assert got == {body:?}, repr(got)
atts = {{p.get_filename(): p for p in m.iter_attachments()}}
assert sorted(atts) == sorted(["data.bin", "notes.txt", "Übersicht März.pdf"]), list(atts)
assert atts["data.bin"].get_payload(decode=True) == open({bin:?}, "rb").read()
assert atts["data.bin"].get_content_type() == "application/octet-stream"
assert atts["notes.txt"].get_payload(decode=True) == open({txt:?}, "rb").read()
assert atts["notes.txt"].get_content_type() == "text/plain"
assert atts["Übersicht März.pdf"].get_payload(decode=True) == open({pdf:?}, "rb").read()
assert atts["Übersicht März.pdf"].get_content_type() == "application/pdf"
print("ok")
"#,
        msg = msg_path.to_str().expect("path"),
        body = body,
        bin = bin_path.to_str().expect("path"),
        txt = txt_path.to_str().expect("path"),
        pdf = pdf_path.to_str().expect("path"),
    );
    assert_eq!(s.python(&script).trim(), "ok");

    // The agent decodes the same message: headers, text, attachments by name and size.
    let env = [("MAILROOM_PASSWORD", BOB.1)];
    let r = mailroom(
        &["inbox", "-e", BOB.0, "--pop3", &pop(&s), "read", "1"],
        b"",
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("From: Alice Müller <alice@example.test>\n"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout.contains("Subject: Grüße: the report ✓\n"),
        "{}",
        r.all()
    );
    assert!(r.stdout.contains("Grüße aus Köln!\n"), "{}", r.all());
    assert!(
        r.stdout
            .contains("data.bin (application/octet-stream, 4000 bytes)"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout
            .contains(&format!("notes.txt (text/plain, {} bytes)", text.len())),
        "{}",
        r.all()
    );

    // And saves the attachments byte for byte.
    let out = dir.path().join("saved");
    let r = mailroom(
        &[
            "inbox",
            "-e",
            BOB.0,
            "--pop3",
            &pop(&s),
            "save",
            "1",
            out.to_str().expect("path"),
        ],
        b"",
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(std::fs::read(out.join("data.bin")).expect("saved"), binary);
    assert_eq!(
        std::fs::read(out.join("notes.txt")).expect("saved"),
        text.as_bytes()
    );
    assert!(out.join("Übersicht März.pdf").exists(), "{}", r.all());
}

#[test]
fn trace_shows_the_dialogue_with_secrets_masked() {
    let s = TestServer::start();
    let r = mailroom(
        &[
            "send",
            "--trace",
            "--smtp",
            &sub(&s),
            "--from",
            ALICE.0,
            "--to",
            BOB.0,
            "--body",
            "hi",
            "-p",
            ALICE.1,
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let t = &r.stderr;
    for want in [
        "S: 220 ",
        "C: EHLO ",
        "S: 250-PIPELINING",
        "S: 250 AUTH PLAIN LOGIN",
        "C: AUTH PLAIN ****",
        "S: 235 2.7.0 Authentication successful",
        "C: MAIL FROM:<alice@example.test> SIZE=",
        "C: RCPT TO:<bob@example.test>",
        "C: DATA",
        "S: 250 2.1.5 Recipient <bob@example.test> ok",
        "S: 354 ",
        "C:\nC: hi\nC: .\n",
        "S: 250 2.0.0 Ok: queued as ",
        "C: QUIT",
        "S: 221 ",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    // Never the secret, in clear or in base64.
    assert!(
        !t.contains("c2VjcmV0") && !t.contains("AGFsaWNl") && !t.contains("secret"),
        "{t}"
    );
    // stdout stays clean for scripts.
    assert!(!r.stdout.contains("C: "), "{}", r.all());

    let r = mailroom(
        &[
            "inbox",
            "list",
            "--trace",
            "-e",
            BOB.0,
            "-p",
            BOB.1,
            "--pop3",
            &pop(&s),
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    for want in [
        "S: +OK ",
        "C: USER bob@example.test",
        "C: PASS ****",
        "C: LIST",
        "S: 1 ",
        "S: .",
        "C: UIDL",
        "C: TOP 1 0",
        "C: QUIT",
    ] {
        assert!(r.stderr.contains(want), "missing {want:?} in:\n{}", r.all());
    }
    assert!(!r.stderr.contains(BOB.1), "{}", r.all());
}

#[test]
fn body_file_no_auth_to_the_mx_and_several_recipients() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("body.txt");
    std::fs::write(&body, "From a file.\r\n").expect("write");
    // The MX listener takes mail for local users without a login.
    let r = mailroom(
        &[
            "send",
            "--smtp",
            &s.smtp().to_string(),
            "--no-auth",
            "--from",
            "someone@elsewhere.test",
            "--to",
            "bob@example.test, carol@example.test",
            "--body-file",
            body.to_str().expect("path"),
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.all());
    for who in [BOB.0, CAROL.0] {
        let m = String::from_utf8(s.inbox(who)[0].clone()).expect("utf-8");
        assert!(m.contains("\r\n\r\nFrom a file.\r\n"), "{m}");
        assert!(m.contains("Return-Path: <someone@elsewhere.test>"), "{m}");
    }
}

/// A lab file with [[server]] entries: the agent finds the user's server by domain.
#[test]
fn server_addresses_from_a_lab_file() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = dir.path().join("lab.toml");
    std::fs::write(
        &lab,
        format!(
            r#"
[[server]]
name = "other"
hostname = "mx.other.test"
data_dir = "{d}/other"
domains = ["other.test"]
[server.listen]
smtp = "127.0.0.1:{closed}"
submission = "127.0.0.1:{closed}"
pop3 = "127.0.0.1:{closed}"

[[server]]
name = "ours"
hostname = "mx.example.test"
data_dir = "{d}/ours"
domains = ["example.test"]
[server.listen]
smtp = "{smtp}"
submission = "{sub}"
pop3 = "{pop}"
"#,
            d = dir.path().display(),
            closed = closed_port(),
            smtp = s.smtp(),
            sub = s.submission(),
            pop = s.pop3(),
        ),
    )
    .expect("write lab");
    let lab = lab.to_str().expect("path");
    let r = mailroom(
        &[
            "--config",
            lab,
            "send",
            "--from",
            ALICE.0,
            "--to",
            BOB.0,
            "--body",
            "via the lab file",
            "-p",
            ALICE.1,
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let r = mailroom(
        &["inbox", "-e", BOB.0, "-p", BOB.1, "list", "--json"],
        b"",
        &[("MAILROOM_CONFIG", lab)],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\"number\":1"), "{}", r.all());
    // A user whose domain no server hosts gets a sentence, not a guess.
    let r = mailroom(
        &[
            "--config",
            lab,
            "inbox",
            "-e",
            "x@nowhere.test",
            "-p",
            "x",
            "list",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("no server in the lab file"),
        "{}",
        r.all()
    );
}
