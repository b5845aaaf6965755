//! `mailroom agent`: the interactive client of the networking labs, `[smtp|pop|imap|exit]>>>`.
//!
//! The prompt machinery is here: the main prompt's loop, the [`Session`] every command works
//! on, and [`run_sub_prompt`], the loop of the protocol prompts (`pop>>>`, `imap:FOLDER>>>`),
//! which each supply their commands, help and replies through [`SubPrompt`]. Each prompt has
//! its file: [`smtp`] (the form that writes and sends a message), [`pop3`], [`imap`]; where
//! the lines come from (terminal or pipe, completion) is [`input`].
//!
//! On a terminal the prompts have line editing and history (rustyline). Driven by a pipe,
//! the same agent reads its commands from stdin and echoes each one after its prompt, so a
//! lab's batch script is a text file and the output reads like a terminal session.

mod imap;
mod input;
mod pop3;
mod smtp;

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::{ask_password, CommonArgs};
use super::compose::Mailbox;
use super::connect::runtime;
use super::failure::{AgentError, Failure};
use super::send::{check_login, smtp_target, SmtpTarget};
use super::servers::{server_addr, Service};
use input::{Input, Read};

const MAIN_PROMPT: &str = "[smtp|pop|imap|exit]>>> ";
const MAIN_COMMANDS: &str = "smtp pop imap exit help";

/// `mailroom agent`: the interactive client.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Your address, which is also your login name (as in the labs' `agent -e usr1@...`).
    #[arg(
        short = 'e',
        long = "user",
        visible_alias = "email",
        value_name = "ADDRESS"
    )]
    pub user: String,
    #[command(flatten)]
    pub common: CommonArgs,
    /// SMTP server to send through (default: listen.submission of the config, else 127.0.0.1:24587).
    #[arg(long, value_name = "HOST:PORT")]
    pub smtp: Option<String>,
    /// POP3 server to read from (default: listen.pop3 of the config, else 127.0.0.1:24110).
    #[arg(long, value_name = "HOST:PORT")]
    pub pop3: Option<String>,
    /// IMAP server to read from (default: listen.imap of the config, else 127.0.0.1:24143).
    #[arg(long, value_name = "HOST:PORT")]
    pub imap: Option<String>,
    /// Send without AUTH (to an MX port that accepts mail for its own users).
    #[arg(long)]
    pub no_auth: bool,
    /// Log in to POP3 with APOP (RFC 1939 §7) instead of USER/PASS.
    #[arg(long)]
    pub apop: bool,
    /// The server config file; filled in from the top-level `--config` (not a flag here).
    #[arg(skip)]
    pub config: Option<PathBuf>,
}

/// Everything a session needs.
struct Session {
    user: String,
    password: String,
    smtp: SmtpTarget,
    /// The POP3 and IMAP servers, or why there is none (said when `pop` / `imap` is typed,
    /// so that a config without those listeners still lets you send).
    pop3: Result<String, String>,
    imap: Result<String, String>,
    apop: bool,
    common: CommonArgs,
    rt: tokio::runtime::Runtime,
    input: Input,
    /// The first failure, which becomes the exit code (later ones are often its consequences,
    /// as the commands of a script whose login failed).
    failure: Option<Failure>,
}

impl Session {
    /// Records a failure for the exit code; the first one is kept.
    fn failed(&mut self, f: Failure) {
        self.failure.get_or_insert(f);
    }
}

/// Whether the agent goes on after a command.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
}

fn fail(session: &mut Session, e: AgentError) {
    eprintln!("mailroom: {}", e.message);
    session.failed(e.failure);
}

pub fn run(args: AgentArgs) -> Result<ExitCode, AgentError> {
    let user = Mailbox::parse(&args.user)?.address;
    let (pop3, pop3_shown) = optional_server(server_addr(
        Service::Pop3.with_tls(args.common.tls),
        &args.pop3,
        &args.config,
        &user,
    ));
    let (imap, imap_shown) = optional_server(server_addr(
        Service::Imap.with_tls(args.common.tls),
        &args.imap,
        &args.config,
        &user,
    ));
    let (smtp_server, smtp_from) = server_addr(
        Service::Smtp.with_tls(args.common.tls),
        &args.smtp,
        &args.config,
        &user,
    )?;
    let typed = args.common.password.is_none();
    let mut password = args.common.password(&user)?;
    let mut common_args = args.common.clone();
    common_args.password = Some(password.clone());
    let mut smtp = smtp_target(
        &args.smtp,
        &args.config,
        args.no_auth,
        &user,
        &common_args,
        true,
    )?;
    let rt = runtime().map_err(|e| AgentError::local(e.to_string()))?;
    if typed && !args.no_auth {
        password = check_typed_password(&rt, &mut smtp, &user, password)?;
        common_args.password = Some(password.clone());
    }
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
        let line = match s.input.command(MAIN_PROMPT, MAIN_COMMANDS)? {
            Read::Eof => break,
            Read::Interrupted => {
                println!("(type exit to leave)");
                continue;
            }
            Read::Line(l) => l,
        };
        let flow = match line.trim().to_ascii_lowercase().as_str() {
            "" => Flow::Continue,
            "smtp" | "send" => smtp::command(&mut s)?,
            "pop" | "pop3" => pop3::command(&mut s)?,
            "imap" => imap::command(&mut s)?,
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

/// How many times a password typed at the prompt may be tried (the servers allow as many
/// failed logins before they slow down).
const PASSWORD_TRIES: usize = 3;

/// A password typed at the prompt is checked with an SMTP login at once, and may be typed
/// again after a refusal, up to [`PASSWORD_TRIES`] times. A server that cannot be reached is
/// reported and the agent starts anyway (reading may still work).
fn check_typed_password(
    rt: &tokio::runtime::Runtime,
    smtp: &mut SmtpTarget,
    user: &str,
    mut password: String,
) -> Result<String, AgentError> {
    for attempt in 1..=PASSWORD_TRIES {
        smtp.login = Some((user.to_string(), password.clone()));
        match rt.block_on(check_login(smtp, &mut |_| {})) {
            Ok(()) => {
                println!("logged in as {user}");
                return Ok(password);
            }
            Err(e) if e.failure == Failure::Auth && attempt < PASSWORD_TRIES => {
                eprintln!(
                    "mailroom: {} (try {attempt} of {PASSWORD_TRIES}; type it again)",
                    e.message
                );
                password = ask_password(user)?;
            }
            Err(e) if e.failure == Failure::Auth => return Err(e),
            Err(e) => {
                eprintln!(
                    "mailroom: {} (the password could not be checked)",
                    e.message
                );
                return Ok(password);
            }
        }
    }
    Ok(password)
}

/// A reading server's address for the session and for the banner: `127.0.0.1:24110 (default)`,
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
fn server_of(s: &mut Session, which: &Result<String, String>) -> Option<String> {
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
    println!("  smtp   write and send a message: To, Subject, the text ending with a \".\" line (~c ADDRESS, ~a FILE in the text add a Cc, an attachment)");
    println!(
        "  pop    read your mail over POP3: STAT, LIST, UIDL, TOP, RETR, DELE, RSET, NOOP, QUIT"
    );
    println!("  imap   read your mail over IMAP: folders, flags, search, copy/move, expunge");
    println!("  exit   leave the agent");
}

/// A protocol's sub-prompt (`pop>>>`, `imap:FOLDER>>>`): what differs between them. The loop
/// that reads commands, and what happens on end of input, a refusal or a lost connection, is
/// [`run_sub_prompt`] for both.
trait SubPrompt {
    type Reply: std::fmt::Display + std::fmt::Debug;
    /// "POP3" or "IMAP", and the main-prompt command that logs in again.
    const PROTOCOL: &'static str;
    const AGAIN: &'static str;
    /// The command that ends the session (QUIT, LOGOUT), for the end-of-input notice.
    const QUIT: &'static str;
    /// The prompt's commands (for Tab and the line after the login); `help`, `quit` and
    /// `exit` are [`run_sub_prompt`]'s.
    const COMMANDS: &'static str;
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

/// Runs a sub-prompt whose session just logged in to `server`: reads and runs its commands
/// until quit, exit, end of input or a lost connection.
fn run_sub_prompt<P: SubPrompt>(
    s: &mut Session,
    server: &str,
    mut p: P,
) -> Result<Flow, AgentError> {
    println!("Logged in to {server}. Commands: {} (help).", P::COMMANDS);
    loop {
        let line = match s.input.command(&p.prompt(), P::COMMANDS)? {
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
                        // Shown in the session; from a pipe also on stderr, where a
                        // script looks for its errors.
                        println!("{reply}");
                        if s.input.is_pipe() {
                            eprintln!(
                                "mailroom: the {} server refused '{}': {reply}",
                                P::PROTOCOL,
                                line.trim()
                            );
                        }
                        s.failed(Failure::Refused);
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

/// Why a command of a sub-prompt (`pop>>>`, `imap>>>`) failed: locally (a bad argument), or
/// at the server (`R` is the protocol's reply type).
enum CommandFailure<R: std::fmt::Display + std::fmt::Debug> {
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
