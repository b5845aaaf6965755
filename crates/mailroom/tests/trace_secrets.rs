//! The session trace never shows a password, not even when the command carrying it does not
//! parse: every hostile form of AUTH, PASS, APOP, LOGIN and AUTHENTICATE is sent to a real
//! server with every trace on, and the server log is searched for each secret and its
//! base64 while the masked line is still there to read.

mod support;

use support::imap::Imap;
use support::pop3::Pop;
use support::{b64, Client, ServerConfig, TestServer, ALICE, BOB, CAROL};

/// Every listener, every trace on (what `--trace` switches on), fast failure delays.
fn traced_server() -> TestServer {
    let all = ["smtp", "submission", "pop3", "imap"];
    ServerConfig::example()
        .listen(&all)
        .trace(&all)
        .limits("auth_failure_delay = \"10ms\"\nmax_auth_failures = 100")
        .start()
}

/// Asserts that no secret, nor its base64, is anywhere in the server log.
fn assert_not_logged(s: &TestServer, secrets: &[String]) {
    let log = s.log_text();
    for secret in secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{secret:?} in the log:\n{log}"
        );
        let encoded = b64(secret);
        assert!(!log.contains(&encoded), "{encoded:?} in the log:\n{log}");
    }
}

#[test]
fn smtp_auth_lines_that_do_not_parse_are_masked() {
    let s = traced_server();
    let plain = format!("\0{}\0Smtp1-pw-Zq8x", ALICE.0);
    let login_pw = "Smtp2-pw-Kd4v".to_string();
    let lower = format!("\0{}\0Smtp3-pw-Ty7m", BOB.0);
    let cont = format!("\0{}\0Smtp4-pw-Ne2c", CAROL.0);
    let mut c = Client::connect(s.submission());
    c.expect_code(220);
    c.cmd("EHLO pc1", 250);
    // RFC 4954 §4 allows one initial response: a second word makes the line a syntax error.
    c.cmd(&format!("AUTH PLAIN {} x", b64(&plain)), 501);
    c.cmd(&format!("AUTH LOGIN {} extra junk", b64(&login_pw)), 501);
    c.cmd(&format!("auth plain {} garbage", b64(&lower)), 501);
    // A SASL continuation line stays masked as a whole.
    c.cmd("AUTH PLAIN", 334);
    c.cmd(&b64(&cont), 535);
    // A password glued to the verb: the unknown-command reply does not repeat it either.
    let r = c.cmd("AUTHSmtp5-glued-Fy3w", 500);
    assert!(r.text().contains("'AUTH ****'"), "{r:?}");
    c.cmd("QUIT", 221);
    s.wait_for_log("] C: QUIT");
    let log = s.log_text();
    for masked in [
        "] C: AUTH PLAIN ****\n",
        "] C: AUTH LOGIN ****\n",
        "] C: auth plain ****\n",
        "] C: AUTH PLAIN\n",
        "] C: ****\n",
    ] {
        assert!(log.contains(masked), "{masked:?} missing:\n{log}");
    }
    assert_not_logged(
        &s,
        &[
            plain,
            login_pw,
            lower,
            cont,
            "Smtp1-pw-Zq8x".into(),
            "Smtp3-pw-Ty7m".into(),
            "Smtp4-pw-Ne2c".into(),
            "Smtp5-glued-Fy3w".into(),
        ],
    );
}

#[test]
fn pop3_pass_apop_and_auth_lines_are_masked() {
    let s = traced_server();
    let spaced = "Pop1 pass with spaces Hw3r".to_string();
    let apop_secret = "Pop2-not-a-digest-Vb6q".to_string();
    let auth = format!("\0{}\0Pop3-pw-Lm5s", ALICE.0);
    let mut p = Pop::connect(s.pop3());
    p.ok(&format!("USER {}", ALICE.0));
    // RFC 1939 §7 PASS takes the rest of the line, spaces and all: a wrong one.
    let e = p.err(&format!("PASS {spaced}"));
    assert!(!e.contains("Hw3r"), "{e}");
    // APOP with a "digest" that is no digest, and with a word too many.
    p.err(&format!("APOP {} {apop_secret}", ALICE.0));
    p.err(&format!("APOP {} {apop_secret} extra", ALICE.0));
    p.err(&format!("apop {apop_secret}"));
    // A well-formed APOP shows its user name; the digest is masked.
    p.err(&format!(
        "APOP {} 0123456789abcdef0123456789abcdef",
        ALICE.0
    ));
    p.err(&format!("AUTH PLAIN {} junk", b64(&auth)));
    // A password glued to the keyword: the unknown-command reply does not repeat it either.
    let e = p.err("PASSPop4-glued-Cz8r");
    assert!(e.contains("'PASS ****'"), "{e}");
    p.ok("QUIT");
    s.wait_for_log("] C: QUIT");
    let log = s.log_text();
    for masked in [
        "] C: PASS ****\n",
        "] C: APOP ****\n",
        "] C: apop ****\n",
        &format!("] C: APOP {} ****\n", ALICE.0),
        "] C: AUTH PLAIN ****\n",
    ] {
        assert!(log.contains(masked), "{masked:?} missing:\n{log}");
    }
    assert!(
        !log.contains("0123456789abcdef0123456789abcdef"),
        "APOP digest in the log:\n{log}"
    );
    assert_not_logged(
        &s,
        &[
            spaced,
            "pass with spaces".into(),
            apop_secret,
            auth,
            "Pop3-pw-Lm5s".into(),
            "Pop4-glued-Cz8r".into(),
        ],
    );
}

#[test]
fn imap_login_and_authenticate_lines_are_masked_parsed_or_not() {
    let s = traced_server();
    let mut i = Imap::connect(s.addr("imap"));
    // A LOGIN behind a tag of 100 octets, with a word too many (BAD), and a parsed one.
    let tag = "t".repeat(100);
    let long_tag_pw = "Imap1-pw-Rf9k";
    let (t, _) = {
        i.c.send(&format!("{tag} LOGIN {} {long_tag_pw} extra", ALICE.0));
        i.until_tag(&tag)
    };
    assert!(t.starts_with(&format!("{tag} BAD ")), "{t}");
    let parsed_pw = "Imap2-pw-Gs3j";
    i.c.send(&format!("{tag} LOGIN {} {parsed_pw}", ALICE.0));
    let (t, _) = i.until_tag(&tag);
    assert!(t.starts_with(&format!("{tag} NO ")), "{t}");
    // The password in a synchronizing literal: the parsed command, and one with junk after
    // the literal (BAD).
    let literal_pw = "Imap3-pw-Wc8d";
    i.c.send(&format!("l1 LOGIN {} {{{}}}", ALICE.0, literal_pw.len()));
    assert!(i.line().expect("go ahead").starts_with("+ "));
    i.c.send(literal_pw);
    let (t, _) = i.until_tag("l1");
    assert!(t.starts_with("l1 NO "), "{t}");
    let literal_junk_pw = "Imap4-pw-Pa2n";
    i.c.send(&format!(
        "l2 LOGIN {} {{{}}}",
        ALICE.0,
        literal_junk_pw.len()
    ));
    assert!(i.line().expect("go ahead").starts_with("+ "));
    i.c.send(&format!("{literal_junk_pw} \"unbalanced"));
    let (t, _) = i.until_tag("l2");
    assert!(t.starts_with("l2 BAD "), "{t}");
    // Unbalanced quotes.
    let quoted_pw = "Imap5-pw-Xe4u";
    i.c.send(&format!("x LOGIN \"{} {quoted_pw}", ALICE.0));
    let (t, _) = i.until_tag("x");
    assert!(t.starts_with("x BAD "), "{t}");
    // AUTHENTICATE with an initial response and junk after it.
    let sasl = format!("\0{}\0Imap6-pw-Jh7t", ALICE.0);
    i.c.send(&format!("y AUTHENTICATE PLAIN {} junk", b64(&sasl)));
    let (t, _) = i.until_tag("y");
    assert!(t.starts_with("y BAD "), "{t}");
    // A password with a space, unquoted: the BAD reply does not repeat the rest of it.
    i.c.send(&format!("w LOGIN {} my Imap8-pw-Bv5y", ALICE.0));
    let (t, _) = i.until_tag("w");
    assert!(
        t.starts_with("w BAD unexpected text after the password"),
        "{t}"
    );
    // A password glued to the command name.
    let (t, _) = {
        i.c.send("v LOGINImap9-glued-Qs6e");
        i.until_tag("v")
    };
    assert!(t.starts_with("v BAD unknown command LOGIN ****"), "{t}");
    // A LOGIN with no tag at all.
    let untagged_pw = "Imap7-pw-Mq1b";
    let r = i.raw(&format!("LOGIN {} {untagged_pw}", ALICE.0));
    assert!(r.starts_with("* BAD "), "{r}");
    i.ok("LOGOUT");
    s.wait_for_log("LOGOUT");
    let log = s.log_text();
    for masked in [
        format!("] C: {tag} LOGIN ****\n"),
        format!("] C: {tag} LOGIN {} ****\n", ALICE.0),
        format!("] C: l1 LOGIN {} ****\n", ALICE.0),
        "] C: l2 LOGIN ****\n".to_string(),
        "] C: x LOGIN ****\n".to_string(),
        "] C: y AUTHENTICATE PLAIN ****\n".to_string(),
        "] C: LOGIN ****\n".to_string(),
        "] C: w LOGIN ****\n".to_string(),
        "] C: v LOGIN ****\n".to_string(),
    ] {
        assert!(log.contains(&masked), "{masked:?} missing:\n{log}");
    }
    assert_not_logged(
        &s,
        &[
            long_tag_pw.into(),
            parsed_pw.into(),
            literal_pw.into(),
            literal_junk_pw.into(),
            quoted_pw.into(),
            sasl,
            "Imap6-pw-Jh7t".into(),
            untagged_pw.into(),
            "Imap8-pw-Bv5y".into(),
            "Imap9-glued-Qs6e".into(),
        ],
    );
}
