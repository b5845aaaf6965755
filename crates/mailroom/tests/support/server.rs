//! [`TestServer`]: the real `mailroom serve` binary on ephemeral loopback ports with a fresh
//! directory, started from a [`ServerConfig`] and ready when it has printed its `listening:`
//! and `ready:` lines. It reads its own store, runs the CLI and Python scripts beside it, and
//! is killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{bin, ServerConfig};

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub addrs: Vec<(String, SocketAddr)>,
    child: Option<Child>,
    /// Everything the server wrote to stderr (logs, traces).
    pub log: Arc<Mutex<String>>,
    /// `serve`, or `lab` for a lab file.
    command: &'static str,
    extra_args: Vec<String>,
}

impl TestServer {
    /// A server with domain example.test, accounts alice, bob and carol, and the SMTP,
    /// submission and POP3 listeners.
    pub fn start() -> TestServer {
        TestServer::start_with("", &[])
    }

    /// As [`TestServer::start`]; `extra` is appended to the config (a `[limits]` table, say);
    /// `args` go after `serve`.
    pub fn start_with(extra: &str, args: &[&str]) -> TestServer {
        ServerConfig::example()
            .listen(&["smtp", "submission", "pop3"])
            .extra(extra)
            .serve_args(args)
            .start()
    }

    /// A server from a whole config text; `{data}` is replaced by a fresh data directory.
    pub fn start_raw(config: &str) -> TestServer {
        TestServer::start_text(config, &[], "serve")
    }

    /// A server with `config` (see [`ServerConfig::start`]).
    pub fn start_config(config: &ServerConfig) -> TestServer {
        TestServer::start_text(&config.text(), config.args(), "serve")
    }

    /// `mailroom lab` with a lab file (`[[server]]` entries; `{data}` is replaced by a fresh
    /// directory); the listeners are named `SERVER/LISTENER`.
    pub fn start_lab(lab: &str) -> TestServer {
        TestServer::start_text(lab, &[], "lab")
    }

    fn start_text(config: &str, args: &[String], command: &'static str) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("mailroom.toml");
        let text = config.replace("{data}", &dir.path().join("data").display().to_string());
        std::fs::write(&config_path, text).expect("write config");
        let mut s = TestServer {
            dir,
            config_path,
            addrs: Vec::new(),
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            command,
            extra_args: args.to_vec(),
        };
        s.spawn();
        s
    }

    /// Waits until `check` is true (polling), or panics with `what` after `secs` seconds.
    pub fn wait_for(&self, secs: u64, what: &str, check: impl FnMut() -> bool) {
        if !poll(secs, Duration::from_millis(100), check) {
            panic!(
                "timed out waiting for {what}; server log:\n{}",
                self.log_text()
            );
        }
    }

    /// Waits until the log holds `text` (a trace line is written by the server's tasks).
    pub fn wait_for_log(&self, text: &str) {
        self.wait_for(10, &format!("{text:?} in the log"), || {
            self.log_text().contains(text)
        });
    }

    fn spawn(&mut self) {
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(&self.config_path)
            .arg(self.command)
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailroom");
        let stderr = child.stderr.take().expect("stderr");
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                }
                line.clear();
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut addrs = Vec::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("read server stdout");
            if n == 0 {
                let _ = child.wait();
                panic!(
                    "mailroom exited before it was ready; log:\n{}",
                    self.log.lock().map(|l| l.clone()).unwrap_or_default()
                );
            }
            if let Some(rest) = line.strip_prefix("listening: ") {
                let mut parts = rest.split_whitespace();
                let name = parts.next().expect("name").to_string();
                let addr: SocketAddr = parts.next().expect("addr").parse().expect("addr parse");
                addrs.push((name, addr));
            }
            if line.starts_with("ready:") {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        self.addrs = addrs;
        self.child = Some(child);
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no listener {name}: {:?}", self.addrs))
    }
    pub fn smtp(&self) -> SocketAddr {
        self.addr("smtp")
    }
    pub fn submission(&self) -> SocketAddr {
        self.addr("submission")
    }
    pub fn pop3(&self) -> SocketAddr {
        self.addr("pop3")
    }
    pub fn imap(&self) -> SocketAddr {
        self.addr("imap")
    }

    /// The data directory of a server started with `{data}`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status success.
    pub fn terminate(&mut self) -> bool {
        if let Some(mut c) = self.child.take() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            for _ in 0..200 {
                if let Ok(Some(st)) = c.try_wait() {
                    return st.success();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        false
    }

    /// Starts the server again on the same data directory (new ports).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Runs `mailroom` with this server's config and the given args.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut all = vec!["--config", self.config_path.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        super::cli::run(&all, stdin.as_bytes(), &[], None)
    }

    /// Runs `mailroom check` on this server's data directory (beside the running server,
    /// or after it was killed) and asserts that it finds no fault; `when` is for the report.
    pub fn assert_check_clean(&self, when: &str) {
        let out = self.cli(&["check"], "");
        assert!(
            out.status.success(),
            "mailroom check {when} found faults:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `python3` with the server's addresses in the environment: HOST, and NAME_PORT for
    /// each listener (SMTP_PORT, SUBMISSION_PORT, POP3_PORT, IMAP_PORT, ...).
    pub fn python_command(&self) -> Command {
        let mut cmd = Command::new("python3");
        cmd.env("HOST", "127.0.0.1");
        for (name, addr) in &self.addrs {
            cmd.env(
                format!("{}_PORT", name.to_uppercase().replace(['/', '-'], "_")),
                addr.port().to_string(),
            );
        }
        cmd
    }

    /// Runs a Python 3 script with the server's addresses in the environment
    /// ([`TestServer::python_command`]) and asserts it exits 0.
    pub fn python(&self, script: &str) -> String {
        let out = self.python_output(script);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "python failed: {}\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        stdout
    }

    pub fn python_output(&self, script: &str) -> Output {
        self.python_command()
            .arg("-c")
            .arg(script)
            .output()
            .expect("run python3")
    }

    /// Delivers one message over the MX listener; panics unless every step succeeds.
    pub fn deliver(&self, from: &str, to: &[&str], message: &str) {
        super::smtp::deliver(self.smtp(), from, to, message);
    }

    /// Messages in an account's INBOX, read straight from the store (server may be running).
    pub fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        let store =
            mailroom_store::sqlite::SqliteStore::open(&self.data_dir()).expect("open store");
        use mailroom_store::MailStore;
        let acct = store
            .find_account(address)
            .expect("find")
            .expect("account exists");
        let inbox = store
            .mailbox(acct.id, "INBOX")
            .expect("mailbox")
            .expect("inbox");
        let msgs = store.list_messages(inbox.id).expect("list");
        let out = msgs
            .iter()
            .map(|m| {
                let at = mailroom_store::MessageRef::Mailbox {
                    mailbox: inbox.id,
                    uid: m.uid,
                };
                store.message_octets(at).expect("read")
            })
            .collect();
        store.shutdown();
        out
    }

    /// Stores `raws` straight into an account's INBOX (the server may be running): for
    /// mailboxes too big or too many to send over SMTP in a test.
    pub fn store_directly(&self, address: &str, raws: impl IntoIterator<Item = Vec<u8>>) {
        use mailroom_store::MailStore;
        let store =
            mailroom_store::sqlite::SqliteStore::open(&self.data_dir()).expect("open store");
        let acct = store
            .find_account(address)
            .expect("find")
            .expect("account exists");
        for raw in raws {
            store
                .deliver(mailroom_store::Delivery::to_inboxes(raw, vec![acct.id]))
                .expect("deliver");
        }
        store.shutdown();
    }

    /// The server's peak resident memory in KiB (VmHWM).
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    /// The server's current resident memory in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }

    pub fn queue(&self) -> Vec<mailroom_store::QueueEntry> {
        let store =
            mailroom_store::sqlite::SqliteStore::open(&self.data_dir()).expect("open store");
        use mailroom_store::MailStore;
        let q = store.queue_list().expect("queue");
        store.shutdown();
        q
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `check` every `every` until it is true (true) or `secs` seconds passed (false).
pub fn poll(secs: u64, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(every);
    }
    false
}
