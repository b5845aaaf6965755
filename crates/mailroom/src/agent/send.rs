//! Sending one message: connect, EHLO, AUTH, one transaction, QUIT — shared by the
//! interactive `smtp` command and `mailroom send`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use mailroom_client::smtp::{SendOutcome, SmtpClient, SmtpReply};
use mailroom_client::TraceFn;

use super::common::{self, smtp_failure, AgentError, Failure, Service, SmtpPhase};
use super::compose::{read_attachments, Draft, Mailbox};
use super::SendArgs;

/// Where and as whom to send.
pub struct SmtpTarget {
    pub server: String,
    /// (user, password) for AUTH; `None` sends without logging in (an MX port).
    pub login: Option<(String, String)>,
    pub timeout: Duration,
    pub trace: Option<TraceFn>,
    pub tls: common::TlsMode,
}

/// What happened to one recipient.
#[derive(Debug, Clone)]
pub struct RcptResult {
    pub address: String,
    pub accepted: bool,
    /// The command whose reply decided it.
    pub command: String,
    pub reply: SmtpReply,
}

/// Per recipient, in order: accepted, or the refusing command and reply.
pub fn recipient_results(outcome: &SendOutcome, rcpts: &[String], from: &str) -> Vec<RcptResult> {
    let accepted = outcome.accepted();
    outcome
        .per_recipient(rcpts)
        .into_iter()
        .map(|(addr, reply)| {
            let rcpt_reply = outcome
                .rcpts
                .iter()
                .find(|(a, _)| a == addr)
                .map(|(_, r)| r);
            let command = if !outcome.mail.is_success() {
                format!("MAIL FROM:<{from}>")
            } else if rcpt_reply.is_some_and(|r| !r.is_success()) {
                format!("RCPT TO:<{addr}>")
            } else {
                "the message (DATA)".to_string()
            };
            RcptResult {
                address: addr.to_string(),
                accepted: accepted.contains(&addr),
                command,
                reply: reply.clone(),
            }
        })
        .collect()
}

/// Runs the whole SMTP session. `progress` receives the lines worth showing a person as they
/// happen (the greeting, the login, each transaction reply).
pub async fn send_message(
    target: &SmtpTarget,
    from: &str,
    rcpts: &[String],
    message: &[u8],
    progress: &mut dyn FnMut(String),
) -> Result<SendOutcome, AgentError> {
    let user = target
        .login
        .as_ref()
        .map(|(u, _)| u.as_str())
        .unwrap_or(from);
    let fail = |e, phase| smtp_failure(e, phase, user);
    let mut c = SmtpClient::open(
        &target.server,
        target.timeout,
        target.trace.clone(),
        target.tls.implicit(),
    )
    .await
    .map_err(|e| fail(e, SmtpPhase::Connect))?;
    progress(format!("connected to {}: {}", c.server(), c.greeting()));
    c.hello(&common::helo_name())
        .await
        .map_err(|e| fail(e, SmtpPhase::Hello))?;
    if let common::TlsMode::StartTls(tls) = &target.tls {
        if !c.extensions().starttls {
            return Err(AgentError::new(
                common::Failure::Connect,
                format!(
                    "the SMTP server {} does not offer STARTTLS (RFC 3207); nothing was sent",
                    c.server()
                ),
            ));
        }
        c.starttls(tls)
            .await
            .map_err(|e| fail(e, SmtpPhase::Hello))?;
        c.hello(&common::helo_name())
            .await
            .map_err(|e| fail(e, SmtpPhase::Hello))?;
    }
    if c.is_tls() {
        progress("TLS established".to_string());
    }
    if let Some((user, password)) = &target.login {
        c.authenticate(user, password)
            .await
            .map_err(|e| fail(e, SmtpPhase::Login))?;
        progress(format!("logged in as {user}"));
    }
    let outcome = c
        .send_mail(from, rcpts, message)
        .await
        .map_err(|e| fail(e, SmtpPhase::Transfer))?;
    progress(format!("MAIL FROM:<{from}> -> {}", outcome.mail));
    for (r, reply) in &outcome.rcpts {
        progress(format!("RCPT TO:<{r}> -> {reply}"));
    }
    if let Some(d) = &outcome.data {
        progress(format!("DATA -> {d}"));
    }
    // RFC 5321 §4.1.1.10: QUIT; a failure here changes nothing about the message.
    let _ = c.quit().await;
    Ok(outcome)
}

/// The SMTP server, the login and the trace for `send` and the interactive agent.
pub fn smtp_target(
    smtp: &Option<String>,
    config: &Option<PathBuf>,
    no_auth: bool,
    user: &str,
    common_args: &common::CommonArgs,
    trace_to_stdout: bool,
) -> Result<SmtpTarget, AgentError> {
    let tls = common_args.tls_mode()?;
    let (server, _) =
        common::server_addr(Service::Smtp.with_tls(common_args.tls), smtp, config, user)?;
    let login = if no_auth {
        None
    } else {
        Some((user.to_string(), common_args.password(user)?))
    };
    Ok(SmtpTarget {
        server,
        login,
        timeout: common_args.timeout(),
        trace: common::tracer(common_args.trace, trace_to_stdout),
        tls,
    })
}

/// `mailroom send`.
pub fn run(args: SendArgs) -> Result<ExitCode, AgentError> {
    let from = match (&args.from, &args.user) {
        (Some(f), _) | (None, Some(f)) => Mailbox::parse(f)?,
        (None, None) => {
            return Err(AgentError::local(
                "give the sender with --from ADDRESS (or -e ADDRESS)",
            ))
        }
    };
    let mut to = Vec::new();
    for t in &args.to {
        to.extend(Mailbox::parse_list(t)?);
    }
    let mut cc = Vec::new();
    for t in &args.cc {
        cc.extend(Mailbox::parse_list(t)?);
    }
    let mut bcc = Vec::new();
    for t in &args.bcc {
        bcc.extend(Mailbox::parse_list(t)?);
    }
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err(AgentError::local(
            "no recipients: give --to (or --cc / --bcc)",
        ));
    }
    let body = match (&args.body, &args.body_file) {
        (Some(b), _) => b.clone(),
        (None, Some(path)) if path.as_os_str() != "-" => {
            std::fs::read_to_string(path).map_err(|e| {
                AgentError::local(format!("cannot read the body from {}: {e}", path.display()))
            })?
        }
        _ => read_stdin_body()?,
    };
    let draft = Draft {
        from: from.clone(),
        to,
        cc,
        bcc,
        subject: args.subject.clone().unwrap_or_default(),
        body,
        attachments: read_attachments(&args.attach)?,
    };
    let message = draft.build()?;
    let rcpts = draft.recipients();
    let user = args.user.clone().unwrap_or_else(|| from.address.clone());
    let target = smtp_target(
        &args.smtp,
        &args.config,
        args.no_auth,
        &user,
        &args.common,
        false,
    )?;
    let rt = common::runtime().map_err(|e| AgentError::local(e.to_string()))?;
    let outcome = rt.block_on(send_message(
        &target,
        &from.address,
        &rcpts,
        &message,
        &mut |_| {},
    ))?;
    let mut refused = false;
    for r in recipient_results(&outcome, &rcpts, &from.address) {
        if r.accepted {
            println!("sent to {}: {}", r.address, r.reply);
        } else {
            refused = true;
            eprintln!(
                "mailroom: not sent to {}: the SMTP server {} refused {}: {}",
                r.address, target.server, r.command, r.reply
            );
        }
    }
    Ok(if refused {
        Failure::Refused.code()
    } else {
        ExitCode::SUCCESS
    })
}

fn read_stdin_body() -> Result<String, AgentError> {
    use std::io::{IsTerminal, Read};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Type the message text; end it with Ctrl-D on a line of its own.");
    }
    let mut raw = Vec::new();
    stdin
        .lock()
        .read_to_end(&mut raw)
        .map_err(|e| AgentError::local(format!("cannot read the body from stdin: {e}")))?;
    String::from_utf8(raw).map_err(|_| {
        AgentError::local(
            "the body is not UTF-8 text; send binary data as an attachment (--attach FILE)",
        )
    })
}
