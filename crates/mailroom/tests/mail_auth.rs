//! Mail authentication end to end: DKIM signatures of submitted mail checked by two
//! independent implementations, dkimpy (Debian's python3-dkim, with the public key from a real
//! DNS answer) and OpenDKIM (Debian's opendkim, with the published records given as its test
//! keys), and mail they sign checked by mailroom; SPF, DKIM and DMARC checks at the MX listener against records served by a DNS
//! server on a loopback port; `mailroom dns` and `mailroom dns --check`.
mod support;
use support::*;

use std::io::Write;
use std::process::{Command, Stdio};

use support::dns::{DnsServer, Rec};
use support::peers::{self, ALICE_A, BOB_B};

fn text(m: &[u8]) -> String {
    String::from_utf8_lossy(m).to_string()
}

/// Debian's Python, where python3-dkim (dkimpy) and python3-dnspython are installed.
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// Runs a dkimpy script with `stdin`; its stdout. `PORT` is the DNS server's port.
fn dkimpy(script: &str, dns: &DnsServer, stdin: &[u8]) -> String {
    let mut child = Command::new(DEBIAN_PYTHON)
        .arg("-c")
        .arg(script)
        .env("PORT", dns.port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with python3-dkim (Debian) is needed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("dkimpy output");
    assert!(
        out.status.success(),
        "dkimpy script failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// dkimpy's verifier, asking the test's DNS server for the keys (a real DNS query through
/// dnspython): one line per signature, "INDEX RESULT".
const VERIFY: &str = r#"
import os, sys, dkim, dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ['127.0.0.1']
r.port = int(os.environ['PORT'])
def dnsfunc(name, timeout=5):
    try:
        ans = r.resolve(name.decode().rstrip('.'), 'TXT', tcp=True)
    except Exception:
        return None
    return b''.join(b''.join(x.strings) for x in ans)
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
sigs = [v for (k, v) in d.headers if k.lower() == b'dkim-signature']
for i in range(len(sigs)):
    try:
        ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)
    except dkim.ValidationError:
        ok = False
    print(i, ok)
"#;

/// Publishes every record `mailroom dns DOMAIN` prints on the test's DNS server; returns
/// the printed text.
fn publish(server: &TestServer, domain: &str, dns: &DnsServer) -> String {
    let out = server.cli(&["dns", domain], "");
    let printed = text(&out.stdout);
    assert!(out.status.success(), "{printed}\n{}", text(&out.stderr));
    for line in printed.lines() {
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(5, ' ');
        let name = parts.next().unwrap_or("");
        let _ttl = parts.next();
        let _class = parts.next();
        let rtype = parts.next().unwrap_or("");
        let data = parts.next().unwrap_or("");
        match rtype {
            "TXT" => {
                // "a" "b": the strings joined.
                let joined: String = data
                    .split('"')
                    .enumerate()
                    .filter(|(i, _)| i % 2 == 1)
                    .map(|(_, s)| s)
                    .collect();
                dns.txt(name, &joined);
            }
            "MX" => {
                let (pref, host) = data.split_once(' ').expect("MX data");
                dns.add(name, Rec::Mx(pref.parse().expect("pref"), host.to_string()));
            }
            other => panic!("unexpected record type {other} in {line}"),
        }
    }
    printed
}

#[test]
fn submitted_mail_is_dkim_signed_and_dkimpy_verifies_both_signatures() {
    let dns = DnsServer::start();
    let bport = free_port();
    let b = peers::server_b().listen_on("smtp", bport).start();
    let a = peers::server_a()
        .listen(&["submission"])
        .route("b.test", bport)
        .extra(&dns.config())
        .start();
    let printed = publish(&a, "a.test", &dns);
    assert!(
        printed.contains("mailroom-ed25519._domainkey.a.test."),
        "{printed}"
    );
    assert!(
        printed.contains("mailroom-rsa._domainkey.a.test."),
        "{printed}"
    );

    // Python's smtplib, as a user's program submits.
    a.python(&format!(
        r#"
import os, smtplib
s = smtplib.SMTP('127.0.0.1', int(os.environ['SUBMISSION_PORT']))
s.login('{}', '{}')
s.sendmail('alice@a.test', ['bob@b.test'], b'From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject:  signed   mail\r\nMessage-ID: <dkim1@a.test>\r\n\r\nHello,  signed world.\r\n\r\n\r\n')
s.quit()
"#,
        ALICE_A.0, ALICE_A.1
    ));
    b.wait_for(15, "delivery to B", || b.inbox(BOB_B.0).len() == 1);
    let m = b.inbox(BOB_B.0).remove(0);
    let shown = text(&m);
    assert_eq!(shown.matches("DKIM-Signature:").count(), 2, "{shown}");
    assert!(shown.contains("a=ed25519-sha256"), "{shown}");
    assert!(shown.contains("a=rsa-sha256"), "{shown}");
    assert!(shown.contains("c=relaxed/relaxed"), "{shown}");
    let verdicts = dkimpy(VERIFY, &dns, &m);
    assert_eq!(verdicts.trim(), "0 True\n1 True", "{verdicts}\n{shown}");

    // A changed body breaks both: dkimpy really checks.
    let tampered = text(&m).replace("signed world", "forged world");
    let verdicts = dkimpy(VERIFY, &dns, tampered.as_bytes());
    assert_eq!(verdicts.trim(), "0 False\n1 False", "{verdicts}");
}

/// OpenDKIM's filter program (Debian's `opendkim`); its test mode (`-t FILE`) verifies a
/// message file without a mail server and is never started as a service here.
const OPENDKIM: &str = "/usr/sbin/opendkim";

/// The TXT records `mailroom dns` printed, as OpenDKIM's `TestPublicKeys` file wants them:
/// one line per key, `NAME RECORD` (its test keys replace the DNS lookup; opendkim's resolver
/// has no way to be pointed at a port).
fn opendkim_keys(printed: &str) -> String {
    let mut out = String::new();
    for line in printed.lines() {
        let mut parts = line.splitn(5, ' ');
        let name = parts.next().unwrap_or("");
        if !name.contains("._domainkey.") {
            continue;
        }
        let data = parts.nth(3).unwrap_or("");
        let joined: String = data
            .split('"')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s)
            .collect();
        out.push_str(&format!("{} {joined}\n", name.trim_end_matches('.')));
    }
    out
}

/// Runs `opendkim -t` on `message` with `keys` (a `TestPublicKeys` file's text); the
/// `dkim=` results of the Authentication-Results field it would add, one per signature, each
/// as "ALGORITHM RESULT" (e.g. "ed25519-sha256 pass").
fn opendkim_verify(message: &[u8], keys: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let keyfile = dir.path().join("keys");
    std::fs::write(&keyfile, keys).expect("keys");
    let conf = dir.path().join("opendkim.conf");
    std::fs::write(
        &conf,
        format!(
            "Mode v\nTestPublicKeys {}\nTemporaryDirectory {}\n",
            keyfile.display(),
            dir.path().display()
        ),
    )
    .expect("conf");
    let file = dir.path().join("message.eml");
    std::fs::write(&file, message).expect("message");
    let out = Command::new(OPENDKIM)
        .arg("-x")
        .arg(&conf)
        .arg("-vv")
        .arg("-t")
        .arg(&file)
        .output()
        .expect("/usr/sbin/opendkim (Debian's opendkim) is needed");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "opendkim -t failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    // "### INSHEADER: idx=0 hname='Authentication-Results' hvalue='ID;\n\tdkim=pass ...;"
    stdout
        .split([';', '\n'])
        .map(str::trim)
        .filter(|part| part.starts_with("dkim="))
        .map(|part| {
            let result = part["dkim=".len()..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            let alg = part
                .split_whitespace()
                .find_map(|w| w.strip_prefix("header.a="))
                .unwrap_or("?");
            format!("{alg} {result}")
        })
        .collect()
}

#[test]
fn submitted_mail_is_dkim_signed_and_opendkim_verifies_both_signatures() {
    let dns = DnsServer::start();
    let bport = free_port();
    let b = peers::server_b().listen_on("smtp", bport).start();
    let a = peers::server_a()
        .listen(&["submission"])
        .route("b.test", bport)
        .extra(&dns.config())
        .start();
    let keys = opendkim_keys(&publish(&a, "a.test", &dns));
    assert_eq!(keys.lines().count(), 2, "{keys}");

    // Python's smtplib logs in (AUTH) and submits; a folded Subject and trailing white space
    // exercise relaxed canonicalisation on both sides.
    a.python(&format!(
        r#"
import os, smtplib
s = smtplib.SMTP('127.0.0.1', int(os.environ['SUBMISSION_PORT']))
s.login('{}', '{}')
s.sendmail('alice@a.test', ['bob@b.test'], b'From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: checked\r\n  by OpenDKIM\r\nDate: Tue, 1 Dec 2026 06:00:00 +0000\r\nMessage-ID: <odkim1@a.test>\r\n\r\nHello,  OpenDKIM.  \r\n\r\n\r\n')
s.quit()
"#,
        ALICE_A.0, ALICE_A.1
    ));
    b.wait_for(15, "delivery to B", || b.inbox(BOB_B.0).len() == 1);
    let m = b.inbox(BOB_B.0).remove(0);
    let shown = text(&m);
    let verdicts = opendkim_verify(&m, &keys);
    assert_eq!(
        verdicts,
        ["ed25519-sha256 pass", "rsa-sha256 pass"],
        "{shown}"
    );

    // A changed body fails both: OpenDKIM really checks.
    let tampered = shown.replace("Hello,  OpenDKIM.", "Hello, forged.");
    assert_eq!(
        opendkim_verify(tampered.as_bytes(), &keys),
        ["ed25519-sha256 fail", "rsa-sha256 fail"]
    );
    // So does a second From added below the signatures (From is oversigned).
    let added = shown.replacen(
        "From: Alice <alice@a.test>",
        "From: Alice <alice@a.test>\r\nFrom: Mallory <m@evil.test>",
        1,
    );
    assert_eq!(
        opendkim_verify(added.as_bytes(), &keys),
        ["ed25519-sha256 fail", "rsa-sha256 fail"]
    );
    // And a key that is not the published one.
    let other = keys.replace("p=MII", "p=MIJ").replacen("p=", "p=A", 1);
    let verdicts = opendkim_verify(&m, &other);
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    assert!(
        verdicts.iter().all(|v| !v.ends_with(" pass")),
        "{verdicts:?}"
    );
}

/// OpenDKIM's own signer (`opendkim-testmsg`, rsa-sha256) with a key `opendkim-genkey` made;
/// the signed message is sent to the MX listener by smtplib. `KEYDIR` holds `sel.private`.
const OPENDKIM_SIGN_AND_SEND: &str = r#"
import os, sys, smtplib, subprocess
domain, tamper = sys.argv[1], sys.argv[2] == 'tamper'
msg = ('From: Olga <olga@%s>\r\nTo: bob@example.test\r\nSubject: signed by OpenDKIM\r\nDate: Tue, 1 Dec 2026 06:00:00 +0000\r\nMessage-ID: <%s@x>\r\n\r\nSigned  by OpenDKIM.\r\n' % (domain, sys.argv[2])).encode()
signed = subprocess.run(['/usr/sbin/opendkim-testmsg', '-C', '-d', domain, '-s', 'sel', '-k', os.path.join(os.environ['KEYDIR'], 'sel.private')], input=msg, capture_output=True, check=True).stdout
assert b'DKIM-Signature:' in signed, signed
if tamper:
    signed = signed.replace(b'Signed  by', b'Changed by')
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']))
s.ehlo('client.test')
try:
    s.sendmail('olga@' + domain, ['bob@example.test'], signed)
    print('250')
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

#[test]
fn dkim_signed_by_opendkim_passes_in_mailroom() {
    let dns = DnsServer::start();
    // opendkim-genkey: an RSA key (sel.private) and its record (sel.txt, zone-file text).
    let keydir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("/usr/sbin/opendkim-genkey")
        .args(["-b", "2048", "-d", "osigned.test", "-s", "sel", "-D"])
        .arg(keydir.path())
        .output()
        .expect("/usr/sbin/opendkim-genkey (Debian's opendkim-tools) is needed");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let zone = std::fs::read_to_string(keydir.path().join("sel.txt")).expect("sel.txt");
    let record: String = zone
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    assert!(record.contains("k=rsa"), "{zone}");
    dns.txt("sel._domainkey.osigned.test", &record);
    dns.txt("_dmarc.osigned.test", "v=DMARC1; p=reject");
    let s = receiver(&dns, "");
    let send = |id: &str| {
        let out = Command::new(DEBIAN_PYTHON)
            .arg("-c")
            .arg(OPENDKIM_SIGN_AND_SEND)
            .arg("osigned.test")
            .arg(id)
            .env("PORT", s.smtp().port().to_string())
            .env("KEYDIR", keydir.path())
            .output()
            .expect("/usr/bin/python3");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(send("ok"), "250");
    let ar = auth_results(s.inbox("bob@example.test").last().expect("delivered"));
    assert!(ar.contains("dkim=pass"), "{ar}");
    // OpenDKIM writes no i= tag, so mail-auth names the domain with header.d.
    assert!(ar.contains("header.d=osigned.test"), "{ar}");
    assert!(ar.contains("header.s=sel"), "{ar}");
    assert!(ar.contains("dmarc=pass"), "{ar}");
    // Changed after signing: the signature fails, and p=reject refuses it.
    let refused = send("tamper");
    assert!(refused.starts_with("550 5.7.1"), "{refused}");
    assert_eq!(s.inbox("bob@example.test").len(), 1);
}

/// The receiving server: mx.example.test (alice, bob, carol) with its MX listener, the
/// resolver pointed at `dns`, and the checks on for loopback peers (the tests' clients are
/// on loopback, where they are off by default).
fn receiver(dns: &DnsServer, checks: &str) -> TestServer {
    ServerConfig::example()
        .listen(&["smtp", "imap"])
        .trace(&["smtp"])
        .extra(&dns.config())
        .table("checks", &format!("loopback = true\n{checks}"))
        .start()
}

/// One transaction on the MX listener without AUTH; the reply to the final dot (or to the
/// first refused command).
fn send_mx(addr: std::net::SocketAddr, helo: &str, from: &str, to: &str, message: &str) -> Reply {
    let mut c = Client::connect(addr);
    c.expect_code(220);
    c.cmd(&format!("EHLO {helo}"), 250);
    c.cmd(&format!("MAIL FROM:<{from}>"), 250);
    c.cmd(&format!("RCPT TO:<{to}>"), 250);
    c.cmd("DATA", 354);
    c.send_raw(wire_body(message).as_bytes());
    c.send(".");
    let r = c.reply();
    c.send("QUIT");
    r
}

/// The Authentication-Results field of a stored message, unfolded (ours: the first).
fn auth_results(m: &[u8]) -> String {
    let t = text(m);
    let start = t
        .find("Authentication-Results: mx.example.test")
        .unwrap_or_else(|| panic!("no Authentication-Results of ours in:\n{t}"));
    let rest = &t[start..];
    let mut out = String::new();
    for (i, line) in rest.split("\r\n").enumerate() {
        if i > 0 && !line.starts_with([' ', '\t']) {
            break;
        }
        out.push_str(line.trim_start());
        out.push(' ');
    }
    out
}

fn msg(from: &str, subject: &str) -> String {
    format!("From: {from}\nTo: bob@example.test\nSubject: {subject}\nMessage-ID: <{subject}@x>\n\nHello.\n")
}

#[test]
fn spf_pass_fail_softfail_and_none_are_recorded() {
    let dns = DnsServer::start();
    dns.txt("pass.test", "v=spf1 ip4:127.0.0.1 -all");
    dns.txt("fail.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("soft.test", "v=spf1 ~all");
    let s = receiver(&dns, "");
    for (domain, want) in [
        ("pass.test", "spf=pass"),
        ("fail.test", "spf=fail"),
        ("soft.test", "spf=softfail"),
        ("none.test", "spf=none"),
    ] {
        let from = format!("a@{domain}");
        let r = send_mx(
            s.smtp(),
            "client.test",
            &from,
            "bob@example.test",
            &msg(&from, domain),
        );
        // No DMARC record: SPF alone refuses nothing (RFC 7208 §8.4 leaves fail to policy).
        assert_eq!(r.code, 250, "{domain}: {}", r.text());
        let inbox = s.inbox("bob@example.test");
        let ar = auth_results(inbox.last().expect("delivered"));
        assert!(ar.contains(want), "{domain}: {ar}");
        assert!(ar.contains(&format!("smtp.mailfrom={from}")), "{ar}");
        assert!(ar.contains("dkim=none"), "{ar}");
    }
    // The answers came from the test's DNS server.
    assert!(dns
        .queries()
        .iter()
        .any(|(n, t)| n == "fail.test" && *t == 16));
}

/// dkimpy signs (ed25519, a fixed key) and smtplib sends over the MX listener.
const SIGN_AND_SEND: &str = r#"
import os, sys, base64, smtplib, dkim, nacl.signing
seed = bytes(range(32))
key = nacl.signing.SigningKey(seed)
if sys.argv[1] == 'pub':
    print(base64.b64encode(key.verify_key.encode()).decode())
    sys.exit(0)
domain, tamper = sys.argv[2], sys.argv[3] == 'tamper'
msg = ('From: Sam <sam@%s>\r\nTo: bob@example.test\r\nSubject: signed by dkimpy\r\nMessage-ID: <%s@x>\r\n\r\nSigned body.\r\n' % (domain, sys.argv[1])).encode()
sig = dkim.sign(msg, b'sel', domain.encode(), base64.b64encode(seed), signature_algorithm=b'ed25519-sha256', include_headers=[b'from', b'to', b'subject', b'message-id'])
signed = sig + msg
if tamper:
    signed = signed.replace(b'Signed body.', b'Changed body.')
s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']))
s.ehlo('client.test')
try:
    s.sendmail('sam@' + domain, ['bob@example.test'], signed)
    print('250')
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

fn dkimpy_send(s: &TestServer, dns: &DnsServer, id: &str, domain: &str, tamper: bool) -> String {
    let out = Command::new(DEBIAN_PYTHON)
        .arg("-c")
        .arg(SIGN_AND_SEND)
        .arg(id)
        .arg(domain)
        .arg(if tamper { "tamper" } else { "no" })
        .env("PORT", s.smtp().port().to_string())
        .output()
        .expect("/usr/bin/python3 with python3-dkim");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let _ = dns;
    text(&out.stdout).trim().to_string()
}

fn publish_dkimpy_key(dns: &DnsServer, domain: &str) {
    let out = Command::new(DEBIAN_PYTHON)
        .arg("-c")
        .arg(SIGN_AND_SEND)
        .arg("pub")
        .output()
        .expect("/usr/bin/python3 with python3-nacl");
    let key = text(&out.stdout).trim().to_string();
    assert!(!key.is_empty(), "{}", text(&out.stderr));
    dns.txt(
        &format!("sel._domainkey.{domain}"),
        &format!("v=DKIM1; k=ed25519; p={key}"),
    );
}

#[test]
fn dkim_signed_by_dkimpy_passes_and_a_changed_body_fails() {
    let dns = DnsServer::start();
    publish_dkimpy_key(&dns, "signed.test");
    let s = receiver(&dns, "");
    assert_eq!(dkimpy_send(&s, &dns, "ok", "signed.test", false), "250");
    assert_eq!(dkimpy_send(&s, &dns, "bad", "signed.test", true), "250");
    let inbox = s.inbox("bob@example.test");
    assert_eq!(inbox.len(), 2);
    let good = auth_results(&inbox[0]);
    assert!(good.contains("dkim=pass"), "{good}");
    assert!(good.contains("header.i=@signed.test"), "{good}");
    assert!(good.contains("header.s=sel"), "{good}");
    let bad = auth_results(&inbox[1]);
    assert!(bad.contains("dkim=fail"), "{bad}");
}

#[test]
fn dmarc_pass_reject_quarantine_and_none() {
    let dns = DnsServer::start();
    publish_dkimpy_key(&dns, "signed.test");
    dns.txt("_dmarc.signed.test", "v=DMARC1; p=reject");
    for d in ["rej.test", "quar.test", "mon.test"] {
        dns.txt(d, "v=spf1 ip4:192.0.2.1 -all");
    }
    dns.txt("_dmarc.rej.test", "v=DMARC1; p=reject");
    dns.txt("_dmarc.quar.test", "v=DMARC1; p=quarantine");
    dns.txt("_dmarc.mon.test", "v=DMARC1; p=none");
    let s = receiver(&dns, "");

    // Aligned DKIM: pass, even with p=reject.
    assert_eq!(dkimpy_send(&s, &dns, "dm1", "signed.test", false), "250");
    let ar = auth_results(s.inbox("bob@example.test").last().expect("delivered"));
    assert!(ar.contains("dmarc=pass"), "{ar}");
    assert!(ar.contains("header.from=signed.test"), "{ar}");

    // p=reject and both fail: 550 5.7.1 with the reason, nothing stored.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "x@rej.test",
        "bob@example.test",
        &msg("x@rej.test", "rej"),
    );
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(r.text().starts_with("5.7.1 "), "{}", r.text());
    assert!(
        r.text().contains("DMARC policy of rej.test is reject"),
        "{}",
        r.text()
    );
    assert_eq!(s.inbox("bob@example.test").len(), 1);

    // A changed body under p=reject: the DKIM signature no longer counts.
    let refused = dkimpy_send(&s, &dns, "dm2", "signed.test", true);
    assert!(refused.starts_with("550 5.7.1"), "{refused}");

    // p=quarantine: delivered, to Junk (made on the way), not INBOX.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "x@quar.test",
        "bob@example.test",
        &msg("x@quar.test", "quar"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    assert_eq!(s.inbox("bob@example.test").len(), 1);
    let junk = imap_folder(&s, ("bob@example.test", "hunter2"), "Junk");
    assert_eq!(junk.len(), 1, "{junk:?}");
    assert!(junk[0].contains("dmarc=fail"), "{}", junk[0]);
    assert!(junk[0].contains("Subject: quar"), "{}", junk[0]);

    // p=none: delivered to INBOX, recorded as a failure.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "x@mon.test",
        "bob@example.test",
        &msg("x@mon.test", "mon"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    let ar = auth_results(s.inbox("bob@example.test").last().expect("delivered"));
    assert!(ar.contains("dmarc=fail"), "{ar}");
    assert!(ar.contains("policy.dmarc=none"), "{ar}");
}

/// The (name, type) pairs the DNS server was asked, TXT only, in order.
fn txt_queries(dns: &DnsServer) -> Vec<String> {
    dns.queries()
        .into_iter()
        .filter(|(_, t)| *t == 16)
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn dmarc_relaxed_alignment_through_a_subdomain_under_a_two_label_suffix() {
    let dns = DnsServer::start();
    // SPF passes for example.co.uk; From is in mail.example.co.uk, which publishes no DMARC
    // record of its own: the organizational domain's applies (RFC 7489 §6.6.3), and relaxed
    // SPF alignment (the default, §3.1.2) joins the two.
    dns.txt("example.co.uk", "v=spf1 ip4:127.0.0.1 -all");
    dns.txt("_dmarc.example.co.uk", "v=DMARC1; p=reject");
    // The same with aspf=s: the subdomain no longer aligns, and p=reject refuses.
    dns.txt("strict.co.uk", "v=spf1 ip4:127.0.0.1 -all");
    dns.txt("_dmarc.strict.co.uk", "v=DMARC1; p=reject; aspf=s");
    let s = receiver(&dns, "");
    let r = send_mx(
        s.smtp(),
        "client.test",
        "bounce@example.co.uk",
        "bob@example.test",
        &msg("News <news@mail.example.co.uk>", "sub"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    let ar = auth_results(s.inbox("bob@example.test").last().expect("delivered"));
    assert!(ar.contains("spf=pass"), "{ar}");
    assert!(
        ar.contains("dmarc=pass header.from=mail.example.co.uk policy.dmarc=reject"),
        "{ar}"
    );
    let asked = txt_queries(&dns);
    let own = asked.iter().position(|n| n == "_dmarc.mail.example.co.uk");
    let org = asked.iter().position(|n| n == "_dmarc.example.co.uk");
    assert!(own.is_some() && org > own, "{asked:?}");
    // Never above the organizational domain: a public suffix speaks for no one.
    assert!(!asked.iter().any(|n| n == "_dmarc.co.uk"), "{asked:?}");

    let r = send_mx(
        s.smtp(),
        "client.test",
        "bounce@strict.co.uk",
        "bob@example.test",
        &msg("news@mail.strict.co.uk", "strict"),
    );
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(
        r.text()
            .starts_with("5.7.1 DMARC policy of mail.strict.co.uk is reject"),
        "{}",
        r.text()
    );
    assert_eq!(s.inbox("bob@example.test").len(), 1);
}

#[test]
fn dmarc_does_not_align_two_registrable_domains_under_one_public_suffix() {
    let dns = DnsServer::start();
    // a.co.uk's SPF passes, but From is b.co.uk: a different organization (co.uk is a public
    // suffix), so SPF does not align and b.co.uk's p=reject applies. A last-two-labels rule
    // took both for "co.uk" and let this through.
    dns.txt("a.co.uk", "v=spf1 ip4:127.0.0.1 -all");
    dns.txt("_dmarc.b.co.uk", "v=DMARC1; p=reject");
    // The same under a suffix of the list's private section.
    dns.txt("alice.github.io", "v=spf1 ip4:127.0.0.1 -all");
    dns.txt("_dmarc.bob.github.io", "v=DMARC1; p=reject");
    let s = receiver(&dns, "");
    for (mail_from, from) in [
        ("x@a.co.uk", "y@b.co.uk"),
        ("x@alice.github.io", "y@bob.github.io"),
    ] {
        let r = send_mx(
            s.smtp(),
            "client.test",
            mail_from,
            "bob@example.test",
            &msg(from, "cross"),
        );
        assert_eq!(r.code, 550, "{from}: {}", r.text());
        let d = from.split_once('@').map(|(_, d)| d).unwrap_or("");
        assert!(
            r.text().starts_with(&format!(
                "5.7.1 DMARC policy of {d} is reject, and this message passes neither SPF nor DKIM aligned with {d}"
            )),
            "{}",
            r.text()
        );
    }
    assert!(s.inbox("bob@example.test").is_empty());
}

#[test]
fn dmarc_policy_is_found_at_the_organizational_domain_with_its_subdomain_policy() {
    let dns = DnsServer::start();
    // p= for org.co.uk itself, sp= for its subdomains (RFC 7489 §6.3).
    dns.txt("_dmarc.org.co.uk", "v=DMARC1; p=reject; sp=quarantine");
    // A record at a public suffix: never consulted for a registrant's mail.
    dns.txt("_dmarc.co.uk", "v=DMARC1; p=reject");
    let s = receiver(&dns, "");

    // A subdomain two levels down, no record of its own, no SPF: the organizational domain's
    // record applies with sp=quarantine, so the message goes to Junk.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "x@deep.sub.org.co.uk",
        "bob@example.test",
        &msg("x@deep.sub.org.co.uk", "deep"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    assert!(s.inbox("bob@example.test").is_empty());
    let junk = imap_folder(&s, ("bob@example.test", "hunter2"), "Junk");
    assert_eq!(junk.len(), 1, "{junk:?}");
    let ar = auth_results(junk[0].as_bytes());
    assert!(
        ar.contains("dmarc=fail header.from=deep.sub.org.co.uk policy.dmarc=quarantine"),
        "{ar}"
    );
    // Asked: the From domain, then straight to the organizational domain (§6.6.3), nothing
    // in between and nothing above.
    let asked: Vec<String> = txt_queries(&dns)
        .into_iter()
        .filter(|n| n.starts_with("_dmarc."))
        .collect();
    assert_eq!(
        asked,
        ["_dmarc.deep.sub.org.co.uk", "_dmarc.org.co.uk"],
        "{asked:?}"
    );

    // The organizational domain itself: p=reject.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "x@org.co.uk",
        "bob@example.test",
        &msg("x@org.co.uk", "org"),
    );
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(
        r.text()
            .starts_with("5.7.1 DMARC policy of org.co.uk is reject"),
        "{}",
        r.text()
    );

    // victim.co.uk publishes nothing; _dmarc.co.uk does not speak for it.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "x@victim.co.uk",
        "bob@example.test",
        &msg("x@victim.co.uk", "victim"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    let ar = auth_results(s.inbox("bob@example.test").last().expect("delivered"));
    assert!(ar.contains("dmarc=none header.from=victim.co.uk"), "{ar}");
    assert!(!txt_queries(&dns).iter().any(|n| n == "_dmarc.co.uk"));
}

#[test]
fn every_author_domain_is_checked_and_the_strictest_failing_policy_applies() {
    let dns = DnsServer::start();
    dns.txt("pass.test", "v=spf1 ip4:127.0.0.1 -all");
    dns.txt("_dmarc.pass.test", "v=DMARC1; p=reject");
    dns.txt("_dmarc.rej.test", "v=DMARC1; p=reject");
    dns.txt("_dmarc.mon.test", "v=DMARC1; p=none");
    let s = receiver(&dns, "");
    let with_from = |from_lines: &str, subject: &str| {
        format!("{from_lines}\nTo: bob@example.test\nSubject: {subject}\n\nHello.\n")
    };
    // A second author in a domain that publishes p=reject and is not vouched for: one From
    // field with two addresses, then two From fields. RFC 7489 §6.6.1: each domain is
    // checked, the strictest failing policy applies.
    for (from, subject) in [
        ("From: a@pass.test, b@rej.test", "two-authors"),
        ("From: a@pass.test\nFrom: b@rej.test", "two-fields"),
    ] {
        let r = send_mx(
            s.smtp(),
            "client.test",
            "a@pass.test",
            "bob@example.test",
            &with_from(from, subject),
        );
        assert_eq!(r.code, 550, "{subject}: {}", r.text());
        assert!(
            r.text()
                .starts_with("5.7.1 DMARC policy of rej.test is reject"),
            "{}",
            r.text()
        );
    }
    assert!(s.inbox("bob@example.test").is_empty());

    // A second author under p=none: delivered, with one result per author domain.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "a@pass.test",
        "bob@example.test",
        &with_from("From: a@pass.test, b@mon.test", "monitored"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    let ar = auth_results(s.inbox("bob@example.test").last().expect("delivered"));
    assert!(
        ar.contains("dmarc=pass header.from=pass.test policy.dmarc=reject"),
        "{ar}"
    );
    assert!(
        ar.contains("dmarc=fail header.from=mon.test policy.dmarc=none"),
        "{ar}"
    );

    // One of our own domains as the second author, from outside: a forged local sender.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "a@pass.test",
        "bob@example.test",
        &with_from("From: a@pass.test, Alice <alice@example.test>", "forged"),
    );
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(
        r.text()
            .starts_with("5.7.1 example.test is a domain of this server"),
        "{}",
        r.text()
    );

    // More author domains than are checked: refused, saying why.
    let many: Vec<String> = (0..9).map(|i| format!("u@d{i}.test")).collect();
    let r = send_mx(
        s.smtp(),
        "client.test",
        "a@pass.test",
        "bob@example.test",
        &with_from(&format!("From: {}", many.join(", ")), "many"),
    );
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(
        r.text()
            .starts_with("5.7.1 the From field names more than 8 domains (the first: d0.test)"),
        "{}",
        r.text()
    );
    assert_eq!(s.inbox("bob@example.test").len(), 1);
}

/// The messages of a folder, read with Python's imaplib.
fn imap_folder(s: &TestServer, user: (&str, &str), folder: &str) -> Vec<String> {
    let out = s.python(&format!(
        r#"
import os, imaplib
m = imaplib.IMAP4('127.0.0.1', int(os.environ['IMAP_PORT']))
m.login('{}', '{}')
typ, _ = m.select('{folder}')
if typ == 'OK':
    typ, data = m.fetch('1:*', '(BODY.PEEK[])')
    for part in data:
        if isinstance(part, tuple):
            print(part[1].decode().replace('\r\n', '\\n'))
            print('=====')
m.logout()
"#,
        user.0, user.1
    ));
    out.split("=====\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.replace("\\n", "\r\n"))
        .collect()
}

#[test]
fn a_forged_local_sender_from_outside_is_refused() {
    let dns = DnsServer::start();
    dns.txt("example.test", "v=spf1 ip4:192.0.2.25 -all");
    let s = receiver(&dns, "");
    let r = send_mx(
        s.smtp(),
        "client.test",
        "alice@example.test",
        "bob@example.test",
        &msg("alice@example.test", "forged"),
    );
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(r.text().starts_with("5.7.1 "), "{}", r.text());
    assert!(
        r.text().contains("example.test is a domain of this server"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("submission"), "{}", r.text());
    // A foreign envelope sender with our domain in From only: refused too.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "x@other.test",
        "bob@example.test",
        &msg("Alice <alice@example.test>", "forged2"),
    );
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(s.inbox("bob@example.test").is_empty());
}

#[test]
fn a_spoofed_authentication_results_header_is_removed() {
    let dns = DnsServer::start();
    dns.txt("pass.test", "v=spf1 ip4:127.0.0.1 -all");
    let s = receiver(&dns, "");
    let m = "Authentication-Results: mx.example.test;\n\tdkim=pass header.d=bank.test; dmarc=pass\nAuthentication-Results: elsewhere.test; spf=pass\nFrom: a@pass.test\nTo: bob@example.test\nSubject: spoof\n\nHi.\n";
    let r = send_mx(
        s.smtp(),
        "client.test",
        "a@pass.test",
        "bob@example.test",
        m,
    );
    assert_eq!(r.code, 250, "{}", r.text());
    let stored = text(&s.inbox("bob@example.test")[0]);
    assert_eq!(
        stored
            .matches("Authentication-Results: mx.example.test")
            .count(),
        1,
        "{stored}"
    );
    assert!(!stored.contains("bank.test"), "{stored}");
    assert!(
        stored.contains("Authentication-Results: elsewhere.test; spf=pass"),
        "{stored}"
    );
    assert!(auth_results(stored.as_bytes()).contains("spf=pass"));
}

#[test]
fn tag_mode_refuses_nothing_and_loopback_is_unchecked_by_default() {
    let dns = DnsServer::start();
    dns.txt("rej.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("_dmarc.rej.test", "v=DMARC1; p=reject");
    let s = receiver(&dns, "[checks.domains]\n\"example.test\" = \"tag\"");
    let r = send_mx(
        s.smtp(),
        "client.test",
        "x@rej.test",
        "bob@example.test",
        &msg("x@rej.test", "tagged"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    let ar = auth_results(&s.inbox("bob@example.test")[0]);
    assert!(ar.contains("dmarc=fail"), "{ar}");

    // Default [checks]: loopback peers are not checked (no DNS asked, no header added).
    let plain = ServerConfig::example()
        .listen(&["smtp"])
        .extra(&dns.config())
        .start();
    let before = dns.queries().len();
    let r = send_mx(
        plain.smtp(),
        "client.test",
        "x@rej.test",
        "bob@example.test",
        &msg("x@rej.test", "plain"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    assert!(!text(&plain.inbox("bob@example.test")[0]).contains("Authentication-Results"));
    assert_eq!(dns.queries().len(), before);
}

#[test]
fn mailroom_dns_prints_the_records_and_check_finds_what_is_missing_or_wrong() {
    let dns = DnsServer::start();
    let s = ServerConfig::example()
        .listen(&["smtp"])
        .extra(&dns.config())
        .start();
    // Nothing published: every required record is missing (exit 1), the optional ones absent.
    let out = s.cli(&["dns", "--check", "example.test"], "");
    let report = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{report}\n{}",
        text(&out.stderr)
    );
    assert!(
        report.contains(
            "MISSING  MX example.test: publish example.test. 3600 IN MX 10 mx.example.test."
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "MISSING  TXT example.test: publish example.test. 3600 IN TXT \"v=spf1 mx -all\""
        ),
        "{report}"
    );
    assert!(
        report.contains("MISSING  TXT mailroom-ed25519._domainkey.example.test"),
        "{report}"
    );
    assert!(
        report.contains("MISSING  TXT mailroom-rsa._domainkey.example.test"),
        "{report}"
    );
    assert!(
        report.contains("MISSING  TXT _dmarc.example.test"),
        "{report}"
    );
    assert!(
        report.contains("absent   TXT _mta-sts.example.test (optional)"),
        "{report}"
    );

    // Everything `mailroom dns` prints, published: all ok (exit 0).
    let printed = publish(&s, "example.test", &dns);
    for why in [
        "; mail for example.test is delivered",
        "; SPF (RFC 7208)",
        "; DKIM (ed25519-sha256",
        "; DKIM (rsa-sha256",
        "; DMARC (RFC 7489)",
        "; optional, MTA-STS",
        "; optional, TLS-RPT",
    ] {
        assert!(printed.contains(why), "{why}: {printed}");
    }
    let out = s.cli(&["dns", "--check", "example.test"], "");
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report.matches("ok       ").count(), 7, "{report}");

    // A stale DKIM key and a second SPF record are wrong, and said so.
    dns.remove("mailroom-rsa._domainkey.example.test");
    dns.txt(
        "mailroom-rsa._domainkey.example.test",
        "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong",
    );
    dns.txt("example.test", "v=spf1 -all");
    let out = s.cli(&["dns", "--check", "example.test"], "");
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("WRONG    TXT mailroom-rsa._domainkey.example.test"),
        "{report}"
    );
    assert!(report.contains("2 SPF records"), "{report}");

    // A name that is not a domain: a clear refusal.
    let out = s.cli(&["dns", "alice@example.test"], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is not a domain name"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_queue_asks_the_dns_servers_for_mx_and_the_bounce_is_signed() {
    let dns = DnsServer::start();
    // RFC 7505 null MX: the domain takes no mail, so the first attempt fails for good.
    dns.add("nomail.test", Rec::Mx(0, ".".into()));
    let a = peers::server_a()
        .listen(&["submission"])
        .extra(&dns.config())
        .start();
    publish(&a, "a.test", &dns);
    submit(
        a.submission(),
        ALICE_A,
        &["x@nomail.test"],
        "From: alice@a.test\nTo: x@nomail.test\nSubject: to nowhere\n\nHi.\n",
    );
    a.wait_for(15, "the bounce", || a.inbox(ALICE_A.0).len() == 1);
    assert!(
        dns.queries()
            .iter()
            .any(|(n, t)| n == "nomail.test" && *t == 15),
        "{:?}",
        dns.queries()
    );
    let dsn = a.inbox(ALICE_A.0).remove(0);
    let shown = text(&dsn);
    assert!(shown.contains("null MX"), "{shown}");
    // From MAILER-DAEMON@mx.a.test, signed by a.test (relaxed alignment); dkimpy agrees.
    assert!(shown.contains("d=a.test"), "{shown}");
    let verdicts = dkimpy(VERIFY, &dns, &dsn);
    assert_eq!(verdicts.trim(), "0 True\n1 True", "{verdicts}\n{shown}");
}

#[test]
fn hostile_shapes_are_checked_without_harm() {
    let dns = DnsServer::start();
    dns.txt("pass.test", "v=spf1 ip4:127.0.0.1 -all");
    // A record that loops on itself (RFC 7208 §4.6.4 limits lookups): permerror, delivered.
    dns.txt("loop.test", "v=spf1 include:loop.test -all");
    let s = receiver(&dns, "");
    // No header section at all (a netcat user's message): SPF only, delivered.
    let r = send_mx(
        s.smtp(),
        "client.test",
        "a@pass.test",
        "bob@example.test",
        "just a line of text\n",
    );
    assert_eq!(r.code, 250, "{}", r.text());
    // A DKIM-Signature that is garbage: recorded, nothing else.
    let m = "DKIM-Signature: v=1; a=rsa-sha256; d=; b=!!!\nFrom: a@pass.test\nTo: bob@example.test\nSubject: junk sig\n\nHi.\n";
    let r = send_mx(
        s.smtp(),
        "client.test",
        "a@pass.test",
        "bob@example.test",
        m,
    );
    assert_eq!(r.code, 250, "{}", r.text());
    let r = send_mx(
        s.smtp(),
        "client.test",
        "a@loop.test",
        "bob@example.test",
        &msg("a@loop.test", "loop"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    // A null reverse-path: the HELO name's SPF is checked (RFC 7208 §2.4).
    dns.txt("helo.test", "v=spf1 ip4:127.0.0.1 -all");
    let r = send_mx(
        s.smtp(),
        "helo.test",
        "",
        "bob@example.test",
        &msg("MAILER-DAEMON@helo.test", "dsn"),
    );
    assert_eq!(r.code, 250, "{}", r.text());
    let inbox = s.inbox("bob@example.test");
    assert_eq!(inbox.len(), 4);
    assert!(
        auth_results(&inbox[0]).contains("spf=pass"),
        "{}",
        text(&inbox[0])
    );
    assert!(
        auth_results(&inbox[1]).contains("dkim="),
        "{}",
        text(&inbox[1])
    );
    assert!(
        auth_results(&inbox[2]).contains("spf=permerror"),
        "{}",
        text(&inbox[2])
    );
    let ar = auth_results(&inbox[3]);
    assert!(ar.contains("spf=pass"), "{ar}");
    assert!(
        ar.contains("smtp.mailfrom=<>") || ar.contains("postmaster@helo.test"),
        "{ar}"
    );
}
