//! The `pop` command of the agent: logs in over POP3 (RFC 1939) and runs the `pop>>>`
//! prompt, one POP3 command for each of its commands.

use std::io::Write;
use std::path::PathBuf;

use mailroom_client::pop3::{Pop3Client, Pop3Error};

use super::{fail, run_sub_prompt, server_of, CommandFailure, Flow, Session, SubPrompt};
use crate::agent::args::message_number;
use crate::agent::connect::pop3_login;
use crate::agent::failure::{pop3_failure, AgentError};
use crate::agent::show;

const POP_PROMPT: &str = "pop>>> ";

fn pop_help() {
    println!("  stat              number of messages and their total size");
    println!("  list [N]          each message's number and size");
    println!("  uidl [N]          each message's unique id");
    println!("  top N [LINES]     the header and the first LINES lines of the text");
    println!("  retr N            read message N (decoded: headers, text, attachments)");
    println!("  raw N             message N exactly as the server sent it");
    println!("  save N DIR        save message N's attachments into DIR");
    println!("  dele N            mark message N for deletion (done at quit)");
    println!("  rset              unmark all messages");
    println!("  noop              do nothing (keeps the session alive)");
    println!("  quit              end the session: marked messages are deleted now");
}

/// `pop`: log in, then the sub-prompt.
pub(super) fn command(s: &mut Session) -> Result<Flow, AgentError> {
    let pop3 = s.pop3.clone();
    let Some(server) = server_of(s, &pop3) else {
        return Ok(Flow::Continue);
    };
    let login = {
        let (server, user, password, apop) =
            (server.clone(), s.user.clone(), s.password.clone(), s.apop);
        let common_args = s.common.clone();
        s.rt.block_on(async move {
            pop3_login(&server, &user, &password, apop, &common_args, true).await
        })
    };
    let c = match login {
        Ok((c, reply)) => {
            println!("{reply}");
            c
        }
        Err(e) => {
            fail(s, e);
            return Ok(Flow::Continue);
        }
    };
    run_sub_prompt(s, &server, PopPrompt(c))
}

struct PopPrompt(Pop3Client);

impl SubPrompt for PopPrompt {
    type Reply = mailroom_client::pop3::Pop3Reply;
    const PROTOCOL: &'static str = "POP3";
    const AGAIN: &'static str = "pop";
    const QUIT: &'static str = "QUIT";
    const COMMANDS: &'static str = "stat list uidl top retr raw save dele rset noop quit";

    fn prompt(&self) -> String {
        POP_PROMPT.to_string()
    }
    fn help(&self) {
        pop_help()
    }
    fn one(
        &mut self,
        s: &Session,
        cmd: &str,
        args: &[&str],
        _line: &str,
    ) -> Result<(), PopFailure> {
        pop_one(s, &mut self.0, cmd, args)
    }
    fn quit(self, s: &mut Session) {
        pop_quit(s, self.0)
    }
    fn refusal(e: &Pop3Error) -> Option<String> {
        match e {
            Pop3Error::Rejected { reply, .. } => Some(reply.to_string()),
            _ => None,
        }
    }
    fn failure(e: Pop3Error, user: &str) -> AgentError {
        pop3_failure(e, false, user)
    }
}

fn pop_quit(s: &mut Session, c: Pop3Client) {
    match s.rt.block_on(c.quit()) {
        Ok(r) => println!("{r}"),
        Err(e) => {
            let e = pop3_failure(e, false, &s.user);
            fail(s, e);
        }
    }
}

type PopFailure = CommandFailure<mailroom_client::pop3::Pop3Reply>;

fn number_arg(args: &[&str], i: usize, usage: &str) -> Result<u32, AgentError> {
    match args.get(i) {
        Some(a) => message_number(a),
        None => Err(AgentError::local(format!("usage: {usage}"))),
    }
}

/// One POP3 command of the sub-prompt.
fn pop_one(s: &Session, c: &mut Pop3Client, cmd: &str, args: &[&str]) -> Result<(), PopFailure> {
    let rt = &s.rt;
    match cmd {
        "stat" => {
            let (n, size) = rt.block_on(c.stat())?;
            println!(
                "{n} message{}, {size} octets",
                if n == 1 { "" } else { "s" }
            );
        }
        "list" => {
            if args.is_empty() {
                let list = rt.block_on(c.list())?;
                println!(
                    "{} message{}",
                    list.len(),
                    if list.len() == 1 { "" } else { "s" }
                );
                for (n, size) in list {
                    println!("{n:>4} {size:>8} octets");
                }
            } else {
                let n = number_arg(args, 0, "list [N]")?;
                let (n, size) = rt.block_on(c.list_one(n))?;
                println!("{n:>4} {size:>8} octets");
            }
        }
        "uidl" => {
            if args.is_empty() {
                for (n, uid) in rt.block_on(c.uidl())? {
                    println!("{n:>4} {uid}");
                }
            } else {
                let n = number_arg(args, 0, "uidl [N]")?;
                let (n, uid) = rt.block_on(c.uidl_one(n))?;
                println!("{n:>4} {uid}");
            }
        }
        "top" => {
            let n = number_arg(args, 0, "top N [LINES]")?;
            let lines = match args.get(1) {
                Some(l) => l
                    .parse()
                    .map_err(|_| AgentError::local(format!("'{l}' is not a number of lines")))?,
                None => 0,
            };
            let head = rt.block_on(c.top(n, lines))?;
            print!("{}", String::from_utf8_lossy(&head).replace("\r\n", "\n"));
        }
        "retr" | "read" => {
            let n = number_arg(args, 0, "retr N")?;
            let msg = rt.block_on(c.retr(n))?;
            println!("--- message {n} ({} octets) ---", msg.len());
            print!("{}", show::render(&msg));
            println!("--- end of message {n} ---");
        }
        "raw" => {
            let n = number_arg(args, 0, "raw N")?;
            let msg = rt.block_on(c.retr(n))?;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&msg);
            let _ = out.flush();
        }
        "save" => {
            let n = number_arg(args, 0, "save N DIR")?;
            let Some(dir) = args.get(1) else {
                return Err(AgentError::local("usage: save N DIR").into());
            };
            let msg = rt.block_on(c.retr(n))?;
            let saved = show::save_attachments(&msg, &PathBuf::from(dir))?;
            if saved.is_empty() {
                println!("message {n} has no attachments");
            }
            for (path, size) in saved {
                println!("saved {} ({size} bytes)", path.display());
            }
        }
        "dele" | "delete" => {
            let n = number_arg(args, 0, "dele N")?;
            println!("{}", rt.block_on(c.dele(n))?);
        }
        "rset" => println!("{}", rt.block_on(c.rset())?),
        "noop" => println!("{}", rt.block_on(c.noop())?),
        other => {
            return Err(AgentError::local(format!(
                "unknown command '{other}': type help for the list"
            ))
            .into())
        }
    }
    Ok(())
}
