//! Mail authentication end to end: DKIM signatures of submitted mail checked by dkimpy (an
//! independent implementation, Debian's python3-dkim) with the public key from a real DNS
//! answer; SPF, DKIM and DMARC checks at the MX listener against records served by a DNS
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
