//! The agent: a mail client for people and scripts, with the protocol on show (docs/AGENT.md).
//!
//! - `mailroom agent -e ADDRESS`: the interactive client of the networking labs,
//!   `[smtp|pop|imap|exit]>>>` ([`interactive`], the IMAP sub-prompt in [`imap`]); from a
//!   pipe it runs a batch script.
//! - `mailroom send`: one message from the command line ([`send`]).
//! - `mailroom inbox list|read|save|delete`: reading over POP3 or IMAP from scripts ([`inbox`]).
//!
//! Messages are built with mail-builder ([`compose`]) and shown with mail-parser ([`show`]);
//! the protocol work is `mailroom-client`. Every failure is one sentence on stderr and an exit
//! code ([`common::Failure`]): 0 ok, 1 local error, 2 usage, 3 cannot connect / timeout,
//! 4 login refused, 5 refused by the server, 6 connection lost or protocol broken.
//!
//! The server config (`--config FILE` on the top-level command, or `MAILROOM_CONFIG`) gives
//! the server addresses when `--smtp` / `--pop3` are not given; main.rs may pass it in through
//! the args' `config` field, else the agent finds it on the command line itself.

mod common;
mod compose;
mod imap;
mod inbox;
mod interactive;
mod send;
mod show;

use std::path::PathBuf;
use std::process::ExitCode;

pub use common::CommonArgs;

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
    /// SMTP server to send through (default: listen.submission of the config, else 127.0.0.1:2587).
    #[arg(long, value_name = "HOST:PORT")]
    pub smtp: Option<String>,
    /// POP3 server to read from (default: listen.pop3 of the config, else 127.0.0.1:2110).
    #[arg(long, value_name = "HOST:PORT")]
    pub pop3: Option<String>,
    /// IMAP server to read from (default: listen.imap of the config, else 127.0.0.1:2143).
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

/// `mailroom send`: send one message.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The sender (From: and MAIL FROM); defaults to --user.
    #[arg(long, value_name = "ADDRESS")]
    pub from: Option<String>,
    /// A recipient; repeat it or separate addresses with commas. "Name <addr>" works too.
    #[arg(long, value_name = "ADDRESS")]
    pub to: Vec<String>,
    /// A Cc recipient (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    pub cc: Vec<String>,
    /// A Bcc recipient (repeatable): in the envelope only, never in a header.
    #[arg(long, value_name = "ADDRESS")]
    pub bcc: Vec<String>,
    /// The subject (any language: it is encoded per RFC 2047).
    #[arg(long, short = 's')]
    pub subject: Option<String>,
    /// Attach a file (repeatable).
    #[arg(long, short = 'a', value_name = "PATH")]
    pub attach: Vec<PathBuf>,
    /// The text of the message (else --body-file, else stdin).
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the text from this file ("-" for stdin).
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,
    /// Login name for AUTH; defaults to the --from address.
    #[arg(
        short = 'e',
        long = "user",
        visible_alias = "email",
        value_name = "ADDRESS"
    )]
    pub user: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// SMTP server (default: listen.submission of the config, else 127.0.0.1:2587).
    #[arg(long, value_name = "HOST:PORT")]
    pub smtp: Option<String>,
    /// Send without AUTH (to an MX port that accepts mail for its own users).
    #[arg(long)]
    pub no_auth: bool,
    /// The server config file; filled in from the top-level `--config` (not a flag here).
    #[arg(skip)]
    pub config: Option<PathBuf>,
}

/// `mailroom inbox ...`: list, read and delete messages over POP3 (or IMAP).
#[derive(Debug, clap::Args)]
pub struct InboxArgs {
    /// Your address, which is also your login name (required; before or after the action).
    #[arg(
        short = 'e',
        long = "user",
        visible_alias = "email",
        value_name = "ADDRESS",
        global = true
    )]
    pub user: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// POP3 server (default: listen.pop3 of the config, else 127.0.0.1:2110).
    #[arg(long, value_name = "HOST:PORT", global = true)]
    pub pop3: Option<String>,
    /// Log in with APOP (RFC 1939 §7) instead of USER/PASS.
    #[arg(long, global = true)]
    pub apop: bool,
    /// Read over IMAP from this server instead of POP3 (default with --protocol imap:
    /// listen.imap of the config, else 127.0.0.1:2143).
    #[arg(long, value_name = "HOST:PORT", global = true)]
    pub imap: Option<String>,
    /// The IMAP folder to read (implies IMAP; default INBOX).
    #[arg(long, value_name = "NAME", global = true)]
    pub folder: Option<String>,
    /// pop3 (the default) or imap; --imap or --folder choose imap too.
    #[arg(long, value_enum, global = true)]
    pub protocol: Option<Protocol>,
    #[command(subcommand)]
    pub action: InboxAction,
    /// The server config file; filled in from the top-level `--config` (not a flag here).
    #[arg(skip)]
    pub config: Option<PathBuf>,
}

/// The protocol `mailroom inbox` reads with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Pop3,
    Imap,
}

/// What `mailroom inbox` does.
#[derive(Debug, clap::Subcommand)]
pub enum InboxAction {
    /// List the messages: number, size, sender, subject (`--json` for scripts).
    List {
        /// One JSON array: number, size, uid, from, to, subject, date, message_id.
        #[arg(long)]
        json: bool,
    },
    /// Show message N decoded (headers, text, attachments), or `--raw` as the server sent it.
    Read {
        number: u32,
        /// The octets exactly as the server sent them (byte-unstuffed).
        #[arg(long)]
        raw: bool,
    },
    /// Save the attachments of message N into DIR (never overwriting a file).
    Save { number: u32, dir: PathBuf },
    /// Delete messages (all or none: if one number is refused, nothing is deleted).
    Delete {
        #[arg(required = true)]
        numbers: Vec<u32>,
    },
}

fn finish(result: Result<ExitCode, common::AgentError>) -> anyhow::Result<ExitCode> {
    Ok(match result {
        Ok(code) => code,
        Err(e) => common::report(&e),
    })
}

pub fn agent_main(args: AgentArgs) -> anyhow::Result<ExitCode> {
    finish(interactive::run(args))
}

pub fn send_main(args: SendArgs) -> anyhow::Result<ExitCode> {
    finish(send::run(args))
}

pub fn inbox_main(args: InboxArgs) -> anyhow::Result<ExitCode> {
    finish(inbox::run(args))
}
