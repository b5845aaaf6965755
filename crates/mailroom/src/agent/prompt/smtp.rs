//! The `smtp` command of the agent: a form (To, Cc, Subject, the text, attachments) that
//! builds the message and sends it through the session's SMTP server.

use std::path::PathBuf;

use super::input::{Complete, Read};
use super::{fail, Flow, Session};
use crate::agent::compose::{Attachment, Draft, Mailbox};
use crate::agent::failure::{AgentError, Failure};
use crate::agent::send::{recipient_results, send_message};

/// Reads a list of addresses, one or more a line (comma-separated), until an empty line.
fn read_addresses(s: &mut Session, prompt: &str) -> Result<Option<Vec<Mailbox>>, AgentError> {
    let mut out = Vec::new();
    loop {
        match s.input.field(prompt, Complete::Nothing)? {
            Read::Eof | Read::Interrupted => return Ok(None),
            Read::Line(l) if l.trim().is_empty() => return Ok(Some(out)),
            Read::Line(l) => match Mailbox::parse_list(&l) {
                Ok(list) => out.extend(list),
                Err(e) => println!("  {e}; type it again (or an empty line to go on)"),
            },
        }
    }
}

/// `smtp`: asks To, Cc, Subject, the text and attachments, then sends.
pub(super) fn command(s: &mut Session) -> Result<Flow, AgentError> {
    println!("To: one or more addresses a line; an empty line ends the list.");
    let Some(to) = read_addresses(s, "To: ")? else {
        println!("(cancelled: nothing sent)");
        return Ok(Flow::Continue);
    };
    if to.is_empty() {
        println!("no recipient: nothing sent");
        return Ok(Flow::Continue);
    }
    let Some(cc) = read_addresses(s, "Cc: ")? else {
        println!("(cancelled: nothing sent)");
        return Ok(Flow::Continue);
    };
    let subject = match s.input.field("Subject: ", Complete::Nothing)? {
        Read::Line(l) => l,
        _ => {
            println!("(cancelled: nothing sent)");
            return Ok(Flow::Continue);
        }
    };
    println!("Text of the message; end it with a line holding a single \".\":");
    let mut body = String::new();
    loop {
        match s.input.field("", Complete::Nothing)? {
            Read::Line(l) if l == "." => break,
            Read::Line(l) => {
                body.push_str(&l);
                body.push('\n');
            }
            _ => {
                println!("(cancelled: nothing sent)");
                return Ok(Flow::Continue);
            }
        }
    }
    println!("Attachments: a file path a line; an empty line ends the list.");
    let mut attachments = Vec::new();
    loop {
        match s.input.field("Attach: ", Complete::Files)? {
            Read::Line(l) if l.trim().is_empty() => break,
            Read::Line(l) => match Attachment::from_path(&PathBuf::from(l.trim())) {
                Ok(a) => {
                    println!(
                        "  attached {} ({}, {} bytes)",
                        a.name,
                        a.content_type,
                        a.data.len()
                    );
                    attachments.push(a);
                }
                Err(e) => println!("  {e}; type another path (or an empty line to go on)"),
            },
            _ => {
                println!("(cancelled: nothing sent)");
                return Ok(Flow::Continue);
            }
        }
    }
    let draft = Draft {
        from: Mailbox {
            name: None,
            address: s.user.clone(),
        },
        to,
        cc,
        bcc: Vec::new(),
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
                    println!(
                        "NOT sent to {}: {} refused {}: {}",
                        r.address, s.smtp.server, r.command, r.reply
                    );
                }
            }
            if refused {
                s.failure = Some(Failure::Refused);
            }
        }
        Err(e) => fail(s, e),
    }
    Ok(Flow::Continue)
}
