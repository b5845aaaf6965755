//! The agent: a mail client for people and scripts, with the protocol on show (docs/AGENT.md).
//!
//! - `mailroom agent -e ADDRESS`: the interactive client of the networking labs,
//!   `[smtp|pop|imap|exit]>>>` ([`prompt`]: the prompt machinery, and one file per prompt);
//!   from a pipe it runs a batch script.
//! - `mailroom send`: one message from the command line ([`send`]).
//! - `mailroom inbox list|read|save|delete`: reading over POP3 or IMAP from scripts ([`inbox`]).
//!
//! Messages are built with mail-builder ([`compose`]) and shown with mail-parser ([`show`]);
//! the protocol work is `mailroom-client`, opened and logged in by [`connect`]. Every failure
//! is one sentence on stderr and an exit code ([`failure::Failure`]): 0 ok, 1 local error,
//! 2 usage, 3 cannot connect / timeout, 4 login refused, 5 refused by the server, 6 connection
//! lost or protocol broken.
//!
//! The options the three commands share are [`args`]. The server config (`--config FILE` on
//! the top-level command, or `MAILROOM_CONFIG`) gives the server addresses when `--smtp` /
//! `--pop3` / `--imap` are not given ([`servers`]); main.rs may pass it in through the args'
//! `config` field, else the agent finds it on the command line itself.
//!
//! The modules depend on each other in one direction only: `failure` needs none of the
//! others; `args`, `servers`, `compose` and `show` need only `failure`; `connect` adds `args`;
//! the commands `send`, `inbox` and `prompt` use those, and `prompt` also `send`.

mod args;
mod compose;
mod connect;
mod failure;
mod inbox;
mod prompt;
mod send;
mod servers;
mod show;

use std::process::ExitCode;

pub use inbox::InboxArgs;
pub use prompt::AgentArgs;
pub use send::SendArgs;

fn finish(result: Result<ExitCode, failure::AgentError>) -> anyhow::Result<ExitCode> {
    Ok(match result {
        Ok(code) => code,
        Err(e) => failure::report(&e),
    })
}

pub fn agent_main(args: AgentArgs) -> anyhow::Result<ExitCode> {
    finish(prompt::run(args))
}

pub fn send_main(args: SendArgs) -> anyhow::Result<ExitCode> {
    finish(send::run(args))
}

pub fn inbox_main(args: InboxArgs) -> anyhow::Result<ExitCode> {
    finish(inbox::run(args))
}
