//! Clients for the socket-lab services: `mailroom calc` and `mailroom sntp` (placeholder: being written).
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CalcArgs {}

#[derive(Debug, clap::Args)]
pub struct SntpArgs {}

pub fn calc_main(_args: CalcArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet available")
}

pub fn sntp_main(_args: SntpArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet available")
}
