//! Which server a command talks to: the `--smtp` / `--pop3` / `--imap` flag, else the
//! listener of the server config (`--config FILE` on the top-level command, or
//! `MAILROOM_CONFIG`; in a lab file the user's server, or the one `--name` names), else the
//! dev default.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mailroom_server::config::{defaults, Config, ConfigError};

use super::failure::AgentError;

/// Which server a client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Smtp,
    Pop3,
    /// Submission over implicit TLS (listen.submissions).
    SmtpTls,
    /// POP3 over implicit TLS (listen.pop3s).
    Pop3Tls,
    Imap,
    /// IMAP over implicit TLS (listen.imaps).
    ImapTls,
}

impl Service {
    /// The implicit-TLS twin when `tls` is set.
    pub fn with_tls(self, tls: bool) -> Service {
        match (self, tls) {
            (Service::Smtp, true) => Service::SmtpTls,
            (Service::Pop3, true) => Service::Pop3Tls,
            (Service::Imap, true) => Service::ImapTls,
            (s, _) => s,
        }
    }

    /// The command-line flag that gives this server's address.
    fn flag(self) -> &'static str {
        match self {
            Service::Smtp | Service::SmtpTls => "--smtp",
            Service::Pop3 | Service::Pop3Tls => "--pop3",
            Service::Imap | Service::ImapTls => "--imap",
        }
    }
}

/// The server config and lab server name the top-level command was given: `--config FILE`
/// (passed in by main.rs through the args' `config` field, or found on the command line),
/// else `MAILROOM_CONFIG`; `--name NAME` from the command line.
#[derive(Debug, Clone, Default)]
pub struct ConfigRef {
    pub path: Option<PathBuf>,
    pub name: Option<String>,
}

impl ConfigRef {
    pub fn find(explicit: &Option<PathBuf>) -> ConfigRef {
        let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
        let path = explicit
            .clone()
            .or_else(|| global_flag(&argv, "--config", Some("-c")).map(PathBuf::from))
            .or_else(|| {
                std::env::var_os("MAILROOM_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            });
        let name = global_flag(&argv, "--name", None).map(|n| n.to_string_lossy().into_owned());
        ConfigRef { path, name }
    }
}

/// Finds a global flag of the top-level command (`--config FILE`, `--config=FILE`, `-c FILE`,
/// `-cFILE`) on the command line: the top-level parser consumed it, so this is how the agent
/// sees it.
fn global_flag(args: &[OsString], long: &str, short: Option<&str>) -> Option<OsString> {
    let mut i = 0;
    let mut found = None;
    let long_eq = format!("{long}=");
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--" {
            break;
        }
        if a == long || short.is_some_and(|s| a == s) {
            found = args.get(i + 1).cloned();
            i += 2;
            continue;
        }
        if let Some(v) = a.strip_prefix(&long_eq) {
            found = Some(OsString::from(v));
        } else if let Some(s) = short {
            if let Some(v) = a
                .strip_prefix(s)
                .filter(|v| !v.is_empty() && !a.starts_with("--"))
            {
                found = Some(OsString::from(v));
            }
        }
        i += 1;
    }
    found
}

/// The server config for `user`: a plain server config, or from a lab file (`[[server]]`
/// entries) the server named by `--name`, else the one whose domains include the user's.
fn load_config(cfg: &ConfigRef, path: &Path, user: &str) -> Result<Config, AgentError> {
    let bad = |e: ConfigError| AgentError::local(format!("cannot use the server config: {e}"));
    let servers = match Config::load_lab(path) {
        Ok(s) => s,
        // Not a lab file: a plain server config.
        Err(ConfigError::Invalid { key, .. }) if key == "server" => {
            return Config::load(path).map_err(bad)
        }
        Err(e) => return Err(bad(e)),
    };
    let names = || {
        servers
            .iter()
            .filter_map(|s| s.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = &cfg.name {
        return servers
            .iter()
            .find(|s| s.name.as_deref() == Some(name.as_str()))
            .cloned()
            .ok_or_else(|| {
                AgentError::local(format!(
                    "{} has no server named '{name}' (it has {})",
                    path.display(),
                    names()
                ))
            });
    }
    let domain = user
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    servers
        .iter()
        .find(|s| s.local_domains().contains(&domain))
        .cloned()
        .ok_or_else(|| {
            AgentError::local(format!(
                "no server in the lab file {} hosts {domain} (its servers are {}); choose one with --name",
                path.display(),
                names()
            ))
        })
}

/// The server address for `service`: the explicit `--smtp`/`--pop3`/`--imap` value, else the listener
/// from the config file (submission preferred for SMTP; in a lab file, the user's server),
/// else the dev default. The second value says where it came from (for the banner).
pub fn server_addr(
    service: Service,
    explicit: &Option<String>,
    config: &Option<PathBuf>,
    user: &str,
) -> Result<(String, String), AgentError> {
    if let Some(s) = explicit {
        if !s.contains(':') {
            return Err(AgentError::local(format!(
                "'{s}' is not HOST:PORT (for example 127.0.0.1:24587)"
            )));
        }
        return Ok((s.clone(), "given".into()));
    }
    let cfg_ref = ConfigRef::find(config);
    if let Some(path) = &cfg_ref.path {
        let cfg = load_config(&cfg_ref, path, user)?;
        let file = match &cfg.name {
            Some(n) => format!("server {n} of {}", path.display()),
            None => path.display().to_string(),
        };
        let (addr, key) = match service {
            Service::Smtp => match (cfg.listen.submission, cfg.listen.smtp) {
                (Some(a), _) => (a, "listen.submission"),
                (None, Some(a)) => (a, "listen.smtp"),
                (None, None) => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.submission or listen.smtp; give --smtp HOST:PORT"
                    )))
                }
            },
            Service::Pop3 => match cfg.listen.pop3 {
                Some(a) => (a, "listen.pop3"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.pop3; give --pop3 HOST:PORT"
                    )))
                }
            },
            Service::SmtpTls => match cfg.listen.submissions {
                Some(a) => (a, "listen.submissions"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.submissions (implicit TLS); give --smtp HOST:PORT, or use --starttls"
                    )))
                }
            },
            Service::Pop3Tls => match cfg.listen.pop3s {
                Some(a) => (a, "listen.pop3s"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.pop3s (implicit TLS); give --pop3 HOST:PORT, or use --starttls"
                    )))
                }
            },
            Service::Imap => match cfg.listen.imap {
                Some(a) => (a, "listen.imap"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.imap; give --imap HOST:PORT"
                    )))
                }
            },
            Service::ImapTls => match cfg.listen.imaps {
                Some(a) => (a, "listen.imaps"),
                None => {
                    return Err(AgentError::local(format!(
                        "{file} has no listen.imaps (implicit TLS); give --imap HOST:PORT, or use --starttls"
                    )))
                }
            },
        };
        let addr = connectable(addr).ok_or_else(|| {
            AgentError::local(format!(
                "{key} of {file} is port 0 (any free port): give the real one with {}",
                service.flag()
            ))
        })?;
        return Ok((addr, format!("{key} of {file}")));
    }
    let default = match service {
        Service::Smtp => defaults::SUBMISSION,
        Service::Pop3 => defaults::POP3,
        Service::SmtpTls => defaults::SUBMISSIONS,
        Service::Pop3Tls => defaults::POP3S,
        Service::Imap => defaults::IMAP,
        Service::ImapTls => defaults::IMAPS,
    };
    Ok((default.to_string(), "default".into()))
}

/// A listen address as something to connect to: 0.0.0.0 / [::] become loopback.
fn connectable(mut addr: SocketAddr) -> Option<String> {
    if addr.port() == 0 {
        return None;
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Some(addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Option<PathBuf> {
        let a: Vec<OsString> = a.iter().map(OsString::from).collect();
        global_flag(&a, "--config", Some("-c")).map(PathBuf::from)
    }

    #[test]
    fn finds_the_global_config_flag() {
        assert_eq!(argv(&["agent", "-e", "a@b"]), None);
        assert_eq!(
            argv(&["--config", "x.toml", "agent"]),
            Some("x.toml".into())
        );
        assert_eq!(argv(&["agent", "--config=y.toml"]), Some("y.toml".into()));
        assert_eq!(argv(&["-c", "z.toml", "send"]), Some("z.toml".into()));
        assert_eq!(argv(&["-cw.toml", "send"]), Some("w.toml".into()));
        assert_eq!(argv(&["send", "--", "--config", "no"]), None);
        assert_eq!(argv(&["send", "--cc", "a@b"]), None);
        let a: Vec<OsString> = ["--name", "school", "agent"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(global_flag(&a, "--name", None), Some("school".into()));
    }

    #[test]
    fn listen_addresses_become_connectable() {
        assert_eq!(
            connectable("0.0.0.0:25".parse().unwrap()),
            Some("127.0.0.1:25".into())
        );
        assert_eq!(
            connectable("[::]:25".parse().unwrap()),
            Some("[::1]:25".into())
        );
        assert_eq!(
            connectable("127.0.0.2:24025".parse().unwrap()),
            Some("127.0.0.2:24025".into())
        );
        assert_eq!(connectable("127.0.0.1:0".parse().unwrap()), None);
    }
}
