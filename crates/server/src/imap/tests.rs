//! IMAP sessions driven from memory: whole sessions over `tokio::io::duplex`, with a real store
//! in a temporary directory. They cover what the session toolkit ([`crate::session`]) does for
//! IMAP: logins and the failure limit, the SASL exchange, STARTTLS, the BAD counter. The
//! replies asserted are the ones the server gives, so a change of wire behaviour shows up here.

use base64::Engine;

use crate::config::AuthTlsPolicy;
use crate::test_support::{Client, Harness};

/// The capabilities every session has after the state-dependent ones (`auth.rs`).
const COMMON_CAPS: &str = "SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH STATUS=SIZE BINARY CONDSTORE QRESYNC NOTIFY QUOTA QUOTA=RES-STORAGE SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT MULTIAPPEND SEARCHRES CONTEXT=SEARCH CONTEXT=SORT CATENATE";

/// The command-line limit of an IMAP session (`MAX_COMMAND_TEXT`), which also bounds a SASL
/// response line.
const LIMIT: usize = super::MAX_COMMAND_TEXT;

/// The BAD an unknown command gets.
const FROB: &str = "unknown command FROB; try CAPABILITY for the list of what this server does";

/// Starts a session and returns its greeting and the client's end.
async fn connect(h: &Harness) -> (String, Client) {
    let mut c = h.start(super::run_session);
    let greeting = c.line().await;
    (greeting, c)
}

/// One command, one (single-line) reply.
async fn cmd(c: &mut Client, line: &str) -> String {
    c.send(format!("{line}\r\n")).await;
    c.line().await
}

fn plain(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

fn logged_in_caps() -> String {
    format!("IMAP4rev1 IMAP4rev2 AUTH=PLAIN AUTH=LOGIN {COMMON_CAPS}")
}

/// LOGIN with a wrong password: delayed `NO [AUTHENTICATIONFAILED]`, the session goes on; the
/// right one logs in (a bare user name is completed with the only domain). At
/// `limits.max_auth_failures` failures the last NO is followed by `* BYE` and the close.
#[tokio::test]
async fn login_ok_failed_and_the_failure_limit() {
    let h = Harness::new(|c| c.limits.max_auth_failures = 2);
    let (greeting, mut c) = connect(&h).await;
    // No TLS configured: no STARTTLS; passwords in clear from a loopback client (the default
    // auth_require_tls policy).
    assert_eq!(
        greeting,
        format!(
            "* OK [CAPABILITY {}] mailroom IMAP4 server ready",
            logged_in_caps()
        )
    );
    assert_eq!(
        cmd(&mut c, "a1 LOGIN alice wrong").await,
        "a1 NO [AUTHENTICATIONFAILED] wrong user name or password; check both and try again"
    );
    assert_eq!(
        cmd(&mut c, "a2 STARTTLS").await,
        "a2 NO STARTTLS is not available: this server has no TLS certificate"
    );
    assert_eq!(
        cmd(&mut c, "a3 LOGIN alice alice-secret").await,
        format!(
            "a3 OK [CAPABILITY {}] LOGIN completed, welcome",
            logged_in_caps()
        )
    );
    assert_eq!(
        cmd(&mut c, "a4 LOGIN alice alice-secret").await,
        "a4 BAD you are already logged in"
    );

    let (_, mut c) = connect(&h).await;
    for tag in ["b1", "b2"] {
        assert_eq!(
            cmd(&mut c, &format!("{tag} LOGIN alice@example.test wrong")).await,
            format!(
                "{tag} NO [AUTHENTICATIONFAILED] wrong user name or password; check both and try again"
            )
        );
    }
    assert_eq!(
        c.line().await,
        "* BYE too many failed logins (2); closing the connection"
    );
    assert!(c.closed().await);
}

/// AUTHENTICATE PLAIN and LOGIN, with and without an initial response, and a failed one.
#[tokio::test]
async fn authenticate_plain_and_login() {
    let h = Harness::new(|c| c.limits.max_auth_failures = 1);
    let (_, mut c) = connect(&h).await;
    assert_eq!(cmd(&mut c, "a1 AUTHENTICATE PLAIN").await, "+ ");
    assert_eq!(cmd(&mut c, "*").await, "a1 BAD AUTHENTICATE cancelled");
    assert_eq!(cmd(&mut c, "a2 AUTHENTICATE LOGIN").await, "+ VXNlcm5hbWU6");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(cmd(&mut c, &b64("bob")).await, "+ UGFzc3dvcmQ6");
    assert_eq!(
        cmd(&mut c, &b64("bob-secret")).await,
        format!(
            "a2 OK [CAPABILITY {}] AUTHENTICATE completed, welcome",
            logged_in_caps()
        )
    );

    let (_, mut c) = connect(&h).await;
    let wrong = plain("alice@example.test", "wrong");
    assert_eq!(
        cmd(&mut c, &format!("b1 AUTHENTICATE PLAIN {wrong}")).await,
        "b1 NO [AUTHENTICATIONFAILED] wrong user name or password; check both and try again"
    );
    assert_eq!(
        c.line().await,
        "* BYE too many failed logins (1); closing the connection"
    );
    assert!(c.closed().await);
}

/// The one behaviour for an over-long SASL response (see `crate::session`): a tagged BAD, the
/// exchange is over, it is not a failed login (`max_auth_failures` is 1 here) but it counts
/// towards `limits.max_errors`.
#[tokio::test]
async fn authenticate_plain_with_an_over_long_response() {
    let h = Harness::new(|c| {
        c.limits.max_auth_failures = 1;
        c.limits.max_errors = 2;
    });
    let (_, mut c) = connect(&h).await;
    assert_eq!(cmd(&mut c, "a1 AUTHENTICATE PLAIN").await, "+ ");
    assert_eq!(
        cmd(&mut c, &"QUFB".repeat(LIMIT / 4 + 10)).await,
        format!(
            "a1 BAD AUTHENTICATE response line too long (the limit is {LIMIT} octets); start over with AUTHENTICATE"
        )
    );
    // The exchange is over: the next line is a command again.
    assert_eq!(cmd(&mut c, "a2 AUTHENTICATE PLAIN").await, "+ ");
    assert_eq!(
        cmd(&mut c, &plain("alice", "alice-secret")).await,
        format!(
            "a2 OK [CAPABILITY {}] AUTHENTICATE completed, welcome",
            logged_in_caps()
        )
    );
    // The over-long response was the first BAD; this is the second, and the last.
    assert_eq!(cmd(&mut c, "a3 FROB").await, format!("a3 BAD {FROB}"));
    assert_eq!(
        c.line().await,
        "* BYE too many bad commands (2); closing the connection"
    );
    assert!(c.closed().await);
}

/// STARTTLS (RFC 9051 §6.2.1): the tagged OK, plaintext pipelined behind it discarded (the
/// CVE-2011-0411 class), then no STARTTLS any more and passwords allowed.
#[tokio::test]
async fn starttls_discards_injected_plaintext() {
    let h = Harness::with_tls(|c| c.auth_require_tls = AuthTlsPolicy::Always);
    let (greeting, mut c) = connect(&h).await;
    assert_eq!(
        greeting,
        format!(
            "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED {COMMON_CAPS}] mailroom IMAP4 server ready"
        )
    );
    assert_eq!(
        cmd(&mut c, "a1 LOGIN alice alice-secret").await,
        "a1 NO [PRIVACYREQUIRED] passwords are only accepted over TLS here: use STARTTLS first, or the implicit-TLS port"
    );
    c.send("a2 STARTTLS\r\na3 LOGIN alice alice-secret\r\n")
        .await;
    assert_eq!(c.line().await, "a2 OK Begin TLS negotiation now");
    let server_tls = h.shared.tls.clone().expect("TLS configured");
    let mut c = c.start_tls(&server_tls).await;
    // The injected LOGIN was discarded: the first reply over TLS is CAPABILITY's.
    assert_eq!(
        cmd(&mut c, "a4 CAPABILITY").await,
        format!("* CAPABILITY {}", logged_in_caps())
    );
    assert_eq!(c.line().await, "a4 OK CAPABILITY completed");
    assert_eq!(
        cmd(&mut c, "a5 STARTTLS").await,
        "a5 BAD TLS is already active on this connection"
    );
    assert_eq!(
        cmd(&mut c, "a6 LOGIN alice alice-secret").await,
        format!(
            "a6 OK [CAPABILITY {}] LOGIN completed, welcome",
            logged_in_caps()
        )
    );
}

/// Every BAD counts towards `limits.max_errors` (an over-long line's untagged one too), a NO
/// does not; the last BAD is followed by `* BYE` and the close.
#[tokio::test]
async fn bad_counter_closes_the_session() {
    let h = Harness::new(|c| c.limits.max_errors = 3);
    let (_, mut c) = connect(&h).await;
    assert_eq!(cmd(&mut c, "a1 FROB").await, format!("a1 BAD {FROB}"));
    assert_eq!(
        cmd(&mut c, "a2 SELECT INBOX").await,
        "a2 BAD SELECT needs you to log in first: LOGIN user password or AUTHENTICATE PLAIN"
    );
    // Not counted: a NO.
    assert_eq!(
        cmd(&mut c, "a3 STARTTLS").await,
        "a3 NO STARTTLS is not available: this server has no TLS certificate"
    );
    assert_eq!(
        cmd(&mut c, &format!("a4 NOOP {}", "x".repeat(LIMIT))).await,
        format!(
            "* BAD command line too long (the limit is {LIMIT} octets); send long strings as literals"
        )
    );
    assert_eq!(
        c.line().await,
        "* BYE too many bad commands (3); closing the connection"
    );
    assert!(c.closed().await);
}
