//! Shared pieces of the IMAP integration tests: a server with an IMAP listener and a raw
//! IMAP client that reads tagged transcripts.
#![allow(dead_code)]

use std::net::SocketAddr;

use crate::common::{Client, TestServer, ALICE, BOB, CAROL};

/// A server with SMTP, POP3 and IMAP listeners and the usual three accounts.
pub fn start() -> TestServer {
    start_with("")
}

/// `extra` is appended to the config (a `[limits]` table, say).
pub fn start_with(extra: &str) -> TestServer {
    let config = format!(
        r#"hostname = "mx.example.test"
data_dir = "{{data}}"
domains = ["example.test"]

[listen]
smtp = "127.0.0.1:0"
pop3 = "127.0.0.1:0"
imap = "127.0.0.1:0"

[trace]
imap = true

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
        a = ALICE.0,
        ap = ALICE.1,
        b = BOB.0,
        bp = BOB.1,
        c = CAROL.0,
        cp = CAROL.1,
    );
    TestServer::start_raw(&config)
}

/// A raw IMAP client: sends tagged commands and collects the lines up to the tagged reply.
pub struct Imap {
    pub c: Client,
    n: u32,
}

impl Imap {
    pub fn connect(addr: SocketAddr) -> Imap {
        let mut c = Client::connect(addr);
        let greeting = c.line().expect("greeting");
        assert!(greeting.starts_with("* OK [CAPABILITY "), "{greeting}");
        Imap { c, n: 0 }
    }

    /// Connects and logs in.
    pub fn login(addr: SocketAddr, user: (&str, &str)) -> Imap {
        let mut i = Imap::connect(addr);
        let (tagged, _) = i.cmd(&format!("LOGIN {} {}", user.0, user.1));
        assert!(tagged.contains(" OK "), "{tagged}");
        i
    }

    fn next_tag(&mut self) -> String {
        self.n += 1;
        format!("t{}", self.n)
    }

    /// Sends `tag command` and returns (tagged line, untagged lines).
    pub fn cmd(&mut self, command: &str) -> (String, Vec<String>) {
        let tag = self.next_tag();
        self.c.send(&format!("{tag} {command}"));
        self.until_tag(&tag)
    }

    /// Reads lines up to the one starting with `tag `.
    pub fn until_tag(&mut self, tag: &str) -> (String, Vec<String>) {
        let mut untagged = Vec::new();
        loop {
            let line = self
                .c
                .line()
                .unwrap_or_else(|| panic!("EOF before {tag}: {untagged:?}"));
            if line.starts_with(&format!("{tag} ")) {
                return (line, untagged);
            }
            untagged.push(line);
        }
    }

    /// Sends a raw line (no tag added) and returns the next line.
    pub fn raw(&mut self, line: &str) -> String {
        self.c.send(line);
        self.c.line().expect("reply")
    }

    pub fn line(&mut self) -> Option<String> {
        self.c.line()
    }

    pub fn ok(&mut self, command: &str) -> Vec<String> {
        let (t, u) = self.cmd(command);
        assert!(t.split(' ').nth(1) == Some("OK"), "{command}: {t} / {u:?}");
        u
    }
}

/// A plain message with a subject and a body.
pub fn msg(from: &str, to: &str, subject: &str, body: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <{subject}@example.test>\r\n\r\n{body}\r\n"
    )
}
