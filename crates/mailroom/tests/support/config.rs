//! [`ServerConfig`]: the one place that writes a test server's TOML config. A test says what
//! differs (listeners, traces, limits, accounts, tables appended) and gets a whole config.

use std::path::{Path, PathBuf};

use super::{TestServer, ALICE, BOB, CAROL};

/// A server config under construction. Listeners are on 127.0.0.1:0 unless given a port;
/// the data directory is a fresh one inside the server's directory unless set.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    hostname: String,
    domains: Vec<String>,
    /// Top-level keys, written before the first table.
    top: String,
    data_dir: Option<PathBuf>,
    listen: Vec<(String, String)>,
    trace: Vec<String>,
    /// The lines of `[limits]` (no table when empty).
    limits: String,
    accounts: Vec<(String, String)>,
    /// `[routes]`: (domain, where to), the latter as TOML (a quoted address or a table).
    routes: Vec<(String, String)>,
    /// Anything else (more `[[accounts]]`, `[routes]`, `[queue]`, ...), appended at the end.
    extra: String,
    /// Arguments after `serve` (e.g. `--trace`).
    serve_args: Vec<String>,
}

impl ServerConfig {
    /// Host `mx.example.test` for the domain example.test, with alice, bob and carol and no
    /// listener yet.
    pub fn example() -> ServerConfig {
        ServerConfig::host("mx.example.test")
            .domains(&[super::DOMAIN])
            .accounts(&[ALICE, BOB, CAROL])
    }

    /// A server called `hostname`, without domains (its accounts' domains are local),
    /// accounts or listeners.
    pub fn host(hostname: &str) -> ServerConfig {
        ServerConfig {
            hostname: hostname.to_string(),
            domains: Vec::new(),
            top: String::new(),
            data_dir: None,
            listen: Vec::new(),
            trace: Vec::new(),
            limits: String::new(),
            accounts: Vec::new(),
            routes: Vec::new(),
            extra: String::new(),
            serve_args: Vec::new(),
        }
    }

    /// The local domains (`domains = [...]`).
    pub fn domains(mut self, domains: &[&str]) -> Self {
        self.domains = domains.iter().map(|d| d.to_string()).collect();
        self
    }

    /// Listeners on 127.0.0.1:0: `smtp`, `submission`, `submissions`, `pop3`, `pop3s`,
    /// `imap`, `imaps`.
    pub fn listen(mut self, names: &[&str]) -> Self {
        for n in names {
            self.listen.push((n.to_string(), "127.0.0.1:0".to_string()));
        }
        self
    }

    /// A listener on a fixed loopback port (one a peer's route names).
    pub fn listen_on(mut self, name: &str, port: u16) -> Self {
        self.listen
            .push((name.to_string(), format!("127.0.0.1:{port}")));
        self
    }

    /// Switches the session trace on for these listeners (`[trace]`).
    pub fn trace(mut self, names: &[&str]) -> Self {
        self.trace.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Lines of the `[limits]` table (`key = value`, one a line).
    pub fn limits(mut self, lines: &str) -> Self {
        if lines.trim().is_empty() {
            return self;
        }
        self.limits.push_str(lines.trim_end());
        self.limits.push('\n');
        self
    }

    /// Top-level keys (e.g. `auth_require_tls = true`).
    pub fn top(mut self, lines: &str) -> Self {
        if lines.trim().is_empty() {
            return self;
        }
        self.top.push_str(lines.trim_end());
        self.top.push('\n');
        self
    }

    /// The accounts of `[[accounts]]` (replacing those so far).
    pub fn accounts(mut self, accounts: &[(&str, &str)]) -> Self {
        self.accounts = accounts
            .iter()
            .map(|(a, p)| (a.to_string(), p.to_string()))
            .collect();
        self
    }

    /// A static route: mail for `domain` goes to 127.0.0.1:`port`.
    pub fn route(self, domain: &str, port: u16) -> Self {
        self.route_to(domain, &format!("\"127.0.0.1:{port}\""))
    }

    /// A static route written as TOML: a quoted address, or a table with TLS settings
    /// (`{ host = "...", verify = true }`).
    pub fn route_to(mut self, domain: &str, toml: &str) -> Self {
        self.routes.push((domain.to_string(), toml.to_string()));
        self
    }

    /// A table of its own (`[queue]`, `[aliases]`, ...) with these lines, appended.
    pub fn table(self, name: &str, lines: &str) -> Self {
        self.extra(&format!("[{name}]\n{}", lines.trim_end()))
    }

    /// Text appended at the end of the config (tables of its own).
    pub fn extra(mut self, text: &str) -> Self {
        if text.trim().is_empty() {
            return self;
        }
        self.extra.push_str(text);
        self.extra.push('\n');
        self
    }

    /// The data directory (else `{data}`: a fresh directory of the test server).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Arguments after `serve` (e.g. `--trace`).
    pub fn serve_args(mut self, args: &[&str]) -> Self {
        self.serve_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    pub fn args(&self) -> &[String] {
        &self.serve_args
    }

    /// The config file's text; `{data}` stands for the data directory when none was set.
    pub fn text(&self) -> String {
        let mut t = format!("hostname = \"{}\"\n", self.hostname);
        let data = match &self.data_dir {
            Some(d) => d.display().to_string(),
            None => "{data}".to_string(),
        };
        t.push_str(&format!("data_dir = \"{data}\"\n"));
        if !self.domains.is_empty() {
            let list: Vec<String> = self.domains.iter().map(|d| format!("\"{d}\"")).collect();
            t.push_str(&format!("domains = [{}]\n", list.join(", ")));
        }
        t.push_str(&self.top);
        if !self.listen.is_empty() {
            t.push_str("\n[listen]\n");
            for (name, addr) in &self.listen {
                t.push_str(&format!("{name} = \"{addr}\"\n"));
            }
        }
        if !self.trace.is_empty() {
            t.push_str("\n[trace]\n");
            for name in &self.trace {
                t.push_str(&format!("{name} = true\n"));
            }
        }
        if !self.limits.is_empty() {
            t.push_str("\n[limits]\n");
            t.push_str(&self.limits);
        }
        for (address, password) in &self.accounts {
            t.push_str(&format!(
                "\n[[accounts]]\naddress = \"{address}\"\npassword = \"{password}\"\n"
            ));
        }
        if !self.routes.is_empty() {
            t.push_str("\n[routes]\n");
            for (domain, to) in &self.routes {
                t.push_str(&format!("\"{domain}\" = {to}\n"));
            }
        }
        if !self.extra.is_empty() {
            t.push('\n');
            t.push_str(&self.extra);
        }
        t
    }

    /// Starts a server with this config and waits until it is ready.
    pub fn start(&self) -> TestServer {
        TestServer::start_config(self)
    }
}
