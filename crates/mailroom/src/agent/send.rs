//! Sending one message: connect, EHLO, AUTH, one transaction, QUIT — shared by the
//! interactive `smtp` command and `mailroom send` (whose arguments, [`SendArgs`], are here).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use mailroom_client::smtp::{SendOutcome, SmtpClient, SmtpReply};
use mailroom_client::TraceFn;

use super::args::{CommonArgs, TlsMode};
use super::compose::{read_attachments, Draft, Mailbox};
use super::connect::{helo_name, runtime, tracer};
use super::failure::{smtp_failure, AgentError, Failure, SmtpPhase};
use super::servers::{server_addr, Service};

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
    /// SMTP server (default: listen.submission of the config, else 127.0.0.1:24587).
    #[arg(long, value_name = "HOST:PORT")]
    pub smtp: Option<String>,
    /// Send without AUTH (to an MX port that accepts mail for its own users).
    #[arg(long)]
    pub no_auth: bool,
    /// The server config file; filled in from the top-level `--config` (not a flag here).
    #[arg(skip)]
    pub config: Option<PathBuf>,
}

/// Where and as whom to send.
pub struct SmtpTarget {
    pub server: String,
    /// (user, password) for AUTH; `None` sends without logging in (an MX port).
    pub login: Option<(String, String)>,
    pub timeout: Duration,
    pub trace: Option<TraceFn>,
    pub tls: TlsMode,
}

impl SmtpTarget {
    /// The name failures are reported for: the login's user, else the envelope sender.
    fn user<'a>(&'a self, from: &'a str) -> &'a str {
        self.login.as_ref().map(|(u, _)| u.as_str()).unwrap_or(from)
    }
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

/// Connects, says EHLO, upgrades with STARTTLS when asked, and logs in when the target has a
/// login. `progress` receives the lines worth showing a person (the greeting, the login).
pub async fn smtp_login(
    target: &SmtpTarget,
    from: &str,
    progress: &mut dyn FnMut(String),
) -> Result<SmtpClient, AgentError> {
    let fail = |e, phase| smtp_failure(e, phase, target.user(from));
    let mut c = SmtpClient::open(
        &target.server,
        target.timeout,
        target.trace.clone(),
        target.tls.implicit(),
    )
    .await
    .map_err(|e| fail(e, SmtpPhase::Connect))?;
    progress(format!("connected to {}: {}", c.server(), c.greeting()));
    c.hello(&helo_name())
        .await
        .map_err(|e| fail(e, SmtpPhase::Hello))?;
    if let TlsMode::StartTls(tls) = &target.tls {
        if !c.extensions().starttls {
            return Err(AgentError::new(
                Failure::Connect,
                format!(
                    "the SMTP server {} does not offer STARTTLS (RFC 3207); nothing was sent",
                    c.server()
                ),
            ));
        }
        c.starttls(tls)
            .await
            .map_err(|e| fail(e, SmtpPhase::Hello))?;
        c.hello(&helo_name())
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
    Ok(c)
}

/// Logs in and says QUIT: checks a password typed at the prompt before the session starts.
pub async fn check_login(
    target: &SmtpTarget,
    progress: &mut dyn FnMut(String),
) -> Result<(), AgentError> {
    let c = smtp_login(target, target.user(""), progress).await?;
    // RFC 5321 §4.1.1.10: QUIT; its answer changes nothing about the login.
    let _ = c.quit().await;
    Ok(())
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
    let fail = |e, phase| smtp_failure(e, phase, target.user(from));
    let mut c = smtp_login(target, from, progress).await?;
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
    common_args: &CommonArgs,
    trace_to_stdout: bool,
) -> Result<SmtpTarget, AgentError> {
    let tls = common_args.tls_mode()?;
    let (server, _) = server_addr(Service::Smtp.with_tls(common_args.tls), smtp, config, user)?;
    let login = if no_auth {
        None
    } else {
        Some((user.to_string(), common_args.password(user)?))
    };
    Ok(SmtpTarget {
        server,
        login,
        timeout: common_args.timeout(),
        trace: tracer(common_args.trace, trace_to_stdout),
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
    let rt = runtime().map_err(|e| AgentError::local(e.to_string()))?;
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
