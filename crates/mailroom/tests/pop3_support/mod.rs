//! Helpers shared by the POP3 integration tests: a byte-exact POP3 client and message builders.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A raw POP3 client that keeps every octet (Client in common/ trims line ends).
pub struct Pop {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    pub greeting: String,
}

impl Pop {
    /// Connects and reads the greeting (asserting +OK).
    pub fn connect(addr: SocketAddr) -> Pop {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut p = Pop {
            stream,
            reader,
            greeting: String::new(),
        };
        let g = p.line().expect("greeting");
        assert!(g.starts_with("+OK "), "greeting: {g:?}");
        p.greeting = g;
        p
    }

    /// Connects and logs in with USER/PASS.
    pub fn login(addr: SocketAddr, user: &str, pass: &str) -> Pop {
        let mut p = Pop::connect(addr);
        p.ok(&format!("USER {user}"));
        p.ok(&format!("PASS {pass}"));
        p
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// One raw line including its CRLF; None on EOF.
    pub fn raw_line(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => Some(buf),
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// One line without its CRLF (asserting it ends in CRLF); None on EOF.
    pub fn line(&mut self) -> Option<String> {
        let raw = self.raw_line()?;
        assert!(raw.ends_with(b"\r\n"), "line without CRLF: {raw:?}");
        Some(String::from_utf8(raw[..raw.len() - 2].to_vec()).expect("utf8 reply"))
    }

    /// Sends a command and returns the status line, asserting +OK.
    pub fn ok(&mut self, cmd: &str) -> String {
        self.send(cmd);
        let l = self
            .line()
            .unwrap_or_else(|| panic!("closed after {cmd:?}"));
        assert!(l.starts_with("+OK"), "after {cmd:?}: {l:?}");
        l
    }

    /// Sends a command and returns the status line, asserting -ERR.
    pub fn err(&mut self, cmd: &str) -> String {
        self.send(cmd);
        self.expect_err()
    }

    pub fn expect_err(&mut self) -> String {
        let l = self.line().expect("closed while waiting for -ERR");
        assert!(l.starts_with("-ERR "), "expected -ERR, got {l:?}");
        l
    }

    /// Reads the lines of a multi-line response up to the "." (raw, stuffing undone, CRLF kept).
    pub fn body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let l = self
                .raw_line()
                .expect("closed inside a multi-line response");
            assert!(
                l.ends_with(b"\r\n"),
                "line without CRLF inside a response: {l:?}"
            );
            if l == b".\r\n" {
                return out;
            }
            if l.starts_with(b".") {
                assert!(l.starts_with(b".."), "unstuffed dot line: {l:?}");
                out.extend_from_slice(&l[1..]);
            } else {
                out.extend_from_slice(&l);
            }
        }
    }

    /// Sends a command expecting a multi-line +OK response; returns (status, lines).
    pub fn list(&mut self, cmd: &str) -> (String, Vec<String>) {
        let status = self.ok(cmd);
        let body = String::from_utf8(self.body()).expect("utf8");
        (status, body.lines().map(String::from).collect())
    }

    /// RETR n: (status line, message octets as the client sees them).
    pub fn retr(&mut self, n: usize) -> (String, Vec<u8>) {
        let status = self.ok(&format!("RETR {n}"));
        (status, self.body())
    }

    /// STAT as (count, octets).
    pub fn stat(&mut self) -> (usize, u64) {
        let l = self.ok("STAT");
        let mut w = l.split(' ').skip(1);
        let n = w.next().and_then(|s| s.parse().ok()).expect("count");
        let o = w.next().and_then(|s| s.parse().ok()).expect("octets");
        assert!(w.next().is_none(), "STAT must be exactly +OK nn mm: {l:?}");
        (n, o)
    }

    /// True when the server closes the connection within a few seconds.
    pub fn closed(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

/// A small RFC 5322 message with the given subject and body lines.
pub fn message(subject: &str, body: &str) -> String {
    format!(
        "From: <bob@example.test>\r\nTo: <alice@example.test>\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    )
}

/// Waits until `f` is true (polling), or panics after `secs`.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// Stores `raw` straight into an account's INBOX (the server may be running): for mailboxes
/// too big or too many to send over SMTP in a test.
pub fn store_directly(
    dir: &std::path::Path,
    address: &str,
    raws: impl IntoIterator<Item = Vec<u8>>,
) {
    use mailroom_store::MailStore;
    let store = mailroom_store::sqlite::SqliteStore::open(&dir.join("data")).expect("open store");
    let acct = store
        .find_account(address)
        .expect("find")
        .expect("account exists");
    for raw in raws {
        store
            .deliver(mailroom_store::Delivery {
                local_message: raw,
                local: vec![acct.id],
                outbound: None,
            })
            .expect("deliver");
    }
    store.shutdown();
}

/// The server's peak resident memory in KiB (VmHWM).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The server's current resident memory in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
