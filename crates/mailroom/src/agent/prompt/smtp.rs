//! The `smtp` command of the agent: a form in the classic lab order (the recipients, one or
//! more a line until an empty line; the subject; the text, ended by a line holding a single
//! `.`) that builds the message and sends it through the session's SMTP server.
//!
//! Cc, Bcc and attachments are asked for only with a tilde command on a line of the text
//! (as mailx has them): `~c ADDRESS`, `~b ADDRESS`, `~a FILE`; `~~` starts a line that
//! begins with one `~`. So a piped script that types recipient, subject and text sends the
//! message as typed.

use std::path::PathBuf;

use super::input::{Complete, Read};
use super::{fail, Flow, Session};
use crate::agent::compose::{Attachment, Draft, Mailbox};
use crate::agent::failure::{AgentError, Failure};
use crate::agent::send::{recipient_results, send_message};

/// Reads a list of addresses, one or more a line (comma-separated), until an empty line.
/// From a pipe a bad address cancels the message (a script cannot type it again).
fn read_addresses(s: &mut Session, prompt: &str) -> Result<Option<Vec<Mailbox>>, AgentError> {
    let mut out = Vec::new();
    loop {
        match s.input.field(prompt, Complete::Nothing)? {
            Read::Eof | Read::Interrupted => return Ok(None),
            Read::Line(l) if l.trim().is_empty() => return Ok(Some(out)),
            Read::Line(l) => match Mailbox::parse_list(&l) {
                Ok(list) => out.extend(list),
                Err(e) if s.input.is_pipe() => {
                    fail(s, e);
                    return Ok(None);
                }
                Err(e) => println!("  {e}; type it again (or an empty line to go on)"),
            },
        }
    }
}

/// The message was not sent: said, and (from a pipe) a failure for the exit code.
fn cancelled(s: &mut Session, why: &str) -> Flow {
    if s.input.is_pipe() {
        let e = AgentError::local(format!("{why}: the message was NOT sent"));
        fail(s, e);
    } else {
        println!("({why}: nothing sent)");
    }
    Flow::Continue
}

/// What a line of the text is: text, or a tilde command.
#[derive(Debug, PartialEq, Eq)]
enum TextLine<'a> {
    Text(&'a str),
    Cc(&'a str),
    Bcc(&'a str),
    Attach(&'a str),
    End,
}

fn text_line(l: &str) -> TextLine<'_> {
    if l == "." {
        return TextLine::End;
    }
    if l.starts_with("~~") {
        // `~~x` is the text `~x`.
        return TextLine::Text(&l[1..]);
    }
    for (prefix, kind) in [("~c ", 'c'), ("~b ", 'b'), ("~a ", 'a')] {
        if let Some(arg) = l.strip_prefix(prefix) {
            let arg = arg.trim();
            return match kind {
                'c' => TextLine::Cc(arg),
                'b' => TextLine::Bcc(arg),
                _ => TextLine::Attach(arg),
            };
        }
    }
    TextLine::Text(l)
}

/// `smtp`: asks the recipients, the subject and the text, then sends.
pub(super) fn command(s: &mut Session) -> Result<Flow, AgentError> {
    println!("To: one or more addresses a line; an empty line ends the list.");
    let Some(to) = read_addresses(s, "To: ")? else {
        return Ok(cancelled(s, "cancelled"));
    };
    if to.is_empty() {
        return Ok(cancelled(s, "no recipient"));
    }
    let subject = match s.input.field("Subject: ", Complete::Nothing)? {
        Read::Line(l) => l,
        _ => return Ok(cancelled(s, "cancelled")),
    };
    println!(
        "Content: end it with a line holding a single \".\" (~c ADDRESS adds a Cc, ~b ADDRESS a Bcc, ~a FILE attaches a file)."
    );
    let mut body = String::new();
    let (mut cc, mut bcc, mut attachments) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let line = match s.input.field("", Complete::Nothing)? {
            Read::Line(l) => l,
            _ => return Ok(cancelled(s, "cancelled before the \".\" line")),
        };
        match text_line(&line) {
            TextLine::End => break,
            TextLine::Text(t) => {
                body.push_str(t);
                body.push('\n');
            }
            kind @ (TextLine::Cc(_) | TextLine::Bcc(_)) => {
                let (bcc_line, a) = match kind {
                    TextLine::Bcc(a) => (true, a),
                    TextLine::Cc(a) => (false, a),
                    _ => continue,
                };
                match Mailbox::parse_list(a) {
                    Ok(list) => {
                        for m in list {
                            println!("  {} {m}", if bcc_line { "Bcc:" } else { "Cc:" });
                            if bcc_line {
                                bcc.push(m);
                            } else {
                                cc.push(m);
                            }
                        }
                    }
                    Err(e) if s.input.is_pipe() => {
                        fail(s, e);
                        return Ok(cancelled(s, "a bad address"));
                    }
                    Err(e) => println!("  {e}; type the ~c line again"),
                }
            }
            TextLine::Attach(path) => match Attachment::from_path(&PathBuf::from(path)) {
                Ok(a) => {
                    println!(
                        "  attached {} ({}, {} bytes)",
                        a.name,
                        a.content_type,
                        a.data.len()
                    );
                    attachments.push(a);
                }
                Err(e) if s.input.is_pipe() => {
                    fail(s, e);
                    return Ok(cancelled(s, "a file that cannot be attached"));
                }
                Err(e) => println!("  {e}; type the ~a line again"),
            },
        }
    }
    let draft = Draft {
        from: Mailbox {
            name: None,
            address: s.user.clone(),
        },
        to,
        cc,
        bcc,
        subject,
        body,
        attachments,
    };
    let message = match draft.build() {
        Ok(m) => m,
        Err(e) => {
            fail(s, e);
            return Ok(Flow::Continue);
        }
    };
    let rcpts = draft.recipients();
    let from = s.user.clone();
    let result = s.rt.block_on(send_message(
        &s.smtp,
        &from,
        &rcpts,
        &message,
        &mut |line| {
            println!("  {line}");
        },
    ));
    match result {
        Ok(outcome) => {
            let mut refused = false;
            for r in recipient_results(&outcome, &rcpts, &from) {
                if r.accepted {
                    println!("sent to {}", r.address);
                } else {
                    refused = true;
                    let line = format!(
                        "NOT sent to {}: {} refused {}: {}",
                        r.address, s.smtp.server, r.command, r.reply
                    );
                    // Shown in the session; from a pipe also on stderr, where a script
                    // looks for its errors.
                    println!("{line}");
                    if s.input.is_pipe() {
                        eprintln!("mailroom: {line}");
                    }
                }
            }
            if refused {
                s.failed(Failure::Refused);
            }
        }
        Err(e) => fail(s, e),
    }
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_commands_and_text() {
        assert_eq!(text_line("."), TextLine::End);
        assert_eq!(text_line(".."), TextLine::Text(".."));
        assert_eq!(text_line("Hello"), TextLine::Text("Hello"));
        assert_eq!(text_line("~c carol@x "), TextLine::Cc("carol@x"));
        assert_eq!(text_line("~b dave@x"), TextLine::Bcc("dave@x"));
        assert_eq!(text_line("~a /tmp/f.png"), TextLine::Attach("/tmp/f.png"));
        assert_eq!(text_line("~~c not a cc"), TextLine::Text("~c not a cc"));
        assert_eq!(text_line("~cool"), TextLine::Text("~cool"));
    }
}
