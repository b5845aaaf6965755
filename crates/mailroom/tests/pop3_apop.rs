//! APOP (RFC 1939 §7) for accounts made with `mailroom user add --apop` or given an
//! `apop_secret` in the config (issue 16, item 8): Python's poplib `apop()` logs in; an account
//! without a secret gets a reply that says why and what to do; a wrong digest is a failed
//! login; the secret shows up neither in the log nor in `user list`.

mod support;

use support::pop3::Pop;
use support::{TestServer, ALICE};

const LIMITS: &str = "[limits]\nauth_failure_delay = \"10ms\"\nmax_auth_failures = 2\n";

/// `poplib.POP3.apop(user, secret)`: prints `OK <reply>` or `ERR <reply>`.
fn poplib_apop(s: &TestServer, user: &str, secret: &str) -> String {
    s.python(&format!(
        r#"
import os, poplib
p = poplib.POP3(os.environ["HOST"], int(os.environ["POP3_PORT"]))
try:
    r = p.apop({user:?}, {secret:?})
    print("OK " + r.decode())
    p.quit()
except poplib.error_proto as e:
    print("ERR " + e.args[0].decode())
"#
    ))
    .trim()
    .to_string()
}

fn server() -> TestServer {
    let extra = format!(
        "{LIMITS}\n[[accounts]]\naddress = \"erin@example.test\"\npassword = \"erin-login\"\napop_secret = \"erin-apop-secret\"\n"
    );
    TestServer::start_with(&extra, &[])
}

#[test]
fn apop_works_for_accounts_with_a_secret_and_says_why_for_others() {
    let s = server();
    let add = s.cli(
        &["user", "add", "dave@example.test", "--apop"],
        "dave-login\ndave-apop-secret\n",
    );
    assert!(add.status.success(), "{add:?}");
    let plain = s.cli(&["user", "add", "frank@example.test"], "frank-login\n");
    assert!(plain.status.success(), "{plain:?}");

    // Made with --apop: APOP with the secret works; the password is still the login password.
    let r = poplib_apop(&s, "dave@example.test", "dave-apop-secret");
    assert!(
        r.starts_with("OK +OK dave@example.test has 0 messages"),
        "{r}"
    );
    assert!(
        poplib_apop(&s, "dave@example.test", "dave-login").starts_with("ERR -ERR [AUTH] "),
        "the login password is not the APOP secret"
    );
    let mut p = Pop::connect(s.pop3());
    p.ok("USER dave@example.test");
    p.ok("PASS dave-login");
    p.ok("QUIT");
    // From the config's apop_secret.
    let r = poplib_apop(&s, "erin@example.test", "erin-apop-secret");
    assert!(
        r.starts_with("OK +OK erin@example.test has 0 messages"),
        "{r}"
    );

    // Without a secret: says why and what to do.
    let r = poplib_apop(&s, "frank@example.test", "frank-login");
    assert_eq!(
        r,
        "ERR -ERR [AUTH] APOP is not set up for this account; log in with USER and PASS, or ask the administrator to run: mailroom user passwd frank@example.test --apop"
    );
    // `user passwd --apop` sets it up.
    let set = s.cli(
        &["user", "passwd", "frank@example.test", "--apop"],
        "frank-apop\n",
    );
    assert!(set.status.success(), "{set:?}");
    let r = poplib_apop(&s, "frank@example.test", "frank-apop");
    assert!(r.starts_with("OK +OK frank@example.test"), "{r}");
    // ... and leaves the password alone.
    let mut p = Pop::connect(s.pop3());
    p.ok("USER frank@example.test");
    p.ok("PASS frank-login");
    p.ok("QUIT");
    // The config's plain-text password still works as the secret (as before).
    assert!(poplib_apop(&s, ALICE.0, ALICE.1).starts_with("OK +OK "));

    // The secrets are in neither `user list` nor the log.
    let list = s.cli(&["user", "list"], "");
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    let log = s.log_text();
    for secret in ["dave-apop-secret", "erin-apop-secret", "frank-apop"] {
        assert!(!list.contains(secret), "{list}");
        assert!(!log.contains(secret), "{log}");
    }
}

#[test]
fn a_wrong_digest_and_a_missing_secret_count_as_failed_logins() {
    let s = server();
    let plain = s.cli(&["user", "add", "frank@example.test"], "frank-login\n");
    assert!(plain.status.success(), "{plain:?}");
    // max_auth_failures = 2: the second failure, of either kind, closes the session.
    let mut p = Pop::connect(s.pop3());
    let first = p.err("APOP erin@example.test 0123456789abcdef0123456789abcdef");
    assert!(first.starts_with("-ERR [AUTH] "), "{first}");
    let second = p.err("APOP frank@example.test 0123456789abcdef0123456789abcdef");
    assert!(second.contains("too many failures"), "{second}");
    assert!(p.closed());
    // An unknown name gets the same answer as an account without a secret.
    let mut p = Pop::connect(s.pop3());
    let nobody = p.err("APOP nobody@example.test 0123456789abcdef0123456789abcdef");
    assert!(
        nobody.starts_with("-ERR [AUTH] APOP is not set up for this account;"),
        "{nobody}"
    );
}
