//! `mailroom inbox list|read|delete|save`: reading mail over POP3 (or IMAP, with `--imap`,
//! `--folder` or `--protocol imap`) from scripts. The same actions and output either way;
//! over IMAP, listing and reading change no flags (EXAMINE, BODY.PEEK).

use std::path::PathBuf;
use std::process::ExitCode;

use mailroom_client::imap::FlagOp;
use mailroom_client::pop3::Pop3Error;

use super::args::CommonArgs;
use super::compose::Mailbox;
use super::connect::{imap_login, list_messages, pop3_login, runtime};
use super::failure::{imap_failure, pop3_failure, AgentError, Failure};
use super::servers::{server_addr, Service};
use super::show;

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
    /// POP3 server (default: listen.pop3 of the config, else 127.0.0.1:24110).
    #[arg(long, value_name = "HOST:PORT", global = true)]
    pub pop3: Option<String>,
    /// Log in with APOP (RFC 1939 §7) instead of USER/PASS.
    #[arg(long, global = true)]
    pub apop: bool,
    /// Read over IMAP from this server instead of POP3 (default with --protocol imap:
    /// listen.imap of the config, else 127.0.0.1:24143).
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

pub fn run(args: InboxArgs) -> Result<ExitCode, AgentError> {
    let user = match &args.user {
        Some(u) => Mailbox::parse(u)?.address,
        None => {
            return Err(AgentError::local(
                "give your address with -e ADDRESS (it is also the login name)",
            ))
        }
    };
    let imap =
        args.imap.is_some() || args.folder.is_some() || args.protocol == Some(Protocol::Imap);
    if imap && args.protocol == Some(Protocol::Pop3) {
        return Err(AgentError::local(
            "--imap and --folder read over IMAP: they do not go with --protocol pop3",
        ));
    }
    if imap && args.apop {
        return Err(AgentError::local(
            "--apop is a POP3 login: it does not go with IMAP",
        ));
    }
    let (server, _) = if imap {
        server_addr(
            Service::Imap.with_tls(args.common.tls),
            &args.imap,
            &args.config,
            &user,
        )?
    } else {
        server_addr(
            Service::Pop3.with_tls(args.common.tls),
            &args.pop3,
            &args.config,
            &user,
        )?
    };
    // Check local arguments before any network traffic.
    if let InboxAction::Delete { numbers } = &args.action {
        if numbers.is_empty() {
            return Err(AgentError::local(
                "give the numbers of the messages to delete",
            ));
        }
    }
    let password = args.common.password(&user)?;
    let rt = runtime().map_err(|e| AgentError::local(e.to_string()))?;
    if imap {
        let folder = args.folder.as_deref().unwrap_or("INBOX");
        return rt.block_on(run_imap(&args, &server, &user, &password, folder));
    }
    rt.block_on(async {
        let (mut c, _) =
            pop3_login(&server, &user, &password, args.apop, &args.common, false).await?;
        let fail = |e| pop3_failure(e, false, &user);
        match &args.action {
            InboxAction::List { json } => {
                let list = c.list().await.map_err(fail)?;
                let uids = c.uidl().await.unwrap_or_default();
                let mut rows = Vec::new();
                for (n, size) in &list {
                    // TOP is optional (RFC 1939 §7): without it the row has no header fields.
                    let head = match c.top(*n, 0).await {
                        Ok(h) => h,
                        Err(Pop3Error::Rejected { .. }) => Vec::new(),
                        Err(e) => return Err(fail(e)),
                    };
                    let uid = uids
                        .iter()
                        .find(|(m, _)| m == n)
                        .map(|(_, u)| u.clone())
                        .unwrap_or_default();
                    rows.push(Row {
                        number: *n,
                        size: *size,
                        uid,
                        flags: None,
                        summary: show::summary(&head),
                    });
                }
                let _ = c.quit().await;
                print_rows(&rows, *json);
            }
            InboxAction::Read { number, raw } => {
                let msg = c.retr(*number).await.map_err(fail)?;
                let _ = c.quit().await;
                print_message(&msg, *raw)?;
            }
            InboxAction::Save { number, dir } => {
                let msg = c.retr(*number).await.map_err(fail)?;
                let _ = c.quit().await;
                save(&msg, *number, dir)?;
            }
            InboxAction::Delete { numbers } => {
                // All or nothing: if one DELE is refused, RSET unmarks the others and QUIT
                // then deletes nothing (RFC 1939 §5, §6).
                for n in numbers {
                    if let Err(e) = c.dele(*n).await {
                        let err = fail(e);
                        let _ = c.rset().await;
                        let _ = c.quit().await;
                        return Err(AgentError::new(
                            err.failure,
                            format!("{}; nothing was deleted", err.message),
                        ));
                    }
                }
                let r = c.quit().await.map_err(fail)?;
                let list: Vec<String> = numbers.iter().map(u32::to_string).collect();
                println!("deleted {} ({r})", list.join(" "));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// One message of a listing.
struct Row {
    number: u32,
    size: u64,
    /// POP3 UIDL, or the IMAP UID.
    uid: String,
    /// IMAP only.
    flags: Option<Vec<String>>,
    summary: show::Summary,
}

fn print_rows(rows: &[Row], json: bool) {
    if json {
        print_json(rows);
    } else {
        print_table(rows);
    }
}

fn print_message(msg: &[u8], raw: bool) -> Result<(), AgentError> {
    if raw {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(msg)
            .and_then(|_| out.flush())
            .map_err(|e| AgentError::local(format!("cannot write the message: {e}")))?;
    } else {
        print!("{}", show::render(msg));
    }
    Ok(())
}

fn save(msg: &[u8], number: u32, dir: &std::path::Path) -> Result<(), AgentError> {
    let saved = show::save_attachments(msg, dir)?;
    if saved.is_empty() {
        println!("message {number} has no attachments");
    }
    for (path, size) in saved {
        println!("saved {} ({size} bytes)", path.display());
    }
    Ok(())
}

/// The same actions over IMAP: EXAMINE (read-only) to list and read, SELECT to delete.
async fn run_imap(
    args: &InboxArgs,
    server: &str,
    user: &str,
    password: &str,
    folder: &str,
) -> Result<ExitCode, AgentError> {
    let (mut c, _) = imap_login(server, user, password, &args.common, false).await?;
    let fail = |e| imap_failure(e, false, user);
    let read_only = !matches!(args.action, InboxAction::Delete { .. });
    let sel = c.select(folder, read_only).await.map_err(fail)?;
    // Numbers beyond the folder are refused here, before anything changes.
    let check = |numbers: &[u32]| -> Result<(), AgentError> {
        match numbers.iter().find(|&&n| n == 0 || n > sel.exists) {
            Some(n) => Err(AgentError::new(
                Failure::Refused,
                format!(
                    "the IMAP server {server} has no message {n} in {} (it has {})",
                    printable(folder),
                    sel.exists
                ),
            )),
            None => Ok(()),
        }
    };
    match &args.action {
        InboxAction::List { json } => {
            let list = list_messages(&mut c).await.map_err(fail)?;
            let _ = c.logout().await;
            let rows: Vec<Row> = list
                .into_iter()
                .map(|f| Row {
                    number: f.seq,
                    size: f.size.unwrap_or(0),
                    uid: f.uid.map(|u| u.to_string()).unwrap_or_default(),
                    summary: show::summary(f.body().unwrap_or(b"")),
                    flags: Some(f.flags.unwrap_or_default()),
                })
                .collect();
            print_rows(&rows, *json);
        }
        InboxAction::Read { number, raw } => {
            check(&[*number])?;
            let msg = c.fetch_message(*number, true).await.map_err(fail)?;
            let _ = c.logout().await;
            print_message(&msg, *raw)?;
        }
        InboxAction::Save { number, dir } => {
            check(&[*number])?;
            let msg = c.fetch_message(*number, true).await.map_err(fail)?;
            let _ = c.logout().await;
            save(&msg, *number, dir)?;
        }
        InboxAction::Delete { numbers } => {
            let nothing = |e: AgentError| {
                AgentError::new(e.failure, format!("{}; nothing was deleted", e.message))
            };
            check(numbers).map_err(nothing)?;
            let set: Vec<String> = numbers.iter().map(u32::to_string).collect();
            let set = set.join(",");
            // UIDs first, so that UID EXPUNGE removes exactly these messages and leaves any
            // other message flagged \Deleted alone (RFC 4315).
            let uids: Vec<u32> = c
                .fetch(&set, "(UID)")
                .await
                .map_err(|e| nothing(fail(e)))?
                .iter()
                .filter_map(|f| f.uid)
                .collect();
            c.store(&set, FlagOp::Add, &["\\Deleted"])
                .await
                .map_err(|e| nothing(fail(e)))?;
            let gone = if c.has("UIDPLUS") || c.has("IMAP4rev2") {
                c.uid_expunge(&uids).await
            } else {
                c.expunge().await
            }
            .map_err(fail)?;
            let _ = c.logout().await;
            println!(
                "deleted {} ({} message{} expunged from {})",
                numbers
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                gone.len(),
                if gone.len() == 1 { "" } else { "s" },
                printable(folder)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn printable(s: &str) -> String {
    mailroom_client::trace::printable(s.as_bytes())
}

fn print_table(rows: &[Row]) {
    let total: u64 = rows.iter().map(|r| r.size).sum();
    println!(
        "{} message{}, {total} octets",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    for r in rows {
        let flags = match &r.flags {
            Some(f) => format!("{:<4} ", show::flag_letters(f)),
            None => String::new(),
        };
        println!(
            "{:>4} {flags}{:>8}  {:<32}  {}",
            r.number,
            r.size,
            show::truncate(&r.summary.from, 32),
            r.summary.subject
        );
    }
}

fn print_json(rows: &[Row]) {
    use show::json_string as j;
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            let s = &r.summary;
            let flags = match &r.flags {
                Some(f) => format!(
                    ",\"flags\":[{}]",
                    f.iter().map(|x| j(x)).collect::<Vec<_>>().join(",")
                ),
                None => String::new(),
            };
            format!(
                "{{\"number\":{},\"size\":{},\"uid\":{},\"from\":{},\"to\":{},\"subject\":{},\"date\":{},\"message_id\":{}{flags}}}",
                r.number,
                r.size,
                j(&r.uid),
                j(&s.from),
                j(&s.to),
                j(&s.subject),
                j(&s.date),
                j(&s.message_id)
            )
        })
        .collect();
    println!("[{}]", items.join(",\n "));
}
