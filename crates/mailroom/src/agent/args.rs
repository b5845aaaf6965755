//! The options `agent`, `send` and `inbox` share (password, trace, timeout, TLS), and the
//! values a person types that every command checks the same way (message numbers).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use mailroom_client::ClientTls;

use super::failure::AgentError;

/// Options shared by `agent`, `send` and `inbox`.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Password (prefer the MAILROOM_PASSWORD environment variable; without either you are
    /// asked for it without echo).
    #[arg(
        short = 'p',
        long,
        env = "MAILROOM_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub password: Option<String>,
    /// Print every protocol line as `C: ...` / `S: ...` (AUTH and PASS secrets masked).
    #[arg(long, global = true)]
    pub trace: bool,
    /// Seconds to wait for the server at each step.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, global = true)]
    pub timeout: u64,
    /// Implicit TLS (RFC 8314): TLS from the first byte, as on ports 465/995 (the config's
    /// listen.submissions / listen.pop3s / listen.imaps when no --smtp / --pop3 / --imap is given).
    #[arg(long, global = true, conflicts_with = "starttls")]
    pub tls: bool,
    /// Upgrade the plain connection with STARTTLS (SMTP, IMAP) / STLS (POP3) before logging in;
    /// fails if the server does not offer it.
    #[arg(long, global = true)]
    pub starttls: bool,
    /// Trust the certificate(s) in this PEM file (e.g. the server's self-signed
    /// `<data_dir>/tls/cert.pem`) instead of the built-in root certificates.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate at all (throwaway dev setups only).
    #[arg(long, global = true, conflicts_with = "ca")]
    pub insecure: bool,
}

/// How a client session uses TLS.
#[derive(Debug, Clone)]
pub enum TlsMode {
    /// No TLS.
    Plain,
    /// TLS from the first byte (RFC 8314).
    Implicit(ClientTls),
    /// STARTTLS / STLS before logging in.
    StartTls(ClientTls),
}

impl TlsMode {
    /// The TLS to start at once (implicit TLS), if that is the mode.
    pub fn implicit(&self) -> Option<&ClientTls> {
        match self {
            TlsMode::Implicit(t) => Some(t),
            _ => None,
        }
    }
}

impl CommonArgs {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.max(1))
    }

    /// `--tls` / `--starttls` with `--ca` / `--insecure`; verification is on by default.
    pub fn tls_mode(&self) -> Result<TlsMode, AgentError> {
        if !self.tls && !self.starttls {
            if self.ca.is_some() || self.insecure {
                return Err(AgentError::local(
                    "--ca and --insecure need --tls or --starttls",
                ));
            }
            return Ok(TlsMode::Plain);
        }
        let tls = if self.insecure {
            ClientTls::insecure()
        } else if let Some(ca) = &self.ca {
            ClientTls::with_ca_file(ca).map_err(|e| AgentError::local(e.to_string()))?
        } else {
            ClientTls::webpki_roots().map_err(|e| AgentError::local(e.to_string()))?
        };
        Ok(if self.tls {
            TlsMode::Implicit(tls)
        } else {
            TlsMode::StartTls(tls)
        })
    }

    /// The password from -p / MAILROOM_PASSWORD, or asked on the terminal without echo.
    pub fn password(&self, user: &str) -> Result<String, AgentError> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        ask_password(user)
    }
}

/// Asks on the controlling terminal (works even when stdin is a pipe).
pub fn ask_password(user: &str) -> Result<String, AgentError> {
    let no_tty = || {
        AgentError::local(format!(
            "no password for {user}: give -p PASSWORD or set MAILROOM_PASSWORD (there is no terminal to ask on)"
        ))
    };
    if !std::io::stdin().is_terminal() && !std::path::Path::new("/dev/tty").exists() {
        return Err(no_tty());
    }
    match rpassword::prompt_password(format!("Password for {user}: ")) {
        Ok(p) if !p.is_empty() => Ok(p),
        Ok(_) => Err(AgentError::local("the password is empty")),
        Err(_) => Err(no_tty()),
    }
}

/// Parses a message number typed by a person.
pub fn message_number(s: &str) -> Result<u32, AgentError> {
    match s.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(AgentError::local(format!(
            "'{s}' is not a message number (1, 2, ... as LIST shows them)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_numbers() {
        assert_eq!(message_number("3").ok(), Some(3));
        assert!(message_number("0").is_err());
        assert!(message_number("x").is_err());
        assert!(message_number("-1").is_err());
    }
}
