//! HELP (RFC 5321 §4.1.1.8): the commands valid in the session's current state, each with an
//! example, or the syntax of one command.

use mailroom_proto::smtp::Reply;

/// What HELP needs to know about the session.
pub struct HelpState {
    pub greeted: bool,
    pub in_mail: bool,
    pub has_rcpt: bool,
    pub can_auth: bool,
    pub submission: bool,
}

/// (verb, usage, what it does)
const TOPICS: &[(&str, &str, &str)] = &[
    (
        "EHLO",
        "EHLO your.host.name",
        "start the session (lists the extensions)",
    ),
    ("HELO", "HELO your.host.name", "start a plain SMTP session"),
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
    (
        "VRFY",
        "VRFY <address>",
        "ask about an address (answered with 252)",
    ),
    (
        "HELP",
        "HELP [command]",
        "this text, or help on one command",
    ),
    ("QUIT", "QUIT", "end the session"),
];

pub fn reply(topic: Option<&str>, st: &HelpState) -> Reply {
    if let Some(t) = topic.map(str::trim).filter(|t| !t.is_empty()) {
        let upper = t.to_ascii_uppercase();
        return match TOPICS.iter().find(|(v, _, _)| *v == upper) {
            Some((_, usage, what)) => Reply::new(214, "2.0.0", format!("{usage}: {what}")),
            None => Reply::new(
                504,
                "5.5.1",
                format!("No help for '{t}'; HELP alone lists the commands"),
            ),
        };
    }
    let valid: &[&str] = if !st.greeted {
        &["EHLO", "HELO", "NOOP", "RSET", "VRFY", "HELP", "QUIT"]
    } else if !st.in_mail {
        &[
            "MAIL", "AUTH", "EHLO", "HELO", "NOOP", "RSET", "VRFY", "HELP", "QUIT",
        ]
    } else if !st.has_rcpt {
        &["RCPT", "RSET", "NOOP", "HELP", "QUIT"]
    } else {
        &["RCPT", "DATA", "BDAT", "RSET", "NOOP", "HELP", "QUIT"]
    };
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
    let mut lines = vec![format!("mailroom SMTP. {next}. Commands you can use now:")];
    for verb in valid {
        if *verb == "AUTH" && !st.can_auth {
            continue;
        }
        if let Some((_, usage, what)) = TOPICS.iter().find(|(v, _, _)| v == verb) {
            lines.push(format!("  {usage:<36} {what}"));
        }
    }
    lines.push("End of HELP (RFC 5321); HELP <command> for one command".into());
    Reply::multiline(214, "2.0.0", lines)
}
