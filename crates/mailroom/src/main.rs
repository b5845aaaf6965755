//! `mailroom`: a complete mail system in one binary.

mod agent;
mod lab_clients;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use mailroom_server::config::{parse_size, show_size, Config};
use mailroom_store::{files, password};
use tracing::Instrument;

#[derive(Parser)]
#[command(
    name = "mailroom",
    version,
    about = "A complete mail system in one binary: SMTP, POP3, IMAP, the outbound queue, a mail client (agent) and the socket-lab services"
)]
struct Cli {
    /// Config file (TOML, see docs/CONFIG.md). Without it the embedded default is used.
    #[arg(long, short = 'c', global = true, env = "MAILROOM_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory; overrides `data_dir` of the config.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Which server of a lab file (one with [[server]] entries) to use.
    #[arg(long, global = true)]
    name: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (with no config: loopback only, SMTP 24025, submission 24587, POP3 24110,
    /// IMAP 24143, their TLS twins 24465, 24995, 24993, and the HTTP API 24080).
    Serve {
        /// Log every session's dialogue as C:/S: lines (AUTH secrets masked).
        #[arg(long)]
        trace: bool,
        /// Capture mode, for testing applications that send mail: accept mail for any
        /// recipient and any AUTH, relay nothing, file each message under its recipient's own
        /// account (made on first use; password `[capture] password`, default "capture").
        #[arg(long)]
        capture: bool,
    },
    /// Run every server of a lab file in one process (routes between them derived).
    Lab {
        /// Log every session's dialogue as C:/S: lines (AUTH secrets masked).
        #[arg(long)]
        trace: bool,
    },
    /// Manage accounts in the store.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage local domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage aliases (`user@domain -> target`) and catch-alls (`@domain -> target`).
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Inspect and steer the outbound queue.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Copy the data directory into a new directory while the server runs
    ///
    /// Every message, account, folder and queue entry, the self-signed TLS certificate and the
    /// DKIM keys.
    /// The copy is a data directory itself: point `data_dir` at it (or copy it back) to
    /// restore.
    Backup {
        /// The directory to create (it must not exist, or be empty).
        dir: PathBuf,
    },
    /// Check the data directory for faults (read-only, safe while the server runs)
    ///
    /// SQLite's integrity and foreign-key checks and the store's own invariants: every
    /// mailbox entry has its message, sizes match the octets, each account's usage counter
    /// equals a recount, UIDNEXT/HIGHESTMODSEQ/UIDVALIDITY are ahead of what they guard,
    /// every account has an INBOX, queue entries are sound; and file permissions. Exit code
    /// 0: no fault (warnings allowed), 1: faults found, 2: the check could not run.
    Check,
    /// Give the space that deleted mail left in the store file back to the disk
    ///
    /// Rewrites the store without its free pages (SQLite VACUUM). A store made by 0.2.0 or
    /// later gives freed space back by itself, a little at a time; one made before keeps it
    /// until compacted once. Needs free disk space about the size of the store, and holds
    /// the store's write lock while it runs: run it with the server stopped or at a quiet
    /// hour (deliveries wait, and get a temporary `451` after 30 s).
    Compact,
    /// Copy the whole store into an empty one: a data directory into PostgreSQL, or back
    ///
    /// Everything: domains, aliases, accounts (password hashes, quotas, APOP secrets), every
    /// folder with its UIDVALIDITY and UIDNEXT, every message with its UID, flags, MODSEQ and
    /// SMTP transcript (IMAP clients keep their caches), and the outbound queue. Counts are
    /// compared mailbox by mailbox and in total. Stop the server (every node) first; then
    /// point the config at the new store.
    ///
    ///   mailroom migrate --to postgres://user:password@host:5432/database
    ///   mailroom migrate --from postgres://user:password@host/database --to sqlite:DIR
    Migrate {
        /// Where to copy from: postgres://... or sqlite:DIRECTORY (default: the config's
        /// store, or its data_dir).
        #[arg(long)]
        from: Option<String>,
        /// Where to copy to: postgres://user:password@host:5432/database, or sqlite:DIRECTORY
        /// for a new data directory. It must hold no account yet.
        #[arg(long)]
        to: String,
    },
    /// Print the DNS records a domain needs (MX, SPF, DKIM, DMARC; MTA-STS and TLS-RPT
    /// optionally), ready to paste into its zone
    ///
    /// The DKIM records carry this server's public keys (made now if the domain has none
    /// yet). With --check, asks the name servers of `[dns]` (or the system's) what is
    /// published and says what is missing or wrong; exit code 0: all required records are
    /// right, 1: some are missing or wrong, 2: the check could not run.
    Dns {
        /// The mail domain, e.g. example.com.
        domain: String,
        /// Compare with what is published instead of printing.
        #[arg(long)]
        check: bool,
    },
    /// The interactive mail client: `[smtp|pop|imap|exit]>>>` (reads commands from stdin when piped).
    Agent(agent::AgentArgs),
    /// Send one message over SMTP (exit code 0 only if every recipient was accepted).
    Send(agent::SendArgs),
    /// List, read and delete messages over POP3 (or IMAP: --imap, --folder).
    Inbox(agent::InboxArgs),
    /// Send one expression to a calculator server and print the answer.
    Calc(lab_clients::CalcArgs),
    /// Ask an SNTP server for the time (never sets the clock).
    Sntp(lab_clients::SntpArgs),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account (its domain becomes local). Password from stdin, or asked on a terminal.
    Add {
        address: String,
        /// Also keep an APOP secret (RFC 1939 §7), read after the password (the second line of
        /// stdin, or asked on a terminal). It is stored as typed, not hashed: APOP needs the
        /// server to compute MD5(timestamp + secret). The password stays an argon2 hash;
        /// choose a secret that is not the password.
        #[arg(long)]
        apop: bool,
    },
    /// List accounts, each with its storage usage and quota.
    List,
    /// Remove an account and all its mail.
    Remove { address: String },
    /// Change an account's password (from stdin, or asked on a terminal).
    Passwd {
        address: String,
        /// Set the APOP secret (RFC 1939 §7) instead of the password. It is stored as typed, not
        /// hashed: APOP needs the server to compute MD5(timestamp + secret). The password stays
        /// an argon2 hash and is not changed.
        #[arg(long)]
        apop: bool,
    },
    /// Set an account's storage quota (SIZE: 500M, 2G, 0 for unlimited, none for the default)
    ///
    /// SIZE in octets or with K, M, G (1K = 1024 octets); 0 means unlimited and `none` goes
    /// back to the default (limits.account_quota). A running server applies it at once.
    Quota { address: String, size: String },
}

#[derive(Subcommand)]
enum DomainCommand {
    /// Make a domain local (mail for it is delivered here).
    Add { domain: String },
    /// List local domains.
    List,
    /// Stop being local for a domain (refused while it has accounts).
    Remove { domain: String },
}

#[derive(Subcommand)]
enum AliasCommand {
    /// Add a target to an alias (`@domain` as source: the domain's catch-all).
    Add { source: String, target: String },
    /// List aliases.
    List,
    /// Remove an alias (all its targets, or just the one given).
    Remove {
        source: String,
        target: Option<String>,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// List queued messages: id, sender, each recipient's state, attempts, next attempt, last error.
    List,
    /// Retry every queued recipient now (a running server picks it up within a second).
    Flush,
    /// Drop a queued message without delivering or bouncing it.
    Remove { id: i64 },
}

fn main() -> ExitCode {
    limit_retained_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mailroom: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Each password check (argon2id) allocates about 19 MiB. glibc's dynamic mmap threshold then
/// moves allocations of that size into the heap, where freed blocks stay resident: a server that
/// had handled a few hundred logins held hundreds of MiB it no longer used (measured: 580 MiB
/// after 100 POP3 logins). A fixed threshold keeps large blocks in mmap, returned on free
/// (measured: 13 MiB after the same load).
fn limit_retained_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Calc(args) => return lab_clients::calc_main(args),
        Command::Sntp(args) => return lab_clients::sntp_main(args),
        Command::Agent(mut args) => {
            args.config = args.config.or(cli.config);
            return agent::agent_main(args);
        }
        Command::Send(mut args) => {
            args.config = args.config.or(cli.config);
            return agent::send_main(args);
        }
        Command::Inbox(mut args) => {
            args.config = args.config.or(cli.config);
            return agent::inbox_main(args);
        }
        _ => {}
    }
    if let Command::Lab { trace } = cli.command {
        let Some(path) = &cli.config else {
            bail!("mailroom lab needs a lab file: mailroom lab --config lab.toml (see examples/lab.toml)");
        };
        let configs = Config::load_lab(path)?;
        return serve_all(configs, trace);
    }
    let mut config = match &cli.config {
        Some(path) => Config::load_named(path, cli.name.as_deref())?,
        None => Config::embedded(),
    };
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command {
        Command::Serve { trace, capture } => {
            if capture {
                config.capture.enabled = true;
                // The loopback rule applies to the flag as to the config key.
                config.validate()?;
            }
            serve_all(vec![config], trace)
        }
        Command::User(cmd) => user(config, cmd),
        Command::Domain(cmd) => domain(config, cmd),
        Command::Alias(cmd) => alias(config, cmd),
        Command::Queue(cmd) => queue(config, cmd),
        Command::Backup { dir } => backup(config, &dir),
        Command::Check => Ok(check(&config)),
        Command::Compact => compact(&config),
        Command::Migrate { from, to } => migrate(&config, from.as_deref(), &to),
        Command::Dns { domain, check } => dns(&config, &domain, check),
        Command::Lab { .. } => Ok(ExitCode::SUCCESS),
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

/// Runs one server, or every server of a lab (each with its own store), until SIGTERM/Ctrl-C.
fn serve_all(mut configs: Vec<Config>, trace: bool) -> Result<ExitCode> {
    init_logging();
    for config in &mut configs {
        if trace {
            config.trace.smtp = true;
            config.trace.submission = true;
            config.trace.pop3 = true;
            config.trace.imap = true;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let lab = configs.len() > 1 || configs.iter().any(|c| c.name.is_some());
        let mut servers = Vec::new();
        let mut out = String::new();
        for config in configs {
            let label = config.name.clone();
            let span = match &label {
                Some(name) => tracing::info_span!("server", %name),
                None => tracing::Span::none(),
            };
            let (server, summary) = start_one(config).instrument(span).await?;
            let prefix = if lab {
                label.map(|n| format!("{n}/")).unwrap_or_default()
            } else {
                String::new()
            };
            out.push_str(&summary.header);
            for (name, addr) in &server.bound {
                out.push_str(&format!("listening: {prefix}{name} {addr}\n"));
            }
            out.push_str(&summary.data);
            servers.push(server);
        }
        let n = servers.len();
        // The signal handlers go in before "ready:" is printed: a SIGTERM that follows the
        // line at once must still shut down cleanly, not kill the process.
        let signals = StopSignals::install();
        out.push_str(&format!(
            "ready: {n} server{} running; stop with Ctrl-C\n",
            if n == 1 { "" } else { "s" }
        ));
        {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(out.as_bytes())?;
            stdout.flush()?;
        }
        signals.wait().await;
        tracing::info!("shutting down: no new connections, letting sessions finish");
        for server in servers {
            server.shutdown().await;
        }
        tracing::info!("store closed; bye");
        Ok(ExitCode::SUCCESS)
    })
}

struct Summary {
    header: String,
    data: String,
}

/// `mailroom [--config FILE] [--name NAME] [--data-dir DIR] user add`, as this server's
/// config was given, so that following the start-up hint reaches this server's store.
fn user_add_command(config: &Config) -> String {
    let mut cmd = String::from("mailroom");
    if config.source != "(embedded default)" {
        cmd.push_str(&format!(" --config {}", shell_word(&config.source)));
    }
    if let Some(n) = &config.name {
        cmd.push_str(&format!(" --name {}", shell_word(n)));
    }
    if std::env::args().any(|a| a == "--data-dir" || a.starts_with("--data-dir=")) {
        cmd.push_str(&format!(
            " --data-dir {}",
            shell_word(&config.data_dir.display().to_string())
        ));
    }
    cmd.push_str(" user add");
    cmd
}

/// `s` quoted for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Opens the store of one server, applies its config, binds its listeners.
async fn start_one(config: Config) -> Result<(mailroom_server::Server, Summary)> {
    let data_dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking({
        let data_dir = data_dir.clone();
        let url = config.store.clone();
        move || mailroom_store::open_configured(url.as_deref(), &data_dir)
    })
    .await?
    .with_context(|| store_context(&config))?;
    for e in files::exposed(&data_dir) {
        tracing::warn!("{e}");
    }
    {
        let (config, store) = (config.clone(), store.clone());
        tokio::task::spawn_blocking(move || {
            mailroom_server::apply_config_to_store(&config, &store)
        })
        .await?
        .context("cannot apply the config's domains, aliases and accounts")?;
    }
    store.set_min_free_space(config.limits.min_free_space);
    let hostname = config.hostname.clone();
    let name = config.name.clone();
    let hint_cmd = user_add_command(&config);
    // The password is shown only when it is the documented default (a secret is never logged).
    let capture = config.capture.enabled.then(|| {
        if config.capture.password == mailroom_server::config::defaults::CAPTURE_PASSWORD {
            format!("password {:?}", config.capture.password)
        } else {
            "the [capture] password of the config".to_string()
        }
    });
    // A local domain of the server for the hint's example address.
    let domain = config
        .domains
        .first()
        .cloned()
        .unwrap_or_else(|| "example.test".to_string());
    let server = mailroom_server::Server::start(config, store.clone()).await?;
    let abs = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
    let accounts = store.list_accounts().map(|a| a.len()).unwrap_or(0);
    let who = name.map(|n| format!("{n}: ")).unwrap_or_default();
    let mut data = format!("{who}data in {} ({accounts} accounts)\n", abs.display());
    if let Some(tls) = server.tls_summary() {
        data.push_str(&format!("{who}{tls}\n"));
    }
    if let Some(password) = &capture {
        data.push_str(&format!(
            "{who}CAPTURE MODE IS ON: mail to any address is accepted and kept here, none is relayed, any AUTH is accepted; read it as the recipient address with {password} (POP3, IMAP, HTTP API)\n"
        ));
    }
    if accounts == 0 && capture.is_none() {
        // The same config (and server name) the server runs with, or the account would go
        // into another store; and a listener that is really open.
        let then =
            ["smtp", "submission", "pop3", "imap"]
                .iter()
                .find_map(|k| {
                    server.bound.iter().find(|(n, _)| n == k).map(|(n, a)| {
                        format!(", then try it: telnet {} {} ({n})", a.ip(), a.port())
                    })
                })
                .unwrap_or_default();
        data.push_str(&format!(
            "hint: add an account with `{hint_cmd} alice@{domain}`{then}\n"
        ));
    }
    Ok((
        server,
        Summary {
            header: format!(
                "{who}mailroom {} on {hostname}\n",
                env!("CARGO_PKG_VERSION")
            ),
            data,
        },
    ))
}

/// SIGTERM and Ctrl-C (SIGINT), listened for from the moment they are installed.
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            StopSignals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let (mut term, mut int) = (self.term, self.int);
            let term = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(i) => {
                        i.recv().await;
                    }
                    None => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            tokio::select! {
                _ = term => {}
                _ = int => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// "cannot open the store ...", naming the database or the data directory.
fn store_context(config: &Config) -> String {
    match &config.store {
        Some(url) => format!(
            "cannot open the store at {} (store in {})",
            mailroom_store::postgres::redact_url(url),
            config.source
        ),
        None => format!("cannot open the store in {}", config.data_dir.display()),
    }
}

fn open_store(config: &Config) -> Result<mailroom_store::Store> {
    let store = mailroom_store::open_configured(config.store.as_deref(), &config.data_dir)
        .with_context(|| store_context(config))?;
    warn_exposed(&config.data_dir);
    mailroom_server::apply_config_to_store(config, &store)?;
    Ok(store)
}

/// Tells the person at the command line what other users can still open in the data
/// directory (the store has already made owner-only what it could; see `files`).
fn warn_exposed(data_dir: &Path) {
    for e in files::exposed(data_dir) {
        eprintln!("mailroom: warning: {e}");
    }
}

/// `mailroom backup DIR`: a consistent copy of the store (SQLite VACUUM INTO, while the server
/// runs), the data directory's TLS files and DKIM keys, as a new data directory.
fn backup(config: Config, dir: &Path) -> Result<ExitCode> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty: give a new directory for the backup",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The copy holds every message and password hash: owner-only, like the data directory.
    files::private_dir(dir).with_context(|| format!("cannot make {} owner-only", dir.display()))?;
    let store = mailroom_store::open(&config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    warn_exposed(&config.data_dir);
    let size = store
        .backup(&dir.join("mailroom.db"))
        .with_context(|| format!("cannot write the backup into {}", dir.display()))?;
    let mut copied = vec![format!("mailroom.db ({size} octets)")];
    let tls = config.data_dir.join("tls");
    if tls.is_dir() {
        let to = dir.join("tls");
        std::fs::create_dir_all(&to)?;
        files::private_dir(&to)?;
        for name in ["cert.pem", "key.pem"] {
            let from = tls.join(name);
            if from.is_file() {
                // std::fs::copy keeps the permission bits (the key's 0600, the certificate's
                // 0644); every file of a backup is owner-only, so the mode is set after.
                std::fs::copy(&from, to.join(name))
                    .with_context(|| format!("cannot copy {}", from.display()))?;
                files::private_file(&to.join(name))?;
                copied.push(format!("tls/{name}"));
            }
        }
    }
    // The DKIM keys: the published DNS records name them, so a restore must bring them back.
    let dkim = config.data_dir.join("dkim");
    if let Ok(domains) = std::fs::read_dir(&dkim) {
        for domain in domains.flatten() {
            let Ok(keys) = std::fs::read_dir(domain.path()) else {
                continue;
            };
            let to = dir.join("dkim").join(domain.file_name());
            std::fs::create_dir_all(&to)?;
            files::private_dir(&dir.join("dkim"))?;
            files::private_dir(&to)?;
            for key in keys.flatten() {
                let name = key.file_name();
                if !key.path().is_file() || !name.to_string_lossy().ends_with(".pem") {
                    continue;
                }
                std::fs::copy(key.path(), to.join(&name))
                    .with_context(|| format!("cannot copy {}", key.path().display()))?;
                files::private_file(&to.join(&name))?;
                copied.push(format!(
                    "dkim/{}/{}",
                    domain.file_name().to_string_lossy(),
                    name.to_string_lossy()
                ));
            }
        }
    }
    println!(
        "backed up {} to {}: {}",
        config.data_dir.display(),
        dir.display(),
        copied.join(", ")
    );
    println!(
        "to restore: stop the server, then use {} as data_dir (or copy its files into {})",
        dir.display(),
        config.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One end of `mailroom migrate`.
enum StoreAt {
    Postgres(String),
    Sqlite(PathBuf),
}

impl StoreAt {
    /// `postgres://...` or `sqlite:DIRECTORY`.
    fn parse(option: &str, text: &str) -> Result<StoreAt> {
        let text = text.trim();
        if mailroom_store::postgres::is_postgres_url(text) {
            return Ok(StoreAt::Postgres(text.to_string()));
        }
        match text.strip_prefix("sqlite:") {
            Some(dir) if !dir.trim().is_empty() => Ok(StoreAt::Sqlite(PathBuf::from(dir.trim()))),
            _ => bail!(
                "{option} {}: not a store; write postgres://user:password@host:5432/database, or sqlite:DIRECTORY for a data directory",
                mailroom_store::postgres::redact_url(text)
            ),
        }
    }

    /// How it is shown (never with the password).
    fn shown(&self) -> String {
        match self {
            StoreAt::Postgres(url) => mailroom_store::postgres::redact_url(url),
            StoreAt::Sqlite(dir) => dir.display().to_string(),
        }
    }
}

/// Draws the copy's progress on stderr, at most ten times a second and at the end.
fn progress_bar() -> impl FnMut(usize, usize) {
    use std::io::Write;
    let mut last = std::time::Instant::now();
    move |done, total| {
        if done == total || last.elapsed() >= std::time::Duration::from_millis(100) {
            last = std::time::Instant::now();
            let pct = (done * 100).checked_div(total).unwrap_or(100);
            let width = 30;
            let filled = pct * width / 100;
            eprint!(
                "\rcopying messages [{}{}] {done}/{total} ({pct}%)",
                "#".repeat(filled),
                "-".repeat(width - filled)
            );
            let _ = std::io::stderr().flush();
        }
    }
}

/// `mailroom migrate [--from STORE] --to STORE`: a whole store copied into an empty one (a
/// data directory into PostgreSQL, PostgreSQL back into a new data directory).
fn migrate(config: &Config, from: Option<&str>, to: &str) -> Result<ExitCode> {
    use mailroom_store::MailStore;
    let to = StoreAt::parse("--to", to)?;
    let from = match from {
        Some(f) => StoreAt::parse("--from", f)?,
        None => match &config.store {
            Some(url) => StoreAt::parse("store =", url)?,
            None => StoreAt::Sqlite(config.data_dir.clone()),
        },
    };
    if let (StoreAt::Sqlite(a), StoreAt::Sqlite(b)) = (&from, &to) {
        let same =
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
        bail!(
            "--to {}: {}; to copy a data directory use `mailroom backup DIR`",
            b.display(),
            if same {
                "that is the source itself"
            } else {
                "both ends are data directories"
            }
        );
    }
    let (from_shown, to_shown) = (from.shown(), to.shown());
    let src: mailroom_store::Store = match &from {
        StoreAt::Postgres(url) => std::sync::Arc::new(
            mailroom_store::postgres::PgStore::open(url)
                .with_context(|| format!("cannot open the database {from_shown}"))?,
        ),
        StoreAt::Sqlite(dir) => {
            if !dir.join("mailroom.db").exists() {
                bail!("--from {}: no store there (no mailroom.db)", dir.display());
            }
            let s = mailroom_store::open(dir)
                .with_context(|| format!("cannot open the store in {}", dir.display()))?;
            warn_exposed(dir);
            s
        }
    };
    let started = std::time::Instant::now();
    let counts = match &to {
        StoreAt::Postgres(url) => {
            let dst = mailroom_store::postgres::PgStore::open(url)
                .with_context(|| format!("cannot open the database {to_shown}"))?;
            let counts = dst.import_from(src.as_ref(), progress_bar());
            dst.shutdown();
            counts
        }
        StoreAt::Sqlite(dir) => {
            let dst = mailroom_store::sqlite::SqliteStore::open(dir)
                .with_context(|| format!("cannot make a store in {}", dir.display()))?;
            let counts = dst.import_from(src.as_ref(), progress_bar());
            dst.shutdown();
            counts
        }
    }
    .with_context(|| format!("cannot copy {from_shown} into {to_shown}"))?;
    eprintln!();
    src.shutdown();
    println!(
        "copied {from_shown} into {to_shown} in {:.1} s and checked the counts: {} domains, {} aliases, {} accounts, {} folders, {} messages ({} octets), {} queued",
        started.elapsed().as_secs_f64(),
        counts.domains,
        counts.aliases,
        counts.accounts,
        counts.mailboxes,
        counts.messages,
        counts.octets,
        counts.queued
    );
    match &to {
        StoreAt::Postgres(_) => println!(
            "next: stop using {from_shown}, and add to the config: store = \"{to_shown}\" (with the real password)"
        ),
        StoreAt::Sqlite(dir) => println!(
            "next: stop every node using {from_shown}; in the config, remove the store line and set data_dir = \"{}\" (copy the old data_dir's tls/ and dkim/ into it to keep the certificate and keys)",
            dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailroom compact`: the store file rewritten without its free pages.
fn compact(config: &Config) -> Result<ExitCode> {
    let store = mailroom_store::open(&config.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    warn_exposed(&config.data_dir);
    let (before, after) = store.compact().with_context(|| {
        format!(
            "cannot compact the store in {} (it needs free space about its own size)",
            config.data_dir.display()
        )
    })?;
    store.shutdown();
    const MIB: f64 = 1024.0 * 1024.0;
    println!(
        "compacted the store in {}: {:.1} MiB -> {:.1} MiB ({:.1} MiB given back to the disk)",
        config.data_dir.display(),
        before as f64 / MIB,
        after as f64 / MIB,
        before.saturating_sub(after) as f64 / MIB
    );
    Ok(ExitCode::SUCCESS)
}

/// `mailroom check`: the store's consistency report (see `mailroom_store::check`). Opens
/// nothing for writing and applies no config, so it can run beside the server.
/// `mailroom dns DOMAIN [--check]`.
fn dns(config: &Config, domain: &str, check: bool) -> Result<ExitCode> {
    use mailroom_server::publish;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() || domain.contains('@') || !domain.contains('.') {
        bail!("'{domain}' is not a domain name; give one like example.com");
    }
    // The keys live in the data directory: made owner-only like the store.
    files::prepare_data_dir(&config.data_dir).with_context(|| {
        format!(
            "cannot use the data directory {}",
            config.data_dir.display()
        )
    })?;
    let keys = mailroom_server::dkim::DkimKeys::new(&config.data_dir, &config.dkim);
    let records = publish::records(config, &keys, &domain).map_err(anyhow::Error::msg)?;
    if !check {
        print!("{}", publish::render(&domain, &records));
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let findings = rt.block_on(async {
        let resolver = mailroom_server::dns::Dns::new(&config.dns);
        publish::check(&resolver, &records).await
    });
    for f in &findings {
        println!("{}", f.line());
    }
    let errors = findings
        .iter()
        .filter(|f| matches!(f.status, publish::Status::Error(_)))
        .count();
    let problems = findings.iter().filter(|f| f.is_problem()).count();
    if errors == findings.len() {
        eprintln!(
            "mailroom: no name server answered; check [dns] servers or the system's resolver"
        );
        return Ok(ExitCode::from(2));
    }
    if problems > 0 {
        println!(
            "{problems} record(s) to fix for {domain}; `mailroom dns {domain}` prints them all"
        );
        return Ok(ExitCode::from(1));
    }
    println!("every required record of {domain} is published");
    Ok(ExitCode::SUCCESS)
}

fn check(config: &Config) -> ExitCode {
    use mailroom_store::check::Severity;
    let dir = &config.data_dir;
    let shown = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let report = match mailroom_store::check::check_data_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "mailroom: cannot check {}: {e} (nothing was checked)",
                shown.display()
            );
            return ExitCode::from(2);
        }
    };
    let mut out = format!(
        "checking {} (schema version {})\n",
        shown.display(),
        report.totals.schema_version
    );
    for c in &report.checks {
        let status = match (c.faults(), c.warnings()) {
            (0, 0) => "ok",
            (0, _) => "warning",
            _ => "FAULT",
        };
        out.push_str(&format!("  {status:<8} {:<16} {}\n", c.name, c.what));
        for f in &c.findings {
            let mark = match f.severity {
                Severity::Fault => "fault:",
                Severity::Warning => "warning:",
            };
            out.push_str(&format!("           {mark} {}\n", f.text));
        }
        let more = c.more_faults + c.more_warnings;
        if more > 0 {
            out.push_str(&format!(
                "           ... and {more} more ({} fault(s), {} warning(s)) not listed\n",
                c.more_faults, c.more_warnings
            ));
        }
    }
    let t = &report.totals;
    out.push_str(&format!(
        "{} account(s), {} mailbox(es), {} mailbox entr{}, {} stored message(s) ({}), {} queue entr{} with {} recipient(s)\n",
        t.accounts,
        t.mailboxes,
        t.mailbox_entries,
        if t.mailbox_entries == 1 { "y" } else { "ies" },
        t.messages,
        show_size(t.message_octets),
        t.queue_entries,
        if t.queue_entries == 1 { "y" } else { "ies" },
        t.queue_recipients
    ));
    let (faults, warnings) = (report.faults(), report.warnings());
    if report.ok() {
        out.push_str(&format!("no fault found ({warnings} warning(s))\n"));
    } else {
        out.push_str(&format!(
            "{faults} fault(s), {warnings} warning(s): the store is not consistent; keep a copy of the data directory (stop the server, copy it) before changing anything\n"
        ));
    }
    print!("{out}");
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A password (`what`: "Password", "APOP secret") from the terminal (asked twice, without
/// echo) or the next line of stdin.
fn read_new_password(address: &str, what: &str) -> Result<String> {
    let pw = if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password(format!("{what} for {address}: "))?;
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
        bail!("the {} is empty; nothing changed", what.to_lowercase());
    }
    Ok(pw)
}

fn user(config: Config, cmd: UserCommand) -> Result<ExitCode> {
    let store = open_store(&config)?;
    match cmd {
        UserCommand::Add { address, apop } => {
            let valid = address
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
            if !valid {
                bail!("'{address}' is not an address like alice@example.test");
            }
            if store.find_account(&address)?.is_some() {
                bail!("{address} already exists (use `mailroom user passwd {address}` to change its password)");
            }
            let pw = read_new_password(&address, "Password")?;
            let secret = if apop {
                Some(read_new_password(&address, "APOP secret")?)
            } else {
                None
            };
            store.add_account(&address, &password::hash_password(&pw)?)?;
            if let Some(secret) = secret {
                store.set_apop_secret(&address, Some(&secret))?;
                println!("added {address} (with an APOP secret)");
            } else {
                println!("added {address}");
            }
        }
        UserCommand::List => {
            for a in store.list_accounts()? {
                // The address alone on its line (scripts read these), the storage below it.
                println!("{}", a.address);
                let used = store.account_usage(a.id)?;
                println!("    {}", storage_line(&config, &a, used));
            }
        }
        UserCommand::Quota { address, size } => {
            let Some(account) = store.find_account(&address)? else {
                bail!("no account {address}");
            };
            if let Some(q) = config_account(&config, &account.address).and_then(|c| c.quota) {
                bail!(
                    "{} has `quota = {q}` in its [[accounts]] entry of {}, which wins over `mailroom user quota`; change it there (nothing changed)",
                    account.address,
                    config.source
                );
            }
            let quota = if size.trim().eq_ignore_ascii_case("none") {
                None
            } else {
                Some(
                    parse_size(&size)
                        .map_err(|e| anyhow::anyhow!("{e}; or `none` for the default"))?,
                )
            };
            store.set_quota(&account.address, quota)?;
            let account = store
                .find_account(&account.address)?
                .context("the account vanished")?;
            let used = store.account_usage(account.id)?;
            println!(
                "{}: {}",
                account.address,
                storage_line(&config, &account, used)
            );
        }
        UserCommand::Remove { address } => {
            store.remove_account(&address)?;
            if config_account(&config, &address).is_some() {
                eprintln!(
                    "mailroom: warning: {address} is an [[accounts]] entry of {}: the server creates it again (empty) at its next start unless the entry goes too",
                    config.source
                );
            }
            println!("removed {address} and its mail");
        }
        UserCommand::Passwd {
            address,
            apop: true,
        } => {
            if store.find_account(&address)?.is_none() {
                bail!("no account {address}");
            }
            let secret = read_new_password(&address, "APOP secret")?;
            store.set_apop_secret(&address, Some(&secret))?;
            println!("APOP secret set for {address}");
        }
        UserCommand::Passwd {
            address,
            apop: false,
        } => {
            if store.find_account(&address)?.is_none() {
                bail!("no account {address}");
            }
            if config_account(&config, &address).is_some() {
                eprintln!(
                    "mailroom: warning: {address} has its password in its [[accounts]] entry of {}: the server sets that password again at its next start unless it is changed there too",
                    config.source
                );
            }
            let pw = read_new_password(&address, "Password")?;
            store.set_password(&address, &password::hash_password(&pw)?)?;
            println!("password changed for {address}");
        }
    }
    store.shutdown();
    Ok(ExitCode::SUCCESS)
}

/// The `[[accounts]]` entry of the config for `address` (case-insensitive), if any: the server
/// applies these at every start, so what the CLI changes of them would not last.
fn config_account<'a>(
    config: &'a Config,
    address: &str,
) -> Option<&'a mailroom_server::config::AccountConfig> {
    config
        .accounts
        .iter()
        .find(|c| c.address.trim().eq_ignore_ascii_case(address.trim()))
}

/// `used 3.1 KiB of 4 KiB (78%), quota from limits.account_quota`: what an account's mail
/// takes, its limit and where the limit comes from.
fn storage_line(config: &Config, account: &mailroom_store::Account, used: u64) -> String {
    use mailroom_server::delivery::{quota_limit, QuotaSource};
    let (limit, source) = quota_limit(config, account);
    let from = match source {
        QuotaSource::Config => "from [[accounts]] in the config",
        QuotaSource::Store => "set with `mailroom user quota`",
        QuotaSource::Default => "from limits.account_quota",
    };
    match limit {
        Some(limit) => {
            let percent = u128::from(used) * 100 / u128::from(limit);
            let over = if used >= limit { ", FULL" } else { "" };
            format!(
                "used {} of {} ({percent}%{over}), quota {from}",
                show_size(used),
                show_size(limit)
            )
        }
        None if source == QuotaSource::Default => format!("used {}, no quota", show_size(used)),
        None => format!("used {}, no quota ({from})", show_size(used)),
    }
}

fn domain(config: Config, cmd: DomainCommand) -> Result<ExitCode> {
    let store = open_store(&config)?;
    match cmd {
        DomainCommand::Add { domain } => {
            store.add_domain(&domain)?;
            println!("{domain} is local");
        }
        DomainCommand::List => {
            for d in store.list_domains()? {
                println!("{d}");
            }
        }
        DomainCommand::Remove { domain } => {
            store.remove_domain(&domain)?;
            println!("{domain} is no longer local");
        }
    }
    store.shutdown();
    Ok(ExitCode::SUCCESS)
}

fn alias(config: Config, cmd: AliasCommand) -> Result<ExitCode> {
    let store = open_store(&config)?;
    match cmd {
        AliasCommand::Add { source, target } => {
            store.add_alias(&source, &target)?;
            println!("{source} -> {target}");
        }
        AliasCommand::List => {
            for (s, t) in store.list_aliases()? {
                println!("{s} -> {t}");
            }
        }
        AliasCommand::Remove { source, target } => {
            let n = store.remove_alias(&source, target.as_deref())?;
            if n == 0 {
                bail!(
                    "no alias {source}{}",
                    target.map(|t| format!(" -> {t}")).unwrap_or_default()
                );
            }
            println!("removed {n} alias entr{}", if n == 1 { "y" } else { "ies" });
        }
    }
    store.shutdown();
    Ok(ExitCode::SUCCESS)
}

fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

fn queue(config: Config, cmd: QueueCommand) -> Result<ExitCode> {
    let store = open_store(&config)?;
    match cmd {
        QueueCommand::List => {
            let entries = store.queue_list()?;
            if entries.is_empty() {
                println!("the queue is empty");
            }
            for e in entries {
                let sender = if e.sender.is_empty() { "<>" } else { &e.sender };
                println!("{}  from {}  queued {}", e.id.0, sender, when(e.created));
                for r in e.recipients {
                    println!(
                        "    {:<9} {}  attempts={}  next={}{}",
                        r.status,
                        r.recipient,
                        r.attempts,
                        when(r.next_attempt),
                        r.last_error
                            .map(|e| format!("  last error: {e}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        QueueCommand::Flush => {
            let n = store.queue_flush()?;
            println!("{n} recipient(s) will be retried now");
        }
        QueueCommand::Remove { id } => {
            store.queue_remove(mailroom_store::QueueId(id))?;
            println!("removed queue entry {id}");
        }
    }
    store.shutdown();
    Ok(ExitCode::SUCCESS)
}
