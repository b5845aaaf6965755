//! `mailroom agent`: the interactive client of the networking labs, `[smtp|pop|imap|exit]>>>`.
//!
//! On a terminal the prompts have line editing and history (rustyline). Driven by a pipe,
//! the same agent reads its commands from stdin and echoes each one after its prompt, so a
//! lab's batch script is a text file and the output reads like a terminal session.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use mailroom_client::pop3::{Pop3Client, Pop3Error};
use rustyline::error::ReadlineError;

use super::common::{self, pop3_failure, AgentError, Failure, Service};
use super::compose::{Attachment, Draft, Mailbox};
use super::send::{recipient_results, send_message, smtp_target};
use super::{inbox, show, AgentArgs};

const MAIN_PROMPT: &str = "[smtp|pop|imap|exit]>>> ";
const POP_PROMPT: &str = "pop>>> ";
const MAIN_COMMANDS: &str = "smtp pop imap exit help";
const POP_COMMANDS: &str = "stat list uidl top retr raw save dele rset noop quit";

/// What Tab completes at the current prompt.
#[derive(Clone, Copy)]
pub(super) enum Complete {
    /// The command word, from this list.
    Words(&'static str),
    /// File names (the attachment prompt).
    Files,
    Nothing,
}

/// Tab completion for the terminal: command words at the three prompts, file names at
/// `Attach:`.
pub(super) struct AgentHelper {
    mode: std::cell::Cell<Complete>,
    files: rustyline::completion::FilenameCompleter,
}

impl rustyline::completion::Completer for AgentHelper {
    type Candidate = rustyline::completion::Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Self::Candidate>)> {
        match self.mode.get() {
            Complete::Files => self.files.complete(line, pos, ctx),
            Complete::Nothing => Ok((pos, Vec::new())),
            Complete::Words(words) => {
                let typed = &line[..pos];
                // Only the first word is a command.
                if typed.trim_start().contains(char::is_whitespace) {
                    return Ok((pos, Vec::new()));
                }
                let start = typed.len() - typed.trim_start().len();
                let prefix = typed.trim_start().to_ascii_lowercase();
                let found = words
                    .split_whitespace()
                    .chain(["help", "exit"])
                    .filter(|w| w.starts_with(&prefix))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .map(|w| rustyline::completion::Pair {
                        display: w.to_string(),
                        replacement: format!("{w} "),
                    })
                    .collect();
                Ok((start, found))
            }
        }
    }
}

impl rustyline::hint::Hinter for AgentHelper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for AgentHelper {}
impl rustyline::validate::Validator for AgentHelper {}
impl rustyline::Helper for AgentHelper {}

type Editor = rustyline::Editor<AgentHelper, rustyline::history::DefaultHistory>;

/// What one read gave.
pub(super) enum Read {
    Line(String),
    /// End of input (Ctrl-D, or the end of the piped script).
    Eof,
    /// Ctrl-C on a terminal.
    Interrupted,
}

/// Where commands come from: a terminal with line editing, or a pipe.
pub(super) enum Input {
    Tty(Box<Editor>),
    Pipe(std::io::StdinLock<'static>),
}

impl Input {
    fn new() -> Input {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            if let Ok(mut ed) = Editor::new() {
                ed.set_helper(Some(AgentHelper {
                    mode: std::cell::Cell::new(Complete::Nothing),
                    files: rustyline::completion::FilenameCompleter::new(),
                }));
                return Input::Tty(Box::new(ed));
            }
        }
        Input::Pipe(std::io::stdin().lock())
    }

    pub(super) fn read(&mut self, prompt: &str, history: bool) -> Result<Read, AgentError> {
        match self {
            Input::Tty(ed) => {
                if let Some(h) = ed.helper() {
                    h.mode.set(completion_for(prompt));
                }
                let read = ed.readline(prompt);
                match read {
                    Ok(line) => {
                        if history && !line.trim().is_empty() {
                            let _ = ed.add_history_entry(line.as_str());
                        }
                        Ok(Read::Line(line))
                    }
                    Err(ReadlineError::Eof) => Ok(Read::Eof),
                    Err(ReadlineError::Interrupted) => Ok(Read::Interrupted),
                    Err(e) => Err(AgentError::local(format!(
                        "cannot read from the terminal: {e}"
                    ))),
                }
            }
            Input::Pipe(stdin) => {
                let mut out = std::io::stdout().lock();
                let _ = write!(out, "{prompt}");
                let _ = out.flush();
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) => {
                        let _ = writeln!(out);
                        Ok(Read::Eof)
                    }
                    Ok(_) => {
                        let line = line.trim_end_matches(['\r', '\n']).to_string();
                        // Echo, so that the transcript shows what the script typed.
                        let _ = writeln!(out, "{line}");
                        Ok(Read::Line(line))
                    }
                    Err(e) => Err(AgentError::local(format!("cannot read stdin: {e}"))),
                }
            }
        }
    }
}

/// What Tab completes after `prompt`.
fn completion_for(prompt: &str) -> Complete {
    if prompt == MAIN_PROMPT {
        Complete::Words(MAIN_COMMANDS)
    } else if prompt == POP_PROMPT {
        Complete::Words(POP_COMMANDS)
    } else if prompt.starts_with("imap") {
        Complete::Words(super::imap::IMAP_COMMANDS)
    } else if prompt == "Attach: " {
        Complete::Files
    } else {
        Complete::Nothing
    }
}

/// Everything a session needs.
pub(super) struct Session {
    pub(super) user: String,
    pub(super) password: String,
    smtp: super::send::SmtpTarget,
    /// The POP3 and IMAP servers, or why there is none (said when `pop` / `imap` is typed,
    /// so that a config without those listeners still lets you send).
    pop3: Result<String, String>,
    pub(super) imap: Result<String, String>,
    apop: bool,
    pub(super) common: common::CommonArgs,
    pub(super) rt: tokio::runtime::Runtime,
    pub(super) input: Input,
    /// The last failure, which becomes the exit code.
    pub(super) failure: Option<Failure>,
}

/// Whether the agent goes on after a command.
#[derive(PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Exit,
}

pub(super) fn fail(session: &mut Session, e: AgentError) {
    eprintln!("mailroom: {}", e.message);
    session.failure = Some(e.failure);
}

pub fn run(args: AgentArgs) -> Result<ExitCode, AgentError> {
    let user = Mailbox::parse(&args.user)?.address;
    let (pop3, pop3_shown) = optional_server(common::server_addr(
        Service::Pop3.with_tls(args.common.tls),
        &args.pop3,
        &args.config,
        &user,
    ));
    let (imap, imap_shown) = optional_server(common::server_addr(
        Service::Imap.with_tls(args.common.tls),
        &args.imap,
        &args.config,
        &user,
    ));
    let (smtp_server, smtp_from) = common::server_addr(
        Service::Smtp.with_tls(args.common.tls),
        &args.smtp,
        &args.config,
        &user,
    )?;
    let password = args.common.password(&user)?;
    let mut common_args = args.common.clone();
    common_args.password = Some(password.clone());
    let smtp = smtp_target(
        &args.smtp,
        &args.config,
        args.no_auth,
        &user,
        &common_args,
        true,
    )?;
    let rt = common::runtime().map_err(|e| AgentError::local(e.to_string()))?;
    let mut s = Session {
        user,
        password,
        smtp,
        pop3,
        imap,
        apop: args.apop,
        common: common_args,
        rt,
        input: Input::new(),
        failure: None,
    };
    println!(
        "mailroom agent for {}: SMTP {smtp_server} ({smtp_from}), POP3 {pop3_shown}, IMAP {imap_shown}",
        s.user
    );
    println!(
        "Type smtp to send a message, pop or imap to read your mail, exit to leave, help for help."
    );
    loop {
        let line = match s.input.read(MAIN_PROMPT, true)? {
            Read::Eof => break,
            Read::Interrupted => {
                println!("(type exit to leave)");
                continue;
            }
            Read::Line(l) => l,
        };
        let flow = match line.trim().to_ascii_lowercase().as_str() {
            "" => Flow::Continue,
            "smtp" | "send" => smtp_command(&mut s)?,
            "pop" | "pop3" => pop_command(&mut s)?,
            "imap" => super::imap::session(&mut s)?,
            "exit" | "quit" | "bye" => Flow::Exit,
            "help" | "?" => {
                print_help();
                Flow::Continue
            }
            other => {
                let e = AgentError::local(format!(
                    "unknown command '{other}': type smtp, pop, imap or exit"
                ));
                fail(&mut s, e);
                Flow::Continue
            }
        };
        if flow == Flow::Exit {
            break;
        }
    }
    Ok(s.failure.map(Failure::code).unwrap_or(ExitCode::SUCCESS))
}

/// A reading server's address for the session and for the banner: `127.0.0.1:2110 (default)`,
/// or `none (the reason)`. A local problem (no such listener in the config) waits until the
/// command that needs the server.
fn optional_server(r: Result<(String, String), AgentError>) -> (Result<String, String>, String) {
    match r {
        Ok((addr, from)) => {
            let shown = format!("{addr} ({from})");
            (Ok(addr), shown)
        }
        Err(e) => (Err(e.message), "none".to_string()),
    }
}

/// The address of a reading server, or the failure that says why there is none.
pub(super) fn server_of(s: &mut Session, which: &Result<String, String>) -> Option<String> {
    match which {
        Ok(a) => Some(a.clone()),
        Err(m) => {
            let e = AgentError::local(m.clone());
            fail(s, e);
            None
        }
    }
}

fn print_help() {
    println!("  smtp   write and send a message (To, Cc, Subject, text, attachments)");
    println!(
        "  pop    read your mail over POP3: STAT, LIST, UIDL, TOP, RETR, DELE, RSET, NOOP, QUIT"
    );
    println!("  imap   read your mail over IMAP: folders, flags, search, copy/move, expunge");
    println!("  exit   leave the agent");
}

/// Reads a list of addresses, one or more a line (comma-separated), until an empty line.
fn read_addresses(s: &mut Session, prompt: &str) -> Result<Option<Vec<Mailbox>>, AgentError> {
    let mut out = Vec::new();
    loop {
        match s.input.read(prompt, false)? {
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
fn smtp_command(s: &mut Session) -> Result<Flow, AgentError> {
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
    let subject = match s.input.read("Subject: ", false)? {
        Read::Line(l) => l,
        _ => {
            println!("(cancelled: nothing sent)");
            return Ok(Flow::Continue);
        }
    };
    println!("Text of the message; end it with a line holding a single \".\":");
    let mut body = String::new();
    loop {
        match s.input.read("", false)? {
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
        match s.input.read("Attach: ", false)? {
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
fn pop_command(s: &mut Session) -> Result<Flow, AgentError> {
    let pop3 = s.pop3.clone();
    let Some(server) = server_of(s, &pop3) else {
        return Ok(Flow::Continue);
    };
    let login = {
        let (server, user, password, apop) =
            (server.clone(), s.user.clone(), s.password.clone(), s.apop);
        let common_args = s.common.clone();
        s.rt.block_on(async move {
            inbox::login(&server, &user, &password, apop, &common_args, true).await
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
    println!("Logged in to {server}. Commands: {POP_COMMANDS} (help).");
    run_sub_prompt(s, PopPrompt(c))
}

/// A protocol's sub-prompt (`pop>>>`, `imap:FOLDER>>>`): what differs between them. The loop
/// that reads commands, and what happens on end of input, a refusal or a lost connection, is
/// [`run_sub_prompt`] for both.
pub(super) trait SubPrompt {
    type Reply: std::fmt::Display + std::fmt::Debug;
    /// "POP3" or "IMAP", and the main-prompt command that logs in again.
    const PROTOCOL: &'static str;
    const AGAIN: &'static str;
    /// The command that ends the session (QUIT, LOGOUT), for the end-of-input notice.
    const QUIT: &'static str;
    fn prompt(&self) -> String;
    fn help(&self);
    fn one(
        &mut self,
        s: &Session,
        cmd: &str,
        args: &[&str],
        line: &str,
    ) -> Result<(), CommandFailure<Self::Reply>>;
    /// Ends the session politely (QUIT, LOGOUT), reporting the answer.
    fn quit(self, s: &mut Session);
    /// The server's refusal of one command, which the session survives (`-ERR`, `NO`,
    /// `BAD`), as it should be shown; `None` when the error ends the session.
    fn refusal(e: &mailroom_client::ClientError<Self::Reply>) -> Option<String>;
    fn failure(e: mailroom_client::ClientError<Self::Reply>, user: &str) -> AgentError;
}

/// Reads and runs sub-prompt commands until quit, exit, end of input or a lost connection.
pub(super) fn run_sub_prompt<P: SubPrompt>(s: &mut Session, mut p: P) -> Result<Flow, AgentError> {
    loop {
        let line = match s.input.read(&p.prompt(), true)? {
            Read::Eof => {
                println!("(end of input: sending {})", P::QUIT);
                p.quit(s);
                return Ok(Flow::Exit);
            }
            Read::Interrupted => {
                println!("(type quit to end the {} session)", P::PROTOCOL);
                continue;
            }
            Read::Line(l) => l,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(cmd) = words.first().map(|w| w.to_ascii_lowercase()) else {
            continue;
        };
        let args = &words[1..];
        match cmd.as_str() {
            "quit" | "logout" => {
                p.quit(s);
                return Ok(Flow::Continue);
            }
            "exit" => {
                p.quit(s);
                return Ok(Flow::Exit);
            }
            "help" | "?" => p.help(),
            _ => match p.one(s, &cmd, args, &line) {
                Ok(()) => {}
                Err(CommandFailure::Local(e)) => fail(s, e),
                Err(CommandFailure::Server(e)) => match P::refusal(&e) {
                    // The server refused this command: show its reply; the session goes on.
                    Some(reply) => {
                        println!("{reply}");
                        s.failure = Some(Failure::Refused);
                    }
                    None => {
                        let e = P::failure(e, &s.user);
                        fail(s, e);
                        println!(
                            "(the {} session is over; type {} to log in again)",
                            P::PROTOCOL,
                            P::AGAIN
                        );
                        return Ok(Flow::Continue);
                    }
                },
            },
        }
    }
}

struct PopPrompt(Pop3Client);

impl SubPrompt for PopPrompt {
    type Reply = mailroom_client::pop3::Pop3Reply;
    const PROTOCOL: &'static str = "POP3";
    const AGAIN: &'static str = "pop";
    const QUIT: &'static str = "QUIT";

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

/// Why a command of a sub-prompt (`pop>>>`, `imap>>>`) failed: locally (a bad argument), or
/// at the server (`R` is the protocol's reply type).
pub(super) enum CommandFailure<R: std::fmt::Display + std::fmt::Debug> {
    Local(AgentError),
    Server(mailroom_client::ClientError<R>),
}

impl<R: std::fmt::Display + std::fmt::Debug> From<AgentError> for CommandFailure<R> {
    fn from(e: AgentError) -> Self {
        CommandFailure::Local(e)
    }
}

impl<R: std::fmt::Display + std::fmt::Debug> From<mailroom_client::ClientError<R>>
    for CommandFailure<R>
{
    fn from(e: mailroom_client::ClientError<R>) -> Self {
        CommandFailure::Server(e)
    }
}

type PopFailure = CommandFailure<mailroom_client::pop3::Pop3Reply>;

fn number_arg(args: &[&str], i: usize, usage: &str) -> Result<u32, AgentError> {
    match args.get(i) {
        Some(a) => common::message_number(a),
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
