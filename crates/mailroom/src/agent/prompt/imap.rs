//! The `imap` command of the agent: logs in over IMAP (RFC 9051), selects INBOX and runs the
//! `imap:FOLDER>>>` prompt: folders, flags, search, copy and move, expunge, append, IDLE.
//!
//! Message numbers are IMAP sequence numbers, as POP3's are: 1 is the oldest message of the
//! selected folder. Where a command takes several messages it also takes an IMAP sequence set
//! (`1,3`, `2:4`, `5:*`).

use std::io::Write;
use std::path::PathBuf;

use mailroom_client::imap::parse::StatusText;
use mailroom_client::imap::{Fetched, FlagOp, ImapClient, ImapError};
use mailroom_client::trace::printable;

use super::{fail, run_sub_prompt, server_of, CommandFailure, Flow, Session, SubPrompt};
use crate::agent::args::message_number;
use crate::agent::connect::{imap_login, list_messages};
use crate::agent::failure::{imap_failure, AgentError};
use crate::agent::show;

/// A sequence set typed by a person: numbers, `a:b` ranges, `*`, separated by commas.
fn message_set(s: &str) -> Result<String, AgentError> {
    let bad = || {
        AgentError::local(format!(
            "'{s}' is not a message number or set (3, 1,4 or 2:5, as list shows them)"
        ))
    };
    if s.is_empty() {
        return Err(bad());
    }
    for part in s.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        for n in [a, b] {
            if n != "*" && !n.parse::<u32>().is_ok_and(|n| n > 0) {
                return Err(bad());
            }
        }
    }
    Ok(s.to_string())
}

/// A flag as typed: `seen`, `\Seen`, `flagged`, ... become the system flags (RFC 9051
/// §2.3.2); other words are keywords, which must be atoms.
fn flag_name(w: &str) -> Result<String, AgentError> {
    let bare = w.trim_start_matches('\\');
    let system = ["Seen", "Answered", "Flagged", "Deleted", "Draft"]
        .into_iter()
        .find(|f| f.eq_ignore_ascii_case(bare));
    if let Some(f) = system {
        return Ok(format!("\\{f}"));
    }
    if w.starts_with('\\')
        || w.is_empty()
        || !w.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']' | b'['
                )
        })
    {
        return Err(AgentError::local(format!(
            "'{w}' is not a flag: use seen, answered, flagged, deleted, draft or a keyword (letters, digits, $)"
        )));
    }
    Ok(w.to_string())
}

const IMAP_COMMANDS: &str =
    "folders select list read raw save flag unflag delete undelete expunge search copy move create rmfolder append noop idle quit";

fn imap_help() {
    println!("  folders             the folders (LIST), with message and unseen counts (STATUS)");
    println!("  select FOLDER       open another folder (SELECT); INBOX is opened at login");
    println!("  list                the messages: number, flags, size, sender, subject (FETCH)");
    println!(
        "                      flags: N new (not \\Seen), D \\Deleted, F \\Flagged, A \\Answered"
    );
    println!("  read N              read message N, decoded; marks it \\Seen (FETCH BODY[])");
    println!("  raw N               message N exactly as the server sent it (BODY.PEEK[])");
    println!("  save N DIR          save message N's attachments into DIR");
    println!("  flag N FLAG...      add flags: seen, answered, flagged, deleted, draft, keywords");
    println!("  unflag N FLAG...    remove flags (STORE -FLAGS)");
    println!("  delete N            mark N \\Deleted; expunge removes it (undelete N undoes it)");
    println!("  expunge             remove the messages marked \\Deleted now (EXPUNGE)");
    println!("  search KEYS...      IMAP search keys: unseen, from alice, subject lunch, since 1-Nov-2026");
    println!("  copy N FOLDER       copy message(s) to FOLDER; move N FOLDER moves them (MOVE)");
    println!("  create FOLDER       create a folder; rmfolder FOLDER deletes one (DELETE)");
    println!("  append FILE [FOLDER] store the message in FILE (RFC 5322) in FOLDER (APPEND)");
    println!("  noop                ask for news: new or removed messages (NOOP)");
    println!("  idle [SECONDS]      wait for news as it happens, 30 s unless told (IDLE)");
    println!(
        "  quit                log out (LOGOUT); messages marked \\Deleted stay until expunged"
    );
    println!("  N may be a set where it makes sense: 1,3 or 2:4 or 5:*");
}

/// `imap`: log in, select INBOX, then the sub-prompt `imap:FOLDER>>> ` (`imap>>> ` while no
/// folder is selected).
pub(super) fn command(s: &mut Session) -> Result<Flow, AgentError> {
    let imap = s.imap.clone();
    let Some(server) = server_of(s, &imap) else {
        return Ok(Flow::Continue);
    };
    let login = {
        let (server, user, password) = (server.clone(), s.user.clone(), s.password.clone());
        let common_args = s.common.clone();
        s.rt.block_on(async move {
            let (mut c, ok) = imap_login(&server, &user, &password, &common_args, true).await?;
            let sel = c
                .select("INBOX", false)
                .await
                .map_err(|e| imap_failure(e, false, &user))?;
            Ok::<_, AgentError>((c, ok, sel))
        })
    };
    let c = match login {
        Ok((c, mut ok, sel)) => {
            // The capability list in the OK is for programs (--trace shows it); not for people.
            if ok
                .code
                .as_deref()
                .is_some_and(|c| c.to_ascii_uppercase().starts_with("CAPABILITY"))
            {
                ok.code = None;
            }
            println!("{ok}");
            println!(
                "{}",
                describe_selected(&sel.name, sel.exists, sel.read_only)
            );
            c
        }
        Err(e) => {
            fail(s, e);
            return Ok(Flow::Continue);
        }
    };
    run_sub_prompt(s, &server, ImapPrompt(c))
}

struct ImapPrompt(ImapClient);

impl SubPrompt for ImapPrompt {
    type Reply = StatusText;
    const PROTOCOL: &'static str = "IMAP";
    const AGAIN: &'static str = "imap";
    const QUIT: &'static str = "LOGOUT";
    const COMMANDS: &'static str = IMAP_COMMANDS;

    /// `imap:FOLDER>>> `, or `imap>>> ` while no folder is selected.
    fn prompt(&self) -> String {
        match self.0.selected() {
            Some(f) => format!("imap:{}>>> ", printable(f.name.as_bytes())),
            None => "imap>>> ".to_string(),
        }
    }
    fn help(&self) {
        imap_help()
    }
    fn one(
        &mut self,
        s: &Session,
        cmd: &str,
        args: &[&str],
        line: &str,
    ) -> Result<(), ImapFailure> {
        one(s, &mut self.0, cmd, args, line)
    }
    fn quit(self, s: &mut Session) {
        logout(s, self.0)
    }
    /// A tagged NO or BAD; a BYE ends the session.
    fn refusal(e: &ImapError) -> Option<String> {
        match e {
            ImapError::Rejected { reply, .. }
                if reply.status != mailroom_client::imap::parse::Status::Bye =>
            {
                Some(reply.to_string())
            }
            _ => None,
        }
    }
    fn failure(e: ImapError, user: &str) -> AgentError {
        imap_failure(e, false, user)
    }
}

/// What an untagged response during IDLE means, in words (`None`: nothing to say).
fn describe_news(r: &mailroom_client::imap::parse::Response) -> Option<String> {
    use mailroom_client::imap::parse::Response;
    match r {
        Response::Numbered { n, keyword, .. } => Some(match keyword.as_str() {
            "EXISTS" => format!(
                "* {n} EXISTS: the folder has {n} message{} now",
                if *n == 1 { "" } else { "s" }
            ),
            "EXPUNGE" => {
                format!("* {n} EXPUNGE: message {n} was removed (the ones after it move up)")
            }
            "FETCH" => format!("* {n} FETCH: the flags of message {n} changed"),
            "RECENT" => return None,
            other => format!("* {n} {other}"),
        }),
        Response::UntaggedStatus(s) => Some(format!("* {s}")),
        _ => None,
    }
}

fn describe_selected(name: &str, exists: u32, read_only: bool) -> String {
    format!(
        "{}: {exists} message{}{}",
        printable(name.as_bytes()),
        if exists == 1 { "" } else { "s" },
        if read_only { " (read-only)" } else { "" }
    )
}

fn logout(s: &mut Session, c: ImapClient) {
    match s.rt.block_on(c.logout()) {
        Ok(r) => println!("{r}"),
        Err(e) => {
            let e = imap_failure(e, false, &s.user);
            fail(s, e);
        }
    }
}

type ImapFailure = CommandFailure<StatusText>;

fn arg<'a>(args: &[&'a str], i: usize, usage: &str) -> Result<&'a str, AgentError> {
    args.get(i)
        .copied()
        .ok_or_else(|| AgentError::local(format!("usage: {usage}")))
}

fn number(args: &[&str], usage: &str) -> Result<u32, AgentError> {
    message_number(arg(args, 0, usage)?)
}

/// The rest of the typed line after the command word and `skip` arguments (a folder name may
/// hold spaces).
fn rest_of_line(line: &str, skip: usize) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..=skip {
        rest = rest
            .split_once(char::is_whitespace)
            .map(|(_, r)| r.trim_start())
            .unwrap_or("");
    }
    rest.trim_end()
}

fn print_flags(changed: &[Fetched]) {
    for f in changed {
        let flags = f.flags.clone().unwrap_or_default();
        println!(
            "message {}: {}",
            f.seq,
            if flags.is_empty() {
                "(no flags)".to_string()
            } else {
                printable(flags.join(" ").as_bytes())
            }
        );
    }
}

/// Prints what untagged news a command brought (new messages, expunges) in the folder that
/// was selected before it.
fn print_news(before: Option<(String, u32)>, c: &ImapClient) {
    let (Some(sel), Some((name, before))) = (c.selected(), before) else {
        return;
    };
    if sel.name == name && sel.exists != before {
        println!(
            "({} now has {} message{}; it had {before})",
            printable(sel.name.as_bytes()),
            sel.exists,
            if sel.exists == 1 { "" } else { "s" }
        );
    }
}

/// One command of the sub-prompt.
fn one(
    s: &Session,
    c: &mut ImapClient,
    cmd: &str,
    args: &[&str],
    line: &str,
) -> Result<(), ImapFailure> {
    let rt = &s.rt;
    let before = c.selected().map(|f| (f.name.clone(), f.exists));
    match cmd {
        "folders" | "lsub" | "mailboxes" => {
            let folders = rt.block_on(c.list("*"))?;
            for f in folders {
                let noselect = f
                    .attributes
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case("\\Noselect"));
                let counts = if noselect {
                    String::new()
                } else {
                    match rt.block_on(c.status(&f.name, &["MESSAGES", "UNSEEN"])) {
                        Ok(st) => {
                            let get = |k: &str| {
                                st.iter()
                                    .find(|(n, _)| n == k)
                                    .map(|(_, v)| *v)
                                    .unwrap_or(0)
                            };
                            let n = get("MESSAGES");
                            let messages = format!("{n} message{}", if n == 1 { "" } else { "s" });
                            format!("{messages:>14}, {} unseen", get("UNSEEN"))
                        }
                        Err(ImapError::Rejected { .. }) => String::new(),
                        Err(e) => return Err(e.into()),
                    }
                };
                let special: Vec<&str> = f
                    .attributes
                    .iter()
                    .map(String::as_str)
                    .filter(|a| {
                        !a.eq_ignore_ascii_case("\\HasNoChildren")
                            && !a.eq_ignore_ascii_case("\\HasChildren")
                    })
                    .collect();
                let row = format!(
                    "  {:<24} {counts:<28} {}",
                    printable(f.name.as_bytes()),
                    printable(special.join(" ").as_bytes())
                );
                println!("{}", row.trim_end());
            }
        }
        "select" | "cd" | "examine" => {
            let name = rest_of_line(line, 0);
            if name.is_empty() {
                return Err(AgentError::local(format!("usage: {cmd} FOLDER")).into());
            }
            let sel = rt.block_on(c.select(name, cmd == "examine"))?;
            println!(
                "{}",
                describe_selected(&sel.name, sel.exists, sel.read_only)
            );
        }
        "list" | "ls" | "headers" => {
            if c.selected().is_none() {
                return Err(AgentError::local(
                    "no folder is selected: type select FOLDER first (folders lists them)",
                )
                .into());
            }
            let list = rt.block_on(list_messages(c))?;
            let name = c.selected().map(|f| f.name.clone()).unwrap_or_default();
            println!(
                "{} message{} in {}",
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                printable(name.as_bytes())
            );
            for f in list {
                let sum = show::summary(f.body().unwrap_or(b""));
                println!(
                    "{:>4} {:<4} {:>8}  {:<32}  {}",
                    f.seq,
                    show::flag_letters(f.flags.as_deref().unwrap_or(&[])),
                    f.size.unwrap_or(0),
                    show::truncate(&sum.from, 32),
                    sum.subject
                );
            }
        }
        "read" | "retr" | "fetch" => {
            let n = number(args, "read N")?;
            let msg = rt.block_on(c.fetch_message(n, false))?;
            println!("--- message {n} ({} octets) ---", msg.len());
            print!("{}", show::render(&msg));
            println!("--- end of message {n} ---");
        }
        "raw" => {
            let n = number(args, "raw N")?;
            let msg = rt.block_on(c.fetch_message(n, true))?;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&msg);
            let _ = out.flush();
        }
        "save" => {
            let n = number(args, "save N DIR")?;
            let dir = rest_of_line(line, 1);
            if dir.is_empty() {
                return Err(AgentError::local("usage: save N DIR").into());
            }
            let msg = rt.block_on(c.fetch_message(n, true))?;
            let saved = show::save_attachments(&msg, &PathBuf::from(dir))?;
            if saved.is_empty() {
                println!("message {n} has no attachments");
            }
            for (path, size) in saved {
                println!("saved {} ({size} bytes)", path.display());
            }
        }
        "flag" | "unflag" => {
            let usage = format!("{cmd} N FLAG... (seen, answered, flagged, deleted, draft)");
            let set = message_set(arg(args, 0, &usage)?)?;
            if args.len() < 2 {
                return Err(AgentError::local(format!("usage: {usage}")).into());
            }
            let flags = args[1..]
                .iter()
                .map(|w| flag_name(w))
                .collect::<Result<Vec<_>, _>>()?;
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let op = if cmd == "flag" {
                FlagOp::Add
            } else {
                FlagOp::Remove
            };
            print_flags(&rt.block_on(c.store(&set, op, &flags))?);
        }
        "delete" | "dele" | "undelete" => {
            let set = message_set(arg(args, 0, &format!("{cmd} N"))?)?;
            let op = if cmd == "undelete" {
                FlagOp::Remove
            } else {
                FlagOp::Add
            };
            rt.block_on(c.store(&set, op, &["\\Deleted"]))?;
            if cmd == "undelete" {
                println!("message {set} no longer marked \\Deleted");
            } else {
                println!(
                    "message {set} marked \\Deleted (expunge removes it; undelete {set} undoes this)"
                );
            }
        }
        "expunge" => {
            let gone = rt.block_on(c.expunge())?;
            if gone.is_empty() {
                println!("no message was marked \\Deleted: nothing removed");
            } else {
                let count = gone.len();
                println!(
                    "removed {count} message{}; the others are renumbered (type list)",
                    if count == 1 { "" } else { "s" }
                );
            }
        }
        "search" | "find" => {
            let keys = rest_of_line(line, 0);
            if keys.is_empty() {
                return Err(AgentError::local(
                    "usage: search KEYS (e.g. search unseen, search from alice, search subject \"lunch plans\")",
                )
                .into());
            }
            let found = rt.block_on(c.search(keys))?;
            if found.is_empty() {
                println!("no message matches");
            } else {
                let list: Vec<String> = found.iter().map(u32::to_string).collect();
                println!(
                    "{} match{}: {}",
                    found.len(),
                    if found.len() == 1 { "" } else { "es" },
                    list.join(" ")
                );
            }
        }
        "copy" | "move" => {
            let usage = format!("{cmd} N FOLDER");
            let set = message_set(arg(args, 0, &usage)?)?;
            let folder = rest_of_line(line, 1);
            if folder.is_empty() {
                return Err(AgentError::local(format!("usage: {usage}")).into());
            }
            if cmd == "copy" {
                rt.block_on(c.copy(&set, folder))?;
                println!("copied {set} to {}", printable(folder.as_bytes()));
            } else {
                rt.block_on(c.move_to(&set, folder))?;
                println!(
                    "moved {set} to {}; the others are renumbered (type list)",
                    printable(folder.as_bytes())
                );
            }
        }
        "append" | "upload" => {
            let path = arg(args, 0, "append FILE [FOLDER]")?;
            let folder = match rest_of_line(line, 1) {
                "" => c
                    .selected()
                    .map(|f| f.name.clone())
                    .unwrap_or_else(|| "INBOX".to_string()),
                f => f.to_string(),
            };
            let message = std::fs::read(path)
                .map_err(|e| AgentError::local(format!("cannot read {path}: {e}")))?;
            if message.is_empty() {
                return Err(
                    AgentError::local(format!("{path} is empty: nothing to append")).into(),
                );
            }
            let ok = rt.block_on(c.append(&folder, &[], &message))?;
            println!("{ok}");
        }
        "create" | "mkdir" => {
            let name = rest_of_line(line, 0);
            if name.is_empty() {
                return Err(AgentError::local("usage: create FOLDER").into());
            }
            println!("{}", rt.block_on(c.create(name))?);
        }
        "rmfolder" | "rmdir" => {
            let name = rest_of_line(line, 0);
            if name.is_empty() {
                return Err(AgentError::local("usage: rmfolder FOLDER").into());
            }
            println!("{}", rt.block_on(c.delete(name))?);
        }
        "noop" => {
            let a = rt.block_on(c.noop())?;
            println!("{}", a.status);
        }
        "idle" | "wait" => {
            let secs = match args.first() {
                Some(a) => match a.parse::<u64>() {
                    Ok(n) if (1..=1740).contains(&n) => n,
                    _ => {
                        return Err(AgentError::local(format!(
                            "'{a}' is not a number of seconds from 1 to 1740 (29 minutes, RFC 9051 §5.4)"
                        ))
                        .into())
                    }
                },
                None => 30,
            };
            println!("waiting up to {secs} s for news (IDLE, RFC 2177): new mail shows here as it arrives");
            let done = rt.block_on(c.idle(std::time::Duration::from_secs(secs), |r| {
                if let Some(text) = describe_news(r) {
                    println!("{text}");
                }
            }))?;
            println!("{done}");
        }
        "close" => {
            println!("{}", rt.block_on(c.close())?);
            println!("(no folder is selected now: select one, or quit)");
        }
        other => {
            return Err(AgentError::local(format!(
                "unknown command '{other}': type help for the list"
            ))
            .into())
        }
    }
    print_news(before, c);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_flags() {
        assert_eq!(message_set("3").ok().as_deref(), Some("3"));
        assert_eq!(message_set("1,3:5,7:*").ok().as_deref(), Some("1,3:5,7:*"));
        for bad in ["", "0", "a", "1,,2", "1:", "-1", "1 2", "(1)"] {
            assert!(message_set(bad).is_err(), "{bad}");
        }
        assert_eq!(flag_name("seen").ok().as_deref(), Some("\\Seen"));
        assert_eq!(flag_name("\\FLAGGED").ok().as_deref(), Some("\\Flagged"));
        assert_eq!(flag_name("$Junk").ok().as_deref(), Some("$Junk"));
        for bad in ["\\Recent", "a(b", "x\"", "\\Foo"] {
            assert!(flag_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rest_of_line_keeps_spaces_in_names() {
        assert_eq!(rest_of_line("select My Folder ", 0), "My Folder");
        assert_eq!(rest_of_line("  copy 3  Old Mail", 1), "Old Mail");
        assert_eq!(rest_of_line("select", 0), "");
    }
}
