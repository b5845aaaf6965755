//! The agent: a mail client for people and scripts (placeholder: being written).
use std::process::ExitCode;

/// `mailroom agent`: the interactive client.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {}

/// `mailroom send`: send one message.
#[derive(Debug, clap::Args)]
pub struct SendArgs {}

/// `mailroom inbox ...`: list, read and delete messages over POP3.
#[derive(Debug, clap::Args)]
pub struct InboxArgs {}

pub fn agent_main(_args: AgentArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet available")
}

pub fn send_main(_args: SendArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet available")
}

pub fn inbox_main(_args: InboxArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet available")
}
