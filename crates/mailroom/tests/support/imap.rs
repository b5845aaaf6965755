//! IMAP helpers: a server with an IMAP listener, [`Imap`], a raw client that reads tagged
//! transcripts, and a message to deliver.

use std::net::SocketAddr;

use super::{Client, ServerConfig, TestServer};

/// The config of [`start`]: SMTP, POP3 and IMAP listeners, the IMAP trace on, the usual
/// three accounts.
pub fn config() -> ServerConfig {
    ServerConfig::example()
        .listen(&["smtp", "pop3", "imap"])
        .trace(&["imap"])
}

/// A server with SMTP, POP3 and IMAP listeners and the usual three accounts.
pub fn start() -> TestServer {
    config().start()
}

/// As [`start`]; `extra` is appended to the config (a `[limits]` table, say).
pub fn start_with(extra: &str) -> TestServer {
    config().extra(extra).start()
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

    /// Sends `tag` + `head` + a non-synchronizing literal (LITERAL+) + `tail`, returns the
    /// reply.
    pub fn with_literal(
        &mut self,
        tag: &str,
        head: &str,
        literal: &[u8],
        tail: &str,
    ) -> (String, Vec<String>) {
        let mut b = format!("{tag} {head}{{{}+}}\r\n", literal.len()).into_bytes();
        b.extend_from_slice(literal);
        b.extend_from_slice(tail.as_bytes());
        b.extend_from_slice(b"\r\n");
        self.c.send_raw(&b);
        self.until_tag(tag)
    }

    /// APPEND `message` to `mailbox` with a synchronizing literal (the octets only after the
    /// server's `+`). Returns the answer without its tag (`OK [APPENDUID ...] ...`, `NO ...`),
    /// also when the server refuses the literal before it is sent.
    pub fn append(&mut self, mailbox: &str, message: &[u8]) -> String {
        let tag = self.next_tag();
        self.c
            .send(&format!("{tag} APPEND {mailbox} {{{}}}", message.len()));
        let l = self.c.line().expect("answer to APPEND");
        let answer = if l.starts_with('+') {
            self.c.send_raw(message);
            self.c.send_raw(b"\r\n");
            self.until_tag(&tag).0
        } else {
            l
        };
        answer
            .strip_prefix(&format!("{tag} "))
            .map(str::to_string)
            .unwrap_or(answer)
    }
}

/// A plain message with a subject and a body.
pub fn msg(from: &str, to: &str, subject: &str, body: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <{subject}@example.test>\r\n\r\n{body}\r\n"
    )
}
