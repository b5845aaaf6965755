//! `mailroom`: a complete mail system in one binary.

mod agent;
mod lab_clients;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use mailroom_server::config::Config;
use mailroom_store::password;

#[derive(Parser)]
#[command(
    name = "mailroom",
    version,
    about = "A complete mail system in one binary: SMTP, POP3, accounts, lab services"
)]
struct Cli {
    /// Config file (TOML, see docs/CONFIG.md). Without it the embedded default is used.
    #[arg(long, short = 'c', global = true, env = "MAILROOM_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory; overrides `data_dir` of the config.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (with no config: loopback only, SMTP 2525, submission 2587, POP3 2110).
    Serve {
        /// Log every session's dialogue as C:/S: lines (AUTH secrets masked).
        #[arg(long)]
        trace: bool,
    },
    /// Manage accounts in the store.
    #[command(subcommand)]
    User(UserCommand),
    /// Show the outbound queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The interactive mail client: `[smtp|pop|exit]>>>` (reads commands from stdin when piped).
    Agent(agent::AgentArgs),
    /// Send one message over SMTP (exit code 0 only if every recipient was accepted).
    Send(agent::SendArgs),
    /// List, read and delete messages over POP3.
    Inbox(agent::InboxArgs),
    /// Send one expression to a calculator server and print the answer.
    Calc(lab_clients::CalcArgs),
    /// Ask an SNTP server for the time (never sets the clock).
    Sntp(lab_clients::SntpArgs),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account (its domain becomes local). Password from stdin, or asked on a terminal.
    Add { address: String },
    /// List accounts.
    List,
    /// Remove an account and all its mail.
    Remove { address: String },
    /// Change an account's password (from stdin, or asked on a terminal).
    Passwd { address: String },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// List queued messages with each recipient's state.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailroom: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Calc(args) => return lab_clients::calc_main(args),
        Command::Sntp(args) => return lab_clients::sntp_main(args),
        Command::Agent(args) => return agent::agent_main(args),
        Command::Send(args) => return agent::send_main(args),
        Command::Inbox(args) => return agent::inbox_main(args),
        _ => {}
    }
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded(),
    };
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command {
        Command::Serve { trace } => serve(config, trace),
        Command::User(cmd) => user(config, cmd),
        Command::Queue(QueueCommand::List) => queue_list(config),
        Command::Calc(_)
        | Command::Sntp(_)
        | Command::Agent(_)
        | Command::Send(_)
        | Command::Inbox(_) => Ok(ExitCode::SUCCESS),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn serve(mut config: Config, trace: bool) -> Result<ExitCode> {
    init_logging();
    if trace {
        config.trace.smtp = true;
        config.trace.submission = true;
        config.trace.pop3 = true;
        config.trace.imap = true;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let store = tokio::task::spawn_blocking({
            let data_dir = data_dir.clone();
            move || mailroom_store::open(&data_dir)
        })
        .await?
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
        {
            let (config, store) = (config.clone(), store.clone());
            tokio::task::spawn_blocking(move || mailroom_server::apply_config_to_store(&config, &store))
                .await?
                .context("cannot apply the config's domains and accounts")?;
        }
        let hostname = config.hostname.clone();
        let server = mailroom_server::Server::start(config, store.clone()).await?;
        let abs = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
        let mut out = std::io::stdout().lock();
        writeln!(out, "mailroom {} on {hostname}", env!("CARGO_PKG_VERSION"))?;
        for (name, addr) in &server.bound {
            writeln!(out, "listening: {name} {addr}")?;
        }
        let accounts = store.list_accounts().map(|a| a.len()).unwrap_or(0);
        writeln!(out, "ready: data in {} ({accounts} accounts)", abs.display())?;
        if accounts == 0 {
            writeln!(
                out,
                "hint: add an account with `mailroom user add alice@example.test`, then telnet to the smtp port"
            )?;
        }
        out.flush()?;
        drop(out);
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections, letting sessions finish");
        server.shutdown().await;
        tracing::info!("store closed; bye");
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn open_store(config: &Config) -> Result<mailroom_store::Store> {
    let store = mailroom_store::open(&config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    mailroom_server::apply_config_to_store(config, &store)?;
    Ok(store)
}

/// A password from the terminal (asked twice, without echo) or the first line of stdin.
fn read_new_password(address: &str) -> Result<String> {
    let pw = if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password(format!("Password for {address}: "))?;
        let b = rpassword::prompt_password("Again: ")?;
        if a != b {
            bail!("the two passwords differ; nothing changed");
        }
        a
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if pw.is_empty() {
        bail!("the password is empty; nothing changed");
    }
    Ok(pw)
}

fn user(config: Config, cmd: UserCommand) -> Result<ExitCode> {
    let store = open_store(&config)?;
    match cmd {
        UserCommand::Add { address } => {
            let valid = address
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
            if !valid {
                bail!("'{address}' is not an address like alice@example.test");
            }
            if store.find_account(&address)?.is_some() {
                bail!("{address} already exists (use `mailroom user passwd {address}` to change its password)");
            }
            let pw = read_new_password(&address)?;
            store.add_account(&address, &password::hash_password(&pw)?)?;
            println!("added {address}");
        }
        UserCommand::List => {
            for a in store.list_accounts()? {
                println!("{}", a.address);
            }
        }
        UserCommand::Remove { address } => {
            store.remove_account(&address)?;
            println!("removed {address} and its mail");
        }
        UserCommand::Passwd { address } => {
            if store.find_account(&address)?.is_none() {
                bail!("no account {address}");
            }
            let pw = read_new_password(&address)?;
            store.set_password(&address, &password::hash_password(&pw)?)?;
            println!("password changed for {address}");
        }
    }
    store.shutdown();
    Ok(ExitCode::SUCCESS)
}

fn queue_list(config: Config) -> Result<ExitCode> {
    let store = open_store(&config)?;
    let entries = store.queue_list()?;
    if entries.is_empty() {
        println!("the queue is empty");
    }
    for e in entries {
        let sender = if e.sender.is_empty() { "<>" } else { &e.sender };
        println!(
            "{} from {} ({} recipients)",
            e.id.0,
            sender,
            e.recipients.len()
        );
        for r in e.recipients {
            println!(
                "    {} {} attempts={} next={} {}",
                r.status,
                r.recipient,
                r.attempts,
                r.next_attempt,
                r.last_error.unwrap_or_default()
            );
        }
    }
    store.shutdown();
    Ok(ExitCode::SUCCESS)
}
