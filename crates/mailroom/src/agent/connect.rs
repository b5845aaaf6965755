//! Opening client sessions: the runtime the async clients run on, the trace, the name we give
//! in EHLO, and the logins to the reading servers (POP3, IMAP) that the prompts and
//! `mailroom inbox` share, with the IMAP listing both show.

use mailroom_client::imap::parse::StatusText;
use mailroom_client::imap::{Fetched, ImapClient, ImapError};
use mailroom_client::pop3::Pop3Client;
use mailroom_client::{trace, TraceFn};

use super::args::{CommonArgs, TlsMode};
use super::failure::{imap_failure, pop3_failure, AgentError};

/// The trace printer: stdout for the interactive agent (in order with its output), stderr
/// for `send` and `inbox` (so their stdout stays clean for scripts).
pub fn tracer(on: bool, to_stdout: bool) -> Option<TraceFn> {
    match (on, to_stdout) {
        (false, _) => None,
        (true, true) => Some(trace::to_stdout()),
        (true, false) => Some(trace::to_stderr()),
    }
}

/// A single-threaded runtime for the async clients.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The name we give in EHLO: this machine's host name (RFC 5321 §4.1.1.1 asks for the
/// client's FQDN or an address literal).
pub fn helo_name() -> String {
    let h = mailroom_server::config::system_hostname();
    if h.is_empty()
        || !h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return "[127.0.0.1]".to_string();
    }
    h
}
/// Connects to a POP3 server and logs in (USER/PASS, or APOP with `--apop`). Returns the
/// client and the server's answer to the login.
pub async fn pop3_login(
    server: &str,
    user: &str,
    password: &str,
    apop: bool,
    common_args: &CommonArgs,
    trace_to_stdout: bool,
) -> Result<(Pop3Client, String), AgentError> {
    let trace = tracer(common_args.trace, trace_to_stdout);
    let tls = common_args.tls_mode()?;
    let mut c = Pop3Client::open(server, common_args.timeout(), trace, tls.implicit())
        .await
        .map_err(|e| pop3_failure(e, false, user))?;
    if let TlsMode::StartTls(t) = &tls {
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

/// What a listing fetches: enough for number, flags, size, sender, subject and date, without
/// setting `\Seen` (BODY.PEEK, RFC 9051 §6.4.5).
const LIST_ITEMS: &str =
    "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])";

/// Connects to an IMAP server (plain, implicit TLS, or STARTTLS) and logs in with LOGIN.
/// Returns the client and the login's tagged OK; the caller selects a folder.
pub async fn imap_login(
    server: &str,
    user: &str,
    password: &str,
    common_args: &CommonArgs,
    trace_to_stdout: bool,
) -> Result<(ImapClient, StatusText), AgentError> {
    let trace = tracer(common_args.trace, trace_to_stdout);
    let tls = common_args.tls_mode()?;
    let mut c = ImapClient::open(server, common_args.timeout(), trace, tls.implicit())
        .await
        .map_err(|e| imap_failure(e, false, user))?;
    if let TlsMode::StartTls(t) = &tls {
        c.starttls(t)
            .await
            .map_err(|e| imap_failure(e, false, user))?;
    }
    let ok = c
        .login(user, password)
        .await
        .map_err(|e| imap_failure(e, true, user))?;
    Ok((c, ok))
}

/// The listing of every message in the selected folder (nothing is fetched when it is empty:
/// `1:*` would then name no message).
pub async fn list_messages(c: &mut ImapClient) -> Result<Vec<Fetched>, ImapError> {
    if c.selected().map(|s| s.exists).unwrap_or(0) == 0 {
        return Ok(Vec::new());
    }
    c.fetch("1:*", LIST_ITEMS).await
}
