//! The client side of TLS: the agent's `--tls`, `--starttls`, `--ca`, `--insecure` against the
//! server's self-signed certificate, and the outbound queue's STARTTLS (opportunistic, and per
//! route `require_tls` / `verify` / `ca`).

mod support;

use support::cli::{mailroom, send_args};
use support::peers::{self, ALICE_A, BOB_B};
use support::tls::{cert_path, tls_server};
use support::*;

#[test]
fn agent_send_and_read_over_tls_with_ca() {
    let s = tls_server("auth_require_tls = true", "");
    let ca = cert_path(&s).display().to_string();
    // STARTTLS on the submission port, verified against the self-signed certificate.
    let sub = s.submission().to_string();
    let r = mailroom(&send_args(&sub, &["--starttls", "--ca", &ca]), b"", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    // Implicit TLS on the submissions port.
    let subs = s.addr("submissions").to_string();
    let r = mailroom(&send_args(&subs, &["--tls", "--ca", &ca]), b"", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(s.inbox(BOB.0).len(), 2);
    // Reading: STLS and implicit POP3.
    let r = mailroom(
        &[
            "inbox",
            "-e",
            BOB.0,
            "-p",
            BOB.1,
            "--starttls",
            "--ca",
            &ca,
            "--pop3",
            &s.pop3().to_string(),
            "list",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.starts_with("2 messages"), "{}", r.all());
    let r = mailroom(
        &[
            "inbox",
            "-e",
            BOB.0,
            "-p",
            BOB.1,
            "--tls",
            "--ca",
            &ca,
            "--pop3",
            &s.addr("pop3s").to_string(),
            "list",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    // Plain text is refused by the policy: the login fails with a clear message.
    let r = mailroom(
        &[
            "inbox",
            "-e",
            BOB.0,
            "-p",
            BOB.1,
            "--pop3",
            &s.pop3().to_string(),
            "list",
        ],
        b"",
        &[],
    );
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("STLS"), "{}", r.all());

    // Reading over IMAP: STARTTLS, then implicit TLS (the imaps listener), both verified.
    for (mode, addr) in [("--starttls", s.addr("imap")), ("--tls", s.addr("imaps"))] {
        let r = mailroom(
            &[
                "inbox",
                "-e",
                BOB.0,
                "-p",
                BOB.1,
                mode,
                "--ca",
                &ca,
                "--imap",
                &addr.to_string(),
                "list",
                "--trace",
            ],
            b"",
            &[],
        );
        assert_eq!(r.code, 0, "{mode}: {}", r.all());
        assert!(r.stdout.starts_with("2 messages"), "{}", r.all());
        if mode == "--starttls" {
            let starttls = r.stderr.find("C: a1 STARTTLS").expect("STARTTLS sent");
            let login = r.stderr.find(" LOGIN ").expect("LOGIN sent");
            assert!(starttls < login, "{}", r.all());
        }
    }
    // In clear the policy forbids a password: the server says LOGINDISABLED, and the agent
    // does not send one.
    let r = mailroom(
        &[
            "inbox",
            "-e",
            BOB.0,
            "-p",
            BOB.1,
            "--imap",
            &s.addr("imap").to_string(),
            "list",
            "--trace",
        ],
        b"",
        &[],
    );
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stderr.contains("LOGINDISABLED"), "{}", r.all());
    assert!(r.stderr.contains("give --starttls or --tls"), "{}", r.all());
    assert!(
        !r.stderr.contains(" LOGIN "),
        "a password was sent: {}",
        r.all()
    );
}

#[test]
fn agent_verifies_certificates_by_default() {
    let s = tls_server("", "");
    // No --ca: the self-signed certificate is not trusted (exit 3, with a hint).
    let subs = s.addr("submissions").to_string();
    let r = mailroom(&send_args(&subs, &["--tls"]), b"", &[]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("--ca"), "{}", r.all());
    assert!(s.inbox(BOB.0).is_empty());
    // --insecure: accepted without verification.
    let r = mailroom(&send_args(&subs, &["--tls", "--insecure"]), b"", &[]);
    assert_eq!(r.code, 0, "{}", r.all());
}

/// B (b.test: bob) with an SMTP listener (and the self-signed certificate every server makes).
fn server_b() -> TestServer {
    peers::server_b().listen(&["smtp"]).start()
}

/// A (a.test: alice) with a submission listener, routing b.test by `route` (TOML) and not
/// retrying within the test.
fn server_a(route: &str) -> TestServer {
    peers::server_a()
        .accounts(&[ALICE_A])
        .listen(&["submission"])
        .route_to("b.test", route)
        .table("queue", "retry = [\"1h\"]")
        .start()
}

/// The queue upgrades with STARTTLS when the peer offers it: B records ESMTPS.
#[test]
fn queue_uses_starttls_opportunistically() {
    let b = server_b();
    let a = server_a(&format!("\"{}\"", b.smtp()));
    submit(a.submission(), ALICE_A, &[BOB_B.0], "Subject: x\n\nhello\n");
    b.wait_for(15, "delivery to B", || b.inbox(BOB_B.0).len() == 1);
    let m = String::from_utf8_lossy(&b.inbox(BOB_B.0)[0]).to_string();
    assert!(m.contains("by mx.b.test (mailroom) with ESMTPS"), "{m}");
}

/// `verify = true` with `ca` = B's certificate: delivered over verified TLS.
#[test]
fn queue_route_verify_with_ca() {
    let b = server_b();
    let route = format!(
        "{{ host = \"{}\", verify = true, ca = {:?} }}",
        b.smtp(),
        cert_path(&b).display().to_string()
    );
    let a = server_a(&route);
    submit(a.submission(), ALICE_A, &[BOB_B.0], "Subject: x\n\nhello\n");
    b.wait_for(15, "delivery to B", || b.inbox(BOB_B.0).len() == 1);
}

/// `verify = true` without a CA that trusts B's self-signed certificate: no delivery, the
/// message stays queued with the TLS failure as the reason.
#[test]
fn queue_route_verify_refuses_untrusted_certificate() {
    let b = server_b();
    let route = format!(
        "{{ host = \"{}\", require_tls = true, verify = true }}",
        b.smtp()
    );
    let a = server_a(&route);
    submit(a.submission(), ALICE_A, &[BOB_B.0], "Subject: x\n\nhello\n");
    a.wait_for(15, "a failed attempt", || {
        a.queue()
            .iter()
            .any(|q| q.recipients.iter().any(|r| r.attempts > 0))
    });
    let q = a.queue();
    let err = q[0].recipients[0].last_error.clone().unwrap_or_default();
    assert!(err.contains("STARTTLS") || err.contains("TLS"), "{err}");
    assert!(b.inbox(BOB_B.0).is_empty());
}
