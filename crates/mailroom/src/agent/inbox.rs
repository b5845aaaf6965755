//! `mailroom inbox list|read|delete|save`: reading mail over POP3 from scripts.

use std::process::ExitCode;

use mailroom_client::pop3::{Pop3Client, Pop3Error};

use super::common::{self, pop3_failure, AgentError, Service};
use super::show;
use super::{InboxAction, InboxArgs};

/// Connects and logs in (USER/PASS, or APOP with `--apop`).
pub async fn login(
    server: &str,
    user: &str,
    password: &str,
    apop: bool,
    common_args: &common::CommonArgs,
    trace_to_stdout: bool,
) -> Result<(Pop3Client, String), AgentError> {
    let trace = common::tracer(common_args.trace, trace_to_stdout);
    let tls = common_args.tls_mode()?;
    let mut c = match &tls {
        common::TlsMode::Implicit(t) => {
            Pop3Client::connect_tls(server, common_args.timeout(), trace, t).await
        }
        _ => Pop3Client::connect(server, common_args.timeout(), trace).await,
    }
    .map_err(|e| pop3_failure(e, false, user))?;
    if let common::TlsMode::StartTls(t) = &tls {
        c.stls(t).await.map_err(|e| pop3_failure(e, false, user))?;
    }
    let r = if apop {
        c.apop(user, password).await
    } else {
        c.user_pass(user, password).await
    }
    .map_err(|e| pop3_failure(e, true, user))?;
    Ok((c, r.to_string()))
}

pub fn run(args: InboxArgs) -> Result<ExitCode, AgentError> {
    let user = match &args.user {
        Some(u) => super::compose::Mailbox::parse(u)?.address,
        None => {
            return Err(AgentError::local(
                "give your address with -e ADDRESS (it is also the login name)",
            ))
        }
    };
    let (server, _) = common::server_addr(
        Service::Pop3.with_tls(args.common.tls),
        &args.pop3,
        &args.config,
        &user,
    )?;
    // Check local arguments before any network traffic.
    if let InboxAction::Delete { numbers } = &args.action {
        if numbers.is_empty() {
            return Err(AgentError::local(
                "give the numbers of the messages to delete",
            ));
        }
    }
    let password = args.common.password(&user)?;
    let rt = common::runtime().map_err(|e| AgentError::local(e.to_string()))?;
    rt.block_on(async {
        let (mut c, _) = login(&server, &user, &password, args.apop, &args.common, false).await?;
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
                    rows.push((*n, *size, uid, show::summary(&head)));
                }
                let _ = c.quit().await;
                if *json {
                    print_json(&rows);
                } else {
                    print_table(&rows);
                }
            }
            InboxAction::Read { number, raw } => {
                let msg = c.retr(*number).await.map_err(fail)?;
                let _ = c.quit().await;
                if *raw {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&msg)
                        .and_then(|_| out.flush())
                        .map_err(|e| AgentError::local(format!("cannot write the message: {e}")))?;
                } else {
                    print!("{}", show::render(&msg));
                }
            }
            InboxAction::Save { number, dir } => {
                let msg = c.retr(*number).await.map_err(fail)?;
                let _ = c.quit().await;
                let saved = show::save_attachments(&msg, dir)?;
                if saved.is_empty() {
                    println!("message {number} has no attachments");
                }
                for (path, size) in saved {
                    println!("saved {} ({size} bytes)", path.display());
                }
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

type Row = (u32, u64, String, show::Summary);

fn print_table(rows: &[Row]) {
    let total: u64 = rows.iter().map(|r| r.1).sum();
    println!(
        "{} message{}, {total} octets",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    for (n, size, _, s) in rows {
        println!(
            "{n:>4} {size:>8}  {:<32}  {}",
            truncate(&s.from, 32),
            s.subject
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

fn print_json(rows: &[Row]) {
    use show::json_string as j;
    let items: Vec<String> = rows
        .iter()
        .map(|(n, size, uid, s)| {
            format!(
                "{{\"number\":{n},\"size\":{size},\"uid\":{},\"from\":{},\"to\":{},\"subject\":{},\"date\":{},\"message_id\":{}}}",
                j(uid),
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
