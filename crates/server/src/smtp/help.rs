//! HELP (RFC 5321 §4.1.1.8): every command with one line each (what to type, what it does)
//! and a hint at what comes next in the session's current state; or, with an argument, help
//! on one command (VRFY and EXPN say whether they are switched on here and what their
//! answers mean).

use mailroom_proto::smtp::Reply;

/// What HELP needs to know about the session.
pub struct HelpState {
    pub greeted: bool,
    pub in_mail: bool,
    pub has_rcpt: bool,
    pub can_auth: bool,
    pub submission: bool,
    /// `[vrfy]` / `[expn]` for this listener.
    pub vrfy: bool,
    pub expn: bool,
}

/// (verb, usage, what it does), in the order of a session.
const TOPICS: &[(&str, &str, &str)] = &[
    (
        "EHLO",
        "EHLO your.host.name",
        "start the session (lists the extensions)",
    ),
    ("HELO", "HELO your.host.name", "start a plain SMTP session"),
    (
        "STARTTLS",
        "STARTTLS",
        "switch to TLS (when EHLO lists it), then EHLO again",
    ),
    (
        "AUTH",
        "AUTH LOGIN  or  AUTH PLAIN <base64>",
        "log in (base64 user name, then password)",
    ),
    (
        "MAIL",
        "MAIL FROM:<you@example.test>",
        "start a message and give its sender",
    ),
    (
        "RCPT",
        "RCPT TO:<friend@example.test>",
        "add a recipient (repeat for more)",
    ),
    (
        "DATA",
        "DATA",
        "send the message; end it with a line holding only \".\"",
    ),
    (
        "BDAT",
        "BDAT <octets> [LAST]",
        "send the message in chunks of exact size",
    ),
    ("RSET", "RSET", "forget the message in progress"),
    ("NOOP", "NOOP", "do nothing (keeps the connection alive)"),
    ("VRFY", "VRFY <name or address>", "is there such a user?"),
    ("EXPN", "EXPN <list>", "who is on a mailing list?"),
    (
        "HELP",
        "HELP [command]",
        "this text, or help on one command",
    ),
    ("QUIT", "QUIT", "end the session"),
];

/// The config key that switches VRFY or EXPN on this listener.
fn key(verb: &str, st: &HelpState) -> String {
    let listener = if st.submission { "submission" } else { "smtp" };
    format!("{} = true under [{}]", listener, verb.to_ascii_lowercase())
}

/// The extra lines of `HELP VRFY` / `HELP EXPN` (RFC 5321 §3.5).
fn switched(verb: &str, st: &HelpState) -> Vec<String> {
    let (on, meaning) = match verb {
        "VRFY" => (
            st.vrfy,
            "Answers: 250 name <address> (mail to it is delivered here), 553 with the possibilities when several users have the name, 550 no such user",
        ),
        _ => (
            st.expn,
            "Answers: one 250 line per member of the list, 553 with the possibilities when several lists have the name, 550 no such list (or a user, not a list)",
        ),
    };
    let state = if on {
        "Switched on here (RFC 5321 §3.5)".to_string()
    } else {
        format!(
            "Switched off here: every {verb} is answered 252 and tells nothing (RFC 5321 §7.3); the server's config turns it on with {}",
            key(verb, st)
        )
    };
    vec![meaning.to_string(), state]
}

pub fn reply(topic: Option<&str>, st: &HelpState) -> Reply {
    if let Some(t) = topic.map(str::trim).filter(|t| !t.is_empty()) {
        let upper = t.to_ascii_uppercase();
        return match TOPICS.iter().find(|(v, _, _)| *v == upper) {
            Some((verb, usage, what)) => {
                let lines = match *verb {
                    "VRFY" | "EXPN" => {
                        let example = if *verb == "VRFY" {
                            "VRFY usr1  or  VRFY usr1@example.test: is there such a user?"
                        } else {
                            "EXPN staff  or  EXPN staff@example.test: who is on the mailing list (an alias)?"
                        };
                        let mut lines = vec![example.to_string()];
                        lines.extend(switched(verb, st));
                        lines
                    }
                    _ => vec![format!("{usage}: {what}")],
                };
                Reply::multiline(214, "2.0.0", lines)
            }
            None => Reply::new(
                504,
                "5.5.1",
                format!("No help for '{t}'; HELP alone lists the commands"),
            ),
        };
    }
    let next = if !st.greeted {
        "Start with EHLO your.host.name"
    } else if !st.in_mail && st.submission && st.can_auth {
        "Log in with AUTH LOGIN, then MAIL FROM"
    } else if !st.in_mail {
        "Next: MAIL FROM:<you@example.test>"
    } else if !st.has_rcpt {
        "Next: RCPT TO:<friend@example.test>"
    } else {
        "Next: more RCPT TO, or DATA"
    };
    let mut lines = vec![format!("mailroom SMTP. {next}. The commands:")];
    for (verb, usage, what) in TOPICS {
        let off = match *verb {
            "VRFY" => !st.vrfy,
            "EXPN" => !st.expn,
            _ => false,
        };
        let what = if off {
            format!("{what} (switched off here)")
        } else {
            what.to_string()
        };
        lines.push(format!("  {usage:<36} {what}"));
    }
    lines.push("End of HELP (RFC 5321); HELP <command> for one command".into());
    Reply::multiline(214, "2.0.0", lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(greeted: bool, vrfy: bool) -> HelpState {
        HelpState {
            greeted,
            in_mail: false,
            has_rcpt: false,
            can_auth: true,
            submission: false,
            vrfy,
            expn: false,
        }
    }

    fn text(r: Reply) -> String {
        String::from_utf8(r.to_bytes()).expect("utf8")
    }

    #[test]
    fn help_lists_every_command_whatever_the_state() {
        for greeted in [false, true] {
            let t = text(reply(None, &state(greeted, false)));
            for (verb, _, _) in TOPICS {
                let n = t
                    .lines()
                    .filter(|l| l.starts_with(&format!("214-2.0.0   {verb} ")))
                    .count();
                assert_eq!(n, 1, "{verb} in {t}");
            }
            assert!(t.contains("VRFY <name or address>"), "{t}");
            assert!(
                t.contains("is there such a user? (switched off here)"),
                "{t}"
            );
            assert!(
                t.ends_with("214 2.0.0 End of HELP (RFC 5321); HELP <command> for one command\r\n")
            );
        }
        assert!(text(reply(None, &state(false, false))).starts_with(
            "214-2.0.0 mailroom SMTP. Start with EHLO your.host.name. The commands:\r\n"
        ));
        let t = text(reply(None, &state(true, true)));
        assert!(t.contains("is there such a user?\r\n"), "{t}");
    }

    #[test]
    fn help_on_vrfy_and_expn_says_whether_they_are_on() {
        let t = text(reply(Some("vrfy"), &state(true, false)));
        assert!(
            t.starts_with(
                "214-2.0.0 VRFY usr1  or  VRFY usr1@example.test: is there such a user?\r\n"
            ),
            "{t}"
        );
        assert!(t.contains("250 name <address>"), "{t}");
        assert!(
            t.ends_with("every VRFY is answered 252 and tells nothing (RFC 5321 §7.3); the server's config turns it on with smtp = true under [vrfy]\r\n"),
            "{t}"
        );
        let t = text(reply(Some("VRFY"), &state(true, true)));
        assert!(
            t.ends_with("214 2.0.0 Switched on here (RFC 5321 §3.5)\r\n"),
            "{t}"
        );
        let mut sub = state(true, false);
        sub.submission = true;
        let t = text(reply(Some("EXPN"), &sub));
        assert!(t.contains("who is on the mailing list"), "{t}");
        assert!(t.ends_with("submission = true under [expn]\r\n"), "{t}");
        assert_eq!(
            text(reply(Some("rcpt"), &sub)),
            "214 2.0.0 RCPT TO:<friend@example.test>: add a recipient (repeat for more)\r\n"
        );
        assert!(text(reply(Some("FOO"), &sub)).starts_with("504 5.5.1 No help for 'FOO'"));
    }
}
