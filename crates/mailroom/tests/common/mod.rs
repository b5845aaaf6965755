//! Test harness: runs the real `mailroom serve` binary on ephemeral loopback ports with a
//! fresh data directory, and gives tests raw-socket clients and a way to run Python scripts
//! (smtplib, poplib) against it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const DOMAIN: &str = "example.test";
pub const ALICE: (&str, &str) = ("alice@example.test", "secret");
pub const BOB: (&str, &str) = ("bob@example.test", "hunter2");
pub const CAROL: (&str, &str) = ("carol@example.test", "carolpw");

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mailroom")
}

/// The repository's top directory (for tests/ scripts).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub addrs: Vec<(String, SocketAddr)>,
    child: Option<Child>,
    /// Everything the server wrote to stderr (logs, traces).
    pub log: Arc<Mutex<String>>,
    extra_args: Vec<String>,
}

impl TestServer {
    /// A server with domain example.test and accounts alice, bob and carol.
    pub fn start() -> TestServer {
        TestServer::start_with("", &[])
    }

    /// `extra` is appended to the config (a `[limits]` table, say); `args` go after `serve`.
    pub fn start_with(extra: &str, args: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("mailroom.toml");
        let config = format!(
            r#"hostname = "mx.example.test"
data_dir = "{data}"
domains = ["example.test"]

[listen]
smtp = "127.0.0.1:0"
submission = "127.0.0.1:0"
pop3 = "127.0.0.1:0"

[[accounts]]
address = "{a}"
password = "{ap}"

[[accounts]]
address = "{b}"
password = "{bp}"

[[accounts]]
address = "{c}"
password = "{cp}"

{extra}
"#,
            data = dir.path().join("data").display(),
            a = ALICE.0,
            ap = ALICE.1,
            b = BOB.0,
            bp = BOB.1,
            c = CAROL.0,
            cp = CAROL.1,
        );
        std::fs::write(&config_path, config).expect("write config");
        let mut s = TestServer {
            dir,
            config_path,
            addrs: Vec::new(),
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    /// A server from a whole config text; `{data}` is replaced by a fresh data directory.
    pub fn start_raw(config: &str) -> TestServer {
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
            extra_args: Vec::new(),
        };
        s.spawn();
        s
    }

    /// Waits until `check` is true (polling), or panics with `what` after `secs` seconds.
    pub fn wait_for(&self, secs: u64, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}; server log:\n{}",
            self.log_text()
        );
    }

    fn spawn(&mut self) {
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(&self.config_path)
            .arg("serve")
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
                libc_kill(c.id() as i32, 15);
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
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cli");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("cli output")
    }

    /// Runs a Python 3 script with the server's addresses in the environment
    /// (SMTP_PORT, SUBMISSION_PORT, POP3_PORT, HOST) and asserts it exits 0.
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
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(script).env("HOST", "127.0.0.1");
        for (name, addr) in &self.addrs {
            cmd.env(
                format!("{}_PORT", name.to_uppercase().replace(['/', '-'], "_")),
                addr.port().to_string(),
            );
        }
        cmd.output().expect("run python3")
    }

    /// Delivers one message over the MX listener; panics unless every step succeeds.
    pub fn deliver(&self, from: &str, to: &[&str], message: &str) {
        let mut c = Client::connect(self.smtp());
        c.expect_code(220);
        c.cmd("EHLO test.example", 250);
        c.cmd(&format!("MAIL FROM:<{from}>"), 250);
        for r in to {
            c.cmd(&format!("RCPT TO:<{r}>"), 250);
        }
        c.cmd("DATA", 354);
        c.send_raw(wire_body(message).as_bytes());
        c.cmd(".", 250);
        c.cmd("QUIT", 221);
    }

    /// Messages in an account's INBOX, read straight from the store (server may be running).
    pub fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        let store = mailroom_store::sqlite::SqliteStore::open(&self.dir.path().join("data"))
            .expect("open store");
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
                mailroom_store::read_message(&store, at).expect("read")
            })
            .collect();
        store.shutdown();
        out
    }

    pub fn queue(&self) -> Vec<mailroom_store::QueueEntry> {
        let store = mailroom_store::sqlite::SqliteStore::open(&self.dir.path().join("data"))
            .expect("open store");
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

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// A line-oriented raw socket client, as a person at telnet would be.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

/// An SMTP reply: code and text lines.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Client { stream, reader }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// One line without CRLF; None on EOF.
    pub fn line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Some(String::from_utf8_lossy(&buf).to_string())
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Reads one SMTP reply (all its lines).
    pub fn reply(&mut self) -> Reply {
        let mut lines = Vec::new();
        loop {
            let line = self
                .line()
                .expect("connection closed while waiting for a reply");
            assert!(line.len() >= 3, "short reply line: {line:?}");
            let code: u16 = line[..3]
                .parse()
                .unwrap_or_else(|_| panic!("bad reply line: {line:?}"));
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                return Reply { code, lines };
            }
        }
    }

    pub fn expect_code(&mut self, code: u16) -> Reply {
        let r = self.reply();
        assert_eq!(r.code, code, "expected {code}, got {r:?}");
        r
    }

    /// Sends a command and asserts the reply code.
    pub fn cmd(&mut self, line: &str, code: u16) -> Reply {
        self.send(line);
        let r = self.reply();
        assert_eq!(r.code, code, "after {line:?}: expected {code}, got {r:?}");
        r
    }

    /// True when the server has closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }
}

/// A loopback port that was free a moment ago (for configs that must name ports up front).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Submits a message over the submission port with AUTH PLAIN; panics unless accepted.
pub fn submit(addr: SocketAddr, user: (&str, &str), to: &[&str], message: &str) {
    let mut c = Client::connect(addr);
    c.expect_code(220);
    c.cmd("EHLO client.test", 250);
    c.cmd(
        &format!("AUTH PLAIN {}", b64(&format!("\0{}\0{}", user.0, user.1))),
        235,
    );
    c.cmd(&format!("MAIL FROM:<{}>", user.0), 250);
    for r in to {
        c.cmd(&format!("RCPT TO:<{r}>"), 250);
    }
    c.cmd("DATA", 354);
    c.send_raw(wire_body(message).as_bytes());
    c.cmd(".", 250);
    c.cmd("QUIT", 221);
}

/// A message as a client sends it after DATA: CRLF line ends, lines starting with "." stuffed.
pub fn wire_body(message: &str) -> String {
    let mut out = String::new();
    for line in message
        .replace("\r\n", "\n")
        .trim_end_matches('\n')
        .split('\n')
    {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
